"""``graphrec store``: create, fill, inspect and build from a graph store.

``ingest --source NAME`` without a path reads the data root's copy of a catalog dataset.
The store may not import :mod:`graphrec.data` (the import-linter layers), so the top-level
CLI (:mod:`graphrec.cli`) passes the resolver down in the click context:
``ctx.obj["dataset_path"]``, ``name -> path``.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from graphrec.store.errors import StoreError
from graphrec.utils.console import err
from graphrec.utils.console import out as console

store_app = typer.Typer(
    help="Graph store: ingest interaction logs into versioned user-item-ad graphs, inspect them, build training graphs.",
    no_args_is_help=True,
)


StoreOpt = Annotated[
    Path, typer.Option("--store", "-s", help="Store folder.", envvar="GRAPHREC_STORE", show_envvar=True)
]
VersionOpt = Annotated[int | None, typer.Option("--version", "-v", help="Version to read (default: current).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

F = TypeVar("F", bound=Callable[..., Any])


def _errors(fn: F) -> F:
    """Turn store errors into a one-line message and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (StoreError, ValueError, KeyError, ImportError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            err.print(f"[bold red]error:[/] {escape(str(msg))}", soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


class SourceKind(StrEnum):
    """``--source``: ``events`` (files in the log schema) or a catalog dataset read by its
    adapter (:data:`graphrec.store.adapters.ADAPTERS`)."""

    events = "events"
    movielens_100k = "movielens-100k"
    gowalla = "gowalla"
    ml_1m = "ml-1m"
    amazon_cd = "amazon-cd"
    beauty = "beauty"
    sports = "sports"
    toys = "toys"
    yelp = "yelp"
    ml_100k_ads = "ml-100k-ads"
    criteo = "criteo"
    avazu = "avazu"


class Engine(StrEnum):
    """``--engine``: where files are read and validated (see :func:`graphrec.store.ingest`)."""

    local = "local"
    ray = "ray"


class Categorical(StrEnum):
    index = "index"
    onehot = "onehot"


class Format(StrEnum):
    parquet = "parquet"
    csv = "csv"
    ndjson = "ndjson"


class IdType(StrEnum):
    int = "int"
    string = "string"


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise typer.BadParameter(f"{what} must look like NAME=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


# ------------------------------------------------------------------------------ init / schema
@store_app.command()
@_errors
def init(
    store: StoreOpt,
    schema: Annotated[Path | None, typer.Option(help="Log schema (YAML or JSON); default: the built-in schema.")] = None,
) -> None:
    """Create an empty store (version 0) with a log schema."""
    from graphrec.store import GraphStore, LogSchema

    s = LogSchema.load(schema) if schema else LogSchema()
    st = GraphStore.init(store, s)
    console.print(f"created store {escape(str(st.root))} (version 0, schema {s.hash()[:19]}...)")


@store_app.command("schema")
@_errors
def schema_cmd(
    store: Annotated[Path | None, typer.Option("--store", "-s", help="Store folder; omit for the default schema.")] = None,
    version: VersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a store's log schema (or the built-in default) as YAML."""
    from graphrec.store import GraphStore, LogSchema

    s = GraphStore(store).schema(version) if store else LogSchema()
    typer.echo(s.to_json() if as_json else s.to_yaml(), nl=False)


@store_app.command("evolve-schema")
@_errors
def evolve_schema_cmd(
    store: StoreOpt,
    schema: Annotated[Path, typer.Option(help="The extended log schema (YAML or JSON).")],
    message: Annotated[str, typer.Option("--message", "-m", help="Note stored in the manifest.")] = "",
) -> None:
    """Commit a version whose schema extends the store's: new event or target types, context
    columns, side tables or attribute columns (additive changes only; existing data is kept)."""
    from graphrec.store import GraphStore, LogSchema

    st = GraphStore(store)
    old = st.schema()
    new = LogSchema.load(schema)
    if new.hash() == old.hash():
        console.print(f"the store already has this schema ({old.hash()[:19]}...); nothing to do")
        return
    m = st.evolve_schema(new, message=message or f"schema from {schema}")
    console.print(f"version {m.version}: schema {old.hash()[:19]}... -> {new.hash()[:19]}...")


# ------------------------------------------------------------------------------ ingest
@store_app.command()
@_errors
def ingest(
    ctx: typer.Context,
    store: StoreOpt,
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="events: files, folders or globs (may be empty with --attributes). A dataset --source: "
                       "at most one, its folder (its file for beauty, sports, toys, yelp); none: the data root's "
                       "copy ($GRAPHREC_DATA, downloaded into the cache when missing)."),
    ] = None,
    source: Annotated[SourceKind, typer.Option("--source", case_sensitive=False, help="What the paths hold: events in the log schema, or a "
                                               "catalog dataset (`graphrec datasets`) read by its adapter.")] = SourceKind.events,
    schema: Annotated[Path | None, typer.Option(help="Log schema for a new store (YAML or JSON; events).")] = None,
    attributes: Annotated[
        list[str] | None, typer.Option("--attributes", "-a", help="Side table, NODE_TYPE=PATH (repeatable; events).")
    ] = None,
    message: Annotated[str, typer.Option("--message", "-m", help="Note stored in the manifest.")] = "",
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    engine: Annotated[Engine, typer.Option(case_sensitive=False, help="Where files are read and validated: local "
                                           "(this process, polars on all cores) or ray (one Ray Data task per file; "
                                           "ordering, dedup, ids and the commit stay here; same version as local). "
                                           "ray joins $RAY_ADDRESS when set, else starts a local Ray; "
                                           "needs pip install 'graphrec\\[ray]'.")] = Engine.local,
    workers: Annotated[int | None, typer.Option(min=1, help="With --engine ray: Ray tasks at once (and the CPUs of "
                                                "a local Ray); default: all CPUs.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest logs, commit a new version, and print read = accepted + quarantined + duplicates.

    A dataset --source (movielens-100k, gowalla, ml-1m, amazon-cd, beauty, sports, toys, yelp, ml-100k-ads,
    criteo, avazu) writes its adapter's events: MovieLens-100k's ratings at their own times, the published
    splits' (gowalla, ml-1m, amazon-cd) train pairs on 2000-01-01 and test pairs on 2000-01-02,
    a sequence's k-th item at 2000-01-01 + k seconds; ml-100k-ads (a proxy: movies as ads) an impression
    per rating and a click per rating >= 4; criteo and avazu (CTR files) an impression per record and a
    click per positive record."""
    from graphrec.store import LogSchema
    from graphrec.store import ingest as do_ingest

    paths = paths or []
    if workers is not None and engine is not Engine.ray:
        raise typer.BadParameter("--workers is for --engine ray", param_hint="--workers")
    if source is not SourceKind.events:
        if engine is not Engine.local:
            raise typer.BadParameter(f"--engine {engine.value} is for --source events; --source {source.value} reads "
                                     "through its adapter, in this process", param_hint="--engine")  # fmt: skip
        if schema is not None or attributes:
            raise typer.BadParameter(f"--schema and --attributes are for --source events; --source {source.value} "
                                     "brings its own schema", param_hint="--schema/--attributes")  # fmt: skip
        report = _ingest_dataset(ctx, store, source.value, paths, message=message, progress=progress, echo=not as_json)
    else:
        attr = {nt: Path(p) for nt, p in _pairs(attributes, "--attributes").items()}
        s = LogSchema.load(schema) if schema else None
        report = do_ingest(store, [str(p) for p in paths], attributes=attr or None, schema=s,
                           message=message, progress=progress, echo=not as_json, engine=engine.value,
                           workers=workers)  # fmt: skip
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    table = Table(title=f"files of version {report.version}", show_lines=False)
    for col in ("source", "table", "read", "accepted", "quarantined", "duplicates", "status"):
        table.add_column(col, justify="right" if col in ("read", "accepted", "quarantined", "duplicates") else "left")
    for f in report.files[:50]:
        table.add_row(escape(f.source), f.table, f"{f.read:,}", f"{f.accepted:,}", f"{f.quarantined:,}",
                      f"{f.duplicates:,}", f.status)
    if len(report.files) > 50:
        table.add_row(f"... {len(report.files) - 50} more", "", "", "", "", "", "")
    console.print(table)
    console.print(
        f"partitions written: {len(report.partitions_written)}; new ids: "
        + (", ".join(f"{k} {v:,}" for k, v in report.new_ids.items()) or "none")
        + f"; {report.duration_s:.2f} s ({report.events_per_s:,.0f} records/s)",
        soft_wrap=True,
    )
    console.print(
        escape(f"read {report.read:,} = accepted {report.accepted:,} + quarantined {report.quarantined:,} + duplicates {report.duplicates:,}"),
        soft_wrap=True,
    )
    if not report.invariant_ok:
        raise typer.Exit(2)
    if report.read and not report.accepted and report.duplicates == report.read:
        err.print(f"nothing new: all {report.read:,} rows are already in the store (version {report.version} "
                  "records the attempt)")  # fmt: skip
        return
    if report.read and not report.accepted:
        err.print(f"[bold red]error:[/] no row of {report.read:,} was accepted (version {report.version} holds only "
                  f"the quarantine): `graphrec store quarantine --store {escape(str(store))}` says why")  # fmt: skip
        raise typer.Exit(1)


def _ingest_dataset(ctx: typer.Context, store: Path, name: str, paths: list[Path], *, message: str, progress: bool,
                    echo: bool) -> Any:  # fmt: skip
    """``--source NAME [PATH]``: the adapter's sources of PATH, or of the data root's copy."""
    from graphrec.store.adapters import ADAPTERS
    from graphrec.store.errors import SourceError

    adapter = ADAPTERS[name]
    if len(paths) > 1:
        raise typer.BadParameter(f"--source {name} takes at most one path, {adapter.reads}; got {len(paths)}: "
                                 + " ".join(str(p) for p in paths), param_hint="PATHS")  # fmt: skip
    if paths:
        path = paths[0]
    else:
        resolve = ctx.obj.get("dataset_path") if isinstance(ctx.obj, dict) else None
        if resolve is None:
            raise typer.BadParameter(f"--source {name} without a path needs the data root, which only the `graphrec` "
                                     f"command resolves; give the path: {adapter.reads}", param_hint="PATHS")  # fmt: skip
        try:
            path = Path(resolve(name))
        except FileNotFoundError as exc:  # graphrec.data's DatasetNotAvailableError: names the file and $GRAPHREC_DATA
            raise SourceError(str(exc)) from None
    return adapter.ingest(store, path, progress=progress, echo=echo, **({"message": message} if message else {}))


# ------------------------------------------------------------------------------ inspect
@store_app.command()
@_errors
def info(store: StoreOpt, version: VersionOpt = None, as_json: JsonOpt = False) -> None:
    """Counts, id-map sizes, partitions, feature tables and the last ingest of a version."""
    from graphrec.store import GraphStore

    data = GraphStore(store).info(version)
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    c = data["counts"]
    table = Table(title=f"store {escape(data['root'])} - version {data['version']} (current {data['current']})", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    table.add_row("created", data["created_at"])
    table.add_row("schema", data["schema_hash"][:23] + "...")
    table.add_row("events", f"{c['events']:,}")
    table.add_row("days", f"{c['days']:,}" + (f" ({c['first_day']} .. {c['last_day']})" if c["first_day"] else ""))
    table.add_row("quarantined (all ingests)", f"{c['quarantined']:,}")
    table.add_row("duplicates dropped", f"{c['duplicates']:,}")
    table.add_row("id maps", ", ".join(f"{k} {v:,}" for k, v in data["id_maps"].items()))
    if data["attributes"]:
        table.add_row("attribute rows", ", ".join(f"{k} {v:,}" for k, v in data["attributes"].items()))
    for key, f in data["features"].items():
        table.add_row(f"features {escape(key)}", escape(
            f"dim {f['dim']}, {f['rows']:,} rows, encoder {f['objective'] or '?'}, data version {f['data_version']}"
        ))
    for key, n in sorted(c["by_event"].items()):
        table.add_row(f"  {key}", f"{n:,}")
    table.add_row("files / bytes", f"{data['files']:,} / {data['bytes']:,}")
    if data["versions"] is not None:
        table.add_row("versions", f"{data['versions']}")
    last = data["last_ingest"]
    if last:
        table.add_row("last ingest", escape(
            f"read {last['read']:,} = accepted {last['accepted']:,} + quarantined {last['quarantined']:,} + duplicates {last['duplicates']:,}"
        ))
    console.print(table)


@store_app.command()
@_errors
def log(
    store: StoreOpt,
    limit: Annotated[int, typer.Option(help="Show at most this many versions.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Committed versions, newest first."""
    from graphrec.store import GraphStore

    manifests = GraphStore(store).log()[:limit]
    if as_json:
        rows = [
            {
                "version": m.version, "parent": m.parent, "created_at": m.created_at.isoformat(),
                "schema_hash": m.schema_hash, "events": m.counts.events,
                "ingest": m.ingest.model_dump(mode="json", exclude={"files"}) if m.ingest else None,
            }
            for m in manifests
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"versions of {escape(str(store))}")
    for col in ("version", "created (UTC)", "read", "accepted", "quarantined", "duplicates", "events", "message"):
        table.add_column(col, justify="right" if col not in ("created (UTC)", "message") else "left")
    for m in manifests:
        i = m.ingest
        table.add_row(
            str(m.version), m.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            *(f"{x:,}" for x in ((i.read, i.accepted, i.quarantined, i.duplicates) if i else (0, 0, 0, 0))),
            f"{m.counts.events:,}", escape(i.message if i else _change(m)),
        )
    console.print(table)


def _change(m: Any) -> str:
    """What a version without an ingest did: create the store, write feature tables, or change the schema."""
    if m.parent is None:
        return "created"
    written = sorted(k for k, e in m.features.items() if e.file.version == m.version)
    return "features " + ", ".join(written) if written else "schema change"


@store_app.command()
@_errors
def quarantine(
    store: StoreOpt,
    version: VersionOpt = None,
    only: Annotated[bool, typer.Option(help="Only the rows rejected by this version's ingest.")] = False,
    reason: Annotated[str | None, typer.Option(help="Only this reason.")] = None,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Rejected rows with their source file, row number and reason."""
    import polars as pl

    from graphrec.store import GraphStore

    q = GraphStore(store).quarantine(version, only=only)
    if reason:
        from graphrec.store import REASONS

        if reason not in REASONS:
            near = difflib.get_close_matches(reason, list(REASONS), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise typer.BadParameter(f"unknown reason {reason!r}{hint} Reasons: {', '.join(REASONS)}", param_hint="--reason")
        q = q.filter(pl.col("reason") == reason)
    if as_json:
        typer.echo(json.dumps(q.head(limit).to_dicts(), indent=2))
        return
    counts = q.group_by("reason").len().sort("len", descending=True)
    console.print(f"{q.height:,} quarantined rows: " + ", ".join(f"{r} {n:,}" for r, n in counts.iter_rows()))
    table = Table()
    for col in ("version", "source", "row", "reason", "detail"):
        table.add_column(col, overflow="fold")
    for r in q.head(limit).iter_rows(named=True):
        table.add_row(str(r["version"]), escape(r["source"]), "" if r["row"] is None else str(r["row"]),
                      r["reason"], escape(r["detail"] or ""))
    console.print(table)


@store_app.command()
@_errors
def verify(
    store: StoreOpt,
    version: VersionOpt = None,
    all_versions: Annotated[bool, typer.Option("--all", help="Check every committed version.")] = False,
) -> None:
    """Check that every file of a version exists and matches its checksum."""
    from graphrec.store import GraphStore

    st = GraphStore(store)
    versions = [m.version for m in st.log()] if all_versions else [st.manifest(version).version]
    bad = 0
    for v in versions:
        problems = st.verify(v)
        bad += len(problems)
        for p in problems:
            err.print(f"[red]version {v}:[/] {escape(p)}", soft_wrap=True)
    if bad:
        raise typer.Exit(1)
    console.print(f"ok: {len(versions)} version(s) verified")


# ------------------------------------------------------------------------------ build
@store_app.command("build")
@_errors
def build_cmd(
    store: StoreOpt,
    version: VersionOpt = None,
    start: Annotated[str | None, typer.Option(help="Window start (inclusive), ISO date/time.")] = None,
    end: Annotated[str | None, typer.Option(help="Window end (exclusive), ISO date/time.")] = None,
    event_weight: Annotated[
        list[str] | None, typer.Option("--event-weight", "-w", help="EVENT=WEIGHT or EVENT=value (repeatable).")
    ] = None,
    min_interactions: Annotated[int, typer.Option(help="k-core filter (0: off).")] = 0,
    categorical: Annotated[Categorical, typer.Option(help="Categorical features as index or one-hot.")] = Categorical.index,
    features: Annotated[
        list[str] | None, typer.Option("--features", help="Feature table to attach, NODE_TYPE/NAME or all (repeatable).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Save the HeteroData with torch.save.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Build a PyG HeteroData from a version and print its node and edge counts."""
    import time

    from graphrec.store.build import build

    weights: dict[str, Any] = {}
    for k, v in _pairs(event_weight, "--event-weight").items():
        weights[k] = v if v == "value" else float(v)
    t0 = time.perf_counter()
    data = build(store, version=version, window=(start, end) if start or end else None,
                 event_weights=weights or None, min_interactions=min_interactions,
                 categorical=categorical.value, progress=not as_json,
                 feature_tables="all" if features == ["all"] else features or None)
    seconds = time.perf_counter() - t0
    summary = {
        "version": data.store_info["version"],
        "seconds": round(seconds, 3),
        "nodes": {nt: int(data[nt].num_nodes) for nt in data.node_types},
        "edges": {",".join(et): int(data[et].num_edges) for et in data.edge_types},
    }
    if "feature_tables" in data.store_info:
        summary["feature_tables"] = data.store_info["feature_tables"]
    if out is not None:
        import torch

        from graphrec.utils.io import atomic_open

        with atomic_open(out, "wb") as fh:
            torch.save(data, fh)
        summary["saved"] = str(out)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    table = Table(title=f"HeteroData from version {summary['version']} ({seconds:.2f} s)")
    table.add_column("type")
    table.add_column("count", justify="right")
    for nt, n in summary["nodes"].items():
        table.add_row(nt, f"{n:,}")
    for et, n in summary["edges"].items():
        table.add_row(et, f"{n:,}")
    console.print(table)
    if out is not None:
        console.print(f"saved to {escape(str(out))}")


# ------------------------------------------------------------------------------ synth
@store_app.command()
@_errors
def synth(
    out: Annotated[Path, typer.Argument(help="Output folder.")],
    events: Annotated[int, typer.Option(help="Event rows to write.")] = 1_000_000,
    days: Annotated[int, typer.Option(help="Days the events span.")] = 30,
    first_day: Annotated[int, typer.Option(help="Index of the first day (to extend a log).")] = 0,
    start: Annotated[str, typer.Option(help="Date of day 0.")] = "2024-01-01",
    users: Annotated[int | None, typer.Option(help="Users (default: events / 50).")] = None,
    items: Annotated[int | None, typer.Option(help="Items (default: events / 200).")] = None,
    ads: Annotated[int | None, typer.Option(help="Ads (default: events / 2000).")] = None,
    clusters: Annotated[int, typer.Option(help="User taste clusters.")] = 20,
    bad_rate: Annotated[float, typer.Option(help="Share of rows to corrupt.")] = 0.0,
    duplicate_rate: Annotated[float, typer.Option(help="Share of rows to duplicate.")] = 0.0,
    fmt: Annotated[Format, typer.Option("--format", help="File format.")] = Format.parquet,
    id_type: Annotated[IdType, typer.Option(help="Integer or string ids.")] = IdType.int,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Write a synthetic interaction log (power-law popularity, clusters, daily rhythm)."""
    from graphrec.store.synth import synth as do_synth

    report = do_synth(out, events=events, days=days, first_day=first_day, start=start, users=users,
                      items=items, ads=ads, clusters=clusters, bad_rate=bad_rate,
                      duplicate_rate=duplicate_rate, format=fmt.value, id_type=id_type.value,
                      seed=seed, progress=not as_json)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    console.print(
        f"wrote {report.rows:,} rows ({report.good:,} good, {report.bad:,} bad, {report.duplicates:,} duplicates) "
        f"in {len(report.files)} files to {escape(str(out))}; users {report.users:,}, items {report.items:,}, "
        f"ads {report.ads:,}; schema: {escape(str(out / 'schema.yaml'))}"
    )


@store_app.command("synth-ads")
@_errors
def synth_ads_cmd(
    out: Annotated[Path, typer.Argument(help="Output folder.")],
    users: Annotated[int, typer.Option(help="Users.")] = 3000,
    items: Annotated[int, typer.Option(help="Items.")] = 600,
    advertisers: Annotated[int, typer.Option(help="Advertisers (top level of the ad tree).")] = 6,
    campaigns: Annotated[int, typer.Option(help="Campaigns per advertiser.")] = 4,
    creatives: Annotated[int, typer.Option(help="Creatives (ads) per campaign.")] = 4,
    days: Annotated[int, typer.Option(help="Days the events span.")] = 14,
    first_day: Annotated[int, typer.Option(help="Index of the first day (to extend a log).")] = 0,
    start: Annotated[str, typer.Option(help="Date of day 0.")] = "2024-01-01",
    impressions_per_user: Annotated[float, typer.Option(help="Mean ad impressions per user over the days.")] = 40,
    item_events_per_user: Annotated[float, typer.Option(help="Mean item events per user over the days.")] = 30,
    depth_noise: Annotated[float, typer.Option(help="Spread, in tree levels, of per-pair departures from the tree "
                                                    "distance (0: CTR follows the tree and the ad's base rate).")] = 0.5,
    targeted_share: Annotated[float, typer.Option(help="Share of impressions shown to the user's advertiser.")] = 0.5,
    fmt: Annotated[Format, typer.Option("--format", help="File format.")] = Format.parquet,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    into: Annotated[Path | None, typer.Option("--store", "-s", help="Also ingest the log into this store.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a synthetic ad log with a known advertiser > campaign > creative tree and a known CTR per
    (user, ad) pair: impressions, clicks and conversions on ads, views and purchases on items, side
    tables and the ground truth (truth.npz; graphrec.store.synth_ads.true_ctr reads it)."""
    from graphrec.store.synth_ads import ingest_synth_ads, synth_ads

    report = synth_ads(out, users=users, items=items, advertisers=advertisers, campaigns=campaigns,
                       creatives=creatives, days=days, first_day=first_day, start=start,
                       impressions_per_user=impressions_per_user, item_events_per_user=item_events_per_user,
                       depth_noise=depth_noise, targeted_share=targeted_share, format=fmt.value, seed=seed)  # fmt: skip
    summary = report.to_dict()
    if into is not None:
        summary["ingest"] = ingest_synth_ads(into, out, echo=False).summary()
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    console.print(
        f"wrote {report.rows:,} rows ({report.impressions:,} impressions, {report.clicks:,} clicks, "
        f"{report.conversions:,} conversions, {report.item_events:,} item events) in {len(report.files)} files to "
        f"{escape(str(out))}; users {report.users:,}, items {report.items:,}, ads {report.ads:,} "
        f"({report.advertisers} advertisers x {report.campaigns} campaigns x {report.creatives} creatives); "
        f"truth: {escape(report.truth)}",
        soft_wrap=True,
    )
    if into is None:
        console.print(f"ingest: graphrec store ingest --store STORE {escape(str(out / 'events'))} --schema "
                      f"{escape(report.schema)} -a user={escape(str(out / f'users.{fmt.value}'))} "
                      f"-a item={escape(str(out / f'items.{fmt.value}'))} -a ad={escape(str(out / f'ads.{fmt.value}'))}",
                      soft_wrap=True)  # fmt: skip
    else:
        console.print(f"ingested into {escape(str(into))}: {escape(summary['ingest'])}", soft_wrap=True)
