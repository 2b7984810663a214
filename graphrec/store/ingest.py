"""Ingest: validate logs and side tables, assign ids, write day partitions, commit a version.

Semantics (see docs/store.md):

* every input record is counted once: ``read = accepted + quarantined + duplicates``;
* rejected records go to the quarantine with source file, row number, reason and the raw
  record; a file that cannot be opened counts as one read and one quarantined record;
* exact duplicates (all event columns equal, after typing) are dropped, within the batch
  and against events already stored for the same days;
* new external ids get the next contiguous ids, in order of first appearance; existing
  ids never change;
* only the days present in the batch get new partition files, and only new ids are
  written to the id maps (one tail chunk per node type).

Two engines read and validate the files: ``local`` (this process) and ``ray`` (one Ray Data
task per file, :func:`read_file`); both hand the same per-file results to the same
sequential driver steps (input-order concat, dedup, ids, stored duplicates, commit), so
they commit identical versions.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import pickle
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field

from graphrec.store.errors import SchemaError, SourceError
from graphrec.store.manifest import Counts, FileEntry, FileStats, IdMapEntry, IngestStats, Manifest
from graphrec.store.schema import USER, LogSchema
from graphrec.store.sources import ROW, FrameSource, RawFile, SourceLike, read_source, resolve
from graphrec.store.store import (
    GraphStore,
    collect_garbage,
    commit,
    scan_events,
    stored_event_schema,
    write_parquet_file,
    write_schema,
)
from graphrec.store.validate import (
    CODE,
    DETAIL,
    FIELD,
    QUARANTINE_SCHEMA,
    REASON,
    Column,
    Normalized,
    attribute_columns,
    event_columns,
    normalize,
    raw_json,
)
from graphrec.utils.console import ProgressFn, StepProgress

FILE = "__file"
#: Errors that mean "this file's content cannot be decoded" (not a bug in the pipeline).
_READ_ERRORS = (pl.exceptions.ComputeError, OSError)

class IngestReport(IngestStats):
    """What an ingest committed. ``str(report)`` is the one-line invariant."""

    version: int
    parent: int | None
    store: str
    partitions_written: list[str] = Field(default_factory=list)
    new_ids: dict[str, int] = Field(default_factory=dict)
    id_map_sizes: dict[str, int] = Field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return self.read / self.duration_s if self.duration_s > 0 else float("inf")

    def __str__(self) -> str:
        return f"version {self.version}: {self.summary()}"


def ingest(
    store: GraphStore | str | os.PathLike,
    sources: Iterable[SourceLike] = (),
    *,
    attributes: Mapping[str, SourceLike | Sequence[SourceLike]] | None = None,
    schema: LogSchema | None = None,
    message: str = "",
    progress: bool | ProgressFn = False,
    echo: bool = True,
    engine: Literal["local", "ray"] = "local",
    workers: int | None = None,
) -> IngestReport:
    """Ingest event files (and side tables) into ``store`` and commit one new version.

    Args:
        store: a :class:`GraphStore` or its folder; a missing store is created with
            ``schema`` (default :class:`LogSchema`).
        sources: event files, folders, glob patterns, or ``(name, polars frame)`` pairs.
        attributes: side tables by node type, e.g. ``{"item": "items.parquet"}``.
        schema: must equal the store's schema when the store exists.
        message: stored in the manifest, shown by ``graphrec store log``.
        progress: show a rich progress bar (or a callback ``(step, done, total)``).
        echo: print the invariant line ``read = accepted + quarantined + duplicates``.
        engine: ``"local"`` reads and validates in this process (polars, all cores);
            ``"ray"`` reads and validates each file in a Ray Data task
            (``from_items`` -> ``map_batches(batch_size=1)``), then orders, deduplicates,
            assigns ids and commits in this process, as ``"local"`` does. The committed
            version is identical to a local ingest's (events in the same order, id maps,
            quarantine rows in the same order, per-file counts). In-memory ``(name, frame)``
            sources are validated in this process. Ray is initialised when not connected
            (``$RAY_ADDRESS`` when set, else a local Ray with ``workers`` CPUs) and shut
            down afterwards only then. See docs/store.md, "Distributed ingest with Ray Data".
        workers: Ray tasks running at once (and the CPUs of a Ray started here); default:
            the cluster's CPUs. Only with ``engine="ray"``.

    Raises:
        SourceError: a path does not exist, or nothing was given to ingest.
        StoreLockedError: another process is writing the store.
        SchemaError: ``schema`` differs from the store's.
        ValueError: an unknown ``engine``, or ``workers`` < 1 or given without ``engine="ray"``.
        ImportError: ``engine="ray"`` without Ray Data installed (``pip install 'graphrec[ray]'``).
    """
    started = time.perf_counter()
    started_at = dt.datetime.now(dt.UTC)
    if engine not in ("local", "ray"):
        raise ValueError(f"engine must be 'local' or 'ray', got {engine!r}")
    if workers is not None and (engine != "ray" or workers < 1):
        raise ValueError(f"workers={workers!r}: a number of Ray tasks >= 1, only with engine='ray'")
    if engine == "ray":
        _import_ray()  # before anything is created
    # Every input is checked before anything is created: a failed first ingest leaves no store.
    files = resolve(sources)
    attr_files: dict[str, list[Any]] = {}
    for nt, items in (attributes or {}).items():
        items = [items] if isinstance(items, str | os.PathLike | tuple) else list(items)
        attr_files[nt] = resolve(items)
    if not files and not attr_files:
        raise SourceError("nothing to ingest: give event files and/or attribute tables")
    created = False
    if not isinstance(store, GraphStore):
        if GraphStore.exists(store):
            store = GraphStore(store)
        else:
            _check_side_tables(schema or LogSchema(), attr_files)
            created = not Path(store).exists()
            store = GraphStore.init(store, schema, exist_ok=True)
    try:
        session = ray_session(workers) if engine == "ray" else nullcontext()
        with session as ray:
            runner = _Ray(ray, workers) if ray is not None else None
            report = _run(store, files, attr_files, schema, message, progress, started, started_at, runner)
    except BaseException:
        if created and store.version == 0:  # nothing was committed: leave no half-made store behind
            shutil.rmtree(store.root, ignore_errors=True)
        raise
    if echo:
        _echo(report)
    return report


def _check_side_tables(schema: LogSchema, attr_files: Mapping[str, Any]) -> None:
    for nt in attr_files:
        if nt not in schema.attributes:
            raise SchemaError(
                f"no side table is declared for node type {nt!r}; declared: {sorted(schema.attributes)} "
                "(declare it under `attributes:` in the log schema)"
            )


def _run(store: GraphStore, files, attr_files, schema, message, progress, started, started_at,
         ray: _Ray | None = None) -> IngestReport:  # fmt: skip
    with store.lock(), StepProgress(progress, "ingest") as bar:
        collect_garbage(store)
        parent = store.manifest()
        store_schema = store.schema()
        if schema is not None and schema.hash() != store_schema.hash():
            raise SchemaError(
                f"the schema given differs from the store's ({store_schema.hash()[:19]}...); extend the store's "
                "schema first with `graphrec store evolve-schema` (GraphStore.evolve_schema)"
            )
        _check_side_tables(store_schema, attr_files)
        job = _Ingest(store, parent, store_schema, bar, ray)
        job.read_events(files)
        for nt, items in attr_files.items():
            job.read_attributes(nt, items)
        return job.commit(message=message, started=started, started_at=started_at)


# ---------------------------------------------------------------------------------- the job
class _Ingest:
    def __init__(self, store: GraphStore, parent: Manifest, schema: LogSchema, bar: StepProgress,
                 ray: _Ray | None = None):  # fmt: skip
        self.store = store
        self.ray = ray
        self.parent = parent
        self.schema = schema
        self.bar = bar
        self.version = parent.version + 1
        self.stats: list[FileStats] = []
        self.quarantine: list[pl.DataFrame] = []
        self.batch: pl.DataFrame | None = None  # accepted, typed, deduplicated events
        self.id_maps: dict[str, pl.DataFrame] = {}
        self.new_ids: dict[str, pl.Series] = {}
        self.attr_tables: dict[str, pl.DataFrame] = {}

    # ----------------------------------------------------------------- reading
    def _read_table(self, items: list[Any], table: str, columns: list, extra_policy: str) -> list[pl.DataFrame]:
        """Read and validate files; quarantine rejects; return the accepted rows (in parts)."""
        spec = TableSpec(table, columns, self.schema, extra_policy)
        base = len(self.stats)  # the FILE value of the first file: its index in self.stats
        if self.ray is not None:
            return self._collect(_read_ray(self.ray, items, base, spec, self.bar))
        opened = []
        for k, item in enumerate(items):
            self.bar.update(f"reading {table}", k, len(items))
            opened.append(open_file(base + k, item, table))
        self.bar.update(f"validating {table}", 0, 1)
        groups: dict[str, list[OpenedFile]] = {}
        for f in opened:
            if f.key is not None:
                groups.setdefault(f.key, []).append(f)
        parts, unreadable = validate_groups(list(groups.values()), spec)
        return self._collect(FileResults([f.stats for f in opened], [f.head for f in opened], unreadable, parts))

    def _collect(self, res: FileResults) -> list[pl.DataFrame]:
        """Count and quarantine what :func:`open_file` and :func:`validate_groups` found.

        Quarantine order (the same for both engines): rows found while reading, file by file;
        files found damaged while validating; rejected rows, group by group.
        """
        base = len(self.stats)
        for st, head in zip(res.stats, res.heads, strict=True):
            self.stats.append(st)
            if head is not None:
                self._quarantine_rows(head)
        for i, error in res.unreadable:
            st = self.stats[i]
            st.status, st.note = "unreadable", error
            st.read += 1
            st.quarantined += 1
            self._quarantine_rows(_unreadable_rows(st.source, st.table, error))
        out: list[pl.DataFrame] = []
        for part in res.parts:
            for i, n in part.read.items():
                self.stats[i].read += n
            for i, n in part.quarantined.items():
                self.stats[i].quarantined += n
            if part.rejected is not None:
                self._quarantine_rows(part.rejected)
            out.append(part.accepted)
        for st in self.stats[base:]:
            if st.status == "ok":
                if st.read == 0:
                    st.status, st.note = "empty", "file holds no records"
                elif st.quarantined == st.read:
                    st.status, st.note = "rejected", "every record was quarantined"
        return out

    def _quarantine_rows(self, df: pl.DataFrame) -> None:
        self.quarantine.append(
            df.with_columns(version=pl.lit(self.version, pl.Int64)).select(
                [pl.col(c).cast(t) for c, t in QUARANTINE_SCHEMA.items()]
            )
        )

    def _concat(self, frames: list[pl.DataFrame]) -> pl.DataFrame:
        batch = pl.concat(frames, how="vertical")
        if len(frames) > 1 and not batch[FILE].is_sorted():
            batch = batch.sort(FILE, maintain_order=True)  # back to input order
        return batch

    def _count(self, files: pl.Series, attr: str) -> None:
        for i, n in enumerate(np.bincount(files.to_numpy(), minlength=len(self.stats)).tolist()):
            if n:
                setattr(self.stats[i], attr, getattr(self.stats[i], attr) + n)

    def read_events(self, items: list[Any]) -> None:
        if not items:
            return
        frames = self._read_table(items, "events", event_columns(self.schema), self.schema.extra_columns)
        if not frames:
            return
        self.bar.update("deduplicating", 0, 1)
        batch = self._concat(frames)
        first = first_distinct(batch, self.schema.event_columns)
        keep = None
        if not first.all():
            self._count(batch[FILE].filter(~first), "duplicates")
            keep = first  # applied with the id columns below: one copy instead of two
        self.bar.update("assigning ids", 0, 1)
        batch = self._map_ids(batch, keep)
        self.bar.update("checking stored duplicates", 0, 1)
        batch = self._drop_stored_duplicates(batch)
        self._count(batch[FILE], "accepted")
        self.batch = batch

    def _existing_map(self, node_type: str) -> pl.DataFrame:
        if node_type not in self.id_maps:
            try:
                self.id_maps[node_type] = self.store.id_map(node_type, self.parent.version)
            except KeyError:  # node type added by a schema change
                ext = pl.Int64 if self.schema.id_type == "int" else pl.String
                self.id_maps[node_type] = pl.DataFrame(schema={"external_id": ext, "id": pl.Int64})
        return self.id_maps[node_type]

    def _extend_map(self, node_type: str, keys: pl.Series) -> pl.DataFrame:
        """Append ids for ``keys`` not yet in the map (in order of first appearance)."""
        current = self._existing_map(node_type)
        keys = keys.unique(maintain_order=True)
        new = keys.filter(~keys.is_in(current["external_id"].implode()))
        if new.len():
            start = current.height
            tail = pl.DataFrame({"external_id": new, "id": pl.int_range(start, start + new.len(), eager=True).cast(pl.Int64)})
            self.new_ids[node_type] = pl.concat([self.new_ids[node_type], tail["external_id"]]) if node_type in self.new_ids else tail["external_id"]
            current = pl.concat([current, tail])
            self.id_maps[node_type] = current
        return current

    def _map_ids(self, batch: pl.DataFrame, keep: pl.Series | None = None) -> pl.DataFrame:
        """Add contiguous ``user`` and ``target`` ids; keep only rows where ``keep`` is true."""
        users = self._extend_map(USER, batch["user_id"])
        user = lookup(batch["user_id"], users)
        self.bar.update("assigning target ids", 0, 1)
        # Targets are numbered per target type.
        target = np.full(batch.height, -1, dtype=np.int64)
        for tt in self.schema.target_types:
            mask = (batch["target_type"] == tt).to_numpy()
            if not mask.any():
                continue
            keys = batch["target_id"].filter(pl.Series(mask))
            target[mask] = lookup(keys, self._extend_map(tt, keys))
        stored = list(stored_event_schema(self.schema))
        self.bar.update("selecting", 0, 1)
        batch = batch.with_columns(pl.Series("user", user), pl.Series("target", target)).select(*stored, FILE)
        return batch.filter(keep) if keep is not None else batch

    def _drop_stored_duplicates(self, batch: pl.DataFrame) -> pl.DataFrame:
        """Drop rows identical to events already stored for the same days."""
        if batch.height == 0:
            return batch
        if not self.parent.partitions:
            return batch
        lo, hi = batch["timestamp"].min(), batch["timestamp"].max()
        if not any(lo.date().isoformat() <= d <= hi.date().isoformat() for d in self.parent.partitions):
            return batch
        days = batch.select(pl.col("timestamp").dt.date().unique()).to_series()
        old = [d.isoformat() for d in days.to_list() if d.isoformat() in self.parent.partitions]
        if not old:
            return batch
        stored_cols = list(stored_event_schema(self.schema))
        existing = scan_events([self.store.path(f) for d in old for f in self.parent.partitions[d]],
                               self.schema).select(stored_cols).collect()  # fmt: skip
        idx = batch.with_row_index("__i").join(existing, on=stored_cols, how="semi", nulls_equal=True)
        if idx.height == 0:
            return batch
        self._count(idx[FILE], "duplicates")
        return batch.with_row_index("__i").filter(~pl.col("__i").is_in(idx["__i"].implode())).drop("__i")

    def read_attributes(self, node_type: str, items: list[Any]) -> None:
        spec = self.schema.attributes[node_type]
        columns = attribute_columns(self.schema, node_type)
        frames = self._read_table(items, f"attributes:{node_type}", columns, self.schema.extra_columns)
        if not frames:
            return
        batch = self._concat(frames)
        value_cols = [c.name for c in columns]
        first = first_distinct(batch, value_cols)
        self._count(batch.filter(~first)[FILE], "duplicates")
        batch = batch.filter(first)
        ids = self._extend_map(node_type, batch[spec.id_column])
        batch = batch.join(
            ids.rename({"external_id": spec.id_column}), on=spec.id_column, how="left", maintain_order="left"
        ).select("id", *[c for c in value_cols if c != spec.id_column], FILE)
        previous = self.attr_tables.get(node_type)
        if previous is None:
            previous = self.store.attributes(node_type, self.parent.version)
        if previous is not None:
            batch = batch.with_row_index("__i")
            same = batch.join(previous, on=[c for c in batch.columns if c not in (FILE, "__i")], how="semi",
                              nulls_equal=True)
            self._count(same[FILE], "duplicates")
            batch = batch.filter(~pl.col("__i").is_in(same["__i"].implode())).drop("__i")
        self._count(batch[FILE], "accepted")
        # Later rows win for an id given more than once.
        latest = batch.drop(FILE).unique(subset="id", keep="last", maintain_order=True)
        table = latest if previous is None else pl.concat(
            [previous.filter(~pl.col("id").is_in(latest["id"].implode())), latest], how="vertical_relaxed"
        )
        self.attr_tables[node_type] = table.sort("id")

    # ----------------------------------------------------------------- writing
    def commit(self, *, message: str, started: float, started_at: dt.datetime) -> IngestReport:
        root, v, parent = self.store.root, self.version, self.parent
        manifest = parent.model_copy(deep=True)
        manifest.version, manifest.parent = v, parent.version
        manifest.schema_path = write_schema(root, self.schema)
        counts = manifest.counts
        written: list[str] = []

        batch = self.batch
        if batch is not None and batch.height:
            batch = batch.drop(FILE)
            if not batch["timestamp"].is_sorted():
                self.bar.update("sorting", 0, 1)
                batch = batch.sort("timestamp", maintain_order=True)
            # The batch is sorted by time, so each UTC day is a contiguous slice.
            epoch_day = batch["timestamp"].dt.epoch("d").to_numpy()
            starts = np.concatenate([[0], np.flatnonzero(np.diff(epoch_day)) + 1])
            days = epoch_day[starts]
            bounds = [*starts.tolist(), batch.height]
            slices = [
                ((dt.date(1970, 1, 1) + dt.timedelta(days=int(d))).isoformat(), bounds[k], bounds[k + 1])
                for k, d in enumerate(days)
            ]

            def write(item: tuple[str, int, int]) -> tuple[str, FileEntry, pl.DataFrame]:
                day, a, b = item
                part = batch.slice(a, b - a)
                entry = write_parquet_file(root, f"events/day={day}", "part", part, v)
                return day, entry, part.group_by("target_type", "event_type").len()

            with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
                for k, (day, entry, by_event) in enumerate(pool.map(write, slices)):
                    self.bar.update("writing partitions", k + 1, len(slices))
                    manifest.partitions.setdefault(day, []).append(entry)
                    written.append(day)
                    for tt, et, n in by_event.iter_rows():
                        key = f"{tt}/{et}"
                        counts.by_event[key] = counts.by_event.get(key, 0) + n
            self.bar.update("writing id maps", 0, 1)
            counts.events += batch.height

        for nt, keys in self.new_ids.items():
            entry = manifest.id_maps.setdefault(nt, IdMapEntry())
            start = entry.size
            tail = pl.DataFrame({"external_id": keys, "id": pl.int_range(start, start + keys.len(), eager=True).cast(pl.Int64)})
            entry.files.append(write_parquet_file(root, f"idmaps/{nt}", "part", tail, v))
            entry.size += keys.len()
        for nt, table in self.attr_tables.items():
            manifest.attributes[nt] = write_parquet_file(root, f"attributes/{nt}", "table", table, v)

        quarantined = pl.concat(self.quarantine) if self.quarantine else None
        if quarantined is not None and quarantined.height:
            manifest.quarantine.append(write_parquet_file(root, "quarantine", "rejected", quarantined, v))

        stats = IngestStats(
            read=sum(s.read for s in self.stats),
            accepted=sum(s.accepted for s in self.stats),
            quarantined=sum(s.quarantined for s in self.stats),
            duplicates=sum(s.duplicates for s in self.stats),
            reasons=dict(sorted(quarantined.group_by("reason").len().iter_rows())) if quarantined is not None else {},
            files=self.stats,
            message=message,
            started_at=started_at,
        )
        stats.invariant_ok = stats.read == stats.accepted + stats.quarantined + stats.duplicates and all(
            s.read == s.accepted + s.quarantined + s.duplicates for s in self.stats
        )
        counts.read += stats.read
        counts.quarantined += stats.quarantined
        counts.duplicates += stats.duplicates
        counts.days = len(manifest.partitions)
        if manifest.partitions:
            counts.first_day, counts.last_day = min(manifest.partitions), max(manifest.partitions)
        manifest.counts = Counts.model_validate(counts.model_dump())
        manifest.created_at = dt.datetime.now(dt.UTC)
        stats.duration_s = time.perf_counter() - started
        manifest.ingest = stats
        self.bar.update("committing", 0, 1)
        commit(root, manifest)
        return IngestReport(
            **stats.model_dump(),
            version=v,
            parent=parent.version,
            store=str(root),
            partitions_written=written,
            new_ids={nt: s.len() for nt, s in self.new_ids.items()},
            id_map_sizes={nt: e.size for nt, e in manifest.id_maps.items()},
        )


# ------------------------------------------------------------ reading and validating files
# One code path for both engines: the local engine opens every file in the driver and
# validates each group of files (same format and column types) as one lazy frame; the Ray
# engine runs read_file (open_file + validate_groups on a group of one) per file in Ray
# workers. Validation is row-wise, so a group gives the same rows as its files one by one.
@dataclass(frozen=True)
class TableSpec:
    """What a table's files are validated against (picklable: sent to Ray workers)."""

    table: str  # "events" or "attributes:<node type>"
    columns: list[Column]
    schema: LogSchema
    extra_policy: str


