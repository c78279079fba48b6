"""latentcore.io: every reader's failures are ValueError/OSError naming the
file (byte-mutation fuzzing of each format, each format's mutants read in one
subprocess), ids kept exactly as written, word2vec round trips, and the atomic
writer writing through symbolic links."""

import os
import stat
import zipfile

import numpy as np
import pytest
from conftest import run_isolated

from latentcore import io
from latentcore.io import atomic_write, read_edge_list, read_labels, read_matrix, read_word2vec, write_word2vec


def files_in(directory):
    return sorted(p.name for p in directory.iterdir())


# ------------------------------------------------------------------ fuzzing

MUTANTS = 100


def _rows(rng, n, d):
    return rng.standard_normal((n, d)).astype(np.float32)


def make_npy(path, rng):
    np.save(path, _rows(rng, 12, 3))


def make_npz(path, rng):
    with open(path, "wb") as f:
        np.savez(f, X=_rows(rng, 10, 3))


def make_csv(path, rng):
    X = _rows(rng, 10, 3)
    np.savetxt(path, X, fmt="%.9g", delimiter=",", header="a,b,c", comments="")


def make_tsv(path, rng):
    np.savetxt(path, _rows(rng, 10, 3), fmt="%.9g", delimiter="\t")


def make_parquet(path, rng):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    X = _rows(rng, 10, 3)
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "name": [f"p{i}" for i in range(10)]}),
                   path)


def make_edges_txt(path, rng):
    path.write_text("".join(f"{i} {(i * 7 + 3) % 15} {w:.3g}\n" for i, w in enumerate(rng.uniform(0, 2, 15))))


def make_edges_csv(path, rng):
    names = ["ann", "bob", "cy", "dee", "eve", "fay"]
    path.write_text("source,target\n" + "".join(f"{names[i % 6]},{names[(i + 2) % 6]}\n" for i in range(12)))


def make_edges_tsv(path, rng):
    path.write_text("".join(f"{i}\t{(i + 1) % 14}\n" for i in range(14)))


def make_edges_parquet(path, rng):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"src": np.arange(12), "dst": (np.arange(12) + 5) % 12,
                             "weight": rng.uniform(0, 1, 12)}), path)


def make_word2vec(path, rng):
    write_word2vec(path, _rows(rng, 6, 4), ["10", "11", "3", "4", "5", "60"])


def make_labels_txt(path, rng):
    path.write_text("cluster\n" + "".join(f"{c}\n" for c in rng.choice(["red", "green", "blue"], 12)))


def make_npz_pair(path, rng):
    """What Node2Vec.save writes: vectors and the node ids, one archive."""
    io.write_npz_atomic(path, embedding=_rows(rng, 6, 3), nodes=np.array(["a", "b", "c", "d", "e", "f"]))


def make_labels_npy(path, rng):
    np.save(path, rng.integers(0, 5, 12))


# name -> (file suffix, writer, reader in the subprocess, its result check,
#          latentcore command that reads it, for the one-line error check)
FUZZ_FORMATS = {
    "npy": (".npy", make_npy, "io.read_matrix", "matrix", "knn"),
    "npz": (".npz", make_npz, "io.read_matrix", "matrix", "knn"),
    "csv": (".csv", make_csv, "io.read_matrix", "matrix", "knn"),
    "tsv": (".tsv", make_tsv, "io.read_matrix", "matrix", "knn"),
    "parquet": (".parquet", make_parquet, "io.read_matrix", "matrix", "knn"),
    "edges.txt": (".txt", make_edges_txt, "io.read_edge_list", "edges", "walks"),
    "edges.csv": (".csv", make_edges_csv, "io.read_edge_list", "edges", "walks"),
    "edges.tsv": (".tsv", make_edges_tsv, "io.read_edge_list", "edges", "walks"),
    "edges.parquet": (".parquet", make_edges_parquet, "io.read_edge_list", "edges", "walks"),
    "word2vec": (".emb", make_word2vec, "io.read_word2vec", "word2vec", None),
    "labels.txt": (".txt", make_labels_txt, "lambda p: io.read_labels(p, 12)", "labels", "map"),
    "labels.npy": (".npy", make_labels_npy, "lambda p: io.read_labels(p, 12)", "labels", "map"),
    "npz member": (".npz", make_npz_pair, "lambda p: io.read_npz_array(p, 'nodes')", "labels", None),
}

