"""Node-classification benchmarks: datasets x models x seeds, mean ± std, timing."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from graphrec.bench.report import write_results as _write_rows
from graphrec.config import NodeConfig, resolve_config
from graphrec.data import label_rate_split, load_node_dataset
from graphrec.data.ppi import InductiveDataset
from graphrec.tasks.node import build_backbone, fit_node, num_classes
from graphrec.tasks.trainer import FitResult
from graphrec.utils.console import progress_bar
from graphrec.utils.seed import seed_everything

__all__ = ["BenchResult", "build_backbone", "results_table", "run_node_benchmark", "run_one", "write_results"]


@dataclass
class BenchResult:
    dataset: str
    model: str
    metric: str
    mean: float
    std: float
    seeds: int
    s_per_epoch: float  # mean wall time of a training epoch
    seconds: float  # total wall time over all seeds
    epochs_mean: float
    values: list[float]
    label_rate: float | None = None
    val_mean: float = float("nan")  # validation metric at the selected epochs: for choosing settings
    val_values: list[float] = field(default_factory=list)
    hop_sampling: bool = False
    config: dict = field(default_factory=dict)


def run_one(data, cfg: NodeConfig, seed: int, progress=None, model_factory: Callable | None = None) -> FitResult:
    """Seed everything, draw the label-rate split (``data.label_rate``), build the model, fit it."""
    seed_everything(seed)
    if cfg.data.label_rate is not None:
        if isinstance(data, InductiveDataset):
            raise ValueError("label rates apply to transductive datasets only")
        data = label_rate_split(data, cfg.data.label_rate, seed)
    in_dim, out_dim = data.num_features, num_classes(data)
    model = model_factory(in_dim, out_dim) if model_factory else build_backbone(cfg, in_dim, out_dim)
    return fit_node(data, model, cfg.train, progress=progress)


def run_node_benchmark(
    datasets: list[str],
    models: list[str],
    seeds: int = 10,
    seed_start: int = 0,
    overrides: list[str] | None = None,
    config_file: str | None = None,
    label_rate: float | None = None,
    extra: dict[str, tuple[str, Callable]] | None = None,
    console: Console | None = None,
    show_progress: bool = True,
) -> list[BenchResult]:
    """Run every (dataset, model) for ``seeds`` seeds and summarise the test metric.

    ``extra`` maps a row name to ``(config model name, factory(in, out) -> nn.Module)`` for
    reference models outside the registry (trained with that model's config).
    """
    console = console or Console(stderr=True)
    overrides = list(overrides or [])
    if label_rate is not None:
        overrides.append(f"data.label_rate={label_rate}")
    plan = [(m, m, None) for m in models] + [(name, cfg_name, f) for name, (cfg_name, f) in (extra or {}).items()]
    results: list[BenchResult] = []
    with progress_bar(console, disable=not show_progress) as bar:
        total = bar.add_task("runs", total=len(datasets) * len(plan) * seeds, info="")
        epochs = bar.add_task("epochs", total=1, info="")
        for ds_name in datasets:
            data = load_node_dataset(ds_name)
            for row_name, cfg_name, factory in plan:
                cfg = resolve_config(cfg_name, ds_name, overrides, config_file)
                fits = []
                for i in range(seeds):
                    bar.update(total, description=f"{ds_name} {row_name} seed {seed_start + i}")
                    bar.reset(epochs, total=cfg.train.epochs)

                    def tick(epoch, n, info, _bar=bar, _task=epochs):
                        val = f"valid {info['valid']:.3f}" if "valid" in info else ""
                        _bar.update(_task, completed=epoch, info=val)

                    fits.append(run_one(data, cfg, seed_start + i, tick, factory))
                    bar.advance(total)
                vals = [f.test_score for f in fits]
                results.append(
                    BenchResult(
                        dataset=ds_name,
                        model=row_name,
                        metric=fits[0].metric,
                        mean=statistics.fmean(vals),
                        std=statistics.stdev(vals) if len(vals) > 1 else 0.0,
                        seeds=seeds,
                        s_per_epoch=statistics.fmean(f.s_per_epoch for f in fits),
                        seconds=sum(f.seconds for f in fits),
                        epochs_mean=statistics.fmean(f.epochs for f in fits),
                        values=vals,
                        label_rate=cfg.data.label_rate,
                        val_mean=statistics.fmean(f.valid_score for f in fits),
                        val_values=[f.valid_score for f in fits],
                        hop_sampling=cfg.train.hop_sampling.enabled,
                        config=cfg.model_dump(),
                    )
                )
                r = results[-1]
                scale = 100 if r.metric == "accuracy" else 1
                console.log(
                    f"{ds_name} {row_name}{' +hop' if r.hop_sampling else ''}: {r.metric} "
                    f"{scale * r.mean:.2f} ± {scale * r.std:.2f} over {seeds} seeds "
                    f"(validation {scale * r.val_mean:.2f}), {1000 * r.s_per_epoch:.1f} ms/epoch"
                )
    return results


def results_table(results: list[BenchResult], title: str = "Node classification (test, best-validation epoch)") -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in ("dataset", "model", "metric", "mean ± std", "seeds", "ms/epoch", "epochs", "total s"):
        table.add_column(col, justify="right" if col not in ("dataset", "model", "metric") else "left", no_wrap=True)
    for r in results:
        scale = 100 if r.metric == "accuracy" else 1
        fmt = "{:.1f} ± {:.1f}" if scale == 100 else "{:.3f} ± {:.3f}"
        table.add_row(
            r.dataset, r.model + (" +hop" if r.hop_sampling else ""), r.metric,
            fmt.format(scale * r.mean, scale * r.std), str(r.seeds), f"{1000 * r.s_per_epoch:.1f}",
            f"{r.epochs_mean:.0f}", f"{r.seconds:.1f}",
        )  # fmt: skip
    return table


def write_results(path: str | Path, results: list[BenchResult], command: str | None = None) -> None:
    _write_rows(path, [asdict(r) for r in results], command)
