"""Sparse coding against planted codes and scikit-learn's orthogonal_mp_gram."""

import numpy as np
import pytest
from scipy.optimize import nnls
from sklearn.linear_model import Lasso, orthogonal_mp_gram

from latentcore.sparse import sparse_encode

N_FEATURES, N_ATOMS, K = 64, 256, 5


def planted(rng, n, noise=0.0, positive=False):
    """Unit-norm Gaussian atoms (4x overcomplete), K-sparse codes of magnitude 1-2, signals."""
    D = rng.standard_normal((N_ATOMS, N_FEATURES))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    codes = np.zeros((n, N_ATOMS))
    for row in codes:
        atoms = rng.choice(N_ATOMS, K, replace=False)
        row[atoms] = rng.uniform(1.0, 2.0, K) * (1 if positive else rng.choice([-1, 1], K))
    X = codes @ D + noise * rng.standard_normal((n, N_FEATURES))
    return X.astype(np.float32), D.astype(np.float32), codes


def support_recovery(codes, truth):
    found = codes.toarray() != 0
    return np.mean(np.all(found == (truth != 0), axis=1))


def test_omp_recovers_planted_supports_and_equals_sklearn(rng):
    X, D, truth = planted(rng, 2000)
    codes = sparse_encode(X, D, n_nonzero=K, n_jobs=2)
    assert codes.shape == (2000, N_ATOMS) and codes.dtype == np.float32
    assert support_recovery(codes, truth) >= 0.99
    D64 = D.astype(np.float64)
    reference = orthogonal_mp_gram(D64 @ D64.T, D64 @ X.astype(np.float64).T, n_nonzero_coefs=K).T
    np.testing.assert_allclose(codes.toarray(), reference, atol=1e-4)


def test_omp_with_noise_and_a_residual_tolerance(rng):
    X, D, truth = planted(rng, 2000, noise=0.01)
    assert support_recovery(sparse_encode(X, D, n_nonzero=K), truth) >= 0.95
    tol = 0.01**2 * N_FEATURES * 1.5  # the noise's expected squared norm, with room
    codes = sparse_encode(X, D, tol=tol)
    residual = ((X - codes @ D) ** 2).sum(axis=1)
    assert np.all((residual <= tol * (1 + 1e-3)) | (np.diff(codes.indptr) == N_ATOMS))
    D64 = D.astype(np.float64)
    reference = orthogonal_mp_gram(D64 @ D64.T, D64 @ X.astype(np.float64).T, tol=tol,
                                   norms_squared=(X.astype(np.float64) ** 2).sum(axis=1)).T
    assert np.mean(np.all((codes.toarray() != 0) == (reference != 0), axis=1)) >= 0.99


def test_positive_omp_recovers_nonnegative_codes_and_solves_nnls_on_its_support(rng):
    X, D, truth = planted(rng, 500, positive=True)
    codes = sparse_encode(X, D, n_nonzero=K, positive=True)
    assert codes.data.min() > 0
    assert support_recovery(codes, truth) >= 0.99
    # Noisy signals with mixed signs force atoms out of the support: each code
    # must still be the non-negative least-squares fit on the atoms it kept.
    X, D, _ = planted(rng, 200, noise=0.05)
    codes = sparse_encode(X, D, n_nonzero=12, positive=True)
    assert codes.data.min() > 0
    for i in range(200):
        atoms = codes.indices[codes.indptr[i]:codes.indptr[i + 1]]
        reference, _ = nnls(D[atoms].T.astype(np.float64), X[i].astype(np.float64))
        np.testing.assert_allclose(codes.data[codes.indptr[i]:codes.indptr[i + 1]], reference, atol=1e-4)
    unsigned = sparse_encode(X, D, n_nonzero=12)
    assert (unsigned.data < 0).any()  # the positive constraint was binding


@pytest.mark.parametrize("positive", [False, True])
def test_topk_keeps_the_largest_correlations(rng, positive):
    X, D, _ = planted(rng, 300, noise=0.01)
    codes = sparse_encode(X, D, method="topk", n_nonzero=7, positive=positive).toarray()
    correlations = X.astype(np.float64) @ D.T.astype(np.float64)
    scores = correlations if positive else np.abs(correlations)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :7]
    expected = np.zeros_like(correlations)
    np.put_along_axis(expected, order, np.take_along_axis(correlations, order, 1), 1)
    if positive:
        expected = np.maximum(expected, 0)
    np.testing.assert_allclose(codes, expected, atol=1e-5)
    assert np.all((codes != 0).sum(axis=1) <= 7)


