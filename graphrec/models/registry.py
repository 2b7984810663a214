"""Backbones by name: each registers its class, a pydantic model of its hyperparameters and,
through class attributes of :class:`Backbone`, its capabilities.

Tasks ask the :class:`ModelSpec` what a model can do (``supports_steps``, ``needs_graph``,
``learns_inputs``, ``riemannian``), never its name; :func:`build_model` is the one
constructor, and the one place a model is wrapped in hop sampling.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import Any, ClassVar

from pydantic import ValidationError
from torch import Tensor, nn

from graphrec.models.index import INDEX, UnknownModelError
from graphrec.models.params import ModelParams
from graphrec.nn.hop_sampling import HopSampling

FLAGS = ("supports_steps", "needs_graph", "learns_inputs", "riemannian")


class Backbone(nn.Module):
    """Base of every registered model: ``forward(x [N, in], edge_index [2, E], edge_weight [E] | None)
    -> [N, out]``, plus capability flags and optional hooks.

    Capability flags (class attributes, collected into :class:`ModelSpec`):

    * ``supports_steps``: follows the K-step contract (a ``num_steps`` attribute and a
      ``steps=`` argument to ``forward``), so hop sampling applies.
    * ``needs_graph``: uses the edges; ``False`` (MF) lets a task compute only a batch's rows.
    * ``learns_inputs``: passes gradients to ``x``; ``False`` (SGC precomputes
      :math:`\\hat A^K X`) means ID embeddings cannot be learned through it.
    * ``riemannian``: holds manifold parameters (geoopt), so it needs a Riemannian optimizer.

    Hooks: ``auxiliary_loss()`` (a term of the last training forward that does not depend on
    the batch, e.g. GESM's structure regulariser) and ``batch_auxiliary_loss(groups)`` (a term
    on rows of the last training forward, e.g. XSimGCL's contrastive loss); both return
    ``None`` when the model has no such term. ``first_layer`` names the module that
    ``weight_decay_on: first_layer`` decays.
    """

    supports_steps: ClassVar[bool] = False
    needs_graph: ClassVar[bool] = True
    learns_inputs: ClassVar[bool] = True
    riemannian: ClassVar[bool] = False

    def auxiliary_loss(self) -> Tensor | None:
        return None

    def batch_auxiliary_loss(self, groups: Sequence[Tensor]) -> Tensor | None:
        return None

    @property
    def first_layer(self) -> nn.Module | None:
        return None


def has_batch_term(model: nn.Module) -> bool:
    """Whether ``model`` (or the backbone that a wrapper such as HopSampling holds) overrides
    :meth:`Backbone.batch_auxiliary_loss`, i.e. has a loss term that needs the batch's rows."""
    inner = getattr(model, "model", model) if not isinstance(model, Backbone) else model
    return isinstance(inner, Backbone) and type(inner).batch_auxiliary_loss is not Backbone.batch_auxiliary_loss


@dataclass(frozen=True)
class ModelSpec:
    name: str
    cls: type[Backbone]
    params: type[ModelParams]
    summary: str

    @property
    def supports_steps(self) -> bool:
        return self.cls.supports_steps

    @property
    def needs_graph(self) -> bool:
        return self.cls.needs_graph

    @property
    def learns_inputs(self) -> bool:
        return self.cls.learns_inputs

    @property
    def riemannian(self) -> bool:
        return self.cls.riemannian


MODELS: dict[str, ModelSpec] = {}


def register(name: str, params: type[ModelParams]) -> Callable:
    """Class decorator: register a :class:`Backbone` subclass under ``name`` with its parameter model."""

    def deco(cls: type[Backbone]) -> type[Backbone]:
        if not (isinstance(cls, type) and issubclass(cls, Backbone)):
            raise TypeError(f"{cls!r} must subclass graphrec.models.Backbone to be registered")
        if name in MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        info = INDEX.get(name)
        if info is not None:  # the index (read without torch) must say what the class says
            wrong = [f for f in FLAGS if getattr(info, f) != getattr(cls, f)]
            if wrong or info.params is not params:
                raise ValueError(f"graphrec.models.index entry of {name!r} disagrees with {cls.__name__} on "
                                 f"{wrong or ['params']}")  # fmt: skip
        doc = (cls.__doc__ or "").strip().splitlines()
        MODELS[name] = ModelSpec(name, cls, params, doc[0] if doc else "")
        return cls

    return deco


def get_spec(name: str) -> ModelSpec:
    """The spec of model ``name`` (case-insensitive); raises :class:`UnknownModelError`."""
    key = name.lower()
    if key not in MODELS and key in INDEX:
        import_module(INDEX[key].module)  # registers it
    if key not in MODELS:
        known = sorted(set(MODELS) | set(INDEX))
        raise UnknownModelError(f"unknown model {name!r}; registered: {', '.join(known)}")
    return MODELS[key]


def all_specs() -> dict[str, ModelSpec]:
    """Every model of the index, registered (their modules imported)."""
    for info in INDEX.values():
        get_spec(info.name)
    return MODELS


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


def build_model(name: str, in_channels: int, out_channels: int, hop_sampling: Mapping[str, Any] | None = None,
                **params: Any) -> nn.Module:  # fmt: skip
    """Construct the backbone ``name`` for ``in_channels`` features and ``out_channels`` outputs.

    ``hop_sampling``: options of :class:`~graphrec.nn.HopSampling` (``distribution``,
    ``granularity``, ``min_steps``, ``decay``; a mapping such as
    ``cfg.train.hop_sampling.model_dump()``); when given with ``enabled`` true (or without
    ``enabled``), the model is wrapped so that training draws its number of steps.

    Raises:
        UnknownModelError: no such model.
        ValueError: invalid parameters, or hop sampling on a model without the K-step contract.
    """
    spec = get_spec(name)
    p = validate_params(name, params)
    model = spec.cls(in_channels, out_channels, **p.model_dump())
    if hop_sampling is not None and hop_sampling.get("enabled", True):
        if not spec.supports_steps:
            raise ValueError(f"hop sampling needs a model with K propagation steps; {spec.name!r} has none "
                             f"(models that have: {', '.join(n for n, s in sorted(MODELS.items()) if s.supports_steps)})")  # fmt: skip
        opts = {k: hop_sampling[k] for k in ("distribution", "granularity", "min_steps", "decay") if k in hop_sampling}
        model = HopSampling(model, **opts)
    return model
