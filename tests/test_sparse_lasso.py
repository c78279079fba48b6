"""LASSO codes by homotopy and along whole paths, against scikit-learn's Lasso,
lars_path and lasso_path, and against the optimality (KKT) conditions."""

import numpy as np
import pytest
from conftest import assert_calls_refused, assert_interruptible
from sklearn.linear_model import Lasso, lars_path as sklearn_lars_path, lasso_path as sklearn_lasso_path

import latentcore.sparse as sparse_module
from latentcore import lars_path, lasso_path, sparse_encode

N_FEATURES, N_ATOMS, K = 48, 160, 6


def planted(rng, n, noise=0.01):
    D = rng.standard_normal((N_ATOMS, N_FEATURES))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    codes = np.zeros((n, N_ATOMS))
    for row in codes:
        row[rng.choice(N_ATOMS, K, replace=False)] = rng.uniform(1.0, 2.0, K) * rng.choice([-1, 1], K)
    X = codes @ D + noise * rng.standard_normal((n, N_FEATURES))
    return X.astype(np.float32), D.astype(np.float32)


def alpha_max(X, D, positive=False):
    corr = X.astype(np.float64) @ D.T.astype(np.float64)
    return float((corr.max() if positive else np.abs(corr).max()) / X.shape[1])


def objective(codes, X, D, alpha):
    residual = X.astype(np.float64) - codes @ D.astype(np.float64)
    return (residual ** 2).sum(axis=1) / (2 * X.shape[1]) + alpha * np.abs(codes).sum(axis=1)


def sklearn_codes(X, D, alpha, positive):
    model = Lasso(alpha=alpha, fit_intercept=False, tol=1e-12, max_iter=200_000, positive=positive)
    return np.array([model.fit(D.T.astype(np.float64), x.astype(np.float64)).coef_ for x in X])


def assert_optimal(codes, X, D, alpha, positive, rtol=1e-4):
    """The LASSO optimality conditions, with float32 codes' rounding:
    |D r| / n <= alpha everywhere, = alpha * sign on the support (r the residual)."""
    residual = X.astype(np.float64) - codes.astype(np.float64) @ D.astype(np.float64)
    gradient = residual @ D.T.astype(np.float64) / X.shape[1]
    slack = rtol * max(alpha, 1e-12) + 1e-6 * np.abs(gradient).max()
    bound = gradient if positive else np.abs(gradient)
    assert bound.max() <= alpha + slack
    on = codes != 0
    np.testing.assert_allclose(gradient[on], alpha * np.sign(codes[on]), atol=slack)
    if positive:
        assert codes.min() >= 0


@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("fraction", [0.5, 0.1, 0.01])
def test_homotopy_equals_sklearn_lasso(rng, fraction, positive):
    X, D = planted(rng, 12)
    alpha = fraction * alpha_max(X, D, positive)
    ours = sparse_encode(X, D, method="lasso", alpha=alpha, positive=positive, n_jobs=2).toarray()
    theirs = sklearn_codes(X, D, alpha, positive)
    scale = np.abs(theirs).max()
    np.testing.assert_allclose(ours, theirs, atol=1e-4 * scale)
    np.testing.assert_allclose(objective(ours, X, D, alpha), objective(theirs, X, D, alpha), rtol=1e-6)
    assert_optimal(ours, X, D, alpha, positive)
    assert np.array_equal(ours, sparse_encode(X, D, method="lars", alpha=alpha, positive=positive).toarray())


@pytest.mark.parametrize("positive", [False, True])
def test_lars_path_knots_equal_sklearn(rng, positive):
    X, D = planted(rng, 3)
    for x in X:
        gram = D.astype(np.float64) @ D.T.astype(np.float64)
        ours_alphas, ours_active, ours_coefs = lars_path(x.astype(np.float64), D, positive=positive, gram=gram)
        alphas, active, coefs = sklearn_lars_path(D.T.astype(np.float64), x.astype(np.float64), method="lasso",
                                                  positive=positive)
        assert len(ours_alphas) == len(alphas) and ours_active == list(active)
        np.testing.assert_allclose(ours_alphas, alphas, rtol=1e-7, atol=1e-12)
        np.testing.assert_allclose(ours_coefs, coefs, atol=1e-7 * np.abs(coefs).max())
        # A path cut at alpha_min ends there with the code at alpha_min.
        cut = 0.5 * (alphas[3] + alphas[4])
        cut_alphas, _, cut_coefs = lars_path(x.astype(np.float64), D, positive=positive, alpha_min=cut)
        assert cut_alphas[-1] == pytest.approx(cut) and len(cut_alphas) == 5
        codes = sparse_encode(x[None], D, method="lars", alpha=cut, positive=positive).toarray()[0]
        np.testing.assert_allclose(cut_coefs[:, -1], codes, atol=1e-5)


