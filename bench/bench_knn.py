#!/usr/bin/env python
"""Exact k=15 all-pairs k-NN graph: latentcore against its peers, side by side.

Each case (n points x d dims, float32, a clustered Gaussian mixture with a
fixed seed) is timed for every peer in one process with the same thread count:

- latentcore.knn(X, 15, n_jobs=T)
- faiss IndexFlatL2 (faiss.omp_set_num_threads(T)): build + add + search with
  k=16, then drop each point's own column; all of it is timed
- scikit-learn NearestNeighbors(algorithm="brute", n_neighbors=15)
  .fit(X).kneighbors(), only up to --sklearn-max-n points (it is slow)

Every peer runs under threadpool_limits(T). Each case warms every peer up once
on a small input, then repeats (--repeats) with the peers interleaved
(A, B, C, A, B, C, ...) so that drift on a shared machine hits all alike, and
keeps each peer's minimum. The table gives the times, peer / latentcore ratios
and latentcore's recall against faiss (exact search: expect 1.0 up to ties).

`--rss N D` instead runs one latentcore.knn(X, 15) on n x d data in a fresh
subprocess and reports its peak RSS against the bytes of input + output.

Examples:
    python bench/bench_knn.py --sizes 20000 --dims 64 --repeats 1
    python bench/bench_knn.py --append bench/RESULTS.md
    python bench/bench_knn.py --rss 1000000 64 --rss-seconds 20
"""

from __future__ import annotations

import _thread
import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time

import numpy as np

from common import N_CLUSTERS, append_section, int_list, machine_section, make_data, ratio, table, timed

K = 15
SEED = 0
WARMUP_N = 2000


# ---------------------------------------------------------------- peers

def run_latentcore(X: np.ndarray, threads: int) -> np.ndarray:
    import latentcore

    indices, _ = latentcore.knn(X, K, n_jobs=threads)
    return indices


