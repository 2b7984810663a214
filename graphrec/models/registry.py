"""Backbones by name: each registers a pydantic model of its hyperparameters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, ValidationError
from torch import nn


class ModelParams(BaseModel):
    """Base of every backbone's hyperparameters; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    cls: type[nn.Module]
    params: type[ModelParams]
    propagation: bool  # follows the K-step contract (hop sampling applies)
    summary: str


MODELS: dict[str, ModelSpec] = {}


def register(name: str, params: type[ModelParams], propagation: bool = False) -> Callable:
    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        if name in MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        doc = (cls.__doc__ or "").strip().splitlines()
        MODELS[name] = ModelSpec(name, cls, params, propagation, doc[0] if doc else "")
        return cls

    return deco


class UnknownModelError(KeyError):
    """No model is registered under this name."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


def get_spec(name: str) -> ModelSpec:
    key = name.lower()
    if key not in MODELS:
        raise UnknownModelError(f"unknown model {name!r}; registered: {', '.join(sorted(MODELS))}")
    return MODELS[key]


def validate_params(name: str, params: dict) -> ModelParams:
    spec = get_spec(name)
    try:
        return spec.params(**params)
    except ValidationError as exc:
        errs = []
        for e in exc.errors():
            loc = "model." + ".".join(str(p) for p in e["loc"])
            msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
            errs.append(f"{loc}: {msg}")
        raise ValueError(f"invalid parameters for model {name!r}: " + "; ".join(errs)) from None


def build_model(name: str, in_channels: int, out_channels: int, **params) -> nn.Module:
    """Construct the backbone ``name`` for ``in_channels`` features and ``out_channels`` outputs."""
    spec = get_spec(name)
    p = validate_params(name, params)
    return spec.cls(in_channels, out_channels, **p.model_dump())
