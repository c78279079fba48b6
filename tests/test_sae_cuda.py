"""The CUDA TopK autoencoder kernels (latentcore._cuda.sae_*) against their
C++ twins (latentcore._core.sae_*) on fresh random codes: padded rows (index
-1), zero and negative values, k = 1, a batch of 1, feature counts that are not
multiples of a warp. Decode and Adam sum in the CPU's order (only fused
multiply-adds differ); the backward pass lands with atomicAdd in whatever order
the warps run, so it gets a looser tolerance. Skipped without cupy or without
a GPU."""

import numpy as np
import pytest

from latentcore import _core, _device

cp = pytest.importorskip("cupy")
pytestmark = pytest.mark.skipif(not _device.cuda_available(), reason="no CUDA device or no CUDA build")

# Each output element adds its row's k entries in j order on both devices.
DECODE_RTOL = 1e-5
DECODE_ATOL = 1e-5
# Up to a few hundred entries per latent summed in a run-dependent order.
BACKWARD_RTOL = 1e-4
BACKWARD_ATOL = 1e-4
# Elementwise: the same operations, rounding differs by fused multiply-adds.
ADAM_RTOL = 1e-5
ADAM_ATOL = 1e-6

# (batch, k, n_latents, n_features)
SHAPES = [
    (1, 1, 1, 1),
    (1, 1, 7, 33),
    (1, 16, 64, 768),
    (5, 1, 3, 32),
    (37, 3, 10, 31),
    (64, 8, 50, 100),
    (300, 32, 128, 257),  # k beyond a warp; features over several warps, not a multiple of 32
    (513, 300, 600, 65),  # k beyond a decode block's chunk of staged codes
    (1024, 32, 64, 5),    # hundreds of entries per latent: atomics collide
]


def cuda_module():
    return _device.require_cuda_module()


def stream():
    return cp.cuda.get_current_stream().ptr


