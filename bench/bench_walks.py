#!/usr/bin/env python
"""Random-walk embeddings: latentcore against PecanPy, ensmallen and gensim, side by side.

One generated graph (networkx powerlaw_cluster_graph(N, 5, 0.1, seed=0),
about 5N undirected edges, unweighted), one thread count for every peer
(default 2), walk length 80 nodes, 10 walks per node, 64 dimensions, window
5, 5 negatives, 1 epoch. Four parts (--parts):

walks  Walk sampling for each --pq setting (default p=q=1 and p=0.5, q=2;
       --pq-sweep: every p, q in {0.1, 0.25, 1, 4, 10}):
       latentcore.random_walks on the CSR matrix; ensmallen's complete_walks
       (return_weight=1/p, explore_weight=1/q, max_neighbours=None: exact
       walks) in a subprocess per setting (a crash of ensmallen is reported,
       not fatal), its graph loaded from the edge file beforehand (load time
       shown, not compared); PecanPy SparseOTF and PreComp (and, at p=q=1,
       FirstOrderUnweighted, PecanPy's recommended mode there) in a
       subprocess of its own venv (--pecanpy-python), graph loaded from a
       CSR .npz beforehand, numba JIT warmed on a 200-node graph first and
       timed apart. Every sampler produces the same number of nodes per walk:
       latentcore and ensmallen count the start node in walk_length, PecanPy
       does not (walk_length=79 gives 80 nodes), and the table counts the
       nodes each returned. Checks of sampled steps show whether the walks
       are alike: are they edges, and do second-order steps return to the
       previous node, or go to its neighbours, as often as node2vec's exact
       transition probabilities predict (a z-score; ensmallen 0.8.100 fails
       it at p=0.5, q=2). PecanPy is also shown without its conversion of
       the walks to lists of str.
sgns   Skip-gram with negative sampling on the same p=q=1 walks:
       latentcore.skipgram against gensim Word2Vec(sg=1, hs=0, negative=5)
       fed lists of str tokens built beforehand (only train() is timed;
       build_vocab is shown apart). Words/s = walk tokens / training seconds.
       Edge AUC (cosine similarity of 20000 edges against 20000 random pairs)
       checks that both embeddings learnt the graph.
e2e    Edge file to embedding, each contender in a fresh subprocess, for each
       --e2e-pq setting: latentcore.Node2Vec(...).fit("edges.tsv") against
       PecanPy read_edg + simulate_walks + gensim Word2Vec (PecanPy's mode
       picked as its CLI recommends unless --e2e-pecanpy-mode). Peak RSS
       (the child's VmHWM during the fit) against CSR graph bytes +
       embedding bytes + one chunk of walks.
f1     The same two pipelines on a stochastic block model (10 blocks of 200
       nodes, p_in 0.03, p_out 0.004): micro-F1 of a logistic regression on
       the embedding (5-fold stratified), mean over --f1-seeds seeds.

Ratios are peer / latentcore (> 1: latentcore is faster); walk ratios are
taken per step, so they hold even if node counts differed.

Examples:
    python bench/bench_walks.py --nodes 5000 --skip-pecanpy --f1-seeds 1   # smoke test, ~1 min
    python bench/bench_walks.py --nodes 5000                               # with PecanPy (JIT): minutes
    python bench/bench_walks.py --append bench/RESULTS.md                  # full run, ~35 min at 2 threads
    python bench/bench_walks.py --parts walks,sgns --skip-pecanpy
    python bench/bench_walks.py --parts walks --skip-pecanpy --pq-sweep --repeats 3   # node2vec p, q sweep
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

from common import (append_section, dist_version, fmt, has_edges, log, machine_section, ratio, reset_peak_rss,
                    table)

# ---------------------------------------------------------------- settings

M_EDGES = 5            # powerlaw_cluster_graph(n, m, p): edges per new node
P_TRIANGLE = 0.1
GRAPH_SEED = 0
WALK_LENGTH = 80       # nodes per walk, the start node included
WALKS_PER_NODE = 10
DIM = 64
WINDOW = 5
NEGATIVE = 5
EPOCHS = 1
ALPHA = 0.025
MIN_ALPHA = 1e-4
NS_EXPONENT = 0.75
SAMPLE = 1e-3
SBM_BLOCKS = 10
SBM_BLOCK_SIZE = 200
SBM_P_IN = 0.03
SBM_P_OUT = 0.004
TINY_NODES = 200       # JIT / import warm-up graph
DEFAULT_PECANPY_PYTHON = "/work/bench-venvs/pecanpy/bin/python"
PECANPY_FIRST_ORDER = ("FirstOrderUnweighted", "PreCompFirstOrder")
PARTS = ("walks", "sgns", "e2e", "f1")
PQ_SWEEP = (0.1, 0.25, 1.0, 4.0, 10.0)  # --pq-sweep: every p and q of these
MIB = 1 << 20


def device_kw(fn, device: str) -> dict:
    """{"device": device} where latentcore's fn takes one (builds with CUDA do)."""
    import inspect

    try:
        return {"device": device} if "device" in inspect.signature(fn).parameters else {}
    except (TypeError, ValueError):
        return {}


