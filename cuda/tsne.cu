#include "tsne.cuh"

#include <cuda_runtime.h>

#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>

#include "common.cuh"
#include "latentcore/tsne_math.hpp"

namespace latentcore::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kChunk = 32;  // points whose weights a scatter block stages at once

// ---------------------------------------------------------------- forces

// One warp per row; lane l takes the row's entries l, l + 32, ...
template <int Dim, typename Weight>
__global__ void attractive_kernel(CsrGraph<Weight> P, std::int64_t nnz, const double* Y, double dof,
                                  double exaggeration, double* forces, double* kl_terms) {
    const std::int64_t row = (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
    const int lane = static_cast<int>(threadIdx.x % kWarp);
    const std::int64_t n = P.n_rows;
    if (row >= n) return;  // whole warps leave together
    const std::int64_t begin = max(P.indptr[row], static_cast<std::int64_t>(0));
    const std::int64_t end = min(P.indptr[row + 1], nnz);
    double yi[Dim], f[Dim];
#pragma unroll
    for (int t = 0; t < Dim; ++t) {
        yi[t] = Y[row * Dim + t];
        f[t] = 0.0;
    }
    double kl = 0.0;
    for (std::int64_t e = begin + lane; e < end; e += kWarp) {
        const std::int32_t j = P.indices[e];
        if (j < 0 || j >= n) continue;
        double diff[Dim];
        double sq = 0.0;
#pragma unroll
        for (int t = 0; t < Dim; ++t) {
            diff[t] = yi[t] - Y[static_cast<std::int64_t>(j) * Dim + t];
            sq += diff[t] * diff[t];
        }
        const double p = static_cast<double>(P.weights[e]);
        const double pq = attraction(p, sq, dof);
#pragma unroll
        for (int t = 0; t < Dim; ++t) f[t] += pq * diff[t];
        if (kl_terms && p > 0) kl += kl_term(p, sq, dof);
    }
#pragma unroll
    for (int t = 0; t < Dim; ++t) f[t] = warp_sum(f[t]);
    if (kl_terms) kl = warp_sum(kl);
    if (lane != 0) return;
#pragma unroll
    for (int t = 0; t < Dim; ++t) forces[row * Dim + t] = exaggeration * f[t];
    if (kl_terms) kl_terms[row] = kl;
}

template <int Dim, typename Weight>
void launch_attractive(const CsrGraph<Weight>& P, std::int64_t nnz, const double* Y, double dof,
                       double exaggeration, double* forces, double* kl_terms, cudaStream_t stream) {
    attractive_kernel<Dim, Weight><<<blocks_for(P.n_rows * kWarp, kThreads), kThreads, 0, stream>>>(
        P, nnz, Y, dof, exaggeration, forces, kl_terms);
}

template <typename Weight>
void attractive(const CsrGraph<Weight>& P, std::int64_t nnz, const double* Y, int dim, double dof,
                double exaggeration, double* forces, double* kl_terms, std::uintptr_t stream) {
    if (P.n_rows == 0) return;
    require(P.n_rows <= INT32_MAX, "at most 2^31 - 1 points on the GPU");
    const cudaStream_t s = as_stream(stream);
    switch (dim) {
        case 1: launch_attractive<1>(P, nnz, Y, dof, exaggeration, forces, kl_terms, s); break;
        case 2: launch_attractive<2>(P, nnz, Y, dof, exaggeration, forces, kl_terms, s); break;
        case 3: launch_attractive<3>(P, nnz, Y, dof, exaggeration, forces, kl_terms, s); break;
        default: throw std::invalid_argument("embeddings have 1, 2 or 3 columns");
    }
    check_launch("tsne_attractive_forces launch");
}

// One thread per i; the block walks all j in index order through shared
// memory, so each row's sums have the C++ kernel's order.
template <int Dim>
__global__ void exact_kernel(const double* Y, std::int64_t n, double dof, double* repulsion,
                             double* z_terms) {
    __shared__ double tile[kThreads * Dim];
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const bool active = i < n;
    double yi[Dim], f[Dim];
#pragma unroll
    for (int t = 0; t < Dim; ++t) {
        yi[t] = active ? Y[i * Dim + t] : 0.0;
        f[t] = 0.0;
    }
    double z = 0.0;
    for (std::int64_t first = 0; first < n; first += kThreads) {
        const int count = static_cast<int>(min(static_cast<std::int64_t>(kThreads), n - first));
        __syncthreads();  // the previous tile is consumed
        for (int k = threadIdx.x; k < count * Dim; k += blockDim.x) tile[k] = Y[first * Dim + k];
        __syncthreads();
        if (!active) continue;
        for (int s = 0; s < count; ++s) {
            if (first + s == i) continue;
            double diff[Dim];
            double sq = 0.0;
#pragma unroll
            for (int t = 0; t < Dim; ++t) {
                diff[t] = yi[t] - tile[s * Dim + t];
                sq += diff[t] * diff[t];
            }
            const double q = cauchy_factor(sq, dof);
            const double w = tsne_kernel(q, dof);
            z += w;
#pragma unroll
            for (int t = 0; t < Dim; ++t) f[t] += w * q * diff[t];
        }
    }
    if (!active) return;
#pragma unroll
    for (int t = 0; t < Dim; ++t) repulsion[i * Dim + t] = f[t];
    z_terms[i] = z;
}

// ---------------------------------------------------------------- grid

// The grid, the boxes and the Lagrange weights are latentcore/interp.hpp's,
// the C++ kernels' code.

void check_grid(const InterpGrid& g) {
    if (g.dim < 1 || g.dim > 3) throw std::invalid_argument("embeddings have 1, 2 or 3 columns");
    if (g.n_boxes < 1 || g.n_interp < 2 || g.n_interp > kMaxInterp)
        throw std::invalid_argument("need n_boxes >= 1 and 2 <= n_interp <= 16");
    if (!(g.box_width > 0)) throw std::invalid_argument("box_width must be positive");
}

// The row-major flat box of each point (dimension 0 slowest), with its index.
template <int Dim>
__global__ void box_key_kernel(InterpGrid g, const double* Y, std::int64_t n, std::uint32_t* keys,
                               std::int32_t* ids) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;
    std::uint32_t key = 0;
#pragma unroll
    for (int d = 0; d < Dim; ++d)
        key = key * static_cast<std::uint32_t>(g.n_boxes) + static_cast<std::uint32_t>(g.box_of(Y[i * Dim + d]));
    keys[i] = key;
    ids[i] = static_cast<std::int32_t>(i);
}