# Runs in a fresh interpreter: mutates the valid file, reads every mutant,
# prints one line per mutant ("loaded", "error" or "BAD ...").
FUZZ_SCRIPT = r'''
import contextlib, io as stdio, random, sys
from pathlib import Path
import numpy as np
from latentcore import io
from latentcore.cli import main

base, work, seed, count = Path({base!r}), Path({work!r}), {seed!r}, {count!r}
read = {reader}
command = {command!r}


def mutants(data):
    rng = random.Random(seed)
    for i in range(count):
        b = bytearray(data)
        kind = i % 5
        if kind == 0:  # one to three bit flips anywhere
            for _ in range(rng.randint(1, 3)):
                pos = rng.randrange(len(b))
                b[pos] ^= 1 << rng.randrange(8)
        elif kind == 1:  # one bit flip in the first or the last 160 bytes: headers, footers
            span = min(len(b), 160)
            pos = rng.randrange(span) if rng.random() < 0.5 else len(b) - 1 - rng.randrange(span)
            b[pos] ^= 1 << rng.randrange(8)
        elif kind == 2:  # truncated
            b = b[:rng.randrange(len(b))]
        else:  # a range overwritten: random bytes, zeros, 0xff or digits
            start, length = rng.randrange(len(b)), rng.randint(1, 24)
            fill = rng.choice(["random", "zero", "ff", "digits"])
            new = {{"random": lambda: rng.randrange(256), "zero": lambda: 0, "ff": lambda: 255,
                    "digits": lambda: rng.choice(b"0123456789-+.e ,")}}[fill]
            for pos in range(start, min(len(b), start + length)):
                b[pos] = new()
        yield bytes(b)


def problem(result):
    """None when the result is of the right kind, else what is wrong."""
    if {check!r} == "matrix":
        if not isinstance(result, np.ndarray) or result.ndim != 2 or result.dtype.kind not in "biuf":
            return f"not a 2-D numeric array: {{type(result).__name__}} {{getattr(result, 'dtype', '')}}"
        np.asarray(result).tobytes()  # every byte of a memory map readable
    elif {check!r} == "labels":
        if not isinstance(result, np.ndarray) or result.ndim != 1 or result.dtype.kind in "VOc":
            return f"not 1-D labels: {{type(result).__name__}} {{getattr(result, 'dtype', '')}}"
    elif {check!r} == "edges":
        sources, targets, weights = result
        if sources.ndim != 1 or sources.shape != targets.shape or sources.size == 0:
            return f"ids of shapes {{sources.shape}}, {{targets.shape}}"
        if sources.dtype != targets.dtype or sources.dtype.kind not in "iU" or (
                sources.dtype.kind == "i" and sources.dtype != np.int64):
            return f"ids of types {{sources.dtype}}, {{targets.dtype}}"
        if weights is not None and (weights.dtype != np.float64 or weights.shape != sources.shape
                                    or not np.all(np.isfinite(weights)) or np.any(weights < 0)):
            return "bad weights"
    elif {check!r} == "word2vec":
        vectors, names = result
        if vectors.dtype != np.float32 or vectors.ndim != 2 or not np.all(np.isfinite(vectors)):
            return "bad vectors"
        if names.shape != (vectors.shape[0],) or names.dtype.kind not in "iU" or np.unique(names).size != names.size:
            return f"bad names {{names!r}}"
    return None


def cli_says_one_line(path):
    out = work / "out"
    if command == "knn":
        argv = ["knn", str(path), "-k", "1", "-o", str(out) + ".npz"]
    elif command == "walks":
        argv = ["walks", str(path), "-o", str(out) + ".npy", "--quiet", "--threads", "1"]
    else:
        argv = ["map", str(work / "points.npy"), "--labels", str(path), "-o", str(out) + ".png"]
    err = stdio.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(stdio.StringIO()):
        status = main(argv)
    text = err.getvalue()
    ok = status == 2 and text.count("\n") == 1 and str(path) in text and "Traceback" not in text
    return None if ok else f"exit status {{status}}, stderr {{text[-400:]!r}}"


np.save(work / "points.npy", np.random.default_rng(0).standard_normal((12, 3)).astype(np.float32))
for i, data in enumerate(mutants(base.read_bytes())):
    path = work / f"mutant{{i:03d}}{{base.suffix}}"
    path.write_bytes(data)
    try:
        result = read(path)
    except (ValueError, OSError) as exc:
        if str(path) not in str(exc):
            print(f"BAD {{i}}: {{type(exc).__name__}} without the path: {{str(exc)[:300]}}")
        elif command is not None and i % 4 == 0 and cli_says_one_line(path) is not None:  # a quarter: time
            print(f"BAD {{i}}: the command line does not report {{type(exc).__name__}} in one line: "
                  f"{{cli_says_one_line(path)}}")
        else:
            print(f"error {{i}}: {{type(exc).__name__}}")
        continue
    except BaseException as exc:
        print(f"BAD {{i}}: {{type(exc).__module__}}.{{type(exc).__name__}}: {{str(exc)[:300]}}")
        continue
    wrong = problem(result)
    print(f"BAD {{i}}: loaded the wrong kind: {{wrong}}" if wrong else f"loaded {{i}}")
'''