@dataclass
class OpenedFile:
    """One input file after :func:`open_file`: read, not yet validated."""

    index: int  # position among the ingest's files: the FILE column of its rows
    stats: FileStats
    raw: RawFile
    head: pl.DataFrame | None  # quarantine rows found while reading (unreadable file, malformed lines)
    key: str | None  # validation group (format and column types); None when there is nothing to validate


@dataclass
class ValidatedPart:
    """Validated rows of one group of files, or of one file."""

    accepted: pl.DataFrame  # the table's typed columns and FILE, in input order
    rejected: pl.DataFrame | None  # quarantine rows (without ``version``), in input order
    read: dict[int, int]  # rows read, by FILE index
    quarantined: dict[int, int]


@dataclass
class FileResults:
    """What reading and validating a table's files gave, in the order the driver applies it."""

    stats: list[FileStats]  # one per file, in input order
    heads: list[pl.DataFrame | None]  # quarantine rows found while reading, one entry per file
    unreadable: list[tuple[int, str]]  # (FILE index, error) of files found damaged while validating
    parts: list[ValidatedPart]  # group by group; within a group, files in input order


def _quarantine_frame(df: pl.DataFrame) -> pl.DataFrame:
    """Quarantine rows with every column but ``version``, typed (one Arrow schema for transport)."""
    return df.select([pl.col(c).cast(t) for c, t in QUARANTINE_SCHEMA.items() if c != "version"])


