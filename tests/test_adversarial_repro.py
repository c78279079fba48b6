"""The fourteen reproductions of issue 12, each exactly as the issue writes
it, each in its own process, each asserting the right behaviour: a clear
exception naming the argument (or file), or the right answer."""

import pytest

from test_adversarial import SANITIZED, isolated

# A fitted 64-latent TopKSAE saved as .npz and .safetensors, and a helper
# that rewrites one of them with its metadata or tensors changed.
_SAE_FILES = '''
import json, tempfile
from pathlib import Path
from latentcore import TopKSAE

tmp = Path(tempfile.mkdtemp())
rng = np.random.default_rng(0)
X = rng.standard_normal((256, 8)).astype(np.float32)
sae = TopKSAE(64, 4, batch_size=64, random_state=0, n_jobs=2).fit(X)
reference_codes = sae.encode(X).toarray()


def tampered(suffix, edit_meta=None, edit_tensors=None, name="sae"):
    path = tmp / f"{name}{suffix}"
    sae.save(path)
    if suffix == ".npz":
        with np.load(path) as archive:
            arrays = {key: archive[key] for key in archive.files}
        meta = json.loads(str(arrays["metadata"]))
        if edit_meta:
            edit_meta(meta)
        if edit_tensors:
            edit_tensors(arrays)
        arrays["metadata"] = np.array(json.dumps(meta))
        with open(path, "wb") as f:
            np.savez(f, **arrays)
        return path
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + size])
    data = raw[8 + size:]
    meta = json.loads(header["__metadata__"]["latentcore"])
    if edit_meta:
        edit_meta(meta)
    header["__metadata__"]["latentcore"] = json.dumps(meta)
    if edit_tensors:
        edit_tensors(header)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return path


def load_and_encode_or_clear_error(path, words):
    """TopKSAE.load(path).encode(X): a ValueError/OSError naming the file (or
    one of words), or a model whose parameters agree with each other and
    whose codes are valid."""
    try:
        model = TopKSAE.load(path)
        codes = model.encode(X)
    except (ValueError, OSError) as exc:
        assert str(path) in str(exc) or path.name in str(exc) or names_one_of(exc, words), \\
            f"{type(exc).__name__} names neither {path.name} nor {words}: {exc}"
        return None
    n_latents = model.decoder_.shape[0]
    assert model.n_latents == n_latents == model.encoder_.shape[0] == model.encoder_bias_.shape[0]
    assert 1 <= model.k <= n_latents
    dense = codes.toarray()
    assert dense.shape == (X.shape[0], n_latents) and np.isfinite(dense).all()
    assert ((dense != 0).sum(axis=1) <= model.k).all()
    return dense
'''