// start[b] = the first sorted position whose box is >= b (start[boxes] = n).
__global__ void box_start_kernel(const std::uint32_t* sorted_keys, std::int64_t n,
                                 std::int64_t boxes, std::int64_t* start) {
    const std::int64_t b = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (b > boxes) return;
    std::int64_t lo = 0, hi = n;
    while (lo < hi) {
        const std::int64_t mid = lo + (hi - lo) / 2;
        if (static_cast<std::int64_t>(sorted_keys[mid]) < b)
            lo = mid + 1;
        else
            hi = mid;
    }
    start[b] = lo;
}

// One block per box. Thread pairs (charge, node of the box) sum their box's
// points in index order: every node has one owner and a fixed summation
// order, the C++ kernel's. The points' weights are staged in shared memory a
// chunk at a time; an empty box writes zeros.
template <int Dim>
__global__ void scatter_kernel(InterpGrid g, LagrangeBasis basis, const double* Y, const double* charges,
                               int n_charges, const std::int32_t* order, const std::int64_t* start,
                               std::int64_t nodes, double* values) {
    __shared__ double weight[kChunk][Dim][kMaxInterp];
    __shared__ std::int32_t point[kChunk];
    const int p = g.n_interp;
    const std::int64_t side = static_cast<std::int64_t>(g.n_boxes) * p;
    int coord[Dim];
    {
        std::int64_t rest = blockIdx.x;
#pragma unroll
        for (int d = Dim - 1; d >= 0; --d) {
            coord[d] = static_cast<int>(rest % g.n_boxes);
            rest /= g.n_boxes;
        }
    }
    int per_box = 1;
#pragma unroll
    for (int d = 0; d < Dim; ++d) per_box *= p;
    const int pairs = per_box * n_charges;
    const std::int64_t begin = start[blockIdx.x];
    const std::int64_t end = start[blockIdx.x + 1];
    for (int first_pair = 0; first_pair < pairs; first_pair += blockDim.x) {
        const int pair = first_pair + static_cast<int>(threadIdx.x);
        const bool active = pair < pairs;
        const int charge = active ? pair / per_box : 0;
        int m[Dim];
        {
            int rest = active ? pair % per_box : 0;
#pragma unroll
            for (int d = Dim - 1; d >= 0; --d) {
                m[d] = rest % p;
                rest /= p;
            }
        }
        std::int64_t node = 0;
#pragma unroll
        for (int d = 0; d < Dim; ++d) node = node * side + static_cast<std::int64_t>(coord[d]) * p + m[d];
        double sum = 0.0;
        for (std::int64_t chunk = begin; chunk < end; chunk += kChunk) {
            const int count = static_cast<int>(min(static_cast<std::int64_t>(kChunk), end - chunk));
            __syncthreads();  // the previous chunk is consumed
            for (int k = threadIdx.x; k < count * Dim; k += blockDim.x) {
                const int s = k / Dim, d = k % Dim;
                const std::int32_t i = order[chunk + s];
                if (d == 0) point[s] = i;
                basis.weights(g.offset_in(Y[static_cast<std::int64_t>(i) * Dim + d], coord[d]), weight[s][d]);
            }
            __syncthreads();
            if (!active) continue;
            for (int s = 0; s < count; ++s) {
                double w = weight[s][0][m[0]];
#pragma unroll
                for (int d = 1; d < Dim; ++d) w = __dmul_rn(w, weight[s][d][m[d]]);
                const double q = charges[static_cast<std::int64_t>(point[s]) * n_charges + charge];
                sum = __dadd_rn(sum, __dmul_rn(w, q));
            }
        }
        if (active) values[static_cast<std::int64_t>(charge) * nodes + node] = sum;
    }
}

