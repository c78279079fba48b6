"""t-SNE gradients on the GPU: the CUDA twins of ``tsne._Objective`` and its
repulsion methods, on cupy float64 arrays, and the gradient step.

The kernels (``latentcore._cuda.tsne_*``) mirror the C++ ones: the same
math, grid and Lagrange weights, and every sum in a fixed order, so a run is
repeatable bit for bit on one GPU. The grid convolution is a float64
``cupy.fft`` transform of the circulant embedding. Everything is queued on
cupy's current stream; the one host synchronisation per gradient is the FFT
grid's bounding box (two scalars), as on the CPU, plus the KL divergence when
it is asked for.

This module builds on ``latentcore.tsne``: import it lazily (inside
``TSNE.fit``), not at the top of ``tsne.py``.
"""

from __future__ import annotations

from typing import Any

import scipy.fft
import scipy.sparse

from . import _backend
from .tsne import _ExactRepulsion, _FFTRepulsion, _Objective

__all__ = ["CudaObjective", "CudaFFTRepulsion", "CudaExactRepulsion",
           "CUDA_NEGATIVE_GRADIENT_METHODS", "cuda_gradient_step"]


def _cupy():
    return _backend.require_cupy()


def _kernels():
    """latentcore._cuda and the stream its kernels go on (cupy's current one)."""
    cuda = _backend.require_cuda_module()
    return cuda, _cupy().cuda.get_current_stream().ptr


