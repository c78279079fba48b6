"""t-SNE against independent references: the exact O(n^2) gradient, the
defining equations of the affinities, openTSNE on the same problem, and a
planted cluster structure."""

import numpy as np
import pytest
import scipy.sparse
from sklearn.datasets import load_digits
from sklearn.neighbors import KNeighborsClassifier

import latentcore
from latentcore import _core
from latentcore.tsne import _ExactRepulsion, _FFTRepulsion, _Objective, _pca_initialization

KL_RTOL = 0.02  # the bar: final KL within 2% of openTSNE's


def gaussian_mixture(rng, n=2000, d=50, clusters=10, spread=8.0):
    centres = rng.standard_normal((clusters, d)) * spread
    labels = rng.integers(0, clusters, n)
    return (centres[labels] + rng.standard_normal((n, d))).astype(np.float32), labels


def relative_error(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.parametrize("dim,intervals", [(1, 50), (2, 50), (3, 20)])
def test_fft_gradient_converges_to_exact(rng, dim, intervals):
    Y = rng.standard_normal((2000, dim)) * (5.0 if dim < 3 else 1.0)
    exact_rep, exact_z = _ExactRepulsion(1.0, 2)(Y)
    errors = []
    for points in (3, 4, 5):  # beyond, single-precision FFTs set a floor near 1e-5
        rep, z = _FFTRepulsion(1.0, 2, points, intervals, 1.0)(Y)
        errors.append(relative_error(rep, exact_rep))
        assert z == pytest.approx(exact_z, rel=1e-2)
    assert errors[-1] < 1e-3
    assert errors[0] > errors[1] > errors[2]


def test_far_flung_points_are_handled_exactly(rng):
    Y = rng.standard_normal((3000, 2)) * 5
    Y[:2] *= 40  # far outside the map: the grid should not stretch to them
    fft = _FFTRepulsion(1.0, 2, 5, 50, 1.0)
    far = fft._far_points(Y)
    assert far is not None and set(np.flatnonzero(far)) == {0, 1}
    exact_rep, exact_z = _ExactRepulsion(1.0, 2)(Y)
    rep, z = fft(Y)
    assert relative_error(rep, exact_rep) < 1e-3
    assert relative_error(rep[:2], exact_rep[:2]) < 1e-9  # computed directly
    assert z == pytest.approx(exact_z, rel=1e-4)


@pytest.mark.parametrize("dof", [0.5, 1.0, 3.0])
def test_full_gradient_and_kl_match_exact(rng, dof):
    X, _ = gaussian_mixture(rng, n=600, d=10)
    P = latentcore.TSNE(perplexity=20, n_iter=1).fit(X).affinities_  # any valid P will do
    Y = rng.standard_normal((600, 2)) * 3
    exact = _Objective(P, _ExactRepulsion(dof, 2), dof, 2)(Y, 4.0, with_kl=True)
    fft = _Objective(P, _FFTRepulsion(dof, 2, 6, 50, 1.0), dof, 2)(Y, 4.0, with_kl=True)
    assert relative_error(fft[0], exact[0]) < 1e-4
    assert fft[1] == pytest.approx(exact[1], rel=1e-5)
    # The KL itself, from its definition with dense matrices.
    sq = ((Y[:, None, :] - Y[None, :, :]) ** 2).sum(-1)
    w = (1.0 + sq / dof) ** -dof
    np.fill_diagonal(w, 0.0)
    Q = w / w.sum()
    Pd = P.toarray()
    mask = Pd > 0
    # rel 1e-6: the optimizer holds P in float32
    assert exact[1] == pytest.approx(np.sum(Pd[mask] * np.log(Pd[mask] / Q[mask])), rel=1e-6)


def test_perplexity_calibration_hits_the_entropy(rng):
    X, _ = gaussian_mixture(rng, n=1500, d=20)
    for perplexity in (5.0, 30.0):
        idx, dist = latentcore.knn(X, int(3 * perplexity))
        cond = np.empty(idx.shape)
        _core.tsne_perplexity_affinities(np.ascontiguousarray(dist ** 2), np.array([perplexity]), 1e-10, cond, 2)
        np.testing.assert_allclose(cond.sum(axis=1), 1.0, rtol=1e-12)
        entropy = -(cond * np.log(np.maximum(cond, 1e-300))).sum(axis=1)
        np.testing.assert_allclose(entropy, np.log(perplexity), atol=1e-5)
        P = latentcore.tsne.perplexity_affinities(idx, dist, perplexity)
        assert abs(P - P.T).max() < 1e-15
        assert P.sum() == pytest.approx(1.0, rel=1e-12)


def test_joint_affinities_equal_the_scipy_formula(rng):
    X, _ = gaussian_mixture(rng, n=700, d=6)
    idx, _ = latentcore.knn(X, 12)
    cond = rng.random(idx.shape)
    rows = np.repeat(np.arange(700), 12)
    C = scipy.sparse.csr_array((cond.ravel(), (rows, idx.ravel())), shape=(700, 700))
    expected = ((C + C.T) / 1400.0).toarray()
    for threads in (1, 2):
        P = latentcore.tsne._joint_from_conditional(idx, cond, threads)
        np.testing.assert_allclose(P.toarray(), expected, rtol=1e-15, atol=0)
        assert P.has_sorted_indices and np.all(np.diff(P.indptr) > 0)


def test_kl_matches_opentsne_on_digits():
    openTSNE = pytest.importorskip("openTSNE")
    X = load_digits().data
    ours = latentcore.TSNE(random_state=0, n_jobs=2).fit(X)
    init = _pca_initialization(X.astype(np.float32).astype(np.float64), 2, None)
    emb = openTSNE.TSNEEmbedding(init, openTSNE.affinity.PrecomputedAffinities(ours.affinities_),
                                 negative_gradient_method="fft", n_jobs=2, random_state=0)
    emb = emb.optimize(250, exaggeration=12, momentum=0.5).optimize(500, momentum=0.8)
    assert ours.kl_divergence_ == pytest.approx(emb.kl_divergence, rel=KL_RTOL)
    assert ours.n_iter_ == 750 and ours.embedding_.dtype == np.float32


def test_clusters_are_separated_and_trustworthy(rng):
    openTSNE = pytest.importorskip("openTSNE")
    X, labels = gaussian_mixture(rng)
    tsne = latentcore.TSNE(random_state=1, n_jobs=2, n_iter=500)
    Y = tsne.fit_transform(X)
    accuracy = KNeighborsClassifier(10).fit(Y[::2], labels[::2]).score(Y[1::2], labels[1::2])
    assert accuracy >= 0.95
    init = _pca_initialization(X.astype(np.float64), 2, None)
    ref = openTSNE.TSNEEmbedding(init, openTSNE.affinity.PrecomputedAffinities(tsne.affinities_),
                                 negative_gradient_method="fft", n_jobs=2, random_state=0)
    ref = ref.optimize(250, exaggeration=12, momentum=0.5).optimize(250, momentum=0.8)
    ours_t = latentcore.trustworthiness(X, Y, 10)
    assert ours_t >= latentcore.trustworthiness(X, np.asarray(ref, np.float32), 10) - 0.01
    assert tsne.kl_divergence_ == pytest.approx(ref.kl_divergence, rel=KL_RTOL)


def test_same_seed_same_map_for_any_thread_count(rng):
    X, _ = gaussian_mixture(rng, n=800, d=10)
    for init in ("pca", "random"):
        a = latentcore.TSNE(random_state=3, n_jobs=1, n_iter=120, initialization=init).fit_transform(X)
        b = latentcore.TSNE(random_state=3, n_jobs=2, n_iter=120, initialization=init).fit_transform(X)
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dim", [1, 3])
def test_one_and_three_dimensional_maps_separate_clusters(rng, dim):
    X, labels = gaussian_mixture(rng, n=1000, d=20, clusters=5)
    # A coarser 3-D grid (boxes up to 4 units wide) keeps the test quick.
    Y = latentcore.TSNE(n_components=dim, random_state=0, n_iter=400, ints_in_interval=4.0).fit_transform(X)
    assert Y.shape == (1000, dim)
    accuracy = KNeighborsClassifier(10).fit(Y[::2], labels[::2]).score(Y[1::2], labels[1::2])
    assert accuracy >= 0.95


def test_precomputed_inputs_give_the_same_affinities(rng):
    X, _ = gaussian_mixture(rng, n=500, d=8)
    ref = latentcore.TSNE(perplexity=10, n_iter=50).fit(X)
    D = np.sqrt(((X[:, None, :].astype(np.float64) - X[None, :, :]) ** 2).sum(-1))
    from_knn = latentcore.TSNE(perplexity=10, n_iter=50).fit(latentcore.knn(X, 30))
    from_dist = latentcore.TSNE(perplexity=10, n_iter=50, metric="precomputed").fit(D)
    for other in (from_knn, from_dist):
        assert abs(other.affinities_ - ref.affinities_).max() < 1e-6
    from_p = latentcore.TSNE(n_iter=50, initialization=ref.embedding_ * 0 + 1e-4 * np.arange(1000).reshape(500, 2))
    from_p.fit(ref.affinities_ * 7.0)  # any scale: P is renormalised
    assert abs(from_p.affinities_ - ref.affinities_).max() < 1e-12


def test_multiscale_and_uniform_affinities(rng):
    X, _ = gaussian_mixture(rng, n=400, d=8)
    multi = latentcore.TSNE(affinities="multiscale", perplexity=[5, 20], n_iter=50).fit(X).affinities_
    idx, dist = latentcore.knn(X, 60)
    p5 = latentcore.tsne.perplexity_affinities(idx[:, :15], dist[:, :15], 5)
    p20 = latentcore.tsne.perplexity_affinities(idx, dist, 20)
    # Multiscale averages the conditionals; P5 over 15 neighbours equals P5 over 60 within the tail mass.
    assert abs(multi - (p5 + p20) / 2).max() < 1e-4
    uni = latentcore.TSNE(affinities="uniform", perplexity=10, n_iter=50).fit(X).affinities_
    cond = (uni + uni.T)  # symmetric: each listed pair carries 1 / (2 n k) per direction
    assert uni.sum() == pytest.approx(1.0) and abs(uni - uni.T).max() == 0
    assert set(np.round(cond.data * 2 * 400 * 10)) <= {2.0, 4.0}


def test_callbacks_and_late_exaggeration(rng):
    X, _ = gaussian_mixture(rng, n=300, d=8)
    seen = []
    tsne = latentcore.TSNE(perplexity=10, n_iter=300, exaggeration=4.0, late_exaggeration_start=270,
                           callbacks=lambda it, kl, Y: seen.append((it, kl)) or it >= 200)
    tsne.fit(X)
    assert [it for it, _ in seen] == [50, 100, 150, 200]
    assert tsne.n_iter_ == 200 and all(np.isfinite(kl) for _, kl in seen)
    assert [p[:2] for p in tsne._phases()] == [(250, 12.0), (20, 1.0), (30, 4.0)]


@pytest.mark.parametrize("n_features,dim", [(1, 2), (2, 3)])
def test_fewer_features_than_map_dimensions(rng, n_features, dim):
    X = rng.standard_normal((200, n_features)).astype(np.float32)
    Y = latentcore.TSNE(n_components=dim, perplexity=10, n_iter=60, random_state=0).fit_transform(X)
    assert Y.shape == (200, dim) and np.all(np.isfinite(Y))
    constant = latentcore.TSNE(perplexity=10, n_iter=20, random_state=0).fit_transform(np.ones((50, 3)) + 0.0)
    assert np.all(np.isfinite(constant))


class TestBadInput:
    X = np.random.default_rng(0).standard_normal((100, 5)).astype(np.float32)

    @pytest.mark.parametrize("kwargs,word", [
        ({"perplexity": 33.0}, "perplexity"),
        ({"perplexity": 0.0}, "perplexity"),
        ({"dof": 0.0}, "dof"),
        ({"dof": -1.0}, "dof"),
        ({"n_components": 4}, "n_components"),
        ({"n_components": 0}, "n_components"),
        ({"initialization": np.zeros((99, 2))}, "initialization"),
        ({"initialization": "spectral"}, "initialization"),
        ({"affinities": "gaussian"}, "affinities"),
        ({"negative_gradient_method": "bh"}, "negative_gradient_method"),
        ({"learning_rate": -1.0}, "learning_rate"),
    ])
    def test_bad_parameters(self, kwargs, word):
        with pytest.raises(ValueError, match=word):
            latentcore.TSNE(n_iter=10, **kwargs).fit(self.X)

    def test_too_few_points_and_nan(self):
        with pytest.raises(ValueError, match="at least 4 points"):
            latentcore.TSNE(perplexity=0.5).fit(self.X[:3])
        bad = self.X.copy()
        bad[3, 1] = np.nan
        with pytest.raises(ValueError, match="X contains NaN"):
            latentcore.TSNE().fit(bad)

    def test_bad_precomputed(self):
        with pytest.raises(ValueError, match="square"):
            latentcore.TSNE(metric="precomputed", perplexity=5).fit(np.ones((10, 9)))
        with pytest.raises(ValueError, match="square"):
            latentcore.TSNE().fit(scipy.sparse.csr_array(np.ones((10, 9))))
        with pytest.raises(ValueError, match="non-negative"):
            latentcore.TSNE().fit(scipy.sparse.csr_array(-np.eye(10)))
        idx, dist = latentcore.knn(self.X, 30)
        dist[4, 2] = np.inf
        with pytest.raises(ValueError, match="distances must be finite"):
            latentcore.TSNE(perplexity=10).fit((idx, dist))
        with pytest.raises(ValueError, match="indices must lie"):
            latentcore.TSNE(perplexity=10).fit((idx + 100, dist))


def test_transform_places_held_out_points_near_their_class():
    digits = load_digits()
    X, labels = digits.data, digits.target
    train, test = np.arange(0, 1797) % 6 != 0, np.arange(0, 1797) % 6 == 0
    tsne = latentcore.TSNE(random_state=0, n_iter=500).fit(X[train])
    before = tsne.embedding_.copy()
    placed = tsne.transform(X[test])
    assert placed.shape == (test.sum(), 2) and placed.dtype == np.float32
    clf = KNeighborsClassifier(10).fit(tsne.embedding_, labels[train])
    assert clf.score(placed, labels[test]) >= 0.9
    # The map stays put, and points do not act on each other (exact method: bit for bit).
    np.testing.assert_array_equal(tsne.embedding_, before)
    exact = latentcore.TSNE(random_state=0, n_iter=300, negative_gradient_method="exact").fit(X[train][:400])
    batch = exact.transform(X[test][:6], n_iter=50)
    one_by_one = np.concatenate([exact.transform(X[test][i:i + 1], n_iter=50) for i in range(6)])
    np.testing.assert_allclose(batch, one_by_one, rtol=1e-5, atol=1e-5)


def test_transform_needs_points_it_can_search(rng):
    X, _ = gaussian_mixture(rng, n=200, d=5)
    with pytest.raises(RuntimeError, match="fit"):
        latentcore.TSNE().transform(X)
    fitted = latentcore.TSNE(perplexity=10, n_iter=20).fit(latentcore.knn(X, 30))
    with pytest.raises(RuntimeError, match="precomputed"):
        fitted.transform(X)
    with pytest.raises(ValueError, match="Y has 4 features"):
        latentcore.TSNE(perplexity=10, n_iter=20).fit(X).transform(X[:, :4])
