// bench_walks: times latentcore's random-walk kernel (sample_walks: DeepWalk's
// first-order walks and node2vec's biased ones) and its skip-gram kernel
// (train_sgns) on a generated graph, without Python in the way.
//
// The graph approximates networkx.powerlaw_cluster_graph(n, 5, 0.1): the same
// Holme-Kim growth (each new node makes m = 5 links by preferential attachment,
// each link after the first closing a triangle with probability 0.1), with
// this binary's own random numbers (std::mt19937_64 from --seed), so it has
// that graph's power-law degrees and clustering but is not the same graph.
// It is stored as the library stores an undirected graph: both directions of
// every edge, rows sorted (node2vec's neighbour test is a binary search), unit
// weights.
//
//   bench_walks [--n 100000] [--walk-length 80] [--walks-per-node 10]
//               [--dim 64] [--window 5] [--negative 5] [--threads 0]
//               [--repeats 3] [--seed 0] [--case walks|sgns|all]
//
// Walks start at node w % n for walk w, as the Python estimators start them.
// Each case prints its runs and the minimum and median wall time over
// --repeats runs (after one untimed warm-up run), and a rate at each:
//   walks  DeepWalk (p = q = 1) and node2vec (p = 0.5, q = 2): steps per
//          second, a step being one node after the start (padding not counted);
//   sgns   one epoch of skip-gram on the DeepWalk walks, prepared as
//          latentcore.sgns.train prepares them: noise = visit counts^0.75 in
//          an alias table, word2vec's subsampling with sample = 1e-3. Words
//          per second = tokens trained (kept after subsampling) per second.
//          Every run starts from the same vectors.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "latentcore/parallel.hpp"  // resolve_threads
#include "latentcore/sgns.hpp"
#include "latentcore/walks.hpp"

namespace {

using latentcore::index_t;
using latentcore::size_type;

constexpr int kLinksPerNode = 5;           // powerlaw_cluster_graph's m
constexpr double kTriangleChance = 0.1;    // ... and its p
constexpr double kNode2vecP = 0.5, kNode2vecQ = 2.0;
constexpr double kNsExponent = 0.75;       // skipgram's ns_exponent default
constexpr double kSample = 1e-3;           // skipgram's sample default
constexpr int kCheckWalks = 1000;          // walks whose every step is checked against the graph

struct Options {
    size_type n = 100000;
    int walk_length = 80;
    int walks_per_node = 10;
    int dim = 64;
    int window = 5;
    int negative = 5;
    bench::RunFlags run{0, 3, 0};  // --threads (0: all OpenMP threads), --repeats, --seed
    bool walks = true, sgns = true;
};

const bench::Cli cli{"bench_walks", R"(usage: bench_walks [--n N] [--walk-length L] [--walks-per-node W] [--dim D] [--window K]
                   [--negative G] [--threads T] [--repeats R] [--seed S] [--case walks|sgns|all]
  --n               nodes of the generated power-law graph (default 100000)
  --walk-length     nodes per walk, the start included (default 80)
  --walks-per-node  walks from each node (default 10)
  --dim, --window, --negative  skip-gram parameters (default 64, 5, 5)
  --threads         kernel threads, 0 = all OpenMP threads (default 0)
  --repeats         timed runs after one untimed warm-up (default 3)
  --case            walks, sgns (trains on DeepWalk walks) or all (default all)
)"};

Options parse(int argc, char** argv) {
    Options o;
    cli.parse(argc, argv, o.run, [&o](const std::string& flag, const std::string& value) {
        if (flag == "--n") o.n = cli.integer(flag, value, kLinksPerNode + 1);
        else if (flag == "--walk-length") o.walk_length = static_cast<int>(cli.integer(flag, value, 2));
        else if (flag == "--walks-per-node") o.walks_per_node = static_cast<int>(cli.integer(flag, value, 1));
        else if (flag == "--dim") o.dim = static_cast<int>(cli.integer(flag, value, 1));
        else if (flag == "--window") o.window = static_cast<int>(cli.integer(flag, value, 1));
        else if (flag == "--negative") o.negative = static_cast<int>(cli.integer(flag, value, 1));
        else if (flag == "--case") {
            if (value != "walks" && value != "sgns" && value != "all")
                cli.usage("--case must be walks, sgns or all, got '" + value + "'");
            o.walks = value != "sgns";
            o.sgns = value != "walks";
        } else return false;
        return true;
    });
    if (o.n > 2147483647LL) cli.usage("--n must fit in int32 indices");
    if (o.walk_length > 1000000 || o.walks_per_node > 1000000 || o.dim > 100000 || o.window > 10000 ||
        o.negative > 10000)
        cli.usage("a flag is beyond a sane size (walk length / walks per node 1e6, dim 1e5, window / negative 1e4)");
    return o;
}

// An undirected graph in the library's CSR form: both directions, rows sorted.
struct Graph {
    std::vector<std::int64_t> indptr;
    std::vector<index_t> indices;
    std::vector<float> weights;

