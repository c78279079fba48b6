"""A GPU that runs on the CPU, for testing the GPU orchestration without one.

``EmulatedGpu`` is a ``latentcore._device.Device`` named "cuda" whose arrays
are numpy arrays marked as device memory (``GpuArray``) and whose compiled
module takes the CUDA signatures (the stream last) and runs the C++ kernels
behind them: a twin bound in both modules forwards to ``_core`` with a thread
count instead of the stream; the CUDA-only k-NN tile merge and finish are
written here in numpy, to their CUDA kernels' contract (the (score, index)
order, index -1 after every real index, the exact re-rank in double).

Every line of Python that only a GPU run reached (chunking, placement,
hand-back, the tile loops) then runs in CI.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from latentcore import _core, _device


class GpuArray(np.ndarray):
    """A numpy array standing for one in GPU memory."""


def to_gpu(a) -> GpuArray:
    """Host data copied onto the emulated GPU (an array already there stays)."""
    if isinstance(a, GpuArray):
        return a
    return np.array(a).view(GpuArray)


def to_host(a) -> np.ndarray:
    """A copy on the host, as cupy's ``get`` makes."""
    return np.array(a, subok=False)


class _GpuNumpy:
    """numpy as the emulated GPU's array module: what it allocates is a GpuArray."""

    _ALLOCATE = {"empty", "zeros", "ones", "full", "arange", "asarray", "ascontiguousarray", "empty_like",
                 "zeros_like", "ones_like", "full_like"}

    def __getattr__(self, name: str):
        attribute = getattr(np, name)
        if name not in self._ALLOCATE:
            return attribute
        return lambda *args, **kwargs: attribute(*args, **kwargs).view(GpuArray)


def _order(score: np.ndarray, index: np.ndarray) -> np.ndarray:
    """The CUDA selection's total order: score, then index as unsigned (-1 last)."""
    return np.lexsort((index.astype(np.int64) & 0xFFFFFFFF, score))


class EmulatedCudaModule:
    """``latentcore._cuda``'s functions, run on the CPU."""

    SORT_CAPACITY = 4096  # cuda/knn.cu: a row's selection and candidates sorted in shared memory

    def __init__(self, n_threads: int):
        self.n_threads = n_threads

    def __getattr__(self, name: str):
        kernel = getattr(_core, name)  # a twin: the same arguments, threads for the stream

        def run(*args):
            return kernel(*args[:-1], self.n_threads)

        return run

    def knn_max_tile_width(self, k: int) -> int:
        return self.SORT_CAPACITY - k

    def knn_merge_tile(self, score, index, tile, col_bias, row_first, col_first, exclude_self, stream):
        """Keeps in each row the k smallest of (current selection, col_bias - tile)."""
        k = score.shape[1]
        candidates = (np.float32(0) if col_bias is None else col_bias[None, :]) - tile
        ids = np.broadcast_to(np.arange(col_first, col_first + tile.shape[1], dtype=np.int32), tile.shape)
        for row in range(score.shape[0]):
            keys, idx = candidates[row].astype(np.float32), ids[row]
            if exclude_self:
                keep = idx != row_first + row
                keys, idx = keys[keep], idx[keep]
            keys = np.concatenate([score[row], keys])
            idx = np.concatenate([index[row], idx])
            best = _order(keys, idx)[:k]
            score[row], index[row] = keys[best], idx[best]

    def knn_finish(self, score, index, queries, data, metric: int, stream):
        """Re-ranks each row's candidates by their exact distance, in double."""
        q = np.asarray(queries, np.float64)
        for row in range(score.shape[0]):
            ids = index[row]
            valid = ids >= 0
            x = np.asarray(data, np.float64)[ids[valid]]
            if metric in (0, 1):
                d = ((x - q[row]) ** 2).sum(axis=1)
                d = np.sqrt(d) if metric == 1 else d
            elif metric == 2:
                d = 1.0 - x @ q[row] / (np.linalg.norm(x, axis=1) * np.linalg.norm(q[row]))
            else:
                d = -(x @ q[row])
            keys = np.full(ids.shape, np.inf, np.float32)
            keys[valid] = d.astype(np.float32)
            best = _order(keys, ids)
            score[row], index[row] = keys[best], ids[best]


def emulated_gpu(n_threads: int = 2) -> _device.Device:
    """The CUDA device of latentcore with numpy standing in for cupy."""
    return _device.Device("cuda", _GpuNumpy(), EmulatedCudaModule(n_threads), to_gpu, to_host, scipy.sparse,
                          n_threads=1, max_k=_device.GPU_MAX_K, stream=lambda: 0)


def on_gpu(device: _device.Device):
    """The context in which "cuda" is ``device`` and GpuArrays live on it."""
    return _device.emulate_gpu(device, lambda x: isinstance(x, GpuArray))

