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

// One output feature f of a row's decoding, bias[f] + sum_j value[j] *
// decoder[index[j], f], the row's codes staged in shared memory a chunk at a
// time (an id out of range, or a zero value, becomes -1 there, so the inner
// loop has one test), added in j order as the CPU does. Every thread of the
// block calls it (the loop bounds are block-uniform, so each reaches every
// __syncthreads), `active` or not.
__device__ float decode_feature(const std::int32_t* row_index, const float* row_value, std::int64_t k,
                                const float* decoder, int n_latents, int n_features, const float* bias,
                                std::int64_t f, bool active, int tid, std::int64_t threads,
                                std::int32_t* chunk_latent, float* chunk_value) {
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
    return acc;
}

// One block per row; each thread keeps one output feature (decode_feature)
// and stores it once.
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
            const float acc = decode_feature(row_index, row_value, k, decoder, n_latents, n_features, bias, f,
                                             active, tid, threads, chunk_latent, chunk_value);
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

// A block's sum of v (every thread of the block calls it; blockDim.x a
// multiple of the warp, at most kMaxThreads); the result in every thread.
template <typename T, int kMaxThreads>
__device__ T block_sum(T v) {
    __shared__ T partial[kMaxThreads / kWarp];
    const int lane = static_cast<int>(threadIdx.x % kWarp), warp = static_cast<int>(threadIdx.x / kWarp);
    const int warps = static_cast<int>(blockDim.x / kWarp);
    v = warp_sum(v);
    __syncthreads();  // partial may still be read by a previous call
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    T total = 0;
    for (int w = 0; w < warps; ++w) total += partial[w];
    return total;
}

constexpr int kRowThreads = 256;

// decode_kernel's reconstruction, then the error, its gradient and its
// squared norm per row.
__global__ void decode_error_kernel(const std::int32_t* index, const float* value, std::int64_t batch, int k,
                                    const float* decoder, int n_latents, int n_features, const float* bias,
                                    const float* target, double scale, float* error, float* grad_out,
                                    double* sq_error) {
    __shared__ std::int32_t chunk_latent[kRowThreads];
    __shared__ float chunk_value[kRowThreads];
    const int tid = static_cast<int>(threadIdx.x);
    const std::int64_t threads = blockDim.x;
    for (std::int64_t i = blockIdx.x; i < batch; i += gridDim.x) {
        const std::int32_t* row_index = index + i * k;
        const float* row_value = value + i * k;
        double sq = 0.0;
        for (std::int64_t f0 = 0; f0 < n_features; f0 += threads) {
            const std::int64_t f = f0 + tid;
            const bool active = f < n_features;
            const float acc = decode_feature(row_index, row_value, k, decoder, n_latents, n_features, bias, f,
                                             active, tid, threads, chunk_latent, chunk_value);
            if (active) {
                const std::int64_t at = i * n_features + f;
                const float e = acc - target[at];
                error[at] = e;
                grad_out[at] = static_cast<float>(static_cast<double>(e) * scale);
                sq += static_cast<double>(e) * e;
            }
        }
        sq = block_sum<double, kRowThreads>(sq);
        if (tid == 0) sq_error[i] = sq;
    }
}

// out[f] += sum over latents l of this block's chunk of weight[l] * rows[l, f]
// (out zeroed before): the pre-encoder bias's share of the encoder bias's
// gradient. Threads over features, blocks over (feature tiles, latent chunks).
constexpr int kPreBiasLatents = 256;
__global__ void weighted_row_sum_kernel(const float* weight, const float* rows, int n_latents, int n_features,
                                        float* out) {
    const std::int64_t tiles = (static_cast<std::int64_t>(n_features) + blockDim.x - 1) / blockDim.x;
    const std::int64_t chunks = (static_cast<std::int64_t>(n_latents) + kPreBiasLatents - 1) / kPreBiasLatents;
    for (std::int64_t b = blockIdx.x; b < tiles * chunks; b += gridDim.x) {
        const std::int64_t f = (b % tiles) * blockDim.x + threadIdx.x;
        const std::int64_t first = (b / tiles) * kPreBiasLatents;
        const std::int64_t last = first + kPreBiasLatents < n_latents ? first + kPreBiasLatents : n_latents;
        if (f >= n_features) continue;
        float sum = 0.0f;
        for (std::int64_t l = first; l < last; ++l) {
            const float w = weight[l];
            if (w != 0.0f) sum += w * rows[l * n_features + f];
        }
        if (sum != 0.0f) atomicAdd(out + f, sum);
    }
}