def test_01_knn_overflowing_scores_give_the_true_neighbours():
    isolated('''
    from latentcore import knn
    from test_adversarial import check_knn_result

    X = np.array([[0.0], [3.0123408e19]], np.float32)
    idx, dist = knn(X, 1)
    assert idx.tolist() == [[1], [0]], idx.tolist()
    assert np.allclose(dist, np.float32(3.0123408e19), rtol=1e-6), dist
    check_knn_result(X, None, 1, "euclidean", True, idx, dist)

    X = np.array([[1e-40, 0], [1, 0], [0, 1], [1, 1]], np.float32)
    try:
        idx, dist = knn(X, 2, metric="cosine")
    except ValueError as exc:  # refusing the subnormal row as zero is acceptable, if said so
        assert "X" in str(exc), exc
    else:
        check_knn_result(X, None, 2, "cosine", True, idx, dist)
        # Row 3 is as far from the other three (up to rounding): any two of them.
        assert idx[:3].tolist() == [[1, 3], [0, 3], [3, 0]], idx.tolist()

    # t-SNE on such points: a map, or an error naming X -- never "neighbor index out of range".
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3)).astype(np.float32)
    X[0] = 3.0123408e19
    try:
        Y = latentcore.TSNE(perplexity=5, n_iter=30, random_state=0).fit_transform(X)
    except ValueError as exc:
        assert "X" in str(exc) and "neighbor index" not in str(exc), exc
    else:
        assert Y.shape == (40, 2) and np.isfinite(Y).all()
    ''')


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_02_crafted_topk_sae_file_is_refused(suffix):
    isolated(setup=_SAE_FILES, code=f'''
    suffix = {suffix!r}

    def n_latents_4(meta):
        meta["params"]["n_latents"] = 4

    dense = load_and_encode_or_clear_error(tampered(suffix, n_latents_4), ["n_latents"])
    if dense is not None:  # loaded after all: then it must be the saved model
        assert np.array_equal(dense, reference_codes)

    # More crafted variants of the same kind: k beyond the latents, tensors
    # that disagree with each other.
    def k_1000(meta):
        meta["params"]["k"] = 1000

    load_and_encode_or_clear_error(tampered(suffix, k_1000, name="k"), ["k"])
    if suffix == ".npz":
        for name, edit in [("decoder", lambda a: a.update(decoder=a["decoder"][:32])),
                           ("pre_bias", lambda a: a.update(pre_bias=a["pre_bias"][:5])),
                           ("encoder_bias", lambda a: a.update(encoder_bias=a["encoder_bias"][:3])),
                           ("encoder", lambda a: a.update(encoder=a["encoder"][:, :7].copy()))]:
            case(name)
            load_and_encode_or_clear_error(tampered(suffix, edit_tensors=edit, name=name), [name, "shape"])
    else:
        def short_decoder(header):
            header["decoder"]["shape"] = [32, 8]

        def offsets_past_end(header):
            header["pre_bias"]["data_offsets"] = [0, 10 ** 9]

        for name, edit in [("decoder", short_decoder), ("offsets", offsets_past_end)]:
            case(name)
            load_and_encode_or_clear_error(tampered(suffix, edit_tensors=edit, name=name), [name, "shape", "offset"])
    ''')


def test_03_tsne_refuses_affinities_with_column_indices_out_of_range():
    isolated('''
    from latentcore import TSNE
    rng = np.random.default_rng(0)

    def affinities(n):
        A = scipy.sparse.random_array((n, n), density=0.1, rng=rng, format="csr")
        return scipy.sparse.csr_array(A + A.T)

    for n, bad in [(100, 100), (20, 99), (100, -1), (100, 2**31 - 1)]:
        P = affinities(n)
        P.indices[5] = bad
        case(n, bad)
        expect_error(lambda: TSNE().fit_transform(P), ["index", "indices", "column"])
    ''')


@pytest.mark.parametrize("kwargs", ["window=2**30", "negative=2**28"])
def test_04_skipgram_with_a_huge_window_or_negative_count(kwargs):
    if SANITIZED and "negative" in kwargs:
        pytest.skip("a correct answer may allocate gigabytes, bounded here by RLIMIT_AS, which ASan cannot run under")
    isolated(f'''
    from latentcore import skipgram
    if not SANITIZED:
        limit_address_space(3000)
    guard_memory(3000)
    walks = np.array([[0, 1, 2, 1]], np.int32)
    try:
        V = skipgram(walks, dim=8, {kwargs})
    except (ValueError, TypeError) as exc:
        assert names_one_of(exc, ["window", "negative"]), exc
    except MemoryError:
        pass
    else:
        assert V.shape == (3, 8) and V.dtype == np.float32 and np.isfinite(V).all()
    ''', timeout=180)


def test_05_bad_alloc_in_a_parallel_region_is_a_memory_error():
    if SANITIZED:
        pytest.skip("needs RLIMIT_AS, which ASan cannot run under (ASan reports the failed allocation instead)")
    isolated('''
    from latentcore import sparse_encode
    rng = np.random.default_rng(0)
    D = rng.standard_normal((8000, 16)).astype(np.float32)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.standard_normal((64, 16)).astype(np.float32)
    # The Gram matrix (512 MB) fits; n_atoms^2 doubles per thread besides do not.
    limit_address_space(1400)
    try:
        codes = sparse_encode(X, D, tol=1e-3, n_jobs=2)
    except MemoryError:
        pass
    else:
        assert codes.shape == (64, 8000) and np.isfinite(codes.data).all()
        residual = ((X.astype(np.float64) - codes @ D.astype(np.float64)) ** 2).sum(axis=1)
        assert (residual <= 1e-3 * 1.01 + 1e-6).all() or ((codes != 0).sum(axis=1) >= 16).all()
    ''', timeout=180)


