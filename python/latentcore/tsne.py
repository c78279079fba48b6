"""t-SNE with FFT-accelerated gradients (FIt-SNE, Linderman et al. 2019).

The stages are swappable, as in openTSNE: affinities (perplexity, multiscale,
uniform, or precomputed) from the exact k-NN graph; an initialization
(``INITIALIZATIONS``); and gradient descent whose repulsive forces come from
``NEGATIVE_GRADIENT_METHODS``: "fft" interpolates point charges onto an
equispaced grid (C++), convolves the grid with the kernel by FFT (scipy.fft)
and interpolates the potentials back (C++), in O(n) per iteration for 1-, 2-
and 3-D maps; "exact" is the O(n^2) reference. Attractive forces run over the
sparse affinities in C++. Every reduction has a fixed order, so a seed gives
the same map whatever the thread count.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import scipy.fft
import scipy.sparse
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin

from . import _backend, _core, _device
from ._progress import Progress
from ._validation import (N_JOBS, RANDOM_STATE, VERBOSE, Choice, Custom, Integer, InvalidParameterError, Options,
                          Pair, Real, as_array, check_choice, check_fitted, check_matrix, check_number, check_params,
                          check_positive_int, host_array_like, record_features, rescaling_exponent)
from .knn import METRICS as _KNN_METRICS, _resolve_metric, knn

__all__ = ["TSNE", "perplexity_affinities", "uniform_affinities", "INITIALIZATIONS",
           "NEGATIVE_GRADIENT_METHODS"]

_PERPLEXITY_TOL = 1e-10  # nats: far below the 1e-5 a user could notice
_MIN_GAIN = 0.01
_MAX_FAR_POINTS = 64  # points handled exactly instead of stretching the FFT grid
_MAX_FFT_VALUES = 1 << 21  # per transformed grid (128^3 in 3-D): bounds time and memory
_MAX_MIN_FFT_VALUES = 1 << 25  # the largest grid a user's min_num_intervals may ask for
_MAX_POINTS = int(np.iinfo(np.int32).max)  # point ids cross into C++ as int32
# An initialization beyond this is no t-SNE map (they span tens of units) and
# would overflow the squared distances of the gradient.
_MAX_INIT_ABS = 1e10
# Inputs whose largest |value| lies outside [2^-40, 2^40] are scaled by a power
# of two (exactly) before the k-NN search, so that float32 distances and their
# squares neither overflow nor underflow; t-SNE affinities do not change under
# a scaling of the input (each row's precision is calibrated), nor does the
# PCA initialization, which is rescaled anyway.
_SAFE_EXPONENT = 40
_DIVERGED = ("t-SNE diverged: the map holds NaN or infinite coordinates; lower learning_rate "
             "(or the exaggeration), or start from a smaller initialization")


# ------------------------------------------------------------------ affinities

def _joint_from_conditional(indices: np.ndarray, conditional: np.ndarray,
                            n_threads: int = 1) -> scipy.sparse.csr_array:
    """P = (P_{j|i} + P_{i|j}) / 2n: symmetric, sums to one (built in C++).
    A neighbour a row lists twice adds up; the public functions reject that."""
    indices = np.asarray(indices)
    n = indices.shape[0]
    if indices.dtype != np.int32 and indices.size and (indices.min() < 0 or indices.max() >= n):
        # Checked before the cast: int64 id 2^32 + 1 would wrap to 1.
        raise ValueError(f"neighbour indices must lie in [0, {n})")
    indptr, columns, values = _core.tsne_symmetrize_affinities(
        np.ascontiguousarray(indices, dtype=np.int32), np.ascontiguousarray(conditional, dtype=np.float64),
        n_threads)
    return scipy.sparse.csr_array((values, columns, indptr), shape=(n, n))


def _check_knn_indices(indices: Any, name: str = "indices") -> np.ndarray:
    """A k-NN index array (n, k) as int32: integers (float ids are rejected,
    not truncated) in [0, n), no point listed as its own neighbour, no
    neighbour listed twice in a row."""
    if _device.locate(indices) == "cuda" or _device.is_torch(indices):
        raise TypeError(f"{name} must be a numpy array (the affinities are built on the CPU)")
    indices = as_array(indices, name)
    if indices.dtype.kind not in "iu":
        raise TypeError(
            f"{name} must hold integers (k-NN indices), got dtype {indices.dtype}; "
            f"float ids are not truncated: convert exact ids explicitly, e.g. {name}.astype('int64')"
        )
    if indices.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_points, k), got shape {indices.shape}")
    n, k = indices.shape
    if n == 0 or k == 0:
        raise ValueError(f"{name} is empty (shape {indices.shape}); each of n >= 1 points needs k >= 1 neighbours")
    if n > _MAX_POINTS:
        raise ValueError(f"{name} has {n} rows; at most {_MAX_POINTS} points are supported")
    low, high = int(indices.min()), int(indices.max())
    if low < 0 or high >= n:
        raise ValueError(f"{name} must lie in [0, n) = [0, {n}) (one row per point), got values from {low} to {high}")
    indices = np.ascontiguousarray(indices, dtype=np.int32)
    own = np.flatnonzero((indices == np.arange(n, dtype=np.int32)[:, None]).any(axis=1))
    if own.size:
        raise ValueError(
            f"{name} lists point {own[0]} as its own neighbour (row {own[0]}); k-NN lists for t-SNE exclude "
            "the point itself: drop that column (latentcore.knn excludes it by default)"
        )
    if k > 1:
        ordered = np.sort(indices, axis=1)
        repeated = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
        if repeated.size:
            raise ValueError(f"{name} row {repeated[0]} lists a neighbour twice; each row needs k distinct neighbours")
    return indices


def _check_knn_distances(distances: Any, shape: tuple[int, int], name: str = "distances") -> np.ndarray:
    """k-NN distances of the indices' shape: real, finite, non-negative."""
    if _device.locate(distances) == "cuda" or _device.is_torch(distances):
        raise TypeError(f"{name} must be a numpy array (the affinities are built on the CPU)")
    distances = as_array(distances, name)
    if distances.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {distances.dtype}")
    if distances.shape != tuple(shape):
        raise ValueError(f"{name} must have the shape of the indices {tuple(shape)}, got {distances.shape}")
    low, high = distances.min(), distances.max()  # NaN propagates into both
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"{name} must be finite and non-negative: it contains NaN or infinite values")
    if low < 0:
        raise ValueError(f"{name} must be finite and non-negative, got {low}")
    return distances


def _check_perplexities(perplexity: Any, name: str = "perplexity") -> np.ndarray:
    """One positive finite perplexity, or a non-empty sequence of them."""
    if isinstance(perplexity, (list, tuple, np.ndarray)):
        values = list(np.asarray(perplexity, dtype=object).ravel()) if isinstance(perplexity, np.ndarray) \
            else list(perplexity)
        if isinstance(perplexity, np.ndarray) and perplexity.ndim > 1:
            raise ValueError(f"{name} must be a number or a 1-D sequence of numbers, got shape {perplexity.shape}")
        if not values:
            raise ValueError(f"{name} is an empty sequence; give at least one perplexity")
        return np.array([_check_one_perplexity(v, f"{name}[{i}]") for i, v in enumerate(values)])
    return np.array([_check_one_perplexity(perplexity, name)])