    size_type n() const { return static_cast<size_type>(indptr.size()) - 1; }
    latentcore::CsrGraph<float> csr() const { return {indptr.data(), indices.data(), weights.data(), n()}; }
    bool has_edge(index_t from, index_t to) const {
        return std::binary_search(indices.begin() + indptr[from], indices.begin() + indptr[from + 1], to);
    }
};

// Holme-Kim growth, step by step as networkx.powerlaw_cluster_graph does it:
// `repeated` holds each node once per link end it received (and each new node
// m times), so a uniform pick from it is a pick by degree.
Graph powerlaw_cluster(size_type n, int m, double triangle, std::uint64_t seed) {
    std::mt19937_64 gen(seed);
    std::uniform_real_distribution<double> coin(0.0, 1.0);
    std::vector<std::vector<index_t>> adj(static_cast<size_t>(n));
    std::vector<index_t> repeated, targets, candidates;
    repeated.reserve(static_cast<size_t>(2 * m * n));
    for (index_t v = 0; v < m; ++v) repeated.push_back(v);  // the m seed nodes, no links yet
    const auto linked = [&](index_t a, index_t b) {
        return std::find(adj[a].begin(), adj[a].end(), b) != adj[a].end();
    };
    const auto link = [&](index_t a, index_t b) {  // networkx's add_edge: a repeat is a no-op
        if (!linked(a, b)) {
            adj[a].push_back(b);
            adj[b].push_back(a);
        }
        repeated.push_back(b);
    };
    for (index_t source = m; source < n; ++source) {
        targets.clear();  // m distinct nodes, each picked by degree
        std::uniform_int_distribution<size_t> pick(0, repeated.size() - 1);
        while (static_cast<int>(targets.size()) < m) {
            const index_t t = repeated[pick(gen)];
            if (std::find(targets.begin(), targets.end(), t) == targets.end()) targets.push_back(t);
        }
        index_t target = targets.back();
        targets.pop_back();
        link(source, target);
        for (int count = 1; count < m; ++count) {
            if (coin(gen) < triangle) {  // close a triangle through the last target, if it can
                candidates.clear();
                for (index_t v : adj[target])
                    if (v != source && !linked(source, v)) candidates.push_back(v);
                if (!candidates.empty()) {
                    std::uniform_int_distribution<size_t> which(0, candidates.size() - 1);
                    link(source, candidates[which(gen)]);
                    continue;
                }
            }
            target = targets.back();
            targets.pop_back();
            link(source, target);
        }
        repeated.insert(repeated.end(), static_cast<size_t>(m), source);
    }
    Graph g;
    g.indptr.assign(static_cast<size_t>(n) + 1, 0);
    for (size_type v = 0; v < n; ++v) {
        std::sort(adj[v].begin(), adj[v].end());
        g.indptr[v + 1] = g.indptr[v] + static_cast<std::int64_t>(adj[v].size());
        g.indices.insert(g.indices.end(), adj[v].begin(), adj[v].end());
    }
    g.weights.assign(g.indices.size(), 1.0f);
    return g;
}

// "<label>: <count>; <rate> M<unit>/s at min, <rate> at median".
void print_rate(const char* label, double count, const char* unit, const bench::Timing& t) {
    std::printf("%s: %.0f; %.2f M%s/s at min, %.2f M%s/s at median\n", label, count, count / t.min * 1e-6,
                unit, count / t.median * 1e-6, unit);
}

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "bench_walks: check failed: %s\n", what.c_str());
    std::exit(1);
}

struct Walker {
    const Options& o;
    const Graph& graph;
    int threads;
    size_type n_walks;
    std::vector<index_t> starts;
    std::vector<float> keep;
    std::vector<index_t> alias;
    std::vector<double> totals;  // each row's total weight
    std::vector<float> maxima;   // and its largest

    Walker(const Options& options, const Graph& g, int n_threads)
        : o(options), graph(g), threads(n_threads), n_walks(o.n * o.walks_per_node),
          starts(static_cast<size_t>(n_walks)), keep(g.indices.size()), alias(g.indices.size()),
          totals(static_cast<size_t>(g.n()), 0.0), maxima(static_cast<size_t>(g.n()), 0.0f) {
        for (size_type w = 0; w < n_walks; ++w) starts[w] = static_cast<index_t>(w % o.n);
        latentcore::build_alias_tables(graph.csr(), keep.data(), alias.data(), threads);
        for (size_type v = 0; v < g.n(); ++v)
            for (std::int64_t e = g.indptr[v]; e < g.indptr[v + 1]; ++e) {
                totals[v] += g.weights[e];
                maxima[v] = std::max(maxima[v], g.weights[e]);
            }
    }