def test_06_node2vec_walks_with_extreme_p_and_q_end():
    isolated('''
    from latentcore import random_walks
    from test_adversarial import check_walks
    G = scipy.sparse.csr_array([[0, 1.], [1, 0]])
    t0 = time.perf_counter()
    walks = random_walks(G, 4, 1, p=1e15)
    assert walks.tolist() == [[0, 1, 0, 1], [1, 0, 1, 0]], walks.tolist()
    assert time.perf_counter() - t0 < 10
    # A triangle with a tail: every p, q from 1e-15 to 1e15 gives valid walks, quickly.
    A = np.zeros((5, 5))
    for a, b in [(0, 1), (1, 2), (2, 0), (2, 3), (3, 4)]:
        A[a, b] = A[b, a] = 1.0
    for p in (1e-15, 1e-7, 1.0, 1e7, 1e15):
        for q in (1e-15, 1e-7, 1.0, 1e7, 1e15):
            case(p, q)
            t0 = time.perf_counter()
            W = random_walks(scipy.sparse.csr_array(A), 20, 20, p=p, q=q, random_state=0)
            check_walks(W, A, 20, 20)
            assert time.perf_counter() - t0 < 5, f"p={p}, q={q} took {time.perf_counter() - t0:.1f} s"
    ''', timeout=60)


_INTERRUPT = '''
from conftest import assert_interruptible
rng = np.random.default_rng(0)
within = 3.0 if SANITIZED else 1.0
'''


def test_07_ctrl_c_stops_omp_within_a_second():
    isolated(setup=_INTERRUPT, code='''
    from latentcore import sparse_encode
    D = rng.standard_normal((2048, 256)).astype(np.float32)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.standard_normal((3000, 256)).astype(np.float32)
    assert_interruptible(lambda: sparse_encode(X, D, n_nonzero=64, n_jobs=2), delay=0.5, within=within)
    ''', timeout=240)


def test_07_ctrl_c_stops_lasso_within_a_second():
    isolated(setup=_INTERRUPT, code='''
    from latentcore import sparse_encode
    D = rng.standard_normal((512, 128)).astype(np.float32)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.standard_normal((40, 128)).astype(np.float32)  # ~0.1 s per signal: converges slowly
    # Coordinate descent from a warm start (the homotopy is fast here; its
    # own Ctrl-C test is in test_sparse_lasso.py).
    init = np.zeros((40, 512), np.float32)
    assert_interruptible(lambda: sparse_encode(X, D, method="lasso", alpha=1e-4, tol=1e-12, max_iter=5000,
                                               init=init, n_jobs=2), delay=0.5, within=within)
    ''', timeout=240)


def test_07_ctrl_c_stops_node2vec_within_a_second():
    isolated(setup=_INTERRUPT, code='''
    from latentcore import Node2Vec
    G = scipy.sparse.random_array((250, 250), density=0.03, rng=rng, format="csr")
    G = scipy.sparse.csr_array(G + G.T)
    model = Node2Vec(p=0.5, q=2.0, dim=512, window=20, walk_length=80, walks_per_node=10, n_jobs=2,
                     random_state=0)
    assert_interruptible(lambda: model.fit(G), delay=0.5, within=within)
    ''', timeout=240)


_CLI = '''
import contextlib, io, tempfile
from pathlib import Path
from latentcore.cli import main

tmp = Path(tempfile.mkdtemp())
rng = np.random.default_rng(0)


def run_cli(*argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main([str(a) for a in argv])
    return status, err.getvalue()


def unchanged_or_refused(protected, *argv):
    """The command must leave ``protected`` as it was; refusing is fine if it
    says why, naming the file, in one line (no traceback)."""
    before = protected.read_bytes()
    status, err = run_cli(*argv)
    assert protected.read_bytes() == before, f"{protected.name} was overwritten by {argv}"
    assert "Traceback" not in err, err
    if status != 0:
        assert protected.name in err, err
    return status, err
'''


