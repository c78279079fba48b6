"""Random walks against their defining distributions: first steps follow the
edge weights, node2vec's second-order steps follow w(v, x) * bias(t, x)."""

import numpy as np
import pytest
import scipy.sparse
from scipy.stats import chisquare

import latentcore
from latentcore import random_walks

P_MIN = 1e-3  # chi-square p-value below which a sampler is wrong


def weighted_graph():
    # 0-1-2-3 square with a diagonal 0-2 and a tail 3-4, weights all distinct.
    edges = {(0, 1): 1.0, (1, 2): 2.0, (2, 3): 3.0, (3, 0): 4.0, (0, 2): 5.0, (3, 4): 0.5}
    n = 5
    A = np.zeros((n, n))
    for (a, b), w in edges.items():
        A[a, b] = A[b, a] = w
    return scipy.sparse.csr_array(A), A


def test_first_steps_follow_edge_weights():
    G, A = weighted_graph()
    walks = random_walks(G, walk_length=2, walks_per_node=20000, random_state=0)
    for v in range(5):
        nxt = walks[walks[:, 0] == v, 1]
        neighbors = np.flatnonzero(A[v])
        counts = np.array([(nxt == u).sum() for u in neighbors])
        assert counts.sum() == nxt.size  # only edges are taken
        if neighbors.size == 1:
            continue  # a forced step: nothing to test beyond the edge
        expected = A[v, neighbors] / A[v, neighbors].sum() * nxt.size
        assert chisquare(counts, expected).pvalue > P_MIN


def test_node2vec_second_steps_follow_the_biased_distribution():
    G, A = weighted_graph()
    p, q = 0.25, 4.0
    walks = random_walks(G, walk_length=3, walks_per_node=60000, p=p, q=q, random_state=1)
    checked = 0
    for t in range(5):
        for v in np.flatnonzero(A[t]):
            third = walks[(walks[:, 0] == t) & (walks[:, 1] == v), 2]
            if third.size < 2000:
                continue
            xs = np.flatnonzero(A[v])
            bias = np.array([1 / p if x == t else (1.0 if A[t, x] > 0 else 1 / q) for x in xs])
            weights = A[v, xs] * bias
            counts = np.array([(third == x).sum() for x in xs])
            assert counts.sum() == third.size
            if xs.size == 1:
                continue
            assert chisquare(counts, weights / weights.sum() * third.size).pvalue > P_MIN
            checked += 1
    assert checked >= 8


def test_walks_follow_edges_pad_at_sinks_and_repeat_for_any_thread_count():
    rng = np.random.default_rng(0)
    A = scipy.sparse.random_array((300, 300), density=0.02, random_state=rng, format="csr")
    A.data = rng.uniform(0.1, 2.0, A.nnz)
    walks1 = random_walks(A, walk_length=12, walks_per_node=3, p=0.5, q=2.0, random_state=7, n_jobs=1)
    walks2 = random_walks(A, walk_length=12, walks_per_node=3, p=0.5, q=2.0, random_state=7, n_jobs=2)
    np.testing.assert_array_equal(walks1, walks2)
    assert walks1.shape == (900, 12) and walks1.dtype == np.int32
    np.testing.assert_array_equal(walks1[:, 0], np.tile(np.arange(300), 3))
    dense = A.toarray() > 0
    for walk in walks1:
        steps = walk[walk >= 0]
        assert np.all(walk[len(steps):] == -1)  # padding only at the end
        assert all(dense[a, b] for a, b in zip(steps[:-1], steps[1:]))
        if len(steps) < 12:
            assert not dense[steps[-1]].any()  # stopped at a sink
    assert not np.array_equal(walks1, random_walks(A, walk_length=12, walks_per_node=3, p=0.5, q=2.0, random_state=8))


def test_networkx_and_knn_graph_inputs():
    nx = pytest.importorskip("networkx")
    G = nx.DiGraph()
    G.add_weighted_edges_from([(0, 1, 1.0), (1, 2, 2.0), (1, 0, 1.0)])
    G.add_node(3)  # isolated
    walks = random_walks(G, walk_length=4, walks_per_node=2, random_state=0)
    np.testing.assert_array_equal(walks[3], [3, -1, -1, -1])
    assert np.all(walks[walks[:, 1] == 2, 2] == -1)  # 2 is a sink
    X = np.random.default_rng(0).standard_normal((200, 4)).astype(np.float32)
    knn_graph = latentcore.KNNGraph(n_neighbors=5).fit(X)
    walks = random_walks(knn_graph, walk_length=5, walks_per_node=1, random_state=0)
    assert np.all(knn_graph.graph_.toarray()[walks[:, :-1], walks[:, 1:]] > 0)


class TestBadInput:
    G = weighted_graph()[0]

    @pytest.mark.parametrize("kwargs,exc,word", [
        ({"p": 0.0}, ValueError, "p must"), ({"q": -1.0}, ValueError, "q must"),
        ({"p": float("nan")}, ValueError, "p must"), ({"walk_length": 1}, ValueError, "walk_length"),
        ({"walk_length": 0}, ValueError, "walk_length"), ({"walks_per_node": 0}, ValueError, "walks_per_node"),
        ({"random_state": "x"}, TypeError, "random_state"),
    ])
    def test_bad_parameters(self, kwargs, exc, word):
        with pytest.raises(exc, match=word):
            random_walks(self.G, **kwargs)

    def test_bad_graphs(self):
        A = self.G.toarray()
        A[2, 3] = -1.0
        with pytest.raises(ValueError, match=r"edge \(2, 3\) with weight -1"):
            random_walks(scipy.sparse.csr_array(A))
        A[2, 3] = np.nan
        with pytest.raises(ValueError, match=r"edge \(2, 3\)"):
            random_walks(scipy.sparse.csr_array(A))
        with pytest.raises(ValueError, match="square"):
            random_walks(scipy.sparse.csr_array(np.ones((3, 4))))
        with pytest.raises(ValueError, match="empty"):
            random_walks(scipy.sparse.csr_array((0, 0)))
        with pytest.raises(TypeError, match="graph must be"):
            random_walks([[0, 1], [1, 0]])
