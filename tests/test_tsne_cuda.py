"""The CUDA t-SNE kernels against their C++ twins (latentcore._core.tsne_*) on
fresh random inputs, and the GPU objective (tsne._Objective on the GPU device) against
tsne._Objective. Skipped without cupy or without a GPU."""

import numpy as np
import pytest
import scipy.fft
import scipy.sparse

import latentcore
from latentcore import _core, _device
from latentcore.tsne import _ExactRepulsion, _FFTRepulsion, _Objective, double_convolve

cp = pytest.importorskip("cupy")
pytestmark = pytest.mark.skipif(not _device.cuda_available(), reason="no CUDA device or no CUDA build")

# Relative to the largest entry of the reference array, so that entries that
# cancel to near zero are not held to a relative bound they cannot meet.
ELEMENTWISE_RTOL = 1e-10  # the same operations, rounded the same way
SUM_RTOL = 1e-9  # sums whose order differs from the C++ one, or pow/log from another libm
OBJECTIVE_RTOL = 1e-8  # whole gradients: cuFFT against pocketfft, cupy reductions
TRAJECTORY_RTOL = 1e-8  # ten steps amplify 1e-14 gradient noise to about 3e-14
# The C++ kernel takes log of a float32 weight in single precision (std::log(float)),
# the CUDA kernel in double: KL terms agree to about float32 resolution.
KL_VS_CPU_RTOL = 1e-6
# tsne._FFTRepulsion transforms in single precision, the GPU in double.
SINGLE_FFT_RTOL = 1e-5

DIMS = [1, 2, 3]
DOFS = [0.5, 1.0, 3.0]
THREADS = 2
CPU = _device.cpu(THREADS)
GPU = _device.gpu


def stream():
    return cp.cuda.get_current_stream().ptr


def cuda():
    return _device.require_cuda_module()


def assert_close(actual, desired, rtol):
    actual = cp.asnumpy(actual)
    desired = np.asarray(desired)
    assert actual.shape == desired.shape and actual.dtype == desired.dtype
    scale = float(np.abs(desired).max()) if desired.size else 0.0
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * scale)


def assert_bitwise_equal(a, b):
    a, b = cp.asnumpy(a), cp.asnumpy(b)
    np.testing.assert_array_equal(a.view(np.uint64), b.view(np.uint64))


def relative_error(a, b):
    return np.linalg.norm(cp.asnumpy(a) - b) / np.linalg.norm(b)


def random_affinities(rng, n, per_row=12):
    """CSR (indptr int64, indices int32, weights float32) with empty rows,
    duplicates summed, self entries allowed and a few explicit zeros."""
    counts = rng.integers(0, per_row + 1, n)
    rows = np.repeat(np.arange(n), counts)
    cols = rng.integers(0, n, rows.size)
    P = scipy.sparse.csr_array((rng.random(rows.size), (rows, cols)), shape=(n, n))
    P.sum_duplicates()
    P.sort_indices()
    data = P.data / max(P.data.sum(), 1e-300)
    data[rng.random(data.size) < 0.05] = 0.0
    return P.indptr.astype(np.int64), P.indices.astype(np.int32), data.astype(np.float32)


def embedding(rng, n, dim, scale=3.0):
    return rng.standard_normal((n, dim)) * scale


# ------------------------------------------------------------------ attractive forces

