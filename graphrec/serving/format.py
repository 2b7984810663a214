"""The model folder: the one place that knows its files. Export writes it; serving and warm starts read it.

Layout (``FORMAT`` ``graphrec-recommender/2``; version 1 folders, written before scorers
were recorded, read as ``dot``)::

    card.json                     format, model, config, metrics, scorer, index, counts (written last)
    model.pt                      the model's state_dict (read with torch.load(..., weights_only=True))
    embeddings/user.parquet       external_id, id, embedding (list<float32>) [, query (list<float32>)]
    embeddings/<target>.parquet   external_id, id, embedding: the same for items (or ads)
    seen.parquet                  user, <target> (contiguous ids): every known interaction
    popularity.parquet            id, external_id, count: targets by interactions, most popular first
    index.faiss                   inner-product index over the targets' index vectors (absent for "scan")
    history.json, training.png    the training history and its curve (when exported from a fit)

``embedding`` is the model's output embedding. When the scorer is not a plain inner
product but has an exact inner-product form (:meth:`~graphrec.nn.score.Scorer.ip_transform`),
the index holds the transformed target vectors and the user table a ``query`` column with
the transformed user vectors, so an inner-product search ranks exactly as the scorer. A
scorer without such a form is served by an exact scan (``card.index == "scan"``).

This module does not import torch (only :meth:`ModelFolder.state_dict` does, when called).
"""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

FORMAT = "graphrec-recommender/2"
READABLE_FORMATS = ("graphrec-recommender/1", FORMAT)

CARD = "card.json"
WEIGHTS = "model.pt"
EMBEDDINGS = "embeddings"
SEEN = "seen.parquet"
POPULARITY = "popularity.parquet"
INDEX = "index.faiss"
HISTORY = "history.json"  # the training history, one entry per epoch (optional)
CURVE = "training.png"  # its plot: loss and validation metric per epoch (optional)
#: ``card["index"]`` of a model served by an exact scan with its scorer (no faiss index).
SCAN = "scan"


def embeddings_frame(external_ids: list[Any] | None, emb: np.ndarray, query: np.ndarray | None = None) -> pl.DataFrame:
    """The table of one node type: ``external_id``, ``id``, ``embedding`` (and ``query``)."""
    n = emb.shape[0]
    ext = external_ids if external_ids is not None else list(range(n))

    def vectors(a: np.ndarray) -> pl.Series:
        return pl.Series(a.astype(np.float32)).cast(pl.Array(pl.Float32, a.shape[1])).cast(pl.List(pl.Float32))

    cols = {"external_id": ext, "id": np.arange(n, dtype=np.int64), "embedding": vectors(emb)}
    if query is not None:
        cols["query"] = vectors(query)
    return pl.DataFrame(cols)


def _matrix(df: pl.DataFrame, column: str) -> np.ndarray:
    series = df[column]
    width = len(series[0]) if df.height else 0
    arr = series.list.to_array(width).to_numpy().reshape(df.height, width)
    return np.require(arr, dtype=np.float32, requirements=["C", "W"])  # contiguous and writable (torch, faiss)


