"""The ``graphrec`` command line."""

from __future__ import annotations

import json
import shlex
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True, help="graphrec: graph-centric recommender platform.", add_completion=False)
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks on public datasets.")
app.add_typer(bench_app, name="bench")
plot_app = typer.Typer(no_args_is_help=True, help="Figures from benchmark runs.")
app.add_typer(plot_app, name="plot")


def _mount_store() -> None:
    from graphrec.store.cli import store_app

    app.add_typer(store_app, name="store", help="Interaction logs to versioned user-item-ad graphs.")


_mount_store()


def _mount_artifacts() -> None:
    from graphrec.artifacts.cli import artifacts_app

    app.add_typer(artifacts_app, name="artifacts", help="Model registry: versions, production pointer, rollback.")


_mount_artifacts()


def _mount_pipeline() -> None:
    from graphrec.pipeline.cli import pipeline_app

    app.add_typer(pipeline_app, name="pipeline", help="Nightly retraining: ingest, train, evaluate, gate, publish; replays.")


_mount_pipeline()

out = Console()
err = Console(stderr=True)


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _fail(msg: str) -> None:
    err.print(f"[red]error:[/] {msg}")
    raise typer.Exit(2)


@bench_app.command("nodes")
def bench_nodes(
    datasets: Annotated[str, typer.Option(help="comma-separated: Cora, CiteSeer, PubMed, PPI")] = "Cora,CiteSeer",
    models: Annotated[str, typer.Option(help="comma-separated registered models (graphrec models)")] = "gcn,gat",
    seeds: Annotated[int, typer.Option(min=1, help="runs per (dataset, model), seeds seed-start..")] = 10,
    seed_start: Annotated[int, typer.Option(help="first seed")] = 0,
    json_path: Annotated[str | None, typer.Option("--json", help="write the results as JSON")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a config key, e.g. model.hidden=32")] = None,
    config: Annotated[str | None, typer.Option(help="YAML file layered over the model's defaults")] = None,
    label_rate: Annotated[float | None, typer.Option(help="random labelled training set of this fraction (e.g. 0.01)")] = None,
    hop_sampling: Annotated[bool, typer.Option("--hop-sampling", help="train with a random number of steps")] = False,
    both: Annotated[bool, typer.Option("--hop-sampling-both", help="run each propagation model with and without hop sampling")] = False,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
    threads: Annotated[int | None, typer.Option(min=1, help="torch CPU threads (default: torch's choice)")] = None,
) -> None:
    """Node classification: mean ± std of the test metric at the best-validation epoch."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    from graphrec.bench import results_table, run_node_benchmark, write_results
    from graphrec.config import ConfigError, resolve_config
    from graphrec.data import DatasetNotAvailableError
    from graphrec.models import get_spec

    ds, ms = _split(datasets), [m.lower() for m in _split(models)]
    overrides = list(set_ or [])
    try:
        for m in ms:
            resolve_config(m, None, overrides, config)  # fail fast on a bad key before any training
    except (ConfigError, KeyError) as exc:
        _fail(str(exc).strip("'\""))
    if hop_sampling and both:
        _fail("use either --hop-sampling or --hop-sampling-both")
    results = []
    try:
        if both:
            prop = [m for m in ms if get_spec(m).propagation]
            results += run_node_benchmark(ds, ms, seeds, seed_start, overrides, config, label_rate, console=err, show_progress=not quiet)
            if prop:
                results += run_node_benchmark(
                    ds, prop, seeds, seed_start, overrides + ["train.hop_sampling.enabled=true"], config,
                    label_rate, console=err, show_progress=not quiet,
                )  # fmt: skip
            results.sort(key=lambda r: (ds.index(r.dataset), r.model, r.hop_sampling))
        else:
            extra = overrides + (["train.hop_sampling.enabled=true"] if hop_sampling else [])
            results = run_node_benchmark(ds, ms, seeds, seed_start, extra, config, label_rate, console=err, show_progress=not quiet)
    except (ValueError, DatasetNotAvailableError) as exc:
        _fail(str(exc))
    out.print(results_table(results))
    if json_path:
        write_results(json_path, results, command="graphrec " + shlex.join(sys.argv[1:]))
        err.print(f"wrote {json_path}")


@plot_app.command("depth")
def plot_depth_cmd(
    dataset: Annotated[str, typer.Option()] = "Cora",
    models: Annotated[str, typer.Option(help="propagation models (K-step contract)")] = "gsm,hopgcn",
    depths: Annotated[str, typer.Option(help="comma-separated K values")] = "2,4,8,16,32",
    seeds: Annotated[int, typer.Option(min=1)] = 3,
    out_png: Annotated[str, typer.Option("--out", help="PNG path")] = "depth.png",
    json_path: Annotated[str | None, typer.Option("--json")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set")] = None,
) -> None:
    """Accuracy against depth K, with and without hop sampling, to a PNG."""
    from graphrec.config import ConfigError, resolve_config
    from graphrec.models import get_spec
    from graphrec.plots import depth_study, plot_depth, save_points

    ms = [m.lower() for m in _split(models)]
    try:
        ks = [int(k) for k in _split(depths)]
        for m in ms:
            if not get_spec(m).propagation:
                _fail(f"{m!r} has no depth K (not a propagation model)")
            resolve_config(m, dataset, list(set_ or []))
    except (ConfigError, KeyError, ValueError) as exc:
        _fail(str(exc).strip("'\""))
    points = depth_study(dataset, ms, ks, seeds, list(set_ or []))
    table = Table(title=f"{dataset}: test accuracy vs depth")
    for col in ("model", "K", "fixed K", "hop sampling"):
        table.add_column(col)
    for m in ms:
        for k in ks:
            cell = {p.hop_sampling: f"{100 * p.mean:.1f} ± {100 * p.std:.1f}" for p in points if p.model == m and p.K == k}
            table.add_row(m, str(k), cell.get(False, ""), cell.get(True, ""))
    out.print(table)
    plot_depth(points, out_png)
    err.print(f"wrote {out_png}")
    if json_path:
        save_points(points, json_path)


@app.command("datasets")
def datasets_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the known datasets and whether their files are available locally."""
    from graphrec.data import available_datasets, cache_dir, data_root

    rows = available_datasets()
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title=f"data root: {data_root()}  (cache: {cache_dir()})")
    for col in ("name", "task", "status", "where / missing"):
        table.add_column(col)
    for r in rows:
        where = r["path"] if r["status"] == "local" else f"{len(r['missing'])} file(s) missing, e.g. {r['missing'][0]}"
        color = "green" if r["status"] == "local" else "yellow"
        table.add_row(r["name"], r["task"], f"[{color}]{r['status']}[/]", where)
    out.print(table)