@pytest.mark.parametrize("name", list(FUZZ_FORMATS))
def test_byte_mutants_load_or_raise_naming_the_file(tmp_path, name):
    suffix, make, reader, check, command = FUZZ_FORMATS[name]
    base = tmp_path / f"valid{suffix}"
    make(base, np.random.default_rng(7))
    work = tmp_path / "mutants"
    work.mkdir()
    seed = sum(map(ord, name))  # fixed per format
    code = FUZZ_SCRIPT.format(base=str(base), work=str(work), seed=seed, count=MUTANTS, reader=reader,
                              check=check, command=command)
    done = run_isolated(code, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert len(lines) == MUTANTS, done.stdout[-3000:] + done.stderr[-3000:]
    bad = [line for line in lines if line.startswith("BAD")]
    assert not bad, "\n".join(bad[:20])
    # The mutations reach the parsers: many mutants must be refused.
    assert sum(line.startswith("error") for line in lines) >= 10


# ------------------------------------------------------------------ readers

def test_npy_header_bit_flip_is_a_value_error(tmp_path):
    """One flipped bit ('{' -> ';') made numpy's header parser raise tokenize.TokenError."""
    path = tmp_path / "flipped.npy"
    np.save(path, np.zeros((4, 3), np.float32))
    data = bytearray(path.read_bytes())
    assert data[10:11] == b"{"
    data[10] ^= 1 << 6
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="flipped.npy: cannot read as npy"):
        read_matrix(path)
    with pytest.raises(ValueError, match="flipped.npy"):
        read_labels(path)


def zip_with_compression_method(path, method):
    """An .npz whose member claims an unknown compression method (zipfile: NotImplementedError)."""
    with open(path, "wb") as f:
        np.savez(f, X=np.zeros((3, 2)))
    data = bytearray(path.read_bytes())
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    data[local + 8:local + 10] = method.to_bytes(2, "little")
    data[central + 10:central + 12] = method.to_bytes(2, "little")
    path.write_bytes(bytes(data))


def test_unknown_zip_compression_is_a_value_error(tmp_path):
    path = tmp_path / "method.npz"
    zip_with_compression_method(path, 99)
    with zipfile.ZipFile(path) as archive, pytest.raises(NotImplementedError):
        archive.read("X.npy")  # what numpy used to let through
    with pytest.raises(ValueError, match="method.npz: cannot read as npz"):
        read_matrix(path)


def test_npz_header_claiming_more_than_it_holds_is_refused_before_allocating(tmp_path):
    """numpy allocates the shape a member's header claims before reading it."""
    import io as stdio

    member = stdio.BytesIO()
    np.save(member, np.zeros((3, 2)))
    data = member.getvalue()
    header_end = data.index(b"\n") + 1
    header = data[:header_end].replace(b"(3, 2), }", b"(99999999999, 2), }")
    header = header[:header_end - 1].rstrip(b" ").ljust(header_end - 1) + b"\n"  # same length, same offset
    assert len(header) == header_end and b"99999999999" in header
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as archive:  # a consistent archive: the CRC matches the content
        archive.writestr("X.npy", header + data[header_end:])
    with pytest.raises(ValueError, match=r"huge.npz: member 'X' claims an array of shape \(99999999999, 2\)"):
        read_matrix(path)


