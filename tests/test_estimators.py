"""The estimators as scikit-learn estimators (issue 13): parameters stored as
given and checked in fit from one declarative table per estimator, clone,
get_params / set_params, reprs, NotFittedError, pipelines, pandas DataFrames,
TSNE's ``init`` beside openTSNE's ``initialization``, and scikit-learn's own
``estimator_checks`` with the checks that do not apply listed with reasons."""

from __future__ import annotations

import functools
import re
import unittest
import warnings

import numpy as np
import pytest
import scipy.sparse
from sklearn.base import clone
from sklearn.exceptions import NotFittedError, SkipTestWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import estimator_checks_generator

import latentcore
from latentcore import (DeepWalk, DictionaryLearning, KNNGraph, Node2Vec, SparseCoder, TopKSAE, TSNE)
from latentcore._validation import (Boolean, Choice, Custom, Integer, InvalidParameterError, Options, Pair, Real,
                                    check_values)

pd = pytest.importorskip("pandas")

NOT_FITTED = r"this (\w+) instance is not fitted yet: call .+ first"


def unit_rows(rng, n, d):
    D = rng.standard_normal((n, d))
    return D / np.linalg.norm(D, axis=1, keepdims=True)


def path_graph(n=12):
    """An undirected path 0 - 1 - ... - n-1 with unit weights."""
    rows = np.arange(n - 1)
    A = scipy.sparse.coo_array((np.ones(n - 1), (rows, rows + 1)), shape=(n, n))
    return scipy.sparse.csr_array(A + A.T)


def small(cls):
    """An instance with settings small enough for the checks to run fast."""
    rng = np.random.default_rng(0)
    return {
        KNNGraph: lambda: KNNGraph(n_neighbors=2, n_jobs=1),
        TSNE: lambda: TSNE(perplexity=2.0, n_iter=20, early_exaggeration_iter=5, negative_gradient_method="exact",
                           random_state=0, n_jobs=1),
        Node2Vec: lambda: Node2Vec(0.5, 2.0, dim=4, walk_length=5, walks_per_node=2, window=2, random_state=0,
                                   n_jobs=1),
        DeepWalk: lambda: DeepWalk(dim=4, walk_length=5, walks_per_node=2, window=2, random_state=0, n_jobs=1),
        SparseCoder: lambda: SparseCoder(unit_rows(rng, 5, 3), n_nonzero=1, n_jobs=1),
        DictionaryLearning: lambda: DictionaryLearning(3, n_nonzero=1, batch_size=16, random_state=0, n_jobs=1),
        TopKSAE: lambda: TopKSAE(8, 2, batch_size=16, random_state=0, n_jobs=1),
    }[cls]()


ALL = [KNNGraph, TSNE, Node2Vec, DeepWalk, SparseCoder, DictionaryLearning, TopKSAE]


# ----------------------------------------------------------------------------- parameters, clone, repr

@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_clone_get_params_set_params(cls):
    est = small(cls)
    params = est.get_params()
    twin = clone(est)
    assert type(twin) is cls and twin is not est
    for name, value in params.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(twin.get_params()[name], value)
        else:
            assert twin.get_params()[name] == value, name
    # One table per estimator, covering exactly the constructor's parameters.
    assert set(cls._parameter_specs) == set(params)
    # set_params stores what it is given, and returns the estimator.
    name = "n_jobs"
    assert est.set_params(**{name: 2}) is est and est.get_params()[name] == 2
    with pytest.raises(ValueError, match="Invalid parameter"):
        est.set_params(not_a_parameter=1)


def test_clone_of_defaults_and_parameters_stored_as_given():
    assert clone(TSNE()).get_params() == TSNE().get_params()
    perplexity = np.float32(5.0)
    betas = [0.8, 0.9]
    tsne, sae = TSNE(perplexity=perplexity), TopKSAE(16, 2, betas=betas)
    assert tsne.perplexity is perplexity and sae.betas is betas  # no conversion in __init__
    # No validation in __init__ either (scikit-learn's convention): fit checks.
    bad = TSNE(perplexity=-1.0, metric="hamming")
    assert bad.perplexity == -1.0
    with pytest.raises(ValueError, match="perplexity"):
        bad.fit(np.zeros((10, 2)))


