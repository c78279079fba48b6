"""The ``latentcore`` command: each capability run on files.

Every command reads its input with :func:`latentcore.io.read_matrix` and
writes its output atomically, so an interrupted or failed run never leaves a
partial file. Problems with the input are reported as one line,
``latentcore: error: <message>``, with exit status 2 (argparse's convention
for usage errors), never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np

from . import __version__
from .io import read_matrix, write_npz_atomic
from .knn import METRICS, knn
from .metrics import knn_recall

__all__ = ["main"]

_PROG = "latentcore"
_USAGE_ERROR = 2
_INTERRUPTED = 130  # the shell's status for a process ended by SIGINT
# Errors that describe bad input or an unusable file; any other exception is
# a bug in latentcore and keeps its traceback.
_INPUT_ERRORS = (ValueError, TypeError, OSError, ImportError)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``latentcore`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name; None: ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status: 0 on success, 2 for bad arguments or input (after
        printing ``latentcore: error: <message>`` to stderr), 130 when
        interrupted.
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors exit inside argparse
        return 0 if exc.code is None else int(exc.code)
    try:
        args.run(args)
    except _INPUT_ERRORS as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return _USAGE_ERROR
    except KeyboardInterrupt:
        print(f"{_PROG}: interrupted", file=sys.stderr)
        return _INTERRUPTED
    return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG, description="Fast maps of latent spaces: k-NN graphs from matrices in files.")
    parser.add_argument("--version", action="version", version=f"{_PROG} {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _add_knn_command(commands)
    _add_demo_command(commands)
    return parser


def _add_knn_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "knn", help="exact k-nearest-neighbour graph of the rows of a matrix",
        description="Exact k nearest neighbours of every row of INPUT (.npy, .npz, .csv, "
                    ".tsv, .parquet), saved as 'indices' (int32) and 'distances' (float32) "
                    "arrays of shape (n, k) in an .npz archive.")
    p.add_argument("input", metavar="INPUT", help="the points, one row each")
    p.add_argument("-k", type=int, default=15, help="neighbours per point (default: 15)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.npz",
                   help="the archive to write (replaced atomically)")
    p.add_argument("--metric", default="euclidean", choices=sorted(METRICS),
                   help="distance (default: euclidean)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads (default: all cores)")
    p.add_argument("--key", default=None, metavar="NAME",
                   help="the array to read from an .npz INPUT holding several")
    p.add_argument("--include-self", action="store_true",
                   help="list each point among its own neighbours (at distance 0)")
    p.set_defaults(run=_knn)


def _add_demo_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "demo", help="k-NN graph of scikit-learn's digits, checked against scikit-learn",
        description="Builds the exact k=15 nearest-neighbour graph of scikit-learn's "
                    "bundled digits (1797 images of 8x8 pixels) and checks it.")
    p.set_defaults(run=_demo)


def _knn(args: argparse.Namespace) -> None:
    X = _as_points(read_matrix(args.input, key=args.key))
    start = time.perf_counter()
    indices, distances = knn(X, args.k, metric=args.metric, exclude_self=not args.include_self,
                             n_jobs=args.threads)
    seconds = time.perf_counter() - start
    write_npz_atomic(args.output, indices=indices, distances=distances,
                     k=np.int64(args.k), metric=np.str_(args.metric))
    n, d = X.shape
    print(f"knn: {n} points x {d} dims, k={args.k}, {args.metric}: "
          f"{seconds:.3f} s -> {args.output}")


def _as_points(X: np.ndarray) -> np.ndarray:
    """Integer and boolean files (counts, binary codes) are read as float32:
    the library asks its callers to convert them explicitly, and on the command
    line this is the only sensible conversion."""
    if X.dtype.kind in "iub":
        return X.astype(np.float32)
    return X


_DEMO_K = 15


def _demo(args: argparse.Namespace) -> None:
    from sklearn.datasets import load_digits

    X, labels = load_digits(return_X_y=True)
    print(f"digits (scikit-learn): {X.shape[0]} points x {X.shape[1]} dims")
    start = time.perf_counter()
    indices, _ = knn(X, _DEMO_K)
    seconds = time.perf_counter() - start
    print(f"exact k-NN graph, k={_DEMO_K}, euclidean: {seconds:.3f} s")
    agreement = float((labels[indices] == labels[:, None]).mean())
    print(f"k-NN label agreement: {agreement:.3f} of neighbours show the same digit")
    _print_reference_check(X, indices)


def _print_reference_check(X: np.ndarray, indices: np.ndarray) -> None:
    """Compares the graph with scikit-learn's brute-force search.

    The pixels are small integers, so many points lie at exactly the same
    distance from a point: at the k-th place either of two tied points is a
    correct answer, and the two libraries break such ties differently. The
    reported recall therefore counts a neighbour as found when its exact
    distance is within scikit-learn's k-th distance; agreement by index alone
    (:func:`latentcore.knn_recall`) is printed beside it.
    """
    from sklearn.neighbors import NearestNeighbors

    k = indices.shape[1]
    ref_dist, ref_idx = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(X).kneighbors()
    # float64 distances of the returned pairs, independent of knn's float32 output
    dist = np.linalg.norm(X[indices] - X[:, None, :], axis=2)
    kth = ref_dist[:, -1:]
    recall = float((dist <= kth + 1e-9 * (1.0 + kth)).mean())
    by_index = knn_recall(indices, ref_idx)
    print(f"recall vs scikit-learn brute force: {recall:.3f} counting ties with the "
          f"k-th neighbour ({by_index:.3f} by index alone)")


if __name__ == "__main__":
    sys.exit(main())
