"""The file readers, the atomic writer and the ``latentcore`` command line,
checked against latentcore.knn and scikit-learn's brute-force search."""

import os
import stat
import subprocess
import sys

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

import latentcore
from latentcore.cli import main
from latentcore.io import atomic_write, read_matrix, write_npz_atomic

K = 7


@pytest.fixture
def points(rng):
    # Continuous random data: no two distances tie, so neighbour lists are
    # unique and must agree index for index with any exact reference.
    return rng.standard_normal((300, 6)).astype(np.float32)


def sklearn_indices(X, k):
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(X.astype(np.float64))
    return nn.kneighbors(return_distance=False)


def save_delimited(path, X, delimiter, header):
    # %.9g writes float32 values exactly, so the file holds the same points.
    np.savetxt(path, X, fmt="%.9g", delimiter=delimiter,
               header=delimiter.join(f"f{j}" for j in range(X.shape[1])) if header else "",
               comments="")


def save_parquet(path, X):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    columns = {f"f{j}": X[:, j] for j in range(X.shape[1])}
    columns["name"] = [f"p{i}" for i in range(X.shape[0])]  # non-numeric: skipped
    pq.write_table(pa.table(columns), path)


WRITERS = {
    "data.npy": lambda p, X: np.save(p, X),
    "data.npz": lambda p, X: np.savez(p, X=X),
    "plain.csv": lambda p, X: save_delimited(p, X, ",", header=False),
    "header.csv": lambda p, X: save_delimited(p, X, ",", header=True),
    "header.tsv": lambda p, X: save_delimited(p, X, "\t", header=True),
    "plain.tsv": lambda p, X: save_delimited(p, X, "\t", header=False),
    "data.parquet": save_parquet,
}


def files_in(directory):
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize("name", list(WRITERS))
def test_read_matrix_round_trip(tmp_path, points, name):
    path = tmp_path / name
    WRITERS[name](path, points)
    X = read_matrix(path)
    assert X.shape == points.shape
    np.testing.assert_array_equal(X.astype(np.float32), points)


@pytest.mark.parametrize("name", list(WRITERS))
def test_knn_command_matches_library_and_sklearn(tmp_path, points, capsys, name):
    path = tmp_path / name
    WRITERS[name](path, points)
    out = tmp_path / "graph.npz"
    assert main(["knn", str(path), "-k", str(K), "-o", str(out), "--threads", "2"]) == 0

    with np.load(out) as result:
        indices, distances = result["indices"], result["distances"]
        assert int(result["k"]) == K and str(result["metric"]) == "euclidean"
    expected_idx, expected_dist = latentcore.knn(points, K)
    assert indices.dtype == np.int32 and distances.dtype == np.float32
    np.testing.assert_array_equal(indices, expected_idx)
    np.testing.assert_array_equal(distances, expected_dist)
    np.testing.assert_array_equal(indices, sklearn_indices(points, K))
    summary = capsys.readouterr().out
    assert f"{points.shape[0]} points x {points.shape[1]} dims" in summary and f"k={K}" in summary


def test_knn_command_options(tmp_path, points):
    path = tmp_path / "several.npz"
    np.savez(path, labels=np.arange(points.shape[0]), X=points)
    out = tmp_path / "out.npz"
    assert main(["knn", str(path), "--key", "X", "-k", "3", "-o", str(out),
                 "--metric", "cosine", "--include-self"]) == 0
    with np.load(out) as result:
        indices, metric = result["indices"], str(result["metric"])
    expected, _ = latentcore.knn(points, 3, metric="cosine", exclude_self=False)
    np.testing.assert_array_equal(indices, expected)
    assert metric == "cosine"
    # Each point is its own nearest neighbour once it is not excluded.
    np.testing.assert_array_equal(indices[:, 0], np.arange(points.shape[0]))


def test_integer_input_is_read_as_float(tmp_path, rng):
    counts = rng.integers(0, 1000, size=(100, 5))
    np.save(tmp_path / "counts.npy", counts)
    out = tmp_path / "out.npz"
    assert main(["knn", str(tmp_path / "counts.npy"), "-k", "4", "-o", str(out)]) == 0
    with np.load(out) as result:
        expected, _ = latentcore.knn(counts.astype(np.float32), 4)
        np.testing.assert_array_equal(result["indices"], expected)


def test_npy_is_memory_mapped(tmp_path, points):
    np.save(tmp_path / "x.npy", points)
    X = read_matrix(tmp_path / "x.npy")
    assert isinstance(X, np.memmap) and not X.flags.writeable


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"latentcore {latentcore.__version__}"


