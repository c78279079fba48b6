// bench_sparse: times latentcore's sparse-coding kernels without Python in the way:
// Batch-OMP over a fixed dictionary (batch_omp) and the TopK autoencoder's
// sparse path (select_topk_rows as its encoder selection, sparse_decode and
// sparse_decode_backward).
//
//   bench_sparse [--n 20000] [--d 256] [--atoms 1024] [-k 16] [--batch 4096]
//                [--latents 4096] [--topk 32] [--threads 0] [--repeats 5]
//                [--seed 0] [--case omp|topk|all]
//
// Cases (each prints its runs and the minimum and median wall time over
// --repeats runs, after one untimed warm-up run, then a rate at each):
//   omp   planted data as bench/bench_sparse.py makes it: --atoms unit-norm
//         Gaussian atoms of --d dims, --n signals each the sum of -k atoms
//         with magnitudes in [1, 2] and random signs, plus Gaussian noise of
//         sigma 0.01. The correlations D x (float) and the Gram matrix D D^T
//         (double, from the float atoms) are computed before timing, as
//         latentcore.sparse_encode computes them; batch_omp then picks -k
//         atoms per signal (no residual tolerance). Signals per second, and
//         the fraction of signals whose support is exactly the planted one.
//   topk  a (--batch, --latents) matrix of N(0, 1) pre-activations x W^T and
//         an N(0, 0.1^2) encoder bias b, which select_topk_rows adds as it
//         scans (as latentcore.TopKSAE calls it); the k = --topk largest of
//         each row of x W^T + b (select_topk_rows, largest=true), in
//         rows per second and GB/s of pre-activations scanned; then, on the
//         ReLU'd selected codes and a unit-norm (--latents, --d) decoder,
//         sparse_decode (with a bias) and sparse_decode_backward (random
//         grad_out and x_centered), in samples per second.
// A markdown table of all cases ends the output.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "bench_common.hpp"
#include "latentcore/parallel.hpp"  // resolve_threads
#include "latentcore/sae.hpp"
#include "latentcore/sparse.hpp"
#include "latentcore/topk.hpp"

namespace {

using latentcore::index_t;
using latentcore::size_type;

constexpr float kNoise = 0.01f;        // sigma of the signals' Gaussian noise
constexpr int kCheckDecodeRows = 64;   // decoded rows checked against a double-precision sum
constexpr int kCheckLatents = 64;      // gradient rows checked against a double-precision sum

struct Options {
    size_type n = 20000;
    int d = 256;
    int atoms = 1024;
    int k = 16;
    size_type batch = 4096;
    int latents = 4096;
    int topk = 32;
    bench::RunFlags run{0, 5, 0};  // --threads (0: all OpenMP threads), --repeats, --seed
    bool omp = true, sae = true;
};

const bench::Cli cli{"bench_sparse", R"(usage: bench_sparse [--n N] [--d D] [--atoms A] [-k K] [--batch B] [--latents L]
                    [--topk T] [--threads T] [--repeats R] [--seed S] [--case omp|topk|all]
  --n        signals for Batch-OMP (default 20000)
  --d        signal dims, also the TopK decoder's features (default 256)
  --atoms    dictionary atoms (default 1024)
  -k, --k    planted nonzeros per signal, and OMP's max_nonzero (default 16)
  --batch    rows of the TopK pre-activation matrix (default 4096)
  --latents  its columns: the autoencoder's latents (default 4096)
  --topk     latents kept per row (default 32)
  --threads  kernel threads, 0 = all OpenMP threads (default 0)
  --repeats  timed runs after one untimed warm-up (default 5)
  --case     omp, topk (selection, decode and its backward) or all (default all)
)"};

Options parse(int argc, char** argv) {
    Options o;
    cli.parse(argc, argv, o.run, [&o](const std::string& flag, const std::string& value) {
        constexpr long long kIntMax = std::numeric_limits<int>::max();
        const auto small = [&](long long lo) {
            const long long v = cli.integer(flag, value, lo);
            if (v > kIntMax) cli.usage(flag + " must fit in an int, got '" + value + "'");
            return static_cast<int>(v);
        };
        if (flag == "--n") o.n = cli.integer(flag, value, 1);
        else if (flag == "--d") o.d = small(1);
        else if (flag == "--atoms") o.atoms = small(1);
        else if (flag == "-k" || flag == "--k") o.k = small(1);
        else if (flag == "--batch") o.batch = cli.integer(flag, value, 1);
        else if (flag == "--latents") o.latents = small(1);
        else if (flag == "--topk") o.topk = small(1);
        else if (flag == "--case") {
            if (value != "omp" && value != "topk" && value != "all")
                cli.usage("--case must be omp, topk or all, got '" + value + "'");
            o.omp = value != "topk";
            o.sae = value != "omp";
        } else return false;
        return true;
    });
    if (o.k > o.atoms) cli.usage("-k must be at most --atoms");
    if (o.topk > o.latents) cli.usage("--topk must be at most --latents");
    // The largest arrays: OMP's correlations (n x atoms) and the pre-activations.
    constexpr double kMaxCells = 4e9;  // 16 GB of floats
    if (static_cast<double>(o.n) * o.atoms > kMaxCells || static_cast<double>(o.n) * o.d > kMaxCells ||
        static_cast<double>(o.batch) * o.latents > kMaxCells || static_cast<double>(o.atoms) * o.atoms > kMaxCells)
        cli.usage("the sizes ask for an array of more than 4e9 cells");
    return o;
}

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "bench_sparse: check failed: %s\n", what.c_str());
    std::exit(1);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Rows of `rows` x `cols` N(0, 1) entries scaled to unit norm, in float.
