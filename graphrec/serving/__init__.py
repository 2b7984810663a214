"""Serving: embedding export, a faiss inner-product index, and top-k ``recommend()``."""

from graphrec.serving.export import FORMAT, export_embeddings, export_model
from graphrec.serving.index import build_index, load_index, save_index, search
from graphrec.serving.recommend import (
    Recommendation,
    Recommender,
    UnknownUserError,
    load_recommender,
    recommend,
)

__all__ = [
    "FORMAT",
    "Recommendation",
    "Recommender",
    "UnknownUserError",
    "build_index",
    "export_embeddings",
    "export_model",
    "load_index",
    "load_recommender",
    "recommend",
    "save_index",
    "search",
]
