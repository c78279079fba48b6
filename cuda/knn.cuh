// CUDA k-NN kernels behind plain pointers: no CUDA header leaks into the
// bindings, which the host compiler builds (the FAISS gpu/ layout).
// Arrays are device pointers, row-major; `stream` is a cudaStream_t as an integer
// (cupy's current stream), and every call is asynchronous on it.
#pragma once

#include <cstdint>

#include "latentcore/common.hpp"

namespace latentcore::cuda {

// Widest tile knn_merge_tile accepts for k kept neighbours (1 <= k <= 1024).
int knn_max_tile_width(int k);

// Folds a tile of inner products into running selections. Row r of `score` /
// `index` (n_rows, k) holds its best k (score, index) pairs sorted ascending
// (ties: smaller index; empty slots are (+inf, -1)); candidates are
// (col_bias[j] - tile[r, j], col_first + j), col_bias null meaning zero; with
// exclude_self, index row_first + r is skipped.
void knn_merge_tile(float* score, std::int32_t* index, std::int64_t n_rows, int k,
                    const float* tile, std::int64_t n_cols, const float* col_bias,
                    std::int64_t row_first, std::int64_t col_first, bool exclude_self,
                    std::uintptr_t stream);

// Replaces the scores by exact distances between queries[r] and data[index[r, t]]
// (latentcore::exact_distance, the C++ kernel's) and re-sorts rows.
void knn_finish(float* score, std::int32_t* index, std::int64_t n_rows, int k,
                const float* queries, const float* data, std::int64_t dim, Metric metric,
                std::uintptr_t stream);

}  // namespace latentcore::cuda
