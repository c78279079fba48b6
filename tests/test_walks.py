"""Random walks against their defining distributions: first steps follow the
edge weights, node2vec's second-order steps follow w(v, x) * bias(t, x)."""

import numpy as np
import pytest
import scipy.sparse
from scipy.stats import chisquare

from conftest import assert_interruptible, assert_kernel_refuses, run_isolated

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


def line_graph_file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("name,text", [
    ("g.txt", "# a comment\na b 2.0\nb c 1\nc a 0.5\nd d 1\n"),
    ("g.csv", "source,target,weight\na,b,2.0\nb,c,1\nc,a,0.5\nd,d,1\n"),
    ("g.tsv", "a\tb\t2.0\nb\tc\t1\nc\ta\t0.5\nd\td\t1\n"),
])
def test_edge_list_files_map_ids_to_rows(tmp_path, name, text):
    path = line_graph_file(tmp_path, name, text)
    A, nodes = latentcore.walks.as_csr_graph(path)
    np.testing.assert_array_equal(nodes, ["a", "b", "c", "d"])
    expected = np.array([[0, 2, 0.5, 0], [2, 0, 1, 0], [0.5, 1, 0, 0], [0, 0, 0, 1]])
    np.testing.assert_allclose(A.toarray(), expected)  # undirected; the self-loop once
    directed, _ = latentcore.walks.as_csr_graph(path, directed=True)
    np.testing.assert_allclose(directed.toarray(), [[0, 2, 0, 0], [0, 0, 1, 0], [0.5, 0, 0, 0], [0, 0, 0, 1]])