def rss() -> tuple[int, int]:
    """(current, peak) resident bytes of this process image, from /proc/self/status.

    Not getrusage's ru_maxrss: after fork + exec a child's ru_maxrss starts at
    its parent's RSS at the fork (Linux keeps the pre-exec high-water mark), so
    a child of a big benchmark process would report the parent's size."""
    try:
        with open("/proc/self/status") as f:
            d = dict(line.split(":", 1) for line in f if ":" in line)
        return int(d["VmRSS"].split()[0]) * 1024, int(d["VmHWM"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):  # pragma: no cover - not Linux
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return peak, peak


def rss_baseline() -> dict:
    """After a child's warm-up: its peak so far, then a reset peak and the RSS now."""
    gc.collect()
    _, warm_peak = rss()
    was_reset = reset_peak_rss()
    baseline, _ = rss()
    return {"warm_peak": warm_peak, "reset": was_reset, "baseline": baseline}


# ---------------------------------------------------------------- data

class Workload:
    """The benchmark graph as an edge list (u < v), a symmetric float32 CSR
    matrix and files: edges.tsv (two columns, tab, no header, node ids 0..n-1)
    and a PecanPy CSR .npz; plus the tiny warm-up graph and the SBM."""

    def __init__(self, n: int, workdir: str):
        import networkx as nx

        os.makedirs(workdir, exist_ok=True)
        self.n = n
        self.workdir = workdir
        t0 = time.perf_counter()
        self.edges = edge_array(nx.powerlaw_cluster_graph(n, M_EDGES, P_TRIANGLE, seed=GRAPH_SEED))
        self.A = csr_from_edges(self.edges, n)
        self.edge_path = os.path.join(workdir, f"powerlaw_{n}.tsv")
        self.npz_path = os.path.join(workdir, f"powerlaw_{n}.npz")
        write_edges(self.edge_path, self.edges)
        write_pecanpy_npz(self.npz_path, self.A)
        tiny = edge_array(nx.powerlaw_cluster_graph(TINY_NODES, M_EDGES, P_TRIANGLE, seed=GRAPH_SEED + 1))
        self.tiny_path = os.path.join(workdir, "tiny.tsv")
        self.tiny_npz = os.path.join(workdir, "tiny.npz")
        write_edges(self.tiny_path, tiny)
        write_pecanpy_npz(self.tiny_npz, csr_from_edges(tiny, TINY_NODES))
        log(f"graph: {n} nodes, {len(self.edges)} undirected edges, max degree "
            f"{int(np.diff(self.A.indptr).max())} ({time.perf_counter() - t0:.1f} s to build and write)")

    @property
    def nnz(self) -> int:
        return int(self.A.nnz)


def edge_array(G) -> np.ndarray:
    E = np.array(list(G.edges()), dtype=np.int64).reshape(-1, 2)
    return np.sort(E, axis=1)


def csr_from_edges(E: np.ndarray, n: int):
    import scipy.sparse as sp

    rows = np.concatenate([E[:, 0], E[:, 1]])
    cols = np.concatenate([E[:, 1], E[:, 0]])
    A = sp.csr_array((np.ones(rows.size, np.float32), (rows, cols)), shape=(n, n))
    A.sum_duplicates()
    A.data[:] = 1.0
    A.sort_indices()
    return A


def write_edges(path: str, E: np.ndarray) -> None:
    with open(path, "w") as f:
        f.write("\n".join(f"{u}\t{v}" for u, v in E.tolist()))
        f.write("\n")


def write_pecanpy_npz(path: str, A) -> None:
    """PecanPy's CSR file (SparseGraph.save's keys): node ids as str, in row order."""
    np.savez(path, IDs=np.array([str(i) for i in range(A.shape[0])]), data=A.data.astype(np.float32),
             indptr=A.indptr.astype(np.uint32), indices=A.indices.astype(np.uint32))


def make_sbm(workdir: str) -> tuple[str, np.ndarray, int]:
    import networkx as nx

    P = np.full((SBM_BLOCKS, SBM_BLOCKS), SBM_P_OUT)
    np.fill_diagonal(P, SBM_P_IN)
    G = nx.stochastic_block_model([SBM_BLOCK_SIZE] * SBM_BLOCKS, P.tolist(), seed=GRAPH_SEED)
    labels = np.array([G.nodes[i]["block"] for i in range(G.number_of_nodes())])
    path = os.path.join(workdir, "sbm.tsv")
    E = edge_array(G)
    write_edges(path, E)
    return path, labels, 2 * len(E)


# ---------------------------------------------------------------- walk checks

def walk_stats(W: np.ndarray, A, p: float, q: float, n_check: int = 20000, seed: int = 0) -> dict:
    """Nodes per walk, return rate and checks of sampled steps for a walk matrix W
    (rows: walks; -1, or anything >= n, after a walk's end) on the unweighted
    graph A: are the steps edges, and do the second-order steps go back to the
    previous node and to its neighbours as often as node2vec's exact transition
    probabilities (weights 1/p, 1, 1/q) predict for those same steps?"""
    n = A.shape[0]
    valid = (W >= 0) & (W < n)
    nodes = int(valid.sum())
    back = (W[:, 2:] == W[:, :-2]) & valid[:, 2:]
    steps2 = int(valid[:, 2:].sum())
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, W.shape[0], n_check)
    cols = rng.integers(0, W.shape[1] - 1, n_check)
    u, v = W[rows, cols].astype(np.int64), W[rows, cols + 1].astype(np.int64)
    ok = valid[rows, cols] & valid[rows, cols + 1]
    out = {"walks": int(W.shape[0]), "nodes": nodes, "steps": nodes - int(valid[:, 0].sum()),
           "nodes_per_walk": nodes / W.shape[0], "return_rate": float(back.sum()) / max(steps2, 1),
           "edge_ok": float(has_edges(A, u[ok], v[ok]).mean()) if ok.any() else float("nan")}
    if W.shape[1] >= 3:
        cols = rng.integers(2, W.shape[1], n_check)
        ok = valid[rows, cols] & valid[rows, cols - 1] & valid[rows, cols - 2]
        a, b, c = (W[rows[ok], cols[ok] - k].astype(np.int64) for k in (2, 1, 0))
        indptr = np.asarray(A.indptr, dtype=np.int64)
        deg = indptr[b + 1] - indptr[b]
        common = np.array([np.intersect1d(A.indices[indptr[x]:indptr[x + 1]], A.indices[indptr[y]:indptr[y + 1]],
                                          assume_unique=True).size for x, y in zip(a.tolist(), b.tolist())])
        z = 1.0 / p + common + (deg - 1 - common) / q  # the return edge b->a exists: the graph is undirected
        p_ret, p_common = (1.0 / p) / z, common / z
        o_ret = c == a
        o_common = ~o_ret & has_edges(A, a, c)
        for key, obs, exp in (("ret", o_ret, p_ret), ("common", o_common, p_common)):
            out[f"{key}_obs"], out[f"{key}_exp"] = float(obs.mean()), float(exp.mean())
            out[f"{key}_z"] = float((obs.sum() - exp.sum()) / max(np.sqrt((exp * (1 - exp)).sum()), 1e-12))
    return out


