// CUDA TopK sparse autoencoder kernels, the twins of
// cpp/include/latentcore/sae.hpp: the same codes ((batch, k) rows of latent
// index and value, index -1 padding a row), the same arguments with `stream`
// in place of n_threads, and the same results up to float rounding. Behind
// plain pointers so that no CUDA header leaks into the bindings. Every array
// is a device pointer, row-major; `stream` is a cudaStream_t as an integer
// (cupy's current stream) and every call is asynchronous on it.
//
// Latent ids are not range-checked by the CUDA binding (that would need a
// device-to-host copy of the codes; Python validates them): here an entry
// whose index lies outside [0, n_latents) is skipped like the -1 padding, so
// no call reads or writes outside its arrays. For codes that pass the CPU
// binding's checks nothing changes. Empty inputs (batch, k, n_features or n
// zero) launch nothing, except that sparse_decode always fills out: a row
// without entries (k == 0, all padded, or no latents) is the bias, or zeros,
// as on the CPU.
#pragma once

#include <cstdint>

namespace latentcore::cuda {

// out[i] = bias + sum_j value[i, j] * decoder[index[i, j]], as
// latentcore::sparse_decode; decoder (n_latents, n_features), bias
// (n_features) or null for zero, out (batch, n_features). Unlike the CPU
// function it takes n_latents, to skip ids outside the decoder (see above).
// One block per row (grid-stride beyond the grid), threads striding over
// features; each output element sums its row's entries in the CPU's order
// (only fused multiply-adds differ), and out is written once, not accumulated.
void sparse_decode(const std::int32_t* index, const float* value, std::int64_t batch, int k,
                   const float* decoder, int n_latents, int n_features, const float* bias, float* out,
                   std::uintptr_t stream);

// latentcore::sparse_decode_backward: for every entry (i, l) with value != 0,
// with dpre = grad_out[i] . decoder[l] where value > 0 and 0 elsewhere, adds
//   grad_decoder[l] += value * grad_out[i]
//   grad_encoder[l] += dpre * x_centered[i]
//   grad_encoder_bias[l] += dpre
// into the gradients (not zeroed here). One warp per entry, fused: the dot by
// a shuffle reduction, then the lanes stride over features adding with
// atomicAdd, so no dpre buffer is needed. Atomics land in whatever order the
// warps run, so unlike the CPU (which gathers entries by latent and sums in
// batch order) the summation order, hence the last bits, may vary between
// runs; popular latents serialize their atomics, which costs time, not
// correctness.
void sparse_decode_backward(const std::int32_t* index, const float* value, std::int64_t batch, int k,
                            const float* grad_out, const float* x_centered, const float* decoder,
                            int n_latents, int n_features, float* grad_decoder, float* grad_encoder,
                            float* grad_encoder_bias, std::uintptr_t stream);

// latentcore::decode_error: per row i, recon = bias + sum_j value[i, j] *
// decoder[index[i, j]] (bias null for zero), error[i] = recon - target[i],
// grad_out[i] = error[i] * scale (in double, rounded once to float) and
// sq_error[i] = the sum of error[i]^2 in double. One block per row, as
// sparse_decode (each feature adds its row's entries in j order), with a
// block reduction for sq_error (its order differs from the CPU's).
void decode_error(const std::int32_t* index, const float* value, std::int64_t batch, int k, const float* decoder,
                  int n_latents, int n_features, const float* bias, const float* target, double scale,
                  float* error, float* grad_out, double* sq_error, std::uintptr_t stream);

// Parameter, first moment and second moment of one tensor, device pointers.
struct AdamSlot {
    float* param;
    float* first_moment;
    float* second_moment;
};

// latentcore::update_latents: the gradients of every latent from the entries
// (index, value with grad_out) and the AuxK entries (aux_index, aux_value
// with aux_grad_out), as sparse_decode_backward's kernel sums them (atomics,
// in scratch memory), grad_pre_bias = sum_l grad_encoder_bias[l] * encoder[l]
// (the encoder before the update), then one block per latent: the decoder
// row's tangent projection, AdamStep on the decoder row, the encoder row and
// the encoder bias, and the decoder row renormalized, its norm in norms[l].
// Sums land in whatever order the atomics run: equal to the CPU's to float
// rounding, not bit for bit.
void update_latents(const std::int32_t* index, const float* value, const float* grad_out, int k,
                    const std::int32_t* aux_index, const float* aux_value, const float* aux_grad_out, int k_aux,
                    const float* x_centered, std::int64_t batch, int n_latents, int n_features, AdamSlot encoder,
                    AdamSlot encoder_bias, AdamSlot decoder, float* grad_pre_bias, float* norms,
                    double learning_rate, double beta1, double beta2, double eps, long long step,
                    std::uintptr_t stream);

// latentcore::adam_update over n parameters in place: latentcore::AdamStep
// (latentcore/adam.hpp), the CPU's code, elementwise. step counts from 1.
void adam_update(float* param, const float* grad, float* first_moment, float* second_moment,
                 std::int64_t n, double learning_rate, double beta1, double beta2, double eps,
                 long long step, std::uintptr_t stream);

}  // namespace latentcore::cuda
