"""Exact k-NN against independent references: scikit-learn's brute-force
NearestNeighbors and an O(n^2) float64 computation."""

import _thread
import threading
import time

import numpy as np
import pytest
import scipy.sparse
from conftest import pair_distances
from sklearn.neighbors import NearestNeighbors, kneighbors_graph

import latentcore
from latentcore import _core

METRICS = ["euclidean", "sqeuclidean", "cosine", "inner_product"]
DIST_RTOL = 1e-4  # float32 output against float64 references
DIST_ATOL = 1e-5  # for distances near zero, where relative error means nothing


def reference_knn(X, k, metric, queries=None):
    """Indices and distances from sklearn brute force (inner product: numpy)."""
    if metric == "inner_product":
        Q = X if queries is None else queries
        d = -(Q.astype(np.float64) @ X.astype(np.float64).T)
        if queries is None:
            np.fill_diagonal(d, np.inf)
        idx = np.argsort(d, axis=1, kind="stable")[:, :k]
        return idx, np.take_along_axis(d, idx, axis=1)
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute", metric=metric).fit(X.astype(np.float64))
    dist, idx = nn.kneighbors(None if queries is None else queries.astype(np.float64))
    return idx, dist


def assert_valid_neighbors(idx, dist, X, metric, k, ref_dist, queries=None, exclude_self=True):
    """idx is an exact k-NN answer up to ties: its entries' true distances equal
    the reference's position by position, and each row is sorted, unique and
    free of the point itself."""
    Q = X if queries is None else queries
    assert idx.dtype == np.int32 and dist.dtype == np.float32
    assert idx.shape == dist.shape == (Q.shape[0], k)
    true = pair_distances(Q, X, idx, metric)
    scale = np.abs(ref_dist).max() + 1.0
    np.testing.assert_allclose(dist, true, rtol=DIST_RTOL, atol=DIST_ATOL * scale)
    np.testing.assert_allclose(true, ref_dist, rtol=DIST_RTOL, atol=DIST_ATOL * scale)
    assert np.all(np.diff(dist, axis=1) >= 0)
    assert all(len(set(row)) == k for row in idx.tolist())
    if queries is None and exclude_self:
        assert not np.any(idx == np.arange(X.shape[0])[:, None])


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("d", [1, 3, 64, 257])
@pytest.mark.parametrize("n", [16, 1000, 5003])  # 16 = k + 1: every other point is a neighbour
def test_all_pairs_matches_reference(rng, metric, n, d):
    k = 15
    X = rng.standard_normal((n, d)).astype(np.float32)
    idx, dist = latentcore.knn(X, k, metric=metric)
    ref_idx, ref_dist = reference_knn(X, k, metric)
    assert_valid_neighbors(idx, dist, X, metric, k, ref_dist)
    if d > 3:  # continuous data in several dimensions has no ties: exact equality
        assert np.mean(idx == ref_idx) > 0.999


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("n,m,k", [(1, 7, 1), (16, 5, 16), (1000, 300, 15), (5003, 777, 40)])
def test_queries_match_reference(rng, metric, n, m, k):
    X = rng.standard_normal((n, 33)).astype(np.float32)
    Q = rng.standard_normal((m, 33)).astype(np.float32)
    idx, dist = latentcore.knn(X, k, queries=Q, metric=metric)
    _, ref_dist = reference_knn(X, k, metric, queries=Q)
    assert_valid_neighbors(idx, dist, X, metric, k, ref_dist, queries=Q)


def test_include_self_puts_each_point_first(rng):
    X = rng.standard_normal((700, 8)).astype(np.float32)
    idx, dist = latentcore.knn(X, 5, exclude_self=False)
    np.testing.assert_array_equal(idx[:, 0], np.arange(700))
    np.testing.assert_array_equal(dist[:, 0], 0.0)
    idx_ex, _ = latentcore.knn(X, 4)
    np.testing.assert_array_equal(idx[:, 1:], idx_ex)


