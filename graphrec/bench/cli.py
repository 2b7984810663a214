"""``graphrec bench nodes | rec`` and ``graphrec plot depth``: benchmarks on public data from the command line.

Heavy imports happen inside the commands, so ``graphrec --help`` stays fast.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from graphrec.utils.console import err, fail, out, split_list

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks on public datasets.")
plot_app = typer.Typer(no_args_is_help=True, help="Figures from benchmark runs.")

# options shared by both benchmarks
Seeds = Annotated[int, typer.Option(min=1, help="runs per row, seeds seed-start..")]
SeedStart = Annotated[int, typer.Option(help="first seed")]
JsonOut = Annotated[str | None, typer.Option("--json", help="write the results as JSON")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="override a config key, e.g. train.lr=0.01")]
ConfigOpt = Annotated[str | None, typer.Option(help="YAML file layered over the model's preset")]
HopBoth = Annotated[bool, typer.Option("--hop-sampling-both", help="also run each model with K steps with hop sampling")]
Threads = Annotated[int | None, typer.Option(min=1, help="torch CPU threads (default: torch's choice)")]
Quiet = Annotated[bool, typer.Option(help="no progress bar")]


def _threads(n: int | None) -> None:
    if n is not None:
        import torch

        torch.set_num_threads(n)


def _command() -> str:
    return "graphrec " + shlex.join(sys.argv[1:])


@bench_app.command("nodes")
def bench_nodes(
    datasets: Annotated[str, typer.Option(help="comma-separated: Cora, CiteSeer, PubMed, PPI")] = "Cora,CiteSeer",
    models: Annotated[str, typer.Option(help="comma-separated registered models (graphrec models)")] = "gcn,gat",
    seeds: Seeds = 10,
    seed_start: SeedStart = 0,
    json_path: JsonOut = None,
    set_: SetOpt = None,
    config: ConfigOpt = None,
    label_rate: Annotated[float | None, typer.Option(help="random labelled training set of this fraction (e.g. 0.01)")] = None,
    hop_sampling: Annotated[bool, typer.Option("--hop-sampling", help="train with a random number of steps")] = False,
    both: HopBoth = False,
    quiet: Quiet = False,
    threads: Threads = None,
) -> None:
    """Node classification: mean ± std of the test metric at the best-validation epoch."""
    _threads(threads)
    from graphrec.bench.nodes import results_table, run_node_benchmark, write_results
    from graphrec.config import ConfigError, resolve_config
    from graphrec.data import DatasetNotAvailableError
    from graphrec.models import get_spec

    ds, ms = split_list(datasets), [m.lower() for m in split_list(models)]
    overrides = list(set_ or [])
    if hop_sampling and both:
        fail("use either --hop-sampling or --hop-sampling-both")
    try:
        for m in ms:
            resolve_config(m, None, overrides, config)  # fail fast on a bad key before any training
    except ConfigError as exc:
        fail(str(exc))
    hop = ["train.hop_sampling.enabled=true"]
    results = []
    try:
        results = run_node_benchmark(ds, ms, seeds, seed_start, overrides + (hop if hop_sampling else []), config,
                                     label_rate, console=err, show_progress=not quiet)  # fmt: skip
        steps = [m for m in ms if get_spec(m).supports_steps]
        if both and steps:
            results += run_node_benchmark(ds, steps, seeds, seed_start, overrides + hop, config, label_rate,
                                          console=err, show_progress=not quiet)  # fmt: skip
            results.sort(key=lambda r: (ds.index(r.dataset), r.model, r.hop_sampling))
    except (ValueError, DatasetNotAvailableError) as exc:
        fail(str(exc))
    out.print(results_table(results))
    if json_path:
        write_results(json_path, results, command=_command())
        err.print(f"wrote {json_path}")


@bench_app.command("rec")
def bench_rec(
    dataset: Annotated[str, typer.Option(help="a recommendation dataset (graphrec datasets), or a graph store folder")] = "ml-100k",
    models: Annotated[str, typer.Option(help="comma-separated: registered models (mf, lightgcn, xsimgcl, gesm...), "
                                             "NAME+hop for hop sampling, pyg_lightgcn for PyG's LightGCN, pop for most-popular, "
                                             "ease (EASE, closed form) and ials (implicit ALS): linear baselines, "
                                             "set with --set ease.l2=500, --set ials.factors=128")] = "pop,mf,lightgcn",
    seeds: Seeds = 5,
    seed_start: SeedStart = 0,
    json_path: JsonOut = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a config key, e.g. train.lr=0.01, or a "
                                                      "linear baseline's: ease.l2, ials.factors / regularization / "
                                                      "alpha / iterations")] = None,
    config: ConfigOpt = None,
    target: Annotated[str | None, typer.Option(help="target node type (item, ad); default: the config's data.target")] = None,
    split: Annotated[str | None, typer.Option(help="data.split: auto (the dataset's own protocol, the default; see graphrec datasets), published (the published test set), random (8:1:1 per user), loo (leave-one-out) or time (global cut)")] = None,
    hop_both: HopBoth = False,
    export: Annotated[str | None, typer.Option(help="export the first seed's model of each row to EXPORT/<model>")] = None,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """Recommendation: full-ranking test metrics at the best-validation epoch, mean ± std over seeds.

    Besides the registered models (graphrec models), rows fitted without training: pop (most popular first), ease (EASE, Steck 2019: closed-form item-item model; --set ease.l2=...) and ials (implicit ALS through the implicit library; --set ials.factors / regularization / alpha / iterations=...), with per-dataset defaults chosen on the validation split.
    """
    _threads(threads)
    from graphrec.bench.rec import (
        _dataset_key,
        check_rows,
        parse_models,
        results_table,
        run_rec_benchmark,
        summarize,
        write_results,
    )
    from graphrec.config import ConfigError
    from graphrec.data import DatasetNotAvailableError
    from graphrec.models import UnknownModelError
    from graphrec.models.linear import EASEMemoryError
    from graphrec.store import StoreError

    overrides = list(set_ or [])
    if target is not None:
        overrides.append(f"data.target={target}")
    if split is not None:
        overrides.append(f"data.split={split}")
    try:
        rows = parse_models(split_list(models), hop_both)
        if not rows:
            fail("no model given (--models)")
        check_rows(rows, _dataset_key(dataset), overrides, config)  # fail fast on a bad key before any training
    except (ConfigError, UnknownModelError, ValueError) as exc:
        fail(str(exc))
    try:
        runs = run_rec_benchmark(dataset, rows, seeds, seed_start, overrides, config, export, console=err,
                                 show_progress=not quiet)  # fmt: skip
    except (ValueError, DatasetNotAvailableError, StoreError, EASEMemoryError) as exc:
        fail(str(exc))
    results = summarize(runs)
    out.print(results_table(results))
    if json_path:
        write_results(json_path, results, command=_command())
        err.print(f"wrote {json_path}")
    if export:
        err.print(f"exported models under {export}/")


@plot_app.command("depth")
def plot_depth_cmd(
    dataset: Annotated[str, typer.Option()] = "Cora",
    models: Annotated[str, typer.Option(help="models with K propagation steps")] = "gsm,hopgcn",
    depths: Annotated[str, typer.Option(help="comma-separated K values")] = "2,4,8,16,32",
    seeds: Annotated[int, typer.Option(min=1)] = 3,
    out_png: Annotated[str, typer.Option("--out", help="PNG path")] = "depth.png",
    json_path: JsonOut = None,
    set_: SetOpt = None,
) -> None:
    """Accuracy against depth K, with and without hop sampling, to a PNG."""
    from graphrec.bench.depth import depth_study, save_points
    from graphrec.config import ConfigError, resolve_config
    from graphrec.models import get_spec
    from graphrec.plots import plot_depth

    ms = [m.lower() for m in split_list(models)]
    try:
        ks = [int(k) for k in split_list(depths)]
        for m in ms:
            resolve_config(m, dataset, list(set_ or []))
            if not get_spec(m).supports_steps:
                fail(f"{m!r} has no depth K (no K propagation steps)")
    except (ConfigError, ValueError) as exc:
        fail(str(exc))
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


@plot_app.command("time-to-accuracy")
def plot_time_to_accuracy_cmd(
    results: Annotated[list[Path], typer.Argument(help="graphrec bench rec --json files")],
    metric: Annotated[str, typer.Option(help="a metric@k the runs stopped on (train.stop_on)")] = "recall@20",
    out_png: Annotated[str, typer.Option("--out", help="PNG path")] = "time_to_accuracy.png",
) -> None:
    """Validation metric against wall time, one line per model, from bench rec JSON files."""
    from graphrec.plots import plot_time_to_accuracy

    rows = []
    for path in results:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            fail(f"cannot read {path}: {exc}")
        rows.extend(data["results"] if isinstance(data, dict) and "results" in data else data)
    try:
        plot_time_to_accuracy(rows, out_png, metric)
    except ValueError as exc:
        fail(str(exc))
    err.print(f"wrote {out_png}")
