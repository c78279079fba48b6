"""Random-walk node embeddings: DeepWalk (first-order walks) and node2vec
(second-order walks), each followed by skip-gram training.

Graphs become one CSR type (the C++ ``CsrGraph``, shared with the t-SNE
affinities): float32 weights, sorted rows, zero-weight edges dropped. Each
node gets an alias table over its out-edges (O(E) memory); node2vec's return
and in-out biases are applied by rejection on the same tables: the return
step drawn with its exact probability mass (KnightKing's outlier folding),
for q > 1 a mixture of regions of exact mass (proposing from the shorter of
the two rows involved), and an exact draw over the row after a bounded
number of rejections, so every step is exactly node2vec's and costs a
bounded time for any p and q; hub-heavy graphs need no per-edge transition
tables. Every walk has its own random
stream, so a seed gives the same walks for any thread count. The estimators
sample walks a chunk at a time and train on each chunk at once: memory holds
the graph, the vectors and one chunk of walks, never the whole corpus.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator

from . import _backend, _core, _device, io, sgns
from ._validation import (DEVICE, N_JOBS, VERBOSE, Boolean, Custom, Integer, Real, check_fitted, check_params,
                          check_values)

__all__ = ["DeepWalk", "Node2Vec", "as_csr_graph", "random_walks"]


def as_csr_graph(graph: Any, *, directed: bool = False) -> tuple[scipy.sparse.csr_array, np.ndarray]:
    """A validated graph: (float32 CSR adjacency with sorted rows and no
    zero-weight edges, node ids of its rows).

    Parameters
    ----------
    graph : scipy.sparse matrix, networkx Graph/DiGraph, fitted KNNGraph or edge-list path
        Matrices: row i holds node i's out-edges, ids are 0..n-1. networkx:
        the ``weight`` attribute (default 1), ids in ``graph.nodes`` order.
        Edge-list files (see :func:`latentcore.io.read_edge_list`): ids in
        sorted order; duplicate edges add up.
    directed : bool, default False
        Edge-list files only: False walks every line both ways. Matrices and
        networkx graphs carry their own direction.

    Raises
    ------
    ValueError
        An empty or non-square graph, a malformed sparse matrix (indices or
        index pointers out of range), or a negative, NaN or infinite weight
        (the message names the edge).
    TypeError
        Weights that are not real numbers.
    """
    A, nodes = _adjacency(graph, directed)
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"graph must be square (n_nodes, n_nodes), got shape {A.shape}")
    if A.shape[0] == 0:
        raise ValueError("graph is empty: it has no nodes")
    if A.shape[0] >= 2**31 - 1:
        raise ValueError(f"graph has {A.shape[0]} nodes; at most 2**31 - 2 are supported")
    A = scipy.sparse.csr_array(A, dtype=np.float64 if A.dtype.itemsize > 4 else np.float32, copy=True)
    A.sum_duplicates()
    bad = ~np.isfinite(A.data) | (A.data < 0)
    if bad.any():
        e = int(np.flatnonzero(bad)[0])
        row = int(np.searchsorted(A.indptr, e, side="right") - 1)
        raise ValueError(
            f"graph has edge ({nodes[row]}, {nodes[int(A.indices[e])]}) with weight {A.data[e]}; "
            "weights must be finite and non-negative"
        )
    A.eliminate_zeros()
    A.sort_indices()
    return scipy.sparse.csr_array(A, dtype=np.float32), nodes


def _adjacency(graph: Any, directed: bool):
    if isinstance(graph, (str, os.PathLike)):
        return _edge_file_adjacency(Path(graph), directed)
    if hasattr(graph, "graph_"):  # a fitted KNNGraph
        graph = graph.graph_
    if type(graph).__module__.startswith("networkx"):
        import networkx as nx

        A = scipy.sparse.csr_array(nx.to_scipy_sparse_array(graph, weight="weight", format="csr"))
        return A, _id_array(list(graph.nodes))
    if _device.is_cupy(graph):  # validated on the host: O(E), once
        graph = graph.get()
    if scipy.sparse.issparse(graph):
        return _checked_csr(graph), np.arange(graph.shape[0])
    raise TypeError(
        f"graph must be a scipy.sparse matrix, a networkx graph, a fitted KNNGraph or an "
        f"edge-list path, got {type(graph).__name__}"
    )


def _checked_csr(graph) -> scipy.sparse.csr_array:
    """A scipy sparse matrix as a csr_array, its structure checked first:
    scipy's own conversions trust it, and a crafted matrix (an index beyond
    the shape, index pointers that decrease or pass the end) would make them
    read out of bounds."""
    if graph.ndim != 2:
        raise ValueError(f"graph must be a 2-D matrix, got {graph.ndim} dimensions")
    dtype = np.dtype(graph.dtype)
    if dtype.kind not in "biuf":
        raise TypeError(f"graph weights must be real numbers, got dtype {dtype}")
    fmt = graph.format
    if fmt in ("csr", "csc", "bsr"):
        try:
            graph.check_format(full_check=True)
        except Exception as e:  # scipy raises ValueError, or TypeError for odd index types
            raise ValueError(f"graph is not a valid {fmt.upper()} matrix: {e}") from None
        return scipy.sparse.csr_array(graph)
    coo = graph if fmt == "coo" else graph.tocoo()
    coords = coo.coords
    if len(coords) != 2 or any(np.ndim(c) != 1 or np.size(c) != coo.data.size for c in coords):
        raise ValueError("graph is not a valid COO matrix: its coordinates do not match its entries")
    for axis, (c, size) in enumerate(zip(coords, coo.shape)):
        c = np.asarray(c)
        if c.dtype.kind not in "iu":
            raise ValueError(f"graph is not a valid COO matrix: axis {axis} indices are {c.dtype}")
        if c.size and (int(c.min()) < 0 or int(c.max()) >= size):
            raise ValueError(f"graph is not a valid COO matrix: an axis {axis} index is outside 0..{size - 1}")
    return scipy.sparse.csr_array(coo)


def _edge_file_adjacency(path: Path, directed: bool):
    sources, targets, weights = io.read_edge_list(path)
    m = sources.size
    # Rows, columns and weights in 4 bytes each: building the graph of a large
    # file is what sets the peak memory of a whole fit.
    nodes, (rows, cols) = _numbered(sources, targets)
    del sources, targets
    weights = np.ones(m, np.float32) if weights is None else weights.astype(np.float32)
    if not directed:  # the reverse of every edge but a self-loop
        other = rows != cols
        rows, cols = np.concatenate([rows, cols[other]]), np.concatenate([cols, rows[other]])
        weights = np.concatenate([weights, weights[other]])
    return scipy.sparse.csr_array((weights, (rows, cols)), shape=(nodes.size, nodes.size)), nodes


def _numbered(*columns: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The sorted distinct ids of the columns, and each column as int32 rows.

    Small non-negative integer ids (the usual numbered graph) take a lookup
    table over 0..max id instead of a sort of every end of every edge.
    """
    if columns[0].dtype.kind == "i" and all(c.size == 0 or (c.min() >= 0 and c.max() < 4 * c.size + 2**20)
                                            for c in columns):
        present = np.zeros(max(int(c.max(initial=0)) for c in columns) + 1, bool)
        for c in columns:
            present[c] = True
        nodes = np.flatnonzero(present)
        row_of = np.cumsum(present, dtype=np.int32) - 1
        return nodes, [row_of[c] for c in columns]
    nodes, ends = np.unique(np.concatenate(columns), return_inverse=True)
    return nodes, [part.astype(np.int32) for part in np.split(ends.ravel(), np.cumsum([c.size for c in columns])[:-1])]


