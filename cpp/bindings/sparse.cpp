// Binding of the sparse-coding kernels. python/latentcore/sparse.py validates
// and documents; here every size is checked against the others (and every
// narrowing cast) so that no call leaves its arrays, whatever it is handed.
#include <cmath>
#include <cstdint>
#include <limits>

#include "arrays.hpp"
#include "latentcore/sparse.hpp"

namespace nb = nanobind;
using namespace latentcore;
using bindings::narrow;
using bindings::require;

namespace {

using Cpu = bindings::Arrays<nb::device::cpu>;

// The signals as rows of X with the dictionary and SGEMM (see SparseSignals).
SparseSignals signals_of(const Cpu::Mat<const float>& x, const Cpu::Mat<const float>& dictionary,
                         const Cpu::Mat<const double>* gram, nb::capsule sgemm) {
    const size_t n_atoms = dictionary.shape(0);
    require(dictionary.shape(1) == x.shape(1), "dictionary must be (n_atoms, n_features) with X's n_features");
    if (gram) require(gram->shape(0) == n_atoms && gram->shape(1) == n_atoms, "gram must be (n_atoms, n_atoms)");
    require(n_atoms >= 1, "the dictionary needs at least one atom");
    require(x.shape(1) >= 1, "signals need at least one feature");
    SparseSignals s;
    s.n = narrow<size_type>(x.shape(0), "the number of signals");
    s.n_atoms = narrow<int>(n_atoms, "n_atoms");
    s.n_features = narrow<int>(x.shape(1), "n_features");
    s.x = x.data();
    s.dictionary = dictionary.data();
    require(sgemm.data() != nullptr, "sgemm must hold a function");
    s.sgemm = reinterpret_cast<Sgemm>(sgemm.data());
    return s;
}

void omp_binding(Cpu::Mat<const float> x, Cpu::Mat<const float> dictionary, Cpu::Mat<const float> gram,
                 nb::capsule sgemm, double tol, bool positive, Cpu::Mat<index_t> support, Cpu::Mat<float> coefs,
                 Cpu::Vec<index_t> count, int n_threads) {
    // gram None: the Gram-free path (see batch_omp).
    const SparseSignals s = signals_of(x, dictionary, nullptr, sgemm);
    require(!gram.is_valid() || (gram.shape(0) == dictionary.shape(0) && gram.shape(1) == dictionary.shape(0)),
            "gram must be (n_atoms, n_atoms)");
    const size_t n = x.shape(0), k = support.shape(1);
    require(k >= 1 && k <= static_cast<size_t>(s.n_atoms), "support needs 1 to n_atoms columns");
    require(support.shape(0) == n && coefs.shape(0) == n && coefs.shape(1) == k && count.shape(0) == n,
            "support, coefs and count need one row per signal");
    require(!(tol != tol), "tol must not be NaN");
    nb::gil_scoped_release release;
    batch_omp(s, gram.is_valid() ? gram.data() : nullptr, static_cast<int>(k), tol, positive, support.data(),
              coefs.data(), count.data(), n_threads);
}

int lasso_binding(Cpu::Mat<const float> x, Cpu::Mat<const float> dictionary, Cpu::Mat<const double> gram,
                  nb::capsule sgemm, double alpha, bool positive, double tol, int max_iter, Cpu::Mat<float> codes,
                  int n_threads) {
    const SparseSignals s = signals_of(x, dictionary, &gram, sgemm);
    require(codes.shape(0) == x.shape(0) && codes.shape(1) == static_cast<size_t>(s.n_atoms),
            "codes must be (n, n_atoms)");
    require(alpha >= 0 && tol >= 0 && max_iter >= 1, "alpha, tol and max_iter out of range");
    for (int a = 0; a < s.n_atoms; ++a)
        require(gram.data()[static_cast<size_t>(a) * s.n_atoms + a] > 0, "gram needs a positive diagonal");
    nb::gil_scoped_release release;
    return lasso_cd(s, gram.data(), alpha, positive, tol, max_iter, codes.data(), n_threads);
}

void homotopy_binding(Cpu::Mat<const float> x, Cpu::Mat<const float> dictionary, Cpu::Mat<const float> gram,
                      nb::capsule sgemm, Cpu::Vec<const double> alphas, bool positive, int max_steps,
                      Cpu::Mat<index_t> support, Cpu::Mat<float> values, Cpu::Mat<index_t> count, int n_threads) {
    const SparseSignals s = signals_of(x, dictionary, nullptr, sgemm);
    require(gram.shape(0) == dictionary.shape(0) && gram.shape(1) == dictionary.shape(0),
            "gram must be (n_atoms, n_atoms)");
    const size_t n = x.shape(0), n_alphas = alphas.shape(0), width = support.shape(1);
    require(n_alphas >= 1, "alphas needs at least one value");
    for (size_t g = 0; g < n_alphas; ++g) {
        const double alpha = alphas.data()[g];
        require(alpha >= 0 && alpha <= std::numeric_limits<double>::max(), "alphas must be finite and >= 0");
        require(g == 0 || alpha <= alphas.data()[g - 1], "alphas must be in decreasing order");
    }
    require(width >= 1 && width <= static_cast<size_t>(s.n_atoms), "support needs 1 to n_atoms columns");
    require(count.shape(0) == n && count.shape(1) == n_alphas, "count must be (n, n_alphas)");
    require(support.shape(0) == n * n_alphas && values.shape(0) == n * n_alphas && values.shape(1) == width,
            "support and values must be (n * n_alphas, width)");
    require(max_steps >= 1, "max_steps must be >= 1");
    nb::gil_scoped_release release;
    lasso_homotopy(s, gram.data(), alphas.data(), narrow<int>(n_alphas, "n_alphas"), positive,
                   static_cast<int>(width), max_steps, support.data(), values.data(), count.data(), n_threads);
}

int knots_binding(Cpu::Vec<const double> correlations, Cpu::Mat<const double> gram, int n_features, bool positive,
                  double alpha_min, Cpu::Vec<double> knot_alphas, Cpu::Mat<index_t> knot_support,
                  Cpu::Mat<double> knot_values, Cpu::Vec<index_t> knot_count) {
    const size_t n_atoms = correlations.shape(0), capacity = knot_alphas.shape(0), width = knot_support.shape(1);
    require(n_atoms >= 1 && gram.shape(0) == n_atoms && gram.shape(1) == n_atoms,
            "gram must be (n_atoms, n_atoms) with one correlation per atom");
    require(n_features >= 1, "n_features must be >= 1");
    require(alpha_min >= 0 && alpha_min <= std::numeric_limits<double>::max(), "alpha_min must be finite and >= 0");
    require(capacity >= 2, "room for at least two knots is needed");
    require(width >= 1 && width <= n_atoms, "knot_support needs 1 to n_atoms columns");
    require(knot_support.shape(0) == capacity && knot_values.shape(0) == capacity && knot_values.shape(1) == width &&
                knot_count.shape(0) == capacity,
            "the knot arrays need one row per knot");
    for (size_t a = 0; a < n_atoms; ++a) {
        require(std::isfinite(correlations.data()[a]), "correlations must be finite");
        require(gram.data()[a * n_atoms + a] > 0, "gram needs a positive diagonal");
    }
    nb::gil_scoped_release release;
    return lasso_knots(correlations.data(), gram.data(), narrow<int>(n_atoms, "n_atoms"), n_features, positive,
                       alpha_min, static_cast<int>(width), narrow<int>(capacity, "the knot capacity"),
                       knot_alphas.data(), knot_support.data(), knot_values.data(), knot_count.data());
}

void topk_binding(Cpu::Mat<const float> x, Cpu::Mat<const float> dictionary, nb::capsule sgemm, bool positive,
                  Cpu::Mat<index_t> index, Cpu::Mat<float> values, int n_threads) {
    const SparseSignals s = signals_of(x, dictionary, nullptr, sgemm);
    const size_t n = x.shape(0), k = index.shape(1);
    require(k >= 1 && k <= static_cast<size_t>(s.n_atoms), "k must be between 1 and n_atoms");
    require(index.shape(0) == n && values.shape(0) == n && values.shape(1) == k,
            "index and values must be (n, k)");
    nb::gil_scoped_release release;
    topk_correlations(s, static_cast<int>(k), positive, index.data(), values.data(), n_threads);
}

int update_binding(Cpu::Mat<const double> A, Cpu::Mat<const double> B, Cpu::Mat<float> dictionary,
                   double min_usage, Cpu::Vec<index_t> unused, int n_threads) {
    const size_t n_atoms = dictionary.shape(0), n_features = dictionary.shape(1);
    require(A.shape(0) == n_atoms && A.shape(1) == n_atoms, "A must be (n_atoms, n_atoms)");
    require(B.shape(0) == n_atoms && B.shape(1) == n_features, "B must be (n_atoms, n_features)");
    require(unused.shape(0) == n_atoms, "unused needs n_atoms entries");
    const int atoms = narrow<int>(n_atoms, "n_atoms"), features = narrow<int>(n_features, "n_features");
    nb::gil_scoped_release release;
    return update_dictionary(A.data(), B.data(), dictionary.data(), atoms, features, min_usage, unused.data(),
                             n_threads);
}

}  // namespace

