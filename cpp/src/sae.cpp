#include "latentcore/sae.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "latentcore/adam.hpp"
#include "latentcore/parallel.hpp"
#include "latentcore/topk.hpp"

namespace latentcore {

namespace {

// The encoder's blocking. A work item is a block of kEncodeRows samples (fewer
// when the batch is small, so that it still splits into kMinEncodeItems
// items); it walks the latents in tiles of kEncodeLatents, each tile's
// pre-activations (rows, latents) one single-threaded SGEMM into a buffer
// (8 MiB, in L3 on two cores), selected from at once into the rows' running
// top-k. Each tile of the encoder is then packed once per 512 samples, not
// once per 2^18 / n_latents samples as when a whole row of pre-activations had
// to fit in L2 (16 at 16k latents, 4 at 64k: 46 GFLOP/s at 768 x 16k on two
// Zen 3 cores, 14 at 2048 x 64k; now 145-160, as numpy's sgemm on the whole
// product). Tiles of 1024 and 2048 latents measured 3-8% slower (the
// selection's fixed cost per row and tile), 4096 covers a whole row at 4096
// latents. Neither size depends on the thread count, so neither does the
// result.
constexpr size_type kEncodeRows = 512;
constexpr size_type kEncodeLatents = 4096;
constexpr size_type kMinEncodeItems = 8;
constexpr size_type kMinEncodeRows = 16;

// True when every value is finite; one vectorisable pass (no early exit).
LATENTCORE_DISPATCH
bool all_finite(const float* v, size_type n) {
    constexpr float kMax = std::numeric_limits<float>::max();
    int bad = 0;
    for (size_type i = 0; i < n; ++i) bad |= !(std::fabs(v[i]) <= kMax);
    return bad == 0;
}

// Offers one row of a tile of pre-activations (latents [first, first + n))
// to the row's running selection in score / index (k entries; scores are
// negated pre-activations plus bias, as topk_of_row keeps them). The first
// tile is selected whole by topk_of_row, whose cutoff from the best of groups
// spares most of the heap's work while its threshold is loose; its result,
// sorted best first, reversed is a valid heap (each parent no better than
// its children) for the tiles after it, which scan_into_topk offers.
void select_from_tile(const float* values, size_type n, size_type first, const float* signed_bias, int k,
                      float* score, index_t* index) {
    const TopKRow row{score, index, k};
    if (first == 0) {
        topk_of_row(values, n, k, true, signed_bias, score, index);
        std::reverse(score, score + k);
        std::reverse(index, index + k);
        for (int t = 0; t < k; ++t) score[t] = -score[t];  // back to scores
        return;
    }
    scan_into_topk(row, values, signed_bias ? signed_bias + first : nullptr, -1.0f, n, static_cast<index_t>(first), -1);
}

}  // namespace

void topk_encode(const float* x, size_type n, int n_features, const float* weight, int n_latents,
                 const float* bias, int k, Sgemm sgemm, float* out_value, index_t* out_index, int n_threads) {
    const size_type rows_per_block =
        std::max(kMinEncodeRows, std::min(kEncodeRows, (n + kMinEncodeItems - 1) / kMinEncodeItems));
    // A tile holds several times k latents, or the selection's heap would
    // take most of a tile's entries.
    const size_type tile =
        std::min<size_type>(std::max<size_type>(kEncodeLatents, 4 * static_cast<size_type>(k)), n_latents);
    const size_type n_blocks = (n + rows_per_block - 1) / rows_per_block;
    const std::vector<float> signed_bias = signed_column_bias(bias, n_latents, true);
    const float* sbias = bias ? signed_bias.data() : nullptr;
    const bool one_tile = tile >= n_latents;  // topk_of_row's answer is then the row's
    ParallelWork work;
#pragma omp parallel num_threads(resolve_threads(n_threads))
    {
        std::vector<float> pre;
        work.run([&] { pre.resize(static_cast<size_t>(rows_per_block * tile)); });
#pragma omp for schedule(dynamic, 1) nowait
        for (size_type b = 0; b < n_blocks; ++b) {
            work.run([&] {
                const size_type first = b * rows_per_block, rows = std::min(rows_per_block, n - first);
                for (size_type l0 = 0; l0 < n_latents; l0 += tile) {
                    if (l0 != 0 && work.stopped()) return;
                    const size_type width = std::min<size_type>(tile, n_latents - l0);
                    // pre (rows, width) row-major = x_block W_tile^T, as column-major
                    // pre^T = W_tile x_block^T.
                    const int m = static_cast<int>(width), cols = static_cast<int>(rows), depth = n_features;
                    const float one = 1.0f, zero = 0.0f;
                    sgemm("T", "N", &m, &cols, &depth, &one, weight + l0 * n_features, &depth,
                          x + first * n_features, &depth, &zero, pre.data(), &m);
                    // A NaN would never be selected and an infinity would be kept as
                    // a code: neither is an answer. Finite inputs whose products
                    // overflow float32 are the caller's to rescale.
                    if (!all_finite(pre.data(), rows * width))
                        throw std::domain_error("pre-activations overflow float32");
                    for (size_type r = 0; r < rows; ++r) {
                        float* value = out_value + (first + r) * k;
                        index_t* index = out_index + (first + r) * k;
                        if (one_tile)
                            topk_of_row(pre.data() + r * width, width, k, true, sbias, value, index);
                        else
                            select_from_tile(pre.data() + r * width, width, l0, sbias, k, value, index);
                    }
                }
                for (size_type r = 0; r < rows; ++r) {
                    float* value = out_value + (first + r) * k;
                    if (!one_tile) {  // the heap of scores, as descending values
                        TopKRow{value, out_index + (first + r) * k, k}.sort();
                        for (int t = 0; t < k; ++t) value[t] = -value[t];
                    }
                    // Adding the bias may overflow too (only the kept values matter).
                    if (!all_finite(value, k)) throw std::domain_error("pre-activations overflow float32");
                }
            });
        }
        work.leave_region();
    }
    work.finish();
}

namespace {

// Rows (or elements) per ParallelWork item in the cheap elementwise kernels:
// enough that the poll costs nothing, few enough that an item is short.
constexpr size_type kRowsPerItem = 64;
constexpr size_type kElementsPerItem = size_type{1} << 16;
// Entries of one latent's gradient between two polls (a latent every sample
// fires is one long item).
constexpr size_type kEntriesPerPoll = 1024;

LATENTCORE_DISPATCH
void decode_row(const index_t* index, const float* value, int k, const float* decoder, int n_features,
                const float* bias, float* row) {
    for (int f = 0; f < n_features; ++f) row[f] = bias ? bias[f] : 0.0f;
    for (int j = 0; j < k; ++j) {
        const index_t latent = index[j];
        const float v = value[j];
        if (latent < 0 || v == 0.0f) continue;
        const float* atom = decoder + static_cast<size_type>(latent) * n_features;
        for (int f = 0; f < n_features; ++f) row[f] += v * atom[f];
    }
}

}  // namespace

void sparse_decode(const index_t* index, const float* value, size_type batch, int k, const float* decoder,
                   int n_features, const float* bias, float* out, int n_threads) {
    const size_type n_items = (batch + kRowsPerItem - 1) / kRowsPerItem;
    ParallelWork work;
#pragma omp parallel for schedule(static) num_threads(resolve_threads(n_threads))
    for (size_type item = 0; item < n_items; ++item)
        work.run([&] {
            const size_type end = std::min(batch, (item + 1) * kRowsPerItem);
            for (size_type i = item * kRowsPerItem; i < end; ++i)
                decode_row(index + i * k, value + i * k, k, decoder, n_features, bias, out + i * n_features);
        });
    work.finish();
}

namespace {

// Eight running sums in a fixed order: vectorisable without -ffast-math, and
// the same result for any thread count.
LATENTCORE_DISPATCH
float dot(const float* a, const float* b, int n) {
    constexpr int kLanes = 8;
    float lanes[kLanes] = {};
    int f = 0;
    for (; f + kLanes <= n; f += kLanes)
        for (int t = 0; t < kLanes; ++t) lanes[t] += a[f + t] * b[f + t];
    float s = 0.0f;
    for (int t = 0; t < kLanes; ++t) s += lanes[t];
    for (; f < n; ++f) s += a[f] * b[f];
    return s;
}

LATENTCORE_DISPATCH
void add_scaled(float* target, float scale, const float* source, int n) {
    for (int f = 0; f < n; ++f) target[f] += scale * source[f];
}

}  // namespace

namespace {

// dpre[e] for the entries [begin, end): grad_out[row] . decoder[latent] where
// the entry's value is positive. Plain arguments rather than a lambda's
// captures, which the compiler would reload after every call.
void entry_gradients(const index_t* index, const float* value, size_type begin, size_type end, int k,
                     const float* grad_out, const float* decoder, int n_features, float* dpre) {
    for (size_type e = begin; e < end; ++e) {
        const index_t latent = index[e];
        if (latent < 0 || value[e] <= 0.0f) continue;
        dpre[e] = dot(grad_out + (e / k) * n_features, decoder + static_cast<size_type>(latent) * n_features,
                      n_features);
    }
}

// One latent's gradient rows from its entries by_latent[begin, end), in order.
void latent_gradients(const size_type* by_latent, size_type begin, size_type end, const float* value,
                      const float* dpre, int k, const float* grad_out, const float* x_centered, int n_features,
                      float* g_dec, float* g_enc, float& g_bias) {
    for (size_type t = begin; t < end; ++t) {
        const size_type e = by_latent[t], i = e / k;
        add_scaled(g_dec, value[e], grad_out + i * n_features, n_features);
        if (dpre[e] != 0.0f) add_scaled(g_enc, dpre[e], x_centered + i * n_features, n_features);
        g_bias += dpre[e];
    }
}

}  // namespace

void sparse_decode_backward(const index_t* index, const float* value, size_type batch, int k,
                            const float* grad_out, const float* x_centered, const float* decoder,
                            int n_latents, int n_features, float* grad_decoder, float* grad_encoder,
                            float* grad_encoder_bias, int n_threads) {
    const size_type entries = batch * k;
    const int threads = resolve_threads(n_threads);
    // dL/dpre per entry, computed where the rows are contiguous.
    std::vector<float> dpre(entries, 0.0f);
    float* const dpre_data = dpre.data();
    const size_type n_items = (entries + kRowsPerItem - 1) / kRowsPerItem;
    ParallelWork work;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (size_type item = 0; item < n_items; ++item)
        work.run([&] {
            entry_gradients(index, value, item * kRowsPerItem, std::min(entries, (item + 1) * kRowsPerItem), k,
                            grad_out, decoder, n_features, dpre_data);
        });
    work.finish();
    // Counting sort of the entries by latent (in batch order), so that each
    // thread owns whole gradient rows: no atomics, and a fixed summation order.
    std::vector<size_type> start(static_cast<size_t>(n_latents) + 1, 0);
    for (size_type e = 0; e < entries; ++e)
        if (index[e] >= 0 && value[e] != 0.0f) ++start[index[e] + 1];
    for (int l = 0; l < n_latents; ++l) start[l + 1] += start[l];
    std::vector<size_type> by_latent(start[n_latents]);
    {
        std::vector<size_type> fill(start.begin(), start.end() - 1);
        for (size_type e = 0; e < entries; ++e)
            if (index[e] >= 0 && value[e] != 0.0f) by_latent[fill[index[e]]++] = e;
    }
    // A latent that many entries share is one long item: it polls between
    // blocks of them.
#pragma omp parallel num_threads(threads)
    {
#pragma omp for schedule(dynamic, 16) nowait
        for (int l = 0; l < n_latents; ++l)
            work.run([&] {
                float* g_dec = grad_decoder + static_cast<size_type>(l) * n_features;
                float* g_enc = grad_encoder + static_cast<size_type>(l) * n_features;
                float g_bias = 0.0f;
                const size_type first = start[l], last = start[l + 1];
                for (size_type t0 = first; t0 < last; t0 += kEntriesPerPoll) {
                    if (t0 != first && work.stopped()) return;
                    latent_gradients(by_latent.data(), t0, std::min(last, t0 + kEntriesPerPoll), value, dpre_data,
                                     k, grad_out, x_centered, n_features, g_dec, g_enc, g_bias);
                }
                grad_encoder_bias[l] += g_bias;
            });
        work.leave_region();
    }
    work.finish();
}

namespace {

LATENTCORE_DISPATCH
void adam_range(float* param, const float* grad, float* first_moment, float* second_moment, size_type begin,
                size_type end, const AdamStep adam) {
    for (size_type i = begin; i < end; ++i) adam.apply(param[i], grad[i], first_moment[i], second_moment[i]);
}

}  // namespace

namespace {

// error = recon - target in place (error holds recon), grad = error * scale
// (in double, rounded once), and the sum of error^2 in double, in eight lanes
// so that it vectorises without -ffast-math.
LATENTCORE_DISPATCH
double finish_error_row(float* error, const float* target, double scale, float* grad, int n) {
    constexpr int kLanes = 8;
    double lanes[kLanes] = {};
    int f = 0;
    for (; f + kLanes <= n; f += kLanes)
        for (int t = 0; t < kLanes; ++t) {
            const float e = error[f + t] - target[f + t];
            error[f + t] = e;
            lanes[t] += static_cast<double>(e) * e;
            grad[f + t] = static_cast<float>(e * scale);
        }
    double s = 0.0;
    for (int t = 0; t < kLanes; ++t) s += lanes[t];
    for (; f < n; ++f) {
        const float e = error[f] - target[f];
        error[f] = e;
        s += static_cast<double>(e) * e;
        grad[f] = static_cast<float>(e * scale);
    }
    return s;
}

// Rows [begin, end) of decode_error.
[[gnu::noinline]] void decode_error_rows(const index_t* index, const float* value, size_type begin, size_type end,
                                         int k, const float* decoder, int n_features, const float* bias,
                                         const float* target, double scale, float* error, float* grad_out,
                                         double* sq_error) {
    for (size_type i = begin; i < end; ++i) {
        float* err = error + i * n_features;
        decode_row(index + i * k, value + i * k, k, decoder, n_features, bias, err);
        sq_error[i] = finish_error_row(err, target + i * n_features, scale, grad_out + i * n_features, n_features);
    }
}

}  // namespace

void decode_error(const index_t* index, const float* value, size_type batch, int k, const float* decoder,
                  int n_features, const float* bias, const float* target, double scale, float* error,
                  float* grad_out, double* sq_error, int n_threads) {
    const size_type n_items = (batch + kRowsPerItem - 1) / kRowsPerItem;
    ParallelWork work;
#pragma omp parallel for schedule(static) num_threads(resolve_threads(n_threads))
    for (size_type item = 0; item < n_items; ++item)
        work.run([&] {
            decode_error_rows(index, value, item * kRowsPerItem, std::min(batch, (item + 1) * kRowsPerItem), k,
                              decoder, n_features, bias, target, scale, error, grad_out, sq_error);
        });
    work.finish();
}

namespace {

// Latents per work item of update_latents; also the chunks in which
// grad_pre_bias is summed (fixed, so that the sum does not depend on the
// thread count).
constexpr int kLatentsPerItem = 64;

// The entries of codes (batch, k) grouped by latent, each group in batch order
// (a counting sort): entries with a negative index or a zero value are left out.
struct EntriesByLatent {
    std::vector<size_type> start;  // n_latents + 1 offsets into order
    std::vector<size_type> order;  // entry ids e = i * k + j

