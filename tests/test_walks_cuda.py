"""The CUDA walks and skip-gram against their C++ twins. GPU walks use the same
random streams and draws as the CPU, so they are equal bit for bit on fresh
random graphs; GPU skip-gram draws the CPU's subsampling coins, windows and
negatives, so one walk per launch retraces the one-thread CPU run up to
rounding, and the Hogwild run embeds a planted block structure as well as the
CPU does. Skipped without cupy or without a GPU."""

import numpy as np
import pytest
import scipy.sparse

from conftest import micro_f1, planted_blocks

import latentcore
from latentcore import _core, _device, sgns
from latentcore.sgns import alias_table, keep_probabilities
from latentcore.walks import as_csr_graph, row_maxima, row_totals

cp = pytest.importorskip("cupy")
pytestmark = pytest.mark.skipif(not _device.cuda_available(), reason="no CUDA device or no CUDA build")

P_IN, P_OUT = 0.04, 0.004
SGNS = dict(dim=32, window=5)
MIN_F1 = 0.9  # 5-fold micro-F1 of a logistic regression on the 10-block SBM
F1_VS_CPU = 0.02  # thousands of Hogwild warps against a few CPU threads: the same quality
# One walk per launch replays the one-thread CPU order exactly; only rounding
# differs (dot-product order, fused multiply-adds, expf within 2 ulp).
SEQUENTIAL_RTOL = 1e-4
SEQUENTIAL_ATOL = 1e-5
BIASES = [(1.0, 1.0), (0.5, 2.0), (0.25, 4.0)]  # DeepWalk and two node2vec settings
# Extreme settings: the folded return region, the exact fallback (huge q, huge p).
EXTREME_BIASES = [(1e-6, 1e9), (1e15, 1e-6), (0.1, 10.0), (1e15, 1.0)]
SMALL_CHUNK = 4096  # walks per launch in the equality tests, so several launches are compared


def cuda_module():
    return _device.require_cuda_module()


def stream():
    return cp.cuda.get_current_stream().ptr


def random_graph(rng, n, density, directed, isolated):
    """Weighted sparse graph: directed ones have sinks; `isolated` nodes lose every edge."""
    A = scipy.sparse.random_array((n, n), density=density, random_state=rng, format="csr")
    A.data = rng.uniform(0.1, 3.0, A.nnz)
    if not directed:
        A = A + A.T
    alone = rng.choice(n, size=isolated, replace=False)
    mask = scipy.sparse.diags_array(np.isin(np.arange(n), alone, invert=True).astype(float))
    return scipy.sparse.csr_matrix(mask @ A @ mask)


# (n, density, directed, isolated nodes, walk_length, walks_per_node); the last
# two make more walks than one chunk (SMALL_CHUNK), so first_walk > 0.
GRAPHS = [
    (1, 0.0, True, 0, 2, 3),
    (1, 1.0, True, 0, 2, 2),  # a self-loop
    (2, 0.5, True, 0, 2, 4),
    (2, 1.0, False, 1, 5, 3),
    (50, 0.1, True, 5, 2, 2),
    (300, 0.02, True, 10, 12, 3),
    (1000, 0.006, False, 20, 40, 2),
    (3000, 0.002, True, 30, 80, 7),
    (2500, 0.01, False, 0, 30, 8),
]


@pytest.mark.parametrize("p,q", BIASES)
@pytest.mark.parametrize("n,density,directed,isolated,walk_length,walks_per_node", GRAPHS)
def test_walks_equal_cpu(rng, monkeypatch, n, density, directed, isolated, walk_length, walks_per_node, p, q):
    import cupyx.scipy.sparse

    monkeypatch.setitem(sgns.WALKS_PER_CHUNK, "cuda", SMALL_CHUNK)
    A = random_graph(rng, n, density, directed, isolated)
    seed = int(rng.integers(0, 2**63))
    gpu = latentcore.random_walks(cupyx.scipy.sparse.csr_matrix(A), walk_length, walks_per_node, p, q,
                                  random_state=seed)
    cpu = latentcore.random_walks(A, walk_length, walks_per_node, p, q, random_state=seed)
    assert isinstance(gpu, cp.ndarray) and gpu.dtype == cp.int32
    np.testing.assert_array_equal(cp.asnumpy(gpu), cpu)


