"""How good is a result? Scores that compare an output with a reference."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import check_matrix, check_positive_int

__all__ = ["atom_recovery", "dead_fraction", "fraction_of_variance_unexplained", "knn_recall", "mean_l0",
           "trustworthiness"]

_ROW_CHUNK = 4096  # rows per vectorised step: bounds the (rows, k, k) comparison


def _as_index_matrix(a: Any, name: str) -> np.ndarray:
    a = np.asarray(a.get() if hasattr(a, "get") else a)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of neighbour indices (n, k), got shape {a.shape}")
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer indices, got dtype {a.dtype}")
    return a


def knn_recall(approx: Any, exact: Any) -> float:
    """Mean fraction of the exact neighbours that an approximate search found.

    Parameters
    ----------
    approx : int array of shape (n, k_approx)
        Neighbour indices to score (order within a row is ignored).
    exact : int array of shape (n, k)
        The true neighbour indices; recall is measured against its k columns.

    Returns
    -------
    float in [0, 1]
    """
    approx = _as_index_matrix(approx, "approx")
    exact = _as_index_matrix(exact, "exact")
    if approx.shape[0] != exact.shape[0]:
        raise ValueError(f"approx has {approx.shape[0]} rows but exact has {exact.shape[0]}; they must match")
    if exact.size == 0:
        raise ValueError(f"exact is empty (shape {exact.shape}): recall needs at least one row and column")
    found = 0
    for start in range(0, exact.shape[0], _ROW_CHUNK):
        e = exact[start:start + _ROW_CHUNK]
        a = approx[start:start + _ROW_CHUNK]
        found += int((e[:, :, None] == a[:, None, :]).any(axis=2).sum())
    return found / exact.size


def trustworthiness(X: Any, embedding: Any, k: int = 5, *, n_jobs: int | None = None) -> float:
    """How well an embedding keeps neighbourhoods (Venna & Kaski 2001).

    Penalises every point that is among the ``k`` nearest neighbours of ``i`` in
    the embedding but not in the original space, by how far down ``i``'s
    original ranking it sits. Equals ``sklearn.manifold.trustworthiness``
    (euclidean) but never holds an (n, n) matrix: memory is O(block * n).

    Parameters
    ----------
    X : float array of shape (n, d)
        The original points.
    embedding : float array of shape (n, c)
        Their low-dimensional positions.
    k : int, default 5
        Neighbourhood size, ``k < n / 2``.
    n_jobs : int, optional
        Threads for the embedding's k-NN search.

    Returns
    -------
    float in [0, 1]; 1 means every embedded neighbourhood is a true one.
    """
    from .knn import knn

    X = np.asarray(check_matrix(X, "X"), dtype=np.float64)
    embedding = check_matrix(embedding, "embedding")
    k = check_positive_int(k, "k")
    n = X.shape[0]
    if embedding.shape[0] != n:
        raise ValueError(f"embedding has {embedding.shape[0]} rows but X has {n}; they must match")
    if k >= n / 2:
        raise ValueError(f"k={k} must be below n/2 = {n / 2} for trustworthiness")
    neighbors, _ = knn(embedding, k, n_jobs=n_jobs)
    sq_norms = np.einsum("ij,ij->i", X, X)
    # Rows per step so that the (rows, k, n) comparison stays near 32M entries.
    step = max(1, (1 << 25) // (k * n))
    penalty = 0
    for start in range(0, n, step):
        rows = np.arange(start, min(n, start + step))
        dist = sq_norms[rows, None] + sq_norms[None, :] - 2.0 * (X[rows] @ X.T)
        dist[np.arange(rows.size), rows] = np.inf  # a point is not its own neighbour
        d_nbr = np.take_along_axis(dist, neighbors[rows].astype(np.intp), axis=1)
        rank = (dist[:, None, :] < d_nbr[:, :, None]).sum(axis=2) + 1
        penalty += int(np.maximum(rank - k, 0).sum())
    return float(1.0 - penalty * (2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0))))


def _dense_or_sparse(a: Any, name: str):
    import scipy.sparse

    if scipy.sparse.issparse(a):
        return scipy.sparse.csr_array(a)
    a = np.asarray(a.get() if hasattr(a, "get") else a)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, n_atoms), got shape {a.shape}")
    return a


def fraction_of_variance_unexplained(X: Any, reconstruction: Any) -> float:
    """FVU: ||X - reconstruction||^2 / ||X - mean of X's rows||^2.

    Parameters
    ----------
    X, reconstruction : arrays of shape (n, d)

    Returns
    -------
    float: 0 for a perfect reconstruction, 1 for the mean signal.
    """
    X = check_matrix(X, "X").astype(np.float64)
    R = check_matrix(reconstruction, "reconstruction").astype(np.float64)
    if R.shape != X.shape:
        raise ValueError(f"reconstruction has shape {R.shape}, X has {X.shape}; they must match")
    total = ((X - X.mean(axis=0)) ** 2).sum()
    if total == 0:
        raise ValueError("X has no variance: every row is the same, so FVU is undefined")
    return float(((X - R) ** 2).sum() / total)


def mean_l0(codes: Any) -> float:
    """Mean number of nonzero coefficients per row of codes (n, n_atoms), dense or sparse."""
    codes = _dense_or_sparse(codes, "codes")
    nonzero = (codes != 0).sum()
    return float(nonzero) / max(codes.shape[0], 1)


def dead_fraction(codes: Any) -> float:
    """Fraction of atoms (columns of codes (n, n_atoms)) that no row uses."""
    codes = _dense_or_sparse(codes, "codes")
    used = np.asarray((codes != 0).sum(axis=0)).ravel() > 0
    return float(1.0 - used.mean())


def atom_recovery(dictionary: Any, reference: Any) -> np.ndarray:
    """For each reference atom, its largest |cosine| with an atom of dictionary.

    Parameters
    ----------
    dictionary : array of shape (n_atoms, d)
        Learnt atoms, one per row.
    reference : array of shape (n_reference, d)
        The atoms to recover (e.g. a planted dictionary).

    Returns
    -------
    float64 array of shape (n_reference,) in [0, 1]
        ``(atom_recovery(D, ref) >= 0.9).mean()`` is the share recovered.
    """
    D = check_matrix(dictionary, "dictionary").astype(np.float64)
    ref = check_matrix(reference, "reference").astype(np.float64)
    if D.shape[1] != ref.shape[1]:
        raise ValueError(f"dictionary atoms have {D.shape[1]} dims, reference atoms {ref.shape[1]}")
    for name, M in (("dictionary", D), ("reference", ref)):
        norms = np.linalg.norm(M, axis=1)
        if (norms == 0).any():
            raise ValueError(f"{name} atom {int(np.flatnonzero(norms == 0)[0])} is zero")
        M /= norms[:, None]
    return np.abs(ref @ D.T).max(axis=1)
