"""Reading point matrices from files and writing results atomically.

Readers turn every failure (missing file, unknown format, corrupt content,
wrong shape) into a ValueError that names the file and the problem, so the
command-line tool can report it in one line. Writers go through a temporary
file in the target's directory and ``os.replace``: a reader of the target sees
the old file or the complete new one, never a partial write.
"""

from __future__ import annotations

import os
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["EDGE_FORMATS", "FORMATS", "atomic_write", "read_edge_list", "read_matrix", "read_word2vec",
           "write_npz_atomic", "write_word2vec"]

#: File extensions read_matrix understands (case-insensitive).
FORMATS = (".npy", ".npz", ".csv", ".tsv", ".parquet")

# What numpy, zipfile and pyarrow raise on unreadable content; anything else
# is a bug and should surface as one.
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile)


def read_matrix(path: str | os.PathLike, *, key: str | None = None) -> np.ndarray:
    """Reads a 2-D numeric matrix (one row per point) from a file.

    Parameters
    ----------
    path : str or path-like
        A ``.npy`` file (memory-mapped read-only, so it may exceed memory), a
        ``.npz`` archive, a ``.csv`` or ``.tsv`` table of numbers (a header row
        is detected and skipped; ``#`` starts a comment), or a ``.parquet``
        file (needs pyarrow: ``pip install 'latentcore[io]'``; its numeric
        columns are read, other columns are skipped).
    key : str, optional
        The array to read from a ``.npz`` archive; may be left out when the
        archive holds a single array. Not allowed for other formats.

    Returns
    -------
    ndarray of shape (n, d)
        The dtype as stored (csv/tsv: float64); a read-only memory map for ``.npy``.

    Raises
    ------
    ValueError
        The file is missing, its extension unknown, its content unreadable,
        the key absent, or the data not 2-D; the message names the file.
    ImportError
        A ``.parquet`` file and pyarrow is not installed.
    """
    path, suffix = _readable(path, FORMATS, "file type")
    if key is not None and suffix != ".npz":
        raise ValueError(f"{path}: key={key!r} applies only to .npz archives")
    try:
        data = _READERS[suffix](path, key)
    except _ContentError as exc:
        raise ValueError(f"{path}: {exc}") from None
    except _READ_ERRORS as exc:
        raise ValueError(f"{path}: cannot read as {suffix[1:]}: {exc}") from exc
    if data.ndim != 2:
        raise ValueError(
            f"{path}: expected a 2-D matrix (n_points, n_features), got shape {data.shape}"
        )
    return data


def _readable(path: str | os.PathLike, formats: tuple[str, ...], kind: str) -> tuple[Path, str]:
    """The path and its lower-case extension, once it is a file of a known type."""
    path = Path(path)
    if not path.is_file():
        problem = "is a directory, not a file" if path.is_dir() else "no such file"
        raise ValueError(f"{path}: {problem}")
    suffix = path.suffix.lower()
    if suffix not in formats:
        raise ValueError(f"{path}: unknown {kind} {path.suffix or '(no extension)'!r}; "
                         f"expected one of {', '.join(formats)}")
    return path, suffix


class _ContentError(ValueError):
    """A problem with a readable file's content that the message fully explains."""


# Leading bytes of the two numpy formats. Checked before np.load, which
# otherwise takes any other content for a pickle and says so, misleadingly.
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK"


def _leading_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(len(_NPY_MAGIC))


# What each binary format starts with, and what to call it in a message.
_SIGNATURES = {".npy": (_NPY_MAGIC, "an .npy file"), ".npz": (_ZIP_MAGIC, "an .npz archive")}


def _check_signature(path: Path, suffix: str) -> None:
    """Refuses content that is not the format its name says, before numpy
    guesses at it (and suggests unpickling garbage)."""
    head = _leading_bytes(path)
    magic, what = _SIGNATURES[suffix]
    for other, (other_magic, other_what) in _SIGNATURES.items():
        if other != suffix and head.startswith(other_magic):
            raise _ContentError(f"is {other_what}, not {what}; rename it to {other}")
    if not head.startswith(magic):
        raise _ContentError(f"is not {what}: its signature is missing (corrupt or another format)")


def _read_npy(path: Path, key: str | None) -> np.ndarray:
    _check_signature(path, ".npy")
    return np.load(path, mmap_mode="r", allow_pickle=False)


