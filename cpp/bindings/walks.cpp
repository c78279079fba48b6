// Bindings of the random-walk kernels. python/latentcore/walks.py builds and
// validates the graph and documents; here every index the kernels follow is
// checked against the graph, so no call can read or write out of bounds.
#include <cmath>
#include <cstdint>

#include "arrays.hpp"
#include "latentcore/walks.hpp"

namespace nb = nanobind;
using namespace latentcore;
using bindings::narrow;
using bindings::require;

namespace {

using Cpu = bindings::Arrays<nb::device::cpu>;

// node2vec's p and q: 1/p and 1/q must stay finite, and so must every mass
// the exact step sums (shares <= 1 times a bias <= 1e100).
constexpr double kMinBias = 1e-100, kMaxBias = 1e100;

CsrGraph<float> as_graph(const Cpu::Vec<const std::int64_t>& indptr, const Cpu::Vec<const index_t>& indices,
                         const Cpu::Vec<const float>& weights) {
    require(indptr.shape(0) >= 2, "indptr needs n + 1 >= 2 entries");
    const size_type n = narrow<index_t>(indptr.shape(0) - 1, "the number of nodes");
    const std::int64_t nnz = static_cast<std::int64_t>(indices.shape(0));
    require(weights.shape(0) == indices.shape(0), "indices and weights must have the same length");
    const std::int64_t* ptr = indptr.data();
    require(ptr[0] == 0 && ptr[n] == nnz, "indptr must run from 0 to nnz");
    bool sorted = true;
    for (size_type v = 0; v < n; ++v) {
        // Unsigned difference: no overflow whatever the entries are.
        const std::uint64_t degree = static_cast<std::uint64_t>(ptr[v + 1]) - static_cast<std::uint64_t>(ptr[v]);
        sorted &= ptr[v] <= ptr[v + 1] && degree <= static_cast<std::uint64_t>(INT32_MAX);
    }
    require(sorted, "indptr must not decrease, by at most 2**31 - 1 edges a row");
    const index_t* idx = indices.data();
    bool inside = true;
    for (std::int64_t e = 0; e < nnz; ++e) inside &= idx[e] >= 0 && idx[e] < n;
    require(inside, "edge target out of range");
    return CsrGraph<float>{ptr, idx, weights.data(), n};
}

void alias_binding(Cpu::Vec<const std::int64_t> indptr, Cpu::Vec<const index_t> indices, Cpu::Vec<const float> weights,
                   Cpu::Vec<float> keep, Cpu::Vec<index_t> alias, int n_threads) {
    const CsrGraph<float> g = as_graph(indptr, indices, weights);
    require(keep.shape(0) == indices.shape(0) && alias.shape(0) == indices.shape(0),
            "keep and alias need one entry per edge");
    bool valid = true;
    for (size_t e = 0; e < weights.shape(0); ++e) valid &= std::isfinite(weights.data()[e]) && weights.data()[e] >= 0;
    require(valid, "weights must be finite and non-negative");
    nb::gil_scoped_release release;
    build_alias_tables(g, keep.data(), alias.data(), n_threads);
}

void sample_binding(Cpu::Vec<const std::int64_t> indptr, Cpu::Vec<const index_t> indices, Cpu::Vec<const float> weights,
                    Cpu::Vec<const float> keep, Cpu::Vec<const index_t> alias, Cpu::Vec<const double> totals,
                    Cpu::Vec<const float> maxima, Cpu::Vec<const index_t> starts, double p, double q,
                    std::uint64_t seed, std::uint64_t first_walk, bindings::Arrays<nb::device::cpu>::IndexRows walks,
                    int n_threads) {
    const CsrGraph<float> g = as_graph(indptr, indices, weights);
    const bool tables =
        keep.shape(0) != 0 || alias.shape(0) != 0 || totals.shape(0) != 0 || maxima.shape(0) != 0;
    require(!tables || (keep.shape(0) == indices.shape(0) && alias.shape(0) == indices.shape(0) &&
                        totals.shape(0) == static_cast<size_t>(g.n_rows) &&
                        maxima.shape(0) == static_cast<size_t>(g.n_rows)),
            "keep and alias need one entry per edge and totals and maxima one per node, or none of them "
            "when every row's weights are equal");
    if (tables) {
        bool inside = true, positive = true;
        for (size_type v = 0; v < g.n_rows; ++v) {
            const std::int64_t degree = g.indptr[v + 1] - g.indptr[v];
            for (std::int64_t e = g.indptr[v]; e < g.indptr[v + 1]; ++e)
                inside &= alias.data()[e] >= 0 && alias.data()[e] < degree;
            positive &= degree == 0 || (totals.data()[v] > 0 && totals.data()[v] <= 1.7976931348623157e308 &&
                                        maxima.data()[v] > 0 && maxima.data()[v] <= 3.4028234663852886e38);
        }
        require(inside, "alias offset outside its row");
        require(positive, "totals and maxima must be positive and finite for every node with out-edges");
    }
    require(walks.shape(0) == starts.shape(0) && walks.shape(1) >= 1, "one walk row per start");
    const int walk_length = narrow<int>(walks.shape(1), "walk_length");
    bool inside = true;
    for (size_t w = 0; w < starts.shape(0); ++w) inside &= starts.data()[w] >= 0 && starts.data()[w] < g.n_rows;
    require(inside, "start node out of range");
    require(p >= kMinBias && p <= kMaxBias && q >= kMinBias && q <= kMaxBias,
            "p and q must be in [1e-100, 1e100]");
    nb::gil_scoped_release release;
    sample_walks(g, tables ? keep.data() : nullptr, alias.data(), tables ? totals.data() : nullptr,
                 tables ? maxima.data() : nullptr, starts.data(),
                 static_cast<size_type>(starts.shape(0)), walk_length, p, q, seed, first_walk, walks.data(),
                 n_threads);
}

}  // namespace

void bind_walks(nb::module_& m) {
    // Outputs are .noconvert() (see cpp/bindings/knn.cpp).
    m.def("walks_build_alias", &alias_binding, nb::arg("indptr"), nb::arg("indices"),
          nb::arg("weights"), nb::arg("keep").noconvert(), nb::arg("alias").noconvert(), nb::arg("n_threads"));
    m.def("walks_sample", &sample_binding, nb::arg("indptr"), nb::arg("indices"), nb::arg("weights"),
          nb::arg("keep"), nb::arg("alias"), nb::arg("totals"), nb::arg("maxima"), nb::arg("starts"),
          nb::arg("p"), nb::arg("q"), nb::arg("seed"), nb::arg("first_walk"), nb::arg("walks").noconvert(),
          nb::arg("n_threads"));
}
