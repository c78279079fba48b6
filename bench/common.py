"""What the benchmark scripts share: the machine section and the RESULTS.md
sections they append, argument parsers, timing and table formatting.

Imported as ``from common import ...`` by the scripts beside it (run as
``python bench/<script>.py``, their folder is first on ``sys.path``). Only the
standard library and numpy at import time: bench_walks.py also runs its
children in PecanPy's own venv, which imports this module.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import shlex
import subprocess
import sys
import time

import numpy as np

# ---------------------------------------------------------------- machine

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def gpu_model() -> str | None:
    """nvidia-smi's one line for the first GPU (name, memory, driver), or None
    where there is no nvidia-smi or it finds no GPU."""
    try:
        proc = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                               "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        return None
    return lines[0] + ("" if len(lines) == 1 else f" (and {len(lines) - 1} more)")


def blas_summary() -> list[str]:
    """One line per thread pool threadpoolctl sees (BLAS and OpenMP runtimes)."""
    from scipy.linalg import cython_blas  # noqa: F401  (the BLAS latentcore calls: list it)
    from threadpoolctl import threadpool_info

    lines = []
    for info in threadpool_info():
        path = info.get("filepath", "?")  # the wheel's .libs folder says whose copy it is
        where = os.path.join(os.path.basename(os.path.dirname(path)), os.path.basename(path))
        if info.get("user_api") == "blas":
            lines.append(f"{info.get('internal_api')} {info.get('version')} "
                         f"({info.get('architecture', '?')}, {info.get('threading_layer', '?')} threads, "
                         f"{info.get('num_threads')} by default) — {where}")
        else:
            lines.append(f"{info.get('internal_api')} runtime, {info.get('num_threads')} threads by default — {where}")
    return sorted(lines)


def dist_version(name: str) -> str:
    """The installed version of distribution ``name``, or "?"."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def versions(with_peers: bool = True) -> str:
    """latentcore, numpy, (faiss and scikit-learn with ``with_peers``), Python."""
    import latentcore

    parts = [f"latentcore {latentcore.__version__}", f"numpy {np.__version__}"]
    if with_peers:
        try:
            import faiss

            parts.append(f"faiss {faiss.__version__}")
        except ImportError:
            parts.append("faiss not installed")
        try:
            import sklearn

            parts.append(f"scikit-learn {sklearn.__version__}")
        except ImportError:
            parts.append("scikit-learn not installed")
    parts.append(f"Python {platform.python_version()}")
    return ", ".join(parts)


def machine_section(threads: int, with_peers: bool = True) -> str:
    """The markdown list that opens every RESULTS.md section: CPU, versions, thread pools."""
    lines = [f"- CPU: {cpu_model()}, {os.cpu_count()} cores ({usable_cores()} usable); "
             f"benchmark threads: {threads}",
             f"- versions: {versions(with_peers)}",
             "- thread pools (threadpoolctl):"]
    lines += [f"  - {line}" for line in blas_summary()]
    return "\n".join(lines)


# ---------------------------------------------------------------- data

N_CLUSTERS = 50
_CHUNK = 4096  # rows generated at a time: keeps the generator's temporaries small


def make_data(n: int, d: int, seed: int = 0) -> np.ndarray:
    """n x d float32 points from a mixture of N_CLUSTERS Gaussians: unit-variance
    centres, per-cluster widths in [0.2, 0.6]. Generated in chunks, so the only
    large allocation is the result (this matters for bench_knn.py's --rss mode)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((N_CLUSTERS, d), dtype=np.float32)
    widths = rng.uniform(0.2, 0.6, N_CLUSTERS).astype(np.float32)
    X = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, _CHUNK):
        block = X[start:start + _CHUNK]
        labels = rng.integers(0, N_CLUSTERS, block.shape[0])
        rng.standard_normal(out=block, dtype=np.float32)
        block *= widths[labels, None]
        block += centers[labels]
    return X


def planted(n: int, d: int, n_atoms: int, k: int, seed: int = 0):
    """Sparse-coding data: (X float32 (n, d), D float32 (n_atoms, d) of unit-norm
    Gaussian atoms, codes float32 (n, n_atoms)); each signal is k atoms with
    magnitudes 1-2 and random signs, plus noise of sd 0.01."""
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n_atoms, d))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    codes = np.zeros((n, n_atoms), np.float32)
    for row in codes:
        atoms = rng.choice(n_atoms, k, replace=False)
        row[atoms] = rng.uniform(1.0, 2.0, k) * rng.choice([-1, 1], k)
    X = codes @ D.astype(np.float32) + np.float32(0.01) * rng.standard_normal((n, d), dtype=np.float32)
    return X.astype(np.float32), D.astype(np.float32), codes


def has_edges(A, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether each (u[i], v[i]) is an edge of the CSR matrix A (sorted indices)."""
    rows = np.repeat(np.arange(A.shape[0], dtype=np.int64), np.diff(A.indptr))
    keys = rows * A.shape[0] + A.indices.astype(np.int64)  # sorted: CSR rows, sorted indices
    q = u * A.shape[0] + v
    pos = np.minimum(np.searchsorted(keys, q), keys.size - 1)
    return keys[pos] == q


# ---------------------------------------------------------------- RESULTS.md

def command_line() -> str:
    return "python " + shlex.join(sys.argv)


