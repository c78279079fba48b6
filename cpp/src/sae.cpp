#include "latentcore/sae.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "latentcore/topk.hpp"

namespace latentcore {

namespace {
// Pre-activations a thread holds at once: 256 KiB floats = 1 MiB, within L2.
constexpr size_type kEncodeBuffer = size_type{1} << 18;
}  // namespace

void topk_encode(const float* x, size_type n, int n_features, const float* weight, int n_latents,
                 const float* bias, int k, Sgemm sgemm, float* out_value, index_t* out_index, int n_threads) {
    const size_type rows_per_block = std::max<size_type>(1, kEncodeBuffer / n_latents);
    const size_type n_blocks = (n + rows_per_block - 1) / rows_per_block;
    const std::vector<float> signed_bias = signed_column_bias(bias, n_latents, true);
#pragma omp parallel num_threads(resolve_threads(n_threads))
    {
        std::vector<float> pre(static_cast<size_t>(rows_per_block) * n_latents);
#pragma omp for schedule(dynamic, 1)
        for (size_type b = 0; b < n_blocks; ++b) {
            const size_type first = b * rows_per_block, rows = std::min(rows_per_block, n - first);
            // pre (rows, n_latents) row-major = x_block W^T, as column-major pre^T = W x_block^T.
            const int m = n_latents, cols = static_cast<int>(rows), depth = n_features;
            const float one = 1.0f, zero = 0.0f;
            sgemm("T", "N", &m, &cols, &depth, &one, weight, &depth, x + first * n_features, &depth, &zero,
                  pre.data(), &m);
            for (size_type r = 0; r < rows; ++r)
                topk_of_row(pre.data() + r * n_latents, n_latents, k, true, bias ? signed_bias.data() : nullptr,
                            out_value + (first + r) * k, out_index + (first + r) * k);
        }
    }
}

LATENTCORE_DISPATCH
void sparse_decode(const index_t* index, const float* value, size_type batch, int k, const float* decoder,
                   int n_features, const float* bias, float* out, int n_threads) {
#pragma omp parallel for schedule(static) num_threads(resolve_threads(n_threads))
    for (size_type i = 0; i < batch; ++i) {
        float* row = out + i * n_features;
        for (int f = 0; f < n_features; ++f) row[f] = bias ? bias[f] : 0.0f;
        for (int j = 0; j < k; ++j) {
            const index_t latent = index[i * k + j];
            const float v = value[i * k + j];
            if (latent < 0 || v == 0.0f) continue;
            const float* atom = decoder + static_cast<size_type>(latent) * n_features;
            for (int f = 0; f < n_features; ++f) row[f] += v * atom[f];
        }
    }
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

void sparse_decode_backward(const index_t* index, const float* value, size_type batch, int k,
                            const float* grad_out, const float* x_centered, const float* decoder,
                            int n_latents, int n_features, float* grad_decoder, float* grad_encoder,
                            float* grad_encoder_bias, int n_threads) {
    const size_type entries = batch * k;
    const int threads = resolve_threads(n_threads);
    // dL/dpre per entry, computed where the rows are contiguous.
    std::vector<float> dpre(entries, 0.0f);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (size_type e = 0; e < entries; ++e) {
        const index_t latent = index[e];
        if (latent < 0 || value[e] <= 0.0f) continue;
        dpre[e] = dot(grad_out + (e / k) * n_features, decoder + static_cast<size_type>(latent) * n_features,
                      n_features);
    }
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
#pragma omp parallel for schedule(dynamic, 16) num_threads(threads)
    for (int l = 0; l < n_latents; ++l) {
        float* g_dec = grad_decoder + static_cast<size_type>(l) * n_features;
        float* g_enc = grad_encoder + static_cast<size_type>(l) * n_features;
        float g_bias = 0.0f;
        for (size_type t = start[l]; t < start[l + 1]; ++t) {
            const size_type e = by_latent[t], i = e / k;
            add_scaled(g_dec, value[e], grad_out + i * n_features, n_features);
            if (dpre[e] != 0.0f) add_scaled(g_enc, dpre[e], x_centered + i * n_features, n_features);
            g_bias += dpre[e];
        }
        grad_encoder_bias[l] += g_bias;
    }
}

LATENTCORE_DISPATCH
void adam_update(float* param, const float* grad, float* first_moment, float* second_moment, size_type n,
                 double learning_rate, double beta1, double beta2, double eps, long long step, int n_threads) {
    const float b1 = static_cast<float>(beta1), b2 = static_cast<float>(beta2);
    // Bias corrections folded into the step size and eps, as PyTorch does.
    const double correction1 = 1.0 - std::pow(beta1, static_cast<double>(step));
    const double correction2 = 1.0 - std::pow(beta2, static_cast<double>(step));
    const float step_size = static_cast<float>(learning_rate / correction1);
    const float root2 = static_cast<float>(std::sqrt(correction2));
    const float e = static_cast<float>(eps);
#pragma omp parallel for schedule(static) num_threads(resolve_threads(n_threads))
    for (size_type i = 0; i < n; ++i) {
        const float g = grad[i];
        const float m = b1 * first_moment[i] + (1.0f - b1) * g;
        const float v = b2 * second_moment[i] + (1.0f - b2) * g * g;
        first_moment[i] = m;
        second_moment[i] = v;
        param[i] -= step_size * m / (std::sqrt(v) / root2 + e);
    }
}

}  // namespace latentcore
