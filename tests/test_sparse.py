"""Sparse coding against planted codes and scikit-learn's orthogonal_mp_gram."""

import os

import numpy as np
import pytest
from conftest import assert_interruptible
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


# ----------------------------------------------------------------------------- issue 12: adversarial input

def unit_atoms(rng, n_atoms, n_features):
    D = rng.standard_normal((n_atoms, n_features))
    return (D / np.linalg.norm(D, axis=1, keepdims=True)).astype(np.float32)


def test_numeric_parameters_accept_numpy_scalars(rng):
    X, D, _ = planted(rng, 20, noise=0.01)
    expected = sparse_encode(X, D, tol=0.5).toarray()
    np.testing.assert_array_equal(sparse_encode(X, D, tol=np.float32(0.5)).toarray(), expected)
    np.testing.assert_array_equal(sparse_encode(X, D, n_nonzero=np.int64(K)).toarray(),
                                  sparse_encode(X, D, n_nonzero=K).toarray())
    lasso = sparse_encode(X, D, method="lasso", alpha=0.01, max_iter=50).toarray()
    np.testing.assert_array_equal(
        sparse_encode(X, D, method="lasso", alpha=np.float64(0.01), max_iter=np.int32(50)).toarray(), lasso)


@pytest.mark.parametrize("kwargs,error,word", [
    ({"tol": float("nan")}, ValueError, "tol"), ({"tol": float("inf")}, ValueError, "tol"),
    ({"tol": "0.5"}, TypeError, "tol"), ({"tol": True}, TypeError, "tol"),
    ({"method": "lasso", "alpha": float("nan")}, ValueError, "alpha"),
    ({"method": "lasso", "alpha": float("inf")}, ValueError, "alpha"),
    ({"method": "lasso", "alpha": "big"}, TypeError, "alpha"),
    ({"method": "lasso", "alpha": 0.1, "max_iter": 2**40}, ValueError, "max_iter"),
    ({"method": "lasso", "alpha": 0.1, "max_iter": 2.5}, TypeError, "max_iter"),
    ({"method": "lasso", "alpha": 0.1, "n_nonzero": 1.5}, TypeError, "n_nonzero"),
    ({"n_nonzero": np.float32(3)}, TypeError, "n_nonzero"),
])
def test_bad_numeric_parameters_name_the_argument(rng, kwargs, error, word):
    X, D, _ = planted(rng, 5)
    with pytest.raises(error, match=word):
        sparse_encode(X, D, **kwargs)


@pytest.mark.parametrize("method", ["omp", "lasso", "topk"])
@pytest.mark.parametrize("scale", [2.0**100, 1e30, 1e-30, 2.0**-120])
def test_codes_scale_with_signals_of_any_finite_magnitude(rng, method, scale):
    """Codes are linear in the signal (LASSO: with alpha scaled alike), so
    signals near float32's limits (whose float32 correlations would overflow or
    vanish into subnormals) give the scaled codes of ordinary signals."""
    X, D, _ = planted(rng, 40, noise=0.01)
    kw = {"lasso": dict(alpha=0.01, tol=1e-8), "omp": dict(n_nonzero=K), "topk": dict(n_nonzero=K)}[method]
    reference = sparse_encode(X, D, method=method, **kw).toarray().astype(np.float64)
    Xs = (X.astype(np.float64) * scale).astype(np.float32)
    if method == "lasso":
        kw["alpha"] *= scale
    codes = sparse_encode(Xs, D, method=method, **kw)
    assert np.isfinite(codes.data).all()
    # Far below 1 the float32 codes themselves lose bits (subnormals): compare in absolute terms there.
    np.testing.assert_allclose(codes.toarray() / scale, reference, rtol=1e-4, atol=1e-5 + 2.0**-149 / scale)


