#!/usr/bin/env python
"""GPU against CPU, area by area: the same public calls on cupy and on numpy arrays.

Each case runs latentcore's public API twice on the same data: from numpy
arrays (the C++ kernels, on every CPU core) and from cupy arrays (the CUDA
kernels). It checks that the GPU's answer agrees with the CPU's, and reports
the speed ratio CPU seconds / GPU seconds:

knn     latentcore.knn, exact k=15 all-pairs graph of 100k x 64 float32 points
        (a 50-cluster mixture), euclidean and cosine: recall of the CPU's
        neighbours >= 0.999 and distances equal (rtol 1e-4, atol 1e-5).
tsne    latentcore.TSNE on 20k points x 50 dims, 500 iterations (125 of early
        exaggeration): KL divergence within 3% and trustworthiness (k=10, on
        5000 sampled points) within 0.01. The affinities are built on the CPU
        either way, inside both times.
walks   latentcore.random_walks on a planted-partition graph (20k nodes in 20
        blocks, degree about 30), 10 walks of 40 nodes per node, p=q=1 and
        p=0.5, q=2, the graph as a cupyx CSR matrix: the share of walks equal
        bit for bit is shown (the two devices draw the same numbers); checked
        are the return rate (within 0.005), the visits per block (total
        variation <= 0.01) and every sampled GPU step being an edge.
skipgram latentcore.skipgram on the p=q=1 CPU walks (dim 64, window 5, 5
        negatives, 1 epoch): share of each node's 10 nearest (cosine) in its
        own block, GPU within 0.03 of the CPU.
sparse  latentcore.sparse_encode, 50k planted signals x 256 dims over 1024
        unit-norm atoms, 16 per signal, method omp and topk: the same support
        in >= 99.9% of the signals and codes within 1e-4 of the largest.
        (OMP runs on the host's cores for cupy input too: its ratio is ~1.)
sae     latentcore.TopKSAE(2048 latents, k=32), 40960 of those signals, batch
        4096, 3 epochs, no shuffling, same seed: the first batch's FVU (before
        any update) within 1e-3, the mean FVU of the last 5 batches within
        0.02 + 5%.

Timing: one warm-up call per device on small data first (module
load, kernel compilation, cuBLAS/cuFFT handles, cupy's memory pool), inputs
already on their device (host-device copies of the inputs are not timed,
copying the results back is not timed either); the GPU clock is read after
synchronizing the device; GPU: median of --repeats runs (one for t-SNE,
skip-gram and the SAE), CPU: one run. --scale shrinks every size.

The table goes to stdout and --markdown, the raw numbers to --json; both are
rewritten after every case, so a run cut short keeps what it finished.
Exit status 0 when every check passed, 1 when one failed or raised, 2 when
there is no GPU to compare (cupy missing, no CUDA device, or latentcore built
without CUDA), with a message saying which.

    python bench/bench_gpu.py                                  # ~1-2 min on an H100/H200, 16 cores
    python bench/bench_gpu.py --areas knn,sae --scale 0.1
    python bench/bench_gpu.py --emulate --scale 0.02           # no GPU: the GPU column runs the CPU path
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
import traceback
from dataclasses import asdict, dataclass

import numpy as np

from common import cpu_model, gpu_model, has_edges, log, make_data, planted, table, usable_cores

AREAS = ("knn", "tsne", "walks", "sparse", "sae")
NO_GPU = 2  # exit status: nothing to compare


@dataclass
class Row:
    area: str
    case: str
    cpu_s: float | None = None
    gpu_s: float | None = None
    check: str = ""
    ok: bool | None = None  # None: not run (error or skipped)
    error: str | None = None


class Gpu:
    """The GPU side of every case: cupy arrays, the device synchronized around
    timings. Emulated (--emulate): numpy arrays, so the "GPU" column runs the
    CPU path; this tests the script itself on a machine without a GPU."""

    def __init__(self, emulate: bool):
        self.cp = None
        if emulate:
            self.name = "none: emulated (the GPU column runs the CPU path)"
            return
        self.cp = require_cupy()
        props = self.cp.cuda.runtime.getDeviceProperties(self.cp.cuda.Device().id)
        runtime = self.cp.cuda.runtime.runtimeGetVersion()
        self.name = (f"{gpu_model() or props['name'].decode()}; CUDA runtime {runtime // 1000}.{runtime % 1000 // 10}, "
                     f"cupy {self.cp.__version__}")

    def put(self, a):
        return a if self.cp is None else self.cp.asarray(a)

    def put_csr(self, A):
        if self.cp is None:
            return A
        import cupyx.scipy.sparse
        import scipy.sparse

        return cupyx.scipy.sparse.csr_matrix(scipy.sparse.csr_matrix(A))  # cupyx takes the matrix class

    def get(self, a):
        """Back to the host: cupy arrays and cupyx sparse matrices have .get()."""
        if isinstance(a, tuple):
            return tuple(self.get(x) for x in a)
        return a.get() if self.cp is not None and hasattr(a, "get") else a

    def sync(self) -> None:
        if self.cp is not None:
            self.cp.cuda.Device().synchronize()

    def free(self) -> None:
        if self.cp is not None:
            self.sync()
            self.cp.get_default_memory_pool().free_all_blocks()


def require_cupy():
    """cupy with a usable CUDA device, or exit with a message saying what is missing."""
    try:
        import cupy
    except ImportError as exc:
        no_gpu(f"cupy is not installed ({exc}); install latentcore's gpu extra (cupy-cuda13x) on a machine "
               "with an NVIDIA GPU, or run with --emulate to test this script on the CPU")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError: no driver, no device
        no_gpu(f"cupy finds no usable CUDA device: {exc}")
    if count < 1:
        no_gpu("cupy finds no CUDA device")
    return cupy


def no_gpu(message: str):
    print(f"bench_gpu.py: nothing to compare: {message}", file=sys.stderr)
    raise SystemExit(NO_GPU)


def require_cuda_build(gpu: Gpu) -> None:
    """A tiny k-NN on the GPU: latentcore built without CUDA says so here."""
    try:
        import latentcore
    except ImportError as exc:
        no_gpu(f"latentcore cannot be imported ({exc}): install it first (pip install --no-build-isolation .)")
    if gpu.cp is None:
        return
    try:
        idx, _ = latentcore.knn(gpu.put(make_data(64, 4, seed=9)), 3)
        if not isinstance(idx, gpu.cp.ndarray):
            no_gpu(f"latentcore.knn on a cupy array returned {type(idx).__name__}, not a cupy array")
    except (ImportError, OSError, RuntimeError, ValueError, TypeError) as exc:
        no_gpu(f"latentcore cannot run on the GPU here ({type(exc).__name__}: {exc}); "
               "build it where nvcc is found (pip install --no-build-isolation .)")


# ---------------------------------------------------------------- timing

def time_cpu(fn):
    """(seconds, fn()) on the wall clock."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def time_gpu(gpu: Gpu, fn, repeats: int):
    """(median seconds, last result) of ``repeats`` runs, the device synchronized
    before starting and before reading the clock."""
    times, out = [], None
    for _ in range(repeats):
        out = None  # the previous result's memory back to the pool first
        gpu.sync()
        t0 = time.perf_counter()
        out = fn()
        gpu.sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


