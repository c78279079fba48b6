// Random streams, alias-table draws and node2vec's second-order step, shared
// by the C++ and CUDA kernels: the same arithmetic on both sides, so a seed
// gives the same walks and the same negative samples on the CPU and the GPU.
// Plain C++ (no CUDA header); under nvcc the functions are also compiled for
// the device, where every product and sum that decides a draw is rounded
// alone (mul_rn, add_rn): no fused multiply-add may change a comparison.
#pragma once

#include <cstdint>

#include "latentcore/common.hpp"

namespace latentcore {

LATENTCORE_HOST_DEVICE inline std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// xoshiro256**, one stream per work item (a walk), seeded through splitmix64
// from (seed, stream): independent streams whatever thread runs the item.
struct Rng {
    std::uint64_t s[4];

    Rng() = default;  // unseeded: assign a seeded one before drawing
    LATENTCORE_HOST_DEVICE Rng(std::uint64_t seed, std::uint64_t stream) {
        std::uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);
        for (auto& v : s) v = splitmix64(x);
    }

    LATENTCORE_HOST_DEVICE static std::uint64_t rotl(std::uint64_t x, int k) {
        return (x << k) | (x >> (64 - k));
    }

    LATENTCORE_HOST_DEVICE std::uint64_t next() {
        const std::uint64_t result = rotl(s[1] * 5, 7) * 9;
        const std::uint64_t t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rotl(s[3], 45);
        return result;
    }

    // Uniform in [0, 1) with 53 random bits.
    LATENTCORE_HOST_DEVICE double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

    // Uniform in [0, n) for n < 2^32, by multiply-shift on 32 random bits.
    LATENTCORE_HOST_DEVICE std::uint32_t below(std::uint32_t n) {
        return static_cast<std::uint32_t>(((next() >> 32) * n) >> 32);
    }
};

// One draw from an alias table over `count` (< 2^31) outcomes stored at
// keep[0..count) and alias[0..count): outcome t keeps itself with
// probability keep[t], else becomes alias[t]. One 64-bit draw serves both
// choices: the high half picks the slot, the low half tosses its coin.
LATENTCORE_HOST_DEVICE inline std::int64_t alias_draw(const float* keep, const std::int32_t* alias,
                                                      std::int64_t count, std::uint64_t r) {
    const std::int64_t t =
        static_cast<std::int64_t>(((r >> 32) * static_cast<std::uint64_t>(count)) >> 32);
    return static_cast<double>(r & 0xffffffffULL) * 0x1.0p-32 < keep[t] ? t : alias[t];
}

// node2vec's biases (Grover & Leskovec 2016) for a step from `here` having
// come from `previous`: the next node x is drawn with probability
// proportional to w(here, x) * bias(x), where bias = 1/p if x == previous,
// 1 if x is an out-neighbour of previous, 1/q otherwise.
struct Node2VecBias {
    double back;      // 1/p
    double away;      // 1/q
    double ceiling;   // max(1, 1/q): the envelope over every x != previous
    double low;       // min(1, 1/q): below it every x != previous is accepted
    double back_accept;  // min(1/p, ceiling): how much of the return the envelope covers
    double fold;      // (1/p - ceiling) / ceiling when 1/p > ceiling, else 0
    bool away_is_ceiling;  // q < 1: "away" is the larger bias
    bool mixture;     // q > 1: drawn as the mixture of node2vec_step
    double q;

    LATENTCORE_HOST_DEVICE Node2VecBias(double p, double q_)
        : back(1.0 / p), away(1.0 / q_), ceiling(away > 1.0 ? away : 1.0), low(away < 1.0 ? away : 1.0),
          back_accept(back < ceiling ? back : ceiling),
          fold(back > ceiling ? (back - ceiling) / ceiling : 0.0), away_is_ceiling(away > 1.0),
          mixture(q_ > 1.0), q(q_) {}
};

// Rejections before a step draws from the exact distribution instead. A
// rejection costs about what one edge of the exact scan costs (a draw and a
// neighbour test against one neighbour test), so a row gets about twice its
// degree in trials, at most 64; with a huge q (>= 16 times the degree) a
// trial is accepted with probability about 1/q where previous and here share
// no neighbour, so the row is scanned at once. Any bound keeps the step exact
// (see node2vec_step).
LATENTCORE_HOST_DEVICE inline int node2vec_trials(std::int64_t degree, const Node2VecBias& b) {
    if (b.mixture && 16.0 * static_cast<double>(degree) <= b.q) return 0;
    return degree > 32 ? 64 : static_cast<int>(2 * degree);
}

