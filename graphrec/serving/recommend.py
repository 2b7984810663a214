"""Top-k recommendation from an exported model folder (see :mod:`graphrec.serving.export`).

>>> from graphrec.serving import recommend
>>> recommend("models/lightgcn", user=196, k=10)            # doctest: +SKIP
[Recommendation(item=..., score=..., rank=1, source='model'), ...]

Items the user has already interacted with (every pair known at export time) are never
returned. An unknown user raises :class:`UnknownUserError`, unless
``fallback="popular"``: then the ``k`` most popular items are returned (most
interactions first, ties by id) with ``source="popular"`` and the count as the score.

Loading is done once per folder and cached (:class:`Recommender`); a query on a warm
recommender is one faiss search with the seen items excluded inside the index (a scorer
without an inner-product form is served by an exact scan instead). This module imports
torch only for such a scan.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from graphrec.serving.format import CARD, SCAN, ModelFolder, resolve_model_dir
from graphrec.serving.index import load_index, search

Fallback = Literal["error", "popular"]


class UnknownUserError(KeyError):
    """The user id is not among the users of the model."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Recommendation:
    item: Any  # external id of the item (or ad)
    score: float
    rank: int
    source: str  # "model" or "popular"
    label: str | None = None  # the item's title (or name) from the store's side table, when it has one


