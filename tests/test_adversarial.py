"""Adversarial property tests of every public function (issue 12).

Each property draws inputs at the edges of what the function takes: finite
extremes (+-1e38, 3e19), subnormals (1e-40), zeros, duplicates, tiny shapes
(n = 1, 2; one feature), k, sizes and parameters at their bounds, crafted CSR
graphs and affinities (indices out of range, unsorted or duplicated, NaN or
negative weights, indptr not monotone, int64 ids beyond 2**31) and wrong
dtypes. The property: the call raises ValueError/TypeError naming an argument
that is really at fault, or returns a valid result (shape, dtype, finite,
indices in range) that matches an exact numpy reference where one is cheap.
Inputs that are valid must give a result; inputs that are invalid must be
refused; "gray" inputs (e.g. magnitudes near float32's limit) may be either.

Anything that reaches C++ runs in a subprocess (a segfault, abort or hang
fails one test, not the run): one subprocess per property runs all of its
hypothesis examples and prints ``CASE ...`` before each, so a crash names
its input. The pure-Python metrics run in this process.

The sanitizer job (.ci/sanitize) runs these files against an ASan + UBSan
build with gcc's ASan runtime preloaded (``SANITIZED``): ASan's reports go
to files that fail the job whichever process wrote them; ``isolated`` also
fails on a report a subprocess prints (UBSan's go to stderr). The cases
that need RLIMIT_AS skip there. The fourteen reproductions of the issue are
in test_adversarial_repro.py, byte-mutation fuzzing of the readers and
loaders in test_adversarial_files.py; both use ``isolated``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

import latentcore
from conftest import run_isolated

try:  # the subprocesses import this module without hypothesis's pytest plugin around
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is in the test extra
    pytest.skip("hypothesis is not installed", allow_module_level=True)

TESTS = Path(__file__).resolve().parent
#: Running under the sanitizer job: gcc's libasan preloaded into Python.
SANITIZED = "asan" in os.environ.get("LD_PRELOAD", "")
_SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer",
                    "ERROR: LeakSanitizer", "AddressSanitizer:DEADLYSIGNAL")

# ----------------------------------------------------------------------------- subprocess runner

PRELUDE = '''
import json, os, sys, threading, time
sys.path.insert(0, {tests!r})
import numpy as np
import scipy.sparse
import latentcore

SANITIZED = {sanitized!r}


def case(*parts):
    """Marks the start of a case on stdout, so that a crash names its input."""
    print("CASE", *parts, flush=True)


def names_one_of(exc, words):
    msg = str(exc).lower()
    return any(w.lower() in msg for w in words)


def expect_error(fn, words, types=(ValueError, TypeError)):
    """fn() must raise one of types, with a message naming one of words."""
    try:
        result = fn()
    except types as exc:
        assert names_one_of(exc, words), f"{{type(exc).__name__}} names none of {{words}}: {{exc}}"
        return exc
    raise AssertionError(f"no error; got {{str(result)[:300]}}")


def guard_memory(max_rss_mb):
    """Exits the process (status 3) once its resident memory passes max_rss_mb:
    a kernel that writes gigabytes it was never meant to fails the test
    instead of starving the machine."""
    page = os.sysconf("SC_PAGE_SIZE")

    def watch():
        while True:
            with open("/proc/self/statm") as f:
                rss = int(f.read().split()[1]) * page
            if rss > max_rss_mb * 2**20:
                print(f"MEMORY GUARD: resident memory passed {{max_rss_mb}} MiB", flush=True)
                os._exit(3)
            time.sleep(0.005)

    threading.Thread(target=watch, daemon=True).start()


def limit_address_space(extra_mb):
    """RLIMIT_AS at the current size plus extra_mb, so that a large
    allocation fails (bad_alloc / MemoryError) instead of succeeding. Not
    under ASan, which reserves terabytes of shadow memory."""
    import resource

    with open("/proc/self/statm") as f:
        size = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = size + extra_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

'''


def case(*parts) -> None:
    """Marks the start of a case on stdout, so that a crash names its input."""
    print("CASE", *parts, flush=True)


def _signal_name(returncode: int) -> str:
    if returncode < 0:
        try:
            return f" (killed by {signal.Signals(-returncode).name})"
        except ValueError:
            pass
    return {134: " (SIGABRT: abort, e.g. an exception escaping an OpenMP region or a sanitizer report)",
            3: " (memory guard)"}.get(returncode, "")


def _text(out) -> str:
    if out is None:
        return ""
    return out.decode(errors="replace") if isinstance(out, bytes) else out


def isolated(code: str, *, setup: str = "", timeout: float = 120,
             expect: str | None = "DONE") -> subprocess.CompletedProcess:
    """Runs PRELUDE + setup + code (each dedented on its own) in a fresh
    interpreter; fails on a crash, a hang (timeout), a sanitizer report, a
    non-zero status or a missing ``expect`` line at the end of stdout."""
    body = textwrap.dedent(code)
    first = next((line for line in body.splitlines() if line.strip()), "")
    # An indented body would silently continue the setup's last function instead of running.
    assert not first[:1].isspace(), f"code must dedent to column 0: {first!r}"
    source = PRELUDE.format(tests=str(TESTS), sanitized=SANITIZED) + textwrap.dedent(setup) + "\n" + body
    if expect:
        source += f"\nprint({expect!r}, flush=True)\n"
    try:
        proc = run_isolated(source, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = _text(exc.stdout).splitlines()
        pytest.fail(f"still running after {timeout} s (a hang?); last output: {out[-5:]}\n"
                    f"stderr: {_text(exc.stderr)[-3000:]}", pytrace=False)
    reports = [m for m in _SANITIZER_MARKS if m in proc.stderr]
    last = [line for line in proc.stdout.splitlines() if line.startswith("CASE")][-1:]
    where = f"\nlast case started: {last[0]}" if last else ""
    if reports:
        pytest.fail(f"sanitizer report ({reports[0]}){where}\n{proc.stderr[-8000:]}", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(f"subprocess failed with status {proc.returncode}{_signal_name(proc.returncode)}{where}\n"
                    f"--- stdout (tail)\n{proc.stdout[-3000:]}\n--- stderr (tail)\n{proc.stderr[-8000:]}",
                    pytrace=False)
    if expect:
        assert proc.stdout.rstrip().endswith(expect), proc.stdout[-3000:]
    return proc


def run_property(name: str, timeout: float = 180) -> None:
    """Runs the hypothesis property ``name`` of this module in a subprocess."""
    isolated(f"import test_adversarial as t\nt.{name}()\n", timeout=timeout)


# ----------------------------------------------------------------------------- strategies

#: Finite values a float32 matrix may hold that stress overflow, underflow and cancellation.
EXTREMES = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, -3.0, 1e38, -1e38, 3e19, -3e19, 3.0123408e19, 1e-40, -1e-40,
            1.4e-45, 1e-20, 1e20, 3.4e38, -3.4e38, 1.1754944e-38]
BIG = 1e19  # magnitudes at or above this may be refused (gray) outside knn


def _settings(examples: int, *, shrink: bool = True):
    phases = (Phase.explicit, Phase.generate, Phase.shrink) if shrink else (Phase.explicit, Phase.generate)
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None, phases=phases,
                    print_blob=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much, HealthCheck.large_base_example])


def _element(extreme: bool):
    plain = st.floats(-1e3, 1e3, allow_nan=False, width=32)
    return st.one_of(st.sampled_from(EXTREMES), plain) if extreme else plain


@st.composite
def float_matrix(draw, rows, cols, *, extreme=True, duplicates=True):
    """A float32 (rows, cols) matrix; rows/cols are ints or strategies."""
    n = rows if isinstance(rows, int) else draw(rows)
    d = cols if isinstance(cols, int) else draw(cols)
    extreme = extreme and draw(st.booleans())  # half the matrices plain, half with extremes
    values = draw(st.lists(_element(extreme), min_size=n * d, max_size=n * d))
    X = np.array(values, np.float64).astype(np.float32).reshape(n, d)
    if duplicates and n > 1 and draw(st.booleans()):
        X[draw(st.integers(1, n - 1))] = X[0]
    return X


@st.composite
def with_bad_dtype(draw, X, allow_non_finite=True):
    """X as given, or in another dtype (float64/float16 are accepted, ints
    and bools are not), or with a NaN or inf planted."""
    kind = draw(st.sampled_from(["same"] * 6 + ["float64", "float16", "int32", "bool", "nan", "inf"]
                                if allow_non_finite else ["same"] * 6 + ["float64", "int32"]))
    if kind == "same":
        return X
    if kind in ("nan", "inf"):
        X = X.copy()
        X.flat[draw(st.integers(0, X.size - 1))] = np.nan if kind == "nan" else -np.inf
        return X
    with np.errstate(all="ignore"):
        return X.astype(kind)


def _non_finite_as_float32(a) -> bool:
    with np.errstate(all="ignore"):
        return not np.isfinite(np.asarray(a).astype(np.float32)).all()


def _describe(a) -> str:
    if isinstance(a, np.ndarray):
        if a.size <= 48:
            return f"array({a.tolist()!r}, {a.dtype})"
        return f"array(shape={a.shape}, dtype={a.dtype})"
    if scipy.sparse.issparse(a):
        return (f"csr(shape={a.shape}, data={a.data.tolist()!r}, indices={a.indices.tolist()!r}, "
                f"indptr={a.indptr.tolist()!r})")
    return repr(a)


def describe(**kwargs) -> str:
    return " ".join(f"{k}={_describe(v)}" for k, v in kwargs.items())


@st.composite
def one_fault(draw, valid: dict, invalid: dict):
    """Keyword arguments drawn from ``valid``; in about half the cases one of
    them (the fault, returned too) replaced by a value from ``invalid``."""
    kwargs = {name: draw(strategy) for name, strategy in valid.items()}
    fault = draw(st.sampled_from([None] * len(invalid) + sorted(invalid)))
    if fault is not None:
        kwargs[fault] = draw(invalid[fault])
    return kwargs, fault


def values(*items):
    return st.sampled_from(list(items))


def names_any(exc, names) -> bool:
    """The message names one of ``names`` (names of one or two letters, such as
    k, X, p, as whole words)."""
    import re

    msg = str(exc).lower()
    return any(re.search(rf"(?<![a-z0-9_]){re.escape(name.lower())}(?![a-z0-9_])", msg) if len(name) <= 2
               else name.lower() in msg for name in names)


class Expect:
    """What a case may do: ``bad`` holds the arguments that make it invalid
    (it must raise naming one of them); ``gray`` the arguments that make it
    questionable (it may raise naming one of them, or succeed)."""

    def __init__(self):
        self.bad: list[str] = []
        self.gray: list[str] = []

    def check(self, fn, validate):
        """Calls fn(); returns its result when it was allowed to succeed and
        validate(result) holds."""
        try:
            result = fn()
        except (ValueError, TypeError) as exc:
            allowed = self.bad + self.gray
            assert allowed, f"valid input refused: {type(exc).__name__}: {exc}"
            assert names_any(exc, allowed), f"{type(exc).__name__} names none of {allowed}: {exc}"
            return None
        except MemoryError:
            assert self.bad or self.gray, "MemoryError on a tiny valid input"
            return None
        assert not self.bad, f"invalid input ({self.bad}) accepted; got {str(result)[:300]}"
        validate(result)
        return result


# ----------------------------------------------------------------------------- knn references

def reference_distances(Q: np.ndarray, X: np.ndarray, metric: str) -> np.ndarray:
    """(m, n) float64 distances between float32 rows, as the documentation defines them."""
    Q = np.asarray(Q, np.float32).astype(np.float64)
    X = np.asarray(X, np.float32).astype(np.float64)
    if metric in ("euclidean", "sqeuclidean"):
        sq = ((Q[:, None, :] - X[None, :, :]) ** 2).sum(-1)
        return np.sqrt(sq) if metric == "euclidean" else sq
    dot = (Q[:, None, :] * X[None, :, :]).sum(-1)
    if metric == "inner_product":
        return -dot
    norms = np.sqrt((Q ** 2).sum(1))[:, None] * np.sqrt((X ** 2).sum(1))[None, :]
    return np.maximum(0.0, 1.0 - dot / norms)


def check_knn_result(X, Q, k, metric, exclude_self, idx, dist, *, optimal=True):
    """A k-NN result is valid: shapes and dtypes, indices in range and distinct,
    no self match, each distance the exact distance of its index (float32 of
    the double value), rows sorted, and (optimal) the k smallest distances."""
    X32 = np.asarray(X, np.float32)
    Q32 = X32 if Q is None else np.asarray(Q, np.float32)
    m, n = Q32.shape[0], X32.shape[0]
    assert isinstance(idx, np.ndarray) and idx.dtype == np.int32 and idx.shape == (m, k), (idx.dtype, idx.shape)
    assert isinstance(dist, np.ndarray) and dist.dtype == np.float32 and dist.shape == (m, k)
    assert ((idx >= 0) & (idx < n)).all(), f"indices out of range [0, {n}): {idx.tolist()}"
    assert all(len(set(row)) == k for row in idx.tolist()), f"repeated neighbours: {idx.tolist()}"
    self_excluded = Q is None and exclude_self
    if self_excluded:
        assert (idx != np.arange(m)[:, None]).all(), f"a point is its own neighbour: {idx.tolist()}"
    ref = reference_distances(Q32, X32, metric)
    got = np.take_along_axis(ref, idx.astype(np.intp), axis=1)
    with np.errstate(over="ignore"):
        expected32 = got.astype(np.float32)
    atol = 1e-6 if metric == "cosine" else 0.0
    assert np.allclose(dist, expected32, rtol=1e-5, atol=atol, equal_nan=False), \
        f"distances {dist.tolist()} are not those of the indices {expected32.tolist()}"
    scale = np.maximum(np.abs(got[:, 1:]), np.abs(got[:, :-1]))
    assert (np.diff(got, axis=1) >= -1e-9 * scale - (1e-12 if metric == "cosine" else 0)).all(), \
        f"rows not sorted by distance: {got.tolist()}"
    if optimal:
        if self_excluded:
            ref = ref.copy()
            ref[np.arange(m), np.arange(m)] = np.inf
        best = np.sort(ref, axis=1)[:, :k]
        close = np.isclose(got, best, rtol=1e-9, atol=1e-12 if metric == "cosine" else 0.0)
        assert close.all(), f"not the nearest: got distances {got.tolist()}, the nearest are {best.tolist()}"


# ----------------------------------------------------------------------------- knn properties

@st.composite
def knn_cases(draw, max_n=10, extreme=True):
    n = draw(st.integers(1, max_n))
    d = draw(st.integers(1, 4))
    X = draw(float_matrix(n, d, extreme=extreme))
    Q = None
    if draw(st.booleans()):
        Q = draw(float_matrix(st.integers(1, 4), d, extreme=extreme))
        if draw(st.integers(0, 9)) == 0:
            Q = Q[:, :-1] if d > 1 else np.concatenate([Q, Q], axis=1)  # feature mismatch
    metric = draw(st.sampled_from(["euclidean", "sqeuclidean", "cosine", "inner_product", "l2", "ip",
                                   "manhattan"]))
    exclude_self = draw(st.booleans())
    limit = n - 1 if (Q is None and exclude_self) else n
    k = draw(st.one_of(st.sampled_from([0, 1, limit, limit + 1, n, -1, 2.0, True, np.int64(1)]),
                       st.integers(1, max(1, limit))))
    X = draw(with_bad_dtype(X))
    return X, Q, k, metric, exclude_self


def _knn_expect(X, Q, k, metric, exclude_self) -> Expect:
    e = Expect()
    X = np.asarray(X)
    if X.dtype.kind != "f" or _non_finite_as_float32(X):
        e.bad.append("X")
    if Q is not None and (Q.shape[1] != X.shape[1]):
        e.bad.append("queries")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        e.bad.append("k")
    else:
        limit = X.shape[0] - 1 if (Q is None and exclude_self) else X.shape[0]
        if not 1 <= k <= limit:
            e.bad.append("k")
    name = {"l2": "euclidean", "ip": "inner_product"}.get(metric, metric)
    if name not in ("euclidean", "sqeuclidean", "cosine", "inner_product"):
        e.bad.append("metric")
    if name == "cosine" and not e.bad:
        for arr, label in ((X, "X"), (Q, "queries")):
            if arr is None:
                continue
            a32 = np.asarray(arr, np.float32)
            if (np.abs(a32).max(axis=1) == 0).any():
                e.bad.append(label)
            elif (np.abs(a32).max(axis=1) < 1.2e-38).any():
                e.gray.append(label)  # a subnormal row: refusing it as zero is acceptable
    return e


def knn_property_small():
    """n <= 10: every point is a re-ranked candidate, so the result must be exact."""
    @_settings(220)
    @given(knn_cases())
    def prop(args):
        X, Q, k, metric, exclude_self = args
        case("knn", describe(X=X, queries=Q, k=k, metric=metric, exclude_self=exclude_self))
        name = {"l2": "euclidean", "ip": "inner_product"}.get(metric, metric)
        _knn_expect(X, Q, k, metric, exclude_self).check(
            lambda: latentcore.knn(X, k, queries=Q, metric=metric, exclude_self=exclude_self, n_jobs=2),
            lambda r: check_knn_result(X, Q, k, name, exclude_self, *r))

    prop()


def knn_property_large():
    """n up to 60: plain values must give the exact k nearest; extreme values
    a valid result (each distance exact, sorted; optimality is not asserted
    because the float32 ranking surrogate cannot order points 1e38 apart and 1 apart)."""
    @_settings(80)
    @given(knn_cases(max_n=60, extreme=False), st.booleans())
    def prop(args, extreme):
        X, Q, k, metric, exclude_self = args
        if extreme and isinstance(X, np.ndarray) and X.dtype == np.float32:
            X = X.copy()
            X[0] = 1e38
        case("knn-large", describe(X=X, queries=Q, k=k, metric=metric, exclude_self=exclude_self))
        name = {"l2": "euclidean", "ip": "inner_product"}.get(metric, metric)
        _knn_expect(X, Q, k, metric, exclude_self).check(
            lambda: latentcore.knn(X, k, queries=Q, metric=metric, exclude_self=exclude_self, n_jobs=2),
            lambda r: check_knn_result(X, Q, k, name, exclude_self, *r, optimal=not extreme))

    prop()


def knn_graph_property():
    @st.composite
    def cases(draw):
        X = draw(float_matrix(st.integers(1, 12), st.integers(1, 3)))
        n = X.shape[0]
        k = draw(st.one_of(st.integers(1, max(1, n - 1)), st.integers(1, max(1, n - 1)), values(0, n, -1)))
        return X, k, draw(values("connectivity", "distance", "distance", "weights")), draw(st.booleans())

    @_settings(50)
    @given(cases())
    def prop(args):
        X, k, mode, symmetrize = args
        case("KNNGraph", describe(X=X, k=k, mode=mode, symmetrize=symmetrize))
        e = Expect()
        n = X.shape[0]
        if not 1 <= k <= n - 1:
            e.bad.append("k")
            e.bad.append("n_neighbors")
        if mode not in ("connectivity", "distance"):
            e.bad.append("mode")

        def valid(model):
            G = model.graph_
            assert isinstance(G, scipy.sparse.csr_array) and G.shape == (n, n) and G.dtype == np.float32
            check_knn_result(X, None, k, "euclidean", True, model.indices_, model.distances_)
            expected = {}
            for i in range(n):
                for j, dist in zip(model.indices_[i].tolist(), model.distances_[i].tolist()):
                    expected[(i, j)] = 1.0 if mode == "connectivity" else dist
            if symmetrize:
                for (i, j), value in list(expected.items()):
                    expected.setdefault((j, i), value)
            coo = G.tocoo()
            got = {(int(r), int(c)): float(v) for r, c, v in zip(coo.row, coo.col, coo.data)}
            assert len(got) == coo.nnz, "repeated entries"
            assert got == pytest.approx(expected), (got, expected)

        e.check(lambda: latentcore.KNNGraph(k, mode=mode, symmetrize=symmetrize, n_jobs=1).fit(X), valid)

    prop()


def trustworthiness_property():
    from sklearn.manifold import trustworthiness as sk_trustworthiness

    @_settings(40)
    @given(float_matrix(st.integers(2, 30), st.integers(1, 4), extreme=False, duplicates=False),
           st.integers(1, 3), st.integers(-1, 16), st.booleans())
    def prop(X, c, k, extreme):
        rng = np.random.default_rng(X.shape[0])
        E = (rng.standard_normal((X.shape[0], c)) * (1e30 if extreme else 1)).astype(np.float32)
        case("trustworthiness", describe(X=X, embedding=E, k=k))
        e = Expect()
        if not (1 <= k < X.shape[0] / 2):
            e.bad.append("k")

        def valid(t):
            assert isinstance(t, float) and 0.0 <= t <= 1.0, t
            if not extreme:
                # sklearn's definition; ties in X (float32 values drawn from a
                # small set) may rank differently, so compare on distinct rows only.
                if len(np.unique(X, axis=0)) == len(X):
                    ref = sk_trustworthiness(X.astype(np.float64), E.astype(np.float64), n_neighbors=k)
                    assert abs(t - ref) < 1e-6, (t, ref)

        e.check(lambda: latentcore.trustworthiness(X, E, k=k, n_jobs=1), valid)

    prop()


def test_knn_small_shapes_and_extremes_are_exact():
    run_property("knn_property_small")


def test_knn_larger_shapes():
    run_property("knn_property_large")


def test_knn_graph():
    run_property("knn_graph_property")


def test_trustworthiness():
    run_property("trustworthiness_property")


# ----------------------------------------------------------------------------- crafted CSR matrices

#: How a square CSR matrix is corrupted, and whether the result is still a valid matrix.
CORRUPTIONS = {
    "none": True, "unsorted": True, "duplicate": True, "explicit_zero": True, "int64_indices": True,
    "index_n": False, "index_negative": False, "index_2**31": False, "index_2**32+1": False,
    "nan": False, "negative": False, "inf": False, "indptr_not_monotone": False, "indptr_past_end": False,
    "not_square": False, "float_indices": False,
}


@st.composite
def crafted_csr(draw, min_n=1, max_n=8, symmetric=False, allow=None, valid_weight=1):
    """(corruption, csr_array, dense reference with duplicates summed, valid).

    Valid variations are built through scipy's constructor; invalid ones are
    written into a valid matrix's arrays afterwards, as a user's code can,
    past scipy's own (partial) checks."""
    n = draw(st.integers(min_n, max_n))
    density = draw(st.sampled_from([0.0, 0.3, 0.6, 1.0]))
    mask = np.array(draw(st.lists(st.floats(0, 1), min_size=n * n, max_size=n * n))).reshape(n, n) < density
    weights = np.array(draw(st.lists(st.sampled_from([1.0, 0.5, 2.0, 1e-30, 1e30, 3.0]), min_size=n * n,
                                     max_size=n * n))).reshape(n, n)
    A = np.where(mask, weights, 0.0)
    if symmetric:
        A = np.maximum(A, A.T)
    kinds = list(CORRUPTIONS) if allow is None else allow
    kind = draw(st.sampled_from(kinds + [k for k in kinds if CORRUPTIONS[k]] * (valid_weight - 1)))
    canonical = scipy.sparse.csr_array(A)
    data, indices, indptr = canonical.data.copy(), canonical.indices.astype(np.int64), canonical.indptr.astype(np.int64)
    nnz = data.size
    if nnz == 0 and kind not in ("none", "not_square", "int64_indices"):
        kind = "none"
    if kind == "indptr_not_monotone" and n < 3:
        kind = "none"
    pos = draw(st.integers(0, max(0, nnz - 1)))
    row = int(np.searchsorted(indptr, pos, side="right") - 1)
    reference = A.copy()
    shape = (n, n)
    if kind == "unsorted":
        for r in range(n):
            lo, hi = indptr[r], indptr[r + 1]
            indices[lo:hi], data[lo:hi] = indices[lo:hi][::-1].copy(), data[lo:hi][::-1].copy()
    elif kind == "duplicate":
        reference[row, indices[pos]] += 0.5
        indices, data = np.insert(indices, pos, indices[pos]), np.insert(data, pos, 0.5)
        indptr[row + 1:] += 1
    elif kind == "explicit_zero":
        data[pos] = 0.0
        reference[row, indices[pos]] = 0.0
    elif kind == "not_square":
        shape = (n, n + 1)
        reference = np.concatenate([A, np.zeros((n, 1))], axis=1)
    matrix = scipy.sparse.csr_array((data, indices, indptr), shape=shape)
    if kind in ("int64_indices", "index_2**31", "index_2**32+1"):
        matrix.indices, matrix.indptr = matrix.indices.astype(np.int64), matrix.indptr.astype(np.int64)
    if kind == "index_n":
        matrix.indices[pos] = n
    elif kind == "index_negative":
        matrix.indices[pos] = -1
    elif kind == "index_2**31":
        matrix.indices[pos] = 2**31
    elif kind == "index_2**32+1":
        matrix.indices[pos] = 2**32 + 1
    elif kind == "nan":
        matrix.data[pos] = np.nan
    elif kind == "negative":
        matrix.data[pos] = -1.0
    elif kind == "inf":
        matrix.data[pos] = np.inf
    elif kind == "indptr_not_monotone":  # row 1 ends before it starts
        matrix.indptr[1], matrix.indptr[2] = nnz, 0
    elif kind == "indptr_past_end":  # the last row runs past the stored entries
        matrix.indptr[-1] = nnz + 3
    elif kind == "float_indices":
        matrix.indices = matrix.indices.astype(np.float64) + 0.5
    return kind, matrix, reference, CORRUPTIONS[kind]


