#include "latentcore/walks.hpp"

#include "latentcore/random.hpp"

#include <algorithm>
#include <vector>

namespace latentcore {

namespace {

// Walks a thread advances together, one step each in turn: their cache
// misses (the graph is read at random) overlap instead of queueing.
constexpr int kInterleavedWalks = 8;

// One draw from node v's out-edges by weight (alias method); -1 at a sink.
// Without tables (keep == nullptr: every row's weights are equal) the slot
// is drawn as alias_draw draws it, so the walks are the same either way.
index_t weighted_neighbor(const CsrGraph<float>& g, const float* keep, const index_t* alias,
                          index_t v, Rng& rng) {
    const std::int64_t begin = g.indptr[v], degree = g.indptr[v + 1] - begin;
    if (degree == 0) return -1;
    const std::uint64_t r = rng.next();
    if (!keep) return g.indices[begin + static_cast<std::int64_t>(((r >> 32) * static_cast<std::uint64_t>(degree)) >> 32)];
    return g.indices[begin + alias_draw(keep + begin, alias + begin, degree, r)];
}

bool is_neighbor(const CsrGraph<float>& g, index_t from, index_t to) {
    const index_t* first = g.indices + g.indptr[from];
    const index_t* last = g.indices + g.indptr[from + 1];
    return std::binary_search(first, last, to);
}

}  // namespace

void build_alias_tables(const CsrGraph<float>& g, float* keep, index_t* alias, int n_threads) {
#pragma omp parallel num_threads(resolve_threads(n_threads))
    {
        std::vector<double> scaled;
        std::vector<index_t> small, large;
#pragma omp for schedule(dynamic, 1024)
        for (size_type v = 0; v < g.n_rows; ++v) {
            const std::int64_t begin = g.indptr[v];
            const index_t degree = static_cast<index_t>(g.indptr[v + 1] - begin);
            if (degree == 0) continue;
            double total = 0.0;
            for (index_t t = 0; t < degree; ++t) total += g.weights[begin + t];
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
        }
    }
}

void sample_walks(const CsrGraph<float>& g, const float* keep, const index_t* alias,
                  const index_t* starts, size_type n_walks, int walk_length, double p, double q,
                  std::uint64_t seed, std::uint64_t first_walk, index_t* walks, int n_threads) {
    const bool biased = p != 1.0 || q != 1.0;
    const double back = 1.0 / p, away = 1.0 / q;
    const double ceiling = std::max({back, 1.0, away});
    const size_type n_groups = (n_walks + kInterleavedWalks - 1) / kInterleavedWalks;
#pragma omp parallel for schedule(dynamic, 32) num_threads(resolve_threads(n_threads))
    for (size_type group = 0; group < n_groups; ++group) {
        const size_type first = group * kInterleavedWalks;
        const int count = static_cast<int>(std::min<size_type>(kInterleavedWalks, n_walks - first));
        Rng rngs[kInterleavedWalks];
        index_t* rows[kInterleavedWalks];
        int live = count;
        for (int i = 0; i < count; ++i) {
            rngs[i] = Rng(seed, first_walk + static_cast<std::uint64_t>(first + i));
            rows[i] = walks + (first + i) * walk_length;
            std::fill(rows[i], rows[i] + walk_length, index_t{-1});
            rows[i][0] = starts[first + i];
        }
        for (int step = 1; step < walk_length && live > 0; ++step) {
            for (int i = 0; i < count; ++i) {
                index_t* walk = rows[i];
                if (walk[step - 1] < 0) continue;  // stopped at a sink
                Rng& rng = rngs[i];
                const index_t here = walk[step - 1];
                index_t next = weighted_neighbor(g, keep, alias, here, rng);
                if (next >= 0 && biased && step >= 2) {
                    const index_t previous = walk[step - 2];
                    for (;;) {
                        const double bias = next == previous           ? back
                                            : is_neighbor(g, previous, next) ? 1.0
                                                                             : away;
                        if (rng.uniform() * ceiling < bias) break;
                        next = weighted_neighbor(g, keep, alias, here, rng);
                    }
                }
                walk[step] = next;
                if (next < 0) --live;
                else __builtin_prefetch(g.indptr + next);
            }
        }
    }
}

}  // namespace latentcore