def random_codes(rng, batch, k, n_latents, padded=0.1, zeros=0.1, negative=0.2):
    """TopK-like codes: k distinct latents per row, some entries padded with -1
    (their values left nonzero, so skipping depends on the index alone), some
    values zero and some negative, and one whole row padded."""
    index = np.argsort(rng.random((batch, n_latents)), axis=1)[:, :k].astype(np.int32)
    value = rng.uniform(0.1, 2.0, (batch, k)).astype(np.float32)
    u = rng.random((batch, k))
    value[u < negative] *= -1.0
    value[(u >= negative) & (u < negative + zeros)] = 0.0
    index[rng.random((batch, k)) < padded] = -1
    if batch > 2:
        index[batch // 2] = -1
    return np.ascontiguousarray(index), np.ascontiguousarray(value)


def random_decoder(rng, n_latents, n_features):
    """Unit-norm atoms, as a trained SAE keeps them."""
    decoder = rng.standard_normal((n_latents, n_features))
    decoder /= np.linalg.norm(decoder, axis=1, keepdims=True)
    return decoder.astype(np.float32)


def decode_both(index, value, decoder, bias, gpu_index=None):
    """(GPU out, CPU out); gpu_index, when given, replaces the GPU's codes."""
    batch, n_features = index.shape[0], decoder.shape[1]
    cpu = np.full((batch, n_features), np.nan, np.float32)  # every element must be written
    _core.sae_sparse_decode(index, value, decoder, bias, cpu, 0)
    out = cp.full((batch, n_features), cp.nan, dtype=cp.float32)
    cuda_module().sae_sparse_decode(cp.asarray(index if gpu_index is None else gpu_index), cp.asarray(value),
                                    cp.asarray(decoder), cp.asarray(bias), out, stream())
    return cp.asnumpy(out), cpu


def backward_inputs(rng, batch, n_latents, n_features):
    grad_out = (0.5 * rng.standard_normal((batch, n_features))).astype(np.float32)
    x_centered = rng.standard_normal((batch, n_features)).astype(np.float32)
    # Nonzero starting gradients: the kernels add into them.
    grads = (rng.standard_normal((n_latents, n_features)).astype(np.float32),
             rng.standard_normal((n_latents, n_features)).astype(np.float32),
             rng.standard_normal(n_latents).astype(np.float32))
    return grad_out, x_centered, grads


def backward_both(index, value, grad_out, x_centered, decoder, grads, gpu_index=None):
    """((GPU grad_decoder, grad_encoder, grad_encoder_bias), (the CPU's))."""
    cpu = tuple(g.copy() for g in grads)
    _core.sae_sparse_decode_backward(index, value, grad_out, x_centered, decoder, *cpu, 0)
    gpu = tuple(cp.asarray(g) for g in grads)
    cuda_module().sae_sparse_decode_backward(cp.asarray(index if gpu_index is None else gpu_index),
                                             cp.asarray(value), cp.asarray(grad_out), cp.asarray(x_centered),
                                             cp.asarray(decoder), *gpu, stream())
    return tuple(cp.asnumpy(g) for g in gpu), cpu


def decode_inputs(rng, batch, k, n_latents, n_features, with_bias):
    """Codes, a unit-norm decoder and a bias (empty: none) for the decoding tests."""
    index, value = random_codes(rng, batch, k, n_latents)
    decoder = random_decoder(rng, n_latents, n_features)
    bias = (0.1 * rng.standard_normal(n_features)).astype(np.float32) if with_bias else np.empty(0, np.float32)
    return index, value, decoder, bias


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("batch,k,n_latents,n_features", SHAPES)
def test_decode_equals_cpu(rng, batch, k, n_latents, n_features, with_bias):
    index, value, decoder, bias = decode_inputs(rng, batch, k, n_latents, n_features, with_bias)
    gpu, cpu = decode_both(index, value, decoder, bias)
    assert not np.isnan(gpu).any()
    np.testing.assert_allclose(gpu, cpu, rtol=DECODE_RTOL, atol=DECODE_ATOL)
    if batch > 2:  # the fully padded row is the bias alone
        np.testing.assert_array_equal(gpu[batch // 2], bias if with_bias else 0.0)


@pytest.mark.parametrize("batch,k,n_latents,n_features", SHAPES)
def test_backward_equals_cpu(rng, batch, k, n_latents, n_features):
    index, value = random_codes(rng, batch, k, n_latents)
    decoder = random_decoder(rng, n_latents, n_features)
    grad_out, x_centered, grads = backward_inputs(rng, batch, n_latents, n_features)
    gpu, cpu = backward_both(index, value, grad_out, x_centered, decoder, grads)
    for name, g, c in zip(("grad_decoder", "grad_encoder", "grad_encoder_bias"), gpu, cpu):
        np.testing.assert_allclose(g, c, rtol=BACKWARD_RTOL, atol=BACKWARD_ATOL, err_msg=name)


def test_backward_passes_no_encoder_gradient_where_value_is_not_positive(rng):
    """dpre = 0 where value <= 0: the encoder's gradients stay as they were
    (bit for bit), while the decoder still gets value * grad_out."""
    batch, k, n_latents, n_features = 200, 8, 40, 70
    index, value = random_codes(rng, batch, k, n_latents, padded=0.0, zeros=0.3, negative=1.0)
    assert (value <= 0).all() and (value < 0).any()
    decoder = random_decoder(rng, n_latents, n_features)
    grad_out, x_centered, grads = backward_inputs(rng, batch, n_latents, n_features)
    gpu, cpu = backward_both(index, value, grad_out, x_centered, decoder, grads)
    np.testing.assert_array_equal(gpu[1], grads[1])
    np.testing.assert_array_equal(gpu[2], grads[2])
    assert not np.array_equal(gpu[0], grads[0])
    np.testing.assert_allclose(gpu[0], cpu[0], rtol=BACKWARD_RTOL, atol=BACKWARD_ATOL)


def test_out_of_range_ids_are_skipped(rng):
    """The CUDA binding does not check ids (that would need a device copy):
    the kernels skip any id outside [0, n_latents), as if it were -1."""
    batch, k, n_latents, n_features = 50, 6, 20, 45
    index, value = random_codes(rng, batch, k, n_latents, zeros=0.0, negative=0.0)
    bad = index.copy()
    where = rng.random((batch, k)) < 0.3
    junk = np.array([n_latents, n_latents + 1, 1000, 2**31 - 1, -2, -(2**31)], np.int32)
    bad[where] = rng.choice(junk, where.sum())
    index[where] = -1
    with pytest.raises(ValueError):  # the CPU binding checks them
        _core.sae_sparse_decode(bad, value, random_decoder(rng, n_latents, n_features), np.empty(0, np.float32),
                                np.empty((batch, n_features), np.float32), 0)
    decoder = random_decoder(rng, n_latents, n_features)
    gpu, cpu = decode_both(index, value, decoder, np.empty(0, np.float32), gpu_index=bad)
    np.testing.assert_allclose(gpu, cpu, rtol=DECODE_RTOL, atol=DECODE_ATOL)
    grad_out, x_centered, grads = backward_inputs(rng, batch, n_latents, n_features)
    gpu, cpu = backward_both(index, value, grad_out, x_centered, decoder, grads, gpu_index=bad)
    for g, c in zip(gpu, cpu):
        np.testing.assert_allclose(g, c, rtol=BACKWARD_RTOL, atol=BACKWARD_ATOL)


def test_empty_inputs(rng):
    """No rows, or no codes per row: nothing to add; k = 0 still writes the bias."""
    n_latents, n_features = 4, 9
    decoder = random_decoder(rng, n_latents, n_features)
    bias = rng.standard_normal(n_features).astype(np.float32)
    for batch, k in [(0, 3), (3, 0)]:
        index = np.zeros((batch, k), np.int32)
        value = np.ones((batch, k), np.float32)
        gpu, cpu = decode_both(index, value, decoder, bias)
        assert gpu.shape == (batch, n_features)
        np.testing.assert_array_equal(gpu, cpu)
        grad_out, x_centered, grads = backward_inputs(rng, batch, n_latents, n_features)
        gpu, _ = backward_both(index, value, grad_out, x_centered, decoder, grads)
        for g, g0 in zip(gpu, grads):
            np.testing.assert_array_equal(g, g0)
    param = cp.zeros(0, cp.float32)
    cuda_module().sae_adam_update(param, param, param, param, 1e-3, 0.9, 0.999, 1e-8, 1, stream())


@pytest.mark.parametrize("step", [1, 2, 10, 1000])
@pytest.mark.parametrize("shape", [(1,), (31,), (33, 7), (100003,), (64, 257)])
def test_adam_equals_cpu(rng, shape, step):
    param = rng.standard_normal(shape).astype(np.float32)
    grad = rng.standard_normal(shape).astype(np.float32)
    if step > 1:  # moments of earlier steps
        first = (0.1 * rng.standard_normal(shape)).astype(np.float32)
        second = (0.1 * rng.random(shape)).astype(np.float32)
    else:
        first = np.zeros(shape, np.float32)
        second = np.zeros(shape, np.float32)
    hyper = (1e-3, 0.9, 0.999, 1e-8, step)
    cpu = [a.copy() for a in (param, first, second)]
    _core.sae_adam_update(cpu[0], grad, cpu[1], cpu[2], *hyper, 0)
    gpu = [cp.asarray(a) for a in (param, first, second)]
    cuda_module().sae_adam_update(gpu[0], cp.asarray(grad), gpu[1], gpu[2], *hyper, stream())
    for name, g, c in zip(("param", "first_moment", "second_moment"), gpu, cpu):
        np.testing.assert_allclose(cp.asnumpy(g), c, rtol=ADAM_RTOL, atol=ADAM_ATOL, err_msg=name)
    assert not np.array_equal(cpu[0], param)


def test_shape_errors_raise_value_error(rng):
    m = cuda_module()
    s = stream()
    batch, k, n_latents, n_features = 4, 2, 6, 5
    index = cp.zeros((batch, k), cp.int32)
    value = cp.ones((batch, k), cp.float32)
    decoder = cp.asarray(random_decoder(rng, n_latents, n_features))
    bias = cp.zeros(n_features, cp.float32)
    out = cp.zeros((batch, n_features), cp.float32)
    no_bias = cp.empty(0, cp.float32)

    def decode(**changes):
        args = dict(index=index, value=value, decoder=decoder, bias=bias, out=out)
        args.update(changes)
        m.sae_sparse_decode(args["index"], args["value"], args["decoder"], args["bias"], args["out"], s)

    decode()
    decode(bias=no_bias)
    for changes in [dict(value=cp.ones((batch, k + 1), cp.float32)),
                    dict(value=cp.ones((batch + 1, k), cp.float32)),
                    dict(out=cp.zeros((batch + 1, n_features), cp.float32)),
                    dict(out=cp.zeros((batch, n_features + 1), cp.float32)),
                    dict(bias=cp.zeros(n_features - 1, cp.float32))]:
        with pytest.raises(ValueError):
            decode(**changes)

    grad_out = cp.zeros((batch, n_features), cp.float32)
    x_centered = cp.zeros((batch, n_features), cp.float32)
    grad_decoder = cp.zeros((n_latents, n_features), cp.float32)
    grad_encoder = cp.zeros((n_latents, n_features), cp.float32)
    grad_encoder_bias = cp.zeros(n_latents, cp.float32)

    def backward(**changes):
        args = dict(index=index, value=value, grad_out=grad_out, x_centered=x_centered, decoder=decoder,
                    grad_decoder=grad_decoder, grad_encoder=grad_encoder, grad_encoder_bias=grad_encoder_bias)
        args.update(changes)
        m.sae_sparse_decode_backward(*args.values(), s)

    backward()
    for changes in [dict(value=cp.ones((batch, k + 1), cp.float32)),
                    dict(grad_out=cp.zeros((batch + 1, n_features), cp.float32)),
                    dict(x_centered=cp.zeros((batch, n_features - 1), cp.float32)),
                    dict(grad_decoder=cp.zeros((n_latents + 1, n_features), cp.float32)),
                    dict(grad_encoder=cp.zeros((n_latents, n_features + 1), cp.float32)),
                    dict(grad_encoder_bias=cp.zeros(n_latents - 1, cp.float32))]:
        with pytest.raises(ValueError):
            backward(**changes)

    p = cp.zeros(10, cp.float32)
    m.sae_adam_update(p, p.copy(), p.copy(), p.copy(), 1e-3, 0.9, 0.999, 1e-8, 1, s)
    for args in [(p, cp.zeros(9, cp.float32), p.copy(), p.copy(), 1),
                 (p, p.copy(), cp.zeros(11, cp.float32), p.copy(), 1),
                 (p, p.copy(), p.copy(), cp.zeros(9, cp.float32), 1),
                 (p, p.copy(), p.copy(), p.copy(), 0)]:
        with pytest.raises(ValueError):
            m.sae_adam_update(*args[:4], 1e-3, 0.9, 0.999, 1e-8, args[4], s)


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("batch,k,n_latents,n_features", SHAPES)
def test_decode_error_equals_cpu(rng, batch, k, n_latents, n_features, with_bias):
    index, value, decoder, bias = decode_inputs(rng, batch, k, n_latents, n_features, with_bias)
    target = rng.standard_normal((batch, n_features)).astype(np.float32)
    scale = 2.0 / max(1.0, float((target.astype(np.float64) ** 2).sum()))
    cpu = [np.full((batch, n_features), np.nan, np.float32), np.full((batch, n_features), np.nan, np.float32),
           np.full(batch, np.nan)]
    _core.sae_decode_error(index, value, decoder, bias, target, scale, *cpu, 0)
    gpu = [cp.asarray(a) for a in cpu]
    cuda_module().sae_decode_error(cp.asarray(index), cp.asarray(value), cp.asarray(decoder), cp.asarray(bias),
                                   cp.asarray(target), scale, *gpu, stream())
    for name, g, c in zip(("error", "grad_out", "sq_error"), gpu, cpu):
        g = cp.asnumpy(g)
        assert not np.isnan(g).any(), name
        np.testing.assert_allclose(g, c, rtol=DECODE_RTOL, atol=DECODE_ATOL * (scale if name == "grad_out" else 1),
                                   err_msg=name)


@pytest.mark.parametrize("step", [1, 3])
@pytest.mark.parametrize("batch,k,n_latents,n_features", SHAPES)
def test_update_latents_equals_cpu(rng, batch, k, n_latents, n_features, step):
    """The fused backward + tangent projection + Adam + renormalization, with
    AuxK codes: the same parameters, moments, norms and pre_bias share as
    the CPU's, to the atomics' summation order."""
    index, value = random_codes(rng, batch, k, n_latents)
    aux_index, aux_value = random_codes(rng, batch, min(2, n_latents), n_latents, negative=0.0)
    grad_out, x_centered, _ = backward_inputs(rng, batch, n_latents, n_features)
    aux_grad = (0.5 * rng.standard_normal((batch, n_features))).astype(np.float32)
    decoder = random_decoder(rng, n_latents, n_features)
    state = {"encoder": decoder + 0.1 * rng.standard_normal(decoder.shape).astype(np.float32),
             "encoder_first_moment": 0.01 * rng.standard_normal(decoder.shape),
             "encoder_second_moment": 0.01 * rng.random(decoder.shape),
             "encoder_bias": 0.1 * rng.standard_normal(n_latents),
             "encoder_bias_first_moment": 0.01 * rng.standard_normal(n_latents),
             "encoder_bias_second_moment": 0.01 * rng.random(n_latents),
             "decoder": decoder,
             "decoder_first_moment": 0.01 * rng.standard_normal(decoder.shape),
             "decoder_second_moment": 0.01 * rng.random(decoder.shape),
             "grad_pre_bias": np.full(n_features, np.nan), "norms": np.full(n_latents, np.nan)}
    if step == 1:
        for name in state:
            if "moment" in name:
                state[name] = np.zeros_like(state[name])
    state = {name: np.ascontiguousarray(v, np.float32) for name, v in state.items()}
    hyper = (1e-2, 0.9, 0.999, 1e-8, step)
    cpu = {name: v.copy() for name, v in state.items()}
    _core.sae_update_latents(index, value, grad_out, aux_index, aux_value, aux_grad, x_centered, *cpu.values(),
                             *hyper, 0)
    gpu = {name: cp.asarray(v) for name, v in state.items()}
    cuda_module().sae_update_latents(*(cp.asarray(a) for a in (index, value, grad_out, aux_index, aux_value,
                                                               aux_grad, x_centered)), *gpu.values(), *hyper,
                                     stream())
    for name in state:
        np.testing.assert_allclose(cp.asnumpy(gpu[name]), cpu[name], rtol=BACKWARD_RTOL, atol=BACKWARD_ATOL,
                                   err_msg=name)


def test_new_kernels_refuse_wrong_shapes(rng):
    m = cuda_module()
    s = stream()
    batch, k, n_latents, n_features = 4, 2, 6, 5
    f32 = lambda *shape: cp.zeros(shape, cp.float32)  # noqa: E731
    index = cp.zeros((batch, k), cp.int32)
    decoder = cp.asarray(random_decoder(rng, n_latents, n_features))

    def decode_error(**changes):
        args = dict(index=index, value=f32(batch, k), decoder=decoder, bias=f32(0), target=f32(batch, n_features),
                    scale=1.0, error=f32(batch, n_features), grad_out=f32(batch, n_features),
                    sq_error=cp.zeros(batch, cp.float64))
        args.update(changes)
        m.sae_decode_error(*args.values(), s)

    decode_error()
    shared = f32(batch, n_features)
    for changes in [dict(value=f32(batch, k + 1)), dict(bias=f32(n_features - 1)), dict(target=f32(batch + 1, n_features)),
                    dict(error=f32(batch, n_features + 1)), dict(grad_out=f32(batch - 1, n_features)),
                    dict(sq_error=cp.zeros(batch + 1, cp.float64)), dict(scale=float("nan")),
                    dict(target=shared, error=shared)]:
        with pytest.raises(ValueError):
            decode_error(**changes)

    def update(**changes):
        args = dict(index=index, value=f32(batch, k), grad_out=f32(batch, n_features),
                    aux_index=cp.zeros((batch, 1), cp.int32), aux_value=f32(batch, 1),
                    aux_grad_out=f32(batch, n_features), x_centered=f32(batch, n_features),
                    encoder=f32(n_latents, n_features), encoder_first_moment=f32(n_latents, n_features),
                    encoder_second_moment=f32(n_latents, n_features), encoder_bias=f32(n_latents),
                    encoder_bias_first_moment=f32(n_latents), encoder_bias_second_moment=f32(n_latents),
                    decoder=decoder.copy(), decoder_first_moment=f32(n_latents, n_features),
                    decoder_second_moment=f32(n_latents, n_features), grad_pre_bias=f32(n_features),
                    norms=f32(n_latents), learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, step=1)
        args.update(changes)
        m.sae_update_latents(*args.values(), s)

    update()
    for changes in [dict(value=f32(batch, k + 1)), dict(aux_value=f32(batch, 2)),
                    dict(aux_index=cp.zeros((batch + 1, 1), cp.int32), aux_value=f32(batch + 1, 1)),
                    dict(grad_out=f32(batch + 1, n_features)), dict(aux_grad_out=f32(batch, n_features + 1)),
                    dict(x_centered=f32(batch, n_features - 1)), dict(encoder=f32(n_latents + 1, n_features)),
                    dict(decoder_second_moment=f32(n_latents, n_features - 1)), dict(encoder_bias=f32(n_latents - 1)),
                    dict(encoder_bias_second_moment=f32(n_latents + 1)), dict(norms=f32(n_latents + 1)),
                    dict(grad_pre_bias=f32(n_features + 1)), dict(step=0)]:
        with pytest.raises(ValueError):
            update(**changes)


def test_wrong_dtype_or_device_raises_type_error(rng):
    m = cuda_module()
    index = np.zeros((2, 1), np.int32)
    value = np.ones((2, 1), np.float32)
    decoder = random_decoder(rng, 3, 4)
    with pytest.raises(TypeError):  # host arrays into the CUDA module
        m.sae_sparse_decode(index, value, decoder, np.empty(0, np.float32), np.zeros((2, 4), np.float32),
                            stream())
    with pytest.raises(TypeError):  # int64 ids
        m.sae_sparse_decode(cp.asarray(index, cp.int64), cp.asarray(value), cp.asarray(decoder),
                            cp.empty(0, cp.float32), cp.zeros((2, 4), cp.float32), stream())


# ---------------------------------------------------------------- end to end
def planted_signals(rng, n=4096, d=32, n_atoms=64, k=4):
    D = rng.standard_normal((n_atoms, d))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    codes = np.zeros((n, n_atoms))
    rows = np.repeat(np.arange(n), k)
    codes[rows, np.argsort(rng.random((n, n_atoms)), axis=1)[:, :k].ravel()] = rng.uniform(1.0, 2.0, n * k)
    return (codes @ D).astype(np.float32), D.astype(np.float32)


def test_topk_sae_trains_on_the_gpu_as_on_the_cpu():
    from latentcore import TopKSAE

    X, _ = planted_signals(np.random.default_rng(11))
    kwargs = dict(batch_size=1024, shuffle=False, random_state=0, learning_rate=1e-3, dead_after=512)
    cpu = TopKSAE(128, 4, **kwargs).fit(X)
    gpu = TopKSAE(128, 4, **kwargs).fit(cp.asarray(X))
    # Four steps from the same start, AuxK included: only summation order differs.
    np.testing.assert_allclose(gpu.decoder_, cpu.decoder_, atol=1e-4)
    np.testing.assert_allclose(gpu.history_["fvu"], cpu.history_["fvu"], rtol=1e-4)
    codes_gpu = gpu.encode(cp.asarray(X[:500]))
    codes_cpu = gpu.encode(X[:500])
    np.testing.assert_allclose(codes_gpu.get().toarray(), codes_cpu.toarray(), atol=1e-4)
    np.testing.assert_allclose(gpu.decode(codes_gpu).get(), gpu.decode(codes_cpu), atol=1e-4)


def test_batchtopk_sae_on_the_gpu_keeps_k_on_average():
    from latentcore import TopKSAE

    X, _ = planted_signals(np.random.default_rng(12))
    sae = TopKSAE(128, 4, activation="batchtopk", batch_size=1024, n_epochs=3, random_state=0).fit(cp.asarray(X))
    assert np.all(np.abs(np.array(sae.history_["l0"]) - 4) < 0.05)


@pytest.mark.parametrize("method,kwargs", [("topk", {"n_nonzero": 5}), ("topk", {"n_nonzero": 5, "positive": True}),
                                           ("omp", {"n_nonzero": 5}), ("lasso", {"alpha": 0.01})])
def test_sparse_encode_of_gpu_signals_equals_the_cpu(method, kwargs):
    from latentcore import sparse_encode

    rng = np.random.default_rng(13)
    X, D = planted_signals(rng, n=700)
    X -= X.mean(axis=0)  # signed correlations
    gpu = sparse_encode(cp.asarray(X), D, method=method, **kwargs)
    cpu = sparse_encode(X, D, method=method, **kwargs)
    assert type(gpu).__module__.startswith("cupyx")
    np.testing.assert_allclose(gpu.get().toarray(), cpu.toarray(), atol=1e-4)
