"""The ``latentcore`` command: each capability run on files.

Every command reads its input with the readers of :mod:`latentcore.io` and
writes its output atomically, so an interrupted or failed run never leaves a
partial file. Before any work, every command checks its flags (numbers in
range, known file types) and its files: no output may replace an input of the
same command (the same path, a symbolic link to it, or a hard link of it).
Problems with the arguments or the input are reported as one line,
``latentcore: error: <message>`` naming the flag or the file, with exit status
2 (argparse's convention for usage errors), never as a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import __version__
from ._validation import check_number
from .io import (read_labeled_matrix, read_matrix, write_matrix, write_npz_atomic, write_sparse_npz,
                 write_target)
from .knn import METRICS, knn
from .metrics import knn_recall, trustworthiness

__all__ = ["main"]

_PROG = "latentcore"
_USAGE_ERROR = 2
_INTERRUPTED = 130  # the shell's status for a process ended by SIGINT
# Errors that describe bad arguments, bad input, an unusable file or a task
# too large for memory; any other exception is a bug in latentcore and keeps
# its traceback.
_INPUT_ERRORS = (ValueError, TypeError, OSError, ImportError, MemoryError)


class _UsageError(Exception):
    """argparse's complaint about the command line, reported in one line."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block): the
    message names the argument and points at --help."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        raise _UsageError(f"{message} (see '{self.prog} --help')")


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
        printing ``latentcore: error: <message>`` to stderr, one line), 130
        when interrupted.
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help and --version exit inside argparse
        return 0 if exc.code is None else int(exc.code)
    except _UsageError as exc:
        return _fail(str(exc))
    try:
        args.run(args)
    except _INPUT_ERRORS as exc:
        message = str(exc) or type(exc).__name__
        if isinstance(exc, MemoryError):
            message = f"out of memory: {message}"
        return _fail(message)
    except KeyboardInterrupt:
        print(f"{_PROG}: interrupted", file=sys.stderr)
        return _INTERRUPTED
    return 0


def _fail(message: str) -> int:
    one_line = " ".join(message.splitlines())
    print(f"{_PROG}: error: {one_line}", file=sys.stderr)
    return _USAGE_ERROR


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=_PROG, description="Fast maps of latent spaces: k-NN graphs and t-SNE maps "
                                "of matrices in files, node embeddings of graphs, sparse "
                                "codes over a dictionary and TopK sparse autoencoders.")
    parser.add_argument("--version", action="version", version=f"{_PROG} {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _add_knn_command(commands)
    _add_map_command(commands)
    _add_walks_command(commands)
    _add_encode_command(commands)
    _add_sae_command(commands)
    _add_demo_command(commands)
    return parser


def _add_input_arguments(p: argparse.ArgumentParser) -> None:
    """INPUT, --key and --threads: what every command on a matrix file takes."""
    p.add_argument("input", metavar="INPUT", help="the points, one row each")
    p.add_argument("--key", default=None, metavar="NAME",
                   help="the array to read from an .npz INPUT holding several")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads (default: all cores)")


def _add_knn_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "knn", help="exact k-nearest-neighbour graph of the rows of a matrix",
        description="Exact k nearest neighbours of every row of INPUT (.npy, .npz, .csv, "
                    ".tsv, .parquet), saved as 'indices' (int32) and 'distances' (float32) "
                    "arrays of shape (n, k) in an .npz archive.")
    _add_input_arguments(p)
    p.add_argument("-k", type=int, default=15, help="neighbours per point (default: 15)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.npz",
                   help="the archive to write (replaced atomically)")
    p.add_argument("--metric", default="euclidean", choices=sorted(METRICS),
                   help="distance (default: euclidean)")
    p.add_argument("--include-self", action="store_true",
                   help="list each point among its own neighbours (at distance 0)")
    p.set_defaults(run=_knn)


