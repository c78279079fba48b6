import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness as sk_trustworthiness

from latentcore import knn_recall, trustworthiness


@pytest.mark.parametrize("n,d,k", [(200, 10, 5), (601, 30, 10), (150, 3, 1)])
def test_trustworthiness_equals_sklearn(rng, n, d, k):
    X = rng.standard_normal((n, d))
    X[: n // 2] += 4.0  # two clusters, so the score is far from both 0.5 and 1
    good = PCA(2).fit_transform(X).astype(np.float32)
    noisy = good + rng.standard_normal(good.shape).astype(np.float32) * 2.0
    for emb in (good, noisy):
        assert trustworthiness(X, emb, k) == pytest.approx(sk_trustworthiness(X, emb, n_neighbors=k), abs=1e-12)


def test_trustworthiness_orders_embeddings(rng):
    X = rng.standard_normal((300, 5))
    assert trustworthiness(X, X.astype(np.float32), 5) == pytest.approx(1.0)
    shuffled = rng.permutation(X)[:, :2].astype(np.float32)
    assert trustworthiness(X, shuffled, 5) < 0.7


def test_trustworthiness_bad_input(rng):
    X = rng.standard_normal((20, 3))
    with pytest.raises(ValueError, match="k=10"):
        trustworthiness(X, X, 10)
    with pytest.raises(ValueError, match="embedding has 19 rows"):
        trustworthiness(X, X[:19], 3)


def test_knn_recall_against_set_arithmetic(rng):
    exact = np.stack([rng.permutation(100)[:10] for _ in range(500)])
    approx = np.where(rng.random(exact.shape) < 0.7, exact, rng.integers(100, 200, exact.shape))
    approx = rng.permuted(approx, axis=1)  # order within a row does not matter
    expected = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx.tolist(), exact.tolist())])
    assert knn_recall(approx, exact) == pytest.approx(expected)
    assert knn_recall(exact, exact) == 1.0
    wider = np.concatenate([approx, exact], axis=1)  # a longer candidate list can only help
    assert knn_recall(wider, exact) == 1.0


def test_knn_recall_bad_input():
    with pytest.raises(ValueError, match="approx has 3 rows but exact has 2"):
        knn_recall(np.zeros((3, 2), int), np.zeros((2, 2), int))
    with pytest.raises(TypeError, match="exact"):
        knn_recall(np.zeros((2, 2), int), np.zeros((2, 2)))


def test_sparse_coding_metrics_against_definitions(rng):
    import scipy.sparse

    from latentcore.metrics import atom_recovery, dead_fraction, fraction_of_variance_unexplained, mean_l0

    X = rng.standard_normal((300, 12))
    assert fraction_of_variance_unexplained(X, X) == 0.0
    assert fraction_of_variance_unexplained(X, np.tile(X.mean(axis=0), (300, 1))) == pytest.approx(1.0)
    half = X.copy()
    half[:, :6] = X[:, :6].mean(axis=0)
    expected = ((X[:, :6] - X[:, :6].mean(axis=0)) ** 2).sum() / ((X - X.mean(axis=0)) ** 2).sum()
    assert fraction_of_variance_unexplained(X, half) == pytest.approx(expected)
    codes = np.zeros((4, 5))
    codes[0, [0, 1]] = 1.0
    codes[2, 3] = -2.0
    for c in (codes, scipy.sparse.csr_array(codes)):
        assert mean_l0(c) == 0.75
        assert dead_fraction(c) == pytest.approx(2 / 5)  # atoms 2 and 4 never used
    ref = rng.standard_normal((6, 12))
    learnt = np.vstack([-3.0 * ref[:4], rng.standard_normal((10, 12))])  # 4 recovered up to sign and scale
    scores = atom_recovery(learnt, ref)
    np.testing.assert_allclose(scores[:4], 1.0)
    assert scores.shape == (6,) and np.all(scores[4:] < 0.99)
    with pytest.raises(ValueError, match="shape"):
        fraction_of_variance_unexplained(X, X[:, :3])
    with pytest.raises(ValueError, match="dims"):
        atom_recovery(learnt[:, :5], ref)