def test_lasso_warm_start_reaches_the_same_codes(rng):
    X, D, _ = planted(rng, 100, noise=0.01)
    cold = sparse_encode(X, D, method="lasso", alpha=0.01, tol=1e-8)
    nearby = sparse_encode(X, D, method="lasso", alpha=0.02, tol=1e-8)
    for init in (nearby, nearby.toarray(), cold):
        warm = sparse_encode(X, D, method="lasso", alpha=0.01, tol=1e-8, init=init)
        np.testing.assert_allclose(warm.toarray(), cold.toarray(), atol=1e-4)
    with pytest.raises(ValueError, match="init"):
        sparse_encode(X, D, method="lasso", alpha=0.01, init=cold[:5])
    with pytest.raises(ValueError, match="init"):
        sparse_encode(X, D, n_nonzero=K, init=cold)
    with pytest.raises(ValueError, match="init"):
        sparse_encode(X, D, method="lasso", alpha=0.01, positive=True, init=-cold.toarray() - 1)


def test_same_codes_for_any_thread_count(rng):
    X, D, _ = planted(rng, 300)
    for kwargs in ({}, {"positive": True}, {"method": "topk"}):
        a = sparse_encode(X, D, n_nonzero=8, n_jobs=1, **kwargs)
        b = sparse_encode(X, D, n_nonzero=8, n_jobs=2, **kwargs)
        np.testing.assert_array_equal(a.toarray(), b.toarray())


def lasso_objective(codes, X, D, alpha):
    residual = X.astype(np.float64) - codes @ D.astype(np.float64)
    return (residual**2).sum(axis=1) / (2 * X.shape[1]) + alpha * np.abs(codes).sum(axis=1)


@pytest.mark.parametrize("positive", [False, True])
def test_lasso_equals_sklearn(rng, positive):
    X, D, _ = planted(rng, 150, noise=0.01)
    alpha = 0.01
    ours = sparse_encode(X, D, method="lasso", alpha=alpha, positive=positive, tol=1e-6, n_jobs=2).toarray()
    design = D.T.astype(np.float64)
    theirs = np.array([Lasso(alpha=alpha, fit_intercept=False, positive=positive, tol=1e-10, max_iter=100_000)
                       .fit(design, x.astype(np.float64)).coef_ for x in X])
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    ours_objective, their_objective = lasso_objective(ours, X, D, alpha), lasso_objective(theirs, X, D, alpha)
    assert np.all(ours_objective <= their_objective * (1 + 1e-6))
    if positive:
        assert ours.min() >= 0
    assert 0 < np.mean(ours != 0) < 0.2  # sparse, not empty


class TestBadInput:
    @pytest.fixture
    def data(self, rng):
        X, D, _ = planted(rng, 10)
        return X, D

    @pytest.mark.parametrize("kwargs,word", [
        ({"n_nonzero": 0}, "n_nonzero"), ({"n_nonzero": N_ATOMS + 1}, "n_nonzero"),
        ({"method": "topk", "n_nonzero": N_ATOMS + 1}, "n_nonzero"), ({"method": "topk", "n_nonzero": -1}, "n_nonzero"),
        ({"tol": -1.0}, "tol"), ({"method": "nope"}, "method"),
        ({"method": "lasso"}, "alpha"), ({"method": "lasso", "alpha": -0.1}, "alpha"),
        ({"method": "lasso", "alpha": 0.1, "max_iter": 0}, "max_iter"),
    ])
    def test_bad_parameters(self, data, kwargs, word):
        with pytest.raises(ValueError, match=word):
            sparse_encode(*data, **kwargs)

    def test_bad_arrays(self, data):
        X, D = data
        with pytest.raises(ValueError, match="dimension"):
            sparse_encode(X[:, :-1], D)
        with pytest.raises(ValueError, match="unit norm"):
            sparse_encode(X, D * 2)
        codes = sparse_encode(X, D * 2, normalize=True, n_nonzero=K)
        np.testing.assert_allclose(codes.toarray(), sparse_encode(X, D, n_nonzero=K).toarray(), atol=1e-5)
        X = X.copy()
        X[3, 4] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            sparse_encode(X, D)


