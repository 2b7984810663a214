"""Export a trained recommender into a model folder (layout: :mod:`graphrec.serving.format`).

The folder is written under a temporary name and renamed into place, so a reader never
sees a half-written model; ``overwrite=True`` swaps an existing folder the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from graphrec.serving.format import (
    CARD,
    CURVE,
    EMBEDDINGS,
    FORMAT,
    HISTORY,
    INDEX,
    POPULARITY,
    SCAN,
    SEEN,
    WEIGHTS,
    embeddings_frame,
)
from graphrec.serving.index import IndexKind, build_index, save_index
from graphrec.utils.io import atomic_open, atomic_write_json, default_mode, fsync_dir


def export_embeddings(
    out_dir: str | os.PathLike,
    user_emb: np.ndarray,
    item_emb: np.ndarray,
    *,
    user_ids: list[Any] | None = None,
    item_ids: list[Any] | None = None,
    seen: tuple[np.ndarray, np.ndarray] | None = None,
    target: str = "item",
    index: IndexKind = "flat",
    card: dict | None = None,
    state_dict: dict | None = None,
    scorer: Any | None = None,
    history: list[dict] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a model folder from embeddings (see the module docstring) and return its path.

    ``out_dir`` must not exist or be an empty folder (such as
    :meth:`graphrec.artifacts.ArtifactRegistry.staging_dir`), unless ``overwrite=True``.

    ``seen`` is ``(user, item)`` contiguous-id pairs of every known interaction: what
    :func:`~graphrec.serving.recommend` excludes, and what the popularity fallback counts.
    ``scorer`` (a :class:`~graphrec.nn.score.Scorer`; default: inner product) decides what the
    index holds: its exact inner-product form, or nothing (an exact scan at serving time).
    ``history`` (the trainer's per-epoch ``{epoch, loss, valid}``) is kept as ``history.json``
    with its curve ``training.png``.

    Raises:
        FileExistsError: ``out_dir`` exists and is not empty (without ``overwrite``).
        ValueError: mismatched shapes, duplicate external ids, or seen pairs out of range.
    """
    out = Path(out_dir)
    if out.exists() and not overwrite and not _empty_dir(out):  # an empty folder, e.g. a registry staging folder, is filled
        raise FileExistsError(f"{out} exists; pass overwrite=True to replace it")
    user_emb, item_emb = np.asarray(user_emb, np.float32), np.asarray(item_emb, np.float32)
    if user_emb.ndim != 2 or item_emb.ndim != 2 or user_emb.shape[1] != item_emb.shape[1]:
        raise ValueError(f"user and {target} embeddings must be 2-d with one width; got {user_emb.shape} and {item_emb.shape}")
    for name, ids, emb in (("user", user_ids, user_emb), (target, item_ids, item_emb)):
        if ids is not None and len(ids) != emb.shape[0]:
            raise ValueError(f"{len(ids)} external {name} ids for {emb.shape[0]} {name} embeddings")
        if ids is not None and len(set(ids)) != len(ids):
            raise ValueError(f"external {name} ids are not unique")
    su, si = (np.zeros(0, np.int64), np.zeros(0, np.int64)) if seen is None else (np.asarray(seen[0], np.int64), np.asarray(seen[1], np.int64))
    if su.size and (su.min() < 0 or su.max() >= user_emb.shape[0] or si.min() < 0 or si.max() >= item_emb.shape[0]):
        raise ValueError("seen pairs hold ids outside the embedding tables")
    queries, index_vectors, scorer_spec = _index_form(scorer, user_emb, item_emb)
    if index_vectors is None:
        index = SCAN  # type: ignore[assignment]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        os.chmod(tmp, default_mode("dir"))  # mkdtemp creates 0700; a served model folder is an ordinary folder
        (tmp / EMBEDDINGS).mkdir()
        _write_parquet(embeddings_frame(user_ids, user_emb, queries), tmp / EMBEDDINGS / "user.parquet")
        _write_parquet(embeddings_frame(item_ids, item_emb), tmp / EMBEDDINGS / f"{target}.parquet")
        seen_df = pl.DataFrame({"user": su, target: si}).unique().sort(["user", target])
        _write_parquet(seen_df, tmp / SEEN)
        counts = np.bincount(si, minlength=item_emb.shape[0])
        order = np.lexsort((np.arange(counts.size), -counts))
        ext = item_ids if item_ids is not None else list(range(item_emb.shape[0]))
        pop = pl.DataFrame({"id": order.astype(np.int64), "external_id": [ext[i] for i in order], "count": counts[order]})
        _write_parquet(pop, tmp / POPULARITY)
        if index_vectors is not None:
            save_index(build_index(index_vectors, index), tmp / INDEX)
        if history:
            from graphrec.plots import plot_history

            atomic_write_json(tmp / HISTORY, history)
            stop_on = (((card or {}).get("config") or {}).get("train") or {}).get("stop_on", "validation metric")
            plot_history(history, tmp / CURVE, title=f"training of {(card or {}).get('model', 'the model')}",
                         metric=stop_on)  # fmt: skip
        if state_dict is not None:
            import torch

            with atomic_open(tmp / WEIGHTS, "wb") as fh:
                torch.save(state_dict, fh)
        meta = {
            "format": FORMAT,
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "target": target,
            "users": int(user_emb.shape[0]),
            "targets": int(item_emb.shape[0]),
            "dim": int(user_emb.shape[1]),
            "seen_pairs": int(seen_df.height),
            "index": index,
            "scorer": scorer_spec,
            "user_id_type": _id_type(user_ids),
            "target_id_type": _id_type(item_ids),
            **(card or {}),
        }
        atomic_write_json(tmp / CARD, meta)
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def export_model(model, data, out_dir: str | os.PathLike, *, config: dict | None = None,
                 metrics: dict | None = None, index: IndexKind = "flat", history: list[dict] | None = None,
                 overwrite: bool = False) -> Path:  # fmt: skip
    """Export a trained :class:`~graphrec.models.BipartiteRecommender` on ``data`` (a
    :class:`~graphrec.data.RecData`): its embeddings on the training graph, scorer, weights,
    every interaction of ``data``'s source as seen, and the training ``history``."""
    users, items = model.embeddings(data.graph)
    src = data.source
    card = {
        "model": (config or {}).get("model", {}).get("name") if config else type(model).__name__,
        "config": config,
        "metrics": metrics,
        "data": {k: v for k, v in data.info.items() if _jsonable(v)},
        "split": data.split.sizes(),
    }
    return export_embeddings(
        out_dir, users.cpu().numpy(), items.cpu().numpy(), user_ids=src.user_ids, item_ids=src.item_ids,
        seen=(src.user, src.item), target=src.target, index=index, card=card,
        state_dict=model.state_dict(), scorer=model.scorer, history=history, overwrite=overwrite,
    )  # fmt: skip


def _index_form(scorer, user_emb: np.ndarray, item_emb: np.ndarray):
    """``(user query column or None, index vectors or None, scorer spec)`` for ``scorer``."""
    if scorer is None or scorer.name == "dot":
        return None, item_emb, {"name": "dot"}
    import torch

    with torch.no_grad():
        form = scorer.ip_transform(torch.from_numpy(user_emb), torch.from_numpy(item_emb))
    if form is None:
        return None, None, scorer.spec()
    q, x = (np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32) for t in form)
    return q, x, scorer.spec()


def _write_parquet(df: pl.DataFrame, path: Path) -> None:
    with atomic_open(path, "wb") as fh:
        df.write_parquet(fh)


def _id_type(ids: list[Any] | None) -> str:
    if ids is None or not ids or all(isinstance(i, int | np.integer) for i in ids[:1000]):
        return "int"
    return "string"


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except TypeError:
        return False


def _empty_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and next(path.iterdir(), None) is None


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``; an existing ``out`` is moved aside first and removed after."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    fsync_dir(out.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
