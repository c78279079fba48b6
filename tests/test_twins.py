"""The binding conventions of the compiled modules, checked without a GPU.

- Twins: every kernel bound in both ``latentcore._core`` and
  ``latentcore._cuda`` has the same signature in both (parameter names,
  order, dtypes, shapes, C order, writability, return type), apart from the
  last parameter: the thread count on the CPU, the stream on the GPU.
  ``_cuda`` imports without a GPU, so this runs wherever it was built.
- Outputs: every ``_core`` output or in-place array refuses implicit
  conversion: a wrong dtype, order or shape raises (TypeError / ValueError)
  and leaves the caller's array as it was, instead of the kernel writing into
  a throwaway copy. Each case first makes the correct call and checks that it
  writes into the same kind of array, so the test can fail.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from latentcore import _backend, _core

try:
    from latentcore import _cuda
except ImportError:  # a build without nvcc
    _cuda = None

# ------------------------------------------------------------------ signatures

_DEF = re.compile(r"^def (\w+)\((.*)\) -> (.+)$", re.S)


def _split_params(text: str) -> list[str]:
    """Top-level comma-separated parameters of a nanobind signature."""
    params, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "," and depth == 0:
            params.append(text[start:i].strip())
            start = i + 1
    if text[start:].strip():
        params.append(text[start:].strip())
    return params


def signatures(function) -> list[tuple[list[str], str]]:
    """One (parameters, return type) per overload, from nanobind's signatures."""
    out = []
    for overload in function.__nb_signature__:
        match = _DEF.match(overload[0])
        assert match, overload[0]
        out.append((_split_params(match.group(2)), match.group(3)))
    return out


def bound_functions(module) -> dict:
    return {name: getattr(module, name) for name in dir(module)
            if hasattr(getattr(module, name), "__nb_signature__")}


def name_of(param: str) -> str:
    return param.split(":", 1)[0].strip()


def on_cpu(param: str) -> str:
    """A CUDA parameter as its CPU twin declares it."""
    return param.replace("device='cuda'", "device='cpu'")


def test_every_argument_is_named():
    modules = [_core] + ([_cuda] if _cuda is not None else [])
    unnamed = [f"{m.__name__}.{name}({p})" for m in modules for name, f in bound_functions(m).items()
               for params, _ in signatures(f) for p in params if re.fullmatch(r"arg\d*", name_of(p))]
    assert not unnamed


def test_threads_come_last_on_the_cpu():
    misplaced = [name for name, f in bound_functions(_core).items() for params, _ in signatures(f)
                 if "n_threads" in map(name_of, params) and name_of(params[-1]) != "n_threads"]
    assert not misplaced


needs_cuda = pytest.mark.skipif(_cuda is None, reason="latentcore was built without CUDA")


def twin_names() -> list[str]:
    if _cuda is None:
        return []
    return sorted(set(bound_functions(_core)) & set(bound_functions(_cuda)))


@needs_cuda
def test_the_twins_are_the_kernels_both_modules_have():
    # Guards the parametrized test below against passing on an empty list.
    assert {"tsne_attractive_forces", "tsne_gradient_step", "walks_sample", "sgns_train",
            "sae_sparse_decode", "sae_adam_update"} <= set(twin_names())


@needs_cuda
def test_every_cuda_kernel_takes_the_stream_last():
    misplaced = [name for name, f in bound_functions(_cuda).items() for params, _ in signatures(f)
                 if "stream" in map(name_of, params) and name_of(params[-1]) != "stream"]
    assert not misplaced


@needs_cuda
@pytest.mark.parametrize("name", twin_names())
def test_twin_signatures_match_but_for_threads_and_stream(name):
    cpu = signatures(getattr(_core, name))
    gpu = signatures(getattr(_cuda, name))
    for params, _ in cpu:
        assert params[-1] == "n_threads: int", params
    for params, _ in gpu:
        assert params[-1] == "stream: int", params
    # Overloads (float32 and float64 weights) in any order, each with its twin.
    as_cpu = sorted((params[:-1], ret) for params, ret in cpu)
    as_gpu = sorted(([on_cpu(p) for p in params[:-1]], ret) for params, ret in gpu)
    assert as_gpu == as_cpu
    assert all("device='cuda'" in p for params, _ in gpu for p in params if "ndarray" in p)