@pytest.mark.parametrize("array, problem", [
    (np.zeros((3, 2), dtype=[("a", "f4"), ("b", "i4")])[:, 0].reshape(3, 1), "not numbers"),
    (np.array([["a", "b"], ["c", "d"]]), "not numbers"),
    (np.zeros((2, 2), complex), "not numbers"),
])
def test_matrix_of_other_kinds_is_refused(tmp_path, array, problem):
    np.save(tmp_path / "kind.npy", array)
    with pytest.raises(ValueError, match=f"kind.npy: holds values of type .* {problem}"):
        read_matrix(tmp_path / "kind.npy")


def test_npz_with_python_objects_is_refused(tmp_path):
    path = tmp_path / "objects.npz"
    with open(path, "wb") as f:
        np.savez(f, X=np.array([[1, "a"]], dtype=object))
    with pytest.raises(ValueError, match="objects.npz: member 'X' holds Python objects"):
        read_matrix(path)


def test_a_first_row_with_a_bad_number_is_not_taken_for_a_header(tmp_path):
    path = tmp_path / "bad_first.csv"
    path.write_text("1,oops\n3,4\n5,6\n")  # before: skipped as a header, two points read
    with pytest.raises(ValueError, match="bad_first.csv: cannot read as csv: .*oops"):
        read_matrix(path)
    path.write_text("x,y\n1,2\n")
    np.testing.assert_array_equal(read_matrix(path), [[1, 2]])


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
@pytest.mark.parametrize("name", ["x.npy", "x.csv", "g.txt", "w.emb", "labels.txt"])
def test_unreadable_file_is_an_os_error_naming_it(tmp_path, name):
    path = tmp_path / name
    path.write_text("1 2\n")
    path.chmod(0)
    reader = {"x.npy": read_matrix, "x.csv": read_matrix, "g.txt": read_edge_list,
              "w.emb": read_word2vec, "labels.txt": read_labels}[name]
    with pytest.raises(PermissionError, match=f"{name}: cannot read: Permission denied"):
        reader(path)


def test_operating_system_errors_stay_os_errors_naming_the_file(tmp_path, monkeypatch):
    """Also as root, who reads any file: the OS refusing a file is an
    OSError (of the same kind) naming it, not a content error."""
    np.save(tmp_path / "x.npy", np.zeros((2, 2)))
    write(tmp_path, "g.txt", "1 2\n")

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(io, "_leading_bytes", refuse)
    monkeypatch.setattr(io, "_numeric_edge_table", refuse)
    for reader, name in [(read_matrix, "x.npy"), (read_edge_list, "g.txt")]:
        with pytest.raises(PermissionError, match=f"^{tmp_path / name}: cannot read: Permission denied$") as info:
            reader(tmp_path / name)
        assert info.value.errno == 13


def test_read_npz_array_any_shape(tmp_path):
    io.write_npz_atomic(tmp_path / "a.npz", nodes=np.array(["x", "y"]), embedding=np.zeros((2, 3)))
    assert io.read_npz_array(tmp_path / "a.npz", "nodes").tolist() == ["x", "y"]
    with pytest.raises(ValueError, match=r"a.npz: holds 2 arrays \(nodes, embedding\)"):
        io.read_npz_array(tmp_path / "a.npz")
    with pytest.raises(ValueError, match="a.npz: has no array 'ids'"):
        io.read_npz_array(tmp_path / "a.npz", "ids")


def test_missing_files_name_the_path(tmp_path):
    for reader, name in [(read_matrix, "a.npy"), (read_edge_list, "g.txt"), (read_word2vec, "w.emb"),
                         (read_labels, "l.txt")]:
        with pytest.raises(ValueError, match=f"{name}: no such file"):
            reader(tmp_path / name)


