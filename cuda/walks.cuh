// CUDA random walks, the twin of cpp/include/latentcore/walks.hpp: the same
// random streams (latentcore/random.hpp) and the same draws in the same
// order, so a seed gives bit-identical walks on the CPU and the GPU. Behind
// plain pointers so that no CUDA header leaks into the bindings. Every array
// is a device pointer; `stream` is a cudaStream_t as an integer (cupy's
// current stream) and the call is asynchronous on it.
#pragma once

#include <cstdint>

#include "latentcore/common.hpp"

namespace latentcore::cuda {

// Walk w starts at starts[w] and takes walk_length - 1 steps, drawing from
// Rng(seed, first_walk + w); walks (n_walks, walk_length) row-major receives
// the nodes, padded with -1 after a node without out-edges. The graph is CSR
// (graph.n_rows nodes, nnz = indptr[n_rows] edges, rows sorted by target, as
// latentcore.walks.as_csr_graph makes them) with the per-row alias tables of
// latentcore::build_alias_tables (keep, alias: one entry per edge), the edge
// weights, each row's total weight (totals, double, one per node) and its
// largest weight (maxima, float, one per node). p = q
// = 1 is DeepWalk; otherwise node2vec's step (latentcore::node2vec_step,
// the CPU's code): exact, at a cost bounded for any p and q in
// [1e-100, 1e100] (std::invalid_argument outside).
//
// One thread per walk (64-thread blocks, grid-stride beyond 2^31 - 1 blocks);
// chunks of at least ~2^17 walks keep every SM busy. The kernel never reads outside the arrays, whatever
// their contents: row bounds are clamped to [0, nnz], and a start, edge
// target or alias offset out of range acts as a sink (the walk ends there).
// For tables that pass the CPU binding's checks nothing changes.
void sample_walks(const CsrGraph<float>& graph, std::int64_t nnz, const float* keep, const std::int32_t* alias,
                  const double* totals, const float* maxima, const std::int32_t* starts, std::int64_t n_walks,
                  int walk_length, double p, double q, std::uint64_t seed, std::uint64_t first_walk,
                  std::int32_t* walks, std::uintptr_t stream);

}  // namespace latentcore::cuda
