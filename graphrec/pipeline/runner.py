"""One night of the pipeline: ingest -> build -> encoders -> train -> evaluate -> gate -> publish -> retain.

:func:`run_night` is what ``graphrec pipeline run CONFIG --date D`` calls, and what
``graphrec pipeline replay`` calls night after night.

* **Idempotent**: a date that finished (published or gated) is not run again; ``force``
  runs it again from the start (a new artifact version if it publishes).
* **Resumable**: each stage records its outputs in ``runs/<date>/state.json`` once they are
  on disk; a rerun after a crash starts at the first unfinished stage. Training saves a
  checkpoint every ``train.checkpoint_every`` epochs and continues from it with the same
  result as an uninterrupted run. The ingest stage recognises its own commit in the store
  by the version's message, so a crash between the commit and the record ingests nothing twice.
* **Exclusive**: a lock refuses a second concurrent run (:class:`PipelineLockedError`).
* **Outcomes**: ``published`` (exit 0), ``gated`` (3: the candidate regressed, production
  unchanged), ``failed`` (1: the error is in the log; a rerun resumes).
"""

from __future__ import annotations

import datetime as dt
import glob
import hashlib
import json
import os
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from graphrec.pipeline.config import PipelineConfig
from graphrec.pipeline.night import (
    NightData,
    canary_pairs,
    load_or_draw_canary,
    night_split,
    rank_metrics,
)
from graphrec.pipeline.sources import (
    day_bounds,
    history_sources,
    log_signature,
    night_sources,
    single_log,
    store_schema,
)
from graphrec.pipeline.state import (
    EXIT_CODES,
    FAILED,
    GATED,
    PUBLISHED,
    STAGES,
    PipelineError,
    RunLog,
    RunState,
    now,
    pipeline_lock,
)
from graphrec.utils.faults import fault_point
from graphrec.utils.io import atomic_open, atomic_write_json, atomic_write_text

#: Crash-test hook: ``train_epoch_N`` kills the process after the checkpoint of epoch N;
#: ``after_<stage>`` after that stage's record.
FAULT_ENV = "GRAPHREC_PIPELINE_FAULT"




@dataclass
class NightResult:
    date: str
    status: str  # published | gated | failed
    exit_code: int
    skipped: bool = False  # the date had already finished; nothing was run
    artifact_version: int | None = None
    store_version: int | None = None
    warm_from: int | None = None  # artifact version the training started from (None: cold)
    metrics: dict[str, Any] = field(default_factory=dict)
    gate: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    run_dir: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_date(value: str | dt.date) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise PipelineError(f"{value!r} is not a date of the form YYYY-MM-DD ({exc})") from None


