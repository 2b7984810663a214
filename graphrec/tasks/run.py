"""Any task from one config: :func:`train` and :func:`evaluate`, behind ``graphrec train`` and ``import graphrec``.

A run config is a task config (the sections of ``graphrec config MODEL --task node|rec|ads``)
plus four run keys::

    task: rec                 # rec (recommendation), ads (ad targeting), node (node classification) or
                              # encode (a user encoder: model.name is its objective, sasrec, clue, shopperbert or lmrec)
    dataset: ml-100k          # a dataset of `graphrec datasets`, or a graph-store folder (rec, ads)
    seed: 0                   # seeds the split, the initialisation and the training
    out: runs/lightgcn        # where the trained model goes (rec: a model folder for `graphrec recommend`;
                              # ads: one for `graphrec ads` and `graphrec audience`)
    model: {name: lightgcn, K: 3}
    train: {epochs: 100, lr: 0.002}

Layers, later wins: the model's preset for the task -> its section for ``dataset`` -> the
run config file -> ``--set key=value`` (run keys included, e.g. ``seed=1``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from pydantic import Field
from torch import nn

from graphrec.config import (
    AdsConfig,
    ConfigError,
    Layers,
    NodeConfig,
    RecConfig,
    Strict,
    resolve_ads_config,
    resolve_rec_config,
    validate,
)
from graphrec.config.encoder import EncoderConfig, resolve_encoder_config
from graphrec.config.presets import resolve_task_config
from graphrec.tasks.trainer import FitResult, ProgressFn
from graphrec.utils import distributed as du
from graphrec.utils.io import atomic_open, atomic_write_json, atomic_write_text
from graphrec.utils.seed import seed_everything

RUN_KEYS = ("task", "dataset", "seed", "out")
TASK_SECTIONS = {"node": ("model", "train", "data"), "rec": ("model", "train", "data", "eval"),
                 "ads": ("model", "train", "data", "eval"), "encode": ("model", "train", "data", "eval", "features")}


class RunSpec(Strict):
    """The run keys of a run config."""

    task: Literal["node", "rec", "ads", "encode"] = Field(description=(
        "node (node classification), rec (recommendation), ads (ad targeting: user -> ad click probability) or encode "
        "(a transformer user encoder whose embeddings become node features)"))
    dataset: str = Field(description="a dataset of `graphrec datasets`, or a graph-store folder (rec, ads)")
    seed: int = Field(0, description="seeds the split, the initialisation and the training")
    out: str | None = Field(None, description="where the trained model goes (rec, ads: a servable model folder; "
                            "encode: an encoder folder that a later run can warm-start from)")


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    spec: RunSpec
    config: NodeConfig | RecConfig | AdsConfig | EncoderConfig
    fit: FitResult  # metrics (``fit.valid``, ``fit.test``), epochs, seconds
    model: nn.Module  # the trained model, with the selected weights
    data: Any  # the split it was trained on (RecData), the node dataset, or (encode) the EncodeResult
    out: Path | None  # the model folder written, if any

    def __repr__(self) -> str:
        return f"TrainResult({self.spec.task} {self.config.model_name} on {self.spec.dataset}: {self.fit!r}" + \
            (f", written to {self.out})" if self.out else ")")


def load_run_config(config: str | os.PathLike | dict,
                    overrides: list[str] | None = None) -> tuple[RunSpec, NodeConfig | RecConfig | AdsConfig]:  # fmt: skip
    """Read a run config (a YAML path or a mapping) and resolve its task config.

    Raises:
        ConfigError: a bad file, unknown key or value; the message names the key and its source.
    """
    stack = Layers()
    if isinstance(config, dict):
        stack.add("config mapping", config)
    else:
        stack.add_file(config, "run config")
    stack.add_overrides(overrides, [*RUN_KEYS, *TASK_SECTIONS["encode"]])
    raw = stack.merged()
    spec = validate(RunSpec, {k: raw[k] for k in RUN_KEYS if k in raw}, stack)
    sections = TASK_SECTIONS[spec.task]
    extra = sorted(set(raw) - set(RUN_KEYS) - set(sections))
    if extra:
        raise ConfigError("; ".join(f"unknown config key {k!r} (from {stack.source_of([k])}) for task {spec.task!r}: "
                                    f"keys are {[*RUN_KEYS, *sections]}" for k in extra))  # fmt: skip
    model = (raw.get("model") or {}).get("name")
    if not model:
        raise ConfigError(f"the run config names no model (model.name), from {stack.layers[0][0] if stack.layers else '?'}")
    task_layers = [(src, {k: v for k, v in m.items() if k in sections}) for src, m in stack.layers]
    if spec.task == "rec":
        return spec, resolve_rec_config(str(model), _catalog_name(spec.dataset), layers=task_layers)
    if spec.task == "ads":
        return spec, resolve_ads_config(str(model), _catalog_name(spec.dataset), layers=task_layers)
    if spec.task == "encode":
        return spec, resolve_encoder_config(str(model), _catalog_name(spec.dataset), layers=task_layers)
    return spec, resolve_task_config(NodeConfig, "node", str(model), spec.dataset, layers=task_layers)


def _catalog_name(dataset: str) -> str | None:
    from graphrec.data.catalog import get_dataset, is_dataset

    return get_dataset(dataset).name if is_dataset(dataset) else None


def _digest(spec: RunSpec, cfg: NodeConfig | RecConfig | AdsConfig) -> str:
    text = json.dumps({"run": spec.model_dump(mode="json"), "config": cfg.model_dump(mode="json")}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def train(config: str | os.PathLike | dict, overrides: list[str] | None = None, *, out: str | os.PathLike | None = None,
          progress: bool | ProgressFn | None = True, resume: bool = True, checkpoint_every: int = 1) -> TrainResult:  # fmt: skip
    """Train any task from a run config (see the module docstring) and write its model.

    Args:
        config: a YAML path or a mapping.
        overrides: ``key=value`` strings layered last (``train.lr=0.01``, ``seed=1``).
        out: where the model goes (overrides the config's ``out``). ``rec``: a model folder
            (card, embeddings, index, weights) that ``graphrec recommend`` serves; ``ads``: one that
            ``graphrec ads`` and ``graphrec audience`` serve; ``node``: the
            weights, the resolved config and the metrics.
        progress: a rich bar (``True``), a callback ``(epoch, total, info)``, or None.
        resume: continue from the checkpoint that an interrupted run with the same config left
            beside ``out`` (``.<out name>.ckpt.pt``); the result equals an uninterrupted run.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) the run is data-parallel over the ranks
    (:mod:`graphrec.tasks.distributed`): every rank returns the same metrics; rank 0 alone writes the
    checkpoint (``out`` must be on storage every rank reads, to resume) and the model.
        checkpoint_every: epochs between checkpoints (only with ``out``).

    Raises:
        ConfigError: a bad config. DatasetNotAvailableError: missing data files.
        ValueError: a config the task cannot run (empty validation part with ``select: best``...).
    """
    spec, cfg = load_run_config(config, overrides)
    if out is not None:
        spec = spec.model_copy(update={"out": str(out)})
    du.init_from_env()  # under torchrun (WORLD_SIZE > 1): join the process group; otherwise nothing
    ckpt = checkpoint_path(spec)
    digest = _digest(spec, cfg)
    state = None
    if ckpt is not None and ckpt.is_file() and resume:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        if state.get("run_digest") != digest:
            raise ValueError(f"{ckpt} was left by a run with another config; delete it (or pass --no-resume), "
                             "or rerun that config to finish it")  # fmt: skip
        from graphrec.tasks.distributed import pick_rank_state

        pick_rank_state(state.get("rng_ranks"), state["rng"])  # the same number of ranks, checked before any work
        if progress is True and du.is_main():
            from graphrec.utils.console import err

            err.print(f"resuming after epoch {int(state['epoch'])} from {ckpt}")
    options: dict[str, Any] = {"progress": progress, "resume": state, "checkpoint_every": checkpoint_every}
    if ckpt is not None:
        options["checkpoint"] = lambda s: _save(ckpt, {**s, "run_digest": digest})
    if spec.task == "rec":
        result = _train_rec(spec, cfg, options)
    elif spec.task == "ads":
        result = _train_ads(spec, cfg, options)
    elif spec.task == "encode":
        result = _train_encode(spec, cfg, options)
    else:
        result = _train_node(spec, cfg, options)
    if ckpt is not None and du.is_main():
        ckpt.unlink(missing_ok=True)
    # no rank leaves (and tears down its side of the process group) while rank 0 still writes the model
    du.barrier("finishing the run")
    return result


def train_on_ray(config: str | os.PathLike | dict, overrides: list[str] | None = None, *, workers: int = 2,
                 out: str | os.PathLike | None = None, resume: bool = True, use_gpu: bool | None = None) -> dict[str, Any]:  # fmt: skip
    """:func:`train` on ``workers`` Ray Train workers (``ray.train.torch.TorchTrainer``), the same config and
    the same data-parallel semantics as ``torchrun``: Ray starts the workers and their process group (gloo, or
    NCCL with ``use_gpu``), and each worker runs :func:`train`. Connects to the cluster in ``$RAY_ADDRESS``, or
    starts a local one. Paths in the config and ``out`` must be readable by every worker (a shared file system
    on several machines); ``GRAPHREC_DATA`` and ``GRAPHREC_CACHE`` are passed to the workers.

    Returns:
        ``{"valid", "test", "best_epoch", "epochs", "s_per_epoch", "seconds", "out"}`` of rank 0.

    Raises:
        RuntimeError: Ray Train is not installed (``pip install 'graphrec[ray]'``) or a worker failed.
    """
    from graphrec.store.ingest import ray_session

    try:
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer
    except ImportError as exc:
        raise RuntimeError(f"launching on Ray needs Ray Train: pip install 'graphrec[ray]' ({exc})") from None
    if workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers}")
    # The config is resolved here first: its errors surface before Ray starts, and a relative `out` is made
    # absolute against this directory (Ray workers run elsewhere).
    spec, _ = load_run_config(config, overrides)
    if not isinstance(config, dict):
        config = str(Path(config).resolve())
    dest = out if out is not None else spec.out
    out = str(Path(dest).resolve()) if dest is not None else None
    env = {k: os.environ[k] for k in ("GRAPHREC_DATA", "GRAPHREC_CACHE") if k in os.environ}
    use_gpu = torch.cuda.is_available() if use_gpu is None else use_gpu
    storage = tempfile.mkdtemp(prefix="graphrec-ray-train-")  # Ray Train's run folder: nothing of ours goes there
    try:
        with ray_session(env_vars=env) as ray:
            have = ray.cluster_resources().get("GPU" if use_gpu else "CPU", 0)
            if have < workers:  # Ray would wait for them forever
                raise ValueError(f"{workers} Ray workers need {workers} {'GPU' if use_gpu else 'CPU'}s; the cluster "
                                 f"has {have:g}: use --ray-workers {max(int(have), 1)} or a larger cluster")  # fmt: skip
            trainer = TorchTrainer(
                _ray_train_loop,
                train_loop_config={"config": config, "overrides": list(overrides or []), "out": out, "resume": resume},
                scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu),
                run_config=RunConfig(name=f"graphrec-{os.getpid()}", storage_path=storage),
            )  # fmt: skip
            try:
                result = trainer.fit()
            except Exception as exc:  # Ray wraps worker errors in its own types; keep the worker's message
                raise RuntimeError(f"training on {workers} Ray workers failed: "
                                   f"{' '.join(str(exc).split())[:2000]}") from exc  # fmt: skip
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    return result.return_value  # rank 0's (Ray Train returns the first worker's return value)


def _ray_train_loop(loop_config: dict) -> dict[str, Any]:
    """The body of each Ray Train worker: the process group exists (Ray made it); :func:`train` joins it."""
    res = train(loop_config["config"], loop_config["overrides"], out=loop_config["out"], progress=False,
                resume=loop_config["resume"])  # fmt: skip
    fit = res.fit
    return {"valid": fit.valid, "test": fit.test, "best_epoch": fit.best_epoch, "epochs": fit.epochs,
            "s_per_epoch": fit.s_per_epoch, "seconds": fit.seconds, "out": str(res.out) if res.out else None,
            "world_size": du.world_size()}  # fmt: skip


def checkpoint_path(spec: RunSpec, out: str | os.PathLike | None = None) -> Path | None:
    """Where a run keeps its checkpoint: beside its output, ``.<out name>.ckpt.pt`` (None without ``out``)."""
    dest = Path(out) if out is not None else (Path(spec.out) if spec.out else None)
    return dest.with_name(f".{dest.name}.ckpt.pt") if dest is not None else None


def _save(path: Path, state: dict) -> None:
    with atomic_open(path, "wb") as fh:
        torch.save(state, fh)


def _train_rec(spec: RunSpec, cfg: RecConfig, options: dict) -> TrainResult:
    from graphrec.data.interactions import load_interactions
    from graphrec.serving.export import export_model
    from graphrec.tasks.link import build_rec_model, fit_link

    with du.main_first("loading the dataset"):  # rank 0 fills the dataset cache, then the others read it
        data = load_interactions(spec.dataset, cfg.data).split(cfg.data, spec.seed)
    seed_everything(spec.seed)
    model = build_rec_model(cfg, data)
    fit = fit_link(data, model, cfg, keep_state=False, **options)
    dest = None
    if spec.out and du.is_main():
        dest = export_model(model, data, spec.out, config=cfg.model_dump(mode="json"), overwrite=True, history=fit.history,
                            metrics={"valid": fit.valid, "test": fit.test, "seed": spec.seed, "best_epoch": fit.best_epoch,
                                     "epochs": fit.epochs, "dataset": spec.dataset})  # fmt: skip
    return TrainResult(spec, cfg, fit, model, data, dest)


def _train_ads(spec: RunSpec, cfg: AdsConfig, options: dict) -> TrainResult:
    from graphrec.tasks.ads import build_ads_model, export_ads_model, fit_ads, load_ad_log

    with du.main_first("loading the dataset"):  # rank 0 fills the dataset cache, then the others read it
        data = load_ad_log(spec.dataset, cfg.data).split(cfg.data, spec.seed)
    seed_everything(spec.seed)
    model = build_ads_model(cfg, data)
    fit = fit_ads(data, model, cfg, keep_state=False, **options)
    dest = None
    if spec.out and du.is_main():
        dest = export_ads_model(model, data, spec.out, config=cfg.model_dump(mode="json"), overwrite=True,
                                history=fit.history, metrics={"valid": fit.valid, "test": fit.test, "seed": spec.seed,
                                                              "best_epoch": fit.best_epoch, "epochs": fit.epochs,
                                                              "dataset": spec.dataset})  # fmt: skip
    return TrainResult(spec, cfg, fit, model, data, dest)


def _train_encode(spec: RunSpec, cfg: EncoderConfig, options: dict) -> TrainResult:
    from graphrec.tasks.encode import encode

    res = encode(spec.dataset, cfg, seed=spec.seed, out=spec.out, **options)
    return TrainResult(spec, cfg, res.fit, res.model, res, res.out)


def _train_node(spec: RunSpec, cfg: NodeConfig, options: dict) -> TrainResult:
    from graphrec.data.catalog import load_node_dataset
    from graphrec.data.planetoid import label_rate_split
    from graphrec.tasks.node import build_backbone, fit_node, num_classes

    with du.main_first("loading the dataset"):  # rank 0 fills the dataset cache, then the others read it
        data = load_node_dataset(spec.dataset)
    seed_everything(spec.seed)
    if cfg.data.label_rate is not None:
        data = label_rate_split(data, cfg.data.label_rate, spec.seed)
    model = build_backbone(cfg, data.num_features, num_classes(data))
    fit = fit_node(data, model, cfg.train, **options)
    dest = None
    if spec.out and du.is_main():
        dest = Path(spec.out)
        dest.mkdir(parents=True, exist_ok=True)
        with atomic_open(dest / "model.pt", "wb") as fh:
            torch.save(model.state_dict(), fh)
        atomic_write_text(dest / "config.yaml", yaml.safe_dump({**spec.model_dump(mode="json"),
                                                                **cfg.model_dump(mode="json")}, sort_keys=False))  # fmt: skip
        atomic_write_json(dest / "metrics.json", {"valid": fit.valid, "test": fit.test, "best_epoch": fit.best_epoch,
                                                  "epochs": fit.epochs, "s_per_epoch": fit.s_per_epoch})  # fmt: skip
    return TrainResult(spec, cfg, fit, model, data, dest)


def evaluate(model: nn.Module | str | os.PathLike, data: Any, part: str = "test", **options: Any) -> dict[str, float]:
    """Metrics of a trained model on ``part`` (``valid`` or ``test``) of ``data``.

    * recommendation: ``data`` a :class:`~graphrec.data.RecData`; ``model`` a
      :class:`~graphrec.models.BipartiteRecommender` or a model folder (rebuilt from its card's
      config and weights); full-ranking metrics (``ks``, ``metrics``, ``chunk_size`` options).
    * node classification: ``data`` a ``Data`` with masks or an ``InductiveDataset``; accuracy
      (micro-F1 when multi-label) and loss (``normalize_features`` option, default True).

    Raises:
        ValueError: an unknown part, or a model folder that does not fit ``data``.
    """
    from graphrec.data.interactions import Interactions, RecData
    from graphrec.data.ppi import InductiveDataset

    if isinstance(data, Interactions):
        raise TypeError("evaluate() needs a split of the interactions (what the model is tested on): "
                        "data.split(cfg.data, seed), e.g. run.data of graphrec.train()")  # fmt: skip
    if not isinstance(data, RecData | InductiveDataset) and not hasattr(data, "train_mask"):
        raise TypeError(f"evaluate() takes a RecData (recommendation) or a graph with train/val/test masks "
                        f"(node classification), got {type(data).__name__}")  # fmt: skip
    if isinstance(data, RecData):
        from graphrec.tasks.link import evaluate as evaluate_rec

        if not isinstance(model, nn.Module):
            model = load_rec_model(model, data)
        return evaluate_rec(model, data, part, **options)
    from graphrec.config.node import TrainConfig
    from graphrec.tasks.node import NodeTask

    if part not in ("valid", "test"):
        raise ValueError(f"part must be 'valid' or 'test', got {part!r}")
    task = NodeTask(data, TrainConfig(normalize_features=options.get("normalize_features", True)))
    return task.evaluate(model, part)  # type: ignore[arg-type]


def load_rec_model(folder: str | os.PathLike, data: Any) -> nn.Module:
    """The recommender of a model folder, rebuilt on ``data`` from its card's config and weights.

    Raises:
        ValueError: the folder holds no config, or its shapes do not fit ``data``.
    """
    from graphrec.serving.format import ModelFolder
    from graphrec.tasks.link import build_rec_model

    m = ModelFolder(folder)
    if not m.card.get("config"):
        raise ValueError(f"{m.path} holds no training config in its card; it cannot be rebuilt as a model")
    cfg = RecConfig.model_validate(m.card["config"])
    model = build_rec_model(cfg, data)
    try:
        model.load_state_dict(m.state_dict())
    except RuntimeError as exc:
        raise ValueError(f"the model at {m.path} does not fit this data ({data.num_users} users, "
                         f"{data.num_items} items): {str(exc).splitlines()[0]}") from None  # fmt: skip
    return model