def test_repr_like_scikit_learn():
    assert repr(TSNE(perplexity=50)) == "TSNE(perplexity=50)"
    assert repr(TSNE()) == "TSNE()"
    assert repr(TopKSAE(64, 4)) == "TopKSAE(k=4, n_latents=64)"
    assert repr(KNNGraph(10, metric="cosine")) == "KNNGraph(metric='cosine', n_neighbors=10)"
    assert repr(Node2Vec(0.5, 2.0, dim=16)) == "Node2Vec(dim=16, p=0.5, q=2.0)"
    assert repr(DeepWalk(dim=16)) == "DeepWalk(dim=16)"
    assert repr(DictionaryLearning(32, method="lasso", alpha=0.1)) == \
        "DictionaryLearning(alpha=0.1, method='lasso', n_atoms=32)"
    assert repr(SparseCoder(np.eye(2), n_nonzero=1)).startswith("SparseCoder(dictionary=array([[1., 0.],")


def test_deepwalk_has_no_p_q_parameters():
    params = DeepWalk().get_params()
    assert "p" not in params and "q" not in params
    assert DeepWalk().p == 1.0 and DeepWalk().q == 1.0
    with pytest.raises(ValueError, match="Invalid parameter 'p'"):
        DeepWalk().set_params(p=0.5)


# ----------------------------------------------------------------------------- the parameter tables

@pytest.mark.parametrize("cls,kwargs,name", [
    (KNNGraph, {"n_neighbors": 0}, "n_neighbors"),
    (KNNGraph, {"mode": "weights"}, "mode"),
    (KNNGraph, {"symmetrize": "yes"}, "symmetrize"),
    (KNNGraph, {"metric": "hamming"}, "metric"),
    (KNNGraph, {"device": "tpu"}, "device"),
    (TSNE, {"n_components": 4}, "n_components"),
    (TSNE, {"perplexity": [5, 0]}, r"perplexity\[1\]"),
    (TSNE, {"learning_rate": "fast"}, "learning_rate must be 'auto' or a number > 0"),
    (TSNE, {"momentum": (0.5, 1.5)}, r"momentum\[1\] must be < 1"),
    (TSNE, {"verbose": -1}, "verbose"),
    (TSNE, {"init": "spectral"}, "init"),
    (TSNE, {"negative_gradient_method": "bh"}, "negative_gradient_method"),
    (Node2Vec, {"p": 0.0}, "p must be >= 1e-100"),
    (Node2Vec, {"walk_length": 1}, "walk_length must be an int >= 2"),
    (Node2Vec, {"deterministic": 1}, "deterministic"),
    (Node2Vec, {"random_state": 1.5}, "random_state"),
    (DeepWalk, {"window": 0}, "window"),
    (SparseCoder, {"method": "ksvd"}, "method"),
    (SparseCoder, {"max_iter": 2**31}, "max_iter must be at most"),
    (SparseCoder, {"alpha": -1.0}, "alpha must be >= 0"),
    (DictionaryLearning, {"n_atoms": 0}, "n_atoms"),
    (DictionaryLearning, {"shuffle": None}, "shuffle"),
    (TopKSAE, {"betas": (0.9,)}, "betas must be a pair"),
    (TopKSAE, {"learning_rate": "fast"}, "learning_rate must be a number"),
    (TopKSAE, {"activation": "relu"}, "activation"),
])
def test_bad_parameter_is_refused_by_its_table(cls, kwargs, name):
    est = small(cls).set_params(**kwargs)
    with pytest.raises(InvalidParameterError, match=name) as info:
        X = path_graph() if cls in (Node2Vec, DeepWalk) else np.random.default_rng(0).standard_normal((20, 3))
        est.fit(X)
    # A ValueError and a TypeError both: callers catching either still do.
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)


