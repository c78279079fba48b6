"""latentcore: fast maps of latent spaces (k-NN graphs, t-SNE, random-walk
embeddings, sparse dictionary encoding), C++ and CUDA under a Python API."""

from importlib.metadata import PackageNotFoundError, version

from .knn import KNNGraph, knn
from .metrics import knn_recall, trustworthiness
from .tsne import TSNE

try:
    __version__ = version("latentcore")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = ["KNNGraph", "TSNE", "knn", "knn_recall", "trustworthiness", "__version__"]
