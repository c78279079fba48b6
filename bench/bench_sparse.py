#!/usr/bin/env python
"""Sparse coding over a fixed dictionary: latentcore against scikit-learn and SPAMS.

Same data for every peer, same thread count, one process: n signals of d
dims, unit-norm Gaussian atoms (n_atoms of them), each signal a sum of k atoms
with magnitudes 1-2 and random signs plus noise sigma = 0.01 (fixed seed).

- OMP with k atoms per signal: latentcore.sparse_encode(method="omp"),
  sklearn orthogonal_mp_gram (Gram and correlations precomputed, not timed;
  run on --sklearn-n signals, its rate extrapolated), spams.omp (float64,
  Fortran order, signals as columns: the conversion is not timed).
- LASSO at --alpha (scikit-learn's scaling: ||x - D^T c||^2 / (2 d) + alpha
  |c|_1; SPAMS's lambda1 = alpha * d): latentcore (duality-gap tol 1e-4),
  sklearn Lasso(fit_intercept=False, tol=1e-4) one signal at a time on
  --sklearn-n signals, spams.lasso(mode=2). The mean objective of each is
  reported: a faster peer must also be as accurate.

- TopK SAE training (--sae-n samples of the same signals, --latents, --sae-k,
  --batch, Adam, AuxK on): latentcore.TopKSAE against the same model written
  plainly in PyTorch on the CPU (torch.set_num_threads = --threads): the
  encoder GEMM, torch.topk, ReLU, then the decoder either dense (codes
  scattered into a (batch, latents) matrix, as OpenAI's reference
  implementation) or through F.embedding_bag (EleutherAI sparsify's CPU
  path), autograd, the same AuxK, tangent projection, torch.optim.Adam and
  renormalization. Same initialization, same batches in the same order, same
  learning rate; the FVU over the last 5 batches shows the results are equal.

- Online dictionary learning (--dl-n signals of --dl-d dims, --dl-atoms
  planted atoms, --dl-k per signal, noise 0.01, --dl-epochs passes, batches
  of 256): latentcore.DictionaryLearning (OMP coder, k atoms per code)
  against sklearn MiniBatchDictionaryLearning (its LASSO coder at
  --dl-alpha, the value that recovered the most atoms among 0.05, 0.2 and 1
  on this data), with the fraction of planted atoms recovered (max |cosine|
  >= 0.9).

Issue 14's tables (each alone with --only NAME; --only takes a comma-separated list):

- lasso-grid: LASSO on the same planted signals over a log grid of --n-grid
  alphas from alpha_max (the smallest alpha that zeroes every code: the
  largest |D x| / n_features over signals and atoms; kept on the grid unless
  --grid-skip-max) down to alpha_max / 100: latentcore sparse_encode
  "lasso" (and "lars" where the library has it), spams.lasso(mode=2,
  lambda1=alpha*d), sklearn Lasso per signal on --sklearn-n signals. Mean
  objective over the first --sklearn-n signals (the ones every peer coded),
  mean nonzeros, and the ratio SPAMS time / latentcore time at each alpha.
- path: the whole grid (--n-path alphas, alpha_max .. alpha_max/100) for
  --path-n signals: latentcore.lasso_path (method "lars" and "cd") against
  sklearn lasso_path and lars_path one signal at a time (--path-sklearn-n
  signals, extrapolated) and spams.lasso once per alpha on all signals; the
  codes compared through their objectives at every alpha of the grid.
- omp-sizes: OMP over (atoms, dims, k) dictionaries (--omp-sizes), planted
  signals with k true atoms, latentcore sparse_encode("omp", n_nonzero=k)
  against spams.omp(L=k); each run in a fresh subprocess (same seed: same
  data), with its peak RSS; SPAMS skipped where its float64 Gram matrix
  (atoms^2 * 8 bytes) exceeds --memory-cap, and every child stopped if its
  RSS passes --memory-cap.
- sae-sizes: TopKSAE against the plain PyTorch model above at (dims,
  latents, k) sizes (--sae-sizes), batch --batch, one pass over
  --sae-samples planted signals per size.

Rates are signals (samples) per second; ratios peer time / latentcore time at equal work.

    python bench/bench_sparse.py --append bench/RESULTS.md
    python bench/bench_sparse.py --n 5000 --sklearn-n 200 --only encode,sae,dl     # smoke test
    python bench/bench_sparse.py --only lasso-grid --n 500 --sklearn-n 20 --n-grid 2
    python bench/bench_sparse.py --only path --path-n 200 --path-sklearn-n 3 --n-path 5
    python bench/bench_sparse.py --only omp-sizes --omp-sizes 1024x256x16 --omp-n 2000
    python bench/bench_sparse.py --only sae-sizes --sae-sizes 256x1024x16 --sae-samples 2048 --batch 256
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

# The environment as the user gave it: the OMP children run with it (importing
# latentcore sets OMP_WAIT_POLICY=PASSIVE in os.environ, which they would inherit).
START_ENV = dict(os.environ)
if "--_omp-child" not in sys.argv:
    # SPAMS's wheel loads an OpenMP runtime of its own, which reads OMP_WAIT_POLICY as it
    # loads: imported before latentcore it keeps its default (spinning) policy, as when used
    # alone; imported after, it sleeps like latentcore's threads (its OMP 15-20% slower).
    try:
        __import__("spams")
    except ImportError:
        pass

import numpy as np
import scipy.sparse
from threadpoolctl import threadpool_limits

from common import (append_section, int_list, log, machine_section, peak_rss_mb, planted, planted_sparse,
                    reset_peak_rss, rss_mb, size_list, table, timed)


def support_recovery(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.all((found != 0) == (truth != 0), axis=1)))


def lasso_objective(codes: np.ndarray, X: np.ndarray, D: np.ndarray, alpha: float) -> float:
    residual = X.astype(np.float64) - codes @ D.astype(np.float64)
    return float(np.mean((residual**2).sum(axis=1) / (2 * X.shape[1]) + alpha * np.abs(codes).sum(axis=1)))


def omp_rows(X, D, truth, k, args):
    import latentcore
    from sklearn.linear_model import orthogonal_mp_gram

    rows = []
    sparse_encode = latentcore.sparse_encode
    sparse_encode(X[:100], D, n_nonzero=k, n_jobs=args.threads)  # warm-up
    t, codes = timed(lambda: sparse_encode(X, D, n_nonzero=k, n_jobs=args.threads))
    rows.append(("latentcore sparse_encode(omp)", X.shape[0] / t, t, support_recovery(codes.toarray(), truth)))
    m = args.sklearn_n
    D64 = D.astype(np.float64)
    gram, xy = D64 @ D64.T, D64 @ X[:m].astype(np.float64).T
    t_sk, ref = timed(lambda: orthogonal_mp_gram(gram, xy, n_nonzero_coefs=k))
    rows.append(("sklearn orthogonal_mp_gram", m / t_sk, t_sk * X.shape[0] / m, support_recovery(ref.T, truth[:m])))
    try:
        import spams
    except ImportError:
        return rows
    Xf, Df = np.asfortranarray(X.T.astype(np.float64)), np.asfortranarray(D64.T)
    t_sp, sp = timed(lambda: spams.omp(Xf, Df, L=k, numThreads=args.threads))
    rows.append(("SPAMS omp", X.shape[0] / t_sp, t_sp, support_recovery(sp.T.toarray(), truth)))
    return rows


def lasso_rows(X, D, alpha, args):
    import latentcore
    from sklearn.linear_model import Lasso

    rows = []
    latentcore.sparse_encode(X[:100], D, method="lasso", alpha=alpha, n_jobs=args.threads)
    t, codes = timed(lambda: latentcore.sparse_encode(X, D, method="lasso", alpha=alpha, n_jobs=args.threads))
    codes = codes.toarray()
    rows.append(("latentcore sparse_encode(lasso)", X.shape[0] / t, t, lasso_objective(codes, X, D, alpha),
                 float(np.mean(codes != 0) * D.shape[0])))
    m = args.sklearn_n
    design = D.T.astype(np.float64)
    model = Lasso(alpha=alpha, fit_intercept=False, tol=1e-4)
    t_sk, ref = timed(lambda: np.array([model.fit(design, x.astype(np.float64)).coef_ for x in X[:m]]))
    rows.append(("sklearn Lasso (one signal per fit)", m / t_sk, t_sk * X.shape[0] / m,
                 lasso_objective(ref, X[:m], D, alpha), float(np.mean(ref != 0) * D.shape[0])))
    try:
        import spams
    except ImportError:
        return rows
    Xf, Df = np.asfortranarray(X.T.astype(np.float64)), np.asfortranarray(design)
    t_sp, sp = timed(lambda: spams.lasso(Xf, D=Df, lambda1=alpha * X.shape[1], mode=2, numThreads=args.threads))
    sp = sp.T.toarray()
    rows.append(("SPAMS lasso (mode 2)", X.shape[0] / t_sp, t_sp, lasso_objective(sp, X, D, alpha),
                 float(np.mean(sp != 0) * D.shape[0])))
    return rows


class TorchTopKSAE:
    """The plain PyTorch TopK SAE the goal is measured against (see the module docstring)."""

    def __init__(self, torch, decoder, pre_bias, k, lr, k_aux, aux_coef, dead_after, embedding_bag):
        self.torch, self.k, self.k_aux, self.aux_coef, self.dead_after = torch, k, k_aux, aux_coef, dead_after
        self.embedding_bag = embedding_bag
        t = lambda a: torch.tensor(a, requires_grad=True)  # noqa: E731
        self.encoder, self.decoder = t(decoder.copy()), t(decoder.copy())
        self.encoder_bias, self.pre_bias = t(np.zeros(decoder.shape[0], np.float32)), t(pre_bias.copy())
        self.params = [self.encoder, self.encoder_bias, self.decoder, self.pre_bias]
        self.opt = torch.optim.Adam(self.params, lr=lr)
        self.last_fired = torch.zeros(decoder.shape[0], dtype=torch.int64)
        self.seen = 0

    def decode(self, values, index):
        F = self.torch.nn.functional
        if self.embedding_bag:
            return F.embedding_bag(index, self.decoder, per_sample_weights=values, mode="sum")
        codes = self.torch.zeros(values.shape[0], self.decoder.shape[0]).scatter(1, index, values)
        return codes @ self.decoder

    def step(self, x):
        torch = self.torch
        centered = x - self.pre_bias
        pre = centered @ self.encoder.T + self.encoder_bias
        values, index = pre.topk(self.k, dim=1)
        values = torch.relu(values)
        recon = self.decode(values, index) + self.pre_bias
        total = ((x - x.mean(0)) ** 2).sum()
        loss = ((recon - x) ** 2).sum() / total
        self.seen += x.shape[0]
        with torch.no_grad():
            self.last_fired[index[values > 0]] = self.seen
            dead = torch.nonzero(self.seen - self.last_fired > self.dead_after).ravel()
        if len(dead):
            aux_values, aux_local = pre[:, dead].topk(min(self.k_aux, len(dead)), dim=1)
            residual = (x - recon).detach()
            aux = self.decode(torch.relu(aux_values), dead[aux_local])
            loss = loss + self.aux_coef * ((aux - residual) ** 2).sum() / ((residual - residual.mean(0)) ** 2).sum()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            g, w = self.decoder.grad, self.decoder
            g -= (g * w).sum(1, keepdim=True) * w
        self.opt.step()
        with torch.no_grad():
            self.decoder /= self.decoder.norm(dim=1, keepdim=True)
        return float(((recon - x) ** 2).sum().detach() / total)


def sae_rows(X, args):
    """(rows, h): see sae_compare."""
    return sae_compare(X[:args.sae_n], args.latents, args.sae_k, args.batch, args.sae_epochs, args.threads,
                       ("dense", "embedding_bag"))


TORCH_DECODERS = {"dense": ("PyTorch CPU, dense decoder", False),
                  "embedding_bag": ("PyTorch CPU, embedding_bag decoder", True)}


def sae_compare(X, latents, k, batch, epochs, threads, decoders):
    """latentcore.TopKSAE and the plain PyTorch model (one row per decoder in
    ``decoders``) trained on the same batches from the same start: rows
    (name, samples/s, seconds, FVU mean over the first h batches, over the
    last h), and h = min(5, batches)."""
    import latentcore

    samples = X.shape[0] * epochs
    h = min(5, -(-X.shape[0] // batch) * epochs)
    small = min(latents, 256)  # warm-ups on a small model: thread pools and first calls out of the timings
    latentcore.TopKSAE(small, min(k, 8), batch_size=256, n_epochs=1, shuffle=False, random_state=0,
                       n_jobs=threads).fit(X[:512])
    sae = latentcore.TopKSAE(latents, k, batch_size=batch, n_epochs=epochs,
                             shuffle=False, random_state=0, n_jobs=threads)
    t, _ = timed(sae.fit, X)
    fvu = sae.history_["fvu"]
    rows = [("latentcore TopKSAE", samples / t, t, float(np.mean(fvu[:h])), float(np.mean(fvu[-h:])))]
    lr, dead_after = sae._learning_rate(), sae._dead_after()
    del sae, fvu
    gc.collect()
    try:
        import torch
    except ImportError:
        return rows, h
    torch.set_num_threads(threads)

    def initial_decoder(n):
        """latentcore's initialization, recomputed: the same start."""
        rng = np.random.default_rng(0)
        decoder = rng.standard_normal((n, X.shape[1])).astype(np.float32)
        return decoder / np.linalg.norm(decoder, axis=1, keepdims=True)

    for name, embedding_bag in (TORCH_DECODERS[d] for d in decoders):
        TorchTopKSAE(torch, initial_decoder(small), X[:256].mean(axis=0), min(k, 8), lr, X.shape[1] // 2, 1 / 32,
                     dead_after, embedding_bag).step(torch.from_numpy(X[:256]))  # warm-up
        batches = [torch.from_numpy(X[i:i + batch]) for i in range(0, X.shape[0], batch)]
        gc.collect()
        start = time.perf_counter()  # the initialization timed too, as latentcore's fit times its own
        model = TorchTopKSAE(torch, initial_decoder(latents), X[:batch].mean(axis=0), k, lr, X.shape[1] // 2,
                             1 / 32, dead_after, embedding_bag)
        fvu = [model.step(b) for _ in range(epochs) for b in batches]
        t_torch = time.perf_counter() - start
        rows.append((name, samples / t_torch, t_torch, float(np.mean(fvu[:h])), float(np.mean(fvu[-h:]))))
        del model, batches
        gc.collect()
    return rows, h