# ------------------------------------------------------------------ edge lists

def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_edge_list_with_a_name_among_numbers_falls_back_to_string_ids(tmp_path):
    """numpy 2 raised "string or file could not be read to its end" here, without the path."""
    sources, targets, weights = read_edge_list(write(tmp_path, "mixed.txt", "1 2\n3 a\n"))
    assert sources.dtype.kind == targets.dtype.kind == "U" and weights is None
    assert sources.tolist() == ["1", "3"] and targets.tolist() == ["2", "a"]


@pytest.mark.parametrize("text, sources, targets", [
    ("1 2\n3 4\n", [1, 3], [2, 4]),
    ("-5 4611686018427387905\n", [-5], [2**62 + 1]),  # exact beyond float64's 2**53
    ("1 2\n01 3\n", ["1", "01"], ["2", "3"]),          # "1" and "01" are two nodes
    ("+1 2\n", ["+1"], ["2"]),
    ("1.0 2\n", ["1.0"], ["2"]),
    ("-0 2\n", ["-0"], ["2"]),
    ("source,target\n7,8\n", [7], [8]),
])
def test_edge_ids_are_kept_as_written(tmp_path, text, sources, targets):
    got_sources, got_targets, _ = read_edge_list(write(tmp_path, "ids.csv" if "," in text else "ids.txt", text))
    assert got_sources.tolist() == sources and got_targets.tolist() == targets
    assert got_sources.dtype == (np.int64 if isinstance(sources[0], int) else got_sources.dtype)
    assert got_sources.dtype.kind == ("i" if isinstance(sources[0], int) else "U")


def test_edge_list_weights_keep_their_lines(tmp_path):
    # '+' inside a number (an exponent) is not a sign of a non-canonical id.
    sources, targets, weights = read_edge_list(write(tmp_path, "w.txt", "1 2 0.5\n3 4 1e+05\n"))
    assert sources.tolist() == [1, 3] and weights.tolist() == [0.5, 1e5]
    with pytest.raises(ValueError, match=r"w.txt: line 1: weight 'x' is not a number"):
        read_edge_list(write(tmp_path, "w.txt", "1 2 x\n3 4 1\n"))  # not a header: numbers on it


@pytest.mark.parametrize("text, problem", [
    ("1 2\n3 4 5\n", "line 2 has 3 fields, the first edge 2"),
    ("1,2\n3,,\n", "line 2 has 3 fields"),
    ("1,2\n,4\n", "line 2 has an empty node id"),
    ("a b\nc\x00 d\n", "line 2 holds a NUL byte"),
    ("1 2\n3 4 nan\n", "line 2 has 3 fields"),
    ("1 2 1\n3 4 nan\n", "line 2: edge (3, 4) has weight nan"),
])
def test_malformed_edge_lists_name_the_path_and_the_line(tmp_path, text, problem):
    path = write(tmp_path, "bad.csv" if "," in text else "bad.txt", text)
    with pytest.raises(ValueError) as info:
        read_edge_list(path)
    assert str(info.value).startswith(f"{path}: ") and problem in str(info.value)


def test_parquet_edge_list_with_a_missing_id(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"src": [1, None, 3], "dst": [2, 3, 1]}), tmp_path / "g.parquet")
    with pytest.raises(ValueError, match="g.parquet: row 1: column 'src' has no value"):
        read_edge_list(tmp_path / "g.parquet")
    pq.write_table(pa.table({"src": ["1", "01"], "dst": ["2", "2"]}), tmp_path / "s.parquet")
    assert read_edge_list(tmp_path / "s.parquet")[0].tolist() == ["1", "01"]


# ------------------------------------------------------------------ word2vec

def test_word2vec_ids_that_differ_as_written_stay_apart(tmp_path):
    vectors = np.arange(6, dtype=np.float32).reshape(3, 2)
    write_word2vec(tmp_path / "e.emb", vectors, ["1", "01", "a"])
    got, names = read_word2vec(tmp_path / "e.emb")
    assert names.dtype.kind == "U" and names.tolist() == ["1", "01", "a"]
    np.testing.assert_array_equal(got, vectors)
    write_word2vec(tmp_path / "i.emb", vectors, np.array([5, -3, 10]))
    got, names = read_word2vec(tmp_path / "i.emb")
    assert names.dtype == np.int64 and names.tolist() == [5, -3, 10]