def _unreadable_rows(source: str, table: str, error: str) -> pl.DataFrame:
    """The one quarantine row of a file that cannot be read."""
    return _quarantine_frame(pl.DataFrame({
        "source": [source], "table": [table], "row": [None], "reason": ["unreadable_file"],
        "field": [None], "detail": [error], "raw": [None],
    }, schema_overrides={"row": pl.Int64, "field": pl.String, "raw": pl.String}))


def group_key(raw: RawFile) -> str:
    """Files with equal keys (format, column names and types) are validated as one frame."""
    assert raw.frame is not None
    return json.dumps([raw.format, [[n, str(t)] for n, t in raw.frame.collect_schema().items()]])


def open_file(index: int, item: Path | FrameSource, table: str) -> OpenedFile:
    """Read one source (:func:`~graphrec.store.sources.read_source`, lazy where the format
    allows) and account for what reading found: an unreadable file, malformed lines, no records.
    Never raises for bad content."""
    raw = read_source(item)
    st = FileStats(source=raw.source, format=raw.format, table=table)
    if raw.error is not None:
        st.status, st.note = "unreadable", raw.error
        st.read, st.quarantined = 1, 1
        return OpenedFile(index, st, raw, _unreadable_rows(raw.source, table, raw.error), None)
    head = None
    if raw.malformed is not None:
        st.read += raw.malformed.height
        st.quarantined += raw.malformed.height
        head = _quarantine_frame(raw.malformed.select(
            source=pl.lit(raw.source), table=pl.lit(table), row=pl.col(ROW),
            reason=pl.lit("malformed_line"), field=pl.lit(None, pl.String),
            detail=pl.col("detail"), raw=pl.col("raw"),
        ))
    if raw.empty or raw.frame is None:
        st.status, st.note = "empty", "file holds no records"
        return OpenedFile(index, st, raw, head, None)
    return OpenedFile(index, st, raw, head, group_key(raw))


