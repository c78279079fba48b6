// CUDA skip-gram with negative sampling, the twin of
// cpp/include/latentcore/sgns.hpp: the same objective, the same block update
// with shared negatives (pWord2Vec), and the same random draws in the same
// order (latentcore/random.hpp), so every walk trains with the subsampling
// coins, reduced windows and negatives of the CPU. Behind plain pointers so
// that no CUDA header leaks into the bindings. Every array is a device
// pointer; `stream` is a cudaStream_t as an integer (cupy's current stream).
#pragma once

#include <cstdint>

namespace latentcore::cuda {

// Largest window and negative the kernel takes; train_sgns throws
// std::invalid_argument beyond them. The window bound applies to
// min(window, walk_length - 1): no reach beyond the walk changes anything,
// so a larger window on short walks trains as on the CPU. A warp's scratch lives in shared memory:
// a ring of the walk's kept tokens (a power of two >= 2 * window + 2 slots,
// so walk_length is unbounded), 2 * window contexts, 1 + negative targets,
// the 2 * window x (1 + negative) scores and a (1 + negative) x 32 output-
// gradient tile: at the bounds 43 KiB, within the 48 KiB every GPU offers.
// dim is unbounded (lanes stride over it).
inline constexpr int kSgnsMaxWindow = 64;
inline constexpr int kSgnsMaxNegative = 64;

// Trains on walks (n_walks, walk_length), row-major, -1 ending a walk, as
// latentcore::train_sgns does with the same arguments: walk w is the
// (first_walk + w)-th of total_walks, which fixes its random stream
// Rng(seed, first_walk + w) and its learning rate (alpha decaying linearly to
// min_alpha). keep_probability (n_nodes) may be null (no subsampling);
// noise_keep / noise_alias (n_nodes) is the alias table of the negatives.
// input / output are the (n_nodes, dim) row-major vectors, updated in place.
// Returns the number of tokens kept, as the C++ kernel does: the call waits
// for the training to end on `stream` (to read the count back), so unlike the
// other CUDA kernels it is synchronous.
//
// One warp per walk, Hogwild across warps; blocks of up to 8 warps (fewer
// when their scratch, 4 bytes a word as above, would pass 48 KiB). Every lane
// runs the walk's random stream (warp-uniform: it costs what one lane would,
// and needs no broadcast), so the draws are those of the CPU; only the
// interleaving of concurrent updates differs. Within a centre, scores and
// both gradients come from the old vectors, as on the CPU; updates land with
// atomicAdd (fire-and-forget reductions), so no concurrent update is lost.
//
// Node ids are not range-checked against n_nodes in the binding (Python
// validates them): here a walk entry outside [0, n_nodes) ends the walk and
// a noise draw outside it is skipped, so no access leaves the arrays.
std::int64_t train_sgns(const std::int32_t* walks, std::int64_t n_walks, int walk_length,
                        const float* keep_probability, const float* noise_keep,
                        const std::int32_t* noise_alias, std::int64_t n_nodes, float* input,
                        float* output, int dim, int window, int negative, double alpha, double min_alpha,
                        std::uint64_t seed, std::uint64_t first_walk, std::uint64_t total_walks,
                        std::uintptr_t stream);

}  // namespace latentcore::cuda
