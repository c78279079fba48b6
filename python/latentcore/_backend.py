"""Where arrays live and which compiled module runs them.

numpy arrays run the C++ kernels (``latentcore._core``); cupy arrays run the
CUDA kernels (``latentcore._cuda``) on cupy's current stream; torch tensors
cross over through DLPack without copies and go back as torch tensors on the
device they came from.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import _core  # noqa: F401  (a broken build should fail at import, loudly)

try:  # the CUDA module is optional: absent without nvcc at build time
    from . import _cuda
except ImportError:  # pragma: no cover - depends on the build
    _cuda = None


#: The most threads one kernel call starts (n_jobs above it is refused).
MAX_THREADS = 1024


def default_threads() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return os.cpu_count() or 1


def resolve_n_jobs(n_jobs: int | None) -> int:
    """scikit-learn's convention: None or -1 = all cores, -2 = all but one."""
    if n_jobs is None:
        return default_threads()
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)):
        raise TypeError(f"n_jobs must be an int or None, got {type(n_jobs).__name__}")
    if n_jobs == 0:
        raise ValueError("n_jobs must not be 0: use None or -1 for all cores, or a positive count")
    if n_jobs < 0:
        return max(1, default_threads() + 1 + int(n_jobs))
    if n_jobs > MAX_THREADS:  # OpenMP would try to start them all
        raise ValueError(f"n_jobs={n_jobs} is more threads than latentcore starts (at most {MAX_THREADS})")
    return int(n_jobs)


def _module_name(x: Any) -> str:
    return type(x).__module__.split(".")[0]


def is_cupy(x: Any) -> bool:
    return _module_name(x) == "cupy"


def is_torch(x: Any) -> bool:
    return _module_name(x) == "torch"


@dataclass(frozen=True)
class Placement:
    """Where an input came from, so results can be handed back the same way."""

    device: str  # "cpu" or "cuda"
    wrap: Callable[[Any], Any]  # numpy/cupy array -> the caller's array type


def _identity(a: Any) -> Any:
    return a


def to_backend(x: Any) -> tuple[Any, Placement]:
    """Unwraps a user array into numpy (CPU) or cupy (CUDA), without copying.

    Lists and other array-likes become numpy arrays. torch tensors are shared
    through DLPack; the returned Placement turns results back into tensors.
    """
    if is_torch(x):
        import torch

        t = x.detach()
        if t.device.type == "cuda":
            cp = require_cupy()
            return cp.from_dlpack(t), Placement("cuda", torch.from_dlpack)
        if t.device.type != "cpu":
            raise ValueError(f"torch tensors on device {t.device} are not supported; use cpu or cuda")
        if t.dtype == torch.bfloat16 or t.dtype == torch.float16:
            t = t.float()
        return np.from_dlpack(t.resolve_conj().resolve_neg()), Placement("cpu", torch.from_numpy)
    if is_cupy(x):
        return x, Placement("cuda", _identity)
    return x, Placement("cpu", _identity)


def to_device(x: Any, device: str) -> Any:
    """A user array (numpy, cupy, torch, array-like) as numpy or cupy on
    ``device`` ("cpu" or "cuda"), copied only if it must move."""
    x = to_backend(x)[0]
    if device == "cuda" and not is_cupy(x):
        return require_cupy().asarray(np.asarray(x))
    if device == "cpu" and is_cupy(x):
        return x.get()
    return x


def wrap_for(placement: Placement, device: str) -> Callable[[Any], Any]:
    """How to hand back results computed on ``device``: as the caller's
    arrays when they stayed where the input was; numpy or cupy arrays as
    computed when the caller forced another device, torch tensors staying
    torch tensors."""
    if placement.device == device or placement.wrap is _identity:
        return placement.wrap
    import torch

    return (lambda a: torch.from_dlpack(a)) if device == "cuda" else torch.from_numpy


@functools.lru_cache(maxsize=None)
def _blas_controller():
    import scipy.linalg  # noqa: F401  (its OpenBLAS must be loaded to be found)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def single_threaded_blas():
    """A context in which BLAS runs on the calling thread only: for kernels
    whose OpenMP threads each call SGEMM themselves. The libraries are found
    once per process (threadpoolctl's search costs milliseconds a call)."""
    return _blas_controller().limit(limits=1, user_api="blas")


def scipy_sgemm():
    """SciPy's BLAS SGEMM as a capsule, for C++ kernels that call it per tile
    from their own threads, one each (callers turn BLAS threading off)."""
    from scipy.linalg import cython_blas

    return cython_blas.__pyx_capi__["sgemm"]


def require_cupy():
    try:
        import cupy
    except ImportError as exc:
        raise RuntimeError(
            "CUDA input needs cupy: pip install 'latentcore[gpu]' (cupy-cuda13x)"
        ) from exc
    return cupy


def require_cuda_module():
    """The compiled CUDA kernels, or a clear error saying why they are missing."""
    if _cuda is None:
        raise RuntimeError(
            "this latentcore build has no CUDA kernels (nvcc was not found when it was "
            "built); pass numpy arrays, or rebuild with the CUDA toolkit installed"
        )
    cp = require_cupy()
    if cp.cuda.runtime.getDeviceCount() < 1:
        raise RuntimeError("no CUDA device is visible; pass numpy arrays to run on the CPU")
    return _cuda


def cuda_available() -> bool:
    """True when the CUDA kernels are built and a GPU is visible."""
    if _cuda is None:
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False
