// Bindings of the t-SNE kernels. python/latentcore/tsne.py validates every
// input (with messages naming the user's argument) and documents; here every
// shape, and every index a kernel follows, is checked against the sizes given
// (indptr here; CSR columns inside the kernel, batch by batch, before they are
// used), so that no call, even a direct one, reads or writes out of bounds;
// narrowing casts are checked and the GIL is released around the kernels.
#include <nanobind/stl/optional.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>

#include "arrays.hpp"
#include "latentcore/tsne.hpp"

namespace nb = nanobind;
using namespace latentcore;
using bindings::embedding_dim;
using bindings::narrow;
using bindings::require;
using bindings::require_same_shape;

namespace {

template <typename T, int N>
using Cpu = bindings::Arrays<nb::device::cpu>::Array<T, nb::ndim<N>>;
using Embedding = Cpu<double, 2>;
using ConstEmbedding = Cpu<const double, 2>;


void require_dof(double dof) { require(std::isfinite(dof) && dof > 0, "dof must be finite and positive"); }

void perplexity_binding(Cpu<const float, 2> sq_distances, Cpu<const double, 1> perplexities,
                        double tol, Cpu<double, 2> conditional, int n_threads) {
    require_same_shape(sq_distances, conditional, "conditional must match sq_distances");
    require(sq_distances.shape(1) >= 1 && perplexities.shape(0) >= 1, "need neighbours and a perplexity");
    require(std::isfinite(tol) && tol >= 0, "tol must be finite and non-negative");
    const int k = narrow<int>(sq_distances.shape(1), "the number of neighbours");
    const int n_perplexities = narrow<int>(perplexities.shape(0), "the number of perplexities");
    for (int s = 0; s < n_perplexities; ++s)
        require(std::isfinite(perplexities.data()[s]) && perplexities.data()[s] > 0,
                "perplexities must be finite and positive");
    nb::gil_scoped_release release;
    perplexity_affinities(sq_distances.data(), sq_distances.shape(0), k, perplexities.data(),
                          n_perplexities, tol, conditional.data(), n_threads);
}

// Hands a vector to numpy without a copy: the array owns it.
template <typename T>
nb::ndarray<nb::numpy, T, nb::ndim<1>> to_numpy(std::vector<T>&& values) {
    auto* owned = new std::vector<T>(std::move(values));
    nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
    return nb::ndarray<nb::numpy, T, nb::ndim<1>>(owned->data(), {owned->size()}, owner);
}

nb::tuple symmetrize_binding(Cpu<const index_t, 2> neighbors, Cpu<const double, 2> conditional,
                             int n_threads) {
    require_same_shape(neighbors, conditional, "neighbors and conditional must have the same shape");
    const size_type n = narrow<index_t>(neighbors.shape(0), "the number of points");
    const int k = narrow<int>(neighbors.shape(1), "the number of neighbours");
    const size_type total = n * static_cast<size_type>(k);
    for (size_type t = 0; t < total; ++t)
        require(neighbors.data()[t] >= 0 && neighbors.data()[t] < n, "neighbor index out of range");
    CsrBuffers<double> P;
    {
        nb::gil_scoped_release release;
        P = symmetrize_affinities(neighbors.data(), conditional.data(), n, k, n_threads);
    }
    return nb::make_tuple(to_numpy(std::move(P.indptr)), to_numpy(std::move(P.indices)),
                          to_numpy(std::move(P.weights)));
}

template <typename Weight>
void attractive_binding(Cpu<const std::int64_t, 1> indptr, Cpu<const index_t, 1> indices,
                        Cpu<const Weight, 1> weights, ConstEmbedding Y, double dof,
                        double exaggeration, Embedding forces,
                        std::optional<Cpu<double, 1>> kl_terms, int n_threads) {
    const int dim = embedding_dim(Y);
    const size_type n = Y.shape(0);
    require(indptr.shape(0) == Y.shape(0) + 1, "indptr must have n + 1 entries");
    require(indices.shape(0) == weights.shape(0), "indices and weights must have the same length");
    require(indptr.data()[0] == 0 && indptr.data()[n] == static_cast<std::int64_t>(indices.shape(0)),
            "indptr must run from 0 to nnz");
    // Monotone from 0 to nnz: every row's range lies inside indices. (Its
    // columns are checked by the kernel as it goes, before Y is read at them.)
    const std::int64_t* ptr = indptr.data();
    bool ordered = true;
    for (size_type r = 0; r < n; ++r) ordered &= ptr[r] <= ptr[r + 1];
    require(ordered, "indptr must be non-decreasing");
    require_dof(dof);
    require_same_shape(Y, forces, "forces must match the embedding");
    if (kl_terms) require(kl_terms->shape(0) == Y.shape(0), "kl_terms must have n entries");
    const CsrGraph<Weight> P{indptr.data(), indices.data(), weights.data(), n};
    nb::gil_scoped_release release;
    attractive_forces(P, Y.data(), dim, dof, exaggeration, forces.data(),
                      kl_terms ? kl_terms->data() : nullptr, n_threads);
}

void exact_repulsion_binding(ConstEmbedding Y, double dof, Embedding repulsion,
                             Cpu<double, 1> z_terms, int n_threads) {
    const int dim = embedding_dim(Y);
    require_dof(dof);
    require_same_shape(Y, repulsion, "repulsion must match the embedding");
    require(z_terms.shape(0) == Y.shape(0), "z_terms must have n entries");
    nb::gil_scoped_release release;
    repulsion_from(Y.data(), Y.shape(0), Y.data(), Y.shape(0), dim, dof, true, repulsion.data(),
                   z_terms.data(), n_threads);
}

void repulsion_from_binding(ConstEmbedding sources, ConstEmbedding points, double dof,
                            Embedding repulsion, Cpu<double, 1> w_sums, int n_threads) {
    const int dim = embedding_dim(points);
    require_dof(dof);
    require(sources.shape(1) == points.shape(1), "sources and points must have the same columns");
    require_same_shape(points, repulsion, "repulsion must match the points");
    require(w_sums.shape(0) == points.shape(0), "w_sums must have one entry per point");
    nb::gil_scoped_release release;
    repulsion_from(sources.data(), sources.shape(0), points.data(), points.shape(0), dim, dof, false,
                   repulsion.data(), w_sums.data(), n_threads);
}

InterpGrid as_grid(const ConstEmbedding& Y, int n_boxes, int n_interp, double lower,
                   double box_width, size_t values_cols) {
    require(n_boxes >= 1 && n_boxes <= (1 << 30) && n_interp >= 2 && n_interp <= 16,
            "need 1 <= n_boxes <= 2^30 and 2 <= n_interp <= 16");
    require(std::isfinite(lower) && std::isfinite(box_width) && box_width > 0,
            "lower and box_width must be finite, box_width positive");
    InterpGrid g{embedding_dim(Y), n_boxes, n_interp, lower, box_width};
    size_t nodes = 1;
    for (int d = 0; d < g.dim; ++d) {
        // Bounded before the product can wrap: (2^31 * 16)^3 overflows 64 bits.
        require(static_cast<size_t>(n_boxes) * n_interp <= (size_t{1} << 40) / nodes, "grid too large");
        nodes *= static_cast<size_t>(n_boxes) * n_interp;
    }
    require(values_cols == nodes, "grid values need (n_boxes * n_interp)^dim columns");
    return g;
}

void scatter_binding(ConstEmbedding Y, Cpu<const double, 2> charges, int n_boxes, int n_interp,
                     double lower, double box_width, Cpu<double, 2> values, int n_threads) {
    const InterpGrid g = as_grid(Y, n_boxes, n_interp, lower, box_width, values.shape(1));
    require(charges.shape(0) == Y.shape(0) && charges.shape(1) == values.shape(0),
            "charges must be (n, n_charges) and values (n_charges, nodes)");
    const int n_charges = narrow<int>(charges.shape(1), "the number of charges");
    nb::gil_scoped_release release;
    scatter_charges(g, Y.data(), Y.shape(0), charges.data(), n_charges, values.data(), n_threads);
}

void gather_binding(ConstEmbedding Y, Cpu<const double, 2> values, int n_boxes, int n_interp,
                    double lower, double box_width, Cpu<double, 2> potentials, int n_threads) {
    const InterpGrid g = as_grid(Y, n_boxes, n_interp, lower, box_width, values.shape(1));
    require(potentials.shape(0) == Y.shape(0) && potentials.shape(1) == values.shape(0),
            "potentials must be (n, n_charges)");
    const int n_charges = narrow<int>(values.shape(0), "the number of charges");
    nb::gil_scoped_release release;
    gather_potentials(g, Y.data(), Y.shape(0), values.data(), n_charges, potentials.data(), n_threads);
}

void step_binding(Embedding Y, ConstEmbedding gradient, Embedding update, Embedding gains,
                  double learning_rate, double momentum, double min_gain, bool recenter,
                  int n_threads) {
    const int dim = embedding_dim(gradient);
    require_same_shape(gradient, Y, "gradient must match the embedding");
    require_same_shape(update, Y, "update must match the embedding");
    require_same_shape(gains, Y, "gains must match the embedding");
    nb::gil_scoped_release release;
    gradient_step(Y.data(), Y.shape(0), dim, gradient.data(), update.data(), gains.data(),
                  learning_rate, momentum, min_gain, recenter, n_threads);
}

}  // namespace