def test_08_cli_never_overwrites_its_inputs():
    isolated(setup=_CLI, code='''
    X = rng.standard_normal((60, 5)).astype(np.float32)
    np.savez(tmp / "in.npz", X=X)
    (tmp / "sub").mkdir()
    for out in (tmp / "in.npz", tmp / "sub" / ".." / "in.npz"):
        case("knn", out)
        status, _ = unchanged_or_refused(tmp / "in.npz", "knn", tmp / "in.npz", "-k", 3, "-o", out)
        assert status != 0

    np.save(tmp / "X.npy", X)
    np.save(tmp / "y.npy", np.arange(60) % 3)
    case("map --labels y.npy -o y.png")
    unchanged_or_refused(tmp / "y.npy", "map", tmp / "X.npy", "--labels", tmp / "y.npy", "-o", tmp / "y.png",
                         "--perplexity", 5)
    (tmp / "lab.csv").write_text("".join(f"{i % 3}\\n" for i in range(60)))
    case("map --coords lab.csv --labels lab.csv")
    unchanged_or_refused(tmp / "lab.csv", "map", tmp / "X.npy", "--labels", tmp / "lab.csv", "--coords",
                         tmp / "lab.csv", "-o", tmp / "m.png", "--perplexity", 5)
    case("map --coords X.npy")
    unchanged_or_refused(tmp / "X.npy", "map", tmp / "X.npy", "--coords", tmp / "X.npy", "-o", tmp / "m2.png",
                         "--perplexity", 5)
    ''', timeout=180)


def test_09_walk_lengths_beyond_int32_are_refused_or_padded():
    isolated('''
    from latentcore import random_walks
    guard_memory(2500)  # a walk written out for real would be 16 GB: stop it here
    for length in (2**32 + 3, 2**31 + 5):
        case(length)
        try:
            walks = random_walks(scipy.sparse.csr_array((1, 1)), length, 1)
        except (ValueError, TypeError) as exc:
            assert "walk_length" in str(exc), exc
        except MemoryError:
            pass
        else:
            assert walks.shape == (1, length)
            assert walks[0, 0] == 0 and (walks[0, 1:9] == -1).all() and (walks[0, -8:] == -1).all(), \\
                (walks[0, :9], walks[0, -8:])
    ''', timeout=180)


def test_10_edge_list_with_a_name_among_numbers():
    isolated('''
    import tempfile
    from pathlib import Path
    from latentcore.io import read_edge_list
    tmp = Path(tempfile.mkdtemp())
    for text in ("1 2\\n3 a\\n", "1 2\\n3 4.5x\\n", "1 2 0.5\\n3 4 heavy\\n", "1,2\\n3,a\\n"):
        path = tmp / ("edges.csv" if "," in text else "edges.txt")
        path.write_text(text)
        case(repr(text))
        try:
            sources, targets, weights = read_edge_list(path)
        except ValueError as exc:
            assert str(path) in str(exc), exc
        else:  # names after all: every id read back as the string it was
            sep = "," if "," in text else None
            rows = [line.split(sep) for line in text.splitlines()]
            assert [str(s) for s in sources] == [r[0] for r in rows], sources
            assert [str(t) for t in targets] == [r[1] for r in rows], targets
    # And through a public function: random_walks on the file.
    path = tmp / "mixed.txt"
    path.write_text("1 2\\n3 a\\n")
    try:
        walks = latentcore.random_walks(path, 3, 1, random_state=0)
    except ValueError as exc:
        assert str(path) in str(exc), exc
    else:
        assert walks.shape == (4, 3)
    ''')


