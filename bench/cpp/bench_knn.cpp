// bench_knn: times latentcore::exact_knn on an all-pairs problem (each point's
// k nearest others, euclidean), without Python in the way.
//
// The kernel takes its SGEMM as a function pointer; this binary dlopen()s the
// BLAS named by --blas (scipy's OpenBLAS is what the Python package uses; see
// bench/README.md for the command that finds it) and turns that BLAS's own
// threading off, because the kernel calls SGEMM from each of its threads.
//
//   bench_knn --blas PATH [--n 20000] [--d 64] [--k 15] [--threads 0]
//             [--block 512] [--repeats 5] [--seed 0]
//
// Prints the minimum and median wall time over --repeats runs (after one
// untimed warm-up run) and the rate implied for the GEMM part: the symmetric
// half of the n x n x d product, 2*n*n*d/2 = n*n*d flops. The rate is computed
// from the whole kernel time (top-k selection and exact re-ranking included),
// so it is a lower bound on what the SGEMM calls themselves achieve.
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bench_common.hpp"
#include "latentcore/parallel.hpp"  // resolve_threads
#include "latentcore/knn.hpp"

namespace {

using latentcore::index_t;
using latentcore::size_type;

constexpr int kClusters = 50;   // Gaussian mixture, as bench/bench_knn.py generates
constexpr int kCheckRows = 16;  // rows verified against a double-precision brute force

struct Options {
    size_type n = 20000;
    size_type d = 64;
    int k = 15;
    size_type block = 512;
    bench::RunFlags run{0, 5, 0};  // --threads (0: all OpenMP threads), --repeats, --seed
    std::string blas;
};

const bench::Cli cli{
    "bench_knn",
    "usage: bench_knn --blas PATH [--n N] [--d D] [--k K] [--threads T] "
    "[--block B] [--repeats R] [--seed S]\n"
    "  --blas     shared library exporting scipy_sgemm_ or sgemm_ (e.g. scipy's\n"
    "             libscipy_openblas*.so; see bench/README.md)\n"
    "  --threads  kernel threads, 0 = all OpenMP threads (default 0)\n"
    "  --block    rows per tile side (default 512)\n"};

Options parse(int argc, char** argv) {
    Options o;
    cli.parse(argc, argv, o.run, [&o](const std::string& flag, const std::string& value) {
        if (flag == "--n") o.n = cli.integer(flag, value, 2);
        else if (flag == "--d") o.d = cli.integer(flag, value, 1);
        else if (flag == "--k") o.k = static_cast<int>(cli.integer(flag, value, 1));
        else if (flag == "--block") o.block = cli.integer(flag, value, 1);
        else if (flag == "--blas") o.blas = value;
        else return false;
        return true;
    });
    if (o.blas.empty()) cli.usage("--blas PATH is required");
    if (o.k >= o.n) cli.usage("--k must be smaller than --n (each point is left out of its own list)");
    if (o.n > 2147483647LL) cli.usage("--n must fit in int32 indices");
    return o;
}

struct Blas {
    latentcore::Sgemm sgemm = nullptr;
    std::string sgemm_name, threads_name, core;
};

Blas load_blas(const std::string& path) {
    void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        std::fprintf(stderr, "bench_knn: cannot load BLAS '%s': %s\n", path.c_str(), dlerror());
        std::exit(1);
    }
    Blas b;
    for (const char* name : {"scipy_sgemm_", "sgemm_"}) {
        if (void* f = dlsym(lib, name)) {
            b.sgemm = reinterpret_cast<latentcore::Sgemm>(f);
            b.sgemm_name = name;
            break;
        }
    }
    if (!b.sgemm) {
        std::fprintf(stderr, "bench_knn: '%s' exports neither scipy_sgemm_ nor sgemm_\n", path.c_str());
        std::exit(1);
    }
    // One BLAS thread: the kernel already runs one SGEMM per thread of its own.
    using SetThreads = void (*)(int);
    for (const char* name : {"scipy_openblas_set_num_threads", "openblas_set_num_threads"}) {
        if (void* f = dlsym(lib, name)) {
            reinterpret_cast<SetThreads>(f)(1);
            b.threads_name = name;
            break;
        }
    }
    using CoreName = const char* (*)();
    for (const char* name : {"scipy_openblas_get_corename", "openblas_get_corename"}) {
        if (void* f = dlsym(lib, name)) {
            const char* core = reinterpret_cast<CoreName>(f)();
            if (core) b.core = core;
            break;
        }
    }
    return b;  // the library stays loaded for the life of the process
}

// A mixture of kClusters Gaussians with unit-variance centres and per-cluster
// widths in [0.2, 0.6]: clustered like real embeddings, no exact ties.
std::vector<float> make_data(size_type n, size_type d, unsigned seed) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> width(0.2f, 0.6f);
    std::uniform_int_distribution<int> pick(0, kClusters - 1);
    std::vector<float> centers(static_cast<size_t>(kClusters * d)), widths(kClusters);
    for (auto& c : centers) c = normal(gen);
    for (auto& w : widths) w = width(gen);
    std::vector<float> x(static_cast<size_t>(n * d));
    for (size_type i = 0; i < n; ++i) {
        const int c = pick(gen);
        for (size_type t = 0; t < d; ++t)
            x[i * d + t] = centers[c * d + t] + widths[c] * normal(gen);
    }
    return x;
}

