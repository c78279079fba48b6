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
                 double tol, bool positive, Cpu::Mat<index_t> support, Cpu::Mat<float> coefs, Cpu::Vec<index_t> count,
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
              static_cast<int>(k), residual_sq.shape(0) ? residual_sq.data() : nullptr, tol, positive, support.data(),
              coefs.data(), count.data(), n_threads);
}

int lasso_binding(Cpu::Mat<const float> correlations, Cpu::Mat<const double> gram, Cpu::Vec<const float> residual_sq,
                  int n_features, double alpha, bool positive, double tol, int max_iter, Cpu::Mat<float> codes,
                  int n_threads) {
    const size_t n = correlations.shape(0), n_atoms = correlations.shape(1);
    require(gram.shape(0) == n_atoms && gram.shape(1) == n_atoms, "gram must be (n_atoms, n_atoms)");
    require(residual_sq.shape(0) == n, "residual_sq needs one entry per signal");
    require(codes.shape(0) == n && codes.shape(1) == n_atoms, "codes must be (n, n_atoms)");
    require(n_features >= 1 && alpha >= 0 && tol >= 0 && max_iter >= 1,
            "n_features, alpha, tol and max_iter out of range");
    for (size_t a = 0; a < n_atoms; ++a) require(gram.data()[a * n_atoms + a] > 0, "gram needs a positive diagonal");
    nb::gil_scoped_release release;
    return lasso_cd(correlations.data(), gram.data(), residual_sq.data(), static_cast<size_type>(n),
                    static_cast<int>(n_atoms), n_features, alpha, positive, tol, max_iter, codes.data(), n_threads);
}

int update_binding(Cpu::Mat<const double> A, Cpu::Mat<const double> B, Cpu::Mat<float> dictionary,
                   double min_usage, Cpu::Vec<index_t> unused, int n_threads) {
    const size_t n_atoms = dictionary.shape(0), n_features = dictionary.shape(1);
    require(A.shape(0) == n_atoms && A.shape(1) == n_atoms, "A must be (n_atoms, n_atoms)");
    require(B.shape(0) == n_atoms && B.shape(1) == n_features, "B must be (n_atoms, n_features)");
    require(unused.shape(0) == n_atoms, "unused needs n_atoms entries");
    nb::gil_scoped_release release;
    return update_dictionary(A.data(), B.data(), dictionary.data(), static_cast<int>(n_atoms),
                             static_cast<int>(n_features), min_usage, unused.data(), n_threads);
}

}  // namespace

void bind_sparse(nb::module_& m) {
    m.def("sparse_batch_omp", &omp_binding, nb::arg("correlations"), nb::arg("gram"), nb::arg("residual_sq"),
          nb::arg("tol"), nb::arg("positive"), nb::arg("support"), nb::arg("coefs"), nb::arg("count"), nb::arg("n_threads"));
    m.def("sparse_lasso_cd", &lasso_binding, nb::arg("correlations"), nb::arg("gram"), nb::arg("residual_sq"),
          nb::arg("n_features"), nb::arg("alpha"), nb::arg("positive"), nb::arg("tol"), nb::arg("max_iter"),
          nb::arg("codes"), nb::arg("n_threads"));
    m.def("sparse_update_dictionary", &update_binding, nb::arg("A"), nb::arg("B"), nb::arg("dictionary"),
          nb::arg("min_usage"), nb::arg("unused"), nb::arg("n_threads"));
}