@pytest.mark.parametrize("positive", [False, True])
def test_lasso_path_equals_sklearn_and_both_methods_agree(rng, positive):
    X, D = planted(rng, 6)
    alphas, codes = lasso_path(X, D, n_alphas=12, eps=1e-2, positive=positive, n_jobs=2)
    top = alpha_max(X, D, positive)
    np.testing.assert_allclose(alphas, np.geomspace(top, top / 100, 12), rtol=1e-6)
    assert codes[0].nnz == 0  # alpha_max zeroes every code ...
    nudged = sparse_encode(X, D, method="lasso", alpha=top * (1 - 1e-4), positive=positive)
    assert nudged.nnz > 0  # ... and is the smallest such alpha
    assert len(codes) == 12 and all(c.shape == (6, N_ATOMS) and c.dtype == np.float32 for c in codes)
    cd_alphas, cd_codes = lasso_path(X, D, alphas=alphas, method="cd", tol=1e-10, max_iter=10**5, positive=positive)
    np.testing.assert_array_equal(cd_alphas, alphas)
    for i, x in enumerate(X):
        _, theirs, _ = sklearn_lasso_path(D.T.astype(np.float64), x.astype(np.float64), alphas=alphas, tol=1e-12,
                                          max_iter=200_000, positive=positive)
        ours = np.array([c[[i]].toarray()[0] for c in codes])
        cd = np.array([c[[i]].toarray()[0] for c in cd_codes])
        np.testing.assert_allclose(ours, theirs.T, atol=1e-4 * np.abs(theirs).max())
        np.testing.assert_allclose(cd, theirs.T, atol=1e-4 * np.abs(theirs).max())
    for alpha, c in zip(alphas, codes):
        assert_optimal(c.toarray(), X, D, alpha, positive)


def test_same_codes_for_one_and_two_threads(rng):
    X, D = planted(rng, 200)
    one = lasso_path(X, D, n_alphas=5, n_jobs=1)[1]
    two = lasso_path(X, D, n_alphas=5, n_jobs=2)[1]
    for a, b in zip(one, two):
        assert (a != b).nnz == 0


def test_an_unfinished_path_is_solved_by_coordinate_descent(rng, monkeypatch):
    X, D = planted(rng, 20)
    alpha = 0.01 * alpha_max(X, D)
    exact = sparse_encode(X, D, method="lasso", alpha=alpha).toarray()
    grid = [10 * alpha, 3 * alpha, alpha]
    exact_path = lasso_path(X, D, alphas=grid)[1]
    monkeypatch.setattr(sparse_module, "_homotopy_max_steps", lambda width: 2)
    redone = sparse_encode(X, D, method="lasso", alpha=alpha).toarray()
    np.testing.assert_allclose(redone, exact, atol=1e-4 * np.abs(exact).max())
    assert_optimal(redone, X, D, alpha, False)
    for a, ours, reference in zip(grid, lasso_path(X, D, alphas=grid)[1], exact_path):
        np.testing.assert_allclose(ours.toarray(), reference.toarray(), atol=1e-4 * np.abs(exact).max())
        assert_optimal(ours.toarray(), X, D, a, False)