def test_specs_name_the_parameter_and_the_fix():
    specs = {"rate": Options("auto", Real(low=0.0, low_inclusive=False)), "count": Integer(low=2, high=5),
             "flag": Boolean(), "mode": Choice("a", "b"), "pair": Pair(Real(low=0.0, high=1.0), "x, y"),
             "seed": Options(None, Integer(low=0)), "even": Custom(lambda v, n: None if v % 2 == 0 else
                                                                    (_ for _ in ()).throw(ValueError(f"{n} is odd")))}
    good = {"rate": "auto", "count": np.int64(2), "flag": np.bool_(True), "mode": "b", "pair": (np.float32(0.5), 1),
            "seed": None, "even": 4}
    check_values(good, specs)
    check_values({**good, "rate": np.float32(0.5), "seed": 3}, specs)
    for name, value, message in [
        ("rate", "fast", "rate must be 'auto' or a number > 0, got 'fast'"),
        ("rate", 0.0, "rate must be > 0, got 0.0"),
        ("rate", float("nan"), "rate must be a finite number"),
        ("count", 2.0, "count must be an int, got float"),
        ("count", True, "count must be an int, got bool"),
        ("count", 1, "count must be an int >= 2, got 1"),
        ("count", 6, "count must be at most 5, got 6"),
        ("flag", 1, "flag must be True or False, got 1"),
        ("mode", "c", "mode='c' is not supported; choose one of ['a', 'b']"),
        ("mode", ["a"], "mode must be one of ['a', 'b'], got list"),
        ("pair", 0.5, "pair must be a pair (x, y), got 0.5"),
        ("pair", (0.5, 2.0), "pair[1] must be <= 1, got 2.0"),
        ("seed", -1, "seed must be an int >= 0, got -1"),
        ("even", 3, "even is odd"),
    ]:
        with pytest.raises(InvalidParameterError, match="^" + re.escape(message)):
            check_values({**good, name: value}, specs)


# ----------------------------------------------------------------------------- not fitted

def _post_fit_calls():
    X = np.zeros((3, 3), np.float32)
    return [
        ("KNNGraph", lambda: KNNGraph().kneighbors(X)),
        ("TSNE", lambda: TSNE().transform(X)),
        ("Node2Vec", lambda: Node2Vec().transform([0])),
        ("Node2Vec", lambda: Node2Vec().save("never.npy")),
        ("DeepWalk", lambda: DeepWalk().transform([0])),
        ("DictionaryLearning", lambda: DictionaryLearning(2).transform(X)),
        ("DictionaryLearning", lambda: DictionaryLearning(2).inverse_transform(X)),
        ("TopKSAE", lambda: TopKSAE(4, 1).encode(X)),
        ("TopKSAE", lambda: TopKSAE(4, 1).transform(X)),
        ("TopKSAE", lambda: TopKSAE(4, 1).decode(X)),
        ("TopKSAE", lambda: TopKSAE(4, 1).save("never.npz")),
        ("TopKSAE", lambda: TopKSAE(4, 1).components_),
    ]


@pytest.mark.parametrize("name,call", _post_fit_calls(), ids=lambda v: v if isinstance(v, str) else "")
def test_not_fitted_raises_not_fitted_error(name, call):
    with pytest.raises(NotFittedError) as info:
        call()
    match = re.fullmatch(NOT_FITTED, str(info.value))  # one wording for every estimator
    assert match and match[1] == name, str(info.value)
    # Still a RuntimeError, as before the estimators were scikit-learn's.
    assert isinstance(info.value, RuntimeError)


def test_not_fitted_through_scikit_learn():
    for est in (TSNE(), DictionaryLearning(2), TopKSAE(4, 1)):
        with pytest.raises(NotFittedError):
            est.get_feature_names_out()
    assert not hasattr(TopKSAE(4, 1), "components_")  # NotFittedError is an AttributeError
    # A TSNE fitted on precomputed input is fitted, but has no points to place new ones among.
    X = np.random.default_rng(0).standard_normal((40, 3))
    fitted = TSNE(perplexity=5, n_iter=10).fit(latentcore.knn(X, 15))
    with pytest.raises(RuntimeError, match="precomputed") as info:
        fitted.transform(X)
    assert not isinstance(info.value, NotFittedError)


def test_stateless_sparse_coder_needs_no_fit():
    rng = np.random.default_rng(1)
    D = unit_rows(rng, 6, 4)
    X = rng.standard_normal((5, 4))
    np.testing.assert_array_equal(SparseCoder(D, n_nonzero=2).transform(X).toarray(),
                                  latentcore.sparse_encode(X, D, n_nonzero=2).toarray())
    with pytest.raises(ValueError, match="X has 3 features but the dictionary has atoms of dimension 4"):
        SparseCoder(D).fit(X[:, :3])