def test_ties_are_broken_by_smaller_index(rng):
    base = rng.standard_normal((50, 6)).astype(np.float32)
    X = np.concatenate([base, base, base])  # every point has two exact copies
    idx, dist = latentcore.knn(X, 2)
    copies = np.sort(np.stack([(np.arange(150) + s) % 150 for s in (50, 100)], axis=1), axis=1)
    np.testing.assert_array_equal(idx, copies)
    np.testing.assert_array_equal(dist, 0.0)
    # A query equidistant from several points gets them in index order.
    grid = np.array([[1, 0], [0, 1], [-1, 0], [0, -1], [2, 0]], np.float32)
    idx, _ = latentcore.knn(grid, 4, queries=np.zeros((1, 2), np.float32))
    np.testing.assert_array_equal(idx, [[0, 1, 2, 3]])


def test_thread_count_does_not_change_the_result(rng):
    X = rng.standard_normal((5003, 64)).astype(np.float32)
    one = latentcore.knn(X, 15, n_jobs=1)
    two = latentcore.knn(X, 15, n_jobs=2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    Q = X[:1234] + 0.5
    one = latentcore.knn(X, 15, queries=Q, n_jobs=1)
    two = latentcore.knn(X, 15, queries=Q, n_jobs=2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def test_float64_and_strided_input_are_converted(rng):
    X64 = rng.standard_normal((600, 20))
    ref = latentcore.knn(X64.astype(np.float32), 7)
    for variant in (X64, np.asfortranarray(X64.astype(np.float32)), X64.astype(np.float32)[:, ::1].copy(order="F")):
        got = latentcore.knn(variant, 7)
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1], ref[1])
    wide = rng.standard_normal((600, 40)).astype(np.float32)
    got = latentcore.knn(wide[:, ::2], 7)  # a strided view
    want = latentcore.knn(np.ascontiguousarray(wide[:, ::2]), 7)
    np.testing.assert_array_equal(got[0], want[0])


def test_far_from_origin_keeps_precision(rng):
    # |x|^2 + |y|^2 - 2xy loses every digit here without centring; the exact
    # recomputation must still give sklearn's distances.
    X = (rng.standard_normal((500, 16)) * 1e-3 + 1e3).astype(np.float32)
    idx, dist = latentcore.knn(X, 5)
    _, ref_dist = reference_knn(X, 5, "euclidean")
    assert_valid_neighbors(idx, dist, X, "euclidean", 5, ref_dist)


@pytest.mark.parametrize("metric", ["sqeuclidean", "euclidean", "cosine", "inner_product"])
@pytest.mark.parametrize("magnitude", [3.0123408e19, 1e37, 1e-40, 1e-30])
def test_extreme_finite_values_match_float64_reference(rng, metric, magnitude):
    # float32 ranking scores of such rows overflow (or underflow to zero) unless
    # the kernel rescales them; every neighbour must still be a real point.
    X = (rng.standard_normal((40, 3)) * magnitude).astype(np.float32)
    X[:5] = 0.0 if metric != "cosine" else X[:5]
    idx, dist = latentcore.knn(X, 4, metric=metric)
    assert idx.min() >= 0 and idx.max() < len(X)
    ref = pair_distances(X, X, idx, metric)
    with np.errstate(over="ignore"):
        expected = ref.astype(np.float32)  # inf where the distance exceeds float32
    np.testing.assert_allclose(dist, expected, rtol=1e-5, atol=1e-45)
    full = pair_distances(X, X, np.tile(np.arange(len(X)), (len(X), 1)), metric)
    np.fill_diagonal(full, np.inf)
    kth = np.sort(full, axis=1)[:, 3]
    assert np.all(ref[:, 3] <= kth + 1e-6 * np.abs(kth))


def test_a_point_kept_among_its_neighbours_is_not_crowded_out_by_float32_ties():
    # Centred in float32, 6e-20 equals the nine zeros: more tied scores than
    # the candidate pool. The point itself is still exactly the nearest.
    X = np.array([[0.0]] * 9 + [[1.0], [6.383087184546903e-20]], np.float32)
    idx, dist = latentcore.knn(X, 1, exclude_self=False)  # a pool of 9 candidates
    assert idx[10, 0] == 10 and dist[10, 0] == 0.0
    assert idx[:9, 0].tolist() == [0] * 9  # exact duplicates: the smaller index first


