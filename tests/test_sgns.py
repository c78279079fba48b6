"""Skip-gram against gensim's Word2Vec on the same walks (node classification
on a planted block structure, subsampling odds), and its reproducibility."""

import dataclasses

import numpy as np
import pytest

from conftest import assert_interruptible, assert_kernel_refuses, micro_f1, planted_blocks, run_isolated

import latentcore
from latentcore import _device, skipgram
from latentcore.sgns import keep_probabilities

PARAMS = dict(dim=32, window=5, negative=5, epochs=1, alpha=0.025, min_alpha=1e-4, sample=1e-3)


@pytest.fixture(scope="module")
def sbm():
    """A 10-block stochastic block model of 2000 nodes, its labels and DeepWalk walks on it."""
    G, labels = planted_blocks()
    walks = latentcore.random_walks(G, walk_length=40, walks_per_node=10, random_state=0)
    return G, labels, walks


def gensim_vectors(walks, n_nodes, **params):
    gensim = pytest.importorskip("gensim")
    sentences = [[str(v) for v in walk if v >= 0] for walk in walks]
    model = gensim.models.Word2Vec(sentences, vector_size=params["dim"], window=params["window"], sg=1,
                                   hs=0, negative=params["negative"], epochs=params["epochs"],
                                   alpha=params["alpha"], min_alpha=params["min_alpha"],
                                   sample=params["sample"], min_count=1, workers=1, seed=0)
    return np.stack([model.wv[str(v)] for v in range(n_nodes)]), model


def test_node_classification_matches_gensim_on_the_same_walks(sbm):
    _, labels, walks = sbm
    ours = micro_f1(skipgram(walks, labels.size, random_state=0, n_jobs=1, **PARAMS), labels)
    theirs = micro_f1(gensim_vectors(walks, labels.size, **PARAMS)[0], labels)
    assert ours >= 0.9
    assert ours >= theirs - 0.01


def test_estimators_embed_the_blocks(sbm):
    G, labels, _ = sbm
    for model in (latentcore.DeepWalk(walk_length=40, random_state=1, **PARAMS),
                  latentcore.Node2Vec(0.5, 2.0, walk_length=40, random_state=1, **PARAMS)):
        embedding = model.fit(G).embedding_
        assert embedding.shape == (labels.size, PARAMS["dim"]) and embedding.dtype == np.float32
        assert micro_f1(embedding, labels) >= 0.9


def test_subsampling_odds_equal_gensims(sbm):
    _, labels, walks = sbm
    hub = np.concatenate([walks, np.zeros((4000, walks.shape[1]), np.int32)])  # node 0 made frequent
    _, model = gensim_vectors(hub[:, :5], labels.size, **{**PARAMS, "sample": 1e-3})
    counts = np.bincount(hub[:, :5].ravel(), minlength=labels.size)
    expected = np.array([model.wv.get_vecattr(str(v), "sample_int") for v in range(counts.size)]) / 2**32
    ours = keep_probabilities(counts, 1e-3)
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-9)
    assert ours[0] < 0.2 and ours[1:].min() == 1.0


def test_one_thread_is_bit_identical_and_seeds_matter():
    rng = np.random.default_rng(0)
    walks = rng.integers(0, 300, (500, 20)).astype(np.int32)
    walks[::7, 15:] = -1  # padded walks
    first = skipgram(walks, dim=16, window=3, random_state=5, n_jobs=1)
    np.testing.assert_array_equal(first, skipgram(walks, dim=16, window=3, random_state=5, n_jobs=1))
    assert not np.array_equal(first, skipgram(walks, dim=16, window=3, random_state=6, n_jobs=1))
    two_threads = skipgram(walks, dim=16, window=3, random_state=5, n_jobs=2)
    assert two_threads.shape == first.shape and np.isfinite(two_threads).all()


def test_padding_and_unseen_nodes():
    walks = np.array([[0, 1, 0, 1, -1, -1]] * 50, dtype=np.int32)
    vectors = skipgram(walks, n_nodes=4, dim=8, window=2, sample=0, random_state=0, n_jobs=1)
    assert vectors.shape == (4, 8)
    # 0 and 1 trained together; 2 and 3 never appear and keep their small start.
    assert np.abs(vectors[2:]).max() <= 0.5 / 8
    assert np.abs(vectors[:2]).max() > 0.5 / 8