@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("dof", DOFS)
@pytest.mark.parametrize("n", [1, 37, 3000])
def test_attractive_forces_match_cpu(rng, dim, dof, n):
    indptr, indices, weights = random_affinities(rng, n)
    Y = embedding(rng, n, dim)
    exaggeration = float(rng.uniform(1.0, 12.0))
    forces, kl_terms = np.empty_like(Y), np.empty(n)
    _core.tsne_attractive_forces(indptr, indices, weights, Y, dof, exaggeration, forces, kl_terms, THREADS)

    g = [cp.asarray(a) for a in (indptr, indices, weights, Y)]
    g_forces, g_kl = cp.empty_like(g[3]), cp.empty(n)
    cuda().tsne_attractive_forces(*g, dof, exaggeration, g_forces, g_kl, stream())
    assert_close(g_forces, forces, SUM_RTOL)
    assert_close(g_kl, kl_terms, KL_VS_CPU_RTOL)

    # The KL terms from their definition, in double precision.
    rows = np.repeat(np.arange(n), np.diff(indptr))
    sq = ((Y[rows] - Y[indices]) ** 2).sum(axis=1)
    p = weights.astype(np.float64)
    terms = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1.0)) + dof * np.log1p(sq / dof)), 0.0)
    assert_close(g_kl, np.bincount(rows, terms, minlength=n), SUM_RTOL)

    # Without kl_terms, and with float64 weights (the same values): the same forces.
    again = cp.empty_like(g[3])
    cuda().tsne_attractive_forces(g[0], g[1], g[2].astype(cp.float64), g[3], dof, exaggeration, again,
                                  None, stream())
    assert_bitwise_equal(again, g_forces)


# ------------------------------------------------------------------ exact repulsion

@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("dof", DOFS)
@pytest.mark.parametrize("n", [1, 2, 2500])
def test_exact_repulsion_matches_cpu(rng, dim, dof, n):
    Y = embedding(rng, n, dim)
    repulsion, z_terms = np.empty_like(Y), np.empty(n)
    _core.tsne_exact_repulsion(Y, dof, repulsion, z_terms, THREADS)
    g_Y = cp.asarray(Y)
    g_rep, g_z = cp.empty_like(g_Y), cp.empty(n)
    cuda().tsne_exact_repulsion(g_Y, dof, g_rep, g_z, stream())
    assert_close(g_rep, repulsion, SUM_RTOL)
    assert_close(g_z, z_terms, SUM_RTOL)


# ------------------------------------------------------------------ grid interpolation

def grids(Y, dim):
    """A grid covering Y, and one covering only its middle (points outside
    are clamped to the border boxes and extrapolated, on both devices)."""
    n_boxes = {1: 60, 2: 25, 3: 8}[dim]
    lo, hi = float(Y.min()), float(Y.max())
    span = max(hi - lo, 1e-12)
    return [(n_boxes, lo, span * (1.0 + 1e-9) / n_boxes), (n_boxes, lo + 0.25 * span, 0.5 * span / n_boxes)]


