"""Build a training graph (PyG ``HeteroData``) from a version of the store.

Node types are ``user`` and the schema's target types; node ids are the store's
contiguous ids, so ``data['user'].num_nodes`` is the size of the user id map and
``store.to_external('user', i)`` names node ``i``. Each (event type, target type) pair
becomes the edge type ``('user', event_type, target_type)``; with ``reverse=True`` the
edge type ``(target_type, 'rev_' + event_type, 'user')`` holds the same edges reversed.

Edge attributes: ``edge_time`` (int64 UTC epoch seconds), ``edge_weight`` (float32) and,
where any event carries one, ``edge_value`` (float32, NaN where absent).

Node features: the side tables' numeric (and one-hot) columns form ``x``; feature tables
of the store (:meth:`GraphStore.write_features`, e.g. transformer user embeddings) named
in ``feature_tables`` are appended after them, zeros on rows the table lacks, which
``x_missing`` marks.

Per-partition edge arrays are cached under ``<store>/cache/edges/<checksum>.v3.bin``; a
partition file never changes, so its checksum is a safe key and a build over a new
window only decodes partitions it has not seen before. A cache file holds raw arrays at
aligned offsets behind a JSON header; a build memory-maps it and copies each array once,
straight into the graph's tensors, so a nightly build over a window of cached days costs
about one pass over the window's edges.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from graphrec.store.errors import CorruptStoreError
from graphrec.store.manifest import FileEntry, Manifest
from graphrec.store.schema import USER
from graphrec.store.store import GraphStore, to_utc
from graphrec.utils.console import StepProgress
from graphrec.utils.io import atomic_open

CACHE_DIR = "cache/edges"
_CACHE_FORMAT = 3
_MAGIC = b"GRECEDGE"
_ALIGN = 64  # every array in a cache file starts at a multiple of this many bytes

Group = tuple[str, str]  # (target type, event type)
FIELDS = ("user", "target", "time_us", "value", "weight")
#: Fields that may be absent from a group: ``None`` stands for "NaN on every edge".
OPTIONAL = ("value", "weight")
#: Arrays of one group; an optional field is ``None`` when it is NaN on every edge.
Arrays = dict[str, np.ndarray | None]


def _cache_path(store: GraphStore, entry: FileEntry) -> Path:
    return store.root / CACHE_DIR / f"{entry.checksum.split(':', 1)[1]}.v{_CACHE_FORMAT}.bin"


def _padded(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def _write_cache(path: Path, groups: dict[Group, Arrays]) -> None:
    """Write ``groups`` as one uncompressed file: magic, JSON header, aligned raw arrays.

    Raw arrays at aligned offsets let a build memory-map the file and copy each array
    once, straight into the graph's tensors; absent (all-NaN) fields take no space.
    """
    specs, blocks, offset = [], [], 0
    for (tt, et), arrs in groups.items():
        spec: dict[str, Any] = {
            "target_type": tt,
            "event_type": et,
            "rows": int(arrs["user"].shape[0]),
            "arrays": {},
        }
        for k in FIELDS:
            a = arrs[k]
            if a is None:
                continue
            a = np.ascontiguousarray(a)
            spec["arrays"][k] = {"dtype": a.dtype.str, "offset": offset}
            blocks.append(a)
            offset += _padded(a.nbytes)
        specs.append(spec)
    header = json.dumps({"format": _CACHE_FORMAT, "groups": specs, "data_bytes": offset}).encode()
    start = _padded(16 + len(header))
    with atomic_open(path, "wb") as fh:
        fh.write(_MAGIC + len(header).to_bytes(8, "little") + header)
        fh.write(b"\0" * (start - 16 - len(header)))
        for a in blocks:
            fh.write(a.data)
            fh.write(b"\0" * (_padded(a.nbytes) - a.nbytes))


#: The dtypes a cache file may hold per field (little-endian).
_CACHE_DTYPES = {
    "user": ("<i4", "<i8"),
    "target": ("<i4", "<i8"),
    "time_us": ("<i8",),
    "value": ("<f8",),
    "weight": ("<f8",),
}


def _read_cache(path: Path) -> dict[Group, Arrays]:
    """Memory-mapped arrays of a cache file; raises ``ValueError`` if the file is damaged."""
    buf = np.memmap(path, dtype=np.uint8, mode="r")  # an empty file raises ValueError
    if buf.shape[0] < 16 or bytes(buf[:8]) != _MAGIC:
        raise ValueError(f"{path} is not an edge-cache file")
    hlen = int.from_bytes(bytes(buf[8:16]), "little")
    try:
        header = json.loads(bytes(buf[16 : 16 + hlen]))
        start = _padded(16 + hlen)
        if header["format"] != _CACHE_FORMAT or buf.shape[0] != start + header["data_bytes"]:
            raise ValueError(f"{path} has the wrong format or size")
        out: dict[Group, Arrays] = {}
        for spec in header["groups"]:
            n, arrays = int(spec["rows"]), spec["arrays"]
            if n < 0:
                raise ValueError(f"{path}: negative row count")
            group: Arrays = {}
            for k in FIELDS:
                if k not in arrays:
                    if k not in OPTIONAL:
                        raise ValueError(f"{path} lacks the {k!r} array")
                    group[k] = None
                    continue
                dtype = arrays[k]["dtype"]
                if dtype not in _CACHE_DTYPES[k]:
                    raise ValueError(f"{path}: unexpected dtype {dtype} for {k!r}")
                lo = start + int(arrays[k]["offset"])
                hi = lo + n * np.dtype(dtype).itemsize
                if lo < start or hi > buf.shape[0]:
                    raise ValueError(f"{path}: array {k!r} lies outside the file")
                group[k] = buf[lo:hi].view(dtype)
            out[(str(spec["target_type"]), str(spec["event_type"]))] = group
        return out
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path} has a malformed header: {exc}") from exc


def _decode(store: GraphStore, entry: FileEntry) -> dict[Group, Arrays]:
    """Edge arrays of one partition file, decoded from parquet (ids as int32 where they fit)."""
    df = pl.read_parquet(
        store.path(entry),
        columns=["timestamp", "user", "target_type", "target", "event_type", "value", "weight"],
    )
    out: dict[Group, Arrays] = {}
    for (tt, et), part in df.partition_by(
        ["target_type", "event_type"], as_dict=True, maintain_order=True
    ).items():
        arrs: Arrays = {
            "user": _compact_ids(part["user"].to_numpy()),
            "target": _compact_ids(part["target"].to_numpy()),
            "time_us": part["timestamp"].dt.epoch("us").to_numpy(),
        }
        for k in OPTIONAL:
            values = part[k].cast(pl.Float64).fill_null(np.nan).to_numpy()
            arrs[k] = None if np.isnan(values).all() else values
        out[(tt, et)] = arrs
    return out


def _compact_ids(a: np.ndarray) -> np.ndarray:
    # Ids are contiguous from 0: int32 holds them in half the bytes a build has to read.
    return (
        a.astype(np.int32)
        if a.size and 0 <= a.min() and a.max() < 2**31
        else a.astype(np.int64, copy=False)
    )


def _partition_groups(
    store: GraphStore, entry: FileEntry, *, cache: bool = True
) -> dict[Group, Arrays]:
    """Edge arrays of one partition file by (target type, event type), from the cache when possible.

    Cached arrays are read-only memory maps of the cache file; a missing or damaged
    cache file is (re)written from the decoded partition.
    """
    path = _cache_path(store, entry)
    if cache and path.is_file():
        try:
            return _read_cache(path)
        except (OSError, ValueError):
            pass  # a damaged cache entry is rebuilt below
    out = _decode(store, entry)
    if cache:
        try:
            _write_cache(path, out)
        except OSError:
            pass  # read-only store: building still works, just without the cache
    return out


def partition_arrays(
    store: GraphStore, entry: FileEntry, *, cache: bool = True
) -> dict[Group, dict[str, np.ndarray]]:
    """Edge arrays of one partition file, grouped by (target type, event type).

    Each group holds ``user``, ``target`` (int64), ``time_us`` (int64 UTC microseconds),
    ``value`` and ``weight`` (float64, NaN where absent). Loaded from the cache when
    present, else decoded from parquet and cached under the file's checksum.
    """
    out: dict[Group, dict[str, np.ndarray]] = {}
    for group, arrs in _partition_groups(store, entry, cache=cache).items():
        n = arrs["user"].shape[0]
        out[group] = {
            k: np.full(n, np.nan)
            if v is None
            else np.array(v, dtype=np.float64 if k in OPTIONAL else np.int64)
            for k, v in arrs.items()
        }
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
    feature_tables: Sequence[str] | Literal["all"] | None = None,
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
        feature_tables: feature tables of ``version`` (keys ``"<node type>/<name>"``, or
            ``"all"``) appended to their node type's ``x`` (float32 ``[num_nodes, ...]``),
            after the side-table columns and in the order given, whatever ``features`` says.
            A node without a row in a table (e.g. a user added after the table was
            written) gets zeros there; ``data[nt].x_missing`` (bool ``[num_nodes]``) is
            True for nodes lacking a row in any attached table. Columns are named
            ``"<name>[j]"`` in ``x_names``; ``data.store_info["feature_tables"]`` records
            each table's column range, rows and provenance.
        cache: use and fill the per-partition edge-array cache.

    Raises:
        ValueError: an unknown event or target type, an empty window, or a feature table
            that ``version`` does not have (the message lists those it has).
    """
    import torch
    from torch_geometric.data import HeteroData


    if not isinstance(store, GraphStore):
        store = GraphStore(store)
    if categorical not in ("index", "onehot"):
        raise ValueError(f"categorical must be 'index' or 'onehot', got {categorical!r}")
    manifest = store.manifest(version)
    schema = store.schema(manifest.version)
    start, end = window if window is not None else (None, None)
    start_dt = to_utc(start) if start is not None else None
    end_dt = to_utc(end) if end is not None else None
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
    tables = _feature_table_keys(store, manifest, feature_tables)
    keep_et = set(event_types or schema.event_types)
    keep_tt = set(target_types or schema.target_types)
    lo_us = int(start_dt.timestamp() * 1_000_000) if start_dt is not None else None
    hi_us = int(end_dt.timestamp() * 1_000_000) if end_dt is not None else None

    sizes = {nt: e.size for nt, e in manifest.id_maps.items()}
    parts = store.partitions(manifest.version, start=start_dt, end=end_dt)
    entries = [(day, f) for day, fs in parts.items() for f in fs]
    collected: dict[Group, list[Arrays]] = {}
    with StepProgress(progress, "build") as bar:
        for i, (day, entry) in enumerate(entries):
            bar.update("loading partitions", i, len(entries))
            # Only the first and last day of a window can hold events outside it.
            edge_day = (start_dt is not None and day == start_dt.date().isoformat()) or (
                end_dt is not None
                and day >= (end_dt - dt.timedelta(microseconds=1)).date().isoformat()
            )
            for group, arrs in _partition_groups(store, entry, cache=cache).items():
                if group[0] not in keep_tt or group[1] not in keep_et:
                    continue
                if edge_day:
                    arrs = _in_window(arrs, lo_us, hi_us)
                if arrs["user"].size:
                    collected.setdefault(group, []).append(arrs)
        bar.update("building graph", 0, 1)

    order = {
        g: (schema.target_types.index(g[0]), schema.event_types.index(g[1])) for g in collected
    }
    groups = {g: _concatenate(collected.pop(g)) for g in sorted(collected, key=order.__getitem__)}

    weights = dict(event_weights or {})
    for (_, et), a in groups.items():
        w = weights.get(et, 1.0)
        if w == "value":
            value = a["value"]
            base: np.ndarray | float = (
                np.nan_to_num(value, nan=0.0) if value is not None else np.zeros(a["time"].shape[0])
            )
        else:
            base = float(w)  # the same weight on every edge: kept as one number until the end
        own = a["weight"]
        a["edge_weight"] = base * np.nan_to_num(own, nan=1.0) if own is not None else base

    node_mask: dict[str, np.ndarray] = {}
    if min_interactions and min_interactions > 1:
        groups, node_mask = _k_core(groups, sizes, min_interactions)

    data = HeteroData()
    for nt in schema.node_types:
        data[nt].num_nodes = sizes.get(nt, 0)
    for (tt, et), a in groups.items():
        ei, t, w, val = a["edge_index"], a["time"], a["edge_weight"], a["value"]
        n = t.shape[0]
        if collapse:
            src, dst, t, w, val = _collapse(
                ei[0],
                ei[1],
                t,
                np.full(n, w) if isinstance(w, float) else w,
                np.full(n, np.nan) if val is None else val,
            )
            ei = np.stack([src, dst]).astype(np.int64, copy=False)
        if isinstance(w, float):
            w32 = np.full(t.shape[0], w, dtype=np.float32)
        else:
            w32 = w.astype(np.float32)
        attrs = {"edge_time": torch.from_numpy(t), "edge_weight": torch.from_numpy(w32)}
        if val is not None and not np.isnan(val).all():
            attrs["edge_value"] = torch.from_numpy(val.astype(np.float32))
        ei_t = torch.from_numpy(ei)
        fwd = data[USER, et, tt]
        fwd.edge_index = ei_t
        for k, v in attrs.items():
            fwd[k] = v
        if reverse:
            rev = data[tt, f"rev_{et}", USER]
            rev.edge_index = ei_t.flip(0)
            for k, v in attrs.items():
                rev[k] = v
    for nt, mask in node_mask.items():
        data[nt].node_mask = torch.from_numpy(mask)
    if features:
        for nt in schema.node_types:
            if nt in manifest.attributes:
                _attach_features(data, store, manifest.version, nt, sizes.get(nt, 0), categorical)
    table_info = _attach_feature_tables(data, store, manifest, tables, sizes) if tables else None
    data.store_info = {
        "root": str(store.root),
        "version": manifest.version,
        "schema_hash": manifest.schema_hash,
        "window": [
            start_dt.isoformat() if start_dt else None,
            end_dt.isoformat() if end_dt else None,
        ],
        "min_interactions": min_interactions,
    }
    if table_info:
        data.store_info["feature_tables"] = table_info
    return data


