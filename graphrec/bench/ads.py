"""Ad-targeting benchmark: scorer x embedding dimension x seeds on one ad log, mean ± std.

Rows are scorers of one backbone (``--backbone``, LightGCN by default) at each dimension
``d``: ``dot`` (Euclidean inner product), ``distance`` (Euclidean, ``-||u - a||^2``),
``hyperbolic`` (``-d`` on the hyperboloid after ``expmap0``, learnable curvature) and ``multi``
(the multi-manifold scorer, :mod:`graphrec.hyperbolic.multi`). A Euclidean row of the same
dimension stands beside every hyperbolic one (DESIGN.md §5): asking for ``hyperbolic`` or
``multi`` adds ``dot`` when it is missing.

Every row sees the same split for a given seed (paired comparison). Columns: on the test
part's labelled pairs AUC, log loss and ECE; HR@10 and NDCG@10 of the full ranking of all ads
(training positives masked); on a synthetic log with a ground truth (``ads-synth``, or a store
folder with ``truth.npz``) the NDCG@10 of each user's ranking of every ad against the **true**
click-through rate (graded gains = true CTR, scikit-learn's ``ndcg_score``, no masking: how
well the model recovers the CTR function), and a reference row ``truth``: the true CTR itself
as the prediction, scored the same way (:func:`truth_fit`); the scorer's learned curvatures and
manifold weights (``report()``); seconds per epoch and epochs. Protocol: :mod:`graphrec.tasks.ads`.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from graphrec.bench.report import write_results as _write_rows
from graphrec.config.ads import AdsConfig, resolve_ads_config
from graphrec.config.base import ConfigError, parse_override
from graphrec.data.catalog import get_dataset, is_dataset
from graphrec.tasks.ads import (
    AdLog,
    AdsData,
    AdTargetingModel,
    build_ads_model,
    export_ads_model,
    fit_ads,
    load_ad_log,
)
from graphrec.tasks.trainer import FitResult
from graphrec.utils.console import progress_bar
from graphrec.utils.seed import seed_everything

#: Benchmark rows: name -> (train.score, train.score_params layered under --set).
SCORER_ROWS: dict[str, tuple[str, dict[str, Any]]] = {
    "dot": ("dot", {}),
    "distance": ("neg_sq_euclidean", {}),
    "hyperbolic": ("hyperbolic", {"kind": "lorentz", "learnable": True}),
    "multi": ("multi_manifold", {}),
}
HYPERBOLIC_ROWS = ("hyperbolic", "multi")
#: Test metrics in the table (every metric is in the JSON); HR and NDCG at 10, or at the largest
#: ``eval.ks`` below 10 when 10 is not computed.
TABLE_METRICS = ("auc", "log_loss", "ece")


def parse_scorers(names: list[str]) -> list[str]:
    """``["multi", "hyperbolic"]`` -> ``["dot", "hyperbolic", "multi"]``: known names, deduplicated, in
    :data:`SCORER_ROWS` order, with ``dot`` added beside any hyperbolic row.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    rows = []
    for n in names:
        key = n.strip().lower()
        key = {"euclidean": "dot", "neg_sq_euclidean": "distance", "multi_manifold": "multi"}.get(key, key)
        if key not in SCORER_ROWS:
            raise ValueError(f"unknown scorer row {n!r}; choose among {', '.join(SCORER_ROWS)}")
        rows.append(key)
    if any(r in HYPERBOLIC_ROWS for r in rows) and not any(r in ("dot", "distance") for r in rows):
        rows.append("dot")  # a Euclidean model of the same dimension beside every hyperbolic one
    return [r for r in SCORER_ROWS if r in rows]


