"""Hop sampling: draw the number of propagation steps at random while training.

The published method (Park, Shin & Kim, 2020) is described only as "randomly selects the
number of propagation steps rather than fixing it". The formulation here is ours:

* a model that follows the K-step contract (``num_steps`` attribute and a
  ``steps=`` argument to ``forward``) is wrapped by :class:`HopSampling`;
* while training, :math:`k \\sim q(k)` over :math:`\\{k_{min}, \\dots, K\\}` is drawn once per
  forward pass (``granularity="step"``) or once per node (``granularity="node"``);
* in evaluation mode the wrapped model always runs with all K steps, so predictions are
  deterministic.

Distributions: ``uniform`` (default), ``geometric`` (mass decaying with k by ``decay``),
and ``linear`` (mass growing linearly with k, favouring deep propagation).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

Distribution = Literal["uniform", "geometric", "linear"]
Granularity = Literal["step", "node"]


class HopSampler:
    """Draws step counts in ``[min_steps, max_steps]`` from a fixed categorical distribution."""

    def __init__(
        self,
        max_steps: int,
        distribution: Distribution = "uniform",
        min_steps: int = 1,
        decay: float = 0.8,
    ):
        if not 1 <= min_steps <= max_steps:
            raise ValueError(f"need 1 <= min_steps <= max_steps, got {min_steps}, {max_steps}")
        self.min_steps, self.max_steps = min_steps, max_steps
        ks = torch.arange(min_steps, max_steps + 1, dtype=torch.float)
        if distribution == "uniform":
            w = torch.ones_like(ks)
        elif distribution == "geometric":
            if not 0 < decay <= 1:
                raise ValueError(f"geometric decay must be in (0, 1], got {decay}")
            w = decay ** (ks - min_steps)
        elif distribution == "linear":
            w = ks.clone()
        else:
            raise ValueError(f"unknown hop distribution {distribution!r}; choose uniform, geometric or linear")
        self.distribution = distribution
        self.probs = w / w.sum()

    def sample(self, shape: tuple[int, ...] = (), generator: torch.Generator | None = None) -> Tensor:
        n = 1
        for s in shape:
            n *= s
        idx = torch.multinomial(self.probs, n, replacement=True, generator=generator)
        return (idx + self.min_steps).view(shape)


class HopSampling(nn.Module):
    """Wrap a K-step propagation model so that training runs with a random number of steps.

    The wrapped model must expose ``num_steps`` (its K) and accept ``steps`` in ``forward``:
    an ``int`` (every node uses k steps) or a ``LongTensor`` of shape ``[num_nodes]``.
    """

    def __init__(
        self,
        model: nn.Module,
        distribution: Distribution = "uniform",
        granularity: Granularity = "step",
        min_steps: int = 1,
        decay: float = 0.8,
    ):
        super().__init__()
        if not hasattr(model, "num_steps"):
            raise TypeError(
                f"{type(model).__name__} does not follow the K-step contract (no 'num_steps'); "
                "hop sampling applies to propagation models such as gsm, gesm, sgc, appnp, hopgcn, lightgcn"
            )
        if granularity not in ("step", "node"):
            raise ValueError(f"granularity must be 'step' or 'node', got {granularity!r}")
        self.model = model
        self.granularity = granularity
        self.sampler = HopSampler(model.num_steps, distribution, min_steps, decay)
        self.last_steps: Tensor | int | None = None

    @property
    def num_steps(self) -> int:
        return self.model.num_steps

    def draw(self, num_nodes: int) -> Tensor | int:
        if self.granularity == "node":
            return self.sampler.sample((num_nodes,))
        return int(self.sampler.sample(()))

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None, **kwargs) -> Tensor:
        if self.training:
            steps = self.draw(x.size(0))
        else:
            steps = None  # full depth: evaluation is deterministic
        self.last_steps = steps
        return self.model(x, edge_index, edge_weight, steps=steps, **kwargs)

    # the wrapped model's optional hooks (graphrec.models.Backbone), passed through
    def auxiliary_loss(self) -> Tensor | None:
        aux = getattr(self.model, "auxiliary_loss", None)
        return aux() if aux is not None else None

    def batch_auxiliary_loss(self, groups) -> Tensor | None:
        aux = getattr(self.model, "batch_auxiliary_loss", None)
        return aux(groups) if aux is not None else None

    @property
    def first_layer(self) -> nn.Module | None:
        return getattr(self.model, "first_layer", None)

    def extra_repr(self) -> str:
        return f"distribution={self.sampler.distribution!r}, granularity={self.granularity!r}, K={self.num_steps}"


def select_steps(states: list[Tensor], steps: Tensor | int | None) -> Tensor:
    """Pick, for each node, the state after its own number of steps.

    ``states[k]`` is the representation after k steps (``states[0]`` is the input). With
    ``steps=None`` the last state is returned.
    """
    if steps is None:
        return states[-1]
    if isinstance(steps, int):
        return states[steps]
    stacked = torch.stack(states, 0)  # [K+1, N, F]
    idx = steps.to(stacked.device).view(1, -1, *([1] * (stacked.dim() - 2)))
    return stacked.gather(0, idx.expand(1, *stacked.shape[1:])).squeeze(0)


def max_steps(steps: Tensor | int | None, num_steps: int) -> int:
    """Number of propagation steps to compute for a ``steps`` request."""
    if steps is None:
        return num_steps
    k = int(steps) if isinstance(steps, int) else int(steps.max())
    if not 0 <= k <= num_steps:
        raise ValueError(f"requested {k} steps, but the model has K={num_steps}")
    return k
