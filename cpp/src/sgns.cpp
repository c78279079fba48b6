#include "latentcore/sgns.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "latentcore/parallel.hpp"
#include "latentcore/random.hpp"

namespace latentcore {

namespace {

// Per-thread scratch for one centre node's block update. `span` is the
// widest reach that can matter, min(window, walk_length - 1): every size is
// computed in 64 bits from it, so a huge window costs nothing.
struct SgnsScratch {
    std::vector<index_t> tokens, contexts, targets;
    std::vector<float> scores, input_grad, output_grad;
    std::vector<const float*> context_rows, target_rows;

    void allocate(int walk_length, int span, int negative, int dim) {
        const size_type contexts_max = 2 * static_cast<size_type>(span);
        const size_type n_targets = static_cast<size_type>(negative) + 1;
        tokens.resize(static_cast<size_t>(walk_length));
        contexts.resize(static_cast<size_t>(contexts_max));
        targets.resize(static_cast<size_t>(n_targets));
        scores.resize(static_cast<size_t>(contexts_max * n_targets));
        input_grad.resize(static_cast<size_t>(contexts_max * dim));
        output_grad.resize(static_cast<size_t>(n_targets * dim));
        context_rows.resize(static_cast<size_t>(contexts_max));
        target_rows.resize(static_cast<size_t>(n_targets));
    }
};

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// One centre node: its m contexts' input rows against the output rows of the
// centre (label 1) and the shared negatives (label 0). Both gradients are
// taken from the old vectors, then applied.
LATENTCORE_DISPATCH
void update_block(const index_t* contexts, int m, const index_t* targets, int n_targets,
                  float* input, float* output, int dim, float alpha, float* scores,
                  float* input_grad, float* output_grad, const float** xs, const float** ys) {
    for (int a = 0; a < m; ++a) xs[a] = input + static_cast<size_type>(contexts[a]) * dim;
    for (int t = 0; t < n_targets; ++t) ys[t] = output + static_cast<size_type>(targets[t]) * dim;
    for (int a = 0; a < m; ++a) {
        const float* x = xs[a];
        float* dots = scores + static_cast<size_type>(a) * n_targets;
        // Two targets per pass: two independent sums instead of one chain.
        for (int t = 0; t < n_targets; t += 2) {
            const float* y0 = ys[t];
            const float* y1 = ys[t + 1 < n_targets ? t + 1 : t];
            float d0 = 0.0f, d1 = 0.0f;
#pragma omp simd reduction(+ : d0, d1)
            for (int j = 0; j < dim; ++j) {
                d0 += x[j] * y0[j];
                d1 += x[j] * y1[j];
            }
            dots[t] = d0;
            if (t + 1 < n_targets) dots[t + 1] = d1;
        }
        for (int t = 0; t < n_targets; ++t) {
            // A negative that is the centre itself teaches nothing.
            const bool skip = t > 0 && targets[t] == targets[0];
            dots[t] = skip ? 0.0f : ((t == 0 ? 1.0f : 0.0f) - sigmoid(dots[t])) * alpha;
        }
    }
    std::fill(output_grad, output_grad + static_cast<size_type>(n_targets) * dim, 0.0f);
    for (int a = 0; a < m; ++a) {
        const float* x = xs[a];
        float* gx = input_grad + static_cast<size_type>(a) * dim;
        std::fill(gx, gx + dim, 0.0f);
        for (int t = 0; t < n_targets; ++t) {
            const float g = scores[static_cast<size_type>(a) * n_targets + t];
            const float* y = ys[t];
            float* gy = output_grad + static_cast<size_type>(t) * dim;
#pragma omp simd
            for (int j = 0; j < dim; ++j) {
                gx[j] += g * y[j];
                gy[j] += g * x[j];
            }
        }
    }
    for (int a = 0; a < m; ++a) {
        float* x = input + static_cast<size_type>(contexts[a]) * dim;
        const float* gx = input_grad + static_cast<size_type>(a) * dim;
#pragma omp simd
        for (int j = 0; j < dim; ++j) x[j] += gx[j];
    }
    for (int t = 0; t < n_targets; ++t) {
        float* y = output + static_cast<size_type>(targets[t]) * dim;
        const float* gy = output_grad + static_cast<size_type>(t) * dim;
#pragma omp simd
        for (int j = 0; j < dim; ++j) y[j] += gy[j];
    }
}

// Centres between two interrupt polls within a walk.
constexpr int kPollCentres = 16;

// One walk: drop padding and subsampled nodes, then a block update per centre
// with a reduced window drawn uniformly from 1..window (word2vec's weighting
// of near contexts), capped at `span` (no reach beyond the walk changes
// anything, so a huge window trains as the walk's length would). Returns the
// tokens kept.
int train_walk(const index_t* walk, int walk_length, const float* keep_probability,
               const float* noise_keep, const index_t* noise_alias, size_type n_nodes,
               float* input, float* output, int dim, const SgnsOptions& o, int span, float alpha, Rng& rng,
               SgnsScratch& s, ParallelWork& work) {
    int n = 0;
    for (int i = 0; i < walk_length && walk[i] >= 0; ++i) {
        if (keep_probability && keep_probability[walk[i]] < 1.0f &&
            rng.uniform() >= keep_probability[walk[i]])
            continue;
        s.tokens[n++] = walk[i];
    }
    const int n_targets = o.negative + 1;
    for (int i = 0; i < n; ++i) {
        if (i % kPollCentres == kPollCentres - 1 && work.stopped()) return n;
        const int drawn = o.window - static_cast<int>(rng.below(static_cast<std::uint32_t>(o.window)));
        const int reach = std::min(drawn, span);
        int m = 0;
        for (int j = std::max(0, i - reach); j < std::min(n, i + reach + 1); ++j)
            if (j != i) s.contexts[m++] = s.tokens[j];
        if (m == 0) continue;
        s.targets[0] = s.tokens[i];
        for (int t = 1; t < n_targets; ++t)
            s.targets[t] = static_cast<index_t>(alias_draw(noise_keep, noise_alias, n_nodes, rng.next()));
        update_block(s.contexts.data(), m, s.targets.data(), n_targets, input, output, dim, alpha,
                     s.scores.data(), s.input_grad.data(), s.output_grad.data(), s.context_rows.data(),
                     s.target_rows.data());
    }
    return n;
}

}  // namespace

std::int64_t train_sgns(const index_t* walks, size_type n_walks, int walk_length,
                        const float* keep_probability, const float* noise_keep,
                        const index_t* noise_alias, size_type n_nodes, float* input,
                        float* output, int dim, const SgnsOptions& o, std::uint64_t first_walk,
                        std::uint64_t total_walks, int n_threads) {
    if (walk_length < 1 || dim < 1 || o.window < 1 || o.negative < 0 || n_nodes < 1)
        throw std::invalid_argument("train_sgns: walk_length, dim, window and n_nodes must be >= 1, negative >= 0");
    std::int64_t trained = 0;
    const int span = std::max(1, std::min(o.window, walk_length - 1));
    const double total = static_cast<double>(std::max<std::uint64_t>(total_walks, 1));
    ParallelWork work;
#pragma omp parallel num_threads(resolve_threads(n_threads)) reduction(+ : trained)
    {
        SgnsScratch scratch;
        work.run([&] { scratch.allocate(walk_length, span, o.negative, dim); });
#pragma omp for schedule(dynamic, 16)
        for (size_type w = 0; w < n_walks; ++w) {
            work.run([&] {
                const std::uint64_t global = first_walk + static_cast<std::uint64_t>(w);
                const double progress = std::min(1.0, static_cast<double>(global) / total);
                const float alpha = static_cast<float>(o.alpha - (o.alpha - o.min_alpha) * progress);
                Rng rng(o.seed, global);
                trained += train_walk(walks + w * walk_length, walk_length, keep_probability, noise_keep,
                                      noise_alias, n_nodes, input, output, dim, o, span, alpha, rng, scratch,
                                      work);
            });
        }
    }
    work.finish();
    return trained;
}

}  // namespace latentcore
