"""Skip-gram with negative sampling (word2vec's SGNS) on node sequences.

The training half of DeepWalk and node2vec, in C++: Hogwild over threads,
one random stream per walk (reduced windows, subsampling coins, negatives),
so with one thread a seed gives bit-identical vectors. With several threads
the lock-free updates interleave as the threads happen to run: the vectors
differ from run to run, far beyond the last bits (typically by a few percent
of each coordinate, more with longer training; equally good, not equal).
``deterministic=True`` trains on one thread for the same vectors at any
``n_jobs``. Walks arrive in chunks: :func:`skipgram` slices an array it
is given, the DeepWalk and Node2Vec estimators sample each chunk just before
training on it, so a large graph never holds all its walks in memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _core, _device, _progress
from ._validation import as_array, check_positive_int

__all__ = ["skipgram"]

# Walks per kernel call (the per-walk streams make the split invisible in the
# result; the CPU kernels poll for Ctrl-C themselves, GPU launches are
# asynchronous and Ctrl-C is honoured between them). A GPU needs more walks
# per launch to fill its SMs (one thread or one warp per walk).
WALKS_PER_CHUNK = {"cpu": 1 << 14, "cuda": 1 << 18}
# At most this many bytes of walks per chunk: long walks make fewer per chunk.
CHUNK_BYTES = 1 << 26
# Sizes the kernels take as C int.
INT_MAX = 2**31 - 1


def physical_memory() -> int | None:
    """This machine's RAM in bytes, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return None


def check_memory(nbytes: int, what: str, fix: str) -> None:
    """ValueError when ``what`` needs more than this machine's RAM: a clear
    message before the allocation, rather than an allocation that succeeds
    on paper (overcommit) and gets the process killed when it is filled."""
    total = physical_memory()
    if total is not None and nbytes > total:
        raise ValueError(f"{what} would need {nbytes / 2**30:.1f} GiB, more than this machine's "
                         f"{total / 2**30:.1f} GiB of memory; use {fix}")

# A source of walks: called once per pass, yields (index of the chunk's first
# walk, int32 chunk (m, walk_length)); every pass yields the same walks.
WalkChunks = Callable[[], Iterator[tuple[int, np.ndarray]]]


