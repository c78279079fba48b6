// Bindings of the CUDA k-NN kernels (cuda/knn.cuh). Arrays are cupy (or any
// DLPack CUDA) arrays; the Python layer validates and documents; here shapes
// are checked so that no launch can touch memory out of bounds, and the GIL is
// released while kernels are queued.
#include <nanobind/stl/optional.h>

#include <cstdint>
#include <optional>

#include "../arrays.hpp"
#include "knn.cuh"

namespace nb = nanobind;

namespace {

using latentcore::bindings::require;
using Matrix = latentcore::bindings::Arrays<nb::device::cuda>::Matrix;
using Vector = latentcore::bindings::Arrays<nb::device::cuda>::Vector;
using ScoreRows = latentcore::bindings::Arrays<nb::device::cuda>::ScoreRows;
using IndexRows = latentcore::bindings::Arrays<nb::device::cuda>::IndexRows;

void require_selection(const ScoreRows& score, const IndexRows& index) {
    require(score.shape(0) == index.shape(0) && score.shape(1) == index.shape(1),
            "score and index must have the same shape");
    require(score.device_id() == index.device_id(), "score and index must be on one GPU");
}

void merge_tile(ScoreRows score, IndexRows index, Matrix tile, std::optional<Vector> col_bias,
                std::int64_t row_first, std::int64_t col_first, bool exclude_self,
                std::uintptr_t stream) {
    require_selection(score, index);
    require(tile.shape(0) == score.shape(0), "one tile row per selection row");
    if (col_bias) require(col_bias->shape(0) == tile.shape(1), "col_bias length must match the tile");
    nb::gil_scoped_release release;
    latentcore::cuda::knn_merge_tile(score.data(), index.data(), score.shape(0),
                                     static_cast<int>(score.shape(1)), tile.data(), tile.shape(1),
                                     col_bias ? col_bias->data() : nullptr, row_first, col_first,
                                     exclude_self, stream);
}

// Indices are not range-checked against `data` here: they come from
// knn_merge_tile over that same data, and checking would mean a device copy.
void finish(ScoreRows score, IndexRows index, Matrix queries, Matrix data, int metric,
            std::uintptr_t stream) {
    require_selection(score, index);
    require(queries.shape(0) == score.shape(0), "one selection row per query");
    require(queries.shape(1) == data.shape(1), "queries and data dimensions differ");
    require(latentcore::is_metric_code(metric), "unknown metric code");
    nb::gil_scoped_release release;
    latentcore::cuda::knn_finish(score.data(), index.data(), score.shape(0),
                                 static_cast<int>(score.shape(1)), queries.data(), data.data(),
                                 data.shape(1), static_cast<latentcore::Metric>(metric), stream);
}

}  // namespace

void bind_knn(nb::module_& m) {
    m.def("knn_max_tile_width", &latentcore::cuda::knn_max_tile_width, nb::arg("k"));
    // Outputs and in-place arrays are .noconvert() (see cpp/bindings/knn.cpp).
    m.def("knn_merge_tile", &merge_tile, nb::arg("score").noconvert(), nb::arg("index").noconvert(),
          nb::arg("tile"), nb::arg("col_bias").none(), nb::arg("row_first"), nb::arg("col_first"),
          nb::arg("exclude_self"), nb::arg("stream"));
    m.def("knn_finish", &finish, nb::arg("score").noconvert(), nb::arg("index").noconvert(), nb::arg("queries"),
          nb::arg("data"), nb::arg("metric"), nb::arg("stream"));
}
