#include "knn.cuh"

#include <cuda_runtime.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "common.cuh"
#include "latentcore/distance.hpp"

namespace latentcore::cuda {

namespace {

// A row's selection and its candidates are sorted together in shared memory:
// 4096 (score, index) pairs = 32 KiB, within every GPU's static limit.
constexpr int kSortCapacity = 4096;
constexpr int kMaxK = 1024;
constexpr int kThreads = 256;

// (score, index) order with index -1 (an empty slot) after every real index.
__device__ bool before(float sa, std::int32_t ia, float sb, std::int32_t ib) {
    return sa < sb || (sa == sb && static_cast<std::uint32_t>(ia) < static_cast<std::uint32_t>(ib));
}

__device__ int next_pow2(int x) {
    int p = 1;
    while (p < x) p <<= 1;
    return p;
}

// Bitonic sort of the first `count` pairs, padded to a power of two with
// empty slots; the block's threads share the work.
__device__ void block_sort(float* key, std::int32_t* idx, int count) {
    const int size = next_pow2(count);
    for (int t = count + threadIdx.x; t < size; t += blockDim.x) {
        key[t] = INFINITY;
        idx[t] = -1;
    }
    for (int span = 2; span <= size; span <<= 1) {
        for (int stride = span >> 1; stride > 0; stride >>= 1) {
            __syncthreads();
            for (int t = threadIdx.x; t < size / 2; t += blockDim.x) {
                const int lo = 2 * t - (t & (stride - 1));
                const int hi = lo + stride;
                const bool ascending = (lo & span) == 0;
                if (before(key[hi], idx[hi], key[lo], idx[lo]) == ascending) {
                    const float k0 = key[lo];
                    key[lo] = key[hi];
                    key[hi] = k0;
                    const std::int32_t i0 = idx[lo];
                    idx[lo] = idx[hi];
                    idx[hi] = i0;
                }
            }
        }
    }
    __syncthreads();
}

__global__ void merge_tile_kernel(float* score, std::int32_t* index, int k, const float* tile,
                                  std::int64_t n_cols, const float* col_bias,
                                  std::int64_t row_first, std::int64_t col_first,
                                  bool exclude_self) {
    __shared__ float key[kSortCapacity];
    __shared__ std::int32_t idx[kSortCapacity];
    __shared__ int n_candidates;
    const std::int64_t row = blockIdx.x;
    float* row_score = score + row * k;
    std::int32_t* row_index = index + row * k;
    for (int t = threadIdx.x; t < k; t += blockDim.x) {
        key[t] = row_score[t];
        idx[t] = row_index[t];
    }
    if (threadIdx.x == 0) n_candidates = 0;
    __syncthreads();
    // Only candidates beating the current k-th enter the sort; the tile width
    // limit guarantees they all fit. Their order of arrival does not matter:
    // the sort's total order fixes the result.
    const float worst = key[k - 1];
    const std::int32_t worst_index = idx[k - 1];
    const std::int64_t self = exclude_self ? row_first + row : -1;
    const float* values = tile + row * n_cols;
    for (std::int64_t j = threadIdx.x; j < n_cols; j += blockDim.x) {
        const float s = (col_bias ? col_bias[j] : 0.0f) - values[j];
        const std::int32_t id = static_cast<std::int32_t>(col_first + j);
        if (col_first + j == self || !before(s, id, worst, worst_index)) continue;
        const int slot = k + atomicAdd(&n_candidates, 1);
        key[slot] = s;
        idx[slot] = id;
    }
    __syncthreads();
    if (n_candidates == 0) return;
    block_sort(key, idx, k + n_candidates);
    for (int t = threadIdx.x; t < k; t += blockDim.x) {
        row_score[t] = key[t];
        row_index[t] = idx[t];
    }
}

__global__ void finish_kernel(float* score, std::int32_t* index, int k, const float* queries,
                              const float* data, std::int64_t dim, Metric metric) {
    __shared__ float key[kMaxK];
    __shared__ std::int32_t idx[kMaxK];
    const std::int64_t row = blockIdx.x;
    for (int t = threadIdx.x; t < k; t += blockDim.x) {
        const std::int32_t id = index[row * k + t];
        idx[t] = id;
        key[t] = id < 0 ? INFINITY
                        : static_cast<float>(exact_distance(queries + row * dim,
                                                            data + id * dim, dim, metric));
    }
    __syncthreads();
    block_sort(key, idx, k);
    for (int t = threadIdx.x; t < k; t += blockDim.x) {
        score[row * k + t] = key[t];
        index[row * k + t] = idx[t];
    }
}

void check_k(int k) {
    if (k < 1 || k > kMaxK)
        throw std::invalid_argument("k must be in [1, " + std::to_string(kMaxK) + "] on the GPU");
}

// One block per row: at most kMaxBlocks rows a call.
void check_rows(std::int64_t n_rows) { require(n_rows <= kMaxBlocks, "at most 2^31 - 1 rows a call on the GPU"); }

}  // namespace

int knn_max_tile_width(int k) {
    check_k(k);
    return kSortCapacity - k;
}

void knn_merge_tile(float* score, std::int32_t* index, std::int64_t n_rows, int k,
                    const float* tile, std::int64_t n_cols, const float* col_bias,
                    std::int64_t row_first, std::int64_t col_first, bool exclude_self,
                    std::uintptr_t stream) {
    if (n_cols > knn_max_tile_width(k))
        throw std::invalid_argument("tile wider than knn_max_tile_width(k)");
    check_rows(n_rows);
    if (n_rows == 0 || n_cols == 0) return;
    merge_tile_kernel<<<blocks_for(n_rows, 1), kThreads, 0, as_stream(stream)>>>(
        score, index, k, tile, n_cols, col_bias, row_first, col_first, exclude_self);
    check_launch("knn_merge_tile launch");
}

void knn_finish(float* score, std::int32_t* index, std::int64_t n_rows, int k,
                const float* queries, const float* data, std::int64_t dim, Metric metric,
                std::uintptr_t stream) {
    check_k(k);
    check_rows(n_rows);
    require(is_metric_code(static_cast<int>(metric)), "unknown metric code");
    if (n_rows == 0) return;
    finish_kernel<<<blocks_for(n_rows, 1), kThreads, 0, as_stream(stream)>>>(
        score, index, k, queries, data, dim, metric);
    check_launch("knn_finish launch");
}

}  // namespace latentcore::cuda
