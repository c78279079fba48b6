"""Sparse coding over a fixed dictionary: which few atoms explain each signal.

In C++, in parallel over signals, each thread computing its signals'
correlations with the atoms by SGEMM:

- Batch-OMP (Rubinstein, Zibulevsky & Elad 2008): orthogonal matching pursuit
  from the Gram matrix, with a progressive Cholesky factor in double
  precision; for large dictionaries (or few signals) without the Gram
  matrix, each step's residual correlations one SGEMM per block of signals.
- LASSO by homotopy (LARS with the lasso modification) on the Gram matrix:
  each signal's exact solution path, read at one alpha (``sparse_encode``)
  or at a whole grid (``lasso_path``), or knot by knot (``lars_path``);
  coordinate descent from a warm start.
- TopK: the largest correlations.

Codes come out as ``scipy.sparse.csr_array`` (n_signals, n_atoms), float32.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin

from . import _backend, _core, _device
from .knn import largest_products
from ._progress import Progress
from ._validation import (N_JOBS, RANDOM_STATE, VERBOSE, Boolean, Choice, Custom, Integer, Options, Real,
                          check_choice, check_fitted, check_matrix, check_number, check_params, check_positive_int,
                          host_array_like, record_features, rescaling_exponent)

__all__ = ["DictionaryLearning", "SparseCoder", "lars_path", "lasso_path", "sparse_encode"]

# Atoms whose norm is further than this from 1 are not unit norm.
_UNIT_NORM_TOL = 1e-4
# Signals per kernel call at most: bounds the output block and lets Ctrl-C in
# between calls (the kernels also poll for it themselves).
_SIGNALS_PER_CALL = 1 << 13
# LASSO codes are dense while they are computed: at most this many per call.
_LASSO_BLOCK_ENTRIES = 1 << 24
# Coordinate-descent sweeps for a LASSO point the homotopy left unfinished.
_CD_FALLBACK_SWEEPS = 100_000
# Signals whose largest |value| lies outside [2^-60, 2^60] are coded at a
# power-of-two scale that brings it near 1 (exact), and their codes scaled
# back: float32 correlations of finite signals then never overflow nor
# vanish into subnormals.
_SAFE_EXPONENT = 60
# The kernels take int counts.
_INT32_MAX = 2**31 - 1
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _row_norms(M: np.ndarray) -> np.ndarray:
    """Euclidean norms of the rows of M in float64, without overflow or
    underflow whatever the scale (each row is divided by its largest |value|)."""
    if M.dtype == np.float32:  # squared float32 values (at most 1.2e77) cannot overflow float64
        return np.linalg.norm(M.astype(np.float64), axis=1)
    M = np.asarray(M, dtype=np.float64)
    largest = np.abs(M).max(axis=1) if M.shape[1] else np.zeros(M.shape[0])
    safe = np.where(largest > 0, largest, 1.0)
    return largest * np.linalg.norm(M / safe[:, None], axis=1)


def unit_dictionary(dictionary: Any, n_features: int | None = None, normalize: bool = False) -> np.ndarray:
    """A checked dictionary of unit-norm atoms, float32 (n_atoms, n_features).

    ``dictionary`` must be a finite 2-D array with ``n_features`` columns
    (when given); with ``normalize`` its atoms are rescaled to unit norm
    (a zero atom is a ValueError), otherwise each must already have unit norm
    within 1e-4. float64 atoms are normalized before they become float32.
    """
    if normalize and isinstance(dictionary, np.ndarray) and dictionary.dtype == np.float64 \
            and dictionary.ndim == 2 and dictionary.size and np.isfinite(dictionary).all():
        # float64 atoms are normalized before they become float32: their
        # values may lie beyond float32's range while their directions do not.
        D = dictionary
    else:
        D = check_matrix(dictionary, "dictionary")
    if n_features is not None and D.shape[1] != n_features:
        raise ValueError(f"dictionary has atoms of dimension {D.shape[1]} but X has {n_features} features; "
                         "the dictionary is (n_atoms, n_features)")
    if D.shape[0] > _INT32_MAX:
        raise ValueError(f"the dictionary has {D.shape[0]} atoms; at most {_INT32_MAX} are supported")
    norms = _row_norms(D)
    if normalize:
        if (norms == 0).any():
            raise ValueError(f"dictionary atom {int(np.flatnonzero(norms == 0)[0])} is zero and cannot be normalized")
        return np.ascontiguousarray((D / norms[:, None]).astype(np.float32))
    off = np.abs(norms - 1.0) > _UNIT_NORM_TOL
    if off.any():
        atom = int(np.flatnonzero(off)[0])
        raise ValueError(f"dictionary atoms must have unit norm (atom {atom} has norm {norms[atom]:.6g}); "
                         "pass normalize=True to rescale them")
    return D


def _check_max_iter(max_iter: Any) -> int:
    max_iter = check_positive_int(max_iter, "max_iter")
    if max_iter > _INT32_MAX:
        raise ValueError(f"max_iter must be at most {_INT32_MAX}, got {max_iter}")
    return max_iter


def _check_alpha(alpha: Any, method: str) -> float | None:
    if alpha is None:
        if method in ("lasso", "lars"):
            raise ValueError(f"alpha (the L1 weight, a number >= 0) is required for method={method!r}")
        return None
    return check_number(alpha, "alpha", low=0.0)


def _unscaled(values, scale: float, X, xp=np):
    """Codes computed on X (the signals times scale), brought back to the
    signals' scale in float32; a ValueError when they do not fit in float32."""
    if scale != 1.0:
        values = values.astype(xp.float64) / scale
    if values.size and not (float(xp.abs(values).max()) <= _FLOAT32_MAX):
        largest = max(float(X.max()), -float(X.min())) / scale
        raise ValueError(f"the codes of X overflow float32 (the largest |X| is {largest:.3g}); "
                         "rescale X first, e.g. divide it by its largest absolute value")
    return values.astype(xp.float32, copy=False)


