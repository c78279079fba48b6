// TopK sparse autoencoder kernels (Gao et al. 2024). The encoder's GEMM runs in
// BLAS and its top-k in topk.hpp's selection; what is left is sparse: a
// batch's codes are (batch, k) rows of (latent index, value), index -1 padding
// a row, and the decoder touches only the k chosen rows of its matrix.
#pragma once

#include "latentcore/common.hpp"

namespace latentcore {

// Every kernel here runs its parallel work through ParallelWork
// (latentcore/parallel.hpp): an exception of any thread (std::bad_alloc
// included) is rethrown after the parallel region, and Ctrl-C ends the call
// with Interrupted within a few milliseconds of work per thread, outputs
// then partly written.

// The TopK encoder: the k largest of x W^T + bias for each row of x (n,
// n_features), descending, into out_value / out_index (n, k) (no ReLU:
// the caller keeps the positive ones). weight is (n_latents, n_features).
// Each thread takes a block of rows, computes its pre-activations with one
// single-threaded SGEMM into a buffer that stays in L2 and selects from it at
// once with topk.hpp's selection, so the (n, n_latents) matrix never exists
// and no BLAS thread pool competes with the OpenMP threads. Throws
// std::domain_error when a pre-activation is not finite (finite inputs whose
// products overflow float32, or NaN / infinite weights): a NaN would never
// be selected and an infinity would be kept as a code.
void topk_encode(const float* x, size_type n, int n_features, const float* weight, int n_latents,
                 const float* bias, int k, Sgemm sgemm, float* out_value, index_t* out_index, int n_threads);

// out[i] = bias + sum_j value[i, j] * decoder[index[i, j]]: decoder is
// (n_latents, n_features) row-major, bias (n_features) or null for zero,
// out (batch, n_features).
void sparse_decode(const index_t* index, const float* value, size_type batch, int k, const float* decoder,
                   int n_features, const float* bias, float* out, int n_threads);

// Backward through pre -> ReLU'd top-k -> sparse_decode for one batch, given
// grad_out = dL/d(out) (batch, n_features) and the encoder's input
// x_centered (batch, n_features). With dvalue = grad_out[i] . decoder[l] and
// dpre = dvalue where value > 0, it adds, for every entry (i, l):
//   grad_decoder[l] += value * grad_out[i]
//   grad_encoder[l] += dpre * x_centered[i]
//   grad_encoder_bias[l] += dpre
// Entries are gathered by latent and summed in batch order, so the result is
// the same for any thread count.
void sparse_decode_backward(const index_t* index, const float* value, size_type batch, int k,
                            const float* grad_out, const float* x_centered, const float* decoder,
                            int n_latents, int n_features, float* grad_decoder, float* grad_encoder,
                            float* grad_encoder_bias, int n_threads);

// The decoder's forward pass fused with the loss's gradient, per row i of a
// batch: recon = bias + sum_j value[i, j] * decoder[index[i, j]] (bias
// (n_features) or null for zero), error[i] = recon - target[i],
// sq_error[i] = sum of error[i]^2 (in double) and grad_out[i] = error[i] *
// scale (the product in double, rounded once to float: scale may lie outside
// float's range).
void decode_error(const index_t* index, const float* value, size_type batch, int k, const float* decoder,
                  int n_features, const float* bias, const float* target, double scale, float* error,
                  float* grad_out, double* sq_error, int n_threads);

// Adam's moments and parameters for one tensor, updated in place.
struct AdamSlot {
    float* param;
    float* first_moment;
    float* second_moment;
};

// One training step's backward pass and update of every latent's
// parameters, fused into one pass over the (n_latents, n_features) matrices.
// For each latent l, its gradients from the entries (i, j) with index[i, j]
// == l (and value != 0), in batch order, then those of the AuxK entries
// (aux_index, aux_value, which read aux_grad_out instead of grad_out):
//   dpre = grad_out[i] . decoder[l] where value > 0, else 0 (the ReLU)
//   grad_decoder[l] = sum value * grad_out[i]
//   grad_encoder[l] = sum dpre * x_centered[i]
//   grad_encoder_bias[l] = sum dpre
// (the gradients of sparse_decode_backward); then the decoder row's gradient
// projected on the unit sphere's tangent (grad -= (grad . row) row), Adam on
// the decoder row, the encoder row and the encoder bias (AdamStep, the
// update of adam_update, bias-corrected for `step`), and the decoder row
// renormalized; norms[l] gets the norm it was divided by (not finite or 0:
// the training diverged). A latent without entries takes Adam's step with a
// zero gradient, as a dense Adam does. grad_pre_bias (n_features) gets
// sum_l grad_encoder_bias[l] * encoder[l] with the encoder before the update
// (summed in fixed chunks of latents: the same result for any thread count),
// from which the caller builds the pre-encoder bias's gradient. No
// (n_latents, n_features) gradient is stored: a latent's gradient rows are
// built in a thread's buffer (its decoder row, still in cache, serves both the
// dots and the update) and used at once. A latent is updated whole or not at
// all, so an interrupted call leaves every decoder row unit-norm.
void update_latents(const index_t* index, const float* value, const float* grad_out, int k,
                    const index_t* aux_index, const float* aux_value, const float* aux_grad_out, int k_aux,
                    const float* x_centered, size_type batch, int n_latents, int n_features, AdamSlot encoder,
                    AdamSlot encoder_bias, AdamSlot decoder, float* grad_pre_bias, float* norms,
                    double learning_rate, double beta1, double beta2, double eps, long long step, int n_threads);

// One Adam step (Kingma & Ba 2015) in place over n parameters, with bias
// correction for step (counted from 1).
void adam_update(float* param, const float* grad, float* first_moment, float* second_moment, size_type n,
                 double learning_rate, double beta1, double beta2, double eps, long long step, int n_threads);

}  // namespace latentcore
