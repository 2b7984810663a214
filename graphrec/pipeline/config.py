"""Configuration of the nightly pipeline (``pipelines/nightly.yaml``).

One YAML file describes a recurring job: where the day's logs come from, where the store,
the published artifacts and the run records live, which model is trained with which
budgets, how it is evaluated and when a candidate is published. Every key is validated;
an unknown key fails naming it. ``--set section.key=value`` overrides any key (for
example ``--set train.mode=cold`` or ``--set model.set=[train.lr=0.01]``).

Relative paths are resolved against the current working directory.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from graphrec.config import ConfigError, validation_message

SECTIONS = ("name", "source", "paths", "data", "model", "train", "eval", "gate", "publish", "encoders")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceConfig(_Strict):
    """Where a night's events come from."""

    kind: Literal["events", "movielens-100k"] = Field(
        "events", description="log files in the store's schema, or MovieLens-100k replayed day by day"
    )
    path: str | None = Field(
        None,
        description="events: file pattern with {date} (YYYY-MM-DD), e.g. logs/{date}/*.parquet; "
        "movielens-100k: the ml-100k folder (default: the data root's copy)",
    )
    history: list[str] = Field(
        [], description="events: files ingested once, before the first night, into an empty store"
    )
    attributes: dict[str, list[str]] = Field({}, description="events: side tables by node type, ingested with each night")
    schema_file: str | None = Field(None, description="events: the store's log schema (YAML or JSON)")
    allow_empty: bool = Field(False, description="a night without log files commits nothing instead of failing")


class PathsConfig(_Strict):
    workdir: str = Field("results/nightly", description="base folder of the defaults below")
    store: str | None = Field(None, description="graph store folder (default: WORKDIR/store)")
    artifacts: str | None = Field(None, description="artifact registry (default: WORKDIR/artifacts)")
    runs: str | None = Field(None, description="run records and stage checkpoints (default: WORKDIR/runs)")

    def resolve(self) -> dict[str, Path]:
        base = Path(os.path.expanduser(self.workdir))
        return {
            "workdir": base,
            "store": Path(os.path.expanduser(self.store)) if self.store else base / "store",
            "artifacts": Path(os.path.expanduser(self.artifacts)) if self.artifacts else base / "artifacts",
            "runs": Path(os.path.expanduser(self.runs)) if self.runs else base / "runs",
        }


class DataConfig(_Strict):
    target: str = Field("item", description="target node type recommended (item, ad, ...)")
    event_types: list[str] | None = Field(None, description="event types that count as interactions (default: all)")
    window_days: int | None = Field(
        None, ge=1, description="train on the last N days up to the night's date (default: all history)"
    )
    min_interactions: int = Field(0, ge=0, description="k-core filter of the store build")
    holdout: tuple[float, float, float] = Field(
        (0.8, 0.1, 0.1),
        description="the night's own pairs, per user: train / validation / held-out test (older days all train)",
    )


class ModelConfig(_Strict):
    name: str = Field("lightgcn", description="registered backbone (graphrec models)")
    set: list[str] = Field([], description="overrides of its recommendation config, e.g. train.lr=0.005")
    config_file: str | None = Field(None, description="YAML layered over the backbone's recommendation config")


class TrainConfig(_Strict):
    mode: Literal["warm", "cold"] = Field(
        "warm", description="warm: start from the production model's weights; cold: retrain from scratch"
    )
    cold_epochs: int = Field(60, ge=1, description="epoch budget of a cold (re)train, and of the first night")
    warm_epochs: int = Field(15, ge=1, description="epoch budget of a warm start")
    fold_in: bool = Field(
        True, description="warm start: new users/targets start at the mean embedding of their known neighbours"
    )
    new_rows_lr: float | None = Field(
        None, gt=0, description="warm start: learning rate of the rows of new users/targets (default: the night's)"
    )
    warm_set: list[str] = Field(
        [], description="overrides of the recommendation config on warm nights only, e.g. train.lr=0.001"
    )
    select: Literal["best", "last"] = Field(
        "last", description="keep the last epoch, or the best validation evaluation (early stopping)"
    )
    patience: int = Field(10, ge=1, description="select: best — evaluations without improvement before stopping")
    eval_every: int = Field(5, ge=1, description="epochs between validation evaluations")
    checkpoint_every: int = Field(1, ge=1, description="epochs between training checkpoints (resume after a crash)")
    seed: int = Field(0, description="training seed (the night's date is mixed in)")
    threads: int | None = Field(None, ge=1, description="torch CPU threads")