// Checks the output's shape invariants and, for a few rows, that the index set
// equals a double-precision brute force. Returns the recall over those rows.
double check(const Options& o, const std::vector<float>& x, const std::vector<index_t>& idx,
             const std::vector<float>& dist) {
    for (size_type i = 0; i < o.n; ++i) {
        for (int t = 0; t < o.k; ++t) {
            const index_t j = idx[i * o.k + t];
            if (j < 0 || j >= o.n || j == i || (t > 0 && dist[i * o.k + t] < dist[i * o.k + t - 1])) {
                std::fprintf(stderr, "bench_knn: bad output at row %lld col %d (index %d)\n",
                             static_cast<long long>(i), t, j);
                std::exit(1);
            }
        }
    }
    std::mt19937 gen(static_cast<unsigned>(o.run.seed) + 1);
    std::uniform_int_distribution<size_type> row(0, o.n - 1);
    size_type found = 0, total = 0;
    std::vector<std::pair<double, index_t>> all(static_cast<size_t>(o.n));
    for (int r = 0; r < kCheckRows; ++r) {
        const size_type i = row(gen);
        for (size_type j = 0; j < o.n; ++j) {
            double s = 0.0;
            for (size_type t = 0; t < o.d; ++t) {
                const double diff = static_cast<double>(x[i * o.d + t]) - x[j * o.d + t];
                s += diff * diff;
            }
            all[j] = {j == i ? INFINITY : s, static_cast<index_t>(j)};
        }
        std::partial_sort(all.begin(), all.begin() + o.k, all.end());
        std::set<index_t> truth;
        for (int t = 0; t < o.k; ++t) truth.insert(all[t].second);
        for (int t = 0; t < o.k; ++t) found += truth.count(idx[i * o.k + t]);
        total += o.k;
    }
    return static_cast<double>(found) / static_cast<double>(total);
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    const Blas blas = load_blas(o.blas);
    const int threads = latentcore::resolve_threads(o.run.threads);

    std::printf("bench_knn: exact all-pairs k-NN, n=%lld d=%lld k=%d threads=%d block=%lld repeats=%d seed=%u\n",
                static_cast<long long>(o.n), static_cast<long long>(o.d), o.k, threads,
                static_cast<long long>(o.block), o.run.repeats, static_cast<unsigned>(o.run.seed));
    std::printf("BLAS: %s\n      %s%s%s%s\n", o.blas.c_str(), blas.sgemm_name.c_str(),
                blas.threads_name.empty() ? ", no set_num_threads found (set its threads to 1 yourself)"
                                          : (", 1 thread via " + blas.threads_name).c_str(),
                blas.core.empty() ? "" : ", core ", blas.core.c_str());

    const std::vector<float> x = make_data(o.n, o.d, static_cast<unsigned>(o.run.seed));
    // Centre subtracted before ranking, as the Python wrapper does for euclidean.
    std::vector<double> mean(static_cast<size_t>(o.d), 0.0);
    for (size_type i = 0; i < o.n; ++i)
        for (size_type t = 0; t < o.d; ++t) mean[t] += x[i * o.d + t];
    std::vector<float> center(static_cast<size_t>(o.d));
    for (size_type t = 0; t < o.d; ++t) center[t] = static_cast<float>(mean[t] / static_cast<double>(o.n));

    const latentcore::KnnProblem problem{x.data(), o.n, nullptr, 0, o.d, o.k,
                                         latentcore::Metric::euclidean, true, center.data()};
    std::vector<index_t> idx(static_cast<size_t>(o.n * o.k));
    std::vector<float> dist(static_cast<size_t>(o.n * o.k));

    const bench::Timing time = bench::time_runs(
        o.run.repeats,
        [&] { std::fill(idx.begin(), idx.end(), index_t{-7}); },  // poison: the kernel must write everything
        [&] { latentcore::exact_knn(problem, blas.sgemm, o.block, threads, idx.data(), dist.data()); });
    const double flops = static_cast<double>(o.n) * static_cast<double>(o.n) * static_cast<double>(o.d);

    time.print();
    std::printf("GEMM part, n*n*d = %.3g flops (2*n*n*d / 2, symmetric half): %.1f GFLOP/s at min, "
                "%.1f GFLOP/s at median (whole kernel time)\n",
                flops, flops / time.min * 1e-9, flops / time.median * 1e-9);
    const double recall = check(o, x, idx, dist);
    std::printf("check: every row valid; %d sampled rows vs double-precision brute force: recall %.4f\n",
                kCheckRows, recall);
    if (recall < 1.0)
        std::printf("note: recall below 1 means a near-tie at the k-th distance, or a bug if it is far below\n");
    return 0;
}
