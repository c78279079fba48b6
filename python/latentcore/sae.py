"""TopK sparse autoencoders (Gao et al. 2024), trained on the CPU or a GPU.

An autoencoder with ``n_latents`` latents of which only the ``k`` largest
pre-activations fire per sample. The encoder's GEMM runs in BLAS (cuBLAS on
the GPU), tile by tile, each tile's pre-activations selected from while in
cache (the top-k is the selection k-NN uses); everything after it is sparse:
the decoder reads only the k chosen rows of its matrix, fused with the loss's
gradient, and one pass over the latents builds each latent's gradient rows in
a buffer from its entries and applies the decoder's tangent projection, Adam
and the renormalization at once, so no (n_latents, n_features) gradient is
ever stored (C++ in ``cpp/src/sae.cpp``, CUDA in ``cuda/sae.cu``). A plain
PyTorch TopK SAE spends three of its four GEMMs on that sparse part.

Every latent takes its Adam step every step, also with a zero gradient (its
moments decay and it still moves): a "lazy" Adam that skipped those rows
would be a different optimizer unless it replayed the skipped steps, and
every latent fires in nearly every batch at the sizes SAEs train at (4096
samples x k entries over the latents), so there is nothing to skip.
"""

from __future__ import annotations

import errno
import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin

from . import _backend, _device
from ._progress import Progress
from ._validation import (DEVICE, N_JOBS, RANDOM_STATE, VERBOSE, Boolean, Choice, Integer, Options, Pair, Real,
                          check_fitted, check_matrix, check_number, check_params, dense_input, host_array_like,
                          record_features)
from .io import atomic_write, read_matrix, write_npz_atomic
from .knn import largest_products
from .sparse import _check_codes, rows_to_csr

__all__ = ["TopKSAE"]

# BatchTopK keeps per sample at most this many times k latents: the batch's
# threshold is exact unless one sample has more than that above it.
_BATCHTOPK_ROW_CAP = 4
# Parameters and optimizer state, in the order they are saved.
_PARAMETERS = ("encoder", "encoder_bias", "decoder", "pre_bias")
# The kernels take int sizes.
_INT32_MAX = 2**31 - 1
_FLOAT32_MAX = float(np.finfo(np.float32).max)
# What the C++ encoder reports when a pre-activation is not finite.
_OVERFLOW = "pre-activations overflow float32"
#: A private profiling hook (bench/profile_sae.py): None, or a callable that a
#: training step calls with each phase's name as the phase ends.
_phase_hook = None


def _no_mark(phase: str) -> None:
    pass


def _overflow_error(training: bool) -> ValueError:
    fix = ("rescale X (e.g. divide it by its largest absolute value), or lower learning_rate if the training "
           "diverged" if training else "rescale X, e.g. divide it by its largest absolute value")
    return ValueError(f"the pre-activations (X - pre_bias) @ encoder.T + encoder_bias overflow float32 "
                      f"(NaN or infinite); {fix}")


def _sum_of_squares(a, xp, centered: bool = False) -> float:
    """sum(a^2), or with centered the sum of squared deviations from the mean
    row, in float64: squares of finite float32 values overflow float32 beyond
    1.8e19, and deviations beyond 1.7e38."""
    a = a.astype(xp.float64)
    if centered:
        a -= a.mean(axis=0)
    a = a.ravel()
    return float(a @ a)


def _largest(device: _device.Device, x, weight, bias, k: int, training: bool):
    """The k largest of x @ weight.T + bias per row, descending, as
    (values, index); a ValueError when a pre-activation is not finite."""
    try:
        values, index = largest_products(x, weight, k, device, bias=bias)
    except ValueError as exc:
        if _OVERFLOW in str(exc):
            raise _overflow_error(training) from None
        raise
    # The GPU selection is shared with k-NN: the values it kept are checked here.
    if device.is_gpu and (not bool(device.xp.isfinite(values).all()) or not bool(device.xp.isfinite(x).all())):
        raise _overflow_error(training)
    return values, index


def _decode_error(device: _device.Device, index, values, decoder, bias, target, scale: float, buffers):
    """The sparse decoder's forward pass fused with the loss's gradient
    (``sae_decode_error``): (error, grad_out, sq_error) with error =
    decode(codes) + bias - target, grad_out = error * scale and sq_error each
    row's sum of squared errors (float64); the arrays are reused from step to
    step."""
    xp = device.xp
    n, d = target.shape
    error, grad_out = buffers("error", (n, d)), buffers("grad_out", (n, d))
    sq_error = buffers("sq_error", (n,), xp.float64)
    bias = xp.empty(0, xp.float32) if bias is None else bias
    device.call("sae_decode_error", index, values, decoder, bias, target, scale, error, grad_out, sq_error)
    return error, grad_out, sq_error


def _gradient_fits(grad_out, sq_error, scale: float, xp) -> bool:
    """Whether grad_out = error * scale came out finite in float32: surely
    when the largest error (at most the root of a row's sum of squares)
    times scale fits, else checked."""
    if not sq_error.size or math.sqrt(float(sq_error.max())) * scale < _FLOAT32_MAX / 2:
        return True
    return bool(xp.isfinite(grad_out).all())


