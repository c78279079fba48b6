// Binding of the skip-gram trainer. python/latentcore/sgns.py validates and
// documents; here every node id the kernel follows is checked against the
// vector tables, and every size is narrowed with a check, so no call can read
// or write out of bounds.
#include <cstdint>

#include "arrays.hpp"
#include "latentcore/sgns.hpp"

namespace nb = nanobind;
using namespace latentcore;
using bindings::narrow;
using bindings::require;

namespace {

using Cpu = bindings::Arrays<nb::device::cpu>;

std::int64_t train_binding(Cpu::Mat<const index_t> walks, Cpu::Vec<const float> keep_probability,
                           Cpu::Vec<const float> noise_keep, Cpu::Vec<const index_t> noise_alias,
                           Cpu::Mat<float> input, Cpu::Mat<float> output,
                           int window, int negative, double alpha, double min_alpha, std::uint64_t seed,
                           std::uint64_t first_walk, std::uint64_t total_walks, int n_threads) {
    const size_type n = narrow<index_t>(input.shape(0), "n_nodes");
    const int dim = narrow<int>(input.shape(1), "dim");
    require(n >= 1 && dim >= 1, "input vectors must be (n_nodes >= 1, dim >= 1)");
    require(output.shape(0) == input.shape(0) && output.shape(1) == input.shape(1),
            "input and output vectors must have the same shape");
    require(noise_keep.shape(0) == static_cast<size_t>(n) && noise_alias.shape(0) == static_cast<size_t>(n),
            "the noise table needs one entry per node");
    require(keep_probability.shape(0) == 0 || keep_probability.shape(0) == static_cast<size_t>(n),
            "keep_probability needs one entry per node, or none");
    require(window >= 1, "window must be >= 1");
    require(negative >= 0 && negative < INT32_MAX, "negative must be >= 0 and below 2**31 - 1");
    require(walks.shape(1) >= 1, "walks need at least one column");
    const int walk_length = narrow<int>(walks.shape(1), "walk_length");
    const size_t n_tokens = walks.shape(0) * walks.shape(1);
    bool inside = true;
    for (size_t i = 0; i < n_tokens; ++i) inside &= walks.data()[i] >= -1 && walks.data()[i] < n;
    require(inside, "walk node out of range");
    for (size_type v = 0; v < n; ++v) inside &= noise_alias.data()[v] >= 0 && noise_alias.data()[v] < n;
    require(inside, "noise alias out of range");
    SgnsOptions options{window, negative, alpha, min_alpha, seed};
    nb::gil_scoped_release release;
    return train_sgns(walks.data(), static_cast<size_type>(walks.shape(0)), walk_length,
                      keep_probability.shape(0) ? keep_probability.data() : nullptr, noise_keep.data(),
                      noise_alias.data(), n, input.data(), output.data(), dim, options, first_walk,
                      total_walks, n_threads);
}

}  // namespace

void bind_sgns(nb::module_& m) {
    // The vectors, trained in place, are .noconvert() (see cpp/bindings/knn.cpp).
    m.def("sgns_train", &train_binding, nb::arg("walks"), nb::arg("keep_probability"),
          nb::arg("noise_keep"), nb::arg("noise_alias"), nb::arg("input").noconvert(), nb::arg("output").noconvert(),
          nb::arg("window"), nb::arg("negative"), nb::arg("alpha"), nb::arg("min_alpha"),
          nb::arg("seed"), nb::arg("first_walk"), nb::arg("total_walks"), nb::arg("n_threads"));
}
