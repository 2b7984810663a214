"""Inner-product ANN index over item embeddings (faiss-cpu).

``flat`` is exact (``IndexFlatIP``, a brute-force scan: fast up to ~1M items x 64 dims);
``hnsw`` is approximate (``IndexHNSWFlat`` with the inner-product metric) for larger
catalogues. Both accept a per-query exclusion list through faiss' ID selectors, so the
items a user has seen are removed inside the search, not filtered afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np

from graphrec.utils.io import atomic_write_bytes

IndexKind = Literal["flat", "hnsw"]


def _faiss():
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a dependency
        raise ImportError("the ANN index needs faiss-cpu: pip install faiss-cpu") from exc
    return faiss


def build_index(item_embeddings: np.ndarray, kind: IndexKind = "flat", hnsw_m: int = 32, ef_search: int = 128):
    """A faiss inner-product index holding ``item_embeddings`` (row i = item i)."""
    faiss = _faiss()
    x = np.ascontiguousarray(item_embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"item embeddings must be a 2-d array, got shape {x.shape}")
    if kind == "flat":
        index = faiss.IndexFlatIP(x.shape[1])
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(x.shape[1], hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = ef_search
    else:
        raise ValueError(f"unknown index kind {kind!r}; choose flat or hnsw")
    index.add(x)
    return index


def save_index(index, path: str | os.PathLike) -> None:
    """Write ``index`` atomically (serialised in memory, then a temp file and a rename)."""
    faiss = _faiss()
    atomic_write_bytes(path, faiss.serialize_index(index).tobytes())


def load_index(path: str | os.PathLike):
    faiss = _faiss()
    data = np.fromfile(Path(path), dtype=np.uint8)
    return faiss.deserialize_index(data)


def search(index, queries: np.ndarray, k: int, exclude: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` ``(scores, item ids)`` per query row; ``exclude[q]`` ids are never returned.

    Rows with fewer than ``k`` eligible items are padded with id -1 (score -inf).
    """
    faiss = _faiss()
    q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    k = min(k, index.ntotal)
    if exclude is None or all(e.size == 0 for e in exclude):
        scores, ids = index.search(q, k)
        return scores, ids
    out_s = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
    out_i = np.full((q.shape[0], k), -1, dtype=np.int64)
    for r in range(q.shape[0]):
        ex = np.ascontiguousarray(exclude[r], dtype=np.int64)
        if ex.size == 0:
            s, i = index.search(q[r : r + 1], k)
        else:
            inner = faiss.IDSelectorBatch(ex)  # kept alive: the Not selector holds a raw pointer to it
            sel = faiss.IDSelectorNot(inner)
            s, i = index.search(q[r : r + 1], k, params=_params(index, sel))
            del sel, inner
        out_s[r], out_i[r] = s[0], i[0]
    out_s[out_i < 0] = -np.inf
    return out_s, out_i


def _params(index, selector):
    faiss = _faiss()
    if isinstance(index, faiss.IndexHNSW):
        p = faiss.SearchParametersHNSW()
        p.efSearch = index.hnsw.efSearch
    else:
        p = faiss.SearchParameters()
    p.sel = selector
    return p
