// Sparse coding over a fixed dictionary. Batch-OMP (Rubinstein, Zibulevsky &
// Elad 2008): orthogonal matching pursuit run from the Gram matrix G = D D^T
// and each signal's correlations D x alone, with a progressive Cholesky
// factor of G restricted to the chosen atoms, so a signal costs O(k * n_atoms)
// after one GEMM for all signals.
#pragma once

#include "latentcore/common.hpp"

namespace latentcore {

// correlations (n, n_atoms) row-major: row i is D x_i; gram (n_atoms,
// n_atoms) row-major, unit diagonal. Signal i picks at most max_nonzero atoms
// and stops early when its squared residual falls to tol (tol < 0: never;
// then residual_sq may be null, else it holds each ||x_i||^2) or when the next
// atom is a linear combination of the chosen ones. Outputs, row i:
// support[i, :count[i]] the atoms in the order chosen, coefs[i, :count[i]]
// their least-squares coefficients.
void batch_omp(const float* correlations, const double* gram, size_type n, int n_atoms,
               int max_nonzero, const float* residual_sq, double tol, index_t* support,
               float* coefs, index_t* count, int n_threads);

}  // namespace latentcore
