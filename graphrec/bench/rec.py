"""Recommendation benchmark: dataset x models x seeds, full-ranking metrics, mean ± std.

Every model sees the same split for a given seed (paired comparison). A model row is a
registered backbone (``mf``, ``lightgcn``, ``gesm``...), the same with ``+hop`` (trained
with hop sampling, evaluated at full depth), ``pyg_lightgcn`` (PyG's LightGCN with the
``lightgcn`` config, for a side-by-side check), or a row fitted without the trainer:
``pop`` (most popular first), ``ease`` (EASE, closed form) and ``ials`` (implicit ALS), the
floor and the linear baselines every graph model should be compared with
(:mod:`graphrec.models.linear`). Their hyperparameters come from :data:`LINEAR_BASELINES`
(per-dataset values chosen on the validation split) and ``--set ease.l2=...`` /
``--set ials.factors=...``.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from graphrec.bench.published import anchor_of_row, anchors_for
from graphrec.bench.report import write_results as _write_rows
from graphrec.config.base import ConfigError, Layers, did_you_mean, validate
from graphrec.config.rec import RecConfig, resolve_rec_config
from graphrec.data.catalog import get_dataset, is_dataset
from graphrec.data.interactions import Interactions, RecData, load_interactions
from graphrec.models import BipartiteRecommender, ModelParams, get_spec
from graphrec.models.linear import EASE, IALS, EASEParams, IALSParams
from graphrec.serving import export_model
from graphrec.tasks.link import build_rec_model, fit_link
from graphrec.tasks.trainer import FitResult
from graphrec.utils.console import progress_bar
from graphrec.utils.memory import PeakRSS
from graphrec.utils.seed import seed_everything

HOP_SUFFIX = "+hop"
#: Rows of the benchmark that are not registry models: name -> the registry model whose config they use
#: (for the untrained rows only its ``data`` and ``eval`` sections matter).
REFERENCE_MODELS = {"pyg_lightgcn": "lightgcn", "pop": "mf", "ease": "mf", "ials": "mf"}
#: Reference rows fitted without the trainer (no epochs); ``--set model.*`` does not reach them.
UNTRAINED = ("pop", "ease", "ials")


@dataclass(frozen=True)
class LinearBaseline:
    """A linear baseline row: its hyperparameters and their per-dataset values."""

    name: str
    params: type[ModelParams]
    #: catalog dataset name (lower case) -> values chosen by validation NDCG@20, never on test
    #: (docs/benchmarks-rec.md section 6 has the grids); other datasets and store folders get
    #: the schema's defaults.
    tuned: dict[str, dict[str, Any]]


#: The linear baselines of the benchmark (:mod:`graphrec.models.linear`), by row name: EASE
#: (Steck, WWW 2019) and implicit ALS through ``implicit`` (Hu, Koren & Volinsky, ICDM 2008).
LINEAR_BASELINES: dict[str, LinearBaseline] = {b.name: b for b in (
    LinearBaseline("ease", EASEParams, {"ml-100k": {"l2": 300.0}, "ml-1m": {"l2": 1000.0}, "amazon-cd": {"l2": 50.0}}),
    LinearBaseline("ials", IALSParams, {"ml-100k": {"factors": 128, "regularization": 30.0, "alpha": 3.0},
                                        "ml-1m": {"factors": 256, "regularization": 100.0, "alpha": 10.0},
                                        "amazon-cd": {"factors": 256, "regularization": 10.0, "alpha": 30.0}}),
)}  # fmt: skip


@dataclass
class ModelRow:
    """One row of the benchmark: what to build and under which name to report it."""

    name: str  # as reported: "lightgcn", "lightgcn+hop", "pyg_lightgcn"
    config_model: str  # registry model whose config applies
    reference: str | None = None
    hop_sampling: bool = False


def parse_models(models: list[str], hop_both: bool = False) -> list[ModelRow]:
    """``["pop", "mf", "lightgcn+hop", "pyg_lightgcn", "ease"]`` -> rows; ``hop_both`` adds ``+hop``
    rows for models with K propagation steps. ``pop`` ranks items by their training interactions
    (the floor every model must clear); ``pyg_lightgcn`` is PyG's LightGCN; ``ease`` and ``ials``
    are the linear baselines (:data:`LINEAR_BASELINES`)."""
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


def _override_section(item: str) -> str:
    """``"ease.l2=5"`` -> ``"ease"``."""
    return item.split("=", 1)[0].strip().split(".", 1)[0]


def split_overrides(overrides: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """``--set`` items -> (the config's ``section.key=value`` items, ``{baseline: its items}``).

    Raises:
        ConfigError: an item whose first key is neither a config section nor a linear baseline.
    """
    sections = list(RecConfig.model_fields)
    config: list[str] = []
    baselines: dict[str, list[str]] = {}
    for item in overrides:
        head = _override_section(item)
        if head in LINEAR_BASELINES:
            baselines.setdefault(head, []).append(item)
            continue
        if "=" in item and head not in sections:
            key = item.split("=", 1)[0].strip()
            raise ConfigError(f"unknown config key {key!r}{did_you_mean(head, [*sections, *LINEAR_BASELINES])} "
                              f"(keys start with one of {sorted(sections)}, or with a linear baseline row's "
                              f"name: {', '.join(f'{b}.' for b in LINEAR_BASELINES)})")  # fmt: skip
        config.append(item)
    return config, baselines


def row_config(row: ModelRow, dataset: str | None, overrides: list[str], config_file: str | None) -> RecConfig:
    """The config of ``row``; ``overrides`` may hold linear-baseline items (``ease.l2=...``), which
    :func:`baseline_params` reads. Untrained rows take no ``model.*`` item (they have no backbone).

    Raises:
        ConfigError: an unknown key or a bad value.
    """
    config, _ = split_overrides(overrides)
    if row.reference in UNTRAINED:
        config = [o for o in config if _override_section(o) != "model"]
    extra = ["train.hop_sampling.enabled=true"] if row.hop_sampling else []
    return resolve_rec_config(row.config_model, dataset, config + extra, config_file)


def baseline_params(name: str, dataset: str | None, overrides: list[str] | None = None) -> ModelParams:
    """The hyperparameters of the linear baseline ``name`` on ``dataset`` (a catalog name, or None for
    a store folder). Layers, later wins: the schema's defaults -> the values tuned for ``dataset``
    (:data:`LINEAR_BASELINES`) -> ``--set name.key=value`` items of ``overrides`` (others are ignored).

    Raises:
        ValueError: ``name`` is not a linear baseline.
        ConfigError: an unknown key or a bad value (the message names the keys and the ``--set``).
    """
    if name not in LINEAR_BASELINES:
        raise ValueError(f"unknown linear baseline {name!r}; known: {', '.join(LINEAR_BASELINES)}")
    b = LINEAR_BASELINES[name]
    stack = Layers()
    if dataset is not None and dataset.lower() in b.tuned:
        stack.add(f"graphrec.bench.rec.LINEAR_BASELINES ({name}, {dataset})", {name: b.tuned[dataset.lower()]})
    stack.add_overrides([o for o in overrides or [] if _override_section(o) == name], [name])
    raw = stack.merged().get(name, {})
    if not isinstance(raw, dict):
        raise ConfigError(f"{name} is a section: set its keys, e.g. --set {name}.{next(iter(b.params.model_fields))}=...")
    keys = ", ".join(b.params.model_fields)
    return validate(b.params, raw, stack, where=f"invalid parameters for {name!r} (its keys: {keys})", prefix=(name,))


def check_rows(rows: list[ModelRow], dataset: str | None, overrides: list[str], config_file: str | None) -> None:
    """Resolve every row's config and baseline parameters before any training (fail fast).

    Raises:
        ConfigError: an unknown key or a bad value.
        ValueError: ``--set NAME.key`` for a linear baseline that is not among the rows.
    """
    config, per_baseline = split_overrides(overrides)
    names = {r.reference for r in rows}
    listed = ", ".join(r.name for r in rows)
    for name, items in per_baseline.items():
        if name not in names:
            raise ValueError(f"--set {items[0]} applies to the {name!r} row, which is not among the models "
                             f"({listed}); add {name} to --models")  # fmt: skip
    model_items = [o for o in config if _override_section(o) == "model"]
    if model_items and all(r.reference in UNTRAINED for r in rows):
        raise ValueError(f"--set {model_items[0]} sets a backbone parameter, but no row has a backbone ({listed}); "
                         f"linear baselines take {', '.join(f'--set {b}.KEY' for b in LINEAR_BASELINES)}")  # fmt: skip
    for r in rows:
        row_config(r, dataset, overrides, config_file)
        if r.reference in LINEAR_BASELINES:
            baseline_params(r.reference, dataset, overrides)


@dataclass
class RecBenchRun:
    dataset: str
    model: str
    hop_sampling: bool
    config: dict
    fits: list[FitResult] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    peak_rss: list[int] = field(default_factory=list)  # bytes, one per seed: the process's peak during the fit
    split: str = ""  # the split method that ran ("published", "random"...; never "auto")


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
    check_rows(models, _dataset_key(dataset), overrides, config_file)  # fail fast
    cfgs = {r.name: row_config(r, _dataset_key(dataset), overrides, config_file) for r in models}
    params = {r.name: baseline_params(r.reference, _dataset_key(dataset), overrides)
              for r in models if r.reference in LINEAR_BASELINES}  # fmt: skip
    first = next(iter(cfgs.values()))
    inter = interactions or load_interactions(dataset, first.data)
    if any(r.reference == "ease" for r in models):  # refuse before any training, not after the other rows
        EASE().check_memory(inter.num_items, len(inter.user))
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
            config = cfg.model_dump()
            if row.name in params:  # a linear baseline: its parameters, not the trainer's
                config = {**cfg.model_dump(exclude={"train"}), "model": {"name": row.name, **params[row.name].model_dump()}}
            elif row.reference == "pop":  # nothing trained: no backbone, no training options
                config = {**cfg.model_dump(exclude={"train"}), "model": {"name": "pop"}}
            run = RecBenchRun(_dataset_key(dataset) or str(dataset), row.name, row.hop_sampling, config)
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

                run.split = data.split.method
                if row.reference == "pop":  # nothing to train
                    with PeakRSS() as peak:
                        run.fits.append(popularity_fit(data, cfg))
                    run.seeds.append(s)
                    run.peak_rss.append(peak.bytes)
                    bar.advance(total)
                    continue
                if row.name in params:  # fitted in one go, without the trainer
                    p = params[row.name]
                    bar.reset(epochs, total=getattr(p, "iterations", 1))

                    def sweep(it, sec, _bar=bar, _task=epochs):
                        _bar.update(_task, completed=it, info=f"ALS sweep {sec:.2f} s")

                    with PeakRSS() as peak:
                        run.fits.append(baseline_fit(row.reference, data, cfg, p, seed=s, progress=sweep))
                    run.seeds.append(s)
                    run.peak_rss.append(peak.bytes)
                    bar.advance(total)
                    continue
                seed_everything(s)
                with PeakRSS() as peak:
                    model = build_row_model(row, cfg, data)
                    fit = fit_link(data, model, cfg, progress=tick, keep_state=False)
                run.peak_rss.append(peak.bytes)
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

    t0 = time.perf_counter()
    emb = (torch.ones(data.num_users, 1), data.item_counts.float().view(-1, 1))
    parts = _evaluate_parts(data, cfg, None, emb)
    return FitResult(metric=cfg.train.stop_on, valid=parts.get("valid", {}), test=parts.get("test", {}), best_epoch=0,
                     epochs=0, s_per_epoch=0.0, seconds=time.perf_counter() - t0)  # fmt: skip


class _DirectScores:
    """What :func:`graphrec.tasks.link.evaluate` reads of a model that scores a block of users
    directly rather than from embeddings (EASE: ``X[users] @ B``): a ``scorer`` whose
    ``score_fn`` returns those scores, whatever embeddings it is handed."""

    def __init__(self, scores: Callable[[torch.Tensor], torch.Tensor]):
        self.scorer, self._scores = self, scores

    def score_fn(self, user_emb, item_emb) -> Callable[[torch.Tensor], torch.Tensor]:
        return self._scores


def _evaluate_parts(data: RecData, cfg: RecConfig, model, embeddings) -> dict[str, dict[str, float]]:
    """Validation and test metrics (the parts that hold pairs) through the trained models' full-ranking
    :func:`graphrec.tasks.link.evaluate`: training items masked, and for test validation items too."""
    from graphrec.tasks.link import evaluate

    e = cfg.eval
    return {p: evaluate(model, data, p, e.ks, e.metrics, e.chunk_size, embeddings=embeddings)
            for p in ("valid", "test") if getattr(data.split, p).size(1)}  # fmt: skip


def baseline_fit(name: str, data: RecData, cfg: RecConfig, params: ModelParams, seed: int = 0,
                 progress: Callable[[int, float], Any] | None = None) -> FitResult:  # fmt: skip
    """Fit the linear baseline ``name`` (``ease`` or ``ials``) on ``data``'s training pairs and evaluate
    it like every row (:func:`_evaluate_parts`). BLAS (EASE) and ``implicit`` (iALS) get torch's
    thread count (the bench's ``--threads``); iALS starts from ``seed``.

    The :class:`FitResult` has ``seconds`` (fit and evaluation) and ``s_per_epoch``: iALS's seconds per
    ALS sweep (``epochs`` = sweeps), EASE's closed-form solve (reported as one epoch).
    ``progress(iteration, seconds)`` follows the iALS sweeps.

    Raises:
        ValueError: ``name`` is not a linear baseline.
        EASEMemoryError: EASE's items x items matrix would not fit in memory.
    """
    import time

    t0 = time.perf_counter()
    u, i, threads = data.train[0], data.train[1], torch.get_num_threads()
    if name == "ease":
        ease = EASE(params.l2, num_threads=threads).fit(u, i, data.num_users, data.num_items)
        parts = _evaluate_parts(data, cfg, _DirectScores(ease.scores), (torch.empty(0, 0), torch.empty(0, 0)))
        epochs, s_per_epoch = 1, ease.fit_seconds
    elif name == "ials":
        ials = IALS(params.factors, params.regularization, params.alpha, params.iterations, random_state=seed,
                    num_threads=threads).fit(u, i, data.num_users, data.num_items, callback=progress)  # fmt: skip
        parts = _evaluate_parts(data, cfg, None, ials.embeddings())
        epochs, s_per_epoch = params.iterations, ials.s_per_iteration
    else:
        raise ValueError(f"unknown linear baseline {name!r}; known: {', '.join(LINEAR_BASELINES)}")
    return FitResult(metric=cfg.train.stop_on, valid=parts.get("valid", {}), test=parts.get("test", {}),
                     best_epoch=epochs, epochs=epochs, s_per_epoch=s_per_epoch, seconds=time.perf_counter() - t0)  # fmt: skip


def build_row_model(row: ModelRow, cfg: RecConfig, data: RecData) -> BipartiteRecommender:
    """The model of a benchmark row: the configured backbone, or a reference implementation."""
    if row.reference is None:
        return build_rec_model(cfg, data)
    if row.reference != "pyg_lightgcn":  # pop, ease, ials: fitted without a BipartiteRecommender
        raise ValueError(f"unknown reference model {row.reference!r}; known: {', '.join(REFERENCE_MODELS)}")
    if cfg.train.hop_sampling.enabled:
        raise ValueError("hop sampling does not apply to the PyG reference LightGCN")
    from graphrec.models.reference import PyGLightGCN

    t = cfg.train
    return PyGLightGCN(data.num_users, data.num_items, t.embedding_dim, cfg.model_params.get("K", 3), t.init, t.init_std)


def summarize(runs: list[RecBenchRun]) -> list[dict[str, Any]]:
    """One JSON-ready row per (dataset, model, metric, k): mean, std and per-seed values of the test metric,
    the published number of the same method on the same split where there is one
    (:mod:`graphrec.bench.published`), and the costs: seconds per epoch, epochs to the selected
    checkpoint, wall seconds (every seed, evaluation included) and the peak RSS of the fits."""
    rows = []
    for run in runs:
        names = [n for n in run.fits[0].test if "@" in n]
        # the published numbers hold for the published split only, not for a re-split of the same data
        anchor = None if run.split not in ("", "published") else \
            anchor_of_row(run.dataset, run.model, (run.config.get("train") or {}).get("loss"))
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
                "published": None if anchor is None or name not in anchor.metrics else
                             {"value": anchor.metrics[name], "model": anchor.model, "source": anchor.source},
                "valid_mean": statistics.fmean(f.valid[name] for f in run.fits) if run.fits[0].valid else None,
                "valid_values": [f.valid.get(name) for f in run.fits],
                "s_per_epoch": statistics.fmean(f.s_per_epoch for f in run.fits),
                "epochs_mean": statistics.fmean(f.epochs for f in run.fits),
                "best_epoch_mean": statistics.fmean(f.best_epoch for f in run.fits),
                "history": run.fits[0].history,  # the first seed's training curve
                "seconds": sum(f.seconds for f in run.fits),
                "seconds_per_seed": statistics.fmean(f.seconds for f in run.fits),
                "peak_rss_gib": max(run.peak_rss) / 2**30 if run.peak_rss else None,
                "hop_sampling": run.hop_sampling,
                "split": run.split or run.config["data"]["split"],
                "config": run.config,
            })  # fmt: skip
    return rows


def _cell(c: dict | None, std: bool) -> str:
    if c is None:
        return ""
    return f"{c['mean']:.4f}±{c['std']:.4f}".replace("±0.", "±.") if std else f"{c['mean']:.4f}"


def _duration(seconds: float) -> str:
    """``42 s``, ``12.5 m``, ``1.3 h``: wall times from a second to a day in 6 characters."""
    if seconds < 100:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} m" if seconds < 6000 else f"{seconds / 3600:.1f} h"


def results_table(rows: list[dict], metrics=("recall", "ndcg"), ks=(10, 20)) -> Table:
    """Test metrics, mean±std over seeds (every metric is in the JSON), the published R@20 / N@20 of
    the same method on the same split where there is one, seconds per epoch, epochs to the selected
    checkpoint, wall time per seed and peak RSS, in a 100-column terminal: the dataset goes to the title
    when there is one, and the published numbers of methods without a row go to the caption."""
    from rich import box

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    seeds = sorted({r["seeds"] for r in rows})
    title = (f"{datasets[0] if len(datasets) == 1 else 'Recommendation'}: test metrics, full ranking, "
             f"best-validation epoch; mean±std over {'/'.join(map(str, seeds))} seed{'s' if seeds != [1] else ''}")  # fmt: skip
    short = {"recall": "R", "ndcg": "N", "hit": "HR", "precision": "P", "mrr": "MRR"}
    pub_keys = [f"{m}@{max(ks)}" for m in metrics]
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, padding=(0, 1))
    cols = (*([] if len(datasets) == 1 else ["dataset"]), "model", *[f"{short.get(m, m)}@{k}" for k in ks for m in metrics],
            f"paper {'/'.join(short.get(m, m) for m in metrics)}@{max(ks)}", "s/ep", "best", "wall", "RSS")  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col in ("dataset", "model") else "right", no_wrap=True)
    by: dict[tuple[str, str], dict[str, dict]] = {}
    for r in rows:
        by.setdefault((r["dataset"], r["model"]), {})[f"{r['metric']}@{r['k']}"] = r
    shown = set()
    for (ds, model), cells in by.items():
        any_row = next(iter(cells.values()))
        pub = [cells[k].get("published") if k in cells else None for k in pub_keys]
        pub_text = "/".join(f"{p['value']:.4f}" if p else "–" for p in pub) if any(pub) else ""
        shown.update((ds, p["model"]) for p in pub if p)
        rss = any_row.get("peak_rss_gib")
        table.add_row(*([] if len(datasets) == 1 else [ds]), model,
                      *[_cell(cells.get(f"{m}@{k}"), std=k == max(ks) and any_row["seeds"] > 1) for k in ks for m in metrics],
                      pub_text, f"{any_row['s_per_epoch']:.2f}", f"{any_row['best_epoch_mean']:.0f}",
                      _duration(any_row.get("seconds_per_seed", any_row["seconds"])),
                      "" if rss is None else f"{rss:.1f}G")  # fmt: skip
    published = {r["dataset"] for r in rows if r.get("split", "published") == "published"}
    others = [a for ds in datasets if ds in published for a in anchors_for(ds) if (a.dataset, a.model) not in shown]
    notes = [f"{a.model} " + " / ".join(f"{short.get(k.split('@')[0], k)}@{k.split('@')[1]} {v:.4f}" for k, v in a.metrics.items())
             + f" ({a.source})" for a in others]  # fmt: skip
    caption = (f"@{min(ks)}: means (std in the JSON); paper: the method's published number on this split; "
               "best: epochs to the selected checkpoint; wall: per seed, evaluation included; RSS: peak of the "
               "process during a fit")  # fmt: skip
    table.caption = caption + ("\npublished, without a row here: " + "; ".join(notes) if notes else "")
    table.caption_justify = "left"
    return table


def write_results(path: str | Path, rows: list[dict], command: str | None = None) -> None:
    _write_rows(path, rows, command)