class Recommender:
    """A loaded model folder: user embeddings, the item index, seen items, popularity."""

    def __init__(self, path: str | os.PathLike):
        folder = ModelFolder(path)
        self.path, self.folder = folder.path, folder
        self.card = folder.card
        self.target = folder.target
        self.user_id_type = self.card.get("user_id_type", "int")
        user_ids = folder.ids("user")
        self._user_index = {x: n for n, x in enumerate(user_ids)}
        self.user_emb = folder.queries()  # what the index is searched with
        self.item_ids = folder.ids(self.target)
        su, si = folder.seen()
        self._seen_ptr = np.zeros(self.user_emb.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(su, minlength=self.user_emb.shape[0]), out=self._seen_ptr[1:])
        self._seen = si  # sorted by user, then item
        self._popular, self._popular_count = folder.popularity()
        self.index = None if folder.index_kind == SCAN else load_index(folder.index_path())
        self._scan = _Scan(folder) if self.index is None else None
        self._vectors: np.ndarray | None = None  # the index's vectors, for exact fallbacks
        self._labels: dict[int, str] | None = None
        self._lock = threading.Lock()  # faiss searches with selectors are not re-entrant on one index

    @property
    def num_users(self) -> int:
        return self.user_emb.shape[0]

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    def user_index(self, user: Any) -> int | None:
        """Contiguous id of external ``user`` (strings of digits are accepted for int ids)."""
        key = user
        if self.user_id_type == "int" and isinstance(user, str):
            try:
                key = int(user)
            except ValueError:
                return None
        elif self.user_id_type == "string" and not isinstance(user, str):
            key = str(user)
        if isinstance(key, np.integer):
            key = int(key)
        return self._user_index.get(key)

    def seen(self, user: Any) -> list[Any]:
        """External ids of the items ``user`` has interacted with."""
        u = self._require(user)
        return [self.item_ids[i] for i in self._seen_row(u)]

    def _seen_row(self, u: int) -> np.ndarray:
        return self._seen[self._seen_ptr[u] : self._seen_ptr[u + 1]]

    def _require(self, user: Any) -> int:
        u = self.user_index(user)
        if u is None:
            raise UnknownUserError(
                f"unknown user {user!r}: not among the {self.num_users} users of the model at {self.path} "
                "(pass fallback='popular' / --fallback popular for the most popular items instead)"
            )
        return u

    def recommend(self, user: Any, k: int = 10, *, exclude_seen: bool = True, fallback: Fallback = "error") -> list[Recommendation]:
        """The ``k`` best-scored items for ``user``: exactly ``min(k, unseen items)`` of them, best first
        (an empty list when the user has seen every item; ``exclude_seen=False`` ranks those too).

        Raises:
            UnknownUserError: ``user`` is not among the model's users (unless ``fallback="popular"``).
            ValueError: ``k < 1`` or an unknown ``fallback``.
        """
        if k < 1:
            raise ValueError(f"k must be a positive integer, got {k}")
        if fallback not in ("error", "popular"):
            raise ValueError(f"fallback must be 'error' or 'popular', got {fallback!r}")
        u = self.user_index(user)
        if u is None:
            if fallback == "popular":
                return self.popular(k)
            self._require(user)
        exclude = [self._seen_row(u)] if exclude_seen else None
        want = min(k, self.num_items - (exclude[0].size if exclude else 0))
        if self._scan is not None:
            scores, ids = self._scan.search(self.user_emb[u : u + 1], k, exclude)
        else:
            with self._lock:
                scores, ids = search(self.index, self.user_emb[u : u + 1], k, exclude)
            if int((ids[0] >= 0).sum()) < want:
                # an approximate index (HNSW) filtering most of the catalogue can stop short:
                # rank the unseen items exactly instead
                scores, ids = self._exact(u, want, exclude)
        labels = self.labels()
        return [
            Recommendation(self.item_ids[int(i)], float(s), r + 1, "model", labels.get(int(i)) if labels else None)
            for r, (s, i) in enumerate(zip(scores[0], ids[0], strict=True)) if i >= 0
        ]  # fmt: skip

    def _exact(self, u: int, k: int, exclude: list[np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` over the index's own vectors (inner products, as the index ranks)."""
        if self._vectors is None:
            self._vectors = self.index.reconstruct_n(0, self.index.ntotal)
        scores = self._vectors @ self.user_emb[u]
        if exclude is not None and exclude[0].size:
            scores[exclude[0]] = -np.inf
        top = np.argsort(-scores, kind="stable")[:k]
        return scores[top][None, :], np.where(np.isfinite(scores[top]), top, -1)[None, :]

    def popular(self, k: int = 10, exclude: np.ndarray | None = None) -> list[Recommendation]:
        """The ``k`` items with the most interactions (the fallback for unknown users)."""
        ids, counts = self._popular, self._popular_count
        if exclude is not None and exclude.size:
            keep = ~np.isin(ids, exclude)
            ids, counts = ids[keep], counts[keep]
        labels = self.labels()
        return [Recommendation(self.item_ids[int(i)], float(c), r + 1, "popular", labels.get(int(i)) if labels else None)
                for r, (i, c) in enumerate(zip(ids[:k], counts[:k], strict=True))]  # fmt: skip

    #: Side-table columns that name an item, in order of preference.
    LABEL_COLUMNS = ("title", "name", "label")

    def labels(self) -> dict[int, str] | None:
        """``{target id: title}`` from the side table of the store the model was trained on (the
        first of :data:`LABEL_COLUMNS` it has), or None when the store or the column is not there."""
        if self._labels is None:
            self._labels = {}
            store = ((self.card.get("data") or {}).get("store") or {})
            try:
                from graphrec.store import GraphStore

                st = GraphStore(store["root"])
                attrs = st.attributes(self.target, store.get("version"))
                column = next((c for c in self.LABEL_COLUMNS if attrs is not None and c in attrs.columns), None)
                if column is not None:
                    ext = st.to_external(self.target, attrs["id"].to_numpy(), store.get("version"))
                    by_ext = dict(zip(ext, attrs[column].to_list(), strict=True))
                    self._labels = {i: by_ext[x] for i, x in enumerate(self.item_ids) if by_ext.get(x) is not None}
            except Exception:  # noqa: BLE001 - no store, another version, no side table: serve without titles
                self._labels = {}
        return self._labels or None


class _Scan:
    """Exact serving for a scorer without an inner-product form: score every target with the
    scorer (torch, loaded with the model's weights), mask, take the top k."""

    def __init__(self, folder: ModelFolder):
        import torch

        self.scorer = folder.load_scorer()
        self.items = torch.from_numpy(folder.embeddings(folder.target))

    def search(self, queries: np.ndarray, k: int, exclude: list[np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
        import torch

        with torch.no_grad():
            scores = self.scorer.score_all(torch.from_numpy(queries), self.items).float()
        if exclude is not None:
            for r, ex in enumerate(exclude):
                scores[r, torch.from_numpy(ex)] = -torch.inf
        k = min(k, scores.size(1))
        values, ids = torch.topk(scores, k, dim=1)
        ids[values == -torch.inf] = -1
        return values.numpy(), ids.numpy()


_CACHE: dict[Path, tuple[Path, float, Recommender]] = {}
_CACHE_LOCK = threading.Lock()


def load_recommender(model_dir: str | os.PathLike) -> Recommender:
    """The :class:`Recommender` of ``model_dir``, loaded once and reused while its card is unchanged.

    ``model_dir`` may also be an artifact registry root (:mod:`graphrec.artifacts`): its
    production version is served, and a promotion or rollback takes effect on the next call.
    """
    requested = Path(model_dir).resolve()
    path = resolve_model_dir(requested).resolve()
    card = path / CARD
    mtime = card.stat().st_mtime if card.is_file() else -1.0
    with _CACHE_LOCK:
        hit = _CACHE.get(requested)
        if hit is not None and hit[0] == path and hit[1] == mtime:
            return hit[2]
    rec = Recommender(path)
    with _CACHE_LOCK:
        # keyed by what was asked for: a registry root keeps one entry across promotions
        _CACHE[requested] = (path, mtime, rec)
    return rec


def recommend(model_dir: str | os.PathLike, user: Any, k: int = 10, *, exclude_seen: bool = True,
              fallback: Fallback = "error") -> list[Recommendation]:  # fmt: skip
    """Top-``k`` unseen items for ``user`` from the model exported at ``model_dir`` (or the
    production version of the artifact registry at ``model_dir``)."""
    return load_recommender(model_dir).recommend(user, k, exclude_seen=exclude_seen, fallback=fallback)
