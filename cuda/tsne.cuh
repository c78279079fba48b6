// CUDA t-SNE kernels, the twins of cpp/include/latentcore/tsne.hpp: the same
// math, grid layout and Lagrange weights, behind plain pointers so that no
// CUDA header leaks into the bindings. Embeddings are row-major (n, dim)
// doubles with dim in {1, 2, 3}; every array is a device pointer; `stream` is
// a cudaStream_t as an integer (cupy's current stream) and every call is
// asynchronous on it. Every result is deterministic: no floating-point
// atomics, and every sum has an order fixed by the input alone.
#pragma once

#include <cstdint>

#include "latentcore/interp.hpp"

namespace latentcore::cuda {

// forces[i] = exaggeration * sum_j p_ij q_ij (y_i - y_j), q = 1 / (1 + d^2/dof),
// over the CSR rows of P (device pointers; P.n_rows = n, the rows of Y, at
// most 2^31 - 1; nnz = indptr[n] entries); when kl_terms is not null
// it receives per row sum_j p_ij (log p_ij + dof log1p(d^2/dof)), p_ij > 0.
// One warp per row. Entries outside [0, nnz) and columns outside [0, n) are
// skipped, so bad structure cannot read out of bounds (Python validates P).
void tsne_attractive_forces(const CsrGraph<float>& P, std::int64_t nnz, const double* Y, int dim, double dof,
                            double exaggeration, double* forces, double* kl_terms, std::uintptr_t stream);
void tsne_attractive_forces(const CsrGraph<double>& P, std::int64_t nnz, const double* Y, int dim, double dof,
                            double exaggeration, double* forces, double* kl_terms, std::uintptr_t stream);

// repulsion[i] = sum_{j != i} w_ij q_ij (y_i - y_j), z_terms[i] = sum_{j != i} w_ij,
// w = q^dof: the O(n^2) reference, one thread per i summing j in index order.
void tsne_exact_repulsion(const double* Y, std::int64_t n, int dim, double dof, double* repulsion,
                          double* z_terms, std::uintptr_t stream);

// The interpolation grid is latentcore::InterpGrid (latentcore/interp.hpp),
// the C++ kernels' grid and Lagrange weights, shared code: n_interp in [2, 16].

// values[c, node] = sum over the points i of node's box, in index order, of
// the Lagrange weight of node at y_i times charges[i, c]. Points are sorted by
// box (a stable radix sort) and one block owns each box's nodes: the same
// sums in the same order as the C++ kernel, bit for bit the same every run.
// Works in stream-ordered scratch memory (cudaMallocAsync), freed on return.
void tsne_scatter_charges(const InterpGrid& grid, const double* Y, std::int64_t n, const double* charges,
                          int n_charges, double* values, std::uintptr_t stream);

// potentials[i, c] = the interpolation at y_i of values[c, .] from the nodes
// of y_i's box; one thread per point.
void tsne_gather_potentials(const InterpGrid& grid, const double* Y, std::int64_t n,
                            const double* values, int n_charges, double* potentials,
                            std::uintptr_t stream);

// One step of gradient descent with momentum and gains, elementwise by
// latentcore::descend (latentcore/tsne_math.hpp, the C++ kernel's code); then, with recenter, Y moved back onto the origin by its mean, a
// fixed-shape tree reduction (deterministic) in stream-ordered scratch memory.
void tsne_gradient_step(double* Y, std::int64_t n, int dim, const double* gradient,
                        double* update, double* gains, double learning_rate, double momentum,
                        double min_gain, bool recenter, std::uintptr_t stream);

}  // namespace latentcore::cuda
