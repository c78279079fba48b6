"""TopK sparse autoencoder: one step against PyTorch autograd, planted atoms, data sources, files."""

import numpy as np
import pytest

from latentcore import TopKSAE, _core
from latentcore.metrics import atom_recovery

N_FEATURES, N_TRUE, K = 32, 64, 4


def planted(rng, n):
    """Signals that are non-negative 4-sparse mixtures of 64 unit-norm atoms in 32 dims."""
    D = rng.standard_normal((N_TRUE, N_FEATURES))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    codes = np.zeros((n, N_TRUE))
    rows = np.repeat(np.arange(n), K)
    cols = np.argsort(rng.random((n, N_TRUE)), axis=1)[:, :K].ravel()
    codes[rows, cols] = rng.uniform(1.0, 2.0, n * K)
    return (codes @ D).astype(np.float32), D.astype(np.float32)


@pytest.fixture(scope="module")
def data():
    return planted(np.random.default_rng(7), 40_000)


@pytest.fixture(scope="module")
def trained(data):
    X, _ = data
    return TopKSAE(128, K, batch_size=1024, n_epochs=20, learning_rate=3e-3, random_state=0, n_jobs=2).fit(X)


def test_recovers_planted_atoms_and_fvu_falls(data, trained):
    _, D = data
    recovery = atom_recovery(trained.decoder_, D)
    assert np.mean(recovery >= 0.9) >= 0.9
    fvu = np.array(trained.history_["fvu"])
    assert fvu[-10:].mean() < 0.2 * fvu[:10].mean()
    assert np.allclose(trained.history_["l0"], K)
    np.testing.assert_allclose(np.linalg.norm(trained.decoder_, axis=1), 1.0, atol=1e-5)
    assert len(fvu) == trained.n_steps_ == 20 * 40 and trained.n_samples_seen_ == 20 * 40_000


def test_encode_decode_agree_with_the_definition(data, trained):
    X, _ = data
    X = X[:500]
    codes = trained.encode(X)
    assert codes.shape == (500, 128) and codes.dtype == np.float32
    pre = (X - trained.pre_bias_) @ trained.encoder_.T + trained.encoder_bias_
    expected = np.zeros_like(pre)
    top = np.argsort(-pre, axis=1)[:, :K]
    np.put_along_axis(expected, top, np.maximum(np.take_along_axis(pre, top, 1), 0), 1)
    np.testing.assert_allclose(codes.toarray(), expected, atol=1e-4)
    np.testing.assert_allclose(trained.decode(codes), expected @ trained.decoder_ + trained.pre_bias_, atol=1e-4)
    np.testing.assert_allclose(trained.decode(codes.toarray()), trained.decode(codes), atol=1e-5)