def dictionary_rows(args):
    import latentcore
    from latentcore.metrics import atom_recovery
    from sklearn.decomposition import MiniBatchDictionaryLearning

    X, D, _ = planted(args.dl_n, args.dl_d, args.dl_atoms, args.dl_k, seed=1)
    samples = args.dl_n * args.dl_epochs
    dl = latentcore.DictionaryLearning(args.dl_atoms, n_nonzero=args.dl_k, n_epochs=args.dl_epochs, random_state=0,
                                       n_jobs=args.threads)
    t, _ = timed(lambda: dl.fit(X))
    rows = [("latentcore DictionaryLearning (OMP)", samples / t, t,
             float(np.mean(atom_recovery(dl.components_, D) >= 0.9)))]
    sk = MiniBatchDictionaryLearning(args.dl_atoms, alpha=args.dl_alpha, batch_size=256, max_iter=args.dl_epochs,
                                     random_state=0, n_jobs=args.threads)
    t_sk, _ = timed(lambda: sk.fit(X))
    rows.append(("sklearn MiniBatchDictionaryLearning", samples / t_sk, t_sk,
                 float(np.mean(atom_recovery(sk.components_.astype(np.float32), D) >= 0.9))))
    return rows


def rate_table(head, rows, base_seconds):
    """Rows (name, rate, seconds, *measures) as a markdown table, time relative to base_seconds."""
    return table(head, [[name, f"{rate:,.0f}", f"{seconds:.2f}", f"{seconds / base_seconds:.2f}",
                         *(f"{v:.6g}" for v in rest)] for name, rate, seconds, *rest in rows])


