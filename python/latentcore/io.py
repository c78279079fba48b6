"""Reading point matrices, graphs, labels and embeddings from files, and
writing results atomically.

Every reader turns every failure into one of two exceptions whose message
starts with the file's name: ``ValueError`` for a missing file, an unknown
format or content that cannot be read (corrupt, truncated, the wrong shape or
kind), and ``OSError`` when the operating system refuses the file itself
(permission denied, an I/O error). The command-line tool reports either as
one line. Writers go through a temporary file in the target's directory and
``os.replace``: a reader of the target sees the old file or the complete new
one, never a partial write; a target that is a symbolic link is written
through (the file it points to is replaced, the link stays).
"""

from __future__ import annotations

import errno
import math
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

__all__ = ["EDGE_FORMATS", "FORMATS", "LABEL_FORMATS", "TABLE_FORMATS", "WRITE_FORMATS", "atomic_write",
           "read_edge_list", "read_labeled_matrix", "read_labels", "read_matrix", "read_npz_array",
           "read_table_split", "read_word2vec", "table_columns", "write_matrix", "write_npz_atomic",
           "write_sparse_npz", "write_target", "write_word2vec"]

#: File extensions read_matrix understands (case-insensitive).
FORMATS = (".npy", ".npz", ".csv", ".tsv", ".parquet")


class _ContentError(ValueError):
    """A problem with a readable file's content that the message fully explains."""


@contextmanager
def _reading(path: Path, what: str) -> Iterator[None]:
    """Turns any failure while reading ``path`` into ValueError (its content)
    or OSError (the file itself), both naming the file.

    Parsers (numpy, zipfile, pyarrow, the tokenizer behind numpy's header
    parser) raise many kinds of exceptions on corrupt input; none of them may
    reach the caller as anything but "this file cannot be read as ``what``".
    An OSError with an errno is the operating system's answer about the file
    (EACCES, EIO, ...); one without (or EINVAL, a seek to a corrupt offset)
    is a parser's complaint about content.
    ImportError (an optional reader missing) and MemoryError (the data do not
    fit; readers check sizes against the file first) pass unchanged.
    """
    try:
        yield
    except _ContentError as exc:
        raise ValueError(f"{path}: {exc}") from None
    except (ImportError, MemoryError):
        raise
    except OSError as exc:
        if exc.errno in (None, errno.EINVAL):  # EINVAL: a seek to an offset read from corrupt content
            raise ValueError(f"{path}: cannot read as {what}: {_one_line(exc)}") from exc
        kind = type(exc) if type(exc).__module__ == "builtins" else OSError  # PermissionError, ...
        error = kind(f"{path}: cannot read: {exc.strerror or _one_line(exc)}")
        error.errno = exc.errno
        raise error from exc
    except Exception as exc:
        raise ValueError(f"{path}: cannot read as {what}: {_one_line(exc)}") from exc


def _one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's message on one line, shortened, never empty."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def read_matrix(path: str | os.PathLike, *, key: str | None = None) -> np.ndarray:
    """Reads a 2-D numeric matrix (one row per point) from a file.

    Parameters
    ----------
    path : str or path-like
        A ``.npy`` file (memory-mapped read-only, so it may exceed memory), a
        ``.npz`` archive, a ``.csv`` or ``.tsv`` table of numbers (a first row
        of names only is a header and skipped; ``#`` starts a comment), or a
        ``.parquet`` file (needs pyarrow: ``pip install 'latentcore[io]'``;
        its numeric columns are read, other columns are skipped).
    key : str, optional
        The array to read from a ``.npz`` archive; may be left out when the
        archive holds a single array. Not allowed for other formats.

    Returns
    -------
    ndarray of shape (n, d)
        Booleans, integers or floats, the dtype as stored (csv/tsv: float64);
        a read-only memory map for ``.npy``.

    Raises
    ------
    ValueError
        The file is missing, its extension unknown, its content unreadable,
        the key absent, or the data not a 2-D array of numbers; the message
        names the file.
    OSError
        The file cannot be opened or read (permission, I/O error); the
        message names it.
    ImportError
        A ``.parquet`` file and pyarrow is not installed.
    """
    path, suffix = _readable(path, FORMATS, "file type")
    if key is not None and suffix != ".npz":
        raise ValueError(f"{path}: key={key!r} applies only to .npz archives")
    with _reading(path, suffix[1:]):
        data = _READERS[suffix](path, key)
        if not isinstance(data, np.ndarray):
            raise _ContentError("does not hold an array")
        if data.ndim != 2:
            raise _ContentError(f"expected a 2-D matrix (n_points, n_features), got shape {data.shape}")
        if data.dtype.kind not in "biuf":
            raise _ContentError(f"holds values of type {data.dtype}, not numbers")
    return data


