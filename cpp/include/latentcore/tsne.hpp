// t-SNE kernels (FIt-SNE: Linderman et al. 2019): perplexity calibration,
// attractive forces over the sparse affinities, and the polynomial
// interpolation that moves point charges onto an equispaced grid and grid
// potentials back to the points; the grid convolution itself is an FFT done by
// the caller. Embeddings are row-major (n, dim) doubles, dim in {1, 2, 3}.
//
// Every kernel runs its threads through ParallelWork: Ctrl-C ends it with
// Interrupted, and an exception of any thread (std::bad_alloc, the
// std::invalid_argument of a bad input below) is rethrown after the region.
#pragma once

#include <vector>

#include "latentcore/common.hpp"
#include "latentcore/interp.hpp"

namespace latentcore {

// Row i of `sq_distances` (n, k) holds squared distances to i's k neighbours;
// writes p_{j|i} = exp(-beta_i d_ij) / sum, with beta_i found by bisection so
// that the row's entropy equals log(perplexity) within `tol` (nats).
// Several perplexities (multiscale) average their rows. A squared distance
// that is NaN, infinite or negative throws std::invalid_argument.
void perplexity_affinities(const float* sq_distances, size_type n, int k,
                           const double* perplexities, int n_perplexities, double tol,
                           double* conditional, int n_threads);

// The joint affinities P = (P_{j|i} + P_{i|j}) / 2n of k-NN conditionals
// (indices and values (n, k), every index in [0, n)): a symmetric CSR matrix
// with sorted rows, summing to one. A neighbour a row lists more than once
// adds its conditionals into one entry (every column appears once per row).
CsrBuffers<double> symmetrize_affinities(const index_t* neighbors, const double* conditional, size_type n, int k,
                          int n_threads);

// The t-SNE kernel with `dof` degrees of freedom (Kobak et al. 2019):
// w(d^2) = (1 + d^2 / dof)^-dof; dof = 1 is the Cauchy kernel of t-SNE.
//
// forces[i] = exaggeration * sum_j p_ij w_ij^(1/dof) (y_i - y_j), the
// attractive part of the KL gradient. When kl_terms is not null it receives,
// per row, sum_j p_ij log(p_ij / w_ij) (the KL divergence less log Z).
// P is square, P.n_rows = the rows of Y, and its indptr runs monotonically
// from 0 (the caller checks); a column outside [0, n_rows) throws
// std::invalid_argument, and Y is never read outside its rows.
// Weights in float32 (what t-SNE holds: half the memory traffic) or float64.
void attractive_forces(const CsrGraph<float>& P, const double* Y, int dim, double dof,
                       double exaggeration, double* forces, double* kl_terms, int n_threads);
void attractive_forces(const CsrGraph<double>& P, const double* Y, int dim, double dof,
                       double exaggeration, double* forces, double* kl_terms, int n_threads);

// The direct O(n m) sums: for each of m points, repulsion[i] = sum_j
// w_ij^(1 + 1/dof) (y_i - s_j) and w_sums[i] = sum_j w_ij over the n sources.
// With same_set (points == sources) a point skips itself: then the KL
// gradient is attractive - repulsion / sum(w_sums), the O(n^2) reference.
void repulsion_from(const double* sources, size_type n, const double* points, size_type m, int dim,
                    double dof, bool same_set, double* repulsion, double* w_sums, int n_threads);

// The interpolation grid (InterpGrid) and its Lagrange weights are
// latentcore/interp.hpp's, shared with the CUDA twins.

// grid[c, node] = sum over points i in node's box of charges[i, c] times the
// Lagrange weight of node at y_i; deterministic for any thread count.
void scatter_charges(const InterpGrid& grid, const double* Y, size_type n, const double* charges,
                     int n_charges, double* values, int n_threads);

// potentials[i, c] = the Lagrange interpolation at y_i of grid[c, .] from the
// nodes of y_i's box.
void gather_potentials(const InterpGrid& grid, const double* Y, size_type n, const double* values,
                       int n_charges, double* potentials, int n_threads);

// One step of gradient descent with momentum and per-coordinate gains
// (delta-bar-delta, as openTSNE and FIt-SNE): gains grow by 0.2 where the
// gradient turned against the last update, shrink by 0.8 (+ min_gain) where it
// kept its sign; update = momentum * update - learning_rate * gains * gradient;
// Y += update; then, with recenter, Y is moved back onto the origin (not when
// new points are placed into a fixed map).
void gradient_step(double* Y, size_type n, int dim, const double* gradient, double* update,
                   double* gains, double learning_rate, double momentum, double min_gain,
                   bool recenter, int n_threads);

}  // namespace latentcore
