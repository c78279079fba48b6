"""Skip-gram against gensim's Word2Vec on the same walks (node classification
on a planted block structure, subsampling odds), and its reproducibility."""

import numpy as np
import pytest

from conftest import micro_f1, planted_blocks

import latentcore
from latentcore import skipgram
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
