// Binding of the CUDA skip-gram trainer (cuda/sgns.cuh), the twin of
// latentcore._core.sgns_train with `stream` (cupy's current stream as an
// integer) in place of n_threads; like it, it returns the number of tokens
// trained (so it waits for the training to end on the stream). Arrays are
// cupy (or any DLPack CUDA) arrays on one GPU. Only shapes are checked here:
// python/latentcore/sgns.py validates the walks' node ids and builds the
// noise table on the host (checking contents here would mean a device copy),
// and the kernel skips any id outside the vectors, so no call can touch
// memory out of bounds. The GIL is released while the kernel runs.
#include <cstdint>

#include "../arrays.hpp"
#include "sgns.cuh"

namespace nb = nanobind;

namespace {

using latentcore::bindings::require;
using latentcore::bindings::require_same_device;
using Gpu = latentcore::bindings::Arrays<nb::device::cuda>;

std::int64_t train_binding(Gpu::Mat<const std::int32_t> walks, Gpu::Vec<const float> keep_probability,
                           Gpu::Vec<const float> noise_keep, Gpu::Vec<const std::int32_t> noise_alias,
                           Gpu::Mat<float> input, Gpu::Mat<float> output, int window, int negative, double alpha,
                           double min_alpha, std::uint64_t seed, std::uint64_t first_walk,
                           std::uint64_t total_walks, std::uintptr_t stream) {
    const size_t n = input.shape(0);
    require(n >= 1 && input.shape(1) >= 1, "input vectors must be (n_nodes >= 1, dim >= 1)");
    require(n <= INT32_MAX && input.shape(1) <= INT32_MAX, "at most 2^31 - 1 nodes and dimensions");
    require(output.shape(0) == n && output.shape(1) == input.shape(1),
            "input and output vectors must have the same shape");
    require(noise_keep.shape(0) == n && noise_alias.shape(0) == n,
            "the noise table needs one entry per node");
    require(keep_probability.shape(0) == 0 || keep_probability.shape(0) == n,
            "keep_probability needs one entry per node, or none");
    require(window >= 1 && negative >= 0, "window must be >= 1 and negative >= 0");
    require(walks.shape(1) >= 1, "walks need at least one column");
    const int walk_length = latentcore::bindings::narrow<int>(walks.shape(1), "walk_length");
    require_same_device(walks, input);
    if (keep_probability.shape(0)) require_same_device(keep_probability, input);
    require_same_device(noise_keep, input);
    require_same_device(noise_alias, input);
    require_same_device(output, input);
    nb::gil_scoped_release release;
    // window (up to walk_length - 1) and negative beyond the kernel's bounds
    // throw std::invalid_argument: ValueError.
    return latentcore::cuda::train_sgns(
        walks.data(), static_cast<std::int64_t>(walks.shape(0)), walk_length,
        keep_probability.shape(0) ? keep_probability.data() : nullptr, noise_keep.data(),
        noise_alias.data(), static_cast<std::int64_t>(n), input.data(), output.data(),
        static_cast<int>(input.shape(1)), window, negative, alpha, min_alpha, seed, first_walk,
        total_walks, stream);
}

}  // namespace

void bind_sgns(nb::module_& m) {
    // The vectors, trained in place, are .noconvert() (see cpp/bindings/knn.cpp).
    m.def("sgns_train", &train_binding, nb::arg("walks"), nb::arg("keep_probability"),
          nb::arg("noise_keep"), nb::arg("noise_alias"), nb::arg("input").noconvert(), nb::arg("output").noconvert(),
          nb::arg("window"), nb::arg("negative"), nb::arg("alpha"), nb::arg("min_alpha"),
          nb::arg("seed"), nb::arg("first_walk"), nb::arg("total_walks"), nb::arg("stream"));
}