void bind_tsne(nb::module_& m) {
    // Outputs and in-place arrays are .noconvert() (see cpp/bindings/knn.cpp).
    m.def("tsne_perplexity_affinities", &perplexity_binding, nb::arg("sq_distances"),
          nb::arg("perplexities"), nb::arg("tol"), nb::arg("conditional").noconvert(), nb::arg("n_threads"));
    m.def("tsne_symmetrize_affinities", &symmetrize_binding, nb::arg("neighbors"),
          nb::arg("conditional"), nb::arg("n_threads"));
    // Weights as float32 (what tsne._Objective holds) or float64, as on the GPU.
    m.def("tsne_attractive_forces", &attractive_binding<float>, nb::arg("indptr"), nb::arg("indices"),
          nb::arg("weights"), nb::arg("Y"), nb::arg("dof"), nb::arg("exaggeration"),
          nb::arg("forces").noconvert(), nb::arg("kl_terms").none().noconvert(), nb::arg("n_threads"));
    m.def("tsne_attractive_forces", &attractive_binding<double>, nb::arg("indptr"), nb::arg("indices"),
          nb::arg("weights"), nb::arg("Y"), nb::arg("dof"), nb::arg("exaggeration"),
          nb::arg("forces").noconvert(), nb::arg("kl_terms").none().noconvert(), nb::arg("n_threads"));
    m.def("tsne_exact_repulsion", &exact_repulsion_binding, nb::arg("Y"), nb::arg("dof"),
          nb::arg("repulsion").noconvert(), nb::arg("z_terms").noconvert(), nb::arg("n_threads"));
    m.def("tsne_repulsion_from", &repulsion_from_binding, nb::arg("sources"), nb::arg("points"),
          nb::arg("dof"), nb::arg("repulsion").noconvert(), nb::arg("w_sums").noconvert(), nb::arg("n_threads"));
    m.def("tsne_scatter_charges", &scatter_binding, nb::arg("Y"), nb::arg("charges"),
          nb::arg("n_boxes"), nb::arg("n_interp"), nb::arg("lower"), nb::arg("box_width"),
          nb::arg("values").noconvert(), nb::arg("n_threads"));
    m.def("tsne_gather_potentials", &gather_binding, nb::arg("Y"), nb::arg("values"),
          nb::arg("n_boxes"), nb::arg("n_interp"), nb::arg("lower"), nb::arg("box_width"),
          nb::arg("potentials").noconvert(), nb::arg("n_threads"));
    m.def("tsne_gradient_step", &step_binding, nb::arg("Y").noconvert(), nb::arg("gradient"),
          nb::arg("update").noconvert(), nb::arg("gains").noconvert(), nb::arg("learning_rate"),
          nb::arg("momentum"), nb::arg("min_gain"), nb::arg("recenter"), nb::arg("n_threads"));
}