class TestBadInput:
    walks = np.array([[0, 1, 2]], dtype=np.int32)

    @pytest.mark.parametrize("kwargs,exc,word", [
        ({"dim": 0}, ValueError, "dim"), ({"window": 0}, ValueError, "window"),
        ({"negative": 0}, ValueError, "negative"), ({"epochs": 0}, ValueError, "epochs"),
        ({"alpha": 0.0}, ValueError, "alpha"), ({"min_alpha": 1.0}, ValueError, "min_alpha"),
        ({"sample": -1.0}, ValueError, "sample"), ({"ns_exponent": float("nan")}, ValueError, "ns_exponent"),
        ({"dim": 2.5}, TypeError, "dim"), ({"n_nodes": 2}, ValueError, "n_nodes"),
        ({"random_state": "x"}, TypeError, "random_state"),
    ])
    def test_bad_parameters(self, kwargs, exc, word):
        with pytest.raises(exc, match=word):
            skipgram(self.walks, **kwargs)

    @pytest.mark.parametrize("walks,exc,word", [
        (np.array([[0.0, 1.0]]), TypeError, "integer"), (np.array([0, 1]), ValueError, "2-D"),
        (np.zeros((0, 3), np.int32), ValueError, "non-empty"), (np.array([[0, -2]]), ValueError, "-1 only"),
        (np.array([[-1, -1]]), ValueError, "padding"),
    ])
    def test_bad_walks(self, walks, exc, word):
        with pytest.raises(exc, match=word):
            skipgram(walks)


def test_torch_walks_give_the_numpy_vectors_as_a_tensor():
    torch = pytest.importorskip("torch")
    walks = np.random.default_rng(1).integers(0, 50, (100, 10)).astype(np.int32)
    expected = skipgram(walks, dim=8, window=2, random_state=3, n_jobs=1)
    got = skipgram(torch.from_numpy(walks).long(), dim=8, window=2, random_state=3, n_jobs=1)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    np.testing.assert_array_equal(got.numpy(), expected)


# ----------------------------------------------------------------------------- an independent replay

MASK = (1 << 64) - 1