template <int Dim>
void launch_scatter(const InterpGrid& g, const double* Y, std::int64_t n, const double* charges,
                    int n_charges, double* values, cudaStream_t stream) {
    const std::int64_t boxes = g.boxes();
    const std::int64_t nodes = g.nodes();
    int bits = 1;
    while ((static_cast<std::int64_t>(1) << bits) < boxes) ++bits;
    std::size_t sort_bytes = 0;
    check(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, static_cast<const std::uint32_t*>(nullptr),
                                          static_cast<std::uint32_t*>(nullptr),
                                          static_cast<const std::int32_t*>(nullptr),
                                          static_cast<std::int32_t*>(nullptr), static_cast<int>(n), 0,
                                          bits, stream),
          "tsne_scatter_charges sort size");
    const std::size_t key_bytes = aligned(sizeof(std::uint32_t) * static_cast<std::size_t>(n));
    const std::size_t id_bytes = aligned(sizeof(std::int32_t) * static_cast<std::size_t>(n));
    const std::size_t start_bytes = aligned(sizeof(std::int64_t) * static_cast<std::size_t>(boxes + 1));
    Scratch scratch(2 * key_bytes + 2 * id_bytes + start_bytes + aligned(sort_bytes), stream);
    std::size_t at = 0;
    auto* keys_in = scratch.at<std::uint32_t>(at);
    auto* keys_out = scratch.at<std::uint32_t>(at += key_bytes);
    auto* ids_in = scratch.at<std::int32_t>(at += key_bytes);
    auto* ids_out = scratch.at<std::int32_t>(at += id_bytes);
    auto* start = scratch.at<std::int64_t>(at += id_bytes);
    void* sort_temp = scratch.at<void>(at += start_bytes);

    box_key_kernel<Dim><<<blocks_for(n, kThreads), kThreads, 0, stream>>>(g, Y, n, keys_in, ids_in);
    check_launch("tsne_scatter_charges launch (box keys)");
    // A radix sort is stable: each box's points stay in index order.
    check(cub::DeviceRadixSort::SortPairs(sort_temp, sort_bytes, keys_in, keys_out, ids_in, ids_out,
                                          static_cast<int>(n), 0, bits, stream),
          "tsne_scatter_charges sort");
    box_start_kernel<<<blocks_for(boxes + 1, kThreads), kThreads, 0, stream>>>(keys_out, n, boxes, start);
    check_launch("tsne_scatter_charges launch (box starts)");
    const int pairs = static_cast<int>(nodes / boxes) * n_charges;
    const int threads = std::min(kThreads, std::max(kWarp, (pairs + kWarp - 1) / kWarp * kWarp));
    scatter_kernel<Dim><<<static_cast<unsigned>(boxes), threads, 0, stream>>>(
        g, LagrangeBasis(g.n_interp), Y, charges, n_charges, ids_out, start, nodes, values);
    check_launch("tsne_scatter_charges launch");
}

