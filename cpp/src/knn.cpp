#include "latentcore/knn.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "latentcore/distance.hpp"
#include "latentcore/parallel.hpp"
#include "latentcore/topk.hpp"

namespace latentcore {

namespace {

struct Heaps {
    float* score;
    index_t* index;
    int k;
    TopKRow row(size_type r) const { return TopKRow{score + r * k, index + r * k, k}; }
};

// One block of rows made ready for the ranking GEMM: centred (euclidean) or
// unit-normalised (cosine), with the per-row bias that turns inner products
// into rankable scores: score(a, b) = |b|^2 / 2 - <a, b> ranks b by |a - b|.
struct PreparedBlock {
    std::vector<float> rows;
    std::vector<float> half_norm;

    // scale: a power of two (exact) that keeps every score finite and normal;
    // see ranking_scale. A double: for subnormal data it exceeds float's range.
    void load(const KnnProblem& p, const float* src, size_type count, double scale) {
        rows.resize(count * p.dim);
        half_norm.assign(count, 0.0f);
        const float* center = p.metric == Metric::inner_product ? nullptr : p.center;
        for (size_type r = 0; r < count; ++r) {
            const float* x = src + r * p.dim;
            float* y = rows.data() + r * p.dim;
            if (p.metric == Metric::cosine) {
                // In double: 1/|x| overflows float for subnormal rows.
                double ss = 0.0;
                for (size_type t = 0; t < p.dim; ++t) ss += static_cast<double>(x[t]) * x[t];
                const double inv = 1.0 / std::sqrt(ss);
                for (size_type t = 0; t < p.dim; ++t) y[t] = static_cast<float>(x[t] * inv);
            } else if (scale != 1.0) {
                // Scaled before the subtraction, which could overflow otherwise.
                for (size_type t = 0; t < p.dim; ++t)
                    y[t] = static_cast<float>(x[t] * scale - (center ? center[t] * scale : 0.0));
            } else if (center) {
                for (size_type t = 0; t < p.dim; ++t) y[t] = x[t] - center[t];
            } else {
                std::copy(x, x + p.dim, y);
            }
            if (p.metric == Metric::sqeuclidean || p.metric == Metric::euclidean) {
                float ss = 0.0f;
                for (size_type t = 0; t < p.dim; ++t) ss += y[t] * y[t];
                half_norm[r] = 0.5f * ss;
            }
        }
    }
};

// The largest |value| of a (rows, dim) matrix (0 for none).
float max_abs(const float* x, size_type count, int n_threads) {
    float m = 0.0f;
#pragma omp parallel for reduction(max : m) schedule(static) num_threads(resolve_threads(n_threads))
    for (size_type i = 0; i < count; ++i) m = std::max(m, std::fabs(x[i]));
    return m;
}

// tile (ma, nb) row-major = a (ma, dim) . b (nb, dim)^T, through column-major
// SGEMM as tile^T = b . a^T.
void inner_products(Sgemm sgemm, const PreparedBlock& a, size_type ma, const PreparedBlock& b,
                    size_type nb, size_type dim, float* tile) {
    const int m = static_cast<int>(nb), n = static_cast<int>(ma), k = static_cast<int>(dim);
    const float one = 1.0f, zero = 0.0f;
    sgemm("T", "N", &m, &n, &k, &one, b.rows.data(), &k, a.rows.data(), &k, &zero, tile, &m);
}

// Columns are folded in stripes whose thresholds stay in registers / L1.
constexpr size_type kStripe = 64;

LATENTCORE_DISPATCH
void fold_stripe(const Heaps& heaps, size_type col_begin, const float* tile, size_type n_rows,
                 size_type n_cols, size_type j0, size_type j1, const float* row_bias,
                 index_t row_first) {
    float thr[kStripe];
    float block[kStripe];
    const size_type w = j1 - j0;
    for (size_type t = 0; t < w; ++t) thr[t] = heaps.row(col_begin + j0 + t).threshold();
    for (size_type i = 0; i < n_rows; ++i) {
        const float* v = tile + i * n_cols + j0;
        const float b = row_bias[i];
        int hits = 0;
        for (size_type t = 0; t < w; ++t) {
            block[t] = b - v[t];
            hits += block[t] <= thr[t];
        }
        if (!hits) continue;
        for (size_type t = 0; t < w; ++t) {
            if (block[t] > thr[t]) continue;
            TopKRow row = heaps.row(col_begin + j0 + t);
            row.push(block[t], row_first + static_cast<index_t>(i));
            thr[t] = row.threshold();
        }
    }
}

// The transposed fold of a symmetric problem: the tile's columns are points
// too, and receive the tile's rows as candidates.
void fold_columns(const Heaps& heaps, size_type col_begin, const float* tile, size_type n_rows,
                  size_type n_cols, const float* row_bias, index_t row_first) {
    for (size_type j0 = 0; j0 < n_cols; j0 += kStripe)
        fold_stripe(heaps, col_begin, tile, n_rows, n_cols, j0, std::min(n_cols, j0 + kStripe),
                    row_bias, row_first);
}

// latentcore::exact_distance (distance.hpp), not inlined: inside
// ParallelWork::run's try block g++ keeps the running sum in memory, which
// made the re-ranking twice as slow.
[[gnu::noinline]] double row_distance(const float* a, const float* b, size_type dim, Metric metric) {
    return exact_distance(a, b, dim, metric);
}

// Ranks one row's candidates by exact distance and writes the best k. The
// ranking is in double: a distance beyond float's range is written as inf
// but still ranked by its value.
void finish_row(const KnnProblem& p, const float* query, const index_t* candidates, int n_candidates,
                float* distances, index_t* indices, std::vector<std::pair<double, index_t>>& scratch) {
    scratch.clear();
    for (int t = 0; t < n_candidates; ++t) {
        // Every score is finite (ranking_scale), so each row's selection is
        // full; an empty slot would be a defect, not something to read through.
        if (candidates[t] < 0 || candidates[t] >= p.n) throw std::logic_error("k-NN selection left a slot empty");
        scratch.emplace_back(row_distance(query, p.data + candidates[t] * p.dim, p.dim, p.metric),
                             candidates[t]);
    }
    std::sort(scratch.begin(), scratch.end());
    for (int t = 0; t < p.k; ++t) {
        distances[t] = static_cast<float>(scratch[t].first);
        indices[t] = scratch[t].second;
    }
}

struct TilePair {
    size_type row_block, col_block;
};

// All-pairs: the tiles on and above the diagonal, ordered by their distance
// from it, so that tiles taken together by threads rarely share a block's lock.
// Queries: every (query block, data block), data-block-major for the same reason.
std::vector<TilePair> tile_order(size_type row_blocks, size_type col_blocks, bool symmetric) {
    std::vector<TilePair> order;
    if (symmetric) {
        for (size_type gap = 0; gap < row_blocks; ++gap)
            for (size_type r = 0; r + gap < row_blocks; ++r) order.push_back({r, r + gap});
    } else {
        for (size_type c = 0; c < col_blocks; ++c)
            for (size_type r = 0; r < row_blocks; ++r) order.push_back({r, c});
    }
    return order;
}

}  // namespace

double ranking_scale(double max_abs, size_type dim) {
    // |score| <= dim * (2 max_abs)^2 (centring at most doubles a value); keep
    // it near 1 when that bound leaves [2^-100, 2^100], far from float's
    // overflow (2^128) and from the subnormal products below 2^-126.
    const double bound = static_cast<double>(dim) * (2.0 * max_abs) * (2.0 * max_abs);
    if (max_abs == 0.0 || (bound <= 0x1p100 && bound >= 0x1p-100)) return 1.0;
    return std::ldexp(1.0, -std::ilogb(2.0 * max_abs));
}

int candidates_per_point(int k, size_type available) {
    const size_type extra = std::max<size_type>(8, k / 4);
    return static_cast<int>(std::min<size_type>(k + extra, available));
}

void exact_knn(const KnnProblem& p, Sgemm sgemm, size_type block, int n_threads, index_t* indices,
               float* distances) {
    const bool symmetric = p.queries == nullptr;
    const float* queries = symmetric ? p.data : p.queries;
    const size_type m = symmetric ? p.n : p.m;
    const int kc = candidates_per_point(p.k, symmetric && p.exclude_self ? p.n - 1 : p.n);
    std::vector<float> cand_score(m * kc, std::numeric_limits<float>::infinity());
    std::vector<index_t> cand_index(m * kc, index_t{-1});
    const Heaps heaps{cand_score.data(), cand_index.data(), kc};
    // A point kept among its own neighbours is a candidate from the start:
    // float32 scores cannot tell it from more than kc points within rounding
    // of it (a value 1e-19 beside nine zeros), which would crowd it out.
    const bool seed_self = symmetric && !p.exclude_self;
    if (seed_self)
        for (size_type r = 0; r < m; ++r)
            heaps.row(r).push(-std::numeric_limits<float>::infinity(), static_cast<index_t>(r));
    float largest = max_abs(p.data, p.n * p.dim, n_threads);
    if (!symmetric) largest = std::max(largest, max_abs(p.queries, p.m * p.dim, n_threads));
    if (p.center) largest = std::max(largest, max_abs(p.center, p.dim, 1));
    const double scale = ranking_scale(largest, p.dim);

    const size_type row_blocks = (m + block - 1) / block;
    const size_type col_blocks = (p.n + block - 1) / block;
    const std::vector<TilePair> order = tile_order(row_blocks, col_blocks, symmetric);
    // A heap block is folded into by one thread at a time; the k smallest of a
    // set does not depend on the order it arrives in, so neither does the result.
    std::vector<std::mutex> locks(row_blocks);
    ParallelWork work;

#pragma omp parallel num_threads(resolve_threads(n_threads))
    {
        PreparedBlock a, b;
        std::vector<float> tile;
        work.run([&] { tile.resize(block * block); });
#pragma omp for schedule(dynamic, 1)
        for (size_type t = 0; t < static_cast<size_type>(order.size()); ++t) {
            work.run([&] {
                const size_type i0 = order[t].row_block * block, i1 = std::min(m, i0 + block);
                const size_type j0 = order[t].col_block * block, j1 = std::min(p.n, j0 + block);
                const size_type rows = i1 - i0, cols = j1 - j0;
                a.load(p, queries + i0 * p.dim, rows, scale);
                const bool diagonal = symmetric && i0 == j0;
                const PreparedBlock& bb = diagonal ? a : (b.load(p, p.data + j0 * p.dim, cols, scale), b);
                inner_products(sgemm, a, rows, bb, cols, p.dim, tile.data());
                {
                    std::lock_guard<std::mutex> hold(locks[order[t].row_block]);
                    for (size_type i = 0; i < rows; ++i) {
                        const index_t self = diagonal ? static_cast<index_t>(i0 + i) : -1;  // seeded or excluded
                        scan_into_topk(heaps.row(i0 + i), tile.data() + i * cols, bb.half_norm.data(),
                                       -1.0f, cols, static_cast<index_t>(j0), self);
                    }
                }
                if (symmetric && !diagonal) {
                    std::lock_guard<std::mutex> hold(locks[order[t].col_block]);
                    fold_columns(heaps, j0, tile.data(), rows, cols, a.half_norm.data(),
                                 static_cast<index_t>(i0));
                }
            });
        }
        std::vector<std::pair<double, index_t>> scratch;
#pragma omp for schedule(static)
        for (size_type r = 0; r < m; ++r)
            work.run([&] {
                finish_row(p, queries + r * p.dim, cand_index.data() + r * kc, kc, distances + r * p.k,
                           indices + r * p.k, scratch);
            });
    }
    work.finish();
}

}  // namespace latentcore
