// Random walks on a weighted CSR graph: DeepWalk's first-order walks by
// per-node alias tables (O(E) memory) and node2vec's second-order walks by
// rejection on the same tables, with the return step folded out at its
// exact mass and an exact fallback (no per-edge transition tables).
#pragma once

#include <cstdint>

#include "latentcore/common.hpp"

namespace latentcore {

// Walker's alias method over each row's out-edge weights, in edge order:
// an edge e keeps itself with probability keep[e], else jumps to edge
// row_start + alias[e] of the same row. Rows with no edges get nothing. A
// non-empty row whose weights do not add up to a positive finite total
// throws std::invalid_argument (after the parallel region).
void build_alias_tables(const CsrGraph<float>& graph, float* keep, index_t* alias, int n_threads);

// Walk w starts at starts[w] and takes walk_length - 1 steps (walk_length
// counts nodes, the start included); a walk that reaches a node without
// out-edges is padded with -1. Each walk draws from its own random stream,
// derived from (seed, first_walk + w), so a seed gives the same walks for any
// thread count and any split of the walks into calls. p = q = 1 samples
// neighbours by edge weight (DeepWalk); otherwise node2vec's second-order
// step (node2vec_step in latentcore/random.hpp): exactly node2vec's
// distribution, weight times 1/p (return), 1 (stay near the previous node),
// 1/q (move away), at a cost bounded for any p and q (p and q in
// [1e-100, 1e100]: 1/p and 1/q stay finite). keep == nullptr means every
// row's weights are equal: neighbours are then drawn uniformly, with the
// same draws the tables would make; otherwise totals[v] is the sum of v's
// weights (in double) and maxima[v] the largest of them. Polls for
// interrupts (ParallelWork); throws Interrupted when stopped.
void sample_walks(const CsrGraph<float>& graph, const float* keep, const index_t* alias, const double* totals,
                  const float* maxima, const index_t* starts, size_type n_walks, int walk_length, double p, double q,
                  std::uint64_t seed, std::uint64_t first_walk, index_t* walks, int n_threads);

}  // namespace latentcore