def sparse_encode(X: Any, dictionary: Any, *, method: str = "omp", n_nonzero: int | None = None,
                  alpha: float | None = None, tol: float | None = None, positive: bool = False,
                  max_iter: int = 1000, init: Any = None, normalize: bool = False,
                  n_jobs: int | None = None) -> scipy.sparse.csr_array:
    """Sparse codes of signals over a dictionary of unit-norm atoms.

    Parameters
    ----------
    X : array of shape (n_signals, n_features)
        The signals, float (converted to float32).
    dictionary : array of shape (n_atoms, n_features)
        One atom per row, each of unit norm (or pass ``normalize=True``).
    method : {"omp", "lasso", "lars", "topk"}
        "omp": orthogonal matching pursuit (Batch-OMP; over a dictionary
        too large for its n_atoms^2 Gram matrix to pay off or fit in memory,
        the same codes without it). "lasso": each code
        minimizes ||x - code @ dictionary||^2 / (2 n_features) + alpha |code|_1
        (scikit-learn's ``Lasso(alpha, fit_intercept=False)`` objective),
        exactly, by following each signal's solution path from the alpha
        where its code is zero down to ``alpha`` (the homotopy, LARS with
        the lasso modification, on the Gram matrix); with ``init``, by
        coordinate descent from those codes instead. "lars": the same
        homotopy always (no ``init``). "topk": the ``n_nonzero``
        largest correlations ``dictionary @ x`` in magnitude (the largest
        positive ones when ``positive``), kept as they are: the encoder of a
        TopK autoencoder with tied weights, one GEMM and a selection.
    n_nonzero : int, optional
        OMP and topk: atoms per signal at most; default: 10% of n_features
        (at least 1), or, for OMP, every atom when ``tol`` is given. OMP
        never selects more than n_features atoms (beyond that the next atom
        is a combination of the chosen ones).
    alpha : float
        LASSO and lars: the L1 weight (required, >= 0).
    tol : float, optional
        OMP: stop a signal once its squared residual norm is at most ``tol``.
        LASSO from ``init``: stop once the duality gap is at most tol *
        ||x||^2 / n_features (default 1e-4, as scikit-learn). The homotopy
        needs no tolerance: its codes are exact up to rounding.
    positive : bool, default False
        Codes constrained to be >= 0. OMP then takes atoms only on a positive
        correlation and solves non-negative least squares on its support.
    max_iter : int, default 1000
        LASSO from ``init``: coordinate-descent sweeps per signal at most.
    init : array of shape (n_signals, n_atoms), dense or sparse, optional
        LASSO: the codes to start from (warm start), e.g. those of a nearby
        alpha along a regularization path; default zeros.
    normalize : bool, default False
        Rescale the atoms to unit norm (the codes are then over the rescaled atoms).
    n_jobs : int, optional
        Threads; None or -1: all cores.

    Returns
    -------
    scipy.sparse.csr_array of shape (n_signals, n_atoms), float32
        Row i holds signal i's coefficients: X[i] ~ codes[i] @ dictionary.

    Raises
    ------
    ValueError
        Bad parameters or arrays (each named), or codes beyond float32's
        range. Signals of any finite scale are coded correctly: those with
        values beyond 2^60 or below 2^-60 are coded at a power-of-two scale.
    KeyboardInterrupt
        Ctrl-C stops the call within a second.

    Examples
    --------
    >>> import numpy as np, latentcore
    >>> rng = np.random.default_rng(0)
    >>> D = rng.standard_normal((64, 16)); D /= np.linalg.norm(D, axis=1, keepdims=True)
    >>> codes = latentcore.sparse_encode(D[[3]] * 2.0, D, n_nonzero=1)
    >>> codes.indices.tolist(), codes.data.tolist()
    ([3], [2.0])
    """
    check_choice(method, "method", {"omp", "lasso", "lars", "topk"})
    if tol is not None:
        tol = check_number(tol, "tol", low=0.0)
    max_iter = _check_max_iter(max_iter)
    alpha = _check_alpha(alpha, method)
    if init is not None and method != "lasso":
        raise ValueError(f"init (warm start) applies to method='lasso' only, not {method!r}")
    X, device, _ = _device.prepare(X, None, n_jobs)
    D = unit_dictionary(_device.to_host(dictionary), X.shape[1], normalize)
    n_threads = _backend.resolve_n_jobs(n_jobs)
    if method in ("lasso", "lars"):
        init = None if init is None else _check_init(init, X.shape[0], D.shape[0], bool(positive))
        if n_nonzero is not None:  # unused by LASSO, but never a wrong value
            _check_n_nonzero(n_nonzero, X.shape[1], D.shape[0], None)
    else:
        n_nonzero = _check_n_nonzero(n_nonzero, X.shape[1], D.shape[0], tol if method == "omp" else None)
    xp = device.xp
    exponent = rescaling_exponent(X, _SAFE_EXPONENT)
    scale = math.ldexp(1.0, exponent)
    if exponent:
        X = xp.ldexp(X, xp.int32(exponent)).astype(xp.float32, copy=False)  # exact (2^exponent may exceed float32)
    if method == "topk":  # on the device: one GEMM per tile and the shared top-k selection
        values, index = largest_products(X, device.put(D), n_nonzero, device, magnitude=not positive)
        if positive:
            values = xp.maximum(values, 0.0)
        return rows_to_csr(index, _unscaled(values, scale, X, xp), None, D.shape[0], device)
    # OMP and LASSO run on the host's cores; the codes go to the input's device.
    X = device.get(X)
    if method in ("lasso", "lars") and init is None:
        codes = _homotopy(X, D, _scaled_alphas([alpha], scale), bool(positive), scale, n_threads)[0]
    elif method == "lasso":
        codes = _lasso(X, D, _gram(D), alpha * scale, 1e-4 if tol is None else tol, bool(positive), max_iter, init,
                       scale, n_threads)
    else:
        support, coefs, count = _omp(X, D, n_nonzero, None if tol is None else tol * scale * scale,
                                     bool(positive), n_threads)
        codes = rows_to_csr(support, _unscaled(coefs, scale, X), count, D.shape[0], _device.cpu(1))
    return device.sparse_from_host(codes)