std::vector<float> unit_rows(std::mt19937_64& gen, size_type rows, int cols) {
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<float> out(static_cast<size_t>(rows) * cols);
    std::vector<double> row(cols);
    for (size_type r = 0; r < rows; ++r) {
        double norm = 0.0;
        for (double& v : row) v = normal(gen), norm += v * v;
        norm = std::sqrt(norm);
        for (int c = 0; c < cols; ++c) out[static_cast<size_t>(r) * cols + c] = static_cast<float>(row[c] / norm);
    }
    return out;
}

// One line of the closing table.
struct Row {
    std::string name, work;
    bench::Timing time;
    std::string rate_min, rate_median, check;
};

std::string rate(double count, double seconds, const char* unit) {
    char buf[64];
    const double r = count / seconds;
    if (r >= 1e6) std::snprintf(buf, sizeof buf, "%.2f M %s/s", r * 1e-6, unit);
    else if (r >= 1e3) std::snprintf(buf, sizeof buf, "%.1f k %s/s", r * 1e-3, unit);
    else std::snprintf(buf, sizeof buf, "%.1f %s/s", r, unit);
    return buf;
}

std::string format(const char* fmt, double a, double b = 0.0) {
    char buf[160];
    std::snprintf(buf, sizeof buf, fmt, a, b);
    return buf;
}

// ---- Batch-OMP ------------------------------------------------------------