def test_11_readers_turn_every_failure_into_a_value_error_naming_the_file():
    isolated(setup=_SAE_FILES, code='''
    import zipfile
    from latentcore.io import read_matrix
    from latentcore.cli import main
    import contextlib, io

    def clear(fn, path):
        try:
            fn()
        except (ValueError, OSError) as exc:
            assert str(path) in str(exc) or path.name in str(exc), f"{type(exc).__name__} without the file: {exc}"
        except Exception as exc:
            raise AssertionError(f"{path.name}: leaked {type(exc).__name__}: {exc}") from exc

    # One flipped bit anywhere in an .npy header.
    good = tmp / "good.npy"
    np.save(good, np.arange(12, dtype=np.float32).reshape(3, 4))
    raw = good.read_bytes()
    header_end = 10 + int.from_bytes(raw[8:10], "little")
    bad = tmp / "flipped.npy"
    for byte in range(header_end):
        for bit in range(8):
            mutated = bytearray(raw)
            mutated[byte] ^= 1 << bit
            bad.write_bytes(bytes(mutated))
            case("npy", byte, bit)
            clear(lambda: read_matrix(bad), bad)

    # The command line prints one line, not a traceback.
    mutated = bytearray(raw)
    mutated[header_end - 30] ^= 0x20
    bad.write_bytes(bytes(mutated))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main(["knn", str(bad), "-o", str(tmp / "out.npz")])
        except Exception as exc:
            raise AssertionError(f"the CLI raised {type(exc).__name__}: {exc}") from exc
    assert "Traceback" not in err.getvalue(), err.getvalue()

    # A zip entry with an unsupported compression method (zipfile: NotImplementedError).
    npz = tmp / "method.npz"
    np.savez(npz, X=np.ones((2, 2), np.float32))
    data = bytearray(npz.read_bytes())
    for offset in range(len(data) - 4):
        if data[offset:offset + 4] in (b"PK\\x03\\x04", b"PK\\x01\\x02"):
            field = offset + (8 if data[offset + 2] == 3 else 10)
            data[field:field + 2] = (99).to_bytes(2, "little")
    npz.write_bytes(bytes(data))
    case("npz method 99")
    clear(lambda: read_matrix(npz), npz)

    # TopKSAE.load: a missing tensor (KeyError), bad parameters (TypeError),
    # a truncated archive (BadZipFile), a missing file (OSError), bad metadata.
    sae_path = tmp / "model.npz"
    sae.save(sae_path)
    with np.load(sae_path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    variants = {
        "no_decoder": {k: v for k, v in arrays.items() if k != "decoder"},
        "params_list": {**arrays, "metadata": np.array(json.dumps({"params": [], "threshold": 0}))},
        "unknown_param": {**arrays, "metadata": np.array(json.dumps(
            {**json.loads(str(arrays["metadata"])), "params": {"n_latents": 64, "k": 4, "colour": 1}}))},
        "not_json": {**arrays, "metadata": np.array("{not json")},
        "no_threshold": {**arrays, "metadata": np.array(json.dumps({"params": {"n_latents": 64, "k": 4}}))},
        "int_metadata": {**arrays, "metadata": np.array(3)},
    }
    for name, content in variants.items():
        path = tmp / f"{name}.npz"
        with open(path, "wb") as f:
            np.savez(f, **content)
        case("sae", name)
        clear(lambda: TopKSAE.load(path).encode(X), path)
    truncated = tmp / "truncated.npz"
    truncated.write_bytes(sae_path.read_bytes()[:200])
    case("sae truncated")
    clear(lambda: TopKSAE.load(truncated), truncated)
    case("sae missing")
    missing = tmp / "missing.safetensors"
    clear(lambda: TopKSAE.load(missing), missing)
    st_path = tmp / "model.safetensors"
    sae.save(st_path)
    raw = st_path.read_bytes()
    for name, content in {"huge_header": (10**12).to_bytes(8, "little") + raw[8:],
                          "bad_json": raw[:8] + b"{" + raw[9:],
                          "short": raw[:len(raw) // 2],
                          "empty": b""}.items():
        path = tmp / f"{name}.safetensors"
        path.write_bytes(content)
        case("safetensors", name)
        clear(lambda: TopKSAE.load(path).encode(X), path)
    ''')


