// Bindings of the CUDA t-SNE kernels (cuda/tsne.cuh), the twins of
// latentcore._core's tsne_* functions with a trailing `stream` (cupy's current
// stream as an integer). Arrays are cupy (or any DLPack CUDA) arrays on one
// GPU; shapes are checked here so that no launch can touch memory out of
// bounds (the CSR contents are guarded inside the kernel, which would need a
// device copy to check here), and the GIL is released while kernels are queued.
#include <nanobind/stl/optional.h>

#include <cmath>
#include <cstdint>
#include <optional>

#include "../arrays.hpp"
#include "tsne.cuh"

namespace nb = nanobind;

namespace {

using latentcore::bindings::embedding_dim;
using latentcore::bindings::require;
using latentcore::bindings::require_same_shape;
using latentcore::CsrGraph;
using latentcore::InterpGrid;

template <typename T, int N>
using Gpu = latentcore::bindings::Arrays<nb::device::cuda>::Array<T, nb::ndim<N>>;
using Embedding = Gpu<double, 2>;
using ConstEmbedding = Gpu<const double, 2>;


template <typename A>
void require_device(const A& a, const ConstEmbedding& Y) {
    require(a.device_id() == Y.device_id(), "all arrays must be on the GPU of the embedding");
}

template <typename Weight>
void attractive_binding(Gpu<const std::int64_t, 1> indptr, Gpu<const std::int32_t, 1> indices,
                        Gpu<const Weight, 1> weights, ConstEmbedding Y, double dof,
                        double exaggeration, Embedding forces,
                        std::optional<Gpu<double, 1>> kl_terms, std::uintptr_t stream) {
    const int dim = embedding_dim(Y);
    require(std::isfinite(dof) && dof > 0, "dof must be finite and positive");
    require(indptr.shape(0) == Y.shape(0) + 1, "indptr must have n + 1 entries");
    require(indices.shape(0) == weights.shape(0), "indices and weights must have the same length");
    require(Y.shape(0) <= INT32_MAX, "at most 2^31 - 1 points");
    require_same_shape(Y, forces, "forces must match the embedding");
    require_device(indptr, Y);
    require_device(indices, Y);
    require_device(weights, Y);
    require_device(forces, Y);
    if (kl_terms) {
        require(kl_terms->shape(0) == Y.shape(0), "kl_terms must have n entries");
        require_device(*kl_terms, Y);
    }
    nb::gil_scoped_release release;
    const CsrGraph<Weight> P{indptr.data(), indices.data(), weights.data(), static_cast<std::int64_t>(Y.shape(0))};
    latentcore::cuda::tsne_attractive_forces(P, static_cast<std::int64_t>(indices.shape(0)), Y.data(), dim, dof,
                                             exaggeration, forces.data(), kl_terms ? kl_terms->data() : nullptr,
                                             stream);
}

void exact_repulsion_binding(ConstEmbedding Y, double dof, Embedding repulsion,
                             Gpu<double, 1> z_terms, std::uintptr_t stream) {
    const int dim = embedding_dim(Y);
    require(std::isfinite(dof) && dof > 0, "dof must be finite and positive");
    require_same_shape(Y, repulsion, "repulsion must match the embedding");
    require(z_terms.shape(0) == Y.shape(0), "z_terms must have n entries");
    require_device(repulsion, Y);
    require_device(z_terms, Y);
    nb::gil_scoped_release release;
    latentcore::cuda::tsne_exact_repulsion(Y.data(), static_cast<std::int64_t>(Y.shape(0)), dim, dof,
                                           repulsion.data(), z_terms.data(), stream);
}

InterpGrid as_grid(const ConstEmbedding& Y, int n_boxes, int n_interp, double lower, double box_width,
             size_t values_cols) {
    require(n_boxes >= 1 && n_interp >= 2 && n_interp <= 16, "need n_boxes >= 1 and 2 <= n_interp <= 16");
    require(box_width > 0, "box_width must be positive");
    const InterpGrid g{embedding_dim(Y), n_boxes, n_interp, lower, box_width};
    size_t boxes = 1, nodes = 1;
    for (int d = 0; d < g.dim; ++d) {
        boxes *= static_cast<size_t>(n_boxes);
        nodes *= static_cast<size_t>(n_boxes) * n_interp;
        require(boxes <= INT32_MAX && nodes <= (static_cast<size_t>(1) << 40), "grid too large");
    }
    require(values_cols == nodes, "grid values need (n_boxes * n_interp)^dim columns");
    require(Y.shape(0) <= INT32_MAX, "at most 2^31 - 1 points");
    return g;
}

void scatter_binding(ConstEmbedding Y, Gpu<const double, 2> charges, int n_boxes, int n_interp,
                     double lower, double box_width, Gpu<double, 2> values, std::uintptr_t stream) {
    const InterpGrid g = as_grid(Y, n_boxes, n_interp, lower, box_width, values.shape(1));
    require(charges.shape(0) == Y.shape(0) && charges.shape(1) == values.shape(0),
            "charges must be (n, n_charges) and values (n_charges, nodes)");
    require_device(charges, Y);
    require_device(values, Y);
    nb::gil_scoped_release release;
    latentcore::cuda::tsne_scatter_charges(g, Y.data(), static_cast<std::int64_t>(Y.shape(0)),
                                           charges.data(), static_cast<int>(charges.shape(1)),
                                           values.data(), stream);
}

void gather_binding(ConstEmbedding Y, Gpu<const double, 2> values, int n_boxes, int n_interp,
                    double lower, double box_width, Gpu<double, 2> potentials,
                    std::uintptr_t stream) {
    const InterpGrid g = as_grid(Y, n_boxes, n_interp, lower, box_width, values.shape(1));
    require(potentials.shape(0) == Y.shape(0) && potentials.shape(1) == values.shape(0),
            "potentials must be (n, n_charges)");
    require_device(values, Y);
    require_device(potentials, Y);
    nb::gil_scoped_release release;
    latentcore::cuda::tsne_gather_potentials(g, Y.data(), static_cast<std::int64_t>(Y.shape(0)),
                                             values.data(), static_cast<int>(values.shape(0)),
                                             potentials.data(), stream);
}

void step_binding(Embedding Y, ConstEmbedding gradient, Embedding update, Embedding gains,
                  double learning_rate, double momentum, double min_gain, bool recenter,
                  std::uintptr_t stream) {
    const int dim = embedding_dim(gradient);
    require_same_shape(gradient, Y, "gradient must match the embedding");
    require_same_shape(update, Y, "update must match the embedding");
    require_same_shape(gains, Y, "gains must match the embedding");
    require_device(Y, gradient);
    require_device(update, gradient);
    require_device(gains, gradient);
    nb::gil_scoped_release release;
    latentcore::cuda::tsne_gradient_step(Y.data(), static_cast<std::int64_t>(Y.shape(0)), dim,
                                         gradient.data(), update.data(), gains.data(),
                                         learning_rate, momentum, min_gain, recenter, stream);
}

}  // namespace