def _check_one_perplexity(value: Any, name: str) -> float:
    value = check_number(value, name)
    if value <= 0:
        raise ValueError(f"{name}={value!r} must be positive: it is an effective number of neighbours")
    return value


def _check_perplexity_fits(perplexities: np.ndarray, k: int, name: str = "perplexity") -> None:
    """A row of k neighbours has at most perplexity k (entropy log k)."""
    if perplexities.max() > k:
        raise ValueError(
            f"{name}={perplexities.max():g} needs more neighbours than the k={k} given per point: "
            f"lower it to at most {k}, or pass about 3 * perplexity neighbours"
        )


def perplexity_affinities(indices: np.ndarray, distances: np.ndarray, perplexity: float | Sequence[float],
                          *, n_jobs: int | None = None) -> scipy.sparse.csr_array:
    """Gaussian input affinities calibrated to a perplexity, over k-NN lists.

    Parameters
    ----------
    indices : integer array of shape (n, k)
        Each point's neighbours, ids in [0, n), not itself, each once per row,
        as :func:`latentcore.knn` returns them.
    distances : array of shape (n, k)
        The matching euclidean distances: finite, non-negative.
    perplexity : float or sequence of floats
        Effective number of neighbours (0 < perplexity <= k); several values
        average their conditional distributions (multiscale affinities).

    Returns
    -------
    scipy.sparse.csr_array of shape (n, n), float64
        Symmetric joint probabilities summing to one.
    """
    perplexities = _check_perplexities(perplexity)
    indices = _check_knn_indices(indices)
    distances = _check_knn_distances(distances, indices.shape)
    _check_perplexity_fits(perplexities, indices.shape[1])
    n_threads = _backend.resolve_n_jobs(n_jobs)
    conditional = _perplexity_conditional(distances, perplexities, n_threads)
    return _joint_from_conditional(indices, conditional, n_threads)


def _squared_distances(distances: np.ndarray) -> np.ndarray:
    """float32 squared distances for the calibration. A row whose largest
    distance lies outside [2^-40, 2^40] is first scaled by a power of two
    (its conditional probabilities do not change: the calibrated precision
    absorbs any scale), so that squares neither overflow nor underflow."""
    top = distances.max(axis=1).astype(np.float64)
    limit = 2.0 ** _SAFE_EXPONENT
    outside = (top > limit) | ((top > 0) & (top < 1.0 / limit))
    if not outside.any():
        return np.ascontiguousarray(np.asarray(distances, dtype=np.float32) ** 2)
    exponent = np.where(outside, np.frexp(np.where(outside, top, 1.0))[1], 0)
    scaled = np.ldexp(distances.astype(np.float64), -exponent[:, None].astype(np.int32))
    return np.ascontiguousarray(scaled.astype(np.float32) ** 2)


def _perplexity_conditional(distances: np.ndarray, perplexities: np.ndarray, n_threads: int) -> np.ndarray:
    """p_{j|i} over each row's neighbours (rows sum to one), calibrated in C++."""
    sq = _squared_distances(np.asarray(distances))
    conditional = np.empty(sq.shape, dtype=np.float64)
    _core.tsne_perplexity_affinities(sq, np.asarray(perplexities, dtype=np.float64), _PERPLEXITY_TOL,
                                     conditional, n_threads)
    return conditional


def uniform_affinities(indices: np.ndarray) -> scipy.sparse.csr_array:
    """Equal weight on each of a point's k neighbours, symmetrised (openTSNE's Uniform).

    indices : integer array (n, k) of neighbour ids in [0, n), not the point
    itself, each once per row.
    """
    indices = _check_knn_indices(indices)
    return _joint_from_conditional(indices, np.full(indices.shape, 1.0 / indices.shape[1]))


