"""The nightly stages of an ad-targeting pipeline (a pipeline config with an ``ads:`` mapping).

The night runs the stages of :mod:`graphrec.pipeline.runner` (ingest, build, encoders, train,
evaluate, gate, publish, retain); four of them differ from a recommendation night:

* **build** — the store's ad log in the window ending with the night (:class:`~graphrec.tasks.ads.AdLog`),
  split by :meth:`~graphrec.tasks.ads.AdLog.night_split`: labelled (user, ad) pairs first seen before
  the night's day train; each user's pairs first seen that day are split ``night.holdout`` into
  training, validation and *held-out* pairs. There is no canary set (the gate runs on the held-out pairs).
* **train** — :func:`~graphrec.tasks.ads.fit_ads` from scratch (``train.mode: cold``) for
  ``train.cold_epochs``, with checkpoints and exact resume as every night.
* **evaluate** — AUC, log loss, ECE, HR@K, NDCG@K and Recall@K of the candidate on the held-out pairs
  (:func:`~graphrec.tasks.ads.evaluate_ads`), and of the production model when it is an ad-targeting
  one: its published embeddings arranged by external id (zeros for users or ads it does not know),
  its scorer and its calibration.
* **publish** — the candidate as an ad-targeting model folder (:func:`~graphrec.tasks.ads.export_ads_model`),
  which ``graphrec ads`` and ``graphrec audience`` serve.

The gate compares ``gate.metric`` (``auc`` or a ranking metric) as on any night.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch
import yaml

from graphrec.pipeline.state import PipelineError
from graphrec.utils.io import atomic_open, atomic_write_json, atomic_write_text

ADS_CONFIG = "ads_config.json"


def ad_log(n):
    """The night's :class:`~graphrec.tasks.ads.AdLog` (the window ending with the night, the ingested version)."""
    if n._ads_log is None:
        from graphrec.tasks.ads import AdLog

        cfg = n.cfg.night_ads(1)
        days = n.cfg.night.window_days
        start = None if days is None else n.day_end - days * 86400
        dcfg = cfg.data.model_copy(update={"window": (start, n.day_end)})
        n._ads_log = AdLog.from_store(n.paths["store"], dcfg, version=n.state.stages["ingest"]["version"])
    return n._ads_log


def ads_night(n):
    """The night's :class:`~graphrec.tasks.ads.AdsData` (module docstring)."""
    if n._ads_data is None:
        from graphrec.pipeline.runner import _seed

        cfg = n.cfg.night_ads(1)
        n._ads_data = ad_log(n).night_split(n.day_start, n.day_end, n.cfg.night.holdout, _seed(n.cfg.train.seed, n.date, 0),
                                            cfg.data.held_out_negatives)  # fmt: skip
    return n._ads_data


def stage_build(n, bar) -> dict[str, Any]:
    data = ads_night(n)
    path = n.run_dir / "split.npz"
    with atomic_open(path, "wb") as fh:
        np.savez(fh, **{f"{p}_{c}": t.numpy() for p, part in data.parts.items() for c, t in zip("uay", part, strict=True)})
    sizes = data.sizes()
    return {"users": data.num_users, "targets": data.num_ads, "items": data.num_items,
            "train_pairs": sizes["train"], "valid_pairs": sizes["valid"], "test_pairs": sizes["test"],
            "history_pairs": data.info.get("history_pairs"), "day_pairs": data.info.get("day_pairs"),
            "positives": {p: int(part[2].sum()) for p, part in data.parts.items()}, "edges": int(data.graph.size(1)),
            "sampled_negatives": data.info.get("sampled_negatives"), "split_file": path.name}  # fmt: skip


def check_split(n) -> None:
    """On resume, the rebuilt split must equal the recorded one (the build is deterministic)."""
    saved = np.load(n.run_dir / "split.npz")
    for p, part in ads_night(n).parts.items():
        for c, t in zip("uay", part, strict=True):
            if not np.array_equal(saved[f"{p}_{c}"], t.numpy()):
                raise PipelineError(f"the rebuilt {p} split differs from the one recorded in {n.run_dir}/split.npz")


