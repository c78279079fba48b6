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

// Correlations a thread holds at once: 64 Ki floats = 256 KiB, within L2,
// but at least kMinGemmRows signals: SGEMM packs the whole dictionary once
// per call, which costs as much as the product itself below that many
// columns (a 16k-atom dictionary would otherwise be packed every 4 signals).
constexpr size_type kCorrelationBuffer = size_type{1} << 16;
constexpr size_type kMinGemmRows = 64;
// The top-k coder reads each row once right after its GEMM: larger blocks
// (1 MiB, as the TopK autoencoder's encoder) make that GEMM more efficient.
constexpr size_type kTopkBuffer = size_type{1} << 18;

// ||x_i||^2 in double: given (norms_sq), else computed from x, else 0.
double signal_norm_sq(const SparseSignals& s, size_type i) {
    if (s.norms_sq) return s.norms_sq[i];
    double x_sq = 0.0;
    if (s.x) {
        const float* x = s.x + i * s.n_features;
        for (int f = 0; f < s.n_features; ++f) x_sq += static_cast<double>(x[f]) * x[f];
    }
    return x_sq;
}

// Multiply-adds of one SGEMM call between two polls of the stop check
// (about 5 ms on one core).
constexpr size_type kGemmChunk = size_type{1} << 27;

// out (m, n_atoms) row-major = rows (m, n_features) D^T, one SGEMM per block
// of atoms (out^T = D rows^T column-major), polling the stop check between
// them. False when the work stopped (out then partly written).
bool correlations_gemm(const SparseSignals& s, int m, const float* rows, float* out, ParallelWork& work) {
    const int n_atoms = s.n_atoms, depth = s.n_features;
    const size_type per_call = std::max<size_type>(256, kGemmChunk / (static_cast<size_type>(m) * depth));
    const float one = 1.0f, zero = 0.0f;
    for (size_type first = 0; first < n_atoms; first += per_call) {
        if (first > 0 && work.stopped()) return false;
        const int cols = static_cast<int>(std::min<size_type>(per_call, n_atoms - first));
        s.sgemm("T", "N", &cols, &m, &depth, &one, s.dictionary + first * depth, &depth, rows, &depth, &zero,
                out + first, &n_atoms);
    }
    return true;
}

// Runs worker(first, rows, corr) for every block of rows_per_block signals
// (the last one shorter), in parallel over the blocks: corr (rows, n_atoms)
// row-major holds the correlations D x of signals first .. first + rows - 1.
// Each thread builds its own worker with make_worker(work) (its scratch
// space) inside ParallelWork::run, so a failed allocation becomes the
// kernel's exception rather than a terminate. The worker polls
// work.stopped() itself. Ends with work.finish(): the first exception of any
// thread, or Interrupted.
template <typename MakeWorker>
void for_each_block(const SparseSignals& s, int n_threads, size_type rows_per_block, MakeWorker make_worker) {
    rows_per_block = std::max<size_type>(1, rows_per_block);
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
                if (!s.correlations &&
                    !correlations_gemm(s, static_cast<int>(rows), s.x + first * s.n_features, buffer.data(), work))
                    return;
                (*worker)(first, rows, corr);
            });
        }
        work.leave_region();
    }
    work.finish();
}