def _in_window(arrs: Arrays, lo_us: int | None, hi_us: int | None) -> Arrays:
    """The edges of ``arrs`` with ``lo_us <= time_us < hi_us`` (``arrs`` itself when all are inside)."""
    t = arrs["time_us"]
    sel = np.ones(t.shape[0], dtype=bool)
    if lo_us is not None:
        sel &= t >= lo_us
    if hi_us is not None:
        sel &= t < hi_us
    if sel.all():
        return arrs
    out: Arrays = {k: None if v is None else v[sel] for k, v in arrs.items()}
    for k in OPTIONAL:
        v = out[k]
        if v is not None and np.isnan(v).all():
            out[k] = None  # keeps "None = NaN on every edge" true after the cut
    return out


def _concatenate(parts: list[Arrays]) -> dict[str, Any]:
    """One group's arrays from its partitions, written once into fresh arrays.

    Returns ``edge_index`` (int64, shape ``[2, n]``), ``time`` (int64 epoch seconds) and
    ``value`` / ``weight`` (float64 with NaN where absent, or None when absent on every
    edge). Cached partitions are memory maps, so each array is copied exactly once, from
    the page cache into its final place.
    """
    n = sum(p["user"].shape[0] for p in parts)
    edge_index = np.empty((2, n), dtype=np.int64)
    time = np.empty(n, dtype=np.int64)
    optional = {k: np.empty(n) if any(p[k] is not None for p in parts) else None for k in OPTIONAL}
    lo = 0
    for p in parts:
        hi = lo + p["user"].shape[0]
        edge_index[0, lo:hi] = p["user"]
        edge_index[1, lo:hi] = p["target"]
        np.floor_divide(p["time_us"], 1_000_000, out=time[lo:hi])
        for k, out in optional.items():
            if out is not None:
                out[lo:hi] = np.nan if p[k] is None else p[k]
        lo = hi
    return {"edge_index": edge_index, "time": time, **optional}


