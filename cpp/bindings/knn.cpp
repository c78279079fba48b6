// Bindings of the k-NN and top-k kernels. Validation and documentation live in
// python/latentcore/knn.py; here the arrays' dtype, rank, order and device are
// fixed by their types, sizes are checked so that no call can touch memory out
// of bounds, and the GIL is released around every kernel.
#include <nanobind/stl/optional.h>

#include <optional>

#include "arrays.hpp"
#include "latentcore/knn.hpp"
#include "latentcore/topk.hpp"

namespace nb = nanobind;
using namespace latentcore;

namespace {

using bindings::require;
using Matrix = bindings::Arrays<nb::device::cpu>::Matrix;
using Vector = bindings::Arrays<nb::device::cpu>::Vector;
using ScoreOut = bindings::Arrays<nb::device::cpu>::ScoreRows;
using IndexOut = bindings::Arrays<nb::device::cpu>::IndexRows;

void require_output(const ScoreOut& score, const IndexOut& index, size_t rows) {
    require(score.shape(0) == rows && index.shape(0) == rows, "one output row per query");
    require(score.shape(1) == index.shape(1) && score.shape(1) > 0,
            "score and index outputs must have the same k >= 1 columns");
}

void exact_knn_binding(Matrix data, std::optional<Matrix> queries, int metric, bool exclude_self,
                       std::optional<Vector> center, nb::capsule sgemm, int64_t block, IndexOut index,
                       ScoreOut score, int n_threads) {
    require(is_metric_code(metric), "unknown metric code");
    require(block >= 1, "block must be >= 1");
    // The ranking GEMM takes int sizes: dim and block must fit.
    bindings::narrow<int>(data.shape(1), "the dimension");
    bindings::narrow<int>(block, "block");
    bindings::narrow<index_t>(data.shape(0), "the number of points");  // ids are int32
    KnnProblem p{data.data(), static_cast<size_type>(data.shape(0)), nullptr, 0,
                 static_cast<size_type>(data.shape(1)), bindings::narrow<int>(score.shape(1), "k"),
                 static_cast<Metric>(metric), exclude_self, nullptr};
    if (queries) {
        require(queries->shape(1) == data.shape(1), "queries and data dimensions differ");
        p.queries = queries->data();
        p.m = static_cast<size_type>(queries->shape(0));
    }
    if (center) {
        require(center->shape(0) == data.shape(1), "center length must equal the dimension");
        p.center = center->data();
    }
    require_output(score, index, queries ? p.m : p.n);
    require(p.k <= p.n - (!queries && exclude_self ? 1 : 0), "k exceeds the available neighbours");
    const auto gemm = reinterpret_cast<Sgemm>(sgemm.data());
    nb::gil_scoped_release release;
    exact_knn(p, gemm, block, n_threads, index.data(), score.data());
}

void select_topk(Matrix values, bool largest, ScoreOut score, IndexOut index, std::optional<Vector> col_bias,
                 int n_threads) {
    require_output(score, index, values.shape(0));
    require(score.shape(1) <= values.shape(1), "k must not exceed the row length");
    if (col_bias) require(col_bias->shape(0) == values.shape(1), "col_bias needs one entry per column");
    const int k = bindings::narrow<int>(score.shape(1), "k");
    bindings::narrow<index_t>(values.shape(1), "the row length");  // column ids are int32
    nb::gil_scoped_release release;
    select_topk_rows(values.data(), values.shape(0), values.shape(1), k, largest, col_bias ? col_bias->data() : nullptr,
                     score.data(), index.data(), n_threads);
}

}  // namespace

void bind_knn(nb::module_& m) {
    // Outputs and in-place arrays are .noconvert(): a wrong dtype, order or
    // device is a TypeError, never a copy that the kernel would write into.
    m.def("exact_knn", &exact_knn_binding, nb::arg("data"), nb::arg("queries").none(),
          nb::arg("metric"), nb::arg("exclude_self"), nb::arg("center").none(), nb::arg("sgemm"),
          nb::arg("block"), nb::arg("index").noconvert(), nb::arg("score").noconvert(), nb::arg("n_threads"));
    m.def("knn_ranking_scale", &ranking_scale, nb::arg("max_abs"), nb::arg("dim"));
    m.def("knn_candidates_per_point", &candidates_per_point, nb::arg("k"), nb::arg("available"));
    m.def("select_topk_rows", &select_topk, nb::arg("values"), nb::arg("largest"), nb::arg("score").noconvert(),
          nb::arg("index").noconvert(), nb::arg("col_bias").none(), nb::arg("n_threads"));
}
