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
    starts = np.arange(400, dtype=np.int32)
    for p, q in [(1.0, 1.0), (0.5, 2.0)]:
        with_tables, without = (np.empty((400, 15), np.int32) for _ in range(2))
        latentcore._core.walks_sample(indptr, indices, weights, keep, alias, starts, p, q, 9, 0, with_tables, 2)
        latentcore._core.walks_sample(indptr, indices, weights, keep[:0], alias[:0], starts, p, q, 9, 0, without, 2)
        np.testing.assert_array_equal(with_tables, without)
        np.testing.assert_array_equal(random_walks(A, 15, 1, p, q, random_state=0, n_jobs=2),
                                      random_walks(A * 3.0, 15, 1, p, q, random_state=0, n_jobs=1))


def test_integer_ids_any_sign_and_spread(tmp_path):
    for text, ids in [("-5 3\n3 7\n", [-5, 3, 7]), ("1000000000000 2\n2 7\n", [2, 7, 10**12]), ("4 2\n2 0\n", [0, 2, 4])]:
        A, nodes = latentcore.walks.as_csr_graph(line_graph_file(tmp_path, "ids.txt", text), directed=True)
        np.testing.assert_array_equal(nodes, ids)
        expected = {(ids.index(int(a)), ids.index(int(b))) for a, b in (line.split() for line in text.splitlines())}
        assert set(zip(*A.nonzero())) == expected
