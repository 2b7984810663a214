"""``graphrec artifacts``: list, inspect, promote, roll back, verify and prune model versions."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from graphrec.artifacts.errors import ArtifactError
from graphrec.utils.console import err
from graphrec.utils.console import out as console

if TYPE_CHECKING:
    from graphrec.artifacts.registry import ArtifactRegistry, ArtifactVersion

ENV_ROOT = "GRAPHREC_ARTIFACTS"

artifacts_app = typer.Typer(
    help="Model registry: versioned model folders, the production pointer, rollback.",
    no_args_is_help=True,
)


RootOpt = Annotated[
    Path | None,
    typer.Option("--root", "-r", help="Registry folder.", envvar=ENV_ROOT, show_envvar=True),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ReasonOpt = Annotated[str, typer.Option("--reason", "-m", help="Why; recorded in the history.")]

F = TypeVar("F", bound=Callable[..., Any])


def _error(msg: str, code: int) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(msg)}", soft_wrap=True)
    return typer.Exit(code)


def _errors(fn: F) -> F:
    """Turn registry errors into a one-line message and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ArtifactError as exc:
            raise _error(str(exc), 1) from None

    return wrapper  # type: ignore[return-value]


def _registry(root: Path | None, *, must_exist: bool = True) -> ArtifactRegistry:
    from graphrec.artifacts.registry import ArtifactRegistry

    if root is None:
        raise _error(f"no registry given: pass --root DIR or set ${ENV_ROOT}", 2)
    if must_exist and not root.is_dir():
        raise _error(f"no artifact registry at {root}", 1)
    return ArtifactRegistry(root)


def _when(av: ArtifactVersion) -> str:
    return av.created_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _date(meta: dict[str, Any]) -> str:
    for key in ("date", "run_id", "run_date"):
        if key in meta:
            return str(meta[key])
    return ""


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + " "))
        else:
            out[key] = v
    return out


def _metrics(meta: dict[str, Any], limit: int = 1) -> str:
    """One short line: the NDCG@10 values when recorded (else the first numbers); `show` has them all."""
    metrics = meta.get("metrics")
    if not isinstance(metrics, dict):
        return ""
    flat = {k.removeprefix("candidate "): v for k, v in _flatten(metrics).items() if isinstance(v, int | float)}
    keys = [k for k in flat if k.endswith("ndcg@10")] or [k for k in flat if not k.endswith("users")]
    parts = [f"{k} {flat[k]:.4f}" if isinstance(flat[k], float) else f"{k} {flat[k]}" for k in keys[:limit]]
    return ", ".join(parts) + (", …" if len(keys) > limit else "")


def _status(av: ArtifactVersion, rollback: int | None) -> str:
    if av.is_production:
        return "production"
    return "rollback" if av.version == rollback else ""  # what `rollback` would restore


@artifacts_app.command("list")
@_errors
def list_cmd(root: RootOpt = None, as_json: JsonOpt = False) -> None:
    """Versions, oldest first; status marks production and the version `rollback` would restore."""
    reg = _registry(root)
    versions = reg.versions()
    target = reg.rollback_target
    rollback = None if target is None else target.version
    if as_json:
        rows = [{**v.to_dict(), "is_rollback_target": v.version == rollback} for v in versions]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not versions:
        console.print(f"no versions in {escape(str(reg.root))}")
        return
    table = Table(title=f"artifacts in {escape(str(reg.root))}", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True)  # fmt: skip
    show_date = any(_date(v.meta) for v in versions)
    show_metrics = any(_metrics(v.meta) for v in versions)
    table.add_column("version", justify="right", no_wrap=True)
    table.add_column("created (UTC)", no_wrap=True)
    table.add_column("status", no_wrap=True)
    if show_date:
        table.add_column("date / run", no_wrap=True)
    if show_metrics:
        table.add_column("metric (all: show)", no_wrap=True, overflow="ellipsis")
    table.add_column("size", justify="right", no_wrap=True)
    for v in versions:
        row = [str(v.version), _when(v), _status(v, rollback)]
        row += [escape(_date(v.meta))] if show_date else []
        row += [escape(_metrics(v.meta))] if show_metrics else []
        row += [_size(v.bytes)]
        table.add_row(*row, style="bold green" if v.is_production else None)
    console.print(table)


