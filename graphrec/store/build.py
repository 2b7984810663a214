"""Build a training graph (PyG ``HeteroData``) from a version of the store.

Node types are ``user`` and the schema's target types; node ids are the store's
contiguous ids, so ``data['user'].num_nodes`` is the size of the user id map and
``store.to_external('user', i)`` names node ``i``. Each (event type, target type) pair
becomes the edge type ``('user', event_type, target_type)``; with ``reverse=True`` the
edge type ``(target_type, 'rev_' + event_type, 'user')`` holds the same edges reversed.

Edge attributes: ``edge_time`` (int64 UTC epoch seconds), ``edge_weight`` (float32) and,
where any event carries one, ``edge_value`` (float32, NaN where absent).

Per-partition edge arrays are cached under ``<store>/cache/edges/<checksum>.npz``; a
partition file never changes, so its checksum is a safe key and a build over a new
window only decodes partitions it has not seen before.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from graphrec.io import atomic_open
from graphrec.store.manifest import FileEntry
from graphrec.store.schema import USER
from graphrec.store.store import GraphStore, _to_utc

CACHE_DIR = "cache/edges"
_CACHE_FORMAT = 2


def _cache_path(store: GraphStore, entry: FileEntry) -> Path:
    return store.root / CACHE_DIR / f"{entry.checksum.split(':', 1)[1]}.v{_CACHE_FORMAT}.npz"


Group = tuple[str, str]  # (target type, event type)
FIELDS = ("user", "target", "time_us", "value", "weight")


def partition_arrays(store: GraphStore, entry: FileEntry, *, cache: bool = True) -> dict[Group, dict[str, np.ndarray]]:
    """Edge arrays of one partition file, grouped by (target type, event type).

    Each group holds ``user``, ``target``, ``time_us`` (int64 UTC microseconds), ``value``
    and ``weight`` (float64, NaN where absent). Loaded from the cache when present, else
    decoded from parquet and cached under the file's checksum.
    """
    path = _cache_path(store, entry)
    if cache and path.is_file():
        try:
            out: dict[Group, dict[str, np.ndarray]] = {}
            with np.load(path, allow_pickle=False) as z:
                for key in z.files:
                    tt, et, field = key.split("|")
                    out.setdefault((tt, et), {})[field] = z[key]
            return out
        except (OSError, ValueError):
            pass  # a damaged cache entry is rebuilt below
    df = pl.read_parquet(
        store.path(entry),
        columns=["timestamp", "user", "target_type", "target", "event_type", "value", "weight"],
    )
    out = {}
    for (tt, et), part in df.partition_by(["target_type", "event_type"], as_dict=True, maintain_order=True).items():
        out[(tt, et)] = {
            "user": part["user"].to_numpy(),
            "target": part["target"].to_numpy(),
            "time_us": part["timestamp"].dt.epoch("us").to_numpy(),
            "value": part["value"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
            "weight": part["weight"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
        }
    if cache:
        try:
            with atomic_open(path, "wb") as fh:
                np.savez(fh, **{f"{tt}|{et}|{k}": v for (tt, et), arrs in out.items() for k, v in arrs.items()})
        except OSError:
            pass  # read-only store: building still works, just without the cache
    return out


def build(
    store: GraphStore | str | os.PathLike,
    *,
    version: int | None = None,
    window: tuple[Any, Any] | None = None,
    event_types: Sequence[str] | None = None,
    target_types: Sequence[str] | None = None,
    event_weights: Mapping[str, float | Literal["value"]] | None = None,
    min_interactions: int = 0,
    reverse: bool = True,
    collapse: bool = False,
    features: bool = True,
    categorical: Literal["index", "onehot"] = "index",
    cache: bool = True,
    progress: bool | Callable[[str, int, int], None] = False,
):
    """Build a ``torch_geometric.data.HeteroData`` from ``version`` of the store.

    Args:
        version: store version (default: current).
        window: ``(start, end)``, half-open; datetimes, dates, ISO strings or epoch
            seconds; either end may be None.
        event_types / target_types: keep only these (default: all).
        event_weights: weight per event type (default 1.0); the string ``"value"`` uses
            the event's value (e.g. the rating). Multiplied by the event's own ``weight``.
        min_interactions: k-core filter: repeatedly drop edges of users and targets with
            fewer than this many interactions (all kept edge types counted). Nodes keep
            their ids; ``data[t].node_mask`` marks the nodes that survive.
        reverse: add ``rev_<event>`` edge types from targets to users.
        collapse: merge repeated (user, target) pairs of one edge type into one edge
            (weights summed, latest time kept, last value kept).
        features: attach node features from the side tables.
        categorical: categorical attributes as an index matrix ``x_cat`` (0 = missing)
            or as one-hot blocks appended to ``x``.
        cache: use and fill the per-partition edge-array cache.
    """
    import torch
    from torch_geometric.data import HeteroData

    from graphrec.store.ingest import _Progress

    if not isinstance(store, GraphStore):
        store = GraphStore(store)
    if categorical not in ("index", "onehot"):
        raise ValueError(f"categorical must be 'index' or 'onehot', got {categorical!r}")
    manifest = store.manifest(version)
    schema = store.schema(manifest.version)
    start, end = window if window is not None else (None, None)
    start_dt = _to_utc(start) if start is not None else None
    end_dt = _to_utc(end) if end is not None else None
    if start_dt is not None and end_dt is not None and start_dt >= end_dt:
        raise ValueError(f"empty window: start {start_dt} is not before end {end_dt}")
    for name, given, known in (
        ("event type", event_types, schema.event_types),
        ("target type", target_types, schema.target_types),
        ("event type", list(event_weights or {}), schema.event_types),
    ):
        unknown = sorted(set(given or []) - set(known))
        if unknown:
            raise ValueError(f"unknown {name}(s) {unknown}; the schema declares {known}")
    keep_et = set(event_types or schema.event_types)
    keep_tt = set(target_types or schema.target_types)
    lo_us = int(start_dt.timestamp() * 1_000_000) if start_dt is not None else None
    hi_us = int(end_dt.timestamp() * 1_000_000) if end_dt is not None else None

    sizes = {nt: e.size for nt, e in manifest.id_maps.items()}
    parts = store.partitions(manifest.version, start=start_dt, end=end_dt)
    entries = [(day, f) for day, fs in parts.items() for f in fs]
    collected: dict[Group, dict[str, list[np.ndarray]]] = {}
    with _Progress(progress) as bar:
        for i, (day, entry) in enumerate(entries):
            bar.update("loading partitions", i, len(entries))
            # Only the first and last day of a window can hold events outside it.
            edge_day = (start_dt is not None and day == start_dt.date().isoformat()) or (
                end_dt is not None and day >= (end_dt - dt.timedelta(microseconds=1)).date().isoformat()
            )
            for group, arrs in partition_arrays(store, entry, cache=cache).items():
                if group[0] not in keep_tt or group[1] not in keep_et:
                    continue
                if edge_day:
                    t = arrs["time_us"]
                    sel = np.ones(t.shape[0], dtype=bool)
                    if lo_us is not None:
                        sel &= t >= lo_us
                    if hi_us is not None:
                        sel &= t < hi_us
                    if not sel.all():
                        arrs = {k: v[sel] for k, v in arrs.items()}
                if arrs["user"].size:
                    lists = collected.setdefault(group, {k: [] for k in FIELDS})
                    for k in FIELDS:
                        lists[k].append(arrs[k])
        bar.update("building graph", 0, 1)

    order = {(tt, et): (schema.target_types.index(tt), schema.event_types.index(et))
             for tt, et in collected}
    groups: dict[Group, dict[str, np.ndarray]] = {
        g: {k: (v[0] if len(v) == 1 else np.concatenate(v)) for k, v in collected[g].items()}
        for g in sorted(collected, key=order.__getitem__)
    }
    del collected

    weights = dict(event_weights or {})
    for (_, et), a in groups.items():
        w = weights.get(et, 1.0)
        base = np.nan_to_num(a["value"], nan=0.0) if w == "value" else np.full(a["user"].shape[0], float(w))
        own = a["weight"]
        a["edge_weight"] = base * np.nan_to_num(own, nan=1.0) if not np.isnan(own).all() else base

    node_mask: dict[str, np.ndarray] = {}
    if min_interactions and min_interactions > 1:
        groups, node_mask = _k_core(groups, sizes, min_interactions)

    data = HeteroData()
    for nt in schema.node_types:
        data[nt].num_nodes = sizes.get(nt, 0)
    for (tt, et), a in groups.items():
        src, dst, t_us, w, val = a["user"], a["target"], a["time_us"], a["edge_weight"], a["value"]
        if collapse:
            src, dst, t_us, w, val = _collapse(src, dst, t_us, w, val)
        ei = torch.from_numpy(np.stack([src, dst]).astype(np.int64, copy=False))
        attrs = {
            "edge_time": torch.from_numpy(np.floor_divide(t_us, 1_000_000)),
            "edge_weight": torch.from_numpy(w.astype(np.float32)),
        }
        if not np.isnan(val).all():
            attrs["edge_value"] = torch.from_numpy(val.astype(np.float32))
        fwd = data[USER, et, tt]
        fwd.edge_index = ei
        for k, v in attrs.items():
            fwd[k] = v
        if reverse:
            rev = data[tt, f"rev_{et}", USER]
            rev.edge_index = ei.flip(0)
            for k, v in attrs.items():
                rev[k] = v
    for nt, mask in node_mask.items():
        data[nt].node_mask = torch.from_numpy(mask)
    if features:
        for nt in schema.node_types:
            if nt in manifest.attributes:
                _attach_features(data, store, manifest.version, nt, sizes.get(nt, 0), categorical)
    data.store_info = {
        "root": str(store.root),
        "version": manifest.version,
        "schema_hash": manifest.schema_hash,
        "window": [start_dt.isoformat() if start_dt else None, end_dt.isoformat() if end_dt else None],
        "min_interactions": min_interactions,
    }
    return data


def _k_core(groups: dict[Group, dict[str, np.ndarray]], sizes: dict[str, int], k: int):
    """Keep edges whose user and target both have >= k edges (all groups counted), until stable."""
    keep = {g: np.ones(a["user"].shape[0], dtype=bool) for g, a in groups.items()}
    target_types = sorted({g[0] for g in groups} | {t for t in sizes if t != USER})
    while True:
        du = np.zeros(sizes.get(USER, 0), dtype=np.int64)
        dt_ = {t: np.zeros(sizes.get(t, 0), dtype=np.int64) for t in target_types}
        for g, a in groups.items():
            du += np.bincount(a["user"][keep[g]], minlength=du.shape[0])
            dt_[g[0]] += np.bincount(a["target"][keep[g]], minlength=dt_[g[0]].shape[0])
        changed = False
        for g, a in groups.items():
            new = keep[g] & (du[a["user"]] >= k) & (dt_[g[0]][a["target"]] >= k)
            if new.sum() != keep[g].sum():
                keep[g], changed = new, True
        if not changed:
            break
    masks = {USER: du >= k, **{t: d >= k for t, d in dt_.items()}}
    out = {g: {f: v[keep[g]] for f, v in a.items()} for g, a in groups.items()}
    return {g: a for g, a in out.items() if a["user"].size}, masks


def _collapse(src, dst, t_us, w, val):
    df = pl.DataFrame({"s": src, "d": dst, "t": t_us, "w": w, "v": val}).group_by("s", "d", maintain_order=True).agg(
        pl.col("t").max(), pl.col("w").sum(), pl.col("v").fill_nan(None).drop_nulls().last()
    )
    return (
        df["s"].to_numpy(), df["d"].to_numpy(), df["t"].to_numpy(), df["w"].to_numpy(),
        df["v"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
    )


def _attach_features(data, store: GraphStore, version: int, nt: str, n: int, categorical: str) -> None:
    import torch

    schema = store.schema(version)
    spec = schema.attributes[nt]
    table = store.attributes(nt, version)
    if table is None:
        return
    full = pl.DataFrame({"id": np.arange(n, dtype=np.int64)}).join(table, on="id", how="left", maintain_order="left")
    numeric = [c for c, k in spec.columns.items() if k == "numeric"]
    cats = [c for c, k in spec.columns.items() if k == "categorical"]
    texts = [c for c, k in spec.columns.items() if k == "text"]
    blocks, names = [], []
    if numeric:
        blocks.append(full.select(pl.col(numeric).cast(pl.Float32).fill_nan(0.0).fill_null(0.0)).to_numpy())
        names += numeric
    vocab: dict[str, list[str]] = {}
    codes = []
    for c in cats:
        values = sorted(full[c].drop_nulls().unique().to_list())
        vocab[c] = values
        code = full[c].replace_strict(values, list(range(1, len(values) + 1)), default=0, return_dtype=pl.Int64)
        codes.append(code.to_numpy())
        if categorical == "onehot":
            onehot = np.zeros((n, len(values)), dtype=np.float32)
            hit = code.to_numpy() > 0
            onehot[np.nonzero(hit)[0], code.to_numpy()[hit] - 1] = 1.0
            blocks.append(onehot)
            names += [f"{c}={v}" for v in values]
    if blocks:
        data[nt].x = torch.from_numpy(np.ascontiguousarray(np.concatenate(blocks, axis=1), dtype=np.float32))
        data[nt].x_names = names
    if cats and categorical == "index":
        data[nt].x_cat = torch.from_numpy(np.stack(codes, axis=1))
        data[nt].x_cat_names = cats
    if cats:
        data[nt].cat_vocab = vocab
    if texts:
        data[nt].text = {c: full[c].fill_null("").to_list() for c in texts}