def _plan(members: list[OpenedFile], spec: TableSpec) -> Normalized:
    lf = pl.concat([f.raw.frame.with_columns(pl.lit(f.index, pl.UInt32).alias(FILE)) for f in members])
    return normalize(lf, spec.columns, spec.schema, present=members[0].raw.columns,
                     extra_policy=spec.extra_policy, passthrough=(FILE,))  # fmt: skip


def validate_groups(groups: list[list[OpenedFile]], spec: TableSpec) -> tuple[list[ValidatedPart], list[tuple[int, str]]]:
    """Validate groups of opened files (each group: one key of :func:`group_key`, files in
    input order) with :func:`~graphrec.store.validate.normalize`; split accepted and rejected rows.

    Returns one part per group, in the order given, and the files found damaged while
    validating as ``(FILE index, error)``. The groups are collected together (polars runs
    them in parallel); when a file is damaged deep inside (a corrupt Parquet page), every
    file is validated on its own and only the damaged ones are reported.
    """
    plans = [(members, _plan(members, spec)) for members in groups]
    unreadable: list[tuple[int, str]] = []
    try:
        frames = pl.collect_all([n.frame for _, n in plans]) if plans else []
    except _READ_ERRORS:  # a damaged file deep inside: validate file by file, keep the good ones
        frames, retry = [], []
        for members, _ in plans:
            for f in members:
                norm = _plan([f], spec)
                try:
                    frames.append(norm.frame.collect())
                    retry.append(([f], norm))
                except _READ_ERRORS as exc:
                    unreadable.append((f.index, f"unreadable file: {' '.join(str(exc).split())[:300]}"))
        plans = retry
    return [_split(frame, members, norm, spec) for frame, (members, norm) in zip(frames, plans, strict=True)], unreadable


