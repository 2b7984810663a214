"""Recommendation benchmark: dataset x models x seeds, full-ranking metrics, mean ± std.

Every model sees the same split for a given seed (paired comparison). A model row is a
registered backbone (``mf``, ``lightgcn``, ``gesm``...), the same with ``+hop`` (trained
with hop sampling, evaluated at full depth), or ``pyg_lightgcn`` (PyG's LightGCN with the
``lightgcn`` config, for a side-by-side check).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from graphrec.bench.report import write_results as _write_rows
from graphrec.config.rec import RecConfig, resolve_rec_config
from graphrec.data.catalog import get_dataset, is_dataset
from graphrec.data.interactions import Interactions, RecData, load_interactions
from graphrec.models import BipartiteRecommender, get_spec
from graphrec.serving import export_model
from graphrec.tasks.link import build_rec_model, fit_link
from graphrec.tasks.trainer import FitResult
from graphrec.utils.console import progress_bar
from graphrec.utils.seed import seed_everything

HOP_SUFFIX = "+hop"
#: Rows of the benchmark that are not registry models: name -> the registry model whose config they use.
REFERENCE_MODELS = {"pyg_lightgcn": "lightgcn", "pop": "mf"}  # pop: most popular items first, no training


@dataclass
class ModelRow:
    """One row of the benchmark: what to build and under which name to report it."""

    name: str  # as reported: "lightgcn", "lightgcn+hop", "pyg_lightgcn"
    config_model: str  # registry model whose config applies
    reference: str | None = None
    hop_sampling: bool = False


def parse_models(models: list[str], hop_both: bool = False) -> list[ModelRow]:
    """``["pop", "mf", "lightgcn+hop", "pyg_lightgcn"]`` -> rows; ``hop_both`` adds ``+hop`` rows for
    models with K propagation steps. ``pop`` ranks items by their training interactions (the
    floor every model must clear); ``pyg_lightgcn`` is PyG's LightGCN."""
    rows: list[ModelRow] = []
    for raw in models:
        name = raw.strip().lower().replace("-", "_")
        hop = name.endswith(HOP_SUFFIX)
        base = name[: -len(HOP_SUFFIX)] if hop else name
        if base in REFERENCE_MODELS:
            if hop:
                raise ValueError(f"hop sampling does not apply to the reference model {base!r}")
            rows.append(ModelRow(base, REFERENCE_MODELS[base], reference=base))
            continue
        spec = get_spec(base)
        if hop and not spec.supports_steps:
            raise ValueError(f"{base!r} has no K propagation steps, so {raw!r} has no hop sampling to apply")
        rows.append(ModelRow(name, base, hop_sampling=hop))
        if hop_both and not hop and spec.supports_steps:
            rows.append(ModelRow(base + HOP_SUFFIX, base, hop_sampling=True))
    seen: set[str] = set()
    out = []
    for r in rows:
        if r.name not in seen:
            seen.add(r.name)
            out.append(r)
    return out


def row_config(row: ModelRow, dataset: str | None, overrides: list[str], config_file: str | None) -> RecConfig:
    extra = ["train.hop_sampling.enabled=true"] if row.hop_sampling else []
    return resolve_rec_config(row.config_model, dataset, list(overrides) + extra, config_file)


@dataclass
class RecBenchRun:
    dataset: str
    model: str
    hop_sampling: bool
    config: dict
    fits: list[FitResult] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)


def run_rec_benchmark(
    dataset: str,
    models: list[ModelRow],
    seeds: int = 5,
    seed_start: int = 0,
    overrides: list[str] | None = None,
    config_file: str | None = None,
    export_dir: str | Path | None = None,
    console: Console | None = None,
    show_progress: bool = True,
    interactions: Interactions | None = None,
) -> list[RecBenchRun]:
    """Train and evaluate every model row for ``seeds`` seeds on ``dataset`` (name or store path)."""
    console = console or Console(stderr=True)
    overrides = list(overrides or [])
    cfgs = {r.name: row_config(r, _dataset_key(dataset), overrides, config_file) for r in models}  # fail fast
    first = next(iter(cfgs.values()))
    inter = interactions or load_interactions(dataset, first.data)
    splits: dict[tuple[str, int], RecData] = {}
    runs: list[RecBenchRun] = []
    with progress_bar(console, disable=not show_progress) as bar:
        total = bar.add_task("runs", total=len(models) * seeds, info="")
        epochs = bar.add_task("epochs", total=1, info="")
        for row in models:
            cfg = cfgs[row.name]
            if cfg.data.model_dump() != first.data.model_dump() and interactions is None:
                src = load_interactions(dataset, cfg.data)  # a model with its own data section
            else:
                src = inter
            run = RecBenchRun(_dataset_key(dataset) or str(dataset), row.name, row.hop_sampling, cfg.model_dump())
            for s in range(seed_start, seed_start + seeds):
                key = (json.dumps(cfg.data.model_dump(), sort_keys=True, default=str), s)
                if key not in splits:
                    splits[key] = src.split(cfg.data, s)
                data = splits[key]
                bar.update(total, description=f"{run.dataset} {row.name} seed {s}")
                bar.reset(epochs, total=cfg.train.epochs)

                def tick(epoch, n, info, _bar=bar, _task=epochs, _stop=cfg.train.stop_on):
                    val = f"valid {_stop} {info['valid']:.4f}" if "valid" in info else ""
                    _bar.update(_task, completed=epoch, info=f"loss {info['loss']:.4f} {val}")

                if row.reference == "pop":  # nothing to train
                    run.fits.append(popularity_fit(data, cfg))
                    run.seeds.append(s)
                    bar.advance(total)
                    continue
                seed_everything(s)
                model = build_row_model(row, cfg, data)
                fit = fit_link(data, model, cfg, progress=tick, keep_state=False)
                if export_dir is not None and s == seed_start:
                    export_model(model, data, Path(export_dir) / row.name, config=cfg.model_dump(),
                                 metrics={"valid": fit.valid, "test": fit.test, "seed": s}, history=fit.history,
                                 overwrite=True)  # fmt: skip
                run.fits.append(fit)
                run.seeds.append(s)
                bar.advance(total)
            runs.append(run)
    return runs