def test_ties_duplicates_and_extreme_scales(rng):
    X, D = planted(rng, 4)
    # An atom twice and its negative: ties at every knot they reach.
    doubled = np.vstack([D, D[:3], -D[3:6]])
    x = (D[0] + D[3]) * 2.0
    for alpha in (0.01, 1e-4):
        codes = sparse_encode(x[None], doubled, method="lasso", alpha=alpha).toarray()
        theirs = sklearn_codes(x[None], doubled, alpha, False)
        np.testing.assert_allclose(objective(codes, x[None], doubled, alpha),
                                   objective(theirs, x[None], doubled, alpha), rtol=1e-6)
    # Two atoms at the same correlation from the start (the identity, x = (3, -3, ...)).
    tie = np.zeros((1, 8), np.float32)
    tie[0, :2] = 3.0, -3.0
    np.testing.assert_allclose(sparse_encode(tie, np.eye(8, dtype=np.float32), method="lars", alpha=0.125).toarray(),
                               [[2.0, -2.0, 0, 0, 0, 0, 0, 0]])
    # Signals at 2^70 and 2^-70: the same codes, scaled.
    alpha = 0.05 * alpha_max(X, D)
    reference = lasso_path(X, D, alphas=[alpha, alpha / 4])[1]
    for exponent in (70, -70):
        scaled = lasso_path(np.ldexp(X, exponent), D, alphas=np.ldexp([alpha, alpha / 4], exponent))[1]
        for a, b in zip(scaled, reference):
            np.testing.assert_allclose(np.ldexp(a.toarray(), -exponent), b.toarray(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("alphas, error, word", [
    ([], ValueError, "non-empty"), ([[0.1, 0.01]], ValueError, "1-D"), ([0.1, -0.01], ValueError, ">= 0"),
    ([0.01, 0.1], ValueError, "decreasing"), ([0.1, float("nan")], ValueError, "finite"),
    ([0.1, float("inf")], ValueError, "finite"), (["big"], TypeError, "alphas"),
])
def test_bad_alpha_grids_are_refused(rng, alphas, error, word):
    X, D = planted(rng, 2)
    with pytest.raises(error, match=word):
        lasso_path(X, D, alphas=alphas)


@pytest.mark.parametrize("kwargs, error, word", [
    (dict(method="omp"), ValueError, "method"), (dict(n_alphas=0), ValueError, "n_alphas"),
    (dict(eps=0.0), ValueError, "eps"), (dict(eps=2.0), ValueError, "eps"), (dict(tol=-1.0), ValueError, "tol"),
    (dict(max_iter=0), ValueError, "max_iter"),
])
def test_bad_path_parameters_are_refused(rng, kwargs, error, word):
    X, D = planted(rng, 2)
    with pytest.raises(error, match=word):
        lasso_path(X, D, **kwargs)


def test_bad_lars_path_input_is_refused(rng):
    X, D = planted(rng, 2)
    for x, error, word in [(X, ValueError, "one signal"), (X[0].astype(np.int64), TypeError, "floating"),
                           (np.full(N_FEATURES, np.nan), ValueError, "NaN"), (X[0, :5], ValueError, "dimension")]:
        with pytest.raises(error, match=word):
            lars_path(x, D)
    for kwargs, word in [(dict(alpha_min=-1.0), "alpha_min"), (dict(max_steps=0), "max_steps"),
                         (dict(gram=np.eye(3)), "gram"), (dict(gram=np.full((N_ATOMS, N_ATOMS), np.nan)), "gram")]:
        with pytest.raises(ValueError, match=word):
            lars_path(X[0], D, **kwargs)
    with pytest.raises(ValueError, match="init"):
        sparse_encode(X, D, method="lars", alpha=0.1, init=np.zeros((2, N_ATOMS), np.float32))
    with pytest.raises(ValueError, match="alpha"):
        sparse_encode(X, D, method="lars")


def test_max_steps_cuts_the_path_as_sklearn_max_iter(rng):
    X, D = planted(rng, 1)
    x = X[0].astype(np.float64)
    alphas, _, coefs = lars_path(x, D, max_steps=3)
    theirs, _, their_coefs = sklearn_lars_path(D.T.astype(np.float64), x, method="lasso", max_iter=3)
    np.testing.assert_allclose(alphas, theirs, rtol=1e-7)
    np.testing.assert_allclose(coefs, their_coefs, atol=1e-7 * np.abs(their_coefs).max())


def test_ctrl_c_stops_the_homotopy(rng):
    D = rng.standard_normal((2048, 128)).astype(np.float32)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.standard_normal((3000, 128)).astype(np.float32)  # dense paths: ~128 atoms each
    assert_interruptible(lambda: sparse_encode(X, D, method="lasso", alpha=1e-5, n_jobs=2))


def test_homotopy_binding_refuses_bad_arrays():
    output = assert_calls_refused('''
x, D, gram = f32(3, 4), np.eye(4, dtype=np.float32), np.eye(4)
a = np.array([0.5, 0.1])
h = lambda alphas=a, gram=np.eye(4, dtype=np.float32), support=i32(6, 4), values=f32(6, 4), count=i32(3, 2), \\
    steps=100: _core.sparse_lasso_homotopy(x, D, gram, g, alphas, False, steps, support, values, count, 1)
k = lambda corr=np.ones(4), gram=gram, n=4, amin=0.0, ka=np.zeros(8), ks=i32(8, 4), kv=np.zeros((8, 4)), kc=i32(8): \\
    _core.sparse_lasso_knots(corr, gram, n, False, amin, ka, ks, kv, kc)
calls = {
    "no alphas": lambda: h(alphas=np.zeros(0), count=i32(3, 0), support=i32(0, 4), values=f32(0, 4)),
    "increasing": lambda: h(alphas=np.array([0.1, 0.5])),
    "negative": lambda: h(alphas=np.array([0.5, -0.1])),
    "NaN": lambda: h(alphas=np.array([0.5, np.nan])),
    "infinite": lambda: h(alphas=np.array([np.inf, 0.1])),
    "gram": lambda: h(gram=np.eye(3, dtype=np.float32)),
    "support width": lambda: h(support=i32(6, 5), values=f32(6, 5)),
    "support rows": lambda: h(support=i32(5, 4)),
    "values": lambda: h(values=f32(6, 3)),
    "count": lambda: h(count=i32(3, 1)),
    "steps": lambda: h(steps=0),
    "knots gram": lambda: k(gram=np.eye(3)),
    "knots gram diagonal": lambda: k(gram=np.zeros((4, 4))),
    "knots NaN": lambda: k(corr=np.array([1.0, np.nan, 0.0, 0.0])),
    "knots features": lambda: k(n=0),
    "knots alpha_min": lambda: k(amin=-1.0),
    "knots capacity": lambda: k(ka=np.zeros(1), ks=i32(1, 4), kv=np.zeros((1, 4)), kc=i32(1)),
    "knots rows": lambda: k(kv=np.zeros((7, 4))),
}
print("done")
''')
    assert output.count("refused") == 18 and "done" in output, output