def lasso_path(X: Any, dictionary: Any, *, alphas: Any = None, n_alphas: int = 100, eps: float = 1e-3,
               method: str = "lars", positive: bool = False, tol: float | None = None, max_iter: int = 1000,
               normalize: bool = False, n_jobs: int | None = None) -> tuple[np.ndarray, list[scipy.sparse.csr_array]]:
    """LASSO codes of signals at every alpha of a grid, in one call.

    Each code minimizes ||x - code @ dictionary||^2 / (2 n_features) +
    alpha |code|_1, as in :func:`sparse_encode` with ``method="lasso"``.

    Parameters
    ----------
    X : array of shape (n_signals, n_features)
        The signals, float (converted to float32).
    dictionary : array of shape (n_atoms, n_features)
        One atom per row, each of unit norm (or pass ``normalize=True``).
    alphas : array of shape (n_alphas,), optional
        The L1 weights, >= 0, in decreasing order (largest first). Default:
        ``n_alphas`` values evenly spaced on a log scale from alpha_max, the
        smallest alpha at which every code is zero, down to ``eps *
        alpha_max`` (scikit-learn's ``lasso_path`` grid).
    n_alphas : int, default 100
        Grid size when ``alphas`` is None.
    eps : float, default 1e-3
        The grid's smallest alpha over its largest, when ``alphas`` is None.
    method : {"lars", "cd"}, default "lars"
        "lars": each signal's exact solution path (the homotopy, LARS with
        the lasso modification), followed once down to the smallest alpha
        and read at every alpha of the grid (it is linear between knots).
        "cd": coordinate descent at each alpha in turn, warm-started from the
        codes of the previous one, to a duality gap of ``tol``.
    positive : bool, default False
        Codes constrained to be >= 0.
    tol, max_iter : float, int
        "cd" only: as in :func:`sparse_encode` (default tol 1e-4).
    normalize : bool, default False
        Rescale the atoms to unit norm first.
    n_jobs : int, optional
        Threads; None or -1: all cores.

    Returns
    -------
    alphas : float64 array of shape (n_alphas,)
        The grid, decreasing.
    codes : list of n_alphas scipy.sparse.csr_array of shape (n_signals, n_atoms), float32
        ``codes[g][i]`` is signal i's code at ``alphas[g]``.

    Raises
    ------
    ValueError
        Bad parameters or arrays (each named); an ``alphas`` grid that is
        empty, not finite, negative or not in decreasing order.

    Examples
    --------
    >>> import numpy as np, latentcore
    >>> D = np.eye(3, dtype=np.float32)
    >>> alphas, codes = latentcore.lasso_path([[3.0, -1.5, 0.0]], D, alphas=[1.0, 0.5, 0.0])
    >>> np.vstack([c.toarray() for c in codes])
    array([[ 0. ,  0. ,  0. ],
           [ 1.5,  0. ,  0. ],
           [ 3. , -1.5,  0. ]], dtype=float32)
    """
    check_choice(method, "method", {"lars", "cd"})
    if tol is not None:
        tol = check_number(tol, "tol", low=0.0)
    max_iter = _check_max_iter(max_iter)
    X, device, _ = _device.prepare(X, None, n_jobs)
    X = device.get(X)
    D = unit_dictionary(_device.to_host(dictionary), X.shape[1], normalize)
    n_threads = _backend.resolve_n_jobs(n_jobs)
    exponent = rescaling_exponent(X, _SAFE_EXPONENT)
    scale = math.ldexp(1.0, exponent)
    if exponent:
        X = np.ldexp(X, np.int32(exponent)).astype(np.float32, copy=False)
    if alphas is None:
        alphas = _alpha_grid(X, D, bool(positive), check_positive_int(n_alphas, "n_alphas"),
                             check_number(eps, "eps", low=0.0, high=1.0, low_inclusive=False), scale)
    else:
        alphas = _check_alphas(alphas)
    if method == "lars":
        codes = _homotopy(X, D, _scaled_alphas(alphas, scale), bool(positive), scale, n_threads)
    else:
        gram, codes, previous = _gram(D), [], None
        for alpha in alphas:
            previous = _lasso(X, D, gram, float(_scaled_alphas([alpha], scale)[0]), 1e-4 if tol is None else tol,
                              bool(positive), max_iter, previous, scale, n_threads)
            codes.append(previous)
    return alphas, [device.sparse_from_host(c) for c in codes]


def _check_alphas(alphas: Any) -> np.ndarray:
    """A user's alpha grid: 1-D, non-empty, finite, >= 0, decreasing."""
    try:
        grid = np.asarray(alphas, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError("alphas must be a 1-D array of numbers") from None
    if grid.ndim != 1 or grid.size == 0:
        raise ValueError(f"alphas must be a non-empty 1-D array, got shape {grid.shape}")
    if not np.isfinite(grid).all() or (grid < 0).any():
        raise ValueError("alphas must be finite and >= 0")
    if (np.diff(grid) > 0).any():
        raise ValueError("alphas must be in decreasing order (largest first), e.g. np.sort(alphas)[::-1]")
    return grid


def _alpha_grid(X: np.ndarray, D: np.ndarray, positive: bool, n_alphas: int, eps: float,
                scale: float) -> np.ndarray:
    """scikit-learn's grid: from alpha_max (every code zero) down to eps *
    alpha_max, log-spaced; X is scaled by ``scale``, the grid is not."""
    largest = 0.0
    with _backend.single_threaded_blas():
        for block in _blocks(X.shape[0]):
            corr = X[block] @ D.T
            top = corr.max(initial=0.0) if positive else np.abs(corr).max(initial=0.0)
            largest = max(largest, float(top))
    alpha_max = largest / X.shape[1] / scale
    if alpha_max <= 0.0:  # every code is zero at every alpha
        return np.full(n_alphas, np.finfo(np.float64).resolution)
    return np.geomspace(alpha_max, alpha_max * eps, n_alphas)


def lars_path(x: Any, dictionary: Any, *, positive: bool = False, alpha_min: float = 0.0, max_steps: int = 500,
              gram: Any = None, normalize: bool = False) -> tuple[np.ndarray, list[int], np.ndarray]:
    """One signal's whole LASSO path, knot by knot, as scikit-learn's
    ``lars_path(dictionary.T, x, method="lasso")``.

    The code minimizing ||x - code @ dictionary||^2 / (2 n_features) + alpha
    |code|_1 is piecewise linear in alpha; its knots are where an atom
    enters the code or leaves it.

    Parameters
    ----------
    x : array of shape (n_features,)
        The signal (float64 arithmetic throughout).
    dictionary : array of shape (n_atoms, n_features)
        One atom per row, each of unit norm (or pass ``normalize=True``).
    positive : bool, default False
        Codes constrained to be >= 0.
    alpha_min : float, default 0
        Where the path stops (its last knot is then at alpha_min).
    max_steps : int, default 500
        Knots after the first at most (scikit-learn's ``max_iter``); the
        path stops there.
    gram : array of shape (n_atoms, n_atoms), optional
        ``dictionary @ dictionary.T`` in float64, precomputed once for many
        calls over the same dictionary (scikit-learn's ``Gram``).
    normalize : bool, default False
        Rescale the atoms to unit norm first.

    Returns
    -------
    alphas : float64 array of shape (n_knots,)
        The knots, decreasing; alphas[0] is alpha_max.
    active : list of int
        The atoms in the code at the path's end, in the order they entered.
    coefs : float64 array of shape (n_atoms, n_knots)
        The code at each knot.

    Examples
    --------
    >>> import numpy as np, latentcore
    >>> alphas, active, coefs = latentcore.lars_path(np.array([3.0, -1.5]), np.eye(2))
    >>> alphas, active
    (array([1.5 , 0.75, 0.  ]), [0, 1])
    """
    x = np.asarray(_device.to_host(x))
    if x.dtype.kind != "f":
        raise TypeError(f"x must hold floating-point numbers, got dtype {x.dtype}")
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"x must be one signal of shape (n_features,), got shape {x.shape}; "
                         "use lasso_path for many signals")
    x = x.astype(np.float64)[None, :]
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values")
    alpha_min = check_number(alpha_min, "alpha_min", low=0.0)
    max_steps = check_positive_int(max_steps, "max_steps")
    if max_steps > _INT32_MAX - 2:
        raise ValueError(f"max_steps must be at most {_INT32_MAX - 2}, got {max_steps}")
    D = unit_dictionary(_device.to_host(dictionary), x.shape[1], normalize)
    D64 = D.astype(np.float64)
    correlations = D64 @ x[0]
    n_atoms, width = D.shape[0], min(D.shape[0], x.shape[1])
    capacity = max_steps + 2
    knot_alphas = np.empty(capacity)
    support = np.empty((capacity, width), np.int32)
    values = np.empty((capacity, width))
    count = np.empty(capacity, np.int32)
    if gram is None:
        gram = D64 @ D64.T
    else:
        gram = np.ascontiguousarray(_device.to_host(gram), dtype=np.float64)
        if gram.shape != (n_atoms, n_atoms) or not np.isfinite(gram).all():
            raise ValueError(f"gram must be a finite ({n_atoms}, {n_atoms}) array, dictionary @ dictionary.T")
    n_knots = _core.sparse_lasso_knots(correlations, gram, x.shape[1], bool(positive), alpha_min,
                                       knot_alphas, support, values, count)
    coefs = np.zeros((n_atoms, n_knots))
    for t in range(n_knots):
        coefs[support[t, :count[t]], t] = values[t, :count[t]]
    return knot_alphas[:n_knots].copy(), support[n_knots - 1, :count[n_knots - 1]].tolist(), coefs