def test_write_word2vec_refuses_what_it_cannot_store(tmp_path):
    path = tmp_path / "e.emb"
    with pytest.raises(ValueError, match=r"e.emb: 2 names for 20 vectors"):
        write_word2vec(path, np.zeros((20, 3)), ["a", "b"])
    for name in ["a b", "x\ny", "tab\there", "", "line\rend", "nb\u2028sp"]:
        with pytest.raises(ValueError, match="empty or holds whitespace"):
            write_word2vec(path, np.zeros((2, 3)), ["ok", name])
    with pytest.raises(ValueError, match="'7' appears twice"):
        write_word2vec(path, np.zeros((2, 3)), [7, "7"])
    with pytest.raises(ValueError, match="NaN or infinite"):
        write_word2vec(path, np.array([[0.0, np.nan]]), ["a"])
    assert files_in(tmp_path) == []  # nothing written, no temporary file


def test_read_word2vec_accepts_the_original_and_windows_line_ends(tmp_path):
    path = write(tmp_path, "w2v.txt", "2 3\r\nx 1 2 3 \r\ny 4 5 6 \r\n")  # word2vec.c ends lines in a space
    vectors, names = read_word2vec(path)
    assert names.tolist() == ["x", "y"]
    np.testing.assert_array_equal(vectors, [[1, 2, 3], [4, 5, 6]])


@pytest.mark.parametrize("text, problem", [
    ("2 2\na 1 2\na 3 4\n", "lines 2 and 3 both name 'a'"),
    ("3 2\na 1 2\n", "the header promises 3 vectors; the file holds 1"),
    ("1 2\na 1 2\nb 3 4\n", "the file holds more"),
    ("1 2\na 1 2 3\n", "line 2 is not a name and 2 values"),
    ("1 2\na 1  2\n", "line 2 is not a name and 2 values"),
    ("1 2\na 1 x\n", "line 2: 'x' is not a number"),
    ("1 2\na 1 1e39\n", "line 2: a value is NaN, infinite or beyond float32"),
    ("1 2\na nan 1\n", "line 2: a value is NaN"),
    ("two 2\n", "line 1 must be 'count dim'"),
    ("1 0\na\n", "the dimension must be at least 1"),
])
def test_bad_word2vec_files_name_the_path_and_the_line(tmp_path, text, problem):
    path = write(tmp_path, "bad.emb", text)
    with pytest.raises(ValueError) as info:
        read_word2vec(path)
    assert str(info.value).startswith(f"{path}: ") and problem in str(info.value)


# ------------------------------------------------------------------ atomic_write through links