def _split(frame: pl.DataFrame, members: list[OpenedFile], norm: Normalized, spec: TableSpec) -> ValidatedPart:
    keep = [c.name for c in spec.columns]
    sources = {f.index: f.raw.source for f in members}
    present = members[0].raw.columns
    read = dict(frame[FILE].value_counts().iter_rows())
    n_bad = frame.height - frame[CODE].null_count()
    # The engine may return columns chunked differently; eager operations on such a
    # frame copy everything again and again, so align the chunks once (below, only
    # the columns still needed).
    if not n_bad:
        return ValidatedPart(frame[[*keep, FILE]].rechunk(), None, read, {})
    frame = frame.rechunk()
    bad = frame.filter(pl.col(CODE).is_not_null()).with_columns(norm.describe)
    rejected = _quarantine_frame(pl.DataFrame({
        "source": bad[FILE].replace_strict(list(sources), list(sources.values()), return_dtype=pl.String),
        "table": pl.Series([spec.table] * bad.height, dtype=pl.String),
        "row": bad[ROW], "reason": bad[REASON], "field": bad[FIELD], "detail": bad[DETAIL],
        "raw": raw_json(bad, present),
    }))
    good = frame.filter(pl.col(CODE).is_null()).select(*keep, FILE)
    return ValidatedPart(good, rejected, read, dict(bad[FILE].value_counts().iter_rows()))


