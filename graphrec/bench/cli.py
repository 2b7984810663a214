"""``graphrec bench nodes | rec | ads | encoders`` and ``graphrec plot depth``: benchmarks on public data from the command line.

Heavy imports happen inside the commands, so ``graphrec --help`` stays fast.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

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


def _report(results: Any, table: Callable, write: Callable, json_path: str | None, export: str | None) -> None:
    """Print a benchmark's table, write its JSON, and say where exported models went (rec and ads alike)."""
    out.print(table(results))
    if json_path:
        write(json_path, results, command=_command())
        err.print(f"wrote {json_path}")
    if export:
        err.print(f"exported models under {export}/")


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
    _report(summarize(runs), results_table, write_results, json_path, export)


@bench_app.command("ads")
def bench_ads(
    dataset: Annotated[str, typer.Option(help="an ad dataset (ads-synth, ml-100k-ads; graphrec datasets), or a graph "
                                              "store folder with ad events")] = "ads-synth",
    models: Annotated[str, typer.Option(help="comma-separated scorer rows: dot (Euclidean inner product), distance "
                                             "(Euclidean -||u-a||^2), hyperbolic (-d on the hyperboloid, learnable "
                                             "curvature), multi (multi-manifold); a hyperbolic row always gets a dot "
                                             "row beside it")] = "dot,distance,hyperbolic,multi",
    dims: Annotated[str, typer.Option(help="comma-separated embedding dimensions")] = "2,4,8,16",
    seeds: Seeds = 5,
    seed_start: SeedStart = 0,
    backbone: Annotated[str, typer.Option(help="the backbone of every row (graphrec models)")] = "lightgcn",
    json_path: JsonOut = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a config key of every row, e.g. "
                                                      "train.epochs=50, or a scorer option of one row: "
                                                      "multi.num_manifolds=8, hyperbolic.kind=poincare")] = None,
    config: ConfigOpt = None,
    truth: Annotated[str | None, typer.Option(help="ground truth (truth.npz) of a synthetic log for the CTR-recovery "
                                                   "column; default: the dataset's own (ads-synth), or STORE/truth.npz")] = None,
    export: Annotated[str | None, typer.Option(help="export the first seed's model of each row to EXPORT/<row>-d<dim>")] = None,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """Ad targeting: test AUC, log loss, ECE, HR@10 and NDCG@10 per scorer and dimension, mean ± std over seeds.

    On a synthetic log with a ground truth (ads-synth) also the NDCG@10 of each user's ranking of all ads against the
    true click-through rate; the scorers' learned curvatures and manifold weights; seconds per epoch and epochs.
    """
    _threads(threads)
    from graphrec.bench.ads import (
        SCORER_ROWS,
        check_rows,
        dataset_key,
        parse_scorers,
        results_table,
        run_ads_benchmark,
        summarize,
        write_results,
    )
    from graphrec.config import ConfigError
    from graphrec.data import DatasetNotAvailableError
    from graphrec.models import UnknownModelError
    from graphrec.store import StoreError

    overrides = list(set_ or [])
    try:
        rows = parse_scorers(split_list(models))
        ds = [int(d) for d in split_list(dims)]
        if not rows or not ds or min(ds) < 1:
            fail("give at least one scorer row (--models) and positive dimensions (--dims)")
        named = {o.split("=", 1)[0].split(".", 1)[0] for o in overrides} & set(SCORER_ROWS)
        if named - set(rows):
            fail(f"--set names the row(s) {sorted(named - set(rows))}, which are not among --models ({', '.join(rows)})")
        check_rows(rows, ds, backbone, dataset_key(dataset), overrides, config)  # fail fast, before any training
    except (ConfigError, UnknownModelError, ValueError) as exc:
        fail(str(exc))
    try:
        runs = run_ads_benchmark(dataset, rows, ds, seeds, seed_start, backbone, overrides, config, truth, export,
                                 console=err, show_progress=not quiet)  # fmt: skip
    except (ValueError, FileNotFoundError, DatasetNotAvailableError, StoreError) as exc:
        fail(str(exc))
    _report(summarize(runs), results_table, write_results, json_path, export)