    void sample(double p, double q, std::vector<index_t>& walks) const {
        latentcore::sample_walks(graph.csr(), keep.data(), alias.data(), totals.data(), maxima.data(), starts.data(),
                                 n_walks, o.walk_length, p, q, o.run.seed, 0, walks.data(), threads);
    }

    // Every walk starts where it should and ends in padding only; kCheckWalks
    // of them (spread over the array) follow an edge at every step. Returns
    // the steps (nodes after the start) and counts the padded and edge-checked ones.
    double check(const std::vector<index_t>& walks, size_type& padded, size_type& checked) const {
        double steps = 0.0;
        padded = checked = 0;
        const size_type stride = std::max<size_type>(1, n_walks / kCheckWalks);
        for (size_type w = 0; w < n_walks; ++w) {
            const index_t* walk = walks.data() + w * o.walk_length;
            if (walk[0] != starts[w]) fail("walk " + std::to_string(w) + " does not begin at its start");
            int length = 1;
            while (length < o.walk_length && walk[length] >= 0) ++length;
            for (int s = length; s < o.walk_length; ++s)
                if (walk[s] != -1) fail("walk " + std::to_string(w) + " goes on after its padding");
            steps += length - 1;
            padded += o.walk_length - length;
            checked += w % stride == 0;
            for (int s = 1; w % stride == 0 && s < length; ++s)
                if (walk[s] >= o.n || !graph.has_edge(walk[s - 1], walk[s]))
                    fail("walk " + std::to_string(w) + " step " + std::to_string(s) + " follows no edge");
        }
        return steps;
    }

    // Times one kind of walk; returns the walks of the last run.
    std::vector<index_t> bench(const char* name, double p, double q) const {
        std::vector<index_t> walks(static_cast<size_t>(n_walks * o.walk_length));
        std::printf("\n== walks: %s (p=%g, q=%g), %lld walks x %d nodes ==\n", name, p, q,
                    static_cast<long long>(n_walks), o.walk_length);
        const bench::Timing t = bench::time_runs(
            o.run.repeats, [&] { std::fill(walks.begin(), walks.end(), index_t{-7}); },  // poison
            [&] { sample(p, q, walks); });
        t.print();
        size_type padded = 0, checked = 0;
        const double steps = check(walks, padded, checked);
        print_rate("steps", steps, "steps", t);
        std::printf("check: starts and padding right in all walks, %lld padded steps; every step of %lld "
                    "sampled walks follows an edge\n",
                    static_cast<long long>(padded), static_cast<long long>(checked));
        return walks;
    }
};

// word2vec's subsampling, as latentcore.sgns.keep_probabilities computes it:
// a node seen c times out of N is kept with probability (sqrt(c/t) + 1) t/c,
// t = sample * N, capped at 1 (and 1 for a node never seen).
std::vector<float> keep_probabilities(const std::vector<std::int64_t>& counts, double sample) {
    double total = 0.0;
    for (std::int64_t c : counts) total += static_cast<double>(c);
    const double threshold = sample * total;
    std::vector<float> keep(counts.size(), 1.0f);
    for (size_t v = 0; v < counts.size(); ++v) {
        if (counts[v] == 0) continue;
        const double c = static_cast<double>(counts[v]);
        keep[v] = static_cast<float>(std::min(1.0, (std::sqrt(c / threshold) + 1.0) * threshold / c));
    }
    return keep;
}