# ----------------------------------------------------------------------------- t-SNE

def tsne_params(n):
    """TSNE keyword arguments at and beyond their bounds: (kwargs, the bad one or None)."""
    limit = (n - 1) / 3
    nan = float("nan")
    valid = dict(perplexity=values(min(2.0, limit * 0.9), limit * 0.5, limit * 0.999, np.float32(limit * 0.5)),
                 n_components=values(1, 2, 3), n_iter=values(1, 12, 30), early_exaggeration_iter=values(0, 5, 10),
                 early_exaggeration=values(12.0, 1.0, 4.0), exaggeration=values(None, 2.0, 1.0),
                 dof=values(1.0, 0.5, 3.0), negative_gradient_method=values("fft", "exact"),
                 ints_in_interval=values(1.0, 2.0, 1e-3), min_num_intervals=values(None, 1, 5),
                 affinities=values("perplexity", "uniform", "multiscale"),
                 momentum=values((0.5, 0.8), (0.0, 0.0)))
    invalid = dict(perplexity=values(limit, 0.0, -1.0, nan), n_components=values(0, 4), n_iter=values(0, -1),
                   early_exaggeration_iter=values(-1), early_exaggeration=values(0.0, -2.0, nan),
                   exaggeration=values(0.0, -1.0, nan), dof=values(0.0, -1.0, nan),
                   negative_gradient_method=values("bh"), ints_in_interval=values(0.0, -1.0, nan),
                   min_num_intervals=values(-1), affinities=values("gaussian"),
                   momentum=values((nan, 0.8), (0.5, -1.0)))
    return one_fault(valid, invalid)


