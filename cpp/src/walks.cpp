#include "latentcore/walks.hpp"

#include "latentcore/random.hpp"

#include <algorithm>
#include <vector>

namespace latentcore {

namespace {

// One draw from node v's out-edges by weight (alias method); -1 at a sink.
index_t weighted_neighbor(const CsrGraph<float>& g, const float* keep, const index_t* alias,
                          index_t v, Rng& rng) {
    const std::int64_t begin = g.indptr[v], degree = g.indptr[v + 1] - begin;
    if (degree == 0) return -1;
    return g.indices[begin + alias_draw(keep + begin, alias + begin, degree, rng.next())];
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
#pragma omp parallel for schedule(dynamic, 256) num_threads(resolve_threads(n_threads))
    for (size_type w = 0; w < n_walks; ++w) {
        Rng rng(seed, first_walk + static_cast<std::uint64_t>(w));
        index_t* walk = walks + w * walk_length;
        std::fill(walk, walk + walk_length, index_t{-1});
        walk[0] = starts[w];
        for (int step = 1; step < walk_length; ++step) {
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
            if (next < 0) break;
            walk[step] = next;
        }
    }
}

}  // namespace latentcore
