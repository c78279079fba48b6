#include "latentcore/topk.hpp"

#include "latentcore/parallel.hpp"

#include <algorithm>
#include <vector>

namespace latentcore {

namespace {
constexpr int kScreen = 16;
}

LATENTCORE_DISPATCH
void scan_into_topk(const TopKRow& row, const float* values, const float* bias, float sign,
                    size_type n, index_t first_index, index_t skip, float cutoff) {
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
        const float thr = std::min(row.threshold(), cutoff);
        int hits = 0;
        for (int t = 0; t < len; ++t) hits += block[t] <= thr;
        if (!hits) continue;
        for (int t = 0; t < len; ++t) {
            const index_t j = first_index + static_cast<index_t>(start + t);
            if (block[t] <= std::min(row.threshold(), cutoff) && j != skip) row.push(block[t], j);
        }
    }
}

namespace {

// Groups per kept entry when a row is cut off in advance (see group_cutoff).
constexpr size_type kGroupsPerK = 4;

// min over j of bias[j] + sign * values[j] (bias null: zero), in eight
// independent lanes so that it vectorises without -ffast-math.
LATENTCORE_DISPATCH
float group_best(const float* values, const float* bias, float sign, size_type n) {
    constexpr int kLanes = 8;
    float lanes[kLanes];
    for (int t = 0; t < kLanes; ++t) lanes[t] = std::numeric_limits<float>::infinity();
    size_type j = 0;
    if (bias) {
        for (; j + kLanes <= n; j += kLanes)
            for (int t = 0; t < kLanes; ++t) {
                const float s = bias[j + t] + sign * values[j + t];
                lanes[t] = s < lanes[t] ? s : lanes[t];
            }
    } else {
        for (; j + kLanes <= n; j += kLanes)
            for (int t = 0; t < kLanes; ++t) {
                const float s = sign * values[j + t];
                lanes[t] = s < lanes[t] ? s : lanes[t];
            }
    }
    float b = lanes[0];
    for (int t = 1; t < kLanes; ++t) b = std::min(b, lanes[t]);
    for (; j < n; ++j) b = std::min(b, (bias ? bias[j] : 0.0f) + sign * values[j]);
    return b;
}

// A score that at least k entries of the row reach: the k-th best of the
// best scores of kGroupsPerK * k groups, each group's best being a distinct
// entry. Scanning against it from the start skips the heap work that a row
// otherwise spends while its threshold is still loose (most of it at k = 32).
float group_cutoff(const float* values, const float* bias, float sign, size_type n, int k,
                   std::vector<float>& best) {
    const size_type groups = kGroupsPerK * k, width = n / groups;
    best.resize(groups);
    for (size_type g = 0; g < groups; ++g) {
        const size_type first = g * width, last = g + 1 == groups ? n : first + width;
        best[g] = bias ? group_best(values + first, bias + first, sign, last - first)
                       : group_best(values + first, nullptr, sign, last - first);
    }
    std::nth_element(best.begin(), best.begin() + (k - 1), best.end());
    return best[k - 1];
}

}  // namespace

void topk_of_row(const float* values, size_type n_cols, int k, bool largest, const float* signed_bias,
                 float* out_score, index_t* out_index) {
    const float sign = largest ? -1.0f : 1.0f;
    TopKRow row{out_score, out_index, k};
    row.clear();
    float cutoff = std::numeric_limits<float>::infinity();
    // Below k = 16 the threshold tightens fast enough alone (the extra pass
    // costs more than it saves: measured in bench/cpp/bench_sparse).
    if (k >= 16 && n_cols >= 4 * kGroupsPerK * static_cast<size_type>(k)) {  // groups of at least 4
        thread_local std::vector<float> best;
        cutoff = group_cutoff(values, signed_bias, sign, n_cols, k, best);
    }
    scan_into_topk(row, values, signed_bias, sign, n_cols, 0, -1, cutoff);
    row.sort();
    if (largest)
        for (int t = 0; t < k; ++t) row.score[t] = -row.score[t];
}

std::vector<float> signed_column_bias(const float* col_bias, size_type n_cols, bool largest) {
    std::vector<float> signed_bias(col_bias ? n_cols : 0);
    for (size_type j = 0; j < static_cast<size_type>(signed_bias.size()); ++j)
        signed_bias[j] = largest ? -col_bias[j] : col_bias[j];
    return signed_bias;
}

void select_topk_rows(const float* values, size_type n_rows, size_type n_cols, int k, bool largest,
                      const float* col_bias, float* out_score, index_t* out_index, int n_threads) {
    const std::vector<float> signed_bias = signed_column_bias(col_bias, n_cols, largest);
    ParallelWork work;
#pragma omp parallel for schedule(static) num_threads(resolve_threads(n_threads))
    for (size_type r = 0; r < n_rows; ++r)
        work.run([&] {
            topk_of_row(values + r * n_cols, n_cols, k, largest, col_bias ? signed_bias.data() : nullptr,
                        out_score + r * k, out_index + r * k);
        });
    work.finish();
}

}  // namespace latentcore