@bench_app.command("encoders")
def bench_encoders(
    protocol: Annotated[str, typer.Argument(help="sequential (next-behaviour ranking, leave-one-out), probe (linear probe "
                                                 "of user embeddings on MovieLens-100k demographics), features (encoder "
                                                 "vectors as node features of LightGCN/GESM on MovieLens-100k) or "
                                                 "scaling (validation loss against compute, several model sizes)")],
    dataset: Annotated[str, typer.Option(help="sequential, scaling: ml-100k, beauty, sports, toys, yelp or a store "
                                              "folder")] = "ml-100k",
    objectives: Annotated[str, typer.Option(help="comma-separated objectives (probe; sequential and features take the "
                                                 "first; scaling the first)")] = "sasrec,clue,shopperbert,lmrec",
    models: Annotated[str, typer.Option(help="features: comma-separated recommendation backbones")] = "lightgcn,gesm",
    seeds: Seeds = 3,
    seed_start: SeedStart = 0,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override an encoder config key, e.g. model.dim=128")] = None,
    rec_set: Annotated[list[str] | None, typer.Option("--rec-set", help="features: override a recommendation key")] = None,
    plot: Annotated[str | None, typer.Option(help="scaling: write the PNG here")] = None,
    json_path: JsonOut = None,
    no_text_tower: Annotated[bool, typer.Option("--no-text-tower", help="probe: skip the MiniLM baseline")] = False,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """Transformer user encoders: sequential recommendation against SASRec's published numbers, the user-representation
    probe against simple baselines, encoders as node features, and a scaling check. Mean ± std over seeds."""
    _threads(threads)
    from graphrec.bench import encoders as be
    from graphrec.bench.report import write_results
    from graphrec.config import ConfigError
    from graphrec.data import DatasetNotAvailableError

    objs = split_list(objectives)
    seed_list = list(range(seed_start, seed_start + seeds))
    overrides = list(set_ or [])
    def log(line: str) -> None:
        err.print(line, highlight=False)

    try:
        if protocol == "sequential":
            rows = be.run_sequential(dataset, objs[0], seed_list, overrides, progress=not quiet)
            summary = be.sequential_summary(rows)
            table = Table(title=f"{summary['objective']} on {summary['dataset']}: leave-one-out, full ranking "
                                f"({len(seed_list)} seed(s), test at the validation-selected epoch)")  # fmt: skip
            for col in ("row", "HR@10", "NDCG@10", "HR@20", "NDCG@20", "s/epoch", "epoch"):
                table.add_column(col, justify="left" if col == "row" else "right")
            pm = lambda v: f"{v[0]:.4f} ± {v[1]:.4f}" if v else ""  # noqa: E731
            table.add_row(f"ours ({summary['objective']})", pm(summary.get("hit@10")), pm(summary.get("ndcg@10")),
                          pm(summary.get("hit@20")), pm(summary.get("ndcg@20")), f"{summary['s_per_epoch'][0]:.2f}",
                          f"{summary['best_epoch'][0]:.0f}")  # fmt: skip
            for name, (hr, nd) in summary["published"].items():
                table.add_row(f"published: {name}", f"{hr:.4f}", f"{nd:.4f}", "", "", "", "")
            out.print(table)
        elif protocol == "probe":
            rows = be.run_probe(objs, seed_list, overrides, text_tower=not no_text_tower, progress=not quiet, log=log)
            table = Table(title="MovieLens-100k users: frozen embedding + logistic regression, 5-fold stratified CV")
            for col in ("representation", "gender AUC", "age acc (7)", "occupation acc"):
                table.add_column(col, justify="left" if col == "representation" else "right")
            def fmt(r: dict, key: str) -> str:  # encoder rows: mean ± std over seeds; baselines: over folds
                v = r[key]
                return f"{v[0]:.3f} ± {v[1]:.3f}" if isinstance(v, list | tuple) else f"{v:.3f} ± {r[key + '_std']:.3f}"

            for r in rows:
                table.add_row(r["name"], fmt(r, "gender_auc"), fmt(r, "age_acc"), fmt(r, "occupation_acc"))
            ref = "; ".join(f"{task} " + ", ".join(f"{v} ({k})" for k, v in by.items())
                            for task, by in be.PUBLISHED_PROBE.items())  # fmt: skip
            table.caption = f"± : baselines over the 5 folds, encoders over the seeds (each the mean of 5 folds); reference: {ref}"
            out.print(table)
        elif protocol == "features":
            rows = be.run_features(split_list(models), objs[0], seed_list, overrides, list(rec_set or []),
                                   progress=False, log=log)  # fmt: skip
            table = Table(title=f"MovieLens-100k 8:1:1, full ranking: ID embeddings against {objs[0]} features "
                                "(cold: users with <= 5 training pairs in the graph)")  # fmt: skip
            for col in ("model", "inputs", "Recall@20", "NDCG@20", "cold Recall@20", "cold NDCG@20"):
                table.add_column(col, justify="left" if col in ("model", "inputs") else "right")
            for (m, inp) in dict.fromkeys((r["model"], r["inputs"]) for r in rows):
                sel = [r for r in rows if (r["model"], r["inputs"]) == (m, inp)]
                cell = lambda k, sel=sel: "{:.4f} ± {:.4f}".format(*be.mean_std([r[k] for r in sel]))  # noqa: E731
                table.add_row(m, inp, cell("test_recall@20"), cell("test_ndcg@20"), cell("cold_test_recall@20"),
                              cell("cold_test_ndcg@20"))  # fmt: skip
            out.print(table)
        elif protocol == "scaling":
            rows = be.run_scaling(dataset, objs[0], seed=seed_start, overrides=overrides, progress=not quiet, log=log)
            fit = be.power_law_fit(rows)
            out.print(f"power law over {fit['points']} sizes: L = {fit['a']:.4g} * C^-{fit['b']:.4f} (R² {fit['r2']:.3f})")
            if plot:
                be.plot_scaling(rows, plot)
                err.print(f"wrote {plot}")
        else:
            fail(f"unknown protocol {protocol!r}; choose sequential, probe, features or scaling")
    except (ConfigError, ValueError, DatasetNotAvailableError) as exc:
        fail(str(exc))
    if json_path:
        write_results(json_path, rows, _command())
        err.print(f"wrote {json_path}")


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


@plot_app.command("poincare")
def plot_poincare_cmd(
    model_dir: Annotated[Path, typer.Argument(help="a model folder written by graphrec train (task rec), or an artifact registry")],
    out_png: Annotated[str, typer.Option("--out", help="PNG path")] = "poincare.png",
    max_points: Annotated[int, typer.Option(min=1, help="users and items drawn at most, each (a seeded sample)")] = 5000,
) -> None:
    """Users and items of a 2-D hyperbolic model on the Poincaré disk: one panel per manifold (train.score
    multi_manifold; a single panel for hyperbolic or lorentz_sqdist), each with its learned curvature."""
    import numpy as np
    import torch

    from graphrec.artifacts import ArtifactNotFoundError
    from graphrec.hyperbolic.multi import disk_panels
    from graphrec.plots import plot_poincare
    from graphrec.serving.format import ModelFolder, resolve_model_dir

    try:
        folder = ModelFolder(resolve_model_dir(model_dir))
        scorer = folder.scorer.get("name")
        if scorer not in ("multi_manifold", "hyperbolic", "lorentz_sqdist"):
            fail(f"{model_dir} is scored with {scorer!r}, not a hyperbolic scorer: the Poincaré disk shows models "
                 "trained with train.score=multi_manifold (or hyperbolic, lorentz_sqdist)")  # fmt: skip
        dim = folder.card.get("dim")
        if dim != (3 if scorer == "lorentz_sqdist" else 2):
            fail(f"{model_dir} holds {dim}-dimensional embeddings; the Poincaré disk shows 2-D models "
                 "(train with --set train.embedding_dim=2)")  # fmt: skip
        rng = np.random.default_rng(0)

        def sample(a: np.ndarray) -> torch.Tensor:
            keep = np.sort(rng.choice(a.shape[0], max_points, replace=False)) if a.shape[0] > max_points else slice(None)
            return torch.from_numpy(a[keep])

        users, items = sample(folder.embeddings("user")), sample(folder.embeddings(folder.target))
        panels = disk_panels(folder.load_scorer(), users, items)
    except (FileNotFoundError, ValueError, ArtifactNotFoundError) as exc:
        fail(str(exc))
    spec, card = folder.scorer, folder.card
    what = (f"{spec['num_manifolds']} {spec['kind']} manifolds, aggregation {spec['aggregation']}"
            if scorer == "multi_manifold" else f"score {scorer}")  # fmt: skip
    data = (card.get("data") or {}).get("name") or (card.get("data") or {}).get("dataset") or ""
    title = f"{card.get('model') or 'model'}{' on ' + str(data) if data else ''}: {what}"
    plot_poincare(panels["users"], panels["items"], panels["origins"], panels["clusters"], panels["curvatures"],
                  out_png, weights=panels["weights"], title=title, target=folder.target,
                  weight_label="mean membership" if spec.get("aggregation") == "membership" else "w")  # fmt: skip
    err.print(f"wrote {out_png}")
