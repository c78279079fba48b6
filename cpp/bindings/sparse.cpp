// Binding of the sparse-coding kernels. python/latentcore/sparse.py validates
// and documents; here shapes are checked so that no call leaves its arrays.
#include <cstdint>

#include "arrays.hpp"
#include "latentcore/sparse.hpp"

namespace nb = nanobind;
using namespace latentcore;
using bindings::require;

namespace {

using Cpu = bindings::Arrays<nb::device::cpu>;

void omp_binding(Cpu::Mat<const float> correlations, Cpu::Mat<const double> gram, Cpu::Vec<const float> residual_sq,
                 double tol, Cpu::Mat<index_t> support, Cpu::Mat<float> coefs, Cpu::Vec<index_t> count,
                 int n_threads) {
    const size_t n = correlations.shape(0), n_atoms = correlations.shape(1), k = support.shape(1);
    require(gram.shape(0) == n_atoms && gram.shape(1) == n_atoms, "gram must be (n_atoms, n_atoms)");
    require(k >= 1 && k <= n_atoms, "support needs 1 to n_atoms columns");
    require(support.shape(0) == n && coefs.shape(0) == n && coefs.shape(1) == k && count.shape(0) == n,
            "support, coefs and count need one row per signal");
    require(residual_sq.shape(0) == n || (residual_sq.shape(0) == 0 && tol < 0),
            "residual_sq needs one entry per signal when tol is set");
    nb::gil_scoped_release release;
    batch_omp(correlations.data(), gram.data(), static_cast<size_type>(n), static_cast<int>(n_atoms),
              static_cast<int>(k), residual_sq.shape(0) ? residual_sq.data() : nullptr, tol, support.data(),
              coefs.data(), count.data(), n_threads);
}

}  // namespace

void bind_sparse(nb::module_& m) {
    m.def("sparse_batch_omp", &omp_binding, nb::arg("correlations"), nb::arg("gram"), nb::arg("residual_sq"),
          nb::arg("tol"), nb::arg("support"), nb::arg("coefs"), nb::arg("count"), nb::arg("n_threads"));
}
