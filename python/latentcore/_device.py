"""The one seam between the areas and the device their arrays live on.

A :class:`Device` knows its array module (numpy or cupy), its compiled module
(``latentcore._core`` or ``latentcore._cuda``), how to call a kernel (the twins
take the same arguments apart from the last one: the CPU thread count, or the
CUDA stream), how to move arrays onto it and back, and its limits.
:func:`prepare` validates and places a caller's array and returns how to hand
results back: numpy in, numpy out; cupy in, cupy out; torch tensors are shared
through DLPack and come back as torch tensors.

Adding a kernel touches one header (C++ and CUDA share it), one binding per
module with the same signature, and one ``device.call("name", ...)``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import scipy.sparse

from . import _backend, _core
from ._validation import check_choice, check_matrix, host_array_like

try:  # the CUDA module is optional: absent without nvcc at build time
    from . import _cuda
except ImportError:  # pragma: no cover - depends on the build
    _cuda = None

__all__ = ["Device", "prepare", "get", "locate", "unwrap", "cuda_available", "DEVICES"]

DEVICES = {"cpu", "cuda"}

#: The largest k one row's selection keeps on the GPU: the CUDA merge sorts a
#: row's candidates in shared memory.
GPU_MAX_K = 1024


@dataclass(frozen=True)
class Device:
    """A place kernels run, with what the areas need to know of it.

    ``stream`` is None on the CPU (kernels take ``n_threads`` last) and, on a
    GPU, returns the stream the kernels are queued on (the current cupy one).
    """

    name: str  # "cpu" or "cuda"
    xp: Any  # numpy or cupy
    module: Any  # latentcore._core or latentcore._cuda
    put: Callable[[Any], Any]  # a host array (or one of this device's) onto this device
    get: Callable[[Any], np.ndarray]  # an array of this device onto the host
    sparse: Any  # scipy.sparse or cupyx.scipy.sparse
    n_threads: int = 1
    max_k: int = 1 << 30
    stream: Callable[[], int] | None = None

    @property
    def is_gpu(self) -> bool:
        return self.stream is not None

    def call(self, kernel: str, *args, threads: int | None = None):
        """Runs ``kernel`` of this device's module with ``args`` and, last,
        the thread count (``threads`` or ``n_threads``) or the stream."""
        last = self.stream() if self.stream is not None else (self.n_threads if threads is None else threads)
        return getattr(self.module, kernel)(*args, last)

    def csr(self, values, indices, indptr, shape):
        """A CSR matrix on this device: scipy's csr_array, or cupyx's csr_matrix."""
        if self.is_gpu:
            return self.sparse.csr_matrix((values, indices, indptr), shape=shape)
        return scipy.sparse.csr_array((values, indices, indptr), shape=shape)

    def sparse_from_host(self, matrix):
        """A scipy sparse matrix of the host as a CSR matrix of this device."""
        return self.sparse.csr_matrix(matrix) if self.is_gpu else matrix

    def vstack(self, blocks):
        stacked = self.sparse.vstack(blocks, format="csr")
        return stacked if self.is_gpu else scipy.sparse.csr_array(stacked)


def cpu(n_jobs: int | None = None) -> Device:
    """The CPU: numpy arrays and the C++ kernels on ``n_jobs`` threads."""
    return Device("cpu", np, _core, _to_numpy, _to_numpy, scipy.sparse, _backend.resolve_n_jobs(n_jobs))


def _real_gpu() -> Device:
    cp = require_cupy()
    module = require_cuda_module()
    import cupyx.scipy.sparse

    return Device("cuda", cp, module, cp.asarray, cp.asnumpy, cupyx.scipy.sparse, 1, GPU_MAX_K,
                  lambda: cp.cuda.get_current_stream().ptr)


# Tests run the GPU orchestration with numpy and the C++ kernels behind the
# CUDA signatures (tests/emulated_gpu.py): ``emulate_gpu`` installs that device.
_gpu_factory: Callable[[], Device] = _real_gpu
_emulated_owns: Callable[[Any], bool] = lambda x: False


@contextlib.contextmanager
def emulate_gpu(device: Device, owns: Callable[[Any], bool]) -> Iterator[Device]:
    """Within the block, "cuda" means ``device``, whose arrays are those for
    which ``owns`` is true (for tests without a GPU)."""
    global _gpu_factory, _emulated_owns
    previous = _gpu_factory, _emulated_owns
    _gpu_factory, _emulated_owns = (lambda: device), owns
    try:
        yield device
    finally:
        _gpu_factory, _emulated_owns = previous


def gpu() -> Device:
    """The GPU, or a RuntimeError saying why there is none."""
    return _gpu_factory()


def get(name: str | None, n_jobs: int | None = None, *, where: str = "cpu") -> Device:
    """The device called ``name`` ("cpu", "cuda"), or ``where`` when None.
    ``n_jobs`` is checked whatever the device (a bad value is an error even
    where threads are not used)."""
    n_threads = _backend.resolve_n_jobs(n_jobs)
    name = where if name is None else check_choice(name, "device", DEVICES)
    return gpu() if name == "cuda" else cpu(n_threads)


# ------------------------------------------------------------- arrays
def _module_name(x: Any) -> str:
    return type(x).__module__.split(".")[0]


def is_cupy(x: Any) -> bool:
    return _module_name(x) in ("cupy", "cupyx")


def is_torch(x: Any) -> bool:
    return _module_name(x) == "torch"


def _to_numpy(a: Any) -> np.ndarray:
    return a.get() if is_cupy(a) else a


def _identity(a: Any) -> Any:
    return a


def _as_torch(a: Any) -> Any:
    import torch

    return torch.from_numpy(a) if isinstance(a, np.ndarray) else torch.from_dlpack(a)


@dataclass(frozen=True)
class Origin:
    """Where a caller's array lived, so that results go back the same way."""

    device: str  # "cpu" or "cuda"
    torch: bool = False

    @property
    def give_back(self) -> Callable[[Any], Any]:
        """numpy or cupy results as the caller's array type: torch tensors for
        torch input (on the device the results were computed on), else as computed."""
        return _as_torch if self.torch else _identity