# --------------------------------------------------------------------- outputs

def _csr(n, per_row, rng):
    """A small CSR graph with sorted rows: row i links to the next per_row nodes."""
    indices = np.array([sorted((i + 1 + t) % n for t in range(per_row)) for i in range(n)], np.int32).ravel()
    indptr = np.arange(0, n * per_row + 1, per_row, dtype=np.int64)
    weights = rng.uniform(0.5, 2.0, indices.size).astype(np.float32)
    return indptr, indices, weights


def _unit_rows(a):
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


def _float32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _float64(rng, *shape):
    return rng.standard_normal(shape)


def case_exact_knn(rng):
    return dict(data=_float32(rng, 8, 3), queries=None, metric=0, exclude_self=True, center=None,
                sgemm=_backend.scipy_sgemm(), block=4, index=np.empty((8, 2), np.int32),
                score=np.empty((8, 2), np.float32), n_threads=1)


def case_select_topk_rows(rng):
    return dict(values=_float32(rng, 5, 7), largest=False, score=np.empty((5, 3), np.float32),
                index=np.empty((5, 3), np.int32), col_bias=None, n_threads=1)


def case_tsne_perplexity_affinities(rng):
    return dict(sq_distances=rng.uniform(0.5, 3.0, (6, 3)).astype(np.float32), perplexities=np.array([2.0]),
                tol=1e-5, conditional=np.empty((6, 3)), n_threads=1)


def case_tsne_attractive_forces(rng):
    indptr, indices, weights = _csr(5, 2, rng)
    return dict(indptr=indptr, indices=indices, weights=weights, Y=_float64(rng, 5, 2), dof=1.0,
                exaggeration=1.0, forces=np.empty((5, 2)), kl_terms=np.empty(5), n_threads=1)


def case_tsne_exact_repulsion(rng):
    return dict(Y=_float64(rng, 5, 2), dof=1.0, repulsion=np.empty((5, 2)), z_terms=np.empty(5), n_threads=1)


def case_tsne_repulsion_from(rng):
    return dict(sources=_float64(rng, 4, 2), points=_float64(rng, 3, 2), dof=1.0, repulsion=np.empty((3, 2)),
                w_sums=np.empty(3), n_threads=1)


def case_tsne_scatter_charges(rng):
    return dict(Y=rng.uniform(0.0, 2.0, (5, 2)), charges=_float64(rng, 5, 3), n_boxes=2, n_interp=3, lower=0.0,
                box_width=1.0, values=np.empty((3, 36)), n_threads=1)


def case_tsne_gather_potentials(rng):
    return dict(Y=rng.uniform(0.0, 2.0, (5, 2)), values=_float64(rng, 3, 36), n_boxes=2, n_interp=3, lower=0.0,
                box_width=1.0, potentials=np.empty((5, 3)), n_threads=1)


def case_tsne_gradient_step(rng):
    return dict(Y=_float64(rng, 5, 2), gradient=_float64(rng, 5, 2), update=_float64(rng, 5, 2),
                gains=np.ones((5, 2)), learning_rate=1.0, momentum=0.5, min_gain=0.01, recenter=True, n_threads=1)


def case_walks_build_alias(rng):
    indptr, indices, weights = _csr(4, 2, rng)
    return dict(indptr=indptr, indices=indices, weights=weights, keep=np.empty(8, np.float32),
                alias=np.empty(8, np.int32), n_threads=1)


