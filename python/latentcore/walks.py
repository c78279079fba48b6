"""Random walks on graphs: DeepWalk (first order) and node2vec (second order).

Graphs become one CSR type (the C++ ``CsrGraph``, shared with the t-SNE
affinities): float32 weights, sorted rows, zero-weight edges dropped. Each
node gets an alias table over its out-edges (O(E) memory); node2vec's return
and in-out biases are applied by rejection on the same tables, so hub-heavy
graphs need no per-edge transition tables. Every walk has its own random
stream, so a seed gives the same walks for any thread count.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse

from . import _backend, _core
from ._validation import check_positive_int

__all__ = ["random_walks"]

# Walks per kernel call: Ctrl-C is honoured between calls, and the per-walk
# streams make the split invisible in the result.
_WALKS_PER_CALL = 1 << 16


def _adjacency(graph: Any) -> scipy.sparse.csr_array:
    """The graph as a square CSR matrix of edge weights (rows: sources)."""
    if hasattr(graph, "graph_"):  # a fitted KNNGraph
        graph = graph.graph_
    if type(graph).__module__.startswith("networkx"):
        import networkx as nx

        return scipy.sparse.csr_array(nx.to_scipy_sparse_array(graph, weight="weight", format="csr"))
    if scipy.sparse.issparse(graph):
        return scipy.sparse.csr_array(graph)
    raise TypeError(
        f"graph must be a scipy.sparse matrix, a networkx graph or a fitted KNNGraph, "
        f"got {type(graph).__name__}"
    )


def as_csr_graph(graph: Any) -> scipy.sparse.csr_array:
    """A validated float32 CSR graph with sorted rows and no zero-weight edges.

    Raises ValueError for an empty or non-square graph, and for a negative,
    NaN or infinite weight, naming the first offending edge.
    """
    A = _adjacency(graph)
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"graph must be square (n_nodes, n_nodes), got shape {A.shape}")
    if A.shape[0] == 0:
        raise ValueError("graph is empty: it has no nodes")
    A = scipy.sparse.csr_array(A, dtype=np.float64)
    A.sum_duplicates()
    bad = ~np.isfinite(A.data) | (A.data < 0)
    if bad.any():
        e = int(np.flatnonzero(bad)[0])
        row = int(np.searchsorted(A.indptr, e, side="right") - 1)
        raise ValueError(
            f"graph has edge ({row}, {int(A.indices[e])}) with weight {A.data[e]}; "
            "weights must be finite and non-negative"
        )
    A.eliminate_zeros()
    A.sort_indices()
    return scipy.sparse.csr_array(A, dtype=np.float32)


def _seed(random_state) -> int:
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63))
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return int(random_state) % 2**64
    raise TypeError(f"random_state must be None, an int or a numpy Generator, got {type(random_state).__name__}")


def random_walks(graph: Any, walk_length: int = 80, walks_per_node: int = 10, p: float = 1.0,
                 q: float = 1.0, *, random_state=None, n_jobs: int | None = None) -> np.ndarray:
    """Truncated random walks from every node (DeepWalk, or node2vec's biased walks).

    Parameters
    ----------
    graph : scipy.sparse matrix, networkx Graph/DiGraph or fitted KNNGraph
        Edge weights (networkx: the ``weight`` attribute, default 1); row i
        holds i's out-edges. Undirected graphs are walked both ways. Node i is
        row i (networkx: the i-th node of ``graph.nodes``).
    walk_length : int, default 80
        Nodes per walk, **the start node included** (PecanPy's ``walk_length=80``
        gives 81 nodes; this gives 80). At least 2.
    walks_per_node : int, default 10
    p, q : float, default 1
        node2vec's return and in-out parameters: the next node is drawn by
        edge weight times 1/p (back to the previous node), 1 (a neighbour of
        the previous node) or 1/q (further away). p = q = 1 is DeepWalk.
    random_state : int, numpy Generator or None
        A seed gives the same walks whatever ``n_jobs``.
    n_jobs : int, optional
        Threads; None or -1: all cores.

    Returns
    -------
    int32 array of shape (walks_per_node * n_nodes, walk_length)
        Round r holds rows r * n_nodes ... (r + 1) * n_nodes - 1, one walk per
        node in node order. A walk that reaches a node without out-edges (a
        sink of a directed graph, or an isolated node) is padded with -1.
    """
    walk_length = check_positive_int(walk_length, "walk_length")
    if walk_length < 2:
        raise ValueError(f"walk_length must be >= 2 (it counts nodes, the start included), got {walk_length}")
    walks_per_node = check_positive_int(walks_per_node, "walks_per_node")
    for name, value in (("p", p), ("q", q)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    seed = _seed(random_state)
    n_threads = _backend.resolve_n_jobs(n_jobs)
    A = as_csr_graph(graph)
    indptr, indices = A.indptr.astype(np.int64), A.indices.astype(np.int32)
    keep = np.empty(A.nnz, np.float32)
    alias = np.empty(A.nnz, np.int32)
    _core.walks_build_alias(indptr, indices, A.data, keep, alias, n_threads)
    n = A.shape[0]
    starts = np.tile(np.arange(n, dtype=np.int32), walks_per_node)
    walks = np.empty((starts.size, walk_length), np.int32)
    for first in range(0, starts.size, _WALKS_PER_CALL):
        chunk = slice(first, first + _WALKS_PER_CALL)
        _core.walks_sample(indptr, indices, A.data, keep, alias, starts[chunk], float(p), float(q),
                           seed, first, walks[chunk], n_threads)
    return walks
