"""``graphrec bench rec``: the recommendation benchmark from the command line.

Registered on the ``bench`` group by :mod:`graphrec.cli`; heavy imports happen inside the
command so ``graphrec --help`` stays fast.
"""

from __future__ import annotations

import shlex
import sys
from typing import Annotated

import typer
from rich.console import Console

out = Console()
if not out.is_terminal:
    out.width = 200  # results piped to a file: do not truncate the table's columns
err = Console(stderr=True)


def _fail(msg: str) -> None:
    err.print(f"[red]error:[/] {msg}")
    raise typer.Exit(2)


def bench_rec(
    dataset: Annotated[str, typer.Option(help="ml-100k, or the path of a graph store")] = "ml-100k",
    models: Annotated[str, typer.Option(help="comma-separated: registered models (mf, lightgcn, gesm, gsm, hopgcn...), "
                                             "NAME+hop for hop sampling, pyg_lightgcn for PyG's LightGCN")] = "mf,lightgcn",
    seeds: Annotated[int, typer.Option(min=1, help="runs per model, seeds seed-start..")] = 5,
    seed_start: Annotated[int, typer.Option(help="first seed")] = 0,
    json_path: Annotated[str | None, typer.Option("--json", help="write the results as JSON")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a config key, e.g. train.lr=0.01")] = None,
    config: Annotated[str | None, typer.Option(help="YAML file layered over the model's defaults")] = None,
    target: Annotated[str | None, typer.Option(help="target node type (item, ad); default: the config's data.target")] = None,
    split: Annotated[str | None, typer.Option(help="random (8:1:1 per user), loo (leave-one-out) or time (global cut)")] = None,
    hop_both: Annotated[bool, typer.Option("--hop-sampling-both", help="also run each propagation model with hop sampling")] = False,
    export: Annotated[str | None, typer.Option(help="export the first seed's model of each row to EXPORT/<model>")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="torch CPU threads")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
) -> None:
    """Recommendation: full-ranking test metrics at the best-validation epoch, mean ± std over seeds."""
    import torch

    from graphrec.config import ConfigError
    from graphrec.data import DatasetNotAvailableError
    from graphrec.store import StoreError
    from graphrec.tasks.rec_bench import (
        parse_models,
        results_table,
        row_config,
        run_rec_benchmark,
        summarize,
        write_results,
    )

    if threads is not None:
        torch.set_num_threads(threads)
    overrides = list(set_ or [])
    if target is not None:
        overrides.append(f"data.target={target}")
    if split is not None:
        overrides.append(f"data.split={split}")
    try:
        rows = parse_models([m for m in models.split(",") if m.strip()], hop_both)
        if not rows:
            _fail("no model given (--models)")
        ds_key = dataset.lower() if dataset.lower() in ("ml-100k",) else None
        for r in rows:
            row_config(r, ds_key, overrides, config)  # fail fast on a bad key before any training
    except (ConfigError, KeyError, ValueError) as exc:
        _fail(str(exc).strip("'\""))
    try:
        runs = run_rec_benchmark(dataset, rows, seeds, seed_start, overrides, config, export, console=err,
                                 show_progress=not quiet)  # fmt: skip
    except (ValueError, DatasetNotAvailableError, StoreError) as exc:
        _fail(str(exc))
    results = summarize(runs)
    out.print(results_table(results))
    if json_path:
        write_results(json_path, results, command="graphrec " + shlex.join(sys.argv[1:]))
        err.print(f"wrote {json_path}")
    if export:
        err.print(f"exported models under {export}/")