def _add_map_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "map", help="t-SNE map of the rows of a matrix, drawn as a PNG",
        description="Embeds the rows of INPUT (.npy, .npz, .csv, .tsv, .parquet) with t-SNE, "
                    "draws the map as an image (needs matplotlib: pip install "
                    "'latentcore[plot]') and saves the coordinates. Every file is replaced "
                    "atomically. At the end the KL divergence and the trustworthiness (k=10; "
                    f"on a random sample of {_TRUST_SAMPLE} points when there are more, for "
                    "speed) are printed.")
    _add_input_arguments(p)
    p.add_argument("-o", "--output", required=True, metavar="MAP.png",
                   help="the image to write (.png; .svg and .pdf also work)")
    p.add_argument("--labels", default=None, metavar="COLUMN_OR_FILE",
                   help="colour the points by label: a column of a .csv/.tsv/.parquet INPUT "
                        "(dropped from the features), or a .npy/.csv/.txt file with one "
                        "label per row")
    p.add_argument("--html", action="store_true",
                   help="also write a self-contained HTML page of the map (MAP.html)")
    p.add_argument("--perplexity", type=float, default=30.0,
                   help="effective neighbours per point (default: 30)")
    p.add_argument("--dims", type=int, default=2, choices=(1, 2, 3),
                   help="dimensions of the map (default: 2; a 3-D map is drawn by its "
                        "first two coordinates)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--coords", default=None, metavar="OUT.npy|OUT.csv",
                   help="where to save the map coordinates (default: MAP.npy beside the image)")
    p.set_defaults(run=_map)


_WALKS_DESCRIPTION = (
    "Samples random walks on the graph of EDGES (.txt/.edg/.edgelist whitespace-separated, "
    ".csv, .tsv or .parquet: source, target and an optional weight per row) and trains "
    "skip-gram node vectors on them, in one streamed pass. The output is replaced "
    "atomically: .npy (the vectors, rows in sorted node-id order), .npz ('embedding' and "
    "'nodes') or any other name for word2vec's text format (gensim's "
    "KeyedVectors.load_word2vec_format)."
)