def test_device_argument_walks_a_host_graph_on_the_gpu(rng):
    A = random_graph(rng, 400, 0.02, True, 4)
    gpu = latentcore.random_walks(A, 20, 3, 0.5, 2.0, random_state=3, device="cuda")
    assert isinstance(gpu, cp.ndarray)
    cpu = latentcore.random_walks(A, 20, 3, 0.5, 2.0, random_state=3)
    np.testing.assert_array_equal(cp.asnumpy(gpu), cpu)


def host_tables(A):
    """The validated graph, its alias tables and row totals, as the Python layer makes them."""
    G, _ = as_csr_graph(A)
    indptr, indices = G.indptr.astype(np.int64), G.indices.astype(np.int32)
    keep, alias = np.empty(G.nnz, np.float32), np.empty(G.nnz, np.int32)
    _core.walks_build_alias(indptr, indices, G.data, keep, alias, 1)
    return indptr, indices, G.data, keep, alias, row_totals(G), row_maxima(G)


@pytest.mark.parametrize("p,q", BIASES + EXTREME_BIASES)
def test_kernel_equals_cpu_kernel_for_any_seed_and_offset(rng, p, q):
    tables = host_tables(random_graph(rng, 700, 0.01, True, 7))
    starts = rng.integers(0, 700, 5000).astype(np.int32)
    for seed, first in [(0, 0), (2**64 - 1, 10**12), (int(rng.integers(0, 2**63)), 2**63 + 5)]:
        cpu = np.empty((starts.size, 17), np.int32)
        _core.walks_sample(*tables, starts, p, q, seed, first, cpu, 2)
        gpu = cp.empty((starts.size, 17), cp.int32)
        cuda_module().walks_sample(*(cp.asarray(a) for a in tables), cp.asarray(starts), p, q, seed, first,
                                   gpu, stream())
        np.testing.assert_array_equal(cp.asnumpy(gpu), cpu)


# (walk_length, window, negative, sample, dim): the ring of kept tokens wraps
# on long walks; window and negative at the GPU bounds; dims below and across
# the warp width.
SEQUENTIAL = [
    (15, 4, 5, 1e-3, 16),
    (200, 3, 2, 0.0, 100),
    (130, 64, 64, 1e-3, 33),
    (9, 1, 0, 0.0, 8),
    (9, 2**30, 2, 0.0, 8),  # a window past the walk: its reach is capped as on the CPU
]