def _k_core(groups: dict[Group, dict[str, Any]], sizes: dict[str, int], k: int):
    """Keep edges whose user and target both have >= k edges (all groups counted), until stable."""
    keep = {g: np.ones(a["time"].shape[0], dtype=bool) for g, a in groups.items()}
    target_types = sorted({g[0] for g in groups} | {t for t in sizes if t != USER})
    while True:
        du = np.zeros(sizes.get(USER, 0), dtype=np.int64)
        dt_ = {t: np.zeros(sizes.get(t, 0), dtype=np.int64) for t in target_types}
        for g, a in groups.items():
            src, dst = a["edge_index"]
            du += np.bincount(src[keep[g]], minlength=du.shape[0])
            dt_[g[0]] += np.bincount(dst[keep[g]], minlength=dt_[g[0]].shape[0])
        changed = False
        for g, a in groups.items():
            src, dst = a["edge_index"]
            new = keep[g] & (du[src] >= k) & (dt_[g[0]][dst] >= k)
            if new.sum() != keep[g].sum():
                keep[g], changed = new, True
        if not changed:
            break
    masks = {USER: du >= k, **{t: d >= k for t, d in dt_.items()}}
    out = {g: {f: _select(v, keep[g]) for f, v in a.items()} for g, a in groups.items()}
    return {g: a for g, a in out.items() if a["time"].size}, masks