def _add_walks_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("walks", help="DeepWalk / node2vec embedding of a graph in an edge-list file",
                            description=_WALKS_DESCRIPTION)
    p.add_argument("input", metavar="EDGES", help="the edge-list file")
    p.add_argument("-o", "--output", required=True, metavar="EMB",
                   help="the embedding to write (.npy, .npz, or word2vec text e.g. .txt/.emb)")
    p.add_argument("--p", type=float, default=1.0, help="node2vec return parameter (default: 1)")
    p.add_argument("--q", type=float, default=1.0,
                   help="node2vec in-out parameter (default: 1; p = q = 1 is DeepWalk)")
    p.add_argument("--dim", type=int, default=128, help="embedding dimension (default: 128)")
    p.add_argument("--walk-length", type=int, default=80,
                   help="nodes per walk, the start included (default: 80)")
    p.add_argument("--walks-per-node", type=int, default=10, help="walks from each node (default: 10)")
    p.add_argument("--window", type=int, default=10, help="skip-gram window (default: 10)")
    p.add_argument("--negative", type=int, default=5, help="negative samples (default: 5)")
    p.add_argument("--epochs", type=int, default=1, help="passes over the walks (default: 1)")
    p.add_argument("--directed", action="store_true", help="read each row as a one-way edge")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads (default: all cores)")
    p.add_argument("--deterministic", action="store_true",
                   help="train skip-gram on one thread: the same vectors for any --threads "
                        "(walks are the same either way)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_walks)


_ENCODE_DESCRIPTION = (
    "Sparse codes of the rows of INPUT (.npy, .npz, .csv, .tsv, .parquet) over the atoms "
    "(rows) of a dictionary of unit-norm atoms: orthogonal matching pursuit (omp, at most "
    "-k atoms per signal), LASSO (lasso, L1 weight --alpha) or the -k largest correlations "
    "(topk). The codes are saved atomically as a scipy sparse matrix (n_signals, n_atoms), "
    "float32, in an .npz that scipy.sparse.load_npz reads. Unless --quiet, a summary is "
    "printed: the mean nonzeros per signal and the fraction of variance unexplained (FVU) "
    "of codes @ dictionary."
)


def _add_encode_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("encode", help="sparse codes of the rows of a matrix over a dictionary "
                                           "(OMP, LASSO or top-k)",
                            description=_ENCODE_DESCRIPTION)
    _add_input_arguments(p)
    p.add_argument("--dictionary", required=True, metavar="DICT",
                   help="the atoms, one row each, of INPUT's dimension (.npy, .npz, .csv, .tsv, "
                        ".parquet); unit norm unless --normalize")
    p.add_argument("--dictionary-key", default=None, metavar="NAME",
                   help="the array to read from an .npz DICT holding several (e.g. 'decoder' "
                        "of a saved autoencoder)")
    p.add_argument("-o", "--output", required=True, metavar="CODES.npz",
                   help="the sparse codes to write (.npz, scipy's sparse format; replaced "
                        "atomically)")
    p.add_argument("--method", default="omp", choices=("omp", "lasso", "topk"),
                   help="omp: orthogonal matching pursuit; lasso: L1-penalized least squares "
                        "(needs --alpha); topk: the -k largest correlations (default: omp)")
    p.add_argument("-k", "--n-nonzero", type=int, default=None, metavar="K", dest="n_nonzero",
                   help="omp and topk: atoms per signal at most (default: 10%% of the "
                        "dimension, at least 1; omp with --tol: every atom)")
    p.add_argument("--alpha", type=float, default=None,
                   help="lasso: the L1 weight, as scikit-learn's Lasso(alpha) (required "
                        "with --method lasso)")
    p.add_argument("--tol", type=float, default=None,
                   help="omp: stop a signal once its squared residual norm is at most TOL; "
                        "lasso: duality-gap tolerance (default: 1e-4)")
    p.add_argument("--positive", action="store_true", help="non-negative codes only")
    p.add_argument("--normalize", action="store_true",
                   help="rescale the atoms to unit norm first (the codes are then over the "
                        "rescaled atoms)")
    p.add_argument("--quiet", action="store_true", help="no summary")
    p.set_defaults(run=_encode)


_SAE_DESCRIPTION = (
    "Trains a TopK sparse autoencoder (Gao et al. 2024) on the rows of INPUT (.npy, .npz, "
    ".csv, .tsv, .parquet; an .npy file is memory-mapped and read batch by batch, so it may "
    "exceed memory): --latents directions, -k of them active per sample. The model is saved "
    "atomically as .npz or .safetensors (latentcore.TopKSAE.load reads both); --codes also "
    "saves the training data's codes as a scipy sparse .npz. Unless --quiet, a progress bar "
    "and, at the end, the last step's fraction of variance unexplained (FVU), mean L0 and "
    "fraction of dead latents are printed."
)


def _add_sae_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("sae", help="train a TopK sparse autoencoder on the rows of a matrix",
                            description=_SAE_DESCRIPTION)
    _add_input_arguments(p)
    p.add_argument("--latents", type=int, required=True, metavar="N",
                   help="number of latents (dictionary atoms), typically 4-64x the dimension")
    p.add_argument("-k", type=int, required=True,
                   help="latents active per sample (on average with --activation batchtopk)")
    p.add_argument("-o", "--output", required=True, metavar="MODEL",
                   help="the model to write (.npz or .safetensors; replaced atomically)")
    p.add_argument("--codes", default=None, metavar="CODES.npz",
                   help="also write INPUT's codes, a scipy sparse .npz (scipy.sparse.load_npz)")
    p.add_argument("--activation", default="topk", choices=("topk", "batchtopk"),
                   help="topk: k per sample; batchtopk: k * batch per batch, shared "
                        "(default: topk)")
    p.add_argument("--batch-size", type=int, default=4096, metavar="N",
                   help="samples per Adam step (default: 4096)")
    p.add_argument("--epochs", type=int, default=1, metavar="N", help="passes over INPUT (default: 1)")
    p.add_argument("--lr", type=float, default=None,
                   help="Adam's learning rate (default: 2e-4 / sqrt(latents / 2^14))")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    p.set_defaults(run=_sae)


def _add_demo_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "demo", help="k-NN graph and t-SNE map of scikit-learn's digits",
        description="Builds the exact k=15 nearest-neighbour graph of scikit-learn's "
                    "bundled digits (1797 images of 8x8 pixels) and checks it against "
                    f"scikit-learn, then maps the digits with t-SNE into {_DEMO_MAP} "
                    "(needs matplotlib: pip install 'latentcore[plot]').")
    p.add_argument("--out", default=".", metavar="DIR",
                   help=f"directory for {_DEMO_MAP} (default: the current one; created "
                        "if missing)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads (default: all cores)")
    p.set_defaults(run=_demo)