def read_npz_array(path: str | os.PathLike, key: str | None = None) -> np.ndarray:
    """Reads one array, of any shape and dtype but Python objects, from an
    ``.npz`` archive.

    Parameters
    ----------
    path : str or path-like
        The archive.
    key : str, optional
        The array's name; may be left out when the archive holds one array.

    Raises
    ------
    ValueError
        The file is missing, not an ``.npz`` archive, corrupt, or has no
        array ``key``; the message names the file (and the arrays it has).
    OSError
        The file cannot be opened or read; the message names it.
    """
    path, _ = _readable(path, (".npz",), "archive type")
    with _reading(path, "npz"):
        return _read_npz(path, key)


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
    # Memory-mapped: numpy checks the header's shape against the file's size
    # before mapping, so a corrupt header cannot ask for more memory than that.
    return np.load(path, mmap_mode="r", allow_pickle=False)


# zlib's deflate expands at most about 1032:1; a member claiming more is corrupt.
_DEFLATE_MAX_RATIO = 1100


def _read_npz(path: Path, key: str | None) -> np.ndarray:
    _check_signature(path, ".npz")
    with zipfile.ZipFile(path) as archive:
        # np.load's names: "x.npy" is read as "x", any other member under its own name.
        members = {(name[:-4] if name.endswith(".npy") else name): name for name in archive.namelist()}
        names = list(members)
        if not names:
            raise _ContentError("holds no arrays")
        if key is None:
            if len(names) != 1:
                raise _ContentError(
                    f"holds {len(names)} arrays ({', '.join(names)}); "
                    "choose one with key (--key on the command line)"
                )
            key = names[0]
        elif key not in members:
            raise _ContentError(f"has no array {key!r}; its arrays are: {', '.join(names)}")
        info = archive.getinfo(members[key])
        with archive.open(info) as member:
            _check_npz_member(member, info, key, path.stat().st_size)
        with archive.open(info) as member:
            return np.lib.format.read_array(member, allow_pickle=False)


def _check_npz_member(member: BinaryIO, info: zipfile.ZipInfo, key: str, archive_size: int) -> None:
    """Refuses a member that is not an .npy array, or whose header claims
    more data than the member holds: numpy allocates the claimed shape
    before reading, so a corrupt header would otherwise ask for any amount
    of memory."""
    if member.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
        raise _ContentError(f"member {key!r} is not an .npy array")
    version = tuple(member.read(2))
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
    elif version in ((2, 0), (3, 0)):  # 3.0 differs from 2.0 only in the header's text encoding
        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise _ContentError(f"member {key!r} has the unknown .npy format version {version}")
    if dtype.hasobject:
        raise _ContentError(f"member {key!r} holds Python objects (pickled data), which are not read")
    claimed = math.prod(shape) * dtype.itemsize
    stored = info.compress_size
    available = min(info.file_size, stored * (1 if info.compress_type == zipfile.ZIP_STORED else _DEFLATE_MAX_RATIO))
    if stored > archive_size or claimed > available:
        raise _ContentError(f"member {key!r} claims an array of shape {shape} and type {dtype} "
                            f"({claimed} bytes) but holds at most {available} bytes: the archive is corrupt")


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
    non-blank, non-comment line is one (see :func:`_is_header`)."""
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f):
            content = line.split("#", 1)[0].strip()
            if content:
                return number + 1 if _is_header(content, delimiter) else 0
    return 0


def _is_header(line: str, delimiter: str) -> bool:
    """A row of names: no field is a number, and one at least is not empty.
    A row mixing numbers and words is data with a bad value, reported by
    the parser, not a header to drop silently."""
    fields = [field.strip() for field in line.split(delimiter)]
    named = [field for field in fields if field]  # empty: a missing value, or pandas' index column
    return bool(named) and not any(_is_number(field) for field in named)


def _pyarrow(path: Path):
    """(pyarrow, pyarrow.parquet), or ImportError naming the file and the install command."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError(f"reading {path} needs pyarrow: pip install 'latentcore[io]'") from exc
    return pa, pq


def _is_numeric_type(pa, arrow_type) -> bool:
    return pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)


def _read_parquet(path: Path, key: str | None, exclude: str | None = None) -> np.ndarray:
    pa, pq = _pyarrow(path)
    try:
        schema = pq.read_schema(path)
        # Only the numeric columns are read: ids and labels can be large.
        columns = [field.name for field in schema if field.name != exclude and _is_numeric_type(pa, field.type)]
        if not columns:
            names = ", ".join(schema.names) or "none"
            raise _ContentError(f"has no numeric columns (columns: {names})" if exclude is None else
                                f"has no numeric feature columns besides the labels {exclude!r}")
        table = pq.read_table(path, columns=columns)
        # Nulls become NaN (integers are promoted to float for it); the k-NN
        # validation rejects NaN with its own message.
        return np.column_stack([table.column(name).to_numpy() for name in columns])
    except pa.ArrowException as exc:  # some are neither ValueError nor OSError; ArrowMemoryError is a MemoryError
        raise _ContentError(f"cannot read as parquet: {_one_line(exc)}") from exc


_READERS = {
    ".npy": _read_npy,
    ".npz": _read_npz,
    ".csv": lambda path, key: _read_delimited(path, ","),
    ".tsv": lambda path, key: _read_delimited(path, "\t"),
    ".parquet": _read_parquet,
}


# ------------------------------------------------------------------ labels

#: File extensions read_labels understands (case-insensitive).
LABEL_FORMATS = (".npy", ".csv", ".tsv", ".txt")