def drop_self(I: np.ndarray, k: int) -> np.ndarray:
    """Removes each row's own index from a (n, k+1) self-inclusive result. A row
    whose own index is missing (duplicates of the point crowded it out) loses
    its last column instead."""
    is_self = I == np.arange(I.shape[0])[:, None]
    keep = np.argsort(is_self, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(I, keep, axis=1)


def run_faiss(X: np.ndarray, threads: int) -> np.ndarray:
    import faiss

    faiss.omp_set_num_threads(threads)
    index = faiss.IndexFlatL2(X.shape[1])
    index.add(X)
    _, I = index.search(X, K + 1)
    return drop_self(I, K)


def run_sklearn(X: np.ndarray, threads: int) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    # kneighbors() without X leaves each point out of its own list.
    nn = NearestNeighbors(algorithm="brute", n_neighbors=K).fit(X)
    return nn.kneighbors(return_distance=False)


# ---------------------------------------------------------------- timing mode

def fmt_s(x: float | None) -> str:
    return "—" if x is None else (f"{x:.3f}" if x < 100 else f"{x:.1f}")


def bench_case(n: int, d: int, args, peers: dict) -> dict:
    from latentcore.metrics import knn_recall

    active = {name: fn for name, fn in peers.items()
              if not (name == "sklearn" and n > args.sklearn_max_n)}
    small = make_data(WARMUP_N, d, seed=SEED + 1)
    for fn in active.values():
        timed(fn, small, args.threads, threads=args.threads)
    del small

    X = make_data(n, d)
    best = {name: float("inf") for name in active}
    result = {}
    for rep in range(args.repeats):
        for name, fn in active.items():  # interleaved: A, B, C, A, B, C, ...
            seconds, out = timed(fn, X, args.threads, threads=args.threads)
            best[name] = min(best[name], seconds)
            result[name] = out
            print(f"  n={n} d={d} repeat {rep + 1}/{args.repeats}: {name} {seconds:.3f} s",
                  file=sys.stderr, flush=True)
    row = {"n": n, "d": d, **{name: best.get(name) for name in peers}}
    ours = result["latentcore"]
    row["recall_faiss"] = knn_recall(ours, result["faiss"]) if "faiss" in result else None
    row["recall_sklearn"] = knn_recall(ours, result["sklearn"]) if "sklearn" in result else None
    return row


def timing_table(rows: list[dict], notes: list[str]) -> str:
    head = ["n", "d", "latentcore s", "faiss s", "faiss / latentcore", "sklearn brute s",
            "sklearn / latentcore", "recall vs faiss", "recall vs sklearn"]
    cells = []
    for r in rows:
        ours = r["latentcore"]
        cells.append([str(r["n"]), str(r["d"]), fmt_s(ours), fmt_s(r.get("faiss")), ratio(r.get("faiss"), ours),
                      fmt_s(r.get("sklearn")), ratio(r.get("sklearn"), ours),
                      "—" if r["recall_faiss"] is None else format(r["recall_faiss"], ".4f"),
                      "—" if r["recall_sklearn"] is None else format(r["recall_sklearn"], ".4f")])
    return table(head, cells, notes)


def timing_mode(args) -> None:
    import latentcore  # noqa: F401  (fail early on a broken install)

    peers = {"latentcore": run_latentcore}
    notes = [f"exact k={K} all-pairs graph (each point's {K} nearest others), float32, "
             f"{N_CLUSTERS}-cluster Gaussian mixture (seed {SEED}); minimum of {args.repeats} "
             f"interleaved repeat(s) after a warm-up on {WARMUP_N} points; "
             f"{args.threads} thread(s) for every peer; ratio > 1: latentcore is faster"]
    try:
        import faiss  # noqa: F401

        peers["faiss"] = run_faiss
        notes.append("faiss: IndexFlatL2 build + add + search(k=16) + dropping the self column, all timed")
    except ImportError:
        notes.append("faiss not installed (pip install faiss-cpu): its columns are empty")
    try:
        import sklearn  # noqa: F401

        peers["sklearn"] = run_sklearn
        if any(n > args.sklearn_max_n for n in args.sizes):
            notes.append(f"sklearn brute runs only up to n={args.sklearn_max_n} (--sklearn-max-n)")
    except ImportError:
        notes.append("scikit-learn not installed: its columns are empty")

    machine = machine_section(args.threads)  # before any threadpool_limits changes
    rows = []
    for n in args.sizes:
        for d in args.dims:
            rows.append(bench_case(n, d, args, peers))
    text = timing_table(rows, notes)
    print(text)
    if args.append:
        append_section(args.append, f"exact k-NN graph, k={K}", machine + "\n\n" + text)


# ---------------------------------------------------------------- RSS mode

def rss_child(n: int, d: int, threads: int, stop_after: float | None) -> None:
    """Runs in a fresh interpreter: one latentcore.knn call, then prints JSON."""
    import latentcore
    from scipy.linalg import cython_blas  # noqa: F401  (loaded by knn; keep it in the baseline)

    def maxrss() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux

    # A tiny call first, so that libraries, BLAS and the OpenMP pool are in the baseline.
    latentcore.knn(make_data(200, d, seed=SEED + 1), K, n_jobs=threads)
    baseline = maxrss()
    X = make_data(n, d)
    before_call = maxrss()
    cut = finished = False
    timer = threading.Timer(stop_after, _thread.interrupt_main) if stop_after else None
    t0 = time.perf_counter()
    try:
        if timer:
            timer.start()
        latentcore.knn(X, K, n_jobs=threads)
        finished = True
        if timer:
            timer.cancel()
    except KeyboardInterrupt:
        cut = not finished
    seconds = time.perf_counter() - t0
    if timer:
        try:
            timer.cancel()
            timer.join()
        except KeyboardInterrupt:  # fired between the call's return and cancel()
            pass
    print(json.dumps({"n": n, "d": d, "threads": threads, "peak": maxrss(), "baseline": baseline,
                      "before_call": before_call, "seconds": seconds, "cut": cut}))


def rss_mode(args) -> None:
    n, d = args.rss
    cmd = [sys.executable, os.path.abspath(__file__), "--rss-child", str(n), str(d),
           "--threads", str(args.threads)]
    if args.rss_seconds:
        cmd += ["--rss-seconds", str(args.rss_seconds)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"the --rss subprocess failed with exit code {proc.returncode}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    in_out = n * d * 4 + n * K * 8  # float32 input; int32 indices + float32 distances
    mib = 1 << 20
    head = ["n", "d", "threads", "input + output MiB", "peak RSS MiB", "peak / (in+out)", "baseline MiB",
            "(peak − baseline) / (in+out)", "knn s", "cut"]
    cells = [[str(n), str(d), str(r["threads"]), f"{in_out / mib:.1f}", f"{r['peak'] / mib:.1f}",
              f"{r['peak'] / in_out:.2f}", f"{r['baseline'] / mib:.1f}",
              f"{(r['peak'] - r['baseline']) / in_out:.2f}", f"{r['seconds']:.1f}", "yes" if r["cut"] else "no"]]
    notes = [f"one latentcore.knn(X, {K}) call in a fresh subprocess; peak RSS = ru_maxrss; "
             "baseline = ru_maxrss after imports and a 200-point warm-up call, before X exists"]
    if r["cut"]:
        notes.append(f"the call was stopped (KeyboardInterrupt) after {args.rss_seconds} s "
                     "(--rss-seconds): its allocations all happen up front, the search did not finish")
    text = table(head, cells, notes)
    print(text)
    if args.append:
        body = machine_section(args.threads, with_peers=False) + "\n\n" + text
        append_section(args.append, f"k-NN peak memory, k={K}", body)


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int_list, default=[20000, 100000], help="n values (default 20000,100000)")
    p.add_argument("--dims", type=int_list, default=[64, 256], help="d values (default 64,256)")
    p.add_argument("--threads", type=int, default=2, help="threads for every peer (default 2)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats per peer; the minimum is kept (default 3)")
    p.add_argument("--sklearn-max-n", type=int, default=20000,
                   help="largest n sklearn brute force runs on (default 20000)")
    p.add_argument("--append", metavar="FILE", help="append a section (machine, command, table) to FILE")
    p.add_argument("--rss", type=int, nargs=2, metavar=("N", "D"),
                   help="instead of timing: peak RSS of one latentcore.knn call on N x D data, in a subprocess")
    p.add_argument("--rss-seconds", type=float, metavar="S",
                   help="with --rss: stop the call after S seconds (allocations happen up front)")
    p.add_argument("--rss-child", type=int, nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads < 1 or args.repeats < 1:
        p.error("--threads and --repeats must be >= 1")
    if args.append and not os.path.isdir(os.path.dirname(os.path.abspath(args.append))):
        p.error(f"--append {args.append}: its folder does not exist")
    if args.rss_child:
        rss_child(*args.rss_child, args.threads, args.rss_seconds)
    elif args.rss:
        if min(args.rss) < 1 or args.rss[0] <= K:
            p.error(f"--rss N D needs N > {K} and D >= 1")
        rss_mode(args)
    else:
        timing_mode(args)


if __name__ == "__main__":
    main()
