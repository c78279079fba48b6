// Sparse coding over a fixed dictionary. Batch-OMP (Rubinstein, Zibulevsky &
// Elad 2008): orthogonal matching pursuit run from the Gram matrix G = D D^T
// and each signal's correlations D x alone, with a progressive Cholesky
// factor of G restricted to the chosen atoms, so a signal costs O(k * n_atoms)
// after one GEMM for all signals.
#pragma once

#include "latentcore/common.hpp"

namespace latentcore {

// The signals a coder reads: each one's correlations D x with the atoms and
// its squared norm. Either given (correlations (n, n_atoms), norms_sq (n) or
// null when unused), or computed from x (n, n_features) and the dictionary
// (n_atoms, n_features) a block of signals at a time: each thread runs one
// single-threaded SGEMM into a buffer that stays in cache, so the
// (n, n_atoms) matrix is never held and no BLAS thread pool competes with
// the coder's threads (the caller turns BLAS threading off).
struct SparseSignals {
    size_type n = 0;
    int n_atoms = 0;
    int n_features = 0;
    const float* correlations = nullptr;
    const float* norms_sq = nullptr;
    const float* x = nullptr;
    const float* dictionary = nullptr;
    Sgemm sgemm = nullptr;
};

// Every kernel here runs its parallel work through ParallelWork
// (latentcore/parallel.hpp): an exception of any thread (std::bad_alloc
// included) is rethrown after the parallel region, and Ctrl-C (the installed
// stop check) ends the call with Interrupted within about 50 ms of work per
// thread, outputs then partly written.

// gram (n_atoms, n_atoms) float32 row-major, unit diagonal: its rows are read
// once per atom chosen, from memory once the matrix outgrows the caches, and
// float32 halves that (the Cholesky factor is double; entries rounded to
// float32, or summed by SGEMM, move the codes by about 1e-6 of their size).
// Signal i picks at most
// omp_capacity(max_nonzero, n_features) atoms and stops early when its
// squared residual falls to tol (tol < 0: never; the norms are then not
// needed) or when the next atom is a linear combination of the chosen ones.
// positive: atoms enter only on a positive correlation and the coefficients
// are the non-negative least squares ones on the support (atoms pushed to
// zero leave it). Outputs, row i (row stride max_nonzero):
// support[i, :count[i]] the atoms, coefs[i, :count[i]] their least-squares
// coefficients. Scratch per thread: n_atoms + capacity^2 doubles.
//
// gram null: the same codes (up to float rounding) without a Gram matrix,
// for dictionaries whose n_atoms^2 would not fit or not pay off. Each thread
// codes a block of signals in lockstep: every iteration, each signal takes
// its atom and forms its residual x - D_S gamma, and one SGEMM gives all
// their residuals' correlations with the atoms (n_atoms * n_features
// multiply-adds per signal and atom chosen); the Cholesky factor's entries
// are dot products of atoms in double. The blocks depend on the number of
// signals alone, so the codes do not depend on the thread count. Needs x,
// the dictionary and sgemm;
// scratch per thread: block * (9 n_atoms + 8 capacity^2) bytes or so, the
// block at most 256 signals and 128 MiB.
void batch_omp(const SparseSignals& signals, const float* gram, int max_nonzero, double tol, bool positive,
               index_t* support, float* coefs, index_t* count, int n_threads);

// LASSO codes by coordinate descent on the Gram matrix (covariance updates):
// signal i's code c minimizes ||x_i - D^T c||^2 / (2 n_features) + alpha |c|_1
// (scikit-learn's Lasso objective with D^T as its design matrix), or with
// c >= 0 when positive. codes (n, n_atoms) row-major hold the starting point
// (warm start; zeros for none) and receive the result. A signal stops when
// its duality gap is at most tol * ||x_i||^2 / n_features, or after
// max_iter sweeps. Returns the largest number of sweeps any signal used.
int lasso_cd(const SparseSignals& signals, const double* gram, double alpha, bool positive, double tol,
             int max_iter, float* codes, int n_threads);

// LASSO codes by homotopy (LARS with the lasso modification) on the Gram
// matrix: each signal's solution path is followed exactly from the alpha
// where every code is zero down to the last alpha of the decreasing grid
// alphas[0 .. n_alphas) (scikit-learn's scaling, as lasso_cd), and its code
// is read off the path at every grid alpha, the path being linear between
// knots. Each step costs O(k n_atoms) for k active atoms. At most max_active
// atoms are active at once (the order of the Cholesky factor; min(n_atoms,
// n_features) holds any LASSO solution in general position). Row i *
// n_alphas + g of support / values (row stride max_active) receives signal
// i's code at alphas[g], count[i * n_alphas + g] atoms (coefficients that
// are zero at a knot are listed with value 0); -1 when the path needed more
// than max_steps knots to get there (the caller solves that point another
// way). The Gram matrix is float32 here: reading its rows is the kernel's
// main cost, and its rounding moves the codes by about 1e-6 of their size
// times the active atoms' condition number (the objective, flat at the
// optimum, by far less); lasso_knots, for single exact paths, reads float64.
void lasso_homotopy(const SparseSignals& signals, const float* gram, const double* alphas, int n_alphas,
                    bool positive, int max_active, int max_steps, index_t* support, float* values, index_t* count,
                    int n_threads);

// One signal's whole LASSO path from its correlations corr = D x (n_atoms):
// every knot down to alpha_min (the path is cut there, as scikit-learn's
// lars_path does), or its first `capacity` - 1 knots when it has more (the
// path then stops, as lars_path at max_iter). Knot t: knot_alphas[t]
// (scaled as alpha), knot_count[t] active atoms in knot_support[t *
// max_active ..] with coefficients knot_values[t * max_active ..]. Returns
// the number of knots.
int lasso_knots(const double* corr, const double* gram, int n_atoms, int n_features, bool positive,
                double alpha_min, int max_active, int capacity, double* knot_alphas, index_t* knot_support,
                double* knot_values, index_t* knot_count);

// The most atoms OMP can select: min(max_nonzero, n_features) (at least 1),
// since beyond the signal's dimension the next atom is always dependent.
int omp_capacity(int max_nonzero, int n_features);

// Per signal, the k atoms of largest |correlation| D x (positive: of largest
// correlation, the values then clipped at 0), in decreasing order of the
// score, ties to the smaller atom; values (n, k) are the signed correlations.
// 1 <= k <= n_atoms. A slot no finite correlation fills is index -1, value 0.
void topk_correlations(const SparseSignals& signals, int k, bool positive, index_t* index, float* values,
                       int n_threads);

}  // namespace latentcore

namespace latentcore {

// One sweep of block coordinate descent on a dictionary (Mairal, Bach, Ponce
// & Sapiro 2010, Algorithm 2), from the running statistics A = sum c c^T
// (n_atoms, n_atoms) and B = sum c x^T (n_atoms, n_features), both row-major
// in double: atom j becomes (B[j] - A[j] D) / A[j, j] + D[j], rescaled to
// unit norm, in order, each update seeing the ones before it. Atoms with
// A[j, j] <= min_usage (used by no code yet) are left as they are and listed
// in unused[0 .. return value).
int update_dictionary(const double* A, const double* B, float* dictionary, int n_atoms, int n_features,
                      double min_usage, index_t* unused, int n_threads);

}  // namespace latentcore