// One thread per point: the p^dim nodes of its box, in the C++ kernel's order.
template <int Dim>
__global__ void gather_kernel(InterpGrid g, LagrangeBasis basis, const double* Y, std::int64_t n,
                              const double* values, int n_charges, std::int64_t nodes,
                              double* potentials) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const int p = g.n_interp;
    const std::int64_t side = static_cast<std::int64_t>(g.n_boxes) * p;
    double weight[Dim][kMaxInterp];
    std::int64_t first[Dim];
#pragma unroll
    for (int d = 0; d < Dim; ++d) {
        const double y = Y[i * Dim + d];
        const int box = g.box_of(y);
        first[d] = static_cast<std::int64_t>(box) * p;
        basis.weights(g.offset_in(y, box), weight[d]);
    }
    for (int c = 0; c < n_charges; ++c) {
        const double* field = values + static_cast<std::int64_t>(c) * nodes;
        double sum = 0.0;
        for (int a = 0; a < p; ++a) {
            if constexpr (Dim == 1) {
                sum = __dadd_rn(sum, __dmul_rn(weight[0][a], field[first[0] + a]));
            } else {
                for (int b = 0; b < p; ++b) {
                    const std::int64_t row = (first[0] + a) * side + first[1] + b;
                    const double wab = __dmul_rn(weight[0][a], weight[1][b]);
                    if constexpr (Dim == 2) {
                        sum = __dadd_rn(sum, __dmul_rn(wab, field[row]));
                    } else {
                        for (int e = 0; e < p; ++e)
                            sum = __dadd_rn(sum, __dmul_rn(__dmul_rn(wab, weight[2][e]),
                                                           field[row * side + first[2] + e]));
                    }
                }
            }
        }
        potentials[i * n_charges + c] = sum;
    }
}

// ---------------------------------------------------------------- gradient step

// Sums `value` (one per thread, per dimension) over the block with a fixed
// tree; thread 0's `out` receives the totals. blockDim.x must be kThreads.
template <int Dim>
__device__ void block_sum(double (&value)[Dim], double (&shared)[Dim][kThreads]) {
#pragma unroll
    for (int d = 0; d < Dim; ++d) shared[d][threadIdx.x] = value[d];
    __syncthreads();
    for (int half = kThreads / 2; half > 0; half >>= 1) {
        if (static_cast<int>(threadIdx.x) < half) {
#pragma unroll
            for (int d = 0; d < Dim; ++d) shared[d][threadIdx.x] += shared[d][threadIdx.x + half];
        }
        __syncthreads();
    }
#pragma unroll
    for (int d = 0; d < Dim; ++d) value[d] = shared[d][0];
}