def test_parquet_and_integer_ids(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "g.parquet"
    pq.write_table(pa.table({"src": [10, 30, 20], "dst": [20, 10, 30]}), path)
    A, nodes = latentcore.walks.as_csr_graph(path, directed=True)
    assert nodes.dtype == np.int64
    np.testing.assert_array_equal(nodes, [10, 20, 30])
    np.testing.assert_array_equal(A.toarray(), [[0, 1, 0], [0, 0, 1], [1, 0, 0]])


def test_bad_edge_files(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        random_walks(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match=r"line 2: edge \(b, c\) has weight -1"):
        random_walks(line_graph_file(tmp_path, "neg.txt", "a b 1\nb c -1\n"))
    for text, line in [("0 1 1\n1 2 -1\n", 2), ("\nsrc dst w\n0 1 1\n1 2 -1\n", 4), ("0 1 1\n\n1 2 -1\n", 3)]:
        with pytest.raises(ValueError, match=rf"line {line}: edge \(1, 2\) has weight -1"):
            random_walks(line_graph_file(tmp_path, "numbers.txt", text))
    with pytest.raises(ValueError, match="line 2: weight 'x'"):
        random_walks(line_graph_file(tmp_path, "nan.txt", "a b 1\nb c x\n"))
    with pytest.raises(ValueError, match="line 2 has 1 fields"):
        random_walks(line_graph_file(tmp_path, "ragged.txt", "a b\nc\n"))
    with pytest.raises(ValueError, match="no edges"):
        random_walks(line_graph_file(tmp_path, "empty.txt", "# nothing\n"))
    with pytest.raises(ValueError, match="unknown edge-list type"):
        random_walks(line_graph_file(tmp_path, "g.json", "{}"))
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ValueError, match="bin.txt"):
        random_walks(binary)


def test_node_ids_transform_and_save_load(tmp_path):
    nx = pytest.importorskip("networkx")
    G = nx.relabel_nodes(nx.karate_club_graph(), {i: f"member{i}" for i in range(34)})
    model = latentcore.DeepWalk(dim=8, walk_length=10, walks_per_node=5, window=3, random_state=0,
                                n_jobs=1).fit(G)
    assert list(model.nodes_) == list(G.nodes)
    np.testing.assert_array_equal(model.transform(["member3", "member0"]), model.embedding_[[3, 0]])
    with pytest.raises(ValueError, match="'stranger' is not a node"):
        model.transform(["member1", "stranger"])
    again = latentcore.DeepWalk(dim=8, walk_length=10, walks_per_node=5, window=3, random_state=0,
                                n_jobs=1).fit(G)
    np.testing.assert_array_equal(model.embedding_, again.embedding_)  # one thread: bit-identical
    for name in ("emb.txt", "emb.npz", "emb.npy"):
        model.save(tmp_path / name)
        loaded = latentcore.DeepWalk.load(tmp_path / name)
        np.testing.assert_array_equal(loaded.embedding_, model.embedding_)
        if name != "emb.npy":
            np.testing.assert_array_equal(loaded.transform(["member5"]), model.transform(["member5"]))
    gensim = pytest.importorskip("gensim")
    vectors = gensim.models.KeyedVectors.load_word2vec_format(str(tmp_path / "emb.txt"))
    np.testing.assert_array_equal(np.stack([vectors[n] for n in G.nodes]), model.embedding_)


def test_estimator_bad_input(tmp_path):
    G = weighted_graph()[0]
    for kwargs, word in [({"dim": 0}, "dim"), ({"window": 0}, "window"), ({"walk_length": 1}, "walk_length")]:
        with pytest.raises(ValueError, match=word):
            latentcore.Node2Vec(**kwargs).fit(G)
    for p, q in [(0.0, 1.0), (1.0, -2.0)]:
        with pytest.raises(ValueError, match="p must" if p <= 0 else "q must"):
            latentcore.Node2Vec(p, q).fit(G)
    with pytest.raises(ValueError, match="empty"):
        latentcore.DeepWalk().fit(scipy.sparse.csr_array((0, 0)))
    with pytest.raises(RuntimeError, match="not fitted"):
        latentcore.DeepWalk().transform([0])
    with pytest.raises(ValueError, match="device"):
        latentcore.DeepWalk(device="tpu").fit(G)


def test_uniform_rows_skip_the_tables_with_the_same_draws():
    rng = np.random.default_rng(3)
    A = scipy.sparse.random_array((400, 400), density=0.03, random_state=rng, format="csr")
    A.data[:] = 2.0  # equal weights: the sampler draws without alias tables
    A.sort_indices()
    indptr, indices, weights = A.indptr.astype(np.int64), A.indices.astype(np.int32), A.data.astype(np.float32)
    keep, alias = np.empty(A.nnz, np.float32), np.empty(A.nnz, np.int32)
    latentcore._core.walks_build_alias(indptr, indices, weights, keep, alias, 1)
    totals, maxima = latentcore.walks.row_totals(A), latentcore.walks.row_maxima(A)
    starts = np.arange(400, dtype=np.int32)
    for p, q in [(1.0, 1.0), (0.5, 2.0), (1e-6, 1e9), (1e15, 1e-6), (0.1, 10.0)]:
        with_tables, without = (np.empty((400, 15), np.int32) for _ in range(2))
        latentcore._core.walks_sample(indptr, indices, weights, keep, alias, totals, maxima, starts, p, q, 9, 0,
                                      with_tables, 2)
        latentcore._core.walks_sample(indptr, indices, weights, keep[:0], alias[:0], totals[:0], maxima[:0],
                                      starts, p, q, 9, 0, without, 2)
        np.testing.assert_array_equal(with_tables, without)
        np.testing.assert_array_equal(random_walks(A, 15, 1, p, q, random_state=0, n_jobs=2),
                                      random_walks(A * 3.0, 15, 1, p, q, random_state=0, n_jobs=1))


def test_integer_ids_any_sign_and_spread(tmp_path):
    for text, ids in [("-5 3\n3 7\n", [-5, 3, 7]), ("1000000000000 2\n2 7\n", [2, 7, 10**12]), ("4 2\n2 0\n", [0, 2, 4])]:
        A, nodes = latentcore.walks.as_csr_graph(line_graph_file(tmp_path, "ids.txt", text), directed=True)
        np.testing.assert_array_equal(nodes, ids)
        expected = {(ids.index(int(a)), ids.index(int(b))) for a, b in (line.split() for line in text.splitlines())}
        assert set(zip(*A.nonzero())) == expected


# ----------------------------------------------------------------------------- node2vec at any p, q

EXTREME_P = [1e-6, 0.1, 10.0, 1e15]
EXTREME_Q = [1e-6, 0.25, 4.0, 1e9]
P_EXACT = 1e-5  # chi-square p-value below which the step distribution is wrong


def undirected_with_self_loop():
    """Weighted, undirected: a square with a diagonal, a self-loop at 2, a tail 3-4-5 (5 a leaf)."""
    A = np.zeros((6, 6))
    for (a, b), w in {(0, 1): 1.0, (1, 2): 2.0, (2, 3): 3.0, (3, 0): 4.0, (0, 2): 5.0, (3, 4): 0.5,
                      (4, 5): 1.5, (2, 2): 0.7}.items():
        A[a, b] = A[b, a] = w
    return A


def directed_with_sink():
    """Weighted, directed: some steps have no way back (w(here, previous) = 0), node 4 is a sink."""
    A = np.zeros((5, 5))
    for (a, b), w in {(0, 1): 1.0, (1, 2): 2.5, (2, 0): 1.0, (1, 0): 0.25, (2, 3): 2.0, (3, 1): 1.0,
                      (3, 4): 3.0, (0, 3): 0.5, (3, 2): 1.5}.items():
        A[a, b] = w
    return A


def hub_with_triangles():
    """Weighted, undirected: a hub 0 of degree 9 whose leaves form a few
    triangles with it, so that q > 1 samples rows longer than q by the mixture,
    proposing from the previous node's row (leaf -> hub) or from here's (hub -> leaf)."""
    A = np.zeros((10, 10))
    rng = np.random.default_rng(4)
    for leaf in range(1, 10):
        A[0, leaf] = A[leaf, 0] = rng.uniform(0.2, 3.0)
    for a, b in [(1, 2), (2, 3), (4, 5), (7, 8), (8, 9), (3, 9), (5, 6)]:
        A[a, b] = A[b, a] = rng.uniform(0.2, 3.0)
    return A


def node2vec_step_probabilities(A, t, v, p, q):
    """node2vec's exact distribution of the step after t -> v, in float64."""
    xs = np.flatnonzero(A[v])
    bias = np.array([1 / p if x == t else (1.0 if A[t, x] > 0 else 1 / q) for x in xs])
    mass = A[v, xs] * bias
    return xs, mass / mass.sum()


def second_order_chi_square(walks, A, p, q):
    """(chi-square statistic, degrees of freedom) of the sampled steps t -> v -> x
    against node2vec's exact probabilities, over every (t, v) seen. Outcomes
    expected fewer than 5 times are pooled; a pool still expected fewer than 5
    times is checked on its own (Poisson, both tails) and merged into the
    largest outcome."""
    from scipy.stats import poisson

    triples = walks[:, :3][(walks[:, :3] >= 0).all(axis=1)].astype(np.int64)
    n = A.shape[0]
    codes, counts = np.unique((triples[:, 0] * n + triples[:, 1]) * n + triples[:, 2], return_counts=True)
    observed = dict(zip(codes.tolist(), counts.tolist()))
    statistic, dof = 0.0, 0
    for t, v in sorted({(int(a), int(b)) for a, b in triples[:, :2]}):
        xs, probs = node2vec_step_probabilities(A, t, v, p, q)
        seen = np.array([observed.get((t * n + v) * n + x, 0) for x in xs])
        m = int(((triples[:, 0] == t) & (triples[:, 1] == v)).sum())
        assert seen.sum() == m, f"a step after {t} -> {v} is not an edge"
        expected = probs * m
        big = expected >= 5
        bins_o, bins_e = list(seen[big]), list(expected[big])
        rare_o, rare_e = int(seen[~big].sum()), float(expected[~big].sum())
        if rare_e >= 5:
            bins_o.append(rare_o)
            bins_e.append(rare_e)
        elif (~big).any():
            tail = min(poisson.sf(rare_o - 1, rare_e), poisson.cdf(rare_o, rare_e))
            assert tail > P_EXACT, f"after {t} -> {v}: {rare_o} rare steps, {rare_e:.3g} expected (p={p}, q={q})"
            if bins_o:
                k = int(np.argmax(bins_e))
                bins_o[k] += rare_o
                bins_e[k] += rare_e
        if len(bins_o) >= 2:
            bins_o, bins_e = np.array(bins_o, float), np.array(bins_e)
            statistic += float(((bins_o - bins_e) ** 2 / bins_e).sum())
            dof += len(bins_o) - 1
    return statistic, dof


@pytest.mark.parametrize("graph,qs", [(undirected_with_self_loop, EXTREME_Q), (directed_with_sink, EXTREME_Q),
                                      (hub_with_triangles, [0.25, 1.5, 4.0, 1e9])])
def test_node2vec_steps_are_exact_for_extreme_p_and_q(graph, qs):
    """Every step follows node2vec's distribution exactly, at any p and q: the
    folded return region (small p), the mixture for q > 1 (either proposal),
    the rejections with their fallback to the exact row (extreme q, huge p at
    a node whose only way on is back)."""
    from scipy.stats import chi2

    A = graph()
    G = scipy.sparse.csr_array(A)
    checked = 0
    for i, p in enumerate(EXTREME_P):
        for j, q in enumerate(qs):
            walks = random_walks(G, walk_length=3, walks_per_node=20000, p=p, q=q, random_state=10 * i + j,
                                 n_jobs=2)
            statistic, dof = second_order_chi_square(walks, A, p, q)
            if dof:
                assert chi2.sf(statistic, dof) > P_EXACT, (p, q, statistic, dof)
                checked += 1
    assert checked >= 12


def test_node2vec_walks_with_extreme_p_and_q_agree_across_threads_and_tables():
    rng = np.random.default_rng(5)
    A = scipy.sparse.random_array((500, 500), density=0.02, random_state=rng, format="csr")
    A = scipy.sparse.csr_array(A + A.T)
    A.data = rng.uniform(0.1, 2.0, A.nnz)
    for p, q in [(1e-6, 1e9), (1e15, 1e-6), (0.1, 10.0), (10.0, 0.1)]:
        one = random_walks(A, 30, 2, p, q, random_state=3, n_jobs=1)
        np.testing.assert_array_equal(one, random_walks(A, 30, 2, p, q, random_state=3, n_jobs=2))


def test_huge_p_and_extreme_q_finish_fast():
    """p = 1e15 on a graph whose only way on is back used to loop ~1e15 times."""
    result = run_isolated("""
        import time, numpy as np, scipy.sparse
        from latentcore import random_walks
        t0 = time.perf_counter()
        walks = random_walks(scipy.sparse.csr_array([[0, 1.], [1, 0]]), 4, 1, p=1e15)
        assert walks.tolist() == [[0, 1, 0, 1], [1, 0, 1, 0]], walks.tolist()
        path = scipy.sparse.diags_array([np.ones(99), np.ones(99)], offsets=[1, -1], format="csr")
        star = scipy.sparse.csr_array((np.ones(198), (np.r_[np.zeros(99), np.arange(1, 100)].astype(int),
                                                     np.r_[np.arange(1, 100), np.zeros(99)].astype(int))),
                                      shape=(100, 100))
        for G in (path, star):
            for p, q in [(1e15, 1.0), (1e15, 1e9), (1e-100, 1e100), (1e100, 1e-100), (1.0, 1e9)]:
                W = random_walks(G, 1000, 2, p=p, q=q, random_state=0, n_jobs=2)
                assert (W >= 0).all()
        print(time.perf_counter() - t0)
    """, timeout=60)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.split()[-1]) < 5.0, result.stdout


