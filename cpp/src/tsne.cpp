#include "latentcore/tsne.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace latentcore {

namespace {

// Bisection on the precision beta of one row until its entropy (nats) is
// log(perplexity); adds the row's probabilities, divided by `share`, to out.
void calibrate_row(const float* d, int k, double perplexity, double tol, double share,
                   double* out, std::vector<double>& p) {
    const double target = std::log(perplexity);
    const double d_min = *std::min_element(d, d + k);
    double beta = 1.0, lo = 0.0, hi = std::numeric_limits<double>::infinity();
    for (int iter = 0; iter < 200; ++iter) {
        double sum = 0.0, weighted = 0.0;
        for (int j = 0; j < k; ++j) {
            // Shifting by the nearest distance keeps exp() from underflowing.
            const double shifted = d[j] - d_min;
            p[j] = std::exp(-beta * shifted);
            sum += p[j];
            weighted += shifted * p[j];
        }
        const double entropy = std::log(sum) + beta * weighted / sum;
        for (int j = 0; j < k; ++j) p[j] /= sum;
        if (std::abs(entropy - target) < tol) break;
        if (entropy > target) {
            lo = beta;
            beta = std::isinf(hi) ? beta * 2.0 : 0.5 * (beta + hi);
        } else {
            hi = beta;
            beta = 0.5 * (beta + lo);
        }
    }
    for (int j = 0; j < k; ++j) out[j] += p[j] / share;
}

double squared_distance(const double* a, const double* b, int dim) {
    double s = 0.0;
    for (int t = 0; t < dim; ++t) s += (a[t] - b[t]) * (a[t] - b[t]);
    return s;
}

// w^(1/dof) = 1 / (1 + d^2 / dof): the factor every force carries.
double cauchy_factor(double sq_dist, double dof) { return 1.0 / (1.0 + sq_dist / dof); }

double kernel(double factor, double dof) { return dof == 1.0 ? factor : std::pow(factor, dof); }

// Lagrange basis at t in [0, 1) over nodes (m + 1/2) / p.
void lagrange_weights(double t, int p, double* w) {
    for (int m = 0; m < p; ++m) {
        const double xm = (m + 0.5) / p;
        double v = 1.0;
        for (int o = 0; o < p; ++o) {
            if (o == m) continue;
            const double xo = (o + 0.5) / p;
            v *= (t - xo) / (xm - xo);
        }
        w[m] = v;
    }
}

// Where a point sits in the grid: its box per dimension and the interpolation
// weights of that box's nodes (p per dimension, p <= kMaxInterp).
constexpr int kMaxInterp = 16;

struct Stencil {
    int box[3] = {0, 0, 0};
    double weight[3][kMaxInterp];

    Stencil(const InterpGrid& g, const double* y) {
        for (int d = 0; d < g.dim; ++d) {
            const double u = (y[d] - g.lower) / g.box_width;
            box[d] = std::clamp(static_cast<int>(std::floor(u)), 0, g.n_boxes - 1);
            lagrange_weights(u - box[d], g.n_interp, weight[d]);
        }
    }

    size_type flat_box(const InterpGrid& g) const {
        size_type f = 0;
        for (int d = 0; d < g.dim; ++d) f = f * g.n_boxes + box[d];
        return f;
    }

    // Calls visit(node, weight) for the p^dim nodes of the point's box.
    template <typename Visit>
    void for_each_node(const InterpGrid& g, Visit&& visit) const {
        const size_type side = static_cast<size_type>(g.n_boxes) * g.n_interp;
        const int p = g.n_interp;
        int count = 1;
        for (int d = 0; d < g.dim; ++d) count *= p;
        for (int local = 0; local < count; ++local) {
            size_type node = 0;
            double w = 1.0;
            int rest = local;
            int m[3] = {0, 0, 0};
            for (int d = g.dim - 1; d >= 0; --d) {
                m[d] = rest % p;
                rest /= p;
            }
            for (int d = 0; d < g.dim; ++d) {
                node = node * side + static_cast<size_type>(box[d]) * p + m[d];
                w *= weight[d][m[d]];
            }
            visit(node, w);
        }
    }
};

size_type grid_nodes(const InterpGrid& g) {
    size_type nodes = 1;
    for (int d = 0; d < g.dim; ++d) nodes *= static_cast<size_type>(g.n_boxes) * g.n_interp;
    return nodes;
}

double sign(double x) { return (x > 0) - (x < 0); }

}  // namespace

void perplexity_affinities(const float* sq_distances, size_type n, int k,
                           const double* perplexities, int n_perplexities, double tol,
                           double* conditional, int n_threads) {
#pragma omp parallel num_threads(resolve_threads(n_threads))
    {
        std::vector<double> p(k);
#pragma omp for schedule(static)
        for (size_type i = 0; i < n; ++i) {
            double* out = conditional + i * k;
            std::fill(out, out + k, 0.0);
            for (int s = 0; s < n_perplexities; ++s)
                calibrate_row(sq_distances + i * k, k, perplexities[s], tol, n_perplexities, out, p);
        }
    }
}