def append_section(path: str, title: str, body: str) -> None:
    """Appends ``## title — UTC time``, the command line and ``body`` to ``path``."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = f"\n## {title} — {stamp}\n\n`{command_line()}`\n\n{body}\n"
    with open(path, "a") as f:
        f.write(text)
    print(f"appended to {path}", file=sys.stderr)


# ---------------------------------------------------------------- arguments

def int_list(text: str) -> list[int]:
    """argparse type: comma-separated positive integers ("20000,1e5" too)."""
    try:
        values = [int(float(v)) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


# ---------------------------------------------------------------- timing

def timed(fn, *args, threads: int | None = None):
    """(seconds, fn(*args)) on the wall clock, after a garbage collection (not
    timed); under threadpool_limits(threads) when ``threads`` is given, so that
    BLAS and OpenMP pools use that many threads."""
    gc.collect()
    if threads is None:
        t0 = time.perf_counter()
        out = fn(*args)
        return time.perf_counter() - t0, out
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        t0 = time.perf_counter()
        out = fn(*args)
        seconds = time.perf_counter() - t0
    return seconds, out


def log(msg: str) -> None:
    """A progress line on stderr (the tables go to stdout)."""
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- formatting

def fmt(x, digits: int = 1) -> str:
    """A number with ``digits`` decimals; "—" for None, NaN or infinity."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "—"
    return f"{x:.{digits}f}"


def ratio(peer, ours) -> str:
    """peer / ours with two decimals; "—" when either is missing (or ours is 0)."""
    return "—" if peer is None or ours is None or ours == 0 else f"{peer / ours:.2f}"


def table(head: list[str], rows: list[list[str]], notes=()) -> str:
    """A markdown table, then its notes as a list."""
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    text = "\n".join(lines)
    return text + "\n\n" + "\n".join(f"- {n}" for n in notes) if notes else text


# ---------------------------------------------------------------- added for issue 14 (bench_sparse.py)

_PLANTED_CHUNK = 2048  # signals generated at a time by planted_sparse


def _distinct_rows(rng: np.random.Generator, rows: int, n_atoms: int, k: int) -> np.ndarray:
    """(rows, k) int64: k distinct atoms per row, uniformly at random."""
    if k * k > n_atoms:  # many collisions: the k smallest of random keys
        return np.argpartition(rng.random((rows, n_atoms)), k - 1, axis=1)[:, :k]
    support = rng.integers(0, n_atoms, (rows, k))
    while True:  # redraw the rows holding a repeated atom
        ordered = np.sort(support, axis=1)
        bad = np.flatnonzero((np.diff(ordered, axis=1) == 0).any(axis=1))
        if not bad.size:
            return support
        support[bad] = rng.integers(0, n_atoms, (bad.size, k))


def planted_sparse(n: int, d: int, n_atoms: int, k: int, seed: int = 0, noise: float = 0.01):
    """planted()'s recipe without any (n, n_atoms) array, for large dictionaries:
    (X float32 (n, d), D float32 (n_atoms, d) unit-norm Gaussian atoms, support
    int64 (n, k) distinct atoms per signal, values float32 (n, k) magnitudes 1-2
    with random signs); X = sum of the k atoms times their values + noise of sd
    ``noise``. Generated in chunks, so the peak memory is about X + D. The same
    arguments give the same arrays (not the same numbers as planted())."""
    rng = np.random.default_rng(seed)
    D = np.empty((n_atoms, d), np.float32)
    for start in range(0, n_atoms, _CHUNK):
        block = D[start:start + _CHUNK]
        rng.standard_normal(out=block, dtype=np.float32)
        block /= np.sqrt(np.einsum("ij,ij->i", block, block, dtype=np.float64))[:, None].astype(np.float32)
    X = np.empty((n, d), np.float32)
    support = np.empty((n, k), np.int64)
    values = np.empty((n, k), np.float32)
    step = max(1, min(_PLANTED_CHUNK, (1 << 22) // max(1, k * d)))  # rows * k * d gathered floats at most 4M
    for start in range(0, n, step):
        rows = slice(start, min(n, start + step))
        m = rows.stop - rows.start
        support[rows] = _distinct_rows(rng, m, n_atoms, k)
        values[rows] = rng.uniform(1.0, 2.0, (m, k)) * rng.choice(np.array([-1.0, 1.0]), (m, k))
        np.einsum("rk,rkd->rd", values[rows], D[support[rows]], out=X[rows])
        X[rows] += np.float32(noise) * rng.standard_normal((m, d), dtype=np.float32)
    return X, D, support, values


def _proc_status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def rss_mb() -> float:
    """This process's resident set now, in MB (VmRSS; 0 where /proc is missing)."""
    return _proc_status_mb("VmRSS") or 0.0


def peak_rss_mb() -> float:
    """This process's peak resident set so far, in MB: VmHWM where /proc has it,
    else getrusage's ru_maxrss. Not ru_maxrss on Linux: in a child started by
    fork + exec it also counts the parent's RSS at the fork (the kernel keeps
    the pre-exec maximum), and /proc/self/clear_refs does not reset that part."""
    peak = _proc_status_mb("VmHWM")
    if peak is not None:
        return peak
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)  # bytes on macOS, KB on Linux


def size_list(text: str, parts: int) -> list[tuple[int, ...]]:
    """argparse helper: "1024x256x16,4096x512x32" -> [(1024, 256, 16), (4096, 512, 32)],
    each item ``parts`` positive integers joined by x."""
    try:
        sizes = [tuple(int(float(v)) for v in item.lower().split("x")) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated AxBxC sizes, got {text!r}")
    if not sizes or any(len(s) != parts or min(s) < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"expected comma-separated sizes of {parts} positive integers "
                                         f"joined by x, got {text!r}")
    return sizes


def reset_peak_rss() -> bool:
    """Resets this process's peak RSS (VmHWM) to the current RSS, so that
    peak_rss_mb() afterwards measures what follows (Linux >= 4.0:
    /proc/self/clear_refs). False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