def _select(v: Any, mask: np.ndarray) -> Any:
    """``v`` at the edges in ``mask``: arrays along their last axis; None and numbers as they are."""
    return v[..., mask] if isinstance(v, np.ndarray) else v


def _collapse(src, dst, t, w, val):
    df = (
        pl.DataFrame({"s": src, "d": dst, "t": t, "w": w, "v": val})
        .group_by("s", "d", maintain_order=True)
        .agg(pl.col("t").max(), pl.col("w").sum(), pl.col("v").fill_nan(None).drop_nulls().last())
    )
    return (
        df["s"].to_numpy(),
        df["d"].to_numpy(),
        df["t"].to_numpy(writable=True),
        df["w"].to_numpy(),
        df["v"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
    )


def _attach_features(
    data, store: GraphStore, version: int, nt: str, n: int, categorical: str
) -> None:
    import torch

    schema = store.schema(version)
    spec = schema.attributes[nt]
    table = store.attributes(nt, version)
    if table is None:
        return
    full = pl.DataFrame({"id": np.arange(n, dtype=np.int64)}).join(
        table, on="id", how="left", maintain_order="left"
    )
    numeric = [c for c, k in spec.columns.items() if k == "numeric"]
    cats = [c for c, k in spec.columns.items() if k == "categorical"]
    texts = [c for c, k in spec.columns.items() if k == "text"]
    blocks, names = [], []
    if numeric:
        blocks.append(
            full.select(pl.col(numeric).cast(pl.Float32).fill_nan(0.0).fill_null(0.0)).to_numpy()
        )
        names += numeric
    vocab: dict[str, list[str]] = {}
    codes = []
    for c in cats:
        values = sorted(full[c].drop_nulls().unique().to_list())
        vocab[c] = values
        code = full[c].replace_strict(
            values, list(range(1, len(values) + 1)), default=0, return_dtype=pl.Int64
        )
        codes.append(code.to_numpy())
        if categorical == "onehot":
            onehot = np.zeros((n, len(values)), dtype=np.float32)
            hit = code.to_numpy() > 0
            onehot[np.nonzero(hit)[0], code.to_numpy()[hit] - 1] = 1.0
            blocks.append(onehot)
            names += [f"{c}={v}" for v in values]
    if blocks:
        data[nt].x = torch.from_numpy(
            np.ascontiguousarray(np.concatenate(blocks, axis=1), dtype=np.float32)
        )
        data[nt].x_names = names
    if cats and categorical == "index":
        data[nt].x_cat = torch.from_numpy(np.stack(codes, axis=1))
        data[nt].x_cat_names = cats
    if cats:
        data[nt].cat_vocab = vocab
    if texts:
        data[nt].text = {c: full[c].fill_null("").to_list() for c in texts}


def _feature_table_keys(
    store: GraphStore, manifest: Manifest, feature_tables: Sequence[str] | str | None
) -> list[str]:
    """The keys ``feature_tables`` names (``"all"``: every table of the version), checked to exist."""
    if feature_tables is None:
        return []
    have = sorted(manifest.features)
    if isinstance(feature_tables, str):
        keys = have if feature_tables == "all" else [feature_tables]
    else:
        keys = list(dict.fromkeys(feature_tables))
    unknown = [k for k in keys if k not in manifest.features]
    if unknown:
        raise ValueError(
            f"no feature table {', '.join(map(repr, unknown))} in version {manifest.version} of {store.root}; "
            f"it has {have or 'none'} (keys are '<node type>/<name>'; GraphStore.write_features writes them)"
        )
    return keys


def _attach_feature_tables(
    data, store: GraphStore, manifest: Manifest, keys: list[str], sizes: Mapping[str, int]
) -> dict[str, dict[str, Any]]:
    """Append the tables ``keys`` to their node types' ``x``; set ``x_names`` and ``x_missing``."""
    import torch

    by_type: dict[str, list[str]] = {}
    for key in keys:
        by_type.setdefault(manifest.features[key].node_type, []).append(key)
    info: dict[str, dict[str, Any]] = {}
    for nt, nt_keys in by_type.items():
        n = sizes.get(nt, 0)
        store_nt = data[nt]
        old = getattr(store_nt, "x", None)
        names = list(getattr(store_nt, "x_names", None) or []) if old is not None else []
        col = 0 if old is None else int(old.shape[1])
        missing = np.zeros(n, dtype=bool)
        blocks = []
        for key in nt_keys:
            entry = manifest.features[key]
            ids, x = store.read_features(key, manifest.version)
            if ids.size and ids[-1] >= n:
                raise CorruptStoreError(f"feature table {key!r} has id {int(ids[-1])}, but version "
                                        f"{manifest.version} has only {n} {nt} nodes")  # fmt: skip
            block = np.zeros((n, entry.dim), dtype=np.float32)
            block[ids] = x
            has = np.zeros(n, dtype=bool)
            has[ids] = True
            missing |= ~has
            blocks.append(block)
            names += [f"{entry.name}[{j}]" for j in range(entry.dim)]
            info[key] = {
                "node_type": nt, "columns": [col, col + entry.dim], "rows": entry.rows,
                "data_version": entry.data_version, "objective": entry.encoder.get("objective"),
            }  # fmt: skip
            col += entry.dim
        new = torch.from_numpy(np.concatenate(blocks, axis=1))
        store_nt.x = new if old is None else torch.cat([old.float(), new], dim=1)
        store_nt.x_names = names
        store_nt.x_missing = torch.from_numpy(missing)
    return info