def test_one_step_equals_pytorch_autograd_with_auxk(rng):
    """A step from a loaded model equals autograd of the documented loss
    (normalized MSE + AuxK on the latents that did not fire) followed by the
    decoder's tangent projection, Adam and renormalization."""
    torch = pytest.importorskip("torch")
    n, d, m, k, k_aux, aux_coef, lr, eps = 64, 24, 400, 5, 12, 0.25, 1e-3, 1e-2
    X = rng.standard_normal((n, d)).astype(np.float32)
    sae = TopKSAE(m, k, batch_size=n, learning_rate=lr, eps=eps, k_aux=k_aux, aux_coef=aux_coef,
                  dead_after=1, shuffle=False, n_jobs=2).fit(X)
    start = {name: getattr(sae, name + "_").copy() for name in ("encoder", "encoder_bias", "decoder", "pre_bias")}
    start["encoder"] += 0.1 * rng.standard_normal(start["encoder"].shape).astype(np.float32)
    start["encoder_bias"] = 0.1 * rng.standard_normal(m).astype(np.float32)
    start["pre_bias"] += 0.1 * rng.standard_normal(d).astype(np.float32)
    for name, value in start.items():
        setattr(sae, name + "_", value.copy())
    sae._saved_moments = {name: (np.zeros_like(v), np.zeros_like(v)) for name, v in start.items()}
    sae._last_fired[:] = sae.n_samples_seen_
    step = sae.n_steps_ + 1
    sae.partial_fit(X)

    p = {name: torch.tensor(value, dtype=torch.float64, requires_grad=True) for name, value in start.items()}
    x = torch.tensor(X, dtype=torch.float64)
    centered = x - p["pre_bias"]
    pre = centered @ p["encoder"].T + p["encoder_bias"]
    values, index = pre.topk(k, dim=1)
    z = torch.zeros_like(pre).scatter(1, index, torch.relu(values))
    recon = z @ p["decoder"] + p["pre_bias"]
    loss = ((recon - x) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
    fired = torch.zeros(m, dtype=torch.bool)
    fired[index[values > 0]] = True
    dead = torch.nonzero(~fired).ravel()
    assert 0 < len(dead) < m
    aux_values, aux_local = pre[:, dead].topk(min(k_aux, len(dead)), dim=1)
    aux_z = torch.zeros(n, m, dtype=torch.float64).scatter(1, dead[aux_local], torch.relu(aux_values))
    residual = (x - recon).detach()
    loss = loss + aux_coef * ((aux_z @ p["decoder"] - residual) ** 2).sum() / ((residual - residual.mean(0)) ** 2).sum()
    loss.backward()
    for name, value in p.items():
        g = value.grad.numpy()
        if name == "decoder":
            g = g - (g * start["decoder"]).sum(1, keepdims=True) * start["decoder"]
        m1, m2 = 0.1 * g, 0.001 * g * g
        expected = start[name] - lr / (1 - 0.9**step) * m1 / (np.sqrt(m2) / np.sqrt(1 - 0.999**step) + eps)
        if name == "decoder":
            expected /= np.linalg.norm(expected, axis=1, keepdims=True)
        np.testing.assert_allclose(getattr(sae, name + "_"), expected, atol=2e-6, err_msg=name)
        assert np.abs(getattr(sae, name + "_") - start[name]).max() > 1e-5  # every parameter moved


def test_kernels_match_dense_references_and_any_thread_count(rng):
    batch, k, m, d = 300, 6, 80, 19
    index = rng.integers(-1, m, (batch, k)).astype(np.int32)
    values = rng.standard_normal((batch, k)).astype(np.float32)
    decoder, grad_out, centered = (rng.standard_normal(s).astype(np.float32) for s in ((m, d), (batch, d), (batch, d)))
    bias = rng.standard_normal(d).astype(np.float32)
    dense = np.zeros((batch, m))
    for i in range(batch):
        for j in range(k):
            if index[i, j] >= 0:
                dense[i, index[i, j]] += values[i, j]
    out = np.empty((batch, d), np.float32)
    _core.sae_sparse_decode(index, values, decoder, bias, out, 2)
    np.testing.assert_allclose(out, dense @ decoder + bias, atol=1e-4)
    results = []
    for threads in (1, 2):
        grads = [np.zeros((m, d), np.float32), np.zeros((m, d), np.float32), np.zeros(m, np.float32)]
        _core.sae_sparse_decode_backward(index, values, grad_out, centered, decoder, *grads, threads)
        results.append(grads)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    dpre = np.where(dense > 0, grad_out @ decoder.T, 0.0)  # ReLU'd entries pass their gradient
    # Duplicate ids in a row add up in `dense`: the reference needs per-entry sums instead.
    np.testing.assert_allclose(results[0][0], dense.T @ grad_out, atol=1e-3)
    if all(len(set(r[r >= 0])) == (r >= 0).sum() for r in index):
        np.testing.assert_allclose(results[0][1], dpre.T @ centered, atol=1e-3)
    with pytest.raises(ValueError, match="latent index"):
        _core.sae_sparse_decode(np.full((batch, k), m, np.int32), values, decoder, bias, out, 1)


def test_same_model_for_any_thread_count(data):
    """Each encoder block runs its own single-threaded SGEMM and every sum has
    a fixed order, so the thread count changes nothing, not even the last bit."""
    X, _ = data
    kwargs = dict(batch_size=1000, n_epochs=2, dead_after=500, random_state=4)
    one, two = (TopKSAE(96, K, n_jobs=n, **kwargs).fit(X[:5000]) for n in (1, 2))
    np.testing.assert_array_equal(one.decoder_, two.decoder_)
    np.testing.assert_array_equal(one.encoder_, two.encoder_)


def test_batchtopk_keeps_k_per_sample_on_average(data):
    X, D = data
    sae = TopKSAE(128, K, activation="batchtopk", batch_size=1024, n_epochs=10, learning_rate=3e-3,
                  random_state=0).fit(X)
    l0 = np.array(sae.history_["l0"])
    assert np.all(np.abs(l0 - K) < 0.05)
    assert sae.threshold_ > 0
    codes = sae.encode(X[:5000])
    assert 0.5 * K < np.diff(codes.indptr).mean() < 2 * K
    # Samples compete for one budget, so the atoms come more slowly than with
    # TopK (0.83 here after 10 epochs, 0.89 after 20), but they come.
    assert np.mean(atom_recovery(sae.decoder_, D) >= 0.9) >= 0.75


def test_torch_tensors_give_the_numpy_codes_and_model(data, trained):
    torch = pytest.importorskip("torch")
    X, _ = data
    X = X[:4096]
    np.testing.assert_array_equal(trained.encode(torch.from_numpy(X)).toarray(), trained.encode(X).toarray())
    kwargs = dict(batch_size=512, n_epochs=2, random_state=3, n_jobs=1)
    a = TopKSAE(64, K, **kwargs).fit(X)
    b = TopKSAE(64, K, **kwargs).fit(torch.from_numpy(X))
    np.testing.assert_array_equal(a.decoder_, b.decoder_)


def test_iterables_memmaps_and_partial_fit_see_the_same_batches(data, tmp_path):
    torch = pytest.importorskip("torch")
    X, _ = data
    X = X[:6000]
    kwargs = dict(batch_size=1000, shuffle=False, random_state=1, n_jobs=1)
    reference = TopKSAE(64, K, **kwargs).fit(X)
    chunks = (torch.from_numpy(X[a:b]) for a, b in ((0, 700), (700, 2500), (2500, 2600), (2600, 6000)))
    streamed = TopKSAE(64, K, **kwargs).fit(chunks)
    np.save(tmp_path / "X.npy", X)
    mapped = TopKSAE(64, K, **kwargs).fit(tmp_path / "X.npy")
    halves = TopKSAE(64, K, **kwargs).partial_fit(X[:3000]).partial_fit(X[3000:])
    for other in (streamed, mapped, halves):
        np.testing.assert_array_equal(other.decoder_, reference.decoder_)
        assert other.n_steps_ == 6


def test_an_interrupted_fit_keeps_the_steps_taken(data):
    X, _ = data

    def batches_then_ctrl_c():
        yield X[:1000]
        yield X[1000:2000]
        raise KeyboardInterrupt

    sae = TopKSAE(64, K, batch_size=1000, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        sae.fit(batches_then_ctrl_c())
    assert sae.n_steps_ == 2 and sae.n_samples_seen_ == 2000
    assert sae.encode(X[:10]).shape == (10, 64)
    sae.partial_fit(X[2000:3000])  # and training goes on from there
    assert sae.n_steps_ == 3


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_save_load_round_trip(data, trained, tmp_path, suffix):
    X, _ = data
    path = tmp_path / f"sae{suffix}"
    trained.save(path)
    loaded = TopKSAE.load(path)
    np.testing.assert_array_equal(loaded.encode(X[:300]).toarray(), trained.encode(X[:300]).toarray())
    assert (loaded.n_latents, loaded.k, loaded.learning_rate) == (128, K, 3e-3)
    assert loaded.n_steps_ == trained.n_steps_
    if suffix == ".safetensors":
        safetensors_numpy = pytest.importorskip("safetensors.numpy")
        tensors = safetensors_numpy.load_file(str(path))
        np.testing.assert_array_equal(tensors["decoder"], trained.decoder_)
    loaded.partial_fit(X[:1024])  # training goes on from a file
    assert loaded.n_steps_ == trained.n_steps_ + 1


class TestBadInput:
    @pytest.mark.parametrize("kwargs,word", [
        ({"n_latents": 8, "k": 9}, "k"), ({"n_latents": 8, "k": 0}, "k"), ({"n_latents": 0, "k": 1}, "n_latents"),
        ({"n_latents": 8, "k": 2, "activation": "relu"}, "activation"),
        ({"n_latents": 8, "k": 2, "learning_rate": -1.0}, "learning_rate"),
        ({"n_latents": 8, "k": 2, "aux_coef": -1.0}, "aux_coef"),
        ({"n_latents": 8, "k": 2, "betas": (0.9, 1.0)}, "betas"),
    ])
    def test_bad_parameters(self, rng, kwargs, word):
        X = rng.standard_normal((50, 4)).astype(np.float32)
        with pytest.raises(ValueError, match=word):
            TopKSAE(**kwargs).fit(X)

    def test_bad_data(self, rng, trained, tmp_path):
        X = rng.standard_normal((50, N_FEATURES)).astype(np.float32)
        bad = X.copy()
        bad[3, 3] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            TopKSAE(16, 2).fit(bad)
        with pytest.raises(ValueError, match="NaN"):
            trained.encode(bad)
        with pytest.raises(ValueError, match="features"):
            trained.encode(X[:, :5])
        with pytest.raises(ValueError, match="codes must be"):
            trained.decode(np.zeros((2, 5), np.float32))
        with pytest.raises(RuntimeError, match="not fitted"):
            TopKSAE(16, 2).encode(X)
        with pytest.raises(ValueError, match="npz or .safetensors"):
            trained.save(tmp_path / "sae.pt")
        with pytest.raises(ValueError, match="no samples"):
            TopKSAE(16, 2).fit(iter([]))
        with pytest.raises(ValueError, match="features"):
            TopKSAE(2, 2, batch_size=10).fit(iter([X[10:20, :4], X[20:30, :5]]))