def _check_embedding(Y, n, c):
    assert isinstance(Y, np.ndarray) and Y.dtype == np.float32 and Y.shape == (n, c), (type(Y), Y.shape)
    assert np.isfinite(Y).all(), f"non-finite embedding: {Y.tolist()}"


def tsne_points_property():
    @_settings(40, shrink=False)
    @given(st.integers(4, 24).flatmap(lambda n: st.tuples(float_matrix(n, st.integers(1, 3)),
                                                          tsne_params(n))),
           st.booleans())
    def prop(args, with_dtype):
        X, (kwargs, fault) = args
        if with_dtype:
            X = X.astype(np.float64)
        case("TSNE(X)", describe(X=X, **kwargs))
        e = Expect()
        if fault:
            e.bad.append(fault)
        if (np.abs(X) >= BIG).any():
            e.gray.append("X")
        model = latentcore.TSNE(random_state=0, n_jobs=1, **kwargs)

        def valid(Y):
            _check_embedding(Y, X.shape[0], kwargs["n_components"])
            assert np.isfinite(model.kl_divergence_)

        e.check(lambda: model.fit_transform(X), valid)

    prop()


def tsne_affinities_property():
    """A user's sparse P: valid matrices (also unsorted, duplicated, explicit
    zeros, int64 indices) give the documented normalised P; crafted ones are refused."""
    @_settings(60, shrink=False)
    @given(crafted_csr(min_n=4, max_n=10, symmetric=True, valid_weight=3), st.sampled_from(["fft", "exact"]))
    def prop(crafted, method):
        kind, P, reference, valid_matrix = crafted
        case("TSNE(P)", kind, describe(P=P))
        n = P.shape[0]
        e = Expect()
        if not valid_matrix:
            e.bad += ["affinit", "indices", "index", "indptr", "square", "shape", "P"]
        if (reference - np.diag(np.diag(reference))).sum() == 0:
            e.bad += ["affinit", "zero", "P"]
        model = latentcore.TSNE(perplexity=1.0, n_iter=15, early_exaggeration_iter=5, random_state=0,
                                n_jobs=1, negative_gradient_method=method)

        def valid(Y):
            _check_embedding(Y, n, 2)
            off_diagonal = reference - np.diag(np.diag(reference))  # t-SNE's P has no self-affinity
            expected = (off_diagonal + off_diagonal.T) / (2.0 * off_diagonal.sum())
            got = model.affinities_
            assert got.shape == (n, n)
            assert np.allclose(got.toarray(), expected, rtol=1e-6, atol=1e-15), (got.toarray(), expected)

        e.check(lambda: model.fit_transform(P), valid)

    prop()