    void build(const index_t* index, const float* value, size_type entries, int n_latents) {
        start.assign(static_cast<size_t>(n_latents) + 1, 0);
        for (size_type e = 0; e < entries; ++e)
            if (index[e] >= 0 && value[e] != 0.0f) ++start[index[e] + 1];
        for (int l = 0; l < n_latents; ++l) start[l + 1] += start[l];
        order.resize(static_cast<size_t>(start[n_latents]));
        std::vector<size_type> fill(start.begin(), start.end() - 1);
        for (size_type e = 0; e < entries; ++e)
            if (index[e] >= 0 && value[e] != 0.0f) order[fill[index[e]]++] = e;
    }
};

// g_dec += scale * g over n, returning g . row: one pass over g for the
// entry's decoder gradient and its pre-activation's (eight running sums).
LATENTCORE_DISPATCH
float add_scaled_dot(float* g_dec, float scale, const float* g, const float* row, int n) {
    constexpr int kLanes = 8;
    float lanes[kLanes] = {};
    int f = 0;
    for (; f + kLanes <= n; f += kLanes)
        for (int t = 0; t < kLanes; ++t) {
            lanes[t] += g[f + t] * row[f + t];
            g_dec[f + t] += scale * g[f + t];
        }
    float s = 0.0f;
    for (int t = 0; t < kLanes; ++t) s += lanes[t];
    for (; f < n; ++f) {
        s += g[f] * row[f];
        g_dec[f] += scale * g[f];
    }
    return s;
}

// One latent's gradients from its entries order[begin, end) of codes with k
// per row, in order: dpre = grad_out[i] . decoder_row where the value is
// positive (the ReLU passes no gradient elsewhere; a NaN value still computes
// its dot), grad_decoder += value * grad_out[i], grad_encoder += dpre *
// x_centered[i], grad_encoder_bias += dpre, as sparse_decode_backward.
[[gnu::noinline]] void fused_latent_gradients(const size_type* order, size_type begin, size_type end,
                                              const float* value, int k, const float* grad_out,
                                              const float* x_centered, const float* decoder_row, int n_features,
                                              float* g_dec, float* g_enc, float& g_bias) {
    for (size_type t = begin; t < end; ++t) {
        const size_type e = order[t], i = e / k;
        const float* g = grad_out + i * n_features;
        const float dot_g = add_scaled_dot(g_dec, value[e], g, decoder_row, n_features);
        const float dpre = value[e] <= 0.0f ? 0.0f : dot_g;
        if (dpre != 0.0f) add_scaled(g_enc, dpre, x_centered + i * n_features, n_features);
        g_bias += dpre;
    }
}

LATENTCORE_DISPATCH
void divide(float* row, float by, int n) {
    for (int f = 0; f < n; ++f) row[f] /= by;
}

// A latent's Adam step once its gradients are built: the decoder row's
// tangent projection, Adam on both rows and the bias, the renormalization.
// Plain arguments (see cpp/README.md on lambdas' captures).
[[gnu::noinline]] void step_latent(size_type l, int n_features, float* g_dec, float* g_enc, float g_bias,
                                   const AdamSlot& encoder, const AdamSlot& encoder_bias, const AdamSlot& decoder,
                                   float* norms, const AdamStep& adam) {
    const size_type offset = l * n_features;
    float* dec = decoder.param + offset;
    add_scaled(g_dec, -dot(g_dec, dec, n_features), dec, n_features);
    adam_range(dec, g_dec, decoder.first_moment + offset, decoder.second_moment + offset, 0, n_features, adam);
    const float norm = std::sqrt(dot(dec, dec, n_features));
    divide(dec, norm, n_features);
    norms[l] = norm;
    adam_range(encoder.param + offset, g_enc, encoder.first_moment + offset, encoder.second_moment + offset, 0,
               n_features, adam);
    adam.apply(encoder_bias.param[l], g_bias, encoder_bias.first_moment[l], encoder_bias.second_moment[l]);
}

}  // namespace

void update_latents(const index_t* index, const float* value, const float* grad_out, int k,
                    const index_t* aux_index, const float* aux_value, const float* aux_grad_out, int k_aux,
                    const float* x_centered, size_type batch, int n_latents, int n_features, AdamSlot encoder,
                    AdamSlot encoder_bias, AdamSlot decoder, float* grad_pre_bias, float* norms,
                    double learning_rate, double beta1, double beta2, double eps, long long step, int n_threads) {
    const AdamStep adam = AdamStep::make(learning_rate, beta1, beta2, eps, step);
    EntriesByLatent main, aux;
    main.build(index, value, batch * k, n_latents);
    aux.build(aux_index, aux_value, batch * k_aux, n_latents);
    const size_type n_items = (n_latents + kLatentsPerItem - 1) / kLatentsPerItem;
    // Each item's share of grad_pre_bias, summed in item order after the region.
    std::vector<float> partial(static_cast<size_t>(n_items * n_features), 0.0f);
    ParallelWork work;
#pragma omp parallel num_threads(resolve_threads(n_threads))
    {
        std::vector<float> g_dec, g_enc;
        work.run([&] {
            g_dec.resize(static_cast<size_t>(n_features));
            g_enc.resize(static_cast<size_t>(n_features));
        });
#pragma omp for schedule(dynamic, 1) nowait
        for (size_type item = 0; item < n_items; ++item)
            work.run([&] {
                const size_type last = std::min<size_type>(n_latents, (item + 1) * kLatentsPerItem);
                for (size_type l = item * kLatentsPerItem; l < last; ++l) {
                    std::fill(g_dec.begin(), g_dec.end(), 0.0f);
                    std::fill(g_enc.begin(), g_enc.end(), 0.0f);
                    float g_bias = 0.0f;
                    const float* decoder_row = decoder.param + l * n_features;  // before its update
                    // A latent that many entries share is long: it polls between
                    // blocks of them, before anything of it is updated.
                    for (int pass = 0; pass < 2; ++pass) {
                        const EntriesByLatent& by = pass == 0 ? main : aux;
                        const size_type first = by.start[l], end = by.start[l + 1];
                        for (size_type t0 = first; t0 < end; t0 += kEntriesPerPoll) {
                            if (t0 != first && work.stopped()) return;
                            fused_latent_gradients(by.order.data(), t0, std::min(end, t0 + kEntriesPerPoll),
                                                   pass == 0 ? value : aux_value, pass == 0 ? k : k_aux,
                                                   pass == 0 ? grad_out : aux_grad_out, x_centered, decoder_row,
                                                   n_features, g_dec.data(), g_enc.data(), g_bias);
                        }
                    }
                    if (g_bias != 0.0f)
                        add_scaled(partial.data() + item * n_features, g_bias, encoder.param + l * n_features,
                                   n_features);
                    step_latent(l, n_features, g_dec.data(), g_enc.data(), g_bias, encoder, encoder_bias, decoder,
                                norms, adam);
                }
            });
        work.leave_region();
    }
    work.finish();
    for (int f = 0; f < n_features; ++f) grad_pre_bias[f] = 0.0f;
    for (size_type item = 0; item < n_items; ++item)
        add_scaled(grad_pre_bias, 1.0f, partial.data() + item * n_features, n_features);
}


void adam_update(float* param, const float* grad, float* first_moment, float* second_moment, size_type n,
                 double learning_rate, double beta1, double beta2, double eps, long long step, int n_threads) {
    const AdamStep adam = AdamStep::make(learning_rate, beta1, beta2, eps, step);
    const size_type n_items = (n + kElementsPerItem - 1) / kElementsPerItem;
    ParallelWork work;
#pragma omp parallel for schedule(static) num_threads(resolve_threads(n_threads))
    for (size_type item = 0; item < n_items; ++item)
        work.run([&] {
            adam_range(param, grad, first_moment, second_moment, item * kElementsPerItem,
                       std::min(n, (item + 1) * kElementsPerItem), adam);
        });
    work.finish();
}

}  // namespace latentcore