// The elementwise step over a grid-stride loop of points, then each block's
// sum of the new Y per dimension (partial[block * Dim + d]). The grid size
// depends on n only, so the sums do too.
template <int Dim>
__global__ void step_kernel(double* Y, std::int64_t n, const double* gradient, double* update,
                            double* gains, double learning_rate, double momentum, double min_gain,
                            double* partial) {
    __shared__ double shared[Dim][kThreads];
    double local[Dim];
#pragma unroll
    for (int d = 0; d < Dim; ++d) local[d] = 0.0;
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += stride) {
#pragma unroll
        for (int d = 0; d < Dim; ++d) {
            const std::int64_t t = i * Dim + d;
            double y = Y[t], u = update[t], gain = gains[t];
            descend(y, gradient[t], u, gain, learning_rate, momentum, min_gain);
            gains[t] = gain;
            update[t] = u;
            Y[t] = y;
            local[d] += y;
        }
    }
    if (!partial) return;  // no re-centring: the whole grid leaves together
    block_sum<Dim>(local, shared);
    if (threadIdx.x == 0) {
#pragma unroll
        for (int d = 0; d < Dim; ++d) partial[blockIdx.x * Dim + d] = local[d];
    }
}

// Every block reduces the `n_partial` (<= kThreads) partial sums with the same
// tree, so all agree on the mean, then subtracts it from its share of Y.
template <int Dim>
__global__ void center_kernel(double* Y, std::int64_t n, const double* partial, int n_partial) {
    __shared__ double shared[Dim][kThreads];
    double mean[Dim];
#pragma unroll
    for (int d = 0; d < Dim; ++d)
        mean[d] = static_cast<int>(threadIdx.x) < n_partial ? partial[threadIdx.x * Dim + d] : 0.0;
    block_sum<Dim>(mean, shared);
#pragma unroll
    for (int d = 0; d < Dim; ++d) mean[d] /= static_cast<double>(n);
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += stride) {
#pragma unroll
        for (int d = 0; d < Dim; ++d) Y[i * Dim + d] = __dsub_rn(Y[i * Dim + d], mean[d]);
    }
}

template <int Dim>
void launch_step(double* Y, std::int64_t n, const double* gradient, double* update, double* gains,
                 double learning_rate, double momentum, double min_gain, bool recenter,
                 cudaStream_t stream) {
    const unsigned partials = std::min(static_cast<unsigned>(kThreads), blocks_for(n, kThreads));
    if (!recenter) {
        step_kernel<Dim><<<blocks_for(n, kThreads), kThreads, 0, stream>>>(
            Y, n, gradient, update, gains, learning_rate, momentum, min_gain, nullptr);
        check_launch("tsne_gradient_step launch");
        return;
    }
    Scratch scratch(sizeof(double) * Dim * partials, stream);
    double* partial = scratch.at<double>(0);
    step_kernel<Dim><<<partials, kThreads, 0, stream>>>(Y, n, gradient, update, gains, learning_rate,
                                                        momentum, min_gain, partial);
    check_launch("tsne_gradient_step launch");
    center_kernel<Dim><<<blocks_for(n, kThreads), kThreads, 0, stream>>>(
        Y, n, partial, static_cast<int>(partials));
    check_launch("tsne_gradient_step launch (centring)");
}

}  // namespace

void tsne_attractive_forces(const CsrGraph<float>& P, std::int64_t nnz, const double* Y, int dim, double dof,
                            double exaggeration, double* forces, double* kl_terms, std::uintptr_t stream) {
    attractive(P, nnz, Y, dim, dof, exaggeration, forces, kl_terms, stream);
}

void tsne_attractive_forces(const CsrGraph<double>& P, std::int64_t nnz, const double* Y, int dim, double dof,
                            double exaggeration, double* forces, double* kl_terms, std::uintptr_t stream) {
    attractive(P, nnz, Y, dim, dof, exaggeration, forces, kl_terms, stream);
}