def test_issue_12_overflowing_scores_never_give_minus_one():
    from conftest import run_isolated

    result = run_isolated("""
        import numpy as np, latentcore
        idx, _ = latentcore.knn(np.array([[0.0], [3.0123408e19]], np.float32), 1)
        assert idx.tolist() == [[1], [0]], idx
        idx, _ = latentcore.knn(np.array([[1e-40, 0], [1, 0], [0, 1], [1, 1]], np.float32), 2, metric="cosine")
        assert idx.min() >= 0, idx
        assert sorted(idx[0]) == [1, 3], idx  # (1e-40, 0) points along (1, 0)
        print("ok")
    """)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_torch_tensors_round_trip(rng):
    torch = pytest.importorskip("torch")
    X = rng.standard_normal((400, 12)).astype(np.float32)
    idx, dist = latentcore.knn(torch.from_numpy(X), 6)
    assert isinstance(idx, torch.Tensor) and isinstance(dist, torch.Tensor)
    assert idx.dtype == torch.int32 and dist.dtype == torch.float32
    ref = latentcore.knn(X, 6)
    np.testing.assert_array_equal(idx.numpy(), ref[0])
    np.testing.assert_array_equal(dist.numpy(), ref[1])
    q = torch.from_numpy(X[:10]).double()
    idx, _ = latentcore.knn(torch.from_numpy(X), 3, queries=q)
    np.testing.assert_array_equal(idx.numpy()[:, 0], np.arange(10))


@pytest.mark.parametrize("n_cols,k", [(257, 9), (1500, 20), (4096, 32)])  # k >= 16: cut off in advance
def test_select_topk_rows_matches_stable_argsort(rng, n_cols, k):
    values = rng.integers(0, 20, size=(300, n_cols)).astype(np.float32)  # many ties
    bias = rng.integers(-3, 3, size=n_cols).astype(np.float32)
    for largest in (False, True):
        for col_bias in (None, bias):
            score = np.empty((300, k), np.float32)
            index = np.empty((300, k), np.int32)
            _core.select_topk_rows(values, largest, score, index, col_bias, 2)
            shifted = values if col_bias is None else values + col_bias
            order = np.argsort(-shifted if largest else shifted, axis=1, kind="stable")[:, :k]
            np.testing.assert_array_equal(index, order)
            np.testing.assert_array_equal(score, np.take_along_axis(shifted, order, axis=1))


