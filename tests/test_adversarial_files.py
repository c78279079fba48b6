"""Byte-mutation fuzzing of every reader and loader (issue 12): each mutant
of a valid file (bit flips, random bytes, truncation, deletion, insertion,
extreme integers in headers) must load into a valid object or raise
ValueError/OSError naming the file (MemoryError for a header that promises
more than memory holds). Each reader runs its mutants in one subprocess,
so a crash in a reader (or in the library under it) fails one test."""

import textwrap

import pytest

from test_adversarial import isolated

FUZZ = '''
import tempfile
from pathlib import Path

tmp = Path(tempfile.mkdtemp())
failures = []


def mutants(raw, count, seed, text=False):
    """Deterministic mutants of raw bytes: (description, bytes)."""
    rng = np.random.default_rng(seed)
    specials = [b"\\xff\\xff\\xff\\xff", b"\\xff\\xff\\xff\\x7f", b"\\x00\\x00\\x00\\x80", b"\\x00\\x00\\x00\\x00"]
    for i in range(count):
        data = bytearray(raw)
        if not data:
            yield "empty", b""
            continue
        # Half the mutations land in the first 160 bytes, where the headers are.
        pos = int(rng.integers(0, min(len(data), 160))) if i % 2 == 0 else int(rng.integers(0, len(data)))
        op = i % 6
        if op == 0:
            data[pos] ^= 1 << int(rng.integers(0, 8))
        elif op == 1:
            data[pos] = int(rng.integers(0, 256))
        elif op == 2:
            data = data[:pos]
        elif op == 3:
            del data[pos:pos + int(rng.integers(1, 16))]
        elif op == 4:
            data[pos:pos] = bytes(rng.integers(0, 256, int(rng.integers(1, 8)), dtype=np.uint8))
        elif text:
            data[pos:pos + 1] = [b"-", b",", b".", b"e", b" ", b"\\n", b"\\t", b"#", b"a", b"\\x00", b"9" * 40,
                                 b"nan", b"inf", b'"'][int(rng.integers(0, 14))]
        else:
            data[pos:pos + 4] = specials[int(rng.integers(0, len(specials)))]
        yield f"op{op}@{pos}", bytes(data)


def fuzz(name, raw, suffix, load, use, count=150, seed=0, text=False):
    """Writes each mutant to a file, loads it and uses the result; records
    every outcome other than a valid object or a clear error."""
    for description, data in mutants(raw, count, seed, text):
        path = tmp / f"{name}{suffix}"
        path.write_bytes(data)
        case(name, description)
        try:
            loaded = load(path)
        except (ValueError, OSError) as exc:
            if str(path) not in str(exc) and path.name not in str(exc):
                failures.append(f"{name} {description}: {type(exc).__name__} without the file name: {exc}")
            continue
        except MemoryError:
            continue
        except Exception as exc:
            failures.append(f"{name} {description}: leaked {type(exc).__name__}: {str(exc)[:200]}")
            continue
        try:  # what was read is usable, or refused as a bad value (e.g. a huge weight) by the next call
            use(loaded)
        except (ValueError, TypeError, MemoryError):
            pass
        except Exception as exc:
            failures.append(f"{name} {description}: using what was read raised {type(exc).__name__}: "
                            f"{str(exc)[:200]}")


def matrix_ok(M):
    assert isinstance(M, np.ndarray) and M.ndim == 2, (type(M), getattr(M, "shape", None))
    np.asarray(M).sum()  # touches every value (a memory map included)


def report():
    for line in failures[:40]:
        print("FAIL", line, flush=True)
    print(f"{len(failures)} failures", flush=True)
'''


def fuzz_isolated(code: str, timeout: float = 180):
    proc = isolated(textwrap.dedent(code) + "\nreport()\n", setup=FUZZ, timeout=timeout)
    failures = [line for line in proc.stdout.splitlines() if line.startswith("FAIL")]
    assert not failures, "\n".join(failures)


def test_read_matrix_npy_npz():
    fuzz_isolated('''
    from latentcore.io import read_matrix
    X = np.arange(15, dtype=np.float32).reshape(5, 3)
    for name, save in [("plain", np.save), ("f64", lambda p, a: np.save(p, a.astype(np.float64)))]:
        path = tmp / f"{name}_base.npy"
        save(path, X)
        fuzz(name, path.read_bytes(), ".npy", read_matrix, matrix_ok, count=200)
    for name, save in [("npz", np.savez), ("npz_compressed", np.savez_compressed)]:
        path = tmp / f"{name}_base.npz"
        save(path, X=X)
        fuzz(name, path.read_bytes(), ".npz", read_matrix, matrix_ok, count=200, seed=1)
    ''')