@st.composite
def knn_lists(draw, min_n=2, max_n=12):
    """(indices, distances) k-NN lists, valid or crafted, with the names of what is bad."""
    n = draw(st.integers(min_n, max_n))
    k = draw(st.integers(1, n - 1))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    idx = np.stack([rng.permutation(np.delete(np.arange(n), i))[:k] for i in range(n)]).astype(np.int32)
    dist = np.sort(rng.uniform(0.1, 3.0, (n, k)), axis=1).astype(np.float32)
    kind = draw(st.sampled_from(["none"] * 7 + ["int64", "huge", "zero", "subnormal"]
                                + ["float_indices", "index_n", "index_negative", "index_2**32+1", "nan", "negative",
                                   "inf", "shape", "one_d"]))
    bad = []
    r, c = draw(st.integers(0, n - 1)), draw(st.integers(0, k - 1))
    if kind == "int64":
        idx = idx.astype(np.int64)
    elif kind == "float_indices":
        idx = idx.astype(np.float64) + 0.5
        bad.append("indices")
    elif kind == "index_n":
        idx[r, c] = n
        bad.append("indices")
    elif kind == "index_negative":
        idx[r, c] = -1
        bad.append("indices")
    elif kind == "index_2**32+1":
        idx = idx.astype(np.int64)
        idx[r, c] = 2**32 + 1
        bad.append("indices")
    elif kind == "nan":
        dist[r, c] = np.nan
        bad.append("distances")
    elif kind == "negative":
        dist[r, c] = -1.0
        bad.append("distances")
    elif kind == "inf":
        dist[r, c] = np.inf
        bad.append("distances")
    elif kind == "shape":
        dist = dist[:, :-1] if k > 1 else dist[:-1]
        bad += ["distances", "indices", "shape"]
    elif kind == "huge":
        dist[r] = 3e38
    elif kind == "zero":
        dist[r] = 0.0
    elif kind == "subnormal":
        dist[r] = 1e-40
    elif kind == "one_d":
        idx, dist = idx[:, 0], dist[:, 0]
        bad += ["indices", "distances", "2-d", "shape"]
    return kind, idx, dist, bad


