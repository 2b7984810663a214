"""Replay: the nightly pipeline run night after night over a historical log.

Each mode (``warm``: start from the production model with the warm budget; ``cold``:
retrain from scratch every night) gets its own store, artifact registry and run records
under ``OUT/<mode>/``, so the two replays see exactly the same nights. Nights run in date
order, each mode in turn, so both modes share the machine's load and their times compare. Both go through
:func:`~graphrec.pipeline.runner.run_night`, the code path of ``graphrec pipeline run``.

Outputs in ``OUT``: ``nights.csv`` / ``nights.json`` (one row per night and mode),
``nights.md`` (the same as a markdown table plus the warm-against-cold summary) and
``replay.png`` (held-out and canary NDCG per night, and training time).
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from graphrec import plots
from graphrec.pipeline.config import PipelineConfig
from graphrec.pipeline.runner import FAILED, NightResult, parse_date, run_night
from graphrec.pipeline.state import PipelineError
from graphrec.utils.io import atomic_write_json, atomic_write_text

MODES = ("warm", "cold")


def night_row(mode: str, r: NightResult, metric: str) -> dict[str, Any]:
    cand = r.metrics.get("candidate", {})
    prod = r.metrics.get("production", {})
    k = metric.partition("@")[2]
    row = {
        "date": r.date,
        "mode": mode,
        "start": r.train.get("mode") or "",  # cold on the first night of a warm replay
        "status": r.status,
        "store_version": r.store_version,
        "artifact_version": r.artifact_version,
        "warm_from": r.warm_from,
        "epochs": r.train.get("epochs"),
        "train_s": round(float(r.train.get("seconds", 0.0)), 3),
        "train_cpu_s": round(float(r.train.get("cpu_seconds", 0.0)), 3),
        "night_s": round(float(sum(r.stage_seconds.values())), 3),
        "holdout_users": cand.get("holdout", {}).get("users", 0),
        f"holdout_{metric}": cand.get("holdout", {}).get(metric),
        f"holdout_recall@{k}": cand.get("holdout", {}).get(f"recall@{k}"),
        "canary_users": cand.get("canary", {}).get("users", 0),
        f"canary_{metric}": cand.get("canary", {}).get(metric),
        f"canary_recall@{k}": cand.get("canary", {}).get(f"recall@{k}"),
        f"production_canary_{metric}": prod.get("canary", {}).get(metric),
        "gate": "passed" if r.gate.get("passed") else ("failed" if r.gate else ""),
        "gate_reason": r.gate.get("reason", ""),
    }
    return row


@dataclass
class ReplayResult:
    out: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    failed: NightResult | None = None


def _dates(start: dt.date, end: dt.date) -> list[dt.date]:
    if end < start:
        raise PipelineError(f"--to {end} is before --from {start}")
    return [start + dt.timedelta(days=d) for d in range((end - start).days + 1)]


def _mean(values: list[float | None]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return statistics.fmean(vals) if vals else None


def summarize(rows: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    """Per mode: means over the nights after the first (the first night of a warm replay is a
    cold start); with both modes, warm / cold ratios of the metric and of training time."""
    out: dict[str, Any] = {"metric": metric, "modes": {}}
    dates = sorted({r["date"] for r in rows})
    later = set(dates[1:])
    for mode in MODES:
        mine = [r for r in rows if r["mode"] == mode and r["date"] in later]
        if not mine:
            continue
        users = sum(int(r["holdout_users"] or 0) for r in mine)
        pooled = sum(int(r["holdout_users"] or 0) * (r[f"holdout_{metric}"] or 0.0) for r in mine)
        out["modes"][mode] = {
            "nights": len(mine),
            f"holdout_{metric}": _mean([r[f"holdout_{metric}"] for r in mine]),
            # every held-out user of every night counts once (nights hold 0-40 users)
            f"holdout_{metric}_pooled": pooled / users if users else None,
            "holdout_users": users,
            "epochs": sum(int(r["epochs"] or 0) for r in mine),
            f"canary_{metric}": _mean([r[f"canary_{metric}"] for r in mine]),
            "train_s": sum(r["train_s"] for r in mine),
            "train_cpu_s": sum(r.get("train_cpu_s") or 0.0 for r in mine),
            "train_s_mean": _mean([r["train_s"] for r in mine]),
            "published": sum(r["status"] == "published" for r in mine),
            "gated": sum(r["status"] == "gated" for r in mine),
        }
    w, c = out["modes"].get("warm"), out["modes"].get("cold")
    if w and c:
        for key in (f"holdout_{metric}", f"holdout_{metric}_pooled", f"canary_{metric}"):
            if w[key] is not None and c[key]:
                out[f"warm_vs_cold_{key}"] = w[key] / c[key]
        if c["train_s"]:
            out["warm_vs_cold_train_time"] = w["train_s"] / c["train_s"]
        if c["train_cpu_s"]:
            out["warm_vs_cold_train_cpu_time"] = w["train_cpu_s"] / c["train_cpu_s"]
        if c["epochs"]:
            out["warm_vs_cold_epochs"] = w["epochs"] / c["epochs"]
    return out


def markdown_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    cols = list(rows[0])

    def fmt(col: str, v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, float):  # one format per column: seconds with one decimal, metrics with four
            return f"{v:.1f}" if col.endswith("_s") else f"{v:.4f}"
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(c, r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def write_outputs(result: ReplayResult, metric: str) -> None:
    out = result.out
    rows = result.rows
    atomic_write_json(out / "nights.json", {"rows": rows, "summary": result.summary})
    cols = list(rows[0]) if rows else []
    csv = [",".join(cols)] + [",".join("" if r.get(c) is None else str(r.get(c)) for c in cols) for r in rows]
    atomic_write_text(out / "nights.csv", "\n".join(csv) + "\n")
    atomic_write_text(out / "nights.md", markdown_table(rows) + "\n\n```json\n" + json.dumps(result.summary, indent=2) + "\n```\n")
    if rows:
        plots.plot_replay(rows, metric, out / "replay.png")


def replay(cfg: PipelineConfig, start: str | dt.date, end: str | dt.date, *, modes: tuple[str, ...] = ("warm",),
           out: str | Path | None = None, force: bool = False, console: Console | None = None,
           progress: bool = True, on_night=None) -> ReplayResult:  # fmt: skip
    """Run the nights ``start..end`` (inclusive) in each mode; see the module docstring.

    ``on_night(mode, NightResult)`` is called after every night. A failed night stops the
    replay (rerun to resume it); gated nights continue with production unchanged.
    """
    start, end = parse_date(start), parse_date(end)
    for m in modes:
        if m not in MODES:
            raise PipelineError(f"unknown replay mode {m!r}; choose from {MODES}")
    dates = _dates(start, end)
    out = Path(out) if out is not None else cfg.paths_resolved["workdir"] / f"replay-{start}_{end}"
    out.mkdir(parents=True, exist_ok=True)
    console = console or Console(stderr=True)
    result = ReplayResult(out)
    cfgs = {}
    for mode in modes:
        mcfg = cfg.model_copy(deep=True)
        mcfg.paths.workdir = str(out / mode)
        mcfg.paths.store = mcfg.paths.artifacts = mcfg.paths.runs = None
        mcfg.train.mode = mode  # type: ignore[assignment]
        cfgs[mode] = mcfg
    # night by night, each mode in turn: both see the same machine load, so times compare
    rows: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    for date in dates:
        for mode in modes:
            r = run_night(cfgs[mode], date, force=force, console=console, progress=progress)
            if on_night is not None:
                on_night(mode, r)
            if r.status == FAILED:
                result.failed = r
                break
            rows[mode].append(night_row(mode, r, cfg.gate.metric))
        if result.failed is not None:
            break
    result.rows = [r for m in modes for r in rows[m]]
    result.summary = summarize(result.rows, cfg.gate.metric)
    write_outputs(result, cfg.gate.metric)
    return result