def edge_auc(emb: np.ndarray, E: np.ndarray, n_pairs: int = 20000, seed: int = 0) -> float:
    """ROC AUC of cosine similarity: sampled edges against uniform random pairs."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    pos = E[rng.integers(0, len(E), n_pairs)]
    neg = rng.integers(0, emb.shape[0], (n_pairs, 2))
    X = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    s = np.concatenate([(X[pos[:, 0]] * X[pos[:, 1]]).sum(1), (X[neg[:, 0]] * X[neg[:, 1]]).sum(1)])
    return float(roc_auc_score(np.r_[np.ones(n_pairs), np.zeros(n_pairs)], s))


# ---------------------------------------------------------------- children

def child_main(spec: dict) -> None:
    """Runs in a fresh interpreter (latentcore's venv or PecanPy's); prints one JSON line."""
    kind = spec["kind"]
    if kind == "pecanpy-walks":
        out = pecanpy_walks_child(spec)
    elif kind == "ensmallen-walks":
        out = ensmallen_walks_child(spec)
    elif kind == "pecanpy-e2e":
        out = pecanpy_e2e_child(spec)
    elif kind == "latentcore-e2e":
        out = latentcore_e2e_child(spec)
    else:
        raise SystemExit(f"unknown child kind {kind!r}")
    print(json.dumps(out))


def ensmallen_walks_child(spec: dict) -> dict:
    """ensmallen's complete_walks at one (p, q), in a process of its own: a
    crash (ensmallen 0.8.100 executes AVX-512 instructions in its second-order
    walks whatever the CPU offers, SIGILL where it has none) ends this child only."""
    import ensmallen
    import scipy.sparse as sp

    L, R, p, q, n = spec["walk_length"], spec["walks_per_node"], spec["p"], spec["q"], spec["n"]
    t0 = time.perf_counter()
    g = ensmallen.Graph.from_csv(
        edge_path=spec["edges"], edge_list_separator="\t", edge_list_header=False,
        sources_column_number=0, destinations_column_number=1, directed=False,
        edge_list_numeric_node_ids=True, numeric_node_ids=True, number_of_nodes=n, verbose=False)
    load = time.perf_counter() - t0
    # number_of_nodes makes ensmallen's node ids the file's ids; check it.
    probe = np.random.default_rng(0).integers(0, n, 100)
    if g.get_number_of_nodes() != n or any(g.get_node_name_from_node_id(int(i)) != str(i) for i in probe):
        return {"renumbered": True, "load": load}
    g.complete_walks(walk_length=5, iterations=1, return_weight=1.0 / p, explore_weight=1.0 / q,
                     max_neighbours=None, random_state=0)  # warm-up
    best, W = float("inf"), None
    for _ in range(spec["repeats"]):
        del W
        gc.collect()
        t0 = time.perf_counter()
        W = g.complete_walks(walk_length=L, iterations=R, return_weight=1.0 / p, explore_weight=1.0 / q,
                             max_neighbours=None, random_state=0)
        best = min(best, time.perf_counter() - t0)
    W = np.asarray(W)
    with np.load(spec["npz"]) as f:
        A = sp.csr_array((f["data"], f["indices"].astype(np.int32), f["indptr"].astype(np.int64)), shape=(n, n))
    return {"seconds": best, "load": load, **walk_stats(W, A, p, q)}


def _pecanpy_setup(threads: int):
    import numba

    numba.set_num_threads(threads)
    from pecanpy import pecanpy as pp

    return pp


def _pecanpy_graph(pp, mode: str, p: float, q: float, threads: int, seed, path: str):
    g = getattr(pp, mode)(p=p, q=q, workers=threads, verbose=False, random_state=seed)
    if path.endswith(".npz"):
        g.read_npz(path, weighted=False)
    else:
        g.read_edg(path, weighted=False, directed=False)
    return g


def pecanpy_walks_child(spec: dict) -> dict:
    T, L, R = spec["threads"], spec["walk_length"], spec["walks_per_node"]
    pp = _pecanpy_setup(T)
    from importlib.metadata import version

    results, jit = [], {}
    for mode in spec["modes"]:
        settings = [(p, q) for p, q in spec["pq"] if mode not in PECANPY_FIRST_ORDER or p == q == 1]
        if not settings:
            continue
        p0, q0 = settings[0]
        warm = []
        for _ in range(2):  # cold JIT, then the recompile every new graph object pays
            t0 = time.perf_counter()
            g = _pecanpy_graph(pp, mode, p0, q0, T, 0, spec["tiny_npz"])
            g._preprocess_transition_probs()
            g.simulate_walks(R, L - 1)
            warm.append(time.perf_counter() - t0)
        jit[mode] = warm
        print(f"  PecanPy {mode}: warm-up on {TINY_NODES} nodes {warm[0]:.1f} s, again {warm[1]:.1f} s",
              file=sys.stderr, flush=True)
        for p, q in settings:
            t0 = time.perf_counter()
            g = _pecanpy_graph(pp, mode, p, q, T, spec["seed"], spec["npz"])
            t1 = time.perf_counter()
            g._preprocess_transition_probs()  # (sets the flag simulate_walks checks)
            t2 = time.perf_counter()
            captured = {}
            kernel = g._random_walks  # staticmethod: an instance attribute shadows it

            def timed_kernel(*a, _kernel=kernel, _captured=captured):
                s = time.perf_counter()
                mat = _kernel(*a)
                _captured["seconds"], _captured["mat"] = time.perf_counter() - s, mat
                return mat

            g._random_walks = timed_kernel
            walks = g.simulate_walks(R, L - 1)
            t3 = time.perf_counter()
            mat = captured["mat"]
            ncols = mat.shape[1] - 1  # the last column holds each walk's node count
            W = mat[:, :ncols].astype(np.int32)
            W[np.arange(ncols)[None, :] >= mat[:, -1:].astype(np.int64)] = -1

            class _A:  # its own CSR, for the edge check
                shape = (len(g.nodes), len(g.nodes))
                indptr, indices = g.indptr.astype(np.int64), g.indices

            stats = walk_stats(W, _A, p, q)
            stats["n_lists"] = len(walks)
            results.append({"mode": mode, "p": p, "q": q, "load": t1 - t0, "prep": t2 - t1,
                            "walk": t3 - t2, "kernel": captured["seconds"], **stats})
            print(f"  PecanPy {mode} p={p} q={q}: prep {t2 - t1:.1f} s, walks {t3 - t2:.1f} s "
                  f"(numba kernel incl. its compile {captured['seconds']:.1f} s)", file=sys.stderr, flush=True)
            del walks, g, mat, W, captured
            gc.collect()
    return {"results": results, "jit": jit, "version": version("pecanpy"), "peak": rss()[1]}


def _gensim_kwargs(spec: dict, seed: int) -> dict:
    return dict(vector_size=spec["dim"], window=spec["window"], negative=spec["negative"], sg=1, hs=0,
                min_count=0, sample=SAMPLE, alpha=ALPHA, min_alpha=MIN_ALPHA, ns_exponent=NS_EXPONENT,
                epochs=spec["epochs"], workers=spec["threads"], seed=seed)


def pecanpy_mode_for(mode: str, p: float, q: float, n: int, nnz: int) -> str:
    """PecanPy's CLI recommendation (cli.check_mode) for an unweighted graph."""
    if mode != "auto":
        return mode
    if p == q == 1:
        return "FirstOrderUnweighted"
    density = nnz / n / (n - 1)
    if density >= 0.2:
        return "DenseOTF"
    if density < 0.001 and n < 10000:
        return "PreComp"
    return "SparseOTF"


def pecanpy_e2e_child(spec: dict) -> dict:
    T, L, R = spec["threads"], spec["walk_length"], spec["walks_per_node"]
    pp = _pecanpy_setup(T)
    from gensim.models import Word2Vec

    mode = spec["mode"]
    t0 = time.perf_counter()  # warm-up: numba JIT, gensim imports
    g = _pecanpy_graph(pp, mode, spec["jobs"][0]["p"], spec["jobs"][0]["q"], T, 0, spec["tiny"])
    g._preprocess_transition_probs()
    Word2Vec(g.simulate_walks(2, L - 1), **_gensim_kwargs(spec, 0))
    warm = time.perf_counter() - t0
    del g
    base = rss_baseline()
    jobs = []
    for job in spec["jobs"]:
        t0 = time.perf_counter()
        g = _pecanpy_graph(pp, mode, job["p"], job["q"], T, job["seed"], job["edges"])
        t1 = time.perf_counter()
        g._preprocess_transition_probs()
        walks = g.simulate_walks(R, L - 1)
        t2 = time.perf_counter()
        w2v = Word2Vec(walks, **_gensim_kwargs(spec, job["seed"]))
        emb = w2v.wv[g.nodes]
        t3 = time.perf_counter()
        np.save(job["out"], emb)
        np.save(job["out"] + ".nodes.npy", np.array(g.nodes, dtype=np.int64))
        jobs.append({"total": t3 - t0, "read": t1 - t0, "walks": t2 - t1, "train": t3 - t2,
                     "tokens": int(sum(len(w) for w in walks)), "rows": int(emb.shape[0])})
        print(f"  PecanPy {mode} + gensim p={job['p']} q={job['q']} seed={job['seed']}: {t3 - t0:.1f} s "
              f"(read {t1 - t0:.1f}, walks {t2 - t1:.1f}, word2vec {t3 - t2:.1f})", file=sys.stderr, flush=True)
        del g, walks, w2v, emb
        gc.collect()
    return {"jobs": jobs, "warm": warm, **base, "peak": rss()[1], "mode": mode}