# ----------------------------------------------------------------------------- pipelines

def test_pipeline_with_standard_scaler():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((300, 12)) * rng.uniform(0.1, 10.0, 12) + 5.0
    scaled = StandardScaler().fit_transform(X)

    def sae():
        return TopKSAE(32, 4, batch_size=64, n_epochs=2, random_state=0, n_jobs=1)

    pipe = make_pipeline(StandardScaler(), sae()).fit(X)
    codes = pipe.transform(X)
    assert scipy.sparse.issparse(codes) and codes.shape == (300, 32)
    assert (np.diff(codes.indptr) <= 4).all()
    np.testing.assert_array_equal(codes.toarray(), sae().fit(scaled).encode(scaled).toarray())
    assert list(pipe.get_feature_names_out()) == [f"topksae{i}" for i in range(32)]
    np.testing.assert_allclose(pipe[-1].inverse_transform(codes), sae().fit(scaled).decode(codes))

    dl = make_pipeline(StandardScaler(), DictionaryLearning(8, n_nonzero=2, random_state=0, n_jobs=1))
    np.testing.assert_array_equal(dl.fit_transform(X).toarray(),
                                  DictionaryLearning(8, n_nonzero=2, random_state=0, n_jobs=1)
                                  .fit(scaled).transform(scaled).toarray())
    D = unit_rows(rng, 10, 12)
    coder = make_pipeline(StandardScaler(), SparseCoder(D, n_nonzero=3)).fit(X)
    np.testing.assert_array_equal(coder.transform(X).toarray(),
                                  latentcore.sparse_encode(scaled, D, n_nonzero=3).toarray())
    tsne = make_pipeline(StandardScaler(), TSNE(perplexity=10, n_iter=60, random_state=0, n_jobs=1))
    np.testing.assert_array_equal(tsne.fit_transform(X),
                                  TSNE(perplexity=10, n_iter=60, random_state=0, n_jobs=1).fit_transform(scaled))
    assert list(tsne.get_feature_names_out()) == ["tsne0", "tsne1"]


# ----------------------------------------------------------------------------- pandas

@pytest.fixture(scope="module")
def frame():
    X = np.random.default_rng(3).standard_normal((120, 6))
    return X, pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])


def test_dataframes_give_the_ndarray_results(frame):
    X, df = frame
    names = np.array(df.columns, dtype=object)

    g_df, g_np = KNNGraph(5, n_jobs=1).fit(df), KNNGraph(5, n_jobs=1).fit(X)
    assert (g_df.graph_ != g_np.graph_).nnz == 0
    for a, b in zip(g_df.kneighbors(df.iloc[:7], 3), g_np.kneighbors(X[:7], 3)):
        np.testing.assert_array_equal(a, b)

    def tsne():
        return TSNE(perplexity=10, n_iter=60, random_state=0, n_jobs=1)

    t_df, t_np = tsne().fit(df), tsne().fit(X)
    np.testing.assert_array_equal(t_df.embedding_, t_np.embedding_)
    np.testing.assert_array_equal(t_df.transform(df.iloc[:5], n_iter=20), t_np.transform(X[:5], n_iter=20))

    D = unit_rows(np.random.default_rng(4), 9, 6)
    np.testing.assert_array_equal(SparseCoder(D, n_nonzero=2).transform(df).toarray(),
                                  SparseCoder(D, n_nonzero=2).transform(X).toarray())
    np.testing.assert_array_equal(SparseCoder(pd.DataFrame(D), n_nonzero=2).fit(df).transform(df).toarray(),
                                  SparseCoder(D, n_nonzero=2).transform(X).toarray())

    def dl():
        return DictionaryLearning(8, n_nonzero=2, batch_size=32, random_state=0, n_jobs=1)

    d_df, d_np = dl().fit(df), dl().fit(X)
    np.testing.assert_array_equal(d_df.components_, d_np.components_)
    np.testing.assert_array_equal(d_df.transform(df).toarray(), d_np.transform(X).toarray())
    d_part = dl().partial_fit(df)
    np.testing.assert_array_equal(d_part.components_, dl().partial_fit(X).components_)

    def sae():
        return TopKSAE(16, 3, batch_size=32, n_epochs=2, random_state=0, n_jobs=1)

    s_df, s_np = sae().fit(df), sae().fit(X)
    np.testing.assert_array_equal(s_df.decoder_, s_np.decoder_)
    np.testing.assert_array_equal(s_df.encode(df).toarray(), s_np.encode(X).toarray())
    np.testing.assert_array_equal(sae().partial_fit(df).decoder_, sae().partial_fit(X).decoder_)

    for est in (g_df, t_df, d_df, s_df):  # scikit-learn's record of the columns
        np.testing.assert_array_equal(est.feature_names_in_, names)
        assert est.n_features_in_ == 6
    for est in (g_np, t_np, d_np, s_np):
        assert not hasattr(est, "feature_names_in_") and est.n_features_in_ == 6
    with pytest.warns(UserWarning, match="feature names"):  # fitted with names, given none
        s_df.encode(X)
    with pytest.raises(ValueError, match="X has 5 features, but TopKSAE is expecting 6 features as input"):
        s_np.encode(X[:, :5])