def read_labels(path: str | os.PathLike, n: int | None = None) -> np.ndarray:
    """Reads one label per point.

    Parameters
    ----------
    path : str or path-like
        A ``.npy`` file holding a 1-D (or (n, 1)) array, or a text file
        (``.txt``, ``.csv``, ``.tsv``) with one label per line.
    n : int, optional
        The number of points: a text file of ``n + 1`` lines starts with a
        header, which is skipped.

    Returns
    -------
    ndarray of shape (m,)
        As stored for ``.npy``; from text, int64 when every label is an
        integral number, float64 when all are numbers, else strings.

    Raises
    ------
    ValueError
        Missing file, unknown extension or unreadable content (naming the file).
    OSError
        The file cannot be opened or read (naming it).
    """
    path, suffix = _readable(path, LABEL_FORMATS, "labels file type")
    with _reading(path, "labels"):
        if suffix == ".npy":
            _check_signature(path, ".npy")
            labels = np.load(path, mmap_mode="r", allow_pickle=False)  # size checked against the file
            if labels.ndim == 2 and labels.shape[1] == 1:
                labels = labels[:, 0]
            if labels.ndim != 1:
                raise _ContentError(f"labels must be a 1-D array, got shape {labels.shape}")
            if labels.dtype.kind in "VOc":
                raise _ContentError(f"holds values of type {labels.dtype}, not labels")
            return np.array(labels)
        with open(path, encoding="utf-8-sig") as f:
            rows = f.read().splitlines()
        while rows and not rows[-1].strip():
            rows.pop()
        if n is not None and len(rows) == n + 1:
            rows = rows[1:]  # a header line
        return _parse_labels([_unquote(row) for row in rows])


def _parse_labels(values: list[str]) -> np.ndarray:
    """Numbers when every label is one (integers when all are integral),
    else the strings."""
    try:
        numbers = np.array([float(v) for v in values], dtype=np.float64)
    except ValueError:
        return np.array(values, dtype=str)
    if (numbers.size and np.all(np.isfinite(numbers)) and np.all(numbers == np.round(numbers))
            and np.all(np.abs(numbers) < 2**53)):
        return numbers.astype(np.int64)
    return numbers


def _unquote(field: str) -> str:
    field = field.strip()
    if len(field) >= 2 and field[0] == field[-1] and field[0] in "\"'":
        return field[1:-1]
    return field


def _delimiter(path: Path) -> str:
    return "\t" if path.suffix.lower() == ".tsv" else ","


#: Tables whose columns have names (a header row; parquet's schema).
TABLE_FORMATS = (".csv", ".tsv", ".parquet")


def table_columns(path: str | os.PathLike) -> list[str]:
    """The column names of a table.

    Parameters
    ----------
    path : str or path-like
        A ``.csv``, ``.tsv`` or ``.parquet`` file (parquet needs pyarrow).

    Returns
    -------
    list of str
        The names of the header row, as written (quotes removed), or of the
        parquet schema; ``[]`` for a ``.csv``/``.tsv`` file whose first row
        is data (see :func:`read_matrix` for how a header is recognised).

    Raises
    ------
    ValueError
        The file is missing, not a table, or its content cannot be read; the
        message names the file.
    OSError
        The file cannot be opened or read; the message names it.
    ImportError
        A ``.parquet`` file and pyarrow is not installed.
    """
    path, suffix = _readable(path, TABLE_FORMATS, "table type")
    with _reading(path, suffix[1:]):
        if suffix == ".parquet":
            pa, pq = _pyarrow(path)
            try:
                return list(pq.read_schema(path).names)
            except pa.ArrowException as exc:
                raise _ContentError(f"cannot read as parquet: {_one_line(exc)}") from exc
        delimiter = _delimiter(path)
        header_lines = _count_header_lines(path, delimiter)
        if header_lines == 0:
            return []
        with open(path, encoding="utf-8-sig") as f:
            header = [line for _, line in zip(range(header_lines), f)][-1]
        return [_unquote(name) for name in header.split("#", 1)[0].rstrip("\r\n").split(delimiter)]


