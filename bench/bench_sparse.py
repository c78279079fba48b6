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

Rates are signals (samples) per second; ratios peer time / latentcore time at equal work.

    python bench/bench_sparse.py --append bench/RESULTS.md
    python bench/bench_sparse.py --n 5000 --sklearn-n 200          # smoke test
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from common import append_section, machine_section, planted, table, timed


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
        return float(((recon - x) ** 2).sum() / total)


def sae_rows(X, args):
    import latentcore

    X = X[:args.sae_n]
    samples = X.shape[0] * args.sae_epochs
    sae = latentcore.TopKSAE(args.latents, args.sae_k, batch_size=args.batch, n_epochs=args.sae_epochs,
                             shuffle=False, random_state=0, n_jobs=args.threads)
    t, _ = timed(lambda: sae.fit(X))
    first = float(np.mean(sae.history_["fvu"][:5]))
    rows = [("latentcore TopKSAE", samples / t, t, first, float(np.mean(sae.history_["fvu"][-5:])))]
    try:
        import torch
    except ImportError:
        return rows
    torch.set_num_threads(args.threads)
    # The same start as latentcore's: its initialization, recomputed.
    rng = np.random.default_rng(0)
    decoder = rng.standard_normal((args.latents, X.shape[1])).astype(np.float32)
    decoder /= np.linalg.norm(decoder, axis=1, keepdims=True)
    for name, embedding_bag in (("PyTorch CPU, dense decoder", False), ("PyTorch CPU, embedding_bag decoder", True)):
        model = TorchTopKSAE(torch, decoder, X[:args.batch].mean(axis=0), args.sae_k, sae._learning_rate(),
                             X.shape[1] // 2, 1 / 32, sae._dead_after(), embedding_bag)
        batches = [torch.from_numpy(X[i:i + args.batch]) for i in range(0, X.shape[0], args.batch)]
        start = time.perf_counter()
        fvu = [model.step(b) for _ in range(args.sae_epochs) for b in batches]
        t_torch = time.perf_counter() - start
        rows.append((name, samples / t_torch, t_torch, float(np.mean(fvu[:5])), float(np.mean(fvu[-5:]))))
    return rows


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--d", type=int, default=256)
    p.add_argument("--atoms", type=int, default=1024)
    p.add_argument("-k", type=int, default=16)
    p.add_argument("--alpha", type=float, default=0.002)
    p.add_argument("--sklearn-n", type=int, default=2000, help="signals timed for sklearn (it is slow)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sae-n", type=int, default=81_920, help="samples the autoencoders train on")
    p.add_argument("--sae-epochs", type=int, default=4, help="passes over those samples")
    p.add_argument("--latents", type=int, default=4096)
    p.add_argument("--sae-k", type=int, default=32)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--dl-n", type=int, default=20_000)
    p.add_argument("--dl-d", type=int, default=32)
    p.add_argument("--dl-atoms", type=int, default=64)
    p.add_argument("--dl-k", type=int, default=4)
    p.add_argument("--dl-epochs", type=int, default=10)
    p.add_argument("--dl-alpha", type=float, default=1.0)
    p.add_argument("--only", choices=["encode", "sae", "dl"], default=None, help="run one part of the benchmark")
    p.add_argument("--append", default=None, metavar="FILE")
    args = p.parse_args()
    X, D, truth = planted(args.n, args.d, args.atoms, args.k)
    sections = [machine_section(args.threads)]
    with threadpool_limits(args.threads):
        if args.only in (None, "encode"):
            omp = omp_rows(X, D, truth, args.k, args)
            lasso = lasso_rows(X, D, args.alpha, args)
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
        if args.only in (None, "sae"):
            sae = sae_rows(X, args)
            sections += [
                f"### TopK SAE training, {min(args.sae_n, args.n)} samples x {args.d} dims, {args.sae_epochs} epochs, "
                f"{args.latents} latents, k={args.sae_k}, batch {args.batch}, Adam, AuxK",
                rate_table(["implementation", "samples/s", "s", "time / latentcore", "FVU, first 5 batches",
                            "FVU, last 5 batches"], sae, sae[0][2])]
        if args.only in (None, "dl"):
            dl = dictionary_rows(args)
            sections += [
                f"### Online dictionary learning, {args.dl_n} signals x {args.dl_d} dims, {args.dl_atoms} planted atoms, "
                f"k={args.dl_k}, {args.dl_epochs} epochs",
                rate_table(["implementation", "samples/s", "s", "time / latentcore", "atoms recovered"], dl, dl[0][2])]
    body = "\n\n".join(sections)
    print(body)
    if args.append:
        append_section(args.append, "sparse coding: latentcore vs scikit-learn, SPAMS and PyTorch", body)


if __name__ == "__main__":
    main()