def test_codes_beyond_float32_are_a_clear_error_and_the_largest_finite_signals_work(rng):
    D = unit_atoms(rng, 8, 4)
    X = np.full((2, 4), 3e38, np.float32)  # |x| = 6e38: its code on the diagonal atom cannot be float32
    diagonal = np.full((1, 4), 0.5, np.float32)
    for method, kw in (("omp", dict(n_nonzero=1)), ("topk", dict(n_nonzero=1)), ("lasso", dict(alpha=0.0))):
        with pytest.raises(ValueError, match="overflow float32"):
            sparse_encode(X, diagonal, method=method, **kw)
    # Extreme but representable: the codes on the identity dictionary are X
    # (up to the 1e-45 that float32 cannot hold next to 3.4e38 in one signal).
    X = np.array([[3.4e38, -3.4e38, 1e-45, 0.0]], np.float32)
    for method, kw in (("omp", dict(n_nonzero=4)), ("topk", dict(n_nonzero=4)), ("lasso", dict(alpha=0.0))):
        codes = sparse_encode(X, np.eye(4, dtype=np.float32), method=method, **kw).toarray()
        np.testing.assert_allclose(codes, X, rtol=1e-6, atol=1e-30, err_msg=method)
    codes = sparse_encode(rng.standard_normal((3, 4)).astype(np.float32) * np.float32(1e37), D, n_nonzero=2)
    assert np.isfinite(codes.data).all()


def test_k_at_its_bounds_one_signal_one_atom_one_feature(rng):
    D = unit_atoms(rng, 6, 3)
    X = rng.standard_normal((1, 3)).astype(np.float32)
    for method in ("omp", "topk"):
        for bad in (0, 7):
            with pytest.raises(ValueError, match="n_nonzero"):
                sparse_encode(X, D, method=method, n_nonzero=bad)
        for k in (1, 3, 6):
            codes = sparse_encode(X, D, method=method, n_nonzero=k)
            assert codes.shape == (1, 6) and codes.nnz <= (min(k, 3) if method == "omp" else k)
    # OMP with every atom allowed stops at n_features atoms: an exact fit.
    codes = sparse_encode(X, D, n_nonzero=6)
    np.testing.assert_allclose(codes @ D, X, atol=1e-5)
    # topk keeps exactly the n_atoms correlations when k = n_atoms.
    np.testing.assert_allclose(sparse_encode(X, D, method="topk", n_nonzero=6).toarray(), X @ D.T, atol=1e-6)
    # One atom, one feature.
    one = np.array([[-1.0]], np.float32)
    for method, kw in (("omp", {}), ("topk", {}), ("lasso", dict(alpha=0.0))):
        codes = sparse_encode(np.array([[2.5], [0.0]], np.float32), one, method=method, **kw).toarray()
        np.testing.assert_allclose(codes, [[-2.5], [0.0]], err_msg=method)
    # Several parallel atoms in one feature: OMP takes one, the next is dependent.
    codes = sparse_encode(np.array([[3.0]], np.float32), np.array([[1.0], [-1.0], [1.0]], np.float32), n_nonzero=3)
    assert codes.nnz == 1 and np.allclose((codes @ np.array([[1.0], [-1.0], [1.0]])), 3.0)


def test_dictionaries_of_huge_tiny_or_subnormal_norms_normalize(rng):
    from latentcore import SparseCoder

    D = unit_atoms(rng, 16, 8)
    X = rng.standard_normal((10, 8)).astype(np.float32)
    expected = sparse_encode(X, D, n_nonzero=3).toarray()
    scales = np.array([1e38, 1e-30, 1.0, 1e30] * 4)[:, None]
    for scaled in ((D.astype(np.float64) * scales).astype(np.float32), D.astype(np.float64) * 1e300):
        codes = sparse_encode(X, scaled, n_nonzero=3, normalize=True).toarray()
        np.testing.assert_allclose(codes, expected, atol=1e-4)
    # Subnormal atoms keep only a few bits of their direction: unit atoms still, finite codes.
    tiny = (D.astype(np.float64) * 1e-44).astype(np.float32)
    components = SparseCoder(tiny, normalize=True).fit().components_
    np.testing.assert_allclose(np.linalg.norm(components.astype(np.float64), axis=1), 1.0, atol=1e-5)
    assert np.isfinite(sparse_encode(X, tiny, n_nonzero=3, normalize=True).data).all()
    with pytest.raises(ValueError, match="unit norm"):
        sparse_encode(X, D * np.float32(1e30))
    with pytest.raises(ValueError, match="zero"):
        sparse_encode(X, np.vstack([D, np.zeros((1, 8), np.float32)]), normalize=True)


