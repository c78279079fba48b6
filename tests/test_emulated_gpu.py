"""The GPU code path of every area, run on the CPU (tests/emulated_gpu.py):
chunking, placement, hand-back and the torch wrapping, compared with the CPU
path on the same data. The CUDA kernels themselves are tested by the
*_cuda.py files on a GPU; here the C++ kernels stand behind their signatures."""

import importlib

import numpy as np
import pytest
import scipy.sparse

import latentcore
from latentcore import _device, sgns
from emulated_gpu import EmulatedCudaModule, GpuArray, emulated_gpu, on_gpu, to_gpu

knn_module = importlib.import_module("latentcore.knn")  # the package's knn is the function


@pytest.fixture
def gpu():
    with on_gpu(emulated_gpu()) as device:
        yield device


@pytest.fixture
def gpu_one_thread():
    """Skip-gram's Hogwild updates agree bit for bit with the CPU's only on one thread."""
    with on_gpu(emulated_gpu(n_threads=1)) as device:
        yield device


@pytest.fixture
def rng():
    return np.random.default_rng(20261129)


def clusters(rng, n=3000, d=12, k=8):
    centres = rng.standard_normal((k, d)) * 4.0
    return (centres[rng.integers(0, k, n)] + rng.standard_normal((n, d))).astype(np.float32)


def test_gpu_arrays_are_located_and_handed_back(gpu, rng):
    X = to_gpu(rng.standard_normal((10, 3), dtype=np.float32))
    assert _device.locate(X) == "cuda" and _device.locate(np.asarray(X).copy()) == "cpu"
    x, device, give_back = _device.prepare(X)
    assert device is gpu and isinstance(x, GpuArray)
    assert isinstance(_device.to_host(x), np.ndarray) and not isinstance(_device.to_host(x), GpuArray)
    with pytest.raises(ValueError, match="device"):
        _device.prepare(X, device="tpu")


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "inner_product"])
def test_knn_tiles_match_the_cpu(gpu, rng, monkeypatch, metric):
    # Small tiles: several row and column blocks, as a large input has on a GPU.
    monkeypatch.setattr(knn_module, "_GPU_ROWS", 300)
    monkeypatch.setattr(EmulatedCudaModule, "SORT_CAPACITY", 600)
    X = clusters(rng, n=1500)
    Q = clusters(rng, n=200)
    for queries in (None, Q):
        cpu = latentcore.knn(X, 10, queries=queries, metric=metric)
        on_gpu_ = latentcore.knn(to_gpu(X), 10, queries=None if queries is None else to_gpu(queries), metric=metric)
        forced = latentcore.knn(X, 10, queries=queries, metric=metric, device="cuda")
        for result in (on_gpu_, forced):
            assert all(isinstance(a, GpuArray) for a in result)
            np.testing.assert_allclose(result[1], cpu[1], rtol=1e-6, atol=1e-6)
            # The GPU sorts float32 distances, the CPU doubles: they may order
            # a float32 tie differently, and nothing else.
            differ = result[0] != cpu[0]
            assert differ.mean() < 1e-3
            np.testing.assert_array_equal(result[1][differ], cpu[1][differ])


def test_knn_refuses_mixed_devices_and_large_k(gpu, rng):
    X = clusters(rng, n=200)
    with pytest.raises(ValueError, match="one device"):
        latentcore.knn(to_gpu(X), 5, queries=X)
    X = clusters(rng, n=1100)
    with pytest.raises(ValueError, match="1024"):
        latentcore.knn(to_gpu(X), 1025)


def test_torch_tensors_come_back_as_tensors(gpu, rng):
    torch = pytest.importorskip("torch")
    X = clusters(rng, n=400)
    idx, dist = latentcore.knn(torch.from_numpy(X), 5, device="cuda")
    assert isinstance(idx, torch.Tensor) and isinstance(dist, torch.Tensor)
    np.testing.assert_array_equal(idx.numpy(), latentcore.knn(X, 5)[0])