def _id_array(ids: list) -> np.ndarray:
    """Node ids as an array: int64 or str when they all are, else objects."""
    if all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in ids):
        return np.array(ids, dtype=np.int64)
    if all(isinstance(i, str) for i in ids):
        return np.array(ids, dtype=str)
    out = np.empty(len(ids), dtype=object)
    for position, node in enumerate(ids):  # one by one: tuples must stay whole
        out[position] = node
    return out


# node2vec's p and q: 1/p, 1/q and every probability mass of a step stay finite.
MIN_BIAS, MAX_BIAS = 1e-100, 1e100


#: The walks' parameters (walk_length counts nodes, the start included).
_WALK_SPECS = {
    "walk_length": Integer(low=2, high=2**31 - 1),
    "walks_per_node": Integer(),
    "p": Real(low=MIN_BIAS, high=MAX_BIAS),
    "q": Real(low=MIN_BIAS, high=MAX_BIAS),
}


def _check_walk_params(walk_length: int, walks_per_node: int, p: float, q: float) -> None:
    check_values({"walk_length": walk_length, "walks_per_node": walks_per_node, "p": p, "q": q}, _WALK_SPECS)


def _check_seed(value: Any, name: str) -> None:
    """What :func:`sgns.seeds` takes: None, an int or a numpy Generator."""
    if value is None or isinstance(value, np.random.Generator) or (
            isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))):
        return
    raise TypeError(f"{name} must be None, an int or a numpy Generator, got {type(value).__name__}")