def read_table_split(path: str | os.PathLike, column: str,
                     columns: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Reads a table as features and one column of labels.

    Parameters
    ----------
    path : str or path-like
        A ``.csv``, ``.tsv`` or ``.parquet`` file (parquet needs pyarrow)
        with named columns.
    column : str
        The name of the labels column.
    columns : list of str, optional
        The table's column names, when the caller already has them from
        :func:`table_columns` (read again when left out).

    Returns
    -------
    features : ndarray of shape (n, d)
        The other columns: float64 from ``.csv``/``.tsv``; from parquet its
        numeric columns as stored (nulls become NaN), other columns skipped.
    labels : ndarray of shape (n,)
        The labels column: from ``.csv``/``.tsv`` int64 when every label is
        an integral number, float64 when all are numbers, else strings (as
        :func:`read_labels`); from parquet, numbers or booleans as stored,
        anything else as strings.

    Raises
    ------
    ValueError
        The file is missing or unreadable, ``column`` is not one of its
        columns, no feature column is left, or a feature is not a number; the
        message names the file.
    OSError
        The file cannot be opened or read; the message names it.
    ImportError
        A ``.parquet`` file and pyarrow is not installed.
    """
    if columns is None:
        columns = table_columns(path)
    path, suffix = _readable(path, TABLE_FORMATS, "table type")
    with _reading(path, suffix[1:]):
        if column not in columns:
            raise _ContentError(f"has no column {column!r}; its columns are: {', '.join(columns) or 'none named'}")
        if suffix == ".parquet":
            X = _read_parquet(path, None, exclude=column)
            pa, pq = _pyarrow(path)
            try:
                raw = pq.read_table(path, columns=[column]).column(column)
            except pa.ArrowException as exc:
                raise _ContentError(f"cannot read as parquet: {_one_line(exc)}") from exc
            labels = np.asarray(raw.to_numpy(zero_copy_only=False))
            if labels.dtype.kind not in "iufb":
                labels = labels.astype(str)
            return X, labels
        index = columns.index(column)
        others = [j for j in range(len(columns)) if j != index]
        if not others:
            raise _ContentError(f"has no feature columns besides the labels {column!r}")
        delimiter = _delimiter(path)
        skip = _count_header_lines(path, delimiter)
        options = dict(delimiter=delimiter, skiprows=skip, encoding="utf-8-sig", ndmin=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # an empty table: reported below
            X = np.loadtxt(path, usecols=others, dtype=np.float64, **options)
            raw = np.loadtxt(path, usecols=[index], dtype=str, **options)
        if X.shape[0] == 0:
            raise _ContentError("holds no data rows")
        return X, _parse_labels([_unquote(v) for v in raw.ravel().tolist()])


def read_labeled_matrix(path: str | os.PathLike, labels: str | os.PathLike | None = None, *,
                        key: str | None = None,
                        name: str = "labels") -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """Reads points and, optionally, one label per point, from a column of the
    same table or from a labels file.

    Parameters
    ----------
    path : str or path-like
        The points, any format of :func:`read_matrix`.
    labels : str or path-like, optional
        A column name of a ``.csv``/``.tsv``/``.parquet`` ``path`` (the column
        is then left out of the points), or else a labels file as
        :func:`read_labels` reads it. A name that is both a column and a file
        is the column. None: no labels.
    key : str, optional
        The array of an ``.npz`` ``path`` (see :func:`read_matrix`); with a
        key, ``labels`` is always a file.
    name : str
        What to call ``labels`` in messages (e.g. a command-line flag).

    Returns
    -------
    points : ndarray of shape (n, d)
        As :func:`read_matrix` returns them (a labels column removed).
    labels : ndarray of shape (n,) or None
    source : str or None
        Where the labels came from, for a message: ``column 'x' of path`` or
        the labels file's path.

    Raises
    ------
    ValueError
        ``labels`` is neither a column of ``path`` nor a file, the number of
        labels differs from the number of points, or a reader's error (which
        names its file).
    OSError
        A file cannot be opened or read; the message names it.
    ImportError
        A ``.parquet`` file and pyarrow is not installed.
    """
    source = Path(path)
    if labels is None:
        return read_matrix(source, key=key), None, None
    suffix = source.suffix.lower()
    columns: list[str] = []
    if suffix in TABLE_FORMATS and source.is_file() and key is None:
        columns = table_columns(source)
        if str(labels) in columns:
            X, values = read_table_split(source, str(labels), columns)
            return X, values, f"column {str(labels)!r} of {source}"
    label_path = Path(labels)
    if source.is_file() and not label_path.is_file():  # read_matrix reports a bad path
        if columns:
            raise ValueError(f"{name} {labels}: neither a file nor a column of {source} "
                             f"(columns: {', '.join(columns)})")
        if suffix in TABLE_FORMATS:
            raise ValueError(f"{name} {labels}: no such file, and {source} has no "
                             f"header row naming its columns")
        raise ValueError(f"{name} {labels}: no such file (a column name applies "
                         f"only to .csv, .tsv and .parquet input)")
    X = read_matrix(source, key=key)
    values = read_labels(label_path, X.shape[0])
    if values.shape[0] != X.shape[0]:
        raise ValueError(f"{name} {label_path}: {values.shape[0]} labels for the {X.shape[0]} points "
                         f"of {source}; one label per row is needed")
    return X, values, str(label_path)


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Opens a binary file whose content replaces ``path`` only on success.

    The data go to a temporary file in the same directory (so the final
    ``os.replace`` is an atomic rename on one file system), are flushed to
    disk, then renamed over ``path``. If the ``with`` block raises, the
    temporary file is removed and ``path`` is left as it was.

    A ``path`` that is a symbolic link (or a chain of them, or one whose
    target does not exist yet) is written through: the file it resolves to
    is replaced atomically, in that file's directory, and the link stays a
    link. (A hard link cannot be kept: the rename gives ``path`` a new file,
    and the other names keep the old content.)

    Parameters
    ----------
    path : str or path-like
        The file to create or replace; its directory (the link target's,
        for a symbolic link) must exist.

    Yields
    ------
    BinaryIO
        A file object open for writing bytes.

    Raises
    ------
    FileNotFoundError
        The directory of ``path`` (or of its link target) does not exist.
    IsADirectoryError
        ``path`` is (or links to) a directory.
    OSError
        ``path`` is a symbolic link that loops.

    Examples
    --------
    >>> with atomic_write("result.bin") as f:  # doctest: +SKIP
    ...     f.write(payload)
    """
    path = Path(path)
    target = write_target(path)
    via = "" if target == path else f" (a link to {target})"
    if not target.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}{via}: directory {target.parent} does not exist")
    if target.is_dir():
        raise IsADirectoryError(f"cannot write {path}{via}: it is a directory")
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=target.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            _give_default_mode(f.fileno(), target)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_directory(target.parent)


