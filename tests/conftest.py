import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(20261124)


def pair_distances(Q: np.ndarray, X: np.ndarray, idx: np.ndarray, metric: str) -> np.ndarray:
    """Reference distance, in float64, between each query row r and X[idx[r, t]]."""
    Q = Q.astype(np.float64)[:, None, :]
    Y = X.astype(np.float64)[idx]
    if metric in ("euclidean", "sqeuclidean"):
        sq = ((Q - Y) ** 2).sum(-1)
        return np.sqrt(sq) if metric == "euclidean" else sq
    dot = (Q * Y).sum(-1)
    if metric == "inner_product":
        return -dot
    return np.maximum(0.0, 1.0 - dot / (np.linalg.norm(Q, axis=-1) * np.linalg.norm(Y, axis=-1)))


SBM_BLOCKS, SBM_BLOCK_SIZE = 10, 200


def planted_blocks(p_in: float = 0.04, p_out: float = 0.004):
    """A 10-block stochastic block model of 2000 nodes (networkx) and its block labels."""
    nx = pytest.importorskip("networkx")
    probs = np.full((SBM_BLOCKS, SBM_BLOCKS), p_out)
    np.fill_diagonal(probs, p_in)
    G = nx.stochastic_block_model([SBM_BLOCK_SIZE] * SBM_BLOCKS, probs.tolist(), seed=0)
    return G, np.repeat(np.arange(SBM_BLOCKS), SBM_BLOCK_SIZE)


def micro_f1(embedding: np.ndarray, labels: np.ndarray) -> float:
    """5-fold micro-F1 of a logistic regression: how well an embedding separates the labels."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    return cross_val_score(LogisticRegression(max_iter=2000), embedding, labels, cv=5,
                           scoring="f1_micro").mean()


def run_isolated(code: str, timeout: float = 60) -> "subprocess.CompletedProcess[str]":
    """Runs ``python -c code`` with this interpreter in a fresh process, so a
    segfault, abort or heap corruption fails one test instead of the run."""
    import subprocess
    import sys
    import textwrap

    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout)


def assert_kernel_refuses(setup: str, kernel: str, change: str, word: str) -> None:
    """Runs ``setup`` (indented code that defines ``args``, the keyword
    arguments of a valid call), then ``kernel(**args)`` with ``change``
    (keyword overrides as source, e.g. "p=0.0") in a fresh process; asserts
    the process survives and the call raised a ValueError naming ``word``."""
    result = run_isolated(setup + f"""
    try:
        {kernel}(**{{**args, **dict({change})}})
    except ValueError as exc:
        assert {word!r} in str(exc), exc
    else:
        raise AssertionError("accepted")
    """)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])


def assert_calls_refused(code: str, timeout: float = 120) -> str:
    """Runs ``code``, which defines ``calls`` (a dict of name -> zero-argument
    callable, typically direct ``_core`` calls with crafted arrays), in a fresh
    process; asserts the process survives and every call raised ValueError.
    ``code`` starts with numpy as np, _core, _backend, the SGEMM capsule ``g``
    and zero-array makers ``f32(*shape)``, ``i32(*shape)`` in scope. Returns
    the process's output for further checks."""
    prelude = """
import numpy as np
from latentcore import _core, _backend

g = _backend.scipy_sgemm()
f32 = lambda *s: np.zeros(s, np.float32)
i32 = lambda *s: np.zeros(s, np.int32)
"""
    loop = """
for name, call in calls.items():
    try:
        call()
    except ValueError:
        print("refused", name)
    else:
        print("ACCEPTED", name)
"""
    import textwrap

    result = run_isolated(prelude + textwrap.dedent(code) + loop, timeout=timeout)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ACCEPTED" not in result.stdout, result.stdout
    return result.stdout


def assert_interruptible(call, *, delay: float = 0.5, within: float | None = None):
    """Sends Ctrl-C (SIGINT to the main thread) ``delay`` seconds into
    ``call()`` from a helper thread; asserts it raises KeyboardInterrupt within
    ``within`` seconds of the signal (default 1 s; 3 s under AddressSanitizer,
    which slows every item), and that the call was still running."""
    import _thread
    import os
    import threading
    import time

    if within is None:
        within = 3.0 if "asan" in os.environ.get("LD_PRELOAD", "") else 1.0

    fired = []

    def interrupt():
        time.sleep(delay)
        fired.append(time.perf_counter())
        _thread.interrupt_main()

    threading.Thread(target=interrupt, daemon=True).start()
    finished = []
    with pytest.raises(KeyboardInterrupt):
        call()
        finished.append(True)
        time.sleep(delay + 5)  # absorbs the late signal; the call's ending is what failed
    stopped = time.perf_counter()
    assert not finished, "the call ended before the interrupt was sent; make it longer"
    assert fired
    assert stopped - fired[0] < within, f"took {stopped - fired[0]:.2f} s to stop"
