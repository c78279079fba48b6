#include "latentcore/sparse.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <optional>
#include <stdexcept>
#include <vector>

#include "latentcore/parallel.hpp"
#include "latentcore/topk.hpp"

namespace latentcore {

namespace {

// Correlations a thread holds at once: 64 Ki floats = 256 KiB, within L2.
constexpr size_type kCorrelationBuffer = size_type{1} << 16;
// The top-k coder reads each row once right after its GEMM: larger blocks
// (1 MiB, as the TopK autoencoder's encoder) make that GEMM more efficient.
constexpr size_type kTopkBuffer = size_type{1} << 18;

// Runs worker(i, correlations of signal i, ||x_i||^2) for every signal, in
// parallel over blocks of signals; each thread builds its own worker with
// make_worker(work) (its scratch space) inside ParallelWork::run, so a failed
// allocation becomes the kernel's exception rather than a terminate. A worker
// whose one signal can take long (LASSO sweeps, OMP with many atoms) polls
// work.stopped() itself; between signals it is polled here. Ends with
// work.finish(): the first exception of any thread, or Interrupted.
template <typename MakeWorker>
void for_each_signal(const SparseSignals& s, int n_threads, MakeWorker make_worker,
                     size_type buffer_floats = kCorrelationBuffer) {
    const size_type rows_per_block = std::max<size_type>(1, buffer_floats / s.n_atoms);
    const size_type n_blocks = (s.n + rows_per_block - 1) / rows_per_block;
    ParallelWork work;
#pragma omp parallel num_threads(resolve_threads(n_threads))
    {
        std::optional<decltype(make_worker(work))> worker;
        std::vector<float> buffer;
        work.run([&] {
            worker.emplace(make_worker(work));
            if (!s.correlations) buffer.resize(static_cast<size_t>(rows_per_block) * s.n_atoms);
        });
#pragma omp for schedule(dynamic, 1) nowait
        for (size_type b = 0; b < n_blocks; ++b) {
            work.run([&] {
                if (!worker) return;  // this thread's setup failed: the work has stopped
                const size_type first = b * rows_per_block, rows = std::min(rows_per_block, s.n - first);
                const float* corr = s.correlations ? s.correlations + first * s.n_atoms : buffer.data();
                if (!s.correlations) {
                    // corr (rows, n_atoms) row-major = x_block D^T, as column-major corr^T = D x_block^T.
                    const int m = s.n_atoms, cols = static_cast<int>(rows), depth = s.n_features;
                    const float one = 1.0f, zero = 0.0f;
                    s.sgemm("T", "N", &m, &cols, &depth, &one, s.dictionary, &depth, s.x + first * s.n_features,
                            &depth, &zero, buffer.data(), &m);
                }
                for (size_type r = 0; r < rows; ++r) {
                    if (work.stopped()) return;
                    const size_type i = first + r;
                    double x_sq = 0.0;
                    if (s.norms_sq) {
                        x_sq = s.norms_sq[i];
                    } else if (s.x) {
                        const float* x = s.x + i * s.n_features;
                        for (int f = 0; f < s.n_features; ++f) x_sq += static_cast<double>(x[f]) * x[f];
                    }
                    (*worker)(i, corr + r * s.n_atoms, x_sq);
                }
            });
        }
        work.leave_region();
    }
    work.finish();
}

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
    std::vector<double> alpha, L, gamma, w, feasible;
    std::vector<char> chosen;
    OmpScratch(int n_atoms, int k)
        : alpha(n_atoms), L(static_cast<size_t>(k) * k), gamma(k), w(k), feasible(k), chosen(n_atoms) {}
};

// Below this the new atom is (numerically) in the span of the chosen ones.
constexpr double kMinPivot = 1e-10;

// Appends atom `atom` as row k of the Cholesky factor L of G restricted to
// support[0..k). Returns false (L unchanged) when the atom is dependent.
bool extend_cholesky(const double* gram, int n_atoms, const index_t* support, int k, int atom,
                     OmpScratch& s, int ld) {
    const double* g = gram + static_cast<size_type>(atom) * n_atoms;
    for (int t = 0; t < k; ++t) s.w[t] = g[support[t]];
    forward_solve(s.L.data(), ld, k, s.w.data());
    double norm = 0.0;
    for (int t = 0; t < k; ++t) norm += s.w[t] * s.w[t];
    const double pivot = g[atom] - norm;
    if (pivot <= kMinPivot) return false;
    for (int t = 0; t < k; ++t) s.L[k * ld + t] = s.w[t];
    s.L[k * ld + k] = std::sqrt(pivot);
    return true;
}

// gamma = least-squares coefficients of the signal on support[0..k).
void solve_support(const float* corr, const index_t* support, int k, int ld, OmpScratch& s) {
    for (int t = 0; t < k; ++t) s.gamma[t] = corr[support[t]];
    forward_solve(s.L.data(), ld, k, s.gamma.data());
    backward_solve(s.L.data(), ld, k, s.gamma.data());
}

// Non-negative OMP: while the least-squares solution has a coefficient <= 0,
// step from the last feasible coefficients towards it until the first one
// reaches zero and drop that atom (Lawson & Hanson's inner loop), refactoring
// the remaining support. Dropped atoms stay excluded, so this terminates.
int enforce_nonnegative(const float* corr, const double* gram, int n_atoms, index_t* support, int k,
                        int ld, OmpScratch& s) {
    for (;;) {
        solve_support(corr, support, k, ld, s);
        double step = 1.0;
        int blocking = -1;
        for (int t = 0; t < k; ++t) {
            if (s.gamma[t] > 0.0) continue;
            const double reach = s.feasible[t] / (s.feasible[t] - s.gamma[t]);
            if (blocking < 0 || reach < step) step = reach, blocking = t;
        }
        if (blocking < 0) break;
        int kept = 0;
        for (int t = 0; t < k; ++t) {
            const double value = s.feasible[t] + step * (s.gamma[t] - s.feasible[t]);
            if (t == blocking || value <= 0.0) continue;
            support[kept] = support[t];
            s.feasible[kept++] = value;
        }
        k = kept;
        for (int t = 0; t < k; ++t) extend_cholesky(gram, n_atoms, support, t, support[t], s, ld);
        if (k == 0) break;
    }
    for (int t = 0; t < k; ++t) s.feasible[t] = s.gamma[t];
    return k;
}

// One signal's OMP: at most `cap` atoms (cap <= L's order ld, so the factor
// never outgrows its storage, whatever the Gram matrix holds). Polls `work`
// once per atom chosen: a signal with thousands of atoms can take seconds.
LATENTCORE_DISPATCH
int omp_one(const float* corr, const double* gram, int n_atoms, int cap, double x_sq, double tol, bool positive,
            index_t* support, float* coefs, OmpScratch& s, ParallelWork& work) {
    for (int a = 0; a < n_atoms; ++a) s.alpha[a] = corr[a];
    std::fill(s.chosen.begin(), s.chosen.end(), 0);
    const int ld = cap;
    double residual = x_sq;
    int k = 0;
    while (k < cap && (tol < 0 || residual > tol)) {
        if (work.stopped()) break;  // the results are discarded: finish() throws
        int best = -1;
        double best_score = 0.0;
        for (int a = 0; a < n_atoms; ++a) {
            const double v = positive ? s.alpha[a] : std::fabs(s.alpha[a]);
            if (!s.chosen[a] && v > best_score) best_score = v, best = a;
        }
        if (best < 0) break;  // no atom left that would lower the residual
        s.chosen[best] = 1;
        if (!extend_cholesky(gram, n_atoms, support, k, best, s, ld)) {
            if (positive) continue;  // a dependent atom may still leave others that help
            break;
        }
        support[k] = best;
        s.feasible[k++] = 0.0;
        if (positive)
            k = enforce_nonnegative(corr, gram, n_atoms, support, k, ld, s);
        else
            solve_support(corr, support, k, ld, s);
        // alpha = D x - G[:, support] gamma: the residual's correlations.
        for (int a = 0; a < n_atoms; ++a) s.alpha[a] = corr[a];
        double explained = 0.0;
        for (int t = 0; t < k; ++t) {
            const double* g = gram + static_cast<size_type>(support[t]) * n_atoms;  // G symmetric
            const double c = s.gamma[t];
            for (int a = 0; a < n_atoms; ++a) s.alpha[a] -= c * g[a];
            explained += c * corr[support[t]];
        }
        residual = x_sq - explained;  // ||x - D_S gamma||^2 at the least-squares gamma
    }
    for (int t = 0; t < k; ++t) coefs[t] = static_cast<float>(s.gamma[t]);
    return k;
}

}  // namespace

