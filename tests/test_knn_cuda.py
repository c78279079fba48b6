"""The CUDA k-NN path against the CPU path, on fresh random shapes (the FAISS
TestGpuIndexFlat pattern). Skipped without cupy or without a GPU."""

import numpy as np
import pytest
from conftest import pair_distances

import latentcore
from latentcore import _device

cp = pytest.importorskip("cupy")
pytestmark = pytest.mark.skipif(not _device.cuda_available(), reason="no CUDA device or no CUDA build")

METRICS = ["euclidean", "sqeuclidean", "cosine", "inner_product"]
DIST_RTOL = 1e-4  # both paths recompute exact distances in double: they agree far closer
DIST_ATOL = 1e-5


def assert_matches_cpu(gpu, cpu, X, metric, queries=None):
    """Equal to the CPU answer up to ties: position by position the true
    distances agree, and indices agree wherever distances are distinct."""
    g_idx, g_dist = (cp.asnumpy(a) for a in gpu)
    c_idx, c_dist = cpu
    assert g_idx.dtype == np.int32 and g_dist.dtype == np.float32
    np.testing.assert_allclose(g_dist, c_dist, rtol=DIST_RTOL, atol=DIST_ATOL)
    Q = X if queries is None else queries
    np.testing.assert_allclose(pair_distances(Q, X, g_idx, metric), c_dist, rtol=DIST_RTOL, atol=DIST_ATOL)
    assert np.mean(g_idx == c_idx) > 0.999


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("n,d,k", [(2, 3, 1), (1000, 1, 15), (5003, 64, 15), (4099, 257, 40), (3000, 16, 1024)])
def test_all_pairs_equal_cpu(rng, metric, n, d, k):
    X = rng.standard_normal((n, d)).astype(np.float32)
    gpu = latentcore.knn(cp.asarray(X), k, metric=metric)
    assert isinstance(gpu[0], cp.ndarray) and isinstance(gpu[1], cp.ndarray)
    assert_matches_cpu(gpu, latentcore.knn(X, k, metric=metric), X, metric)


def test_all_pairs_beyond_one_row_block_excludes_each_point_itself(rng):
    # Above 16,384 rows the query rows come in several blocks: the self
    # exclusion must follow each block's row offset.
    X = rng.standard_normal((40000, 8)).astype(np.float32)
    idx, _ = latentcore.knn(cp.asarray(X), 10)
    idx = cp.asnumpy(idx)
    assert not (idx == np.arange(len(X))[:, None]).any()
    assert_matches_cpu((cp.asarray(idx), latentcore.knn(cp.asarray(X), 10)[1]), latentcore.knn(X, 10), X, "euclidean")


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("n,m,k", [(1, 5, 1), (9000, 17000, 7), (4096, 300, 1024)])
def test_queries_equal_cpu(rng, metric, n, m, k):
    X = rng.standard_normal((n, 24)).astype(np.float32)
    Q = rng.standard_normal((m, 24)).astype(np.float32)
    gpu = latentcore.knn(cp.asarray(X), k, queries=cp.asarray(Q), metric=metric)
    assert_matches_cpu(gpu, latentcore.knn(X, k, queries=Q, metric=metric), X, metric, queries=Q)


def test_include_self_and_device_argument(rng):
    X = rng.standard_normal((2000, 8)).astype(np.float32)
    idx, dist = latentcore.knn(X, 5, exclude_self=False, device="cuda")
    assert isinstance(idx, cp.ndarray)
    np.testing.assert_array_equal(cp.asnumpy(idx[:, 0]), np.arange(2000))
    back = latentcore.knn(cp.asarray(X), 5, device="cpu")
    assert isinstance(back[0], np.ndarray)
    assert_matches_cpu((idx, dist), latentcore.knn(X, 5, exclude_self=False), X, "euclidean")


def test_ties_break_by_smaller_index_as_on_cpu(rng):
    base = rng.standard_normal((40, 5)).astype(np.float32)
    X = np.concatenate([base, base, base])
    gpu = latentcore.knn(cp.asarray(X), 2)
    cpu = latentcore.knn(X, 2)
    np.testing.assert_array_equal(cp.asnumpy(gpu[0]), cpu[0])


def test_torch_cuda_round_trip(rng):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    X = rng.standard_normal((3000, 32)).astype(np.float32)
    idx, dist = latentcore.knn(torch.from_numpy(X).cuda(), 10)
    assert idx.is_cuda and idx.dtype == torch.int32 and dist.dtype == torch.float32
    assert_matches_cpu((cp.asarray(idx), cp.asarray(dist)), latentcore.knn(X, 10), X, "euclidean")


def test_k_above_gpu_limit_is_rejected():
    with pytest.raises(ValueError, match="k=1025"):
        latentcore.knn(cp.ones((3000, 4), cp.float32), 1025)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("magnitude", [3.0123408e19, 1e-40])
def test_extreme_finite_values_equal_cpu(rng, metric, magnitude):
    # Scores of such rows overflow float32 unless both paths rescale them alike.
    X = (rng.standard_normal((300, 4)) * magnitude).astype(np.float32)
    g_idx, g_dist = (cp.asnumpy(a) for a in latentcore.knn(cp.asarray(X), 5, metric=metric))
    c_idx, c_dist = latentcore.knn(X, 5, metric=metric)
    assert g_idx.min() >= 0
    np.testing.assert_allclose(g_dist, c_dist, rtol=DIST_RTOL, atol=1e-45)
    assert np.mean(g_idx == c_idx) > 0.99
