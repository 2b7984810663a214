"""Helpers of the graph-store tests (small logs written into tmp_path)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

EVENT_HEADER = "timestamp,user_id,target_type,target_id,event_type,value\n"


def write_csv(path: Path, lines: list[str], header: str = EVENT_HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def events_frame(n: int, *, day: str = "2024-01-01", users: int = 7, items: int = 5, offset: int = 0) -> pl.DataFrame:
    """``n`` distinct valid events on one UTC day, with string ids."""
    base = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    idx = range(offset, offset + n)
    return pl.DataFrame({
        "timestamp": [base + dt.timedelta(seconds=i * 7 % 86400) for i in idx],
        "user_id": [f"u{i % users}" for i in idx],
        "target_type": ["item" if i % 4 else "ad" for i in idx],
        "target_id": [f"t{i % items}" for i in idx],
        "event_type": ["click" if i % 4 else "impression" for i in idx],
        "value": [float(i) for i in idx],
    })