def latentcore_e2e_child(spec: dict) -> dict:
    import latentcore

    def fit(job, seed):
        model = latentcore.Node2Vec(p=job["p"], q=job["q"], dim=spec["dim"], walk_length=spec["walk_length"],
                                    walks_per_node=spec["walks_per_node"], window=spec["window"],
                                    negative=spec["negative"], epochs=spec["epochs"], alpha=ALPHA,
                                    min_alpha=MIN_ALPHA, ns_exponent=NS_EXPONENT, sample=SAMPLE,
                                    random_state=seed, n_jobs=spec["threads"],
                                    **device_kw(latentcore.Node2Vec, spec["device"]))
        model.fit(job["edges"])
        return model

    t0 = time.perf_counter()  # warm-up: imports, thread pool, the file reader
    fit({**spec["jobs"][0], "edges": spec["tiny"]}, 0)
    warm = time.perf_counter() - t0
    base = rss_baseline()
    jobs = []
    for job in spec["jobs"]:
        t0 = time.perf_counter()
        model = fit(job, job["seed"])
        seconds = time.perf_counter() - t0
        emb = np.asarray(model.embedding_)
        np.save(job["out"], emb)
        np.save(job["out"] + ".nodes.npy", np.asarray(model.nodes_).astype(np.int64))
        jobs.append({"total": seconds, "rows": int(emb.shape[0]), "dtype": str(emb.dtype)})
        print(f"  latentcore Node2Vec p={job['p']} q={job['q']} seed={job['seed']}: {seconds:.1f} s",
              file=sys.stderr, flush=True)
        del model, emb
        gc.collect()
    return {"jobs": jobs, "warm": warm, **base, "peak": rss()[1], "version": latentcore.__version__}