class TestBadInput:
    X = np.random.default_rng(1).standard_normal((50, 4)).astype(np.float32)

    @pytest.mark.parametrize("bad,exc,word", [
        (np.array([[np.nan, 1.0], [1.0, 2.0], [3.0, 1.0]], np.float32), ValueError, "NaN"),
        (np.array([[np.inf, 1.0], [1.0, 2.0], [3.0, 1.0]], np.float32), ValueError, "infinite"),
        (np.empty((0, 4), np.float32), ValueError, "empty"),
        (np.empty((5, 0), np.float32), ValueError, "empty"),
        (np.ones(10, np.float32), ValueError, "2-D"),
        (np.ones((2, 3, 4), np.float32), ValueError, "2-D"),
        (np.arange(40).reshape(10, 4), TypeError, "floating"),
        (np.ones((10, 4), np.complex64), TypeError, "floating"),
        (np.ones((10, 4), object), TypeError, "floating"),
        (np.ones((10, 4), bool), TypeError, "floating"),
        ("not an array", TypeError, "X"),
    ])
    def test_bad_X(self, bad, exc, word):
        with pytest.raises(exc, match=word) as info:
            latentcore.knn(bad, 1)
        assert "X" in str(info.value)

    @pytest.mark.parametrize("k,exc", [(0, ValueError), (-3, ValueError), (50, ValueError),
                                       (1000, ValueError), (2.0, TypeError), (None, TypeError)])
    def test_bad_k(self, k, exc):
        with pytest.raises(exc, match="k"):
            latentcore.knn(self.X, k)

    def test_k_up_to_n_with_queries_or_self(self):
        assert latentcore.knn(self.X, 50, queries=self.X[:3])[0].shape == (3, 50)
        assert latentcore.knn(self.X, 50, exclude_self=False)[0].shape == (50, 50)
        with pytest.raises(ValueError, match="k=51"):
            latentcore.knn(self.X, 51, queries=self.X[:3])

    def test_unknown_metric(self):
        with pytest.raises(ValueError, match="metric='manhattan'"):
            latentcore.knn(self.X, 3, metric="manhattan")
        with pytest.raises(TypeError, match="metric"):
            latentcore.knn(self.X, 3, metric=2)

    def test_zero_rows_with_cosine(self):
        X = self.X.copy()
        X[7] = 0
        with pytest.raises(ValueError, match="X has all-zero rows"):
            latentcore.knn(X, 3, metric="cosine")
        with pytest.raises(ValueError, match="queries has all-zero rows"):
            latentcore.knn(self.X, 3, queries=np.zeros((2, 4), np.float32), metric="cosine")
        assert latentcore.knn(X, 3)[0].shape == (50, 3)  # fine for euclidean

    def test_query_dimension_mismatch(self):
        with pytest.raises(ValueError, match="queries has 5 features but X has 4"):
            latentcore.knn(self.X, 3, queries=np.ones((2, 5), np.float32))

    def test_bad_queries_named(self):
        with pytest.raises(ValueError, match="queries contains NaN"):
            latentcore.knn(self.X, 3, queries=np.full((2, 4), np.nan, np.float32))

    @pytest.mark.parametrize("n_jobs,exc", [(0, ValueError), (1.5, TypeError), ("2", TypeError)])
    def test_bad_n_jobs(self, n_jobs, exc):
        with pytest.raises(exc, match="n_jobs"):
            latentcore.knn(self.X, 3, n_jobs=n_jobs)

    def test_bad_device(self):
        with pytest.raises(ValueError, match="device"):
            latentcore.knn(self.X, 3, device="tpu")


def test_ctrl_c_stops_a_long_search_and_the_process_stays_usable(rng):
    X = rng.standard_normal((100_000, 64)).astype(np.float32)
    fired = []

    def interrupt():
        time.sleep(0.5)
        fired.append(time.perf_counter())
        _thread.interrupt_main()

    threading.Thread(target=interrupt, daemon=True).start()
    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        latentcore.knn(X, 15)
        time.sleep(5)  # the search finished before the signal: fail below, not here
    stopped = time.perf_counter()
    assert fired, "the search ended before the interrupt was sent; make it longer"
    assert stopped - fired[0] < 1.0
    assert stopped - start < 2.0
    small = rng.standard_normal((300, 5)).astype(np.float32)
    _, ref_dist = reference_knn(small, 4, "euclidean")
    idx, dist = latentcore.knn(small, 4)
    assert_valid_neighbors(idx, dist, small, "euclidean", 4, ref_dist)