void bench_sgns(const Options& o, const std::vector<index_t>& walks, size_type n_walks, int threads) {
    const size_type n = o.n;
    // latentcore.sgns.train: visit counts give the noise table and the subsampling odds.
    std::vector<std::int64_t> counts(static_cast<size_t>(n), 0);
    double walk_tokens = 0.0;
    for (index_t v : walks)
        if (v >= 0) ++counts[v], ++walk_tokens;
    std::vector<float> noise(static_cast<size_t>(n));
    for (size_type v = 0; v < n; ++v)
        noise[v] = counts[v] > 0 ? static_cast<float>(std::pow(static_cast<double>(counts[v]), kNsExponent)) : 0.0f;
    // The noise table is the one-row case of the per-node tables (alias_table in sgns.py).
    const std::vector<std::int64_t> row{0, n};
    const std::vector<index_t> unused(static_cast<size_t>(n), 0);
    std::vector<float> noise_keep(static_cast<size_t>(n));
    std::vector<index_t> noise_alias(static_cast<size_t>(n));
    latentcore::build_alias_tables({row.data(), unused.data(), noise.data(), 1}, noise_keep.data(),
                                   noise_alias.data(), 1);
    const std::vector<float> keep = keep_probabilities(counts, kSample);
    const size_type subsampled = std::count_if(keep.begin(), keep.end(), [](float k) { return k < 1.0f; });

    // word2vec's start: small random input vectors, zero output vectors.
    const size_t cells = static_cast<size_t>(n) * static_cast<size_t>(o.dim);
    std::vector<float> start(cells), input(cells), output(cells);
    std::mt19937 gen(static_cast<unsigned>(o.run.seed));
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    for (float& x : start) x = (uniform(gen) - 0.5f) / static_cast<float>(o.dim);

    latentcore::SgnsOptions options;
    options.window = o.window;
    options.negative = o.negative;
    options.seed = o.run.seed;
    std::vector<std::int64_t> tokens;
    std::printf("\n== sgns: dim=%d window=%d negative=%d sample=%g ns_exponent=%g, one epoch over the "
                "DeepWalk walks (%.0f walk tokens, %lld nodes subsampled) ==\n",
                o.dim, o.window, o.negative, kSample, kNsExponent, walk_tokens,
                static_cast<long long>(subsampled));
    const bench::Timing t = bench::time_runs(
        o.run.repeats,
        [&] {
            input = start;
            std::fill(output.begin(), output.end(), 0.0f);
        },
        [&] {
            tokens.push_back(latentcore::train_sgns(walks.data(), n_walks, o.walk_length, keep.data(),
                                                    noise_keep.data(), noise_alias.data(), n, input.data(),
                                                    output.data(), o.dim, options, 0,
                                                    static_cast<std::uint64_t>(n_walks), threads));
        });
    t.print();
    print_rate("words (tokens trained)", static_cast<double>(tokens.back()), "words", t);
    if (tokens.back() <= 0) fail("no tokens trained");
    if (std::count(tokens.begin(), tokens.end(), tokens.front()) != static_cast<long>(tokens.size()))
        fail("runs trained different token counts");
    double norm = 0.0;
    for (size_type v = 0; v < n; ++v) {
        double s = 0.0;
        for (int j = 0; j < o.dim; ++j) {
            const double x = input[static_cast<size_t>(v) * o.dim + j];
            if (!std::isfinite(x)) fail("embedding of node " + std::to_string(v) + " is not finite");
            s += x * x;
        }
        norm += std::sqrt(s);
    }
    std::printf("check: %lld tokens in every run (%.1f%% of walk tokens), embedding finite, mean norm %.4f "
                "(start %.4f)\n",
                static_cast<long long>(tokens.back()), 100.0 * static_cast<double>(tokens.back()) / walk_tokens,
                norm / static_cast<double>(n), std::sqrt(static_cast<double>(o.dim) / 12.0) / o.dim);
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    const int threads = latentcore::resolve_threads(o.run.threads);
    std::printf("bench_walks: n=%lld walk_length=%d walks_per_node=%d threads=%d repeats=%d seed=%llu\n",
                static_cast<long long>(o.n), o.walk_length, o.walks_per_node, threads, o.run.repeats,
                static_cast<unsigned long long>(o.run.seed));

    const Graph graph = powerlaw_cluster(o.n, kLinksPerNode, kTriangleChance, o.run.seed);
    std::int64_t max_degree = 0;
    for (size_type v = 0; v < o.n; ++v) max_degree = std::max(max_degree, graph.indptr[v + 1] - graph.indptr[v]);
    std::printf("graph: Holme-Kim (~ networkx powerlaw_cluster_graph(%lld, %d, %g)), %lld undirected edges, "
                "mean degree %.2f, max degree %lld\n",
                static_cast<long long>(o.n), kLinksPerNode, kTriangleChance,
                static_cast<long long>(graph.indices.size() / 2),
                static_cast<double>(graph.indices.size()) / static_cast<double>(o.n),
                static_cast<long long>(max_degree));

    const Walker walker(o, graph, threads);
    std::vector<index_t> deepwalk;
    if (o.walks) {
        deepwalk = walker.bench("DeepWalk", 1.0, 1.0);
        walker.bench("node2vec", kNode2vecP, kNode2vecQ);
    }
    if (o.sgns) {
        if (deepwalk.empty()) {  // --case sgns: the walks to train on, untimed
            deepwalk.resize(static_cast<size_t>(walker.n_walks * o.walk_length));
            walker.sample(1.0, 1.0, deepwalk);
        }
        bench_sgns(o, deepwalk, walker.n_walks, threads);
    }
    return 0;
}
