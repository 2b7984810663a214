"""The logs of one night: which files (or rows) the ingest stage reads for a date."""

from __future__ import annotations

import datetime as dt
import glob
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl

from graphrec.pipeline.config import SourceConfig
from graphrec.pipeline.state import PipelineError
from graphrec.store import LogSchema
from graphrec.store.adapters import ADAPTERS, Sources


def day_bounds(date: dt.date) -> tuple[int, int]:
    """``[start, end)`` of a UTC day in epoch seconds."""
    start = dt.datetime.combine(date, dt.time(), tzinfo=dt.UTC)
    return int(start.timestamp()), int((start + dt.timedelta(days=1)).timestamp())


def _data_root_copy(kind: str) -> Path:
    from graphrec.data import adapter_path

    return Path(adapter_path(kind))


@dataclass(frozen=True)
class Replayed:
    """A dataset replayed day by day: its store schema, its adapter, and where it is by default."""

    schema: Callable[[], LogSchema]
    sources: Callable[[Path], Sources]
    default_path: Callable[[], Path]


#: ``source.kind`` -> the dataset it replays (every kind but ``events``). Each adapter's events
#: carry a timestamp: MovieLens-100k's own, the published splits' train pairs on 2000-01-01
#: and test pairs on 2000-01-02, a sequence's k-th item at 2000-01-01 + k seconds.
REPLAYED: dict[str, Replayed] = {
    kind: Replayed(a.schema, a.sources, partial(_data_root_copy, kind)) for kind, a in ADAPTERS.items()
}


def store_schema(src: SourceConfig) -> LogSchema:
    if src.kind in REPLAYED:
        return REPLAYED[src.kind].schema()
    return LogSchema.load(src.schema_file) if src.schema_file else LogSchema()


def _replayed_frames(src: SourceConfig) -> Sources:
    """The adapter's sources of ``source.path`` (default: the data root's copy)."""
    replayed = REPLAYED[src.kind]
    return replayed.sources(Path(src.path) if src.path else replayed.default_path())


def _ts_seconds(frame: pl.DataFrame) -> pl.Expr:
    col = frame.schema["timestamp"]
    if col.is_temporal():
        return pl.col("timestamp").dt.epoch("s")
    return pl.col("timestamp").cast(pl.Int64)


def history_sources(src: SourceConfig, date: dt.date) -> tuple[list[Any], dict[str, list[Any]]]:
    """Events before ``date`` (and side tables), ingested once into an empty store."""
    if src.kind in REPLAYED:
        events, attributes = _replayed_frames(src)
        start, _ = day_bounds(date)
        before = [(f"{name} (before {date})", frame.filter(_ts_seconds(frame) < start)) for name, frame in events]
        return before, attributes
    files = [f for pattern in src.history for f in sorted(glob.glob(pattern))]
    missing = [p for p in src.history if not glob.glob(p)]
    if missing:
        raise PipelineError(f"source.history: no file matches {missing}")
    return files, {}


def night_sources(src: SourceConfig, date: dt.date) -> tuple[list[Any], dict[str, list[Any]]]:
    """``(event sources, side tables)`` of the night ``date``; empty when no log exists."""
    if src.kind in REPLAYED:
        events, _ = _replayed_frames(src)
        start, end = day_bounds(date)
        days = [(name, frame.filter((_ts_seconds(frame) >= start) & (_ts_seconds(frame) < end)))
                for name, frame in events]  # fmt: skip
        return [(f"{name} ({date})", day) for name, day in days if day.height], {}
    if single_log(src):  # the runner reads the whole log when it changed (see log_signature)
        return [], {}
    pattern = src.path.format(date=date.isoformat())
    files = sorted(glob.glob(pattern))
    attributes: dict[str, list[Any]] = {}
    for node_type, patterns in src.attributes.items():
        found = [f for p in patterns for f in sorted(glob.glob(p.format(date=date.isoformat())))]
        if found:
            attributes[node_type] = found
    return files, attributes


def single_log(src: SourceConfig) -> bool:
    """Whether the source is one log (no ``{date}`` in its path) rather than one file set per night."""
    return src.kind == "events" and "{date}" not in (src.path or "")


def log_signature(src: SourceConfig) -> list[list[Any]]:
    """``[path, size, mtime]`` of every file of a single log: it changed when this changed.

    Raises:
        PipelineError: no file matches the log's path.
    """
    from graphrec.store.errors import SourceError
    from graphrec.store.sources import resolve

    try:
        files = [f for f in resolve([src.path]) if isinstance(f, Path)]
    except SourceError as exc:
        raise PipelineError(f"source.path: {exc}") from None
    return [[str(f), f.stat().st_size, int(f.stat().st_mtime)] for f in files]