def split_overrides(overrides: list[str]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """``--set`` items -> (the config's ``section.key=value`` items, ``{row: its scorer options}``): an item
    whose first key is a row name sets that row's ``train.score_params`` only (``multi.num_manifolds=2``).

    Raises:
        ConfigError: a row item without a key (``multi=2``) or with a value that is not YAML.
    """
    config: list[str] = []
    rows: dict[str, dict[str, Any]] = {}
    for item in overrides:
        head = item.split("=", 1)[0].strip().split(".", 1)[0]
        if head in SCORER_ROWS:
            path, value = parse_override(item, list(SCORER_ROWS))
            if len(path) != 2:
                raise ConfigError(f"--set {item}: a row's scorer option looks like {head}.OPTION=value")
            rows.setdefault(head, {})[path[1]] = value
        else:
            config.append(item)
    return config, rows


def row_config(row: str, dim: int, backbone: str, dataset: str | None, overrides: list[str],
               config_file: str | None) -> AdsConfig:  # fmt: skip
    """The config of ``row`` at dimension ``dim``. Layers: the backbone's ads preset, the row's scorer and
    options (:data:`SCORER_ROWS`, then ``--set ROW.option=value`` items), ``config_file``, then the other
    ``overrides`` (``--set section.key=value``, every row).

    Raises:
        ConfigError: a bad key or value (the message names it and its source).
    """
    config, per_row = split_overrides(overrides)
    score, params = SCORER_ROWS[row]
    layer = {"train": {"score": score, "score_params": {**params, **per_row.get(row, {})}, "embedding_dim": dim}}
    return resolve_ads_config(backbone, dataset, config, config_file, layers=[(f"bench ads row {row} d={dim}", layer)])


def check_rows(rows: list[str], dims: list[int], backbone: str, dataset: str | None, overrides: list[str],
               config_file: str | None) -> dict[tuple[str, int], AdsConfig]:  # fmt: skip
    """Every row's config, and its scorer built once from ``train.score_params``: a bad key or scorer
    option fails here, before any training.

    Raises:
        ConfigError: a bad key or value. ValueError: a scorer option the scorer does not take.
    """
    from graphrec.nn.score import build_scorer

    cfgs = {(r, d): row_config(r, d, backbone, dataset, overrides, config_file) for r in rows for d in dims}
    for (r, _), cfg in cfgs.items():
        try:
            build_scorer(cfg.train.score, cfg.train.score_params)
        except ValueError as exc:
            raise ValueError(f"row {r!r}: {exc}") from None
    return cfgs


@dataclass
class AdsBenchRun:
    dataset: str
    row: str
    dim: int
    config: dict
    fits: list[FitResult] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    recovery: list[float] = field(default_factory=list)  # NDCG@10 against the true CTR, one per seed
    reports: list[dict] = field(default_factory=list)  # the scorer's report() (curvatures, weights), one per seed
    split: str = ""


def dataset_key(dataset: str | Path) -> str | None:
    """The catalog name of ``dataset``, or None for a store folder."""
    return get_dataset(str(dataset)).name if is_dataset(str(dataset)) else None


def find_truth(dataset: str | Path, truth: str | Path | None = None) -> Path | None:
    """The ground truth of ``dataset``: ``truth`` when given, the catalog's for a synthetic dataset
    (``ads-synth``), ``truth.npz`` inside a store folder, else None (no recovery column).

    Raises:
        FileNotFoundError: ``truth`` is given and does not exist.
    """
    from graphrec.store.synth_ads import TRUTH_FILE

    if truth is not None:
        p = Path(truth)
        p = p / TRUTH_FILE if p.is_dir() else p
        if not p.is_file():
            raise FileNotFoundError(f"no ground truth at {p} (synth_ads writes {TRUTH_FILE} beside the log)")
        return p
    name = dataset_key(dataset)
    if name is not None:
        from graphrec.data.interactions import dataset_truth

        try:
            return dataset_truth(name)
        except ValueError:
            return None
    p = Path(dataset) / TRUTH_FILE
    return p if p.is_file() else None


@torch.no_grad()
def ctr_recovery(model: AdTargetingModel, data: AdsData, truth: Any, k: int = 10,
                 embeddings: tuple[torch.Tensor, torch.Tensor] | None = None) -> float:  # fmt: skip
    """NDCG@``k`` of every user's ranking of all ads by ``model`` (its scorer on its output embeddings, or on
    ``embeddings`` ``(users [U, d], ads [A, d])``) against the true CTR as graded gains (scikit-learn's
    ``ndcg_score``; users and ads of the log that the truth does not know are skipped). ``truth``: an
    :class:`~graphrec.store.synth_ads.AdTruth` or its file."""
    from sklearn.metrics import ndcg_score

    from graphrec.store.synth_ads import load_truth

    t = truth if not isinstance(truth, str | Path) else load_truth(truth)
    dev = next(model.parameters()).device
    if embeddings is None:
        embeddings = model.user_ad_embeddings(data.graph.to(dev), data.edge_weight.to(dev))
    users, ads = (e.to(dev) for e in embeddings)
    uid = np.asarray(data.log.user_ids if data.log.user_ids is not None else np.arange(1, data.num_users + 1))
    aid = np.asarray(data.log.ad_ids if data.log.ad_ids is not None else np.arange(1, data.num_ads + 1))
    known_u = np.flatnonzero((uid.astype(np.int64) >= 1) & (uid.astype(np.int64) <= t.num_users))
    known_a = np.flatnonzero((aid.astype(np.int64) >= 1) & (aid.astype(np.int64) <= t.num_ads))
    if known_u.size == 0 or known_a.size < 2:
        return math.nan
    gains = t.ctr(t.user_index(uid[known_u])[:, None], t.ad_index(aid[known_a])[None, :])
    scores = []
    for blk in torch.from_numpy(known_u).split(4096):
        scores.append(model.scorer.score_all(users[blk.to(dev)], ads[torch.from_numpy(known_a).to(dev)]).float().cpu())
    return float(ndcg_score(gains, torch.cat(scores).numpy(), k=min(k, known_a.size)))


def truth_fit(data: AdsData, truth: Any, cfg: AdsConfig) -> FitResult:
    """The reference row of a synthetic log: the generator's own probabilities as the prediction, scored like
    every model on the test part: what a model that recovered the generator exactly would reach on this sample.

    A pair's label is "clicked at any of its ``n`` impressions", so its true probability is
    ``1 - (1 - ctr(u, a))^n`` (``n`` from the log; ``ctr`` itself for a pair without impressions): AUC, log loss
    and ECE are of that. HR, NDCG and Recall rank every ad by ``ctr(u, a)``, with the models' masks."""
    from graphrec.metrics import evaluate_topk
    from graphrec.metrics.binary import binary_metrics

    uid = np.asarray(data.log.user_ids, dtype=np.int64) - 1
    aid = np.asarray(data.log.ad_ids, dtype=np.int64) - 1
    ctr = torch.from_numpy(truth.ctr(uid[:, None], aid[None, :])).float()  # [U, A]
    u, a, y = data.parts["test"]
    p = data.log.pairs
    keys = p["user"] * data.num_ads + p["ad"]
    k = u.numpy() * data.num_ads + a.numpy()
    pos = np.clip(np.searchsorted(keys, k), 0, max(keys.size - 1, 0))
    shown = np.where(keys[pos] == k, p["impressions"][pos], 0) if keys.size else np.zeros(k.size, np.int64)
    c = ctr[u, a].double().numpy()
    prob = np.where(shown > 0, 1.0 - (1.0 - c) ** np.maximum(shown, 1), c)
    e = cfg.eval
    out = binary_metrics(y.numpy(), prob, e.ece_bins)
    out["loss"] = out["log_loss"]
    exclude = [data.positives("train"), data.positives("valid")]
    out.update(evaluate_topk(lambda users: ctr[users], data.positives("test"), data.num_ads, e.ks, exclude,
                             metrics=("hit", "ndcg", "recall")))  # fmt: skip
    return FitResult(metric=cfg.train.stop_on, valid={}, test=out, best_epoch=0, epochs=0, s_per_epoch=0.0, seconds=0.0)


def scorer_report(model: AdTargetingModel) -> dict[str, Any]:
    """What the scorer learned, for the table: its ``report()`` (multi-manifold: curvatures, weights,
    calibration), or the curvatures of its hyperbolic spaces; plus the task's calibration."""
    s = model.scorer
    rep: dict[str, Any] = {}
    if hasattr(s, "report"):
        rep = dict(s.report())
    else:
        from graphrec.hyperbolic import curvatures

        c = curvatures(s)
        if c:
            rep["curvatures"] = list(c.values())
    a, b = model.calibration()
    rep["calibration"] = {"scale": a, "bias": b}
    return rep


def run_ads_benchmark(
    dataset: str,
    rows: list[str],
    dims: list[int],
    seeds: int = 5,
    seed_start: int = 0,
    backbone: str = "lightgcn",
    overrides: list[str] | None = None,
    config_file: str | None = None,
    truth: str | Path | None = None,
    export_dir: str | Path | None = None,
    console: Console | None = None,
    show_progress: bool = True,
    log: AdLog | None = None,
) -> list[AdsBenchRun]:
    """Train and evaluate every (row, dimension) for ``seeds`` seeds on ``dataset`` (a catalog name or a
    store folder). Configs are resolved (and fail) before any training.

    Raises:
        ConfigError: a bad key or value. ValueError: an unknown row or dataset.
    """
    console = console or Console(stderr=True)
    overrides = list(overrides or [])
    key = dataset_key(dataset)
    cfgs = check_rows(rows, dims, backbone, key, overrides, config_file)
    first = next(iter(cfgs.values()))
    src = log or load_ad_log(dataset, first.data)
    truth_path = find_truth(dataset, truth)
    truth_obj = None
    if truth_path is not None:
        from graphrec.store.synth_ads import load_truth

        truth_obj = load_truth(truth_path)
    splits: dict[int, AdsData] = {}
    runs: list[AdsBenchRun] = []
    with progress_bar(console, disable=not show_progress) as bar:
        total = bar.add_task("runs", total=len(cfgs) * seeds, info="")
        epochs = bar.add_task("epochs", total=1, info="")
        for (row, dim), cfg in cfgs.items():
            if cfg.data != first.data:
                raise ValueError("every row of an ads benchmark must share the data section (--set data.* applies to all)")
            run = AdsBenchRun(key or str(dataset), row, dim, cfg.model_dump(mode="json"))
            for s in range(seed_start, seed_start + seeds):
                if s not in splits:
                    splits[s] = src.split(cfg.data, s)
                data = splits[s]
                run.split = data.method
                bar.update(total, description=f"{run.dataset} {row} d={dim} seed {s}")
                bar.reset(epochs, total=cfg.train.epochs)

                def tick(epoch, n, info, _bar=bar, _task=epochs, _stop=cfg.train.stop_on):
                    val = f"valid {_stop} {info['valid']:.4f}" if "valid" in info else ""
                    _bar.update(_task, completed=epoch, info=f"loss {info['loss']:.4f} {val}")

                seed_everything(s)
                model = build_ads_model(cfg, data)
                fit = fit_ads(data, model, cfg, progress=tick, keep_state=False)
                run.fits.append(fit)
                run.seeds.append(s)
                run.reports.append(scorer_report(model))
                if truth_obj is not None:
                    run.recovery.append(ctr_recovery(model, data, truth_obj))
                if export_dir is not None and s == seed_start:
                    export_ads_model(model, data, Path(export_dir) / f"{row}-d{dim}", config=run.config,
                                     metrics={"valid": fit.valid, "test": fit.test, "seed": s}, history=fit.history,
                                     overwrite=True)  # fmt: skip
                bar.advance(total)
            runs.append(run)
    if truth_obj is not None:  # the reference: the generator's own CTR, on the same splits
        ref = AdsBenchRun(key or str(dataset), "truth", 0, {**first.model_dump(mode="json"), "model": {"name": "-"},
                                                            "train": {**first.train.model_dump(mode="json"), "score": "true CTR"}})  # fmt: skip
        for s in range(seed_start, seed_start + seeds):
            ref.fits.append(truth_fit(splits[s], truth_obj, first))
            ref.seeds.append(s)
            ref.recovery.append(1.0)
            ref.split = splits[s].method
        runs.append(ref)
    return runs


def _stats(vals: list[float]) -> dict[str, Any]:
    ok = [v for v in vals if v is not None and not math.isnan(v)]
    return {"mean": statistics.fmean(ok) if ok else math.nan, "std": statistics.stdev(ok) if len(ok) > 1 else 0.0,
            "values": vals}  # fmt: skip


def _mean_lists(lists: list[list[float]]) -> list[float] | None:
    lists = [x for x in lists if x]
    if not lists or len({len(x) for x in lists}) != 1:
        return None
    return [statistics.fmean(col) for col in zip(*lists, strict=True)]


def summarize(runs: list[AdsBenchRun]) -> list[dict[str, Any]]:
    """One JSON-ready row per (dataset, scorer row, dimension): every test and validation metric as
    mean, std and per-seed values, the recovery NDCG@10 (synthetic logs), the scorer's reports
    (per seed, and the mean curvatures and weights), seconds per epoch, epochs, wall seconds."""
    out = []
    for run in runs:
        names = [k for k in run.fits[0].test if k not in ("users", "pairs", "positives")]
        row: dict[str, Any] = {
            "dataset": run.dataset, "model": run.row, "scorer": run.config["train"]["score"], "dim": run.dim,
            "backbone": run.config["model"]["name"], "seeds": len(run.fits), "seed_list": run.seeds,
            "split": run.split,
            "test": {n: _stats([f.test.get(n, math.nan) for f in run.fits]) for n in names},
            "valid": {n: _stats([f.valid.get(n, math.nan) for f in run.fits]) for n in names if run.fits[0].valid},
            "recovery": _stats(run.recovery) if run.recovery else None,
            "curvatures": _mean_lists([r.get("curvatures", []) for r in run.reports]),
            "weights": _mean_lists([r.get("weights", r.get("mean_membership", [])) for r in run.reports]),
            "reports": run.reports,
            "s_per_epoch": statistics.fmean(f.s_per_epoch for f in run.fits),
            "epochs_mean": statistics.fmean(f.epochs for f in run.fits),
            "best_epoch_mean": statistics.fmean(f.best_epoch for f in run.fits),
            "seconds_per_seed": statistics.fmean(f.seconds for f in run.fits),
            "history": run.fits[0].history,
            "config": run.config,
        }  # fmt: skip
        out.append(row)
    return out


def _cell(stats: dict | None, std: bool) -> str:
    if stats is None or math.isnan(stats["mean"]):
        return ""
    return f"{stats['mean']:.4f}±{stats['std']:.4f}".replace("±0.", "±.") if std else f"{stats['mean']:.4f}"


def _numbers(values: list[float] | None) -> str:
    return "/".join(f"{v:.2f}" for v in values) if values else ""


def results_table(rows: list[dict]) -> Table:
    """The benchmark table: a row per (scorer, d); test AUC, log loss, ECE, HR@10, NDCG@10 (mean±std),
    the CTR-recovery NDCG@10 on synthetic logs, learned curvatures and manifold weights, s/epoch, epochs."""
    from rich import box

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    seeds = sorted({r["seeds"] for r in rows})
    splits = sorted({r["split"] for r in rows})
    backbones = sorted({r["backbone"] for r in rows if r["model"] != "truth"})
    title = (f"{'/'.join(datasets)}: ad targeting, test at the best-validation epoch, {'/'.join(backbones)}, "
             f"{'/'.join(splits)} split; mean±std over {'/'.join(map(str, seeds))} seed{'s' if seeds != [1] else ''}")  # fmt: skip
    recovery = any(r.get("recovery") for r in rows)
    ks = rows[0]["config"]["eval"]["ks"]
    k = 10 if 10 in ks else max(ks)
    metrics = (*TABLE_METRICS, f"hit@{k}", f"ndcg@{k}")
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, padding=(0, 1))
    cols = (*([] if len(datasets) == 1 else ["dataset"]), "scorer", "d", "AUC", "logloss", "ECE", f"HR@{k}", f"N@{k}",
            *(["CTR N@10"] if recovery else []), "curvature", "weights", "s/ep", "ep")  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col in ("dataset", "scorer", "curvature", "weights") else "right",
                         no_wrap=True)  # fmt: skip
    for r in rows:
        std = r["seeds"] > 1
        t = r["test"]
        table.add_row(*([] if len(datasets) == 1 else [r["dataset"]]), r["model"], str(r["dim"] or "-"),
                      *[_cell(t.get(m), std) for m in metrics],
                      *([_cell(r.get("recovery"), std)] if recovery else []),
                      _numbers(r.get("curvatures")), _numbers(r.get("weights")),
                      f"{r['s_per_epoch']:.2f}", f"{r['epochs_mean']:.0f}")  # fmt: skip
    table.caption = (f"AUC, logloss, ECE ({rows[0]['config']['eval']['ece_bins']} equal-width bins): the test part's "
                     f"labelled (user, ad) pairs; HR@{k}, N@{k}: all ads ranked per user, training positives masked"
                     + ("; CTR N@10: each user's ranking of every ad against the true CTR (graded gains)" if recovery
                        else "")
                     + ("; truth: the generator's own probabilities as the prediction (a pair shown n times: "
                        "1 - (1 - CTR)^n) and its CTR ranking"
                        if any(r["model"] == "truth" for r in rows) else "")
                     + "; curvature: learned c per space (curvature -c); weights: manifold weights; ep: epochs run")  # fmt: skip
    table.caption_justify = "left"
    return table


def write_results(path: str | Path, rows: list[dict], command: str | None = None) -> None:
    _write_rows(path, rows, command)