def _read_npz(path: Path, key: str | None) -> np.ndarray:
    _check_signature(path, ".npz")
    # Our own file object: np.load leaves its file open when the zip is corrupt.
    with open(path, "rb") as f, np.load(f, allow_pickle=False) as archive:
        names = archive.files
        if not names:
            raise _ContentError("holds no arrays")
        if key is None:
            if len(names) != 1:
                raise _ContentError(
                    f"holds {len(names)} arrays ({', '.join(names)}); "
                    "choose one with key (--key on the command line)"
                )
            key = names[0]
        elif key not in names:
            raise _ContentError(f"has no array {key!r}; its arrays are: {', '.join(names)}")
        return archive[key]


def _read_delimited(path: Path, delimiter: str) -> np.ndarray:
    header_lines = _count_header_lines(path, delimiter)
    with warnings.catch_warnings():
        # numpy only warns about an empty table; it is reported below as an error.
        warnings.simplefilter("ignore", UserWarning)
        data = np.loadtxt(path, delimiter=delimiter, skiprows=header_lines, ndmin=2,
                          dtype=np.float64, encoding="utf-8-sig")
    if data.size == 0:
        raise _ContentError("holds no data rows")
    return data


def _count_header_lines(path: Path, delimiter: str) -> int:
    """Lines to skip: up to and including a header row, if the first
    non-blank, non-comment line has a field that is not a number."""
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f):
            content = line.split("#", 1)[0].strip()
            if content:
                return number + 1 if _is_header(content, delimiter) else 0
    return 0


def _is_header(line: str, delimiter: str) -> bool:
    for field in line.split(delimiter):
        field = field.strip()
        if not field:  # a missing value, not a column name: loadtxt reports it
            continue
        try:
            float(field)
        except ValueError:
            return True
    return False


def _read_parquet(path: Path, key: str | None) -> np.ndarray:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError(
            f"reading {path} needs pyarrow: pip install 'latentcore[io]'"
        ) from exc
    try:
        schema = pq.read_schema(path)
        # Only the numeric columns are read: ids and labels can be large.
        columns = [field.name for field in schema
                   if pa.types.is_integer(field.type) or pa.types.is_floating(field.type)]
        if not columns:
            names = ", ".join(schema.names) or "none"
            raise _ContentError(f"has no numeric columns (columns: {names})")
        table = pq.read_table(path, columns=columns)
    except pa.ArrowException as exc:  # some are neither ValueError nor OSError
        raise ValueError(str(exc)) from exc
    # Nulls become NaN (integers are promoted to float for it); the k-NN
    # validation rejects NaN with its own message.
    return np.column_stack([table.column(name).to_numpy() for name in columns])


_READERS = {
    ".npy": _read_npy,
    ".npz": _read_npz,
    ".csv": lambda path, key: _read_delimited(path, ","),
    ".tsv": lambda path, key: _read_delimited(path, "\t"),
    ".parquet": _read_parquet,
}


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Opens a binary file whose content replaces ``path`` only on success.

    The data go to a temporary file in the same directory (so the final
    ``os.replace`` is an atomic rename on one file system), are flushed to
    disk, then renamed over ``path``. If the ``with`` block raises, the
    temporary file is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or path-like
        The file to create or replace; its directory must exist.

    Yields
    ------
    BinaryIO
        A file object open for writing bytes.

    Raises
    ------
    FileNotFoundError
        The directory of ``path`` does not exist.

    Examples
    --------
    >>> with atomic_write("result.bin") as f:  # doctest: +SKIP
    ...     f.write(payload)
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: directory {path.parent} does not exist")
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            _give_default_mode(f.fileno(), path)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_directory(path.parent)


def _give_default_mode(fd: int, path: Path) -> None:
    """mkstemp creates files readable by the owner only; give the result the
    permissions of the file it replaces, or of any new file (0666 & ~umask)."""
    if not hasattr(os, "fchmod"):  # pragma: no cover - Windows before 3.13
        return
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)  # reading the umask requires setting it
        os.umask(umask)
        mode = 0o666 & ~umask
    os.fchmod(fd, mode)


def _fsync_directory(directory: Path) -> None:
    """Makes the rename itself durable (POSIX: the directory entry is data)."""
    if os.name != "posix":  # pragma: no cover
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse it; the new file is in place regardless
        pass
    finally:
        os.close(fd)


