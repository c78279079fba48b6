// Bindings of the random-walk kernels. python/latentcore/walks.py builds and
// validates the graph and documents; here every index the kernels follow is
// checked against the graph, so no call can read or write out of bounds.
#include <cstdint>

#include "arrays.hpp"
#include "latentcore/walks.hpp"

namespace nb = nanobind;
using namespace latentcore;
using bindings::require;

namespace {

using Cpu = bindings::Arrays<nb::device::cpu>;

CsrGraph<float> as_graph(const Cpu::Vec<const std::int64_t>& indptr, const Cpu::Vec<const index_t>& indices,
                         const Cpu::Vec<const float>& weights) {
    require(indptr.shape(0) >= 2, "indptr needs n + 1 >= 2 entries");
    const size_type n = static_cast<size_type>(indptr.shape(0)) - 1;
    const std::int64_t nnz = static_cast<std::int64_t>(indices.shape(0));
    require(weights.shape(0) == indices.shape(0), "indices and weights must have the same length");
    require(indptr.data()[0] == 0 && indptr.data()[n] == nnz, "indptr must run from 0 to nnz");
    for (size_type v = 0; v < n; ++v)
        require(indptr.data()[v] <= indptr.data()[v + 1], "indptr must not decrease");
    for (std::int64_t e = 0; e < nnz; ++e)
        require(indices.data()[e] >= 0 && indices.data()[e] < n, "edge target out of range");
    return CsrGraph<float>{indptr.data(), indices.data(), weights.data(), n};
}

void alias_binding(Cpu::Vec<const std::int64_t> indptr, Cpu::Vec<const index_t> indices, Cpu::Vec<const float> weights,
                   Cpu::Vec<float> keep, Cpu::Vec<index_t> alias, int n_threads) {
    const CsrGraph<float> g = as_graph(indptr, indices, weights);
    require(keep.shape(0) == indices.shape(0) && alias.shape(0) == indices.shape(0),
            "keep and alias need one entry per edge");
    nb::gil_scoped_release release;
    build_alias_tables(g, keep.data(), alias.data(), n_threads);
}

void sample_binding(Cpu::Vec<const std::int64_t> indptr, Cpu::Vec<const index_t> indices, Cpu::Vec<const float> weights,
                    Cpu::Vec<const float> keep, Cpu::Vec<const index_t> alias, Cpu::Vec<const index_t> starts,
                    double p, double q, std::uint64_t seed, std::uint64_t first_walk,
                    bindings::Arrays<nb::device::cpu>::IndexRows walks, int n_threads) {
    const CsrGraph<float> g = as_graph(indptr, indices, weights);
    const bool tables = keep.shape(0) != 0 || alias.shape(0) != 0;
    require(!tables || (keep.shape(0) == indices.shape(0) && alias.shape(0) == indices.shape(0)),
            "keep and alias need one entry per edge, or none when every row's weights are equal");
    for (size_type v = 0; tables && v < g.n_rows; ++v) {
        const std::int64_t degree = g.indptr[v + 1] - g.indptr[v];
        for (std::int64_t e = g.indptr[v]; e < g.indptr[v + 1]; ++e)
            require(alias.data()[e] >= 0 && alias.data()[e] < degree, "alias offset outside its row");
    }
    require(walks.shape(0) == starts.shape(0) && walks.shape(1) >= 1, "one walk row per start");
    for (size_t w = 0; w < starts.shape(0); ++w)
        require(starts.data()[w] >= 0 && starts.data()[w] < g.n_rows, "start node out of range");
    require(p > 0 && q > 0, "p and q must be positive");
    nb::gil_scoped_release release;
    sample_walks(g, tables ? keep.data() : nullptr, alias.data(), starts.data(), starts.shape(0),
                 static_cast<int>(walks.shape(1)), p, q, seed, first_walk, walks.data(), n_threads);
}

}  // namespace

void bind_walks(nb::module_& m) {
    m.def("walks_build_alias", &alias_binding, nb::arg("indptr"), nb::arg("indices"),
          nb::arg("weights"), nb::arg("keep"), nb::arg("alias"), nb::arg("n_threads"));
    m.def("walks_sample", &sample_binding, nb::arg("indptr"), nb::arg("indices"), nb::arg("weights"),
          nb::arg("keep"), nb::arg("alias"), nb::arg("starts"), nb::arg("p"), nb::arg("q"),
          nb::arg("seed"), nb::arg("first_walk"), nb::arg("walks"), nb::arg("n_threads"));
}
