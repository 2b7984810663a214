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
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from pydantic import Field

from graphrec.store.errors import SchemaError, SourceError
from graphrec.store.manifest import Counts, FileEntry, FileStats, IdMapEntry, IngestStats, Manifest
from graphrec.store.schema import USER, LogSchema
from graphrec.store.sources import ROW, RawFile, SourceLike, read_source, resolve
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

    Raises:
        SourceError: a path does not exist, or nothing was given to ingest.
        StoreLockedError: another process is writing the store.
        SchemaError: ``schema`` differs from the store's.
    """
    started = time.perf_counter()
    started_at = dt.datetime.now(dt.UTC)
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
        report = _run(store, files, attr_files, schema, message, progress, started, started_at)
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


def _run(store: GraphStore, files, attr_files, schema, message, progress, started, started_at) -> IngestReport:
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
        job = _Ingest(store, parent, store_schema, bar)
        job.read_events(files)
        for nt, items in attr_files.items():
            job.read_attributes(nt, items)
        return job.commit(message=message, started=started, started_at=started_at)


# ---------------------------------------------------------------------------------- the job
class _Ingest:
    def __init__(self, store: GraphStore, parent: Manifest, schema: LogSchema, bar: StepProgress):
        self.store = store
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
        """Read and validate files; quarantine rejects; return the accepted rows per file."""
        raws: list[RawFile] = []
        for i, item in enumerate(items):
            self.bar.update(f"reading {table}", i, len(items))
            raws.append(read_source(item))
        self.bar.update(f"validating {table}", 0, 1)
        # Files with the same format and columns are validated as one lazy frame.
        groups: dict[tuple, list[tuple[int, RawFile, FileStats]]] = {}
        for raw in raws:
            st = FileStats(source=raw.source, format=raw.format, table=table)
            self.stats.append(st)
            if raw.error is not None:
                self._unreadable(raw.source, table, st, raw.error)
                continue
            if raw.malformed is not None:
                st.read += raw.malformed.height
                st.quarantined += raw.malformed.height
                self._quarantine_rows(raw.malformed.select(
                    source=pl.lit(raw.source), table=pl.lit(table), row=pl.col(ROW),
                    reason=pl.lit("malformed_line"), field=pl.lit(None, pl.String),
                    detail=pl.col("detail"), raw=pl.col("raw"),
                ))
            if raw.empty or raw.frame is None:
                st.status, st.note = "empty", "file holds no records"
                continue
            key = (raw.format, tuple(raw.frame.collect_schema().items()))
            groups.setdefault(key, []).append((len(self.stats) - 1, raw, st))

        jobs = []
        for members in groups.values():
            lf = pl.concat([raw.frame.with_columns(pl.lit(i, pl.UInt32).alias(FILE)) for i, raw, _ in members])
            norm = normalize(lf, columns, self.schema, present=members[0][1].columns, extra_policy=extra_policy,
                             passthrough=(FILE,))
            jobs.append((members, norm))
        try:
            frames = pl.collect_all([n.frame for _, n in jobs]) if jobs else []
        except _READ_ERRORS:  # a damaged file deep inside: validate file by file, keep the good ones
            frames, retry = [], []
            for members, _ in jobs:
                for i, raw, st in members:
                    lf = raw.frame.with_columns(pl.lit(i, pl.UInt32).alias(FILE))
                    norm = normalize(lf, columns, self.schema, present=raw.columns, extra_policy=extra_policy,
                                     passthrough=(FILE,))
                    try:
                        frames.append(norm.frame.collect())
                        retry.append(([(i, raw, st)], norm))
                    except _READ_ERRORS as exc:
                        self._unreadable(raw.source, table, st, f"unreadable file: {' '.join(str(exc).split())[:300]}")
            jobs = retry

        keep = [c.name for c in columns]
        out: list[pl.DataFrame] = []
        for frame, (members, norm) in zip(frames, jobs, strict=True):
            by_file = {i: st for i, _, st in members}
            sources = {i: raw.source for i, raw, _ in members}
            present = members[0][1].columns
            n_bad = frame.height - frame[CODE].null_count()
            for i, n in frame[FILE].value_counts().iter_rows():
                by_file[i].read += n
            # The engine may return columns chunked differently; eager operations on such a
            # frame copy everything again and again, so align the chunks once (below, only
            # the columns still needed).
            if n_bad:
                frame = frame.rechunk()
                bad = frame.filter(pl.col(CODE).is_not_null()).with_columns(norm.describe)
                self._quarantine_rows(pl.DataFrame({
                    "source": bad[FILE].replace_strict(list(sources), list(sources.values()), return_dtype=pl.String),
                    "table": pl.Series([table] * bad.height, dtype=pl.String),
                    "row": bad[ROW], "reason": bad[REASON], "field": bad[FIELD], "detail": bad[DETAIL],
                    "raw": raw_json(bad, present),
                }))
                for i, n in bad[FILE].value_counts().iter_rows():
                    by_file[i].quarantined += n
                good = frame.filter(pl.col(CODE).is_null()).select(*keep, FILE)
            else:
                good = frame[[*keep, FILE]].rechunk()
            out.append(good)
        for st in self.stats:
            if st.table == table and st.status == "ok":
                if st.read == 0:
                    st.status, st.note = "empty", "file holds no records"
                elif st.quarantined == st.read:
                    st.status, st.note = "rejected", "every record was quarantined"
        return out

    def _unreadable(self, source: str, table: str, st: FileStats, error: str) -> None:
        st.status, st.note = "unreadable", error
        st.read += 1
        st.quarantined += 1
        self._quarantine_rows(pl.DataFrame({
            "source": [source], "table": [table], "row": [None], "reason": ["unreadable_file"],
            "field": [None], "detail": [error], "raw": [None],
        }, schema_overrides={"row": pl.Int64, "field": pl.String, "raw": pl.String}))

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
