"""Configuration of the recommendation task: pydantic models, YAML layers, ``--set`` overrides.

Layers, later wins: the defaults below (RecBole's protocol for MovieLens-100k) -> the
model's YAML in ``graphrec/configs/rec/<model>.yaml`` -> its per-dataset section -> a user
YAML file -> ``--set section.key=value`` overrides. Sections: ``model`` (the backbone's
own parameters, validated by the registry), ``train``, ``data``, ``eval``. Every key is
validated; an unknown key fails fast and names the key.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from graphrec.config import ConfigError, HopSamplingConfig, deep_merge, validate_config
from graphrec.config import apply_overrides as _apply_overrides
from graphrec.metrics import ALL_METRICS
from graphrec.models import get_spec

SECTIONS = ("model", "train", "data", "eval")
#: Rows of the benchmark that are not registry models: name -> the registry model whose config they use.
REFERENCE_MODELS = {"pyg_lightgcn": "lightgcn"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecTrainConfig(_Strict):
    loss: Literal["bpr", "bce"] = Field("bpr", description="BPR (pairwise) or binary cross-entropy on sampled negatives")
    negatives: Literal["uniform", "popularity"] = "uniform"
    num_negatives: int = Field(1, ge=1, description="negatives per positive pair")
    popularity_exponent: float = Field(0.75, ge=0, description="popularity negatives: p(i) ~ count(i)^exponent")
    exclude_positives: bool = Field(True, description="resample negatives that are training positives of the user")
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0, description="Adam weight decay on all parameters")
    reg_weight: float = Field(0.0, ge=0, description="L2 on the batch's input embeddings (LightGCN-style)")
    batch_size: int = Field(2048, ge=1, description="positive pairs per step")
    epochs: int = Field(300, ge=1)
    patience: int = Field(30, ge=1, description="evaluations without improvement before stopping")
    eval_every: int = Field(1, ge=1, description="epochs between validation evaluations")
    stop_on: str = Field("ndcg@10", description="validation metric for early stopping and model selection")
    select: Literal["best", "last"] = Field(
        "best", description="keep the weights of the best validation evaluation, or those of the last epoch"
    )
    embedding_dim: int = Field(64, ge=1)
    inputs: Literal["id", "features", "both"] = Field("id", description="ID embeddings, store features, or both")
    init: Literal["xavier_normal", "xavier_uniform", "normal"] = "xavier_normal"
    init_std: float = Field(0.1, gt=0, description="for init: normal")
    hop_sampling: HopSamplingConfig = HopSamplingConfig()
    sampler: Literal["full", "neighbor"] = Field("full", description="full-graph steps, or sampled subgraphs")
    num_neighbors: list[int] = Field([10, 10, 10], description="neighbour sampler: fan-out per hop (-1 = all)")

    @field_validator("stop_on")
    @classmethod
    def _metric(cls, value: str) -> str:
        name, _, k = value.partition("@")
        if name not in ALL_METRICS or not k.isdigit() or int(k) < 1:
            raise ValueError(f"stop_on must look like ndcg@10 (metrics: {', '.join(ALL_METRICS)}), got {value!r}")
        return value


class RecDataConfig(_Strict):
    target: str = Field("item", description="target node type to recommend (item, ad, ...)")
    event_types: list[str] | None = Field(None, description="event types that count as interactions (default: all)")
    window: tuple[str | int | None, str | int | None] | None = Field(None, description="[start, end) of the store build")
    min_interactions: int = Field(0, ge=0, description="k-core filter of the store build")
    split: Literal["random", "loo", "time"] = "random"
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    time_quantiles: tuple[float, float] = (0.8, 0.9)
    split_seed: int | None = Field(None, description="seed of the random split (default: the run's seed)")
    drop_cold_items: bool = Field(False, description="drop validation/test pairs of items without training pairs")


class RecEvalConfig(_Strict):
    ks: list[int] = Field([10, 20], description="cut-offs")
    metrics: list[str] = Field(list(ALL_METRICS))
    chunk_size: int | None = Field(None, ge=1, description="users per evaluation chunk (default: ~256 MB of scores)")

    @field_validator("metrics")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(ALL_METRICS))
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; known: {list(ALL_METRICS)}")
        return value

    @field_validator("ks")
    @classmethod
    def _ks(cls, value: list[int]) -> list[int]:
        if not value or min(value) < 1:
            raise ValueError(f"ks must be positive integers, got {value}")
        return sorted(set(value))


class RecConfig(_Strict):
    model: dict[str, Any]
    train: RecTrainConfig = RecTrainConfig()
    data: RecDataConfig = RecDataConfig()
    eval: RecEvalConfig = RecEvalConfig()

    @property
    def model_name(self) -> str:
        return self.model["name"]

    @property
    def model_params(self) -> dict[str, Any]:
        return {k: v for k, v in self.model.items() if k != "name"}

    @model_validator(mode="after")
    def _stop_metric_is_computed(self) -> RecConfig:
        name, _, k = self.train.stop_on.partition("@")
        if int(k) not in self.eval.ks or name not in self.eval.metrics:
            raise ValueError(f"train.stop_on={self.train.stop_on!r} is not among the computed metrics "
                             f"(eval.metrics={self.eval.metrics}, eval.ks={self.eval.ks})")  # fmt: skip
        return self


def rec_model_yaml(name: str) -> dict:
    """The built-in recommendation YAML of a model (``graphrec/configs/rec/<name>.yaml``)."""
    path = resources.files("graphrec.configs") / "rec" / f"{name.lower()}.yaml"
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def apply_overrides(cfg: dict, overrides: list[str]) -> dict:
    """``section.key=value`` overrides over the recommendation sections."""
    return _apply_overrides(cfg, overrides, SECTIONS)


def validate_rec_config(raw: dict) -> RecConfig:
    return validate_config(raw, RecConfig, SECTIONS)


def resolve_rec_config(
    model: str,
    dataset: str | None = None,
    overrides: list[str] | None = None,
    config_file: str | Path | None = None,
) -> RecConfig:
    """The full recommendation config of ``model`` on ``dataset`` after every layer is applied.

    ``model`` is a registered backbone or a reference row (``pyg_lightgcn``), which uses
    the config of the model it reproduces.
    """
    key = model.lower().replace("-", "_")
    name = REFERENCE_MODELS.get(key, key)
    get_spec(name)
    base = rec_model_yaml(name)
    per_dataset = base.pop("datasets", {}) or {}
    raw = deep_merge({"model": {"name": name}}, base)
    if dataset is not None:
        for ds, section in per_dataset.items():
            if ds.lower() == dataset.lower():
                raw = deep_merge(raw, section)
    if config_file is not None:
        user = yaml.safe_load(Path(config_file).read_text()) or {}
        if not isinstance(user, dict):
            raise ConfigError(f"{config_file}: expected a mapping at the top level")
        raw = deep_merge(raw, user)
    raw = apply_overrides(raw, overrides or [])
    raw["model"]["name"] = name
    return validate_rec_config(raw)