def test_module_entry_point_in_a_subprocess(tmp_path):
    version = subprocess.run([sys.executable, "-m", "latentcore.cli", "--version"],
                             capture_output=True, text=True, check=True)
    assert version.stdout.strip() == f"latentcore {latentcore.__version__}"
    failed = subprocess.run([sys.executable, "-m", "latentcore.cli", "knn",
                             str(tmp_path / "absent.npy"), "-o", str(tmp_path / "o.npz")],
                            capture_output=True, text=True)
    assert failed.returncode == 2
    assert failed.stderr.startswith("latentcore: error: ") and "no such file" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_demo_reproduces_sklearn_and_maps_the_digits(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    assert main(["demo", "--out", str(tmp_path), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "1797 points x 64 dims" in out
    assert "recall vs scikit-learn brute force: 1.000" in out
    agreement = float(out.split("k-NN label agreement: ")[1].split()[0])
    assert 0.9 < agreement < 1.0
    assert files_in(tmp_path) == ["digits_map.png"]
    assert imread(tmp_path / "digits_map.png").shape[0] == 800
    assert 0.0 < printed_number(out, "KL divergence: ") < 2.0
    assert printed_number(out, "trustworthiness (k=10): ") > 0.95


def printed_number(out, prefix):
    return float(out.split(prefix)[1].split()[0])


def write_garbage(path):
    path.write_bytes(b"\x00\x13 this is not a numpy file \xff" * 8)


def write_truncated_npy(path):
    np.save(path, np.zeros((100, 3)))
    path.write_bytes(path.read_bytes()[:200])


def write_zip_signature_only(path):
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 64)


def write_npz_content(path):
    with open(path, "wb") as f:
        np.savez(f, X=np.zeros((3, 2)))


def write_npy_content(path):
    with open(path, "wb") as f:
        np.save(f, np.zeros((3, 2)))


def write_text_only_parquet(path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"name": ["a", "b", "c"]}), path)


def write_ragged_csv(path):
    path.write_text("1,2,3\n4,5\n")


def write_words_csv(path):
    path.write_text("a,b\n1,2\n3,oops\n")


def write_three_d(path):
    np.save(path, np.zeros((4, 3, 2), dtype=np.float32))