// Runs worker(i, correlations of signal i, ||x_i||^2) for every signal, in
// parallel over blocks of signals whose correlations fill buffer_floats (see
// for_each_block; each thread builds its worker with make_worker(work)). A
// worker whose one signal can take long (LASSO sweeps, OMP with many atoms)
// polls work.stopped() itself; between signals it is polled here. Ends with
// work.finish(): the first exception of any thread, or Interrupted.
template <typename MakeWorker>
void for_each_signal(const SparseSignals& s, int n_threads, MakeWorker make_worker,
                     size_type buffer_floats = kCorrelationBuffer) {
    for_each_block(s, n_threads, std::max(kMinGemmRows, buffer_floats / s.n_atoms), [&](ParallelWork& work) {
        return [&s, &work, each = make_worker(work)](size_type first, size_type rows, const float* corr) mutable {
            for (size_type r = 0; r < rows; ++r) {
                if (work.stopped()) return;
                each(first + r, corr + r * s.n_atoms, signal_norm_sq(s, first + r));
            }
        };
    });
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

// One signal's OMP state: the Cholesky factor L of the Gram matrix on the
// support (cap x cap, row stride cap), the least-squares coefficients gamma
// on it (positive: also the last feasible ones), the atoms tried so far, the
// support's size k and the squared residual.
struct OmpScratch {
    std::vector<double> L, gamma, w, feasible;
    std::vector<char> chosen;
    int k = 0;
    double x_sq = 0.0, residual = 0.0;
    OmpScratch(int n_atoms, int cap)
        : L(static_cast<size_t>(cap) * cap), gamma(cap), w(cap), feasible(cap), chosen(n_atoms) {}
    void start(double signal_sq) {
        std::fill(chosen.begin(), chosen.end(), 0);
        k = 0;
        x_sq = residual = signal_sq;
    }
    // Whether the signal takes another atom: at most cap, until the squared
    // residual falls to tol (tol < 0: never).
    bool goes_on(int cap, double tol) const { return k < cap && (tol < 0 || residual > tol); }
};

// <a, b> of two float32 vectors in double (each product exact), in four
// running sums.
inline double dot_double(const float* a, const float* b, int n) {
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int f = 0;
    for (; f + 4 <= n; f += 4) {
        s0 += static_cast<double>(a[f]) * b[f];
        s1 += static_cast<double>(a[f + 1]) * b[f + 1];
        s2 += static_cast<double>(a[f + 2]) * b[f + 2];
        s3 += static_cast<double>(a[f + 3]) * b[f + 3];
    }
    for (; f < n; ++f) s0 += static_cast<double>(a[f]) * b[f];
    return (s0 + s1) + (s2 + s3);
}

// Where the Cholesky factor reads the Gram entries <d_a, d_b>: the rows of
// the Gram matrix, or, without one (gram null), dot products of the float32
// atoms in double: the Gram matrix's values up to the order of summation,
// n_features multiply-adds each (k of them per atom chosen).
struct GramEntries {
    const float* gram = nullptr;  // (n_atoms, n_atoms) row-major, or null
    const float* dictionary = nullptr;  // (n_atoms, n_features) row-major
    int n_atoms = 0;
    int n_features = 0;

    // out[t] = <d_atom, d_support[t]> for t < k; returns <d_atom, d_atom>.
    double column(int atom, const index_t* support, int k, double* out) const {
        if (gram) {
            const float* g = gram + static_cast<size_type>(atom) * n_atoms;
            for (int t = 0; t < k; ++t) out[t] = g[support[t]];
            return g[atom];
        }
        const float* a = dictionary + static_cast<size_type>(atom) * n_features;
        for (int t = 0; t < k; ++t)
            out[t] = dot_double(a, dictionary + static_cast<size_type>(support[t]) * n_features, n_features);
        return dot_double(a, a, n_features);
    }
};

// Below this the new atom is (numerically) in the span of the chosen ones.
constexpr double kMinPivot = 1e-10;

// Appends atom `atom` as row k of the Cholesky factor L of G restricted to
// support[0..k). Returns false (L unchanged) when the atom is dependent.
bool extend_cholesky(const GramEntries& gram, const index_t* support, int k, int atom, OmpScratch& s, int ld) {
    const double diagonal = gram.column(atom, support, k, s.w.data());
    forward_solve(s.L.data(), ld, k, s.w.data());
    double norm = 0.0;
    for (int t = 0; t < k; ++t) norm += s.w[t] * s.w[t];
    const double pivot = diagonal - norm;
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
int enforce_nonnegative(const float* corr, const GramEntries& gram, index_t* support, int k, int ld,
                        OmpScratch& s) {
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
        for (int t = 0; t < k; ++t) extend_cholesky(gram, support, t, support[t], s, ld);
        if (k == 0) break;
    }
    for (int t = 0; t < k; ++t) s.feasible[t] = s.gamma[t];
    return k;
}

// The atom of largest |alpha| (positive: largest alpha) not chosen yet, ties
// to the smaller atom; -1 when none would lower the residual (all <= 0).
// The largest score of each block of atoms is a reduction the compiler
// vectorizes; only the block that holds the first maximum is searched.
template <typename Real>
[[gnu::always_inline]] inline int best_atom_of(const Real* alpha, const char* chosen, int n_atoms, bool positive) {
    constexpr int kBlock = 64;
    Real best = 0;
    int best_block = -1;
    for (int first = 0; first < n_atoms; first += kBlock) {
        const int last = std::min(n_atoms, first + kBlock);
        Real block_best = 0;
        if (positive) {
#pragma omp simd reduction(max : block_best)
            for (int a = first; a < last; ++a) block_best = std::max(block_best, chosen[a] ? Real(0) : alpha[a]);
        } else {
#pragma omp simd reduction(max : block_best)
            for (int a = first; a < last; ++a)
                block_best = std::max(block_best, chosen[a] ? Real(0) : std::fabs(alpha[a]));
        }
        if (block_best > best) best = block_best, best_block = first;
    }
    if (best_block < 0) return -1;
    const int last = std::min(n_atoms, best_block + kBlock);
    for (int a = best_block; a < last; ++a)
        if (!chosen[a] && (positive ? alpha[a] : std::fabs(alpha[a])) == best) return a;
    return -1;  // a NaN correlation can leave no atom equal to the maximum
}
LATENTCORE_DISPATCH
int best_atom(const double* alpha, const char* chosen, int n_atoms, bool positive) {
    return best_atom_of(alpha, chosen, n_atoms, positive);
}
LATENTCORE_DISPATCH
int best_atom(const float* alpha, const char* chosen, int n_atoms, bool positive) {
    return best_atom_of(alpha, chosen, n_atoms, positive);
}

// One OMP iteration of one signal, shared by both paths. alpha: the
// correlations of its current residual with the atoms (double from the Gram
// matrix, float from a GEMM without one); corr: its correlations D x. Adds
// the best atom not tried yet (a dependent one is skipped for the next when
// positive), refits the coefficients on the support (non-negative ones when
// positive) and updates the squared residual ||x - D_S gamma||^2 =
// ||x||^2 - gamma . corr_S. Returns false when the signal is done: no atom
// left that lowers the residual, a dependent atom (unless positive), or the
// work stopped. cap: L's order and the support's bound.
template <typename Real>
inline bool omp_step(const Real* alpha, const float* corr, const GramEntries& gram, int cap, bool positive,
                     index_t* support, OmpScratch& s, ParallelWork& work) {
    for (;;) {
        const int best = best_atom(alpha, s.chosen.data(), gram.n_atoms, positive);
        if (best < 0) return false;
        s.chosen[best] = 1;
        if (extend_cholesky(gram, support, s.k, best, s, cap)) {
            support[s.k] = best;
            s.feasible[s.k++] = 0.0;
            break;
        }
        if (!positive || work.stopped()) return false;  // positive: a dependent atom may leave others that help
    }
    if (positive)
        s.k = enforce_nonnegative(corr, gram, support, s.k, cap, s);
    else
        solve_support(corr, support, s.k, cap, s);
    double explained = 0.0;
    for (int t = 0; t < s.k; ++t) explained += s.gamma[t] * corr[support[t]];
    s.residual = s.x_sq - explained;  // at the least-squares gamma
    return true;
}

// The Gram path's residual correlations alpha = D x - G[:, support] gamma
// (G symmetric: rows of G), in blocks of atoms that stay in L1 while the
// support's rows stream by, four rows at a time.
LATENTCORE_DISPATCH
void residual_correlations(const float* corr, const float* gram, int n_atoms, const index_t* support,
                           const double* gamma, int k, double* alpha) {
    constexpr int kAtoms = 256;
    for (int first = 0; first < n_atoms; first += kAtoms) {
        const int width = std::min(kAtoms, n_atoms - first);
        double* out = alpha + first;
        for (int a = 0; a < width; ++a) out[a] = corr[first + a];
        int t = 0;
        for (; t + 4 <= k; t += 4) {
            const float* g0 = gram + static_cast<size_type>(support[t]) * n_atoms + first;
            const float* g1 = gram + static_cast<size_type>(support[t + 1]) * n_atoms + first;
            const float* g2 = gram + static_cast<size_type>(support[t + 2]) * n_atoms + first;
            const float* g3 = gram + static_cast<size_type>(support[t + 3]) * n_atoms + first;
            const double c0 = gamma[t], c1 = gamma[t + 1], c2 = gamma[t + 2], c3 = gamma[t + 3];
            for (int a = 0; a < width; ++a) out[a] -= (c0 * g0[a] + c1 * g1[a]) + (c2 * g2[a] + c3 * g3[a]);
        }
        for (; t < k; ++t) {
            const float* g = gram + static_cast<size_type>(support[t]) * n_atoms + first;
            const double c = gamma[t];
            for (int a = 0; a < width; ++a) out[a] -= c * g[a];
        }
    }
}

// One signal's OMP from the Gram matrix: at most `cap` atoms (cap <= L's
// order, so the factor never outgrows its storage, whatever the Gram matrix
// holds). Polls `work` once per atom chosen: a signal with thousands of
// atoms can take seconds. alpha: n_atoms doubles of scratch.
LATENTCORE_DISPATCH
int omp_one(const float* corr, const GramEntries& gram, int cap, double x_sq, double tol, bool positive,
            index_t* support, float* coefs, OmpScratch& s, double* alpha, ParallelWork& work) {
    const int n_atoms = gram.n_atoms;
    for (int a = 0; a < n_atoms; ++a) alpha[a] = corr[a];
    s.start(x_sq);
    while (s.goes_on(cap, tol)) {
        if (work.stopped()) break;  // the results are discarded: finish() throws
        if (!omp_step(alpha, corr, gram, cap, positive, support, s, work) || !s.goes_on(cap, tol)) break;
        residual_correlations(corr, gram.gram, n_atoms, support, s.gamma.data(), s.k, alpha);
    }
    for (int t = 0; t < s.k; ++t) coefs[t] = static_cast<float>(s.gamma[t]);
    return s.k;
}

// The Gram-free path's iteration of one signal: omp_step, then, when the
// signal goes on, its residual x - D_S gamma (in double, stored as float32)
// into `residual` for the GEMM that gives its next correlations. Returns
// whether it goes on. r: n_features doubles of scratch.
LATENTCORE_DISPATCH
bool omp_free_step(const float* alpha, const float* corr, const float* x, const GramEntries& gram, int cap,
                   double tol, bool positive, index_t* support, OmpScratch& s, double* r, float* residual,
                   ParallelWork& work) {
    if (!omp_step(alpha, corr, gram, cap, positive, support, s, work) || !s.goes_on(cap, tol)) return false;
    const int n_features = gram.n_features;
    for (int f = 0; f < n_features; ++f) r[f] = x[f];
    for (int t = 0; t < s.k; ++t) {
        const float* d = gram.dictionary + static_cast<size_type>(support[t]) * n_features;
        const double c = s.gamma[t];
        for (int f = 0; f < n_features; ++f) r[f] -= c * d[f];
    }
    for (int f = 0; f < n_features; ++f) residual[f] = static_cast<float>(r[f]);
    return true;
}

// Signals a thread codes together without a Gram matrix: one GEMM per
// iteration gives all their residuals' correlations. At most 256 (rather
// than 128: 14% faster at 16384 atoms x 768 dimensions, where each GEMM
// streams the dictionary from memory), and at most kFreeBlockBytes of
// scratch per thread (free_block_bytes each).
constexpr size_type kFreeBlock = 256;
constexpr size_type kFreeBlockBytes = size_type{1} << 27;
// And at least this many blocks, so that a few hundred signals still keep
// several threads busy (more would shrink the GEMMs: 128 signals rather
// than 256 cost 14% at 1000 signals of 768 dimensions, 16384 atoms).
constexpr size_type kFreeMinBlocks = 4;

// Scratch bytes per signal of a Gram-free block: its correlations (the
// driver's and the iterations'), tried atoms, Cholesky factor and residual.
size_type free_block_bytes(int n_atoms, int n_features, int cap) {
    return 9 * static_cast<size_type>(n_atoms) + 8 * static_cast<size_type>(cap) * cap + 4 * n_features + 32 * cap;
}

// One thread's scratch for the Gram-free path: a state per signal of the
// block, the residuals (rows, n_features) and their correlations
// (rows, n_atoms).
struct OmpFreeBlock {
    std::vector<OmpScratch> signals;
    std::vector<float> residuals, alpha;
    std::vector<double> r;
    std::vector<size_type> active, next;
    OmpFreeBlock(size_type rows, int n_atoms, int n_features, int cap)
        : signals(static_cast<size_t>(rows), OmpScratch(n_atoms, cap)),
          residuals(static_cast<size_t>(rows) * n_features),
          alpha(static_cast<size_t>(rows) * n_atoms),
          r(n_features),
          active(rows),
          next(rows) {}
};

// Gram-free Batch-OMP of signals first .. first + rows - 1 (corr: their
// correlations D x), in lockstep: each iteration every signal still going
// takes one atom (omp_step, as the Gram path), then one GEMM turns their
// residuals into their next correlations. No Gram row is ever formed: the
// Cholesky factor's entries are dot products of atoms.
void omp_free_block(const SparseSignals& sig, const GramEntries& gram, int cap, double tol, bool positive,
                    int max_nonzero, size_type first, size_type rows, const float* corr, index_t* support,
                    float* coefs, index_t* count, OmpFreeBlock& b, ParallelWork& work) {
    const int n_atoms = sig.n_atoms, n_features = sig.n_features;
    size_type n_active = 0;
    for (size_type r = 0; r < rows; ++r) {
        b.signals[r].start(signal_norm_sq(sig, first + r));
        if (b.signals[r].goes_on(cap, tol)) b.active[n_active++] = r;
    }
    // Row j of `alpha` holds the correlations of signal active[j]; at first
    // those are corr's rows.
    bool initial = true;
    while (n_active > 0) {
        if (work.stopped()) return;
        size_type m = 0;
        for (size_type j = 0; j < n_active; ++j) {
            const size_type r = b.active[j], i = first + r;
            const float* alpha = initial ? corr + r * n_atoms : b.alpha.data() + j * n_atoms;
            if (omp_free_step(alpha, corr + r * n_atoms, sig.x + i * n_features, gram, cap, tol, positive,
                              support + i * max_nonzero, b.signals[r], b.r.data(), b.residuals.data() + m * n_features,
                              work))
                b.next[m++] = r;
        }
        if (m == 0) break;
        if (!correlations_gemm(sig, static_cast<int>(m), b.residuals.data(), b.alpha.data(), work)) return;
        std::swap(b.active, b.next);
        n_active = m;
        initial = false;
    }
    for (size_type r = 0; r < rows; ++r) {
        const OmpScratch& s = b.signals[r];
        for (int t = 0; t < s.k; ++t) coefs[(first + r) * max_nonzero + t] = static_cast<float>(s.gamma[t]);
        count[first + r] = s.k;
    }
}

}  // namespace

