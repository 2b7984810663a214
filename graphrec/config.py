"""Experiment configuration: pydantic models, layered YAML, and ``--set key=value`` overrides.

Layers, later wins: built-in defaults -> the model's YAML (``graphrec/configs/models``) ->
its per-dataset section -> a user YAML file -> command-line ``--set`` overrides.
Every key is validated; an unknown key fails fast and names the key.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from graphrec.models import get_spec, validate_params


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HopSamplingConfig(_Strict):
    """Random number of propagation steps while training (propagation models only)."""

    enabled: bool = False
    distribution: Literal["uniform", "geometric", "linear"] = "uniform"
    granularity: Literal["step", "node"] = "step"
    min_steps: int = Field(1, ge=1)
    decay: float = Field(0.8, gt=0, le=1, description="for the geometric distribution")


class TrainConfig(_Strict):
    lr: float = Field(0.01, gt=0)
    weight_decay: float = Field(5e-4, ge=0)
    weight_decay_on: Literal["all", "non_bias", "first_layer"] = "all"
    epochs: int = Field(200, ge=1)
    patience: int = Field(100, ge=1)
    stop_on: Literal["loss", "acc", "acc_or_loss"] = Field(
        "acc_or_loss",
        description="acc_or_loss: patience resets when validation accuracy or loss improves; "
        "the reported epoch is the last one where both did",
    )
    normalize_features: bool = True
    batch_size: int = Field(1, ge=1, description="graphs per step in inductive training")
    hop_sampling: HopSamplingConfig = HopSamplingConfig()


class DataConfig(_Strict):
    label_rate: float | None = Field(
        None, gt=0, lt=1, description="random labelled training set of this fraction of nodes"
    )


class ExperimentConfig(_Strict):
    model: dict[str, Any]
    train: TrainConfig = TrainConfig()
    data: DataConfig = DataConfig()

    @property
    def model_name(self) -> str:
        return self.model["name"]

    @property
    def model_params(self) -> dict[str, Any]:
        return {k: v for k, v in self.model.items() if k != "name"}


SECTIONS = {"model", "train", "data"}


class ConfigError(ValueError):
    """A configuration value or key is invalid."""


def model_yaml(name: str) -> dict:
    """The built-in YAML for a model (hyperparameters from its paper)."""
    get_spec(name)
    path = resources.files("graphrec.configs") / "models" / f"{name.lower()}.yaml"
    if not path.is_file():
        return {"model": {"name": name.lower()}}
    return yaml.safe_load(path.read_text()) or {}


def deep_merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_override(item: str, sections=SECTIONS) -> tuple[list[str], Any]:
    """``"model.hidden=32"`` -> ``(["model", "hidden"], 32)``; values are parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like section.key=value")
    key, raw = item.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if len(path) < 2 or path[0] not in sections:
        raise ConfigError(f"unknown config key {key!r}: keys start with one of {sorted(sections)}")
    if path[0] == "model" and path[1] == "name":
        raise ConfigError("the model is chosen with --models, not model.name")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse the value of {key!r}: {exc}") from None
    return path, value


def apply_overrides(cfg: dict, overrides: list[str], sections=SECTIONS) -> dict:
    """Apply ``section.key=value`` overrides to a raw config mapping (a copy)."""
    out = copy.deepcopy(cfg)
    for item in overrides:
        path, value = parse_override(item, sections)
        node = out
        for p in path[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"unknown config key {'.'.join(path)!r}")
        node[path[-1]] = value
    return out


def validate_config(raw: dict, schema: type[BaseModel] = ExperimentConfig, sections=SECTIONS):
    """Validate a raw mapping (with ``model.name``) against ``schema``; errors name the key."""
    unknown = set(raw) - set(sections)
    if unknown:
        raise ConfigError(f"unknown config key(s) {sorted(unknown)}; sections are {sorted(sections)}")
    model = dict(raw.get("model") or {})
    if "name" not in model:
        raise ConfigError("config has no model.name")
    try:
        validate_params(model["name"], {k: v for k, v in model.items() if k != "name"})
    except (KeyError, ValueError) as exc:
        raise ConfigError(str(exc).strip("'\"")) from None
    try:
        return schema(**raw)
    except ValidationError as exc:
        raise ConfigError(validation_message(exc)) from None


def validation_message(exc: ValidationError) -> str:
    """A pydantic error as one line that names each bad key (``unknown config key 'x.y'``)."""
    errs = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            errs.append(f"unknown config key {loc!r}")
        else:
            errs.append(f"{loc}: {e['msg']}" if loc else e["msg"])
    return "; ".join(errs)


def resolve_config(
    model: str,
    dataset: str | None = None,
    overrides: list[str] | None = None,
    config_file: str | Path | None = None,
) -> ExperimentConfig:
    """The full configuration of ``model`` on ``dataset`` after every layer is applied."""
    base = model_yaml(model)
    per_dataset = base.pop("datasets", {}) or {}
    raw = deep_merge({"model": {"name": model.lower()}}, base)
    if dataset is not None:
        for key, section in per_dataset.items():
            if key.lower() == dataset.lower():
                raw = deep_merge(raw, section)
    if config_file is not None:
        user = yaml.safe_load(Path(config_file).read_text()) or {}
        if not isinstance(user, dict):
            raise ConfigError(f"{config_file}: expected a mapping at the top level")
        raw = deep_merge(raw, user)
    raw = apply_overrides(raw, overrides or [])
    raw["model"]["name"] = model.lower()
    return validate_config(raw)
