"""The optimizer factory: Adam, AdamW or geoopt's RiemannianAdam, with weight-decay scopes and
per-row learning rates.

:func:`build_optimizer` is the one place an optimizer is made. ``optimizer: auto`` gives
geoopt's ``RiemannianAdam`` when the model holds manifold parameters
(``geoopt.ManifoldParameter``, which keep their constraint out of the model code) and
Adam otherwise; plain parameters of a Riemannian optimizer are updated as Euclidean ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

OPTIMIZERS = ("auto", "adam", "adamw", "riemannian_adam")


def is_manifold_parameter(p: Tensor) -> bool:
    """A geoopt ``ManifoldParameter`` (checked without importing geoopt for Euclidean models)."""
    if not type(p).__module__.startswith("geoopt"):
        return False
    import geoopt

    return isinstance(p, geoopt.ManifoldParameter)


def _first_layer(model: nn.Module) -> nn.Module | None:
    first = getattr(model, "first_layer", None)
    if first is None and isinstance(getattr(model, "module", None), nn.Module):  # DistributedDataParallel
        first = getattr(model.module, "first_layer", None)
    return first


def param_groups(model: nn.Module, weight_decay: float, scope: str = "all") -> list[dict[str, Any]]:
    """Parameter groups with weight decay on ``scope``: ``all`` parameters, every ``non_bias``
    weight, or the ``first_layer`` only (GCN's recipe); the others get none.

    Raises:
        ValueError: ``first_layer`` scope on a model that names no first layer, or an unknown scope.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if weight_decay == 0 or scope == "all":
        return [{"params": params, "weight_decay": weight_decay}]
    if scope == "non_bias":
        decay = [p for n, p in model.named_parameters() if p.requires_grad and not n.endswith("bias")]
    elif scope == "first_layer":
        first = _first_layer(model)
        if first is None:
            raise ValueError(f"{type(model).__name__} names no first_layer; use weight_decay_on: all or non_bias")
        decay = [p for p in first.parameters() if p.requires_grad]
    else:
        raise ValueError(f"unknown weight_decay_on {scope!r}; choose all, non_bias or first_layer")
    ids = {id(p) for p in decay}
    return [
        {"params": [p for p in params if id(p) in ids], "weight_decay": weight_decay},
        {"params": [p for p in params if id(p) not in ids], "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, name: str = "auto", lr: float = 1e-3, weight_decay: float = 0.0,
                    weight_decay_on: str = "all", curvature_lr: float | None = None) -> torch.optim.Optimizer:  # fmt: skip
    """The optimizer ``name`` (:data:`OPTIMIZERS`) over ``model``'s trainable parameters.

    ``adam`` and ``riemannian_adam`` apply ``weight_decay`` as an L2 penalty (added to the
    gradient); ``adamw`` decouples it (Loshchilov & Hutter, 2019). Learnable curvatures
    (parameters flagged ``is_curvature``, :class:`graphrec.hyperbolic.HyperbolicSpace`) form
    their own Euclidean group: learning rate ``curvature_lr`` (default ``lr``), no weight decay.

    Raises:
        ValueError: an unknown name, or ``adam``/``adamw`` for a model with manifold parameters
            (their updates would leave the manifold).
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    groups = param_groups(model, weight_decay, weight_decay_on)
    curv = {id(p) for g in groups for p in g["params"] if getattr(p, "is_curvature", False)}
    if curv:
        groups = [{**g, "params": [p for p in g["params"] if id(p) not in curv]} for g in groups]
        groups = [g for g in groups if g["params"]]
        groups.append({"params": [p for p in model.parameters() if id(p) in curv], "weight_decay": 0.0,
                       "lr": lr if curvature_lr is None else curvature_lr, "name": "curvature"})  # fmt: skip
    manifold = [p for g in groups for p in g["params"] if is_manifold_parameter(p)]
    if name == "auto":
        name = "riemannian_adam" if manifold else "adam"
    if manifold and name != "riemannian_adam":
        raise ValueError(f"{type(model).__name__} holds {len(manifold)} manifold parameter(s); {name} would move "
                         "them off their manifold: use optimizer: riemannian_adam (or auto)")  # fmt: skip
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    import geoopt

    return geoopt.optim.RiemannianAdam(groups, lr=lr)


class RowLRScale:
    """Scales the optimizer's update of some rows of a weight by a factor.

    Adam's (and SGD's) update is proportional to the learning rate, so replacing a row's
    update ``new - old`` by ``scale * (new - old)`` is the same as training that row with
    ``scale x lr``. Warm starts use it to train the rows of new users and items faster than
    the rows that start from published weights. :meth:`attach` hooks it into an optimizer's
    ``step`` (torch's step pre/post hooks), so the optimizer stays a plain optimizer.
    """

    def __init__(self, weight: Tensor, rows: Tensor, scale: float):
        self.weight, self.rows, self.scale = weight, rows.long().to(weight.device), float(scale)
        self._before: Tensor | None = None

    def attach(self, optimizer: torch.optim.Optimizer) -> list:
        """Register on ``optimizer``; returns the hook handles (``handle.remove()`` detaches)."""
        return [optimizer.register_step_pre_hook(lambda *_: self.before_step()),
                optimizer.register_step_post_hook(lambda *_: self.after_step())]  # fmt: skip

    def before_step(self) -> None:
        if self.rows.numel():
            self._before = self.weight.detach()[self.rows].clone()

    @torch.no_grad()
    def after_step(self) -> None:
        if self._before is not None:
            w = self.weight
            w[self.rows] = self._before + (w[self.rows] - self._before) * self.scale
            self._before = None


def attach_row_lr(optimizer: torch.optim.Optimizer, scales: Iterable[RowLRScale]) -> None:
    for s in scales:
        s.attach(optimizer)