@artifacts_app.command("show")
@_errors
def show_cmd(
    version: Annotated[str, typer.Argument(help="Version number, or 'production'.")],
    root: RootOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One version: manifest, metadata, files and whether they match their checksums."""
    reg = _registry(root)
    if version == "production":
        av = reg.production
        if av is None:
            raise _error(f"the registry at {reg.root} has no production version", 1)
    elif version.isdigit():
        av = reg.get(int(version))
    else:
        raise _error(f"VERSION must be a number or 'production', got {version!r}", 2)
    problems = reg.verify(av.version)
    target = reg.rollback_target
    if as_json:
        doc = {
            **av.to_dict(),
            "is_rollback_target": target is not None and target.version == av.version,
            "verified": not problems,
            "problems": problems,
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    status = _status(av, None if target is None else target.version)
    console.print(f"[bold]version {av.version}[/]" + (f" ({status})" if status else ""))
    console.print(f"path     {escape(str(av.path))}")
    console.print(f"created  {_when(av)} UTC")
    console.print(f"size     {_size(av.bytes)} in {len(av.files)} files")
    if av.meta:
        console.print("meta")
        console.print(escape(json.dumps(av.meta, indent=2, sort_keys=True)))
    table = Table("file", "bytes", "sha256")
    for rel, rec in sorted(av.files.items()):
        table.add_row(escape(rel), str(rec.bytes), rec.sha256[:16] + "…")
    console.print(table)
    if problems:
        console.print(f"[bold red]verify: {len(problems)} problem(s)[/]")
        for p in problems:
            console.print(f"  {escape(p)}")
    else:
        console.print("[green]verify: every file matches the manifest[/]")


@artifacts_app.command("promote")
@_errors
def promote_cmd(
    version: Annotated[int, typer.Argument(min=1, help="Version number to make production.")],
    root: RootOpt = None,
    reason: ReasonOpt = "",
) -> None:
    """Point production at VERSION (atomic); recorded in the history."""
    reg = _registry(root)
    before = reg.production
    av = reg.promote(version, reason=reason)
    if before is not None and before.version == av.version:
        console.print(f"version {av.version} is already production")
    else:
        was = "" if before is None else f" (was {before.version})"
        console.print(f"production: version {av.version}{was}")


@artifacts_app.command("rollback")
@_errors
def rollback_cmd(root: RootOpt = None, reason: ReasonOpt = "") -> None:
    """Make the previous production version production again."""
    reg = _registry(root)
    before = reg.production
    av = reg.rollback(reason=reason)
    was = "" if before is None else f" (was {before.version})"
    console.print(f"rolled back: production is version {av.version}{was}")


@artifacts_app.command("verify")
@_errors
def verify_cmd(
    version: Annotated[
        int | None, typer.Argument(min=1, help="Version to check (default: every version).")
    ] = None,
    root: RootOpt = None,
) -> None:
    """Check files against the manifest checksums; exit status 1 on any problem."""
    reg = _registry(root)
    problems = reg.verify(version)
    if problems:
        for p in problems:
            err.print(escape(p), soft_wrap=True)
        raise _error(f"{len(problems)} problem(s) in {reg.root}", 1)
    what = (
        f"version {version}" if version is not None else f"{len(reg.version_numbers())} version(s)"
    )
    console.print(f"ok: {what} intact")


@artifacts_app.command("prune")
@_errors
def prune_cmd(
    keep: Annotated[int, typer.Option("--keep", "-k", min=1, help="Newest versions to keep.")],
    root: RootOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete the oldest versions beyond --keep (never production nor the rollback target)."""
    reg = _registry(root)
    removed = reg.prune(keep)
    if as_json:
        typer.echo(json.dumps({"removed": removed, "kept": reg.version_numbers()}))
        return
    if removed:
        console.print(f"removed version(s) {', '.join(map(str, removed))}")
    else:
        console.print("nothing to remove")


@artifacts_app.command("history")
@_errors
def history_cmd(root: RootOpt = None, as_json: JsonOpt = False) -> None:
    """Promotions and rollbacks, oldest first."""
    reg = _registry(root)
    records = reg.history()
    if as_json:
        typer.echo(json.dumps(records, indent=2))
        return
    table = Table("time", "action", "version", "previous", "reason")
    for r in records:
        prev = r.get("previous")
        table.add_row(
            str(r.get("time", "")),
            str(r.get("action", "")),
            str(r.get("version", "")),
            "" if prev is None else str(prev),
            escape(str(r.get("reason", ""))),
        )
    console.print(table)