def test_atomic_write_through_a_symlink_keeps_the_link(tmp_path):
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    target = real_dir / "data.bin"
    target.write_bytes(b"old")
    target.chmod(0o640)
    link = tmp_path / "link.bin"
    link.symlink_to(target)
    with atomic_write(link) as f:
        f.write(b"new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == b"new" and link.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the target's permissions kept
    assert files_in(tmp_path) == ["link.bin", "real"] and files_in(real_dir) == ["data.bin"]


def test_atomic_write_through_relative_and_chained_links(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "t.bin").write_bytes(b"old")
    (tmp_path / "first").symlink_to("second")  # first -> second -> sub/t.bin, both relative
    (tmp_path / "second").symlink_to(os.path.join("sub", "t.bin"))
    with atomic_write(tmp_path / "first") as f:
        f.write(b"new")
    assert (tmp_path / "first").is_symlink() and (tmp_path / "second").is_symlink()
    assert (tmp_path / "sub" / "t.bin").read_bytes() == b"new"


def test_atomic_write_through_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.npz"
    link.symlink_to(tmp_path / "later.npz")
    io.write_npz_atomic(link, X=np.arange(3))
    assert link.is_symlink() and (tmp_path / "later.npz").is_file()
    with np.load(tmp_path / "later.npz") as archive:
        np.testing.assert_array_equal(archive["X"], np.arange(3))


def test_atomic_write_failure_leaves_the_link_and_its_target(tmp_path):
    target = tmp_path / "t.bin"
    target.write_bytes(b"old")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(RuntimeError), atomic_write(tmp_path / "link") as f:
        f.write(b"partial")
        raise RuntimeError("midway")
    assert (tmp_path / "link").is_symlink() and target.read_bytes() == b"old"
    assert files_in(tmp_path) == ["link", "t.bin"]


def test_atomic_write_to_bad_links(tmp_path):
    (tmp_path / "loop_a").symlink_to(tmp_path / "loop_b")
    (tmp_path / "loop_b").symlink_to(tmp_path / "loop_a")
    with pytest.raises(OSError, match="loop_a: its symbolic links form a loop"), atomic_write(tmp_path / "loop_a"):
        pass
    (tmp_path / "to_dir").symlink_to(tmp_path)
    with pytest.raises(IsADirectoryError, match="it is a directory"), atomic_write(tmp_path / "to_dir"):
        pass
    (tmp_path / "nowhere").symlink_to(tmp_path / "missing" / "x.bin")
    with pytest.raises(FileNotFoundError, match="does not exist"), atomic_write(tmp_path / "nowhere"):
        pass
    assert files_in(tmp_path) == ["loop_a", "loop_b", "nowhere", "to_dir"]


def test_write_target_follows_links_to_the_file_they_reach(tmp_path):
    plain = tmp_path / "plain.bin"
    assert io.write_target(plain) == plain  # need not exist
    (tmp_path / "sub").mkdir()
    (tmp_path / "a").symlink_to("b")  # a -> b -> sub/t.bin (missing yet), relative links
    (tmp_path / "b").symlink_to(os.path.join("sub", "t.bin"))
    assert io.write_target(str(tmp_path / "a")) == (tmp_path / "sub" / "t.bin").resolve()
    (tmp_path / "loop_a").symlink_to(tmp_path / "loop_b")
    (tmp_path / "loop_b").symlink_to(tmp_path / "loop_a")
    with pytest.raises(OSError, match="loop_a: its symbolic links form a loop"):
        io.write_target(tmp_path / "loop_a")


# ------------------------------------------------------------------ tables with a labels column

def test_table_columns_and_split_of_a_csv(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((7, 2)).astype(np.float32)
    labels = np.array(["x", "y", "x", "z", "y", "x", "z"])
    path = tmp_path / "t.tsv"
    path.write_text('a\t"kind"\tb\n' + "".join(f"{r[0]:.9g}\t{c}\t{r[1]:.9g}\n" for r, c in zip(X, labels)))
    assert io.table_columns(path) == ["a", "kind", "b"]
    features, found = io.read_table_split(path, "kind")
    assert features.dtype == np.float64
    np.testing.assert_array_equal(features.astype(np.float32), X)  # 9 digits: float32 exactly
    assert found.tolist() == labels.tolist()
    numbers = tmp_path / "n.csv"
    numbers.write_text("id,v\n3,0.5\n-1,1.5\n")
    features, found = io.read_table_split(numbers, "id", io.table_columns(numbers))
    assert found.dtype == np.int64 and found.tolist() == [3, -1] and features.tolist() == [[0.5], [1.5]]
    headless = tmp_path / "h.csv"
    headless.write_text("1,2\n3,4\n")
    assert io.table_columns(headless) == []


@pytest.mark.parametrize("text,column,problem", [
    ("a,b\n1,2\n", "c", "has no column 'c'; its columns are: a, b"),
    ("lab\nx\n", "lab", "has no feature columns besides the labels 'lab'"),
    ("lab,a\n", "lab", "holds no data rows"),
    ("lab,a\nx,oops\n", "lab", "cannot read as csv"),
])
def test_table_split_errors_name_the_file(tmp_path, text, column, problem):
    path = write(tmp_path, "t.csv", text)
    with pytest.raises(ValueError) as info:
        io.read_table_split(path, column)
    assert str(info.value).startswith(f"{path}: ") and problem in str(info.value)


def test_only_tables_have_columns(tmp_path):
    np.save(tmp_path / "t.npy", np.zeros((2, 2)))
    for call in (io.table_columns, lambda p: io.read_table_split(p, "a", ["a", "b"])):
        with pytest.raises(ValueError, match="t.npy: unknown table type '.npy'"):
            call(tmp_path / "t.npy")
    with pytest.raises(ValueError, match="t.csv: no such file"):
        io.table_columns(tmp_path / "t.csv")


def test_table_split_of_a_parquet_file(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0, 3.0], "kind": ["p", "q", "p"], "b": [4, 5, 6]}), path)
    assert io.table_columns(path) == ["a", "kind", "b"]
    features, labels = io.read_table_split(path, "kind")
    np.testing.assert_array_equal(features, [[1, 4], [2, 5], [3, 6]])
    assert labels.tolist() == ["p", "q", "p"]