class CudaExactRepulsion(_ExactRepulsion):
    """The O(n^2) reference on the GPU; Z comes back as a 0-d cupy array."""

    def __call__(self, Y) -> tuple[Any, Any]:
        cp = _cupy()
        cuda, stream = _kernels()
        repulsion = cp.empty_like(Y)
        z_terms = cp.empty(Y.shape[0])
        cuda.tsne_exact_repulsion(Y, self.dof, repulsion, z_terms, stream)
        return repulsion, z_terms.sum()

    def against(self, reference, points) -> tuple[Any, Any]:
        """As _ExactRepulsion.against, with dense cupy blocks."""
        cp = _cupy()
        repulsion = cp.empty_like(points)
        norm = cp.empty(points.shape[0])
        step = max(1, (1 << 22) // max(1, reference.shape[0]))
        for start in range(0, points.shape[0], step):
            diff = points[start:start + step, None, :] - reference[None, :, :]
            factor = 1.0 / (1.0 + (diff * diff).sum(axis=2) / self.dof)
            w = factor ** self.dof
            repulsion[start:start + step] = ((w * factor)[:, :, None] * diff).sum(axis=1)
            norm[start:start + step] = w.sum(axis=1)
        return repulsion, norm


class CudaFFTRepulsion(_FFTRepulsion):
    """_FFTRepulsion on the GPU: the same grid (``grid`` is inherited), charges
    scattered and potentials gathered by the CUDA kernels, and the convolution
    with cupy.fft in double precision; Z comes back as a 0-d cupy array."""

    def kernel_spectrum(self, dim: int, side: int, fft_side: int, spacing: float):
        """The real spectrum of the force kernel laid out as a circulant of
        ``fft_side`` per axis (offset o at index o mod fft_side), the same
        values as the CPU's mirrored type-1 DCT of one quadrant."""
        cp = _cupy()
        index = cp.arange(fft_side, dtype=cp.float64)
        offsets = cp.minimum(index, fft_side - index) * spacing
        offsets[side:fft_side - side + 1] = cp.inf  # offsets no pair of nodes has: kernel 0
        sq = cp.zeros((fft_side,) * dim)
        for axis in range(dim):
            shape = [1] * dim
            shape[axis] = fft_side
            sq = sq + offsets.reshape(shape) ** 2
        factor = 1.0 / (1.0 + sq / self.dof)
        force = factor * factor if self.dof == 1.0 else factor ** (self.dof + 1.0)
        return cp.fft.rfftn(force).real  # real and even: the imaginary part is rounding

    def potentials(self, sources, charges, targets, covering):
        """At each target, sum over sources of K * charges (n_targets,
        n_charges); the grid spans the points of ``covering``."""
        cp = _cupy()
        cuda, stream = _kernels()
        dim = sources.shape[1]
        n_boxes, lower, box_width = self.grid(covering)
        side = n_boxes * self.p
        values = cp.empty((charges.shape[1], side ** dim))
        cuda.tsne_scatter_charges(sources, charges, n_boxes, self.p, lower, box_width, values, stream)
        fft_shape = (2 * scipy.fft.next_fast_len(side, real=True),) * dim
        axes = tuple(range(1, dim + 1))
        spectrum = cp.fft.rfftn(values.reshape((-1,) + (side,) * dim), s=fft_shape, axes=axes)
        spectrum *= self.kernel_spectrum(dim, side, fft_shape[0], box_width / self.p)
        fields = cp.fft.irfftn(spectrum, s=fft_shape, axes=axes)
        fields = cp.ascontiguousarray(fields[(slice(None),) + (slice(0, side),) * dim])
        out = cp.empty((targets.shape[0], charges.shape[1]))
        cuda.tsne_gather_potentials(targets, fields.reshape(charges.shape[1], -1), n_boxes, self.p,
                                    lower, box_width, out, stream)
        return out

    def against(self, reference, points) -> tuple[Any, Any]:
        """As _FFTRepulsion.against, through one grid covering both sets."""
        cp = _cupy()
        sq_ref = (reference * reference).sum(axis=1, keepdims=True)
        charges = cp.concatenate([cp.ones_like(sq_ref), reference, sq_ref], axis=1)
        pot = self.potentials(reference, charges, points, cp.concatenate([reference, points]))
        ones, first, squares = pot[:, 0], pot[:, 1:-1], pot[:, -1]
        repulsion = points * ones[:, None] - first
        sq = (points * points).sum(axis=1)
        cross = (points * first).sum(axis=1)
        return repulsion, ones * (1.0 + sq / self.dof) + (squares - 2.0 * cross) / self.dof

    def __call__(self, Y) -> tuple[Any, Any]:
        cp = _cupy()
        pot = self.potentials(Y, cp.concatenate([cp.ones((Y.shape[0], 1)), Y], axis=1), Y, Y)
        ones, first = pot[:, 0], pot[:, 1:]
        repulsion = Y * ones[:, None] - first
        # Z as on the CPU: sum_ij K_ij (1 + |y_i - y_j|^2 / dof), expanded.
        sq_norm = (Y * Y).sum(axis=1)
        cross = (Y * first).sum(axis=1)
        z = cp.sum(ones * (1.0 + 2.0 * sq_norm / self.dof) - 2.0 * cross / self.dof)
        return repulsion, z - Y.shape[0]  # less each point's w_ii = 1


#: The GPU repulsion methods by name, constructed as NEGATIVE_GRADIENT_METHODS.
CUDA_NEGATIVE_GRADIENT_METHODS = {"fft": CudaFFTRepulsion, "exact": CudaExactRepulsion}

_TWINS = {_FFTRepulsion: CudaFFTRepulsion, _ExactRepulsion: CudaExactRepulsion}


def _on_gpu(repulsion):
    """A CPU repulsion method's GPU twin with the same parameters."""
    twin = _TWINS.get(type(repulsion))
    if twin is None:
        return repulsion
    gpu = twin.__new__(twin)
    gpu.__dict__.update(vars(repulsion))
    return gpu


class CudaObjective:
    """tsne._Objective on the GPU: the KL gradient for fixed affinities P.

    ``repulsion`` is a CUDA repulsion method, or a CPU one (``_FFTRepulsion``,
    ``_ExactRepulsion``), which is swapped for its GPU twin. P goes to the GPU
    once, in the CPU objective's dtypes (float32 weights).
    """

    def __init__(self, P: scipy.sparse.csr_array, repulsion, dof: float):
        cp = _cupy()
        _kernels()  # a clear error now if there is no GPU or no CUDA build
        host = _Objective(P, None, dof, 1)
        self.indptr = cp.asarray(host.indptr)
        self.indices = cp.asarray(host.indices)
        self.weights = cp.asarray(host.weights)
        self.repulsion = _on_gpu(repulsion)
        self.dof = float(dof)

    def __call__(self, Y, exaggeration: float, with_kl: bool):
        """Gradient (n, c), a cupy array, for the cupy float64 embedding Y
        (C order), and, when asked, the KL divergence of the un-exaggerated P
        (a float; None otherwise)."""
        cp = _cupy()
        cuda, stream = _kernels()
        forces = cp.empty_like(Y)
        kl_terms = cp.empty(Y.shape[0]) if with_kl else None
        cuda.tsne_attractive_forces(self.indptr, self.indices, self.weights, Y, self.dof,
                                    float(exaggeration), forces, kl_terms, stream)
        repulsion, z = self.repulsion(Y)
        forces -= repulsion / z
        kl = float(kl_terms.sum() + cp.log(z)) if with_kl else None
        return forces, kl


def cuda_gradient_step(Y, gradient, update, gains, learning_rate: float, momentum: float,
                       min_gain: float, recenter: bool = True) -> None:
    """_core.tsne_gradient_step on cupy float64 arrays of one shape (n, c), in place."""
    cuda, stream = _kernels()
    cuda.tsne_gradient_step(Y, gradient, update, gains, float(learning_rate), float(momentum),
                            float(min_gain), bool(recenter), stream)