def affinity_functions_property():
    """perplexity_affinities / uniform_affinities on crafted k-NN lists."""
    from latentcore.tsne import perplexity_affinities, uniform_affinities

    @_settings(120)
    @given(knn_lists(), st.sampled_from([1.0, 2.0, 0.5, 1e-3, 1e3, 0.0, -1.0, float("nan"), np.float32(2.0)]),
           st.booleans())
    def prop(lists, perplexity, uniform):
        kind, idx, dist, bad = lists
        case("affinities", kind, describe(indices=idx, distances=dist, perplexity=perplexity, uniform=uniform))
        e = Expect()
        distances_only = kind in ("nan", "negative", "inf", "shape")
        e.bad += [] if (uniform and distances_only) else bad
        if not uniform and not (np.isfinite(perplexity) and perplexity > 0):
            e.bad.append("perplexity")
        if not uniform and e.bad == [] and kind == "huge":
            e.gray.append("distances")
        if not uniform and perplexity >= idx.shape[-1] if idx.ndim == 2 else False:
            e.gray.append("perplexity")  # unreachable: at most k effective neighbours
        n = idx.shape[0]

        def valid(P):
            assert isinstance(P, scipy.sparse.csr_array) and P.shape == (n, n), (type(P), P.shape)
            dense = P.toarray()
            assert np.isfinite(dense).all() and (dense >= 0).all(), dense
            assert np.isclose(dense.sum(), 1.0), dense.sum()
            assert np.allclose(dense, dense.T, rtol=1e-12, atol=0)
            support = np.zeros((n, n), bool)
            support[np.repeat(np.arange(n), idx.shape[1]), idx.ravel().astype(np.intp)] = True
            support |= support.T
            assert not (dense[~support] != 0).any(), "weight outside the k-NN pairs"
            if uniform:
                C = np.zeros((n, n))
                np.add.at(C, (np.repeat(np.arange(n), idx.shape[1]), idx.ravel().astype(np.intp)),
                          1.0 / idx.shape[1])
                assert np.allclose(dense, (C + C.T) / (2 * n), rtol=1e-6, atol=1e-15)

        if uniform:
            e.check(lambda: uniform_affinities(idx), valid)
        else:
            e.check(lambda: perplexity_affinities(idx, dist, perplexity, n_jobs=1), valid)

    prop()


def tsne_knn_input_property():
    @_settings(40, shrink=False)
    @given(knn_lists(min_n=7, max_n=12))
    def prop(lists):
        kind, idx, dist, bad = lists
        case("TSNE((idx, dist))", kind, describe(indices=idx, distances=dist))
        e = Expect()
        e.bad += bad
        if kind == "huge":
            e.gray.append("distances")
        model = latentcore.TSNE(perplexity=1.0, n_iter=12, early_exaggeration_iter=4, random_state=0, n_jobs=1)
        e.check(lambda: model.fit_transform((idx, dist)), lambda Y: _check_embedding(Y, idx.shape[0], 2))

    prop()


def test_tsne_on_points():
    run_property("tsne_points_property", timeout=240)


def test_tsne_on_crafted_affinity_matrices():
    run_property("tsne_affinities_property", timeout=240)


def test_tsne_on_crafted_knn_lists():
    run_property("tsne_knn_input_property", timeout=240)


def test_affinity_functions():
    run_property("affinity_functions_property")


# ----------------------------------------------------------------------------- walks and skip-gram

def check_walks(W, A: np.ndarray, walk_length: int, walks_per_node: int):
    """Walks are valid for the dense adjacency A (after summing duplicates,
    zero weights dropped): walk w starts at w % n, every step follows an
    edge, -1 pads only after a node without out-edges."""
    n = A.shape[0]
    assert isinstance(W, np.ndarray) and W.dtype == np.int32 and W.shape == (walks_per_node * n, walk_length), \
        (W.dtype, W.shape)
    assert ((W >= -1) & (W < n)).all(), W.tolist()
    assert np.array_equal(W[:, 0], np.arange(W.shape[0]) % n), W[:, 0].tolist()
    for walk in W.tolist():
        for a, b in zip(walk, walk[1:]):
            if a == -1:
                assert b == -1, f"walk resumes after padding: {walk}"
            elif b == -1:
                assert not (A[a] > 0).any(), f"padding at node {a}, which has out-edges: {walk}"
            else:
                assert A[a, b] > 0, f"step {a} -> {b} is not an edge: {walk}"


def walks_property():
    valid = dict(walk_length=values(2, 3, 7), walks_per_node=values(1, 2),
                 p=values(1.0, 0.25, 4.0, 1e-3, 1e3, np.float32(0.5)), q=values(1.0, 0.5, 2.0, 1e-3, 1e3))
    invalid = dict(walk_length=values(1, 0, -1, 2.5), walks_per_node=values(0, -1),
                   p=values(0.0, -1.0, float("nan")), q=values(0.0, float("inf")))

    @_settings(90)
    @given(crafted_csr(valid_weight=3), one_fault(valid, invalid))
    def prop(crafted, params):
        kind, G, reference, valid_matrix = crafted
        kwargs, fault = params
        case("random_walks", kind, describe(graph=G, **kwargs))
        e = Expect()
        if not valid_matrix:
            e.bad += ["graph", "weight", "edge", "ind", "square"]
        if fault:
            e.bad.append(fault)
        e.check(lambda: latentcore.random_walks(G, random_state=0, n_jobs=2, **kwargs),
                lambda W: check_walks(W, reference, kwargs["walk_length"], kwargs["walks_per_node"]))

    prop()


@st.composite
def walk_arrays(draw):
    n_walks, length = draw(st.integers(1, 5)), draw(st.integers(1, 7))
    ids = draw(st.lists(st.sampled_from([0, 1, 2, 3, 5, 0, 1, -1, -1]), min_size=n_walks * length,
                        max_size=n_walks * length))
    W = np.array(ids, np.int64).reshape(n_walks, length)
    kind = draw(st.sampled_from(["int32"] * 6 + ["int64", "uint8", "int8"] * 2
                                + ["-2", "2**31", "2**40", "float", "bool", "all_padding", "empty", "one_d"]))
    bad = []
    if kind in ("int32", "int64", "uint8", "int8"):
        W = W.astype(kind) if kind != "uint8" else np.abs(W).astype(np.uint8)
    elif kind == "-2":
        W[0, 0] = -2
        bad.append("walks")
    elif kind in ("2**31", "2**40"):
        W[0, 0] = 2**31 if kind == "2**31" else 2**40
        bad += ["walks", "n_nodes"]
    elif kind == "float":
        W = W.astype(np.float64)
        bad.append("walks")
    elif kind == "bool":
        W = W > 0
        bad.append("walks")
    elif kind == "all_padding":
        W[:] = -1
        bad.append("walks")
    elif kind == "empty":
        W = W[:0]
        bad.append("walks")
    elif kind == "one_d":
        W = W[0]
        bad.append("walks")
    if kind not in bad and W.dtype.kind in "iu" and W.size and W.max() < 0:
        bad.append("walks")
    return kind, W, bad


def skipgram_property():
    valid = dict(n_nodes=values(None, 6), dim=values(1, 3, 8), window=values(1, 2, 5, 2**20, 2**30),
                 negative=values(1, 2, 5), alpha=values(0.025, 1.0, np.float32(0.5)), sample=values(1e-3, 0.0),
                 ns_exponent=values(0.75, 0.0, -1.0), epochs=values(1, 2))
    invalid = dict(n_nodes=values(0, 1), dim=values(0, -1), window=values(0, -1), negative=values(0, -1),
                   alpha=values(0.0, -0.1, float("nan")), sample=values(-1.0), ns_exponent=values(float("inf")),
                   epochs=values(0))

    @_settings(80)
    @given(walk_arrays(), one_fault(valid, invalid), values(None, None, None, 2**31, 2**31 - 1),
           values("window", "negative"))
    def prop(walks, params, huge, which):
        if which == "negative" and huge is not None:
            huge = 2**31  # past int32: must be refused (2**31 - 1 negatives would be honest but endless work)
        kind, W, bad = walks
        kwargs, fault = params
        e = Expect()
        e.bad += bad
        if fault == "n_nodes" and kwargs["n_nodes"] == 1:
            if W.dtype.kind in "iu" and W.size and W.max() >= 1 and not bad:
                e.bad += ["n_nodes", "walks"]
        elif fault:
            e.bad.append(fault)
            if fault == "alpha":
                e.bad.append("min_alpha")  # min_alpha must lie in [0, alpha]
        if huge is not None and fault != which:  # sizes past int32: refused naming them, or taken
            kwargs[which] = huge
            e.gray.append(which)
        case("skipgram", kind, describe(walks=W, **kwargs))
        n_nodes = kwargs["n_nodes"]
        nodes = n_nodes if n_nodes is not None else (int(W.max()) + 1 if W.size and W.dtype.kind in "iu" else 0)

        def valid(V):
            assert isinstance(V, np.ndarray) and V.dtype == np.float32 and V.shape == (nodes, kwargs["dim"]), V.shape
            assert np.isfinite(V).all(), V

        e.check(lambda: latentcore.skipgram(W, random_state=0, n_jobs=2, **kwargs), valid)

    prop()