def run_child(python: str, spec: dict, threads: int) -> dict:
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), RAYON_NUM_THREADS=str(threads),
               OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONHASHSEED="0")
    cmd = [python, os.path.abspath(__file__), "--child", json.dumps(spec)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)  # stderr passes through
    if proc.returncode != 0:
        raise RuntimeError(f"{spec['kind']} subprocess exited with {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- formatting

def check_cell(r: dict, key: str) -> str:
    if f"{key}_obs" not in r:
        return "—"
    z = r[f"{key}_z"]
    flag = " **≠**" if abs(z) > 5 else ""
    return f"{r[key + '_obs']:.4f} / {r[key + '_exp']:.4f} ({z:+.1f}){flag}"


def pq_text(p: float, q: float) -> str:
    return f"{p:g}, {q:g}"


# ---------------------------------------------------------------- part: walks

def part_walks(args, wl: Workload, ctx: dict) -> str:
    L, R, T = args.walk_length, args.walks_per_node, args.threads
    notes = []
    rows: dict[tuple, list[dict]] = {pq: [] for pq in args.walk_pq}

    import latentcore
    from threadpoolctl import threadpool_limits

    dev = device_kw(latentcore.random_walks, args.device)
    latentcore.random_walks(wl.A[:TINY_NODES, :TINY_NODES], 5, 1, n_jobs=T, random_state=0, **dev)  # warm-up
    for p, q in args.walk_pq:
        best, W = float("inf"), None
        for _ in range(args.repeats):
            del W
            gc.collect()
            with threadpool_limits(T):
                t0 = time.perf_counter()
                W = latentcore.random_walks(wl.A, L, R, p, q, random_state=0, n_jobs=T, **dev)
                best = min(best, time.perf_counter() - t0)
        rows[(p, q)].append({"name": "latentcore", "seconds": best, **walk_stats(W, wl.A, p, q)})
        log(f"walks p={p} q={q}: latentcore {best:.2f} s")
        if p == q == 1:
            ctx["walks_11"] = W
        del W
        gc.collect()

    if not args.skip_ensmallen:
        if dist_version("ensmallen") == "?":
            notes.append("ensmallen not installed: its rows are missing")
        else:
            load, crashed = None, []
            for p, q in args.walk_pq:
                spec = {"kind": "ensmallen-walks", "walk_length": L, "walks_per_node": R, "p": p, "q": q,
                        "n": wl.n, "edges": wl.edge_path, "npz": wl.npz_path, "repeats": args.repeats}
                try:
                    out = run_child(sys.executable, spec, T)
                except RuntimeError as e:
                    crashed.append(f"p={p:g} q={q:g} ({e})")
                    log(f"walks p={p} q={q}: ensmallen failed: {e}")
                    continue
                load = out["load"]
                if out.get("renumbered"):
                    notes.append("ensmallen renumbered the nodes (its ids are not the file's): its rows are missing")
                    break
                rows[(p, q)].append({"name": "ensmallen complete_walks", **out})
                log(f"walks p={p} q={q}: ensmallen {out['seconds']:.2f} s (graph load {load:.2f} s)")
            ctx["versions"].append(f"ensmallen {dist_version('ensmallen')}")
            if crashed:
                ctx["ensmallen_crashed"] = crashed
                notes.append("ensmallen crashed (no row) at " + "; ".join(crashed) + ": a negative exit "
                             "status is the signal (-4: SIGILL, an instruction this CPU lacks)")
            notes.append(f"ensmallen: in a subprocess per setting; Graph.from_csv(edge file, numeric ids, "
                         f"number_of_nodes={wl.n}) took {fmt(load)} s beforehand (not compared; latentcore's "
                         "input is a scipy CSR matrix built beforehand too); complete_walks(walk_length, "
                         "iterations=walks per node, return_weight=1/p, explore_weight=1/q, max_neighbours=None); "
                         "its walk_length counts nodes, the start included, as latentcore's does")

    if not args.skip_pecanpy and ctx["pecanpy_ok"]:
        spec = {"kind": "pecanpy-walks", "threads": T, "walk_length": L, "walks_per_node": R, "seed": 0,
                "pq": args.walk_pq, "modes": args.pecanpy_modes, "npz": wl.npz_path, "tiny_npz": wl.tiny_npz}
        try:
            out = run_child(args.pecanpy_python, spec, T)
        except RuntimeError as e:
            notes.append(f"PecanPy walks failed: {e}")
            out = None
        if out:
            for r in out["results"]:
                rows[(r["p"], r["q"])].append({"name": f"PecanPy {r['mode']}", "seconds": r["prep"] + r["walk"], **r})
            jit = "; ".join(f"{m} {w[0]:.1f} s cold, {w[1]:.1f} s again" for m, w in out["jit"].items())
            notes.append(f"PecanPy {out['version']} (numba, own venv): graph read from a CSR .npz beforehand "
                         f"(not timed); time = preprocess_transition_probs + simulate_walks(walks per node, "
                         f"{L - 1}), which gives {L} nodes per walk and includes turning the walks into lists "
                         f"of str node ids (its API's output). JIT warm-up on a {TINY_NODES}-node graph, "
                         f"excluded: {jit}. Every new graph object compiles its walker again (the 'again' "
                         "figure, nearly all compile time): that part is inside the times above, as users "
                         "pay it. The last column leaves out the conversion of the walk matrix to lists of "
                         "str (a Python loop in simulate_walks): preprocessing + the numba kernel alone "
                         "(its compile included)")

    head = ["p, q", "sampler", "seconds", "of which preprocessing s", "nodes / walk", "M steps/s",
            "return rate", "returns: sampled / node2vec (z)", "to prev's neighbours: sampled / node2vec (z)",
            "edges ok", "peer / latentcore", "PecanPy without str lists: s, peer / latentcore"]
    out_rows, ctx["walk_ratios"] = [], {}
    for (p, q), rs in rows.items():
        ours = next(r for r in rs if r["name"] == "latentcore")
        ours_rate = ours["steps"] / ours["seconds"]
        for r in rs:
            rate = r["steps"] / r["seconds"]
            rel = ours_rate / rate  # per step: equal to peer s / latentcore s at equal work
            core = None
            if r["name"] != "latentcore":
                ctx["walk_ratios"][(p, q, r["name"])] = rel
            if "kernel" in r:  # PecanPy: preprocessing + its numba walk kernel, without the str lists
                core = r["prep"] + r["kernel"]
                ctx.setdefault("walk_ratios_core", {})[(p, q, r["name"])] = ours_rate / (r["steps"] / core)
            if any(abs(r.get(f"{k}_z", 0.0)) > 5 for k in ("ret", "common")):
                ctx.setdefault("walk_mismatch", set()).add((p, q, r["name"]))
            out_rows.append([pq_text(p, q), r["name"], fmt(r["seconds"], 2), fmt(r.get("prep"), 2),
                             fmt(r["nodes_per_walk"], 2),
                             fmt(rate / 1e6, 1), fmt(r["return_rate"], 4), check_cell(r, "ret"),
                             check_cell(r, "common"), fmt(r["edge_ok"], 4),
                             "—" if r["name"] == "latentcore" else f"{rel:.2f}",
                             "—" if core is None else f"{core:.2f}, {ours_rate / (r['steps'] / core):.2f}"])
    notes.insert(0, f"{R} walks per node of {L} nodes (the start included) on all {wl.n} nodes, {T} threads; "
                 f"latentcore.random_walks(CSR matrix, ...), min of {args.repeats} run(s) for latentcore and "
                 "ensmallen, one run for PecanPy; steps = nodes − walks; ratio = latentcore steps/s over the "
                 "peer's (peer s / latentcore s at equal work); return rate: share of steps that go back to "
                 "the node two steps before, over all steps; sampled / node2vec: on 20000 sampled second-order "
                 "steps (prev, cur, next), the share going back to prev and the share going to a neighbour "
                 "of prev, against the mean of node2vec's exact probabilities for the same (prev, cur) "
                 "(weights 1/p, 1, 1/q); z = (observed − expected count) / its binomial sd, **≠** where "
                 "|z| > 5: that sampler does not draw node2vec's transitions; edges ok: share of 20000 "
                 "sampled steps that are graph edges")
    summary = []
    for (p, q), rs in rows.items():
        ours = next(r for r in rs if r["name"] == "latentcore")
        ens = next((r for r in rs if r["name"] == "ensmallen complete_walks"), None)
        ens_rate = None if ens is None else ens["walks"] / ens["seconds"]
        summary.append([f"{p:g}", f"{q:g}", f"{ours['walks'] / ours['seconds']:,.0f}",
                        "—" if ens_rate is None else f"{ens_rate:,.0f}",
                        "—" if ens is None else f"{ctx['walk_ratios'][(p, q, 'ensmallen complete_walks')]:.2f}"])
    return (table(head, out_rows, notes) + "\n\nnode2vec walks per second (ratio per step, as above):\n\n"
            + table(["p", "q", "latentcore walks/s", "ensmallen walks/s", "latentcore / ensmallen"], summary))


# ---------------------------------------------------------------- part: sgns

def part_sgns(args, wl: Workload, ctx: dict) -> str:
    import latentcore
    from threadpoolctl import threadpool_limits

    T = args.threads
    notes = []
    W = ctx.pop("walks_11", None)
    if W is None:
        W = latentcore.random_walks(wl.A, args.walk_length, args.walks_per_node, 1.0, 1.0, random_state=0, n_jobs=T,
                                    **device_kw(latentcore.random_walks, args.device))
    tokens = int((W >= 0).sum())
    rows = []
    ours = None
    if hasattr(latentcore, "skipgram"):
        kw = dict(dim=args.dim, window=args.window, negative=args.negative, epochs=args.epochs, alpha=ALPHA,
                  min_alpha=MIN_ALPHA, ns_exponent=NS_EXPONENT, sample=SAMPLE, n_jobs=T,
                  **device_kw(latentcore.skipgram, args.device))
        latentcore.skipgram(W[:TINY_NODES, :10], n_nodes=wl.n, random_state=0, **kw)  # warm-up
        gc.collect()
        with threadpool_limits(T):
            t0 = time.perf_counter()
            emb = latentcore.skipgram(W, n_nodes=wl.n, random_state=0, **kw)
            ours = time.perf_counter() - t0
        rows.append(["latentcore.skipgram", fmt(ours, 1), str(tokens), fmt(tokens / ours / 1e6, 2), "—", "—",
                     fmt(edge_auc(np.asarray(emb, np.float32), wl.edges), 4), "—"])
        log(f"sgns: latentcore {ours:.1f} s")
        del emb
    else:
        notes.append("latentcore.skipgram is not available in this build: its row is empty")
        rows.append(["latentcore.skipgram", "—", str(tokens), "—", "—", "—", "—", "—"])
    ctx["sgns"] = {"ours": ours}

    if not args.skip_gensim:
        import gensim
        from gensim.models import Word2Vec

        ctx["versions"].append(f"gensim {gensim.__version__}")
        vocab = [str(i) for i in range(wl.n)]
        t0 = time.perf_counter()
        sentences = []
        for start in range(0, W.shape[0], 8192):  # (tolist() of all walks at once: GBs of ints)
            sentences += [[vocab[v] for v in row if v >= 0] for row in W[start:start + 8192].tolist()]
        prep = time.perf_counter() - t0
        inputs = [("lists of str", sentences)]
        if args.gensim_corpus_file:
            path = os.path.join(wl.workdir, f"walks_{wl.n}.txt")
            with open(path, "w") as f:
                for s in sentences:
                    f.write(" ".join(s) + "\n")
            inputs.append(("corpus_file", path))
        for label, corpus in inputs:
            model = Word2Vec(**{k: v for k, v in _gensim_kwargs(vars(args), 0).items()})
            src = {"corpus_file": corpus} if label == "corpus_file" else {"corpus_iterable": corpus}
            t0 = time.perf_counter()
            model.build_vocab(**src)
            vocab_s = time.perf_counter() - t0
            gc.collect()
            with threadpool_limits(T):
                t0 = time.perf_counter()
                effective, raw = model.train(**src, total_examples=model.corpus_count,
                                             total_words=model.corpus_total_words, epochs=args.epochs)
                seconds = time.perf_counter() - t0
            emb = model.wv.vectors[[model.wv.key_to_index[t] for t in vocab]]
            rows.append([f"gensim Word2Vec ({label})", fmt(seconds, 1), str(raw), fmt(raw / seconds / 1e6, 2),
                         str(effective), fmt(vocab_s, 1), fmt(edge_auc(emb, wl.edges), 4),
                         "—" if ours is None else f"{(tokens / ours) / (raw / seconds):.2f}"])
            ctx["sgns"].setdefault("gensim", (tokens / ours) / (raw / seconds) if ours else None)
            log(f"sgns: gensim ({label}) {seconds:.1f} s, build_vocab {vocab_s:.1f} s")
            del model, emb
            gc.collect()
        del sentences
        notes.append(f"gensim: Word2Vec(sg=1, hs=0, min_count=0, workers={T}, shrink_windows=True: the usual "
                     f"random window in 1..{args.window}) given the walks as lists of str tokens, built in "
                     f"{prep:.1f} s beforehand (not timed); build_vocab timed apart (its column); train() "
                     "returns (effective words after down-sampling, raw words): raw words are the tokens")
    del W
    gc.collect()
    head = ["implementation", "train s", "tokens", "M words/s", "effective words", "build_vocab s",
            "edge AUC", "latentcore words/s / gensim's"]
    notes.insert(0, f"the p=q=1 latentcore walks ({args.walks_per_node} per node x {args.walk_length} nodes); "
                 f"dim {args.dim}, window {args.window}, {args.negative} negatives, {args.epochs} epoch(s), "
                 f"alpha {ALPHA} → {MIN_ALPHA}, ns_exponent {NS_EXPONENT}, sample {SAMPLE}, {T} threads; "
                 "words/s = walk tokens / training seconds; edge AUC: cosine similarity of 20000 graph "
                 "edges against 20000 uniform random pairs")
    return table(head, rows, notes)


# ---------------------------------------------------------------- parts: e2e and f1

def child_spec(args, kind: str, jobs: list[dict], tiny: str, mode: str | None = None) -> dict:
    return {"kind": kind, "threads": args.threads, "walk_length": args.walk_length,
            "walks_per_node": args.walks_per_node, "dim": args.dim, "window": args.window,
            "negative": args.negative, "epochs": args.epochs, "jobs": jobs, "tiny": tiny, "mode": mode,
            "device": args.device}


def walk_chunk() -> int:
    from latentcore import sgns

    return int(sgns.WALKS_PER_CHUNK["cpu"])


def part_e2e(args, wl: Workload, ctx: dict) -> str:
    T, L = args.threads, args.walk_length
    n, nnz = wl.n, wl.nnz
    chunk = walk_chunk()
    csr_bytes = (n + 1) * 8 + nnz * 4 + nnz * 4  # int64 indptr, int32 indices, float32 weights
    emb_bytes = n * args.dim * 4
    chunk_bytes = min(chunk, n * args.walks_per_node) * L * 4
    ref = csr_bytes + emb_bytes + chunk_bytes
    rows, notes = [], []
    ctx["e2e"], ctx["rss_ref"] = {}, ref
    for p, q in args.e2e_pq:
        res = {}
        out = os.path.join(wl.workdir, f"e2e_latentcore_{p:g}_{q:g}.npy")
        job = {"edges": wl.edge_path, "p": p, "q": q, "seed": 0, "out": out}
        try:
            r = run_child(sys.executable, child_spec(args, "latentcore-e2e", [job], wl.tiny_path), T)
            res["latentcore"] = r
            rows.append([pq_text(p, q), "latentcore Node2Vec.fit(edge file)", fmt(r["jobs"][0]["total"]),
                         "—", "—", "—", fmt(r["peak"] / MIB, 0), fmt(r["baseline"] / MIB, 0),
                         fmt(r["peak"] / ref, 2), fmt((r["peak"] - r["baseline"]) / ref, 2), "—"])
        except RuntimeError as e:
            notes.append(f"latentcore e2e p={p:g} q={q:g} failed ({e}; Node2Vec missing from this build?)")
            rows.append([pq_text(p, q), "latentcore Node2Vec.fit(edge file)"] + ["—"] * 9)
        if not args.skip_pecanpy and ctx["pecanpy_ok"]:
            mode = pecanpy_mode_for(args.e2e_pecanpy_mode, p, q, n, nnz)
            out = os.path.join(wl.workdir, f"e2e_pecanpy_{p:g}_{q:g}.npy")
            job = {"edges": wl.edge_path, "p": p, "q": q, "seed": 0, "out": out}
            try:
                r = run_child(args.pecanpy_python, child_spec(args, "pecanpy-e2e", [job], wl.tiny_path, mode), T)
                res["pecanpy"] = r
                j = r["jobs"][0]
                ours = res.get("latentcore", {}).get("jobs", [{}])[0].get("total")
                rows.append([pq_text(p, q), f"PecanPy {mode} + gensim", fmt(j["total"]), fmt(j["read"]),
                             fmt(j["walks"]), fmt(j["train"]), fmt(r["peak"] / MIB, 0),
                             fmt(r["baseline"] / MIB, 0), fmt(r["peak"] / ref, 2),
                             fmt((r["peak"] - r["baseline"]) / ref, 2), ratio(j["total"], ours)])
            except RuntimeError as e:
                notes.append(f"PecanPy + gensim e2e p={p:g} q={q:g} failed: {e}")
        ctx["e2e"][(p, q)] = res
        if any(not r.get("reset", True) for r in res.values()):
            notes.append(f"p={p:g} q={q:g}: the peak RSS could not be reset after the warm-up "
                         "(/proc/self/clear_refs): it includes imports and the warm-up")
    head = ["p, q", "pipeline", "total s", "read s", "walks s", "word2vec s", "peak RSS MiB", "baseline MiB",
            "peak / ref", "(peak − baseline) / ref", "peer / latentcore"]
    notes.insert(0, f"edge file ({n} nodes, {len(wl.edges)} edges, two tab-separated columns, no header) → "
                 f"embedding ({args.dim} dims), each pipeline in a fresh subprocess after a warm-up fit on a "
                 f"{TINY_NODES}-node graph (imports, numba JIT; not timed); {args.walks_per_node} walks of {L} "
                 f"nodes per node, window {args.window}, {args.negative} negatives, {args.epochs} epoch(s), "
                 f"{T} threads; PecanPy's mode: {args.e2e_pecanpy_mode} (auto = the one its CLI recommends), "
                 f"gensim Word2Vec(walks, sg=1, hs=0, min_count=0) as PecanPy's own embed() does")
    notes.append(f"ref = CSR graph ({csr_bytes / MIB:.1f} MiB: int64 indptr, int32 indices, float32 weights) + "
                 f"embedding ({emb_bytes / MIB:.1f} MiB float32) + one chunk of walks ({chunk_bytes / MIB:.1f} "
                 f"MiB: {chunk} walks x {L} int32) = {ref / MIB:.1f} MiB; peak RSS = the child's high-water mark "
                 "(VmHWM) during the fit, reset after imports and the warm-up (/proc/self/clear_refs), "
                 "baseline = its RSS then (not ru_maxrss: a child's starts at its parent's RSS at the fork). "
                 "Skip-gram also needs its context "
                 f"(output) matrix, another {emb_bytes / MIB:.1f} MiB")
    return table(head, rows, notes)


def micro_f1(emb: np.ndarray, labels: np.ndarray, folds: int = 5) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    scores = []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=0).split(emb, labels):
        clf = LogisticRegression(max_iter=2000).fit(emb[train], labels[train])
        scores.append(f1_score(labels[test], clf.predict(emb[test]), average="micro"))
    return float(np.mean(scores))