int omp_capacity(int max_nonzero, int n_features) { return std::max(1, std::min(max_nonzero, n_features)); }

void batch_omp(const SparseSignals& signals, const double* gram, int max_nonzero, double tol, bool positive,
               index_t* support, float* coefs, index_t* count, int n_threads) {
    const int n_atoms = signals.n_atoms;
    // Beyond n_features atoms the next one is always in the span of the
    // chosen ones: the Cholesky scratch (cap^2 doubles per thread) is sized
    // by that, not by max_nonzero (every atom, when only tol stops a signal).
    const int cap = omp_capacity(max_nonzero, signals.n_features);
    for_each_signal(signals, n_threads, [&](ParallelWork& work) {
        return [&, scratch = OmpScratch(n_atoms, cap)](size_type i, const float* corr, double x_sq) mutable {
            count[i] = omp_one(corr, gram, n_atoms, cap, x_sq, tol, positive, support + i * max_nonzero,
                               coefs + i * max_nonzero, scratch, work);
        };
    });
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

// Atoms between two polls of the stop check inside a sweep: a sweep over
// tens of thousands of atoms costs up to n_atoms^2 multiply-adds.
constexpr int kAtomsPerPoll = 256;

// One signal's coordinate descent. Polls `work` every kAtomsPerPoll atoms:
// at a tiny alpha a signal may sweep max_iter times. An abandoned signal
// leaves its code as it was (finish() then throws).
LATENTCORE_DISPATCH
int lasso_one(const float* corr, const double* gram, int n_atoms, double x_sq, double scaled_alpha,
              bool positive, double tolerance, int max_iter, float* code, std::vector<double>& b,
              std::vector<double>& q, std::vector<double>& c, ParallelWork& work) {
    for (int a = 0; a < n_atoms; ++a) b[a] = corr[a], c[a] = code[a], q[a] = 0.0;
    for (int a = 0; a < n_atoms; ++a)
        if (c[a] != 0.0)
            for (int t = 0; t < n_atoms; ++t) q[t] += c[a] * gram[static_cast<size_type>(a) * n_atoms + t];
    int sweep = 0;
    while (sweep < max_iter) {
        ++sweep;
        double largest_change = 0.0, largest_value = 0.0;
        for (int first = 0; first < n_atoms; first += kAtomsPerPoll) {
            if (work.stopped()) return sweep;
            const int last = std::min(n_atoms, first + kAtomsPerPoll);
            for (int a = first; a < last; ++a) {
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

int lasso_cd(const SparseSignals& signals, const double* gram, double alpha, bool positive, double tol,
             int max_iter, float* codes, int n_threads) {
    const int n_atoms = signals.n_atoms;
    // An alpha so large that it overflows once scaled zeroes every code, as
    // the largest finite one does (|z| <= alpha for every finite z).
    const double scaled_alpha = std::min(alpha * signals.n_features, std::numeric_limits<double>::max());
    std::atomic<int> most{0};
    for_each_signal(signals, n_threads, [&](ParallelWork& work) {
        return [&, b = std::vector<double>(n_atoms), q = std::vector<double>(n_atoms),
                c = std::vector<double>(n_atoms)](size_type i, const float* corr, double x_sq) mutable {
            const int sweeps = lasso_one(corr, gram, n_atoms, x_sq, scaled_alpha, positive, tol, max_iter,
                                         codes + i * n_atoms, b, q, c, work);
            int seen = most.load(std::memory_order_relaxed);
            while (sweeps > seen && !most.compare_exchange_weak(seen, sweeps, std::memory_order_relaxed)) {
            }
        };
    });
    return most.load();
}

void topk_correlations(const SparseSignals& signals, int k, bool positive, index_t* index, float* values,
                       int n_threads) {
    const int n_atoms = signals.n_atoms;
    for_each_signal(signals, n_threads, [&](ParallelWork&) {
        return [&, magnitude = std::vector<float>(positive ? 0 : n_atoms)](size_type i, const float* corr,
                                                                          double) mutable {
            float* v = values + i * k;
            index_t* id = index + i * k;
            if (positive) {
                topk_of_row(corr, n_atoms, k, true, nullptr, v, id);
                for (int t = 0; t < k; ++t) v[t] = std::max(v[t], 0.0f);  // a NaN slot (-inf, -1) gives 0
            } else {
                for (int a = 0; a < n_atoms; ++a) magnitude[a] = std::fabs(corr[a]);
                topk_of_row(magnitude.data(), n_atoms, k, true, nullptr, v, id);
                // Selected on |c|, read back signed; a slot left empty (only NaN
                // correlations remain) is index -1 with value 0.
                for (int t = 0; t < k; ++t) v[t] = id[t] >= 0 ? corr[id[t]] : 0.0f;
            }
        };
    }, kTopkBuffer);
}

}  // namespace latentcore

namespace latentcore {

int update_dictionary(const double* A, const double* B, float* dictionary, int n_atoms, int n_features,
                      double min_usage, index_t* unused, int n_threads) {
    int n_unused = 0;
    std::vector<double> u(n_features);
    double norm_sq = 0.0;
    bool stop = false;  // written by thread 0 (the one that polls), read by all after a barrier
    // Atoms update in sequence; the threads share each atom's features, so
    // one parallel region with two barriers per atom. A barrier of sleeping
    // threads costs tens of microseconds: below ~2^18 multiply-adds per atom
    // one thread is faster.
    const bool parallel = static_cast<size_type>(n_atoms) * n_features >= (size_type{1} << 18);
    ParallelWork work;
#pragma omp parallel num_threads(parallel ? resolve_threads(n_threads) : 1)
    for (int j = 0; j < n_atoms; ++j) {
        const double* a = A + static_cast<size_type>(j) * n_atoms;
        if (!(a[j] > min_usage)) {
#pragma omp single
            unused[n_unused++] = j;
            continue;
        }
        float* atom = dictionary + static_cast<size_type>(j) * n_features;
#pragma omp for schedule(static)
        for (int f = 0; f < n_features; ++f) {
            double reconstructed = 0.0;
            for (int l = 0; l < n_atoms; ++l) reconstructed += a[l] * dictionary[static_cast<size_type>(l) * n_features + f];
            u[f] = (B[static_cast<size_type>(j) * n_features + f] - reconstructed) / a[j] + atom[f];
        }
        // Summed by one thread in feature order: the same atoms for any thread
        // count. That thread also polls for Ctrl-C; every thread reads its
        // answer after the barrier and leaves at the same atom, so none waits
        // at a barrier the others skipped. Nothing here allocates or throws.
#pragma omp master
        {
            norm_sq = 0.0;
            for (int f = 0; f < n_features; ++f) norm_sq += u[f] * u[f];
            stop = work.stopped();
        }
#pragma omp barrier
        if (stop) break;
        const double scale = norm_sq > 0.0 ? 1.0 / std::sqrt(norm_sq) : 0.0;
#pragma omp for schedule(static)
        for (int f = 0; f < n_features; ++f) atom[f] = static_cast<float>(u[f] * scale);
    }
    work.finish();
    return n_unused;
}

}  // namespace latentcore