void bind_tsne(nb::module_& m) {
    // Outputs and in-place arrays are .noconvert() (see cpp/bindings/knn.cpp).
    // Weights as float32 (what tsne._Objective holds) or float64, as on the CPU.
    m.def("tsne_attractive_forces", &attractive_binding<float>, nb::arg("indptr"), nb::arg("indices"),
          nb::arg("weights"), nb::arg("Y"), nb::arg("dof"), nb::arg("exaggeration"),
          nb::arg("forces").noconvert(), nb::arg("kl_terms").none().noconvert(), nb::arg("stream"));
    m.def("tsne_attractive_forces", &attractive_binding<double>, nb::arg("indptr"), nb::arg("indices"),
          nb::arg("weights"), nb::arg("Y"), nb::arg("dof"), nb::arg("exaggeration"),
          nb::arg("forces").noconvert(), nb::arg("kl_terms").none().noconvert(), nb::arg("stream"));
    m.def("tsne_exact_repulsion", &exact_repulsion_binding, nb::arg("Y"), nb::arg("dof"),
          nb::arg("repulsion").noconvert(), nb::arg("z_terms").noconvert(), nb::arg("stream"));
    m.def("tsne_scatter_charges", &scatter_binding, nb::arg("Y"), nb::arg("charges"),
          nb::arg("n_boxes"), nb::arg("n_interp"), nb::arg("lower"), nb::arg("box_width"),
          nb::arg("values").noconvert(), nb::arg("stream"));
    m.def("tsne_gather_potentials", &gather_binding, nb::arg("Y"), nb::arg("values"),
          nb::arg("n_boxes"), nb::arg("n_interp"), nb::arg("lower"), nb::arg("box_width"),
          nb::arg("potentials").noconvert(), nb::arg("stream"));
    m.def("tsne_gradient_step", &step_binding, nb::arg("Y").noconvert(), nb::arg("gradient"),
          nb::arg("update").noconvert(), nb::arg("gains").noconvert(), nb::arg("learning_rate"),
          nb::arg("momentum"), nb::arg("min_gain"), nb::arg("recenter"), nb::arg("stream"));
}