@pytest.mark.parametrize("positive", [True, False])
def test_topk_encoding_splits_rows_and_matches_the_cpu(gpu, rng, monkeypatch, positive):
    # A tile budget of 64 x atoms products: many row blocks (issue 13, GPU defect 2).
    monkeypatch.setattr(knn_module, "_GPU_TILE_ENTRIES", 64 * 200)
    X = rng.standard_normal((1000, 24)).astype(np.float32)
    D = rng.standard_normal((200, 24))
    cpu = latentcore.sparse_encode(X, D, method="topk", n_nonzero=6, positive=positive, normalize=True)
    codes = latentcore.sparse_encode(to_gpu(X), D, method="topk", n_nonzero=6, positive=positive, normalize=True)
    assert isinstance(codes, scipy.sparse.csr_matrix)  # cupyx's type on a GPU
    np.testing.assert_array_equal(codes.indices, cpu.indices)
    np.testing.assert_allclose(codes.toarray(), cpu.toarray(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["omp", "lasso"])
def test_host_methods_hand_codes_back_to_the_gpu(gpu, rng, method):
    X = rng.standard_normal((300, 16)).astype(np.float32)
    D = rng.standard_normal((40, 16))
    options = dict(method=method, normalize=True, n_nonzero=4) if method == "omp" else \
        dict(method=method, normalize=True, alpha=0.1)
    codes = latentcore.sparse_encode(to_gpu(X), D, **options)
    assert isinstance(codes, scipy.sparse.csr_matrix)
    np.testing.assert_array_equal(codes.toarray(), latentcore.sparse_encode(X, D, **options).toarray())


def test_tsne_runs_its_gradient_on_the_gpu_path(gpu, rng):
    X = clusters(rng, n=600)
    options = dict(n_iter=120, random_state=0, n_jobs=2, perplexity=20)
    cpu = latentcore.TSNE(**options).fit(X)
    model = latentcore.TSNE(**options)
    Y = model.fit_transform(to_gpu(X))
    assert isinstance(Y, GpuArray) and Y.shape == (600, 2)
    # The GPU path convolves in double precision, the CPU in single: close, not equal.
    assert model.kl_divergence_ == pytest.approx(cpu.kl_divergence_, rel=0.02)
    new = model.transform(to_gpu(X[:20]))  # GPU defect 3: new points from the GPU
    assert isinstance(new, GpuArray) and new.shape == (20, 2)
    np.testing.assert_allclose(new, model.transform(X[:20]), rtol=1e-6)


def test_exact_repulsion_on_the_gpu_path_matches_the_kernel(gpu, rng):
    from latentcore.tsne import _ExactRepulsion

    reference, points = rng.standard_normal((300, 2)), rng.standard_normal((50, 2))
    on_cpu = _ExactRepulsion(1.0, _device.cpu(2)).exact_against(reference, points)
    on_gpu_ = _ExactRepulsion(1.0, gpu).exact_against(to_gpu(reference), to_gpu(points))
    for a, b in zip(on_gpu_, on_cpu):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_walks_and_skipgram_match_the_cpu(gpu_one_thread, monkeypatch):
    nx = pytest.importorskip("networkx")
    G = nx.karate_club_graph()
    monkeypatch.setitem(sgns.WALKS_PER_CHUNK, "cuda", 50)  # several chunks
    cpu_walks = latentcore.random_walks(G, walk_length=12, p=0.5, q=2.0, random_state=3)
    walks = latentcore.random_walks(G, walk_length=12, p=0.5, q=2.0, random_state=3, device="cuda")
    assert isinstance(walks, GpuArray)
    np.testing.assert_array_equal(walks, cpu_walks)  # the same walks, bit for bit
    options = dict(dim=8, window=3, random_state=0)
    vectors = latentcore.skipgram(to_gpu(cpu_walks), **options)
    assert isinstance(vectors, GpuArray)
    np.testing.assert_array_equal(vectors, latentcore.skipgram(cpu_walks, deterministic=True, **options))


def test_node2vec_trains_in_chunks_on_the_gpu_path(gpu_one_thread, monkeypatch):
    nx = pytest.importorskip("networkx")
    G = nx.karate_club_graph()
    monkeypatch.setitem(sgns.WALKS_PER_CHUNK, "cuda", 64)
    options = dict(dim=8, walk_length=10, walks_per_node=4, window=3, random_state=1)
    model = latentcore.Node2Vec(device="cuda", **options).fit(G)
    cpu = latentcore.Node2Vec(deterministic=True, **options).fit(G)
    np.testing.assert_array_equal(_device.to_host(model.embedding_), cpu.embedding_)
    assert model.n_tokens_ == cpu.n_tokens_
    with pytest.raises(ValueError, match="deterministic"):
        latentcore.Node2Vec(device="cuda", deterministic=True, **options).fit(G)


def test_topk_sae_trains_encodes_and_decodes_on_the_gpu_path(gpu, rng):
    X = rng.standard_normal((2048, 16)).astype(np.float32)
    options = dict(n_latents=64, k=4, batch_size=256, n_epochs=1, random_state=0, n_jobs=2, shuffle=False)
    cpu = latentcore.TopKSAE(**options).fit(X)
    model = latentcore.TopKSAE(**options).fit(to_gpu(X))
    assert isinstance(model.decoder_, np.ndarray) and not isinstance(model.decoder_, GpuArray)
    np.testing.assert_allclose(model.history_["fvu"], cpu.history_["fvu"], rtol=1e-4)
    codes = model.encode(to_gpu(X[:100]))
    assert isinstance(codes, scipy.sparse.csr_matrix)
    assert codes.getnnz(axis=1).max() <= 4
    decoded = model.decode(to_gpu(codes.toarray()))
    assert isinstance(decoded, GpuArray)  # GPU defect 4: decoded where the codes live
    np.testing.assert_allclose(decoded, model.decode(scipy.sparse.csr_array(codes)), rtol=1e-5, atol=1e-5)


def test_topk_sae_decodes_torch_codes_on_the_gpu_path(gpu, rng):
    torch = pytest.importorskip("torch")
    X = rng.standard_normal((512, 8)).astype(np.float32)
    model = latentcore.TopKSAE(n_latents=32, k=3, batch_size=128, n_epochs=1, random_state=0).fit(X)
    dense = model.encode(X[:10]).toarray()
    decoded = model.decode(torch.from_numpy(dense))
    np.testing.assert_allclose(np.asarray(decoded), model.decode(dense), rtol=1e-6)