class CanaryConfig(_Strict):
    users: int = Field(100, ge=1, description="users in the canary set")
    min_interactions: int = Field(10, ge=2, description="only users with at least this many pairs are drawn")
    fraction: float = Field(0.1, gt=0, lt=1, description="share of each canary user's pairs held out")
    seed: int = 0


class EvalConfig(_Strict):
    ks: list[int] = Field([10, 20])
    canary: CanaryConfig | None = Field(
        CanaryConfig(), description="fixed held-out pairs of fixed users, frozen on the first night (null: none)"
    )


class GateConfig(_Strict):
    metric: str = Field("ndcg@10", description="metric compared against the production model")
    tolerance: float = Field(0.05, ge=0, le=1, description="publish when candidate >= (1 - tolerance) x production")
    sets: list[Literal["holdout", "canary"]] = Field(["holdout", "canary"], description="evaluation sets gated on")
    min_users: int = Field(5, ge=1, description="a set with fewer evaluated users is reported but not gated on")


class PublishConfig(_Strict):
    keep: int = Field(5, ge=1, description="published versions kept (production and its rollback target always)")
    index: Literal["flat", "hnsw", "ivf"] = Field("flat", description="faiss index over the target embeddings")


class EncodersConfig(_Strict):
    enabled: bool = Field(False, description="refresh encoder node features before training")


class PipelineConfig(_Strict):
    name: str = Field("nightly", description="job name: recorded in artifacts and run records")
    source: SourceConfig = SourceConfig()
    paths: PathsConfig = PathsConfig()
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    gate: GateConfig = GateConfig()
    publish: PublishConfig = PublishConfig()
    encoders: EncodersConfig = EncodersConfig()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value or any(c in value for c in "/\\\n"):
            raise ValueError(f"name must be a non-empty single-line string without slashes, got {value!r}")
        return value

    @model_validator(mode="after")
    def _check(self) -> PipelineConfig:
        if self.source.kind == "events" and not self.source.path:
            raise ValueError("source.path is required for source.kind: events (a pattern with {date})")
        if self.source.kind == "events" and "{date}" not in (self.source.path or ""):
            raise ValueError(f"source.path must contain {{date}}, got {self.source.path!r}")
        name, _, k = self.gate.metric.partition("@")
        if not k.isdigit() or int(k) not in self.eval.ks:
            raise ValueError(f"gate.metric {self.gate.metric!r} needs its cut-off in eval.ks {self.eval.ks}")
        if abs(sum(self.data.holdout) - 1.0) > 1e-6:
            raise ValueError(f"data.holdout must sum to 1, got {self.data.holdout}")
        return self

    @property
    def paths_resolved(self) -> dict[str, Path]:
        return self.paths.resolve()


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """``section.key=value`` overrides (values parsed as YAML) on a copy of ``raw``."""
    out = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        key, text = item.split("=", 1)
        path = [p for p in key.strip().split(".") if p]
        if not path or path[0] not in SECTIONS or (path[0] != "name" and len(path) < 2):
            raise ConfigError(f"unknown config key {key!r}: keys start with one of {list(SECTIONS)}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"cannot parse the value of {key!r}: {exc}") from None
        node = out
        for p in path[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"unknown config key {key!r}")
        node[path[-1]] = value
    return out


def load_pipeline_config(path: str | os.PathLike | None, overrides: list[str] | None = None) -> PipelineConfig:
    """Read a pipeline YAML (``None``: all defaults), apply ``section.key=value`` overrides, validate."""
    raw: dict = {}
    where = "pipeline config"
    if path is not None:
        p = Path(path)
        where = str(p)
        if not p.is_file():
            raise ConfigError(f"no pipeline config at {p}")
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{p}: expected a mapping at the top level")
    raw = apply_overrides(raw, list(overrides or []))
    try:
        return PipelineConfig(**raw)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {validation_message(exc)}") from None
