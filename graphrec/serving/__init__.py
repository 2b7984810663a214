"""Serving: the model folder, its export, a faiss inner-product index, and top-k ``recommend()``."""

from graphrec.serving.export import export_embeddings, export_model
from graphrec.serving.format import FORMAT, ModelFolder, resolve_model_dir
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
    "ModelFolder",
    "Recommendation",
    "Recommender",
    "UnknownUserError",
    "build_index",
    "export_embeddings",
    "export_model",
    "load_index",
    "load_recommender",
    "recommend",
    "resolve_model_dir",
    "save_index",
    "search",
]
