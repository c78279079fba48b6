#include "latentcore/sparse.hpp"

#include <algorithm>
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

LATENTCORE_DISPATCH
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

namespace {

// The duality gap of one signal's LASSO problem, scaled by n_features
// (scikit-learn's convention), from b = D x, q = G c and ||x||^2.
double lasso_gap(const double* b, const double* q, const double* c, int n_atoms, double x_sq,
                 double scaled_alpha, bool positive) {
    double c_b = 0.0, c_q = 0.0, l1 = 0.0, dual_norm = 0.0;
    for (int a = 0; a < n_atoms; ++a) {
        c_b += c[a] * b[a];
        c_q += c[a] * q[a];
        l1 += std::fabs(c[a]);
        const double grad = b[a] - q[a];  // D r
        dual_norm = std::max(dual_norm, positive ? grad : std::fabs(grad));
    }
    const double r_sq = std::max(0.0, x_sq - 2.0 * c_b + c_q), r_x = x_sq - c_b;
    const double scale = dual_norm > scaled_alpha ? scaled_alpha / dual_norm : 1.0;
    return 0.5 * r_sq * (1.0 + scale * scale) + scaled_alpha * l1 - scale * r_x;
}

LATENTCORE_DISPATCH
int lasso_one(const float* corr, const double* gram, int n_atoms, double x_sq, double scaled_alpha,
              bool positive, double tolerance, int max_iter, float* code, std::vector<double>& b,
              std::vector<double>& q, std::vector<double>& c) {
    for (int a = 0; a < n_atoms; ++a) b[a] = corr[a], c[a] = code[a], q[a] = 0.0;
    for (int a = 0; a < n_atoms; ++a)
        if (c[a] != 0.0)
            for (int t = 0; t < n_atoms; ++t) q[t] += c[a] * gram[static_cast<size_type>(a) * n_atoms + t];
    int sweep = 0;
    while (sweep < max_iter) {
        ++sweep;
        double largest_change = 0.0, largest_value = 0.0;
        for (int a = 0; a < n_atoms; ++a) {
            const double* g = gram + static_cast<size_type>(a) * n_atoms;
            const double old = c[a];
            const double z = b[a] - q[a] + g[a] * old;  // correlation with a left out
            double value = std::fabs(z) <= scaled_alpha ? 0.0 : (z - std::copysign(scaled_alpha, z)) / g[a];
            if (positive && value < 0.0) value = 0.0;
            if (value == old) continue;
            const double change = value - old;
            for (int t = 0; t < n_atoms; ++t) q[t] += change * g[t];
            c[a] = value;
            largest_change = std::max(largest_change, std::fabs(change));
            largest_value = std::max(largest_value, std::fabs(value));
        }
        // As scikit-learn: the gap is computed only once the updates are small.
        if (largest_value == 0.0 || largest_change / largest_value < tolerance || sweep == max_iter) {
            if (lasso_gap(b.data(), q.data(), c.data(), n_atoms, x_sq, scaled_alpha, positive) <=
                tolerance * x_sq)
                break;
        }
    }
    for (int a = 0; a < n_atoms; ++a) code[a] = static_cast<float>(c[a]);
    return sweep;
}

}  // namespace

int lasso_cd(const float* correlations, const double* gram, const float* residual_sq, size_type n,
             int n_atoms, int n_features, double alpha, bool positive, double tol, int max_iter,
             float* codes, int n_threads) {
    int most = 0;
    const double scaled_alpha = alpha * n_features;
#pragma omp parallel num_threads(resolve_threads(n_threads)) reduction(max : most)
    {
        std::vector<double> b(n_atoms), q(n_atoms), c(n_atoms);
#pragma omp for schedule(dynamic, 64)
        for (size_type i = 0; i < n; ++i)
            most = std::max(most, lasso_one(correlations + i * n_atoms, gram, n_atoms, residual_sq[i],
                                            scaled_alpha, positive, tol, max_iter, codes + i * n_atoms, b, q, c));
    }
    return most;
}

}  // namespace latentcore
