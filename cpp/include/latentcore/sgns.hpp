// Skip-gram with negative sampling (word2vec's SGNS) on node sequences, the
// training half of DeepWalk and node2vec. Hogwild over threads: every thread
// updates the shared vectors without locks; each walk draws its reduced
// windows, subsampling coins and negatives from its own random stream, so
// with one thread a seed gives bit-identical vectors. With several threads
// the updates interleave as the threads happen to run: the vectors differ
// from run to run (not in the last bits only: every update reads vectors
// that others may or may not have changed yet, and the differences grow over
// training), though they are as good.
#pragma once

#include <cstdint>

#include "latentcore/common.hpp"

namespace latentcore {

struct SgnsOptions {
    int window = 10;       // largest distance between a node and its context
    int negative = 5;      // negatives per centre node, shared by its contexts
    double alpha = 0.025;  // learning rate at the start, decaying linearly ...
    double min_alpha = 1e-4;  // ... to this at the end of training
    std::uint64_t seed = 0;
};

// Trains on walks (n_walks, walk_length), row-major, -1 marking padding.
// The vectors are (n_nodes, dim) row-major: `input` (the embedding) and
// `output` (the context vectors). The noise distribution is an alias table
// over the nodes (noise_keep, noise_alias); keep_probability (n_nodes, or
// nullptr for none) drops frequent nodes before windowing. Walk w is the
// (first_walk + w)-th of total_walks in the whole training: it sets the walk's
// random stream and its learning rate, alpha decaying linearly to min_alpha
// over total_walks. As in pWord2Vec (Ji et al. 2016) one set of negatives
// serves every context of a centre node, so each update is a small dense
// block: (contexts x (1 + negative)) dot products over rows loaded once.
// Returns the number of (kept) tokens trained. Per-thread scratch is
// O(walk_length + min(window, walk_length) * (negative + dim) + negative * dim)
// floats, allocated inside the parallel region through ParallelWork (a
// failure is std::bad_alloc after the region); polls for interrupts and
// throws Interrupted when stopped.
std::int64_t train_sgns(const index_t* walks, size_type n_walks, int walk_length,
                        const float* keep_probability, const float* noise_keep,
                        const index_t* noise_alias, size_type n_nodes, float* input,
                        float* output, int dim, const SgnsOptions& options,
                        std::uint64_t first_walk, std::uint64_t total_walks, int n_threads);

}  // namespace latentcore
