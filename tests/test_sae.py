"""TopK sparse autoencoder: one step against PyTorch autograd, planted atoms, data sources, files."""

import numpy as np
import pytest
from conftest import assert_interruptible

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


def _dense_codes(index, values, m):
    """Codes (batch, k) as a dense (batch, m) float64 matrix, duplicate ids summed."""
    dense = np.zeros((index.shape[0], m))
    rows = np.repeat(np.arange(index.shape[0]), index.shape[1])
    keep = index.ravel() >= 0
    np.add.at(dense, (rows[keep], index.ravel()[keep]), values.ravel()[keep])
    return dense


def test_decode_error_equals_the_definition_for_any_thread_count(rng):
    batch, k, m, d = 300, 6, 80, 19
    index = rng.integers(-1, m, (batch, k)).astype(np.int32)
    values = rng.standard_normal((batch, k)).astype(np.float32)
    values[rng.random((batch, k)) < 0.1] = 0.0
    decoder, target = (rng.standard_normal(s).astype(np.float32) for s in ((m, d), (batch, d)))
    bias = rng.standard_normal(d).astype(np.float32)
    for with_bias, scale in ((True, 3e-3), (False, 1e40)):  # 1e40: beyond float32, as for data near 1e-20
        target_ = target * np.float32(1e-21) if scale > 1e30 else target
        decoder_ = decoder * np.float32(1e-21) if scale > 1e30 else decoder
        results = []
        for threads in (1, 2):
            out = [np.empty((batch, d), np.float32), np.empty((batch, d), np.float32), np.empty(batch)]
            _core.sae_decode_error(index, values, decoder_, bias if with_bias else bias[:0], target_, scale, *out,
                                   threads)
            results.append(out)
        for a, b in zip(*results):
            np.testing.assert_array_equal(a, b)
        error, grad, sq = results[0]
        expected = _dense_codes(index, values, m) @ decoder_.astype(np.float64) - target_
        if with_bias:
            expected += bias
        np.testing.assert_allclose(error, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
        np.testing.assert_allclose(sq, (error.astype(np.float64) ** 2).sum(axis=1), rtol=1e-12)
        # grad_out is error * scale rounded once: within half an ulp of the exact product.
        np.testing.assert_allclose(grad, error.astype(np.float64) * scale, rtol=6e-8)
        assert np.isfinite(grad).all()
        if scale > 1e30:
            assert np.abs(grad).max() > 1e10


def _reference_update(codes, x_centered, params, moments, hyper, step):
    """One fused update in float64 numpy: the gradients of sparse_decode_backward
    from each set of codes (index, values, grad_out), the decoder gradient's
    tangent projection, dense Adam on every row, the decoder renormalized.
    Returns the pre-encoder-bias part sum_l grad_encoder_bias[l] * encoder[l]."""
    lr, b1, b2, eps = hyper
    m = params["decoder"].shape[0]
    grads = {name: np.zeros_like(params[name]) for name in ("encoder", "encoder_bias", "decoder")}
    for index, values, grad_out in codes:
        dense = _dense_codes(index, values, m)
        grads["decoder"] += dense.T @ grad_out
        dpre = np.where(dense > 0, grad_out @ params["decoder"].T, 0.0)
        grads["encoder"] += dpre.T @ x_centered
        grads["encoder_bias"] += dpre.sum(axis=0)
    part = grads["encoder_bias"] @ params["encoder"]
    dec = params["decoder"]
    grads["decoder"] -= (grads["decoder"] * dec).sum(axis=1, keepdims=True) * dec
    for name, g in grads.items():
        first, second = moments[name]
        first *= b1
        first += (1 - b1) * g
        second *= b2
        second += (1 - b2) * g * g
        params[name] -= lr / (1 - b1**step) * first / (np.sqrt(second) / np.sqrt(1 - b2**step) + eps)
    norms = np.linalg.norm(params["decoder"], axis=1)
    params["decoder"] /= norms[:, None]
    return part, norms


def test_fused_update_equals_dense_adam_over_steps_with_untouched_latents(rng):
    """sae_update_latents over five steps against a float64 numpy reference of
    the unfused step (gradients, tangent projection, dense Adam over every
    row, renormalization), with AuxK codes and latents that no code touches
    for several steps: Adam still moves those (their moments decay, the step
    is not zero), and the fused pass must move them exactly as dense Adam.
    The same result, bit for bit, on 1 and 2 threads."""
    batch, k, k_aux, m, d = 40, 3, 2, 150, 13
    hyper = (1e-2, 0.9, 0.999, 1e-6)
    decoder = rng.standard_normal((m, d))
    decoder /= np.linalg.norm(decoder, axis=1, keepdims=True)
    start = {"encoder": decoder + 0.1 * rng.standard_normal((m, d)), "decoder": decoder,
             "encoder_bias": 0.1 * rng.standard_normal(m)}
    ref = {name: v.copy() for name, v in start.items()}
    ref_moments = {name: (np.zeros_like(v), np.zeros_like(v)) for name, v in start.items()}
    def distinct(low, high, count):  # ids in [low, high), distinct in each row (as a top-k selects them)
        return (low + np.argsort(rng.random((batch, high - low)), axis=1)[:, :count]).astype(np.int32)

    runs = []
    for threads in (1, 2):
        params = {name: v.astype(np.float32) for name, v in start.items()}
        moments = {name: (np.zeros_like(v), np.zeros_like(v)) for name, v in params.items()}
        runs.append((threads, params, moments))
    for step in range(1, 6):
        # Latents 0-29 are used by no code in steps 2-4; 30-39 only by AuxK codes.
        low = 0 if step in (1, 5) else 40
        index = distinct(low, m, k)
        index[rng.random((batch, k)) < 0.1] = -1
        values = rng.uniform(-0.2, 1.0, (batch, k)).astype(np.float32)  # some negative: no encoder gradient
        aux_index = distinct(30, 40, k_aux) if step > 1 else np.empty((batch, 0), np.int32)
        aux_values = rng.uniform(0.0, 1.0, aux_index.shape).astype(np.float32)
        grad_out, aux_grad, x_centered = (rng.standard_normal((batch, d)).astype(np.float32) for _ in range(3))
        part_ref, norms_ref = _reference_update([(index, values, grad_out), (aux_index, aux_values, aux_grad)],
                                                x_centered, ref, ref_moments, hyper, step)
        outputs = []
        for threads, params, moments in runs:
            part, norms = np.empty(d, np.float32), np.empty(m, np.float32)
            _core.sae_update_latents(index, values, grad_out, aux_index, aux_values, aux_grad, x_centered,
                                     params["encoder"], *moments["encoder"], params["encoder_bias"],
                                     *moments["encoder_bias"], params["decoder"], *moments["decoder"], part, norms,
                                     *hyper, step, threads)
            outputs.append((part, norms))
        for a, b in zip(outputs[0], outputs[1]):
            np.testing.assert_array_equal(a, b)
        for name in start:
            np.testing.assert_array_equal(runs[0][1][name], runs[1][1][name])
            for a, b in zip(runs[0][2][name], runs[1][2][name]):
                np.testing.assert_array_equal(a, b)
        part, norms = outputs[0]
        np.testing.assert_allclose(part, part_ref, rtol=1e-4, atol=1e-5, err_msg=f"step {step}")
        np.testing.assert_allclose(norms, norms_ref, rtol=1e-5)
        params, moments = runs[0][1], runs[0][2]
        for name in start:
            np.testing.assert_allclose(params[name], ref[name], rtol=1e-4, atol=2e-5, err_msg=f"{name} step {step}")
            for got, want in zip(moments[name], ref_moments[name]):
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7, err_msg=f"{name} moments step {step}")
        if step == 1:  # latents 0-29 that step 1 gave an encoder gradient
            had_gradient = np.flatnonzero(np.abs(moments["encoder"][0][:30]).max(axis=1) > 0)
            assert had_gradient.size >= 10
        if step == 4:  # untouched since step 1, yet moved by this step's Adam
            moved = np.abs(params["encoder"][had_gradient] - previous[had_gradient]).max(axis=1)
            assert (moved > 1e-5).all()
        previous = params["encoder"].copy()
    np.testing.assert_allclose(np.linalg.norm(runs[0][1]["decoder"], axis=1), 1.0, rtol=1e-6)