def node2vec_property():
    @_settings(40, shrink=False)
    @given(crafted_csr(max_n=6, valid_weight=2, allow=["none", "unsorted", "duplicate", "explicit_zero", "int64_indices",
                                       "index_n", "nan", "negative", "not_square"]),
           st.sampled_from([1, 2, 4]), st.sampled_from([2, 3]), st.sampled_from([1, 2, 2**30]),
           st.sampled_from([1, 3]), st.sampled_from([(1.0, 1.0), (0.25, 4.0), (1e3, 1e-3)]), st.booleans())
    def prop(crafted, dim, walk_length, window, negative, pq, deepwalk):
        kind, G, reference, valid_matrix = crafted
        case("Node2Vec", kind, describe(graph=G, dim=dim, walk_length=walk_length, window=window,
                                        negative=negative, pq=pq, deepwalk=deepwalk))
        e = Expect()
        if not valid_matrix:
            e.bad += ["graph", "weight", "edge", "ind", "square"]
        elif not (reference > 0).any():
            e.gray += ["graph", "edge"]  # no edges: nothing to train on
        common = dict(dim=dim, walk_length=walk_length, walks_per_node=2, window=window, negative=negative,
                      random_state=0, n_jobs=1)
        model = latentcore.DeepWalk(**common) if deepwalk else latentcore.Node2Vec(*pq, **common)
        n = reference.shape[0]

        def valid(V):
            assert isinstance(V, np.ndarray) and V.dtype == np.float32 and V.shape == (n, dim), V.shape
            assert np.isfinite(V).all()
            assert len(model.nodes_) == n
            assert np.array_equal(model.transform(list(model.nodes_)), V)

        e.check(lambda: model.fit_transform(G), valid)

    prop()


def test_random_walks_on_crafted_graphs():
    run_property("walks_property")


def test_skipgram_on_crafted_walks():
    run_property("skipgram_property")


def test_deepwalk_and_node2vec_on_crafted_graphs():
    run_property("node2vec_property", timeout=240)


# ----------------------------------------------------------------------------- sparse coding

@st.composite
def sparse_cases(draw):
    """(X, dictionary, keyword arguments, init kind, through SparseCoder?)."""
    n, d, a = draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 7))
    X = draw(float_matrix(n, d))
    D = draw(float_matrix(a, d))
    method = draw(values("omp", "lasso", "lars", "topk"))
    nan = float("nan")
    valid = dict(n_nonzero=values(None, 1, a, np.int64(1), min(2, a)),
                 alpha=values(0.1, 0.0, 1e-3, 1e38, np.float32(0.1)) if method in ("lasso", "lars")
                 else values(None, 0.1),
                 tol=values(None, None, 0.0, 1e-6, np.float32(0.5), 1e38), positive=st.booleans(),
                 max_iter=values(1000, 1, 5), normalize=st.booleans(),
                 init=values(None, "dense", "sparse") if method == "lasso" else values(None),
                 X=values("same"), dictionary=values("same"), method=values(method))
    invalid = dict(n_nonzero=values(0, a + 1, 1.5), alpha=values(None, -1.0, nan), tol=values(-1.0, nan, "0.1"),
                   max_iter=values(0), method=values("ksvd"), dictionary=values("unnormalized", "zero_atom"),
                   init=values("nan_sparse", "nan_dense", "shape", "negative") if method == "lasso" else values("dense"),
                   X=values("nan", "int32", "float16_overflow"))
    kw, _ = draw(one_fault(valid, invalid))
    x_kind, d_kind, init_kind = kw.pop("X"), kw.pop("dictionary"), kw.pop("init")
    if x_kind == "nan":
        X[0, 0] = np.nan
    elif x_kind == "int32":
        X = np.round(np.clip(X, -100, 100)).astype(np.int32)
    elif x_kind == "float16_overflow":
        X = X.astype(np.float64)
        X[0, 0] = 1e6  # beyond float16, but latentcore converts to float32: still fine
        with np.errstate(over="ignore"):
            X = X.astype(np.float16)
    norms = np.linalg.norm(D.astype(np.float64), axis=1, keepdims=True)
    if d_kind == "zero_atom":
        D[0] = 0.0
        kw["normalize"] = True
    elif not kw["normalize"] and d_kind == "same":
        D = np.where(norms > 0, D / np.where(norms > 0, norms, 1), 0).astype(np.float32)
        D[(norms == 0).ravel(), 0] = 1.0
    elif d_kind == "unnormalized":
        kw["normalize"] = False
        D[0] = np.float32(2.0)  # norm 2 * sqrt(d)
    if kw["positive"] and init_kind == "negative":
        pass
    elif init_kind == "negative":
        kw["positive"] = True
    return X, D, kw, init_kind, draw(st.booleans())


def _sparse_expect(X, D, kw, init) -> Expect:
    e = Expect()
    method = kw["method"]
    if np.asarray(X).dtype.kind != "f" or _non_finite_as_float32(X):
        e.bad.append("X")
    if method not in ("omp", "lasso", "lars", "topk"):
        e.bad.append("method")
    tol = kw["tol"]
    if tol is not None and not (isinstance(tol, (int, float, np.floating)) and np.isfinite(tol) and tol >= 0):
        e.bad.append("tol")
    norms = np.linalg.norm(D.astype(np.float64), axis=1)
    if kw["normalize"]:
        if (norms == 0).any():
            e.bad.append("dictionary")
    elif (np.abs(norms - 1) > 1e-4).any():
        e.bad.append("dictionary")
    if init is not None and method != "lasso":
        e.bad.append("init")
    alpha = kw["alpha"]
    alpha_ok = alpha is not None and np.isfinite(alpha) and alpha >= 0
    if method in ("lasso", "lars"):
        if not alpha_ok:
            e.bad.append("alpha")
        if kw["max_iter"] < 1:
            e.bad.append("max_iter")
        if init is not None and method == "lasso":
            dense = init.toarray() if scipy.sparse.issparse(init) else init
            if dense.shape != (np.asarray(X).shape[0], D.shape[0]) or not np.isfinite(dense).all():
                e.bad.append("init")
            elif kw["positive"] and (dense < 0).any():
                e.bad.append("init")
    else:  # LASSO's options may be checked whatever the method
        if alpha is not None and not alpha_ok:
            e.gray.append("alpha")
        if kw["max_iter"] < 1:
            e.gray.append("max_iter")
    if method in ("omp", "topk"):
        k = kw["n_nonzero"]
        if k is not None and (not isinstance(k, (int, np.integer)) or not 1 <= k <= D.shape[0]):
            e.bad.append("n_nonzero")
    elif kw["n_nonzero"] is not None and not isinstance(kw["n_nonzero"], (int, np.integer)):
        e.gray.append("n_nonzero")
    if (np.abs(np.asarray(X, np.float64)) >= BIG).any() or (np.abs(D) >= BIG).any():
        e.gray += ["X", "dictionary"]
    return e