void attractive_forces(const CsrGraph<double>& P, const double* Y, int dim, double dof,
                       double exaggeration, double* forces, double* kl_terms, int n_threads) {
#pragma omp parallel for schedule(static) num_threads(resolve_threads(n_threads))
    for (size_type i = 0; i < P.n_rows; ++i) {
        const double* yi = Y + i * dim;
        double f[3] = {0.0, 0.0, 0.0};
        double kl = 0.0;
        for (std::int64_t e = P.indptr[i]; e < P.indptr[i + 1]; ++e) {
            const double* yj = Y + static_cast<size_type>(P.indices[e]) * dim;
            const double sq = squared_distance(yi, yj, dim);
            const double q = cauchy_factor(sq, dof);
            const double pq = P.weights[e] * q;
            for (int t = 0; t < dim; ++t) f[t] += pq * (yi[t] - yj[t]);
            if (kl_terms && P.weights[e] > 0)
                kl += P.weights[e] * (std::log(P.weights[e]) + dof * std::log1p(sq / dof));
        }
        for (int t = 0; t < dim; ++t) forces[i * dim + t] = exaggeration * f[t];
        if (kl_terms) kl_terms[i] = kl;
    }
}

void exact_repulsion(const double* Y, size_type n, int dim, double dof, double* repulsion,
                     double* z_terms, int n_threads) {
#pragma omp parallel for schedule(dynamic, 64) num_threads(resolve_threads(n_threads))
    for (size_type i = 0; i < n; ++i) {
        const double* yi = Y + i * dim;
        double f[3] = {0.0, 0.0, 0.0};
        double z = 0.0;
        for (size_type j = 0; j < n; ++j) {
            if (j == i) continue;
            const double* yj = Y + j * dim;
            const double q = cauchy_factor(squared_distance(yi, yj, dim), dof);
            const double w = kernel(q, dof);
            z += w;
            for (int t = 0; t < dim; ++t) f[t] += w * q * (yi[t] - yj[t]);
        }
        for (int t = 0; t < dim; ++t) repulsion[i * dim + t] = f[t];
        z_terms[i] = z;
    }
}

void scatter_charges(const InterpGrid& g, const double* Y, size_type n, const double* charges,
                     int n_charges, double* values, int n_threads) {
    const size_type nodes = grid_nodes(g);
    size_type n_box = 1;
    for (int d = 0; d < g.dim; ++d) n_box *= g.n_boxes;
    // Counting sort of the points by box, stable, so each box sums in point order.
    std::vector<size_type> box_of(n), start(n_box + 1, 0), order(n);
    for (size_type i = 0; i < n; ++i) {
        box_of[i] = Stencil(g, Y + i * g.dim).flat_box(g);
        ++start[box_of[i] + 1];
    }
    for (size_type b = 0; b < n_box; ++b) start[b + 1] += start[b];
    {
        std::vector<size_type> fill(start.begin(), start.end() - 1);
        for (size_type i = 0; i < n; ++i) order[fill[box_of[i]]++] = i;
    }
    std::fill(values, values + nodes * n_charges, 0.0);
#pragma omp parallel for schedule(dynamic, 16) num_threads(resolve_threads(n_threads))
    for (size_type b = 0; b < n_box; ++b) {
        for (size_type at = start[b]; at < start[b + 1]; ++at) {
            const size_type i = order[at];
            const double* q = charges + i * n_charges;
            Stencil(g, Y + i * g.dim).for_each_node(g, [&](size_type node, double w) {
                for (int c = 0; c < n_charges; ++c) values[c * nodes + node] += w * q[c];
            });
        }
    }
}

void gather_potentials(const InterpGrid& g, const double* Y, size_type n, const double* values,
                       int n_charges, double* potentials, int n_threads) {
    const size_type nodes = grid_nodes(g);
#pragma omp parallel for schedule(static) num_threads(resolve_threads(n_threads))
    for (size_type i = 0; i < n; ++i) {
        double* out = potentials + i * n_charges;
        std::fill(out, out + n_charges, 0.0);
        Stencil(g, Y + i * g.dim).for_each_node(g, [&](size_type node, double w) {
            for (int c = 0; c < n_charges; ++c) out[c] += w * values[c * nodes + node];
        });
    }
}

void gradient_step(double* Y, size_type n, int dim, const double* gradient, double* update,
                   double* gains, double learning_rate, double momentum, double min_gain,
                   int n_threads) {
    const size_type total = n * dim;
#pragma omp parallel for schedule(static) num_threads(resolve_threads(n_threads))
    for (size_type t = 0; t < total; ++t) {
        gains[t] = sign(update[t]) != sign(gradient[t]) ? gains[t] + 0.2 : gains[t] * 0.8 + min_gain;
        update[t] = momentum * update[t] - learning_rate * gains[t] * gradient[t];
        Y[t] += update[t];
    }
    // Serial on purpose: a fixed summation order keeps runs identical across thread counts.
    double mean[3] = {0.0, 0.0, 0.0};
    for (size_type i = 0; i < n; ++i)
        for (int d = 0; d < dim; ++d) mean[d] += Y[i * dim + d];
    for (int d = 0; d < dim; ++d) mean[d] /= static_cast<double>(n);
    for (size_type i = 0; i < n; ++i)
        for (int d = 0; d < dim; ++d) Y[i * dim + d] -= mean[d];
}

}  // namespace latentcore