# ------------------------------------------------------------------ checks

_MAX_COUNT = 2**31 - 1  # sizes and counts: the kernels index with int
_MAX_SEED = 2**63 - 1
_MAX_THREADS = 1024


def _check_count(value: int | None, flag: str, low: int = 1) -> None:
    """An integer flag (None: left out) in [low, 2**31 - 1]; the message names the flag."""
    if value is not None:
        check_number(value, flag, low=low, high=_MAX_COUNT)


def _check_positive(value: float | None, flag: str, *, zero: bool = False) -> None:
    """A finite float flag (None: left out) > 0 (>= 0 with ``zero``)."""
    if value is not None:
        check_number(value, flag, low=0.0, low_inclusive=zero)


def _check_common(args: argparse.Namespace) -> None:
    """The flags several commands share: --threads and --seed."""
    if getattr(args, "threads", None) is not None:
        check_number(args.threads, "--threads", low=1, high=_MAX_THREADS)
    if getattr(args, "seed", None) is not None:
        check_number(args.seed, "--seed", low=0, high=_MAX_SEED)


def _check_files(inputs: list[tuple[str, str | os.PathLike | None]],
                 outputs: list[tuple[str, str | os.PathLike | None]]) -> None:
    """Fails before the work, not after it: each output's directory must
    exist, no output may be a directory, the outputs must be distinct files,
    and no output may replace an input of the same command.

    Two paths are the same file when they resolve to the same real path
    (symbolic links followed, also a dangling link's target) or are hard
    links of one file (os.path.samefile). ``inputs`` and ``outputs`` are
    (flag, path) pairs, None paths skipped; inputs that do not exist cannot
    be replaced (their reader reports them).
    """
    sources = [(flag, Path(path)) for flag, path in inputs if path is not None and os.path.exists(path)]
    checked: list[tuple[str, Path]] = []
    for flag, path in outputs:
        if path is None:
            continue
        path = Path(path)
        try:
            target = write_target(path)  # a symbolic link's final target
        except OSError as exc:  # links in a loop
            raise ValueError(f"{flag} {exc}") from None
        via = "" if target == path else f" (a link to {target})"
        if not target.parent.is_dir():
            raise ValueError(f"{flag} {path}{via}: cannot write: directory {target.parent} does not exist")
        if target.is_dir():
            raise ValueError(f"{flag} {path}{via}: cannot write: it is a directory")
        for other_flag, other in checked:
            if _same_file(path, other):
                raise ValueError(f"{other_flag} {other} and {flag} {path} are the same file; choose another name")
        for source_flag, source in sources:
            if _same_file(path, source):
                raise ValueError(f"{flag} {path}{via} would replace the input {source_flag} {source}; "
                                 "choose another name")
        checked.append((flag, path))


