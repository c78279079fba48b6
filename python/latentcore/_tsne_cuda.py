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

import math

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


class _OnGPU:
    """Runs a repulsion method of ``latentcore.tsne`` on the GPU: cupy arrays
    and the CUDA kernels; the arithmetic is the CPU classes' own."""

    @property
    def xp(self):
        return _cupy()

    def run(self, kernel: str, *args) -> None:
        cuda, stream = _kernels()
        getattr(cuda, kernel)(*args, stream)

    def exact_against(self, reference, points):
        """As the CPU's, with dense cupy blocks of bounded memory."""
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


class CudaExactRepulsion(_OnGPU, _ExactRepulsion):
    """The O(n^2) reference on the GPU."""


class CudaFFTRepulsion(_OnGPU, _FFTRepulsion):
    """_FFTRepulsion on the GPU: the same grid, charges scattered and
    potentials gathered by the CUDA kernels, and the convolution with
    cupy.fft in double precision."""

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

    def convolve(self, grid, spacing: float):
        return double_convolve(_cupy().fft, grid, lambda *a: self.kernel_spectrum(*a, spacing))


def double_convolve(fft, grid, kernel_spectrum):
    """The grid convolution in double precision with whole padded transforms
    of ``fft`` (cupy.fft here; scipy.fft gives the CPU reference the GPU tests
    compare with). kernel_spectrum(dim, side, fft_side) is the kernel's FFT."""
    side, dim = grid.shape[1], grid.ndim - 1
    fft_shape = (2 * scipy.fft.next_fast_len(side, real=True),) * dim
    axes = tuple(range(1, dim + 1))
    spectrum = fft.rfftn(grid, s=fft_shape, axes=axes)
    spectrum *= kernel_spectrum(dim, side, fft_shape[0])
    fields = fft.irfftn(spectrum, s=fft_shape, axes=axes)
    return fields[(slice(None),) + (slice(0, side),) * dim]


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
        kl = float(kl_terms.sum()) + math.log(z) if with_kl else None
        return forces, kl


def cuda_gradient_step(Y, gradient, update, gains, learning_rate: float, momentum: float,
                       min_gain: float, recenter: bool = True) -> None:
    """_core.tsne_gradient_step on cupy float64 arrays of one shape (n, c), in place."""
    cuda, stream = _kernels()
    cuda.tsne_gradient_step(Y, gradient, update, gains, float(learning_rate), float(momentum),
                            float(min_gain), bool(recenter), stream)