class ReferenceRng:
    """latentcore/random.hpp's streams in Python integers: splitmix64 seeding, xoshiro256**."""

    def __init__(self, seed: int, stream: int):
        x = (seed ^ (stream * 0xD1342543DE82EF95)) & MASK
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & MASK
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
            self.s.append(z ^ (z >> 31))

    def next(self) -> int:
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & MASK  # noqa: E731
        result = (rotl((s[1] * 5) & MASK, 7) * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def uniform(self) -> float:
        return (self.next() >> 11) * 2.0**-53

    def below(self, n: int) -> int:
        return ((self.next() >> 32) * n) >> 32


def reference_sgns(walks, keep, noise_keep, noise_alias, start, window, negative, alpha, min_alpha, seed,
                   reach_is_window=False):
    """Skip-gram with negative sampling as documented, in numpy float32, one
    walk and one centre at a time: drop padding and subsampled nodes (coin per
    node kept with probability keep < 1), then per centre a reach drawn
    uniformly from 1..window (word2vec's dynamic window; capped at the walk,
    which changes nothing), `negative` draws from the noise alias table, and
    one block update of the contexts against the centre (label 1) and the
    negatives (label 0), gradients from the old vectors."""
    n_nodes = start.shape[0]
    x_in, y_out = start.copy(), np.zeros_like(start)
    n_walks, length = walks.shape
    for w in range(n_walks):
        rate = np.float32(alpha - (alpha - min_alpha) * min(1.0, w / n_walks))
        rng = ReferenceRng(seed, w)
        tokens = []
        for v in walks[w]:
            if v < 0:
                break
            if keep.size and keep[v] < 1 and rng.uniform() >= float(keep[v]):
                continue
            tokens.append(int(v))
        n = len(tokens)
        for i in range(n):
            reach = window - rng.below(window)
            if reach_is_window:
                reach = window
            contexts = [tokens[j] for j in range(max(0, i - reach), min(n, i + reach + 1)) if j != i]
            if not contexts:
                continue
            targets = [tokens[i]]
            for _ in range(negative):
                r = rng.next()
                t = ((r >> 32) * n_nodes) >> 32
                targets.append(t if (r & 0xFFFFFFFF) * 2.0**-32 < float(noise_keep[t]) else int(noise_alias[t]))
            X, Y = x_in[contexts], y_out[targets]
            labels = np.zeros(len(targets), np.float32)
            labels[0] = 1
            scores = (labels - np.float32(1) / (np.float32(1) + np.exp(-(X @ Y.T)))) * rate
            scores[:, 1:][:, np.array(targets[1:], int) == targets[0]] = 0  # a negative that is the centre
            np.add.at(x_in, contexts, scores @ Y)
            np.add.at(y_out, targets, scores.T @ X)
    return x_in, y_out


@pytest.mark.parametrize("window,sample", [(1, 0.0), (3, 0.0), (4, 0.01), (2**30, 0.0)])
def test_one_thread_training_equals_an_independent_replay(window, sample):
    """The kernel against a Python replay of the documented algorithm. A
    trainer that never reduces its window (reach = window), draws its negatives
    or coins otherwise, or schedules alpha otherwise, fails here."""
    rng = np.random.default_rng(window)
    n, dim, negative = 12, 6, 3
    walks = rng.integers(0, n, (25, 9)).astype(np.int32)
    walks[::4, 6:] = -1
    walks[::3, 0] = 2  # a frequent node, subsampled when sample > 0
    counts = np.bincount(walks[walks >= 0], minlength=n)
    noise_keep, noise_alias = latentcore.sgns.alias_table(counts.astype(np.float64) ** 0.75)
    keep = keep_probabilities(counts, sample)
    if sample:
        assert keep.min() < 1
    start = ((rng.random((n, dim), dtype=np.float32) - 0.5) / dim).astype(np.float32)
    args = dict(window=window, negative=negative, alpha=0.025, min_alpha=1e-4, seed=12345)
    x_in, y_out = start.copy(), np.zeros_like(start)
    latentcore._core.sgns_train(walks, keep, noise_keep, noise_alias, x_in, y_out, first_walk=0,
                                total_walks=walks.shape[0], n_threads=1, **args)
    ref_in, ref_out = reference_sgns(walks, keep, noise_keep, noise_alias, start, **args)
    np.testing.assert_allclose(x_in, ref_in, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(y_out, ref_out, rtol=1e-4, atol=1e-6)
    if 1 < window < 8:  # the replay can tell a dynamic window from a fixed one
        fixed_in, _ = reference_sgns(walks, keep, noise_keep, noise_alias, start, reach_is_window=True, **args)
        assert not np.allclose(fixed_in, x_in, rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------- reproducibility

def test_deterministic_mode_gives_the_same_vectors_for_any_thread_count():
    rng = np.random.default_rng(0)
    walks = rng.integers(0, 300, (600, 20)).astype(np.int32)
    one = skipgram(walks, dim=16, window=3, random_state=5, n_jobs=1, deterministic=True)
    two = skipgram(walks, dim=16, window=3, random_state=5, n_jobs=2, deterministic=True)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, skipgram(walks, dim=16, window=3, random_state=5, n_jobs=1))
    G = planted_blocks()[0]
    kw = dict(dim=16, walk_length=20, walks_per_node=2, window=4, random_state=3, deterministic=True)
    for model in (latentcore.Node2Vec, latentcore.DeepWalk):
        args = (0.5, 2.0) if model is latentcore.Node2Vec else ()
        a = model(*args, n_jobs=1, **kw).fit(G)
        b = model(*args, n_jobs=2, **kw).fit(G)
        np.testing.assert_array_equal(a.embedding_, b.embedding_)
        assert a.n_tokens_ == b.n_tokens_
    with pytest.raises(ValueError, match="deterministic"):
        latentcore.sgns.check_deterministic(True, dataclasses.replace(_device.cpu(1), name="cuda", stream=lambda: 0))
    with pytest.raises(TypeError, match="deterministic"):
        skipgram(walks, deterministic="yes")


def test_hogwild_threads_train_as_well_but_not_identically(sbm):
    """What the docs say: several threads give other vectors (not only in the
    last bits), of the same quality."""
    _, labels, walks = sbm
    one = skipgram(walks, labels.size, random_state=0, n_jobs=1, **PARAMS)
    two = skipgram(walks, labels.size, random_state=0, n_jobs=2, **PARAMS)
    assert np.median(np.abs(one - two) / np.abs(one)) > 1e-3  # far beyond the last bits
    assert micro_f1(two, labels) >= micro_f1(one, labels) - 0.02


# ----------------------------------------------------------------------------- interrupts and crafted input

def test_ctrl_c_stops_skipgram_and_node2vec():
    rng = np.random.default_rng(0)
    walks = rng.integers(0, 2000, (3000, 80)).astype(np.int32)
    assert_interruptible(lambda: skipgram(walks, dim=512, window=20, sample=0, random_state=0, n_jobs=2))
    G = planted_blocks()[0]
    model = latentcore.Node2Vec(0.5, 2.0, dim=512, window=20, walk_length=80, walks_per_node=10, n_jobs=2,
                                random_state=0)
    assert_interruptible(lambda: model.fit(G))


def test_huge_windows_and_counts_are_clear_errors_or_right():
    walks = np.array([[0, 1, 2, 1]], np.int32)
    V = skipgram(walks, dim=8, window=2**30, random_state=0)
    assert V.shape == (3, 8) and np.isfinite(V).all()
    np.testing.assert_array_equal(V, skipgram(walks, dim=8, window=2**31 - 1, random_state=0))
    for kwargs, word in [({"window": 2**31}, "window"), ({"negative": 2**31 - 1}, "negative"),
                         ({"dim": 2**31}, "dim"), ({"n_nodes": 2**31}, "n_nodes"),
                         ({"dim": 2**28, "n_nodes": 2**10}, "dim")]:
        with pytest.raises(ValueError, match=word):
            skipgram(walks, **{"dim": 8, **kwargs})


SGNS_ARGS = """
    import numpy as np
    from latentcore import _core
    n, dim = 5, 4
    args = dict(walks=np.array([[0, 1, 2, -1]], np.int32), keep_probability=np.ones(n, np.float32),
                noise_keep=np.ones(n, np.float32), noise_alias=np.arange(n, dtype=np.int32),
                input=np.zeros((n, dim), np.float32), output=np.zeros((n, dim), np.float32), window=2,
                negative=2, alpha=0.025, min_alpha=1e-4, seed=0, first_walk=0, total_walks=1, n_threads=2)
    assert _core.sgns_train(**args) == 3  # the unchanged call runs
"""

SGNS_FAULTS = {  # case: (the keyword that breaks the call, a word of the error)
    "walk node above n": ("walks=np.array([[0, 5]], np.int32)", "walk node out of range"),
    "walk node below -1": ("walks=np.array([[0, -2]], np.int32)", "walk node out of range"),
    "noise alias": ("noise_alias=np.array([0, 1, 2, 3, 5], np.int32)", "noise alias"),
    "noise table": ("noise_keep=np.ones(4, np.float32)", "noise table"),
    "keep_probability": ("keep_probability=np.ones(3, np.float32)", "keep_probability"),
    "same shape": ("output=np.zeros((5, 3), np.float32)", "same shape"),
    "negative": ("negative=2**31 - 1", "negative"),
    "window": ("window=0", "window"),
}


@pytest.mark.parametrize("case", sorted(SGNS_FAULTS))
def test_sgns_binding_checks_what_the_kernel_follows(case):
    assert_kernel_refuses(SGNS_ARGS, "_core.sgns_train", *SGNS_FAULTS[case])


@pytest.mark.skipif("asan" in __import__("os").environ.get("LD_PRELOAD", ""),
                    reason="needs RLIMIT_AS, which ASan cannot run under")
def test_scratch_that_cannot_be_allocated_is_a_memory_error():
    """The per-thread scratch is allocated inside the parallel region, through
    ParallelWork: a failed allocation is MemoryError, not an abort (rc 134)."""
    result = run_isolated("""
        import os, resource
        import numpy as np
        from latentcore import skipgram, random_walks
        import scipy.sparse
        walks = np.array([[0, 1, 2, 1]], np.int32)
        with open("/proc/self/statm") as f:
            size = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = size + 600 * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        try:
            skipgram(walks, dim=8, negative=2**26, n_jobs=2)  # ~4 GiB of scratch per thread
        except MemoryError:
            print("MemoryError")
        else:
            raise AssertionError("allocated")
    """)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert "MemoryError" in result.stdout