# ---------------------------------------------------------------- issue 14: LASSO over an alpha grid

def objectives(codes, X: np.ndarray, D64: np.ndarray, alpha: float) -> np.ndarray:
    """Each signal's LASSO objective ||x - c D||^2 / (2 d) + alpha |c|_1 in
    float64; codes (n, n_atoms) dense or sparse."""
    if scipy.sparse.issparse(codes):
        codes = scipy.sparse.csr_array(codes, dtype=np.float64)
        l1 = np.asarray(abs(codes).sum(axis=1)).ravel()
    else:
        codes = np.asarray(codes, np.float64)
        l1 = np.abs(codes).sum(axis=1)
    residual = X.astype(np.float64) - codes @ D64
    return np.einsum("ij,ij->i", residual, residual) / (2 * X.shape[1]) + alpha * l1


def alpha_max(X: np.ndarray, D: np.ndarray, chunk: int = 8192) -> float:
    """The smallest alpha (sklearn scaling) at which every code of X is zero:
    max over signals and atoms of |D x| / n_features, in float64."""
    D64 = D.astype(np.float64)
    return max(float(np.abs(X[i:i + chunk].astype(np.float64) @ D64.T).max()) for i in range(0, len(X), chunk)) \
        / X.shape[1]


def alpha_grid(top: float, points: int, skip_top: bool = False) -> np.ndarray:
    """``points`` log-spaced alphas from top down to top / 100 (descending);
    with skip_top, the same spacing without top itself."""
    return np.geomspace(top, top / 100, points + 1)[1:] if skip_top else np.geomspace(top, top / 100, points)


def has_method(method: str) -> bool:
    """Whether latentcore.sparse_encode accepts ``method`` (e.g. "lars", added by issue 14)."""
    import latentcore

    rng = np.random.default_rng(0)
    D = rng.standard_normal((8, 4)).astype(np.float32)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    try:
        latentcore.sparse_encode(D[:2], D, method=method, alpha=0.1, n_jobs=1)
    except ValueError as e:
        if "method" not in str(e):
            log(f"sparse_encode(method={method!r}) fails on a tiny problem, left out: {e}")
        return False
    return True


def try_import_spams():
    try:
        import spams
    except ImportError:
        return None
    return spams


