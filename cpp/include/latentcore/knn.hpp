// Exact k-nearest neighbours, blocked: each thread takes a tile of (query
// block, data block) pairs, computes its inner products with a BLAS SGEMM and
// folds them into running top-k selections; memory stays O(threads * block^2)
// besides the output, never O(n^2). Without separate queries the problem is
// symmetric and only tiles on or above the diagonal are computed: each updates
// its rows' and its columns' selections.
#pragma once

#include "latentcore/common.hpp"

namespace latentcore {

struct KnnProblem {
    const float* data;     // (n, dim) row-major
    size_type n;
    const float* queries;  // (m, dim) row-major; null: all pairs among data
    size_type m;
    size_type dim;
    int k;
    Metric metric;
    bool exclude_self;      // all-pairs only: a point is not its own neighbour
    const float* center;    // (dim) subtracted before euclidean ranking, against
                            // cancellation in |a|^2 + |b|^2 - 2ab; may be null
};

// Candidates ranked per point for a final k: float32 ranking scores carry an
// error of about 1e-7 |a| |b|, which can swap points whose distances differ by
// less than that; re-ranking a few more than k exactly puts the true k first.
int candidates_per_point(int k, size_type available);

// The power of two the rows are scaled by before the ranking GEMM, given the
// largest |value| of data, queries and center: 1 for ordinary data; for
// values near float's limits (1e19 and up, or below 1e-15), the scale that
// keeps every ranking score finite and normal, so no candidate is lost to an
// overflowed (inf or NaN) score. Exact, so the ranking is unchanged.
double ranking_scale(double max_abs, size_type dim);

// Writes the k nearest neighbours of each query (m, k): indices and exact
// distances, ascending, ties broken by the smaller index. A few more than k
// candidates are ranked by float32 inner products, then re-ranked exactly.
// Stops early through ParallelWork (Ctrl-C: throws Interrupted).
void exact_knn(const KnnProblem& problem, Sgemm sgemm, size_type block, int n_threads, index_t* indices,
               float* distances);

}  // namespace latentcore
