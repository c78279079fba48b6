#include "walks.cuh"

#include <cuda_runtime.h>

#include <stdexcept>

#include "common.cuh"
#include "latentcore/random.hpp"

namespace latentcore::cuda {

namespace {

// Small blocks spread even a small chunk of walks over every SM: each
// thread's walk is a chain of dependent loads, so what counts is walks in
// flight on every SM (a 16384-walk chunk is only 4 warps per SM on an H100).
constexpr int kThreads = 64;  // the kernel strides beyond blocks_for's kMaxBlocks

// The graph with its tables, as node2vec_step reads it (latentcore/random.hpp).
struct Graph {
    CsrGraph<float> csr;
    std::int64_t nnz;
    const float* keep;
    const std::int32_t* alias;
    const double* totals;
    const float* maxima;

    // Row v's edges [begin, end), clamped into the edge arrays.
    __device__ void row(std::int32_t v, std::int64_t& begin, std::int64_t& end) const {
        begin = min(max(csr.indptr[v], std::int64_t{0}), nnz);
        end = min(max(csr.indptr[v + 1], begin), nnz);
    }

    // An alias draw over a row: an offset in [0, degree), or -1 (corrupt tables).
    __device__ std::int64_t draw(std::int64_t begin, std::int64_t degree, std::uint64_t r) const {
        const std::int64_t e = alias_draw(keep + begin, alias + begin, degree, r);
        return e >= 0 && e < degree ? e : -1;
    }

    // The edge's target, or -1 out of range.
    __device__ std::int32_t target(std::int64_t e) const {
        const std::int32_t v = csr.indices[e];
        return v >= 0 && v < csr.n_rows ? v : -1;
    }

    // The edge's weight over its row's total, as on the CPU.
    __device__ double share(std::int64_t e, std::int32_t v, std::int64_t) const {
        return static_cast<double>(csr.weights[e]) / totals[v];
    }
    __device__ double largest_share(std::int32_t v, std::int64_t) const {
        return static_cast<double>(maxima[v]) / totals[v];
    }
    // latentcore's weighted_neighbor: one alias draw over v's out-edges (one
    // rng.next()), -1 at a sink without drawing. Out-of-range entries end the walk.
    __device__ std::int32_t weighted_neighbor(std::int32_t v, Rng& rng) const {
        std::int64_t begin, end;
        row(v, begin, end);
        const std::int64_t degree = end - begin;
        if (degree == 0) return -1;
        const std::int64_t e = draw(begin, degree, rng.next());
        return e < 0 ? -1 : target(begin + e);
    }

    // std::binary_search of `to` in from's sorted row.
    __device__ bool is_neighbor(std::int32_t from, std::int32_t to) const {
        std::int64_t lo, end;
        row(from, lo, end);
        std::int64_t hi = end;
        while (lo < hi) {
            const std::int64_t mid = lo + (hi - lo) / 2;
            if (csr.indices[mid] < to)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo < end && csr.indices[lo] == to;
    }
};

// One thread per walk, the loop of latentcore::sample_walks step for step:
// the same rng calls in the same order, the same double arithmetic
// (node2vec_step rounds every product and sum on its own).
__global__ void walk_kernel(Graph g, const std::int32_t* starts, std::int64_t n_walks,
                            int walk_length, bool biased, Node2VecBias bias, std::uint64_t seed,
                            std::uint64_t first_walk, std::int32_t* walks) {
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t w = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
         w < n_walks; w += stride) {
        Rng rng(seed, first_walk + static_cast<std::uint64_t>(w));
        std::int32_t* walk = walks + w * walk_length;
        std::int32_t here = starts[w];
        walk[0] = here;
        int step = 1;
        if (here >= 0 && here < g.csr.n_rows) {
            std::int32_t previous = -1;
            for (; step < walk_length; ++step) {
                const std::int32_t next = biased && step >= 2 ? node2vec_step(g, here, previous, bias, rng)
                                                              : g.weighted_neighbor(here, rng);
                if (next < 0) break;
                walk[step] = next;
                previous = here;
                here = next;
            }
        }
        for (; step < walk_length; ++step) walk[step] = -1;
    }
}

}  // namespace

void sample_walks(const CsrGraph<float>& graph, std::int64_t nnz, const float* keep, const std::int32_t* alias,
                  const double* totals, const float* maxima, const std::int32_t* starts, std::int64_t n_walks,
                  int walk_length, double p, double q, std::uint64_t seed, std::uint64_t first_walk,
                  std::int32_t* walks, std::uintptr_t stream) {
    if (walk_length < 1) throw std::invalid_argument("walk_length must be >= 1");
    if (!(p >= 1e-100 && p <= 1e100) || !(q >= 1e-100 && q <= 1e100))
        throw std::invalid_argument("p and q must be in [1e-100, 1e100]");
    if (graph.n_rows < 1 || graph.n_rows > 0x7fffffff)
        throw std::invalid_argument("the graph needs 1 to 2^31 - 1 nodes");
    if (n_walks <= 0) return;
    // As on the CPU: computed on the host in double, compared on the device.
    const bool biased = p != 1.0 || q != 1.0;
    const Node2VecBias bias(p, q);
    const Graph g{graph, nnz, keep, alias, totals, maxima};
    walk_kernel<<<blocks_for(n_walks, kThreads), kThreads, 0, as_stream(stream)>>>(g, starts, n_walks, walk_length, biased, bias,
                                                             seed, first_walk, walks);
    check_launch("sample_walks launch");
}

}  // namespace latentcore::cuda