def write_npz_atomic(path: str | os.PathLike, **arrays: ArrayLike) -> None:
    """Saves arrays into an uncompressed ``.npz`` archive, atomically.

    Parameters
    ----------
    path : str or path-like
        The archive to create or replace, written exactly under this name
        (no ``.npz`` is appended).
    **arrays : array_like
        Arrays stored under their keyword names; strings and scalars become
        0-d arrays.

    Raises
    ------
    FileNotFoundError
        The directory of ``path`` does not exist.
    """
    with atomic_write(path) as f:
        # Through a file object: np.savez appends ".npz" to a name lacking it.
        np.savez(f, **arrays)


#: File extensions read_edge_list understands (case-insensitive).
EDGE_FORMATS = (".txt", ".edg", ".edgelist", ".csv", ".tsv", ".parquet")

# First-line fields that make it a header rather than an edge between nodes
# named so (a weight column that is not a number is caught separately).
_EDGE_HEADER_NAMES = {"source", "target", "src", "dst", "from", "to", "u", "v", "node1", "node2",
                      "head", "tail", "weight", "source_id", "target_id"}


def read_edge_list(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Reads a graph's edges from a table: source, target and an optional weight.

    Parameters
    ----------
    path : str or path-like
        ``.txt``, ``.edg`` or ``.edgelist`` (whitespace-separated), ``.csv``,
        ``.tsv``, or ``.parquet`` (needs pyarrow): two or three columns, one
        edge per row; ``#`` starts a comment; a header row (column names such
        as ``source target weight``) is detected and skipped.

    Returns
    -------
    sources, targets : ndarray of shape (m,)
        Node ids: int64 when every id is an integer, else strings.
    weights : float64 ndarray of shape (m,) or None
        None for a two-column table.

    Raises
    ------
    ValueError
        The file is missing, unreadable, ragged, has no edges, or a weight is
        negative, NaN or infinite; the message names the file and the line.
    """
    path, suffix = _readable(path, EDGE_FORMATS, "edge-list type")
    try:
        if suffix == ".parquet":
            columns, lines = _edge_columns_parquet(path), None
        else:
            columns, lines = _edge_columns_text(path, {".csv": ",", ".tsv": "\t"}.get(suffix))
        return _typed_edges(columns, lines)
    except _ContentError as exc:
        raise ValueError(f"{path}: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read as an edge list: {exc}") from exc


def _edge_columns_text(path: Path, delimiter: str | None) -> tuple[list[np.ndarray], np.ndarray]:
    """The columns (numbers, or strings for named nodes), and each row's line number."""
    text = path.read_text(encoding="utf-8-sig")
    numeric = _numeric_edge_table(text, delimiter)
    if numeric is not None:
        return numeric
    rows, lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = [field.strip() for field in line.split("#", 1)[0].split(delimiter)]
        if fields == [""] or not fields:
            continue
        rows.append(fields)
        lines.append(number)
    if rows and _is_edge_header(rows[0]):
        rows, lines = rows[1:], lines[1:]
    if not rows:
        raise _ContentError("holds no edges")
    width = len(rows[0])
    if width not in (2, 3):
        raise _ContentError(f"line {lines[0]} has {width} fields; expected source, target and an optional weight")
    for fields, number in zip(rows, lines):
        if len(fields) != width:
            raise _ContentError(f"line {number} has {len(fields)} fields, the first edge {width}")
    table = np.array(rows, dtype=str)
    return [table[:, c] for c in range(width)], np.array(lines)


def _numeric_edge_table(text: str, delimiter: str | None) -> tuple[list[np.ndarray], np.ndarray] | None:
    """A table of numbers with no comments or blank lines, parsed by numpy in
    C: a fraction of the time and memory of a list per line. None when the
    table needs the line-by-line reader (which also explains what is wrong)."""
    body = text.strip()
    if not body or "#" in body or "\n\n" in body.replace("\r", ""):
        return None
    first_line = text[:len(text) - len(text.lstrip())].count("\n") + 1
    head, _, rest = body.partition("\n")
    fields = [field.strip() for field in head.split(delimiter)]
    if _is_edge_header(fields):
        body, first_line = rest, first_line + 1
        fields = [field.strip() for field in body.partition("\n")[0].split(delimiter)]
    if len(fields) not in (2, 3) or not all(_is_number(field) for field in fields):
        return None
    n_rows = body.count("\n") + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a bad number ends the parse early: caught by the size below
        values = np.fromstring(body.replace(delimiter, " ") if delimiter else body, dtype=np.float64, sep=" ")
    if values.size != n_rows * len(fields) or (values.size and np.abs(values).max() >= 2**53):
        return None
    table = values.reshape(n_rows, len(fields))
    return [table[:, c] for c in range(len(fields))], np.arange(first_line, first_line + n_rows)