def test_ctrl_c_stops_node2vec_walks():
    rng = np.random.default_rng(0)
    A = scipy.sparse.random_array((2000, 2000), density=0.05, random_state=rng, format="csr")
    A = scipy.sparse.csr_array(A + A.T)
    # q = 1e9: almost every step ends in the exact fallback over a ~200-edge row.
    assert_interruptible(lambda: random_walks(A, 400, 20, p=1.0, q=1e9, random_state=0, n_jobs=2))


# ----------------------------------------------------------------------------- crafted input

def test_walk_length_beyond_int32_or_memory_is_a_clear_error():
    for length in (2**32 + 3, 2**31 + 5, 2**31):
        with pytest.raises(ValueError, match="walk_length"):
            random_walks(scipy.sparse.csr_array((1, 1)), length, 1)
    # Representable, but more memory than any machine here has: refused before allocating.
    with pytest.raises(ValueError, match="walk_length"):
        random_walks(scipy.sparse.csr_array((10**5, 10**5)), 2**31 - 1, 10**3)
    with pytest.raises(ValueError, match="walk_length"):
        latentcore.DeepWalk(walk_length=2**31).fit(scipy.sparse.csr_array((2, 2)))
    for p in (1e-101, 1e101, 5e-324):
        with pytest.raises(ValueError, match="p must"):
            random_walks(scipy.sparse.csr_array((2, 2)), 3, 1, p=p)
    np.testing.assert_array_equal(random_walks(scipy.sparse.csr_array((1, 1)), 5, 1), [[0, -1, -1, -1, -1]])


