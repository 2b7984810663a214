"""``graphrec pipeline run | replay | status``: the nightly retraining job from the command line.

Exit codes of ``run``: 0 published (or the date had already finished with a publish),
3 gated (the candidate regressed; production unchanged), 1 failed (rerun to resume),
4 another run holds the lock, 2 bad usage or configuration.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from graphrec.utils.console import err, fail, out

pipeline_app = typer.Typer(no_args_is_help=True, help="Nightly retraining: ingest, train, evaluate, gate, publish.")
#: ``graphrec run``: the flagship flow (what ``make run`` runs), mounted at the top level.
run_app = typer.Typer()

ConfigArg = Annotated[str, typer.Argument(help="pipeline YAML, e.g. pipelines/nightly.yaml")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="override a config key, e.g. train.mode=cold")]


def _load(config: str, set_: list[str] | None):
    from graphrec.config import ConfigError
    from graphrec.pipeline.config import load_pipeline_config

    try:
        return load_pipeline_config(config, set_)
    except ConfigError as exc:
        fail(str(exc))


def _fmt(v) -> str:
    return "" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))


def _night_summary(r, metric: str) -> str:
    c = r.metrics.get("candidate", {})
    p = r.metrics.get("production", {})
    parts = []
    for s in ("holdout", "canary"):
        if s in c and metric in c[s]:
            prod = f" (production {p[s][metric]:.4f})" if s in p and metric in p[s] else ""
            parts.append(f"{s} {metric} {c[s][metric]:.4f}{prod}, {c[s].get('users', 0)} users")
    return "; ".join(parts)


@pipeline_app.command("run")
def run_cmd(
    config: ConfigArg,
    date: Annotated[str, typer.Option(help="the night to run, YYYY-MM-DD (its day's logs are ingested)")],
    force: Annotated[bool, typer.Option(help="run the date again even if it already finished")] = False,
    allow_older: Annotated[bool, typer.Option("--allow-older", help="promote this night's model even if production "
                                                                   "was trained on a later night")] = False,
    set_: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the night's result as JSON")] = False,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
) -> None:
    """Run (or resume) one night: ingest -> build -> encoders -> train -> evaluate -> gate -> publish -> retain."""
    from graphrec.pipeline.runner import run_night
    from graphrec.pipeline.state import EXIT_LOCKED, PipelineError, PipelineLockedError

    cfg = _load(config, set_)
    try:
        r = run_night(cfg, date, force=force, console=err, progress=not quiet, allow_older=allow_older)
    except PipelineLockedError as exc:
        fail(str(exc), EXIT_LOCKED)
    except PipelineError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(r.as_dict(), default=str))
    else:
        metric = cfg.gate.metric
        if r.skipped:
            err.print(f"{r.date}: already {r.status} (run record {r.run_dir}); --force runs it again")
        elif r.status == "published":
            err.print(f"[green]{r.date}: published artifact v{r.artifact_version}[/] "
                      f"(store v{r.store_version}, {r.train.get('mode')} start, {r.train.get('epochs')} epochs, "
                      f"{r.seconds:.1f} s). {_night_summary(r, metric)}")  # fmt: skip
        elif r.status == "gated":
            err.print(f"[yellow]{r.date}: gated, not published[/]: {r.gate.get('reason')}. {_night_summary(r, metric)}")
        else:
            err.print(f"[red]{r.date}: failed[/] at {r.error}\n  log: {r.run_dir}/log.jsonl; rerun the same command to resume")
    raise typer.Exit(r.exit_code)


@pipeline_app.command("replay")
def replay_cmd(
    config: ConfigArg,
    from_: Annotated[str, typer.Option("--from", help="first night, YYYY-MM-DD")],
    to: Annotated[str, typer.Option(help="last night, YYYY-MM-DD (inclusive)")],
    mode: Annotated[str, typer.Option(help="warm, cold, or both (each in its own store and registry)")] = "warm",
    out_dir: Annotated[str | None, typer.Option("--out", help="output folder (default: WORKDIR/replay-FROM_TO)")] = None,
    force: Annotated[bool, typer.Option(help="run nights again even if they already finished")] = False,
    set_: SetOpt = None,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
) -> None:
    """Run the pipeline night after night over a historical log; write a per-night table and a plot."""
    from graphrec.pipeline.replay import markdown_table, replay
    from graphrec.pipeline.state import EXIT_LOCKED, PipelineError, PipelineLockedError

    cfg = _load(config, set_)
    if mode not in ("warm", "cold", "both"):
        fail(f"--mode must be warm, cold or both, got {mode!r}")
    modes = ("warm", "cold") if mode == "both" else (mode,)
    metric = cfg.gate.metric

    def on_night(m, r):
        if quiet:
            return
        tag = {"published": "[green]published[/]", "gated": "[yellow]gated[/]"}.get(r.status, f"[red]{r.status}[/]")
        took = r.train.get("seconds")
        why = f" ({r.gate.get('reason')})" if r.status == "gated" else ""
        err.print(f"{m:>4} {r.date}: {tag}{why}{' (already done)' if r.skipped else ''}"
                  f"{f', train {took:.1f} s' if took is not None else ''}; {_night_summary(r, metric)}")  # fmt: skip

    try:
        res = replay(cfg, from_, to, modes=modes, out=out_dir, force=force, console=err, progress=not quiet,
                     on_night=on_night)  # fmt: skip
    except PipelineLockedError as exc:
        fail(str(exc), EXIT_LOCKED)
    except PipelineError as exc:
        fail(str(exc))
    keep = ["date", "mode", "start", "status", "epochs", "train_s", "holdout_users", f"holdout_{metric}", f"canary_{metric}",
            "artifact_version"]  # fmt: skip
    out.print(markdown_table([{k: r.get(k) for k in keep} for r in res.rows]))
    for m, s in res.summary.get("modes", {}).items():
        nights = f"{s['nights']} night{'s' if s['nights'] != 1 else ''}"
        out.print(f"{m}: {nights} after the first: mean held-out {metric} {_fmt(s[f'holdout_{metric}'])} "
                  f"(pooled over {s['holdout_users']} users: {_fmt(s[f'holdout_{metric}_pooled'])}), "
                  f"canary {_fmt(s[f'canary_{metric}'])}, training {s['train_s']:.1f} s in all, "
                  f"{s['published']} published, {s['gated']} gated")  # fmt: skip
    for key in (f"warm_vs_cold_holdout_{metric}", f"warm_vs_cold_holdout_{metric}_pooled",
                f"warm_vs_cold_canary_{metric}", "warm_vs_cold_train_time", "warm_vs_cold_train_cpu_time",
                "warm_vs_cold_epochs"):  # fmt: skip
        if key in res.summary:
            out.print(f"{key.replace('_', ' ')}: {res.summary[key]:.3f}")
    out.print(f"table: {res.out}/nights.md, plot: {res.out}/replay.png, "
              f"artifacts: {', '.join(str(res.out / m / 'artifacts') for m in modes)}")  # fmt: skip
    if res.failed is not None:
        err.print(f"[red]{res.failed.date} failed[/] at {res.failed.error}; rerun the same command to resume")
        raise typer.Exit(1)


@pipeline_app.command("status")
def status_cmd(
    config: ConfigArg,
    set_: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Every night on record: status, attempts, store and artifact versions, metrics."""
    from graphrec.pipeline.state import RunState

    cfg = _load(config, set_)
    runs = cfg.paths_resolved["runs"]
    rows, reasons = [], {}
    for d in sorted(p for p in runs.glob("*") if (p / "state.json").is_file()) if runs.exists() else []:
        st = RunState(d, d.name)
        s = st.stages
        ev = s.get("evaluate", {}).get("candidate", {})
        rows.append({
            "date": d.name, "status": st.status, "attempts": st.data.get("attempts"),
            "failed_stage": st.data.get("failed_stage"),
            "store_version": s.get("ingest", {}).get("version"),
            "artifact_version": s.get("publish", {}).get("version"),
            "mode": s.get("train", {}).get("mode"),
            f"holdout_{cfg.gate.metric}": ev.get("holdout", {}).get(cfg.gate.metric),
            f"canary_{cfg.gate.metric}": ev.get("canary", {}).get(cfg.gate.metric),
        })  # fmt: skip
        if st.status == "gated":
            reasons[d.name] = s.get("gate", {}).get("reason", "")
    if as_json:
        typer.echo(json.dumps([{**r, "gate_reason": reasons.get(r["date"])} for r in rows]))
        return
    if not rows:
        err.print(f"no runs recorded under {runs}")
        return
    table = Table(title=f"{cfg.name}: runs under {runs}", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    short = {"store_version": "store v", "artifact_version": "artifact v", "failed_stage": "failed at"}
    for col in rows[0]:
        table.add_column(short.get(col, col), justify="left" if col in ("date", "status", "mode", "failed_stage")
                         else "right", no_wrap=col == "date")  # fmt: skip
    for r in rows:
        table.add_row(*(_fmt(v) for v in r.values()))
    out.print(table)
    for date, reason in reasons.items():  # under the table: a reason is a sentence
        out.print(f"{date} gated: {reason}")


def shipped_config() -> str:
    """The nightly job shipped with graphrec (``pipelines/nightly.yaml`` in the repository)."""
    from importlib import resources

    return str(resources.files("graphrec.config") / "presets" / "pipeline" / "nightly.yaml")


@run_app.command("run")
def flagship_cmd(
    from_: Annotated[str, typer.Option("--from", help="first night, YYYY-MM-DD")] = "1998-03-25",
    to: Annotated[str, typer.Option(help="last night, YYYY-MM-DD (inclusive)")] = "1998-04-07",
    config: Annotated[str | None, typer.Option(help="pipeline YAML (default: the shipped MovieLens-100k job)")] = None,
    set_: SetOpt = None,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
) -> None:
    """The main job on its embedded defaults (what `make run` runs): two weeks of MovieLens-100k
    nights through the nightly pipeline (ingest, warm-started LightGCN, evaluation, gate, publish).
    Finished nights are skipped when rerun; results go to results/nightly/."""
    replay_cmd(config or shipped_config(), from_, to, mode="warm", out_dir=None, force=False, set_=set_, quiet=quiet)