def test_12_silent_wrong_results_are_errors_or_right():
    isolated('''
    import tempfile
    from pathlib import Path
    from latentcore import DictionaryLearning, Node2Vec, TSNE, sparse_encode
    from latentcore.io import read_word2vec, write_word2vec
    from latentcore.tsne import perplexity_affinities, uniform_affinities
    tmp = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)

    case("word2vec ids 1 and 01")
    path = tmp / "vectors.txt"
    path.write_text("2 2\\n1 0.1 0.2\\n01 0.3 0.4\\n")
    vectors, names = read_word2vec(path)
    assert len(set(names.tolist())) == 2, names
    model = Node2Vec.load(path)
    assert np.allclose(model.transform([names[1]]), [[0.3, 0.4]])
    assert np.allclose(model.transform([names[0]]), [[0.1, 0.2]])

    case("write_word2vec 2 names, 20 vectors")
    out = tmp / "short.txt"
    expect_error(lambda: write_word2vec(out, np.zeros((20, 3), np.float32), ["a", "b"]), ["names", "vectors"])
    assert not out.exists(), "a partial file was written"

    case("affinities with int64 id 2**32 + 1")
    idx = np.array([[1], [2**32 + 1], [1]], np.int64)
    dist = np.ones((3, 1), np.float32)
    expect_error(lambda: uniform_affinities(idx), ["indices"])
    expect_error(lambda: perplexity_affinities(idx, dist, 1.0), ["indices"])
    idx = np.array([[1], [2], [0]], np.int64)
    case("NaN distances")
    expect_error(lambda: perplexity_affinities(idx, np.array([[1.0], [np.nan], [1.0]], np.float32), 1.0),
                 ["distances"])
    case("negative perplexity")
    expect_error(lambda: perplexity_affinities(idx, dist, -1.0), ["perplexity"])
    case("float k-NN indices")
    expect_error(lambda: uniform_affinities(np.array([[1.7], [2.2], [0.9]])), ["indices"])
    expect_error(lambda: perplexity_affinities(np.array([[1.7], [2.2], [0.9]]), dist, 1.0), ["indices"])
    Xk = rng.standard_normal((30, 3)).astype(np.float32)
    knn_idx, knn_dist = latentcore.knn(Xk, 6)
    expect_error(lambda: TSNE(perplexity=2, n_iter=10).fit((knn_idx.astype(np.float64) + 0.4, knn_dist)),
                 ["indices"])

    case("sparse LASSO init with NaN")
    D = rng.standard_normal((6, 4)).astype(np.float32)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.standard_normal((3, 4)).astype(np.float32)
    init = scipy.sparse.csr_array(([np.nan], ([0], [0])), shape=(3, 6))
    expect_error(lambda: sparse_encode(X, D, method="lasso", alpha=0.1, init=init), ["init"])

    for name, value in [("exaggeration", -1.0), ("exaggeration", 0.0), ("early_exaggeration", 0.0),
                        ("early_exaggeration", -1.0), ("early_exaggeration", float("nan")),
                        ("ints_in_interval", 0.0), ("ints_in_interval", -1.0),
                        ("min_num_intervals", -2), ("momentum", (0.5, float("nan")))]:
        case("TSNE", name, value)
        expect_error(lambda: TSNE(perplexity=5, n_iter=20, **{name: value}).fit(Xk), [name])

    case("DictionaryLearning near 1e30")
    Xbig = (rng.standard_normal((64, 8)) * 1e30).astype(np.float32)
    try:
        dl = DictionaryLearning(8, n_nonzero=2, random_state=0).fit(Xbig)
    except ValueError as exc:
        assert "X" in str(exc) and "normalize" not in str(exc), exc
    else:
        assert np.isfinite(dl.components_).all()
        assert np.allclose(np.linalg.norm(dl.components_.astype(np.float64), axis=1), 1.0, atol=1e-3)
        codes = dl.transform(Xbig)
        assert np.isfinite(codes.data).all()

    case("numpy scalars as tol and alpha")
    a = sparse_encode(X, D, method="omp", tol=np.float32(0.5))
    b = sparse_encode(X, D, method="omp", tol=0.5)
    assert (a != b).nnz == 0
    a = sparse_encode(X, D, method="lasso", alpha=np.float32(0.25), tol=np.float64(1e-6))
    b = sparse_encode(X, D, method="lasso", alpha=float(np.float32(0.25)), tol=1e-6)
    assert (a != b).nnz == 0
    ''')