void bind_sparse(nb::module_& m) {
    // Outputs and in-place arrays are .noconvert() (see cpp/bindings/knn.cpp).
    m.def("sparse_batch_omp", &omp_binding, nb::arg("x"), nb::arg("dictionary"), nb::arg("gram").none(),
          nb::arg("sgemm"), nb::arg("tol"), nb::arg("positive"), nb::arg("support").noconvert(),
          nb::arg("coefs").noconvert(), nb::arg("count").noconvert(), nb::arg("n_threads"));
    m.def("sparse_lasso_cd", &lasso_binding, nb::arg("x"), nb::arg("dictionary"), nb::arg("gram"), nb::arg("sgemm"),
          nb::arg("alpha"), nb::arg("positive"), nb::arg("tol"), nb::arg("max_iter"),
          nb::arg("codes").noconvert(), nb::arg("n_threads"));
    m.def("sparse_lasso_homotopy", &homotopy_binding, nb::arg("x"), nb::arg("dictionary"), nb::arg("gram"),
          nb::arg("sgemm"), nb::arg("alphas"), nb::arg("positive"), nb::arg("max_steps"),
          nb::arg("support").noconvert(), nb::arg("values").noconvert(), nb::arg("count").noconvert(),
          nb::arg("n_threads"));
    m.def("sparse_lasso_knots", &knots_binding, nb::arg("correlations"), nb::arg("gram"), nb::arg("n_features"),
          nb::arg("positive"), nb::arg("alpha_min"), nb::arg("knot_alphas").noconvert(),
          nb::arg("knot_support").noconvert(), nb::arg("knot_values").noconvert(), nb::arg("knot_count").noconvert());
    m.def("sparse_topk", &topk_binding, nb::arg("x"), nb::arg("dictionary"), nb::arg("sgemm"), nb::arg("positive"),
          nb::arg("index").noconvert(), nb::arg("values").noconvert(), nb::arg("n_threads"));
    m.def("sparse_omp_capacity", &omp_capacity, nb::arg("max_nonzero"), nb::arg("n_features"));
    m.def("sparse_update_dictionary", &update_binding, nb::arg("A"), nb::arg("B"), nb::arg("dictionary").noconvert(),
          nb::arg("min_usage"), nb::arg("unused").noconvert(), nb::arg("n_threads"));
}