@dataclass(frozen=True)
class SkipGramParams:
    """Validated training parameters (see :func:`skipgram` for their meaning)."""

    dim: int = 128
    window: int = 10
    negative: int = 5
    epochs: int = 1
    alpha: float = 0.025
    min_alpha: float = 1e-4
    ns_exponent: float = 0.75
    sample: float = 1e-3

    def __post_init__(self):
        for name in ("dim", "window", "negative", "epochs"):
            check_positive_int(getattr(self, name), name)
        for name in ("dim", "window"):
            if getattr(self, name) > INT_MAX:
                raise ValueError(f"{name} must be at most 2**31 - 1, got {getattr(self, name)}")
        if self.negative >= INT_MAX:
            raise ValueError(f"negative must be below 2**31 - 1, got {self.negative}")
        for name in ("alpha", "min_alpha", "ns_exponent", "sample"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
                    or not np.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if self.alpha <= 0:
            raise ValueError(f"alpha must be positive, got {self.alpha!r}")
        if not 0 <= self.min_alpha <= self.alpha:
            raise ValueError(f"min_alpha must be in [0, alpha={self.alpha}], got {self.min_alpha!r}")
        if self.sample < 0:
            raise ValueError(f"sample must be >= 0 (0 turns subsampling off), got {self.sample!r}")


def seeds(random_state, count: int) -> list[int]:
    """``count`` independent 64-bit seeds from an int, a numpy Generator or None."""
    if isinstance(random_state, np.random.Generator):
        entropy = int(random_state.integers(0, 2**63))
    elif random_state is None:
        entropy = None
    elif isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        entropy = int(random_state) % 2**64
    else:
        raise TypeError(
            f"random_state must be None, an int or a numpy Generator, got {type(random_state).__name__}"
        )
    return [int(s) for s in np.random.SeedSequence(entropy).generate_state(count, np.uint64)]


def alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias table (keep float32, alias int32) over non-negative weights:
    the one-row case of the per-node tables the walks use."""
    n = weights.size
    keep = np.empty(n, np.float32)
    alias = np.empty(n, np.int32)
    # The outcomes are positions in the row; the edge targets go unused.
    _core.walks_build_alias(np.array([0, n], np.int64), np.zeros(n, np.int32),
                            np.ascontiguousarray(weights, np.float32), keep, alias, 1)
    return keep, alias


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """word2vec's subsampling: a node seen c times out of N is kept with
    probability (sqrt(c / t) + 1) t / c, t = sample * N (capped at 1)."""
    if sample == 0:
        return np.empty(0, np.float32)
    threshold = sample * counts.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        keep = (np.sqrt(counts / threshold) + 1.0) * threshold / counts
    return np.where(counts > 0, np.minimum(keep, 1.0), 1.0).astype(np.float32)


def check_deterministic(deterministic: Any, device: _device.Device) -> bool:
    """``deterministic`` trains on one CPU thread (walks still use every
    thread): a bool, and not on a GPU, where the updates land in any order."""
    if not isinstance(deterministic, (bool, np.bool_)):
        raise TypeError(f"deterministic must be True or False, got {type(deterministic).__name__}")
    if deterministic and device.is_gpu:
        raise ValueError("deterministic=True trains on one CPU thread; on the GPU the updates land in any "
                         "order. Use device='cpu' for reproducible vectors")
    return bool(deterministic)


def chunk_walks(device: _device.Device) -> int:
    """Walks per kernel call on ``device``."""
    return WALKS_PER_CHUNK[device.name]


def check_training_memory(n_nodes: int, chunk_walks: int, walk_length: int, params: SkipGramParams,
                          device: _device.Device, deterministic: bool) -> None:
    """ValueError naming the parameter at fault when training would need more
    memory than this machine has: the two (n_nodes, dim) float32 tables, a
    chunk of walks and, on the CPU, each thread's scratch of the block update
    (2 * span contexts against 1 + negative targets, span = the widest reach
    that matters, min(window, walk_length - 1))."""
    if walk_length > INT_MAX:
        raise ValueError(f"walk_length must be below 2**31, got {walk_length}")
    check_memory(8 * n_nodes * params.dim, f"vectors of n_nodes={n_nodes} x dim={params.dim}", "a smaller dim")
    if device.is_gpu:
        return
    train_threads = 1 if deterministic else device.n_threads
    span = max(1, min(params.window, walk_length - 1))
    targets = params.negative + 1
    scratch = 4 * (walk_length + 2 * span + targets + 2 * span * targets + 2 * span * params.dim
                   + targets * params.dim) + 8 * (2 * span + targets)
    check_memory(train_threads * scratch + 8 * n_nodes * params.dim + 4 * chunk_walks * walk_length,
                 f"training with negative={params.negative}, window={params.window}, dim={params.dim} on "
                 f"{train_threads} thread(s) (per-thread scratch {scratch / 2**20:.1f} MiB)",
                 "a smaller negative, window or dim")


def train(chunks: WalkChunks, n_walks: int, n_nodes: int, params: SkipGramParams, seed: int,
          device: _device.Device, progress=None, *, deterministic: bool = False):
    """Trains on every walk of ``chunks`` for ``params.epochs`` passes.

    A first pass counts node visits (word2vec's vocabulary counts: they give
    the noise distribution counts^ns_exponent and the subsampling odds);
    each epoch then passes over the same walks again. Returns the input
    vectors, float32 (n_nodes, dim), on ``device``. ``deterministic`` trains
    on one CPU thread.
    """
    xp = device.xp
    counts = xp.zeros(n_nodes, xp.int64)
    for _, walks in chunks():
        counts += xp.bincount(walks[walks >= 0], minlength=n_nodes)
    counts = device.get(counts)
    noise = counts.astype(np.float64) ** params.ns_exponent
    noise[counts == 0] = 0.0
    noise_keep, noise_alias = (device.put(a) for a in alias_table(noise))
    keep = device.put(keep_probabilities(counts, params.sample))
    init_seed, train_seed = seeds(seed, 2)
    rng = np.random.default_rng(init_seed)
    # word2vec's start: small random input vectors, zero output vectors; made
    # on the host so that both devices start from the same vectors.
    start = rng.random((n_nodes, params.dim), dtype=np.float32)
    start -= 0.5  # in place: no temporary the size of the embedding
    start /= params.dim
    vectors = device.put(start)
    context = xp.zeros_like(vectors)
    total = n_walks * params.epochs
    for epoch in range(params.epochs):
        for first, walks in chunks():
            args = (walks, keep, noise_keep, noise_alias, vectors, context, params.window, params.negative,
                    float(params.alpha), float(params.min_alpha), train_seed, epoch * n_walks + first, total)
            # The tokens trained (on the GPU the call waits for the chunk to finish).
            tokens = device.call("sgns_train", *args, threads=1 if deterministic else None)
            if progress is not None:
                done = epoch * n_walks + first + walks.shape[0]
                alpha = params.alpha - (params.alpha - params.min_alpha) * done / total
                progress(walks.shape[0], tokens, alpha)
    return vectors


def array_chunks(walks, size: int) -> WalkChunks:
    """The chunks of a walk array, as views."""
    def passes():
        for first in range(0, walks.shape[0], size):
            yield first, walks[first:first + size]
    return passes


class Progress(_progress.Progress):
    """A bar over walks trained, with the tokens so far and the current alpha."""

    def __init__(self, total_walks: int, verbose: bool, desc: str):
        super().__init__(total_walks, verbose, desc, "walk")
        self.tokens = 0

    def __call__(self, walks: int, tokens: int, alpha: float) -> None:
        self.tokens += tokens
        self.update(walks, tokens=self.tokens, alpha=f"{alpha:.5f}")


def skipgram(walks: Any, n_nodes: int | None = None, *, dim: int = 128, window: int = 10,
             negative: int = 5, epochs: int = 1, alpha: float = 0.025, min_alpha: float = 1e-4,
             ns_exponent: float = 0.75, sample: float = 1e-3, random_state=None,
             n_jobs: int | None = None, verbose: bool = False, device: str | None = None,
             deterministic: bool = False):
    """Node vectors by skip-gram with negative sampling on walks (word2vec's SGNS).

    Parameters
    ----------
    walks : int array of shape (n_walks, walk_length)
        Node ids 0 .. n_nodes - 1; -1 ends a walk (the padding of
        :func:`random_walks`). numpy, cupy or torch; cupy (or torch on
        CUDA) trains on the GPU.
    n_nodes : int, optional
        Rows of the result; default: the largest id + 1.
    dim : int, default 128
        Vector length.
    window : int, default 10
        Largest distance between a node and a context; each centre draws its
        reach uniformly from 1..window, as word2vec does, so a context at
        distance d is used with probability (window - d + 1) / window. A
        window longer than the walks is fine (a reach past the walk's end
        takes the whole walk).
    negative : int, default 5
        Negatives per centre node, drawn from visit counts ** ns_exponent
        and shared by all its contexts (pWord2Vec's batching: one small dense
        block update per centre; the same objective as gensim's per-pair
        negatives).
    epochs : int, default 1
        Passes over the walks.
    alpha, min_alpha : float, default 0.025, 1e-4
        Learning rate, decaying linearly from alpha to min_alpha over training.
    ns_exponent : float, default 0.75
    sample : float, default 1e-3
        Frequent-node subsampling threshold (gensim's ``sample``); 0 turns it off.
    random_state : int, numpy Generator or None
        With n_jobs=1 (or ``deterministic=True``) a seed gives bit-identical
        vectors. With more threads the lock-free (Hogwild) updates interleave
        as the threads happen to run: the vectors differ from run to run and
        between thread counts, far beyond the last bits (typically by a few
        percent of each coordinate, more with longer training; as good, not
        equal).
    n_jobs : int, optional
        Threads; None or -1: all cores.
    verbose : bool
        A progress bar (walks, tokens trained, current alpha).
    device : {"cpu", "cuda"}, optional
        Where to train; default: where ``walks`` lives.
    deterministic : bool, default False
        Train on one CPU thread: the same vectors for a seed whatever
        ``n_jobs``, at one thread's speed. Not available on the GPU.

    Returns
    -------
    float32 array of shape (n_nodes, dim)
        The input vectors (gensim's ``wv``) on the device that trained them:
        numpy or cupy, as ``knn`` hands back results; a torch tensor for
        torch walks.

    Raises
    ------
    ValueError
        Bad parameters or walks (the message names the argument), or
        vectors, scratch or walks that would not fit in this machine's memory.
    KeyboardInterrupt
        On Ctrl-C, within a fraction of a second.

    Examples
    --------
    >>> import numpy as np, latentcore
    >>> walks = np.array([[0, 1, 2, 1], [2, 1, 0, -1]], dtype=np.int32)
    >>> latentcore.skipgram(walks, dim=8, window=2, random_state=0).shape
    (3, 8)
    """
    params = SkipGramParams(dim, window, negative, epochs, alpha, min_alpha, ns_exponent, sample)
    walks, where, give_back = _device.prepare(walks, device, n_jobs, name="walks", check=_check_walks)
    deterministic = check_deterministic(deterministic, where)
    largest = int(walks.max())
    if n_nodes is None:
        n_nodes = largest + 1
    n_nodes = check_positive_int(n_nodes, "n_nodes")
    if n_nodes >= INT_MAX:
        raise ValueError(f"n_nodes must be below 2**31 - 1, got {n_nodes}")
    if largest >= n_nodes:
        raise ValueError(f"walks hold node {largest} but n_nodes={n_nodes}; ids must be below n_nodes")
    check_training_memory(n_nodes, 0, walks.shape[1], params, where, deterministic)
    progress = Progress(walks.shape[0] * params.epochs, verbose, "skip-gram")
    try:
        vectors = train(array_chunks(walks, chunk_walks(where)), walks.shape[0], n_nodes, params,
                        seeds(random_state, 1)[0], where, progress, deterministic=deterministic)
    finally:
        progress.close()
    return give_back(vectors)


def _check_walks(walks: Any, name: str = "walks", *, xp=np):
    """Integer walks as int32 in namespace ``xp`` (their ids checked)."""
    walks = as_array(walks, name) if xp is np and not isinstance(walks, np.ndarray) else walks
    if walks.dtype.kind not in "iu":
        raise TypeError(f"walks must hold integer node ids, got dtype {walks.dtype}")
    if walks.ndim != 2 or walks.shape[0] == 0 or walks.shape[1] == 0:
        raise ValueError(f"walks must be a non-empty 2-D array (n_walks, walk_length), got shape {walks.shape}")
    low, high = int(walks.min()), int(walks.max())
    if low < -1:
        raise ValueError(f"walks hold id {low}; ids must be >= 0, with -1 only as padding")
    if high < 0:
        raise ValueError("walks hold no node ids, only padding")
    if high >= 2**31 - 1:
        raise ValueError(f"walks hold id {high}, beyond int32")
    return xp.ascontiguousarray(walks, dtype=xp.int32)