def _affinity_triplets(P: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, columns, values) of a scipy sparse matrix, every index checked
    against its shape before anything follows it (scipy trusts the structure
    of a matrix it is handed: one column equal to n and ``P + P.T`` writes
    out of bounds)."""
    n = P.shape[0]
    fmt = P.format
    if fmt in ("csr", "csc"):
        indptr, indices, data = np.asarray(P.indptr), np.asarray(P.indices), np.asarray(P.data)
        if indptr.ndim != 1 or indptr.shape[0] != n + 1 or indptr.dtype.kind not in "iu":
            raise ValueError(f"precomputed affinities: indptr must have n + 1 = {n + 1} integer entries")
        indptr = indptr.astype(np.int64)
        if indptr[0] != 0 or np.any(np.diff(indptr) < 0):
            raise ValueError("precomputed affinities: indptr must start at 0 and never decrease")
        nnz = int(indptr[-1])
        if indices.ndim != 1 or data.ndim != 1 or indices.shape[0] < nnz or data.shape[0] < nnz \
                or indices.dtype.kind not in "iu":
            raise ValueError("precomputed affinities: indices and data must hold indptr[-1] entries")
        minor = indices[:nnz]
        major = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
        data = data[:nnz]
        # CSC lists the transpose: the same after symmetrisation.
    elif fmt == "coo":
        coords = getattr(P, "coords", None) or (P.row, P.col)
        if len(coords) != 2:
            raise ValueError("precomputed affinities must be a 2-D sparse matrix")
        major, minor, data = (np.asarray(a) for a in (*coords, P.data))
        if not (major.ndim == minor.ndim == data.ndim == 1 and major.shape == minor.shape == data.shape) \
                or major.dtype.kind not in "iu" or minor.dtype.kind not in "iu":
            raise ValueError("precomputed affinities: row, col and data must be 1-D of one length")
    elif fmt == "bsr":
        R, C = P.blocksize
        indptr, indices, data = np.asarray(P.indptr), np.asarray(P.indices), np.asarray(P.data)
        if R < 1 or C < 1 or n % R or n % C or indptr.ndim != 1 or indptr.shape[0] != n // R + 1:
            raise ValueError("precomputed affinities: malformed BSR structure")
        indptr = indptr.astype(np.int64)
        if indptr[0] != 0 or np.any(np.diff(indptr) < 0) or indices.shape[0] < indptr[-1] \
                or data.ndim != 3 or data.shape[0] < indptr[-1] or data.shape[1:] != (R, C) \
                or (indptr[-1] and (indices[:indptr[-1]].min() < 0 or indices[:indptr[-1]].max() >= n // C)):
            raise ValueError("precomputed affinities: malformed BSR structure")
        return _affinity_triplets(P.tocoo())
    else:  # dia, dok, lil: their conversions check lengths; the result is checked as COO
        if fmt == "lil" and any(len(r) != len(d) for r, d in zip(P.rows, P.data)):
            raise ValueError("precomputed affinities: malformed LIL structure")
        return _affinity_triplets(P.tocoo())
    for name, ids in (("row", major), ("column", minor)):
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= n):
            raise ValueError(
                f"precomputed affinities: {name} indices must lie in [0, n) = [0, {n}), got values from "
                f"{int(ids.min())} to {int(ids.max())}"
            )
    return major.astype(np.int64), minor.astype(np.int64), data


def _checked_affinities(P: Any) -> scipy.sparse.csr_array:
    """A user's precomputed P, every part checked before anything reads it:
    square, structure and indices in range, values finite and non-negative.
    Self-affinities (the diagonal) have no meaning in t-SNE and are dropped;
    the rest is symmetrised and normalised to sum one as t-SNE requires."""
    if not scipy.sparse.issparse(P):
        raise TypeError(f"precomputed affinities must be a scipy sparse matrix, got {type(P).__name__}")
    if len(P.shape) != 2 or P.shape[0] != P.shape[1]:
        raise ValueError(f"precomputed affinities must be square (n, n), got shape {P.shape}")
    n = P.shape[0]
    if n > _MAX_POINTS:
        raise ValueError(f"precomputed affinities have {n} rows; at most {_MAX_POINTS} points are supported")
    if np.dtype(P.dtype).kind not in "biuf":
        raise TypeError(f"precomputed affinities must hold real numbers, got dtype {P.dtype}")
    rows, columns, values = _affinity_triplets(P)
    values = values.astype(np.float64)
    if values.size and not (np.isfinite(values.min()) and np.isfinite(values.max())):
        raise ValueError("precomputed affinities must be finite and non-negative: they contain NaN or inf")
    if values.size and values.min() < 0:
        raise ValueError(f"precomputed affinities must be finite and non-negative, got {values.min()}")
    keep = (rows != columns) & (values > 0)
    rows, columns, values = rows[keep], columns[keep], values[keep]
    if values.size == 0:
        raise ValueError("precomputed affinities have no positive entry off the diagonal: every point "
                         "needs some affinity to another")
    values = values / values.max()  # the sum below stays finite whatever the scale
    A = scipy.sparse.csr_array((values, (rows, columns)), shape=(n, n))  # duplicates add up
    P = scipy.sparse.csr_array(A + A.T)
    P.data /= P.data.sum()
    P.sort_indices()
    return P


# ------------------------------------------------------------------ initialization

def _pca_initialization(X: np.ndarray, n_components: int, random_state: np.random.Generator) -> np.ndarray:
    """The leading principal components, scaled as openTSNE does (std 1e-4 on
    the first axis: small, so early forces dominate). Axes the data cannot
    fill (fewer features than components, or no spread) are random."""
    centred = X - X.mean(axis=0)
    _, _, vt = np.linalg.svd(centred[: min(len(X), 100_000)], full_matrices=False)
    Y = centred @ vt[:n_components].T
    if Y.shape[1] == 0 or Y[:, 0].std() == 0:
        return _random_initialization(X, n_components, random_state)
    Y *= np.sign(Y[np.abs(Y).argmax(axis=0), np.arange(Y.shape[1])])  # a fixed sign per axis
    Y = Y / Y[:, 0].std() * 1e-4
    missing = n_components - Y.shape[1]
    return np.concatenate([Y, random_state.normal(0.0, 1e-4, (len(X), missing))], axis=1) if missing else Y


def _random_initialization(X: np.ndarray, n_components: int, random_state: np.random.Generator) -> np.ndarray:
    return random_state.normal(0.0, 1e-4, (X.shape[0], n_components))


#: Initializations by name; each takes (X, n_components, random_state).
INITIALIZATIONS: dict[str, Callable[..., np.ndarray]] = {
    "pca": _pca_initialization,
    "random": _random_initialization,
}


# ------------------------------------------------------------------ repulsive forces

class _Repulsion:
    """A repulsion method on its device: numpy arrays and the C++ kernels, or
    cupy arrays and their CUDA twins. The arithmetic is written once for
    both array libraries."""

    def __init__(self, dof: float, device: _device.Device):
        self.dof = dof
        self.device = device
        self.xp = device.xp

    def run(self, kernel: str, *args) -> None:
        self.device.call(kernel, *args)

    def exact_against(self, reference, points):
        """Each point's repulsion from a fixed reference set, sum_j K_ij
        (y_i - r_j), and its sum_j w_ij, directly: (m, c) and (m,)."""
        xp = self.xp
        repulsion = xp.empty_like(points)
        norm = xp.empty(points.shape[0])
        if not self.device.is_gpu:
            self.run("tsne_repulsion_from", reference, points, self.dof, repulsion, norm)
            return repulsion, norm
        # On the GPU, in dense blocks of bounded memory.
        step = max(1, (1 << 22) // max(1, reference.shape[0]))
        for start in range(0, points.shape[0], step):
            diff = points[start:start + step, None, :] - reference[None, :, :]
            factor = 1.0 / (1.0 + (diff * diff).sum(axis=2) / self.dof)
            w = factor ** self.dof
            repulsion[start:start + step] = ((w * factor)[:, :, None] * diff).sum(axis=1)
            norm[start:start + step] = w.sum(axis=1)
        return repulsion, norm


class _ExactRepulsion(_Repulsion):
    """O(n^2) reference: sum_j w_ij^(1+1/dof) (y_i - y_j) and Z = sum_{i != j} w_ij."""

    def __init__(self, dof: float, device: _device.Device, **_):
        super().__init__(dof, device)

    def against(self, reference, points):
        """Each point's repulsion from a fixed reference embedding and its own
        normaliser sum_j w_ij, both (m, c) / (m,)."""
        return self.exact_against(reference, points)

    def __call__(self, Y):
        repulsion = self.xp.empty_like(Y)
        z_terms = self.xp.empty(Y.shape[0])
        self.run("tsne_exact_repulsion", Y, self.dof, repulsion, z_terms)
        return repulsion, float(z_terms.sum())


class _FFTRepulsion(_Repulsion):
    """Repulsion and Z by polynomial interpolation on an equispaced grid.

    Charges [1, y] per point go to the grid, which is convolved with the
    force kernel K = w^(1+1/dof). Z needs no second kernel: since
    K (1 + r^2/dof) = w, sum_ij w_ij expands into the same potentials. The
    grid spans the embedding's bounding cube with at least
    ``min_num_intervals`` boxes of at most ``ints_in_interval`` units, each
    with ``n_interpolation_points`` nodes per dimension; the convolution is a
    circulant embedding of twice the grid, transformed with scipy.fft (on the
    GPU, cupy.fft in double precision).
    """

    def __init__(self, dof: float, device: _device.Device, n_interpolation_points: int,
                 min_num_intervals: int, ints_in_interval: float):
        super().__init__(dof, device)
        self.n_threads = device.n_threads
        self.p = n_interpolation_points
        self.min_boxes = min_num_intervals
        self.ints_in_interval = ints_in_interval

    def grid(self, points) -> tuple[int, float, float]:
        dim = points.shape[1]
        lo, hi = float(points.min()), float(points.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise FloatingPointError(_DIVERGED)
        span = max(hi - lo, 1e-12)
        # The FFT works on (2 * n_boxes * p)^dim values: bounded, a 3-D map
        # trades box width (accuracy) for memory as it grows.
        most = max(self.min_boxes, int(_MAX_FFT_VALUES ** (1.0 / dim)) // (2 * self.p))
        n_boxes = max(self.min_boxes, int(min(np.ceil(span / self.ints_in_interval), most)))
        return n_boxes, lo, span * (1.0 + 1e-9) / n_boxes

    def kernel_spectrum(self, dim: int, side: int, fft_side: int, spacing: float) -> np.ndarray:
        """FFT of the force kernel laid out as a circulant of ``fft_side``
        (even) per axis, offset o at index o mod fft_side. The kernel is real
        and even, so its spectrum is the type-1 DCT of one quadrant (a quarter
        of the work in 2-D), mirrored."""
        half = fft_side // 2
        offsets = np.arange(half + 1, dtype=np.float64) * spacing
        offsets[side:] = np.inf  # offsets no pair of nodes has: kernel 0
        sq = np.zeros((half + 1,) * dim)
        for axis in range(dim):
            shape = [1] * dim
            shape[axis] = half + 1
            sq = sq + offsets.reshape(shape) ** 2
        factor = 1.0 / (1.0 + sq / self.dof)
        force = factor * factor if self.dof == 1.0 else factor ** (self.dof + 1.0)
        quadrant = scipy.fft.dctn(force, type=1, workers=self.n_threads)
        mirror = np.concatenate([np.arange(half + 1), np.arange(half - 1, 0, -1)])
        return quadrant[np.ix_(*([mirror] * (dim - 1) + [np.arange(half + 1)]))]

    def circulant_spectrum(self, dim: int, side: int, fft_side: int, spacing: float):
        """The real spectrum of the force kernel laid out as a circulant of
        ``fft_side`` per axis, computed on the device by a whole transform:
        the same values as :meth:`kernel_spectrum`'s mirrored DCT."""
        xp = self.xp
        index = xp.arange(fft_side, dtype=xp.float64)
        offsets = xp.minimum(index, fft_side - index) * spacing
        offsets[side:fft_side - side + 1] = xp.inf  # offsets no pair of nodes has: kernel 0
        sq = xp.zeros((fft_side,) * dim)
        for axis in range(dim):
            shape = [1] * dim
            shape[axis] = fft_side
            sq = sq + offsets.reshape(shape) ** 2
        factor = 1.0 / (1.0 + sq / self.dof)
        force = factor * factor if self.dof == 1.0 else factor ** (self.dof + 1.0)
        return xp.fft.rfftn(force).real  # real and even: the imaginary part is rounding

    def convolve(self, grid, spacing: float):
        """Each charge grid (n_charges, side, ...) convolved with the force
        kernel, as float64 of the same shape.

        On the GPU, whole padded double-precision transforms
        (:func:`double_convolve`). On the CPU:
        single precision for the transforms: twice as fast, and its rounding
        stays far below the interpolation error (1e-3 at 3 points per box).
        The grid fills only the first half of each padded axis: transforming
        one axis at a time skips the zero half in all later stages (and the
        inverse crops after each stage), which rfftn/irfftn would not.
        """
        if self.device.is_gpu:
            return double_convolve(self.xp.fft, grid, lambda *a: self.circulant_spectrum(*a, spacing))
        side, last = grid.shape[1], grid.ndim - 1
        fft_side = 2 * scipy.fft.next_fast_len(side, real=True)
        out = scipy.fft.rfft(grid.astype(np.float32), n=fft_side, axis=last, workers=self.n_threads)
        for axis in range(last - 1, 0, -1):
            out = scipy.fft.fft(out, n=fft_side, axis=axis, workers=self.n_threads)
        out *= self.kernel_spectrum(last, side, fft_side, spacing).astype(np.float32)
        for axis in range(1, last):
            out = scipy.fft.ifft(out, axis=axis, workers=self.n_threads)
            out = out[(slice(None),) * axis + (slice(0, side),)]
        return scipy.fft.irfft(out, n=fft_side, axis=last, workers=self.n_threads)[..., :side].astype(np.float64)

    def potentials(self, sources, charges, targets, covering):
        """At each target, sum over sources of K * charges (n_targets,
        n_charges); the grid spans the points of ``covering``."""
        dim, n_charges = sources.shape[1], charges.shape[1]
        n_boxes, lower, box_width = self.grid(covering)
        side = n_boxes * self.p
        values = self.xp.empty((n_charges, side ** dim))
        self.run("tsne_scatter_charges", sources, charges, n_boxes, self.p, lower, box_width, values)
        fields = self.convolve(values.reshape((n_charges,) + (side,) * dim), box_width / self.p)
        out = self.xp.empty((targets.shape[0], n_charges))
        self.run("tsne_gather_potentials", targets, self.xp.ascontiguousarray(fields).reshape(n_charges, -1),
                 n_boxes, self.p, lower, box_width, out)
        return out

    def against(self, reference, points):
        """As _ExactRepulsion.against, through one grid covering both sets."""
        xp = self.xp
        sq_ref = xp.einsum("ij,ij->i", reference, reference)[:, None]
        charges = xp.concatenate([xp.ones_like(sq_ref), reference, sq_ref], axis=1)
        pot = self.potentials(reference, charges, points, xp.concatenate([reference, points]))
        ones, first, squares = pot[:, 0], pot[:, 1:-1], pot[:, -1]
        repulsion = points * ones[:, None] - first
        sq = xp.einsum("ij,ij->i", points, points)
        cross = xp.einsum("ij,ij->i", points, first)
        return repulsion, ones * (1.0 + sq / self.dof) + (squares - 2.0 * cross) / self.dof

    def __call__(self, Y):
        far = self._far_points(Y)
        if far is None:
            return self._on_grid(Y)
        # A few points flung far out would stretch the grid (and the FFT) to
        # cover them; they are cheaper computed exactly, against every point.
        near_y, far_y = Y[~far], Y[far]
        repulsion = self.xp.empty_like(Y)
        near_rep, z = self._on_grid(near_y)
        from_far, near_norm = self.exact_against(far_y, near_y)
        repulsion[~far] = near_rep + from_far
        repulsion[far], far_norm = self.exact_against(Y, far_y)
        # Z gains the near-far pairs both ways and the far-far pairs (each far
        # point's norm counts itself once: w_ii = 1).
        return repulsion, z + float(near_norm.sum() + far_norm.sum()) - far_y.shape[0]

    def _far_points(self, Y):
        """A mask of the few points well outside the box holding all but 0.2%
        of the map (quantiles from a fixed sample of ~8k points), or None when
        leaving them out would not shrink the grid by half or they are many."""
        xp = self.xp
        sample = Y[:: max(1, Y.shape[0] // 8192)]
        lo, hi = xp.quantile(sample, xp.asarray([0.001, 0.999]), axis=0)
        margin = 0.25 * (hi - lo) + 1.0
        lo, hi = lo - margin, hi + margin
        if float((Y.max(axis=0) - Y.min(axis=0)).max()) <= 2.0 * float((hi - lo).max()):
            return None
        far = ((Y < lo) | (Y > hi)).any(axis=1)
        return far if int(far.sum()) <= _MAX_FAR_POINTS else None

    def _on_grid(self, Y):
        xp = self.xp
        pot = self.potentials(Y, xp.concatenate([xp.ones((Y.shape[0], 1)), Y], axis=1), Y, Y)
        ones, first = pot[:, 0], pot[:, 1:]
        repulsion = Y * ones[:, None] - first
        # Z = sum_ij K_ij (1 + |y_i - y_j|^2 / dof); expanded, and with K
        # symmetric, sum_ij K_ij |y_j|^2 = sum_i |y_i|^2 ones_i: no |y|^2 charge needed.
        sq_norm = xp.einsum("ij,ij->i", Y, Y)  # einsum: sum(axis=1) is slow over 1-3 columns
        cross = xp.einsum("ij,ij->i", Y, first)
        z = float((ones * (1.0 + 2.0 * sq_norm / self.dof) - 2.0 * cross / self.dof).sum())
        return repulsion, z - Y.shape[0]  # less each point's w_ii = 1


def double_convolve(fft, grid, kernel_spectrum):
    """The grid convolution in double precision with whole padded transforms
    of ``fft`` (cupy.fft on the GPU; scipy.fft gives the reference the GPU
    tests compare with). kernel_spectrum(dim, side, fft_side) is the kernel's FFT."""
    side, dim = grid.shape[1], grid.ndim - 1
    fft_shape = (2 * scipy.fft.next_fast_len(side, real=True),) * dim
    axes = tuple(range(1, dim + 1))
    spectrum = fft.rfftn(grid, s=fft_shape, axes=axes)
    spectrum *= kernel_spectrum(dim, side, fft_shape[0])
    fields = fft.irfftn(spectrum, s=fft_shape, axes=axes)
    return fields[(slice(None),) + (slice(0, side),) * dim]


#: Repulsive-force methods by name.
NEGATIVE_GRADIENT_METHODS = {"fft": _FFTRepulsion, "exact": _ExactRepulsion}


# ------------------------------------------------------------------ optimization

class _Objective:
    """The KL divergence gradient for fixed affinities P, on the repulsion
    method's device (P goes there once)."""

    def __init__(self, P: scipy.sparse.csr_array, repulsion: _Repulsion, dof: float):
        put = repulsion.device.put
        self.indptr = put(P.indptr.astype(np.int64))
        self.indices = put(P.indices.astype(np.int32))
        self.weights = put(P.data.astype(np.float32))  # halves the memory traffic of the hottest loop
        self.repulsion = repulsion
        self.dof = dof

    def __call__(self, Y, exaggeration: float, with_kl: bool):
        """Gradient (n, c) and, when asked, the KL divergence of the
        un-exaggerated P (openTSNE's scale: the constant 4 is in the step size)."""
        xp = self.repulsion.xp
        forces = xp.empty_like(Y)
        kl_terms = xp.empty(Y.shape[0]) if with_kl else None
        self.repulsion.run("tsne_attractive_forces", self.indptr, self.indices, self.weights, Y, self.dof,
                           float(exaggeration), forces, kl_terms)
        repulsion, z = self.repulsion(Y)
        forces -= repulsion / z
        kl = float(kl_terms.sum()) + math.log(z) if with_kl else None
        return forces, kl


# ------------------------------------------------------------------ estimator

def _check_init_param(value: Any, name: str) -> None:
    """None, an initialization's name, or an array (its shape and values are
    checked in ``fit``, against the number of points)."""
    if value is None or hasattr(value, "shape") or isinstance(value, (list, tuple)):
        return
    if not isinstance(value, str):
        raise TypeError(f"{name} must be {sorted(INITIALIZATIONS)} or an array of shape (n, n_components), "
                        f"got {type(value).__name__}")
    check_choice(value, name, INITIALIZATIONS.keys())


def _check_callbacks(value: Any, name: str) -> None:
    if value is not None and not callable(value):
        if not isinstance(value, (list, tuple)) or not all(callable(cb) for cb in value):
            raise TypeError(f"{name} must be a callable or a list of callables")


def _same_init(a: Any, b: Any) -> bool:
    if a is b or (isinstance(a, str) and isinstance(b, str)):
        return a == b
    if isinstance(a, str) or isinstance(b, str):
        return False
    try:
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    except (TypeError, ValueError):  # e.g. GPU arrays, which numpy does not read implicitly
        return False


def _shown(init: Any) -> str:
    return repr(init) if isinstance(init, str) else f"<array of shape {getattr(init, 'shape', '?')}>"


class TSNE(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """t-distributed stochastic neighbour embedding with FFT-accelerated gradients.

    Parameters
    ----------
    n_components : {1, 2, 3}, default 2
    perplexity : float, default 30
        Effective neighbours per point; k-NN lists of ``3 * perplexity``.
    early_exaggeration : float, default 12
    early_exaggeration_iter : int, default 250
    exaggeration : float, optional
        Late exaggeration (Linderman et al. 2019), applied from iteration
        ``late_exaggeration_start`` (counted from the start, early
        exaggeration included; default: right after early exaggeration).
    late_exaggeration_start : int, optional
    n_iter : int, default 750
        All iterations, the early exaggeration phase included.
    learning_rate : float or "auto"
        "auto": n / exaggeration of each phase (n / early_exaggeration first).
    momentum : (float, float), default (0.5, 0.8)
        During and after early exaggeration.
    dof : float, default 1
        Degrees of freedom of the output kernel ``(1 + d^2/dof)^-dof``;
        below 1 gives heavier tails and finer clusters (Kobak et al. 2019).
    init : {"pca", "random"} or array of shape (n, n_components), optional
        The initial map, under scikit-learn's name. "pca" (the default when
        neither ``init`` nor ``initialization`` is given): the leading
        principal components, scaled to a standard deviation of 1e-4 on the
        first axis (random where the data has no coordinates: precomputed
        input); "random": drawn from N(0, 1e-4^2); an array: used as it is
        (finite, within +-1e10).
    initialization : {"pca", "random"} or array of shape (n, n_components), optional
        The same, under openTSNE's name. Give either: ``init`` and
        ``initialization`` both given with different values raise ValueError.
    affinities : "perplexity", "multiscale" or "uniform"
        "multiscale" averages perplexities ``perplexity`` and ``perplexity / 4``
        unless ``perplexity`` is a list; "uniform" weighs each of the
        ``int(perplexity)`` nearest neighbours equally.
    metric : str, default "euclidean"
        Any :func:`latentcore.knn` metric, or "precomputed" for a square
        distance matrix.
    negative_gradient_method : {"fft", "exact"}
    n_interpolation_points : int, default 3
    min_num_intervals : int, optional
        Boxes per dimension at least; default 50, or 10 for 3-D maps (a 3-D
        grid grows with the cube of it).
    ints_in_interval : float, default 1
    random_state : int or numpy Generator, optional
    n_jobs : int, optional
    verbose : bool or int
        A progress bar with the KL divergence every 50 iterations.
    callbacks : callable or list, optional
        ``f(iteration, kl_divergence, embedding)`` every 50 iterations;
        returning True stops the optimization.

    Attributes
    ----------
    embedding_ : float32 array (n, n_components)
    kl_divergence_ : float
    n_iter_ : int
    affinities_ : scipy.sparse.csr_array (n, n)

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> import latentcore
    >>> Y = latentcore.TSNE(random_state=0).fit_transform(load_digits().data)
    >>> Y.shape
    (1797, 2)
    """

    def __init__(self, n_components: int = 2, *, perplexity: float | Sequence[float] = 30.0,
                 early_exaggeration: float = 12.0, early_exaggeration_iter: int = 250,
                 exaggeration: float | None = None, late_exaggeration_start: int | None = None,
                 n_iter: int = 750, learning_rate: float | str = "auto",
                 momentum: tuple[float, float] = (0.5, 0.8), dof: float = 1.0,
                 init: str | np.ndarray | None = None, initialization: str | np.ndarray | None = None,
                 affinities: str = "perplexity",
                 metric: str = "euclidean", negative_gradient_method: str = "fft",
                 n_interpolation_points: int = 3, min_num_intervals: int | None = None,
                 ints_in_interval: float = 1.0, random_state: int | np.random.Generator | None = None,
                 n_jobs: int | None = None, verbose: bool = False,
                 callbacks: Callable | Sequence[Callable] | None = None):
        self.n_components = n_components
        self.perplexity = perplexity
        self.early_exaggeration = early_exaggeration
        self.early_exaggeration_iter = early_exaggeration_iter
        self.exaggeration = exaggeration
        self.late_exaggeration_start = late_exaggeration_start
        self.n_iter = n_iter
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.dof = dof
        self.init = init
        self.initialization = initialization
        self.affinities = affinities
        self.metric = metric
        self.negative_gradient_method = negative_gradient_method
        self.n_interpolation_points = n_interpolation_points
        self.min_num_intervals = min_num_intervals
        self.ints_in_interval = ints_in_interval
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.callbacks = callbacks

    # -- parameters

    _parameter_specs = {
        "n_components": Integer(low=1, high=3),
        "perplexity": Custom(lambda value, name: _check_perplexities(value, name),
                             "a number > 0 or a list of numbers > 0"),
        "early_exaggeration": Real(low=0.0, low_inclusive=False),
        "early_exaggeration_iter": Integer(low=0),
        "exaggeration": Options(None, Real(low=0.0, low_inclusive=False)),
        "late_exaggeration_start": Options(None, Integer(low=0)),
        "n_iter": Integer(),
        "learning_rate": Options("auto", Real(low=0.0, low_inclusive=False)),
        "momentum": Pair(Real(low=0.0, high=1.0, high_inclusive=False), "during, after early exaggeration"),
        "dof": Real(low=0.0, low_inclusive=False),
        "init": Custom(_check_init_param, "'pca', 'random' or an array (n, n_components)"),
        "initialization": Custom(_check_init_param, "'pca', 'random' or an array (n, n_components)"),
        "affinities": Choice("perplexity", "multiscale", "uniform"),
        "metric": Custom(lambda value, name: _tsne_metric(value), "a k-NN metric or 'precomputed'"),
        "negative_gradient_method": Choice(*NEGATIVE_GRADIENT_METHODS),
        "n_interpolation_points": Integer(low=2, high=16),
        "min_num_intervals": Options(None, Integer()),
        "ints_in_interval": Real(low=0.0, low_inclusive=False),
        "random_state": RANDOM_STATE,
        "n_jobs": N_JOBS,
        "verbose": VERBOSE,
        "callbacks": Custom(_check_callbacks, "a callable or a list of callables"),
    }

    def _check_settings(self) -> None:
        """Every parameter that does not depend on the data, before any work."""
        check_params(self)
        self._init()  # init and initialization agree
        if self.min_num_intervals is not None:
            intervals, points = int(self.min_num_intervals), int(self.n_interpolation_points)
            values = (2 * intervals * points) ** int(self.n_components)
            if values > _MAX_MIN_FFT_VALUES:
                raise InvalidParameterError(
                    f"min_num_intervals={intervals} asks for an FFT grid of {values} values in "
                    f"{self.n_components}-D (at most {_MAX_MIN_FFT_VALUES}); lower min_num_intervals or "
                    "n_interpolation_points"
                )

    def _init(self):
        """The initialization asked for: ``init`` (scikit-learn's name) or
        ``initialization`` (openTSNE's); "pca" when neither is given."""
        init, initialization = self.init, self.initialization
        if init is None:
            return "pca" if initialization is None else initialization
        if initialization is not None and not _same_init(init, initialization):
            raise InvalidParameterError(
                f"init={_shown(init)} and initialization={_shown(initialization)} differ; give one of them "
                "(init is scikit-learn's name, initialization openTSNE's)"
            )
        return init

    @property
    def _n_features_out(self) -> int:
        """Output columns, for get_feature_names_out ("tsne0", "tsne1", ...)."""
        return self.embedding_.shape[1]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.pairwise = self.metric == "precomputed"
        tags.transformer_tags.preserves_dtype = ["float32"]  # the map is float32 whatever X is
        return tags

    def check_n_samples(self, n: int, *, perplexity_bound: bool = True) -> None:
        """Raises ValueError or TypeError, naming the parameter, unless every
        parameter suits a map of n points: at least 4 points, and a
        perplexity below (n - 1) / 3 where the affinities come from k-NN
        lists (``perplexity_bound``; not for a precomputed P). Lets a caller
        fail before any work, as ``fit`` does."""
        self._check_settings()
        if n < 4:
            raise ValueError(f"t-SNE needs at least 4 points, got n_samples={n}")
        if perplexity_bound:
            for p in _check_perplexities(self.perplexity):
                if p >= (n - 1) / 3:
                    raise ValueError(
                        f"perplexity={p} must be positive and below (n - 1) / 3 = {(n - 1) / 3:.4g} "
                        f"for n={n} points; lower it"
                    )

    def _perplexities(self) -> np.ndarray:
        perplexities = _check_perplexities(self.perplexity)
        if self.affinities == "multiscale" and np.ndim(self.perplexity) == 0:
            return np.array([perplexities[0], perplexities[0] / 4.0])
        return perplexities

    def _repulsion(self, device: _device.Device):
        intervals = self.min_num_intervals
        if intervals is None:
            intervals = 10 if self.n_components == 3 else 50
        return NEGATIVE_GRADIENT_METHODS[self.negative_gradient_method](
            dof=float(self.dof), device=device, n_interpolation_points=int(self.n_interpolation_points),
            min_num_intervals=int(intervals), ints_in_interval=float(self.ints_in_interval))

    # -- fitting

    def _n_neighbors(self, available: int) -> int:
        if self.affinities == "uniform":
            return min(available, max(1, int(self._perplexities().max())))
        return min(available, max(1, int(3 * self._perplexities().max())))

    def _conditional(self, distances: np.ndarray, n_threads: int) -> np.ndarray:
        """Each row's p_{j|i} over its neighbours (rows sum to one)."""
        if self.affinities == "uniform":
            return np.full(distances.shape, 1.0 / distances.shape[1])
        return _perplexity_conditional(distances, self._perplexities(), n_threads)

    def _neighbors(self, X, n_threads: int) -> tuple[np.ndarray, np.ndarray]:
        k = self._n_neighbors(X.shape[0] - 1)
        if _tsne_metric(self.metric) == "precomputed":
            D = X.copy()
            np.fill_diagonal(D, np.inf)
            idx = np.argsort(D, axis=1, kind="stable")[:, :k].astype(np.int32)
            return idx, np.take_along_axis(D, idx, axis=1)
        return knn(X, k, metric=self.metric, n_jobs=n_threads, device="cpu")

    def _input_affinities(self, X, n_threads: int):
        """(P, X as an array or None, n) from whatever the user passed; every
        part of it is checked before any kernel reads it."""
        if scipy.sparse.issparse(X):
            P = _checked_affinities(X)
            self.check_n_samples(P.shape[0], perplexity_bound=False)
            return P, None, P.shape[0]
        if isinstance(X, tuple) and len(X) == 2:  # a precomputed (indices, distances) k-NN result
            indices = _check_knn_indices(X[0], "precomputed k-NN indices")
            distances = _check_knn_distances(X[1], indices.shape, "precomputed k-NN distances")
            n = indices.shape[0]
            self.check_n_samples(n)
            if self.affinities != "uniform":
                _check_perplexity_fits(self._perplexities(), indices.shape[1])
            return self._affinities_from_knn(indices, distances, n_threads), None, n
        data = check_matrix(self._scaled(X), "X")
        if _tsne_metric(self.metric) == "precomputed" and (data.shape[0] != data.shape[1] or np.any(data < 0)):
            raise ValueError(
                f"metric='precomputed' needs a square non-negative distance matrix, got shape {data.shape}"
            )
        self.check_n_samples(data.shape[0])
        indices, distances = self._neighbors(data, n_threads)
        return self._affinities_from_knn(indices, distances, n_threads), data, data.shape[0]

    def _scaled(self, X):
        """X times the power of two 2^e that keeps its largest |value| within
        [2^-40, 2^40] (e = 0 for most data); e is remembered for transform()."""
        self._input_exponent = 0
        if isinstance(X, np.ndarray) and X.dtype.kind == "f" and X.size:
            self._input_exponent = rescaling_exponent(X, _SAFE_EXPONENT)
            if self._input_exponent:
                X = np.ldexp(X, self._input_exponent).astype(X.dtype, copy=False)  # exact
        return X

    def _affinities_from_knn(self, indices, distances, n_threads: int):
        return _joint_from_conditional(np.asarray(indices), self._conditional(distances, n_threads), n_threads)

    def _init_name(self) -> str:
        return "initialization" if self.init is None else "init"

    def _initial_embedding(self, data, n: int, rng: np.random.Generator) -> np.ndarray:
        init = self._init()
        if isinstance(init, str):
            if init == "pca" and (data is None or self.metric == "precomputed"):
                init = "random"  # no coordinates to project: precomputed input
            source = data if data is not None else np.empty((n, 0))
            Y = INITIALIZATIONS[init](np.asarray(source, np.float64), self.n_components, rng)
        else:
            Y = _check_initialization(init, (n, self.n_components), self._init_name())
        return np.ascontiguousarray(Y, dtype=np.float64)

    def fit(self, X: Any, y: Any = None) -> "TSNE":
        """Embeds X and stores ``embedding_``; returns self.

        X : float array (n, d) or pandas DataFrame; a square distance matrix
        with ``metric="precomputed"``; a ``(indices, distances)`` k-NN result;
        or a scipy sparse matrix of affinities P. A cupy array (or CUDA torch
        tensor) runs the gradient descent on the GPU; the affinities are
        built on the CPU either way.

        Every input is checked before any kernel reads it: k-NN indices are
        integers in [0, n) without the point itself or a repeated neighbour,
        and at least ``perplexity`` of them per point; distances finite and
        non-negative; P square with every index in range and finite,
        non-negative values (its diagonal is dropped: t-SNE has no
        self-affinity). Bad input or parameters raise ValueError or
        TypeError naming the argument; a run that diverges (an enormous
        learning rate) raises FloatingPointError rather than return NaN.
        """
        self._check_settings()  # before any work, whatever X is
        record_features(self, X, reset=True)
        X = host_array_like(X)  # a pandas DataFrame: its values
        self._origin = _device.Origin("cpu")
        if not (scipy.sparse.issparse(X) or isinstance(X, tuple)):
            X, self._origin = _device.unwrap(X)
            X = _device.to_host(X)  # affinities are built on the CPU
        n_threads = _backend.resolve_n_jobs(self.n_jobs)
        device = _device.get(self._origin.device, self.n_jobs)
        init = self._init()
        if not isinstance(init, str):  # checked before the affinities are built
            _check_initialization(init, (_n_points(X), self.n_components), self._init_name())
        P, data, n = self._input_affinities(X, n_threads)
        rng = np.random.default_rng(self.random_state)
        Y = self._initial_embedding(data, n, rng)
        Y = device.put(Y)
        objective = _Objective(P, self._repulsion(device), float(self.dof))

        def step(Y, gradient, update, gains, lr, momentum):
            device.call("tsne_gradient_step", Y, gradient, update, gains, lr, momentum, _MIN_GAIN, True)

        Y, kl, n_iter = self._optimize(Y, objective, step)
        embedding = np.asarray(device.get(Y), dtype=np.float32)
        if not (np.isfinite(kl) and np.all(np.isfinite(embedding))):
            raise FloatingPointError(_DIVERGED)
        self.affinities_ = P
        self._fit_X = None if self.metric == "precomputed" else data  # transform() searches it
        self.embedding_ = embedding
        self.kl_divergence_ = kl
        self.n_iter_ = n_iter
        return self

    def fit_transform(self, X: Any, y: Any = None):
        """Fits and returns the embedding, float32 (n, n_components), as the
        caller's array type: numpy, or cupy / torch for cupy / torch input."""
        self.fit(X)
        return self._on_origin(self.embedding_, self._origin)

    @staticmethod
    def _on_origin(result: np.ndarray, origin: _device.Origin):
        """A host result on the device and as the array type the input came in."""
        return origin.give_back(_device.gpu().put(result) if origin.device == "cuda" else result)

    def transform(self, Y: Any, *, n_iter: int = 250, learning_rate: float = 1.0) -> np.ndarray:
        """Places new points into the fitted map, which stays fixed.

        Each new point gets affinities to its nearest training points (the same
        perplexity and metric as the fit), starts at their affinity-weighted
        mean position, then minimises its own KL(p_{.|i} || q_{.|i}) against
        the fixed embedding: attraction to its neighbours, repulsion from every
        mapped point (through the fit's negative gradient method); momentum
        0.8 and gains, ``n_iter`` steps. New points do not act on each other.

        Parameters
        ----------
        Y : float array of shape (m, d)
            New points, in the space of the fitted X.
        n_iter : int, default 250
        learning_rate : float, default 1

        Returns
        -------
        float32 array of shape (m, n_components)
        """
        check_fitted(self, "embedding_", "fit(X)")
        if getattr(self, "_fit_X", None) is None:
            raise RuntimeError(
                "transform needs a TSNE fitted on an array of points (not on precomputed distances, "
                "k-NN lists or affinities): call fit(X) first"
            )
        record_features(self, Y, reset=False, name="Y")
        Y = host_array_like(Y)  # a pandas DataFrame: its values
        check_positive_int(n_iter, "n_iter")
        learning_rate = check_number(learning_rate, "learning_rate", low=0.0, low_inclusive=False)
        new, origin = _device.unwrap(Y)
        new = _device.to_host(new)  # new points are placed on the CPU
        exponent = getattr(self, "_input_exponent", 0)
        if exponent:  # the fit scaled X by 2^exponent: Y lives in the same space
            new = np.asarray(new)
            if new.dtype.kind in "fiu":
                new = np.ldexp(new.astype(np.float64) if new.dtype.kind != "f" else new, exponent)
        new = check_matrix(new, "Y")
        if new.shape[1] != self._fit_X.shape[1]:
            raise ValueError(f"Y has {new.shape[1]} features but the fitted X has {self._fit_X.shape[1]}")
        n_threads = _backend.resolve_n_jobs(self.n_jobs)
        reference = self.embedding_.astype(np.float64)
        idx, dist = knn(self._fit_X, self._n_neighbors(len(reference)), queries=new, metric=self.metric,
                        n_jobs=n_threads, device="cpu")
        cond = self._conditional(dist, n_threads)
        points = np.einsum("ik,ikc->ic", cond, reference[idx])
        n_ref, (m, k) = len(reference), idx.shape
        # Rows of the stacked [reference; new] map: only the new rows have neighbours.
        indptr = np.concatenate([np.zeros(n_ref, np.int64), np.arange(0, m * k + 1, k, dtype=np.int64)])
        indices, weights = idx.ravel().astype(np.int32), cond.ravel().astype(np.float32)
        repulsion = self._repulsion(_device.cpu(n_threads))
        update, gains = np.zeros_like(points), np.ones_like(points)
        forces = np.empty((n_ref + m, self.n_components))
        for _ in range(n_iter):
            _core.tsne_attractive_forces(indptr, indices, weights, np.concatenate([reference, points]),
                                         float(self.dof), 1.0, forces, None, n_threads)
            push, norm = repulsion.against(reference, points)
            gradient = forces[n_ref:] - push / norm[:, None]
            _core.tsne_gradient_step(points, gradient, update, gains, learning_rate,
                                     float(self.momentum[1]), _MIN_GAIN, False, n_threads)
        if not np.all(np.isfinite(points)):
            raise FloatingPointError(_DIVERGED)
        return self._on_origin(points.astype(np.float32), origin)

    def _phases(self):
        """(iterations, exaggeration, momentum) for each phase."""
        early = min(self.early_exaggeration_iter, self.n_iter)
        late = self.n_iter
        if self.exaggeration is not None:
            late = min(self.n_iter, max(early, self.late_exaggeration_start or early))
        phases = [(early, float(self.early_exaggeration), float(self.momentum[0])),
                  (late - early, 1.0, float(self.momentum[1])),
                  (self.n_iter - late, float(self.exaggeration or 1.0), float(self.momentum[1]))]
        return [phase for phase in phases if phase[0] > 0]

    def _optimize(self, Y: np.ndarray, objective, step):
        callbacks = self.callbacks
        if callable(callbacks):
            callbacks = [callbacks]
        callbacks = list(callbacks or [])
        update = np.zeros_like(Y)
        gains = np.ones_like(Y)
        n = Y.shape[0]
        bar = Progress(self.n_iter, self.verbose, "t-SNE", "it")
        iteration, kl = 0, None
        try:
            for n_phase, exaggeration, momentum in self._phases():
                lr = n / exaggeration if self.learning_rate == "auto" else float(self.learning_rate)
                for _ in range(n_phase):
                    iteration += 1
                    report = iteration % 50 == 0 and (bar.bar is not None or callbacks)
                    gradient, kl = objective(Y, exaggeration, with_kl=report)
                    step(Y, gradient, update, gains, lr, momentum)
                    bar.update(1, **({"kl": f"{kl:.4f}"} if report else {}))
                    if report and any(bool(cb(iteration, kl, Y)) for cb in callbacks):
                        return Y, objective(Y, 1.0, with_kl=True)[1], iteration
        finally:
            bar.close()
        return Y, objective(Y, 1.0, with_kl=True)[1], iteration


def _tsne_metric(metric: Any) -> str:
    """The k-NN metric for t-SNE's affinities, or "precomputed". Inner
    products are not distances (they are negative and their squares do not
    rank neighbours), so they are refused."""
    if metric == "precomputed":
        return metric
    name = _resolve_metric(metric)
    if name == "inner_product":
        choices = sorted(set(_KNN_METRICS) - {"inner_product"}) + ["precomputed"]
        raise ValueError(f"metric={metric!r} is not a distance; t-SNE needs one of {choices}")
    return name


def _n_points(X: Any) -> int | None:
    """How many points X holds, whatever form it takes (None when unknown)."""
    if scipy.sparse.issparse(X):
        return X.shape[0]
    if isinstance(X, tuple) and len(X) == 2:
        return np.shape(X[0])[0] if np.ndim(X[0]) >= 1 else None
    shape = getattr(X, "shape", None)
    return shape[0] if shape is not None and len(shape) >= 1 else None


def _check_initialization(init: Any, shape: tuple, name: str = "initialization") -> np.ndarray:
    """A user's initial map (the parameter ``name``): real, finite, of shape
    (n, n_components), within +-1e10 (t-SNE maps span tens of units)."""
    Y = np.asarray(_device.to_host(init))
    if Y.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be an array of real numbers, got dtype {Y.dtype}")
    if shape[0] is not None and Y.shape != tuple(shape) or Y.ndim != 2 or Y.shape[1] != shape[1]:
        raise ValueError(
            f"{name} must be finite with shape (n, n_components) = {tuple(shape)}, got {Y.shape}"
        )
    Y = Y.astype(np.float64)
    if Y.size and not np.all(np.isfinite(Y)):
        raise ValueError(f"{name} must be finite: it contains NaN or infinite values")
    if Y.size and np.abs(Y).max() > _MAX_INIT_ABS:
        raise ValueError(
            f"{name} values must lie within +-{_MAX_INIT_ABS:g}, got {np.abs(Y).max():g}; t-SNE maps "
            f"span tens of units: rescale it, e.g. {name} / {name}[:, 0].std() * 1e-4"
        )
    return Y