# ---------------------------------------------------------------- cases

class Cases:
    """Runs the cases of every area, one Row each; a case that raises is
    recorded as an error and the next one runs."""

    def __init__(self, gpu: Gpu, args, report):
        self.gpu, self.args, self.report, self.rows = gpu, args, report, []

    def sized(self, n: int, low: int) -> int:
        return max(low, int(n * self.args.scale))

    def run(self, area: str, case: str, fn) -> None:
        log(f"--- {area}: {case}")
        row = Row(area, case)
        try:
            cpu_s, gpu_s, row.check, ok = fn()
            row.cpu_s, row.gpu_s, row.ok = float(cpu_s), float(gpu_s), bool(ok)
        except Exception as exc:  # the summary says which case failed and how
            row.error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            traceback.print_exc()
        self.rows.append(row)
        log(f"    {result_text(row)}: {row.check or row.error}"
            + ("" if row.cpu_s is None or row.gpu_s is None else f" (CPU {row.cpu_s:.3f} s, GPU {row.gpu_s:.3f} s)"))
        self.report(self.rows)

    # -- knn
    def knn(self) -> None:
        import latentcore

        gpu, k = self.gpu, 15
        n, d = self.sized(100_000, 2000), 64
        X = make_data(n, d, seed=0)
        Xg = gpu.put(X)
        small = make_data(2000, d, seed=1)
        for metric in ("euclidean", "cosine"):
            def case(metric=metric):
                latentcore.knn(small, k, metric=metric)  # warm-ups
                gpu.get(latentcore.knn(gpu.put(small), k, metric=metric))
                cpu_s, (c_idx, c_dist) = time_cpu(lambda: latentcore.knn(X, k, metric=metric))
                gpu_s, out = time_gpu(gpu, lambda: latentcore.knn(Xg, k, metric=metric), self.args.repeats)
                g_idx, g_dist = gpu.get(out)
                recall = latentcore.knn_recall(g_idx, c_idx)
                close = bool(np.allclose(g_dist, c_dist, rtol=1e-4, atol=1e-5))
                err = float(np.max(np.abs(g_dist - c_dist) / (1e-5 + np.abs(c_dist))))
                ok = recall >= 0.999 and close and g_idx.dtype == np.int32 and g_dist.dtype == np.float32
                return cpu_s, gpu_s, (f"recall {recall:.5f} (≥ 0.999), same position {np.mean(g_idx == c_idx):.5f}; "
                                      f"distances max rel. diff {err:.1e} (≤ 1e-4)"), ok

            self.run("knn", f"{n} x {d}, k={k}, {metric}", case)

    # -- tsne
    def tsne(self) -> None:
        import latentcore
        from latentcore.metrics import trustworthiness

        gpu = self.gpu
        n = self.sized(20_000, 1000)
        X = make_data(n, 50, seed=2)
        kw = dict(perplexity=30, n_iter=500, early_exaggeration_iter=125, random_state=0)

        def case():
            small = X[:600]
            latentcore.TSNE(perplexity=10, n_iter=20, random_state=0).fit(small)  # warm-ups
            latentcore.TSNE(perplexity=10, n_iter=20, random_state=0).fit(gpu.put(small))
            cpu_est, gpu_est = latentcore.TSNE(**kw), latentcore.TSNE(**kw)
            cpu_s, Y_cpu = time_cpu(lambda: cpu_est.fit_transform(X))
            Xg = gpu.put(X)
            gpu_s, Y_gpu = time_gpu(gpu, lambda: gpu_est.fit_transform(Xg), 1)
            Y_cpu, Y_gpu = np.asarray(Y_cpu), np.asarray(gpu.get(Y_gpu))
            kl_c, kl_g = float(cpu_est.kl_divergence_), float(gpu_est.kl_divergence_)
            rows = np.sort(np.random.default_rng(0).choice(n, min(n, 5000), replace=False))
            t_c = trustworthiness(X[rows], Y_cpu[rows], 10)
            t_g = trustworthiness(X[rows], Y_gpu[rows], 10)
            ok = abs(kl_g - kl_c) <= 0.03 * kl_c and abs(t_g - t_c) <= 0.01 and np.isfinite(Y_gpu).all()
            return cpu_s, gpu_s, (f"KL {kl_g:.4f} vs {kl_c:.4f} (within 3%); trustworthiness {t_g:.4f} vs "
                                  f"{t_c:.4f} (within 0.01)"), ok

        self.run("tsne", f"{n} x 50, {kw['n_iter']} iterations", case)

    # -- walks and skip-gram
    def walks(self) -> None:
        import latentcore

        gpu = self.gpu
        blocks = 20
        n = blocks * (self.sized(20_000, 2000) // blocks)
        A, labels = planted_graph(n, blocks, 24, 6, seed=3)
        Ag = gpu.put_csr(A)
        length, per_node = 40, 10
        tiny = A[:200, :200]
        cpu_walks = {}
        for p, q in ((1.0, 1.0), (0.5, 2.0)):
            def case(p=p, q=q):
                latentcore.random_walks(tiny, 5, 1, p, q, random_state=0)  # warm-ups
                gpu.get(latentcore.random_walks(gpu.put_csr(tiny), 5, 1, p, q, random_state=0))
                cpu_s, W_cpu = time_cpu(lambda: latentcore.random_walks(A, length, per_node, p, q, random_state=0))
                gpu_s, W_gpu = time_gpu(gpu, lambda: latentcore.random_walks(Ag, length, per_node, p, q,
                                                                             random_state=0), self.args.repeats)
                W_gpu = np.asarray(gpu.get(W_gpu))
                cpu_walks[(p, q)] = W_cpu
                same = float(np.mean(np.all(W_gpu == W_cpu, axis=1))) if W_gpu.shape == W_cpu.shape else 0.0
                r_c, r_g = return_rate(W_cpu), return_rate(W_gpu)
                v_c, v_g = block_visits(W_cpu, labels, blocks), block_visits(W_gpu, labels, blocks)
                tv = 0.5 * float(np.abs(v_c - v_g).sum())
                on_edges = steps_on_edges(W_gpu, A)
                ok = W_gpu.shape == W_cpu.shape and abs(r_g - r_c) <= 0.005 and tv <= 0.01 and on_edges == 1.0
                return cpu_s, gpu_s, (f"walks bit-identical {same:.4f}; return rate {r_g:.4f} vs {r_c:.4f} "
                                      f"(within 0.005); visits per block TV {tv:.4f} (≤ 0.01); GPU steps on "
                                      f"edges {on_edges:.4f} (= 1)"), ok

            self.run("walks", f"random_walks, {n} nodes, {per_node} x {length}, p={p:g} q={q:g}", case)

        def skipgram_case():
            W = cpu_walks.get((1.0, 1.0))
            if W is None:
                W = latentcore.random_walks(A, length, per_node, random_state=0)
            kw = dict(dim=64, window=5, negative=5, epochs=1, random_state=0)
            latentcore.skipgram(W[:500], n_nodes=n, **kw)  # warm-ups
            gpu.get(latentcore.skipgram(gpu.put(W[:500]), n_nodes=n, **kw))
            cpu_s, E_cpu = time_cpu(lambda: latentcore.skipgram(W, n_nodes=n, **kw))
            Wg = gpu.put(W)
            gpu_s, E_gpu = time_gpu(gpu, lambda: latentcore.skipgram(Wg, n_nodes=n, **kw), 1)
            E_gpu = np.asarray(gpu.get(E_gpu))
            purity_c, purity_g = block_purity(np.asarray(E_cpu), labels), block_purity(E_gpu, labels)
            ok = purity_c >= 0.5 and purity_g >= purity_c - 0.03 and np.isfinite(E_gpu).all()
            return cpu_s, gpu_s, (f"10-NN in own block {purity_g:.4f} vs {purity_c:.4f} (within 0.03; "
                                  f"chance {1 / blocks:.2f})"), ok

        self.run("skipgram", f"{n * per_node} walks x {length}, dim 64, window 5", skipgram_case)

    # -- sparse coding
    def sparse(self) -> None:
        import scipy.sparse

        import latentcore

        gpu = self.gpu
        n, d, atoms, k = self.sized(50_000, 1000), 256, 1024, 16
        X, D, truth = planted(n, d, atoms, k, seed=0)
        truth = scipy.sparse.csr_array(truth)
        Xg, Dg = gpu.put(X), gpu.put(D)
        for method in ("omp", "topk"):
            def case(method=method):
                latentcore.sparse_encode(X[:200], D, method=method, n_nonzero=k)  # warm-ups
                gpu.get(latentcore.sparse_encode(gpu.put(X[:200]), Dg, method=method, n_nonzero=k))
                cpu_s, C_cpu = time_cpu(lambda: latentcore.sparse_encode(X, D, method=method, n_nonzero=k))
                gpu_s, C_gpu = time_gpu(gpu, lambda: latentcore.sparse_encode(Xg, Dg, method=method, n_nonzero=k),
                                        self.args.repeats)
                C_gpu = gpu.get(C_gpu)
                same, err = compare_codes(C_gpu, C_cpu)
                found = ""
                if method == "omp":  # the planted supports: same share from both, or the check above fails
                    found = (f"; planted supports recovered {compare_codes(C_gpu, truth)[0]:.4f} "
                             f"(CPU {compare_codes(C_cpu, truth)[0]:.4f})")
                ok = same >= 0.999 and err <= 1e-4
                return cpu_s, gpu_s, (f"same support {same:.5f} (≥ 0.999), codes max diff {err:.1e} of the "
                                      f"largest (≤ 1e-4){found}"), ok

            self.run("sparse", f"sparse_encode {method}, {n} x {d}, {atoms} atoms, k={k}", case)

    # -- TopK autoencoder
    def sae(self) -> None:
        import latentcore

        gpu = self.gpu
        batch = 4096 if self.args.scale >= 1 else 512
        n = batch * max(4, self.sized(40_960, 2048) // batch)
        X, _, _ = planted(n, 256, 1024, 16, seed=1)
        kw = dict(n_latents=2048, k=32, batch_size=batch, n_epochs=3, shuffle=False, random_state=0)

        def case():
            warm = dict(n_latents=256, k=8, batch_size=256, n_epochs=1, random_state=0)
            latentcore.TopKSAE(**warm).fit(X[:1024])  # warm-ups
            latentcore.TopKSAE(**warm).fit(gpu.put(X[:1024]))
            cpu_s, m_cpu = time_cpu(lambda: latentcore.TopKSAE(**kw).fit(X))
            Xg = gpu.put(X)
            gpu_s, m_gpu = time_gpu(gpu, lambda: latentcore.TopKSAE(**kw).fit(Xg), 1)
            f_c = np.array([float(v) for v in m_cpu.history_["fvu"]])  # float(): host or device scalars
            f_g = np.array([float(v) for v in m_gpu.history_["fvu"]])
            first_c, first_g = float(f_c[0]), float(f_g[0])
            last_c, last_g = float(f_c[-5:].mean()), float(f_g[-5:].mean())
            ok = (f_c.shape == f_g.shape and abs(first_g - first_c) <= 1e-3 * max(1.0, first_c)
                  and abs(last_g - last_c) <= 0.02 + 0.05 * last_c and np.isfinite(f_g).all())
            return cpu_s, gpu_s, (f"FVU first batch {first_g:.5f} vs {first_c:.5f} (within 1e-3), last 5 "
                                  f"{last_g:.4f} vs {last_c:.4f} (within 0.02 + 5%)"), ok

        self.run("sae", f"TopKSAE 2048 latents, k=32, {n} x 256, batch {batch}, 3 epochs", case)


# ---------------------------------------------------------------- data and checks

def planted_graph(n: int, blocks: int, deg_in: int, deg_out: int, seed: int):
    """An undirected planted-partition graph (node i in block i % blocks): each
    node links to deg_in random nodes of its block and deg_out anywhere, both
    ways, unit weights, no self-loops. (A float32 CSR matrix, the labels.)"""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    labels = np.arange(n) % blocks
    members = n // blocks
    src_in = np.repeat(np.arange(n), deg_in)
    dst_in = labels[src_in] + blocks * rng.integers(0, members, src_in.size)
    src_out = np.repeat(np.arange(n), deg_out)
    dst_out = rng.integers(0, n, src_out.size)
    rows = np.concatenate([src_in, dst_in, src_out, dst_out])
    cols = np.concatenate([dst_in, src_in, dst_out, src_out])
    keep = rows != cols
    A = sp.csr_array((np.ones(int(keep.sum()), np.float32), (rows[keep], cols[keep])), shape=(n, n))
    A.sum_duplicates()
    A.data[:] = 1.0
    A.sort_indices()
    return A, labels


def return_rate(W: np.ndarray) -> float:
    """Share of second-order steps that go back to the node two steps before."""
    valid = W >= 0
    back = (W[:, 2:] == W[:, :-2]) & valid[:, 2:]
    return float(back.sum()) / max(int(valid[:, 2:].sum()), 1)


def block_visits(W: np.ndarray, labels: np.ndarray, blocks: int) -> np.ndarray:
    """Share of the walks' nodes in each block."""
    nodes = W[W >= 0]
    counts = np.bincount(labels[nodes], minlength=blocks).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def steps_on_edges(W: np.ndarray, A, n_check: int = 20000, seed: int = 0) -> float:
    """Share of sampled steps (consecutive nodes of a walk) that are edges of A."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, W.shape[0], n_check)
    cols = rng.integers(0, W.shape[1] - 1, n_check)
    u, v = W[rows, cols].astype(np.int64), W[rows, cols + 1].astype(np.int64)
    ok = (u >= 0) & (v >= 0)
    return float(has_edges(A, u[ok], v[ok]).mean()) if ok.any() else float("nan")


def block_purity(E: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Share of each node's k nearest others (cosine, on the CPU) in its own block."""
    import latentcore

    idx, _ = latentcore.knn(np.ascontiguousarray(E, dtype=np.float32), k, metric="cosine")
    return float(np.mean(labels[idx] == labels[:, None]))


def compare_codes(C_gpu, C_cpu) -> tuple[float, float]:
    """(share of signals with the same support, max |difference| / max |CPU code|)."""
    import scipy.sparse as sp

    C_gpu, C_cpu = sp.csr_array(C_gpu), sp.csr_array(C_cpu)
    if C_gpu.shape != C_cpu.shape:
        return 0.0, float("inf")
    support = sp.csr_array((abs(C_gpu) > 0).astype(np.int8) - (abs(C_cpu) > 0).astype(np.int8))
    support.eliminate_zeros()
    differing = np.unique(support.nonzero()[0]).size
    largest = float(abs(C_cpu).max()) if C_cpu.nnz else 1.0
    diff = abs(C_gpu - C_cpu)
    return 1.0 - differing / max(C_cpu.shape[0], 1), (float(diff.max()) if diff.nnz else 0.0) / max(largest, 1e-30)


# ---------------------------------------------------------------- report

def result_text(row: Row) -> str:
    if row.error is not None:
        return "ERROR"
    if row.ok is None:
        return "skipped"
    return "pass" if row.ok else "FAIL"


def speedup(row: Row) -> str:
    if row.cpu_s is None or row.gpu_s is None or row.gpu_s <= 0:
        return "—"
    return f"{row.cpu_s / row.gpu_s:.1f}"


def seconds(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def markdown(rows: list[Row], header: list[str]) -> str:
    counts = {name: sum(result_text(r) == name for r in rows) for name in ("pass", "FAIL", "ERROR", "skipped")}
    cells = [[r.area, r.case, seconds(r.cpu_s), seconds(r.gpu_s), speedup(r), r.check or (r.error or ""),
              f"**{result_text(r)}**" if result_text(r) != "pass" else "pass"] for r in rows]
    summary = (f"{counts['pass']} of {len(rows)} checks passed"
               + "".join(f", {counts[name]} {name}" for name in ("FAIL", "ERROR", "skipped") if counts[name]))
    return "\n".join(header) + "\n\n" + summary + "\n\n" + table(
        ["area", "case", "CPU s", "GPU s", "CPU / GPU", "check (GPU vs CPU)", "result"], cells)


def machine_lines(gpu: Gpu) -> list[str]:
    import latentcore

    return [f"- GPU: {gpu.name}",
            f"- CPU: {cpu_model()}, {os.cpu_count()} cores ({usable_cores()} usable), every core used",
            f"- versions: latentcore {latentcore.__version__}, numpy {np.__version__}, "
            f"Python {platform.python_version()}",
            f"- {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}; CPU / GPU > 1: the GPU is faster; "
            "inputs already on their device, GPU time the median of repeats after a warm-up"]


# ---------------------------------------------------------------- main

def area_list(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in names if v not in AREAS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {','.join(AREAS)}, got {text!r}")
    return names


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--areas", type=area_list, default=list(AREAS), help=f"subset of {','.join(AREAS)} (default all)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every size by this (default 1)")
    p.add_argument("--repeats", type=int, default=3, help="GPU runs per fast case, median kept (default 3)")
    p.add_argument("--budget", type=float, default=None, metavar="S",
                   help="start no new area after S seconds (the ones left are listed as skipped)")
    p.add_argument("--markdown", metavar="FILE", help="also write the table here (rewritten after each case)")
    p.add_argument("--json", metavar="FILE", help="write the raw numbers here (rewritten after each case)")
    p.add_argument("--emulate", action="store_true",
                   help="no GPU: run the GPU column through the CPU path (numpy), to test this script")
    args = p.parse_args(argv)
    if args.scale <= 0 or args.repeats < 1:
        p.error("--scale must be > 0 and --repeats >= 1")

    gpu = Gpu(args.emulate)  # exits with a message when there is no GPU
    require_cuda_build(gpu)
    header = ["### latentcore GPU vs CPU (bench/bench_gpu.py)", ""] + machine_lines(gpu)

    def report(rows: list[Row]) -> None:
        text = markdown(rows, header)
        if args.markdown:
            with open(args.markdown, "w") as f:
                f.write(text + "\n")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"gpu": gpu.name, "argv": sys.argv[1:], "rows": [asdict(r) for r in rows]}, f, indent=1)

    cases = Cases(gpu, args, report)
    start = time.perf_counter()
    for area in args.areas:
        if args.budget is not None and time.perf_counter() - start > args.budget:
            cases.rows.append(Row(area, "all cases", check=f"skipped: the {args.budget:g} s budget was spent"))
            report(cases.rows)
            continue
        try:
            getattr(cases, area)()
        except Exception as exc:  # the area's data or setup failed: its cases did not run
            traceback.print_exc()
            cases.rows.append(Row(area, "setup", error=f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"))
            report(cases.rows)
        gpu.free()
    text = markdown(cases.rows, header)
    print(text)
    report(cases.rows)
    return 0 if cases.rows and all(r.ok for r in cases.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