CRAFTED_GRAPHS = {
    # scipy's own conversions would read out of bounds (COO) or fail deep inside (CSR) on these.
    "coo_row_past_shape": """
        G = scipy.sparse.coo_array((np.ones(2), (np.array([0, 1]), np.array([0, 1]))), shape=(2, 2))
        G.coords[0][1] = 7""",
    "coo_negative_col": """
        G = scipy.sparse.coo_array((np.ones(2), (np.array([0, 1]), np.array([0, 1]))), shape=(2, 2))
        G.coords[1][0] = -5""",
    "csr_index_past_shape": """
        G = scipy.sparse.csr_array((np.ones(2), np.array([0, 99]), np.array([0, 1, 2])), shape=(2, 2))""",
    "csr_huge_int64_index": """
        G = scipy.sparse.csr_array((np.ones(2), np.array([0, 2**40]), np.array([0, 1, 2])), shape=(2, 2))""",
    "csr_decreasing_indptr": """
        G = scipy.sparse.csr_array((np.ones(2), np.array([0, 1]), np.array([0, 5, 2])), shape=(2, 2))""",
    "csr_indptr_overflow": """
        G = scipy.sparse.csr_array((np.ones(2), np.array([0, 1]), np.array([0, 2**62, 2], np.int64)),
                                   shape=(2, 2))""",
    "csc_index_past_shape": """
        G = scipy.sparse.csc_array((np.ones(2), np.array([0, 9]), np.array([0, 1, 2])), shape=(2, 2))""",
    "nan_weight": """
        G = scipy.sparse.csr_array(np.array([[0, np.nan], [1.0, 0]]))""",
    "complex_weights": """
        G = scipy.sparse.csr_array(np.array([[0, 1 + 1j], [1, 0]]))""",
}


