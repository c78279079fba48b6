#!/usr/bin/env python
"""t-SNE maps: latentcore against openTSNE (FFT) and scikit-learn (Barnes-Hut).

Same data (n points of a 10-blob Gaussian mixture in 50 dims, fixed seed),
same perplexity (30), same 750 iterations (250 with early exaggeration 12 and
momentum 0.5, then momentum 0.8), same PCA initialization rule, same thread
count, in one process. Each peer's time includes its k-NN search and
affinities, as a user meets them: openTSNE with its default Annoy index,
latentcore with its exact k-NN. The table gives times, openTSNE / latentcore
and sklearn / latentcore ratios and each final KL divergence.

    python bench/bench_tsne.py --sizes 20000,70000 --threads 2 --append bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from common import append_section, int_list, machine_section, table, timed

N_DIMS = 50
N_BLOBS = 10


def make_blobs(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((N_BLOBS, N_DIMS)).astype(np.float32) * 4.0
    labels = rng.integers(0, N_BLOBS, n)
    return centres[labels] + rng.standard_normal((n, N_DIMS), dtype=np.float32)


def run_latentcore(X, threads):
    import latentcore

    tsne = latentcore.TSNE(perplexity=30, n_iter=750, random_state=0, n_jobs=threads)
    tsne.fit(X)
    return tsne.kl_divergence_


def run_opentsne(X, threads):
    import openTSNE

    emb = openTSNE.TSNE(perplexity=30, early_exaggeration_iter=250, n_iter=500, initial_momentum=0.5,
                        final_momentum=0.8, negative_gradient_method="fft", n_jobs=threads,
                        random_state=0).fit(X)
    return float(emb.kl_divergence)


def run_sklearn(X, threads):
    from sklearn.manifold import TSNE

    tsne = TSNE(perplexity=30, max_iter=750, init="pca", learning_rate="auto", method="barnes_hut",
                random_state=0, n_jobs=threads)
    tsne.fit(X)
    return float(tsne.kl_divergence_)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int_list, default=[20000, 70000])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sklearn-max-n", type=int, default=20000)
    p.add_argument("--append", metavar="FILE")
    args = p.parse_args(argv)
    import openTSNE

    warm = make_blobs(500)
    for fn in (run_latentcore, run_opentsne):  # imports, thread pools, numba/JIT caches
        timed(fn, warm, args.threads, threads=args.threads)
    rows = []
    for n in args.sizes:
        X = make_blobs(n)
        ours, ours_kl = timed(run_latentcore, X, args.threads, threads=args.threads)
        print(f"n={n}: latentcore {ours:.1f} s, KL {ours_kl:.4f}", file=sys.stderr)
        theirs, theirs_kl = timed(run_opentsne, X, args.threads, threads=args.threads)
        print(f"n={n}: openTSNE {theirs:.1f} s, KL {theirs_kl:.4f}", file=sys.stderr)
        sk = sk_kl = None
        if n <= args.sklearn_max_n:
            sk, sk_kl = timed(run_sklearn, X, args.threads, threads=args.threads)
            print(f"n={n}: sklearn {sk:.1f} s, KL {sk_kl:.4f}", file=sys.stderr)
        sk_cells = ["—", "—", "—"] if sk is None else [f"{sk:.1f}", f"{sk_kl:.4f}", f"{sk / ours:.2f}"]
        rows.append([str(n), f"{ours:.1f}", f"{ours_kl:.4f}", f"{theirs:.1f}", f"{theirs_kl:.4f}",
                     f"{theirs / ours:.2f}", *sk_cells])
    text = table(["n", "latentcore s", "KL", "openTSNE s", "KL", "openTSNE / latentcore", "sklearn BH s", "KL",
                  "sklearn / latentcore"], rows)
    notes = (f"- {N_BLOBS}-blob Gaussian mixture in {N_DIMS} dims (seed 0), perplexity 30, 750 iterations "
             f"(250 early exaggeration 12, momentum 0.5 then 0.8), FFT gradients for latentcore and openTSNE "
             f"{openTSNE.__version__} (Annoy k-NN, as default), Barnes-Hut for sklearn; "
             f"{args.threads} threads each; k-NN and affinity time included; one run each")
    print(text)
    if args.append:
        append_section(args.append, "t-SNE: latentcore vs openTSNE and scikit-learn",
                       machine_section(args.threads) + "\n\n" + text + "\n\n" + notes)


if __name__ == "__main__":
    main()