void tsne_exact_repulsion(const double* Y, std::int64_t n, int dim, double dof, double* repulsion,
                          double* z_terms, std::uintptr_t stream) {
    if (n == 0) return;
    const cudaStream_t s = as_stream(stream);
    const unsigned blocks = blocks_for(n, kThreads);
    switch (dim) {
        case 1: exact_kernel<1><<<blocks, kThreads, 0, s>>>(Y, n, dof, repulsion, z_terms); break;
        case 2: exact_kernel<2><<<blocks, kThreads, 0, s>>>(Y, n, dof, repulsion, z_terms); break;
        case 3: exact_kernel<3><<<blocks, kThreads, 0, s>>>(Y, n, dof, repulsion, z_terms); break;
        default: throw std::invalid_argument("embeddings have 1, 2 or 3 columns");
    }
    check_launch("tsne_exact_repulsion launch");
}

void tsne_scatter_charges(const InterpGrid& grid, const double* Y, std::int64_t n, const double* charges,
                          int n_charges, double* values, std::uintptr_t stream) {
    check_grid(grid);
    if (n > INT32_MAX) throw std::invalid_argument("at most 2^31 - 1 points on the GPU");
    if (grid.boxes() > INT32_MAX) throw std::invalid_argument("at most 2^31 - 1 boxes on the GPU");
    if (n_charges == 0) return;
    const cudaStream_t s = as_stream(stream);
    if (n == 0) {  // no points: every node is zero
        check(cudaMemsetAsync(values, 0, sizeof(double) * n_charges * grid.nodes(), s),
              "tsne_scatter_charges memset");
        return;
    }
    switch (grid.dim) {
        case 1: launch_scatter<1>(grid, Y, n, charges, n_charges, values, s); break;
        case 2: launch_scatter<2>(grid, Y, n, charges, n_charges, values, s); break;
        case 3: launch_scatter<3>(grid, Y, n, charges, n_charges, values, s); break;
    }
}

void tsne_gather_potentials(const InterpGrid& grid, const double* Y, std::int64_t n,
                            const double* values, int n_charges, double* potentials,
                            std::uintptr_t stream) {
    check_grid(grid);
    if (n == 0 || n_charges == 0) return;
    const cudaStream_t s = as_stream(stream);
    const LagrangeBasis basis(grid.n_interp);
    const std::int64_t nodes = grid.nodes();
    const unsigned blocks = blocks_for(n, kThreads);
    switch (grid.dim) {
        case 1: gather_kernel<1><<<blocks, kThreads, 0, s>>>(grid, basis, Y, n, values, n_charges, nodes, potentials); break;
        case 2: gather_kernel<2><<<blocks, kThreads, 0, s>>>(grid, basis, Y, n, values, n_charges, nodes, potentials); break;
        case 3: gather_kernel<3><<<blocks, kThreads, 0, s>>>(grid, basis, Y, n, values, n_charges, nodes, potentials); break;
    }
    check_launch("tsne_gather_potentials launch");
}

void tsne_gradient_step(double* Y, std::int64_t n, int dim, const double* gradient,
                        double* update, double* gains, double learning_rate, double momentum,
                        double min_gain, bool recenter, std::uintptr_t stream) {
    if (n == 0) return;
    const cudaStream_t s = as_stream(stream);
    switch (dim) {
        case 1: launch_step<1>(Y, n, gradient, update, gains, learning_rate, momentum, min_gain, recenter, s); break;
        case 2: launch_step<2>(Y, n, gradient, update, gains, learning_rate, momentum, min_gain, recenter, s); break;
        case 3: launch_step<3>(Y, n, gradient, update, gains, learning_rate, momentum, min_gain, recenter, s); break;
        default: throw std::invalid_argument("embeddings have 1, 2 or 3 columns");
    }
}

}  // namespace latentcore::cuda