def _blocks(n: int, per_call: int = _SIGNALS_PER_CALL):
    """Row blocks of the signals, one kernel call each (Ctrl-C lands between them)."""
    for first in range(0, n, per_call):
        yield slice(first, first + per_call)


def _check_n_nonzero(n_nonzero, n_features, n_atoms, tol) -> int:
    if n_nonzero is None:
        n_nonzero = n_atoms if tol is not None else max(1, n_features // 10)
    n_nonzero = check_positive_int(n_nonzero, "n_nonzero")
    if n_nonzero > n_atoms:
        raise ValueError(f"n_nonzero={n_nonzero} exceeds the {n_atoms} atoms of the dictionary")
    return n_nonzero


def _check_init(init: Any, n: int, n_atoms: int, positive: bool):
    """LASSO's warm start: (n, n_atoms), finite, dense float32 or a csr_array
    whose structure is checked entry by entry (an index out of range would
    otherwise be written through when it is densified)."""
    expected = (n, n_atoms)
    if scipy.sparse.issparse(init):
        if len(init.shape) != 2 or tuple(init.shape) != expected:
            raise ValueError(f"init must be (n_signals, n_atoms) = {expected}, got {tuple(init.shape)}")
        if np.dtype(init.dtype).kind not in "fiu":
            raise TypeError(f"init must hold real numbers, got dtype {init.dtype}")
        try:
            if init.format in ("csr", "csc", "bsr"):
                init.check_format(full_check=True)
            elif init.format == "coo":
                for name, coords, size in (("row", init.row, n), ("column", init.col, n_atoms)):
                    if coords.size and (coords.min() < 0 or coords.max() >= size):
                        raise ValueError(f"a {name} index is outside [0, {size})")
            init = scipy.sparse.csr_array(init, dtype=np.float64)
            init.check_format(full_check=True)
        except ValueError as exc:
            raise ValueError(f"init is not a valid sparse matrix of shape {expected}: {exc}") from None
        data = init.data
    else:
        init = check_matrix(init, "init", allow_empty=True)
        if init.shape != expected:
            raise ValueError(f"init must be (n_signals, n_atoms) = {expected}, got {init.shape}")
        data = init
    if data.size and not np.isfinite(data).all():
        raise ValueError("init contains NaN or infinite values; pass finite codes, or None to start from zeros")
    if positive and data.size and data.min() < 0:
        raise ValueError("init has negative codes but positive=True; clip them to 0 first")
    return init


def rows_to_csr(index, values, count, n_cols: int, device: _device.Device):
    """Sparse codes from per-row (index, value) lists on ``device``: row i
    keeps its first count[i] entries (all when count is None) whose value is
    nonzero, columns sorted. A scipy csr_array on the CPU, a cupyx
    csr_matrix on the GPU."""
    xp = device.xp
    keep = values != 0
    if count is not None:
        keep &= xp.arange(index.shape[1])[None, :] < count[:, None]
    indptr = xp.concatenate([xp.zeros(1, xp.int64), xp.cumsum(keep.sum(axis=1), dtype=xp.int64)])
    if device.is_gpu:  # cupyx's csr_matrix wants int32 offsets
        indptr = indptr.astype(xp.int32)
    codes = device.csr(values[keep].astype(xp.float32, copy=False), index[keep], indptr, (index.shape[0], n_cols))
    codes.sort_indices()
    return codes


# OMP runs from the float32 Gram matrix G = D D^T when that pays off and
# fits, otherwise without it (batch_omp in cpp/include/latentcore/sparse.hpp):
# the same codes either way. Measured wall-clock costs with 2 threads (AMD
# EPYC, 2 cores), in picoseconds, for n signals taking k atoms each from
# n_atoms atoms of n_features dimensions:
#   Gram path: G, n_atoms^2 n_features multiply-adds (SGEMM) and 4 n_atoms^2
#   bytes; then per signal n_atoms (k^2 / 2 row multiply-adds, memory-bound,
#   + k scans of the correlations).
#   Gram-free: per signal k n_atoms n_features multiply-adds in float32
#   GEMMs (+ k scans), and k^2 / 2 n_features for its Cholesky factor's
#   entries (dot products of atoms).
_PS_GRAM_MAC = 25.0  # computing G
_PS_GRAM_ROW_MAC = 110.0  # the Gram path's updates from the rows of G
_PS_GRAM_SCAN = 600.0  # per atom and atom chosen, Gram path
_PS_FREE_MAC = 20.0  # the Gram-free GEMMs
_PS_FREE_SCAN = 300.0  # per atom and atom chosen, Gram-free
_PS_FREE_CHOLESKY = 300.0  # per atom pair and dimension: Cholesky entries and solves
# G (with a float64 copy of the atoms) may take at most this fraction of the
# machine's memory.
_GRAM_MEMORY_FRACTION = 0.25
# Tests force a path: True (Gram matrix), False (Gram-free), None (the rule).
_OMP_USE_GRAM: bool | None = None


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def _omp_gram_pays_off(n: int, n_atoms: int, n_features: int, k: int) -> bool:
    """Whether OMP of n signals taking k atoms each is faster from the Gram
    matrix (by the measured costs above), and the Gram matrix fits in memory."""
    if 4.0 * n_atoms * n_atoms + 8.0 * n_atoms * n_features > _GRAM_MEMORY_FRACTION * _physical_memory():
        return False
    gram = _PS_GRAM_MAC * n_atoms * n_atoms * n_features + \
        n * n_atoms * (_PS_GRAM_ROW_MAC * k * k / 2 + _PS_GRAM_SCAN * k)
    free = n * (n_atoms * k * (_PS_FREE_MAC * n_features + _PS_FREE_SCAN) + _PS_FREE_CHOLESKY * k * k / 2 * n_features)
    return gram < free


def _omp(X, D, n_nonzero, tol, positive, n_threads, use_gram=None):
    """OMP codes as (support, coefs, count) rows. use_gram: True or False
    forces the path with or without the Gram matrix; None chooses
    (_OMP_USE_GRAM when tests set it, else _omp_gram_pays_off)."""
    n = X.shape[0]
    # OMP selects at most n_features atoms: the outputs (and the kernel's
    # per-thread Cholesky factor) are sized by that, not by n_nonzero.
    width = _core.sparse_omp_capacity(n_nonzero, X.shape[1])
    if use_gram is None:
        use_gram = _OMP_USE_GRAM
    if use_gram is None:
        # With only a tolerance, signals usually stop well before `width`
        # atoms: their cost is estimated at n_nonzero's default (10% of
        # n_features), where the Gram path is the safer guess.
        k = width if tol is None else min(width, max(1, X.shape[1] // 10))
        use_gram = _omp_gram_pays_off(n, D.shape[0], D.shape[1], k)
    gram = _gram32(D) if use_gram and n else None
    support = np.empty((n, width), np.int32)
    coefs = np.zeros((n, width), np.float32)
    count = np.empty(n, np.int32)
    # Each kernel thread computes its own blocks' correlations by SGEMM: BLAS threading off.
    with _backend.single_threaded_blas():
        for block in _blocks(n):
            _core.sparse_batch_omp(X[block], D, gram, _backend.scipy_sgemm(), -1.0 if tol is None else float(tol),
                                   positive, support[block], coefs[block], count[block], n_threads)
    return support, coefs, count


def _scaled_alphas(alphas, scale: float) -> np.ndarray:
    """The L1 weights for signals multiplied by scale (an alpha so large that
    it overflows zeroes every code, as the largest finite one does)."""
    return np.minimum(np.asarray(alphas, np.float64) * scale, np.finfo(np.float64).max)


def _gram(D: np.ndarray) -> np.ndarray:
    """D @ D.T in float64, for coordinate descent."""
    D64 = D.astype(np.float64)
    return D64 @ D64.T


def _gram32(D: np.ndarray) -> np.ndarray:
    """D @ D.T by SGEMM, for OMP and the homotopy, which read its rows in
    float32 (see sparse.hpp): half the time of a float64 product, which
    dominates OMP's cost over large dictionaries, and entries within about
    sqrt(n_features) float32 roundings."""
    gram = np.empty((D.shape[0], D.shape[0]), np.float32)
    return np.matmul(D, D.T, out=gram)


def _homotopy_max_steps(width: int) -> int:
    """Knots a signal's path may take: a LASSO path rarely has more than
    about twice as many knots as atoms active at its end; past this (cycling
    in a degenerate case) that point is solved by coordinate descent."""
    return 8 * width + 64


def _homotopy(X, D, alphas: np.ndarray, positive: bool, scale: float, n_threads: int) -> list[scipy.sparse.csr_array]:
    """The LASSO codes of the (scaled) signals X at every alpha of the
    decreasing, scaled grid, by the exact homotopy (one csr_array per alpha,
    unscaled); a point whose path took too many knots is solved by
    coordinate descent instead."""
    n, n_alphas, n_atoms = X.shape[0], len(alphas), D.shape[0]
    width = min(n_atoms, X.shape[1])  # the most atoms a LASSO code holds (in general position)
    max_steps = _homotopy_max_steps(width)
    per_call = max(1, min(_SIGNALS_PER_CALL, _LASSO_BLOCK_ENTRIES // (n_alphas * width)))
    parts: list[list] = [[] for _ in range(n_alphas)]
    cpu = _device.cpu(1)
    gram32, gram64 = _gram32(D), None  # gram64: coordinate descent's, made when first needed
    with _backend.single_threaded_blas():
        for block in _blocks(n, per_call):
            rows = X[block]
            m = rows.shape[0]
            support = np.empty((m * n_alphas, width), np.int32)
            values = np.zeros((m * n_alphas, width), np.float32)  # read whole by _unscaled
            count = np.empty((m, n_alphas), np.int32)
            _core.sparse_lasso_homotopy(rows, D, gram32, _backend.scipy_sgemm(), alphas, positive, max_steps,
                                        support, values, count, n_threads)
            for g in range(n_alphas):
                unfinished = np.flatnonzero(count[:, g] < 0)
                codes = rows_to_csr(support[g::n_alphas], _unscaled(values[g::n_alphas], scale, X),
                                    np.maximum(count[:, g], 0), n_atoms, cpu)
                if unfinished.size:
                    gram64 = _gram(D) if gram64 is None else gram64
                    redone = _lasso(rows[unfinished], D, gram64, alphas[g], 1e-10, positive, _CD_FALLBACK_SWEEPS,
                                    None, scale, n_threads)
                    placed = scipy.sparse.csr_array(
                        (np.ones(unfinished.size), (unfinished, np.arange(unfinished.size))), shape=(m, unfinished.size))
                    codes = scipy.sparse.csr_array(codes + placed @ redone, dtype=np.float32)
                parts[g].append(codes)
    return [scipy.sparse.csr_array(scipy.sparse.vstack(p, format="csr"), dtype=np.float32) for p in parts]


def _lasso(X, D, gram, alpha, tol, positive, max_iter, init, scale, n_threads) -> scipy.sparse.csr_array:
    rows = []
    per_call = max(1, min(_SIGNALS_PER_CALL, _LASSO_BLOCK_ENTRIES // D.shape[0]))
    with _backend.single_threaded_blas():
        for block in _blocks(X.shape[0], per_call):
            if init is None:
                codes = np.zeros((X[block].shape[0], D.shape[0]), np.float32)
            else:
                start = init[block].toarray() if scipy.sparse.issparse(init) else init[block]
                if scale != 1.0:
                    start = start.astype(np.float64) * scale
                    if not (np.abs(start).max(initial=0.0) <= _FLOAT32_MAX):
                        raise ValueError("init is too large for X's scale (its codes overflow float32); "
                                         "pass smaller codes, or None to start from zeros")
                codes = np.ascontiguousarray(start, dtype=np.float32)
            _core.sparse_lasso_cd(X[block], D, gram, _backend.scipy_sgemm(), float(alpha), positive, float(tol),
                                  max_iter, codes, n_threads)
            rows.append(scipy.sparse.csr_array(_unscaled(codes, scale, X)))
    return scipy.sparse.csr_array(scipy.sparse.vstack(rows, format="csr"), dtype=np.float32)


def _check_codes(codes: Any, n_atoms: int):
    """Codes (n, n_atoms) to rebuild signals from: dense or scipy sparse, finite."""
    if not scipy.sparse.issparse(codes):
        codes = np.asarray(codes)
        if codes.dtype.kind not in "fiub":
            raise TypeError(f"codes must hold real numbers, got dtype {codes.dtype}")
    if codes.ndim != 2 or codes.shape[1] != n_atoms:
        raise ValueError(f"codes must be (n, {n_atoms}), got shape {tuple(codes.shape)}")
    data = codes.data if scipy.sparse.issparse(codes) else codes
    if np.dtype(data.dtype).kind == "f" and data.size and not np.isfinite(data).all():
        raise ValueError("codes contain NaN or infinite values")
    return codes


def _rebuilt(codes, components: np.ndarray) -> np.ndarray:
    out = np.asarray(codes @ components.astype(np.float64), dtype=np.float64)
    if out.size and not (np.abs(out).max() <= _FLOAT32_MAX):
        raise ValueError("the signals rebuilt from these codes overflow float32; the codes are too large")
    return out.astype(np.float32)


class SparseCoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Sparse codes over a fixed dictionary, as an estimator (see :func:`sparse_encode`).

    Stateless: ``transform`` needs no ``fit`` (``fit`` checks the parameters
    and the dictionary, and X's width against it when X is given).

    Parameters
    ----------
    dictionary : array of shape (n_atoms, n_features)
        One atom per row, unit norm (or ``normalize=True``).
    method, n_nonzero, alpha, tol, positive, max_iter, normalize, n_jobs
        As in :func:`sparse_encode`.

    Attributes
    ----------
    components_ : float32 array of shape (n_atoms, n_features)
        The (normalized) dictionary the codes refer to; set by ``fit`` or the
        first ``transform``.
    n_features_in_ : int
        Columns of the X given to ``fit`` (with ``feature_names_in_`` for a
        DataFrame with string column names).

    Examples
    --------
    >>> import numpy as np, latentcore
    >>> D = np.eye(4, dtype=np.float32)
    >>> coder = latentcore.SparseCoder(D, n_nonzero=1)
    >>> coder.transform([[0.0, 3.0, 0.1, 0.0]]).toarray()
    array([[0., 3., 0., 0.]], dtype=float32)
    """

    def __init__(self, dictionary: Any, *, method: str = "omp", n_nonzero: int | None = None,
                 alpha: float | None = None, tol: float | None = None, positive: bool = False,
                 max_iter: int = 1000, normalize: bool = False, n_jobs: int | None = None):
        self.dictionary = dictionary
        self.method = method
        self.n_nonzero = n_nonzero
        self.alpha = alpha
        self.tol = tol
        self.positive = positive
        self.max_iter = max_iter
        self.normalize = normalize
        self.n_jobs = n_jobs

    _parameter_specs = {
        "dictionary": Custom(lambda value, name: None, "an array (n_atoms, n_features), checked by fit"),
        "method": Choice("omp", "lasso", "lars", "topk"),
        "n_nonzero": Options(None, Integer()),
        "alpha": Options(None, Real(low=0.0)),
        "tol": Options(None, Real(low=0.0)),
        "positive": Boolean(),
        "max_iter": Integer(high=_INT32_MAX),
        "normalize": Boolean(),
        "n_jobs": N_JOBS,
    }

    def fit(self, X: Any = None, y: Any = None) -> "SparseCoder":
        """Checks the parameters and the dictionary (nothing is learnt), and
        that X (optional) has the dictionary's width; returns self."""
        check_params(self)
        _check_alpha(self.alpha, self.method)
        self.components_ = unit_dictionary(host_array_like(self.dictionary), None, self.normalize)
        record_features(self, X, reset=True)
        if X is not None and type(X).__module__.split(".")[0] not in ("cupy", "cupyx", "torch"):
            check_matrix(host_array_like(X), "X")  # as transform would check it
        width = getattr(self, "n_features_in_", self.components_.shape[1])
        if width != self.components_.shape[1]:
            raise ValueError(f"X has {width} features but the dictionary has atoms of dimension "
                             f"{self.components_.shape[1]}; the dictionary is (n_atoms, n_features)")
        return self

    @property
    def _n_features_out(self) -> int:
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False  # transform codes over the dictionary given
        tags.transformer_tags.preserves_dtype = ["float32"]  # codes are float32 whatever X is
        return tags

    def transform(self, X: Any) -> scipy.sparse.csr_array:
        """Codes of the rows of X (n, n_features): csr_array (n, n_atoms), float32."""
        if not hasattr(self, "components_"):
            self.fit()
        if hasattr(self, "n_features_in_"):  # fitted on an X: the same columns
            record_features(self, X, reset=False)
        X = host_array_like(X)  # a pandas DataFrame: its values
        return sparse_encode(X, self.components_, method=self.method, n_nonzero=self.n_nonzero,
                             alpha=self.alpha, tol=self.tol, positive=self.positive, max_iter=self.max_iter,
                             n_jobs=self.n_jobs)

    def fit_transform(self, X: Any, y: Any = None) -> scipy.sparse.csr_array:
        """``fit(X)``, then the codes of X."""
        return self.fit(X).transform(X)

    def inverse_transform(self, codes: Any) -> np.ndarray:
        """Signals rebuilt from codes (n, n_atoms), dense or sparse: float32 (n, n_features)."""
        if not hasattr(self, "components_"):
            self.fit()
        return _rebuilt(_check_codes(codes, self.components_.shape[0]), self.components_)


# Dictionary learning looks for near-duplicate atoms every this many steps,
# an atom replaced when its |cosine| with an earlier one exceeds the bound.
_CLEAR_EVERY = 16
_DUPLICATE_COSINE = 0.95
# Multiply-adds per call in the steps' numpy work: the batch statistics go
# through sparse products above this, the duplicate search in row blocks.
_DENSE_STATISTICS = 1 << 24
_DUPLICATE_BLOCK = 1 << 24


class DictionaryLearning(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Online dictionary learning (Mairal, Bach, Ponce & Sapiro 2010).

    Alternates, one mini-batch at a time, sparse coding over the current
    dictionary (OMP or LASSO, :func:`sparse_encode`) with a block-coordinate
    update of every atom from the running statistics A = sum c c^T and
    B = sum c x^T (C++), so memory stays O(n_atoms^2 + n_atoms n_features)
    however many samples stream by. Atoms are kept at unit norm; an atom no
    code has used yet is restarted from a random sample of the batch.

    Parameters
    ----------
    n_atoms : int
        Dictionary size.
    method : {"omp", "lasso"}, default "omp"
        The coder (see :func:`sparse_encode`).
    n_nonzero : int, optional
        OMP: atoms per code; default 10% of n_features.
    alpha : float, optional
        LASSO: the L1 weight (required for "lasso").
    positive : bool, default False
        Non-negative codes.
    batch_size : int, default 256
        Samples per update.
    n_epochs : int, default 1
        Passes over an array given to ``fit``.
    shuffle : bool, default True
        Visit the samples in a random order each epoch.
    random_state : int, numpy Generator or None
        Seeds the initial atoms (random samples), restarts and shuffling.
    n_jobs : int, optional
        Threads; None or -1: all cores.
    verbose : bool or int, default False
        A tqdm bar over samples with the batch's fraction of variance unexplained.

    Attributes
    ----------
    components_ : float32 array (n_atoms, n_features)
        Unit-norm atoms.
    n_features_in_ : int
        Columns of X (with ``feature_names_in_`` for a DataFrame with string
        column names).
    n_steps_ : int
        Mini-batch updates so far.
    history_ : dict of float arrays
        Per step: "samples" seen and "fvu" of the batch's codes (before the update).

    Examples
    --------
    >>> import numpy as np, latentcore
    >>> X = np.random.default_rng(0).standard_normal((1000, 16)).astype(np.float32)
    >>> dl = latentcore.DictionaryLearning(32, n_nonzero=3, random_state=0).fit(X)
    >>> dl.transform(X).shape
    (1000, 32)
    """

    def __init__(self, n_atoms: int, *, method: str = "omp", n_nonzero: int | None = None,
                 alpha: float | None = None, positive: bool = False, batch_size: int = 256, n_epochs: int = 1,
                 shuffle: bool = True, random_state=None, n_jobs: int | None = None, verbose: bool = False):
        self.n_atoms = n_atoms
        self.method = method
        self.n_nonzero = n_nonzero
        self.alpha = alpha
        self.positive = positive
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.shuffle = shuffle
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def fit(self, X: Any, y: Any = None) -> "DictionaryLearning":
        """Learns the dictionary from X (n_samples, n_features): an array or a
        pandas DataFrame, from scratch.

        Ctrl-C stops within a second, keeping the atoms learnt so far."""
        self.__dict__.pop("components_", None)
        check_params(self)
        record_features(self, X, reset=True)
        X = host_array_like(X)  # a pandas DataFrame: its values
        X = check_matrix(_device.to_host(X), "X")
        self._check_params(X.shape[1])
        self._rng = np.random.default_rng(self.random_state)
        for _ in range(self.n_epochs):
            order = self._rng.permutation(X.shape[0]) if self.shuffle else np.arange(X.shape[0])
            self._learn(X, order)
        return self

    def partial_fit(self, X: Any, y: Any = None) -> "DictionaryLearning":
        """One pass over X in order, continuing from the current dictionary."""
        check_params(self)
        record_features(self, X, reset=not hasattr(self, "components_"))
        X = host_array_like(X)  # a pandas DataFrame: its values
        X = check_matrix(_device.to_host(X), "X")
        self._check_params(X.shape[1])
        if not hasattr(self, "_rng"):
            self._rng = np.random.default_rng(self.random_state)
        self._learn(X, np.arange(X.shape[0]))
        return self

    _parameter_specs = {
        "n_atoms": Integer(high=_INT32_MAX),
        "method": Choice("omp", "lasso"),
        "n_nonzero": Options(None, Integer()),
        "alpha": Options(None, Real(low=0.0)),
        "positive": Boolean(),
        "batch_size": Integer(),
        "n_epochs": Integer(),
        "shuffle": Boolean(),
        "random_state": RANDOM_STATE,
        "n_jobs": N_JOBS,
        "verbose": VERBOSE,
    }

    def _check_params(self, n_features: int) -> None:
        """The parameters that depend on each other or on X (the table's are
        checked first, by check_params), before any work."""
        n_atoms, method = self.n_atoms, self.method
        _check_alpha(self.alpha, method)
        if method == "omp" or self.n_nonzero is not None:  # unused by LASSO, but never a wrong value
            _check_n_nonzero(self.n_nonzero, n_features, n_atoms, None)
        if hasattr(self, "components_"):
            if self.components_.shape[0] != n_atoms:
                raise ValueError(f"n_atoms={n_atoms} but the dictionary learnt so far has "
                                 f"{self.components_.shape[0]} atoms; call fit to start over")
            if n_features != self.components_.shape[1]:
                raise ValueError(f"X has {n_features} features but the dictionary has {self.components_.shape[1]}")

    def _learn(self, X: np.ndarray, order: np.ndarray) -> None:
        batch_size = self.batch_size
        n_threads = _backend.resolve_n_jobs(self.n_jobs)
        if not hasattr(self, "components_"):
            self._initialize(X[order[:self.n_atoms]])
        progress = Progress(len(order), self.verbose, "dictionary learning", "sample")
        try:
            # Small BLAS calls between the coder's OpenMP kernels: one thread
            # each, rather than two thread pools taking turns on the cores.
            with _backend.single_threaded_blas():
                for first in range(0, len(order), batch_size):
                    batch = X[order[first:first + batch_size]]
                    fvu = self._step(batch, n_threads)
                    progress.update(batch.shape[0], fvu=f"{fvu:.4f}")
        finally:
            progress.close()

    def _jittered(self, rows: np.ndarray) -> np.ndarray:
        """Rows (float64) plus Gaussian noise of 1e-3 times each row's RMS
        value (1e-3 for a zero row), normalized to unit-norm float32 atoms at
        any scale of the data."""
        noise = self._rng.standard_normal(rows.shape, dtype=np.float32)
        rms = _row_norms(rows) / np.sqrt(rows.shape[1])
        atoms = rows + 1e-3 * np.where(rms > 0, rms, 1.0)[:, None] * noise
        norms = _row_norms(atoms)
        return (atoms / np.where(norms > 0, norms, 1.0)[:, None]).astype(np.float32)

    def _initialize(self, first: np.ndarray) -> None:
        """Atoms from the first samples visited (repeated if fewer than n_atoms), jittered."""
        n_atoms = self.n_atoms
        self.components_ = self._jittered(first[np.arange(n_atoms) % first.shape[0]].astype(np.float64))
        self._A = np.zeros((n_atoms, n_atoms))
        self._B = np.zeros((n_atoms, first.shape[1]))
        self.n_steps_ = 0
        self.history_ = {"samples": [], "fvu": []}

    def _step(self, batch: np.ndarray, n_threads: int) -> float:
        codes = sparse_encode(batch, self.components_, method=self.method, n_nonzero=self.n_nonzero,
                              alpha=self.alpha, positive=self.positive, n_jobs=n_threads)
        # In float64: squares of finite float32 data (up to 3.4e38) overflow float32.
        batch64 = batch.astype(np.float64)
        residual = batch64 - codes @ self.components_.astype(np.float64)
        error = float((residual ** 2).sum())
        total = float(((batch64 - batch64.mean(axis=0)) ** 2).sum()) or float((batch64 ** 2).sum())
        fvu = error / total if total > 0 else 0.0
        # Mairal et al. section 3.4.3: past statistics fade while the
        # dictionary they were computed with is young, then are averaged.
        n, n_atoms = batch.shape[0], self.components_.shape[0]
        self.n_steps_ += 1
        seen = self.n_steps_ * n if self.n_steps_ < n else n * n + self.n_steps_ - n
        keep = (seen + 1 - n) / (seen + 1)
        self._A *= keep
        self._B *= keep
        if n * n_atoms * n_atoms <= _DENSE_STATISTICS:
            dense = codes.toarray().astype(np.float64)
            self._A += dense.T @ dense / n
            self._B += dense.T @ batch64 / n
        else:  # sparse products: a dense (n, n_atoms) GEMM would cost n * n_atoms^2 in one uninterruptible call
            sparse = scipy.sparse.csr_array(codes, dtype=np.float64)
            gram = (sparse.T @ sparse).tocoo()
            self._A[gram.row, gram.col] += gram.data / n  # one entry per (row, col)
            self._B += np.asarray(sparse.T @ batch64) / n
        unused = np.empty(n_atoms, np.int32)
        # "Unused" relative to the statistics' scale: data of any magnitude.
        min_usage = 1e-12 * float(np.diagonal(self._A).max(initial=0.0))
        n_unused = _core.sparse_update_dictionary(self._A, self._B, self.components_, min_usage, unused, n_threads)
        stale = list(unused[:n_unused])
        if self.n_steps_ % _CLEAR_EVERY == 0:
            stale += self._duplicates(stale)
        if stale:
            self._restart(np.array(stale[:batch.shape[0]]), batch, residual)
        self.history_["samples"].append((self.history_["samples"][-1] if self.n_steps_ > 1 else 0) + n)
        self.history_["fvu"].append(fvu)
        return fvu

    def _duplicates(self, skip) -> list[int]:
        """Atoms nearly parallel to an earlier one (K-SVD's dictionary
        clearing): two atoms sharing one direction leave another direction
        unlearnt, a local minimum the updates alone rarely leave."""
        D = self.components_
        # In row blocks: one (n_atoms, n_atoms) GEMM could run for seconds
        # without a chance for Ctrl-C; an atom is compared with earlier ones.
        per_block = max(1, _DUPLICATE_BLOCK // max(1, D.shape[0] * D.shape[1]))
        duplicated = []
        for first in range(0, D.shape[0], per_block):
            cosine = np.abs(D[first:first + per_block] @ D.T)
            rows = np.arange(cosine.shape[0])
            earlier = np.arange(D.shape[0])[None, :] < (first + rows)[:, None]
            duplicated.extend((first + np.flatnonzero(((cosine > _DUPLICATE_COSINE) & earlier).any(axis=1))).tolist())
        skip = set(skip)
        return [int(j) for j in duplicated if j not in skip]

    def _restart(self, atoms: np.ndarray, batch: np.ndarray, residual: np.ndarray) -> None:
        """Restarts atoms on the batch's worst-explained samples and forgets their statistics."""
        worst = np.argsort(-(residual ** 2).sum(axis=1))[:len(atoms)]
        self.components_[atoms] = self._jittered(residual[worst])
        self._A[atoms, :] = 0.0
        self._A[:, atoms] = 0.0
        self._B[atoms] = 0.0

    def _fitted(self) -> np.ndarray:
        check_fitted(self, "components_", "fit or partial_fit")
        return self.components_

    @property
    def _n_features_out(self) -> int:
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # codes are float32 whatever X is
        return tags

    def transform(self, X: Any) -> scipy.sparse.csr_array:
        """Codes of X over the learnt dictionary: csr_array (n, n_atoms), float32."""
        D = self._fitted()
        record_features(self, X, reset=False)
        X = host_array_like(X)  # a pandas DataFrame: its values
        return sparse_encode(X, D, method=self.method, n_nonzero=self.n_nonzero, alpha=self.alpha,
                             positive=self.positive, n_jobs=self.n_jobs)

    def fit_transform(self, X: Any, y: Any = None) -> scipy.sparse.csr_array:
        return self.fit(X).transform(X)

    def inverse_transform(self, codes: Any) -> np.ndarray:
        """Signals rebuilt from codes (n, n_atoms): float32 (n, n_features)."""
        D = self._fitted()
        return _rebuilt(_check_codes(codes, D.shape[0]), D)