def test_read_labeled_matrix_takes_a_column_or_a_file(tmp_path):
    table = write(tmp_path, "t.csv", "kind,a,b\n7,1,2\n8,3,4\n7,5,6\n")
    X, labels, source = io.read_labeled_matrix(table, "kind")
    assert X.tolist() == [[1, 2], [3, 4], [5, 6]] and labels.tolist() == [7, 8, 7]
    assert source == f"column 'kind' of {table}"
    X, labels, source = io.read_labeled_matrix(table)
    assert X.shape == (3, 3) and labels is None and source is None
    np.save(tmp_path / "X.npy", np.eye(3, dtype=np.float32))
    names = write(tmp_path, "names.txt", "cluster\nred\nblue\nred\n")  # n + 1 lines: a header
    X, labels, source = io.read_labeled_matrix(tmp_path / "X.npy", names)
    assert X.shape == (3, 3) and labels.tolist() == ["red", "blue", "red"] and source == str(names)
    with pytest.raises(ValueError, match="--labels species: neither a file nor a column of .*t.csv "
                                         r"\(columns: kind, a, b\)"):
        io.read_labeled_matrix(table, "species", name="--labels")
    with pytest.raises(ValueError, match=r"labels kind: no such file \(a column name applies only"):
        io.read_labeled_matrix(tmp_path / "X.npy", "kind")
    short = write(tmp_path, "short.txt", "red\nblue\n")
    with pytest.raises(ValueError, match="short.txt: 2 labels for the 3 points of .*X.npy"):
        io.read_labeled_matrix(tmp_path / "X.npy", short)


# ------------------------------------------------------------------ writers

@pytest.mark.parametrize("name", ["m.npy", "m.csv", "m.TSV"])
def test_write_matrix_round_trips_through_read_matrix(tmp_path, name):
    Y = np.random.default_rng(5).standard_normal((9, 3)).astype(np.float32) * 1e-3
    io.write_matrix(tmp_path / name, Y)
    back = read_matrix(tmp_path / name)
    np.testing.assert_array_equal(np.asarray(back, dtype=np.float32), Y)  # text: 9 digits are exact
    if name != "m.npy":
        first = (tmp_path / name).read_text().splitlines()[0]
        assert first == ("\t" if name.endswith("TSV") else ",").join(["dim1", "dim2", "dim3"])
    assert files_in(tmp_path) == [name]


def test_write_matrix_refuses_what_it_cannot_write(tmp_path):
    with pytest.raises(ValueError, match="m.txt: unknown file type '.txt'"):
        io.write_matrix(tmp_path / "m.txt", np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"m.csv: expected a 2-D matrix of numbers, got shape \(3,\)"):
        io.write_matrix(tmp_path / "m.csv", np.zeros(3))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        io.write_matrix(tmp_path / "missing" / "m.npy", np.zeros((2, 2)))
    assert files_in(tmp_path) == []


def test_write_sparse_npz_is_scipy_format_under_the_exact_name(tmp_path):
    scipy_sparse = pytest.importorskip("scipy.sparse")
    codes = scipy_sparse.random_array((20, 30), density=0.1, random_state=0, format="csr", dtype=np.float32)
    io.write_sparse_npz(tmp_path / "codes", codes)
    assert files_in(tmp_path) == ["codes"]  # no ".npz" appended
    back = scipy_sparse.load_npz(tmp_path / "codes")
    assert back.dtype == np.float32 and (back != codes).nnz == 0