def stage_train(n, bar) -> dict[str, Any]:
    from graphrec.pipeline.runner import _seed, train_hooks
    from graphrec.tasks.ads import build_ads_model, fit_ads
    from graphrec.utils.seed import seed_everything

    cfg = n.cfg
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    data = ads_night(n)
    epochs = cfg.train.cold_epochs
    acfg = cfg.night_ads(epochs)
    ckpt_path = n.run_dir / "train.ckpt.pt"
    seed_everything(_seed(cfg.train.seed, n.date, n.generation))
    model = build_ads_model(acfg, data)
    resume, checkpoint, progress, done = train_hooks(n, bar, ckpt_path, epochs)
    t0, c0 = time.perf_counter(), time.process_time()
    res = fit_ads(data, model, acfg, progress=progress, keep_state=False, checkpoint=checkpoint,
                  checkpoint_every=cfg.train.checkpoint_every, resume=resume)  # fmt: skip
    done()
    with atomic_open(n.run_dir / "model.pt", "wb") as fh:
        torch.save(model.state_dict(), fh)
    atomic_write_json(n.run_dir / ADS_CONFIG, acfg.model_dump(mode="json"))
    ckpt_path.unlink(missing_ok=True)
    return {
        "warm_from": None, "mode": "cold", "task": "ads", "epochs": res.epochs, "budget": epochs,
        "selected_epoch": res.best_epoch, "seconds": res.seconds, "cpu_seconds": time.process_time() - c0,
        "s_per_epoch": res.s_per_epoch, "final_loss": res.history[-1]["loss"] if res.history else None,
        "valid": res.valid, "warm_start": None, "attempt_seconds": time.perf_counter() - t0,
    }  # fmt: skip


def load_candidate(n):
    """``(model, ads config)`` of the night's trained candidate."""
    from graphrec.config import AdsConfig
    from graphrec.tasks.ads import build_ads_model

    acfg = AdsConfig.model_validate_json((n.run_dir / ADS_CONFIG).read_text())
    model = build_ads_model(acfg, ads_night(n))
    model.load_state_dict(torch.load(n.run_dir / "model.pt", map_location="cpu", weights_only=True))
    return model, acfg


def stage_evaluate(n, bar) -> dict[str, Any]:
    from graphrec.pipeline.runner import FAULT_ENV
    from graphrec.pipeline.warm import published_embeddings, published_scorer
    from graphrec.serving.format import ModelFolder
    from graphrec.tasks.ads import evaluate_embeddings

    data = ads_night(n)
    model, acfg = load_candidate(n)
    e = acfg.eval
    users, ads = model.user_ad_embeddings(data.graph, data.edge_weight)
    calibrate = model.calibrate
    if os.environ.get(FAULT_ENV) == "regress":  # fault injection: a candidate that ranks at random
        g = torch.Generator().manual_seed(0)
        users, ads = torch.randn(users.shape, generator=g), torch.randn(ads.shape, generator=g)
    metrics: dict[str, Any] = {"candidate": {"holdout": _rounded(evaluate_embeddings(
        users, ads, model.scorer, data, "test", e.ks, e.ece_bins, e.chunk_size, calibrate))}}  # fmt: skip
    prod = n.production()
    if prod is not None:
        card = ModelFolder(prod.path).card
        if card.get("task") == "ads":
            log = data.log
            pu, pa = published_embeddings(prod.path, card["target"], log.user_ids or list(range(data.num_users)),
                                          log.ad_ids or list(range(data.num_ads)))  # fmt: skip
            cal = card.get("calibration") or {}
            scale, bias = float(cal.get("scale", 1.0)), float(cal.get("bias", 0.0))
            metrics["production"] = {"holdout": _rounded(evaluate_embeddings(
                pu, pa, published_scorer(prod.path), data, "test", e.ks, e.ece_bins, e.chunk_size,
                lambda s: scale * s + bias))}  # fmt: skip
            metrics["production_version"] = prod.version
        else:
            metrics["production_skipped"] = f"production v{prod.version} is a {card.get('task', 'rec')!r} model"
    atomic_write_json(n.run_dir / "metrics.json", metrics)
    return metrics