def _is_edge_header(fields: list[str]) -> bool:
    if len(fields) == 3 and not _is_number(fields[2]):
        return True
    return all(field.lower() in _EDGE_HEADER_NAMES for field in fields[:2])


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _edge_columns_parquet(path: Path) -> list[np.ndarray]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError(f"reading {path} needs pyarrow: pip install 'latentcore[io]'") from exc
    try:
        table = pq.read_table(path)
    except pa.ArrowException as exc:
        raise ValueError(f"{path}: cannot read as parquet: {exc}") from exc
    if table.num_columns not in (2, 3):
        raise _ContentError(f"has {table.num_columns} columns ({', '.join(table.column_names)}); "
                            "expected source, target and an optional weight")
    if table.num_rows == 0:
        raise _ContentError("holds no edges")
    return [table.column(c).to_numpy(zero_copy_only=False) for c in range(table.num_columns)]


def _typed_edges(columns: list[np.ndarray], lines: np.ndarray | None):
    ids = [_node_ids(column) for column in columns[:2]]
    if ids[0].dtype != ids[1].dtype:  # integers on one side only: all are names
        ids = [column.astype(str) for column in columns[:2]]
    if len(columns) == 2:
        return ids[0], ids[1], None
    where = (lambda e: f"line {lines[e]}") if lines is not None else (lambda e: f"row {e}")
    try:
        weights = columns[2].astype(np.float64)
    except ValueError:
        bad = next(e for e, w in enumerate(columns[2]) if not _is_number(str(w)))
        raise _ContentError(f"{where(bad)}: weight {str(columns[2][bad])!r} is not a number") from None
    bad = np.flatnonzero(~np.isfinite(weights) | (weights < 0))
    if bad.size:
        e = int(bad[0])
        raise _ContentError(f"{where(e)}: edge ({ids[0][e]}, {ids[1][e]}) has weight {weights[e]}; "
                            "weights must be finite and non-negative")
    return ids[0], ids[1], weights


def _node_ids(column: np.ndarray) -> np.ndarray:
    """int64 ids when every entry is an integer, else the names as strings."""
    if column.dtype.kind in "iu":
        return column.astype(np.int64)
    if column.dtype.kind == "f":
        whole = np.isfinite(column).all() and np.array_equal(column, np.round(column))
        return column.astype(np.int64) if whole else column.astype(str)
    try:
        return column.astype(np.int64)
    except (ValueError, OverflowError, TypeError):
        return column.astype(str)


def write_word2vec(path: str | os.PathLike, vectors: np.ndarray, names: ArrayLike) -> None:
    """Writes vectors in word2vec's text format, atomically: a ``count dim``
    line, then one ``name v1 v2 ...`` line per vector (9 significant digits:
    float32 values read back exactly). Names may not contain whitespace."""
    names = [str(name) for name in names]
    bad = next((name for name in names if not name or any(c.isspace() for c in name)), None)
    if bad is not None:
        raise ValueError(f"node id {bad!r} is empty or holds whitespace; word2vec's text format cannot store it")
    with atomic_write(path) as f:
        f.write(f"{len(names)} {vectors.shape[1]}\n".encode())
        for name, row in zip(names, vectors):
            f.write((name + " " + " ".join(f"{v:.9g}" for v in row) + "\n").encode())


def read_word2vec(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Reads word2vec's text format: (float32 vectors (n, dim), names (n,)),
    names as int64 when all are integers."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            count, dim = (int(v) for v in f.readline().split())
            rows = [line.rstrip("\n").split(" ") for line in f if line.strip()]
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not word2vec text format (a 'count dim' line, then 'name v1 v2 ...'): {exc}") \
            from exc
    if len(rows) != count or any(len(row) != dim + 1 for row in rows):
        raise ValueError(f"{path}: the header promises {count} vectors of {dim} values; the lines disagree")
    names = _node_ids(np.array([row[0] for row in rows], dtype=str))
    vectors = np.array([row[1:] for row in rows], dtype=np.float32).reshape(count, dim)
    return vectors, names