def unwrap(x: Any) -> tuple[Any, Origin]:
    """A caller's array as numpy (host) or cupy (GPU) without copying, and
    where it came from. torch tensors cross over through DLPack (float16 and
    bfloat16 are widened to float32 first); pandas objects and other
    array-likes with ``__array__`` become numpy arrays; anything else (lists,
    sparse matrices) is returned as it is, for the caller to read."""
    if is_torch(x):
        import torch

        t = x.detach()
        if t.device.type == "cuda":
            return require_cupy().from_dlpack(t), Origin("cuda", True)
        if t.device.type != "cpu":
            raise ValueError(f"torch tensors on device {t.device} are not supported; use cpu or cuda")
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.float()
        return np.from_dlpack(t.resolve_conj().resolve_neg()), Origin("cpu", True)
    if is_cupy(x) or _emulated_owns(x):
        return x, Origin("cuda")
    return host_array_like(x), Origin("cpu")


def locate(x: Any) -> str:
    """"cuda" for cupy arrays (and cupyx sparse matrices) and CUDA torch tensors, else "cpu"."""
    if is_cupy(x) or _emulated_owns(x):
        return "cuda"
    return "cuda" if is_torch(x) and x.device.type == "cuda" else "cpu"


def place(x: Any, device: Device) -> Any:
    """An array (numpy, cupy, torch) on ``device``, copied only if it must move."""
    return device.put(unwrap(x)[0])


def prepare(X: Any, device: str | None = None, n_jobs: int | None = None, *, name: str = "X",
            check: Callable[..., Any] | None = check_matrix) -> tuple[Any, Device, Callable[[Any], Any]]:
    """Validates and places a caller's array.

    Returns ``(x, device, give_back)``: x on ``device`` (where X lives when
    ``device`` is None), checked by ``check(x, name, xp=device.xp)`` (a finite
    C-contiguous float32 matrix by default; None: not checked), and the
    function that turns results computed there into the caller's array type.
    """
    x, origin = unwrap(X)
    where = get(device, n_jobs, where=origin.device)
    x = where.put(x)
    if check is not None:
        x = check(x, name, xp=where.xp)
    return x, where, origin.give_back


def prepare_pair(X: Any, Y: Any, device: str | None, n_jobs: int | None, *, names=("X", "queries")):
    """:func:`prepare` for two arrays that must live on one device (Y may be None)."""
    if Y is not None and locate(X) != locate(Y):
        raise ValueError(f"{names[0]} is on {locate(X)} but {names[1]} is on {locate(Y)}; put both on one device")
    x, where, give_back = prepare(X, device, n_jobs, name=names[0])
    if Y is None:
        return x, None, where, give_back
    y = check_matrix(place(Y, where), names[1], xp=where.xp)
    if y.shape[1] != x.shape[1]:
        raise ValueError(f"{names[1]} has {y.shape[1]} features but {names[0]} has {x.shape[1]}; they must match")
    return x, y, where, give_back


def to_host(a: Any) -> np.ndarray:
    """Any array (numpy, cupy, torch, or one of an emulated GPU) as a numpy array on the host."""
    a = unwrap(a)[0]
    return gpu().get(a) if _emulated_owns(a) else _to_numpy(a)


# -------------------------------------------------------------- GPU
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