@pytest.mark.parametrize("name, make, problem", [
    ("garbage.npy", write_garbage, "is not an .npy file"),
    ("truncated.npy", write_truncated_npy, "cannot read as npy"),
    ("swapped.npy", write_npz_content, "is an .npz archive, not an .npy file; rename it to .npz"),
    ("garbage.npz", write_garbage, "is not an .npz archive"),
    ("broken.npz", write_zip_signature_only, "cannot read as npz"),
    ("swapped.npz", write_npy_content, "is an .npy file, not an .npz archive; rename it to .npy"),
    ("garbage.parquet", write_garbage, "cannot read as parquet"),
    ("text.parquet", write_text_only_parquet, "has no numeric columns (columns: name)"),
    ("ragged.csv", write_ragged_csv, "cannot read as csv"),
    ("words.csv", write_words_csv, "oops"),
    ("cube.npy", write_three_d, "expected a 2-D matrix"),
    ("empty.csv", lambda p: p.write_text(""), "holds no data rows"),
    ("header_only.tsv", lambda p: p.write_text("a\tb\n"), "holds no data rows"),
    ("data.txt", lambda p: p.write_text("1,2\n"), "unknown file type '.txt'"),
    ("absent.npy", lambda p: None, "no such file"),
])
def test_bad_input_fails_cleanly(tmp_path, capsys, name, make, problem):
    if name.endswith(".parquet"):
        pytest.importorskip("pyarrow")
    path = tmp_path / name
    make(path)
    before = files_in(tmp_path)
    out = tmp_path / "out.npz"
    assert main(["knn", str(path), "-k", "2", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("latentcore: error: ") and err.count("\n") == 1
    assert str(path) in err and problem in err
    assert files_in(tmp_path) == before  # no output, no temporary file


@pytest.mark.parametrize("k, problem", [(300, "k=300 is too large"), (0, "k must be >= 1")])
def test_bad_k_fails_cleanly(tmp_path, capsys, points, k, problem):
    np.save(tmp_path / "x.npy", points)
    assert main(["knn", str(tmp_path / "x.npy"), "-k", str(k), "-o", str(tmp_path / "o.npz")]) == 2
    assert problem in capsys.readouterr().err
    assert files_in(tmp_path) == ["x.npy"]


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main([]) == 2
    assert main(["knn", str(tmp_path / "x.npy"), "-k", "many", "-o", "o.npz"]) == 2
    assert "invalid int value: 'many'" in capsys.readouterr().err


def test_npz_key_errors_name_the_arrays(tmp_path):
    path = tmp_path / "two.npz"
    np.savez(path, a=np.zeros((3, 2)), b=np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"holds 2 arrays \(a, b\)"):
        read_matrix(path)
    with pytest.raises(ValueError, match=r"no array 'c'; its arrays are: a, b"):
        read_matrix(path, key="c")
    np.testing.assert_array_equal(read_matrix(path, key="b"), np.ones((3, 2)))
    np.save(tmp_path / "one.npy", np.zeros((2, 2)))
    with pytest.raises(ValueError, match="applies only to .npz"):
        read_matrix(tmp_path / "one.npy", key="a")


def test_corrupt_file_keeps_the_cause(tmp_path):
    write_truncated_npy(tmp_path / "bad.npy")
    with pytest.raises(ValueError, match="bad.npy: cannot read as npy") as info:
        read_matrix(tmp_path / "bad.npy")
    assert isinstance(info.value.__cause__, ValueError)  # numpy's own error, chained


def test_parquet_without_pyarrow_says_how_to_install(tmp_path, monkeypatch):
    (tmp_path / "x.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` fail
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match=r"pip install 'latentcore\[io\]'"):
        read_matrix(tmp_path / "x.parquet")


def test_atomic_write_failure_keeps_old_file(tmp_path):
    target = tmp_path / "result.npz"
    target.write_bytes(b"old content")
    with pytest.raises(RuntimeError, match="midway"):
        with atomic_write(target) as f:
            f.write(b"new partial content")
            raise RuntimeError("failure midway")
    assert target.read_bytes() == b"old content"
    assert files_in(tmp_path) == ["result.npz"]


def test_atomic_write_replaces_and_keeps_permissions(tmp_path):
    target = tmp_path / "result.bin"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    with atomic_write(target) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert files_in(tmp_path) == ["result.bin"]


def test_atomic_write_new_file_follows_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "new.bin") as f:
            f.write(b"x")
    finally:
        os.umask(old)
    # mkstemp alone would leave 0600.
    assert stat.S_IMODE((tmp_path / "new.bin").stat().st_mode) == 0o644


def test_atomic_write_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with atomic_write(tmp_path / "nowhere" / "x.npz"):
            pass


@pytest.mark.parametrize("name", ["out.npz", "out"])
def test_write_npz_atomic_uses_the_exact_name(tmp_path, name):
    indices = np.arange(6, dtype=np.int32).reshape(3, 2)
    write_npz_atomic(tmp_path / name, indices=indices, metric=np.str_("cosine"))
    assert files_in(tmp_path) == [name]  # np.savez would have written out.npz.npz / out.npz
    with np.load(tmp_path / name) as result:
        np.testing.assert_array_equal(result["indices"], indices)
        assert str(result["metric"]) == "cosine"


# ------------------------------------------------------------------ map

N_PER_CLUSTER = 100
MAP_OPTIONS = ["--perplexity", "10", "--threads", "1"]


@pytest.fixture
def three_clusters(rng):
    """Three well separated Gaussian blobs in 10-D, 100 points each."""
    labels = np.repeat(np.arange(3), N_PER_CLUSTER)
    X = rng.standard_normal((labels.size, 10)) + 8.0 * np.eye(3, 10)[labels]
    return X.astype(np.float32), labels


def knn_accuracy(Y, labels, k=10):
    """Leave-one-out k-NN classification accuracy of the map's coordinates."""
    indices, _ = latentcore.knn(np.ascontiguousarray(Y, dtype=np.float32), k)
    votes = np.stack([(labels[indices] == c).sum(axis=1) for c in range(labels.max() + 1)], axis=1)
    return float((votes.argmax(axis=1) == labels).mean())


def save_labelled_csv(path, X, labels, label_column="cluster"):
    """A CSV with a header and the labels as its first column."""
    header = ",".join([label_column] + [f"f{j}" for j in range(X.shape[1])])
    rows = [",".join([str(label)] + [f"{v:.9g}" for v in row]) for label, row in zip(labels, X)]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")


def test_map_writes_the_image_and_the_coordinates(tmp_path, capsys, three_clusters):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    X, labels = three_clusters
    np.save(tmp_path / "points.npy", X)
    names = np.array(["alpha", "beta", "gamma"])
    (tmp_path / "names.txt").write_text("\n".join(names[labels]) + "\n")
    output = tmp_path / "map.png"
    assert main(["map", str(tmp_path / "points.npy"), "-o", str(output),
                 "--labels", str(tmp_path / "names.txt"), *MAP_OPTIONS]) == 0

    assert files_in(tmp_path) == ["map.npy", "map.png", "names.txt", "points.npy"]
    Y = np.load(tmp_path / "map.npy")
    assert Y.shape == (X.shape[0], 2) and Y.dtype == np.float32
    assert knn_accuracy(Y, labels) >= 0.9
    image = imread(output)
    assert image.shape[0] == 800 and image.shape[1] > 800  # a legend of the three names
    out = capsys.readouterr().out
    assert "3 distinct values" in out
    assert printed_number(out, "KL divergence: ") > 0
    assert printed_number(out, "trustworthiness (k=10): ") > 0.9


def test_map_labels_from_a_csv_column(tmp_path, capsys, three_clusters):
    """The label column is dropped from the features: the map equals the one
    of the same table without it."""
    X, labels = three_clusters
    save_labelled_csv(tmp_path / "labelled.csv", X, labels)
    save_delimited(tmp_path / "features.csv", X, ",", header=True)
    assert main(["map", str(tmp_path / "features.csv"), "-o", str(tmp_path / "plain.png"),
                 "--coords", str(tmp_path / "plain.csv"), *MAP_OPTIONS]) == 0
    assert main(["map", str(tmp_path / "labelled.csv"), "-o", str(tmp_path / "labelled.png"),
                 "--labels", "cluster", "--html", "--coords", str(tmp_path / "labelled.csv.csv"),
                 *MAP_OPTIONS]) == 0
    assert "column 'cluster'" in capsys.readouterr().out

    assert files_in(tmp_path) == ["features.csv", "labelled.csv", "labelled.csv.csv",
                                  "labelled.html", "labelled.png", "plain.csv", "plain.png"]
    Y = read_matrix(tmp_path / "labelled.csv.csv")
    assert Y.shape == (X.shape[0], 2)
    np.testing.assert_array_equal(Y, read_matrix(tmp_path / "plain.csv"))
    assert knn_accuracy(Y, labels) >= 0.9
    page = (tmp_path / "labelled.html").read_text()
    assert page.count("<circle") == X.shape[0] and page.count("<li>") == 3


def test_map_labels_from_a_parquet_column_in_1d(tmp_path, three_clusters):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    X, labels = three_clusters
    columns = {f"f{j}": X[:, j] for j in range(X.shape[1])}
    columns["kind"] = np.array(["a", "b", "c"])[labels]
    pq.write_table(pa.table(columns), tmp_path / "points.parquet")
    assert main(["map", str(tmp_path / "points.parquet"), "-o", str(tmp_path / "map.png"),
                 "--labels", "kind", "--dims", "1", "--seed", "3", *MAP_OPTIONS]) == 0
    Y = np.load(tmp_path / "map.npy")
    assert Y.shape == (X.shape[0], 1)
    assert knn_accuracy(Y, labels) >= 0.9


def write_short_labels(tmp_path):
    (tmp_path / "short.txt").write_text("\n".join(["a"] * 299) + "\n")
    return ["--labels", str(tmp_path / "short.txt")]


@pytest.mark.parametrize("input_name, options, problem", [
    ("absent.npy", [], "absent.npy: no such file"),
    ("points.npy", ["--perplexity", "200"], "perplexity=200.0 must be positive and below"),
    ("points.npy", ["--perplexity", "0"], "perplexity=0.0 must be positive"),
    ("labelled.csv", ["--labels", "species"], "neither a file nor a column of"),
    ("points.npy", ["--labels", "cluster"], "no such file (a column name applies only"),
    ("points.npy", write_short_labels, "299 labels for the 300 points"),
    ("points.npy", ["--coords", "{tmp}/coords.txt"], "saved as .npy or .csv"),
    ("points.npy", ["-o", "{tmp}/nowhere/map.png"], "does not exist"),
    ("points.npy", ["-o", "{tmp}/map.jpg"], "unknown image type '.jpg'"),
    ("points.npy", ["--coords", "{tmp}/points.npy"], "would replace the input"),
])
def test_map_bad_input_fails_cleanly(tmp_path, capsys, three_clusters, input_name, options,
                                     problem):
    pytest.importorskip("matplotlib")
    X, labels = three_clusters
    np.save(tmp_path / "points.npy", X)
    save_labelled_csv(tmp_path / "labelled.csv", X, labels)
    if callable(options):
        options = options(tmp_path)
    before = files_in(tmp_path)
    options = [o.format(tmp=tmp_path) for o in options]
    argv = ["map", str(tmp_path / input_name), "-o", str(tmp_path / "map.png"), *options]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("latentcore: error: ") and err.count("\n") == 1
    assert problem in err
    assert files_in(tmp_path) == before  # no image, no coordinates, no temporary file


def test_map_without_matplotlib_says_how_to_install(tmp_path, capsys, monkeypatch, points):
    np.save(tmp_path / "points.npy", points)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    assert main(["map", str(tmp_path / "points.npy"), "-o", str(tmp_path / "map.png")]) == 2
    assert "pip install 'latentcore[plot]'" in capsys.readouterr().err
    assert files_in(tmp_path) == ["points.npy"]


def test_walks_command_writes_an_embedding_gensim_reads(tmp_path, capsys):
    nx = pytest.importorskip("networkx")
    G = nx.karate_club_graph()
    edges = tmp_path / "karate.tsv"
    edges.write_text("".join(f"{u}\t{v}\t{d['weight']}\n" for u, v, d in G.edges(data=True)))
    out = tmp_path / "emb.txt"
    assert main(["walks", str(edges), "-o", str(out), "--p", "0.5", "--q", "2", "--dim", "8",
                 "--walk-length", "10", "--window", "3", "--threads", "1", "--quiet"]) == 0
    assert "walks: 34 nodes, node2vec p=0.5 q=2" in capsys.readouterr().out
    model = latentcore.Node2Vec(0.5, 2.0, dim=8, walk_length=10, window=3, random_state=0,
                                n_jobs=1).fit(edges)
    gensim = pytest.importorskip("gensim")
    vectors = gensim.models.KeyedVectors.load_word2vec_format(str(out))
    np.testing.assert_array_equal(np.stack([vectors[str(v)] for v in range(34)]), model.embedding_)


def test_walks_command_deterministic_gives_the_same_vectors_for_any_thread_count(tmp_path, capsys):
    edges = tmp_path / "ring.txt"
    edges.write_text("".join(f"{v} {(v + 1) % 60}\n{v} {(v + 7) % 60}\n" for v in range(60)))
    outputs = []
    for threads in ("1", "2"):
        out = tmp_path / f"emb{threads}.npy"
        assert main(["walks", str(edges), "-o", str(out), "--dim", "8", "--walk-length", "20",
                     "--threads", threads, "--deterministic", "--quiet"]) == 0
        outputs.append(np.load(out))
    np.testing.assert_array_equal(outputs[0], outputs[1])


@pytest.mark.parametrize("args,problem", [
    (["--p", "0"], "p must"), (["--dim", "0"], "dim must"), (["--window", "0"], "window must"),
])
def test_walks_command_bad_input(tmp_path, capsys, args, problem):
    edges = tmp_path / "g.txt"
    edges.write_text("0 1\n1 2\n")
    assert main(["walks", str(edges), "-o", str(tmp_path / "e.npy"), "--quiet", *args]) == 2
    assert problem in capsys.readouterr().err
    assert main(["walks", str(tmp_path / "none.txt"), "-o", str(tmp_path / "e.npy")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "e.npy").exists()


# ------------------------------------------------------------------ encode

@pytest.fixture
def planted_codes(tmp_path, rng):
    """300 signals, each 3 atoms of a unit-norm random 64 x 16 dictionary."""
    D = rng.standard_normal((64, 16)).astype(np.float32)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    n, k = 300, 3
    codes = np.zeros((n, D.shape[0]), np.float32)
    for row in codes:
        row[rng.choice(D.shape[0], k, replace=False)] = rng.uniform(1.0, 2.0, k) * rng.choice([-1, 1], k)
    X = (codes @ D).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "D.npy", D)
    return X, D


def assert_same_sparse(actual, expected):
    assert actual.shape == expected.shape and actual.dtype == expected.dtype == np.float32
    actual, expected = actual.tocsr(), expected.tocsr()
    actual.sort_indices()
    expected.sort_indices()
    np.testing.assert_array_equal(actual.indptr, expected.indptr)
    np.testing.assert_array_equal(actual.indices, expected.indices)
    np.testing.assert_array_equal(actual.data, expected.data)


@pytest.mark.parametrize("options, library", [
    (["--method", "omp", "-k", "3"], dict(n_nonzero=3)),
    (["--method", "lasso", "--alpha", "0.01"], dict(method="lasso", alpha=0.01)),
])
def test_encode_command_matches_sparse_encode(tmp_path, capsys, planted_codes, options, library):
    scipy_sparse = pytest.importorskip("scipy.sparse")
    X, D = planted_codes
    out = tmp_path / "codes.npz"
    assert main(["encode", str(tmp_path / "X.npy"), "--dictionary", str(tmp_path / "D.npy"),
                 *options, "-o", str(out), "--threads", "2"]) == 0
    assert files_in(tmp_path) == ["D.npy", "X.npy", "codes.npz"]  # no temporary file left
    codes = scipy_sparse.load_npz(out)
    expected = latentcore.sparse_encode(X, D, **library)
    assert_same_sparse(codes, expected)
    err = capsys.readouterr().err
    fvu = latentcore.metrics.fraction_of_variance_unexplained(X, expected @ D)
    assert "encode: 300 signals x 16 dims over 64 atoms" in err and f"FVU {fvu:.4f}" in err
    if "omp" in options:
        assert "3.00 nonzeros per signal" in err and fvu < 0.1  # near the planted codes


def test_encode_command_normalize_and_quiet(tmp_path, capsys, planted_codes):
    scipy_sparse = pytest.importorskip("scipy.sparse")
    X, D = planted_codes
    np.save(tmp_path / "D3.npy", 3.0 * D)
    out = tmp_path / "codes.npz"
    argv = ["encode", str(tmp_path / "X.npy"), "--dictionary", str(tmp_path / "D3.npy"), "-k", "3",
            "-o", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("latentcore: error: ") and err.count("\n") == 1
    assert "unit norm" in err and "--normalize" in err and "D3.npy" in err
    assert not out.exists()

    assert main([*argv, "--normalize", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    expected = latentcore.sparse_encode(X, 3.0 * D, n_nonzero=3, normalize=True)
    assert_same_sparse(scipy_sparse.load_npz(out), expected)


@pytest.mark.parametrize("options, problem", [
    (["-o", "{tmp}/codes.npy"], "-o {tmp}/codes.npy: sparse codes are saved as .npz"),
    (["--method", "lasso"], "--method lasso needs --alpha"),
    (["--alpha", "0.1"], "--alpha applies to --method lasso only"),
    (["-k", "65"], "exceeds the 64 atoms"),
    (["--dictionary", "{tmp}/short.npy"], "atoms of dimension 8"),
])
def test_encode_command_bad_input(tmp_path, capsys, planted_codes, options, problem):
    np.save(tmp_path / "short.npy", np.eye(8, dtype=np.float32))
    before = files_in(tmp_path)
    options = [o.format(tmp=tmp_path) for o in options]
    argv = ["encode", str(tmp_path / "X.npy"), "--dictionary", str(tmp_path / "D.npy"),
            "-o", str(tmp_path / "codes.npz"), *options]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("latentcore: error: ") and err.count("\n") == 1
    assert problem.format(tmp=tmp_path) in err
    assert files_in(tmp_path) == before


# ------------------------------------------------------------------ sae

SAE_OPTIONS = ["--latents", "64", "-k", "4", "--batch-size", "256", "--epochs", "2", "--seed", "0",
               "--threads", "2"]


@pytest.fixture
def sae_data(tmp_path, rng):
    X = rng.standard_normal((2000, 16)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    return X


def test_sae_command_saves_the_model_and_the_codes(tmp_path, capsys, sae_data):
    scipy_sparse = pytest.importorskip("scipy.sparse")
    X = sae_data
    model = tmp_path / "model.npz"
    assert main(["sae", str(tmp_path / "X.npy"), *SAE_OPTIONS, "-o", str(model),
                 "--codes", str(tmp_path / "codes.npz"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert files_in(tmp_path) == ["X.npy", "codes.npz", "model.npz"]
    sae = latentcore.TopKSAE.load(model)
    assert (sae.n_latents, sae.k, sae.n_epochs) == (64, 4, 2)
    assert sae.n_samples_seen_ == 2 * X.shape[0]
    codes = scipy_sparse.load_npz(tmp_path / "codes.npz")
    assert codes.shape == (2000, 64)
    assert_same_sparse(codes, sae.encode(X))
    # The command trains what the library trains with the same settings.
    reference = latentcore.TopKSAE(64, 4, batch_size=256, n_epochs=2, random_state=0, n_jobs=2)
    reference.fit(tmp_path / "X.npy")
    np.testing.assert_array_equal(sae.decoder_, reference.decoder_)


def test_sae_command_safetensors_and_summary(tmp_path, capsys, sae_data):
    model = tmp_path / "model.safetensors"
    assert main(["sae", str(tmp_path / "X.npy"), *SAE_OPTIONS, "--activation", "batchtopk",
                 "-o", str(model)]) == 0
    err = capsys.readouterr().err
    summary = err.strip().splitlines()[-1]
    assert summary.startswith("sae: 2000 samples x 16 dims, 64 latents, batchtopk k=4, 16 steps: FVU ")
    assert "mean L0 " in summary and "dead " in summary
    sae = latentcore.TopKSAE.load(model)
    reference = latentcore.TopKSAE(64, 4, activation="batchtopk", batch_size=256, n_epochs=2,
                                   random_state=0, n_jobs=2).fit(tmp_path / "X.npy")
    np.testing.assert_array_equal(sae.decoder_, reference.decoder_)
    assert sae.activation == "batchtopk" and sae.threshold_ == reference.threshold_
    history = reference.history_
    assert (f"FVU {history['fvu'][-1]:.4f}, mean L0 {history['l0'][-1]:.1f}, "
            f"dead {history['dead'][-1]:.3f}:") in summary


def test_sae_command_reads_other_formats_into_memory(tmp_path, capsys, sae_data):
    """An .npz (here with --key) is read whole and trained on in memory, as an array."""
    scipy_sparse = pytest.importorskip("scipy.sparse")
    X = sae_data
    np.savez(tmp_path / "both.npz", X=X, labels=np.arange(X.shape[0]))
    assert main(["sae", str(tmp_path / "both.npz"), "--key", "X", *SAE_OPTIONS,
                 "-o", str(tmp_path / "model.npz"), "--codes", str(tmp_path / "codes.npz"),
                 "--quiet"]) == 0
    reference = latentcore.TopKSAE(64, 4, batch_size=256, n_epochs=2, random_state=0, n_jobs=2).fit(X)
    np.testing.assert_array_equal(latentcore.TopKSAE.load(tmp_path / "model.npz").decoder_,
                                  reference.decoder_)
    assert_same_sparse(scipy_sparse.load_npz(tmp_path / "codes.npz"), reference.encode(X))


def test_help_lists_the_encode_and_sae_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "encode    sparse codes" in out and "sae       train a TopK sparse autoencoder" in out


@pytest.mark.parametrize("options, problem", [
    (["-o", "{tmp}/model.pt"], "-o {tmp}/model.pt: the model is saved as .npz or .safetensors, not '.pt'"),
    (["--codes", "{tmp}/codes.csv"], "--codes {tmp}/codes.csv: sparse codes are saved as .npz"),
    (["-o", "{tmp}/X.npy"], "the model is saved as .npz or .safetensors"),
    (["--codes", "{tmp}/model.npz"], "are the same file"),
    (["-k", "65"], "k=65 exceeds n_latents=64"),
    (["--key", "X"], "applies only to .npz"),
])
def test_sae_command_bad_input_fails_before_training(tmp_path, capsys, monkeypatch, sae_data,
                                                     options, problem):
    def no_training(*args, **kwargs):
        raise AssertionError("trained despite a bad argument")

    monkeypatch.setattr(latentcore.TopKSAE, "_train", no_training)
    before = files_in(tmp_path)
    options = [o.format(tmp=tmp_path) for o in options]
    argv = ["sae", str(tmp_path / "X.npy"), *SAE_OPTIONS, "-o", str(tmp_path / "model.npz"), *options]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("latentcore: error: ") and err.count("\n") == 1
    assert problem.format(tmp=tmp_path) in err
    assert files_in(tmp_path) == before


# ------------------------------------------------------------------ no output replaces an input

@pytest.fixture
def inputs(tmp_path, rng):
    """One input file of each kind the commands read; returns their names."""
    X = rng.standard_normal((40, 4)).astype(np.float32)
    D = rng.standard_normal((8, 4)).astype(np.float32)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    np.save(tmp_path / "X.npy", X)
    np.savez(tmp_path / "in.npz", X=X)
    np.save(tmp_path / "D.npy", D)
    np.savez(tmp_path / "D.npz", D=D)
    (tmp_path / "g.txt").write_text("0 1\n1 2\n2 0\n")
    labels = np.arange(40) % 3
    np.save(tmp_path / "y.npy", labels)
    (tmp_path / "lab.csv").write_text("".join(f"{v}\n" for v in labels))
    (tmp_path / "sub").mkdir()
    return tmp_path


def snapshot(directory):
    """Every entry (recursively): its kind and, for files, its bytes."""
    return {str(p.relative_to(directory)): ("link", os.readlink(p)) if p.is_symlink() else
            ("dir", None) if p.is_dir() else ("file", p.read_bytes())
            for p in sorted(directory.rglob("*"))}


def same_file_as(kind, tmp_path, victim):
    """An output path that is the input ``victim`` under another guise."""
    target = tmp_path / victim
    if kind == "same":
        return target
    if kind == "dotdot":
        return tmp_path / "sub" / ".." / victim
    alias = tmp_path / f"alias{target.suffix}"
    if kind == "symlink":
        alias.symlink_to(target)
    elif kind == "relative symlink":
        alias.symlink_to(victim)
    else:
        os.link(target, alias)
    return alias


REPLACING = [
    # argv, {out} being the input named last under another guise; the flag the error must name
    (["knn", "{tmp}/in.npz", "-k", "2", "-o", "{out}"], "-o", "in.npz"),
    (["map", "{tmp}/X.npy", "-o", "{tmp}/m.png", "--coords", "{out}"], "--coords", "X.npy"),
    (["map", "{tmp}/X.npy", "--labels", "{tmp}/lab.csv", "-o", "{tmp}/m.png", "--coords", "{out}"],
     "--coords", "lab.csv"),
    (["walks", "{tmp}/g.txt", "-o", "{out}", "--quiet"], "-o", "g.txt"),
    (["encode", "{tmp}/X.npy", "--dictionary", "{tmp}/D.npz", "-o", "{out}"], "-o", "D.npz"),
    (["encode", "{tmp}/in.npz", "--dictionary", "{tmp}/D.npy", "-o", "{out}"], "-o", "in.npz"),
    (["sae", "{tmp}/in.npz", "--latents", "8", "-k", "2", "-o", "{out}"], "-o", "in.npz"),
    (["sae", "{tmp}/in.npz", "--latents", "8", "-k", "2", "-o", "{tmp}/model.npz", "--codes", "{out}"],
     "--codes", "in.npz"),
]


@pytest.mark.parametrize("how", ["same", "dotdot", "symlink", "relative symlink", "hard link"])
@pytest.mark.parametrize("argv, flag, victim", REPLACING, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_no_output_replaces_an_input(inputs, capsys, monkeypatch, argv, flag, victim, how):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(latentcore.TopKSAE, "_train", lambda *a, **k: pytest.fail("trained"))
    tmp_path = inputs
    out = same_file_as(how, tmp_path, victim)
    before = snapshot(tmp_path)
    assert main([a.format(tmp=tmp_path, out=out) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("latentcore: error: ") and err.count("\n") == 1
    assert f"{flag} {out}" in err and "would replace the input" in err and victim in err
    assert snapshot(tmp_path) == before  # the input intact, a link still a link, nothing new


def test_map_default_coordinates_never_replace_the_labels(inputs, capsys):
    """-o y.png puts the coordinates in y.npy: the labels file, also through a link."""
    pytest.importorskip("matplotlib")
    tmp_path = inputs
    (tmp_path / "alias.npy").symlink_to(tmp_path / "y.npy")
    before = snapshot(tmp_path)
    for image in ("y.png", "alias.png"):
        assert main(["map", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy"),
                     "-o", str(tmp_path / image)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--coords (default: -o as .npy)" in err
        assert f"would replace the input --labels {tmp_path / 'y.npy'}" in err
    assert snapshot(tmp_path) == before


def test_outputs_are_written_through_symlinks(inputs, capsys):
    tmp_path = inputs
    results = tmp_path / "results"
    results.mkdir()
    (tmp_path / "graph.npz").symlink_to(results / "graph.npz")  # dangling: created through it
    assert main(["knn", str(tmp_path / "X.npy"), "-k", "3", "-o", str(tmp_path / "graph.npz")]) == 0
    assert (tmp_path / "graph.npz").is_symlink() and (results / "graph.npz").is_file()
    with np.load(results / "graph.npz") as result:
        np.testing.assert_array_equal(result["indices"], latentcore.knn(np.load(tmp_path / "X.npy"), 3)[0])
    assert main(["knn", str(tmp_path / "X.npy"), "-k", "4", "-o", str(tmp_path / "graph.npz")]) == 0
    assert (tmp_path / "graph.npz").is_symlink()  # replaced through the link again
    with np.load(tmp_path / "graph.npz") as result:
        assert result["indices"].shape == (40, 4)
    assert files_in(results) == ["graph.npz"]


# ------------------------------------------------------------------ every error: one line naming the flag

BAD_FLAGS = [
    (["knn", "{X}", "-o", "{o}.npz", "-k", "0"], "-k must be >= 1"),
    (["knn", "{X}", "-o", "{o}.npz", "-k", "-3"], "-k must be >= 1"),
    (["knn", "{X}", "-o", "{o}.npz", "-k", "99999999999"], "-k must be <="),
    (["knn", "{X}", "-o", "{o}.npz", "--threads", "0"], "--threads must be >= 1"),
    (["knn", "{X}", "-o", "{o}.npz", "-k", "many"], "argument -k: invalid int value: 'many'"),
    (["knn", "{X}"], "the following arguments are required: -o"),
    (["knn", "{X}", "-o", "{o}.npz", "--metric", "manhattan"], "argument --metric: invalid choice"),
    (["map", "{X}", "-o", "{o}.png", "--seed", "-1"], "--seed must be >= 0"),
    (["map", "{X}", "-o", "{o}.png", "--perplexity", "nan"], "--perplexity: perplexity=nan must be positive"),
    (["map", "{X}", "-o", "{o}.png", "--perplexity", "inf"], "--perplexity: perplexity=inf must be positive"),
    (["map", "{X}", "-o", "{o}.png", "--perplexity", "-5"], "--perplexity: perplexity=-5.0 must be positive"),
    (["map", "{X}", "-o", "{o}.png", "--dims", "4"], "argument --dims: invalid choice: 4"),
    (["walks", "{g}", "-o", "{o}.npy", "--p", "nan"], "--p must be a finite number"),
    (["walks", "{g}", "-o", "{o}.npy", "--q", "-1"], "--q must be > 0"),
    (["walks", "{g}", "-o", "{o}.npy", "--walk-length", "1"], "--walk-length must be >= 2"),
    (["walks", "{g}", "-o", "{o}.npy", "--walks-per-node", "0"], "--walks-per-node must be >= 1"),
    (["walks", "{g}", "-o", "{o}.npy", "--negative", "0"], "--negative must be >= 1"),
    (["walks", "{g}", "-o", "{o}.npy", "--epochs", "0"], "--epochs must be >= 1"),
    (["walks", "{g}", "-o", "{o}.npy", "--seed", "-1"], "--seed must be >= 0"),
    (["walks", "{g}", "-o", "{o}.npy", "--seed", str(2**64)], "--seed must be <="),
    (["encode", "{X}", "--dictionary", "{D}", "-o", "{o}.npz", "--method", "lasso", "--alpha", "-1"],
     "--alpha must be >= 0"),
    (["encode", "{X}", "--dictionary", "{D}", "-o", "{o}.npz", "--tol", "nan"], "--tol must be a finite number"),
    (["encode", "{X}", "--dictionary", "{D}", "-o", "{o}.npz", "-k", "0"], "-k must be >= 1"),
    (["sae", "{X}", "--latents", "0", "-k", "1", "-o", "{o}.npz"], "--latents must be >= 1"),
    (["sae", "{X}", "--latents", "8", "-k", "0", "-o", "{o}.npz"], "-k must be >= 1"),
    (["sae", "{X}", "--latents", "8", "-k", "1", "-o", "{o}.npz", "--lr", "nan"], "--lr must be a finite number"),
    (["sae", "{X}", "--latents", "8", "-k", "1", "-o", "{o}.npz", "--lr", "0"], "--lr must be > 0"),
    (["sae", "{X}", "--latents", "8", "-k", "1", "-o", "{o}.npz", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["sae", "{X}", "--latents", "8", "-k", "1", "-o", "{o}.npz", "--epochs", "-2"], "--epochs must be >= 1"),
    (["demo", "--out", "{o}", "--threads", "0"], "--threads must be >= 1"),
]


@pytest.mark.parametrize("argv, problem", BAD_FLAGS, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_flags_fail_in_one_line_naming_the_flag(inputs, capsys, argv, problem):
    tmp_path = inputs
    before = snapshot(tmp_path)
    names = dict(X=tmp_path / "X.npy", g=tmp_path / "g.txt", D=tmp_path / "D.npy", o=tmp_path / "out")
    assert main([a.format(**names) for a in argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("latentcore: error: ") and captured.err.count("\n") == 1
    assert problem in captured.err and "Traceback" not in captured.err
    assert snapshot(tmp_path) == before


def test_corrupt_input_is_one_line_without_traceback_in_a_subprocess(tmp_path):
    """One flipped bit in an .npy header made numpy raise tokenize.TokenError:
    the command printed a traceback."""
    path = tmp_path / "flipped.npy"
    np.save(path, np.zeros((10, 3), np.float32))
    data = bytearray(path.read_bytes())
    data[10] ^= 1 << 6  # '{' -> ';'
    path.write_bytes(bytes(data))
    for argv in (["knn", str(path), "-o", str(tmp_path / "o.npz")],
                 ["walks", str(tmp_path / "g.txt"), "-o", str(tmp_path / "e.npy")]):
        (tmp_path / "g.txt").write_text("1 2\n3 a b c\n")
        failed = subprocess.run([sys.executable, "-m", "latentcore.cli", *argv], capture_output=True, text=True)
        assert failed.returncode == 2 and "Traceback" not in failed.stderr
        assert failed.stderr.startswith("latentcore: error: ") and failed.stderr.count("\n") == 1
        assert str(tmp_path) in failed.stderr
    assert files_in(tmp_path) == ["flipped.npy", "g.txt"]


def test_unwritable_outputs_fail_before_the_work(inputs, capsys):
    tmp_path = inputs
    (tmp_path / "loop_a.npz").symlink_to(tmp_path / "loop_b.npz")
    (tmp_path / "loop_b.npz").symlink_to(tmp_path / "loop_a.npz")
    (tmp_path / "to_sub.npz").symlink_to(tmp_path / "sub")
    (tmp_path / "astray.npz").symlink_to(tmp_path / "missing" / "x.npz")
    before = snapshot(tmp_path)
    for output, problem in [("loop_a.npz", "its symbolic links form a loop"), ("to_sub.npz", "it is a directory"),
                            ("astray.npz", "does not exist"), ("sub", "it is a directory")]:
        assert main(["knn", str(tmp_path / "X.npy"), "-k", "2", "-o", str(tmp_path / output)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"latentcore: error: -o ") and err.count("\n") == 1 and problem in err
    assert snapshot(tmp_path) == before