def case_walks_sample(rng):
    indptr, indices, weights = _csr(4, 2, rng)
    return dict(indptr=indptr, indices=indices, weights=np.ones_like(weights), keep=np.empty(0, np.float32),
                alias=np.empty(0, np.int32), totals=np.empty(0), maxima=np.empty(0, np.float32),
                starts=np.array([0, 1, 3], np.int32), p=1.0, q=1.0, seed=0, first_walk=0,
                walks=np.empty((3, 4), np.int32), n_threads=1)


def case_sgns_train(rng):
    return dict(walks=rng.integers(0, 5, (2, 4)).astype(np.int32), keep_probability=np.ones(5, np.float32),
                noise_keep=np.ones(5, np.float32), noise_alias=np.arange(5, dtype=np.int32),
                input=_float32(rng, 5, 4), output=_float32(rng, 5, 4), window=2, negative=2, alpha=0.025,
                min_alpha=1e-4, seed=0, first_walk=0, total_walks=2, n_threads=1)


def _dictionary(rng):
    D = _unit_rows(rng.standard_normal((6, 5)))
    return D, (D.astype(np.float64) @ D.T.astype(np.float64))


def case_sparse_batch_omp(rng):
    D, gram = _dictionary(rng)
    return dict(x=_float32(rng, 4, 5), dictionary=D, gram=gram.astype(np.float32), sgemm=_backend.scipy_sgemm(),
                tol=-1.0, positive=False, support=np.empty((4, 2), np.int32), coefs=np.empty((4, 2), np.float32),
                count=np.empty(4, np.int32), n_threads=1)


def case_sparse_lasso_cd(rng):
    D, gram = _dictionary(rng)
    return dict(x=_float32(rng, 4, 5), dictionary=D, gram=gram, sgemm=_backend.scipy_sgemm(), alpha=0.01,
                positive=False, tol=1e-6, max_iter=50, codes=np.zeros((4, 6), np.float32), n_threads=1)


def case_sparse_lasso_homotopy(rng):
    D, gram = _dictionary(rng)
    return dict(x=_float32(rng, 4, 5), dictionary=D, gram=gram.astype(np.float32), sgemm=_backend.scipy_sgemm(),
                alphas=np.array([0.05, 0.01]), positive=False, max_steps=100, support=np.empty((8, 5), np.int32),
                values=np.empty((8, 5), np.float32), count=np.empty((4, 2), np.int32), n_threads=1)


def case_sparse_lasso_knots(rng):
    D, gram = _dictionary(rng)
    return dict(correlations=D.astype(np.float64) @ rng.standard_normal(5), gram=gram, n_features=5,
                positive=False, alpha_min=0.0, knot_alphas=np.empty(20), knot_support=np.empty((20, 5), np.int32),
                knot_values=np.empty((20, 5)), knot_count=np.empty(20, np.int32))


def case_sparse_topk(rng):
    D, _ = _dictionary(rng)
    return dict(x=_float32(rng, 4, 5), dictionary=D, sgemm=_backend.scipy_sgemm(), positive=False,
                index=np.empty((4, 2), np.int32), values=np.empty((4, 2), np.float32), n_threads=1)


def case_sparse_update_dictionary(rng):
    codes = rng.uniform(0.1, 1.0, (10, 6))
    codes[:, 5] = 0.0  # atom 5 is used by no code: it is listed in `unused`
    x = rng.standard_normal((10, 5))
    D, _ = _dictionary(rng)
    return dict(A=codes.T @ codes, B=codes.T @ x, dictionary=D, min_usage=1e-12, unused=np.empty(6, np.int32),
                n_threads=1)


def case_sae_topk_encode(rng):
    return dict(x=_float32(rng, 4, 5), weight=_float32(rng, 6, 5), bias=_float32(rng, 6),
                sgemm=_backend.scipy_sgemm(), value=np.empty((4, 2), np.float32), index=np.empty((4, 2), np.int32),
                n_threads=1)


def _codes(rng):
    index = np.array([[0, 3], [1, 5], [2, 4], [5, 0]], np.int32)
    return index, rng.uniform(0.5, 1.5, index.shape).astype(np.float32)


