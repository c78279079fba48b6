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
// Pre-activations a thread holds at once: 256 KiB floats = 1 MiB, within L2.
constexpr size_type kEncodeBuffer = size_type{1} << 18;
}  // namespace

namespace {

// True when every value is finite; one vectorisable pass (no early exit).
LATENTCORE_DISPATCH
bool all_finite(const float* v, size_type n) {
    constexpr float kMax = std::numeric_limits<float>::max();
    int bad = 0;
    for (size_type i = 0; i < n; ++i) bad |= !(std::fabs(v[i]) <= kMax);
    return bad == 0;
}

}  // namespace

void topk_encode(const float* x, size_type n, int n_features, const float* weight, int n_latents,
                 const float* bias, int k, Sgemm sgemm, float* out_value, index_t* out_index, int n_threads) {
    const size_type rows_per_block = std::max<size_type>(1, kEncodeBuffer / n_latents);
    const size_type n_blocks = (n + rows_per_block - 1) / rows_per_block;
    const std::vector<float> signed_bias = signed_column_bias(bias, n_latents, true);
    ParallelWork work;
#pragma omp parallel num_threads(resolve_threads(n_threads))
    {
        std::vector<float> pre;
        work.run([&] { pre.resize(static_cast<size_t>(rows_per_block) * n_latents); });
#pragma omp for schedule(dynamic, 1)
        for (size_type b = 0; b < n_blocks; ++b) {
            work.run([&] {
                const size_type first = b * rows_per_block, rows = std::min(rows_per_block, n - first);
                // pre (rows, n_latents) row-major = x_block W^T, as column-major pre^T = W x_block^T.
                const int m = n_latents, cols = static_cast<int>(rows), depth = n_features;
                const float one = 1.0f, zero = 0.0f;
                sgemm("T", "N", &m, &cols, &depth, &one, weight, &depth, x + first * n_features, &depth, &zero,
                      pre.data(), &m);
                // A NaN would never be selected and an infinity would be kept as
                // a code: neither is an answer. Finite inputs whose products
                // overflow float32 are the caller's to rescale.
                if (!all_finite(pre.data(), rows * n_latents))
                    throw std::domain_error("pre-activations overflow float32");
                for (size_type r = 0; r < rows; ++r) {
                    float* value = out_value + (first + r) * k;
                    topk_of_row(pre.data() + r * n_latents, n_latents, k, true, bias ? signed_bias.data() : nullptr,
                                value, out_index + (first + r) * k);
                    // Adding the bias may overflow too (only the kept values matter).
                    if (!all_finite(value, k)) throw std::domain_error("pre-activations overflow float32");
                }
            });
        }
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
