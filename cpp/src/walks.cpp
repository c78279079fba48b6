#include "latentcore/walks.hpp"

#include "latentcore/parallel.hpp"
#include "latentcore/random.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

namespace latentcore {

namespace {

// Walks a thread advances together, one step each in turn: their cache
// misses (the graph is read at random) overlap instead of queueing.
constexpr int kInterleavedWalks = 8;

// Rounds of steps between two interrupt polls of a group of walks.
constexpr int kPollSteps = 4;

// The graph as node2vec_step (latentcore/random.hpp) reads it. Without
// tables (keep == nullptr: every row's weights are equal) a slot is drawn as
// alias_draw draws it and every edge's share is 1 / degree, which is what
// the tables and the row totals give for equal weights: the walks are the
// same either way.
struct WalkGraph {
    const CsrGraph<float>& g;
    const float* keep;
    const index_t* alias;
    const double* totals;
    const float* maxima;

    void row(index_t v, std::int64_t& begin, std::int64_t& end) const {
        begin = g.indptr[v];
        end = g.indptr[v + 1];
    }
    std::int64_t draw(std::int64_t begin, std::int64_t degree, std::uint64_t r) const {
        if (!keep) return static_cast<std::int64_t>(((r >> 32) * static_cast<std::uint64_t>(degree)) >> 32);
        return alias_draw(keep + begin, alias + begin, degree, r);
    }
    index_t target(std::int64_t e) const { return g.indices[e]; }
    double share(std::int64_t e, index_t v, std::int64_t degree) const {
        return keep ? static_cast<double>(g.weights[e]) / totals[v] : 1.0 / static_cast<double>(degree);
    }
    double largest_share(index_t v, std::int64_t degree) const {
        return keep ? static_cast<double>(maxima[v]) / totals[v] : 1.0 / static_cast<double>(degree);
    }
    // A binary search without branches on the data (conditional moves): its
    // comparisons are coin flips a predictor cannot learn.
    bool is_neighbor(index_t from, index_t to) const {
        const index_t* base = g.indices + g.indptr[from];
        std::int64_t n = g.indptr[from + 1] - g.indptr[from];
        if (n == 0) return false;
        while (n > 1) {
            const std::int64_t half = n / 2;
            base = base[half] <= to ? base + half : base;
            n -= half;
        }
        return *base == to;
    }

    // One draw from v's out-edges by weight (alias method); -1 at a sink.
    index_t weighted_neighbor(index_t v, Rng& rng) const {
        const std::int64_t begin = g.indptr[v], degree = g.indptr[v + 1] - begin;
        if (degree == 0) return -1;
        return g.indices[begin + draw(begin, degree, rng.next())];
    }
};

}  // namespace

void build_alias_tables(const CsrGraph<float>& g, float* keep, index_t* alias, int n_threads) {
    ParallelWork work;
#pragma omp parallel num_threads(resolve_threads(n_threads))
    {
        std::vector<double> scaled;
        std::vector<index_t> small, large;
#pragma omp for schedule(dynamic, 256)
        for (size_type v = 0; v < g.n_rows; ++v) {
            work.run([&] {
                const std::int64_t begin = g.indptr[v];
                const index_t degree = static_cast<index_t>(g.indptr[v + 1] - begin);
                if (degree == 0) return;
                double total = 0.0;
                for (index_t t = 0; t < degree; ++t) total += g.weights[begin + t];
                if (!(total > 0.0) || !(total <= 1.7976931348623157e308))
                    throw std::invalid_argument("weights: row " + std::to_string(v) +
                                                " has no positive finite total weight");
                scaled.assign(degree, 0.0);
                small.clear();
                large.clear();
                for (index_t t = 0; t < degree; ++t) {
                    scaled[t] = g.weights[begin + t] * degree / total;
                    (scaled[t] < 1.0 ? small : large).push_back(t);
                    alias[begin + t] = t;
                }
                while (!small.empty() && !large.empty()) {
                    const index_t s = small.back(), l = large.back();
                    small.pop_back();
                    keep[begin + s] = static_cast<float>(scaled[s]);
                    alias[begin + s] = l;
                    scaled[l] -= 1.0 - scaled[s];
                    if (scaled[l] < 1.0) {
                        large.pop_back();
                        small.push_back(l);
                    }
                }
                // What remains is 1 up to rounding: always kept.
                for (index_t t : small) keep[begin + t] = 1.0f;
                for (index_t t : large) keep[begin + t] = 1.0f;
            });
        }
    }
    work.finish();
}

void sample_walks(const CsrGraph<float>& g, const float* keep, const index_t* alias, const double* totals,
                  const float* maxima, const index_t* starts, size_type n_walks, int walk_length, double p, double q,
                  std::uint64_t seed, std::uint64_t first_walk, index_t* walks, int n_threads) {
    const bool biased = p != 1.0 || q != 1.0;
    const Node2VecBias bias(p, q);
    ParallelWork work;
    const WalkGraph graph{g, keep, alias, totals, maxima};
    const size_type n_groups = (n_walks + kInterleavedWalks - 1) / kInterleavedWalks;
#pragma omp parallel for schedule(dynamic, 32) num_threads(resolve_threads(n_threads))
    for (size_type group = 0; group < n_groups; ++group) {
        work.run([&] {
            const size_type first = group * kInterleavedWalks;
            const int count = static_cast<int>(std::min<size_type>(kInterleavedWalks, n_walks - first));
            Rng rngs[kInterleavedWalks];
            index_t* rows[kInterleavedWalks];
            int live = count;
            for (int i = 0; i < count; ++i) {
                rngs[i] = Rng(seed, first_walk + static_cast<std::uint64_t>(first + i));
                rows[i] = walks + (first + i) * static_cast<size_type>(walk_length);
                std::fill(rows[i], rows[i] + walk_length, index_t{-1});
                rows[i][0] = starts[first + i];
            }
            for (int step = 1; step < walk_length && live > 0; ++step) {
                if (step % kPollSteps == 0 && work.stopped()) return;
                for (int i = 0; i < count; ++i) {
                    index_t* walk = rows[i];
                    if (walk[step - 1] < 0) continue;  // stopped at a sink
                    const index_t here = walk[step - 1];
                    const index_t next = biased && step >= 2
                                             ? node2vec_step(graph, here, walk[step - 2], bias, rngs[i])
                                             : graph.weighted_neighbor(here, rngs[i]);
                    walk[step] = next;
                    if (next < 0) --live;
                    else __builtin_prefetch(g.indptr + next);
                }
            }
        });
    }
    work.finish();
}

}  // namespace latentcore