def case_sae_sparse_decode(rng):
    index, value = _codes(rng)
    return dict(index=index, value=value, decoder=_float32(rng, 6, 5), bias=_float32(rng, 5),
                out=np.empty((4, 5), np.float32), n_threads=1)


def case_sae_sparse_decode_backward(rng):
    index, value = _codes(rng)
    return dict(index=index, value=value, grad_out=_float32(rng, 4, 5), x_centered=_float32(rng, 4, 5),
                decoder=_float32(rng, 6, 5), grad_decoder=np.zeros((6, 5), np.float32),
                grad_encoder=np.zeros((6, 5), np.float32), grad_encoder_bias=np.zeros(6, np.float32), n_threads=1)


def case_sae_adam_update(rng):
    return dict(param=_float32(rng, 3, 4), grad=_float32(rng, 3, 4), first_moment=np.zeros((3, 4), np.float32),
                second_moment=np.zeros((3, 4), np.float32), learning_rate=0.1, beta1=0.9, beta2=0.999, eps=1e-8,
                step=1, n_threads=1)


def case_sae_decode_error(rng):
    index, value = _codes(rng)
    return dict(index=index, value=value, decoder=_float32(rng, 6, 5), bias=_float32(rng, 5),
                target=_float32(rng, 4, 5), scale=0.5, error=np.empty((4, 5), np.float32),
                grad_out=np.empty((4, 5), np.float32), sq_error=np.empty(4, np.float64), n_threads=1)


def case_sae_update_latents(rng):
    index, value = _codes(rng)
    aux_index = np.array([[1], [2], [-1], [4]], np.int32)
    moments = {name: np.zeros(shape, np.float32)
               for name, shape in (("encoder_first_moment", (6, 5)), ("encoder_second_moment", (6, 5)),
                                   ("encoder_bias_first_moment", (6,)), ("encoder_bias_second_moment", (6,)),
                                   ("decoder_first_moment", (6, 5)), ("decoder_second_moment", (6, 5)))}
    return dict(index=index, value=value, grad_out=_float32(rng, 4, 5), aux_index=aux_index,
                aux_value=rng.uniform(0.5, 1.5, (4, 1)).astype(np.float32), aux_grad_out=_float32(rng, 4, 5),
                x_centered=_float32(rng, 4, 5), encoder=_float32(rng, 6, 5), encoder_bias=_float32(rng, 6),
                decoder=_float32(rng, 6, 5), grad_pre_bias=np.empty(5, np.float32), norms=np.empty(6, np.float32),
                learning_rate=0.1, beta1=0.9, beta2=0.999, eps=1e-8, step=1, n_threads=1, **moments)


# kernel -> (argument factory, the output and in-place arrays it writes)
OUTPUTS = {
    "exact_knn": (case_exact_knn, ["index", "score"]),
    "select_topk_rows": (case_select_topk_rows, ["score", "index"]),
    "tsne_perplexity_affinities": (case_tsne_perplexity_affinities, ["conditional"]),
    "tsne_attractive_forces": (case_tsne_attractive_forces, ["forces", "kl_terms"]),
    "tsne_exact_repulsion": (case_tsne_exact_repulsion, ["repulsion", "z_terms"]),
    "tsne_repulsion_from": (case_tsne_repulsion_from, ["repulsion", "w_sums"]),
    "tsne_scatter_charges": (case_tsne_scatter_charges, ["values"]),
    "tsne_gather_potentials": (case_tsne_gather_potentials, ["potentials"]),
    "tsne_gradient_step": (case_tsne_gradient_step, ["Y", "update", "gains"]),
    "walks_build_alias": (case_walks_build_alias, ["keep", "alias"]),
    "walks_sample": (case_walks_sample, ["walks"]),
    "sgns_train": (case_sgns_train, ["input", "output"]),
    "sparse_batch_omp": (case_sparse_batch_omp, ["support", "coefs", "count"]),
    "sparse_lasso_cd": (case_sparse_lasso_cd, ["codes"]),
    "sparse_lasso_homotopy": (case_sparse_lasso_homotopy, ["support", "values", "count"]),
    "sparse_lasso_knots": (case_sparse_lasso_knots, ["knot_alphas", "knot_support", "knot_values", "knot_count"]),
    "sparse_topk": (case_sparse_topk, ["index", "values"]),
    "sparse_update_dictionary": (case_sparse_update_dictionary, ["dictionary", "unused"]),
    "sae_topk_encode": (case_sae_topk_encode, ["value", "index"]),
    "sae_sparse_decode": (case_sae_sparse_decode, ["out"]),
    "sae_sparse_decode_backward": (case_sae_sparse_decode_backward, ["grad_decoder", "grad_encoder",
                                                                     "grad_encoder_bias"]),
    "sae_adam_update": (case_sae_adam_update, ["param", "first_moment", "second_moment"]),
    "sae_decode_error": (case_sae_decode_error, ["error", "grad_out", "sq_error"]),
    "sae_update_latents": (case_sae_update_latents, ["encoder", "encoder_first_moment", "encoder_second_moment",
                                                     "encoder_bias", "encoder_bias_first_moment",
                                                     "encoder_bias_second_moment", "decoder", "decoder_first_moment",
                                                     "decoder_second_moment", "grad_pre_bias", "norms"]),
}