def _rounded(m: dict[str, float]) -> dict[str, Any]:
    """JSON-ready metrics: counts as integers (``users`` as the gate reads it), NaN as None."""
    out: dict[str, Any] = {}
    for k, v in m.items():
        if k in ("users", "pairs", "positives"):
            out[k] = int(v)
        else:
            out[k] = None if v != v else float(v)
    return out


def publish_files(n, staging, meta: dict[str, Any]) -> None:
    """Write the candidate's model folder and its records into ``staging`` (the registry's staging folder)."""
    from graphrec.tasks.ads import export_ads_model

    model, acfg = load_candidate(n)
    ev = n.state.stages["evaluate"]
    export_ads_model(model, ads_night(n), staging, config=acfg.model_dump(mode="json"), metrics=ev["candidate"],
                     index=n.cfg.publish.index, overwrite=True)  # fmt: skip
    atomic_write_json(staging / "metrics.json", ev)
    atomic_write_text(staging / "config.yaml", yaml.safe_dump({"pipeline": n.cfg.model_dump(mode="json"),
                                                                "ads": acfg.model_dump(mode="json")}, sort_keys=False))  # fmt: skip
    atomic_write_text(staging / "MODEL_CARD.md", model_card(n, acfg, meta))


def model_card(n, acfg, meta: dict[str, Any]) -> str:
    s = n.state.stages
    tr, ev, ing, bd = s["train"], s["evaluate"], s["ingest"], s["build"]
    ks = acfg.eval.ks
    cols = ["auc", "log_loss", "ece", *(f"{m}@{k}" for k in ks for m in ("hit", "ndcg"))]
    lines = [
        f"# {n.cfg.name}: ad targeting with {acfg.model_name} ({acfg.train.score}) for {n.date}",
        "",
        f"- Run: `{n.run_id}`",
        f"- Model: `{acfg.model_name}` on the user-item-{acfg.data.target} graph, scorer `{acfg.train.score}`, "
        f"d = {acfg.train.embedding_dim}; cold start, {tr['epochs']} epochs (budget {tr['budget']}), {tr['seconds']:.1f} s",
        f"- Data: store `{n.paths['store']}` version {ing['version']}; window ending {n.date}; {bd['users']} users, "
        f"{bd['targets']} {acfg.data.target}s, {bd['items']} other targets, {bd['train_pairs']} training pairs",
        f"- graphrec {meta.get('graphrec')}",
        "",
        "## Evaluation",
        "",
        "Held-out: a random share of each user's labelled (user, ad) pairs first seen on the night's day, never "
        "trained on (a click or conversion = 1, an impression without one = 0). AUC, log loss, ECE "
        f"({acfg.eval.ece_bins} equal-width bins) on those pairs; HR and NDCG of the full ranking of all ads, "
        "training positives masked.",
        "",
        "| model | users | " + " | ".join(cols) + " |",
        "|---|---:|" + "---:|" * len(cols),
    ]
    for who in ("candidate", "production"):
        vals = ev.get(who, {}).get("holdout")
        if vals:
            cells = ["" if vals.get(c) is None else f"{vals[c]:.4f}" for c in cols]
            lines.append(f"| {who} | {vals.get('users', 0)} | " + " | ".join(cells) + " |")
    gate = s["gate"]
    lines += ["", f"Gate: {'passed' if gate['passed'] else 'failed'} ({gate['reason']}).", ""]
    return "\n".join(lines)
