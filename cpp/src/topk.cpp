#include "latentcore/topk.hpp"

#include <algorithm>
#include <vector>

namespace latentcore {

namespace {
constexpr int kScreen = 16;
}

LATENTCORE_DISPATCH
void scan_into_topk(const TopKRow& row, const float* values, const float* bias, float sign,
                    size_type n, index_t first_index, index_t skip) {
    float block[kScreen];
    for (size_type start = 0; start < n; start += kScreen) {
        const int len = static_cast<int>(std::min<size_type>(kScreen, n - start));
        const float* v = values + start;
        if (bias) {
            const float* b = bias + start;
            for (int t = 0; t < len; ++t) block[t] = b[t] + sign * v[t];
        } else {
            for (int t = 0; t < len; ++t) block[t] = sign * v[t];
        }
        // `<=` keeps equal scores, whose smaller index may still win the tie.
        const float thr = row.threshold();
        int hits = 0;
        for (int t = 0; t < len; ++t) hits += block[t] <= thr;
        if (!hits) continue;
        for (int t = 0; t < len; ++t) {
            const index_t j = first_index + static_cast<index_t>(start + t);
            if (block[t] <= row.threshold() && j != skip) row.push(block[t], j);
        }
    }
}

void select_topk_rows(const float* values, size_type n_rows, size_type n_cols, int k, bool largest,
                      const float* col_bias, float* out_score, index_t* out_index, int n_threads) {
    const float sign = largest ? -1.0f : 1.0f;
    // scan_into_topk offers bias + sign * value: the bias takes the sign too.
    std::vector<float> signed_bias(col_bias ? n_cols : 0);
    for (size_type j = 0; j < static_cast<size_type>(signed_bias.size()); ++j) signed_bias[j] = sign * col_bias[j];
    const float* bias = col_bias ? signed_bias.data() : nullptr;
#pragma omp parallel for schedule(static) num_threads(resolve_threads(n_threads))
    for (size_type r = 0; r < n_rows; ++r) {
        TopKRow row{out_score + r * k, out_index + r * k, k};
        row.clear();
        scan_into_topk(row, values + r * n_cols, bias, sign, n_cols, 0, -1);
        row.sort();
        if (largest)
            for (int t = 0; t < k; ++t) row.score[t] = -row.score[t];
    }
}

}  // namespace latentcore