def test_omp_with_only_a_tolerance_sizes_its_work_by_the_signal_dimension(rng):
    """tol alone lets OMP take every atom; it can never take more than
    n_features, so neither its outputs nor its per-thread scratch grow with
    n_atoms^2 (the scratch was 20 GB per thread at 50k atoms)."""
    D = unit_atoms(rng, 1500, 12)
    X = rng.standard_normal((30, 12)).astype(np.float32)
    codes = sparse_encode(X, D, tol=1e-4, n_jobs=2)
    assert np.diff(codes.indptr).max() <= 12
    residual = ((X.astype(np.float64) - codes @ D.astype(np.float64)) ** 2).sum(axis=1)
    assert (residual <= 1e-4 * 1.01).all()
    D64 = D.astype(np.float64)
    reference = orthogonal_mp_gram(D64 @ D64.T, D64 @ X.astype(np.float64).T, tol=1e-4,
                                   norms_squared=(X.astype(np.float64) ** 2).sum(axis=1)).T
    assert np.mean(np.all((codes.toarray() != 0) == (reference != 0), axis=1)) >= 0.9


_MEMORY_LIMIT = '''
import resource
import numpy as np
from latentcore import _core, _backend, sparse_encode


def vm_bytes():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize"))


def limit_to(extra):
    """The address space limited to what is mapped now plus `extra` bytes."""
    resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + extra, resource.RLIM_INFINITY))


rng = np.random.default_rng(0)
D = rng.standard_normal((64, 16)).astype(np.float32)
D /= np.linalg.norm(D, axis=1, keepdims=True)
sparse_encode(D[:4], D, tol=1e-3, n_jobs=2)  # OpenMP threads, BLAS buffers and arenas exist before the limit
'''


@pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer cannot run under an address-space limit")
def test_memory_exhaustion_inside_a_parallel_region_is_a_memory_error():
    """A std::bad_alloc in an OpenMP thread used to terminate the process
    (rc 134); now the kernel raises MemoryError and the process goes on."""
    from conftest import run_isolated

    result = run_isolated(_MEMORY_LIMIT + '''
n = 3000  # n_features = n_atoms: OMP's Cholesky scratch is n^2 doubles (72 MB) per thread
Dn = np.eye(n, dtype=np.float32)
gram = np.eye(n, dtype=np.float32)
x = np.zeros((1, n), np.float32)
x[0, :3] = [3.0, 2.0, 1.0]
support = np.empty((1, n), np.int32); coefs = np.empty((1, n), np.float32); count = np.empty(1, np.int32)
limit_to(40 << 20)
try:
    _core.sparse_batch_omp(x, Dn, gram, _backend.scipy_sgemm(), 0.0, False, support, coefs, count, 2)
except MemoryError:
    print("MemoryError")
resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
# And the process goes on: the same call now succeeds and is exact.
_core.sparse_batch_omp(x, Dn, gram, _backend.scipy_sgemm(), 0.0, False, support, coefs, count, 2)
assert count[0] == 3 and support[0, :3].tolist() == [0, 1, 2] and np.allclose(coefs[0, :3], [3, 2, 1])
print("recovered")
''', timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["MemoryError", "recovered"], result.stdout


def test_memory_exhaustion_avoided_by_omp_sizing_its_scratch_by_n_features():
    """Runs under RLIMIT_AS where n_atoms^2 doubles of scratch per thread would not fit."""
    from conftest import run_isolated

    result = run_isolated(_MEMORY_LIMIT + '''
D = rng.standard_normal((6000, 16)).astype(np.float32)
D /= np.linalg.norm(D, axis=1, keepdims=True)
X = rng.standard_normal((40, 16)).astype(np.float32)
# The Gram matrix (288 MB) and its float64 operands fit; 288 MB more per thread would not.
limit_to(450 << 20)
codes = sparse_encode(X, D, tol=1e-3, n_jobs=2)
residual = ((X.astype(np.float64) - codes @ D.astype(np.float64)) ** 2).sum(axis=1)
assert (residual <= 1e-3 * 1.01).all(), residual
print("ok", codes.nnz)
''', timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok"), result.stdout


def test_lasso_init_is_validated_entry_by_entry():
    """A csr init whose column index is out of range used to be written
    through when densified (heap corruption); NaN in it gave NaN codes."""
    from conftest import run_isolated

    result = run_isolated('''
import numpy as np, scipy.sparse
from latentcore import sparse_encode

rng = np.random.default_rng(0)
D = rng.standard_normal((32, 16)); D = (D / np.linalg.norm(D, axis=1, keepdims=True)).astype(np.float32)
X = rng.standard_normal((6, 16)).astype(np.float32)
indptr = np.array([0, 1, 2, 3, 3, 3, 3])


def csr(data, indices, ptr=indptr, shape=(6, 32)):
    return scipy.sparse.csr_array((np.array(data, np.float32), np.array(indices), np.array(ptr)), shape=shape)


bad = {
    "column out of range": csr([1, 1, 1], [0, 5, 40]),
    "negative column": csr([1, 1, 1], [0, -3, 4]),
    "NaN": csr([np.nan, 1, 1], [0, 5, 4]),
    "inf": csr([np.inf, 1, 1], [0, 5, 4]),
    "dense NaN": np.full((6, 32), np.nan, np.float32),
    "shape": csr([1, 1, 1], [0, 5, 4], shape=(6, 33)),
    "dense shape": np.zeros((5, 32), np.float32),
    "negative with positive=True": csr([-1, 1, 1], [0, 5, 4]),
}
coo = scipy.sparse.coo_array(csr([1, 1, 1], [0, 5, 4]))
coo.col[1] = 1000  # tampered after construction
bad["coo column out of range"] = coo
for name, init in bad.items():
    try:
        sparse_encode(X, D, method="lasso", alpha=0.01, init=init, positive=name.startswith("negative with"))
    except ValueError as exc:
        assert "init" in str(exc), (name, str(exc))
        print("refused", name)
    else:
        print("ACCEPTED", name)
good = csr([0.5, 0.25, 0.125], [0, 5, 4])
cold = sparse_encode(X, D, method="lasso", alpha=0.01, tol=1e-10).toarray()
warm = sparse_encode(X, D, method="lasso", alpha=0.01, tol=1e-10, init=good).toarray()
assert np.abs(warm - cold).max() < 1e-4
print("warm ok")
''', timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ACCEPTED" not in result.stdout and result.stdout.count("refused") == 9, result.stdout
    assert "warm ok" in result.stdout


def test_kernel_bindings_check_every_size():
    """Whatever Python hands the sparse-coding bindings: a ValueError, never
    an access outside the arrays."""
    from conftest import assert_calls_refused

    output = assert_calls_refused('''
x, D, gram = f32(3, 4), np.eye(4, dtype=np.float32), np.eye(4)
calls = {
    "omp dictionary width": lambda: _core.sparse_batch_omp(x, f32(4, 5), gram, g, 0.0, False, i32(3, 2), f32(3, 2), i32(3), 1),
    "omp gram": lambda: _core.sparse_batch_omp(x, D, np.eye(3), g, 0.0, False, i32(3, 2), f32(3, 2), i32(3), 1),
    "omp support too wide": lambda: _core.sparse_batch_omp(x, D, gram, g, 0.0, False, i32(3, 5), f32(3, 5), i32(3), 1),
    "omp coefs rows": lambda: _core.sparse_batch_omp(x, D, gram, g, 0.0, False, i32(3, 2), f32(2, 2), i32(3), 1),
    "omp count": lambda: _core.sparse_batch_omp(x, D, gram, g, 0.0, False, i32(3, 2), f32(3, 2), i32(2), 1),
    "omp no features": lambda: _core.sparse_batch_omp(f32(3, 0), f32(4, 0), gram, g, 0.0, False, i32(3, 2), f32(3, 2), i32(3), 1),
    "omp no atoms": lambda: _core.sparse_batch_omp(x, f32(0, 4), np.eye(0), g, 0.0, False, i32(3, 1), f32(3, 1), i32(3), 1),
    "omp NaN tol": lambda: _core.sparse_batch_omp(x, D, gram, g, float("nan"), False, i32(3, 2), f32(3, 2), i32(3), 1),
    "lasso codes": lambda: _core.sparse_lasso_cd(x, D, gram, g, 0.1, False, 1e-4, 10, f32(3, 3), 1),
    "lasso gram diagonal": lambda: _core.sparse_lasso_cd(x, D, np.zeros((4, 4)), g, 0.1, False, 1e-4, 10, f32(3, 4), 1),
    "lasso NaN alpha": lambda: _core.sparse_lasso_cd(x, D, gram, g, float("nan"), False, 1e-4, 10, f32(3, 4), 1),
    "topk k": lambda: _core.sparse_topk(x, D, g, False, i32(3, 5), f32(3, 5), 1),
    "topk values": lambda: _core.sparse_topk(x, D, g, False, i32(3, 2), f32(3, 3), 1),
    "topk rows": lambda: _core.sparse_topk(x, D, g, False, i32(2, 2), f32(2, 2), 1),
    "update A": lambda: _core.sparse_update_dictionary(np.eye(3), np.zeros((4, 4)), D.copy(), 0.0, i32(4), 1),
    "update B": lambda: _core.sparse_update_dictionary(np.eye(4), np.zeros((4, 3)), D.copy(), 0.0, i32(4), 1),
    "update unused": lambda: _core.sparse_update_dictionary(np.eye(4), np.zeros((4, 4)), D.copy(), 0.0, i32(3), 1),
}
# An alpha so large it overflows once scaled by n_features: every code is zero.
codes = np.ones((3, 4), np.float32)
_core.sparse_lasso_cd(np.ones((3, 4), np.float32), D, gram, g, 1e308, False, 1e-4, 10, codes, 1)
assert (codes == 0).all()
print("done")
''')
    assert output.count("refused") == 17 and "done" in output, output


def test_sparse_coder_and_dictionary_learning_validate_codes_and_parameters(rng):
    from latentcore import DictionaryLearning, SparseCoder

    X, D, _ = planted(rng, 30)
    coder = SparseCoder(D, n_nonzero=K)
    bad = np.zeros((2, N_ATOMS), np.float32)
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="codes"):
        coder.inverse_transform(bad)
    with pytest.raises(ValueError, match="overflow float32"):
        coder.inverse_transform(np.full((1, N_ATOMS), 3e38, np.float32))
    np.testing.assert_allclose(coder.inverse_transform([[0.0] * N_ATOMS]), np.zeros((1, N_FEATURES)))
    for kwargs, error, word in [
        (dict(n_atoms=8, batch_size=0), ValueError, "batch_size"), (dict(n_atoms=8, n_epochs=0), ValueError, "n_epochs"),
        (dict(n_atoms=8, n_nonzero=9), ValueError, "n_nonzero"), (dict(n_atoms=8, n_nonzero=2.5), TypeError, "n_nonzero"),
        (dict(n_atoms=8, method="lasso"), ValueError, "alpha"),
        (dict(n_atoms=8, method="lasso", alpha=float("nan")), ValueError, "alpha"),
        (dict(n_atoms=2**31), ValueError, "n_atoms"), (dict(n_atoms=8.0), TypeError, "n_atoms"),
    ]:
        with pytest.raises(error, match=word):
            DictionaryLearning(**kwargs).fit(X)
    dl = DictionaryLearning(8, n_nonzero=np.int64(2), alpha=None, batch_size=np.int32(10), random_state=0).fit(X)
    dl.n_atoms = 9
    with pytest.raises(ValueError, match="n_atoms"):
        dl.partial_fit(X)


@pytest.mark.parametrize("scale", [1e30, 1e-30, 3e37])
def test_dictionary_learning_at_any_scale_learns_the_same_atoms(scale):
    """Its atoms once came from float32 norms that overflowed (1e30: every atom
    zero, and an error that named an option DictionaryLearning lacks)."""
    from latentcore import DictionaryLearning

    X, _ = dictionary_data(np.random.default_rng(3), n=2000)
    kwargs = dict(n_nonzero=4, n_epochs=2, random_state=0, n_jobs=2)
    reference = DictionaryLearning(64, **kwargs).fit(X)
    scaled = DictionaryLearning(64, **kwargs).fit((X.astype(np.float64) * scale).astype(np.float32))
    assert np.isfinite(scaled.components_).all() and np.isfinite(scaled.history_["fvu"]).all()
    # Scaling by a non-power of two rounds every value: the atoms drift a little, not apart.
    assert np.abs(scaled.components_ - reference.components_).max() < (1e-5 if scale != 3e37 else 0.05)
    np.testing.assert_allclose(scaled.history_["fvu"], reference.history_["fvu"], rtol=1e-2)
    codes = scaled.transform((X[:20].astype(np.float64) * scale).astype(np.float32))
    assert np.isfinite(codes.data).all() and np.abs(codes.data).max() > 0


def test_dictionary_learning_on_one_signal_one_feature_and_one_atom():
    from latentcore import DictionaryLearning

    for X, n_atoms in ((np.array([[3.0, -4.0]], np.float32), 3), (np.arange(1, 8, dtype=np.float32)[:, None], 1),
                       (np.zeros((5, 2), np.float32), 2)):
        for method, kw in (("omp", {}), ("lasso", dict(alpha=0.01))):
            dl = DictionaryLearning(n_atoms, method=method, batch_size=4, random_state=0, **kw).fit(X)
            assert np.isfinite(dl.components_).all() and np.isfinite(dl.history_["fvu"]).all()
            np.testing.assert_allclose(np.linalg.norm(dl.components_, axis=1), 1.0, atol=1e-5)


# Ctrl-C: every public call stops within a second (uninterrupted, each runs several seconds).


def test_ctrl_c_stops_omp(rng):
    D, X = unit_atoms(rng, 2048, 256), rng.standard_normal((6000, 256)).astype(np.float32)
    assert_interruptible(lambda: sparse_encode(X, D, n_nonzero=64, n_jobs=2))


def test_ctrl_c_stops_lasso_inside_one_signal(rng):
    """At a tiny alpha one signal's coordinate descent (warm-started) sweeps
    for seconds: the kernel polls inside it."""
    D, X = unit_atoms(rng, 512, 128), rng.standard_normal((4, 128)).astype(np.float32)
    assert_interruptible(lambda: sparse_encode(X, D, method="lasso", alpha=1e-6, tol=1e-12, max_iter=10**6,
                                               init=np.zeros((4, 512), np.float32), n_jobs=2))


def test_ctrl_c_stops_topk_and_the_sparse_coder(rng):
    from latentcore import SparseCoder

    D, X = unit_atoms(rng, 4096, 256), rng.standard_normal((60000, 256)).astype(np.float32)
    assert_interruptible(lambda: sparse_encode(X, D, method="topk", n_nonzero=32, n_jobs=2))
    assert_interruptible(lambda: SparseCoder(D, n_nonzero=64, n_jobs=2).transform(X))


def test_ctrl_c_stops_dictionary_learning(rng):
    from latentcore import DictionaryLearning

    X = rng.standard_normal((20000, 256)).astype(np.float32)
    assert_interruptible(lambda: DictionaryLearning(1024, n_nonzero=32, n_epochs=100, n_jobs=2).fit(X))


# ---------------------------------------------------------------------------
# OMP without the Gram matrix (large dictionaries). Where the n_atoms^2 Gram
# matrix would not pay off or not fit (latentcore.sparse._omp_gram_pays_off),
# OMP computes each iteration's correlations by GEMM instead; tests force
# either path through latentcore.sparse._OMP_USE_GRAM or _omp's use_gram.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("positive,with_tol", [(False, False), (True, False), (False, True)],
                         ids=["plain", "positive", "tol"])
def test_gram_free_omp_gives_the_gram_paths_codes(rng, monkeypatch, positive, with_tol):
    import latentcore.sparse as sparse_module

    n_atoms, n_features = 4096, 128
    D = unit_atoms(rng, n_atoms, n_features)
    # Dense signals: the residual stays large, so every selection is decided
    # by far more than float rounding and both paths must agree exactly.
    X = rng.standard_normal((100, n_features)).astype(np.float32)
    norms = (X.astype(np.float64) ** 2).sum(axis=1)
    tol = 0.5 * float(np.median(norms)) if with_tol else None
    n_nonzero = n_atoms if with_tol else 24
    # The atoms in the order chosen, their coefficients and counts.
    (support, coefs, count), (support_free, coefs_free, count_free) = (
        sparse_module._omp(X, D, n_nonzero, tol, positive, 2, use_gram=use_gram) for use_gram in (True, False))
    np.testing.assert_array_equal(count_free, count)
    if with_tol:
        assert count.min() < count.max() and count.max() < n_features  # the tolerance stopped them, at various sizes
    else:
        assert (count == 24).all()
    for i in range(X.shape[0]):
        np.testing.assert_array_equal(support_free[i, :count[i]], support[i, :count[i]])
        np.testing.assert_allclose(coefs_free[i, :count[i]], coefs[i, :count[i]], rtol=1e-4, atol=1e-5)
    # End to end, each path forced through the module switch.
    kwargs = dict(n_nonzero=None if with_tol else 24, tol=tol, positive=positive, n_jobs=2)
    monkeypatch.setattr(sparse_module, "_OMP_USE_GRAM", True)
    gram_codes = sparse_encode(X, D, **kwargs).toarray()
    monkeypatch.setattr(sparse_module, "_OMP_USE_GRAM", False)
    free_codes = sparse_encode(X, D, **kwargs).toarray()
    np.testing.assert_allclose(free_codes, gram_codes, rtol=1e-4, atol=1e-5)
    # The same codes for any thread count, to the bit.
    np.testing.assert_array_equal(sparse_encode(X, D, **{**kwargs, "n_jobs": 1}).toarray(), free_codes)
    if positive:
        assert free_codes.min() >= 0 and (free_codes > 0).sum() == count.sum()
    else:  # and scikit-learn's OMP (from the atoms, no Gram matrix either) on the first signals
        from sklearn.linear_model import orthogonal_mp

        reference = orthogonal_mp(D.astype(np.float64).T, X[:10].astype(np.float64).T,
                                  n_nonzero_coefs=None if with_tol else 24, tol=tol).T
        np.testing.assert_allclose(free_codes[:10], reference, atol=1e-4)


def test_the_omp_rule_takes_the_gram_matrix_only_where_it_pays_off_and_fits():
    from latentcore.sparse import _omp_gram_pays_off

    # 1024 atoms x 256 dimensions, 16 atoms a signal: the Gram matrix pays off
    # for many signals, not for a few.
    assert not _omp_gram_pays_off(16, 1024, 256, 16)
    assert _omp_gram_pays_off(20000, 1024, 256, 16)
    # 65,536 atoms: the Gram matrix (34 GB) never fits, however many signals.
    assert not _omp_gram_pays_off(10**7, 65536, 256, 64)


def test_a_65536_atom_dictionary_codes_without_its_gram_matrix():
    """Its float64 Gram matrix alone would take 34 GB: 1,000 signals are coded
    in a subprocess whose peak RSS stays under 1.5 GB, recovering their
    planted supports."""
    from conftest import run_isolated

    result = run_isolated('''
import resource
import numpy as np
import latentcore.sparse as sparse_module
from latentcore import sparse_encode

rng = np.random.default_rng(0)
n_atoms, n_features, k, n = 65536, 256, 3, 1000
D = rng.standard_normal((n_atoms, n_features), dtype=np.float32)
D /= np.linalg.norm(D, axis=1, keepdims=True)
atoms = np.stack([rng.choice(n_atoms, k, replace=False) for _ in range(n)])
values = rng.uniform(1.0, 2.0, (n, k)) * rng.choice([-1.0, 1.0], (n, k))
X = np.einsum("nk,nkf->nf", values, D[atoms].astype(np.float64)).astype(np.float32)
assert not sparse_module._omp_gram_pays_off(n, n_atoms, n_features, k)  # the rule's own choice
codes = sparse_encode(X, D, n_nonzero=k, n_jobs=2)
print("peak_bytes", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)  # KiB on Linux
order = np.argsort(atoms, axis=1)
planted = np.take_along_axis(atoms, order, axis=1)
assert codes.nnz == n * k and np.array_equal(codes.indices.reshape(n, k), planted), "supports not recovered"
assert np.allclose(codes.data.reshape(n, k), np.take_along_axis(values, order, axis=1), atol=1e-4)
print("recovered")
''', timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.split("\n")
    peak = int(next(line.split()[1] for line in lines if line.startswith("peak_bytes")))
    assert peak < 1.5e9, f"peak RSS {peak / 1e9:.2f} GB"
    assert "recovered" in lines


def test_gram_free_kernel_checks_every_size():
    """gram=None (the Gram-free path) is checked as the Gram path is: a
    ValueError, never an access outside the arrays; and a valid call works."""
    from conftest import assert_calls_refused

    output = assert_calls_refused('''
x, D = np.ones((3, 4), np.float32), np.eye(4, dtype=np.float32)
omp = lambda x, D, support, coefs, count: _core.sparse_batch_omp(x, D, None, g, -1.0, False, support, coefs, count, 2)
calls = {
    "dictionary width": lambda: omp(x, f32(4, 5), i32(3, 2), f32(3, 2), i32(3)),
    "support too wide": lambda: omp(x, D, i32(3, 5), f32(3, 5), i32(3)),
    "coefs rows": lambda: omp(x, D, i32(3, 2), f32(2, 2), i32(3)),
    "count": lambda: omp(x, D, i32(3, 2), f32(3, 2), i32(2)),
    "no features": lambda: omp(f32(3, 0), f32(4, 0), i32(3, 2), f32(3, 2), i32(3)),
    "no atoms": lambda: omp(x, f32(0, 4), i32(3, 1), f32(3, 1), i32(3)),
}
support, coefs, count = i32(3, 4), f32(3, 4), i32(3)
omp(x, D, support, coefs, count)
assert (count == 4).all() and np.allclose(coefs, 1.0), (count, coefs)
print("done")
''')
    assert output.count("refused") == 6 and "done" in output, output


def test_ctrl_c_stops_gram_free_omp(rng, monkeypatch):
    import latentcore.sparse as sparse_module

    monkeypatch.setattr(sparse_module, "_OMP_USE_GRAM", False)
    D, X = unit_atoms(rng, 8192, 128), rng.standard_normal((20000, 128)).astype(np.float32)
    assert_interruptible(lambda: sparse_encode(X, D, n_nonzero=32, n_jobs=2))