def read_file(index: int, item: Path | FrameSource, spec: TableSpec) -> tuple[OpenedFile, list[ValidatedPart], list[tuple[int, str]]]:
    """Open and validate one file: the unit of work of the Ray engine (and of any engine
    that spreads files over workers, e.g. a Spark ``mapInArrow`` over file paths).

    Returns the opened file (its :class:`FileStats` so far, the quarantine rows found while
    reading, its group key), its validated part (none for an empty or unreadable file; else
    one, whose ``accepted`` frame holds the table's typed columns and ``FILE`` = ``index``)
    and ``[(index, error)]`` when the file proved damaged while validating. Never raises for
    bad content; pure (writes nothing).
    """
    f = open_file(index, item, spec.table)
    if f.key is None:
        return f, [], []
    parts, unreadable = validate_groups([[f]], spec)
    return f, parts, unreadable


def _order(results: list[tuple[OpenedFile, list[ValidatedPart], list[tuple[int, str]]]]) -> FileResults:
    """Per-file results (in input order) in the order the local engine applies them: damaged
    files and validated parts group by group, groups in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for k, (f, _, _) in enumerate(results):
        if f.key is not None:
            groups.setdefault(f.key, []).append(k)
    order = [k for ks in groups.values() for k in ks]
    return FileResults(
        stats=[f.stats for f, _, _ in results],
        heads=[f.head for f, _, _ in results],
        unreadable=[u for k in order for u in results[k][2]],
        parts=[p for k in order for p in results[k][1]],
    )


# ---------------------------------------------------------------------------------- Ray Data
_RAY_EXTRA = "pip install 'graphrec[ray]'"


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"engine='ray' needs Ray Data, which is not installed: {_RAY_EXTRA} ({exc})") from None
    return ray


@contextmanager
def ray_session(workers: int | None = None, env_vars: Mapping[str, str] | None = None) -> Iterator[Any]:
    """The ``ray`` module, connected: an existing connection is used as is; else
    ``$RAY_ADDRESS`` is joined when set, else a local Ray is started with ``workers`` CPUs (default: all).
    ``env_vars`` are set in every worker of a Ray started or joined here. Ray is shut down on exit only when
    this call initialised it.

    Raises:
        ImportError: Ray Data is not installed (``pip install 'graphrec[ray]'``).
    """
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
        if env_vars:
            quiet["runtime_env"] = {"env_vars": dict(env_vars)}
        if os.environ.get("RAY_ADDRESS"):
            ray.init(address=os.environ["RAY_ADDRESS"], **quiet)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, **quiet)
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


class _Ray:
    """What the ingest needs to run on Ray: the module and the number of concurrent tasks."""

    def __init__(self, ray: Any, workers: int | None):
        self.module, self.workers = ray, workers

    def concurrency(self, tasks: int) -> dict[str, Any]:
        """``map_batches`` arguments that cap the tasks running at once at ``workers``
        (``concurrency=`` up to Ray 2.50, ``compute=TaskPoolStrategy(size)`` from 2.51)."""
        if self.workers is None:
            return {}
        size = min(self.workers, tasks)  # more would only make Ray warn that some slots stay idle
        major, minor = (int(x) for x in self.module.__version__.split(".")[:2])
        if (major, minor) >= (2, 51):
            return {"compute": self.module.data.TaskPoolStrategy(size=size)}
        return {"concurrency": size}


#: One row per file: what a Ray worker sends back to the driver (frames as Arrow IPC streams).
_RESULT_FIELDS = ("index", "stats", "key", "head", "unreadable", "accepted", "rejected", "read", "quarantined", "error")


def _to_ipc(df: pl.DataFrame | None) -> bytes | None:
    if df is None:
        return None
    sink = io.BytesIO()
    df.write_ipc_stream(sink, compression="uncompressed")
    return sink.getvalue()


def _from_ipc(data: bytes | None) -> pl.DataFrame | None:
    return None if data is None else pl.read_ipc_stream(io.BytesIO(data))


def _ray_read_batch(batch: Any, *, spec: TableSpec) -> Any:
    """``map_batches`` function: :func:`read_file` on each row (``index``, ``path``) of a pyarrow batch."""
    import pyarrow as pa

    rows = []
    for index, path in zip(batch["index"].to_pylist(), batch["path"].to_pylist(), strict=True):
        row: dict[str, Any] = dict.fromkeys(_RESULT_FIELDS)
        row["index"] = index
        try:
            f, parts, unreadable = read_file(index, Path(path), spec)
            part = parts[0] if parts else None
            row.update(
                stats=f.stats.model_dump_json(), key=f.key, head=_to_ipc(f.head),
                unreadable=unreadable[0][1] if unreadable else None,
                accepted=_to_ipc(part.accepted) if part else None,
                rejected=_to_ipc(part.rejected) if part else None,
                read=part.read.get(index, 0) if part else 0,
                quarantined=part.quarantined.get(index, 0) if part else 0,
            )
        except Exception as exc:  # re-raised in the driver, with its type (a bug, not bad content)
            try:
                row["error"] = pickle.dumps(exc)
            except Exception:
                row["error"] = pickle.dumps(RuntimeError(f"{path}: {type(exc).__name__}: {exc}"))
        rows.append(row)
    schema = pa.schema([
        ("index", pa.int64()), ("stats", pa.string()), ("key", pa.string()), ("head", pa.large_binary()),
        ("unreadable", pa.string()), ("accepted", pa.large_binary()), ("rejected", pa.large_binary()),
        ("read", pa.int64()), ("quarantined", pa.int64()), ("error", pa.large_binary()),
    ])
    return pa.Table.from_pylist(rows, schema=schema)


def _decode(row: dict[str, Any]) -> tuple[OpenedFile, list[ValidatedPart], list[tuple[int, str]]]:
    if row["error"] is not None:
        raise pickle.loads(row["error"])
    i = row["index"]
    st = FileStats.model_validate_json(row["stats"])
    f = OpenedFile(i, st, RawFile(source=st.source, format=st.format), _from_ipc(row["head"]), row["key"])
    parts = []
    if row["accepted"] is not None:
        parts.append(ValidatedPart(_from_ipc(row["accepted"]), _from_ipc(row["rejected"]),
                                   {i: row["read"]} if row["read"] else {},
                                   {i: row["quarantined"]} if row["quarantined"] else {}))  # fmt: skip
    return f, parts, [(i, row["unreadable"])] if row["unreadable"] is not None else []


def _read_ray(ray: _Ray, items: list[Any], base: int, spec: TableSpec, bar: StepProgress) -> FileResults:
    """Read and validate the files in Ray Data tasks, one file per task; in-memory frames
    (``(name, frame)`` sources) in the driver, with the same :func:`read_file`."""
    results: dict[int, tuple[OpenedFile, list[ValidatedPart], list[tuple[int, str]]]] = {}
    paths = [(base + k, str(item)) for k, item in enumerate(items) if not isinstance(item, tuple)]
    for k, item in enumerate(items):
        if isinstance(item, tuple):
            results[base + k] = read_file(base + k, item, spec)
    if paths:
        from ray.data import DataContext

        ctx = DataContext.get_current()
        # Our own bar reports progress (print_on_execution_start is missing from older Ray).
        quiet = {k: False for k in ("enable_progress_bars", "print_on_execution_start") if hasattr(ctx, k)}
        saved = {k: getattr(ctx, k) for k in quiet}
        for k, v in quiet.items():
            setattr(ctx, k, v)
        data_log = logging.getLogger("ray.data")
        level = data_log.level
        data_log.setLevel(logging.ERROR)  # one line per dataset and a note that the bars are off
        try:
            # One block per file: Ray Data runs one task per block, so the files spread over the workers.
            ds = ray.module.data.from_items([{"index": i, "path": p} for i, p in paths], override_num_blocks=len(paths))
            ds = ds.map_batches(_ray_read_batch, batch_format="pyarrow", batch_size=1, fn_kwargs={"spec": spec},
                                **ray.concurrency(len(paths)))  # fmt: skip
            bar.update(f"reading and validating {spec.table} (ray)", len(results), len(items))
            for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                for row in batch.to_pylist():
                    results[row["index"]] = _decode(row)
                bar.update(f"reading and validating {spec.table} (ray)", len(results), len(items))
        finally:
            for k, v in saved.items():
                setattr(ctx, k, v)
            data_log.setLevel(level)
    return _order([results[base + k] for k in range(len(items))])


def lookup(keys: pl.Series, id_map: pl.DataFrame) -> np.ndarray:
    """Contiguous ids of ``keys`` (all present in ``id_map``: ``external_id`` -> ``id``).

    Integer ids in a compact range use a dense numpy table (one gather); other ids a
    hash join.
    """
    if keys.len() == 0:
        return np.empty(0, dtype=np.int64)
    ext = id_map["external_id"]
    if ext.dtype.is_integer() and keys.dtype.is_integer():
        lo = min(int(keys.min()), int(ext.min()))
        hi = max(int(keys.max()), int(ext.max()))
        if hi - lo < 4 * (keys.len() + ext.len()) + 1_000_000:
            table = np.full(hi - lo + 1, -1, dtype=np.int64)
            table[ext.to_numpy() - lo] = id_map["id"].to_numpy()
            return table[keys.to_numpy() - lo]
    joined = keys.to_frame("external_id").join(id_map, on="external_id", how="left", maintain_order="left")
    return joined["id"].to_numpy()


def first_distinct(df: pl.DataFrame, cols: list[str]) -> pl.Series:
    """True for the first occurrence of each distinct row of ``df[cols]`` (exact).

    Rows are hashed first; only rows whose hash repeats are compared exactly, so the
    common case (few duplicates) costs one hash per row and one sort of the hashes.
    """
    n = df.height
    if n < 2:
        return pl.Series("first", np.ones(n, dtype=bool))
    h = df.select(cols).hash_rows(seed=0).to_numpy()
    hs = np.sort(h)
    repeated = hs[1:][hs[1:] == hs[:-1]]
    if repeated.size == 0:
        return pl.Series("first", np.ones(n, dtype=bool))
    idx = np.flatnonzero(np.isin(h, np.unique(repeated)))
    exact = df[idx].select(pl.struct(cols).is_first_distinct()).to_series().to_numpy()
    mask = np.ones(n, dtype=bool)
    mask[idx[~exact]] = False
    return pl.Series("first", mask)


# ---------------------------------------------------------------------------------- output
def _echo(report: IngestReport) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    style = "green" if report.invariant_ok else "bold red"
    console.print(f"[{style}]{escape(str(report))}[/]")
    for st in report.files:
        if st.status != "ok":
            console.print(f"  [yellow]{st.status}[/]: " + escape(st.source + (f" - {st.note}" if st.note else "")))
    if report.reasons:
        console.print("  quarantined: " + ", ".join(f"{k} {v:,}" for k, v in report.reasons.items()))