// Rows up to this long keep their masses on the stack during the exact scan;
// longer ones are scanned twice.
constexpr int kNode2VecScanBuffer = 64;

// The position of `to` in v's sorted row [begin, end) (degree >= 1), or -1.
// Without branches on the data: its comparisons are coin flips.
template <typename Graph>
LATENTCORE_HOST_DEVICE std::int64_t node2vec_find(const Graph& g, std::int64_t begin, std::int64_t degree,
                                                  std::int32_t to) {
    std::int64_t at = begin, n = degree;  // the last entry <= to
    while (n > 1) {
        const std::int64_t half = n / 2;
        at = g.target(at + half) <= to ? at + half : at;
        n -= half;
    }
    return g.target(at) == to ? at : -1;
}

// One second-order step of node2vec from `here`, exactly node2vec's
// distribution, at a cost bounded for any p and q. Every mass below is in
// shares of here's total weight W (share(e) = w(e) / W).
//
// q <= 1: rejection against the first-order draw (alias tables, O(1) a
// draw) with the envelope ceiling = max(1, 1/q), every x != previous
// accepted with probability bias(x) / ceiling. The return step is the
// outlier when 1/p > ceiling (small p): its mass beyond the envelope,
// share(previous) * (1/p - ceiling), is folded out as a region of its own
// (KnightKing's "outlier folding", Yang et al. 2019), drawn with that exact
// mass, so the rejection rate depends on q alone, never on p; when 1/p <=
// ceiling the return is accepted with probability (1/p) / ceiling.
//
// q > 1: the mixture of three regions, each drawn with its exact mass:
//   A (mass 1/q): a first-order draw x, every node at the base bias 1/q;
//     accepted, except that x == previous is accepted with probability
//     min(1, q/p);
//   R (mass max(0, 1/p - 1/q) * share(previous)): the return, folded out;
//   B (the extra 1 - 1/q of the neighbours of previous): an envelope of mass
//     (1 - 1/q) * min(1, largest share * deg(previous)), proposed from
//     whichever row is shorter: a first-order draw x from here's row, kept
//     when x is a neighbour of previous; or a uniform x from previous's row,
//     kept when here has an edge to it with probability share / largest share.
// B proposed from previous's row makes a step out of a hub towards nodes it
// barely shares neighbours with take a few trials instead of ~q.
//
// After node2vec_trials(degree, b) rejections (extreme q, or a large p at a
// node whose only way on is back; none for rows short against a huge q) the
// step draws from the exact distribution, computed
// over the row: every trial is independent and, when it accepts, yields a
// sample of the exact distribution, so stopping after a fixed number of
// trials and drawing from the exact distribution leaves the result exact.
// A node with one out-edge takes it without a draw.
//
// Graph provides, on the host and under nvcc on the device:
//   void row(int32 v, int64& begin, int64& end)  v's out-edges [begin, end), sorted by target
//   int64 draw(int64 begin, int64 degree, uint64 r)  a first-order draw from
//       v's row by weight with the random bits r: an offset in [0, degree),
//       or -1 (corrupt tables)
//   int32 target(int64 e)                      the edge's target, or -1 (corrupt)
//   double share(int64 e, int32 v, int64 degree)  w(v, e) / sum of v's weights
//   double largest_share(int32 v, int64 degree)   the largest share of v's row
//   bool is_neighbor(int32 from, int32 to)     to is an out-neighbour of from
// Returns the next node, or -1 (only with corrupt tables).
template <typename Graph>
LATENTCORE_HOST_DEVICE std::int32_t node2vec_step(const Graph& g, std::int32_t here, std::int32_t previous,
                                                  const Node2VecBias& b, Rng& rng) {
    std::int64_t begin, end;
    g.row(here, begin, end);
    const std::int64_t degree = end - begin;
    if (degree <= 0) return -1;
    if (degree == 1) return g.target(begin);
    const bool needs_neighbors = b.low != b.ceiling;
    const int trials = node2vec_trials(degree, b);
    if (trials == 0) {
        // Straight to the exact distribution below.
    } else if (b.mixture) {
        std::int64_t previous_begin, previous_end;
        g.row(previous, previous_begin, previous_end);
        const std::int64_t previous_degree = previous_end - previous_begin;
        double returned = 0.0;  // region R
        if (b.back > b.away) {
            const std::int64_t at = node2vec_find(g, begin, degree, previous);
            if (at >= 0) returned = mul_rn(g.share(at, here, degree), b.back - b.away);
        }
        const double largest = g.largest_share(here, degree);
        const double spread = mul_rn(largest, static_cast<double>(previous_degree));
        // B proposed from previous's row (which holds here: never empty but
        // with corrupt tables on the GPU).
        const bool from_previous = previous_degree > 0 && spread < 1.0;
        const double extra = mul_rn(1.0 - b.away, from_previous ? spread : 1.0);  // region B
        const double base_and_return = add_rn(b.away, returned);
        const double total = add_rn(base_and_return, extra);
        for (int t = 0; t < trials; ++t) {
            const double u = mul_rn(rng.uniform(), total);
            if (u < b.away) {  // region A
                const std::int64_t offset = g.draw(begin, degree, rng.next());
                if (offset < 0) return -1;
                const std::int32_t x = g.target(begin + offset);
                if (x != previous || b.back >= b.away) return x;
                // previous at the base bias 1/q is more than its 1/p: keep q/p
                // of it (u is uniform on [0, 1/q)).
                if (u < b.back) return x;
                continue;
            }
            if (u < base_and_return) return previous;  // region R
            const double coin = (u - base_and_return) / extra;  // uniform on [0, 1)
            if (from_previous) {
                const std::int64_t slot = static_cast<std::int64_t>(
                    ((rng.next() >> 32) * static_cast<std::uint64_t>(previous_degree)) >> 32);
                const std::int32_t x = g.target(previous_begin + slot);
                if (x < 0 || x == previous) continue;
                const std::int64_t at = node2vec_find(g, begin, degree, x);
                if (at >= 0 && mul_rn(coin, largest) < g.share(at, here, degree)) return x;
            } else {
                const std::int64_t offset = g.draw(begin, degree, rng.next());
                if (offset < 0) return -1;
                const std::int32_t x = g.target(begin + offset);
                if (x >= 0 && x != previous && g.is_neighbor(previous, x)) return x;
            }
        }
    } else {
        // The folded return region, relative to the envelope's mass (1):
        // share(previous) * (1/p - ceiling) / ceiling.
        double folded = 0.0;
        if (b.fold > 0.0) {
            const std::int64_t at = node2vec_find(g, begin, degree, previous);
            if (at >= 0) folded = mul_rn(g.share(at, here, degree), b.fold);
        }
        const double region = add_rn(1.0, folded);
        for (int t = 0; t < trials; ++t) {
            double u = rng.uniform();
            if (folded > 0.0) {
                u = mul_rn(u, region);
                if (u >= 1.0) return previous;  // the folded return region
                // u is uniform on [0, 1) again: it serves as the acceptance coin.
            }
            const std::int64_t offset = g.draw(begin, degree, rng.next());
            if (offset < 0) return -1;
            const std::int32_t x = g.target(begin + offset);
            if (x < 0) return -1;
            const double coin = mul_rn(u, b.ceiling);
            if (x == previous) {
                if (coin < b.back_accept) return x;
                continue;
            }
            if (coin < b.low) return x;  // accepted whatever bias(x) is
            // low <= coin < ceiling: accepted iff bias(x) is the ceiling.
            if (needs_neighbors && g.is_neighbor(previous, x) != b.away_is_ceiling) return x;
        }
    }
    // The exact distribution over the row: shares * biases, cumulated.
    const auto mass_of = [&](std::int64_t e) {
        const std::int32_t x = g.target(e);
        if (x < 0) return 0.0;
        const double bias = x == previous ? b.back
                            : !needs_neighbors || g.is_neighbor(previous, x) ? 1.0
                                                                             : b.away;
        const double mass = mul_rn(g.share(e, here, degree), bias);
        return mass > 0.0 ? mass : 0.0;
    };
    double masses[kNode2VecScanBuffer];
    const bool kept = degree <= kNode2VecScanBuffer;
    double total = 0.0;
    for (std::int64_t e = begin; e < end; ++e) {
        const double mass = mass_of(e);
        if (kept) masses[e - begin] = mass;
        total = add_rn(total, mass);
    }
    if (!(total > 0.0) || !(total <= 1.7976931348623157e308)) {
        // Only with corrupt weights (all zero, infinite): a first-order draw.
        const std::int64_t offset = g.draw(begin, degree, rng.next());
        return offset < 0 ? -1 : g.target(begin + offset);
    }
    const double target = mul_rn(rng.uniform(), total);
    double cumulated = 0.0;
    std::int32_t last = -1;
    for (std::int64_t e = begin; e < end; ++e) {
        const double mass = kept ? masses[e - begin] : mass_of(e);
        if (mass == 0.0) continue;
        cumulated = add_rn(cumulated, mass);
        last = g.target(e);
        if (target < cumulated) return last;
    }
    return last;  // rounding left target at the very end
}

}  // namespace latentcore