@pytest.mark.parametrize("walk_length,window,negative,sample,dim", SEQUENTIAL)
def test_one_walk_per_launch_retraces_the_one_thread_cpu_run(rng, walk_length, window, negative, sample, dim):
    n, n_walks, seed = 60, 40, int(rng.integers(0, 2**64, dtype=np.uint64))
    walks = rng.integers(0, n, (n_walks, walk_length)).astype(np.int32)
    walks[::5, walk_length // 2:] = -1  # padded walks
    walks[::7, 0] = 3  # a frequent node, subsampled when sample > 0
    counts = np.bincount(walks[walks >= 0], minlength=n)
    noise_keep, noise_alias = alias_table(counts.astype(np.float64) ** 0.75)
    keep = keep_probabilities(counts, sample)
    if sample > 0:
        assert keep.min() < 1.0  # the coins are exercised
    start = (rng.random((n, dim), dtype=np.float32) - 0.5) / dim
    args = dict(window=window, negative=negative, alpha=0.025, min_alpha=1e-4, seed=seed)

    cpu_in, cpu_out = start.copy(), np.zeros_like(start)
    cpu_tokens = _core.sgns_train(walks, keep, noise_keep, noise_alias, cpu_in, cpu_out, first_walk=0,
                                  total_walks=n_walks, n_threads=1, **args)

    d_walks, d_keep, d_noise_keep, d_noise_alias = map(cp.asarray, (walks, keep, noise_keep, noise_alias))
    gpu_in, gpu_out = cp.asarray(start), cp.zeros((n, dim), cp.float32)
    tokens = 0
    for w in range(n_walks):  # walk w is the w-th of n_walks: its stream and learning rate
        tokens += cuda_module().sgns_train(d_walks[w:w + 1], d_keep, d_noise_keep, d_noise_alias, gpu_in, gpu_out,
                                           first_walk=w, total_walks=n_walks, stream=stream(), **args)
    assert tokens == cpu_tokens
    np.testing.assert_allclose(cp.asnumpy(gpu_out), cpu_out, rtol=SEQUENTIAL_RTOL, atol=SEQUENTIAL_ATOL)
    np.testing.assert_allclose(cp.asnumpy(gpu_in), cpu_in, rtol=SEQUENTIAL_RTOL, atol=SEQUENTIAL_ATOL)
    assert not np.allclose(cpu_in, start)  # it trained


def test_many_walks_per_launch_on_disjoint_nodes_equal_the_cpu(rng):
    # Walks over disjoint node sets without negatives touch disjoint rows:
    # the warps of one launch cannot interfere, so the GPU must give the
    # CPU's numbers (up to the rounding of its sums).
    n_walks, per_walk, walk_length, dim = 64, 12, 30, 48
    walks = (np.arange(n_walks)[:, None] * per_walk
             + rng.integers(0, per_walk, (n_walks, walk_length))).astype(np.int32)
    n = n_walks * per_walk
    counts = np.bincount(walks.ravel(), minlength=n)
    noise_keep, noise_alias = alias_table(counts.astype(np.float64) ** 0.75)
    keep = keep_probabilities(counts, 0.0)
    start = (rng.random((n, dim), dtype=np.float32) - 0.5) / dim
    args = dict(window=4, negative=0, alpha=0.025, min_alpha=1e-4, seed=11, first_walk=0, total_walks=n_walks)
    cpu_in, cpu_out = start.copy(), np.zeros_like(start)
    cpu_tokens = _core.sgns_train(walks, keep, noise_keep, noise_alias, cpu_in, cpu_out, n_threads=2, **args)
    gpu_in, gpu_out = cp.asarray(start), cp.zeros((n, dim), cp.float32)
    tokens = cuda_module().sgns_train(*map(cp.asarray, (walks, keep, noise_keep, noise_alias)), gpu_in, gpu_out,
                                      stream=stream(), **args)
    assert tokens == cpu_tokens
    np.testing.assert_allclose(cp.asnumpy(gpu_in), cpu_in, rtol=SEQUENTIAL_RTOL, atol=SEQUENTIAL_ATOL)
    np.testing.assert_allclose(cp.asnumpy(gpu_out), cpu_out, rtol=SEQUENTIAL_RTOL, atol=SEQUENTIAL_ATOL)
    assert not np.allclose(cpu_in, start)


@pytest.fixture(scope="module")
def sbm():
    """A 10-block stochastic block model of 2000 nodes (scipy CSR), its labels and DeepWalk walks on it."""
    import networkx as nx

    G, labels = planted_blocks(P_IN, P_OUT)
    A = scipy.sparse.csr_matrix(nx.to_scipy_sparse_array(G, format="csr"))
    walks = latentcore.random_walks(A, walk_length=40, walks_per_node=10, random_state=0)
    return A, labels, walks


def test_skipgram_embeds_the_blocks_as_well_as_the_cpu(sbm):
    _, labels, walks = sbm
    gpu = latentcore.skipgram(cp.asarray(walks), labels.size, random_state=0, **SGNS)
    assert isinstance(gpu, cp.ndarray) and gpu.dtype == cp.float32 and gpu.shape == (labels.size, SGNS["dim"])
    assert bool(cp.isfinite(gpu).all())
    gpu_f1 = micro_f1(cp.asnumpy(gpu), labels)
    cpu_f1 = micro_f1(latentcore.skipgram(walks, labels.size, random_state=0, **SGNS), labels)
    assert gpu_f1 >= MIN_F1
    assert abs(gpu_f1 - cpu_f1) <= F1_VS_CPU


def test_node2vec_on_a_cupy_graph(sbm):
    import cupyx.scipy.sparse

    A, labels, _ = sbm
    params = dict(dim=32, walk_length=40, window=5, random_state=1)
    model = latentcore.Node2Vec(0.5, 2.0, **params).fit(cupyx.scipy.sparse.csr_matrix(A))
    assert isinstance(model.embedding_, cp.ndarray) and model.embedding_.shape == (labels.size, 32)
    assert micro_f1(cp.asnumpy(model.embedding_), labels) >= MIN_F1
    # The same walks, visit counts and subsampling coins as on the CPU: the same tokens.
    assert model.n_tokens_ == latentcore.Node2Vec(0.5, 2.0, **params).fit(A).n_tokens_


def resolve(change):
    """Arrays in parametrize lists are made lazily: collection needs no GPU."""
    return {key: value() if callable(value) else value for key, value in change.items()}


class TestKernelShapes:
    """The bindings check shapes (Python validates contents): ValueError, never a bad launch."""

    @staticmethod
    def walk_args(rng, **change):
        tables = [cp.asarray(a) for a in host_tables(random_graph(rng, 20, 0.2, True, 0))]
        args = dict(zip(["indptr", "indices", "weights", "keep", "alias", "totals", "maxima"], tables))
        args.update(starts=cp.arange(5, dtype=cp.int32), p=1.0, q=1.0, seed=0, first_walk=0,
                    walks=cp.empty((5, 4), cp.int32), stream=stream())
        args.update(resolve(change))
        return args

    @pytest.mark.parametrize("change,word", [
        (dict(indptr=lambda: cp.zeros(1, cp.int64)), "indptr"),
        (dict(keep=lambda: cp.zeros(3, cp.float32)), "keep and alias"),
        (dict(alias=lambda: cp.zeros(3, cp.int32)), "keep and alias"),
        (dict(weights=lambda: cp.zeros(3, cp.float32)), "weights"),
        (dict(totals=lambda: cp.ones(3, cp.float64)), "totals"),
        (dict(maxima=lambda: cp.ones(3, cp.float32)), "maxima"),
        (dict(walks=lambda: cp.empty((4, 4), cp.int32)), "one walk row per start"),
        (dict(walks=lambda: cp.empty((5, 0), cp.int32)), "one walk row per start"),
        (dict(p=0.0), "p and q"),
        (dict(q=1e101), "p and q"),
    ])
    def test_walks_sample(self, rng, change, word):
        cuda_module().walks_sample(**self.walk_args(rng))  # the unchanged call runs
        with pytest.raises(ValueError, match=word):
            cuda_module().walks_sample(**self.walk_args(rng, **change))

    @staticmethod
    def sgns_args(**change):
        n, dim = 10, 8
        args = dict(walks=cp.zeros((3, 6), cp.int32), keep_probability=cp.ones(n, cp.float32),
                    noise_keep=cp.ones(n, cp.float32), noise_alias=cp.arange(n, dtype=cp.int32),
                    input=cp.zeros((n, dim), cp.float32), output=cp.zeros((n, dim), cp.float32), window=3,
                    negative=2, alpha=0.025, min_alpha=1e-4, seed=0, first_walk=0, total_walks=3,
                    stream=stream())
        args.update(resolve(change))
        return args

    @pytest.mark.parametrize("change,word", [
        (dict(output=lambda: cp.zeros((10, 9), cp.float32)), "same shape"),
        (dict(input=lambda: cp.zeros((0, 8), cp.float32), output=lambda: cp.zeros((0, 8), cp.float32)),
         "n_nodes"),
        (dict(noise_keep=lambda: cp.ones(9, cp.float32)), "noise table"),
        (dict(noise_alias=lambda: cp.zeros(11, cp.int32)), "noise table"),
        (dict(keep_probability=lambda: cp.ones(4, cp.float32)), "keep_probability"),
        (dict(walks=lambda: cp.zeros((3, 0), cp.int32)), "column"),
        (dict(window=0), "window"),
        (dict(window=65, walks=lambda: cp.zeros((3, 70), cp.int32)), "window"),
        (dict(negative=65), "negative"),
        (dict(negative=-1), "negative"),
    ])
    def test_sgns_train(self, change, word):
        assert cuda_module().sgns_train(**self.sgns_args()) == 18  # the unchanged call runs
        with pytest.raises(ValueError, match=word):
            cuda_module().sgns_train(**self.sgns_args(**change))

    def test_empty_keep_probability_means_no_subsampling(self):
        assert cuda_module().sgns_train(**self.sgns_args(keep_probability=cp.empty(0, cp.float32))) == 18
