"""The on-disk graph store: immutable versions, an atomic ``CURRENT`` pointer, a writer lock.

Layout of a store folder::

    CURRENT                        number of the committed version readers see
    LOCK                           fcntl lock file of the single writer
    schemas/<hash>.yaml            every schema a version was validated against
    versions/v000007.json          one manifest per committed version (immutable)
    events/day=YYYY-MM-DD/*.parquet   event partitions by UTC day (immutable files)
    idmaps/<node type>/*.parquet   append-only id-map chunks: external_id -> id
    attributes/<node type>/*.parquet  full side table as of the version that wrote it
    quarantine/*.parquet           rejected rows, one file per ingest
    features/<node type>/*.parquet feature tables (``id`` + float32 vector ``x``), one file per write
    cache/                         derived data (per-partition edge arrays); safe to delete

A commit writes every new file under a fresh name (temporary file, fsync, rename), then
the manifest, then swaps ``CURRENT`` with an atomic rename. A crash at any instant leaves
``CURRENT`` on the previous version, whose files are never modified; the next writer
removes the orphans the crashed one left.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import re
import secrets
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from graphrec.store.errors import (
    CorruptStoreError,
    SchemaError,
    StoreExistsError,
    StoreLockedError,
    StoreNotFoundError,
    VersionNotFoundError,
)
from graphrec.store.manifest import FeatureEntry, FileEntry, IdMapEntry, Manifest
from graphrec.store.schema import USER, LogSchema
from graphrec.store.validate import QUARANTINE_SCHEMA
from graphrec.utils.faults import fault_point
from graphrec.utils.io import (
    LockHeld,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    exclusive_lock,
)

CURRENT = "CURRENT"
LOCK = "LOCK"
DATA_DIRS = ("events", "idmaps", "attributes", "quarantine", "features", "schemas", "versions")
#: Names of feature tables: they become file names, so no path separators or leading dots.
FEATURE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

#: Environment variable naming a commit step at which the writer kills itself (crash tests).
FAULT_ENV = "GRAPHREC_STORE_FAULT"
FAULT_POINTS = ("after_data", "after_manifest", "after_current")


def sha256_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _vname(version: int) -> str:
    return f"v{version:06d}"


class GraphStore:
    """A versioned graph store in one folder. Open with :meth:`open`, create with :meth:`init`.

    Readers never lock: every version is immutable, and :attr:`version` follows ``CURRENT``
    so a long-lived object sees new commits. Writes go through :func:`graphrec.store.ingest`,
    :meth:`write_features` and :meth:`evolve_schema`, which hold the writer lock.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not (self.root / CURRENT).is_file():
            raise StoreNotFoundError(
                f"no graph store at {self.root} (no {CURRENT} file); create one with "
                "`graphrec store init` or graphrec.store.GraphStore.init()"
            )
        self._manifests: dict[int, Manifest] = {}
        self._schemas: dict[str, LogSchema] = {}

    # ------------------------------------------------------------------ creation
    @staticmethod
    def exists(root: str | os.PathLike) -> bool:
        return (Path(root) / CURRENT).is_file()

    @classmethod
    def open(cls, root: str | os.PathLike) -> GraphStore:
        return cls(root)

    @classmethod
    def init(cls, root: str | os.PathLike, schema: LogSchema | None = None, *, exist_ok: bool = False) -> GraphStore:
        """Create an empty store (version 0) with ``schema`` (default: :class:`LogSchema`)."""
        schema = schema or LogSchema()
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        with writer_lock(root):
            if cls.exists(root):
                store = cls(root)
                if not exist_ok:
                    raise StoreExistsError(f"a graph store already exists at {root} (version {store.version})")
                if store.schema().hash() != schema.hash():
                    raise SchemaError(
                        f"the store at {root} has schema {store.schema().hash()[:19]}..., not the one given "
                        f"({schema.hash()[:19]}...); use GraphStore.evolve_schema() for additive changes"
                    )
                return store
            for d in DATA_DIRS:
                (root / d).mkdir(exist_ok=True)
            schema_path = write_schema(root, schema)
            manifest = Manifest(
                version=0,
                parent=None,
                created_at=dt.datetime.now(dt.UTC),
                schema_hash=schema.hash(),
                schema_path=schema_path,
                id_maps={nt: IdMapEntry() for nt in schema.node_types},
            )
            commit(root, manifest)
        return cls(root)

    # ------------------------------------------------------------------ versions
    @property
    def version(self) -> int:
        """The committed version that ``CURRENT`` points to."""
        text = (self.root / CURRENT).read_text().strip()
        try:
            return int(text)
        except ValueError as exc:
            raise CorruptStoreError(f"{self.root / CURRENT} does not hold a version number: {text!r}") from exc

    def manifest(self, version: int | None = None) -> Manifest:
        """The manifest of ``version`` (default: current)."""
        current = self.version
        if version is None:
            version = current
        if version < 0:
            version = current + 1 + version  # -1 = current, -2 = its parent, ...
        if version in self._manifests:
            return self._manifests[version]
        path = self.root / "versions" / f"{_vname(version)}.json"
        if version > current or not path.is_file():
            raise VersionNotFoundError(
                f"version {version} of {self.root} was never committed (current version: {current})"
            )
        manifest = Manifest.model_validate_json(path.read_bytes())
        self._manifests[version] = manifest
        return manifest

    def log(self) -> list[Manifest]:
        """All committed versions, newest first (following the parent chain)."""
        out = []
        m: Manifest | None = self.manifest()
        while m is not None:
            out.append(m)
            m = self.manifest(m.parent) if m.parent is not None else None
        return out

    def schema(self, version: int | None = None) -> LogSchema:
        m = self.manifest(version)
        if m.schema_hash not in self._schemas:
            schema = LogSchema.load(self.root / m.schema_path)
            if schema.hash() != m.schema_hash:
                raise CorruptStoreError(f"{m.schema_path} does not match the hash in manifest {m.version}")
            self._schemas[m.schema_hash] = schema
        return self._schemas[m.schema_hash]

    # ------------------------------------------------------------------ reading
    def path(self, entry: FileEntry | str) -> Path:
        return self.root / (entry.path if isinstance(entry, FileEntry) else entry)

    def partitions(
        self, version: int | None = None, *, start: Any = None, end: Any = None
    ) -> dict[str, list[FileEntry]]:
        """Event partitions of ``version`` whose day may hold events in ``[start, end)``."""
        m = self.manifest(version)
        lo = _day_key(start) if start is not None else None
        hi = _day_key(end, end=True) if end is not None else None
        return {
            day: files for day, files in sorted(m.partitions.items())
            if (lo is None or day >= lo) and (hi is None or day <= hi)
        }

    def events(
        self,
        version: int | None = None,
        *,
        start: Any = None,
        end: Any = None,
        columns: Sequence[str] | None = None,
        external_ids: bool = False,
    ) -> pl.LazyFrame:
        """Events of ``version`` as a lazy frame, optionally limited to ``[start, end)``.

        Columns: ``timestamp`` (UTC), ``user`` and ``target`` (contiguous ids), ``target_type``,
        ``event_type``, ``value``, ``weight`` and the context columns. With
        ``external_ids=True``, ``user_id`` and ``target_id`` are joined back from the id maps.
        """
        from graphrec.store.validate import TIME_DTYPE

        schema = self.schema(version)
        files = [self.path(f) for fs in self.partitions(version, start=start, end=end).values() for f in fs]
        lf = scan_events(files, schema)
        if start is not None:
            lf = lf.filter(pl.col("timestamp") >= pl.lit(to_utc(start)).cast(TIME_DTYPE))
        if end is not None:
            lf = lf.filter(pl.col("timestamp") < pl.lit(to_utc(end)).cast(TIME_DTYPE))
        if external_ids:
            users = self.id_map(USER, version).lazy().rename({"external_id": "user_id", "id": "user"})
            targets = pl.concat(
                [
                    self.id_map(t, version).lazy().with_columns(target_type=pl.lit(t))
                    .rename({"external_id": "target_id", "id": "target"})
                    for t in schema.target_types
                ]
            )
            lf = lf.join(users, on="user", how="left", maintain_order="left").join(
                targets, on=["target_type", "target"], how="left", maintain_order="left"
            )
        if columns is not None:
            lf = lf.select(columns)
        return lf

    def id_map(self, node_type: str, version: int | None = None) -> pl.DataFrame:
        """The id map of ``node_type``: columns ``external_id`` and ``id`` (0..size-1)."""
        m = self.manifest(version)
        schema = self.schema(version)
        if node_type not in m.id_maps:
            raise KeyError(f"unknown node type {node_type!r}; node types are {list(m.id_maps)}")
        entry = m.id_maps[node_type]
        ext = pl.Int64 if schema.id_type == "int" else pl.String
        if not entry.files:
            return pl.DataFrame(schema={"external_id": ext, "id": pl.Int64})
        df = pl.read_parquet([self.path(f) for f in entry.files])
        if df.height != entry.size:
            raise CorruptStoreError(f"id map of {node_type!r} has {df.height} rows; manifest {m.version} says {entry.size}")
        return df

    def to_internal(self, node_type: str, external_ids: Sequence[Any], version: int | None = None) -> np.ndarray:
        """Contiguous ids of ``external_ids`` (``-1`` where unknown)."""
        m = self.id_map(node_type, version)
        keys = pl.DataFrame({"external_id": pl.Series(list(external_ids)).cast(m.schema["external_id"])})
        out = keys.join(m, on="external_id", how="left", maintain_order="left")["id"].fill_null(-1)
        return out.to_numpy()

    def to_external(self, node_type: str, ids: Sequence[int] | np.ndarray, version: int | None = None) -> list[Any]:
        """External ids of contiguous ``ids`` (raises ``IndexError`` for an id out of range)."""
        m = self.id_map(node_type, version)
        idx = np.asarray(ids, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= m.height):
            raise IndexError(f"{node_type} ids must be in [0, {m.height}); got {idx.min()}..{idx.max()}")
        return m["external_id"].gather(idx).to_list()

    def attributes(self, node_type: str, version: int | None = None) -> pl.DataFrame | None:
        """The side table of ``node_type`` (``id`` plus declared columns), or None."""
        entry = self.manifest(version).attributes.get(node_type)
        return pl.read_parquet(self.path(entry)) if entry else None

    def quarantine(self, version: int | None = None, *, only: bool = False) -> pl.DataFrame:
        """Rejected rows up to ``version`` (or only those of ``version`` with ``only=True``)."""

        m = self.manifest(version)
        files = [f for f in m.quarantine if not only or f.version == m.version]
        if not files:
            return pl.DataFrame(schema=QUARANTINE_SCHEMA)
        return pl.read_parquet([self.path(f) for f in files])

    def features(self, node_type: str | None = None, version: int | None = None) -> dict[str, FeatureEntry]:
        """Feature tables of ``version`` (default: current), keyed ``"<node type>/<name>"``, sorted by key;
        only those of ``node_type`` when given."""
        feats = self.manifest(version).features
        return {k: feats[k] for k in sorted(feats) if node_type is None or feats[k].node_type == node_type}

    def read_features(self, key: str, version: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The feature table ``key`` (``"<node type>/<name>"``) of ``version``: ``(ids, x)``.

        Returns:
            ids: int64 ``[n]``, the node type's contiguous ids, sorted ascending and unique;
            x: float32 ``[n, dim]``, row ``k`` the vector of node ``ids[k]``.

        Raises:
            KeyError: no such table in ``version`` (the message lists those it has).
            CorruptStoreError: the file disagrees with the manifest (rows, dim, column types).
        """
        m = self.manifest(version)
        entry = m.features.get(key)
        if entry is None:
            raise KeyError(f"no feature table {key!r} in version {m.version} of {self.root}; "
                           f"it has {sorted(m.features) or 'none'}")  # fmt: skip
        df = pl.read_parquet(self.path(entry.file))
        want = {"id": pl.Int64(), "x": pl.Array(pl.Float32(), entry.dim)}
        if dict(df.schema) != want or df.height != entry.rows:
            raise CorruptStoreError(
                f"feature table {key!r} ({entry.file.path}) holds {df.height} rows of {dict(df.schema)}; "
                f"manifest {m.version} says {entry.rows} rows of {want}"
            )
        x = df["x"].to_numpy().reshape(entry.rows, entry.dim)
        return df["id"].to_numpy().astype(np.int64, copy=False), np.ascontiguousarray(x, dtype=np.float32)

    def info(self, version: int | None = None) -> dict[str, Any]:
        """A JSON-ready summary of ``version``: counts, id-map sizes, partitions, last ingest."""
        m = self.manifest(version)
        files = m.files()
        return {
            "root": str(self.root),
            "version": m.version,
            "current": self.version,
            "parent": m.parent,
            "created_at": m.created_at.isoformat(),
            "schema_hash": m.schema_hash,
            "counts": m.counts.model_dump(),
            "id_maps": {nt: e.size for nt, e in m.id_maps.items()},
            "partitions": len(m.partitions),
            "attributes": {nt: e.rows for nt, e in m.attributes.items()},
            "features": {
                k: {"dim": e.dim, "rows": e.rows, "objective": e.encoder.get("objective"),
                    "data_version": e.data_version, "version": e.file.version}
                for k, e in sorted(m.features.items())
            },  # fmt: skip
            "files": len(files),
            "bytes": sum(f.bytes for f in files),
            "versions": len(self.log()) if version is None else None,
            "last_ingest": m.ingest.model_dump(mode="json", exclude={"files"}) if m.ingest else None,
        }

    def verify(self, version: int | None = None, *, checksums: bool = True) -> list[str]:
        """Check that every file of ``version`` exists with its size and checksum. Returns problems."""
        m = self.manifest(version)
        problems = []
        for f in m.files():
            p = self.path(f)
            if not p.is_file():
                problems.append(f"missing file {f.path}")
            elif p.stat().st_size != f.bytes:
                problems.append(f"{f.path}: {p.stat().st_size} bytes, manifest says {f.bytes}")
            elif checksums and sha256_file(p) != f.checksum:
                problems.append(f"{f.path}: checksum mismatch")
        for nt, entry in m.id_maps.items():
            if sum(f.rows for f in entry.files) != entry.size:
                problems.append(f"id map {nt}: chunks hold {sum(f.rows for f in entry.files)} ids, size is {entry.size}")
        if sum(f.rows for fs in m.partitions.values() for f in fs) != m.counts.events:
            problems.append("partition rows do not add up to counts.events")
        for key, e in m.features.items():
            if e.rows != e.file.rows or key != e.key:
                problems.append(f"feature table {key}: entry says {e.key}, {e.rows} rows; its file {e.file.rows} rows")
        return problems

    # ------------------------------------------------------------------ writing
    def lock(self) -> contextlib.AbstractContextManager[None]:
        """The writer lock (fcntl); raises :class:`StoreLockedError` if another process holds it."""
        return writer_lock(self.root)

    def evolve_schema(self, schema: LogSchema, *, message: str = "") -> Manifest:
        """Commit a new version whose schema extends the current one (additive changes only)."""
        with self.lock():
            collect_garbage(self)
            parent = self.manifest()
            check_compatible(self.schema(), schema)
            manifest = parent.model_copy(deep=True)
            manifest.version = parent.version + 1
            manifest.parent = parent.version
            manifest.created_at = dt.datetime.now(dt.UTC)
            manifest.schema_hash = schema.hash()
            manifest.schema_path = write_schema(self.root, schema)
            manifest.ingest = None
            for nt in schema.node_types:
                manifest.id_maps.setdefault(nt, IdMapEntry())
            commit(self.root, manifest)
            return manifest

    def write_features(
        self,
        node_type: str,
        name: str,
        ids: np.ndarray,
        x: np.ndarray,
        *,
        data_version: int,
        encoder: dict[str, Any],
        meta: dict[str, Any] | None = None,
    ) -> Manifest:
        """Commit a new version that adds the feature table ``"<node_type>/<name>"`` (replacing one of that key).

        The new version is the current one plus this table (its parent is the current
        version, which stays as it was); every later ingest carries the table forward.
        Written like an ingest: under the writer lock, the file first, then the manifest,
        then ``CURRENT``.

        Args:
            node_type: ``user`` or a target type of the schema.
            name: table name, letters, digits, ``_``, ``.``, ``-`` (e.g. the encoder objective).
            ids: int ``[n]``, unique contiguous ids of ``node_type`` in ``data_version``'s id map.
            x: ``[n, dim]`` real numbers (stored as float32), row ``k`` the vector of ``ids[k]``.
            data_version: the store version the vectors were computed from.
            encoder: JSON-ready description of what computed them, ``{"objective": ..., "params": {...}}``.
            meta: any other JSON-ready facts (metrics, run folder, ...).

        Returns:
            The committed manifest.

        Raises:
            ValueError: a bad name, ids not 1-D integers, duplicate ids, ids outside the id map,
                ``x`` not ``[n, dim]`` with ``dim >= 1`` and ``n >= 1``, non-finite values, or
                ``encoder`` / ``meta`` not JSON-ready (each message names the table).
            SchemaError: ``node_type`` is not a node type of the schema.
            VersionNotFoundError: ``data_version`` was never committed.
            StoreLockedError: another process is writing the store.
        """
        key = f"{node_type}/{name}"
        where = f"feature table {key!r}"
        if not isinstance(name, str) or not FEATURE_NAME.fullmatch(name):
            raise ValueError(f"{where}: the name must match {FEATURE_NAME.pattern} (it names a file)")
        ids_a, x_a = np.asarray(ids), np.asarray(x)
        if ids_a.ndim != 1 or not (np.issubdtype(ids_a.dtype, np.integer) or ids_a.size == 0):
            raise ValueError(f"{where}: ids must be a 1-D integer array, got shape {ids_a.shape} of {ids_a.dtype}")
        if x_a.ndim != 2 or x_a.shape[0] != ids_a.shape[0] or x_a.shape[1] < 1 or x_a.shape[0] < 1:
            raise ValueError(f"{where}: x must have shape [n, dim] with n = len(ids) = {ids_a.shape[0]} >= 1 "
                             f"and dim >= 1, got {x_a.shape}")  # fmt: skip
        if not (np.issubdtype(x_a.dtype, np.floating) or np.issubdtype(x_a.dtype, np.integer)):
            raise ValueError(f"{where}: x must hold real numbers, got {x_a.dtype}")
        ids_a = ids_a.astype(np.int64)
        with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf, caught below
            x32 = x_a.astype(np.float32)
        bad = ~np.isfinite(x32).all(axis=1)
        if bad.any():
            raise ValueError(f"{where}: {int(bad.sum())} row(s) hold NaN or infinite values (as float32), "
                             f"e.g. id {int(ids_a[bad][0])}")  # fmt: skip
        uniq, counts = np.unique(ids_a, return_counts=True)
        if uniq.size != ids_a.size:
            raise ValueError(f"{where}: ids must be unique; {int((counts > 1).sum())} repeat, "
                             f"e.g. id {int(uniq[counts > 1][0])}")  # fmt: skip
        for label, obj in (("encoder", encoder), ("meta", meta or {})):
            try:
                json.dumps(obj)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{where}: {label} must be a JSON-ready dict: {exc}") from None
            if not isinstance(obj, dict):
                raise ValueError(f"{where}: {label} must be a dict, got {type(obj).__name__}")
        order = np.argsort(ids_a, kind="stable")
        ids_a, x32 = ids_a[order], np.ascontiguousarray(x32[order])
        with self.lock():
            collect_garbage(self)
            parent = self.manifest()
            schema = self.schema(parent.version)
            if node_type not in schema.node_types:
                raise SchemaError(f"{where}: {node_type!r} is not a node type of the store's schema; "
                                  f"node types are {schema.node_types}")  # fmt: skip
            source = self.manifest(data_version)
            size = source.id_maps[node_type].size if node_type in source.id_maps else 0
            if ids_a[0] < 0 or ids_a[-1] >= size:
                out = ids_a[(ids_a < 0) | (ids_a >= size)]
                raise ValueError(f"{where}: {out.size} id(s) outside [0, {size}), the {node_type} id map of "
                                 f"version {source.version} (data_version), e.g. {int(out[0])}")  # fmt: skip
            v = parent.version + 1
            dim = int(x32.shape[1])
            df = pl.DataFrame({"id": ids_a, "x": pl.Series("x", x32, dtype=pl.Array(pl.Float32, dim))})
            now = dt.datetime.now(dt.UTC)
            entry = FeatureEntry(
                file=write_parquet_file(self.root, f"features/{node_type}", name, df, v), node_type=node_type,
                name=name, dim=dim, rows=int(ids_a.size), encoder=dict(encoder), data_version=source.version,
                created_at=now, meta=dict(meta or {}),
            )  # fmt: skip
            manifest = parent.model_copy(deep=True)
            manifest.version, manifest.parent, manifest.created_at = v, parent.version, now
            manifest.ingest = None
            manifest.features[key] = entry
            commit(self.root, manifest)
            return manifest

    def __repr__(self) -> str:
        return f"GraphStore({str(self.root)!r}, version={self.version})"


# ---------------------------------------------------------------------- helpers
def stored_event_schema(schema: LogSchema) -> dict[str, pl.DataType]:
    """Column types of stored event partitions."""
    from graphrec.store.validate import TIME_DTYPE, event_columns, output_dtype

    ctx = {c.name: output_dtype(c, schema) for c in event_columns(schema) if c.name in schema.context}
    return {
        "timestamp": TIME_DTYPE,
        "user": pl.Int64(),
        "target_type": pl.String(),
        "target": pl.Int64(),
        "event_type": pl.String(),
        "value": pl.Float64(),
        "weight": pl.Float64(),
        **ctx,
    }


def scan_events(files: Sequence[str | os.PathLike], schema: LogSchema) -> pl.LazyFrame:
    """Event partition files read with ``schema``'s columns: a file written before a schema
    extension (a new context column) reads the new column as nulls."""
    if not files:
        return pl.LazyFrame(schema=stored_event_schema(schema))
    return pl.scan_parquet(list(files), schema=stored_event_schema(schema), missing_columns="insert")


def check_compatible(old: LogSchema, new: LogSchema) -> None:
    """Raise :class:`SchemaError` unless ``new`` only adds to ``old``."""
    problems = []
    for name in ("id_type", "timestamp_unit", "timezone"):
        if getattr(old, name) != getattr(new, name):
            problems.append(f"{name} changed from {getattr(old, name)!r} to {getattr(new, name)!r}")
    for name in ("target_types", "event_types"):
        gone = set(getattr(old, name)) - set(getattr(new, name))
        if gone:
            problems.append(f"{name} removed: {sorted(gone)}")
    for col, kind in old.context.items():
        if new.context.get(col) != kind:
            problems.append(f"context column {col!r} removed or retyped")
    for nt, spec in old.attributes.items():
        nspec = new.attributes.get(nt)
        if nspec is None or nspec.id_column != spec.id_column:
            problems.append(f"attributes of {nt!r} removed or id column changed")
            continue
        for col, kind in spec.columns.items():
            if nspec.columns.get(col) != kind:
                problems.append(f"attribute {nt}.{col} removed or retyped")
    if problems:
        raise SchemaError("schema change is not additive: " + "; ".join(problems))


def write_schema(root: Path, schema: LogSchema) -> str:
    rel = f"schemas/{schema.hash().split(':', 1)[1][:16]}.yaml"
    if not (root / rel).is_file():
        atomic_write_text(root / rel, schema.to_yaml())
    return rel


def commit(root: Path, manifest: Manifest) -> None:
    """Publish ``manifest``: write it, then atomically point ``CURRENT`` at it."""
    fault_point(FAULT_ENV, "after_data")
    atomic_write_json(root / "versions" / f"{_vname(manifest.version)}.json", manifest.model_dump(mode="json"))
    fault_point(FAULT_ENV, "after_manifest")
    atomic_write_text(root / CURRENT, f"{manifest.version}\n")
    fault_point(FAULT_ENV, "after_current")


def write_parquet_file(root: Path, rel_dir: str, stem: str, df: pl.DataFrame, version: int) -> FileEntry:
    """Write ``df`` under a fresh name in ``rel_dir`` (atomically) and describe it."""
    buf = io.BytesIO()
    df.write_parquet(buf, compression="zstd", compression_level=1, statistics=True)
    data = buf.getvalue()
    rel = f"{rel_dir}/{stem}-{_vname(version)}-{secrets.token_hex(4)}.parquet"
    atomic_write_bytes(root / rel, data)
    return FileEntry(path=rel, rows=df.height, bytes=len(data), checksum=sha256_bytes(data), version=version)


def collect_garbage(store: GraphStore) -> list[str]:
    """Remove files no committed version references (left by a crashed writer).

    Call only while holding the writer lock. Returns the removed paths (relative).
    """
    root = store.root
    current = store.version
    referenced: set[str] = set()
    for v in range(0, current + 1):
        try:
            m = store.manifest(v)
        except VersionNotFoundError:
            continue
        referenced.update(f.path for f in m.files())
        referenced.add(m.schema_path)
        referenced.add(f"versions/{_vname(v)}.json")
    removed = []
    for d in DATA_DIRS:
        base = root / d
        if not base.is_dir():
            continue
        for p in base.rglob("*"):
            if p.is_file():
                rel = p.relative_to(root).as_posix()
                if rel not in referenced:
                    p.unlink()
                    removed.append(rel)
    for p in root.glob(".*.tmp"):
        p.unlink()
        removed.append(p.name)
    return removed


@contextlib.contextmanager
def writer_lock(root: Path) -> Iterator[None]:
    """Hold the store's exclusive writer lock (``LOCK`` file, ``fcntl.flock``)."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(exclusive_lock(Path(root) / LOCK, argv=sys.argv[:4]))
        except LockHeld as exc:
            raise StoreLockedError(
                f"the store at {root} is being written by another process{exc.who()}; "
                "only one writer at a time is allowed: wait for it to finish, then retry"
            ) from None
        yield


def to_utc(value: Any) -> dt.datetime:
    """A datetime, date, ISO string or epoch seconds as an aware UTC datetime."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, int | float | np.integer | np.floating):
        return dt.datetime.fromtimestamp(float(value), dt.UTC)
    if isinstance(value, str):
        return to_utc(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
    raise TypeError(f"cannot use {value!r} as a time (give a datetime, date, ISO string or epoch seconds)")


def _day_key(value: Any, *, end: bool = False) -> str:
    t = to_utc(value)
    if end and t.time() == dt.time(0):
        t = t - dt.timedelta(microseconds=1)  # [start, end): an end at midnight excludes that day
    return t.date().isoformat()

