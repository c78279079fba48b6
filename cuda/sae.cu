#include "sae.cuh"

#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>

#include "common.cuh"
#include "latentcore/adam.hpp"

namespace latentcore::cuda {

namespace {

constexpr int kDecodeMaxThreads = 256;     // also the codes a decode block stages at once
constexpr int kBackwardThreads = 256;      // 8 warps, one entry each
constexpr int kAdamThreads = 256;
// Every kernel here is grid-stride beyond blocks_for's kMaxBlocks.

// One block per row. The row's codes are staged in shared memory a chunk at
// a time (an id out of range, or a zero value, becomes -1 there, so the inner
// loop has one test); each thread keeps one output feature in a register and
// adds the entries in j order, as the CPU does, then stores it once.
__global__ void decode_kernel(const std::int32_t* index, const float* value, std::int64_t batch, int k,
                              const float* decoder, int n_latents, int n_features, const float* bias,
                              float* out) {
    __shared__ std::int32_t chunk_latent[kDecodeMaxThreads];
    __shared__ float chunk_value[kDecodeMaxThreads];
    const int tid = static_cast<int>(threadIdx.x);
    const std::int64_t threads = blockDim.x;
    for (std::int64_t i = blockIdx.x; i < batch; i += gridDim.x) {
        const std::int32_t* row_index = index + i * k;
        const float* row_value = value + i * k;
        float* row = out + i * n_features;
        // Loop bounds are block-uniform, so every thread reaches each __syncthreads.
        for (std::int64_t f0 = 0; f0 < n_features; f0 += threads) {
            const std::int64_t f = f0 + tid;
            const bool active = f < n_features;
            float acc = active && bias ? bias[f] : 0.0f;
            for (std::int64_t j0 = 0; j0 < k; j0 += threads) {
                const int count = static_cast<int>(k - j0 < threads ? k - j0 : threads);
                __syncthreads();  // the previous chunk is read by every thread
                if (tid < count) {
                    std::int32_t latent = row_index[j0 + tid];
                    const float v = row_value[j0 + tid];
                    if (latent < 0 || latent >= n_latents || v == 0.0f) latent = -1;
                    chunk_latent[tid] = latent;
                    chunk_value[tid] = v;
                }
                __syncthreads();
                if (!active) continue;
                for (int t = 0; t < count; ++t) {
                    const std::int32_t latent = chunk_latent[t];
                    if (latent < 0) continue;
                    acc += chunk_value[t] * decoder[static_cast<std::int64_t>(latent) * n_features + f];
                }
            }
            if (active) row[f] = acc;
        }
    }
}

// One warp per entry (grid-stride over entries): the dot product by lanes
// striding over features and a butterfly, then the same lanes add the
// entry's three contributions with atomicAdd (no return value: fire-and-
// forget reductions). Every branch below is warp-uniform.
__global__ void backward_kernel(const std::int32_t* index, const float* value, std::int64_t entries, int k,
                                const float* grad_out, const float* x_centered, const float* decoder,
                                int n_latents, int n_features, float* grad_decoder, float* grad_encoder,
                                float* grad_encoder_bias) {
    const int lane = static_cast<int>(threadIdx.x % kWarp);
    const std::int64_t warps_per_block = blockDim.x / kWarp;
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * warps_per_block;
    for (std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * warps_per_block + threadIdx.x / kWarp;
         e < entries; e += stride) {
        const std::int32_t latent = index[e];
        const float v = value[e];
        if (latent < 0 || latent >= n_latents || v == 0.0f) continue;
        const std::int64_t row = (e / k) * n_features;
        const std::int64_t atom = static_cast<std::int64_t>(latent) * n_features;
        const float* g = grad_out + row;
        // The ReLU passes no gradient where value <= 0 (written so that a NaN
        // value, like on the CPU, still computes its dot).
        float dpre = 0.0f;
        if (!(v <= 0.0f)) {
            float partial = 0.0f;
            for (std::int64_t f = lane; f < n_features; f += kWarp) partial += g[f] * decoder[atom + f];
            dpre = warp_sum(partial);
        }
        const float* x = x_centered + row;
        float* g_dec = grad_decoder + atom;
        float* g_enc = grad_encoder + atom;
        for (std::int64_t f = lane; f < n_features; f += kWarp) {
            atomicAdd(g_dec + f, v * g[f]);
            if (dpre != 0.0f) atomicAdd(g_enc + f, dpre * x[f]);
        }
        if (lane == 0 && dpre != 0.0f) atomicAdd(grad_encoder_bias + latent, dpre);
    }
}

__global__ void adam_kernel(float* param, const float* grad, float* first_moment, float* second_moment,
                            std::int64_t n, AdamStep adam) {
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += stride)
        adam.apply(param[i], grad[i], first_moment[i], second_moment[i]);
}

}  // namespace

void sparse_decode(const std::int32_t* index, const float* value, std::int64_t batch, int k,
                   const float* decoder, int n_latents, int n_features, const float* bias, float* out,
                   std::uintptr_t stream) {
    require(batch >= 0 && k >= 0 && n_latents >= 0 && n_features >= 0, "sparse_decode: negative size");
    if (batch == 0 || n_features == 0) return;
    // Narrow blocks for narrow rows; whole warps, so every lane of a warp has work or none.
    const int threads =
        static_cast<int>(std::min<std::int64_t>(kDecodeMaxThreads, (std::int64_t{n_features} + kWarp - 1) / kWarp * kWarp));
    decode_kernel<<<blocks_for(batch, 1), threads, 0, as_stream(stream)>>>(index, value, batch, k, decoder,
                                                                              n_latents, n_features, bias, out);
    check_launch("sae_sparse_decode launch");
}

void sparse_decode_backward(const std::int32_t* index, const float* value, std::int64_t batch, int k,
                            const float* grad_out, const float* x_centered, const float* decoder,
                            int n_latents, int n_features, float* grad_decoder, float* grad_encoder,
                            float* grad_encoder_bias, std::uintptr_t stream) {
    require(batch >= 0 && k >= 0 && n_latents >= 0 && n_features >= 0,
            "sparse_decode_backward: negative size");
    // No features: every dot is 0, so nothing is added anywhere.
    const std::int64_t entries = batch * k;
    if (entries == 0 || n_latents == 0 || n_features == 0) return;
    backward_kernel<<<blocks_for(entries, kBackwardThreads / kWarp), kBackwardThreads, 0, as_stream(stream)>>>(
        index, value, entries, k, grad_out, x_centered, decoder, n_latents, n_features, grad_decoder,
        grad_encoder, grad_encoder_bias);
    check_launch("sae_sparse_decode_backward launch");
}

void adam_update(float* param, const float* grad, float* first_moment, float* second_moment,
                 std::int64_t n, double learning_rate, double beta1, double beta2, double eps,
                 long long step, std::uintptr_t stream) {
    require(n >= 0, "adam_update: negative size");
    if (n == 0) return;
    adam_kernel<<<blocks_for(n, kAdamThreads), kAdamThreads, 0, as_stream(stream)>>>(
        param, grad, first_moment, second_moment, n, AdamStep::make(learning_rate, beta1, beta2, eps, step));
    check_launch("sae_adam_update launch");
}

}  // namespace latentcore::cuda