def test_node_ids_as_a_pandas_series():
    model = DeepWalk(dim=4, walk_length=5, walks_per_node=2, random_state=0, n_jobs=1).fit(path_graph())
    np.testing.assert_array_equal(model.transform(pd.Series([3, 0, 7])), model.transform([3, 0, 7]))


# ----------------------------------------------------------------------------- TSNE init / initialization

def test_tsne_init_and_initialization():
    X = np.random.default_rng(5).standard_normal((60, 4))
    start = np.random.default_rng(6).normal(0.0, 1e-4, (60, 2))

    def run(**kwargs):
        return TSNE(perplexity=8, n_iter=40, random_state=0, n_jobs=1, **kwargs).fit_transform(X)

    default = run()
    np.testing.assert_array_equal(run(init="pca"), default)  # "pca" when neither is given
    np.testing.assert_array_equal(run(initialization="pca"), default)
    random = run(init="random")
    np.testing.assert_array_equal(run(initialization="random"), random)
    assert not np.array_equal(random, default)
    from_array = run(init=start)
    np.testing.assert_array_equal(run(initialization=start), from_array)
    np.testing.assert_array_equal(run(init=start, initialization=start.copy()), from_array)  # equal: fine
    np.testing.assert_array_equal(run(init="random", initialization="random"), random)
    for init, initialization in [("pca", "random"), ("random", start), (start, start + 1e-5)]:
        with pytest.raises(ValueError, match="init=.* and initialization=.* differ"):
            run(init=init, initialization=initialization)
    # Messages name the parameter the user gave.
    with pytest.raises(ValueError, match=r"^init must be finite with shape \(n, n_components\)"):
        run(init=start[:50])
    with pytest.raises(ValueError, match="^initialization must be finite"):
        run(initialization=np.full((60, 2), np.nan))
    with pytest.raises(ValueError, match="init='spectral' is not supported"):
        run(init="spectral")


# ----------------------------------------------------------------------------- scikit-learn's estimator checks

#: Checks that do not apply, with the reason, per estimator.
_DTYPES = {
    "check_estimators_dtypes": "integer X is refused (TypeError naming the fix), not converted to float: "
                               "latentcore rejects integer, bool, complex and object arrays rather than guess",
    "check_complex_data": "complex X raises TypeError naming the dtype, not scikit-learn's ValueError wording",
    "check_dtype_object": "object X is refused (TypeError naming the dtype), not converted",
}
EXPECTED_FAILURES = {
    KNNGraph: {
        **_DTYPES,
        "check_fit2d_1sample": "one sample: the error names the parameter to change (k is too large for X with "
                               "1 rows), not scikit-learn's 'n_samples=1' wording",
    },
    TSNE: {
        **_DTYPES,
        "check_n_features_in_after_fitting": "transform's argument is Y (openTSNE's name) and its error says "
                                             "'Y has 1 features, but TSNE is expecting 4', not 'X has ...'",
        "check_estimator_sparse_tag": "a scipy sparse X is a precomputed affinity matrix P (n, n), not data",
        "check_estimator_sparse_array": "a scipy sparse X is a precomputed affinity matrix P (n, n), not data",
        "check_estimator_sparse_matrix": "a scipy sparse X is a precomputed affinity matrix P (n, n), not data",
        "check_transformer_general": "transform places new points into the fixed map (openTSNE's semantics); "
                                     "it does not reproduce the training points' map, so fit_transform(X) != "
                                     "fit(X).transform(X)",
        "check_transformer_data_not_an_array": "compares fit_transform(X) with transform(X) (see "
                                               "check_transformer_general)",
    },
    SparseCoder: {
        **_DTYPES,
        "check_transformer_n_iter": "max_iter bounds LASSO's sweeps per signal inside transform; fit learns "
                                    "nothing, so there is no n_iter_",
    },
    DictionaryLearning: dict(_DTYPES),
    TopKSAE: dict(_DTYPES),
}