def _seed(base: int, date: dt.date, generation: int) -> int:
    digest = hashlib.sha256(f"{base}/{date.isoformat()}/{generation}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


class _Night:
    """The state shared by the stages of one night."""

    def __init__(self, cfg: PipelineConfig, date: dt.date, console: Console, progress: bool, allow_older: bool = False):
        self.cfg = cfg
        self.allow_older = allow_older
        self.date = date
        self.paths = cfg.paths_resolved
        self.run_dir = self.paths["runs"] / date.isoformat()
        self.console = console
        self.show_progress = progress
        self.state = RunState(self.run_dir, date.isoformat())
        self.log: RunLog | None = None
        self.day_start, self.day_end = day_bounds(date)
        self._inter = None
        self._inter_features: list[str] = []
        self._night: NightData | None = None
        self._rec_cfg = None
        self._registry = None
        self._ads_log = self._ads_data = None  # an ads night's AdLog and split (graphrec.pipeline.ads)

    # ------------------------------------------------------------------ shared objects
    @property
    def registry(self):
        if self._registry is None:
            from graphrec.artifacts import ArtifactRegistry

            self._registry = ArtifactRegistry(self.paths["artifacts"], keep=self.cfg.publish.keep)
        return self._registry

    @property
    def generation(self) -> int:
        return int(self.state.data.get("generation", 0))

    @property
    def run_id(self) -> str:
        return f"{self.cfg.name}/{self.date.isoformat()}/{self.generation}"

    def production(self):
        """The production artifact version, or None."""
        root = self.paths["artifacts"]
        if not root.exists():
            return None
        return self.registry.production

    def interactions(self):
        # Before the encoders stage has run, the feature tables that rec.data.features names may not exist yet (the
        # first night writes them) and nothing needs them (the split reads the events only): read without them, and
        # read again with them once the stage is recorded.
        features = list(self.cfg.rec.data.features) if "encoders" in self.state.stages else []
        if self._inter is None or self._inter_features != features:
            from graphrec.data.interactions import Interactions

            days = self.cfg.night.window_days
            start = None if days is None else self.day_end - days * 86400
            dcfg = self.cfg.rec.data.model_copy(update={"window": (start, self.day_end), "features": features})
            # The encoders stage commits a version with its feature tables (the same events): read that one when it ran.
            version = (self.state.stages.get("encoders") or {}).get("version") or self.state.stages["ingest"]["version"]
            self._inter = Interactions.from_store(self.paths["store"], dcfg, version=version)
            self._inter_features = features
            self._night = None
        return self._inter

    def night(self) -> NightData:
        inter = self.interactions()  # first: reading the interactions again resets the night's data
        if self._night is None:
            canary = None
            if self.cfg.eval.canary is not None:
                df = load_or_draw_canary(self.paths["runs"] / "canary.parquet", inter, self.day_start, self.cfg.eval.canary)
                canary = canary_pairs(df, inter)
            seed = _seed(self.cfg.train.seed, self.date, 0)
            self._night = night_split(inter, self.day_start, self.day_end, self.cfg.night.holdout, seed, canary)
        return self._night

    def emit(self, event: str, **fields: Any) -> None:
        if self.log is not None:
            self.log.write(event, **fields)


# ---------------------------------------------------------------------------- stages
def _stage_ingest(n: _Night, bar) -> dict[str, Any]:
    from graphrec.store import GraphStore, ingest

    cfg, store_path = n.cfg, n.paths["store"]
    marker = f"{cfg.name} night {n.date.isoformat()}"
    if GraphStore.exists(store_path):
        st = GraphStore(store_path)
        for m in reversed(st.log()):  # a crash after the commit and before the record
            if m.ingest is not None and m.ingest.message == marker:
                return {"version": m.version, "events": m.ingest.accepted, "read": m.ingest.read,
                        "quarantined": m.ingest.quarantined, "resumed": True}  # fmt: skip
    else:
        st = GraphStore.init(store_path, store_schema(cfg.source), exist_ok=True)
    out: dict[str, Any] = {}
    if st.version == 0:
        events, attributes = history_sources(cfg.source, n.date)
        if events or attributes:
            rep = ingest(st, events, attributes=attributes or None, message=f"{cfg.name} history before {n.date}",
                         echo=False)  # fmt: skip
            out["history"] = {"version": rep.version, "events": rep.accepted, "read": rep.read,
                              "quarantined": rep.quarantined}  # fmt: skip
    events, attributes = night_sources(cfg.source, n.date)
    signature = None
    if single_log(cfg.source):
        signature = log_signature(cfg.source)
        seen = n.paths["runs"] / "source.json"
        if not (seen.is_file() and json.loads(seen.read_text()) == signature):
            events = [f for f, _, _ in signature]
            attributes = {nt: [f for p in pats for f in sorted(glob.glob(p))] for nt, pats in cfg.source.attributes.items()}
    if not events and not any(attributes.values()):
        if signature is not None:  # one log, unchanged since it was read: tonight trains on its rows up to today
            return {**out, "version": st.version, "events": 0, "read": 0, "quarantined": 0, "unchanged_log": True}
        if not cfg.source.allow_empty:
            where = cfg.source.path.format(date=n.date.isoformat()) if cfg.source.kind == "events" else cfg.source.kind
            raise PipelineError(f"no logs for {n.date} ({where}); set source.allow_empty: true to run on old data")
        return {**out, "version": st.version, "events": 0, "read": 0, "quarantined": 0, "empty": True}
    rep = ingest(st, events, attributes={k: v for k, v in attributes.items() if v} or None, message=marker, echo=False)
    fault_point(FAULT_ENV, "ingest_committed")
    if signature is not None:  # after the commit: a crash before this line reads the log again (duplicates drop)
        atomic_write_json(n.paths["runs"] / "source.json", signature)
    return {**out, "version": rep.version, "events": rep.accepted, "read": rep.read, "quarantined": rep.quarantined,
            "duplicates": rep.duplicates, "invariant": rep.summary()}  # fmt: skip


def _stage_build(n: _Night, bar) -> dict[str, Any]:
    if n.cfg.ads is not None:
        from graphrec.pipeline.ads import stage_build

        return stage_build(n, bar)
    night = n.night()
    d = night.data
    split = d.split
    path = n.run_dir / "split.npz"
    with atomic_open(path, "wb") as fh:
        np.savez(fh, train=split.train.numpy(), valid=split.valid.numpy(), test=split.test.numpy(),
                 canary=night.canary.numpy())  # fmt: skip
    return {"users": d.num_users, "targets": d.num_items, **night.info, "split_file": path.name}


def _stage_encoders(n: _Night, bar) -> dict[str, Any]:
    """Train the user encoder on the behaviours before the night (warm-started from the last night's encoder, from
    scratch every ``encoders.full_every`` nights) and write its feature tables into the store as a new version;
    the night's training then reads that version (the same events, plus the tables)."""
    ecfg = n.cfg.encoders
    if not ecfg.enabled:
        return {"skipped": "no encoder configured"}
    from graphrec.encoders import from_store
    from graphrec.store import GraphStore
    from graphrec.tasks.encode import (
        build_encoder_model,
        embed_users,
        encoder_tokenizer,
        fit_encoder,
        item_vectors,
        save_encoder,
        warm_start,
        write_feature_tables,
    )
    from graphrec.utils.seed import seed_everything

    store = GraphStore(n.paths["store"])
    done = sorted(k for k, e in store.features().items() if e.meta.get("run") == n.run_id)
    if done:  # a crash after the commit and before the record
        return {"version": store.version, "tables": done, "resumed": True}
    state_path = n.paths["runs"] / "encoder.json"
    last = json.loads(state_path.read_text()) if state_path.is_file() else {}
    last_full = dt.date.fromisoformat(last["last_full"]) if last.get("last_full") else None
    full = (last_full is None or not last.get("folder") or not Path(last["folder"]).is_dir()
            or (ecfg.full_every > 0 and (n.date - last_full).days >= ecfg.full_every))  # fmt: skip
    epochs = ecfg.cold_epochs if full else ecfg.warm_epochs
    cfg = n.cfg.night_encoder(epochs)
    if n.cfg.train.threads:
        torch.set_num_threads(n.cfg.train.threads)
    version = n.state.stages["ingest"]["version"]
    d = cfg.data
    # Only behaviours before the night, and never a canary pair: nothing the night evaluates reaches the encoder.
    seqs = from_store(store, version=version, target_types=d.target_types, event_types=d.event_types,
                      window=(d.window[0] if d.window else None, n.day_start))  # fmt: skip
    if len(seqs) == 0:  # the first night of a pipeline without history (source.history)
        n.console.print(f"[yellow]encoders: no behaviour before {n.date} to train on; no feature table written")
        return {"skipped": f"no behaviour before {n.date}"}
    canary = n.night().canary  # (user, target) pairs of the rec target type
    target = n.cfg.rec.data.target
    if canary.numel() and target in seqs.target_types:
        held = canary[0].numpy().astype(np.int64) * (1 << 32) + canary[1].numpy().astype(np.int64)
        users = np.repeat(np.asarray(seqs.user_index), seqs.lengths)
        items = np.asarray(seqs.item_index)[seqs.item]
        of_target = np.asarray(seqs.item_type)[seqs.item] == seqs.target_types.index(target)
        seqs = seqs.filter_events(~(of_target & np.isin(users * (1 << 32) + items, held)))
    split = seqs.leave_one_out(d.min_length) if d.split == "loo" else seqs.time_cut(d.valid_start, d.test_start)
    seed_everything(_seed(n.cfg.train.seed, n.date, n.generation) ^ 0x5EED)
    model = build_encoder_model(cfg, seqs, None if full else encoder_tokenizer(last["folder"]))
    warm = None
    if not full:
        warm = warm_start(model, seqs, last["folder"])
    task = bar.add_task("encoder", total=epochs, info="") if bar is not None else None

    def progress(epoch, total, info):
        if task is not None:
            bar.update(task, completed=epoch, info=f"loss {info['loss']:.4f}")

    fit, etask = fit_encoder(seqs, split, model, cfg, seed=n.cfg.train.seed, progress=progress)
    if task is not None:
        bar.remove_task(task)
    users = embed_users(model, seqs)
    items = item_vectors(model)
    folder = n.run_dir / "encoder"
    save_encoder(model, seqs, cfg, folder, {"valid": fit.valid, "epochs": fit.epochs, "full": full})
    tables, store_version = write_feature_tables(
        store, seqs, users, items, cfg, {"run": n.run_id, "night": n.date.isoformat(), "full_retrain": full})
    atomic_write_json(state_path, {"last_full": (n.date if full else last_full).isoformat(), "folder": str(folder)})
    return {"version": store_version, "tables": tables, "objective": cfg.model_name, "full_retrain": full,
            "epochs": fit.epochs, "users": int(users.shape[0]), "behaviours": int(seqs.num_events),
            "valid": {k: v for k, v in fit.valid.items() if k != "users"}, "s_per_epoch": fit.s_per_epoch,
            "tokens_per_s": float(np.mean(etask.tokens_per_s or [0.0])), "warm_start": warm}  # fmt: skip


def _check_split(n: _Night) -> None:
    """On resume, the rebuilt split must equal the recorded one (the build is deterministic)."""
    if n.cfg.ads is not None:
        from graphrec.pipeline.ads import check_split

        return check_split(n)
    saved = np.load(n.run_dir / "split.npz")
    s = n.night().data.split
    for part in ("train", "valid", "test"):
        if not np.array_equal(saved[part], getattr(s, part).numpy()):
            raise PipelineError(f"the rebuilt {part} split differs from the one recorded in {n.run_dir}/split.npz")


def train_hooks(n: _Night, bar, ckpt_path: Path, epochs: int) -> tuple[dict | None, Callable, Callable, Callable]:
    """The training wiring every pipeline task shares: ``(resume, checkpoint, progress, done)``: the checkpoint
    to resume from (None without one), the checkpoint writer (atomic, with a fault point after each epoch), the
    trainer's progress callback (the bar's ``train`` task), and ``done()``, which removes that task."""
    resume = torch.load(ckpt_path, map_location="cpu", weights_only=True) if ckpt_path.is_file() else None
    if resume is not None:
        n.emit("train_resume", epoch=int(resume["epoch"]))
    task = bar.add_task("train", total=epochs, info="") if bar is not None else None
    if task is not None and resume is not None:
        bar.update(task, completed=int(resume["epoch"]))

    def checkpoint(state: dict) -> None:
        with atomic_open(ckpt_path, "wb") as fh:
            torch.save(state, fh)
        fault_point(FAULT_ENV, f"train_epoch_{state['epoch']}")

    def progress(epoch, total, info):
        if task is not None:
            extra = f"loss {info['loss']:.4f}" + (f"  valid {info['valid']:.4f}" if "valid" in info else "")
            bar.update(task, completed=epoch, info=extra)

    def done() -> None:
        if task is not None:
            bar.remove_task(task)

    return resume, checkpoint, progress, done


def _stage_train(n: _Night, bar) -> dict[str, Any]:
    from graphrec.pipeline.warm import warm_start
    from graphrec.tasks.link import build_rec_model, fit_link
    from graphrec.tasks.optim import RowLRScale
    from graphrec.utils.seed import seed_everything

    cfg = n.cfg
    if cfg.ads is not None:
        from graphrec.pipeline.ads import stage_train

        return stage_train(n, bar)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    night = n.night()
    data = night.data
    start_path = n.run_dir / "train.start.json"
    ckpt_path = n.run_dir / "train.ckpt.pt"
    if start_path.is_file():  # resuming: the same start as the interrupted attempt
        start = json.loads(start_path.read_text())
    else:
        prod = n.production() if cfg.train.mode == "warm" else None
        start = {"warm_from": prod.version if prod is not None else None,
                 "warm_path": str(prod.path) if prod is not None else None}  # fmt: skip
        atomic_write_json(start_path, start)
    warm = start["warm_from"] is not None
    epochs = cfg.warm.epochs if warm else cfg.train.cold_epochs
    rcfg = cfg.night_rec(warm, epochs)
    seed_everything(_seed(cfg.train.seed, n.date, n.generation))
    model = build_rec_model(rcfg, data)
    report = None
    rows_path = n.run_dir / "new_rows.npy"
    if warm and not ckpt_path.is_file():
        src = n.interactions()
        ws = warm_start(model, Path(start["warm_path"]), src.user_ids or list(range(data.num_users)),
                        src.item_ids or list(range(data.num_items)), cfg.rec.data.target,
                        train_pairs=data.train if cfg.warm.fold_in else None)  # fmt: skip
        report = ws.as_dict()
        with atomic_open(rows_path, "wb") as fh:
            np.save(fh, ws.new_rows)
    row_lr = None
    if warm and cfg.warm.new_rows_lr is not None and model.embedding is not None:
        rows = torch.from_numpy(np.load(rows_path))
        row_lr = [RowLRScale(model.embedding.weight, rows, cfg.warm.new_rows_lr / rcfg.train.lr)]
    resume, checkpoint, progress, done = train_hooks(n, bar, ckpt_path, epochs)
    t0, c0 = time.perf_counter(), time.process_time()
    res = fit_link(data, model, rcfg, progress=progress, keep_state=False, checkpoint=checkpoint,
                   checkpoint_every=cfg.train.checkpoint_every, resume=resume, row_lr=row_lr)  # fmt: skip
    done()
    with atomic_open(n.run_dir / "model.pt", "wb") as fh:
        torch.save(model.state_dict(), fh)
    atomic_write_json(n.run_dir / "rec_config.json", rcfg.model_dump(mode="json"))
    ckpt_path.unlink(missing_ok=True)
    return {
        "warm_from": start["warm_from"],
        "mode": "warm" if warm else "cold",
        "epochs": res.epochs,
        "budget": epochs,
        "selected_epoch": res.best_epoch,
        "seconds": res.seconds,  # the whole fit (validation included), over all attempts
        "cpu_seconds": time.process_time() - c0,  # this attempt's CPU time (all threads), less load-sensitive
        "s_per_epoch": res.s_per_epoch,
        "final_loss": res.history[-1]["loss"] if res.history else None,
        "valid": res.valid,
        "warm_start": report,
        "attempt_seconds": time.perf_counter() - t0,
    }


def _load_candidate(n: _Night):
    from graphrec.config import RecConfig
    from graphrec.tasks.link import build_rec_model

    data = n.night().data
    rcfg = RecConfig.model_validate_json((n.run_dir / "rec_config.json").read_text())
    model = build_rec_model(rcfg, data)
    model.load_state_dict(torch.load(n.run_dir / "model.pt", map_location="cpu", weights_only=True))
    return model, rcfg, model.embeddings(data.graph)


def _stage_evaluate(n: _Night, bar) -> dict[str, Any]:
    from graphrec.pipeline.warm import published_embeddings, published_scorer

    cfg = n.cfg
    if cfg.ads is not None:
        from graphrec.pipeline.ads import stage_evaluate

        return stage_evaluate(n, bar)
    night = n.night()
    model, _, (u, i) = _load_candidate(n)
    if os.environ.get(FAULT_ENV) == "regress":  # fault injection: a candidate that ranks at random
        g = torch.Generator().manual_seed(0)
        u, i = torch.randn(u.shape, generator=g), torch.randn(i.shape, generator=g)
    sets = ["holdout"] + (["canary"] if cfg.eval.canary is not None else [])
    ks = cfg.rec.eval.ks
    metrics: dict[str, Any] = {"candidate": {s: rank_metrics(u, i, night, s, ks, model.scorer) for s in sets}}
    prod = n.production()
    if prod is not None:
        src = n.interactions()
        pu, pi = published_embeddings(prod.path, cfg.rec.data.target, src.user_ids or list(range(src.num_users)),
                                      src.item_ids or list(range(src.num_items)))  # fmt: skip
        scorer = published_scorer(prod.path)
        metrics["production"] = {s: rank_metrics(pu, pi, night, s, ks, scorer) for s in sets}
        metrics["production_version"] = prod.version
    atomic_write_json(n.run_dir / "metrics.json", metrics)
    return metrics


def _stage_gate(n: _Night, bar) -> dict[str, Any]:
    g = n.cfg.gate
    m = n.state.stages["evaluate"]
    if "production" not in m:
        return {"passed": True, "checks": [], "reason": "no production model yet"}
    prod = n.production()
    later = prod.meta.get("date") if prod is not None else None
    if later and later > n.date.isoformat() and not n.allow_older:
        return {"passed": False, "checks": [], "reason": (
            f"production v{prod.version} was trained through {later}, after this night ({n.date}): a model of "
            "less data is not promoted (pipeline run --allow-older promotes it)")}  # fmt: skip
    checks, passed = [], True
    for s in g.sets:
        cand, prod = m["candidate"].get(s, {}), m["production"].get(s, {})
        users = int(cand.get("users", 0))
        if users < g.min_users or g.metric not in cand:
            checks.append({"set": s, "users": users, "gated": False,
                           "reason": f"{users} evaluated users < gate.min_users {g.min_users}"})  # fmt: skip
            continue
        c, p = float(cand[g.metric]), float(prod[g.metric])
        ok = c >= (1 - g.tolerance) * p
        passed &= ok
        checks.append({"set": s, "users": users, "gated": True, "candidate": c, "production": p,
                       "threshold": (1 - g.tolerance) * p, "passed": ok})  # fmt: skip
    failed = [c["set"] for c in checks if c.get("gated") and not c["passed"]]
    reason = (f"{g.metric} regressed beyond {g.tolerance:.0%} on {', '.join(failed)}" if failed
              else f"{g.metric} within {g.tolerance:.0%} of production v{m['production_version']} or better")  # fmt: skip
    ref = _reference(n)
    cand = m["candidate"].get("canary", {})
    if ref is not None and g.metric in cand and int(cand.get("users", 0)) >= g.min_users:
        c, bound = float(cand[g.metric]), (1 - g.reference_tolerance) * ref["value"]
        ok = c >= bound
        checks.append({"set": "canary vs reference", "users": int(cand["users"]), "gated": True, "candidate": c,
                       "production": ref["value"], "threshold": bound, "passed": ok})  # fmt: skip
        if not ok:
            passed = False
            drift = (f"canary {g.metric} {c:.4f} is {1 - c / ref['value']:.1%} below the {g.reference} published "
                     f"model's {ref['value']:.4f} (v{ref['version']}, {ref['date']}; gate.reference_tolerance "
                     f"{g.reference_tolerance:.0%})")  # fmt: skip
            reason = drift if not failed else f"{reason}; {drift}"
    return {"passed": passed, "checks": checks, "reason": reason}


REFERENCE = "reference.json"


def _reference(n: _Night) -> dict[str, Any] | None:
    """The gate's fixed reference on the canary set (``runs/reference.json``), when it applies."""
    g = n.cfg.gate
    path = n.paths["runs"] / REFERENCE
    if g.reference == "none" or not path.is_file():
        return None
    ref = json.loads(path.read_text())
    return ref if ref.get("metric") == g.metric and ref.get("mode") == g.reference else None


def _update_reference(n: _Night, version: int) -> None:
    """After a publish: the first published canary score (``first``) or the best so far (``best``)."""
    g = n.cfg.gate
    value = n.state.stages["evaluate"]["candidate"].get("canary", {}).get(g.metric)
    if g.reference == "none" or value is None:
        return
    ref = _reference(n)
    if ref is None or (g.reference == "best" and float(value) > ref["value"]):
        atomic_write_json(n.paths["runs"] / REFERENCE, {"metric": g.metric, "mode": g.reference, "value": float(value),
                                                        "version": version, "date": n.date.isoformat()})  # fmt: skip


def _model_card(n: _Night, version_meta: dict[str, Any]) -> str:
    s = n.state.stages
    tr, ev, ing, bd = s["train"], s["evaluate"], s["ingest"], s["build"]
    ks = n.cfg.rec.eval.ks
    lines = [
        f"# {n.cfg.name}: {n.cfg.rec.model_name} for {n.date}",
        "",
        f"- Run: `{n.run_id}`, created {now()}",
        f"- Model: `{n.cfg.rec.model_name}` on the user-{n.cfg.rec.data.target} graph, "
        f"{'warm start from artifact v' + str(tr['warm_from']) if tr['warm_from'] is not None else 'cold start'}; "
        f"{tr['epochs']} epochs (budget {tr['budget']}), {tr['seconds']:.1f} s",
        f"- Data: store `{n.paths['store']}` version {ing['version']}; window ending {n.date} "
        f"({'all history' if n.cfg.night.window_days is None else str(n.cfg.night.window_days) + ' days'}); "
        f"{bd['users']} users, {bd['targets']} {n.cfg.rec.data.target}s, {bd['train_pairs']} training pairs",
        f"- Lineage: parent artifact {('v' + str(tr['warm_from'])) if tr['warm_from'] is not None else 'none'}; "
        f"production when evaluated: {('v' + str(ev.get('production_version'))) if 'production' in ev else 'none'}",
        f"- graphrec {version_meta.get('graphrec')}",
        "",
        "## Evaluation",
        "",
        "Held-out: a random share of each user's pairs of the night's day, never trained on. "
        "Canary: fixed pairs of fixed users, frozen on the first night and never trained on. "
        "Full ranking over all targets, training (and validation) pairs masked.",
        "",
        "| set | model | users | " + " | ".join(f"{m}@{k}" for k in ks for m in ("recall", "ndcg")) + " |",
        "|---|---|---:|" + "---:|" * (2 * len(ks)),
    ]
    for who in ("candidate", "production"):
        for set_name, vals in ev.get(who, {}).items():
            cells = [f"{vals.get(f'{m}@{k}', float('nan')):.4f}" for k in ks for m in ("recall", "ndcg")]
            lines.append(f"| {set_name} | {who} | {vals.get('users', 0)} | " + " | ".join(cells) + " |")
    gate = s["gate"]
    lines += ["", f"Gate: {'passed' if gate['passed'] else 'failed'} ({gate['reason']}).", ""]
    return "\n".join(lines)


def _stage_publish(n: _Night, bar) -> dict[str, Any]:
    from graphrec import __version__
    from graphrec.serving.export import export_model

    reg = n.registry
    found = reg.find(run_id=n.run_id)
    if found:  # a crash after the version was moved into place
        av = found[-1]
        if reg.production is None or reg.production.version != av.version:
            reg.promote(av.version, reason=f"{n.run_id} (resumed)")
        _update_reference(n, av.version)
        return {"version": av.version, "path": str(av.path), "resumed": True}
    staging = reg.staging_dir(n.run_id.replace("/", "_"))
    s = n.state.stages
    meta = {
        "run_id": n.run_id,
        "name": n.cfg.name,
        "date": n.date.isoformat(),
        "model": n.cfg.rec.model_name if n.cfg.ads is None else n.cfg.night_ads(1).model_name,
        "task": "rec" if n.cfg.ads is None else "ads",
        "store": str(n.paths["store"]),
        "store_version": s["ingest"]["version"],
        "parent": s["train"]["warm_from"],
        "mode": s["train"]["mode"],
        "metrics": {k: v for k, v in s["evaluate"].items() if k in ("candidate",)},
        "graphrec": __version__,
    }
    if n.cfg.ads is not None:
        from graphrec.pipeline.ads import publish_files

        publish_files(n, staging, meta)
    else:
        model, rcfg, _ = _load_candidate(n)
        export_model(model, n.night().data, staging, config=rcfg.model_dump(mode="json"),
                     metrics=s["evaluate"]["candidate"], index=n.cfg.publish.index, overwrite=True)  # fmt: skip
        atomic_write_json(staging / "metrics.json", s["evaluate"])
        atomic_write_text(staging / "config.yaml", yaml.safe_dump({"pipeline": n.cfg.model_dump(mode="json"),
                                                                    "rec": rcfg.model_dump(mode="json")}, sort_keys=False))  # fmt: skip
        atomic_write_text(staging / "MODEL_CARD.md", _model_card(n, meta))
    av = reg.publish(staging, meta, promote=True, reason=n.run_id)
    _update_reference(n, av.version)
    return {"version": av.version, "path": str(av.path)}


def _stage_retain(n: _Night, bar) -> dict[str, Any]:
    if "publish" not in n.state.stages:
        return {"removed": []}
    return {"removed": list(n.registry.prune(n.cfg.publish.keep))}


STAGE_FUNCS = {
    "ingest": _stage_ingest,
    "build": _stage_build,
    "encoders": _stage_encoders,
    "train": _stage_train,
    "evaluate": _stage_evaluate,
    "gate": _stage_gate,
    "publish": _stage_publish,
    "retain": _stage_retain,
}
assert tuple(STAGE_FUNCS) == STAGES


# ---------------------------------------------------------------------------- the night
def _result(n: _Night, status: str, *, skipped: bool = False, error: str | None = None,
            seconds: float = 0.0) -> NightResult:  # fmt: skip
    s = n.state.stages
    ev = s.get("evaluate", {})
    return NightResult(
        date=n.date.isoformat(), status=status, exit_code=EXIT_CODES[status], skipped=skipped,
        artifact_version=s.get("publish", {}).get("version"),
        store_version=s.get("ingest", {}).get("version"),
        warm_from=s.get("train", {}).get("warm_from"),
        metrics={k: v for k, v in ev.items()}, gate=s.get("gate", {}),
        train={k: v for k, v in s.get("train", {}).items() if k != "warm_start"},
        stage_seconds=dict(n.state.data.get("stage_seconds", {})),
        seconds=seconds, error=error, run_dir=str(n.run_dir),
    )  # fmt: skip


def run_night(cfg: PipelineConfig, date: str | dt.date, *, force: bool = False, console: Console | None = None,
              progress: bool = True, allow_older: bool = False) -> NightResult:  # fmt: skip
    """Run (or resume) the night ``date``; see the module docstring. Never raises for a failed
    stage: the result says ``failed`` and names the error. Raises :class:`PipelineLockedError`
    when another run holds the lock.

    A night earlier than the production model's is gated (production trained on more data
    stays) unless ``allow_older``."""
    date = parse_date(date)
    console = console or Console(stderr=True)
    paths = cfg.paths_resolved
    with pipeline_lock(paths["runs"], date.isoformat()):
        n = _Night(cfg, date, console, progress, allow_older)
        force = force or (allow_older and n.state.status == GATED)  # a night gated for its date runs again
        if n.state.status in (PUBLISHED, GATED) and not force:
            return _result(n, n.state.status, skipped=True)
        if force and n.state.stages:
            n.state.set(generation=n.generation + 1)
            n.state.reset()
            for f in ("train.start.json", "train.ckpt.pt"):
                (n.run_dir / f).unlink(missing_ok=True)
        attempt = int(n.state.data.get("attempts", 0)) + 1
        n.state.set(attempts=attempt, status="running", started_at=now())
        n.log = RunLog(n.run_dir / "log.jsonl", attempt)
        n.emit("run_start", date=date.isoformat(), name=cfg.name, force=force, pid=os.getpid(),
               resume_from=next((s for s in STAGES if not n.state.done(s)), None))  # fmt: skip
        t_night = time.perf_counter()
        stage_seconds = dict(n.state.data.get("stage_seconds", {}))
        with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), TextColumn("{task.fields[info]}"), console=console,
                      disable=not progress, transient=True) as bar:  # fmt: skip
            stages_task = bar.add_task(f"{cfg.name} {date}", total=len(STAGES), info="")
            for stage in STAGES:
                if n.state.done(stage):
                    if stage == "build":
                        _check_split(n)
                    n.emit("stage_skip", stage=stage, reason="finished by an earlier attempt")
                    bar.advance(stages_task)
                    continue
                if stage == "publish" and not n.state.stages["gate"]["passed"]:
                    n.state.record(stage, {"skipped": "gated"})
                    n.emit("stage_skip", stage=stage, reason="gated")
                    bar.advance(stages_task)
                    continue
                bar.update(stages_task, info=stage)
                n.emit("stage_start", stage=stage)
                t0 = time.perf_counter()
                try:
                    outputs = STAGE_FUNCS[stage](n, bar)
                except Exception as exc:  # a failed night is recorded, not raised
                    secs = time.perf_counter() - t0
                    msg = f"{stage}: {type(exc).__name__}: {exc}"
                    n.emit("stage_error", stage=stage, seconds=secs, error=msg, traceback=traceback.format_exc())
                    n.state.set(status=FAILED, failed_stage=stage, error=msg, finished_at=now())
                    n.emit("run_end", status=FAILED, seconds=time.perf_counter() - t_night)
                    return _result(n, FAILED, error=msg, seconds=time.perf_counter() - t_night)
                secs = time.perf_counter() - t0
                stage_seconds[stage] = stage_seconds.get(stage, 0.0) + secs
                n.state.data["stage_seconds"] = stage_seconds
                n.state.record(stage, outputs)
                n.emit("stage_end", stage=stage, seconds=secs, outputs=outputs)
                fault_point(FAULT_ENV, f"after_{stage}")
                bar.advance(stages_task)
        status = PUBLISHED if n.state.stages["gate"]["passed"] else GATED
        n.state.set(status=status, finished_at=now(), failed_stage=None, error=None)
        n.emit("run_end", status=status, seconds=time.perf_counter() - t_night)
        # the stage checkpoints served their purpose; the run record and metrics stay
        for f in ("train.ckpt.pt",):
            (n.run_dir / f).unlink(missing_ok=True)
        return _result(n, status, seconds=time.perf_counter() - t_night)


def remove_run(cfg: PipelineConfig, date: str | dt.date) -> None:
    """Forget the record of ``date`` (its store versions and artifacts stay)."""
    shutil.rmtree(cfg.paths_resolved["runs"] / parse_date(date).isoformat(), ignore_errors=True)