def write_target(path: str | os.PathLike) -> Path:
    """The file that :func:`atomic_write` to ``path`` replaces.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    Path
        ``path`` itself, or for a symbolic link (or a chain of them) the
        real path of the file it finally points to, which may not exist yet.
        Neither is checked for existence or permission.

    Raises
    ------
    OSError
        ``path`` is a symbolic link whose links form a loop.
    """
    path = Path(path)
    if not path.is_symlink():
        return path
    target = Path(os.path.realpath(path))
    if target.is_symlink():  # realpath stops where the links go round in a circle
        raise OSError(f"cannot write {path}: its symbolic links form a loop")
    return target


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


#: File extensions write_matrix writes (case-insensitive).
WRITE_FORMATS = (".npy", ".csv", ".tsv")


def write_matrix(path: str | os.PathLike, X: ArrayLike, *, column_prefix: str = "dim") -> None:
    """Saves a 2-D matrix, atomically, in a format :func:`read_matrix` reads back.

    Parameters
    ----------
    path : str or path-like
        ``.npy`` (the array as it is), or ``.csv``/``.tsv``: a header row
        ``{column_prefix}1, {column_prefix}2, ...``, then one row per line,
        each value with 9 significant digits (float32 values read back
        exactly).
    X : array_like of shape (n, d)
        Numbers.
    column_prefix : str
        The header's column names, numbered from 1 (text formats only).

    Raises
    ------
    ValueError
        An unknown extension, or ``X`` is not a 2-D array of numbers; nothing
        is written then.
    FileNotFoundError
        The directory of ``path`` does not exist.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_FORMATS:
        raise ValueError(f"{path}: unknown file type {path.suffix or '(no extension)'!r}; "
                         f"expected one of {', '.join(WRITE_FORMATS)}")
    X = np.asarray(X)
    if X.ndim != 2 or X.dtype.kind not in "biuf":
        raise ValueError(f"{path}: expected a 2-D matrix of numbers, got shape {X.shape} of type {X.dtype}")
    with atomic_write(path) as f:
        if suffix == ".npy":
            np.save(f, X)
        else:
            delimiter = _delimiter(path)
            header = delimiter.join(f"{column_prefix}{j + 1}" for j in range(X.shape[1]))
            np.savetxt(f, X, fmt="%.9g", delimiter=delimiter, header=header, comments="")


def write_sparse_npz(path: str | os.PathLike, matrix) -> None:
    """Saves a scipy sparse matrix or array atomically, in scipy's own format
    (``scipy.sparse.load_npz`` reads it), uncompressed, exactly under ``path``
    (no ``.npz`` is appended).

    Raises
    ------
    FileNotFoundError
        The directory of ``path`` does not exist.
    """
    import scipy.sparse

    with atomic_write(path) as f:
        # Through a file object: save_npz appends ".npz" to a name lacking it.
        scipy.sparse.save_npz(f, matrix, compressed=False)


#: File extensions read_edge_list understands (case-insensitive).
EDGE_FORMATS = (".txt", ".edg", ".edgelist", ".csv", ".tsv", ".parquet")

# First-line fields that make it a header rather than an edge between nodes
# named so (a first line of three fields none of which is a number is one too).
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
        Node ids exactly as written: int64 when every id of both columns is
        an integer written canonically (``7``, ``-3``; not ``07``, ``+7``,
        ``7.0``), else the ids as strings (so ``1`` and ``01`` stay two
        nodes). Parquet integer columns give int64, string columns follow the
        rule above.
    weights : float64 ndarray of shape (m,) or None
        None for a two-column table.

    Raises
    ------
    ValueError
        The file is missing, unreadable, ragged, has no edges, a missing id,
        or a weight that is not a number or negative, NaN or infinite; the
        message names the file and the line (parquet: the row).
    OSError
        The file cannot be opened or read; the message names it.
    ImportError
        A ``.parquet`` file and pyarrow is not installed.
    """
    path, suffix = _readable(path, EDGE_FORMATS, "edge-list type")
    with _reading(path, "an edge list"):
        if suffix == ".parquet":
            columns, lines = _edge_columns_parquet(path), None
        else:
            columns, lines = _edge_columns_text(path, {".csv": ",", ".tsv": "\t"}.get(suffix))
        return _typed_edges(columns, lines)


