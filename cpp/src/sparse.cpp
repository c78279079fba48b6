#include "latentcore/sparse.hpp"

#include <cmath>
#include <vector>

namespace latentcore {

namespace {

// Solves L y = b in place (L lower triangular, k x k, row stride ld).
void forward_solve(const double* L, int ld, int k, double* b) {
    for (int r = 0; r < k; ++r) {
        double s = b[r];
        for (int c = 0; c < r; ++c) s -= L[r * ld + c] * b[c];
        b[r] = s / L[r * ld + r];
    }
}

// Solves L^T y = b in place.
void backward_solve(const double* L, int ld, int k, double* b) {
    for (int r = k - 1; r >= 0; --r) {
        double s = b[r];
        for (int c = r + 1; c < k; ++c) s -= L[c * ld + r] * b[c];
        b[r] = s / L[r * ld + r];
    }
}

struct OmpScratch {
    std::vector<double> alpha, L, gamma, w, beta;
    std::vector<char> chosen;
    OmpScratch(int n_atoms, int k)
        : alpha(n_atoms), L(static_cast<size_t>(k) * k), gamma(k), w(k), beta(n_atoms), chosen(n_atoms) {}
};

// Below this the new atom is (numerically) in the span of the chosen ones.
constexpr double kMinPivot = 1e-10;

int omp_one(const float* corr, const double* gram, int n_atoms, int max_nonzero, double residual,
            double tol, index_t* support, float* coefs, OmpScratch& s) {
    for (int a = 0; a < n_atoms; ++a) s.alpha[a] = corr[a];
    std::fill(s.chosen.begin(), s.chosen.end(), 0);
    const int ld = max_nonzero;
    double delta_previous = 0.0;
    int k = 0;
    while (k < max_nonzero && (tol < 0 || residual > tol)) {
        int best = -1;
        double best_abs = 0.0;
        for (int a = 0; a < n_atoms; ++a) {
            const double v = std::fabs(s.alpha[a]);
            if (!s.chosen[a] && v > best_abs) best_abs = v, best = a;
        }
        if (best < 0) break;  // the residual is orthogonal to every atom left
        const double* g_best = gram + static_cast<size_type>(best) * n_atoms;
        double pivot = 1.0;
        if (k > 0) {
            for (int t = 0; t < k; ++t) s.w[t] = g_best[support[t]];
            forward_solve(s.L.data(), ld, k, s.w.data());
            double norm = 0.0;
            for (int t = 0; t < k; ++t) norm += s.w[t] * s.w[t];
            pivot = g_best[best] - norm;
            if (pivot <= kMinPivot) break;
            for (int t = 0; t < k; ++t) s.L[k * ld + t] = s.w[t];
        }
        s.L[k * ld + k] = std::sqrt(pivot);
        s.chosen[best] = 1;
        support[k++] = best;
        for (int t = 0; t < k; ++t) s.gamma[t] = corr[support[t]];
        forward_solve(s.L.data(), ld, k, s.gamma.data());
        backward_solve(s.L.data(), ld, k, s.gamma.data());
        // beta = G[:, support] gamma; alpha = D x - beta.
        std::fill(s.beta.begin(), s.beta.end(), 0.0);
        for (int t = 0; t < k; ++t) {
            const double* g = gram + static_cast<size_type>(support[t]) * n_atoms;  // G symmetric
            const double c = s.gamma[t];
            for (int a = 0; a < n_atoms; ++a) s.beta[a] += c * g[a];
        }
        for (int a = 0; a < n_atoms; ++a) s.alpha[a] = corr[a] - s.beta[a];
        if (tol >= 0) {
            double delta = 0.0;
            for (int t = 0; t < k; ++t) delta += s.gamma[t] * s.beta[support[t]];
            residual += delta_previous - delta;
            delta_previous = delta;
        }
    }
    for (int t = 0; t < k; ++t) coefs[t] = static_cast<float>(s.gamma[t]);
    return k;
}

}  // namespace

void batch_omp(const float* correlations, const double* gram, size_type n, int n_atoms,
               int max_nonzero, const float* residual_sq, double tol, index_t* support,
               float* coefs, index_t* count, int n_threads) {
#pragma omp parallel num_threads(resolve_threads(n_threads))
    {
        OmpScratch scratch(n_atoms, max_nonzero);
#pragma omp for schedule(dynamic, 64)
        for (size_type i = 0; i < n; ++i) {
            const double residual = residual_sq ? residual_sq[i] : 0.0;
            count[i] = omp_one(correlations + i * n_atoms, gram, n_atoms, max_nonzero, residual, tol,
                               support + i * max_nonzero, coefs + i * max_nonzero, scratch);
        }
    }
}

}  // namespace latentcore
