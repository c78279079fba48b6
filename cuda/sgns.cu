#include "sgns.cuh"

#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "common.cuh"
#include "latentcore/random.hpp"

namespace latentcore::cuda {

namespace {

constexpr int kMaxWarpsPerBlock = 8;
constexpr int kSharedBudget = 48 * 1024;  // dynamic shared memory without opt-in

// A warp's shared scratch, in 4-byte words, for a (window, negative).
struct Layout {
    int ring;     // slots of the token ring: a power of two >= 2 * window + 2
    int targets;  // 1 + negative
    int words;    // ring + contexts + targets + scores + output-gradient tile

    Layout(int window, int negative) : ring(1), targets(negative + 1) {
        while (ring < 2 * window + 2) ring <<= 1;
        words = ring + 2 * window + targets + 2 * window * targets + kWarp * targets;
    }
};

__device__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// The walk's kept tokens, one at a time, as latentcore's train_walk keeps
// them: entries up to the first -1, each node t dropped when keep[t] < 1 and
// coins.uniform() >= keep[t]. The warp reads the walk 32 entries at a time
// (lane l holds entry base + l and its keep probability) and hands them round
// by shuffles. Every lane holds the same state: call it from all 32 lanes.
struct TokenReader {
    const std::int32_t* walk;
    int walk_length;
    std::int64_t n_nodes;
    const float* keep_probability;
    Rng coins;
    int base = -kWarp;  // first entry of the loaded 32
    int pos = 0;        // next entry to read
    std::int32_t lane_node = -1;
    float lane_keep = 1.0f;

    __device__ TokenReader(const std::int32_t* walk_, int walk_length_, std::int64_t n_nodes_,
                           const float* keep_probability_, const Rng& coins_)
        : walk(walk_), walk_length(walk_length_), n_nodes(n_nodes_),
          keep_probability(keep_probability_), coins(coins_) {}

    // The next kept token, or -1 at the end of the walk.
    __device__ std::int32_t next() {
        for (;;) {
            if (pos >= walk_length) return -1;
            if (pos - base >= kWarp) load();
            const int slot = pos - base;
            const std::int32_t v = __shfl_sync(kFullMask, lane_node, slot);
            const float keep = __shfl_sync(kFullMask, lane_keep, slot);
            ++pos;
            if (v < 0) {
                pos = walk_length;
                return -1;
            }
            if (keep < 1.0f && coins.uniform() >= keep) continue;
            return v;
        }
    }

