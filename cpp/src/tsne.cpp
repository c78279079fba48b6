#include "latentcore/tsne.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>
#include <vector>

#include "latentcore/parallel.hpp"
#include "latentcore/tsne_math.hpp"

namespace latentcore {

namespace {

// Bisection on the precision beta of one row until its entropy (nats) is
// log(perplexity); adds the row's probabilities, divided by `share`, to out.
void calibrate_row(const float* d, int k, double perplexity, double tol, double share,
                   double* out, std::vector<double>& p) {
    const double target = std::log(perplexity);
    double d_min = std::numeric_limits<double>::infinity();
    for (int j = 0; j < k; ++j) {
        // A NaN, infinite or negative distance would turn the row into NaNs.
        if (!(d[j] >= 0.0f && d[j] <= std::numeric_limits<float>::max()))
            throw std::invalid_argument("squared distances must be finite and non-negative");
        d_min = std::min(d_min, static_cast<double>(d[j]));
    }
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

// Where a point sits in the grid: its box per dimension and the interpolation
// weights of that box's p nodes per dimension.
struct Stencil {
    int box[3] = {0, 0, 0};
    double weight[3][kMaxInterp];

    Stencil(const InterpGrid& g, const LagrangeBasis& basis, const double* y) {
        for (int d = 0; d < g.dim; ++d) {
            box[d] = g.box_of(y[d]);
            basis.weights(g.offset_in(y[d], box[d]), weight[d]);
        }
    }

    // Calls visit(node, weight) for the p^dim nodes of the point's box.
    template <typename Visit>
    void for_each_node(const InterpGrid& g, Visit&& visit) const {
        const size_type side = static_cast<size_type>(g.n_boxes) * g.n_interp;
        const int p = g.n_interp;
        const size_type first[3] = {static_cast<size_type>(box[0]) * p,
                                    static_cast<size_type>(box[1]) * p,
                                    static_cast<size_type>(box[2]) * p};
        for (int a = 0; a < p; ++a) {
            if (g.dim == 1) {
                visit(first[0] + a, weight[0][a]);
                continue;
            }
            for (int b = 0; b < p; ++b) {
                const size_type row = (first[0] + a) * side + first[1] + b;
                const double wab = weight[0][a] * weight[1][b];
                if (g.dim == 2) {
                    visit(row, wab);
                    continue;
                }
                for (int c = 0; c < p; ++c) visit(row * side + first[2] + c, wab * weight[2][c]);
            }
        }
    }
};

}  // namespace

void perplexity_affinities(const float* sq_distances, size_type n, int k,
                           const double* perplexities, int n_perplexities, double tol,
                           double* conditional, int n_threads) {
    ParallelWork work;
#pragma omp parallel num_threads(resolve_threads(n_threads))
    {
        std::vector<double> p;
        work.run([&] { p.resize(k); });
        // A row costs k exp() per bisection step (a few microseconds): rows
        // go in small dynamic chunks so Ctrl-C is seen within milliseconds.
#pragma omp for schedule(dynamic, 16)
        for (size_type i = 0; i < n; ++i)
            work.run([&] {
                double* out = conditional + i * k;
                std::fill(out, out + k, 0.0);
                for (int s = 0; s < n_perplexities; ++s)
                    calibrate_row(sq_distances + i * k, k, perplexities[s], tol, n_perplexities, out, p);
            });
    }
    work.finish();
}

namespace {

// One row's attractive force, DIM fixed at compile time. Edges go in batches:
// first each edge's weight p_ij / (1 + d^2/dof) and offset, a loop without a
// carried dependency that vectorises (AVX2 gathers and divisions where the CPU
// has them); then the sum, in edge order, so results do not depend on threads.
constexpr int kBatch = 64;

// Rows (or elements) per ParallelWork item in the cheap per-row kernels: the
// stop check and the exception guard then cost nothing next to the work.
constexpr size_type kRowsPerItem = 256;

// Calls item(first, last) for the row ranges of [0, n) in kRowsPerItem
// chunks, statically shared among the threads, through `work`.
template <typename Item>
void for_row_blocks(ParallelWork& work, size_type n, size_type per_item, int n_threads, Item&& item) {
    const size_type blocks = (n + per_item - 1) / per_item;
#pragma omp parallel for schedule(static) num_threads(resolve_threads(n_threads))
    for (size_type b = 0; b < blocks; ++b)
        work.run([&] { item(b * per_item, std::min(n, (b + 1) * per_item)); });
}

// P is square: every column must be a row of Y, n_columns of them. A column
// is clamped into range before Y is read at it (one vector min per 8 edges,
// where a separate check would cost a pass over memory or break the loop's
// vectorisation), and the row reports false, with nothing written, when any
// was outside: the caller throws. (An exception thrown inside a target_clones
// function is not seen by GCC's callers, which it compiles as if the function
// could not throw, so the check cannot throw here.)
template <int DIM, typename Weight>
LATENTCORE_DISPATCH bool attract_row(const CsrGraph<Weight>& P, size_type i, const double* Y,
                                     double dof, double* force, double* kl_out, std::uint32_t n_columns) {
    const double* yi = Y + i * DIM;
    double f[DIM] = {};
    double pull[kBatch], offset[DIM][kBatch];
    const std::uint32_t last_column = n_columns - 1;
    std::uint32_t largest = 0;
    for (std::int64_t start = P.indptr[i]; start < P.indptr[i + 1]; start += kBatch) {
        const int len = static_cast<int>(std::min<std::int64_t>(kBatch, P.indptr[i + 1] - start));
        for (int l = 0; l < len; ++l) {
            // As unsigned, a negative column is larger than any row count.
            const std::uint32_t column = static_cast<std::uint32_t>(P.indices[start + l]);
            largest = std::max(largest, column);
            const size_type j = std::min(column, last_column);
            double sq = 0.0;
            for (int t = 0; t < DIM; ++t) {
                offset[t][l] = yi[t] - Y[j * DIM + t];
                sq += offset[t][l] * offset[t][l];
            }
            pull[l] = attraction(P.weights[start + l], sq, dof);
        }
        for (int l = 0; l < len; ++l)
            for (int t = 0; t < DIM; ++t) f[t] += pull[l] * offset[t][l];
    }
    if (largest > last_column) return false;
    for (int t = 0; t < DIM; ++t) force[t] = f[t];
    if (kl_out) {
        double kl = 0.0;
        for (std::int64_t e = P.indptr[i]; e < P.indptr[i + 1]; ++e) {
            if (P.weights[e] <= 0) continue;
            const double sq = squared_distance(yi, Y + static_cast<size_type>(P.indices[e]) * DIM, DIM);
            kl += kl_term(P.weights[e], sq, dof);
        }
        *kl_out = kl;
    }
    return true;
}

template <int DIM, typename Weight>
void attract(const CsrGraph<Weight>& P, const double* Y, double dof, double exaggeration,
             double* forces, double* kl_terms, int n_threads) {
    ParallelWork work;
    // Columns are int32: with more rows than that, every non-negative one is in range.
    const std::uint32_t n_columns = static_cast<std::uint32_t>(std::min<size_type>(P.n_rows, size_type{1} << 31));
    for_row_blocks(work, P.n_rows, kRowsPerItem, n_threads, [&](size_type first, size_type last) {
        for (size_type i = first; i < last; ++i) {
            if (!attract_row<DIM, Weight>(P, i, Y, dof, forces + i * DIM, kl_terms ? kl_terms + i : nullptr, n_columns))
                throw std::invalid_argument("affinity column index out of range [0, n)");
            for (int t = 0; t < DIM; ++t) forces[i * DIM + t] *= exaggeration;
        }
    });
    work.finish();
}

}  // namespace

CsrBuffers<double> symmetrize_affinities(const index_t* neighbors, const double* conditional, size_type n, int k,
                          int n_threads) {
    using Entry = std::pair<index_t, double>;
    const auto by_column = [](const Entry& a, const Entry& b) { return a.first < b.first; };
    // The serial passes below poll for Ctrl-C every this many entries.
    constexpr size_type kPollEvery = size_type{1} << 16;
    ParallelWork work;
    // Row r of P merges two column-sorted lists: its own k entries (sorted
    // here) and one entry per point listing r (sorted by construction, as
    // points are visited in order). A pair listed both ways meets once.
    std::vector<Entry> own(n * k);
    for_row_blocks(work, n, kRowsPerItem, n_threads, [&](size_type first, size_type last) {
        for (size_type i = first; i < last; ++i) {
            for (int t = 0; t < k; ++t) own[i * k + t] = {neighbors[i * k + t], conditional[i * k + t]};
            std::sort(own.begin() + i * k, own.begin() + (i + 1) * k, by_column);
        }
    });
    work.finish();
    std::vector<std::int64_t> listed(n + 1, 0);
    for (size_type t = 0; t < n * k; ++t) {
        if (t % kPollEvery == 0 && work.stopped()) break;
        ++listed[neighbors[t] + 1];
    }
    work.finish();
    for (size_type r = 0; r < n; ++r) listed[r + 1] += listed[r];
    std::vector<Entry> reverse(n * k);
    {
        std::vector<std::int64_t> fill(listed.begin(), listed.end() - 1);
        for (size_type i = 0; i < n; ++i) {
            if (i % (kPollEvery / 16) == 0 && work.stopped()) break;
            for (int t = 0; t < k; ++t)
                reverse[fill[neighbors[i * k + t]]++] = {static_cast<index_t>(i), conditional[i * k + t]};
        }
        work.finish();
    }
    const double scale = 1.0 / (2.0 * static_cast<double>(n));
    // Merge each row twice: once to count, once to write where the count says.
    // Equal columns are summed into one entry: a pair listed both ways, and a
    // neighbour a row lists more than once (the merged lists are sorted, so
    // equal columns arrive one after another).
    auto merge = [&](size_type r, auto&& emit) {
        index_t column = -1;
        double sum = 0.0;
        auto take = [&](const Entry& e) {
            if (e.first == column) {
                sum += e.second;
                return;
            }
            if (column >= 0) emit(column, sum);
            column = e.first;
            sum = e.second;
        };
        auto a = own.begin() + r * k, a_end = a + k;
        auto b = reverse.begin() + listed[r], b_end = reverse.begin() + listed[r + 1];
        while (a != a_end || b != b_end) {
            if (b == b_end || (a != a_end && a->first <= b->first))
                take(*a++);
            else
                take(*b++);
        }
        if (column >= 0) emit(column, sum);
    };
    CsrBuffers<double> P;
    P.indptr.assign(n + 1, 0);
    for_row_blocks(work, n, kRowsPerItem, n_threads, [&](size_type first, size_type last) {
        for (size_type r = first; r < last; ++r) merge(r, [&](index_t, double) { ++P.indptr[r + 1]; });
    });
    work.finish();
    for (size_type r = 0; r < n; ++r) P.indptr[r + 1] += P.indptr[r];
    P.indices.resize(P.indptr[n]);
    P.weights.resize(P.indptr[n]);
    for_row_blocks(work, n, kRowsPerItem, n_threads, [&](size_type first, size_type last) {
        for (size_type r = first; r < last; ++r) {
            std::int64_t at = P.indptr[r];
            merge(r, [&](index_t column, double value) {
                P.indices[at] = column;
                P.weights[at++] = value * scale;
            });
        }
    });
    work.finish();
    return P;
}

namespace {

template <typename Weight>
void attract_any(const CsrGraph<Weight>& P, const double* Y, int dim, double dof, double exaggeration,
                 double* forces, double* kl_terms, int n_threads) {
    if (dim == 1) attract<1>(P, Y, dof, exaggeration, forces, kl_terms, n_threads);
    if (dim == 2) attract<2>(P, Y, dof, exaggeration, forces, kl_terms, n_threads);
    if (dim == 3) attract<3>(P, Y, dof, exaggeration, forces, kl_terms, n_threads);
}

}  // namespace

void attractive_forces(const CsrGraph<float>& P, const double* Y, int dim, double dof,
                       double exaggeration, double* forces, double* kl_terms, int n_threads) {
    attract_any(P, Y, dim, dof, exaggeration, forces, kl_terms, n_threads);
}

void attractive_forces(const CsrGraph<double>& P, const double* Y, int dim, double dof,
                       double exaggeration, double* forces, double* kl_terms, int n_threads) {
    attract_any(P, Y, dim, dof, exaggeration, forces, kl_terms, n_threads);
}

void repulsion_from(const double* sources, size_type n, const double* points, size_type m, int dim,
                    double dof, bool same_set, double* repulsion, double* w_sums, int n_threads) {
    ParallelWork work;
    // One point per item: a point costs n kernel evaluations (1 ms at n = 10^5).
#pragma omp parallel for schedule(dynamic, 64) num_threads(resolve_threads(n_threads))
    for (size_type i = 0; i < m; ++i) work.run([&] {
        const double* yi = points + i * dim;
        double f[3] = {0.0, 0.0, 0.0};
        double z = 0.0;
        for (size_type j = 0; j < n; ++j) {
            if (same_set && j == i) continue;
            const double* yj = sources + j * dim;
            const double q = cauchy_factor(squared_distance(yi, yj, dim), dof);
            const double w = tsne_kernel(q, dof);
            z += w;
            for (int t = 0; t < dim; ++t) f[t] += w * q * (yi[t] - yj[t]);
        }
        for (int t = 0; t < dim; ++t) repulsion[i * dim + t] = f[t];
        w_sums[i] = z;
    });
    work.finish();
}

void scatter_charges(const InterpGrid& g, const double* Y, size_type n, const double* charges,
                     int n_charges, double* values, int n_threads) {
    const size_type nodes = g.nodes();
    const LagrangeBasis basis(g.n_interp);
    // Points are bucketed by their box along the first axis: a bucket touches
    // only its own slab of nodes, so slabs fill in parallel, each in point
    // order (a stable counting sort): deterministic for any thread count.
    std::vector<size_type> start(g.n_boxes + 1, 0), order(n);
    std::vector<int> slab(n);
    for (size_type i = 0; i < n; ++i) {
        slab[i] = g.box_of(Y[i * g.dim]);
        ++start[slab[i] + 1];
    }
    for (int b = 0; b < g.n_boxes; ++b) start[b + 1] += start[b];
    {
        std::vector<size_type> fill(start.begin(), start.end() - 1);
        for (size_type i = 0; i < n; ++i) order[fill[slab[i]]++] = i;
    }
    std::fill(values, values + nodes * n_charges, 0.0);
    ParallelWork work;
#pragma omp parallel for schedule(dynamic, 1) num_threads(resolve_threads(n_threads))
    for (int b = 0; b < g.n_boxes; ++b) work.run([&] {
        for (size_type at = start[b]; at < start[b + 1]; ++at) {
            // A slab may hold most points: poll now and then within it.
            if ((at - start[b]) % 4096 == 4095 && work.stopped()) return;
            const size_type i = order[at];
            const double* q = charges + i * n_charges;
            Stencil(g, basis, Y + i * g.dim).for_each_node(g, [&](size_type node, double w) {
                for (int c = 0; c < n_charges; ++c) values[c * nodes + node] += w * q[c];
            });
        }
    });
    work.finish();
}

void gather_potentials(const InterpGrid& g, const double* Y, size_type n, const double* values,
                       int n_charges, double* potentials, int n_threads) {
    const size_type nodes = g.nodes();
    const LagrangeBasis basis(g.n_interp);
    ParallelWork work;
    for_row_blocks(work, n, kRowsPerItem, n_threads, [&](size_type first, size_type last) {
        for (size_type i = first; i < last; ++i) {
            double* out = potentials + i * n_charges;
            std::fill(out, out + n_charges, 0.0);
            Stencil(g, basis, Y + i * g.dim).for_each_node(g, [&](size_type node, double w) {
                for (int c = 0; c < n_charges; ++c) out[c] += w * values[c * nodes + node];
            });
        }
    });
    work.finish();
}

void gradient_step(double* Y, size_type n, int dim, const double* gradient, double* update,
                   double* gains, double learning_rate, double momentum, double min_gain,
                   bool recenter, int n_threads) {
    const size_type total = n * dim;
    ParallelWork work;
    for_row_blocks(work, total, 16 * kRowsPerItem, n_threads, [&](size_type first, size_type last) {
        for (size_type t = first; t < last; ++t) {
            descend(Y[t], gradient[t], update[t], gains[t], learning_rate, momentum, min_gain);
        }
    });
    work.finish();
    if (!recenter) return;
    // Serial on purpose: a fixed summation order keeps runs identical across thread counts.
    double mean[3] = {0.0, 0.0, 0.0};
    for (size_type i = 0; i < n; ++i)
        for (int d = 0; d < dim; ++d) mean[d] += Y[i * dim + d];
    for (int d = 0; d < dim; ++d) mean[d] /= static_cast<double>(n);
    for (size_type i = 0; i < n; ++i)
        for (int d = 0; d < dim; ++d) Y[i * dim + d] -= mean[d];
}

}  // namespace latentcore