def test_profile_script_accounts_for_the_whole_step():
    """bench/profile_sae.py (the private phase hook of latentcore.sae): every
    phase of a step appears in its table and their shares add up to the step."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, str(root / "bench" / "profile_sae.py"), "--dims", "16", "--latents", "64",
                          "--k", "4", "--batch", "256", "--threads", "1", "--steps", "2", "--atoms", "32",
                          "--planted-k", "3", "--split-repeats", "1"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line.split("|")[1:-1] for line in out.stdout.splitlines() if line.startswith("| ") and "%" in line]
    phases = {row[0].split(":")[0].strip(): float(row[2].strip().rstrip("%")) for row in rows}
    assert {"encode", "decode + loss", "update", "prepare", "centre"} <= set(phases)
    assert abs(sum(phases.values()) - 100.0) < 0.5
    from latentcore import sae
    assert sae._phase_hook is None  # off by default


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


# ----------------------------------------------------------------------------- issue 12: adversarial input


_SMALL_MODEL = '''
import json, sys
from pathlib import Path
import numpy as np
from latentcore import TopKSAE

tmp = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__import__("tempfile").mkdtemp())
rng = np.random.default_rng(0)
X = rng.standard_normal((200, 16)).astype(np.float32)
sae = TopKSAE(64, 4, batch_size=64, random_state=0, n_jobs=2).fit(X)
expected = sae.encode(X).toarray()
'''


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_a_crafted_file_whose_metadata_disagrees_with_its_tensors_is_refused(suffix):
    """The issue's reproduction: n_latents 64 -> 4 in the metadata once gave
    codes with column ids beyond their width, and toarray() corrupted the heap."""
    from conftest import run_isolated

    result = run_isolated(_SMALL_MODEL + f'''
suffix = {suffix!r}
path = tmp / ("crafted" + suffix)
sae.save(path)
if suffix == ".npz":
    with np.load(path) as archive:
        arrays = {{key: archive[key] for key in archive.files}}
    meta = json.loads(str(arrays["metadata"]))
    meta["params"]["n_latents"] = 4
    arrays["metadata"] = np.array(json.dumps(meta))
    with open(path, "wb") as f:
        np.savez(f, **arrays)
else:
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + size])
    meta = json.loads(header["__metadata__"]["latentcore"])
    meta["params"]["n_latents"] = 4
    header["__metadata__"]["latentcore"] = json.dumps(meta)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + size:])
try:
    TopKSAE.load(path).encode(X).toarray()
except ValueError as exc:
    assert str(path) in str(exc) and "n_latents=4" in str(exc), str(exc)
    print("refused")
''')
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "refused", result.stdout


def test_changed_hyper_parameters_of_a_fitted_model_never_index_past_its_tensors():
    from conftest import run_isolated

    result = run_isolated(_SMALL_MODEL + '''
for name, value in (("n_latents", 4), ("k", 65), ("k", 0), ("batch_size", 0), ("activation", "relu")):
    saved = getattr(sae, name)
    setattr(sae, name, value)
    calls = {"encode": lambda: sae.encode(X).toarray(), "partial_fit": lambda: sae.partial_fit(X)}
    if name == "n_latents":  # decode reads no other hyper-parameter
        calls["decode"] = lambda: sae.decode(np.zeros((2, 64), np.float32))
    for call_name, call in calls.items():
        try:
            call()
        except (ValueError, TypeError) as exc:
            assert name in str(exc), (name, str(exc))
            print("refused", name, call_name)
        else:
            print("ACCEPTED", name, value, call_name)
    setattr(sae, name, saved)
assert np.array_equal(sae.encode(X).toarray(), expected)
''')
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ACCEPTED" not in result.stdout and result.stdout.count("refused") == 11, result.stdout


def test_load_turns_every_damage_into_a_value_error_naming_the_file():
    """Byte-mutation fuzzing: flipped, overwritten and truncated copies of a
    saved model (fixed seeds), all loaded in one process, each either a
    working model or a ValueError / OSError naming the file."""
    from conftest import run_isolated

    result = run_isolated(_SMALL_MODEL + '''
outcomes = {}
for suffix in (".npz", ".safetensors"):
    original = tmp / ("model" + suffix)
    sae.save(original)
    raw = original.read_bytes()
    mutants = np.random.default_rng(12 if suffix == ".npz" else 13)
    for m in range(110):
        data = bytearray(raw)
        kind = ("flip", "overwrite", "truncate", "header")[m % 4]
        if kind == "flip":
            for _ in range(mutants.integers(1, 4)):
                i = int(mutants.integers(len(data)))
                data[i] ^= 1 << int(mutants.integers(8))
        elif kind == "overwrite":
            i = int(mutants.integers(len(data)))
            data[i:i + 8] = mutants.integers(0, 256, 8, dtype=np.uint8).tobytes()
        elif kind == "truncate":
            data = data[:int(mutants.integers(len(data)))]
        else:  # the header and metadata, where most structure lives
            region = 600 if suffix == ".safetensors" else len(data)
            i = int(mutants.integers(min(region, len(data))))
            data[i] = int(mutants.integers(256))
        path = tmp / f"mutant{m}{suffix}"
        path.write_bytes(bytes(data))
        try:
            model = TopKSAE.load(path)
            codes = model.encode(X[:20, :model.pre_bias_.shape[0]] if model.pre_bias_.shape[0] <= 16
                                 else np.zeros((20, model.pre_bias_.shape[0]), np.float32))
            assert codes.shape == (20, model.decoder_.shape[0]) and np.isfinite(codes.data).all()
            assert model.decoder_.shape == model.encoder_.shape and model.k <= model.decoder_.shape[0]
            outcome = "loaded"
        except (ValueError, OSError) as exc:
            outcome = type(exc).__name__ if str(path) in str(exc) else "UNNAMED " + repr(exc)[:300]
        except Exception as exc:
            outcome = "LEAKED " + repr(exc)[:300]
        outcomes.setdefault(suffix, []).append(outcome)
print(json.dumps(outcomes))
''', timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    outcomes = json.loads(result.stdout.strip().splitlines()[-1])
    for suffix, seen in outcomes.items():
        assert len(seen) == 110
        bad = [o for o in seen if o not in ("loaded", "ValueError", "OSError")]
        assert not bad, f"{suffix}: {bad[:5]}"
        assert seen.count("ValueError") >= 30, (suffix, seen)  # the mutations did damage


def test_load_of_missing_or_foreign_files(tmp_path, trained):
    with pytest.raises(FileNotFoundError):
        TopKSAE.load(tmp_path / "absent.npz")
    with pytest.raises(ValueError, match="npz or .safetensors"):
        TopKSAE.load(tmp_path / "model.pt")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="other.npz.*metadata"):
        TopKSAE.load(tmp_path / "other.npz")
    (tmp_path / "empty.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.safetensors"):
        TopKSAE.load(tmp_path / "empty.safetensors")
    # A NaN in a tensor, a negative counter, a tensor in float64: refused.
    path = tmp_path / "model.npz"
    trained.save(path)
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    import json

    for name, edit in (("encoder", lambda a: a["encoder"].__setitem__((0, 0), np.nan)),
                       ("n_steps", lambda a: a.update(metadata=np.array(json.dumps(
                           {**json.loads(str(a["metadata"])), "n_steps": -1})))),
                       ("pre_bias", lambda a: a.update(pre_bias=a["pre_bias"].astype(np.float64))),
                       ("learning_rate", lambda a: a.update(metadata=np.array(json.dumps(
                           {**json.loads(str(a["metadata"])),
                            "params": {**json.loads(str(a["metadata"]))["params"], "learning_rate": -1}}))))):
        copy = {key: value.copy() for key, value in arrays.items()}
        edit(copy)
        np.savez(tmp_path / "bad.npz", **copy)
        with pytest.raises(ValueError, match=name) as info:
            TopKSAE.load(tmp_path / "bad.npz")
        assert "bad.npz" in str(info.value)


def test_numeric_hyper_parameters_accept_numpy_scalars_and_round_trip(rng, tmp_path):
    X = rng.standard_normal((300, 8)).astype(np.float32)
    kwargs = dict(batch_size=np.int64(100), learning_rate=np.float32(1e-3), betas=(np.float32(0.9), 0.999),
                  eps=np.float64(1e-8), aux_coef=np.float32(0.5), k_aux=np.int32(3), dead_after=np.int64(50),
                  random_state=np.int64(0), n_jobs=1)
    sae = TopKSAE(np.int64(32), np.int32(3), **kwargs).fit(X)
    plain = TopKSAE(32, 3, batch_size=100, learning_rate=float(np.float32(1e-3)), betas=(float(np.float32(0.9)), 0.999),
                    eps=1e-8, aux_coef=0.5, k_aux=3, dead_after=50, random_state=0, n_jobs=1).fit(X)
    np.testing.assert_array_equal(sae.decoder_, plain.decoder_)
    sae.save(tmp_path / "m.safetensors")
    loaded = TopKSAE.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(loaded.encode(X).toarray(), sae.encode(X).toarray())


@pytest.mark.parametrize("kwargs,error,word", [
    (dict(learning_rate=float("nan")), ValueError, "learning_rate"), (dict(learning_rate=0.0), ValueError, "learning_rate"),
    (dict(learning_rate="fast"), TypeError, "learning_rate"), (dict(eps=0.0), ValueError, "eps"),
    (dict(eps=float("inf")), ValueError, "eps"), (dict(aux_coef=float("inf")), ValueError, "aux_coef"),
    (dict(betas=(0.9,)), ValueError, "betas"), (dict(betas=("a", 0.9)), ValueError, "betas"),
    (dict(betas=(float("nan"), 0.9)), ValueError, "betas"), (dict(betas=0.9), ValueError, "betas"),
    (dict(k_aux=0), ValueError, "k_aux"), (dict(dead_after=0), ValueError, "dead_after"),
    (dict(dead_after=1.5), TypeError, "dead_after"), (dict(batch_size=0), ValueError, "batch_size"),
    (dict(n_epochs=0), ValueError, "n_epochs"), (dict(n_jobs=0), ValueError, "n_jobs"),
    (dict(n_latents=2**31), ValueError, "n_latents"), (dict(k=2.0), TypeError, "k"),
])
def test_bad_hyper_parameters_name_the_argument(rng, kwargs, error, word):
    X = rng.standard_normal((20, 4)).astype(np.float32)
    kwargs = {"n_latents": 8, "k": 2, **kwargs}
    with pytest.raises(error, match=word):
        TopKSAE(**kwargs).fit(X)


def test_k_at_its_bounds_one_sample_and_one_feature(rng):
    for n_latents, k, shape in ((8, 8, (50, 4)), (8, 1, (50, 4)), (1, 1, (10, 3)), (16, 4, (1, 5)), (16, 4, (30, 1))):
        X = rng.standard_normal(shape).astype(np.float32)
        for activation in ("topk", "batchtopk"):
            sae = TopKSAE(n_latents, k, activation=activation, batch_size=16, n_epochs=2, random_state=0).fit(X)
            assert np.isfinite(sae.history_["fvu"]).all() and np.isfinite(sae.decoder_).all()
            codes = sae.encode(X)
            assert codes.shape == (shape[0], n_latents) and np.isfinite(codes.data).all()
            assert (np.diff(codes.indptr) <= (k if activation == "topk" else 4 * k)).all()
            assert sae.decode(codes).shape == shape
    with pytest.raises(ValueError, match="k=9"):
        TopKSAE(8, 9).fit(rng.standard_normal((5, 2)).astype(np.float32))


def test_encoding_at_extreme_scales_is_right_or_a_clear_error(rng, trained):
    """Pre-activations that overflow float32 were inf or NaN in the TopK
    selection (NaN is never selected: a silent wrong code); now a ValueError.
    Large finite ones are encoded exactly as the definition says."""
    X = rng.standard_normal((50, N_FEATURES)).astype(np.float32)
    # Along the signs of latent 0's encoder row: its pre-activation is 3e38 * |row|_1 > 3.4e38.
    with pytest.raises(ValueError, match="overflow float32"):
        trained.encode(np.sign(trained.encoder_[:1]) * np.float32(3e38) + trained.pre_bias_)
    big = X * np.float32(1e30)
    pre = (big.astype(np.float64) - trained.pre_bias_) @ trained.encoder_.T.astype(np.float64) + trained.encoder_bias_
    codes = trained.encode(big).toarray()
    top = np.argsort(-pre, axis=1)[:, :K]
    expected = np.zeros_like(pre)
    np.put_along_axis(expected, top, np.maximum(np.take_along_axis(pre, top, 1), 0), 1)
    np.testing.assert_allclose(codes, expected, rtol=1e-4)
    model = TopKSAE.__new__(TopKSAE)
    model.__dict__.update(trained.__dict__)
    model.encoder_ = trained.encoder_.copy()
    model.encoder_[3, 0] = np.nan
    with pytest.raises(ValueError, match="overflow float32"):
        model.encode(X)
    with pytest.raises(ValueError, match="codes"):
        trained.decode(np.full((1, 128), np.nan, np.float32))
    with pytest.raises(ValueError, match="overflow float32"):
        trained.decode(np.full((1, 128), 3e38, np.float32))


@pytest.mark.parametrize("scale", [1e20, 1e-20])
def test_training_on_data_of_any_finite_scale_has_finite_losses(scale):
    """Its sums of squares once overflowed (or vanished) in float32: the FVU
    read 0 or NaN, the gradient was 0."""
    X, _ = planted(np.random.default_rng(1), 2000)
    kwargs = dict(batch_size=250, n_epochs=2, random_state=0, n_jobs=2)
    reference = TopKSAE(64, K, **kwargs).fit(X)
    sae = TopKSAE(64, K, **kwargs).fit((X.astype(np.float64) * scale).astype(np.float32))
    fvu = np.array(sae.history_["fvu"])
    assert np.isfinite(fvu).all() and (fvu > 0).all()
    np.testing.assert_allclose(fvu[0], reference.history_["fvu"][0], rtol=1e-3)  # the same start, same loss
    assert np.isfinite(sae.encode(X * np.float32(scale)).data).all()
    # Finite data whose pre-activations overflow float32: a clear error, not NaN.
    signs = np.sign(np.random.default_rng(2).standard_normal((8, N_FEATURES))).astype(np.float32)
    with pytest.raises(ValueError, match="overflow float32"):
        TopKSAE(64, K, **kwargs).fit(np.vstack([signs, -signs]) * np.float32(3e38))
    # Subnormal data: the loss's gradient does not fit in float32 either.
    with pytest.raises(ValueError, match="rescale X"):
        TopKSAE(64, K, **kwargs).fit((X.astype(np.float64) * 1e-44).astype(np.float32))


def test_batches_of_changing_width_or_dtype_are_refused_naming_x(rng):
    X = rng.standard_normal((30, 6)).astype(np.float32)
    for chunks, error in (([X[:10], X[10:20, :5]], ValueError), ([X[:10], X[10:20].astype(np.int64)], TypeError),
                          ([X[:10], X[10:20, 0]], ValueError)):
        with pytest.raises(error, match="X"):
            TopKSAE(8, 2, batch_size=4).fit(iter(chunks))
        model = TopKSAE(8, 2, batch_size=4).fit(X)
        with pytest.raises(error, match="X"):
            model.partial_fit(iter(chunks))
    with pytest.raises(ValueError, match="X must be a 2-D array"):  # ragged rows
        TopKSAE(8, 2).fit([[1.0, 2.0], [3.0]])


def test_sae_bindings_check_every_size():
    """Whatever Python hands the autoencoder's bindings: a ValueError, never
    an access outside the arrays."""
    from conftest import assert_calls_refused

    output = assert_calls_refused('''
x, W, b = f32(3, 4), f32(5, 4), f32(5)
ids = i32(3, 2)
f64 = lambda *s: np.zeros(s, np.float64)
e = f32(3, 4)


def update(**changed):
    args = dict(index=ids, value=f32(3, 2), grad_out=x, aux_index=i32(3, 1), aux_value=f32(3, 1), aux_grad_out=x,
                x_centered=x, encoder=f32(5, 4), encoder_first_moment=f32(5, 4), encoder_second_moment=f32(5, 4),
                encoder_bias=f32(5), encoder_bias_first_moment=f32(5), encoder_bias_second_moment=f32(5),
                decoder=W.copy() + 1, decoder_first_moment=f32(5, 4), decoder_second_moment=f32(5, 4),
                grad_pre_bias=f32(4), norms=f32(5), learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, step=1,
                n_threads=1)
    args.update(changed)
    return _core.sae_update_latents(**args)


update()  # the arguments above are right: each call below changes one
calls = {
    "encode weight width": lambda: _core.sae_topk_encode(x, f32(5, 3), b, g, f32(3, 2), i32(3, 2), 1),
    "encode bias": lambda: _core.sae_topk_encode(x, W, f32(4), g, f32(3, 2), i32(3, 2), 1),
    "encode k > n_latents": lambda: _core.sae_topk_encode(x, W, b, g, f32(3, 6), i32(3, 6), 1),
    "encode k = 0": lambda: _core.sae_topk_encode(x, W, b, g, f32(3, 0), i32(3, 0), 1),
    "encode index shape": lambda: _core.sae_topk_encode(x, W, b, g, f32(3, 2), i32(3, 3), 1),
    "encode rows": lambda: _core.sae_topk_encode(x, W, b, g, f32(2, 2), i32(2, 2), 1),
    "encode no features": lambda: _core.sae_topk_encode(f32(3, 0), f32(5, 0), b, g, f32(3, 2), i32(3, 2), 1),
    "encode NaN bias": lambda: _core.sae_topk_encode(x, W, np.full(5, np.nan, np.float32), g, f32(3, 2), i32(3, 2), 1),
    "encode NaN weight": lambda: _core.sae_topk_encode(x + 1, np.full((5, 4), np.nan, np.float32), b, g, f32(3, 2), i32(3, 2), 1),
    "decode id": lambda: _core.sae_sparse_decode(np.full((3, 2), 5, np.int32), f32(3, 2), W, b[:0], f32(3, 4), 1),
    "decode id -2": lambda: _core.sae_sparse_decode(np.full((3, 2), -2, np.int32), f32(3, 2), W, b[:0], f32(3, 4), 1),
    "decode values": lambda: _core.sae_sparse_decode(ids, f32(3, 3), W, b[:0], f32(3, 4), 1),
    "decode out": lambda: _core.sae_sparse_decode(ids, f32(3, 2), W, b[:0], f32(3, 5), 1),
    "decode bias": lambda: _core.sae_sparse_decode(ids, f32(3, 2), W, f32(3), f32(3, 4), 1),
    "backward id": lambda: _core.sae_sparse_decode_backward(np.full((3, 2), 7, np.int32), f32(3, 2), x, x, W, f32(5, 4), f32(5, 4), f32(5), 1),
    "backward grad_out": lambda: _core.sae_sparse_decode_backward(ids, f32(3, 2), f32(2, 4), x, W, f32(5, 4), f32(5, 4), f32(5), 1),
    "backward x_centered": lambda: _core.sae_sparse_decode_backward(ids, f32(3, 2), x, f32(3, 3), W, f32(5, 4), f32(5, 4), f32(5), 1),
    "backward grad_decoder": lambda: _core.sae_sparse_decode_backward(ids, f32(3, 2), x, x, W, f32(4, 4), f32(5, 4), f32(5), 1),
    "backward grad_encoder": lambda: _core.sae_sparse_decode_backward(ids, f32(3, 2), x, x, W, f32(5, 4), f32(5, 3), f32(5), 1),
    "backward bias": lambda: _core.sae_sparse_decode_backward(ids, f32(3, 2), x, x, W, f32(5, 4), f32(5, 4), f32(4), 1),
    "adam grad": lambda: _core.sae_adam_update(f32(10), f32(9), f32(10), f32(10), 1e-3, 0.9, 0.999, 1e-8, 1, 1),
    "adam moment": lambda: _core.sae_adam_update(f32(10), f32(10), f32(10), f32(11), 1e-3, 0.9, 0.999, 1e-8, 1, 1),
    "adam step": lambda: _core.sae_adam_update(f32(10), f32(10), f32(10), f32(10), 1e-3, 0.9, 0.999, 1e-8, 0, 1),
    "decode_error id": lambda: _core.sae_decode_error(np.full((3, 2), 5, np.int32), f32(3, 2), W, b[:0], x, 1.0, f32(3, 4), f32(3, 4), f64(3), 1),
    "decode_error values": lambda: _core.sae_decode_error(ids, f32(3, 3), W, b[:0], x, 1.0, f32(3, 4), f32(3, 4), f64(3), 1),
    "decode_error bias": lambda: _core.sae_decode_error(ids, f32(3, 2), W, f32(3), x, 1.0, f32(3, 4), f32(3, 4), f64(3), 1),
    "decode_error target": lambda: _core.sae_decode_error(ids, f32(3, 2), W, b[:0], f32(2, 4), 1.0, f32(3, 4), f32(3, 4), f64(3), 1),
    "decode_error error": lambda: _core.sae_decode_error(ids, f32(3, 2), W, b[:0], x, 1.0, f32(3, 5), f32(3, 4), f64(3), 1),
    "decode_error grad_out": lambda: _core.sae_decode_error(ids, f32(3, 2), W, b[:0], x, 1.0, f32(3, 4), f32(2, 4), f64(3), 1),
    "decode_error sq_error": lambda: _core.sae_decode_error(ids, f32(3, 2), W, b[:0], x, 1.0, f32(3, 4), f32(3, 4), f64(2), 1),
    "decode_error scale": lambda: _core.sae_decode_error(ids, f32(3, 2), W, b[:0], x, float("inf"), f32(3, 4), f32(3, 4), f64(3), 1),
    "decode_error aliasing": lambda: _core.sae_decode_error(ids, f32(3, 2), W, b[:0], e, 1.0, e, f32(3, 4), f64(3), 1),
    "update id": lambda: update(index=np.full((3, 2), 5, np.int32)),
    "update id -2": lambda: update(index=np.full((3, 2), -2, np.int32)),
    "update aux id": lambda: update(aux_index=np.full((3, 1), 5, np.int32)),
    "update values": lambda: update(value=f32(3, 1)),
    "update aux values": lambda: update(aux_value=f32(3, 2)),
    "update aux rows": lambda: update(aux_index=i32(2, 1), aux_value=f32(2, 1)),
    "update grad_out": lambda: update(grad_out=f32(2, 4)),
    "update aux_grad_out": lambda: update(aux_grad_out=f32(3, 3)),
    "update x_centered": lambda: update(x_centered=f32(3, 5)),
    "update encoder": lambda: update(encoder=f32(4, 4)),
    "update moment": lambda: update(decoder_second_moment=f32(5, 3)),
    "update bias": lambda: update(encoder_bias=f32(4)),
    "update bias moment": lambda: update(encoder_bias_first_moment=f32(6)),
    "update norms": lambda: update(norms=f32(4)),
    "update grad_pre_bias": lambda: update(grad_pre_bias=f32(5)),
    "update step": lambda: update(step=0),
}
''')
    assert output.count("refused") == 48, output


def test_ctrl_c_stops_fit_and_encode(rng):
    X = rng.standard_normal((200_000, 64)).astype(np.float32)
    model = TopKSAE(4096, 32, batch_size=1024, n_jobs=2, random_state=0)
    assert_interruptible(lambda: model.fit(X))
    # The steps taken before Ctrl-C are kept, and the model is whole.
    assert model.n_steps_ >= 1 and np.isfinite(model.decoder_).all()
    np.testing.assert_allclose(np.linalg.norm(model.decoder_, axis=1), 1.0, atol=1e-5)
    assert_interruptible(lambda: model.encode(X))


def test_a_missing_or_damaged_npy_path_as_x_is_a_value_error_naming_it(tmp_path, rng):
    good = tmp_path / "X.npy"
    np.save(good, rng.standard_normal((40, 4)).astype(np.float32))
    raw = bytearray(good.read_bytes())
    raw[20] ^= 0x40  # inside the header's dict: numpy's parser fails on it
    (tmp_path / "bad.npy").write_bytes(bytes(raw))
    for path in (tmp_path / "absent.npy", tmp_path / "bad.npy"):
        with pytest.raises(ValueError, match=path.name) as info:
            TopKSAE(8, 2, batch_size=10).fit(path)
        assert "X" in str(info.value)
    assert TopKSAE(8, 2, batch_size=10).fit(good).n_steps_ == 4