Row bench_omp(const Options& o, int threads) {
    const auto t_setup = std::chrono::steady_clock::now();
    const size_type n = o.n;
    const int d = o.d, A = o.atoms, k = o.k;
    std::mt19937_64 gen(o.run.seed);
    const std::vector<float> D = unit_rows(gen, A, d);  // (atoms, d)

    // Planted codes: k distinct atoms per signal (partial Fisher-Yates), sorted.
    std::vector<index_t> truth(static_cast<size_t>(n) * k);
    std::vector<float> truth_value(static_cast<size_t>(n) * k);
    std::vector<float> x(static_cast<size_t>(n) * d, 0.0f);
    {
        std::vector<index_t> perm(A);
        for (int a = 0; a < A; ++a) perm[a] = a;
        std::uniform_real_distribution<float> magnitude(1.0f, 2.0f);
        std::bernoulli_distribution negative(0.5);
        std::normal_distribution<float> normal(0.0f, 1.0f);
        std::vector<std::pair<index_t, float>> code(k);
        for (size_type i = 0; i < n; ++i) {
            for (int t = 0; t < k; ++t) {
                std::uniform_int_distribution<int> pick(t, A - 1);
                std::swap(perm[t], perm[pick(gen)]);
                const float m = magnitude(gen);
                code[t] = {perm[t], negative(gen) ? -m : m};
            }
            std::sort(code.begin(), code.end());
            float* xi = x.data() + i * d;
            for (int t = 0; t < k; ++t) {
                truth[i * k + t] = code[t].first;
                truth_value[i * k + t] = code[t].second;
                const float* atom = D.data() + static_cast<size_t>(code[t].first) * d;
                for (int f = 0; f < d; ++f) xi[f] += code[t].second * atom[f];
            }
            for (int f = 0; f < d; ++f) xi[f] += kNoise * normal(gen);
        }
    }

    // Correlations D x_i (float, as X @ D.T) and ||x_i||^2, through D^T so the
    // inner loop runs over contiguous atoms; Gram D D^T in double.
    std::vector<float> DT(static_cast<size_t>(d) * A);
    for (int a = 0; a < A; ++a)
        for (int f = 0; f < d; ++f) DT[static_cast<size_t>(f) * A + a] = D[static_cast<size_t>(a) * d + f];
    std::vector<float> corr(static_cast<size_t>(n) * A), norms_sq(static_cast<size_t>(n));
#pragma omp parallel for schedule(static) num_threads(threads)
    for (size_type i = 0; i < n; ++i) {
        float* c = corr.data() + i * A;
        const float* xi = x.data() + i * d;
        std::fill(c, c + A, 0.0f);
        double sq = 0.0;
        for (int f = 0; f < d; ++f) {
            const float v = xi[f];
            const float* dt = DT.data() + static_cast<size_t>(f) * A;
            for (int a = 0; a < A; ++a) c[a] += v * dt[a];
            sq += static_cast<double>(v) * v;
        }
        norms_sq[i] = static_cast<float>(sq);
    }
    std::vector<float> gram(static_cast<size_t>(A) * A);
#pragma omp parallel for schedule(dynamic, 16) num_threads(threads)
    for (int a = 0; a < A; ++a) {
        for (int b = a; b < A; ++b) {
            double s = 0.0;
            for (int f = 0; f < d; ++f)
                s += static_cast<double>(D[static_cast<size_t>(a) * d + f]) * D[static_cast<size_t>(b) * d + f];
            gram[static_cast<size_t>(a) * A + b] = gram[static_cast<size_t>(b) * A + a] = static_cast<float>(s);
        }
    }
    const double setup_s = seconds_since(t_setup);

    std::printf("\n== omp: batch_omp, %lld signals x %d dims, %d unit-norm atoms, k=%d planted (magnitude 1-2, "
                "random signs), noise %g; setup (data, correlations, Gram) %.2f s untimed ==\n",
                static_cast<long long>(n), d, A, k, static_cast<double>(kNoise), setup_s);
    std::vector<index_t> support(static_cast<size_t>(n) * k), count(static_cast<size_t>(n));
    std::vector<float> coefs(static_cast<size_t>(n) * k);
    const bench::Timing t = bench::time_runs(
        o.run.repeats,
        [&] {  // poison: the kernel must write every count and every used slot
            std::fill(support.begin(), support.end(), index_t{-7});
            std::fill(count.begin(), count.end(), index_t{-7});
        },
        [&] {
            latentcore::SparseSignals signals;
            signals.n = n;
            signals.n_atoms = A;
            signals.n_features = d;
            signals.correlations = corr.data();
            signals.norms_sq = norms_sq.data();
            latentcore::batch_omp(signals, gram.data(), k, -1.0, false, support.data(), coefs.data(), count.data(),
                                  threads);
        });
    t.print();
    std::printf("signals: %lld; %.1f k signals/s at min, %.1f k signals/s at median\n", static_cast<long long>(n),
                static_cast<double>(n) / t.min * 1e-3, static_cast<double>(n) / t.median * 1e-3);

    size_type recovered = 0, full = 0;
    double coef_err = 0.0;
    std::vector<std::pair<index_t, float>> found(k);
    for (size_type i = 0; i < n; ++i) {
        const int c = count[i];
        if (c < 0 || c > k) fail("signal " + std::to_string(i) + " has count " + std::to_string(c));
        for (int t = 0; t < c; ++t) {
            const index_t a = support[i * k + t];
            if (a < 0 || a >= A) fail("signal " + std::to_string(i) + " picks atom " + std::to_string(a));
            if (!std::isfinite(coefs[i * k + t])) fail("signal " + std::to_string(i) + " has a non-finite coefficient");
            found[t] = {a, coefs[i * k + t]};
        }
        std::sort(found.begin(), found.begin() + c);
        for (int t = 1; t < c; ++t)
            if (found[t].first == found[t - 1].first) fail("signal " + std::to_string(i) + " picks an atom twice");
        full += c == k;
        bool same = c == k;
        for (int t = 0; same && t < k; ++t) same = found[t].first == truth[i * k + t];
        if (!same) continue;
        ++recovered;
        for (int t = 0; t < k; ++t)
            coef_err = std::max(coef_err, static_cast<double>(std::fabs(found[t].second - truth_value[i * k + t])));
    }
    const double fraction = static_cast<double>(recovered) / static_cast<double>(n);
    std::printf("check: all supports valid (distinct atoms in range), %lld of %lld signals use k=%d atoms; "
                "supports recovered %.5f (%lld signals), max |coef - planted| on those %.4f\n",
                static_cast<long long>(full), static_cast<long long>(n), k, fraction,
                static_cast<long long>(recovered), coef_err);

    char work[160];
    std::snprintf(work, sizeof work, "%lld signals x %d dims, %d atoms, k=%d", static_cast<long long>(n), d, A, k);
    return {"batch_omp", work, t, rate(static_cast<double>(n), t.min, "signals"),
            rate(static_cast<double>(n), t.median, "signals"), format("supports recovered %.5f", fraction)};
}