class ModelFolder:
    """Readers of one model folder (see the module docstring).

    Raises:
        FileNotFoundError: ``path`` holds no ``card.json`` (the message says how to make one).
        ValueError: the card names a format this version cannot read.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        card = self.path / CARD
        if not card.is_file() and (self.path / "metrics.json").is_file() and (self.path / WEIGHTS).is_file():
            raise FileNotFoundError(f"{self.path} holds a node-classification model (weights, config and metrics); "
                                    "only recommendation models (task: rec) are served")  # fmt: skip
        if not card.is_file():
            what = "does not exist" if not self.path.exists() else f"is not an exported model (no {CARD}) nor an artifact registry"
            raise FileNotFoundError(f"{self.path} {what}; export a model with `graphrec train CONFIG` (task: rec or ads), "
                                    "`graphrec bench rec --export DIR` or graphrec.serving.export_model()")  # fmt: skip
        self.card: dict[str, Any] = json.loads(card.read_text())
        fmt = self.card.get("format")
        if fmt not in READABLE_FORMATS:
            raise ValueError(f"{card}: format {fmt!r} is not one this graphrec reads ({', '.join(READABLE_FORMATS)})")

    @property
    def target(self) -> str:
        return self.card["target"]

    @property
    def scorer(self) -> dict[str, Any]:
        """The scorer's spec (``{"name": "dot"}`` for folders written before scorers were recorded)."""
        return self.card.get("scorer") or {"name": "dot"}

    @property
    def index_kind(self) -> str:
        return self.card.get("index", "flat")

    def table_path(self, node_type: str) -> Path:
        return self.path / EMBEDDINGS / f"{node_type}.parquet"

    @cached_property
    def _users(self) -> pl.DataFrame:
        return pl.read_parquet(self.table_path("user")).sort("id")

    def _table(self, node_type: str) -> pl.DataFrame:
        return self._users if node_type == "user" else pl.read_parquet(self.table_path(node_type)).sort("id")

    def ids(self, node_type: str) -> list[Any]:
        """External ids of ``node_type`` (``user`` or the target), indexed by contiguous id."""
        if node_type == "user":
            return self._users["external_id"].to_list()
        return pl.read_parquet(self.table_path(node_type), columns=["external_id", "id"]).sort("id")["external_id"].to_list()

    def embeddings(self, node_type: str) -> np.ndarray:
        """Output embeddings ``[n, d]`` (float32) of ``node_type``, by contiguous id."""
        return _matrix(self._table(node_type), "embedding")

    def queries(self) -> np.ndarray:
        """The users' query vectors for the index: the ``query`` column when the scorer needed a
        transform, else the embeddings."""
        col = "query" if "query" in self._users.columns else "embedding"
        return _matrix(self._users, col)

    def seen(self) -> tuple[np.ndarray, np.ndarray]:
        """``(users, targets)`` contiguous ids of every known interaction, sorted by user then target."""
        df = pl.read_parquet(self.path / SEEN)
        return df["user"].to_numpy().astype(np.int64), df[self.target].to_numpy().astype(np.int64)

    def popularity(self) -> tuple[np.ndarray, np.ndarray]:
        """``(target ids, interaction counts)``, most popular first (ties by id)."""
        df = pl.read_parquet(self.path / POPULARITY)
        return df["id"].to_numpy(), df["count"].to_numpy()

    def index_path(self) -> Path:
        return self.path / INDEX

    def state_dict(self, map_location: str = "cpu") -> dict:
        """The model's weights (``torch.load(..., weights_only=True)``).

        Raises:
            FileNotFoundError: the folder was exported without weights.
        """
        import torch

        path = self.path / WEIGHTS
        if not path.is_file():
            raise FileNotFoundError(f"{self.path} holds no {WEIGHTS}: it was exported from embeddings only")
        return torch.load(path, map_location=map_location, weights_only=True)

    def load_scorer(self):
        """The model's :class:`~graphrec.nn.score.Scorer`, with its learned values (imports torch)."""
        from graphrec.nn.score import scorer_from_spec

        scorer = scorer_from_spec(self.scorer)
        if any(True for _ in scorer.parameters()) or any(True for _ in scorer.buffers()):
            scorer.load_state_dict(_scorer_state(self.state_dict()))
        return scorer.eval()


def _scorer_state(state: dict) -> dict:
    return {k.removeprefix("scorer."): v for k, v in state.items() if k.startswith("scorer.")}


def resolve_model_dir(path: str | os.PathLike) -> Path:
    """The model folder ``path`` names: ``path`` itself when it holds a ``card.json``, the
    production version's folder when ``path`` is an artifact registry root, else ``path``
    unchanged (so the loader reports what is missing).

    Raises:
        ArtifactNotFoundError: a registry without a production version.
    """
    from graphrec.artifacts.registry import is_registry, production_dir

    p = Path(path)
    if (p / CARD).is_file() or not is_registry(p):
        return p
    return production_dir(p)