def _same_file(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links; also case-insensitive file systems
    except (OSError, ValueError):  # either is missing: not the same existing file
        return False


# ------------------------------------------------------------------ knn, walks, encode, sae

def _knn(args: argparse.Namespace) -> None:
    _check_common(args)
    _check_count(args.k, "-k")
    _check_files([("INPUT", args.input)], [("-o", args.output)])
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


def _walks(args: argparse.Namespace) -> None:
    from .walks import Node2Vec

    _check_common(args)
    for flag, value in (("--p", args.p), ("--q", args.q)):
        _check_positive(value, flag)
    _check_count(args.walk_length, "--walk-length", low=2)
    for flag, value in (("--dim", args.dim), ("--walks-per-node", args.walks_per_node),
                        ("--window", args.window), ("--negative", args.negative), ("--epochs", args.epochs)):
        _check_count(value, flag)
    output = Path(args.output)
    _check_files([("EDGES", args.input)], [("-o", output)])
    model = Node2Vec(args.p, args.q, dim=args.dim, walk_length=args.walk_length,
                     walks_per_node=args.walks_per_node, window=args.window, negative=args.negative,
                     epochs=args.epochs, directed=args.directed, random_state=args.seed,
                     n_jobs=args.threads, deterministic=args.deterministic, verbose=not args.quiet)
    start = time.perf_counter()
    model.fit(args.input)
    seconds = time.perf_counter() - start
    model.save(output)
    kind = "DeepWalk" if args.p == args.q == 1 else f"node2vec p={args.p:g} q={args.q:g}"
    print(f"walks: {model.nodes_.size} nodes, {kind}, {model.n_tokens_} tokens trained, "
          f"dim {args.dim}: {seconds:.3f} s -> {output}")


def _encode(args: argparse.Namespace) -> None:
    from .metrics import fraction_of_variance_unexplained
    from .sparse import unit_dictionary, sparse_encode

    _check_common(args)
    _check_count(args.n_nonzero, "-k")
    _check_positive(args.alpha, "--alpha", zero=True)
    _check_positive(args.tol, "--tol", zero=True)
    output = Path(args.output)
    _check_sparse_output(output, "-o")
    _check_files([("INPUT", args.input), ("--dictionary", args.dictionary)], [("-o", output)])
    if args.method == "lasso":
        if args.alpha is None:
            raise ValueError("--method lasso needs --alpha, the L1 weight")
        if args.n_nonzero is not None:
            raise ValueError("-k applies to --method omp and topk; lasso's sparsity is set by --alpha")
    elif args.alpha is not None:
        raise ValueError(f"--alpha applies to --method lasso only, not {args.method}")
    X = _as_points(read_matrix(args.input, key=args.key))
    D = _as_points(read_matrix(args.dictionary, key=args.dictionary_key))
    try:
        # The coder's own check, reworded for the command line; the rescaled
        # atoms are those the FVU is measured against.
        unit = unit_dictionary(D, X.shape[1], args.normalize)
    except ValueError as exc:
        raise ValueError(f"{args.dictionary}: {str(exc).replace('pass normalize=True', 'pass --normalize')}") \
            from exc
    start = time.perf_counter()
    codes = sparse_encode(X, unit, method=args.method, n_nonzero=args.n_nonzero, alpha=args.alpha,
                          tol=args.tol, positive=args.positive, n_jobs=args.threads)
    seconds = time.perf_counter() - start
    write_sparse_npz(output, codes)
    if not args.quiet:
        n, d = X.shape
        fvu = _fvu_text(fraction_of_variance_unexplained, X, codes @ unit)
        print(f"encode: {n} signals x {d} dims over {D.shape[0]} atoms, {args.method}: "
              f"{codes.nnz / max(n, 1):.2f} nonzeros per signal, {fvu}: {seconds:.3f} s -> {output}",
              file=sys.stderr)


def _sae(args: argparse.Namespace) -> None:
    from .sae import TopKSAE

    _check_common(args)
    for flag, value in (("--latents", args.latents), ("-k", args.k), ("--batch-size", args.batch_size),
                        ("--epochs", args.epochs)):
        _check_count(value, flag)
    _check_positive(args.lr, "--lr")
    output = Path(args.output)
    if output.suffix not in (".npz", ".safetensors"):  # TopKSAE.save's own (case-sensitive) test
        raise ValueError(f"-o {output}: the model is saved as .npz or .safetensors, "
                         f"not {output.suffix or '(no extension)'!r}")
    codes_path = Path(args.codes) if args.codes is not None else None
    if codes_path is not None:
        _check_sparse_output(codes_path, "--codes")
    _check_files([("INPUT", args.input)], [("-o", output), ("--codes", codes_path)])
    X = read_matrix(args.input, key=args.key)  # checks the file; an .npy is only memory-mapped
    if X.dtype.kind == "f" and Path(args.input).suffix.lower() == ".npy":
        data = args.input  # TopKSAE memory-maps it and reads it batch by batch
    else:
        data = X = _as_points(X)
    sae = TopKSAE(args.latents, args.k, activation=args.activation, batch_size=args.batch_size,
                  n_epochs=args.epochs, learning_rate=args.lr, random_state=args.seed,
                  n_jobs=args.threads, verbose=not args.quiet)
    start = time.perf_counter()
    sae.fit(data)
    seconds = time.perf_counter() - start
    sae.save(output)
    written = [output]
    if codes_path is not None:
        write_sparse_npz(codes_path, sae.encode(X))
        written.append(codes_path)
    if not args.quiet:
        n, d = X.shape
        history = sae.history_
        print(f"sae: {n} samples x {d} dims, {args.latents} latents, {args.activation} k={args.k}, "
              f"{sae.n_steps_} steps: FVU {history['fvu'][-1]:.4f}, mean L0 {history['l0'][-1]:.1f}, "
              f"dead {history['dead'][-1]:.3f}: {seconds:.3f} s -> {', '.join(map(str, written))}",
              file=sys.stderr)


def _check_sparse_output(path: Path, option: str) -> None:
    if path.suffix.lower() != ".npz":
        raise ValueError(f"{option} {path}: sparse codes are saved as .npz (scipy.sparse.save_npz), "
                         f"not {path.suffix or '(no extension)'!r}")


def _fvu_text(fvu, X: np.ndarray, reconstruction: np.ndarray) -> str:
    try:
        return f"FVU {fvu(X, reconstruction):.4f}"
    except ValueError:  # every signal the same: no variance to explain
        return "FVU undefined (X has no variance)"


def _as_points(X: np.ndarray) -> np.ndarray:
    """Integer and boolean files (counts, binary codes) are read as float32:
    the library asks its callers to convert them explicitly, and on the command
    line this is the only sensible conversion."""
    if X.dtype.kind in "iub":
        return X.astype(np.float32)
    return X


# ------------------------------------------------------------------ map

_TRUST_K = 10
_TRUST_SAMPLE = 5000  # trustworthiness costs O(n^2): measured on a sample above this
_COORD_FORMATS = (".npy", ".csv")


def _map(args: argparse.Namespace) -> None:
    from . import plot
    from .tsne import TSNE

    _check_common(args)
    try:
        check_number(args.perplexity, "--perplexity", low=0.0, low_inclusive=False)
    except ValueError:  # worded as the library's check, which also bounds it by n
        raise ValueError(f"--perplexity: perplexity={args.perplexity!r} must be positive and finite") from None
    plot.require_matplotlib()  # before minutes of t-SNE, not after
    output = Path(args.output)
    if output.suffix.lower() not in plot.IMAGE_FORMATS:
        raise ValueError(f"-o {output}: unknown image type {output.suffix or '(no extension)'!r}; "
                         f"expected one of {', '.join(plot.IMAGE_FORMATS)}")
    coords = Path(args.coords) if args.coords is not None else output.with_suffix(".npy")
    coords_flag = "--coords" if args.coords is not None else "--coords (default: -o as .npy)"
    if coords.suffix.lower() not in _COORD_FORMATS:
        raise ValueError(f"{coords_flag} {coords}: coordinates are saved as .npy or .csv, "
                         f"not {coords.suffix or '(no extension)'!r}")
    page = output.with_suffix(".html") if args.html else None
    label_file = args.labels if args.labels is not None and os.path.isfile(args.labels) else None
    _check_files([("INPUT", args.input), ("--labels", label_file)],
                 [("-o", output), ("--html (-o as .html)", page), (coords_flag, coords)])

    X, labels, label_source = read_labeled_matrix(args.input, args.labels, key=args.key, name="--labels")
    X = _as_points(X)
    n, d = X.shape
    if labels is not None:
        print(f"labels: {label_source}, {np.unique(labels).size} distinct values")
    tsne = TSNE(n_components=args.dims, perplexity=args.perplexity, random_state=args.seed,
                n_jobs=args.threads, verbose=True)
    tsne.check_n_samples(n)  # a perplexity too large for n fails here, before any output
    print(f"t-SNE of {n} points x {d} dims, perplexity {args.perplexity:g}, "
          f"{args.dims}-D map: k-NN graph and affinities, then gradient descent",
          file=sys.stderr)
    start = time.perf_counter()
    Y = tsne.fit_transform(X)
    seconds = time.perf_counter() - start

    title = f"{Path(args.input).name}: t-SNE of {n:,} points, perplexity {args.perplexity:g}"
    plot.scatter_map(Y, output, labels=labels, title=title)
    written = [output]
    if page is not None:
        plot.scatter_map_html(Y, page, labels=labels, title=title)
        written.append(page)
    write_matrix(coords, Y)
    written.append(coords)

    print(f"map: {n} points x {d} dims -> {args.dims}-D, perplexity {args.perplexity:g}: "
          f"{seconds:.3f} s -> {', '.join(map(str, written))}")
    print(f"KL divergence: {tsne.kl_divergence_:.4f}")
    _print_trustworthiness(X, Y, seed=args.seed, n_jobs=args.threads)


def _print_trustworthiness(X: np.ndarray, Y: np.ndarray, *, seed: int, n_jobs: int | None) -> None:
    n = X.shape[0]
    if n <= 2 * _TRUST_K:
        print(f"trustworthiness (k={_TRUST_K}): not measured, needs more than "
              f"{2 * _TRUST_K} points")
        return
    note = ""
    if n > _TRUST_SAMPLE:
        rows = np.sort(np.random.default_rng(seed).choice(n, _TRUST_SAMPLE, replace=False))
        X, Y = X[rows], Y[rows]
        note = f" (on a random sample of {_TRUST_SAMPLE} of the {n} points, for speed)"
    value = trustworthiness(X, Y, _TRUST_K, n_jobs=n_jobs)
    print(f"trustworthiness (k={_TRUST_K}): {value:.4f}{note}")


# ------------------------------------------------------------------ demo

_DEMO_K = 15
_DEMO_MAP = "digits_map.png"


def _demo(args: argparse.Namespace) -> None:
    from sklearn.datasets import load_digits

    _check_common(args)
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir}: not a directory")
    if out_dir.is_dir():  # else it is created at the end
        _check_files([], [(f"--out {out_dir}: the map", out_dir / _DEMO_MAP)])
    X, labels = load_digits(return_X_y=True)
    print(f"digits (scikit-learn): {X.shape[0]} points x {X.shape[1]} dims")
    start = time.perf_counter()
    indices, _ = knn(X, _DEMO_K, n_jobs=args.threads)
    seconds = time.perf_counter() - start
    print(f"exact k-NN graph, k={_DEMO_K}, euclidean: {seconds:.3f} s")
    agreement = float((labels[indices] == labels[:, None]).mean())
    print(f"k-NN label agreement: {agreement:.3f} of neighbours show the same digit")
    _print_reference_check(X, indices)
    _demo_map(X, labels, out_dir, args.threads)


def _demo_map(X: np.ndarray, labels: np.ndarray, out_dir: Path, threads: int | None) -> None:
    """t-SNE of the digits, its quality, and the picture when matplotlib is there."""
    from . import plot
    from .tsne import TSNE

    try:
        plot.require_matplotlib()
        can_draw = True
    except ImportError as exc:
        can_draw = False
        print(f"{_PROG}: note: {_DEMO_MAP} will not be drawn: {exc}", file=sys.stderr)
    tsne = TSNE(random_state=0, n_jobs=threads, verbose=True)
    start = time.perf_counter()
    Y = tsne.fit_transform(X)
    seconds = time.perf_counter() - start
    print(f"t-SNE map, perplexity 30, random_state=0: {seconds:.3f} s")
    print(f"KL divergence: {tsne.kl_divergence_:.4f}")
    value = trustworthiness(X, Y, _TRUST_K, n_jobs=threads)
    print(f"trustworthiness (k={_TRUST_K}): {value:.4f}")
    if can_draw:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = plot.scatter_map(Y, out_dir / _DEMO_MAP, labels=labels,
                                title="scikit-learn digits: t-SNE (latentcore)")
        print(f"map of the digits -> {path}")


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
