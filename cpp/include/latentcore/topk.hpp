// Top-k selection: the k smallest (score, index) pairs of each row, ties broken
// by the smaller index. Written once and shared: it finishes every k-NN tile
// and keeps the k largest pre-activations of a TopK sparse code (scores negated).
#pragma once

#include <limits>
#include <vector>

#include "latentcore/common.hpp"

namespace latentcore {

// One row's running selection: a binary max-heap of k (score, index) pairs in
// caller-owned storage; the root is the worst pair kept so far.
struct TopKRow {
    float* score;
    index_t* index;
    int k;

    static bool worse(float sa, index_t ia, float sb, index_t ib) {
        return sa > sb || (sa == sb && ia > ib);
    }

    void clear() const {
        for (int i = 0; i < k; ++i) {
            score[i] = std::numeric_limits<float>::infinity();
            index[i] = -1;
        }
    }

    float threshold() const { return score[0]; }

    // Offers (s, j); keeps it when it beats the current worst pair.
    void push(float s, index_t j) const {
        if (worse(score[0], index[0], s, j)) sift_down(s, j, k);
    }

    // Turns the heap into ascending (score, index) order, in place.
    void sort() const {
        for (int end = k - 1; end > 0; --end) {
            const float s = score[end];
            const index_t j = index[end];
            score[end] = score[0];
            index[end] = index[0];
            sift_down(s, j, end);
        }
    }

  private:
    // Puts (s, j) at the root of the heap's first `size` slots and restores order.
    void sift_down(float s, index_t j, int size) const {
        int pos = 0;
        for (;;) {
            int child = 2 * pos + 1;
            if (child >= size) break;
            if (child + 1 < size && worse(score[child + 1], index[child + 1], score[child], index[child]))
                ++child;
            if (!worse(score[child], index[child], s, j)) break;
            score[pos] = score[child];
            index[pos] = index[child];
            pos = child;
        }
        score[pos] = s;
        index[pos] = j;
    }
};

// Offers (bias[j] + sign * values[j], first_index + j) for j in [0, n) to `row`,
// skipping the index `skip` (-1 skips nothing); bias may be null (zero).
// Most candidates lose to the current threshold, so blocks of 16 are screened
// with a vectorised test before any heap work. Candidates scoring above
// `cutoff` are skipped too: the caller's promise that k of them score at most that.
void scan_into_topk(const TopKRow& row, const float* values, const float* bias, float sign,
                    size_type n, index_t first_index, index_t skip,
                    float cutoff = std::numeric_limits<float>::infinity());

// One row's k smallest (score, index) pairs of bias[j] + sign * values[j],
// sorted ascending, where sign = -1 when largest (scores are then negated
// back: the k largest of values + bias, descending) and bias is the column
// bias already multiplied by sign (null for none).
void topk_of_row(const float* values, size_type n_cols, int k, bool largest, const float* signed_bias,
                 float* out_score, index_t* out_index);

// The column bias as topk_of_row takes it (negated when largest); empty for
// a null bias, whose data() then passes null on.
std::vector<float> signed_column_bias(const float* col_bias, size_type n_cols, bool largest);

// The k smallest entries of each row of a dense (n_rows, n_cols) matrix plus
// col_bias (n_cols, or null for none), in ascending order; largest=true
// selects the k largest (returned descending). The bias is added as the rows
// are scanned, so a TopK encoder's pre-activations x W^T + b need no extra
// pass over the (batch, n_latents) matrix.
void select_topk_rows(const float* values, size_type n_rows, size_type n_cols, int k, bool largest,
                      const float* col_bias, float* out_score, index_t* out_index, int n_threads);

}  // namespace latentcore
