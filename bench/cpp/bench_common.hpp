// Shared by the C++ benchmark binaries (bench_knn, bench_walks, bench_sparse):
// command-line flags and repeated timing. Header-only; nothing here touches a kernel.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace bench {

// The flags every benchmark binary takes.
struct RunFlags {
    int threads = 0;  // --threads: kernel threads, 0 = all OpenMP threads
    int repeats;      // --repeats: timed runs after the warm-up (each binary's default)
    std::uint64_t seed = 0;  // --seed
};

// A binary's command line: its name (the prefix of every error) and its usage
// text, printed on --help (exit 0) or after an error (exit 2).
struct Cli {
    const char* program;
    const char* help;

    [[noreturn]] void usage(const char* msg) const {
        if (msg) std::fprintf(stderr, "%s: %s\n", program, msg);
        std::fputs(help, stderr);
        std::exit(msg ? 2 : 0);
    }
    [[noreturn]] void usage(const std::string& msg) const { usage(msg.c_str()); }

    // An integer flag value >= lo, or a usage error naming the flag.
    long long integer(const std::string& flag, const std::string& text, long long lo) const {
        size_t used = 0;
        long long v = 0;
        try {
            v = std::stoll(text, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != text.size() || v < lo)
            usage(flag + " needs an integer >= " + std::to_string(lo) + ", got '" + text + "'");
        return v;
    }

    // Reads each "--flag value" or "--flag=value": the RunFlags into `run`,
    // any other through on_flag(flag, value), which returns false for a flag
    // it does not know. -h / --help: usage.
    template <typename OnFlag>
    void parse(int argc, char** argv, RunFlags& run, OnFlag&& on_flag) const {
        for (int i = 1; i < argc; ++i) {
            std::string flag = argv[i], value;
            if (flag == "-h" || flag == "--help") usage(nullptr);
            const size_t eq = flag.find('=');
            if (eq != std::string::npos) {
                value = flag.substr(eq + 1);
                flag = flag.substr(0, eq);
            } else {
                if (i + 1 >= argc) usage(flag + " needs a value");
                value = argv[++i];
            }
            if (flag == "--threads") run.threads = static_cast<int>(integer(flag, value, 0));
            else if (flag == "--repeats") run.repeats = static_cast<int>(integer(flag, value, 1));
            else if (flag == "--seed") run.seed = static_cast<std::uint64_t>(integer(flag, value, 0));
            else if (!on_flag(flag, value)) usage("unknown argument " + flag);
        }
    }
};

// Wall times of the timed runs and their minimum and median.
struct Timing {
    std::vector<double> seconds;
    double min = 0.0, median = 0.0;

    // "runs (s): ..." and "time: min ..., median ..." lines.
    void print() const {
        std::printf("runs (s):");
        for (double s : seconds) std::printf(" %.4f", s);
        std::printf("\ntime: min %.4f s, median %.4f s\n", min, median);
    }
};

// Calls prepare() then body() once untimed (the warm-up), then `repeats`
// times with only body() timed.
template <typename Prepare, typename Body>
Timing time_runs(int repeats, Prepare&& prepare, Body&& body) {
    using clock = std::chrono::steady_clock;
    Timing t;
    for (int r = -1; r < repeats; ++r) {  // r = -1: untimed warm-up
        prepare();
        const auto t0 = clock::now();
        body();
        const double s = std::chrono::duration<double>(clock::now() - t0).count();
        if (r >= 0) t.seconds.push_back(s);
    }
    std::vector<double> sorted = t.seconds;
    std::sort(sorted.begin(), sorted.end());
    const size_t half = sorted.size() / 2;
    t.min = sorted.front();
    t.median = sorted.size() % 2 ? sorted[half] : 0.5 * (sorted[half - 1] + sorted[half]);
    return t;
}

}  // namespace bench