int omp_capacity(int max_nonzero, int n_features) { return std::max(1, std::min(max_nonzero, n_features)); }

void batch_omp(const SparseSignals& signals, const float* gram, int max_nonzero, double tol, bool positive,
               index_t* support, float* coefs, index_t* count, int n_threads) {
    const int n_atoms = signals.n_atoms, n_features = signals.n_features;
    // Beyond n_features atoms the next one is always in the span of the
    // chosen ones: the Cholesky scratch (cap^2 doubles per signal) is sized
    // by that, not by max_nonzero (every atom, when only tol stops a signal).
    const int cap = omp_capacity(max_nonzero, n_features);
    const GramEntries entries{gram, signals.dictionary, n_atoms, n_features};
    if (gram) {
        for_each_signal(signals, n_threads, [&](ParallelWork& work) {
            return [&, scratch = OmpScratch(n_atoms, cap), alpha = std::vector<double>(n_atoms)](
                       size_type i, const float* corr, double x_sq) mutable {
                count[i] = omp_one(corr, entries, cap, x_sq, tol, positive, support + i * max_nonzero,
                                   coefs + i * max_nonzero, scratch, alpha.data(), work);
            };
        });
        return;
    }
    if (!signals.x || !signals.dictionary || !signals.sgemm)
        throw std::invalid_argument("OMP without a Gram matrix needs the signals, the dictionary and sgemm");
    // Blocks of equal size, as large as allowed for efficient GEMMs, at
    // least kFreeMinBlocks of them. Their size depends on the signals alone,
    // never on the thread count: a GEMM's rounding may depend on its number
    // of rows, and the codes must not depend on the thread count.
    const size_type largest =
        std::max<size_type>(1, std::min(kFreeBlock, kFreeBlockBytes / free_block_bytes(n_atoms, n_features, cap)));
    const size_type n_blocks = std::max(kFreeMinBlocks, (signals.n + largest - 1) / largest);
    const size_type rows = std::max<size_type>(1, (signals.n + n_blocks - 1) / n_blocks);
    // No thread without a block: each one's scratch is up to kFreeBlockBytes.
    const size_type used = (signals.n + rows - 1) / rows;
    const int threads = static_cast<int>(std::max<size_type>(1, std::min<size_type>(resolve_threads(n_threads), used)));
    for_each_block(signals, threads, rows, [&](ParallelWork& work) {
        return [&, block = OmpFreeBlock(rows, n_atoms, n_features, cap)](size_type first, size_type count_rows,
                                                                       const float* corr) mutable {
            omp_free_block(signals, entries, cap, tol, positive, max_nonzero, first, count_rows, corr, support,
                           coefs, count, block, work);
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

namespace {

// Appends an atom to the Cholesky factor L (row stride ld) of the Gram
// matrix restricted to k atoms: entries holds the atom's Gram entries with
// those k (overwritten by L's new row), diag its own. Returns false (L
// unchanged) when the atom is numerically in the span of the k.
bool append_cholesky_row(double* L, int ld, int k, double* entries, double diag) {
    forward_solve(L, ld, k, entries);
    double norm = 0.0;
    for (int t = 0; t < k; ++t) norm += entries[t] * entries[t];
    const double pivot = diag - norm;
    if (pivot <= kMinPivot) return false;
    for (int t = 0; t < k; ++t) L[k * ld + t] = entries[t];
    L[k * ld + k] = std::sqrt(pivot);
    return true;
}

// The step just taken moves every correlation, c -= step * a, and then the
// next direction's effect on them is a = sum_t weights[t] * G[rows[t], :]:
// one pass for both, four Gram rows at a time (the first group padded with
// zero weights) so that a is read and written once per four rows and every
// loop vectorizes. The homotopy's one O(k n_atoms) cost. a is in the Gram
// matrix's precision (float32 for codes: a only ranks the atoms that may
// join, and the step to the winner is recomputed in double, see first_join).
template <typename Gram>
LATENTCORE_DISPATCH void step_and_combine(const Gram* gram, size_type n_atoms, const index_t* rows,
                                          const double* weights, int k, double step, double* __restrict c,
                                          Gram* __restrict a) {
    const int head = k % 4 == 0 ? 4 : k % 4;  // k >= 1
    const Gram* g[4];
    Gram w[4];
    for (int t = 0; t < 4; ++t) {
        g[t] = gram + rows[t < head ? t : 0] * n_atoms;
        w[t] = t < head ? static_cast<Gram>(weights[t]) : Gram(0);
    }
    {
        const Gram *__restrict g0 = g[0], *__restrict g1 = g[1], *__restrict g2 = g[2], *__restrict g3 = g[3];
        for (size_type j = 0; j < n_atoms; ++j) {
            c[j] -= step * a[j];
            a[j] = w[0] * g0[j] + w[1] * g1[j] + w[2] * g2[j] + w[3] * g3[j];
        }
    }
    for (int t = head; t < k; t += 4) {
        const Gram* __restrict g0 = gram + rows[t] * n_atoms;
        const Gram* __restrict g1 = gram + rows[t + 1] * n_atoms;
        const Gram* __restrict g2 = gram + rows[t + 2] * n_atoms;
        const Gram* __restrict g3 = gram + rows[t + 3] * n_atoms;
        const Gram w0 = static_cast<Gram>(weights[t]), w1 = static_cast<Gram>(weights[t + 1]);
        const Gram w2 = static_cast<Gram>(weights[t + 2]), w3 = static_cast<Gram>(weights[t + 3]);
        for (size_type j = 0; j < n_atoms; ++j) a[j] += w0 * g0[j] + w1 * g1[j] + w2 * g2[j] + w3 * g3[j];
    }
}

// Atoms per chunk of join_distances' output whose minimum it records, so
// that the atom reaching the overall minimum is found by reading the chunk
// minima and then one chunk.
constexpr int kJoinChunk = 64;

// For every atom, the decrease delta of lambda at which its correlation
// c_j - delta a_j reaches lambda - delta, or -(lambda - delta) unless
// Positive: the smaller one, at least 0 (an atom at lambda already, a tie
// or rounding, joins at once), plus blocked[j] (0 for a free atom, infinity
// for one that may not join: active, dependent, or dropped at this knot).
// Branch-free so that it vectorizes, and with one division for both sides,
// over the common denominator (1 - a)(1 + a): the divisions are most of its
// cost. At a = +-1 exactly (an atom that moves with an active one) the
// quotients are NaN and the atom does not join.

template <bool Positive, typename Real>
LATENTCORE_DISPATCH void join_distances(const double* __restrict c, const Real* __restrict a,
                                        const Real* __restrict blocked, int n_atoms, double lambda,
                                        Real* __restrict out, Real* __restrict chunk_minima) {
    constexpr Real inf = std::numeric_limits<Real>::infinity();
    // Running minima lane by lane, so that the minimum vectorizes too.
    constexpr int kLanes = 8;
    for (int chunk = 0; chunk * kJoinChunk < n_atoms; ++chunk) {
        const int first = chunk * kJoinChunk, last = std::min(n_atoms, first + kJoinChunk);
        Real smallest[kLanes];
        for (int l = 0; l < kLanes; ++l) smallest[l] = inf;
        for (int base = first; base < last; base += kLanes) {
            const int lanes = std::min(kLanes, last - base);
            for (int l = 0; l < lanes; ++l) {
                const int j = base + l;
                const Real up = Real(1) - a[j], down = Real(1) + a[j], inverse = Real(1) / (up * down);
                Real d = static_cast<Real>(lambda - c[j]) * down * inverse;
                d = up > Real(1e-12) && d == d ? (d > Real(0) ? d : Real(0)) : inf;
                if (!Positive) {
                    Real other = static_cast<Real>(lambda + c[j]) * up * inverse;
                    other = down > Real(1e-12) && other == other ? (other > Real(0) ? other : Real(0)) : inf;
                    d = other < d ? other : d;
                }
                d += blocked[j];
                out[j] = d;
                smallest[l] = d < smallest[l] ? d : smallest[l];
            }
        }
        Real least = inf;
        for (int l = 0; l < kLanes; ++l) least = smallest[l] < least ? smallest[l] : least;
        chunk_minima[chunk] = least;
    }
}

// The step at which atom j joins, in double: the smaller valid side of
// join_distances' formula (without its common denominator).
double join_step(double c, double a, double lambda, bool positive) {
    constexpr double inf = std::numeric_limits<double>::infinity();
    const double up = 1.0 - a, down = 1.0 + a;
    double d = up > 1e-12 ? std::max(0.0, (lambda - c) / up) : inf;
    if (!positive && down > 1e-12) d = std::min(d, std::max(0.0, (lambda + c) / down));
    return d;
}

// The atom that joins first, below `limit`: its delta, the atom in *atom
// (-1, and limit, when none joins before). Ties go to the smaller atom. The
// atoms are ranked in a's precision; the winner's step is then computed in
// double, so that lambda, the codes and the correlations move consistently.
template <typename Real>
double first_join(const double* c, const Real* a, const Real* blocked, int n_atoms, double lambda, bool positive,
                  double limit, Real* distances, Real* chunk_minima, int* atom) {
    if (positive)
        join_distances<true>(c, a, blocked, n_atoms, lambda, distances, chunk_minima);
    else
        join_distances<false>(c, a, blocked, n_atoms, lambda, distances, chunk_minima);
    const int n_chunks = (n_atoms + kJoinChunk - 1) / kJoinChunk;
    int chunk = -1;
    Real best = std::numeric_limits<Real>::infinity();
    for (int h = 0; h < n_chunks; ++h)
        if (chunk_minima[h] < best) best = chunk_minima[h], chunk = h;
    *atom = -1;
    if (chunk < 0) return limit;
    int j = chunk * kJoinChunk;
    while (distances[j] != best) ++j;
    const double step = join_step(c[j], a[j], lambda, positive);
    if (!(step < limit)) return limit;
    *atom = j;
    return step;
}

// The path's start: c = corr, a = 0, every atom free; returns lambda_max,
// the largest correlation (in magnitude unless positive; 0 when none is
// positive).
template <typename Corr, typename Real>
LATENTCORE_DISPATCH double start_path(const Corr* __restrict corr, int n_atoms, bool positive, double* __restrict c,
                                      Real* __restrict a, Real* __restrict blocked) {
    double largest = 0.0;
    for (int j = 0; j < n_atoms; ++j) {
        const double value = corr[j];
        c[j] = value;
        a[j] = Real(0);
        blocked[j] = Real(0);
        const double score = positive ? value : std::fabs(value);
        largest = score > largest ? score : largest;
    }
    return largest;
}

// One thread's scratch for the homotopy; Real is the Gram matrix's type.
template <typename Real>
struct HomotopyScratch {
    std::vector<double> c, L, w, beta, sign, entries;
    std::vector<Real> a, distances, chunk_minima;
    std::vector<Real> blocked;  // 0 for an atom free to join, infinity otherwise
    std::vector<index_t> active;
    HomotopyScratch(int n_atoms, int cap)
        : c(n_atoms), L(static_cast<size_t>(cap) * cap), w(cap), beta(cap), sign(cap), entries(cap), a(n_atoms),
          distances(n_atoms), chunk_minima((n_atoms + kJoinChunk - 1) / kJoinChunk), blocked(n_atoms),
          active(cap) {}
};

enum class PathEnd { kReached, kStepLimit, kStopped };

// Follows one signal's LASSO path (LARS with the lasso modification: Efron,
// Hastie, Johnstone & Tibshirani 2004; Osborne, Presnell & Turlach 2000) on
// the Gram matrix, from lambda_max, where every coefficient is zero, down to
// lambda_end >= 0 (the scaled alpha: alpha * n_features). Between two knots
// the active coefficients move linearly, beta(lambda - delta) = beta + delta
// w with G_AA w = sign_A; a knot is where a free atom's correlation reaches
// lambda (it joins) or an active coefficient reaches zero (it leaves). Each
// segment is handed to visit.segment(hi, lo, active, k, beta, w) before the
// step is taken, and visit.finish(lambda, active, k, beta) ends the path
// (visit.cut(...) when it stops after max_steps knots instead).
// At most cap atoms are active (L's order); polls `work` once per knot.
template <typename Corr, typename Gram, typename Visit>
PathEnd follow_lasso_path(const Corr* corr, const Gram* gram, int n_atoms, int cap, bool positive,
                          double lambda_end, int max_steps, HomotopyScratch<Gram>& s, ParallelWork& work,
                          Visit& visit) {
    double lambda = start_path(corr, n_atoms, positive, s.c.data(), s.a.data(), s.blocked.data());
    int join = -1;
    for (int j = 0; lambda > 0.0 && join < 0; ++j)
        if ((positive ? s.c[j] : std::fabs(s.c[j])) == lambda) join = j;
    visit.start(lambda);
    // pending: the atom that reached lambda at this knot and joins now.
    int k = 0, just_dropped = -1, pending = join;
    double last_step = 0.0;  // taken along s.a, not yet applied to s.c
    for (int step = 0; lambda > lambda_end; ++step) {
        if (pending >= 0) {
            const Gram* g = gram + static_cast<size_type>(pending) * n_atoms;
            for (int t = 0; t < k; ++t) s.entries[t] = g[s.active[t]];
            if (append_cholesky_row(s.L.data(), cap, k, s.entries.data(), g[pending])) {
                s.active[k] = pending;
                // Its correlation has yet to take the last step (see last_step).
                s.sign[k] = positive || s.c[pending] - last_step * s.a[pending] > 0.0 ? 1.0 : -1.0;
                s.beta[k++] = 0.0;
            }
            // Active, or a combination of the active atoms (it never joins).
            s.blocked[pending] = std::numeric_limits<Gram>::infinity();
        }
        if (k == 0) break;  // the only candidate was a zero atom
        if (work.stopped()) return PathEnd::kStopped;
        if (step == max_steps) {
            visit.cut(lambda, s.active.data(), k, s.beta.data());
            return PathEnd::kStepLimit;
        }
        for (int t = 0; t < k; ++t) s.w[t] = s.sign[t];
        forward_solve(s.L.data(), cap, k, s.w.data());
        backward_solve(s.L.data(), cap, k, s.w.data());
        step_and_combine(gram, n_atoms, s.active.data(), s.w.data(), k, last_step, s.c.data(), s.a.data());
        for (int t = 0; t < k; ++t) s.c[s.active[t]] = lambda * s.sign[t];  // exact on the active set
        pending = -1;
        double delta = lambda - lambda_end;
        if (k < cap)
            delta = first_join(s.c.data(), s.a.data(), s.blocked.data(), n_atoms, lambda, positive, delta,
                               s.distances.data(), s.chunk_minima.data(), &pending);
        int leaving = -1;
        for (int t = 0; t < k; ++t) {
            if (s.w[t] == 0.0) continue;
            const double d = -s.beta[t] / s.w[t];
            if (d > 0.0 && d < delta) delta = d, leaving = t;
        }
        if (leaving >= 0) pending = -1;
        visit.segment(lambda, lambda - delta, s.active.data(), k, s.beta.data(), s.w.data());
        for (int t = 0; t < k; ++t) s.beta[t] += delta * s.w[t];
        last_step = delta;  // the correlations move with the next direction's pass, or below
        lambda -= delta;
        if (just_dropped >= 0) s.blocked[just_dropped] = Gram(0), just_dropped = -1;
        if (leaving >= 0) {
            // Its correlation is at lambda now: it must not rejoin at once.
            just_dropped = s.active[leaving];
            --k;
            for (int t = leaving; t < k; ++t) {
                s.active[t] = s.active[t + 1], s.sign[t] = s.sign[t + 1], s.beta[t] = s.beta[t + 1];
            }
            for (int r = leaving; r < k; ++r) {  // refactor the rows below the one removed
                const Gram* g = gram + static_cast<size_type>(s.active[r]) * n_atoms;
                for (int t = 0; t < r; ++t) s.entries[t] = g[s.active[t]];
                append_cholesky_row(s.L.data(), cap, r, s.entries.data(), g[s.active[r]]);
            }
        }
    }
    visit.finish(lambda, s.active.data(), k, s.beta.data());
    return PathEnd::kReached;
}

}  // namespace

namespace {

// Writes the codes at each alpha of a decreasing grid as the path passes it:
// on the segment from hi down to lo the code at alpha is beta + (hi - alpha) w.
struct GridCodes {
    const double* lambdas;  // the grid, scaled (alpha * n_features)
    int n_alphas, width;
    index_t* support;  // (n_alphas, width) for this signal, as values
    float* values;
    index_t* count;  // (n_alphas)
    int next = 0;

    void write(double factor, const index_t* active, int k, const double* beta, const double* w) {
        index_t* id = support + static_cast<size_type>(next) * width;
        float* v = values + static_cast<size_type>(next) * width;
        for (int t = 0; t < k; ++t) id[t] = active[t], v[t] = static_cast<float>(beta[t] + factor * w[t]);
        count[next++] = k;
    }
    void start(double) {}
    void segment(double hi, double lo, const index_t* active, int k, const double* beta, const double* w) {
        // Above the first knot every code is zero (k = 0, beta = 0): the factor is never negative.
        while (next < n_alphas && lambdas[next] >= lo) write(std::max(0.0, hi - lambdas[next]), active, k, beta, w);
    }
    void finish(double, const index_t* active, int k, const double* beta) {
        while (next < n_alphas) write(0.0, active, k, beta, beta);
    }
    void cut(double, const index_t*, int, const double*) {}  // the caller marks the alphas not reached
};

// Records every knot of the path: its lambda and the active coefficients.
struct PathKnots {
    int capacity, width;
    double* lambdas;
    index_t* support;  // (capacity, width), as values
    double* values;
    index_t* count;
    int n = 0;

    bool record(double lambda, const index_t* active, int k, const double* beta) {
        if (n == capacity) return false;
        lambdas[n] = lambda;
        for (int t = 0; t < k; ++t) {
            support[static_cast<size_type>(n) * width + t] = active[t];
            values[static_cast<size_type>(n) * width + t] = beta[t];
        }
        count[n++] = k;
        return true;
    }
    void start(double lambda) { record(lambda, nullptr, 0, nullptr); }
    void segment(double hi, double, const index_t* active, int k, const double* beta, const double*) {
        if (hi != lambdas[n - 1]) record(hi, active, k, beta);  // the first segment starts at the start's knot
    }
    void finish(double lambda, const index_t* active, int k, const double* beta) { record(lambda, active, k, beta); }
    void cut(double lambda, const index_t* active, int k, const double* beta) { record(lambda, active, k, beta); }
};

// The scaled lambda of an alpha: one so large that it overflows zeroes every
// code, as the largest finite one does.
double scaled_lambda(double alpha, int n_features) {
    return std::min(alpha * n_features, std::numeric_limits<double>::max());
}

}  // namespace

void lasso_homotopy(const SparseSignals& signals, const float* gram, const double* alphas, int n_alphas,
                    bool positive, int max_active, int max_steps, index_t* support, float* values, index_t* count,
                    int n_threads) {
    const int n_atoms = signals.n_atoms;
    std::vector<double> lambdas(n_alphas);
    for (int g = 0; g < n_alphas; ++g) lambdas[g] = scaled_lambda(alphas[g], signals.n_features);
    const double lambda_end = lambdas[n_alphas - 1];
    for_each_signal(signals, n_threads, [&](ParallelWork& work) {
        return [&, scratch = HomotopyScratch<float>(n_atoms, max_active)](size_type i, const float* corr,
                                                                           double) mutable {
            const size_type row = i * n_alphas;
            GridCodes grid{lambdas.data(), n_alphas, max_active, support + row * max_active,
                           values + row * max_active, count + row};
            const PathEnd end = follow_lasso_path(corr, gram, n_atoms, max_active, positive, lambda_end, max_steps,
                                                  scratch, work, grid);
            if (end == PathEnd::kStepLimit)
                for (int g = grid.next; g < n_alphas; ++g) count[row + g] = -1;
        };
    });
}

int lasso_knots(const double* corr, const double* gram, int n_atoms, int n_features, bool positive,
                double alpha_min, int max_active, int capacity, double* knot_alphas, index_t* knot_support,
                double* knot_values, index_t* knot_count) {
    HomotopyScratch<double> scratch(n_atoms, max_active);
    PathKnots knots{capacity, max_active, knot_alphas, knot_support, knot_values, knot_count};
    ParallelWork work;
    // Past capacity - 2 steps the path stops (kStepLimit) at its last knot.
    follow_lasso_path(corr, gram, n_atoms, max_active, positive, scaled_lambda(alpha_min, n_features), capacity - 2,
                      scratch, work, knots);
    work.finish();
    for (int t = 0; t < knots.n; ++t) knot_alphas[t] /= n_features;
    return knots.n;
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