def test_read_matrix_text_and_parquet():
    fuzz_isolated('''
    from latentcore.io import read_matrix
    rows = "\\n".join(",".join(f"{v:.3f}" for v in row) for row in np.random.default_rng(0).standard_normal((6, 3)))
    fuzz("csv", ("a,b,c\\n" + rows + "\\n").encode(), ".csv", read_matrix, matrix_ok, count=150, text=True)
    fuzz("tsv", (rows.replace(",", "\\t") + "\\n").encode(), ".tsv", read_matrix, matrix_ok, count=150, seed=2,
         text=True)
    try:
        import pyarrow as pa, pyarrow.parquet as pq
    except ImportError:
        pass
    else:
        path = tmp / "base.parquet"
        pq.write_table(pa.table({"a": np.arange(6.0), "b": np.ones(6)}), path)
        fuzz("parquet", path.read_bytes(), ".parquet", read_matrix, matrix_ok, count=120, seed=3)
    ''')


def test_read_edge_list():
    fuzz_isolated('''
    from latentcore.io import read_edge_list

    def edges_ok(result):
        sources, targets, weights = result
        assert len(sources) == len(targets) and (weights is None or len(weights) == len(sources))
        if weights is not None:
            assert np.isfinite(weights).all() and (weights >= 0).all(), weights

    text = "source target weight\\n0 1 0.5\\n1 2 1.5\\n2 0 2\\n3 1 1\\n"
    fuzz("txt", text.encode(), ".txt", read_edge_list, edges_ok, count=200, text=True)
    fuzz("csv", text.replace(" ", ",").encode(), ".csv", read_edge_list, edges_ok, count=150, seed=4, text=True)
    fuzz("names", b"a b\\nb c\\nc a\\n", ".edgelist", read_edge_list, edges_ok, count=100, seed=5, text=True)
    try:
        import pyarrow as pa, pyarrow.parquet as pq
    except ImportError:
        pass
    else:
        path = tmp / "edges_base.parquet"
        pq.write_table(pa.table({"s": [0, 1, 2], "t": [1, 2, 0], "w": [1.0, 2.0, 0.5]}), path)
        fuzz("edges_parquet", path.read_bytes(), ".parquet", read_edge_list, edges_ok, count=100, seed=6)
    # And a graph read by a public function, walks taken on it.
    fuzz("walks", text.encode(), ".txt", lambda p: latentcore.random_walks(p, 3, 1, random_state=0),
         lambda W: None, count=60, seed=7, text=True)
    ''')


def test_word2vec_and_node2vec_files():
    fuzz_isolated('''
    from latentcore import Node2Vec
    from latentcore.io import read_word2vec, write_word2vec
    V = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    path = tmp / "base.txt"
    write_word2vec(path, V, ["a", "b", "10", "x_y"])

    def vectors_ok(result):
        vectors, names = result
        assert vectors.ndim == 2 and vectors.shape[0] == len(names) and vectors.dtype == np.float32

    fuzz("w2v", path.read_bytes(), ".txt", read_word2vec, vectors_ok, count=200, text=True)

    def model_ok(model):
        assert model.embedding_.shape[0] == len(model.nodes_)
        if len(model.nodes_):
            model.transform(list(model.nodes_[:1]))

    model = Node2Vec(dim=3, walk_length=4, walks_per_node=1, random_state=0, n_jobs=1).fit(
        scipy.sparse.csr_array(np.ones((4, 4)) - np.eye(4)))
    for suffix in (".npy", ".npz", ".txt"):
        path = tmp / f"model_base{suffix}"
        model.save(path)
        fuzz("n2v" + suffix[1:], path.read_bytes(), suffix, Node2Vec.load, model_ok, count=120, seed=8,
             text=suffix == ".txt")
    ''')


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_topk_sae_files(suffix):
    fuzz_isolated(f'''
    from latentcore import TopKSAE
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 6)).astype(np.float32)
    sae = TopKSAE(16, 3, batch_size=32, random_state=0, n_jobs=1).fit(X)
    path = tmp / "base{suffix}"
    sae.save(path)

    def model_ok(model):
        codes = model.encode(X)
        assert codes.shape == (X.shape[0], model.n_latents) and np.isfinite(codes.data).all()
        assert model.decode(codes).shape == X.shape

    fuzz("sae", path.read_bytes(), "{suffix}", TopKSAE.load, model_ok, count=300, seed=9)
    ''')


def test_command_line_reports_corrupt_inputs_in_one_line():
    fuzz_isolated('''
    import contextlib, io
    from latentcore.cli import main
    path = tmp / "points_base.npy"
    np.save(path, np.random.default_rng(0).standard_normal((40, 3)).astype(np.float32))

    def knn_command(p):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = main(["knn", str(p), "-k", "3", "-o", str(tmp / "out.npz")])
        message = err.getvalue()
        assert "Traceback" not in message, message
        if status != 0:  # one line; a file that cannot be read is named (bad values inside it are X's)
            assert message.startswith("latentcore: error:") and message.count("\\n") == 1, message
            assert p.name in message or " X " in message, message

    fuzz("cli", path.read_bytes(), ".npy", knn_command, lambda _: None, count=80, seed=10)
    ''')