class TopKSAE(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """TopK sparse autoencoder: ``n_latents`` directions, ``k`` active per sample.

    encode: ``z = TopK(ReLU-kept)(W_enc (x - b_pre) + b_enc)``; decode:
    ``x_hat = z @ W_dec + b_pre``, with unit-norm decoder rows (Gao et al.
    2024). Trained with Adam on the squared error normalized by the batch's
    variance (so the loss is the fraction of variance unexplained), plus the
    AuxK loss: the ``k_aux`` largest pre-activations among dead latents are
    asked to reconstruct the residual, which revives them.

    Parameters
    ----------
    n_latents : int
        Number of latents (dictionary atoms), typically 4-64x n_features.
    k : int
        Latents active per sample (``activation="topk"``), or on average
        (``"batchtopk"``).
    activation : {"topk", "batchtopk"}, default "topk"
        "topk": each sample keeps its k largest pre-activations. "batchtopk"
        (Bussmann et al. 2024): a batch keeps its k * batch largest, so
        samples share a budget (at most 4k each); encoding after training
        keeps the pre-activations above ``threshold_``, the running mean of
        the batches' cut-offs.
    batch_size : int, default 4096
        Samples per Adam step.
    n_epochs : int, default 1
        Passes over an array given to ``fit`` (an iterable is read once).
    learning_rate : float, optional
        Adam's step; default 2e-4 / sqrt(n_latents / 2^14), the scaling of
        Gao et al.
    betas, eps : Adam's moment decays and denominator guard.
    k_aux : int, optional
        Dead latents used by the AuxK loss; default n_features // 2.
    aux_coef : float, default 1/32
        Weight of the AuxK loss; 0 turns it off.
    dead_after : int, optional
        A latent that has not fired in this many training samples is dead;
        default 1000 * n_latents / k (a live latent fires about 1000 times
        in that span).
    shuffle : bool, default True
        Visit an array's samples in a random order each epoch (a memory-
        mapped array: its batches, in a random order).
    random_state : int, numpy Generator or None
        Seeds the initialization and the shuffling.
    n_jobs : int, optional
        CPU threads (kernels and BLAS); None or -1: all cores.
    verbose : bool or int, default False
        A tqdm bar with FVU, mean L0 and the dead fraction.
    device : {"cpu", "cuda"}, optional
        Where to train; default where the first data lives (cupy or a CUDA
        torch tensor: the GPU).

    Attributes
    ----------
    encoder_ : float32 array (n_latents, n_features)
    encoder_bias_ : float32 array (n_latents,)
    decoder_ : float32 array (n_latents, n_features)
        Unit-norm rows: the learnt dictionary (also ``components_``).
    pre_bias_ : float32 array (n_features,)
        Subtracted before encoding, added back after decoding.
    threshold_ : float
        BatchTopK's inference cut-off (0 for "topk").
    n_features_in_ : int
        Columns of X (with ``feature_names_in_`` for a pandas DataFrame with
        string column names).
    n_samples_seen_, n_steps_ : int
    history_ : dict of float arrays
        Per step: "samples" seen, "fvu", "l0" (mean active latents) and
        "dead" (fraction of dead latents).

    Examples
    --------
    >>> import numpy as np, latentcore
    >>> X = np.random.default_rng(0).standard_normal((2000, 32)).astype(np.float32)
    >>> sae = latentcore.TopKSAE(128, 4, batch_size=256, n_epochs=2, random_state=0).fit(X)
    >>> codes = sae.encode(X)                      # csr_array (2000, 128), 4 per row
    >>> X_hat = sae.decode(codes)                  # (2000, 32)
    """

    def __init__(self, n_latents: int, k: int, *, activation: str = "topk", batch_size: int = 4096,
                 n_epochs: int = 1, learning_rate: float | None = None, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, k_aux: int | None = None, aux_coef: float = 1 / 32,
                 dead_after: int | None = None, shuffle: bool = True, random_state=None,
                 n_jobs: int | None = None, verbose: bool = False, device: str | None = None):
        self.n_latents = n_latents
        self.k = k
        self.activation = activation
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.learning_rate = learning_rate
        self.betas = betas
        self.eps = eps
        self.k_aux = k_aux
        self.aux_coef = aux_coef
        self.dead_after = dead_after
        self.shuffle = shuffle
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.device = device

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any = None) -> "TopKSAE":
        """Trains from scratch.

        Parameters
        ----------
        X : array (n_samples, n_features), path to a .npy file, or iterable of arrays
            numpy (a ``np.memmap`` or ``np.load(..., mmap_mode="r")`` array is
            read batch by batch), cupy, torch or a pandas DataFrame (its
            column names become ``feature_names_in_``); a path is memory-mapped; an
            iterable (e.g. a generator of activation batches, torch tensors
            included) is read once, its chunks regrouped into ``batch_size``.

        Interrupting (Ctrl-C) stops within a second and keeps the model
        trained so far, fitted attributes included (a step interrupted while
        it updates the parameters keeps the part of its update already made).
        """
        for name in ("encoder_", "n_samples_seen_"):
            self.__dict__.pop(name, None)
        self._check_params()
        record_features(self, dense_input(X), reset=True)
        source = _as_source(host_array_like(X))
        epochs = self.n_epochs if isinstance(source, np.ndarray) or _device.is_cupy(source) else 1
        rng = np.random.default_rng(self.random_state)
        self._train(source, epochs, rng, shuffle=self.shuffle)
        self.n_features_in_ = self.encoder_.shape[1]  # also for an iterable or a path
        return self

    def partial_fit(self, X: Any, y: Any = None) -> "TopKSAE":
        """One pass over X (an array or an iterable of arrays), in order,
        continuing the training (initializing on the first call)."""
        self._check_params()
        if hasattr(self, "encoder_"):
            self._check_fitted_shapes()
        record_features(self, dense_input(X), reset=not hasattr(self, "encoder_"))
        self._train(_as_source(host_array_like(X)), 1, np.random.default_rng(self.random_state), shuffle=False)
        self.n_features_in_ = self.encoder_.shape[1]
        return self

    _parameter_specs = {
        "n_latents": Integer(high=_INT32_MAX),
        "k": Integer(),
        "activation": Choice("topk", "batchtopk"),
        "batch_size": Integer(),
        "n_epochs": Integer(),
        "learning_rate": Options(None, Real(low=0.0, low_inclusive=False)),
        "betas": Pair(Real(low=0.0, high=1.0, high_inclusive=False), "Adam's moment decays, each in [0, 1)"),
        "eps": Real(low=0.0, low_inclusive=False),
        "k_aux": Options(None, Integer()),
        "aux_coef": Real(low=0.0),
        "dead_after": Options(None, Integer()),
        "shuffle": Boolean(),
        "random_state": RANDOM_STATE,
        "n_jobs": N_JOBS,
        "verbose": VERBOSE,
        "device": DEVICE,
    }

    def _check_params(self) -> None:
        """Every hyper-parameter (the table, then k <= n_latents), each
        error naming its argument."""
        check_params(self)
        if self.k > self.n_latents:
            raise ValueError(f"k={self.k} exceeds n_latents={self.n_latents}")

    @property
    def _n_features_out(self) -> int:
        return self.encoder_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # codes are float32 whatever X is
        return tags

    def _check_fitted_shapes(self) -> tuple[int, int]:
        """(n_latents, n_features) of the fitted parameters, checked against
        each other and against the hyper-parameters that index them."""
        encoder, decoder = self.encoder_, self.decoder_
        if encoder.ndim != 2 or decoder.shape != encoder.shape or self.encoder_bias_.shape != encoder.shape[:1] \
                or self.pre_bias_.shape != encoder.shape[1:]:
            raise ValueError("the fitted parameters disagree in shape: encoder_ and decoder_ must be "
                             "(n_latents, n_features), encoder_bias_ (n_latents,) and pre_bias_ (n_features,)")
        n_latents = encoder.shape[0]
        if self.n_latents != n_latents:
            raise ValueError(f"n_latents={self.n_latents} but the fitted parameters have {n_latents} latents")
        if self.k > n_latents:
            raise ValueError(f"k={self.k} exceeds the {n_latents} latents")
        return encoder.shape

    def _train(self, source, epochs: int, rng: np.random.Generator, shuffle: bool) -> None:
        device = None
        progress = Progress(_n_rows(source, epochs), self.verbose, "TopK SAE", "sample")
        try:
            with _backend.single_threaded_blas():
                for batch in _batches(source, self.batch_size, epochs, rng, shuffle):
                    mark = _phase_hook or _no_mark
                    mark("batch")
                    if device is None:
                        device = self._start(batch, rng)
                    x = self._prepare(batch, device)
                    mark("prepare")
                    fvu, l0, dead = self._step(x, device)
                    progress.update(x.shape[0], fvu=f"{fvu:.4f}", l0=f"{l0:.1f}", dead=f"{dead:.3f}")
                    mark("progress")
        finally:
            progress.close()
            if device is not None:
                self._publish(device)
        if device is None and not hasattr(self, "encoder_"):
            raise ValueError("X holds no samples")

    def _start(self, batch, rng: np.random.Generator) -> _device.Device:
        device = _device.get(self.device, self.n_jobs, where=_device.locate(batch))
        if self.k > device.max_k:
            raise ValueError(f"k={self.k} exceeds the {device.max_k} latents a sample may keep on the GPU")
        if not hasattr(self, "encoder_"):
            self._initialize(check_matrix(_device.to_host(batch), "X"), rng)
        # Training runs on copies on the device; _publish hands them back.
        self._state = {name: device.put(getattr(self, name + "_").copy()) for name in _PARAMETERS}
        self._moments = {name: tuple(device.put(m) for m in pair) for name, pair in self._saved_moments.items()}
        self._last_fired = device.put(self._last_fired)
        self._buffers = {}
        self._updating = False
        return device

    def _buffer(self, name: str, shape: tuple[int, ...], device: _device.Device, dtype=None):
        """A scratch array (float32 by default) reused from step to step: a
        fresh one each step would cost its page faults every time."""
        dtype = device.xp.float32 if dtype is None else dtype
        array = self._buffers.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = self._buffers[name] = device.xp.empty(shape, dtype)
        return array

    def _initialize(self, x: np.ndarray, rng: np.random.Generator) -> None:
        """Random unit-norm decoder rows, the encoder tied to them, the
        pre-encoder bias at the first batch's mean."""
        decoder = rng.standard_normal((self.n_latents, x.shape[1])).astype(np.float32)
        decoder /= np.linalg.norm(decoder, axis=1, keepdims=True)
        self.encoder_, self.decoder_ = decoder.copy(), decoder
        self.encoder_bias_ = np.zeros(self.n_latents, np.float32)
        # Summed in float64: a float32 sum of large finite values overflows.
        self.pre_bias_ = x.mean(axis=0, dtype=np.float64).astype(np.float32)
        self.n_samples_seen_ = 0
        self.n_steps_ = 0
        self.threshold_ = 0.0
        self._fresh_optimizer()

    def _fresh_optimizer(self) -> None:
        """Zero Adam moments, every latent counted as just fired, an empty history."""
        # np.zeros, not zeros_like: the pages come zeroed from the system when
        # first written (the first step writes them all), not written twice.
        self._saved_moments = {name: tuple(np.zeros(getattr(self, name + "_").shape, np.float32) for _ in range(2))
                               for name in _PARAMETERS}
        self._last_fired = np.full(self.encoder_.shape[0], self.n_samples_seen_, np.int64)
        self.history_ = {"samples": [], "fvu": [], "l0": [], "dead": []}

    def _prepare(self, batch, device: _device.Device):
        x = check_matrix(_device.place(batch, device), "X", xp=device.xp)
        if x.shape[1] != self._state["decoder"].shape[1]:
            raise ValueError(f"X has {x.shape[1]} features but the autoencoder was built for "
                             f"{self._state['decoder'].shape[1]}")
        return x

    def _select(self, x_centered, encoder, encoder_bias, k: int, device: _device.Device, training: bool):
        """ReLU'd top-k (or batch top-k) codes as (values, index, cut), index
        -1 padding; cut is the batch's BatchTopK cut-off when training
        (else None), for the caller to fold into threshold_."""
        xp = device.xp
        cut = None
        if self.activation == "topk":
            values, index = _largest(device, x_centered, encoder, encoder_bias, k, training)
        else:
            cap = min(encoder.shape[0], _BATCHTOPK_ROW_CAP * k, device.max_k)
            values, index = _largest(device, x_centered, encoder, encoder_bias, cap, training)
            if training:
                budget = min(k * x_centered.shape[0], values.size)
                cut = float(xp.partition(values.ravel(), values.size - budget)[values.size - budget])
                cut = max(cut, 0.0)
                values = xp.where(values >= cut, values, 0.0).astype(xp.float32)
            else:
                values = xp.where(values > self.threshold_, values, 0.0).astype(xp.float32)
        return (*_kept(values, index, xp), cut)

    def _step(self, x, device: _device.Device) -> tuple[float, float, float]:
        """One Adam step. Nothing of the model changes before its update
        phase (the counters, then one fused pass of Adam over the latents and
        one over pre_bias), so an error or an interrupt before it leaves the
        model as the previous step left it."""
        xp, state = device.xp, self._state
        n, n_features = x.shape
        mark = _phase_hook or _no_mark
        buffers = lambda name, shape, dtype=None: self._buffer(name, shape, device, dtype)  # noqa: E731
        x_centered = xp.subtract(x, state["pre_bias"], out=buffers("x_centered", x.shape))
        mark("centre")
        values, index, cut = self._select(x_centered, state["encoder"], state["encoder_bias"], self.k, device, True)
        mark("encode")
        # Sums of squares in float64: in float32 they overflow for data beyond ~1e19.
        total = _sum_of_squares(x, xp, centered=True) or 1.0
        scale = 2.0 / total
        error, grad_out, sq_error = _decode_error(device, index, values, state["decoder"], state["pre_bias"], x,
                                                  scale, buffers)
        fvu = float(sq_error.sum()) / total
        if not math.isfinite(fvu):
            raise _overflow_error(True)
        if not _gradient_fits(grad_out, sq_error, scale, xp):
            raise ValueError(f"X varies too little for float32 training (its sum of squared deviations is "
                             f"{total:.3g}): rescale X, e.g. multiply it by 1e20")
        mark("decode + loss")

        seen = self.n_samples_seen_ + n
        last_fired = self._last_fired.copy()
        last_fired[index[index >= 0]] = seen
        dead = seen - last_fired > self._dead_after()
        dead_ids = xp.flatnonzero(dead).astype(xp.int32)
        mark("dead latents")
        aux = None
        if self.aux_coef > 0 and dead_ids.size:
            aux = self._auxk(x_centered, error, dead_ids, device, buffers)
        if aux is None:  # no AuxK entries: empty codes (the gradient rows are not read)
            aux = (xp.empty((n, 0), xp.int32), xp.empty((n, 0), xp.float32), grad_out)
        grad_pre_bias = grad_out.sum(axis=0)
        mark("auxk")

        # The update phase.
        self._updating = True
        self.n_samples_seen_ = seen
        self._last_fired = last_fired
        if cut is not None:  # the running mean of the cut-offs is the inference threshold
            self.threshold_ += (cut - self.threshold_) / (self.n_steps_ + 1)
        self.n_steps_ += 1
        adam = (self._learning_rate(), self.betas[0], self.betas[1], self.eps, self.n_steps_)
        moments = self._moments
        encoder_part = buffers("encoder_part", (n_features,))
        norms = buffers("norms", (state["decoder"].shape[0],))
        # Per latent: its gradients from its entries, the decoder row's tangent
        # projection, Adam on both rows and the bias, the renormalization.
        device.call("sae_update_latents", index, values, grad_out, *aux, x_centered, state["encoder"],
                    *moments["encoder"], state["encoder_bias"], *moments["encoder_bias"], state["decoder"],
                    *moments["decoder"], encoder_part, norms, *adam)
        grad_pre_bias -= encoder_part
        device.call("sae_adam_update", state["pre_bias"], grad_pre_bias, *moments["pre_bias"], *adam)
        self._updating = False
        if not bool(xp.isfinite(norms).all()) or not bool((norms > 0).all()):
            raise ValueError(f"the training diverged at step {self.n_steps_} (non-finite or zero decoder rows); "
                             "lower learning_rate, or rescale X")
        mark("update")

        l0 = float((values > 0).sum()) / n
        dead_fraction = float(dead.sum()) / dead.size
        for key, value in zip(("samples", "fvu", "l0", "dead"), (self.n_samples_seen_, fvu, l0, dead_fraction)):
            self.history_[key].append(value)
        mark("history")
        return fvu, l0, dead_fraction

    def _auxk(self, x_centered, error, dead_ids, device: _device.Device, buffers):
        """AuxK: the dead latents' top k_aux reconstruct the residual -error
        (its squared error normalized by the residual's variance, times
        aux_coef). Its entries (index, values, grad_out) for the update,
        or None when the residual is too small for float32 gradients."""
        xp, state = device.xp, self._state
        k_aux = min(self.k_aux or max(1, x_centered.shape[1] // 2), int(dead_ids.size), device.max_k)
        values, local = _largest(device, x_centered, xp.ascontiguousarray(state["encoder"][dead_ids]),
                                 xp.ascontiguousarray(state["encoder_bias"][dead_ids]), k_aux, True)
        values, index = _kept(values, dead_ids[local], xp)
        residual = xp.negative(error, out=buffers("residual", error.shape))
        # The residual's centered sum of squares is error's (the sign changes nothing).
        scale = 2.0 * self.aux_coef / (_sum_of_squares(error, xp, centered=True) or 1.0)
        aux_buffers = lambda name, shape, dtype=None: buffers("aux " + name, shape, dtype)  # noqa: E731
        _, grad_aux, sq_error = _decode_error(device, index, values, state["decoder"], None, residual, scale,
                                              aux_buffers)
        if not _gradient_fits(grad_aux, sq_error, scale, xp):
            return None
        return index, values, grad_aux

    def _dead_after(self) -> int:
        return self.dead_after or 1000 * self.n_latents // self.k

    def _learning_rate(self) -> float:
        return self.learning_rate or 2e-4 / np.sqrt(self.n_latents / 2**14)

    def _publish(self, device: _device.Device) -> None:
        """Fitted attributes on the host; the optimizer state kept for partial_fit."""
        if self._updating:  # interrupted inside Adam: the decoder rows were not renormalized yet
            decoder = self._state["decoder"]
            norms = device.xp.linalg.norm(decoder, axis=1, keepdims=True)
            decoder /= device.xp.where(norms > 0, norms, 1.0)
        host = {name: device.get(value) for name, value in self._state.items()}
        for name, value in host.items():
            setattr(self, name + "_", value)
        self._saved_moments = {name: tuple(device.get(m) for m in pair) for name, pair in self._moments.items()}
        self._last_fired = device.get(self._last_fired)
        del self._state, self._moments, self._buffers, self._updating
        self.history_ = {key: list(values) for key, values in self.history_.items()}

    @property
    def components_(self) -> np.ndarray:
        """The decoder's unit-norm rows (n_latents, n_features): the dictionary."""
        return self._fitted().decoder_

    def _fitted(self) -> "TopKSAE":
        check_fitted(self, "encoder_", "fit, partial_fit or load")
        return self

    # -------------------------------------------------------------- encode
    def encode(self, X: Any):
        """Sparse codes of X (n, n_features): csr_array (n, n_latents), float32.

        numpy and CPU torch input give a ``scipy.sparse.csr_array``; cupy (or
        a CUDA torch tensor) runs on the GPU and gives a ``cupyx`` csr_matrix.
        A ValueError when X is so large that its pre-activations overflow
        float32. Ctrl-C stops within a second.
        """
        self._fitted()
        n_latents, n_features = self._check_fitted_shapes()
        check_params(self, ("k", "batch_size", "activation"))
        batch_size = int(self.batch_size)
        record_features(self, dense_input(X), reset=False)
        X = host_array_like(X)  # a pandas DataFrame: its values
        x, device, _ = _device.prepare(X, None, self.n_jobs)
        if x.shape[1] != n_features:
            raise ValueError(f"X has {x.shape[1]} features but the autoencoder has {n_features}")
        params = {name: device.put(getattr(self, name + "_")) for name in _PARAMETERS}
        blocks = []
        with _backend.single_threaded_blas():
            for first in range(0, x.shape[0], batch_size):
                x_centered = x[first:first + batch_size] - params["pre_bias"]
                values, index, _ = self._select(x_centered, params["encoder"], params["encoder_bias"], self.k,
                                                device, False)
                blocks.append(rows_to_csr(index, values, None, n_latents, device))
        return device.vstack(blocks)

    transform = encode

    def fit_transform(self, X: Any, y: Any = None):
        return self.fit(X).encode(X)

    def decode(self, codes: Any):
        """Signals rebuilt from codes (n, n_latents), dense or sparse: (n, n_features), float32.

        cupy / cupyx codes decode on the GPU and come back as cupy."""
        self._fitted()
        n_latents, _ = self._check_fitted_shapes()
        codes, origin = _device.unwrap(codes)
        if getattr(codes, "ndim", None) != 2 or codes.shape[1] != n_latents:
            raise ValueError(f"codes must be (n, {n_latents}), got shape {tuple(getattr(codes, 'shape', ()))}")
        if origin.device == "cuda":
            device = _device.gpu()
            out = (codes @ device.put(self.decoder_) + device.put(self.pre_bias_)).astype(device.xp.float32)
            if not bool(device.xp.isfinite(out).all()):
                raise ValueError("codes must be finite, and small enough that the signals fit in float32")
            return origin.give_back(out)
        codes = _check_codes(codes, n_latents)
        out = np.asarray(codes @ self.decoder_.astype(np.float64) + self.pre_bias_, dtype=np.float64)
        if out.size and not (np.abs(out).max() <= _FLOAT32_MAX):
            raise ValueError("the signals decoded from these codes overflow float32; the codes are too large")
        return out.astype(np.float32)

    inverse_transform = decode

    # ---------------------------------------------------------- save / load
    def save(self, path: str | os.PathLike) -> None:
        """Writes the parameters, the hyper-parameters and the training counters
        atomically to ``.npz`` or ``.safetensors`` (readable by the
        ``safetensors`` package: tensors encoder, encoder_bias, decoder,
        pre_bias, the rest in its metadata)."""
        self._fitted()
        path = Path(path)
        tensors = {name: np.ascontiguousarray(getattr(self, name + "_"), np.float32) for name in _PARAMETERS}
        meta = {"format": _FORMAT, "params": _json_params(self),
                "threshold": self.threshold_, "n_samples_seen": self.n_samples_seen_, "n_steps": self.n_steps_}
        if path.suffix == ".npz":
            write_npz_atomic(path, **tensors, metadata=np.array(json.dumps(meta)))
        elif path.suffix == ".safetensors":
            _write_safetensors(path, tensors, {"latentcore": json.dumps(meta)})
        else:
            raise ValueError(f"save writes .npz or .safetensors, got {path.name!r}")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TopKSAE":
        """An autoencoder written by :meth:`save`, ready to encode and decode
        (``partial_fit`` continues with fresh Adam moments).

        Every tensor's dtype and shape is checked against the metadata and
        the others, and every value and hyper-parameter is checked, before
        anything is built: a damaged or crafted file raises ValueError naming
        it (OSError when it cannot be opened)."""
        path = Path(path)
        if path.suffix not in (".npz", ".safetensors"):
            raise ValueError(f"load reads .npz or .safetensors, got {path.name!r}")
        with open(path, "rb") as f:  # a missing or unreadable file: OSError naming it
            try:
                size = os.fstat(f.fileno()).st_size
                tensors, meta = _read_npz(f, size) if path.suffix == ".npz" else _read_safetensors_file(f, size)
                return cls._from_file_parts(tensors, meta)
            except MemoryError:  # sizes are checked against the file first: a genuine lack of memory
                raise
            except OSError as exc:
                if exc.errno not in (None, errno.EINVAL):  # the system's answer about the file (EIO, ...)
                    raise OSError(exc.errno, f"cannot read {path}: {exc.strerror or exc}") from exc
                raise ValueError(f"{path} is not a valid TopKSAE file: {exc}") from None
            except Exception as exc:  # noqa: BLE001 -- every other failure is a damaged file
                raise ValueError(f"{path} is not a valid TopKSAE file: {exc}") from None

    @classmethod
    def _from_file_parts(cls, tensors: dict, meta: Any) -> "TopKSAE":
        if not isinstance(meta, dict):
            raise ValueError("its metadata is not a JSON object")
        if meta.get("format", _FORMAT) != _FORMAT:
            raise ValueError(f"its format is {meta.get('format')!r}, not {_FORMAT!r}")
        params = meta.get("params")
        if not isinstance(params, dict) or "n_latents" not in params or "k" not in params:
            raise ValueError("its metadata has no hyper-parameters (params with n_latents and k)")
        unknown = set(params) - set(_LOADED_PARAMS)
        if unknown:
            raise ValueError(f"unknown hyper-parameters {sorted(unknown)}")
        params = dict(params)
        if isinstance(params.get("betas"), list):
            params["betas"] = tuple(params["betas"])
        random_state = params.get("random_state")
        if random_state is not None and (isinstance(random_state, bool) or not isinstance(random_state, int)
                                         or random_state < 0):
            raise ValueError(f"random_state must be null or an int >= 0, got {random_state!r}")
        for name in ("shuffle",):  # verbose may be an int (a level), as scikit-learn's
            if not isinstance(params.get(name, False), bool):
                raise ValueError(f"{name} must be true or false, got {params[name]!r}")
        sae = cls(params.pop("n_latents"), params.pop("k"), **params)
        sae._check_params()
        n_latents = sae.n_latents
        encoder = tensors["encoder"]
        if encoder.ndim != 2 or encoder.shape[0] != n_latents or encoder.shape[1] < 1:
            raise ValueError(f"tensor encoder has shape {encoder.shape}, not (n_latents={n_latents}, n_features)")
        n_features = encoder.shape[1]
        expected = {"encoder": (n_latents, n_features), "decoder": (n_latents, n_features),
                    "encoder_bias": (n_latents,), "pre_bias": (n_features,)}
        for name, shape in expected.items():
            tensor = tensors[name]
            if tensor.dtype != np.float32:
                raise ValueError(f"tensor {name} has dtype {tensor.dtype}, not float32")
            if tensor.shape != shape:
                raise ValueError(f"tensor {name} has shape {tensor.shape}, not {shape} (n_latents={n_latents}, "
                                 f"n_features={n_features})")
            if not np.isfinite(tensor).all():
                raise ValueError(f"tensor {name} holds NaN or infinite values")
        for name in _PARAMETERS:
            setattr(sae, name + "_", np.ascontiguousarray(tensors[name], np.float32))
        sae.n_features_in_ = n_features
        sae.threshold_ = check_number(meta.get("threshold"), "threshold", low=0.0)
        for name in ("n_samples_seen", "n_steps"):
            value = meta.get(name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
            setattr(sae, name + "_", value)
        sae._fresh_optimizer()
        return sae


def _kept(values, index, xp):
    """The ReLU of selected pre-activations: values clipped at 0, and index -1
    where nothing fires, both C-contiguous for the kernels."""
    values = xp.ascontiguousarray(xp.maximum(values, 0.0))
    return values, xp.ascontiguousarray(xp.where(values > 0, index, -1).astype(xp.int32))


_FORMAT = "latentcore.TopKSAE/1"
_SAVED_PARAMS = ("n_latents", "k", "activation", "batch_size", "n_epochs", "learning_rate", "betas", "eps",
                 "k_aux", "aux_coef", "dead_after", "shuffle", "n_jobs", "verbose", "device")
_LOADED_PARAMS = _SAVED_PARAMS + ("random_state",)


def _json_params(sae: TopKSAE) -> dict:
    def plain(value):  # numpy scalars (np.float32(3e-3), np.int64(8)) as JSON numbers
        return value.item() if isinstance(value, np.generic) else value

    params = {name: plain(getattr(sae, name)) for name in _SAVED_PARAMS}
    params["betas"] = [plain(b) for b in params["betas"]]
    seed = sae.random_state  # a Generator (or other state) cannot be saved: it is left out
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0):
        params["random_state"] = plain(seed)
    return params


# ------------------------------------------------------------------ data
def _as_source(X: Any):
    """An array (numpy, memmap, cupy), or an iterator of batches."""
    if isinstance(X, (str, os.PathLike)):
        path = Path(X)
        if path.suffix.lower() != ".npy":
            raise ValueError(f"a path given as X must be a .npy file, got {path.name!r}")
        try:  # memory-mapped; a missing or damaged file is a ValueError (OSError: unreadable) naming it
            return read_matrix(path)
        except ValueError as exc:
            raise ValueError(f"X is the path of a file that cannot be read as a matrix: {exc}") from None
    if isinstance(X, np.ndarray) or _device.locate(X) == "cuda" or _device.is_torch(X) \
            or (hasattr(X, "__array__") and not hasattr(X, "__next__")):
        return _device.unwrap(X)[0]
    if isinstance(X, (list, tuple)) and X and not hasattr(X[0], "shape"):
        try:
            return np.asarray(X)
        except ValueError as exc:  # ragged rows
            raise ValueError(f"X must be a 2-D array (n_samples, n_features), with rows of one length: {exc}") \
                from None
    if hasattr(X, "__iter__"):
        return iter(X)
    raise TypeError(f"X must be an array, a .npy path or an iterable of arrays, got {type(X).__name__}")


def _n_rows(source, epochs: int) -> int | None:
    return source.shape[0] * epochs if hasattr(source, "shape") else None


def _batches(source, batch_size: int, epochs: int, rng: np.random.Generator, shuffle: bool) -> Iterator:
    if hasattr(source, "shape"):
        yield from _array_batches(source, batch_size, epochs, rng, shuffle)
    else:
        yield from _regrouped(source, batch_size)


def _array_batches(X, batch_size: int, epochs: int, rng, shuffle: bool) -> Iterator:
    n = X.shape[0]
    if getattr(X, "ndim", 2) != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {tuple(X.shape)}")
    in_memory = not isinstance(X, np.memmap) and (not isinstance(X, np.ndarray) or X.base is None
                                                    or not isinstance(X.base, np.memmap))
    for _ in range(epochs):
        starts = np.arange(0, n, batch_size)
        if shuffle and in_memory:
            order = rng.permutation(n)
            if _device.locate(X) == "cuda":
                order = _device.gpu().put(order)
            for first in starts:
                yield X[order[first:first + batch_size]]
            continue
        if shuffle:  # memory-mapped: whole batches in a random order, each read in one sweep
            starts = rng.permutation(starts)
        for first in starts:
            yield X[first:first + batch_size]


def _regrouped(chunks: Iterable, batch_size: int) -> Iterator:
    """Chunks of any size regrouped into batches of batch_size (the last one
    shorter); every chunk a 2-D float array with the first one's width."""
    pending, held, width = [], 0, None
    for number, chunk in enumerate(chunks):
        chunk, _ = _device.unwrap(chunk)
        if getattr(chunk, "ndim", None) != 2:
            raise ValueError(f"each batch of X must be 2-D (n, n_features), got {type(chunk).__name__} "
                             f"of shape {getattr(chunk, 'shape', None)}")
        if np.dtype(chunk.dtype).kind != "f":
            raise TypeError(f"batch {number} of X holds {chunk.dtype} values; X must hold floating-point values")
        if width is None:
            width = chunk.shape[1]
        elif chunk.shape[1] != width:
            raise ValueError(f"batch {number} of X has {chunk.shape[1]} features but the batches before it "
                             f"have {width}; every batch needs the same n_features")
        first = 0
        while chunk.shape[0] - first >= batch_size - held:
            take = batch_size - held
            pending.append(chunk[first:first + take])
            yield _join(pending)
            pending, held, first = [], 0, first + take
        if first < chunk.shape[0]:
            pending.append(chunk[first:])
            held += chunk.shape[0] - first
    if held:
        yield _join(pending)


def _join(parts):
    if len(parts) == 1:
        return parts[0]
    xp = _device.gpu().xp if _device.locate(parts[0]) == "cuda" else np
    return xp.concatenate([xp.asarray(p, dtype=xp.float32) for p in parts])


# --------------------------------------------------------------- safetensors
_SAFETENSORS_DTYPES = {np.dtype(np.float32): "F32"}


def _write_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """The safetensors layout: an 8-byte little-endian header size, a JSON
    header of dtypes, shapes and byte ranges, then the raw tensors."""
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for name, array in tensors.items():
        header[name] = {"dtype": _SAFETENSORS_DTYPES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    with atomic_write(path) as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for array in tensors.values():
            f.write(np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes())


# Bytes of a safetensors JSON header at most (the format's own limit is 100 MB).
_MAX_HEADER = 100 * 2**20


def _read_safetensors_file(f, size: int) -> tuple[dict[str, np.ndarray], Any]:
    """The four tensors and the metadata of a safetensors file, every
    header field checked against the file before it is used."""
    if size < 8:
        raise ValueError(f"it is {size} bytes long, shorter than a safetensors header")
    header_size = int.from_bytes(f.read(8), "little")
    if not 2 <= header_size <= min(_MAX_HEADER, size - 8):
        raise ValueError(f"its header size {header_size} does not fit a {size}-byte file")
    header = json.loads(f.read(header_size))
    if not isinstance(header, dict):
        raise ValueError("its header is not a JSON object")
    data = f.read()
    metadata = header.pop("__metadata__", None)
    if not isinstance(metadata, dict) or not isinstance(metadata.get("latentcore"), str):
        raise ValueError("it holds no latentcore metadata")
    tensors = {}
    for name in _PARAMETERS:
        entry = header.get(name)
        if not isinstance(entry, dict):
            raise ValueError(f"it has no tensor {name!r}")
        if entry.get("dtype") != "F32":
            raise ValueError(f"tensor {name!r} has dtype {entry.get('dtype')!r}; TopKSAE files hold F32")
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                  for d in shape):
            raise ValueError(f"tensor {name!r} has an invalid shape {shape!r}")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(
                isinstance(o, int) and not isinstance(o, bool) for o in offsets):
            raise ValueError(f"tensor {name!r} has invalid data_offsets {offsets!r}")
        begin, end = offsets
        if not 0 <= begin <= end <= len(data) or end - begin != 4 * math.prod(shape):
            raise ValueError(f"tensor {name!r} of shape {shape} has data_offsets {offsets} outside its "
                             f"{len(data)} bytes of data or of the wrong length")
        tensors[name] = np.frombuffer(data, "<f4", count=(end - begin) // 4, offset=begin).reshape(shape)
    return tensors, json.loads(metadata["latentcore"])


def _npy_header(archive: zipfile.ZipFile, member: str) -> tuple[tuple, np.dtype]:
    """(shape, dtype) from the header of a .npy member, read alone."""
    with archive.open(member) as stream:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"entry {member!r} has .npy format version {version}")
    return shape, np.dtype(dtype)


def _read_npz(f, size: int) -> tuple[dict[str, np.ndarray], Any]:
    """The four tensors and the metadata of a .npz archive: each entry's
    header is read and checked (dtype, and bytes that the entry holds)
    before its data is, so a crafted header cannot ask for any memory."""
    with zipfile.ZipFile(f) as archive:
        members = {}
        for name in ("metadata",) + _PARAMETERS:
            member = name + ".npy"
            try:
                info = archive.getinfo(member)
            except KeyError:
                raise ValueError(f"it has no {name!r} entry") from None
            shape, dtype = _npy_header(archive, member)
            if name == "metadata":
                if shape != () or dtype.kind != "U":
                    raise ValueError("its metadata entry is not a string")
            elif dtype != np.dtype("<f4") or len(shape) not in (1, 2):
                raise ValueError(f"entry {name!r} is {dtype} of shape {shape}, not a float32 vector or matrix")
            needed = math.prod(shape) * dtype.itemsize
            if needed > info.file_size or (info.compress_type == zipfile.ZIP_STORED and needed > size):
                raise ValueError(f"entry {name!r} claims {needed} bytes but holds {info.file_size}")
            members[name] = member
        arrays = {}
        for name, member in members.items():
            with archive.open(member) as stream:
                arrays[name] = np.lib.format.read_array(stream, allow_pickle=False)
    meta = json.loads(str(arrays.pop("metadata")[()]))
    return arrays, meta