def check_codes(codes, X, D, kw, init):
    """Sparse codes are valid and at least as good as the trivial answer."""
    X64 = np.asarray(X, np.float32).astype(np.float64)
    D64 = D.astype(np.float64)
    if kw["normalize"]:
        D64 = D64 / np.linalg.norm(D64, axis=1, keepdims=True)
    n, a = X64.shape[0], D64.shape[0]
    assert isinstance(codes, scipy.sparse.csr_array) and codes.shape == (n, a) and codes.dtype == np.float32, \
        (type(codes), codes.shape, codes.dtype)
    assert np.isfinite(codes.data).all(), f"non-finite codes {codes.toarray().tolist()}"
    assert ((codes.indices >= 0) & (codes.indices < a)).all()
    C = codes.toarray().astype(np.float64)
    if kw["positive"]:
        assert (C >= 0).all(), C
    method = kw["method"]
    per_row = (C != 0).sum(axis=1)
    k = kw["n_nonzero"] if kw["n_nonzero"] is not None else (
        a if (method == "omp" and kw["tol"] is not None) else max(1, X64.shape[1] // 10))
    if method in ("omp", "topk"):
        assert (per_row <= k).all(), (per_row, k)
    residual = ((X64 - C @ D64) ** 2).sum(axis=1)
    energy = (X64 ** 2).sum(axis=1)
    if method == "omp":
        assert (residual <= energy * (1 + 1e-3) + 1e-30).all(), (residual, energy)
    elif method in ("lasso", "lars"):
        d = X64.shape[1]
        objective = residual / (2 * d) + kw["alpha"] * np.abs(C).sum(axis=1)
        start = np.zeros_like(C) if init is None else (init.toarray() if scipy.sparse.issparse(init)
                                                        else np.asarray(init, np.float64))
        start_objective = ((X64 - start @ D64) ** 2).sum(axis=1) / (2 * d) + kw["alpha"] * np.abs(start).sum(axis=1)
        assert (objective <= start_objective * (1 + 1e-3) + 1e-30).all(), (objective, start_objective)
    else:  # topk: the largest correlations (in magnitude, or the largest positive ones), kept as they are
        corr = X64 @ D64.T
        score = np.maximum(corr, 0) if kw["positive"] else np.abs(corr)
        for r in range(n):
            want = np.sort(score[r])[::-1][:k]
            got = np.sort(np.abs(C[r]))[::-1][:k]
            scale = max(np.abs(want).max(), 1e-30)
            assert np.allclose(got, want, rtol=1e-4, atol=1e-5 * scale), (got, want)
            nz = C[r] != 0
            assert np.allclose(C[r][nz], corr[r][nz], rtol=1e-4, atol=1e-5 * scale), (C[r], corr[r])


def sparse_property():
    @_settings(150)
    @given(sparse_cases())
    def prop(args):
        X, D, kw, init_kind, coder = args
        n, a = np.asarray(X).shape[0], D.shape[0]
        init = None
        if init_kind in ("dense", "nan_dense"):
            init = np.zeros((n, a), np.float32)
            init[0, 0] = np.nan if init_kind == "nan_dense" else 0.5
        elif init_kind in ("sparse", "nan_sparse"):
            init = scipy.sparse.csr_array(([np.nan if init_kind == "nan_sparse" else 0.5], ([0], [0])), shape=(n, a))
        elif init_kind == "shape":
            init = np.zeros((n + 1, a), np.float32)
        elif init_kind == "negative":
            init = np.full((n, a), -0.5, np.float32)
        case("sparse_encode", describe(X=X, dictionary=D, init=init, coder=coder, **kw))
        e = _sparse_expect(X, D, kw, init)
        if coder:
            if init is not None:
                return  # SparseCoder takes no init
            model = latentcore.SparseCoder(D, n_jobs=2, **kw)
            e.check(lambda: model.transform(X), lambda codes: check_codes(codes, X, D, kw, None))
        else:
            e.check(lambda: latentcore.sparse_encode(X, D, init=init, n_jobs=2, **kw),
                    lambda codes: check_codes(codes, X, D, kw, init))

    prop()


def sae_property():
    @st.composite
    def params(draw):
        n_latents = draw(values(1, 2, 5))
        valid = dict(n_latents=values(n_latents), k=values(1, n_latents), activation=values("topk", "batchtopk"),
                     batch_size=values(1, 3, 4096), n_epochs=values(1, 2), learning_rate=values(None, 1e-2),
                     aux_coef=values(1 / 32, 0.0), k_aux=values(None, 1), dead_after=values(None, 1))
        invalid = dict(n_latents=values(0, -1), k=values(0, n_latents + 1), activation=values("relu"),
                       batch_size=values(0), n_epochs=values(0), learning_rate=values(-1.0, float("nan")),
                       aux_coef=values(-1.0), k_aux=values(0), dead_after=values(0), betas=values((1.0, 0.9)))
        kwargs, fault = draw(one_fault(valid, invalid))
        if fault == "n_latents":
            kwargs["k"] = 1
        return kwargs, fault

    @_settings(50, shrink=False)
    @given(float_matrix(st.integers(1, 10), st.integers(1, 4)), params())
    def prop(X, args):
        kwargs, fault = args
        case("TopKSAE", describe(X=X, **kwargs))
        e = Expect()
        if fault:
            e.bad.append(fault)
        if (np.abs(X) >= BIG).any():
            e.gray.append("X")
        n_latents, k, activation = kwargs["n_latents"], kwargs["k"], kwargs["activation"]
        sae = latentcore.TopKSAE(random_state=0, n_jobs=2, **kwargs)

        def valid(model):
            n, d = X.shape
            for name in ("encoder_", "decoder_", "encoder_bias_", "pre_bias_"):
                assert np.isfinite(getattr(model, name)).all(), (name, getattr(model, name))
            codes = model.encode(X)
            assert isinstance(codes, scipy.sparse.csr_array) and codes.shape == (n, n_latents)
            assert codes.dtype == np.float32 and np.isfinite(codes.data).all() and (codes.data > 0).all()
            per_row = np.diff(codes.indptr)
            assert (per_row <= (k if activation == "topk" else min(n_latents, 4 * k))).all(), per_row
            # The definition: ReLU of the top-k pre-activations of x - b_pre.
            pre = (X.astype(np.float64) - model.pre_bias_) @ model.encoder_.T.astype(np.float64) + model.encoder_bias_
            dense = codes.toarray()
            nz = dense != 0
            assert np.allclose(dense[nz], pre[nz], rtol=1e-3, atol=1e-3 * max(1.0, np.abs(pre).max()))
            X_hat = model.decode(codes)
            assert X_hat.shape == (n, d) and np.isfinite(X_hat).all()

        e.check(lambda: sae.fit(X), valid)

    prop()


def dictionary_learning_property():
    @st.composite
    def params(draw):
        n_atoms = draw(values(1, 3, 6))
        method = draw(values("omp", "lasso"))
        valid = dict(n_atoms=values(n_atoms), method=values(method),
                     n_nonzero=values(None, 1, min(2, n_atoms)), alpha=values(0.1, 0.0) if method == "lasso"
                     else values(None), batch_size=values(1, 5, 256), n_epochs=values(1, 2), positive=st.booleans())
        invalid = dict(n_atoms=values(0, -1), method=values("ksvd"), batch_size=values(0), n_epochs=values(0),
                       alpha=values(None, -1.0) if method == "lasso" else values(-1.0),
                       n_nonzero=values(0, n_atoms + 1) if method == "omp" else values(1.5))
        return draw(one_fault(valid, invalid))

    @_settings(40, shrink=False)
    @given(float_matrix(st.integers(1, 12), st.integers(1, 4)), params())
    def prop(X, args):
        kwargs, fault = args
        case("DictionaryLearning", describe(X=X, **kwargs))
        e = Expect()
        if fault:
            (e.gray if kwargs["method"] == "omp" and fault == "alpha" else e.bad).append(fault)
            if fault == "n_atoms":
                e.gray.append("n_nonzero")
        if (np.abs(X) >= BIG).any():
            e.gray.append("X")
        model = latentcore.DictionaryLearning(random_state=0, n_jobs=2, **kwargs)
        n_atoms = kwargs["n_atoms"]

        def valid(m):
            D = m.components_
            assert D.shape == (n_atoms, X.shape[1]) and D.dtype == np.float32 and np.isfinite(D).all(), D
            assert np.allclose(np.linalg.norm(D.astype(np.float64), axis=1), 1.0, atol=1e-3), D
            assert np.isfinite(m.history_["fvu"]).all(), m.history_["fvu"]
            codes = m.transform(X)
            assert codes.shape == (X.shape[0], n_atoms) and np.isfinite(codes.data).all()

        e.check(lambda: model.fit(X), valid)

    prop()


def test_sparse_encode_and_sparse_coder():
    run_property("sparse_property")


def test_topk_sae():
    run_property("sae_property", timeout=240)


def test_dictionary_learning():
    run_property("dictionary_learning_property", timeout=240)


# ----------------------------------------------------------------------------- metrics (pure numpy: in process)

index_matrices = st.integers(0, 6).flatmap(
    lambda n: st.integers(0, 4).flatmap(
        lambda k: st.lists(st.sampled_from([0, 1, 2, 3, 2**31 + 1, -1]), min_size=n * k, max_size=n * k).map(
            lambda v: np.array(v, np.int64).reshape(n, k))))


@_settings(150)
@given(index_matrices, index_matrices, st.sampled_from(["int64", "int32", "float64", "uint8"]))
def test_knn_recall_against_its_definition(approx, exact, dtype):
    e = Expect()
    if dtype == "float64":
        e.bad += ["approx"]
    if approx.shape[0] != exact.shape[0]:
        e.bad += ["approx", "exact", "rows"]
    if exact.shape[1] == 0 or exact.shape[0] == 0:
        e.bad += ["exact"]
    with np.errstate(all="ignore"):
        cast = approx.astype(dtype)

    def valid(r):
        assert isinstance(r, float) and 0.0 <= r <= 1.0
        found = sum(int(e_ in set(a_row)) for e_row, a_row in zip(exact.tolist(), cast.astype(np.int64).tolist())
                    for e_ in e_row)
        assert r == pytest.approx(found / exact.size)

    e.check(lambda: latentcore.knn_recall(cast, exact), valid)


@_settings(150)
@given(float_matrix(st.integers(1, 6), st.integers(1, 4)), st.integers(0, 3), st.booleans())
def test_fraction_of_variance_unexplained_against_its_definition(X, perturb, bad_shape):
    from latentcore.metrics import fraction_of_variance_unexplained

    R = X.copy()
    if perturb:
        R.flat[perturb % R.size] += np.float32(perturb)
    if bad_shape:
        R = R[:, :-1] if R.shape[1] > 1 else np.concatenate([R, R], axis=1)
    X64 = X.astype(np.float64)
    total = ((X64 - X64.mean(axis=0)) ** 2).sum()
    e = Expect()
    if bad_shape:
        e.bad += ["reconstruction"]
    if total == 0 or not np.isfinite(total):
        e.bad += ["X", "variance"]

    def valid(f):
        assert isinstance(f, float) and np.isfinite(f) and f >= 0
        assert f == pytest.approx(((X64 - R.astype(np.float64)) ** 2).sum() / total, rel=1e-9)

    e.check(lambda: fraction_of_variance_unexplained(X, R), valid)


@_settings(100)
@given(float_matrix(st.integers(0, 6), st.integers(1, 5)), st.booleans())
def test_mean_l0_and_dead_fraction_against_their_definitions(codes, sparse):
    from latentcore.metrics import dead_fraction, mean_l0

    given_codes = scipy.sparse.csr_array(codes) if sparse else codes
    l0 = mean_l0(given_codes)
    assert l0 == pytest.approx((codes != 0).sum() / max(codes.shape[0], 1))
    if codes.shape[0]:
        assert dead_fraction(given_codes) == pytest.approx(1.0 - ((codes != 0).sum(axis=0) > 0).mean())


@_settings(100)
@given(float_matrix(st.integers(1, 6), st.integers(1, 4)), float_matrix(st.integers(1, 6), st.integers(1, 4)))
def test_atom_recovery_against_its_definition(D, ref):
    from latentcore.metrics import atom_recovery

    e = Expect()
    if D.shape[1] != ref.shape[1]:
        e.bad += ["dictionary", "reference", "dims"]
    D64, R64 = D.astype(np.float64), ref.astype(np.float64)
    if (np.linalg.norm(D64, axis=1) == 0).any():
        e.bad += ["dictionary"]
    if (np.linalg.norm(R64, axis=1) == 0).any():
        e.bad += ["reference"]

    def valid(r):
        assert r.shape == (ref.shape[0],) and np.isfinite(r).all() and (r >= 0).all() and (r <= 1 + 1e-12).all()
        Dn = D64 / np.linalg.norm(D64, axis=1, keepdims=True)
        Rn = R64 / np.linalg.norm(R64, axis=1, keepdims=True)
        assert np.allclose(r, np.abs(Rn @ Dn.T).max(axis=1), rtol=1e-9, atol=1e-12)

    e.check(lambda: atom_recovery(D, ref), valid)


@pytest.mark.parametrize("bad", [None, "text", [[1, "a"]], np.array([[1 + 2j]]), np.array([[object()]], object),
                                 np.zeros((2, 2, 2), np.float32), np.zeros(3, np.float32)])
def test_metrics_refuse_non_matrices_naming_the_argument(bad):
    from latentcore.metrics import atom_recovery, fraction_of_variance_unexplained

    good = np.eye(3, dtype=np.float32)
    for call, name in ((lambda: fraction_of_variance_unexplained(bad, good), "X"),
                       (lambda: fraction_of_variance_unexplained(good, bad), "reconstruction"),
                       (lambda: atom_recovery(bad, good), "dictionary"),
                       (lambda: atom_recovery(good, bad), "reference"),
                       (lambda: latentcore.knn_recall(bad, np.zeros((3, 1), int)), "approx")):
        with pytest.raises((ValueError, TypeError)) as info:
            call()
        assert name in str(info.value), str(info.value)


def test_public_functions_refuse_non_arrays_naming_the_argument():
    """Wrong types (None, strings, complex and object arrays, ragged lists) at
    every array argument: TypeError or ValueError naming it, never a crash."""
    proc = isolated('''
    from latentcore import (DictionaryLearning, KNNGraph, SparseCoder, TSNE, TopKSAE, knn, random_walks,
                            skipgram, sparse_encode, trustworthiness)
    from latentcore.tsne import perplexity_affinities, uniform_affinities
    good = np.eye(4, dtype=np.float32)
    bads = [None, "points.npy", np.array([[1 + 2j, 0], [0, 1]]), np.array([[object(), 1]], object),
            [[1.0, 2.0], [3.0]], np.zeros((2, 2, 2), np.float32), 3.5]
    for bad in bads:
        calls = [
            ("X", lambda: knn(bad, 1)),
            ("queries", lambda: knn(good, 1, queries=bad if bad is not None else "none")),
            ("X", lambda: KNNGraph(1).fit(bad)),
            ("X", lambda: TSNE(perplexity=1.0, n_iter=5).fit(bad)),
            ("X", lambda: sparse_encode(bad, good)),
            ("dictionary", lambda: sparse_encode(good, bad)),
            ("dictionary", lambda: SparseCoder(bad).transform(good)),
            ("X", lambda: TopKSAE(4, 1).fit(bad)),
            ("X", lambda: DictionaryLearning(2).fit(bad)),
            ("X", lambda: trustworthiness(bad, good, k=1)),
            ("embedding", lambda: trustworthiness(good, bad, k=1)),
            ("walks", lambda: skipgram(bad)),
            ("graph", lambda: random_walks(bad if not isinstance(bad, str) else 3.5, 3)),
            ("indices", lambda: uniform_affinities(bad)),
            ("indices", lambda: perplexity_affinities(bad, good, 1.0)),
            ("distances", lambda: perplexity_affinities(np.array([[1], [2], [3], [0]], np.int32), bad, 1.0)),
        ]
        for name, call in calls:
            case(name, repr(bad)[:60])
            try:
                call()
            except OSError as exc:  # a path where paths are taken: the file must be named
                if not isinstance(bad, str) or bad not in str(exc):
                    print("FAIL", name, repr(bad)[:60], type(exc).__name__, str(exc)[:200], flush=True)
            except (TypeError, ValueError) as exc:
                if name.lower() not in str(exc).lower():
                    print("FAIL", name, repr(bad)[:60], type(exc).__name__, str(exc)[:200], flush=True)
            except Exception as exc:
                print("FAIL", name, repr(bad)[:60], "raised", type(exc).__name__, str(exc)[:200], flush=True)
            else:
                print("FAIL", name, repr(bad)[:60], "accepted", flush=True)
    ''')
    failures = [line for line in proc.stdout.splitlines() if line.startswith("FAIL")]
    assert not failures, "\n".join(failures)