@pytest.mark.parametrize("name", sorted(CRAFTED_GRAPHS))
def test_crafted_sparse_graphs_are_refused_naming_the_graph(name):
    result = run_isolated(f"""
        import numpy as np, scipy.sparse
        from latentcore import random_walks
        {CRAFTED_GRAPHS[name].strip()}
        try:
            random_walks(G, 3, 1, p=0.5, q=2.0)
        except (ValueError, TypeError) as exc:
            assert "graph" in str(exc) or "edge" in str(exc), exc
            print("refused:", type(exc).__name__, exc)
        else:
            raise AssertionError("accepted")
    """)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert "refused" in result.stdout


def test_crafted_graphs_that_are_valid_walk_right():
    """Unsorted rows, duplicate edges (they add up), explicit zeros and zero-weight rows (dropped: sinks)."""
    indptr = np.array([0, 3, 5, 7, 8])
    indices = np.array([2, 1, 1, 0, 0, 3, 0, 3])
    data = np.array([1.0, 0.5, 0.5, 2.0, 0.0, 1.0, 1.0, 0.0])
    G = scipy.sparse.csr_array((data, indices, indptr), shape=(4, 4))  # row 1: 0 -> weight 0 twice... dup
    dense = np.zeros((4, 4))
    for r in range(4):
        for e in range(indptr[r], indptr[r + 1]):
            dense[r, indices[e]] += data[e]
    walks = random_walks(G, 6, 50, p=0.5, q=2.0, random_state=0)
    for walk in walks:
        steps = walk[walk >= 0]
        assert all(dense[a, b] > 0 for a, b in zip(steps[:-1], steps[1:]))
        if len(steps) < 6:
            assert not (dense[steps[-1]] > 0).any()
    assert (walks[walks[:, 0] == 3, 1] == -1).all()  # node 3's only edge weighs 0: a sink
    second = walks[walks[:, 0] == 0, 1]
    assert set(second.tolist()) == {1, 2}  # the duplicate edge 0 -> 1 (0.5 + 0.5) against 0 -> 2 (1)
    assert chisquare(np.bincount(second, minlength=3)[1:], [second.size / 2] * 2).pvalue > P_MIN


