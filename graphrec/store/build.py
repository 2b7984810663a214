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
_CACHE_FORMAT = 1


def _cache_path(store: GraphStore, entry: FileEntry) -> Path:
    return store.root / CACHE_DIR / f"{entry.checksum.split(':', 1)[1]}.v{_CACHE_FORMAT}.npz"


def partition_arrays(store: GraphStore, entry: FileEntry, *, cache: bool = True) -> dict[str, np.ndarray]:
    """Edge arrays of one partition file: user, target, time_us, etype, ttype, value, weight.

    ``etype``/``ttype`` are codes into the ``etypes``/``ttypes`` arrays stored beside them.
    Loaded from the cache when present, else decoded from parquet (and cached).
    """
    path = _cache_path(store, entry)
    if cache and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError):
            pass  # a damaged cache entry is rebuilt below
    df = pl.read_parquet(
        store.path(entry),
        columns=["timestamp", "user", "target_type", "target", "event_type", "value", "weight"],
    )
    ttypes = sorted(df["target_type"].unique().to_list())
    etypes = sorted(df["event_type"].unique().to_list())
    codes = df.select(
        pl.col("target_type").replace_strict(ttypes, list(range(len(ttypes))), return_dtype=pl.Int16).alias("t"),
        pl.col("event_type").replace_strict(etypes, list(range(len(etypes))), return_dtype=pl.Int16).alias("e"),
    )
    arrays = {
        "user": df["user"].to_numpy(),
        "target": df["target"].to_numpy(),
        "time_us": df["timestamp"].dt.epoch("us").to_numpy(),
        "ttype": codes["t"].to_numpy(),
        "etype": codes["e"].to_numpy(),
        "value": df["value"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
        "weight": df["weight"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
        "ttypes": np.array(ttypes, dtype=np.str_),
        "etypes": np.array(etypes, dtype=np.str_),
    }
    if cache:
        try:
            with atomic_open(path, "wb") as fh:
                np.savez(fh, **arrays)
        except OSError:
            pass  # read-only store: building still works, just without the cache
    return arrays


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

    sizes = {nt: e.size for nt, e in manifest.id_maps.items()}
    entries = [f for fs in store.partitions(manifest.version, start=start_dt, end=end_dt).values() for f in fs]
    ttypes_all, etypes_all = list(schema.target_types), list(schema.event_types)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("user", "target", "time_us", "ttype", "etype", "value", "weight")}
    with _Progress(progress) as bar:
        for i, entry in enumerate(entries):
            bar.update("loading partitions", i, len(entries))
            a = partition_arrays(store, entry, cache=cache)
            tmap = np.array([ttypes_all.index(t) for t in a["ttypes"].tolist()] or [0], dtype=np.int16)
            emap = np.array([etypes_all.index(e) for e in a["etypes"].tolist()] or [0], dtype=np.int16)
            for k in ("user", "target", "time_us", "value", "weight"):
                parts[k].append(a[k])
            parts["ttype"].append(tmap[a["ttype"]] if a["ttype"].size else a["ttype"])
            parts["etype"].append(emap[a["etype"]] if a["etype"].size else a["etype"])
        bar.update("building graph", 0, 1)

    empty = {"user": np.int64, "target": np.int64, "time_us": np.int64, "ttype": np.int16,
             "etype": np.int16, "value": np.float64, "weight": np.float64}
    arr = {k: (np.concatenate(v) if v else np.empty(0, dtype=empty[k])) for k, v in parts.items()}

    keep = np.ones(arr["user"].shape[0], dtype=bool)
    if start_dt is not None:
        keep &= arr["time_us"] >= int(start_dt.timestamp() * 1_000_000)
    if end_dt is not None:
        keep &= arr["time_us"] < int(end_dt.timestamp() * 1_000_000)
    if event_types is not None:
        keep &= np.isin(arr["etype"], [etypes_all.index(e) for e in event_types])
    if target_types is not None:
        keep &= np.isin(arr["ttype"], [ttypes_all.index(t) for t in target_types])
    if not keep.all():
        arr = {k: v[keep] for k, v in arr.items()}

    # Edge weights: per event type, times the event's own weight.
    base = np.ones(len(etypes_all), dtype=np.float64)
    use_value = np.zeros(len(etypes_all), dtype=bool)
    for et, w in (event_weights or {}).items():
        if w == "value":
            use_value[etypes_all.index(et)] = True
        else:
            base[etypes_all.index(et)] = float(w)
    weight = base[arr["etype"]] if arr["etype"].size else np.empty(0)
    if use_value.any():
        v = arr["value"]
        weight = np.where(use_value[arr["etype"]], np.nan_to_num(v, nan=0.0), weight)
    weight = weight * np.nan_to_num(arr["weight"], nan=1.0)
    arr["edge_weight"] = weight

    node_mask: dict[str, np.ndarray] = {}
    if min_interactions and min_interactions > 1:
        arr, node_mask = _k_core(arr, sizes, ttypes_all, min_interactions)

    data = HeteroData()
    for nt in schema.node_types:
        data[nt].num_nodes = sizes.get(nt, 0)
    group = arr["ttype"].astype(np.int64) * len(etypes_all) + arr["etype"]
    for code in np.unique(group).tolist():
        tt, et = ttypes_all[code // len(etypes_all)], etypes_all[code % len(etypes_all)]
        sel = group == code
        src, dst = arr["user"][sel], arr["target"][sel]
        t_us, w, val = arr["time_us"][sel], arr["edge_weight"][sel], arr["value"][sel]
        if collapse:
            src, dst, t_us, w, val = _collapse(src, dst, t_us, w, val)
        ei = torch.from_numpy(np.stack([src, dst]).astype(np.int64, copy=False))
        attrs = {
            "edge_time": torch.from_numpy(np.floor_divide(t_us, 1_000_000)),
            "edge_weight": torch.from_numpy(w.astype(np.float32)),
        }
        if not np.isnan(val).all():
            attrs["edge_value"] = torch.from_numpy(val.astype(np.float32))
        store_ = data[USER, et, tt]
        store_.edge_index = ei
        for k, v in attrs.items():
            store_[k] = v
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


def _k_core(arr: dict[str, np.ndarray], sizes: dict[str, int], ttypes: list[str], k: int):
    """Keep edges whose user and target both have >= k edges, until stable."""
    user, target, ttype = arr["user"], arr["target"], arr["ttype"]
    n_users = sizes.get(USER, 0)
    # One index space for all targets: offset per target type.
    offsets = np.cumsum([0] + [sizes.get(t, 0) for t in ttypes])
    gtarget = target + offsets[ttype] if target.size else target
    keep = np.ones(user.shape[0], dtype=bool)
    while True:
        du = np.bincount(user[keep], minlength=n_users)
        dt_ = np.bincount(gtarget[keep], minlength=int(offsets[-1]))
        new_keep = keep & (du[user] >= k) & (dt_[gtarget] >= k)
        if new_keep.sum() == keep.sum():
            break
        keep = new_keep
    du = np.bincount(user[keep], minlength=n_users)
    dt_ = np.bincount(gtarget[keep], minlength=int(offsets[-1]))
    masks = {USER: du >= k}
    for i, t in enumerate(ttypes):
        masks[t] = dt_[offsets[i]:offsets[i + 1]] >= k
    return {key: v[keep] for key, v in arr.items()}, masks


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


def window_days(start: Any, end: Any) -> list[str]:
    """UTC days touched by ``[start, end)`` (helper for callers sizing a build)."""
    s, e = _to_utc(start).date(), (_to_utc(end) - dt.timedelta(microseconds=1)).date()
    return [(s + dt.timedelta(days=i)).isoformat() for i in range((e - s).days + 1)]