def _check_walk_memory(n_walks: int, walk_length: int) -> None:
    """Refuses a walk array larger than this machine's memory, naming the
    parameters that make it, before anything is allocated."""
    sgns.check_memory(4 * n_walks * walk_length,
                      f"{n_walks} walks of walk_length={walk_length} (walks_per_node x nodes walks)",
                      "a smaller walk_length or walks_per_node")


class _WalkSampler:
    """Walks of a graph in chunks: walk w starts at node w % n and draws from
    stream (seed, w), so any chunk can be made again, identically, on demand.
    The alias tables are built on the host; on the GPU the walks are the
    same, bit for bit, as on the CPU."""

    def __init__(self, A: scipy.sparse.csr_array, walk_length: int, walks_per_node: int, p: float,
                 q: float, seed: int, device: _device.Device, n_threads: int):
        indptr, indices = A.indptr.astype(np.int64), A.indices.astype(np.int32, copy=False)
        # Rows of equal weights need no tables on the CPU: one cache line less
        # per step and 8 bytes less per edge.
        tables = device.is_gpu or not _equal_weights_per_row(A)
        keep = np.empty(A.nnz if tables else 0, np.float32)
        alias = np.empty(A.nnz if tables else 0, np.int32)
        totals = row_totals(A) if tables else np.empty(0, np.float64)
        maxima = row_maxima(A) if tables else np.empty(0, np.float32)
        if tables:
            _core.walks_build_alias(indptr, indices, A.data, keep, alias, n_threads)
        self.tables = [device.put(a) for a in (indptr, indices, A.data, keep, alias, totals, maxima)]
        self.device = device
        self.n_nodes = A.shape[0]
        self.n_walks = walks_per_node * self.n_nodes
        self.walk_length, self.p, self.q, self.seed = walk_length, float(p), float(q), seed
        # A chunk of walks is at most ~64 MiB (and at least one walk).
        self.chunk_walks = max(1, min(sgns.chunk_walks(device), sgns.CHUNK_BYTES // (4 * walk_length)))

    def sample(self, first: int, out):
        starts = ((first + np.arange(out.shape[0], dtype=np.int64)) % self.n_nodes).astype(np.int32)
        self.device.call("walks_sample", *self.tables, self.device.put(starts), self.p, self.q, self.seed,
                         first, out)
        return out

    def chunks(self):
        size = min(self.chunk_walks, self.n_walks)
        buffer = self.device.xp.empty((size, self.walk_length), np.int32)
        for first in range(0, self.n_walks, size):
            count = min(size, self.n_walks - first)
            yield first, self.sample(first, buffer[:count])


def _row_reduce(A: scipy.sparse.csr_array, ufunc: np.ufunc, dtype) -> np.ndarray:
    """ufunc over each row's weights in ``dtype`` (0 for an empty row)."""
    out = np.zeros(A.shape[0], dtype)
    full = np.flatnonzero(np.diff(A.indptr))
    if full.size:
        out[full] = ufunc.reduceat(A.data.astype(dtype), A.indptr[full])
    return out


def row_totals(A: scipy.sparse.csr_array) -> np.ndarray:
    """Each row's total weight, summed in float64 (0 for an empty row)."""
    return _row_reduce(A, np.add, np.float64)


def row_maxima(A: scipy.sparse.csr_array) -> np.ndarray:
    """Each row's largest weight, float32 (0 for an empty row)."""
    return _row_reduce(A, np.maximum, np.float32)


def _equal_weights_per_row(A: scipy.sparse.csr_array) -> bool:
    if A.nnz == 0:
        return True
    degrees = np.diff(A.indptr)
    return bool(np.all(A.data == np.repeat(A.data[A.indptr[:-1][degrees > 0]], degrees[degrees > 0])))


def _graph_device(graph: Any, device: str | None, n_jobs: int | None) -> _device.Device:
    """Where to walk: as asked, else on the GPU for a cupyx sparse matrix."""
    return _device.get(device, n_jobs, where=_device.locate(graph))


def random_walks(graph: Any, walk_length: int = 80, walks_per_node: int = 10, p: float = 1.0,
                 q: float = 1.0, *, directed: bool = False, random_state=None,
                 n_jobs: int | None = None, device: str | None = None):
    """Truncated random walks from every node (DeepWalk, or node2vec's biased walks).

    Parameters
    ----------
    graph : scipy or cupyx sparse matrix, networkx Graph/DiGraph, fitted KNNGraph or edge-list path
        Edge weights (networkx: the ``weight`` attribute, default 1); row i
        holds i's out-edges. Undirected graphs are walked both ways. Node i is
        row i (networkx: the i-th node of ``graph.nodes``; edge-list files:
        the i-th id in sorted order, see :func:`as_csr_graph`).
    walk_length : int, default 80
        Nodes per walk, **the start node included** (PecanPy's ``walk_length=80``
        gives 81 nodes; this gives 80). At least 2.
    walks_per_node : int, default 10
    p, q : float, default 1
        node2vec's return and in-out parameters: the next node is drawn by
        edge weight times 1/p (back to the previous node), 1 (a neighbour of
        the previous node) or 1/q (further away). p = q = 1 is DeepWalk.
        Any p and q in [1e-100, 1e100] is sampled exactly, each step in a
        bounded time.
    directed : bool, default False
        Edge-list files only: whether a line is a one-way edge.
    random_state : int, numpy Generator or None
        A seed gives the same walks whatever ``n_jobs`` (and on either device).
    n_jobs : int, optional
        Threads; None or -1: all cores.
    device : {"cpu", "cuda"}, optional
        Where to walk; default: the GPU for a cupyx sparse matrix, else the
        CPU. A seed gives the same walks on both.

    Returns
    -------
    int32 array of shape (walks_per_node * n_nodes, walk_length)
        numpy, or cupy on the GPU.
        Round r holds rows r * n_nodes ... (r + 1) * n_nodes - 1, one walk per
        node in node order. A walk that reaches a node without out-edges (a
        sink of a directed graph, or an isolated node) is padded with -1.

    Raises
    ------
    ValueError
        Bad parameters or graph (see :func:`as_csr_graph`), or walks that
        would not fit in this machine's memory (the message names
        walk_length and walks_per_node).
    KeyboardInterrupt
        On Ctrl-C, within a fraction of a second.

    Examples
    --------
    >>> import networkx as nx, latentcore
    >>> walks = latentcore.random_walks(nx.karate_club_graph(), walk_length=5, random_state=0)
    >>> walks.shape
    (340, 5)
    """
    _check_walk_params(walk_length, walks_per_node, p, q)
    seed = sgns.seeds(random_state, 1)[0]
    n_threads = _backend.resolve_n_jobs(n_jobs)
    where = _graph_device(graph, device, n_jobs)
    A, _ = as_csr_graph(graph, directed=directed)
    _check_walk_memory(walks_per_node * A.shape[0], walk_length)
    sampler = _WalkSampler(A, walk_length, walks_per_node, p, q, seed, where, n_threads)
    walks = where.xp.empty((sampler.n_walks, walk_length), np.int32)
    # The CPU kernel polls for Ctrl-C itself: one call checks the graph once.
    # GPU launches stay in chunks.
    chunk = sgns.chunk_walks(where) if where.is_gpu else sampler.n_walks
    for first in range(0, sampler.n_walks, chunk):
        sampler.sample(first, walks[first:first + chunk])
    return walks


class Node2Vec(BaseEstimator):
    """node2vec (Grover & Leskovec 2016): second-order random walks, then skip-gram.

    Walk sampling (C++, alias tables and rejection, O(E) memory) and skip-gram
    with negative sampling (C++, Hogwild) run as one streamed pipeline: a
    chunk of walks is sampled, trained on and dropped. A first pass over the
    same walks counts node visits for the noise distribution, as word2vec's
    vocabulary does; every epoch passes over the same walks again.

    Reproducibility: a seed gives the same walks for any ``n_jobs`` (and on
    the GPU). Training is Hogwild: with several threads the updates
    interleave as the threads happen to run, so the vectors differ from run
    to run and between thread counts -- far beyond the last bits, typically
    by a few percent of each coordinate and more with longer training (they
    are as good: the same quality, not the same numbers). ``deterministic=True`` trains on one thread and gives
    bit-identical vectors for any ``n_jobs`` (walks are still sampled on
    ``n_jobs`` threads); with n_jobs=1 both modes are the same.

    Parameters
    ----------
    p, q : float, default 1
        Return and in-out parameters: a step goes back to the previous node
        with weight 1/p, to a neighbour of it with weight 1, further away with
        weight 1/q (times the edge weight). p = q = 1 is DeepWalk. Any p and
        q in [1e-100, 1e100] is sampled exactly, each step in a bounded time.
    dim : int, default 128
        Embedding dimension.
    walk_length : int, default 80
        Nodes per walk, the start node included.
    walks_per_node : int, default 10
    window, negative, epochs, alpha, min_alpha, ns_exponent, sample
        Skip-gram parameters, as in :func:`latentcore.skipgram`
        (defaults 10, 5, 1, 0.025, 1e-4, 0.75, 1e-3).
    directed : bool, default False
        Edge-list files only: whether a line is a one-way edge.
    random_state : int, numpy Generator or None
        The walks are the same for any ``n_jobs``; the embedding is
        bit-identical for a seed with n_jobs=1 or ``deterministic=True``.
    n_jobs : int, optional
        Threads; None or -1: all cores.
    verbose : bool or int
        A progress bar: walks sampled and trained, tokens, current alpha.
    device : {"cpu", "cuda"}, optional
        Where to walk and train; default: the GPU for a cupyx sparse matrix,
        else the CPU.
    deterministic : bool, default False
        Train on one CPU thread: the same vectors for a seed whatever
        ``n_jobs`` (training then runs at one thread's speed). Not available
        on the GPU, whose updates land in any order.

    Attributes
    ----------
    embedding_ : float32 array of shape (n_nodes, dim)
        Row i is the vector of node ``nodes_[i]``; a cupy array on the GPU.
    nodes_ : array of shape (n_nodes,)
        Node ids: 0..n-1 for matrices, ``graph.nodes`` for networkx, the
        sorted ids of an edge-list file.
    n_tokens_ : int
        Tokens trained on, over all epochs (after subsampling).

    Examples
    --------
    >>> import networkx as nx, latentcore
    >>> model = latentcore.Node2Vec(p=1.0, q=0.5, dim=16, random_state=0).fit(nx.karate_club_graph())
    >>> model.embedding_.shape, model.transform([0, 33]).shape
    ((34, 16), (2, 16))
    """

    def __init__(self, p: float = 1.0, q: float = 1.0, *, dim: int = 128, walk_length: int = 80,
                 walks_per_node: int = 10, window: int = 10, negative: int = 5, epochs: int = 1,
                 alpha: float = 0.025, min_alpha: float = 1e-4, ns_exponent: float = 0.75,
                 sample: float = 1e-3, directed: bool = False, random_state=None,
                 n_jobs: int | None = None, verbose: bool = False, device: str | None = None,
                 deterministic: bool = False):
        self.p = p
        self.q = q
        self.dim = dim
        self.walk_length = walk_length
        self.walks_per_node = walks_per_node
        self.window = window
        self.negative = negative
        self.epochs = epochs
        self.alpha = alpha
        self.min_alpha = min_alpha
        self.ns_exponent = ns_exponent
        self.sample = sample
        self.directed = directed
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.device = device
        self.deterministic = deterministic

    _parameter_specs = {
        **_WALK_SPECS,
        "dim": Integer(high=sgns.INT_MAX),
        "window": Integer(high=sgns.INT_MAX),
        "negative": Integer(high=sgns.INT_MAX - 1),
        "epochs": Integer(),
        "alpha": Real(low=0.0, low_inclusive=False),
        "min_alpha": Real(low=0.0),  # and <= alpha: checked by sgns.SkipGramParams
        "ns_exponent": Real(),
        "sample": Real(low=0.0),
        "directed": Boolean(),
        "random_state": Custom(_check_seed, "None, an int or a numpy Generator"),
        "n_jobs": N_JOBS,
        "verbose": VERBOSE,
        "device": DEVICE,
        "deterministic": Boolean(),
    }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # fit takes a graph (a sparse adjacency matrix, a networkx graph, an
        # edge-list path), not a 2-D table of samples.
        tags.input_tags.two_d_array = False
        tags.input_tags.sparse = True
        return tags

    def fit(self, graph: Any, y: Any = None) -> "Node2Vec":
        """Samples walks on ``graph`` and trains the embedding; returns self.

        ``graph`` is anything :func:`as_csr_graph` takes: a scipy.sparse
        matrix, a networkx graph, a fitted KNNGraph or an edge-list path.
        """
        check_params(self)
        params = sgns.SkipGramParams(self.dim, self.window, self.negative, self.epochs, self.alpha,
                                     self.min_alpha, self.ns_exponent, self.sample)
        _check_walk_params(self.walk_length, self.walks_per_node, self.p, self.q)
        walk_seed, train_seed = sgns.seeds(self.random_state, 2)
        n_threads = _backend.resolve_n_jobs(self.n_jobs)
        where = _graph_device(graph, self.device, self.n_jobs)
        deterministic = sgns.check_deterministic(self.deterministic, where)
        A, nodes = as_csr_graph(graph, directed=self.directed)
        sampler = _WalkSampler(A, self.walk_length, self.walks_per_node, self.p, self.q, walk_seed, where,
                               n_threads)
        sgns.check_training_memory(sampler.n_nodes, min(sampler.chunk_walks, sampler.n_walks), self.walk_length,
                                   params, where, deterministic)
        progress = sgns.Progress(sampler.n_walks * params.epochs, self.verbose, type(self).__name__)
        try:
            self.embedding_ = sgns.train(sampler.chunks, sampler.n_walks, sampler.n_nodes, params, train_seed,
                                         where, progress, deterministic=deterministic)
        finally:
            progress.close()
        self.n_tokens_ = progress.tokens
        self._set_nodes(nodes)
        return self

    def fit_transform(self, graph: Any, y: Any = None) -> np.ndarray:
        """Fits and returns ``embedding_``."""
        return self.fit(graph).embedding_

    def transform(self, nodes: Any) -> np.ndarray:
        """The vectors of the given node ids: float32 (len(nodes), dim).

        Raises ValueError naming the first id the fitted graph does not have.
        """
        check_fitted(self, "embedding_", "fit(graph) or load")
        ids = list(nodes) if not isinstance(nodes, (str, bytes)) else [nodes]
        rows = np.fromiter((self._rows.get(_hashable(i), -1) for i in ids), dtype=np.int64, count=len(ids))
        if (rows < 0).any():
            missing = ids[int(np.flatnonzero(rows < 0)[0])]
            raise ValueError(f"nodes: {missing!r} is not a node of the fitted graph")
        return self.embedding_[rows]

    def save(self, path: str | os.PathLike) -> None:
        """Writes the embedding atomically: ``.npy`` (the vectors, rows in
        ``nodes_`` order), ``.npz`` (``embedding`` and ``nodes``) or, for any
        other name, word2vec's text format (loads in gensim's
        ``KeyedVectors.load_word2vec_format``)."""
        check_fitted(self, "embedding_", "fit(graph) or load")
        suffix = Path(path).suffix.lower()
        vectors = _device.to_host(self.embedding_)
        if suffix == ".npy":
            with io.atomic_write(path) as f:
                np.save(f, vectors)
        elif suffix == ".npz":
            if self.nodes_.dtype == object:
                raise ValueError("nodes_ holds ids that are neither all ints nor all strings; save as word2vec text")
            io.write_npz_atomic(path, embedding=vectors, nodes=self.nodes_)
        else:
            io.write_word2vec(path, vectors, self.nodes_)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Node2Vec":
        """An estimator holding the embedding of a file written by :meth:`save`
        (or any word2vec text file); its parameters are the defaults."""
        suffix = Path(path).suffix.lower()
        if suffix == ".npy":
            vectors = np.asarray(io.read_matrix(path), dtype=np.float32)
            nodes = np.arange(vectors.shape[0])
        elif suffix == ".npz":
            vectors = np.asarray(io.read_matrix(path, key="embedding"), dtype=np.float32)
            nodes = io.read_npz_array(path, "nodes")
            if nodes.shape != (vectors.shape[0],):
                raise ValueError(f"{path}: 'nodes' must list one id per embedding row ({vectors.shape[0]}), "
                                 f"got shape {nodes.shape}")
        else:
            vectors, nodes = io.read_word2vec(path)
        model = cls()
        model.embedding_ = vectors
        model._set_nodes(nodes)
        return model

    def _set_nodes(self, nodes: np.ndarray) -> None:
        self.nodes_ = nodes
        self._rows = {_hashable(node): row for row, node in enumerate(nodes.tolist())}


def _hashable(node: Any) -> Any:
    """numpy scalars as the Python values they equal, for dictionary keys."""
    return node.item() if isinstance(node, np.generic) else node


class DeepWalk(Node2Vec):
    """DeepWalk (Perozzi et al. 2014): weighted first-order random walks, then
    skip-gram. :class:`Node2Vec` with p = q = 1, and the same parameters
    otherwise (see there).

    Examples
    --------
    >>> import networkx as nx, latentcore
    >>> latentcore.DeepWalk(dim=16, random_state=0).fit_transform(nx.karate_club_graph()).shape
    (34, 16)
    """

    def __init__(self, *, dim: int = 128, walk_length: int = 80, walks_per_node: int = 10,
                 window: int = 10, negative: int = 5, epochs: int = 1, alpha: float = 0.025,
                 min_alpha: float = 1e-4, ns_exponent: float = 0.75, sample: float = 1e-3,
                 directed: bool = False, random_state=None, n_jobs: int | None = None,
                 verbose: bool = False, device: str | None = None, deterministic: bool = False):
        self.dim = dim
        self.walk_length = walk_length
        self.walks_per_node = walks_per_node
        self.window = window
        self.negative = negative
        self.epochs = epochs
        self.alpha = alpha
        self.min_alpha = min_alpha
        self.ns_exponent = ns_exponent
        self.sample = sample
        self.directed = directed
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.device = device
        self.deterministic = deterministic

    # First-order walks: node2vec's return and in-out parameters are 1 (not
    # constructor parameters: scikit-learn's get_params lists only those).
    p = 1.0
    q = 1.0
    _parameter_specs = {name: spec for name, spec in Node2Vec._parameter_specs.items() if name not in ("p", "q")}
