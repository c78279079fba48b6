"""CPU threads and BLAS: how many threads a kernel may start, and the BLAS
the C++ kernels call from their own threads. Where arrays live and which
compiled module runs them is ``_device``'s business."""

from __future__ import annotations

import functools
import os

import numpy as np

from . import _core  # noqa: F401  (a broken build should fail at import, loudly)


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