#: SparseCoder's dictionary fixes the width of X; each check gets one of the
#: width its data has (as scikit-learn's own test suite does for its SparseCoder).
_CODER_WIDTH = {"check_n_features_in_after_fitting": 4, "check_positive_only_tag_during_fit": 4,
                "check_estimators_dtypes": 5, "check_transformers_unfitted_stateless": 5, "check_dtype_object": 10,
                "check_fit2d_1sample": 10, "check_fit2d_1feature": 1, "check_complex_data": 1,
                "check_estimators_overwrite_params": 2, "check_estimators_fit_returns_self": 2,
                "check_readonly_memmap_input": 2, "check_fit_idempotent": 2, "check_fit_check_is_fitted": 2,
                "check_n_features_in": 2}


def _check_name(check) -> str:
    while isinstance(check, functools.partial):
        check = check.func
    return check.__name__


def _instance_for(cls, check_name):
    if cls is not SparseCoder:
        return small(cls)
    width = _CODER_WIDTH.get(check_name, 3)
    return SparseCoder(unit_rows(np.random.default_rng(0), 5, width), n_nonzero=1, n_jobs=1)


@pytest.mark.parametrize("cls", [KNNGraph, TSNE, SparseCoder, DictionaryLearning, TopKSAE],
                         ids=lambda c: c.__name__)
def test_scikit_learn_estimator_checks(cls):
    expected = EXPECTED_FAILURES[cls]
    ran, failed_as_expected = set(), set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _, check in estimator_checks_generator(small(cls)):
            name = _check_name(check)
            instance = _instance_for(cls, name)
            try:
                check(instance)
            except unittest.SkipTest:  # e.g. array API checks without SCIPY_ARRAY_API
                continue
            except Exception as exc:  # noqa: BLE001 -- reported with the check's name
                if name not in expected:
                    raise AssertionError(f"{cls.__name__}: {name} failed: {exc!r}") from exc
                failed_as_expected.add(name)
            else:
                assert name not in expected, f"{cls.__name__}: {name} is listed as failing but passes"
            ran.add(name)
    assert ran >= {"check_estimator_repr", "check_no_attributes_set_in_init", "check_fit_check_is_fitted",
                   "check_n_features_in", "check_estimators_pickle"}
    assert failed_as_expected == set(expected)  # the list stays honest: each one does fail


#: The API checks that take no X: Node2Vec and DeepWalk fit a graph, so
#: check_estimator skips everything else (tag input_tags.two_d_array=False).
_API_CHECKS = ["check_estimator_cloneable", "check_estimator_tags_renamed", "check_valid_tag_types",
               "check_estimator_repr", "check_no_attributes_set_in_init",
               "check_do_not_raise_errors_in_init_or_set_params", "check_mixin_order",
               "check_parameters_default_constructible", "check_get_params_invariance", "check_set_params"]


@pytest.mark.parametrize("cls", [Node2Vec, DeepWalk], ids=lambda c: c.__name__)
def test_graph_estimators_pass_the_api_checks(cls):
    est = small(cls)
    for name in _API_CHECKS:
        getattr(estimator_checks, name)(cls.__name__, est)
    with pytest.warns(SkipTestWarning, match="Can't test estimator"):
        list(estimator_checks_generator(est))