def load_embedding(out: str, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The embedding's rows in node id order, with the labels of the nodes it has."""
    emb, nodes = np.load(out), np.load(out + ".nodes.npy")
    order = np.argsort(nodes)
    return emb[order].astype(np.float64), labels[nodes[order]]


def part_f1(args, wl: Workload, ctx: dict) -> str:
    T = args.threads
    sbm_path, labels, sbm_nnz = make_sbm(wl.workdir)
    n_sbm = labels.size
    rows, notes = [], []
    ctx["f1"] = {}
    for p, q in args.pq:
        res = {}
        contenders = [("latentcore Node2Vec.fit(edge file)", sys.executable, "latentcore-e2e", None)]
        if not args.skip_pecanpy and ctx["pecanpy_ok"]:
            mode = pecanpy_mode_for(args.e2e_pecanpy_mode, p, q, n_sbm, sbm_nnz)
            contenders.append((f"PecanPy {mode} + gensim", args.pecanpy_python, "pecanpy-e2e", mode))
        for label, python, kind, mode in contenders:
            tag = "latentcore" if kind == "latentcore-e2e" else "pecanpy"
            jobs = [{"edges": sbm_path, "p": p, "q": q, "seed": s,
                     "out": os.path.join(wl.workdir, f"sbm_{tag}_{p:g}_{q:g}_{s}.npy")} for s in range(args.f1_seeds)]
            try:
                r = run_child(python, child_spec(args, kind, jobs, wl.tiny_path, mode), T)
            except RuntimeError as e:
                notes.append(f"{label} on the SBM, p={p:g} q={q:g}: failed ({e})")
                rows.append([pq_text(p, q), label, "—", "—", "—", "—"])
                continue
            f1s = []
            for job in jobs:
                emb, y = load_embedding(job["out"], labels)
                f1s.append(micro_f1(emb, y))
            res[tag] = float(np.mean(f1s))
            rows.append([pq_text(p, q), label, f"{np.mean(f1s):.4f}", f"{np.std(f1s):.4f}",
                         " ".join(f"{f:.3f}" for f in f1s), fmt(np.mean([j["total"] for j in r["jobs"]]), 2)])
            log(f"f1 p={p} q={q}: {label} micro-F1 {np.mean(f1s):.4f}")
        if "latentcore" in res and "pecanpy" in res:
            rows.append([pq_text(p, q), "difference (latentcore − PecanPy)", f"{res['latentcore'] - res['pecanpy']:+.4f}",
                         "", "", ""])
        ctx["f1"][(p, q)] = res
    setting = (f"stochastic block model: {SBM_BLOCKS} blocks x {SBM_BLOCK_SIZE} nodes, p_in {SBM_P_IN}, "
               f"p_out {SBM_P_OUT} (networkx, seed {GRAPH_SEED}); each pipeline embeds it from its edge file "
               f"with seeds 0..{args.f1_seeds - 1} (same settings as e2e); micro-F1 of "
               "LogisticRegression(max_iter=2000) on the raw embedding, mean of a 5-fold stratified split "
               "(shuffled, seed 0); sd over seeds; fit times at this size are mostly fixed costs")
    return table(["p, q", "pipeline", "micro-F1 mean", "sd", "per seed", "mean fit s"], rows, [setting, *notes])


# ---------------------------------------------------------------- goals

def goals_table(args, ctx: dict) -> str:
    rows = []

    def verdict(value, target):
        return "—" if value is None else ("met" if value >= target else "not met")

    for p, q in args.walk_pq:
        wr = ctx.get("walk_ratios")
        if wr is None:
            break
        odd = ctx.get("walk_mismatch", set())

        def flag(names):
            bad = [name for name in names if (p, q, name) in odd]
            return f" ({', '.join(bad)}: walks ≠ node2vec's)" if bad else ""

        ens = wr.get((p, q, "ensmallen complete_walks"))
        rows.append([f"walks p={p:g} q={q:g} vs ensmallen", "≥ 2", fmt(ens, 2),
                     verdict(ens, 2) + ("" if ens is None else flag(["ensmallen complete_walks"]))])
        pec = {name: v for (pp, qq, name), v in wr.items() if (pp, qq) == (p, q) and name.startswith("PecanPy")}
        best = min(pec, key=pec.get) if pec else None
        core = ctx.get("walk_ratios_core", {}).get((p, q, best)) if best else None
        rows.append([f"walks p={p:g} q={q:g} vs fastest PecanPy mode" + (f" ({best[8:]})" if best else "")
                     + "; in brackets its numba kernel alone", "≥ 5",
                     fmt(pec.get(best), 2) + ("" if core is None else f" ({core:.2f})"),
                     verdict(pec.get(best), 5) + (flag([best]) if best else "")])
    s = ctx.get("sgns")
    if s is not None:
        v = s.get("gensim")
        rows.append(["skip-gram words/s vs gensim", "≥ 2", fmt(v, 2), verdict(v, 2)])
    for (p, q), res in ctx.get("e2e", {}).items():
        try:
            v = res["pecanpy"]["jobs"][0]["total"] / res["latentcore"]["jobs"][0]["total"]
        except KeyError:
            v = None
        f1 = ctx.get("f1", {}).get((p, q), {})
        d = f1["latentcore"] - f1["pecanpy"] if "latentcore" in f1 and "pecanpy" in f1 else None
        ok = verdict(v, 3)
        if ok == "met" and d is not None and d < -0.01:
            ok = "not met (F1)"
        rows.append([f"end to end p={p:g} q={q:g} vs PecanPy + gensim (F1 difference)", "≥ 3, F1 ± 0.01",
                     f"{fmt(v, 2)} ({'—' if d is None else format(d, '+.4f')})", ok])
        for tag, label in (("latentcore", "latentcore"), ("pecanpy", "PecanPy + gensim")):
            if tag in res:
                r = res[tag]
                rows.append([f"end to end p={p:g} q={q:g}: {label} peak RSS / ref (CSR + embedding + walk "
                             "chunk); in brackets (peak − baseline) / ref", "report",
                             f"{r['peak'] / ctx['rss_ref']:.2f} ({(r['peak'] - r['baseline']) / ctx['rss_ref']:.2f})",
                             "—"])
    if not rows:
        return ""
    return table(["goal", "target", "measured", "status"], rows)


# ---------------------------------------------------------------- main

def pq_pair(text: str) -> tuple[float, float]:
    try:
        p, q = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected P,Q (two numbers), got {text!r}")
    if p <= 0 or q <= 0:
        raise argparse.ArgumentTypeError(f"p and q must be positive, got {text!r}")
    return p, q


def name_list(choices):
    def parse(text: str) -> list[str]:
        names = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in names if v not in choices]
        if bad or not names:
            raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {','.join(choices)}, got {text!r}")
        return names
    return parse