    __device__ void load() {
        base = pos;
        const int i = base + static_cast<int>(threadIdx.x % kWarp);
        std::int32_t v = i < walk_length ? walk[i] : -1;
        if (v >= n_nodes) v = -1;  // out of range: the walk ends (Python rejects these)
        lane_node = v < 0 ? -1 : v;
        lane_keep = keep_probability && v >= 0 ? keep_probability[v] : 1.0f;
    }
};

struct Params {
    const std::int32_t* walks;
    std::int64_t n_walks;
    int walk_length;
    const float* keep_probability;
    const float* noise_keep;
    const std::int32_t* noise_alias;
    std::int64_t n_nodes;
    float* input;
    float* output;
    int dim;
    int window;
    int widest;  // min(window, walk_length - 1), at least 1: the widest reach that matters
    int negative;
    double alpha;
    double min_alpha;
    std::uint64_t seed;
    std::uint64_t first_walk;
    double span;  // max(total_walks, 1)
    unsigned long long* tokens;
};

// One warp per walk (grid-stride over walks); latentcore's train_walk and
// update_block with the warp's lanes striding over dim.
__global__ void sgns_kernel(Params P, Layout layout) {
    extern __shared__ std::int32_t shared[];
    const int lane = static_cast<int>(threadIdx.x % kWarp);
    const int warp = static_cast<int>(threadIdx.x / kWarp);
    const int warps_per_block = static_cast<int>(blockDim.x / kWarp);
    std::int32_t* ring = shared + static_cast<std::size_t>(warp) * layout.words;
    std::int32_t* contexts = ring + layout.ring;
    std::int32_t* targets = contexts + 2 * P.widest;
    float* scores = reinterpret_cast<float*>(targets + layout.targets);
    float* gy = scores + 2 * P.widest * layout.targets + lane;  // gy[t * 32]: this lane's column
    const int mask = layout.ring - 1;
    const int n_targets = layout.targets;
    const int dim = P.dim;

    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * warps_per_block;
    for (std::int64_t w = static_cast<std::int64_t>(blockIdx.x) * warps_per_block + warp;
         w < P.n_walks; w += stride) {
        const std::uint64_t global = P.first_walk + static_cast<std::uint64_t>(w);
        const double progress = fmin(1.0, static_cast<double>(global) / P.span);
        // alpha - (alpha - min_alpha) * progress, rounded as on the host (no fused multiply-add).
        const float alpha = static_cast<float>(
            __dsub_rn(P.alpha, __dmul_rn(__dsub_rn(P.alpha, P.min_alpha), progress)));
        const std::int32_t* walk = P.walks + w * P.walk_length;
        Rng rng(P.seed, global);

        // Pass 1 counts the kept tokens and leaves rng where the CPU's is
        // after subsampling; pass 2 (below) replays the same coins from a
        // copy, lazily, into the ring: no per-walk buffer of walk_length.
        TokenReader counter(walk, P.walk_length, P.n_nodes, P.keep_probability, rng);
        int n = 0;
        while (counter.next() >= 0) ++n;
        TokenReader reader(walk, P.walk_length, P.n_nodes, P.keep_probability, rng);
        rng = counter.coins;
        if (lane == 0 && n > 0) atomicAdd(P.tokens, static_cast<unsigned long long>(n));

        int filled = 0;
        for (int i = 0; i < n; ++i) {
            // Tokens up to i + widest (the widest reach); slots reused hold
            // tokens before i - widest, which no centre from i on reads.
            const int need = min(n, i + P.widest + 1);
            while (filled < need) {
                const std::int32_t v = reader.next();
                if (lane == 0) ring[filled & mask] = v;
                ++filled;
            }
            __syncwarp();
            const int drawn =
                P.window - static_cast<int>(rng.below(static_cast<std::uint32_t>(P.window)));
            const int reach = min(drawn, P.widest);  // as on the CPU: no reach beyond the walk matters
            const int lo = max(0, i - reach), hi = min(n, i + reach + 1);
            const int m = hi - lo - 1;  // the centre i lies in [lo, hi)
            if (m == 0) continue;
            for (int k = lane; k < m; k += kWarp) {
                const int j = lo + k + (lo + k >= i ? 1 : 0);
                contexts[k] = ring[j & mask];
            }
            const std::int32_t centre = ring[i & mask];
            if (lane == 0) targets[0] = centre;
            for (int t = 1; t < n_targets; ++t) {
                std::int64_t v = alias_draw(P.noise_keep, P.noise_alias, P.n_nodes, rng.next());
                if (v < 0 || v >= P.n_nodes) v = centre;  // a corrupt table: skipped like the centre
                if (lane == 0) targets[t] = static_cast<std::int32_t>(v);
            }
            __syncwarp();

            // scores[a][t] = (label - sigmoid(x_a . y_t)) * alpha, 0 for a negative that is the centre.
            for (int a = 0; a < m; ++a) {
                const float* x = P.input + static_cast<std::int64_t>(contexts[a]) * dim;
                for (int t = 0; t < n_targets; ++t) {
                    const std::int32_t target = targets[t];
                    if (t > 0 && target == centre) {
                        if (lane == 0) scores[a * n_targets + t] = 0.0f;
                        continue;
                    }
                    const float* y = P.output + static_cast<std::int64_t>(target) * dim;
                    float partial = 0.0f;
                    for (int j = lane; j < dim; j += kWarp) partial += x[j] * y[j];
                    const float dot = warp_sum(partial);
                    if (lane == 0)
                        scores[a * n_targets + t] = ((t == 0 ? 1.0f : 0.0f) - sigmoid(dot)) * alpha;
                }
            }
            __syncwarp();

            // Each lane owns coordinates j = lane, lane + 32, ...: the output
            // gradients from the old inputs, the input gradients from the old
            // outputs (not yet updated by this warp), then both applied.
            for (int j = lane; j < dim; j += kWarp) {
                for (int t = 0; t < n_targets; ++t) gy[t * kWarp] = 0.0f;
                for (int a = 0; a < m; ++a) {
                    const float xj = P.input[static_cast<std::int64_t>(contexts[a]) * dim + j];
                    for (int t = 0; t < n_targets; ++t) gy[t * kWarp] += scores[a * n_targets + t] * xj;
                }
                for (int a = 0; a < m; ++a) {
                    float gx = 0.0f;
                    for (int t = 0; t < n_targets; ++t)
                        gx += scores[a * n_targets + t] *
                              P.output[static_cast<std::int64_t>(targets[t]) * dim + j];
                    atomicAdd(P.input + static_cast<std::int64_t>(contexts[a]) * dim + j, gx);
                }
                for (int t = 0; t < n_targets; ++t)
                    atomicAdd(P.output + static_cast<std::int64_t>(targets[t]) * dim + j, gy[t * kWarp]);
            }
            __syncwarp();  // contexts, targets and scores are rewritten for the next centre
        }
    }
}

}  // namespace

std::int64_t train_sgns(const std::int32_t* walks, std::int64_t n_walks, int walk_length,
                        const float* keep_probability, const float* noise_keep,
                        const std::int32_t* noise_alias, std::int64_t n_nodes, float* input,
                        float* output, int dim, int window, int negative, double alpha, double min_alpha,
                        std::uint64_t seed, std::uint64_t first_walk, std::uint64_t total_walks,
                        std::uintptr_t stream) {
    if (walk_length < 1) throw std::invalid_argument("walk_length must be >= 1");
    if (window < 1) throw std::invalid_argument("window must be >= 1, got " + std::to_string(window));
    const int widest = std::max(1, std::min(window, walk_length - 1));
    if (widest > kSgnsMaxWindow)
        throw std::invalid_argument("window must be in [1, " + std::to_string(kSgnsMaxWindow) +
                                    "] on the GPU (or at least walk_length - 1), got " + std::to_string(window));
    if (negative < 0 || negative > kSgnsMaxNegative)
        throw std::invalid_argument("negative must be in [0, " + std::to_string(kSgnsMaxNegative) +
                                    "] on the GPU, got " + std::to_string(negative));
    if (dim < 1) throw std::invalid_argument("dim must be >= 1");
    if (n_nodes < 1 || n_nodes > 0x7fffffff)
        throw std::invalid_argument("the vectors need 1 to 2^31 - 1 rows");
    if (n_walks <= 0) return 0;
    const Layout layout(widest, negative);
    const int warp_bytes = layout.words * static_cast<int>(sizeof(std::int32_t));
    const int warps = std::min(kMaxWarpsPerBlock, kSharedBudget / warp_bytes);  // >= 1 within the bounds
    Params params{walks,  n_walks, walk_length, keep_probability,
                  noise_keep, noise_alias, n_nodes, input,
                  output, dim, window, widest, negative,
                  alpha, min_alpha, seed, first_walk,
                  static_cast<double>(std::max<std::uint64_t>(total_walks, 1)), nullptr};
    const cudaStream_t s = as_stream(stream);
    // The kept tokens are counted on the device and read back once the walks
    // are trained: the call returns with the training done, as on the CPU.
    Scratch counter(sizeof(unsigned long long), s);
    params.tokens = counter.at<unsigned long long>(0);
    check(cudaMemsetAsync(params.tokens, 0, sizeof(unsigned long long), s), "train_sgns counter");
    sgns_kernel<<<blocks_for(n_walks, warps), warps * kWarp, static_cast<std::size_t>(warps) * warp_bytes, s>>>(
        params, layout);
    check_launch("train_sgns launch");
    unsigned long long tokens = 0;
    check(cudaMemcpyAsync(&tokens, params.tokens, sizeof tokens, cudaMemcpyDeviceToHost, s), "train_sgns count");
    check(cudaStreamSynchronize(s), "train_sgns");
    return static_cast<std::int64_t>(tokens);
}

}  // namespace latentcore::cuda