def _split_fields(line: str, delimiter: str | None) -> list[str]:
    """A line's fields, comment removed; [] for a blank line."""
    content = line.split("#", 1)[0]
    if delimiter is None:
        return content.split()
    return [] if not content.strip() else [field.strip() for field in content.split(delimiter)]


def _edge_columns_text(path: Path, delimiter: str | None) -> tuple[list[np.ndarray], np.ndarray]:
    """The columns (numbers, or strings for named nodes), and each row's line number."""
    numeric = _numeric_edge_table(path, delimiter)
    if numeric is not None:
        return numeric
    text = path.read_text(encoding="utf-8-sig")
    rows, lines = [], []
    # Lines end at "\n" only (read_text has turned "\r\n" and "\r" into it):
    # str.splitlines would also split at form feeds and Unicode separators.
    for number, line in enumerate(text.split("\n"), start=1):
        if "\x00" in line:
            raise _ContentError(f"line {number} holds a NUL byte: not a text edge list")
        fields = _split_fields(line, delimiter)
        if not fields:
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
        if not all(fields[:2]):
            raise _ContentError(f"line {number} has an empty node id")
    table = np.array(rows, dtype=str)
    return [table[:, c] for c in range(width)], np.array(lines)


def _numeric_edge_table(path: Path, delimiter: str | None) -> tuple[list[np.ndarray], np.ndarray] | None:
    """The common case, parsed by numpy in C straight from the file (a
    fraction of the time and memory of a list per line): every line an edge
    between integer ids written canonically, after an optional header line.
    None whenever the file needs the line-by-line reader (comments, blank
    lines, names, ragged or malformed lines), which also explains what is
    wrong."""
    with open(path, encoding="utf-8-sig") as f:
        head = [f.readline(1 << 16) for _ in range(2)]
    fields = _split_fields(head[0], delimiter)
    header = 1 if fields and _is_edge_header(fields) else 0
    if header:
        fields = _split_fields(head[1], delimiter)
    width = len(fields)
    if width not in (2, 3):
        return None
    n_lines = _lines_if_canonical(path)
    if n_lines is None or n_lines <= header:
        return None
    dtype = [("source", np.int64), ("target", np.int64), ("weight", np.float64)][:width]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = np.loadtxt(path, dtype=dtype, delimiter=delimiter, comments=None, quotechar=None,
                               skiprows=header, ndmin=1, encoding="utf-8-sig")
    except ValueError:  # a name, a float id, a ragged line, ...: the line reader says which
        return None
    if table.shape != (n_lines - header,):  # loadtxt skipped blank lines: numbers would be off
        return None
    columns = [np.ascontiguousarray(table[name]) for name, _ in dtype]
    return columns, np.arange(header + 1, n_lines + 1)


# Bytes that end a field of a text edge list: whitespace and the comma.
_FIELD_END = np.zeros(256, bool)
_FIELD_END[[9, 10, 11, 12, 13, 32, 44]] = True
_DIGIT = np.zeros(256, bool)
_DIGIT[ord("0"):ord("9") + 1] = True


def _lines_if_canonical(path: Path, chunk: int = 1 << 22) -> int | None:
    """The number of lines of a text file with no NUL byte in which no field
    is an integer written other than canonically (a leading ``+``, a leading
    zero as in ``07`` or ``-07``, ``-0``); None otherwise. Conservative: a
    weight written so (``+1``, ``05``) also gives None."""
    lines, tail, first = 0, b"", True
    with open(path, "rb") as f:
        while True:
            data = f.read(chunk)
            if first:
                data, first = data.removeprefix(b"\xef\xbb\xbf"), False
            if not data:
                break
            data = tail + data
            cut = data.rfind(b"\n") + 1
            block, tail = data[:cut], data[cut:]
            if block:
                lines += block.count(b"\n")
                if not _canonical_fields(block):
                    return None
    if tail:
        lines += 1
        if not _canonical_fields(tail + b"\n"):
            return None
    return lines


def _canonical_fields(block: bytes) -> bool:
    """See :func:`_lines_if_canonical`; ``block`` is whole lines (it ends in "\\n")."""
    if b"\x00" in block:
        return False
    b = np.frombuffer(block, np.uint8)
    # Fields that start with '0', '-' or '+' (after a separator: a control
    # character, space or comma; or at the block's start) are the only ones
    # that can be non-canonical integers. Found in a few vectorised passes
    # (comparisons: a lookup table indexed by the bytes is ten times slower),
    # then examined one by one.
    candidate = (b == ord("0")) | (b == ord("-")) | (b == ord("+"))
    candidate[1:] &= (b[:-1] <= ord(" ")) | (b[:-1] == ord(","))
    starts = np.flatnonzero(candidate)
    last = b.size - 1  # the final "\n": what a look-ahead past the end sees
    first, second, third = b[starts], b[np.minimum(starts + 1, last)], b[np.minimum(starts + 2, last)]
    if (first == ord("+")).any():
        return False
    if ((first == ord("0")) & _DIGIT[second]).any():  # 07
        return False
    negative_zero = (first == ord("-")) & (second == ord("0"))
    return not (negative_zero & (_DIGIT[third] | _FIELD_END[third])).any()  # -07, -0


