"""Run records of the nightly pipeline: per-date state, a JSON log, and the pipeline lock.

Layout under ``paths.runs``::

    .lock                     held by the running night (fcntl; released when the process dies)
    <date>/state.json         status, attempts, and each finished stage's outputs (atomic writes)
    <date>/log.jsonl          one JSON object per event: run start, stage start/end/skip/error
    <date>/...                stage checkpoints: split.npz, train.ckpt.pt, model.pt, metrics.json

A stage records its outputs in ``state.json`` only after they are on disk, so after a crash
the next run starts at the first stage without a record and reuses the others.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from graphrec.utils.io import LockHeld, atomic_write_json, exclusive_lock

STAGES = ("ingest", "build", "encoders", "train", "evaluate", "gate", "publish", "retain")

# Outcomes, and the exit codes of ``graphrec pipeline run``.
PUBLISHED, GATED, FAILED = "published", "gated", "failed"
EXIT_CODES = {PUBLISHED: 0, FAILED: 1, GATED: 3}
EXIT_LOCKED = 4


class PipelineError(RuntimeError):
    """A night failed; the message names the stage and the cause."""


class PipelineLockedError(PipelineError):
    """Another pipeline run holds the lock."""


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class RunState:
    """``state.json`` of one date: ``status``, ``attempts``, ``stages`` (name -> outputs)."""

    def __init__(self, folder: Path, date: str):
        self.folder = Path(folder)
        self.path = self.folder / "state.json"
        self.date = date
        self.data: dict[str, Any] = {"date": date, "status": "new", "attempts": 0, "stages": {}}
        if self.path.is_file():
            self.data = json.loads(self.path.read_text())

    @property
    def status(self) -> str:
        return self.data["status"]

    @property
    def stages(self) -> dict[str, dict]:
        return self.data["stages"]

    def done(self, stage: str) -> bool:
        return stage in self.stages

    def record(self, stage: str, outputs: dict[str, Any]) -> None:
        self.stages[stage] = {**outputs, "finished_at": now()}
        self.save()

    def reset(self) -> None:
        """Forget every stage (``--force``); earlier attempts are kept in the log."""
        self.data["stages"] = {}
        self.data["status"] = "new"
        self.save()

    def set(self, **fields: Any) -> None:
        self.data.update(fields)
        self.save()

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path, self.data)


class RunLog:
    """Append-only JSON-lines log of one date's runs (every line is flushed and fsynced)."""

    def __init__(self, path: Path, attempt: int):
        self.path = Path(path)
        self.attempt = attempt
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, event: str, **fields: Any) -> None:
        line = json.dumps({"time": now(), "attempt": self.attempt, "event": event, **fields}, default=str)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def read_log(path: Path) -> list[dict[str, Any]]:
    """The events of a ``log.jsonl``; a torn last line (a crash mid-write) is skipped."""
    out = []
    if not Path(path).is_file():
        return out
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            out.append(json.loads(line))
    return out


@contextlib.contextmanager
def pipeline_lock(folder: Path, date: str) -> Iterator[None]:
    """Hold the pipeline's lock; raise :class:`PipelineLockedError` naming the holder when taken."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".lock"
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(exclusive_lock(path, date=date))
        except LockHeld as exc:
            h = exc.holder
            holder = f"pid {h.get('pid')}, date {h.get('date')}, since {h.get('since')}" if h else "unknown"
            raise PipelineLockedError(
                f"another pipeline run holds the lock {path} ({holder}); wait for it to finish"
            ) from None
        yield