// One block per latent: the tangent projection of its decoder gradient, Adam
// on the decoder row, its renormalization, Adam on the encoder row and bias.
__global__ void update_rows_kernel(const float* grad_decoder, const float* grad_encoder,
                                   const float* grad_encoder_bias, int n_latents, int n_features, AdamSlot encoder,
                                   AdamSlot encoder_bias, AdamSlot decoder, float* norms, AdamStep adam) {
    const int tid = static_cast<int>(threadIdx.x);
    for (std::int64_t l = blockIdx.x; l < n_latents; l += gridDim.x) {
        const std::int64_t offset = l * n_features;
        const float* g_dec = grad_decoder + offset;
        float* dec = decoder.param + offset;
        float partial = 0.0f;
        for (std::int64_t f = tid; f < n_features; f += blockDim.x) partial += g_dec[f] * dec[f];
        const float along = block_sum<float, kRowThreads>(partial);
        partial = 0.0f;
        for (std::int64_t f = tid; f < n_features; f += blockDim.x) {
            const float g = g_dec[f] - along * dec[f];
            adam.apply(dec[f], g, decoder.first_moment[offset + f], decoder.second_moment[offset + f]);
            partial += dec[f] * dec[f];
        }
        const float norm = sqrtf(block_sum<float, kRowThreads>(partial));
        for (std::int64_t f = tid; f < n_features; f += blockDim.x) dec[f] /= norm;
        for (std::int64_t f = tid; f < n_features; f += blockDim.x)
            adam.apply(encoder.param[offset + f], grad_encoder[offset + f], encoder.first_moment[offset + f],
                       encoder.second_moment[offset + f]);
        if (tid == 0) {
            norms[l] = norm;
            adam.apply(encoder_bias.param[l], grad_encoder_bias[l], encoder_bias.first_moment[l],
                       encoder_bias.second_moment[l]);
        }
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

void decode_error(const std::int32_t* index, const float* value, std::int64_t batch, int k, const float* decoder,
                  int n_latents, int n_features, const float* bias, const float* target, double scale,
                  float* error, float* grad_out, double* sq_error, std::uintptr_t stream) {
    require(batch >= 0 && k >= 0 && n_latents >= 0 && n_features >= 0, "decode_error: negative size");
    if (batch == 0) return;
    // Whole warps (block_sum needs them), at least one.
    const std::int64_t warps = std::max<std::int64_t>(1, (std::int64_t{n_features} + kWarp - 1) / kWarp);
    const int threads = static_cast<int>(std::min<std::int64_t>(kRowThreads, warps * kWarp));
    decode_error_kernel<<<blocks_for(batch, 1), threads, 0, as_stream(stream)>>>(
        index, value, batch, k, decoder, n_latents, n_features, bias, target, scale, error, grad_out, sq_error);
    check_launch("sae_decode_error launch");
}

void update_latents(const std::int32_t* index, const float* value, const float* grad_out, int k,
                    const std::int32_t* aux_index, const float* aux_value, const float* aux_grad_out, int k_aux,
                    const float* x_centered, std::int64_t batch, int n_latents, int n_features, AdamSlot encoder,
                    AdamSlot encoder_bias, AdamSlot decoder, float* grad_pre_bias, float* norms,
                    double learning_rate, double beta1, double beta2, double eps, long long step,
                    std::uintptr_t stream) {
    require(batch >= 0 && k >= 0 && k_aux >= 0 && n_latents >= 0 && n_features >= 0,
            "update_latents: negative size");
    const cudaStream_t s = as_stream(stream);
    if (n_features > 0) check(cudaMemsetAsync(grad_pre_bias, 0, sizeof(float) * n_features, s), "memset");
    if (n_latents == 0) return;
    const std::size_t matrix = sizeof(float) * static_cast<std::size_t>(n_latents) * n_features;
    const std::size_t bias_bytes = sizeof(float) * static_cast<std::size_t>(n_latents);
    Scratch scratch(2 * aligned(matrix) + aligned(bias_bytes), s);
    float* g_dec = scratch.at<float>(0);
    float* g_enc = scratch.at<float>(aligned(matrix));
    float* g_bias = scratch.at<float>(2 * aligned(matrix));
    if (matrix) {
        check(cudaMemsetAsync(g_dec, 0, matrix, s), "memset");
        check(cudaMemsetAsync(g_enc, 0, matrix, s), "memset");
    }
    check(cudaMemsetAsync(g_bias, 0, bias_bytes, s), "memset");
    // The gradients, with the decoder and encoder before their update.
    if (n_features > 0) {
        const std::int64_t entries = batch * k, aux_entries = batch * k_aux;
        if (entries > 0)
            backward_kernel<<<blocks_for(entries, kBackwardThreads / kWarp), kBackwardThreads, 0, s>>>(
                index, value, entries, k, grad_out, x_centered, decoder.param, n_latents, n_features, g_dec, g_enc,
                g_bias);
        if (aux_entries > 0)
            backward_kernel<<<blocks_for(aux_entries, kBackwardThreads / kWarp), kBackwardThreads, 0, s>>>(
                aux_index, aux_value, aux_entries, k_aux, aux_grad_out, x_centered, decoder.param, n_latents,
                n_features, g_dec, g_enc, g_bias);
        check_launch("sae_update_latents gradients launch");
        const std::int64_t tiles = (std::int64_t{n_features} + kRowThreads - 1) / kRowThreads;
        const std::int64_t chunks = (std::int64_t{n_latents} + kPreBiasLatents - 1) / kPreBiasLatents;
        weighted_row_sum_kernel<<<blocks_for(tiles * chunks, 1), kRowThreads, 0, s>>>(
            g_bias, encoder.param, n_latents, n_features, grad_pre_bias);
        check_launch("sae_update_latents pre_bias launch");
    }
    update_rows_kernel<<<blocks_for(n_latents, 1), kRowThreads, 0, s>>>(
        g_dec, g_enc, g_bias, n_latents, n_features, encoder, encoder_bias, decoder, norms,
        AdamStep::make(learning_rate, beta1, beta2, eps, step));
    check_launch("sae_update_latents update launch");
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