KERNEL_ARGS = """
    import numpy as np
    from latentcore import _core
    indptr = np.array([0, 2, 3, 4], np.int64)
    indices = np.array([1, 2, 0, 0], np.int32)
    weights = np.ones(4, np.float32)
    keep, alias = np.ones(4, np.float32), np.array([0, 1, 0, 0], np.int32)
    totals, maxima = np.array([2.0, 1.0, 1.0]), np.ones(3, np.float32)
    starts = np.arange(3, dtype=np.int32)
    walks = np.empty((3, 5), np.int32)
    args = dict(indptr=indptr, indices=indices, weights=weights, keep=keep, alias=alias, totals=totals,
                maxima=maxima, starts=starts, p=0.5, q=2.0, seed=0, first_walk=0, walks=walks, n_threads=2)
    _core.walks_sample(**args)  # the unchanged call runs
"""

KERNEL_FAULTS = {
    "edge target out of range": "indices=np.array([1, 2, 0, 3], np.int32)",
    "indptr must run": "indptr=np.array([0, 2, 3, 9], np.int64)",
    "indptr must not decrease": "indptr=np.array([0, 3, 1, 4], np.int64)",
    "alias offset": "alias=np.array([0, 2, 0, 0], np.int32)",
    "totals": "totals=np.array([2.0, 0.0, 1.0])",
    "totals and maxima one per node": "totals=np.ones(2)",
    "and maxima must be positive": "maxima=np.array([1, 0, 1], np.float32)",
    "start node": "starts=np.array([0, 1, 3], np.int32)",
    "p and q": "p=0.0",
    "one walk row per start": "walks=np.empty((2, 5), np.int32)",
}


@pytest.mark.parametrize("word", sorted(KERNEL_FAULTS))
def test_kernel_bindings_check_what_they_follow(word):
    """Direct calls of the private kernels with crafted arrays: a ValueError, never a read out of bounds."""
    assert_kernel_refuses(KERNEL_ARGS, "_core.walks_sample", KERNEL_FAULTS[word], word)


def test_alias_tables_refuse_weights_they_cannot_sample():
    result = run_isolated(KERNEL_ARGS + """
    try:
        _core.walks_build_alias(indptr, indices, np.array([1, np.nan, 1, 1], np.float32), keep, alias, 1)
    except ValueError as exc:
        assert "weights" in str(exc), exc
    else:
        raise AssertionError("NaN weights accepted")
    try:
        _core.walks_build_alias(indptr, indices, np.array([0, 0, 1, 1], np.float32), keep, alias, 1)
    except ValueError as exc:
        assert "row 0" in str(exc), exc
    else:
        raise AssertionError("a row of zero weights accepted")
    """)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