def pecanpy_status(path: str) -> tuple[bool, str]:
    if not os.path.exists(path):
        return False, f"PecanPy python {path} not found (see bench/README.md to create its venv): PecanPy skipped"
    proc = subprocess.run([path, "-c", "from importlib.metadata import version as v; import pecanpy.pecanpy, "
                           "gensim, numba, numpy; print(v('pecanpy'), gensim.__version__, numba.__version__, "
                           "numpy.__version__)"], capture_output=True, text=True)
    if proc.returncode != 0:
        return False, f"{path} cannot import pecanpy/gensim/numba: PecanPy skipped"
    pv, gv, nv, npv = proc.stdout.split()
    return True, f"PecanPy {pv} with gensim {gv}, numba {nv}, numpy {npv} ({path})"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=100_000, help="nodes of the power-law graph (default 100000)")
    p.add_argument("--threads", type=int, default=2, help="threads for every peer (default 2)")
    p.add_argument("--parts", type=name_list(PARTS), default=list(PARTS),
                   help=f"comma-separated subset of {','.join(PARTS)} (default all)")
    p.add_argument("--pq", type=pq_pair, nargs="+", default=[(1.0, 1.0), (0.5, 2.0)], metavar="P,Q",
                   help="node2vec settings for the walks and f1 parts (default 1,1 0.5,2)")
    p.add_argument("--pq-sweep", action="store_true",
                   help="walks part: every p, q in {0.1, 0.25, 1, 4, 10} (25 settings; replaces --pq there)")
    p.add_argument("--e2e-pq", type=pq_pair, nargs="+", default=[(0.5, 2.0)], metavar="P,Q",
                   help="settings for the end-to-end part (default 0.5,2; each costs ~12 min at 100k nodes)")
    p.add_argument("--walk-length", type=int, default=WALK_LENGTH, help="nodes per walk, start included (default 80)")
    p.add_argument("--walks-per-node", type=int, default=WALKS_PER_NODE, help="default 10")
    p.add_argument("--dim", type=int, default=DIM, help="default 64")
    p.add_argument("--window", type=int, default=WINDOW, help="default 5")
    p.add_argument("--negative", type=int, default=NEGATIVE, help="default 5")
    p.add_argument("--epochs", type=int, default=EPOCHS, help="default 1")
    p.add_argument("--repeats", type=int, default=1,
                   help="walk timings of latentcore and ensmallen: minimum of this many runs (default 1)")
    p.add_argument("--f1-seeds", type=int, default=5, help="embedding seeds averaged in the f1 part (default 5)")
    p.add_argument("--skip-pecanpy", action="store_true", help="no PecanPy rows (walks, e2e, f1)")
    p.add_argument("--skip-gensim", action="store_true", help="no gensim row in the sgns part")
    p.add_argument("--skip-ensmallen", action="store_true", help="no ensmallen rows in the walks part")
    p.add_argument("--pecanpy-python", default=DEFAULT_PECANPY_PYTHON, metavar="PATH",
                   help=f"python of a venv with pecanpy and gensim (default {DEFAULT_PECANPY_PYTHON})")
    p.add_argument("--pecanpy-modes", type=name_list(("SparseOTF", "PreComp", "DenseOTF") + PECANPY_FIRST_ORDER),
                   default=["SparseOTF", "PreComp", "FirstOrderUnweighted"],
                   help="PecanPy modes for the walks part (default SparseOTF,PreComp,FirstOrderUnweighted; "
                        "first-order modes run at p=q=1 only)")
    p.add_argument("--e2e-pecanpy-mode", default="auto",
                   choices=("auto", "SparseOTF", "PreComp", "DenseOTF") + PECANPY_FIRST_ORDER,
                   help="PecanPy mode in the e2e and f1 parts (default auto: as its CLI recommends)")
    p.add_argument("--gensim-corpus-file", action="store_true",
                   help="sgns part: also time gensim reading the walks from a text file (corpus_file)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="latentcore's device, where its functions take one (default cpu: the peers run on CPU)")
    p.add_argument("--workdir", default="/tmp/bench_walks", help="scratch folder (default /tmp/bench_walks)")
    p.add_argument("--append", metavar="FILE", help="append a section (machine, command, tables) to FILE")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child_main(json.loads(args.child))
        return
    if min(args.threads, args.repeats, args.f1_seeds, args.walks_per_node, args.dim, args.window,
           args.negative, args.epochs) < 1:
        p.error("--threads, --repeats, --f1-seeds, --walks-per-node, --dim, --window, --negative and "
                "--epochs must be >= 1")
    if args.walk_length < 3:
        p.error("--walk-length must be >= 3")
    if args.nodes < max(TINY_NODES, 2 * M_EDGES):
        p.error(f"--nodes must be >= {TINY_NODES}")
    if args.append and not os.path.isdir(os.path.dirname(os.path.abspath(args.append))):
        p.error(f"--append {args.append}: its folder does not exist")
    args.pq = list(dict.fromkeys(args.pq))
    args.walk_pq = [(p_, q_) for p_ in PQ_SWEEP for q_ in PQ_SWEEP] if args.pq_sweep else args.pq
    T = str(args.threads)
    # Thread pools read these once, as they start: set them before any peer loads.
    os.environ["RAYON_NUM_THREADS"] = T    # ensmallen
    os.environ["NUMBA_NUM_THREADS"] = T    # PecanPy (its children inherit the environment)

    import latentcore  # noqa: F401  (fail early on a broken install)

    machine = machine_section(args.threads, with_peers=False)
    ctx = {"versions": [f"networkx {__import__('networkx').__version__}"]}
    if args.skip_pecanpy:
        ctx["pecanpy_ok"] = False
    else:
        ctx["pecanpy_ok"], line = pecanpy_status(args.pecanpy_python)
        ctx["versions"].append(line)
        log(line)
    wl = Workload(args.nodes, args.workdir)
    sections = []
    titles = {"walks": "walk sampling", "sgns": "skip-gram (SGNS) training",
              "e2e": "end to end: edge file → embedding", "f1": "node classification on an SBM graph"}
    parts = {"walks": part_walks, "sgns": part_sgns, "e2e": part_e2e, "f1": part_f1}
    for name in PARTS:
        if name in args.parts:
            log(f"--- {name}")
            sections.append(f"### {titles[name]}\n\n" + parts[name](args, wl, ctx))
            print(sections[-1] + "\n", flush=True)
    goals = goals_table(args, ctx)
    if goals:
        sections.append("### goals\n\n" + goals)
        print(sections[-1])
    if args.append:
        header = (f"{machine}\n- peers: {', '.join(ctx['versions'])}; latentcore device: {args.device}\n"
                  f"- graph: networkx powerlaw_cluster_graph"
                  f"({args.nodes}, {M_EDGES}, {P_TRIANGLE}, seed={GRAPH_SEED}): {len(wl.edges)} undirected "
                  f"edges, unweighted")
        append_section(args.append, "random-walk embeddings: latentcore vs PecanPy, ensmallen and gensim",
                       header + "\n\n" + "\n\n".join(sections))


if __name__ == "__main__":
    main()