def _dataset_key(dataset: str | Path) -> str | None:
    """The catalog name of ``dataset``, or None for a store folder."""
    return get_dataset(str(dataset)).name if is_dataset(str(dataset)) else None


def popularity_fit(data: RecData, cfg: RecConfig) -> FitResult:
    """The popularity baseline on one split: every user's items ranked by their number of training
    interactions (training, and for test validation, items masked as for every model)."""
    import time

    import torch

    from graphrec.tasks.link import evaluate

    t0 = time.perf_counter()
    emb = (torch.ones(data.num_users, 1), data.item_counts.float().view(-1, 1))
    e = cfg.eval
    parts = {p: evaluate(None, data, p, e.ks, e.metrics, e.chunk_size, embeddings=emb)
             for p in ("valid", "test") if getattr(data.split, p).size(1)}  # fmt: skip
    return FitResult(metric=cfg.train.stop_on, valid=parts.get("valid", {}), test=parts.get("test", {}), best_epoch=0,
                     epochs=0, s_per_epoch=0.0, seconds=time.perf_counter() - t0)  # fmt: skip


def build_row_model(row: ModelRow, cfg: RecConfig, data: RecData) -> BipartiteRecommender:
    """The model of a benchmark row: the configured backbone, or a reference implementation."""
    if row.reference is None:
        return build_rec_model(cfg, data)
    if row.reference != "pyg_lightgcn":
        raise ValueError(f"unknown reference model {row.reference!r}; known: {', '.join(REFERENCE_MODELS)}")
    if cfg.train.hop_sampling.enabled:
        raise ValueError("hop sampling does not apply to the PyG reference LightGCN")
    from graphrec.models.reference import PyGLightGCN

    t = cfg.train
    return PyGLightGCN(data.num_users, data.num_items, t.embedding_dim, cfg.model_params.get("K", 3), t.init, t.init_std)


def summarize(runs: list[RecBenchRun]) -> list[dict[str, Any]]:
    """One JSON-ready row per (dataset, model, metric, k): mean, std and per-seed values of the test metric."""
    rows = []
    for run in runs:
        names = [n for n in run.fits[0].test if "@" in n]
        for name in names:
            metric, k = name.split("@")
            vals = [f.test[name] for f in run.fits]
            rows.append({
                "dataset": run.dataset,
                "model": run.model,
                "metric": metric,
                "k": int(k),
                "mean": statistics.fmean(vals),
                "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                "seeds": len(vals),
                "values": vals,
                "seed_list": run.seeds,
                "valid_mean": statistics.fmean(f.valid[name] for f in run.fits),
                "valid_values": [f.valid[name] for f in run.fits],
                "s_per_epoch": statistics.fmean(f.s_per_epoch for f in run.fits),
                "epochs_mean": statistics.fmean(f.epochs for f in run.fits),
                "best_epoch_mean": statistics.fmean(f.best_epoch for f in run.fits),
                "history": run.fits[0].history,  # the first seed's training curve
                "seconds": sum(f.seconds for f in run.fits),
                "hop_sampling": run.hop_sampling,
                "split": run.config["data"]["split"],
                "config": run.config,
            })  # fmt: skip
    return rows


def results_table(rows: list[dict], metrics=("recall", "ndcg"), ks=(10, 20)) -> Table:
    """Test metrics, mean ± std over seeds (every metric is in the JSON), in a 100-column terminal:
    the dataset goes to the title when there is one, and no column folds a name."""
    from rich import box

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    seeds = sorted({r["seeds"] for r in rows})
    title = (f"{datasets[0] if len(datasets) == 1 else 'Recommendation'}: test metrics, full ranking, "
             f"best-validation epoch; mean ± std over {'/'.join(map(str, seeds))} seed{'s' if seeds != [1] else ''}")  # fmt: skip
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    cols = (*([] if len(datasets) == 1 else ["dataset"]), "model", *[f"{m}@{k}" for k in ks for m in metrics],
            "s/epoch", "epochs")  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col in ("dataset", "model") else "right", no_wrap=True)
    by = {}
    for r in rows:
        by.setdefault((r["dataset"], r["model"]), {})[f"{r['metric']}@{r['k']}"] = r
    for (ds, model), cells in by.items():
        any_row = next(iter(cells.values()))
        vals = []
        for k in ks:
            for m in metrics:
                c = cells.get(f"{m}@{k}")
                vals.append(f"{c['mean']:.4f} ± {c['std']:.4f}" if c else "")
        table.add_row(*([] if len(datasets) == 1 else [ds]), model, *vals, f"{any_row['s_per_epoch']:.2f}",
                      f"{any_row['epochs_mean']:.0f}")  # fmt: skip
    return table



def write_results(path: str | Path, rows: list[dict], command: str | None = None) -> None:
    _write_rows(path, rows, command)