class TestKNNGraph:
    @pytest.mark.parametrize("mode", ["connectivity", "distance"])
    def test_graph_equals_sklearn(self, rng, mode):
        X = rng.standard_normal((800, 10)).astype(np.float32)
        g = latentcore.KNNGraph(n_neighbors=8, mode=mode).fit(X).graph_
        ref = kneighbors_graph(X.astype(np.float64), 8, mode=mode, include_self=False)
        assert isinstance(g, scipy.sparse.csr_array) and g.dtype == np.float32
        assert g.shape == (800, 800) and g.nnz == 800 * 8
        np.testing.assert_array_equal(g.toarray() != 0, ref.toarray() != 0)
        np.testing.assert_allclose(g.toarray(), ref.toarray(), rtol=DIST_RTOL, atol=1e-6)

    def test_distance_mode_keeps_fitted_distances_with_their_indices(self, rng):
        X = rng.standard_normal((300, 4)).astype(np.float32)
        model = latentcore.KNNGraph(n_neighbors=6, mode="distance").fit(X)
        np.testing.assert_allclose(model.distances_, pair_distances(X, X, model.indices_, "euclidean"),
                                   rtol=1e-5, atol=1e-6)
        assert np.all(np.diff(model.distances_, axis=1) >= 0)

    def test_symmetrize_is_the_union(self, rng):
        X = rng.standard_normal((500, 6)).astype(np.float32)
        est = latentcore.KNNGraph(n_neighbors=5, mode="distance", symmetrize=True).fit(X)
        g = est.graph_.toarray()
        directed = latentcore.KNNGraph(n_neighbors=5, mode="distance").fit(X).graph_.toarray()
        np.testing.assert_array_equal(g, g.T)
        np.testing.assert_array_equal(g != 0, (directed != 0) | (directed.T != 0))
        np.testing.assert_array_equal(g[directed != 0], directed[directed != 0])

    def test_kneighbors_of_new_points(self, rng):
        X = rng.standard_normal((900, 7)).astype(np.float32)
        Y = rng.standard_normal((50, 7)).astype(np.float32)
        est = latentcore.KNNGraph(n_neighbors=6, metric="cosine").fit(X)
        idx, dist = est.kneighbors(Y)
        ref_dist, ref_idx = NearestNeighbors(n_neighbors=6, metric="cosine", algorithm="brute").fit(X).kneighbors(Y)
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_allclose(dist, ref_dist, rtol=DIST_RTOL, atol=1e-6)

    def test_parameters_stored_and_checked(self):
        est = latentcore.KNNGraph(n_neighbors=3, mode="weights")
        assert est.mode == "weights" and est.n_neighbors == 3
        with pytest.raises(ValueError, match="mode"):
            est.fit(np.ones((10, 2), np.float32))
        with pytest.raises(RuntimeError, match="fit"):
            latentcore.KNNGraph().kneighbors(np.ones((2, 2), np.float32))


def reference_ranking(X, metric, queries=None):
    """Every point's neighbours in order, from float64 distances rounded to
    the float32 the library returns (and ranks by), ties by the smaller index
    (numpy's stable argsort); all-pairs rows leave the point itself last."""
    Q = X if queries is None else queries
    idx = np.broadcast_to(np.arange(X.shape[0]), (Q.shape[0], X.shape[0]))
    d = pair_distances(Q, X, idx, metric).astype(np.float32).astype(np.float64)
    if queries is None:
        np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1, kind="stable")


@pytest.mark.parametrize("metric", METRICS)
def test_issue_12_ties_beyond_the_candidate_pool_go_to_the_smaller_index(rng, metric):
    # 60 exact copies of one point: far more tied points than a row's candidate
    # pool (k + 8 = 13), spread over several tiles among 700 other points.
    k, n_copies = 5, 60
    point = np.array([0.3, -0.2, 0.25, 0.1, -0.15, 0.2], np.float32)
    if metric == "inner_product":
        point = point * 100  # the largest inner products: the copies rank first
    X = (rng.standard_normal((700 + n_copies, 6)) * 2).astype(np.float32)
    at = np.sort(rng.choice(len(X), n_copies, replace=False))
    X[at] = point
    queries = np.concatenate([np.repeat(point[None], 3, axis=0), X[::9] + 0.01,
                              rng.standard_normal((20, 6)).astype(np.float32)])
    for Q in (None, queries):
        idx, _ = latentcore.knn(X, k, metric=metric, queries=Q)
        expected = reference_ranking(X, metric, Q)[:, :k]
        np.testing.assert_array_equal(idx, expected)
        tied = np.isin(expected, at).sum()
        assert tied >= (n_copies * k if Q is None else 3 * k)  # the test exercises the ties
    # Each copy's neighbours: the smallest-index other copies.
    idx, _ = latentcore.knn(X, k, metric=metric)
    for row in at[:10]:
        np.testing.assert_array_equal(idx[row], at[at != row][:k])