def test_13_walks_are_identical_for_any_thread_count_and_the_docs_say_what_is_true():
    isolated('''
    from latentcore import Node2Vec, random_walks, skipgram
    rng = np.random.default_rng(0)
    G = scipy.sparse.random_array((300, 300), density=0.03, rng=rng, format="csr")
    G = scipy.sparse.csr_array(G + G.T)
    for p, q in ((1.0, 1.0), (0.25, 4.0), (4.0, 0.25)):
        case(p, q)
        one = random_walks(G, 20, 2, p=p, q=q, random_state=7, n_jobs=1)
        two = random_walks(G, 20, 2, p=p, q=q, random_state=7, n_jobs=2)
        assert np.array_equal(one, two), "walks depend on the thread count"
    first = Node2Vec(0.5, 2.0, dim=16, walk_length=10, walks_per_node=2, random_state=3, n_jobs=1).fit(G)
    second = Node2Vec(0.5, 2.0, dim=16, walk_length=10, walks_per_node=2, random_state=3, n_jobs=1).fit(G)
    assert np.array_equal(first.embedding_, second.embedding_), "one thread, one seed: not reproducible"
    # Hogwild training with several threads differs far beyond "the last bits":
    # the documentation must not promise that.
    import inspect, re
    for doc in (skipgram.__doc__, Node2Vec.__doc__, latentcore.DeepWalk.__doc__, latentcore.sgns.__doc__):
        assert not re.search(r"(may|might|only|can) differ (only )?in the last bits", " ".join(doc.split())), doc
    # The deterministic mode, where offered, gives the same vectors for any thread count.
    if "deterministic" in inspect.signature(Node2Vec).parameters:
        kw = dict(dim=16, walk_length=10, walks_per_node=4, random_state=3, deterministic=True)
        one = Node2Vec(0.5, 2.0, n_jobs=1, **kw).fit(G).embedding_
        two = Node2Vec(0.5, 2.0, n_jobs=2, **kw).fit(G).embedding_
        assert np.array_equal(one, two), "deterministic=True differs between 1 and 2 threads"
    if "deterministic" in inspect.signature(skipgram).parameters:
        walks = random_walks(G, 10, 2, random_state=1)
        one = skipgram(walks, dim=8, random_state=2, n_jobs=1, deterministic=True)
        two = skipgram(walks, dim=8, random_state=2, n_jobs=2, deterministic=True)
        assert np.array_equal(one, two)
    ''')


def test_14_an_output_symlink_stays_a_symlink():
    isolated(setup=_SAE_FILES, code='''
    import os
    from latentcore import Node2Vec
    from latentcore.io import atomic_write, write_npz_atomic, write_word2vec

    def link_to(target_name, link_name, existing=True):
        target, link = tmp / target_name, tmp / link_name
        if existing:
            target.write_bytes(b"old")
        os.symlink(target, link)
        return target, link

    def written_through(write, target, link):
        try:
            write(link)
        except (ValueError, OSError) as exc:  # refusing is acceptable, if it says which file
            assert link.name in str(exc) or str(link) in str(exc), exc
            assert os.path.islink(link), "refused, but the link was replaced anyway"
            return False
        assert os.path.islink(link), f"{link.name} was replaced by a regular file"
        assert os.path.realpath(link) == str(target.resolve())
        assert target.read_bytes() != b"old", "the link's target was not written"
        return True

    for existing in (True, False):
        case("atomic_write", existing)
        target, link = link_to(f"t{existing}.bin", f"l{existing}.bin", existing)
        def write_bytes(path):
            with atomic_write(path) as f:
                f.write(b"new")
        if written_through(write_bytes, target, link):
            assert target.read_bytes() == b"new"

    case("write_npz_atomic")
    target, link = link_to("t.npz", "l.npz")
    if written_through(lambda p: write_npz_atomic(p, a=np.arange(3)), target, link):
        assert np.array_equal(np.load(target)["a"], np.arange(3))

    case("TopKSAE.save")
    for suffix in (".npz", ".safetensors"):
        target, link = link_to("sae_t" + suffix, "sae_l" + suffix)
        if written_through(sae.save, target, link):
            assert np.array_equal(TopKSAE.load(target).encode(X).toarray(), reference_codes)

    case("Node2Vec.save and write_word2vec")
    model = Node2Vec(dim=4, walk_length=5, walks_per_node=2, random_state=0, n_jobs=1).fit(
        scipy.sparse.csr_array(np.ones((4, 4)) - np.eye(4)))
    for suffix in (".npy", ".npz", ".txt"):
        target, link = link_to("n2v_t" + suffix, "n2v_l" + suffix)
        written_through(model.save, target, link)
    target, link = link_to("w2v_t.txt", "w2v_l.txt")
    written_through(lambda p: write_word2vec(p, np.ones((2, 2), np.float32), ["a", "b"]), target, link)

    case("CLI -o symlink")
    from latentcore.cli import main
    np.save(tmp / "points.npy", X[:50])
    target, link = link_to("knn_t.npz", "knn_l.npz")
    def cli(path):
        if main(["knn", str(tmp / "points.npy"), "-k", "3", "-o", str(path)]) != 0:
            raise OSError(f"the CLI refused {path}")
    written_through(cli, target, link)
    ''')
