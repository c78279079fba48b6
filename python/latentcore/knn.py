"""Exact k-nearest-neighbour graphs.

The work is blocked, so memory stays O(block) and the full distance matrix
never exists. On the CPU, each OpenMP thread of the C++ kernel takes a tile of
(query block, data block), gets its inner products from SciPy's BLAS SGEMM and
folds them into running per-point top-k selections; for an all-pairs graph (no
``queries``) the distance matrix is symmetric, so only tiles on and above the
diagonal are computed and each updates its rows' and its columns' selections.
On the GPU, cupy's cuBLAS computes the tiles and a CUDA kernel merges them.
Ranking uses float32 inner products of centred (or normalised) rows; a margin
of extra candidates is then re-ranked by exact double-precision distances, so
the result is free of the cancellation the GEMM expansion suffers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator

from . import _backend, _core, _device
from ._validation import (DEVICE, N_JOBS, Boolean, Choice, Custom, Integer, check_choice, check_fitted, check_params,
                          check_positive_int, host_array_like, record_features)

__all__ = ["knn", "KNNGraph", "METRICS"]


@dataclass(frozen=True)
class _Metric:
    code: int  # latentcore::Metric in cpp/include/latentcore/knn.hpp
    prepare: str  # how rows are transformed before the GEMM: "center", "normalize", "none"


#: Supported metrics. Ranking uses an inner-product surrogate (pynndescent's
#: "fast surrogate + correction"): squared distances drop the query norm,
#: cosine ranks normalised rows by inner product; exact values come last.
METRICS: dict[str, _Metric] = {
    "sqeuclidean": _Metric(0, "center"),
    "euclidean": _Metric(1, "center"),
    "cosine": _Metric(2, "normalize"),
    "inner_product": _Metric(3, "none"),
}
_ALIASES = {"l2": "euclidean", "ip": "inner_product", "dot": "inner_product"}


def _resolve_metric(metric: str) -> str:
    if not isinstance(metric, str):
        raise TypeError(f"metric must be a string, got {type(metric).__name__}")
    name = _ALIASES.get(metric.lower(), metric.lower())
    return check_choice(name, "metric", METRICS.keys())


# Rows per tile side on the CPU: a 512 x 512 float32 tile (1 MiB) stays in a
# core's L2 while it is folded, and single-threaded SGEMM is near its peak there
# (tuned with bench/bench_knn.py).
_CPU_BLOCK = 512
# Query rows per tile on the GPU, where tiles are as large as memory allows.
_GPU_ROWS = 16384
# Entries of one GPU product tile of the TopK selection (256 MiB of float32).
_GPU_TILE_ENTRIES = 1 << 26
# Signals per CPU call of the TopK selection (Ctrl-C lands between calls).
_CPU_SELECTION_ROWS = 1 << 13


def _blocks(n: int, size: int):
    return [(start, min(n, start + size)) for start in range(0, n, size)]


def _knn_cpu(data: np.ndarray, queries: np.ndarray | None, k: int, metric: str,
             exclude_self: bool, device: _device.Device) -> tuple[np.ndarray, np.ndarray]:
    spec = METRICS[metric]
    m = data.shape[0] if queries is None else queries.shape[0]
    index = np.empty((m, k), dtype=np.int32)
    distances = np.empty((m, k), dtype=np.float32)
    center = data.mean(axis=0, dtype=np.float64).astype(np.float32) if spec.prepare == "center" else None
    with _backend.single_threaded_blas():
        _core.exact_knn(data, queries, spec.code, exclude_self, center, _backend.scipy_sgemm(),
                        _CPU_BLOCK, index, distances, device.n_threads)
    return index, distances


class _GpuRows:
    """Blocks of rows made ready for the GPU ranking GEMM, as the C++ kernel
    does on the CPU: scaled by the same power of two when the values are near
    float32's limits, centred (euclidean) or normalised (cosine), with half
    squared norms as the bias that turns inner products into ranking scores."""

    def __init__(self, data, queries, metric: _Metric, xp):
        self.kind = metric.prepare
        self.xp = xp
        self.center = data.mean(axis=0, dtype=xp.float64) if self.kind == "center" else None
        largest = max(float(xp.abs(a).max()) for a in (data, queries) if a is not None)
        self.scale = _core.knn_ranking_scale(largest, data.shape[1])

    def block(self, x):
        xp = self.xp
        if self.scale != 1.0:  # in float64: the scale may exceed float32's range
            wide = x.astype(xp.float64) * self.scale
            if self.kind == "center":
                wide -= self.center * self.scale
            x = wide.astype(xp.float32)
        elif self.kind == "center":
            x = x - self.center.astype(xp.float32)
        if self.kind == "normalize":
            return x / xp.linalg.norm(x, axis=1, keepdims=True)
        return x

    def bias(self, prepared):
        if self.kind != "center":
            return None
        return 0.5 * self.xp.einsum("ij,ij->i", prepared, prepared)


def _knn_gpu(data, queries, k: int, metric: str, exclude_self: bool, device: _device.Device):
    xp = device.xp
    spec = METRICS[metric]
    rows = _GpuRows(data, queries, spec, xp)
    symmetric_self = queries is None and exclude_self
    targets = data if queries is None else queries
    available = data.shape[0] - int(symmetric_self)
    kc = max(k, min(_core.knn_candidates_per_point(k, available), device.max_k))
    score = xp.full((targets.shape[0], kc), xp.inf, dtype=xp.float32)
    index = xp.full((targets.shape[0], kc), -1, dtype=xp.int32)
    width = device.module.knn_max_tile_width(kc)
    a_all = rows.block(targets)
    for j0, j1 in _blocks(data.shape[0], width):
        b = rows.block(data[j0:j1])
        b_bias = rows.bias(b)
        for i0, i1 in _blocks(targets.shape[0], _GPU_ROWS):
            tile = a_all[i0:i1] @ b.T
            device.call("knn_merge_tile", score[i0:i1], index[i0:i1], tile, b_bias, i0, j0, symmetric_self)
    device.call("knn_finish", score, index, targets, data, spec.code)
    return xp.ascontiguousarray(index[:, :k]), xp.ascontiguousarray(score[:, :k])


def largest_products(x, weight, k: int, device: _device.Device, *, bias=None, magnitude: bool = False):
    """The k largest of ``x @ weight.T + bias`` (or, with ``magnitude``, of
    ``|x @ weight.T|``, values read back signed) in each row, descending, as
    (values, index), float32 and int32 (n, k) on ``device``.

    The one top-k selection of the TopK encoders (``TopKSAE``,
    ``sparse_encode(method="topk")``): on the CPU the C++ kernels share the
    k-NN selection (a value that is not finite is a ValueError there); on the
    GPU the k-NN tile merge keeps the smallest col_bias - tile, so -bias keeps
    the largest products, rows and columns in blocks of bounded memory. k is at
    most ``device.max_k``. Without ``magnitude`` and without a bias, values are
    clipped at 0 on the CPU (callers clip on either device).
    """
    if not 1 <= k <= device.max_k:
        raise ValueError(f"k must be between 1 and {device.max_k} on {device.name}, got {k}")
    xp = device.xp
    n = x.shape[0]
    values = xp.empty((n, k), xp.float32)
    index = xp.empty((n, k), xp.int32)
    rows = _CPU_SELECTION_ROWS if not device.is_gpu else max(1, _GPU_TILE_ENTRIES // max(1, weight.shape[0]))
    with _backend.single_threaded_blas():
        for i0, i1 in _blocks(n, rows):
            if device.is_gpu:
                values[i0:i1], index[i0:i1] = _largest_products_gpu(x[i0:i1], weight, k, device, bias, magnitude)
            elif bias is not None:
                _core.sae_topk_encode(x[i0:i1], weight, bias, _backend.scipy_sgemm(), values[i0:i1],
                                      index[i0:i1], device.n_threads)
            else:
                _core.sparse_topk(x[i0:i1], weight, _backend.scipy_sgemm(), not magnitude, index[i0:i1],
                                  values[i0:i1], device.n_threads)
    return values, index


def _largest_products_gpu(x, weight, k: int, device: _device.Device, bias, magnitude: bool):
    xp = device.xp
    score = xp.full((x.shape[0], k), xp.inf, dtype=xp.float32)
    index = xp.full((x.shape[0], k), -1, dtype=xp.int32)
    for j0, j1 in _blocks(weight.shape[0], device.module.knn_max_tile_width(k)):
        tile = x @ weight[j0:j1].T
        if magnitude:
            tile = xp.abs(tile)
        col_bias = None if bias is None else xp.ascontiguousarray(-bias[j0:j1])
        device.call("knn_merge_tile", score, index, tile, col_bias, 0, j0, False)
    if not magnitude:
        return -score, index
    # Selected on |x . w|: the signed products of the kept columns.
    return xp.einsum("nd,nkd->nk", x, weight[index]).astype(xp.float32), index


def knn(
    X: Any,
    k: int,
    *,
    queries: Any = None,
    metric: str = "euclidean",
    exclude_self: bool = True,
    n_jobs: int | None = None,
    device: Literal["cpu", "cuda"] | None = None,
):
    """Exact k nearest neighbours of every row of ``X`` (or of ``queries``).

    Parameters
    ----------
    X : array of shape (n, d)
        The points searched. numpy arrays run on the CPU, cupy arrays on the
        GPU, torch tensors (CPU or CUDA) are shared through DLPack. float16 and
        float64 are converted to float32; non-contiguous arrays are copied.
    k : int
        Neighbours per point, ``1 <= k < n`` for an all-pairs graph with
        ``exclude_self``, ``1 <= k <= n`` otherwise.
    queries : array of shape (m, d), optional
        Points whose neighbours in ``X`` are wanted. None: the rows of ``X``.
    metric : {"euclidean", "sqeuclidean", "cosine", "inner_product"}
        ``cosine`` is ``1 - cos(x, y)`` (rows must be non-zero);
        ``inner_product`` returns ``-<x, y>``, so the largest inner products
        come first, as with every metric sorted ascending. Aliases: "l2", "ip", "dot".
    exclude_self : bool, default True
        Without ``queries``, leave each point out of its own list (by index:
        duplicates of a point are still neighbours). Ignored with ``queries``.
    n_jobs : int, optional
        CPU threads for the GEMM and the selection; None or -1: all cores.
        The result does not depend on it.
    device : {"cpu", "cuda"}, optional
        Run there instead of where the input lives; results follow.

    Returns
    -------
    indices : int32 array of shape (m, k)
    distances : float32 array of shape (m, k)
        Sorted ascending, ties broken by the smaller index; on the device and
        of the array type (numpy, cupy, torch) of the input.

    Examples
    --------
    >>> import numpy as np, latentcore
    >>> X = np.random.default_rng(0).standard_normal((1000, 32), dtype=np.float32)
    >>> idx, dist = latentcore.knn(X, 15)
    >>> idx.shape, dist.dtype
    ((1000, 15), dtype('float32'))
    """
    metric = _resolve_metric(metric)
    data, q_data, where, give_back = _device.prepare_pair(X, queries, device, n_jobs)
    k = _check_k(k, data.shape[0], queries is None and exclude_self, where)
    if metric == "cosine":
        _check_no_zero_rows(data, "X")
        if q_data is not None:
            _check_no_zero_rows(q_data, "queries")
    search = _knn_gpu if where.is_gpu else _knn_cpu
    index, dist = search(data, q_data, k, metric, bool(exclude_self), where)
    return give_back(index), give_back(dist)


def _check_k(k, n: int, self_excluded: bool, device: _device.Device) -> int:
    k = check_positive_int(k, "k")
    limit = n - 1 if self_excluded else n
    if k > limit:
        raise ValueError(
            f"k={k} is too large for X with {n} rows: at most {limit}"
            + (" (each point is excluded from its own list)" if self_excluded else "")
        )
    if k > device.max_k:
        raise ValueError(f"k={k} exceeds {device.max_k}, the largest k of the CUDA kernel; use device='cpu'")
    return k


def _check_no_zero_rows(x, name: str) -> None:
    if not bool((abs(x).max(axis=1) > 0).all()):
        raise ValueError(
            f"{name} has all-zero rows, which have no cosine distance; drop them or use metric='euclidean'"
        )


class KNNGraph(BaseEstimator):
    """The exact k-NN graph of a point set, as a sparse matrix.

    Parameters
    ----------
    n_neighbors : int, default 15
        Neighbours per point (the point itself excluded).
    metric : str, default "euclidean"
        Any name accepted by :func:`knn`.
    mode : {"connectivity", "distance"}, default "connectivity"
        Edge values: 1.0, or the distance.
    symmetrize : bool, default False
        Keep an edge when either end lists the other (union of the lists);
        the graph is then symmetric.
    n_jobs : int, optional
        CPU threads; None or -1: all cores.
    device : {"cpu", "cuda"}, optional
        Where to compute; default: where X lives.

    Attributes
    ----------
    graph_ : scipy.sparse.csr_array of shape (n, n), float32
        Row i holds the neighbours of point i (a CPU matrix whatever the device).
    indices_ : int32 ndarray of shape (n, n_neighbors)
    distances_ : float32 ndarray of shape (n, n_neighbors)
    n_samples_fit_ : int
    n_features_in_ : int
        Columns of the fitted X (with ``feature_names_in_`` for a DataFrame
        with string column names).

    Examples
    --------
    >>> import numpy as np, latentcore
    >>> X = np.random.default_rng(0).standard_normal((500, 8), dtype=np.float32)
    >>> g = latentcore.KNNGraph(n_neighbors=10).fit(X).graph_
    >>> g.shape, g.nnz
    ((500, 500), 5000)
    """

    def __init__(self, n_neighbors: int = 15, metric: str = "euclidean", *,
                 mode: Literal["connectivity", "distance"] = "connectivity",
                 symmetrize: bool = False, n_jobs: int | None = None,
                 device: Literal["cpu", "cuda"] | None = None):
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.mode = mode
        self.symmetrize = symmetrize
        self.n_jobs = n_jobs
        self.device = device

    _parameter_specs = {
        "n_neighbors": Integer(),
        "metric": Custom(lambda value, name: _resolve_metric(value), "a metric knn() accepts"),
        "mode": Choice("connectivity", "distance"),
        "symmetrize": Boolean(),
        "n_jobs": N_JOBS,
        "device": DEVICE,
    }

    def fit(self, X: Any, y: Any = None) -> "KNNGraph":
        """Computes the graph of the rows of X (n, d): an array (numpy,
        cupy, torch) or a pandas DataFrame; returns self."""
        check_params(self)
        record_features(self, X, reset=True)
        X = host_array_like(X)  # a pandas DataFrame: its values
        self._fit_X = X
        indices, distances = knn(X, self.n_neighbors, metric=self.metric, n_jobs=self.n_jobs,
                                 device=self.device)
        self.indices_ = _device.to_host(indices)
        self.distances_ = _device.to_host(distances)
        self.n_samples_fit_ = self.indices_.shape[0]
        self.graph_ = self._as_graph(self.indices_, self.distances_)
        return self

    def fit_transform(self, X: Any, y: Any = None) -> scipy.sparse.csr_array:
        """Fits and returns ``graph_``."""
        return self.fit(X).graph_

    def kneighbors(self, Y: Any, n_neighbors: int | None = None):
        """Exact neighbours among the fitted points of each row of Y (m, d).

        Returns ``(indices int32 (m, k), distances float32 (m, k))`` as :func:`knn`.
        """
        check_fitted(self, "graph_", "fit(X)")
        record_features(self, Y, reset=False, name="Y")
        Y = host_array_like(Y)  # a pandas DataFrame: its values
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        return knn(self._fit_X, k, queries=Y, metric=self.metric, n_jobs=self.n_jobs,
                   device=self.device)

    def _as_graph(self, indices: np.ndarray, distances: np.ndarray) -> scipy.sparse.csr_array:
        n, k = indices.shape
        values = np.ones(n * k, np.float32) if self.mode == "connectivity" else distances.ravel().copy()  # sort_indices reorders it in place
        indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
        if not self.symmetrize:
            graph = scipy.sparse.csr_array((values, indices.ravel(), indptr), shape=(n, n))
            graph.sort_indices()
            return graph
        # Union of both directions. Exact distances are symmetric, so a pair
        # listed by both ends carries the same value twice; keep one.
        rows = np.repeat(np.arange(n, dtype=np.int64), k)
        cols = indices.ravel().astype(np.int64)
        keys, first = np.unique(np.concatenate([rows * n + cols, cols * n + rows]), return_index=True)
        vals = np.concatenate([values, values])[first]
        return scipy.sparse.csr_array((vals, (keys // n, keys % n)), shape=(n, n))