def clustered_embedding(rng, n, dim):
    """Half the points in one box (many chunks for one block), half spread out."""
    Y = embedding(rng, n, dim)
    Y[: n // 2] = 0.5 + 1e-3 * rng.standard_normal((n // 2, dim))
    return Y


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("p", [2, 3, 5])
@pytest.mark.parametrize("n", [1, 5000])
def test_scatter_matches_cpu_and_repeats_bit_for_bit(rng, dim, p, n):
    Y = clustered_embedding(rng, n, dim)
    charges = rng.standard_normal((n, dim + 1))
    g_Y, g_charges = cp.asarray(Y), cp.asarray(charges)
    for n_boxes, lower, box_width in grids(Y, dim):
        nodes = (n_boxes * p) ** dim
        values = np.empty((charges.shape[1], nodes))
        _core.tsne_scatter_charges(Y, charges, n_boxes, p, lower, box_width, values, THREADS)
        first = cp.full((charges.shape[1], nodes), cp.nan)  # every node must be written
        second = cp.empty_like(first)
        for out in (first, second):
            cuda().tsne_scatter_charges(g_Y, g_charges, n_boxes, p, lower, box_width, out, stream())
        assert_close(first, values, SUM_RTOL)
        assert_bitwise_equal(first, second)


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("p", [2, 3, 16])
@pytest.mark.parametrize("n", [1, 4000])
def test_gather_matches_cpu(rng, dim, p, n):
    Y = clustered_embedding(rng, n, dim)
    for n_boxes, lower, box_width in grids(Y, dim):
        n_boxes = min(n_boxes, 3) if p == 16 and dim == 3 else n_boxes
        values = rng.standard_normal((dim + 1, (n_boxes * p) ** dim))
        potentials = np.empty((n, dim + 1))
        _core.tsne_gather_potentials(Y, values, n_boxes, p, lower, box_width, potentials, THREADS)
        g_pot = cp.empty((n, dim + 1))
        cuda().tsne_gather_potentials(cp.asarray(Y), cp.asarray(values), n_boxes, p, lower, box_width,
                                      g_pot, stream())
        assert_close(g_pot, potentials, ELEMENTWISE_RTOL)


def test_scatter_without_points_is_zero():
    values = cp.full((2, 30 * 30), cp.nan)
    cuda().tsne_scatter_charges(cp.empty((0, 2)), cp.empty((0, 2)), 10, 3, -1.0, 0.2, values, stream())
    assert not cp.any(values)


# ------------------------------------------------------------------ gradient step

@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("n", [1, 3001])
@pytest.mark.parametrize("recenter", [True, False])
def test_gradient_step_matches_cpu(rng, dim, n, recenter):
    Y = embedding(rng, n, dim) + 5.0  # off the origin, so re-centring moves it
    gradient = rng.standard_normal((n, dim))
    update = rng.standard_normal((n, dim))
    gains = rng.uniform(0.01, 3.0, (n, dim))
    gradient[rng.random((n, dim)) < 0.1] = 0.0  # sign 0 on either side
    update[rng.random((n, dim)) < 0.1] = 0.0
    g = [cp.asarray(a) for a in (Y, gradient, update, gains)]
    _core.tsne_gradient_step(Y, gradient, update, gains, 200.0, 0.8, 0.01, recenter, THREADS)
    cuda().tsne_gradient_step(*g, 200.0, 0.8, 0.01, recenter, stream())
    assert_close(g[3], gains, ELEMENTWISE_RTOL)
    assert_close(g[2], update, ELEMENTWISE_RTOL)
    assert_close(g[0], Y, ELEMENTWISE_RTOL)
    if recenter:
        assert float(cp.abs(g[0].mean(axis=0)).max()) <= 1e-12 * max(1.0, float(cp.abs(g[0]).max()))


def test_gradient_step_repeats_bit_for_bit(rng):
    arrays = [embedding(rng, 100_003, 2), rng.standard_normal((100_003, 2)), np.zeros((100_003, 2)),
              np.ones((100_003, 2))]
    results = []
    for _ in range(2):
        g = [cp.asarray(a) for a in arrays]
        cuda().tsne_gradient_step(*g, 50.0, 0.5, 0.01, True, stream())
        results.append(g[0])
    assert_bitwise_equal(results[0], results[1])


# ------------------------------------------------------------------ whole gradients

class _DoubleFFTRepulsion(_FFTRepulsion):
    """tsne._FFTRepulsion with its transforms in double precision: the
    reference for the GPU path, which transforms in double."""

    def convolve(self, grid, spacing):
        return double_convolve(scipy.fft, grid, lambda *a: self.kernel_spectrum(*a, spacing))


@pytest.fixture(scope="module")
def affinities():
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((6, 10)) * 8.0
    X = (centres[rng.integers(0, 6, 700)] + rng.standard_normal((700, 10))).astype(np.float32)
    return latentcore.TSNE(perplexity=20, n_iter=1, n_jobs=THREADS).fit(X).affinities_


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("dof", DOFS)
def test_objective_matches_cpu(rng, affinities, dim, dof):
    P = affinities
    Y = embedding(rng, P.shape[0], dim)
    g_Y = cp.asarray(Y)
    intervals = 20 if dim == 3 else 50

    exact = _Objective(P, _ExactRepulsion(dof, CPU), dof)(Y, 4.0, with_kl=True)
    g_exact = _Objective(P, _ExactRepulsion(dof, GPU()), dof)(g_Y, 4.0, with_kl=True)
    assert isinstance(g_exact[0], cp.ndarray)
    assert relative_error(g_exact[0], exact[0]) < OBJECTIVE_RTOL
    assert g_exact[1] == pytest.approx(exact[1], rel=KL_VS_CPU_RTOL)

    fft = _FFTRepulsion(dof, CPU, 5, intervals, 1.0)
    double = _Objective(P, _DoubleFFTRepulsion(dof, CPU, 5, intervals, 1.0), dof)(Y, 4.0, True)
    single = _Objective(P, fft, dof)(Y, 4.0, True)
    g_fft = _Objective(P, _FFTRepulsion(dof, GPU(), 5, intervals, 1.0), dof)(g_Y, 4.0, with_kl=True)
    assert relative_error(g_fft[0], double[0]) < OBJECTIVE_RTOL
    assert relative_error(g_fft[0], single[0]) < SINGLE_FFT_RTOL
    assert g_fft[1] == pytest.approx(double[1], rel=KL_VS_CPU_RTOL)
    assert _Objective(P, _FFTRepulsion(dof, GPU(), 5, intervals, 1.0), dof)(g_Y, 1.0, with_kl=False)[1] is None


def test_a_few_steps_follow_cpu(rng, affinities):
    P = affinities
    Y = embedding(rng, P.shape[0], 2, scale=1e-2)
    update, gains = np.zeros_like(Y), np.ones_like(Y)
    g = [cp.asarray(a) for a in (Y, update, gains)]
    cpu = _Objective(P, _ExactRepulsion(1.0, CPU), 1.0)
    gpu = _Objective(P, _ExactRepulsion(1.0, GPU()), 1.0)
    for _ in range(10):
        gradient, _ = cpu(Y, 12.0, with_kl=False)
        _core.tsne_gradient_step(Y, gradient, update, gains, 50.0, 0.5, 0.01, True, THREADS)
        g_gradient, _ = gpu(g[0], 12.0, with_kl=False)
        GPU().call("tsne_gradient_step", g[0], g_gradient, g[1], g[2], 50.0, 0.5, 0.01, True)
    assert relative_error(g[0], Y) < TRAJECTORY_RTOL


# ------------------------------------------------------------------ argument checks

def test_shapes_are_checked_before_any_launch():
    Y = cp.zeros((10, 2))
    with pytest.raises(ValueError, match="forces"):
        cuda().tsne_attractive_forces(cp.zeros(11, cp.int64), cp.zeros(0, cp.int32), cp.zeros(0, cp.float32),
                                      Y, 1.0, 1.0, cp.zeros((10, 3)), None, stream())
    with pytest.raises(ValueError, match="indptr"):
        cuda().tsne_attractive_forces(cp.zeros(10, cp.int64), cp.zeros(0, cp.int32), cp.zeros(0, cp.float32),
                                      Y, 1.0, 1.0, cp.zeros((10, 2)), None, stream())
    with pytest.raises(ValueError, match="columns"):
        cuda().tsne_scatter_charges(Y, cp.zeros((10, 3)), 5, 3, 0.0, 1.0, cp.zeros((3, 100)), stream())
    with pytest.raises(ValueError, match="n_interp"):
        cuda().tsne_gather_potentials(Y, cp.zeros((3, 34 * 34)), 2, 17, 0.0, 1.0, cp.zeros((10, 3)), stream())
    with pytest.raises(ValueError, match="1, 2 or 3"):
        cuda().tsne_exact_repulsion(cp.zeros((10, 4)), 1.0, cp.zeros((10, 4)), cp.zeros(10), stream())
    with pytest.raises(TypeError):  # host arrays are not GPU arrays
        cuda().tsne_exact_repulsion(np.zeros((10, 2)), 1.0, np.zeros((10, 2)), np.zeros(10), stream())