def test_sparse_coder_round_trip(rng):
    from latentcore import SparseCoder

    X, D, truth = planted(rng, 200)
    coder = SparseCoder(D, n_nonzero=K)
    codes = coder.transform(X)
    np.testing.assert_array_equal(codes.toarray(), sparse_encode(X, D, n_nonzero=K).toarray())
    exact = np.abs(coder.inverse_transform(codes) - X).max(axis=1) < 1e-4  # noiseless: recovered rows are exact
    assert exact.mean() >= 0.99
    np.testing.assert_allclose(coder.inverse_transform(truth.astype(np.float32)), X, atol=1e-4)
    with pytest.raises(ValueError, match="codes must be"):
        coder.inverse_transform(codes[:, :-1])
    assert SparseCoder(D * 3, normalize=True).fit().components_ == pytest.approx(D, abs=1e-6)


def dictionary_data(rng, n=20_000, d=32, n_atoms=64, k=4):
    D = rng.standard_normal((n_atoms, d))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    codes = np.zeros((n, n_atoms))
    rows = np.repeat(np.arange(n), k)
    codes[rows, np.argsort(rng.random((n, n_atoms)), axis=1)[:, :k].ravel()] = \
        rng.uniform(1.0, 2.0, n * k) * rng.choice([-1, 1], n * k)
    return (codes @ D + 0.01 * rng.standard_normal((n, d))).astype(np.float32), D.astype(np.float32)


def test_dictionary_learning_recovers_planted_atoms():
    from latentcore import DictionaryLearning
    from latentcore.metrics import atom_recovery

    X, D = dictionary_data(np.random.default_rng(3))
    dl = DictionaryLearning(64, n_nonzero=4, n_epochs=20, random_state=0).fit(X)
    assert np.mean(atom_recovery(dl.components_, D) >= 0.9) >= 0.9
    np.testing.assert_allclose(np.linalg.norm(dl.components_, axis=1), 1.0, atol=1e-5)
    fvu = np.array(dl.history_["fvu"])
    assert fvu[-20:].mean() < 0.2 * fvu[:20].mean()
    codes = dl.transform(X[:200])
    assert codes.shape == (200, 64) and np.all(np.diff(codes.indptr) <= 4)
    np.testing.assert_allclose(dl.inverse_transform(codes), codes @ dl.components_, atol=1e-5)


def test_dictionary_learning_streams_and_codes_with_lasso(rng):
    from latentcore import DictionaryLearning

    X, _ = dictionary_data(rng, n=3000)
    whole = DictionaryLearning(64, n_nonzero=4, shuffle=False, random_state=5).fit(X)
    streamed = DictionaryLearning(64, n_nonzero=4, random_state=5).partial_fit(X[:1024]).partial_fit(X[1024:])
    np.testing.assert_allclose(streamed.components_, whole.components_, atol=1e-6)
    lasso = DictionaryLearning(64, method="lasso", alpha=0.01, positive=True, n_epochs=3, random_state=0).fit(X)
    fvu = np.array(lasso.history_["fvu"])
    assert fvu[-5:].mean() < fvu[:5].mean()
    assert lasso.transform(X[:50]).data.min() > 0
    for n_jobs in (1, 2):  # every sum in a fixed order: the same atoms for any thread count
        again = DictionaryLearning(64, n_nonzero=4, shuffle=False, random_state=5, n_jobs=n_jobs).fit(X)
        np.testing.assert_array_equal(again.components_, whole.components_)
    with pytest.raises(ValueError, match="features"):
        whole.partial_fit(X[:, :5])
    with pytest.raises(ValueError, match="n_atoms"):
        DictionaryLearning(0).fit(X)
    with pytest.raises(ValueError, match="method"):
        DictionaryLearning(8, method="ksvd").fit(X)
    with pytest.raises(RuntimeError, match="not fitted"):
        DictionaryLearning(8).transform(X)
