// Binding of the CUDA walk sampler (cuda/walks.cuh), the twin of
// latentcore._core.walks_sample with `stream` (cupy's current stream as an
// integer) in place of n_threads. Arrays are cupy (or any DLPack CUDA) arrays
// on one GPU. Only shapes are checked here: python/latentcore/walks.py builds
// and validates the graph and the alias tables on the host before uploading
// them (checking contents here would mean a device copy), and the kernel
// clamps every index it follows, so no call can touch memory out of bounds.
// The GIL is released while the kernel is queued.
#include <cstdint>

#include "../arrays.hpp"
#include "walks.cuh"

namespace nb = nanobind;

namespace {

using latentcore::bindings::require;
using latentcore::bindings::require_same_device;
using Gpu = latentcore::bindings::Arrays<nb::device::cuda>;

void sample_binding(Gpu::Vec<const std::int64_t> indptr, Gpu::Vec<const std::int32_t> indices,
                    Gpu::Vec<const float> weights, Gpu::Vec<const float> keep, Gpu::Vec<const std::int32_t> alias,
                    Gpu::Vec<const double> totals, Gpu::Vec<const float> maxima, Gpu::Vec<const std::int32_t> starts,
                    double p, double q,
                    std::uint64_t seed,
                    std::uint64_t first_walk, Gpu::IndexRows walks, std::uintptr_t stream) {
    require(indptr.shape(0) >= 2, "indptr needs n + 1 >= 2 entries");
    require(indptr.shape(0) - 1 <= INT32_MAX, "at most 2^31 - 1 nodes");
    require(weights.shape(0) == indices.shape(0), "indices and weights must have the same length");
    require(keep.shape(0) == indices.shape(0) && alias.shape(0) == indices.shape(0),
            "keep and alias need one entry per edge");
    require(totals.shape(0) == indptr.shape(0) - 1 && maxima.shape(0) == indptr.shape(0) - 1,
            "totals and maxima need one entry per node");
    require(walks.shape(0) == starts.shape(0) && walks.shape(1) >= 1, "one walk row per start");
    const int walk_length = latentcore::bindings::narrow<int>(walks.shape(1), "walk_length");
    require(p >= 1e-100 && p <= 1e100 && q >= 1e-100 && q <= 1e100, "p and q must be in [1e-100, 1e100]");
    require_same_device(indices, indptr);
    require_same_device(weights, indptr);
    require_same_device(totals, indptr);
    require_same_device(maxima, indptr);
    require_same_device(keep, indptr);
    require_same_device(alias, indptr);
    require_same_device(starts, indptr);
    require_same_device(walks, indptr);
    nb::gil_scoped_release release;
    const latentcore::CsrGraph<float> graph{indptr.data(), indices.data(), weights.data(),
                                            static_cast<std::int64_t>(indptr.shape(0)) - 1};
    latentcore::cuda::sample_walks(graph, static_cast<std::int64_t>(indices.shape(0)), keep.data(), alias.data(),
                                   totals.data(), maxima.data(), starts.data(),
                                   static_cast<std::int64_t>(starts.shape(0)), walk_length, p, q, seed, first_walk,
                                   walks.data(), stream);
}

}  // namespace

void bind_walks(nb::module_& m) {
    // The argument list is _core.walks_sample's; the GPU always takes tables.
    // The output is .noconvert() (see cpp/bindings/knn.cpp).
    m.def("walks_sample", &sample_binding, nb::arg("indptr"), nb::arg("indices"), nb::arg("weights"),
          nb::arg("keep"), nb::arg("alias"), nb::arg("totals"), nb::arg("maxima"), nb::arg("starts"),
          nb::arg("p"), nb::arg("q"), nb::arg("seed"), nb::arg("first_walk"), nb::arg("walks").noconvert(),
          nb::arg("stream"));
}