@app.command("models")
def models_cmd() -> None:
    """List the registered backbones."""
    from graphrec.models import MODELS

    table = Table(title="registered models")
    for col in ("name", "K-step (hop sampling)", "description"):
        table.add_column(col)
    for name, spec in sorted(MODELS.items()):
        table.add_row(name, "yes" if spec.propagation else "", spec.summary)
    out.print(table)


@app.command("config")
def config_cmd(
    model: str,
    dataset: Annotated[str | None, typer.Option()] = None,
    set_: Annotated[list[str] | None, typer.Option("--set")] = None,
    config: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Print the resolved configuration of MODEL (on --dataset) as YAML."""
    import yaml

    from graphrec.config import ConfigError, resolve_config

    try:
        cfg = resolve_config(model, dataset, list(set_ or []), config)
    except (ConfigError, KeyError) as exc:
        _fail(str(exc).strip("'\""))
    out.print(yaml.safe_dump(cfg.model_dump(), sort_keys=False), end="")


@app.command("run")
def run_cmd(
    seeds: Annotated[int, typer.Option(min=1)] = 3,
    models: Annotated[str, typer.Option()] = "gcn,gat,appnp,sgc,gsm,gesm",
) -> None:
    """The main job on its embedded defaults: the node-classification benchmark on Cora and CiteSeer."""
    bench_nodes(datasets="Cora,CiteSeer", models=models, seeds=seeds, seed_start=0, json_path=None, set_=None,
                config=None, label_rate=None, hop_sampling=False, both=False, quiet=False, threads=None)  # fmt: skip


def _mount_rec() -> None:
    from graphrec.serving.cli import recommend_cmd
    from graphrec.tasks.rec_cli import bench_rec

    bench_app.command("rec")(bench_rec)
    app.command("recommend")(recommend_cmd)


_mount_rec()


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