SENTINEL = {"f": 0.375, "i": 77}


def filled(a: np.ndarray) -> np.ndarray:
    """A copy of a with every entry a value no kernel above leaves there (for
    in-place arrays whose contents matter, the values themselves)."""
    return a.copy() if a.dtype.kind == "f" and np.any(a) else np.full_like(a, SENTINEL[a.dtype.kind])


def wrong_dtype(a):
    other = {np.dtype(np.float32): np.float64, np.dtype(np.float64): np.float32, np.dtype(np.int32): np.int64}
    return a.astype(other[a.dtype])


def wrong_order(a):
    """Not C-contiguous: Fortran order for a matrix, every other element for a vector."""
    if a.ndim >= 2:
        return np.asfortranarray(a)
    doubled = np.repeat(a, 2)
    return doubled[::2]


def wrong_shape(a):
    return np.concatenate([a, a[:1]]) if a.ndim == 1 else np.concatenate([a, a[:1]], axis=0)


def test_every_output_binding_is_in_the_table():
    """A new _core kernel with an output array is added to OUTPUTS (the
    kernels that only return values are listed here)."""
    returns_only = {"knn_ranking_scale", "knn_candidates_per_point", "sparse_omp_capacity",
                    "tsne_symmetrize_affinities"}
    assert set(bound_functions(_core)) == set(OUTPUTS) | returns_only


@pytest.mark.parametrize("kernel", sorted(OUTPUTS))
def test_the_table_call_writes_its_outputs(kernel):
    factory, outputs = OUTPUTS[kernel]
    args = factory(np.random.default_rng(0))
    before = {}
    for name in outputs:
        args[name] = filled(args[name])
        before[name] = args[name].copy()
    getattr(_core, kernel)(**args)
    for name in outputs:
        assert not np.array_equal(args[name], before[name]), f"{kernel} left {name} as it was"


@pytest.mark.parametrize("fault", [wrong_dtype, wrong_order, wrong_shape], ids=lambda f: f.__name__)
@pytest.mark.parametrize("kernel,output", [(k, o) for k in sorted(OUTPUTS) for o in OUTPUTS[k][1]])
def test_a_wrong_output_raises_and_stays_untouched(kernel, output, fault):
    factory, _ = OUTPUTS[kernel]
    args = factory(np.random.default_rng(0))
    bad = fault(filled(args[output]))
    base = bad if bad.base is None else bad.base  # wrong_order's vector is a view
    snapshot = base.copy()
    args[output] = bad
    with pytest.raises((TypeError, ValueError)):
        getattr(_core, kernel)(**args)
    np.testing.assert_array_equal(base, snapshot)
