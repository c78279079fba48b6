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