def sklearn_codes(X: np.ndarray, D: np.ndarray, alpha: float) -> np.ndarray:
    """sklearn Lasso(fit_intercept=False, tol=1e-4), one fit per signal: dense (len(X), n_atoms) float64."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import Lasso

    design = np.asfortranarray(D.T.astype(np.float64))
    model = Lasso(alpha=alpha, fit_intercept=False, tol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return np.array([model.fit(design, x.astype(np.float64)).coef_ for x in X]).reshape(len(X), D.shape[0])


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def median_ratio(ratios: list[float]) -> tuple[float, str]:
    """The ratio at the grid's median alpha: the middle point of an odd grid;
    of an even grid, the geometric mean of the two middle points' ratios."""
    n = len(ratios)
    if n % 2:
        return ratios[n // 2], f"point {n // 2 + 1} of {n}"
    return float(np.sqrt(ratios[n // 2 - 1] * ratios[n // 2])), f"geometric mean of points {n // 2} and {n // 2 + 1}"


def lasso_grid_section(X, D, args) -> list[str]:
    import latentcore

    spams = try_import_spams()
    n, d = X.shape
    top = alpha_max(X, D)
    grid = alpha_grid(top, args.n_grid, args.grid_skip_max)
    m = min(args.sklearn_n, n) if args.sklearn_n > 0 else n  # the signals every peer codes
    D64 = D.astype(np.float64)
    methods = ["lasso"] + (["lars"] if has_method("lars") else [])
    Xf, Df = np.asfortranarray(X.T.astype(np.float64)), np.asfortranarray(D64.T)  # SPAMS's input, untimed
    names = [f"latentcore {mth}" for mth in methods] + (["SPAMS"] if spams else []) + \
        (["sklearn"] if args.sklearn_n > 0 else [])
    for mth in methods:  # warm-ups
        latentcore.sparse_encode(X[:100], D, method=mth, alpha=float(grid[len(grid) // 2]), n_jobs=args.threads)
    if spams:
        spams.lasso(Xf[:, :100], D=Df, lambda1=float(grid[len(grid) // 2]) * d, mode=2, numThreads=args.threads)
    rows, ratios = [], {mth: [] for mth in methods}
    for alpha in grid:
        alpha = float(alpha)
        seconds, obj, nnz = {}, {}, {}
        for mth in methods:
            log(f"lasso-grid: alpha={alpha:.4g} latentcore {mth}")
            t, codes = timed(lambda: latentcore.sparse_encode(X, D, method=mth, alpha=alpha, n_jobs=args.threads))
            name = f"latentcore {mth}"
            seconds[name], nnz[name] = t, codes.nnz / n
            obj[name] = float(np.mean(objectives(codes[:m], X[:m], D64, alpha)))
            del codes
        if spams:
            log(f"lasso-grid: alpha={alpha:.4g} SPAMS")
            t, codes = timed(lambda: spams.lasso(Xf, D=Df, lambda1=alpha * d, mode=2, numThreads=args.threads))
            codes = scipy.sparse.csr_array(codes.T)
            seconds["SPAMS"], nnz["SPAMS"] = t, codes.nnz / n
            obj["SPAMS"] = float(np.mean(objectives(codes[:m], X[:m], D64, alpha)))
            del codes
        if args.sklearn_n > 0:
            log(f"lasso-grid: alpha={alpha:.4g} sklearn ({m} signals)")
            t, codes = timed(lambda: sklearn_codes(X[:m], D, alpha))
            seconds["sklearn"], nnz["sklearn"] = t * n / m, float(np.count_nonzero(codes)) / m
            obj["sklearn"] = float(np.mean(objectives(codes, X[:m], D64, alpha)))
        best = min(obj.values())
        for mth in methods:
            ratios[mth].append(seconds["SPAMS"] / seconds[f"latentcore {mth}"] if spams else float("nan"))
        rows.append([f"{alpha:.4g}", f"{alpha / top:.3g}",
                     *(f"{n / seconds[x]:,.0f}" for x in names),
                     *(f"{r[-1]:.2f}" if spams else "—" for r in ratios.values()),
                     *(f"{obj[x]:.7g} ({(obj[x] - best) / best:+.1e})" if best > 0 else f"{obj[x]:.7g}"
                       for x in names),
                     *(f"{nnz[x]:.2f}" for x in names)])
    short = {"latentcore lasso": "lc lasso", "latentcore lars": "lc lars", "SPAMS": "SPAMS", "sklearn": "sklearn"}
    head = ["α", "α/α_max", *(f"{short[x]} signals/s" for x in names),
            *(f"SPAMS / lc {mth}" for mth in methods),
            *(f"{short[x]} mean objective (rel. to best)" for x in names),
            *(f"{short[x]} mean nonzeros" for x in names)]
    notes = [f"α_max = {top:.6g} (max over the {n} signals and {D.shape[0]} atoms of |D x| / {d}): every code is "
             f"zero there; the grid {'starts one step below it' if args.grid_skip_max else 'includes it'}",
             "signals/s over all " + f"{n} signals; sklearn timed on the first {m}, its rate extrapolated"
             if args.sklearn_n > 0 else f"signals/s over all {n} signals",
             f"mean objective over the first {m} signals (every peer coded them), its relative difference to the "
             "lowest of the row in brackets; mean nonzeros per code over all the signals each coded",
             "SPAMS: spams.lasso(mode=2, lambda1=α·d), float64 Fortran input, signals as columns (conversion untimed); "
             "sklearn: Lasso(fit_intercept=False, tol=1e-4), one fit per signal; "
             "SPAMS / lc: SPAMS time over latentcore time (above 1: latentcore is faster)"]
    if spams:
        for mth in methods:
            r = ratios[mth]
            med, where = median_ratio(r)
            worst = int(np.argmin(r))
            notes.append(f"latentcore {mth} vs SPAMS: min ratio {r[worst]:.2f} (at α={grid[worst]:.4g}), "
                         f"{med:.2f} at the median α ({where}); goals ≥ 1x everywhere: {verdict(r[worst] >= 1)}, "
                         f"≥ 2x at the median: {verdict(med >= 2)}")
    else:
        notes.append("SPAMS not installed: no ratios")
    if "lars" not in methods:
        notes.append('sparse_encode(method="lars") not in this latentcore: its columns are missing')
    heading = (f"### LASSO over an α grid: {n} signals x {d} dims, {D.shape[0]} atoms, {args.k} true nonzeros, "
               f"noise 0.01; {len(grid)} log-spaced α from {grid[0]:.4g} to {grid[-1]:.4g} "
               f"(α_max = {top:.4g}{', skipped' if args.grid_skip_max else ''}, down to α_max/100), "
               f"sklearn scaling, {args.threads} threads")
    return [heading, table(head, rows, notes)]


# ---------------------------------------------------------------- issue 14: the whole path

def at_alphas(knots: np.ndarray, coefs: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """A LARS path (knot alphas descending, coefs (n_atoms, n_knots)) at each
    alpha of ``grid``: linear between knots, constant beyond the ends.
    Returns (len(grid), n_atoms)."""
    out = np.empty((len(grid), coefs.shape[0]))
    for j, a in enumerate(grid):
        if a >= knots[0]:
            out[j] = coefs[:, 0]
        elif a <= knots[-1]:
            out[j] = coefs[:, -1]
        else:
            i = int(np.searchsorted(-knots, -a))  # knots[i - 1] > a >= knots[i]
            span = knots[i - 1] - knots[i]
            w = (a - knots[i]) / span if span > 0 else 0.0
            out[j] = w * coefs[:, i - 1] + (1 - w) * coefs[:, i]
    return out


def path_section(X, D, args) -> list[str]:
    import latentcore
    from sklearn.linear_model import lars_path, lars_path_gram, lasso_path

    spams = try_import_spams()
    X = X[:args.path_n]
    n, d = X.shape
    top = alpha_max(X, D)
    grid = alpha_grid(top, args.n_path)
    m = min(args.path_sklearn_n, n)
    D64 = D.astype(np.float64)
    gram = D64 @ D64.T
    design = np.asfortranarray(D64.T)
    # name -> (seconds for n signals, signals timed, per-alpha mean objective over the first m, over all n or None)
    results, missing, extra = {}, [], []

    def mean_objectives(code_at, rows):  # code_at(j) -> codes of X[:rows] at grid[j]; None for no rows
        if not rows:
            return None
        return np.array([float(np.mean(objectives(code_at(j), X[:rows], D64, float(a)))) for j, a in enumerate(grid)])

    if hasattr(latentcore, "lasso_path"):
        for method in ("lars", "cd"):
            name = f"latentcore lasso_path(method={method!r})"
            try:
                latentcore.lasso_path(X[:10], D, alphas=grid[:3], method=method, n_jobs=args.threads)  # warm-up
            except (ValueError, TypeError) as e:
                missing.append(f"{name}: {type(e).__name__}: {e}")
                continue
            log(f"path: {name}")
            t, (alphas, codes) = timed(lambda: latentcore.lasso_path(X, D, alphas=grid, method=method,
                                                                     n_jobs=args.threads))
            if not np.allclose(alphas, grid, rtol=1e-12, atol=0):
                extra.append(f"{name} returned other alphas than the grid given (max rel. difference "
                             f"{np.max(np.abs(alphas - grid) / grid):.1e})")
            results[name] = (t, n, mean_objectives(lambda j: codes[j][:m], m), mean_objectives(lambda j: codes[j], n))
            del codes
    else:
        missing.append("latentcore.lasso_path: not in this latentcore")

    if hasattr(latentcore, "lars_path") and m:
        name = "latentcore lars_path (one signal per call)"
        latentcore.lars_path(X[0], D, alpha_min=float(grid[-1]))  # warm-up
        log(f"path: {name} ({m} signals)")
        t, paths = timed(lambda: [latentcore.lars_path(x, D, alpha_min=float(grid[-1])) for x in X[:m]])
        codes = np.stack([at_alphas(np.asarray(a, np.float64), np.asarray(c, np.float64), grid) for a, _, c in paths])
        results[name] = (t * n / m, m, mean_objectives(lambda j: codes[:, j], m), None)
        ours_knots = [np.asarray(a, np.float64) for a, _, _ in paths]

    if m:
        name = "sklearn lasso_path (one signal per call)"
        log(f"path: {name} ({m} signals)")
        t, coefs = timed(lambda: [lasso_path(design, x.astype(np.float64), alphas=grid)[1] for x in X[:m]])
        codes = np.stack(coefs).transpose(0, 2, 1)  # (m, n_alphas, n_atoms)
        results[name] = (t * n / m, m, mean_objectives(lambda j: codes[:, j], m), None)

        name = "sklearn lars_path(method='lasso') (one signal per call)"
        log(f"path: {name} ({m} signals)")
        t, paths = timed(lambda: [lars_path(design, x.astype(np.float64), method="lasso", alpha_min=float(grid[-1]))
                                  for x in X[:m]])
        codes = np.stack([at_alphas(a, c, grid) for a, _, c in paths])
        results[name] = (t * n / m, m, mean_objectives(lambda j: codes[:, j], m), None)
        sk_knots = [a for a, _, _ in paths]

        name = "sklearn lars_path_gram(method='lasso') (Gram given, untimed)"
        log(f"path: {name} ({m} signals)")
        t, paths = timed(lambda: [lars_path_gram(Xy=D64 @ x.astype(np.float64), Gram=gram, n_samples=d,
                                                 method="lasso", alpha_min=float(grid[-1])) for x in X[:m]])
        codes = np.stack([at_alphas(a, c, grid) for a, _, c in paths])
        results[name] = (t * n / m, m, mean_objectives(lambda j: codes[:, j], m), None)
        if hasattr(latentcore, "lars_path"):
            same = sum(len(a) == len(b) for a, b in zip(ours_knots, sk_knots))
            gap = max((float(np.max(np.abs(a - b))) for a, b in zip(ours_knots, sk_knots) if len(a) == len(b)),
                      default=float("nan"))
            extra.append(f"latentcore lars_path vs sklearn lars_path knots: the same number of knots for {same} of "
                         f"{m} signals; where equal in number, max |α difference| = {gap / top:.1e} α_max")

    if spams:
        name = "SPAMS lasso (mode 2), once per α"
        Xf, Df = np.asfortranarray(X.T.astype(np.float64)), np.asfortranarray(D64.T)
        spams.lasso(Xf[:, :10], D=Df, lambda1=float(grid[len(grid) // 2]) * d, mode=2, numThreads=args.threads)
        log(f"path: {name}")
        total, common, every = 0.0, [], []
        for a in grid:
            t, codes = timed(lambda: spams.lasso(Xf, D=Df, lambda1=float(a) * d, mode=2, numThreads=args.threads))
            total += t
            obj = objectives(scipy.sparse.csr_array(codes.T), X, D64, float(a))
            common.append(float(np.mean(obj[:m])))
            every.append(float(np.mean(obj)))
        results[name] = (total, n, np.array(common) if m else None, np.array(every))
    else:
        missing.append("SPAMS: not installed")

    def best(column):
        objs = [r[column] for r in results.values() if r[column] is not None]
        return np.min(objs, axis=0) if objs else None

    best_common, best_all = best(2), best(3)
    ours = [r[0] for name, r in results.items() if name.startswith("latentcore lasso_path")]
    base = min(ours) if ours else None

    def rel(obj, lowest):
        if obj is None:
            return "—"
        with np.errstate(invalid="ignore", divide="ignore"):
            return f"{float(np.nanmax(np.where(lowest > 0, (obj - lowest) / lowest, 0.0))):.1e}"

    rows = [[name, f"{n / t:,.1f}", f"{t:.2f}", f"{t / base:.2f}" if base else "—", f"{timed_n}",
             rel(common, best_common), rel(every, best_all)] for name, (t, timed_n, common, every) in results.items()]
    head = ["implementation", "signals/s (whole path)", f"s for {n}", "time / fastest latentcore lasso_path",
            "signals timed", f"max over the grid of rel. objective diff to the best, first {m} signals",
            f"same, all {n} signals"]
    notes = [f"grid: {len(grid)} log-spaced α from α_max = {top:.6g} (every code zero) to α_max/100 = {grid[-1]:.6g}, "
             "sklearn scaling; SPAMS lambda1 = α·d",
             "one-signal-per-call rows timed on the first signals and extrapolated; sklearn lars_path stops at "
             "alpha_min = the smallest α of the grid, its knots interpolated (untimed) to the grid for the objective",
             "objective: the mean over signals at each α, relative to the lowest of all rows at that α, the largest "
             "over the grid", *extra, *missing]
    sk = [t for name, (t, *_rest) in results.items() if name.startswith("sklearn")]
    if base and sk:
        notes.append(f"goal ≥ 10x scikit-learn's path: {min(sk) / base:.1f}x its fastest path row: "
                     f"{verdict(min(sk) / base >= 10)}")
    heading = (f"### LASSO path: {n} signals x {d} dims, {D.shape[0]} atoms, {args.k} true nonzeros, noise 0.01; "
               f"{len(grid)} α from α_max = {top:.4g} to α_max/100, {args.threads} threads")
    return [heading, table(head, rows, notes)]


# ---------------------------------------------------------------- issue 14: OMP over dictionary sizes

def supports_recovered(codes, support: np.ndarray) -> float:
    """The fraction of signals whose nonzero atoms are exactly their planted ones."""
    codes = scipy.sparse.csr_array(codes)
    n, n_atoms = codes.shape
    nonzero = codes.data != 0
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(codes.indptr))[nonzero]
    found = rows * n_atoms + codes.indices[nonzero].astype(np.int64)
    truth = (np.arange(n, dtype=np.int64)[:, None] * n_atoms + support).ravel()
    ok = np.bincount(rows, minlength=n) == support.shape[1]
    ok[rows[~np.isin(found, truth)]] = False
    return float(ok.mean())


def child_rss_mb(pid: int) -> float:
    """Another process's resident set now, in MB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def omp_child(spec: dict) -> None:
    """One OMP run (``python bench_sparse.py --_omp-child JSON``): prints a JSON line."""
    impl, n, k, threads = spec["impl"], spec["n"], spec["k"], spec["threads"]
    if impl == "latentcore":
        import latentcore
    else:
        import spams
    X, D, support, _ = planted_sparse(n, spec["dims"], spec["atoms"], k, seed=spec["seed"])
    with threadpool_limits(threads):
        if impl == "latentcore":
            call = lambda: latentcore.sparse_encode(X, D, method="omp", n_nonzero=k, n_jobs=threads)  # noqa: E731
        else:
            Xf, Df = np.asfortranarray(X.T.astype(np.float64)), np.asfortranarray(D.T.astype(np.float64))
            del X, D
            call = lambda: spams.omp(Xf, Df, L=k, numThreads=threads)  # noqa: E731
        gc.collect()
        setup_peak, before = peak_rss_mb(), rss_mb()
        reset = reset_peak_rss()  # from here on, ru_maxrss is the call's peak
        t, codes = timed(call)
        call_peak = peak_rss_mb()
    codes = scipy.sparse.csr_array(codes if impl == "latentcore" else codes.T)
    print(json.dumps({"seconds": t, "before_mb": before, "call_peak_mb": call_peak if reset else None,
                      "peak_mb": max(setup_peak, call_peak), "recovered": supports_recovered(codes, support),
                      "nnz": codes.nnz / n}), flush=True)


def run_omp_child(impl, atoms, dims, k, n, args) -> dict:
    spec = {"impl": impl, "atoms": atoms, "dims": dims, "k": k, "n": n, "threads": args.threads, "seed": args.omp_seed,
            "cap": int(args.memory_cap * 1e9)}
    log(f"omp-sizes: {impl}, {atoms} atoms x {dims} dims, k={k}, {n} signals")
    # The parent watches the child's RSS (a thread in the child would wait for a GIL a peer may hold):
    # a run that would not fit is stopped before it pushes a shared machine into swap.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--_omp-child", json.dumps(spec)],
                                stdout=out, stderr=err, text=True, env=START_ENV)
        start, why = time.monotonic(), None
        while proc.poll() is None:
            if spec["cap"] and child_rss_mb(proc.pid) * 2**20 > spec["cap"]:
                why = f"stopped: its RSS passed --memory-cap {args.memory_cap:g} GB"
            elif time.monotonic() - start > args.omp_timeout:
                why = f"stopped: it ran past --omp-timeout {args.omp_timeout} s"
            if why:
                proc.kill()
                proc.wait()
                return {"error": why}
            time.sleep(0.02)
        out.seek(0)
        err.seek(0)
        lines = [line for line in out.read().splitlines() if line.startswith("{")]
        tail = [line for line in err.read().splitlines() if line.strip()]
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1])
    return {"error": (f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}")
            + (f": {tail[-1]}" if tail else "")}


def omp_sizes_section(args) -> list[str]:
    sizes = args.omp_sizes
    counts = args.omp_n * len(sizes) if len(args.omp_n) == 1 else args.omp_n
    if len(counts) != len(sizes):
        raise SystemExit(f"--omp-n: give one count, or one per size ({len(sizes)})")
    cap = args.memory_cap * 1e9
    rows, ratios, ran_64k = [], [], None
    for (atoms, dims, k), n in zip(sizes, counts):
        ours = run_omp_child("latentcore", atoms, dims, k, n, args)
        gram = atoms * atoms * 8
        if cap and gram > cap:
            peer = {"error": f"does not fit: its float64 Gram is {gram / 1e9:.3g} GB > --memory-cap "
                             f"{args.memory_cap:g} GB"}
        elif try_import_spams() is None:
            peer = {"error": "SPAMS not installed"}
        else:
            peer = run_omp_child("spams", atoms, dims, k, n, args)

        def cells(r):
            if "error" in r:
                return [r["error"], "—", "—", "—", "—"]
            call = "—" if r["call_peak_mb"] is None else f"{r['call_peak_mb']:,.0f}"
            return [f"{n / r['seconds']:,.0f} ({r['seconds']:.2f} s)", call, f"{r['before_mb']:,.0f}",
                    f"{r['peak_mb']:,.0f}", f"{r['recovered']:.4f}"]

        ratio = peer["seconds"] / ours["seconds"] if "seconds" in peer and "seconds" in ours else None
        if ratio is not None:
            ratios.append((atoms, ratio))
        if atoms == 65536:
            ran_64k = "seconds" in ours
        rows.append([f"{atoms:,}", str(dims), str(k), f"{n:,}", *cells(ours), *cells(peer),
                     f"{ratio:.2f}" if ratio is not None else "—"])
    head = ["atoms", "dims", "k", "signals", *(f"{who} {what}" for who in ("latentcore", "SPAMS") for what in (
            "signals/s (s)", "peak RSS in the call MB", "RSS before the call MB", "process peak RSS MB",
            "supports recovered")), "SPAMS / latentcore"]
    notes = ["each run alone in a fresh process (one cold call; a Gram matrix, where one is computed, inside it), the same planted data in "
             f"each (seed {args.omp_seed}): unit-norm Gaussian atoms, k atoms of magnitude 1-2 with random signs per "
             "signal, noise 0.01; latentcore sparse_encode(method='omp', n_nonzero=k) on float32, spams.omp(L=k) on "
             "float64 Fortran copies (made before the call: in SPAMS's 'RSS before')",
             "peak RSS in the call: the child's VmHWM, reset (/proc/self/clear_refs) just before the call, so it "
             "counts the data already resident (RSS before the call) plus what the call adds; process peak RSS: "
             "the same without the reset (data generation and imports included; not getrusage's ru_maxrss, which "
             "in a forked-then-exec'd child also counts the parent's RSS at the fork); "
             f"a child whose RSS passes --memory-cap ({args.memory_cap:g} GB) is stopped",
             "SPAMS / latentcore: SPAMS time over latentcore time (above 1: latentcore is faster)"]
    if ratios:
        low = min(ratios, key=lambda r: r[1])
        notes.append(f"goal ≥ 1.5x SPAMS at every size it runs: lowest {low[1]:.2f}x at {low[0]:,} atoms: "
                     f"{verdict(low[1] >= 1.5)}")
    if ran_64k is not None:
        notes.append(f"goal 65,536 atoms at all: {verdict(ran_64k)}")
    heading = (f"### OMP over dictionary sizes: (atoms, dims, k) in "
               f"{', '.join(f'({a}, {d}, {k})' for a, d, k in sizes)}; signals "
               f"{', '.join(f'{c:,}' for c in counts)}; {args.threads} threads")
    return [heading, table(head, rows, notes)]


# ---------------------------------------------------------------- issue 14: TopK SAE at three sizes

def sae_sizes_section(args) -> list[str]:
    sizes = args.sae_sizes
    counts = args.sae_samples * len(sizes) if len(args.sae_samples) == 1 else args.sae_samples
    if len(counts) != len(sizes):
        raise SystemExit(f"--sae-samples: give one count, or one per size ({len(sizes)})")
    decoders = [x.strip() for x in args.torch_decoders.split(",") if x.strip()]
    if not decoders or any(x not in TORCH_DECODERS for x in decoders):
        raise SystemExit(f"--torch-decoders: a comma-separated subset of {', '.join(TORCH_DECODERS)}")
    sections, goals = [], []
    for (dims, latents, k), samples in zip(sizes, counts):
        log(f"sae-sizes: {dims} dims, {latents} latents, k={k}, {samples} samples")
        atoms = max(latents // 4, args.sae_data_k)
        X, *_ = planted_sparse(samples, dims, atoms, args.sae_data_k, seed=2)
        rows, h = sae_compare(X, latents, k, args.batch, 1, args.threads, decoders)
        del X
        gc.collect()
        sections += [
            f"### TopK SAE training at {dims} dims, {latents:,} latents, k={k}: {samples:,} samples "
            f"({-(-samples // args.batch)} batches of {args.batch}), 1 epoch, Adam, AuxK, {args.threads} threads",
            rate_table(["implementation", "samples/s", "s", "time / latentcore", f"FVU, first {h} batches",
                        f"FVU, last {h} batches"], rows, rows[0][2])]
        if len(rows) > 1:
            fastest = min(r[2] for r in rows[1:])
            goals.append(f"{dims}/{latents}/{k}: {fastest / rows[0][2]:.2f}x the fastest PyTorch decoder "
                         f"({verdict(fastest / rows[0][2] >= 3.5)})")
    notes = [f"data: planted signals (latents/4 unit-norm Gaussian atoms of the given dims, {args.sae_data_k} per "
             "signal, magnitudes 1-2, noise 0.01, seed 2); the same initialization and batches in the same order "
             "for every implementation; FVU: mean over the first / last batches"]
    if goals:
        notes.append("goal ≥ 3.5x plain PyTorch at every size: " + "; ".join(goals))
    return sections + ["\n".join(f"- {x}" for x in notes)]


PARTS = ("encode", "sae", "dl", "lasso-grid", "path", "omp-sizes", "sae-sizes")


def parts(text: str) -> list[str]:
    chosen = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in chosen if x not in PARTS]
    if not chosen or bad:
        raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {', '.join(PARTS)}, got {text!r}")
    return chosen


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100_000, help="planted signals (encode, sae, lasso-grid; path's pool)")
    p.add_argument("--d", type=int, default=256)
    p.add_argument("--atoms", type=int, default=1024)
    p.add_argument("-k", type=int, default=16)
    p.add_argument("--alpha", type=float, default=0.002)
    p.add_argument("--sklearn-n", type=int, default=2000,
                   help="signals timed for sklearn (it is slow), encode and lasso-grid; 0: no sklearn in lasso-grid")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sae-n", type=int, default=81_920, help="samples the autoencoders train on")
    p.add_argument("--sae-epochs", type=int, default=4, help="passes over those samples")
    p.add_argument("--latents", type=int, default=4096)
    p.add_argument("--sae-k", type=int, default=32)
    p.add_argument("--batch", type=int, default=4096, help="SAE batch (sae and sae-sizes)")
    p.add_argument("--dl-n", type=int, default=20_000)
    p.add_argument("--dl-d", type=int, default=32)
    p.add_argument("--dl-atoms", type=int, default=64)
    p.add_argument("--dl-k", type=int, default=4)
    p.add_argument("--dl-epochs", type=int, default=10)
    p.add_argument("--dl-alpha", type=float, default=1.0)
    g = p.add_argument_group("lasso-grid and path")
    g.add_argument("--n-grid", type=int, default=7, help="lasso-grid: alphas from alpha_max to alpha_max/100")
    g.add_argument("--grid-skip-max", action="store_true",
                   help="lasso-grid: leave alpha_max (every code zero) out, keeping --n-grid points below it")
    g.add_argument("--n-path", type=int, default=100, help="path: alphas from alpha_max to alpha_max/100")
    g.add_argument("--path-n", type=int, default=5000, help="path: signals (the first of the planted ones)")
    g.add_argument("--path-sklearn-n", type=int, default=100,
                   help="path: signals timed for the one-signal-per-call rows (0: none)")
    g = p.add_argument_group("omp-sizes")
    g.add_argument("--omp-sizes", type=lambda t: size_list(t, 3),
                   default=[(1024, 256, 16), (4096, 512, 32), (16384, 768, 32), (65536, 256, 64)],
                   help="ATOMSxDIMSxK,... (default 1024x256x16,4096x512x32,16384x768x32,65536x256x64)")
    g.add_argument("--omp-n", type=int_list, default=[100_000, 10_000, 2_000, 1_000],
                   help="signals per size (one count for all, or one per size)")
    g.add_argument("--omp-seed", type=int, default=0)
    g.add_argument("--memory-cap", type=float, default=16.0,
                   help="GB: SPAMS skipped where its Gram exceeds it; any child stopped past it (0: no cap)")
    g.add_argument("--omp-timeout", type=int, default=1800, help="seconds per child")
    g = p.add_argument_group("sae-sizes")
    g.add_argument("--sae-sizes", type=lambda t: size_list(t, 3),
                   default=[(256, 4096, 32), (768, 16384, 64), (2048, 65536, 64)],
                   help="DIMSxLATENTSxK,... (default 256x4096x32,768x16384x64,2048x65536x64)")
    g.add_argument("--sae-samples", type=int_list, default=[65_536, 32_768, 12_288],
                   help="samples per size, one pass (one count for all, or one per size)")
    g.add_argument("--sae-data-k", type=int, default=16, help="planted atoms per sample of the SAE data")
    g.add_argument("--torch-decoders", default="dense,embedding_bag",
                   help="PyTorch variants for sae-sizes, comma-separated: dense, embedding_bag (default: both)")
    p.add_argument("--only", type=parts, default=None, metavar="PART[,PART...]",
                   help=f"run only these parts: {', '.join(PARTS)} (default: all)")
    p.add_argument("--append", default=None, metavar="FILE")
    p.add_argument("--_omp-child", dest="omp_child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.omp_child is not None:
        omp_child(json.loads(args.omp_child))
        return
    only = set(args.only or PARTS)
    sections = [machine_section(args.threads)]
    if only & {"encode", "sae", "lasso-grid", "path"}:
        X, D, truth = planted(max(args.n, args.path_n) if "path" in only else args.n, args.d, args.atoms, args.k)
        X_n, truth_n = X[:args.n], truth[:args.n]
    with threadpool_limits(args.threads):
        if "encode" in only:
            omp = omp_rows(X_n, D, truth_n, args.k, args)
            lasso = lasso_rows(X_n, D, args.alpha, args)
            sections += [
                f"### OMP, {args.n} signals x {args.d} dims, {args.atoms} atoms, k={args.k}, noise 0.01",
                rate_table(["implementation", "signals/s", f"s for {args.n}", "time / latentcore",
                            "supports recovered"], omp, omp[0][2]),
                f"### LASSO, alpha={args.alpha} (sklearn scaling), same signals",
                rate_table(["implementation", "signals/s", f"s for {args.n}", "time / latentcore", "mean objective",
                            "mean nonzeros"], lasso, lasso[0][2]),
                f"- sklearn timed on the first {args.sklearn_n} signals, its time scaled to {args.n}; "
                "SPAMS and sklearn take float64 (the conversion is not timed); "
                "time / latentcore above 1: latentcore is faster"]
        if "sae" in only:
            sae, h = sae_rows(X_n, args)
            sections += [
                f"### TopK SAE training, {min(args.sae_n, args.n)} samples x {args.d} dims, {args.sae_epochs} epochs, "
                f"{args.latents} latents, k={args.sae_k}, batch {args.batch}, Adam, AuxK",
                rate_table(["implementation", "samples/s", "s", "time / latentcore", f"FVU, first {h} batches",
                            f"FVU, last {h} batches"], sae, sae[0][2])]
        if "dl" in only:
            dl = dictionary_rows(args)
            sections += [
                f"### Online dictionary learning, {args.dl_n} signals x {args.dl_d} dims, {args.dl_atoms} planted atoms, "
                f"k={args.dl_k}, {args.dl_epochs} epochs",
                rate_table(["implementation", "samples/s", "s", "time / latentcore", "atoms recovered"], dl, dl[0][2])]
        if "lasso-grid" in only:
            sections += lasso_grid_section(X_n, D, args)
        if "path" in only:
            sections += path_section(X, D, args)
        if "omp-sizes" in only:
            sections += omp_sizes_section(args)
        if "sae-sizes" in only:
            sections += sae_sizes_section(args)
    body = "\n\n".join(sections)
    print(body)
    if args.append:
        append_section(args.append, "sparse coding: latentcore vs scikit-learn, SPAMS and PyTorch", body)


if __name__ == "__main__":
    main()