// ---- TopK autoencoder: selection, decode, backward --------------------------

void bench_topk(const Options& o, int threads, std::vector<Row>& rows) {
    const auto t_setup = std::chrono::steady_clock::now();
    const size_type B = o.batch;
    const int L = o.latents, K = o.topk, F = o.d;
    std::mt19937_64 gen(o.run.seed ^ 0x9e3779b97f4a7c15ULL);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> pre(static_cast<size_t>(B) * L), enc_bias(L);
    for (float& v : pre) v = normal(gen);
    for (float& v : enc_bias) v = 0.1f * normal(gen);
    const double setup_s = seconds_since(t_setup);

    // -- selection
    const double bytes = static_cast<double>(B) * L * sizeof(float);
    std::printf("\n== topk: select_topk_rows(largest=true), %lld rows x %d latents (N(0,1) pre-activations, "
                "%.1f MB, plus an N(0,0.1^2) encoder bias added in the scan), k=%d; setup %.2f s untimed ==\n",
                static_cast<long long>(B), L, bytes * 1e-6, K, setup_s);
    std::vector<float> score(static_cast<size_t>(B) * K);
    std::vector<index_t> index(static_cast<size_t>(B) * K);
    const bench::Timing t_sel = bench::time_runs(
        o.run.repeats, [&] { std::fill(index.begin(), index.end(), index_t{-7}); },
        [&] { latentcore::select_topk_rows(pre.data(), B, L, K, true, enc_bias.data(), score.data(), index.data(),
                                             threads);
        });
    t_sel.print();
    std::printf("rows: %lld; %.3f M rows/s (%.2f GB/s scanned) at min, %.3f M rows/s (%.2f GB/s) at median\n",
                static_cast<long long>(B), static_cast<double>(B) / t_sel.min * 1e-6, bytes / t_sel.min * 1e-9,
                static_cast<double>(B) / t_sel.median * 1e-6, bytes / t_sel.median * 1e-9);
    {  // every row against a partial sort by (-(value + bias), index)
        std::vector<index_t> order(L);
        std::vector<float> v(L);
        for (size_type r = 0; r < B; ++r) {
            for (int j = 0; j < L; ++j) order[j] = j, v[j] = pre[r * L + j] + enc_bias[j];
            std::partial_sort(order.begin(), order.begin() + K, order.end(),
                              [&v](index_t a, index_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
            for (int t = 0; t < K; ++t)
                if (index[r * K + t] != order[t] || score[r * K + t] != v[order[t]])
                    fail("top-k row " + std::to_string(r) + " slot " + std::to_string(t) + " differs from a sort");
        }
    }
    std::printf("check: every row equals a std::partial_sort of value + bias (descending, ties by index)\n");
    {
        char work[160];
        std::snprintf(work, sizeof work, "%lld x %d pre-activations, k=%d", static_cast<long long>(B), L, K);
        rows.push_back({"select_topk_rows (largest)", work, t_sel,
                        rate(static_cast<double>(B), t_sel.min, "rows") + format(", %.2f GB/s", bytes / t_sel.min * 1e-9),
                        rate(static_cast<double>(B), t_sel.median, "rows") +
                            format(", %.2f GB/s", bytes / t_sel.median * 1e-9),
                        "equals a partial sort, all rows"});
    }

    // The codes: the ReLU'd selected pre-activations, as the TopK encoder keeps them.
    std::vector<float> value(score.size());
    for (size_t e = 0; e < score.size(); ++e) value[e] = std::max(score[e], 0.0f);
    const std::vector<float> decoder = unit_rows(gen, L, F);  // (latents, d)
    std::vector<float> bias(F), grad_out(static_cast<size_t>(B) * F), x_centered(static_cast<size_t>(B) * F);
    for (float& v : bias) v = 0.1f * normal(gen);
    for (float& v : grad_out) v = normal(gen);
    for (float& v : x_centered) v = normal(gen);

    // -- decode
    std::printf("\n== sae: sparse_decode, %lld samples x k=%d of %d latents -> %d features (unit-norm decoder, "
                "bias) ==\n",
                static_cast<long long>(B), K, L, F);
    std::vector<float> out(static_cast<size_t>(B) * F);
    const bench::Timing t_dec = bench::time_runs(
        o.run.repeats, [&] { std::fill(out.begin(), out.end(), std::numeric_limits<float>::quiet_NaN()); },
        [&] {
            latentcore::sparse_decode(index.data(), value.data(), B, K, decoder.data(), F, bias.data(), out.data(),
                                      threads);
        });
    t_dec.print();
    std::printf("samples: %lld; %.3f M samples/s at min, %.3f M samples/s at median\n", static_cast<long long>(B),
                static_cast<double>(B) / t_dec.min * 1e-6, static_cast<double>(B) / t_dec.median * 1e-6);
    double dec_err = 0.0;
    {
        const size_type stride = std::max<size_type>(1, B / kCheckDecodeRows);
        for (size_type i = 0; i < B; i += stride)
            for (int f = 0; f < F; ++f) {
                double s = bias[f];
                for (int t = 0; t < K; ++t)
                    s += static_cast<double>(value[i * K + t]) * decoder[static_cast<size_t>(index[i * K + t]) * F + f];
                const double got = out[i * F + f];
                if (!std::isfinite(got)) fail("decoded row " + std::to_string(i) + " is not finite");
                dec_err = std::max(dec_err, std::fabs(got - s));
            }
        if (dec_err > 1e-3) fail("sparse_decode differs from a double-precision sum by " + std::to_string(dec_err));
    }
    std::printf("check: %d sampled rows vs a double-precision sum, max |error| %.2e\n", kCheckDecodeRows, dec_err);
    {
        char work[160];
        std::snprintf(work, sizeof work, "%lld samples, k=%d, %d x %d decoder", static_cast<long long>(B), K, L, F);
        rows.push_back({"sparse_decode", work, t_dec, rate(static_cast<double>(B), t_dec.min, "samples"),
                        rate(static_cast<double>(B), t_dec.median, "samples"), format("max abs error %.1e", dec_err)});
    }

    // -- backward
    std::printf("\n== sae: sparse_decode_backward, same codes, random grad_out and x_centered ==\n");
    const size_t grad_cells = static_cast<size_t>(L) * F;
    std::vector<float> g_dec(grad_cells), g_enc(grad_cells), g_bias(L);
    const auto zero = [&] {  // the kernel adds into its outputs
        std::fill(g_dec.begin(), g_dec.end(), 0.0f);
        std::fill(g_enc.begin(), g_enc.end(), 0.0f);
        std::fill(g_bias.begin(), g_bias.end(), 0.0f);
    };
    const auto backward = [&](int n_threads) {
        latentcore::sparse_decode_backward(index.data(), value.data(), B, K, grad_out.data(), x_centered.data(),
                                           decoder.data(), L, F, g_dec.data(), g_enc.data(), g_bias.data(),
                                           n_threads);
    };
    const bench::Timing t_bwd = bench::time_runs(o.run.repeats, zero, [&] { backward(threads); });
    t_bwd.print();
    std::printf("samples: %lld; %.3f M samples/s at min, %.3f M samples/s at median\n", static_cast<long long>(B),
                static_cast<double>(B) / t_bwd.min * 1e-6, static_cast<double>(B) / t_bwd.median * 1e-6);
    double bwd_err = 0.0;
    size_type used = 0;
    int checked = 0;
    {
        // Sampled latents against double-precision sums over their entries.
        std::vector<double> ref_dec(F), ref_enc(F);
        const int stride = std::max(1, L / kCheckLatents);
        for (int l = 0; l < L; l += stride, ++checked) {
            std::fill(ref_dec.begin(), ref_dec.end(), 0.0);
            std::fill(ref_enc.begin(), ref_enc.end(), 0.0);
            double ref_bias = 0.0;
            const float* atom = decoder.data() + static_cast<size_t>(l) * F;
            for (size_type e = 0; e < B * K; ++e) {
                if (index[e] != l || value[e] == 0.0f) continue;
                const size_type i = e / K;
                double dpre = 0.0;
                for (int f = 0; f < F; ++f) dpre += static_cast<double>(grad_out[i * F + f]) * atom[f];
                if (!(value[e] > 0.0f)) dpre = 0.0;
                for (int f = 0; f < F; ++f) {
                    ref_dec[f] += static_cast<double>(value[e]) * grad_out[i * F + f];
                    ref_enc[f] += dpre * x_centered[i * F + f];
                }
                ref_bias += dpre;
            }
            for (int f = 0; f < F; ++f) {
                bwd_err = std::max(bwd_err, std::fabs(g_dec[static_cast<size_t>(l) * F + f] - ref_dec[f]));
                bwd_err = std::max(bwd_err, std::fabs(g_enc[static_cast<size_t>(l) * F + f] - ref_enc[f]));
            }
            bwd_err = std::max(bwd_err, std::fabs(g_bias[l] - ref_bias));
        }
        if (!(bwd_err < 1e-2)) fail("sparse_decode_backward differs from a double-precision sum by " +
                                    std::to_string(bwd_err));
        for (int l = 0; l < L; ++l) used += g_bias[l] != 0.0f;
    }
    // The contract: the same bits for any thread count.
    const std::vector<float> dec_n = g_dec, enc_n = g_enc, bias_n = g_bias;
    zero();
    backward(1);
    const bool same = std::memcmp(dec_n.data(), g_dec.data(), grad_cells * sizeof(float)) == 0 &&
                      std::memcmp(enc_n.data(), g_enc.data(), grad_cells * sizeof(float)) == 0 &&
                      std::memcmp(bias_n.data(), g_bias.data(), static_cast<size_t>(L) * sizeof(float)) == 0;
    if (!same) fail("sparse_decode_backward with 1 thread differs from its run with " + std::to_string(threads));
    std::printf("check: %d sampled latents vs double-precision sums, max |error| %.2e; bit-identical to a "
                "1-thread run; %lld of %d latents used\n",
                checked, bwd_err,
                static_cast<long long>(used), L);
    {
        char work[160];
        std::snprintf(work, sizeof work, "%lld samples, k=%d, %d x %d decoder", static_cast<long long>(B), K, L, F);
        rows.push_back({"sparse_decode_backward", work, t_bwd, rate(static_cast<double>(B), t_bwd.min, "samples"),
                        rate(static_cast<double>(B), t_bwd.median, "samples"),
                        format("max abs error %.1e, = 1-thread bits", bwd_err)});
    }
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    const int threads = latentcore::resolve_threads(o.run.threads);
    std::printf("bench_sparse: threads=%d repeats=%d seed=%llu\n", threads, o.run.repeats,
                static_cast<unsigned long long>(o.run.seed));

    std::vector<Row> rows;
    if (o.omp) rows.push_back(bench_omp(o, threads));
    if (o.sae) bench_topk(o, threads, rows);

    std::printf("\n| kernel | work | min s | median s | rate at min | rate at median | check |\n"
                "| --- | --- | --- | --- | --- | --- | --- |\n");
    for (const Row& r : rows)
        std::printf("| %s | %s | %.4g | %.4g | %s | %s | %s |\n", r.name.c_str(), r.work.c_str(), r.time.min,
                    r.time.median, r.rate_min.c_str(), r.rate_median.c_str(), r.check.c_str());
    return 0;
}