def _is_edge_header(fields: list[str]) -> bool:
    """Column names: known names for source and target, or three fields none
    of which is a number. A first line with numbers and a bad weight is an
    edge to report, not a header to drop."""
    if len(fields) == 3 and not any(_is_number(field) for field in fields):
        return True
    return all(field.lower() in _EDGE_HEADER_NAMES for field in fields[:2])


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _edge_columns_parquet(path: Path) -> list[np.ndarray]:
    pa, pq = _pyarrow(path)
    try:
        table = pq.read_table(path)
        if table.num_columns not in (2, 3):
            raise _ContentError(f"has {table.num_columns} columns ({', '.join(table.column_names)}); "
                                "expected source, target and an optional weight")
        if table.num_rows == 0:
            raise _ContentError("holds no edges")
        columns = []
        for c, (name, column) in enumerate(zip(table.column_names, table.columns)):
            if pa.types.is_dictionary(column.type):
                column = column.cast(column.type.value_type)
            kind = column.type
            text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
            if not (_is_numeric_type(pa, kind) or (text and c < 2)):
                role = "a weight" if c == 2 else "a node id"
                raise _ContentError(f"column {name!r} has type {kind}, which is not {role}: "
                                    f"{'numbers' if c == 2 else 'integers or strings'} are")
            if column.null_count:
                row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
                raise _ContentError(f"row {row}: column {name!r} has no value")
            columns.append(column.to_numpy(zero_copy_only=False))
    except pa.ArrowException as exc:
        raise _ContentError(f"cannot read as parquet: {_one_line(exc)}") from exc
    return columns


def _typed_edges(columns: list[np.ndarray], lines: np.ndarray | None):
    ids = [_node_ids(column) for column in columns[:2]]
    if ids[0].dtype != ids[1].dtype:  # integers on one side only: all are names
        ids = [_id_strings(column) for column in columns[:2]]
    if len(columns) == 2:
        return ids[0], ids[1], None
    where = (lambda e: f"line {lines[e]}") if lines is not None else (lambda e: f"row {e}")
    try:
        weights = columns[2].astype(np.float64)
    except (ValueError, TypeError):
        bad = next(e for e, w in enumerate(columns[2]) if not _is_number(str(w)))
        raise _ContentError(f"{where(bad)}: weight {str(columns[2][bad])!r} is not a number") from None
    bad = np.flatnonzero(~np.isfinite(weights) | (weights < 0))
    if bad.size:
        e = int(bad[0])
        raise _ContentError(f"{where(e)}: edge ({ids[0][e]}, {ids[1][e]}) has weight {weights[e]}; "
                            "weights must be finite and non-negative")
    return ids[0], ids[1], weights


_INT64_MAX = np.iinfo(np.int64).max


def _node_ids(column: np.ndarray) -> np.ndarray:
    """int64 ids when every entry is an integer (for text: written
    canonically), else the ids as strings."""
    kind = column.dtype.kind
    if kind == "i":
        return column.astype(np.int64)
    if kind == "u" and (column.size == 0 or int(column.max()) <= _INT64_MAX):
        return column.astype(np.int64)
    if kind == "f" and np.isfinite(column).all() and np.array_equal(column, np.round(column)) \
            and (np.abs(column) <= 2**53).all():
        return column.astype(np.int64)
    return _canonical_ints(_id_strings(column))


def _id_strings(column: np.ndarray) -> np.ndarray:
    if column.dtype.kind == "U":
        return column
    return np.array([str(v) for v in column.tolist()], dtype=str) if column.dtype.kind == "f" else column.astype(str)


def _canonical_ints(names: np.ndarray) -> np.ndarray:
    """int64 when every name is an integer written canonically (it equals
    ``str(int(name))``: no sign but a minus, no leading zero, no spaces),
    else the names unchanged: "1" and "01" must not become one id."""
    if names.size == 0:
        return names
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ints = names.astype(np.int64)
    except (ValueError, OverflowError, TypeError):
        return names
    return ints if np.array_equal(ints.astype(str), names) else names


# ------------------------------------------------------------------ word2vec

def write_word2vec(path: str | os.PathLike, vectors: ArrayLike, names: ArrayLike) -> None:
    """Writes vectors in word2vec's text format, atomically: a ``count dim``
    line, then one ``name v1 v2 ...`` line per vector (9 significant digits:
    float32 values read back exactly).

    Raises
    ------
    ValueError
        ``vectors`` is not a 2-D array of finite numbers, the number of names
        differs from the number of vectors, or a name is empty, holds
        whitespace (which the format cannot store: it would split or add
        lines) or appears twice; the message names the file and the problem.
        Nothing is written then.
    """
    vectors = np.asarray(vectors)
    names = [str(name) for name in (names.tolist() if isinstance(names, np.ndarray) else names)]
    if vectors.ndim != 2 or vectors.dtype.kind not in "iuf":
        raise ValueError(f"{path}: vectors must be a 2-D array of numbers (n, dim), "
                         f"got shape {vectors.shape} of type {vectors.dtype}")
    if len(names) != vectors.shape[0]:
        raise ValueError(f"{path}: {len(names)} names for {vectors.shape[0]} vectors; "
                         "word2vec's format needs exactly one name per vector")
    if not np.isfinite(vectors).all():
        row = int(np.flatnonzero(~np.isfinite(vectors).all(axis=1))[0])
        raise ValueError(f"{path}: the vector of {names[row]!r} holds NaN or infinite values")
    for name in names:
        if not name or name.split() != [name]:
            raise ValueError(f"{path}: node id {name!r} is empty or holds whitespace; "
                             "word2vec's text format cannot store it")
    if len(set(names)) != len(names):
        seen: set[str] = set()
        duplicate = next(name for name in names if name in seen or seen.add(name))
        raise ValueError(f"{path}: node id {duplicate!r} appears twice (as written); "
                         "word2vec's text format needs distinct names")
    line = " ".join(["%.9g"] * vectors.shape[1]) + "\n"
    with atomic_write(path) as f:
        f.write(f"{len(names)} {vectors.shape[1]}\n".encode())
        for name, row in zip(names, vectors.tolist()):
            f.write((name + " " + line % tuple(row)).encode())


def read_word2vec(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Reads word2vec's text format (as written by :func:`write_word2vec`,
    gensim or the original word2vec, whose lines end in a space).

    Returns
    -------
    vectors : float32 ndarray of shape (count, dim)
    names : ndarray of shape (count,)
        The names exactly as written: int64 when every name is an integer
        written canonically (``str(int(name)) == name``), else strings, so
        ``1`` and ``01`` stay two names.

    Raises
    ------
    ValueError
        The file is missing or not in the format: a header other than
        ``count dim``, a line with the wrong number of values, a value that
        is not a finite float32, a name given twice, fewer or more lines than
        the header promises; the message names the file and the line.
    OSError
        The file cannot be opened or read.
    """
    path, _ = _readable(path, (Path(path).suffix.lower(),), "file type")
    with _reading(path, "word2vec text (a 'count dim' line, then 'name v1 v2 ...')"):
        return _parse_word2vec(path)


def _parse_word2vec(path: Path) -> tuple[np.ndarray, np.ndarray]:
    text = path.read_bytes().decode("utf-8")
    if "\x00" in text:
        raise _ContentError(f"line {text[:text.index(chr(0))].count(chr(10)) + 1} holds a NUL byte: "
                            "not word2vec text")
    lines = text.split("\n")
    header = lines[0].split()
    if len(header) != 2 or not all(field.isascii() and field.isdigit() for field in header):
        raise _ContentError(f"line 1 must be 'count dim' (two whole numbers), got {lines[0][:60]!r}")
    count, dim = int(header[0]), int(header[1])
    if dim < 1:
        raise _ContentError(f"line 1: the dimension must be at least 1, got {dim}")
    names, rests, numbers = [], [], []
    for number, line in enumerate(lines[1:], start=2):
        line = line.rstrip()  # "\r" of Windows, the trailing space of the original word2vec
        if not line:
            continue
        name, _, rest = line.partition(" ")
        if rest.count(" ") != dim - 1 or not name or name.split() != [name]:
            raise _ContentError(f"line {number} is not a name and {dim} values separated by single spaces")
        names.append(name)
        rests.append(rest)
        numbers.append(number)
        if len(names) > count:
            break
    if len(names) != count:
        raise _ContentError(f"the header promises {count} vectors; the file holds "
                            f"{'more' if len(names) > count else len(names)}")
    vectors = _word2vec_values(rests, numbers, dim)
    ids = np.array(names, dtype=str)
    distinct, first, counts = np.unique(ids, return_index=True, return_counts=True)
    if count and counts.max() > 1:
        name = distinct[int(np.argmax(counts > 1))]
        rows = np.flatnonzero(ids == name)[:2]
        raise _ContentError(f"lines {numbers[rows[0]]} and {numbers[rows[1]]} both name {str(name)!r}")
    return vectors, _canonical_ints(ids)


def _word2vec_values(rests: list[str], numbers: list[int], dim: int) -> np.ndarray:
    """The values of every line as float32 (count, dim); ValueError naming
    the first line with a value that is not a finite float32."""
    if not rests:
        return np.empty((0, dim), np.float32)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # float32 overflow: caught as inf below
            vectors = np.loadtxt(rests, dtype=np.float32, delimiter=" ", comments=None, quotechar=None,
                                 ndmin=2)
        parsed = vectors.shape == (len(rests), dim)
    except ValueError:
        parsed = False
    finite = np.isfinite(vectors).all(axis=1) if parsed else None
    if parsed and finite.all():
        return vectors
    for row, rest in enumerate(rests):
        try:
            values = np.array([float(v) for v in rest.split(" ")], dtype=np.float64)
        except ValueError:
            bad = next(v for v in rest.split(" ") if not _is_number(v))
            raise _ContentError(f"line {numbers[row]}: {bad[:30]!r} is not a number") from None
        with np.errstate(over="ignore"):
            finite = np.isfinite(values.astype(np.float32)).all()
        if not finite:
            raise _ContentError(f"line {numbers[row]}: a value is NaN, infinite or beyond float32's range")
    raise _ContentError("the values cannot be read")  # pragma: no cover - loadtxt and float() disagree
