r"""Scorers: how a user embedding and an item embedding become a ranking score.

One :class:`Scorer` is used by the training loss, the full-ranking evaluation, the export
and the serving index, so the four cannot disagree. A scorer is an ``nn.Module`` (a
learnable scorer, such as a curvature, keeps its parameters with the model).

The contract:

* ``score(u, i)``: ``u``, ``i`` of shape ``[..., d]`` (broadcastable) -> ``[...]``;
  higher means more relevant.
* ``score_all(u, items)``: ``[B, d]`` against ``[N, d]`` -> ``[B, N]``, computed in
  blocks of items so that the intermediate memory stays bounded (``block_items``).
* ``ip_transform(u, items)``: an exact *inner-product form* of the scorer,
  ``(q [B, d'], x [N, d'])`` with ``q @ x.T`` ranking every user's items exactly as
  ``score_all`` does, so an inner-product ANN index (faiss) serves the model exactly.
  A scorer without one returns ``None``; it is then served by a brute-force scan.
* ``spec()``: a JSON-ready description that :func:`scorer_from_spec` turns back into the scorer.

Built in: :class:`DotScore` (inner product, the default), :class:`CosineScore` and
:class:`NegSquaredEuclideanScore` (``-||u - i||^2``, exact in inner-product form by the
augmentation :math:`q = [2u, -1]`, :math:`x = [i, \|i\|^2]`: :math:`q \cdot x = -\|u-i\|^2 + \|u\|^2`,
and :math:`\|u\|^2` is constant per user).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Scorers by name, for :func:`scorer_from_spec` (those of :data:`SCORER_MODULES` once imported).
SCORERS: dict[str, type[Scorer]] = {}
#: Scorers that live in other packages: name -> the module that registers it (imported on first use,
#: as the model index does for backbones).
SCORER_MODULES: dict[str, str] = {
    "hyperbolic": "graphrec.hyperbolic.scores",
    "lorentz_sqdist": "graphrec.hyperbolic.scores",
    "multi_manifold": "graphrec.hyperbolic.multi",
}
#: Every scorer name, for configs (validated without importing the modules).
SCORER_NAMES: tuple[str, ...] = ("dot", "cosine", "neg_sq_euclidean", *SCORER_MODULES)


def register_scorer(cls: type[Scorer]) -> type[Scorer]:
    """Class decorator: make ``cls`` loadable by its ``name`` from a model card."""
    if cls.name in SCORERS and SCORERS[cls.name] is not cls:
        raise ValueError(f"scorer {cls.name!r} is registered twice")
    SCORERS[cls.name] = cls
    return cls


class Scorer(nn.Module):
    """Base of every scorer; subclasses implement :meth:`score` and, when they can,
    :meth:`ip_transform`. ``score_all`` defaults to blocks of :meth:`score` over broadcast rows."""

    name: ClassVar[str] = "scorer"
    #: Items per block in :meth:`score_all` for scorers that need ``[B, block, d]`` intermediates.
    block_items: int = 4096

    def score(self, u: Tensor, i: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Scores of pairs: ``u``, ``i`` ``[..., d]`` -> ``[...]``."""
        raise NotImplementedError

    def score_all(self, u: Tensor, items: Tensor) -> Tensor:
        """Scores of every user in ``u`` ``[B, d]`` against every row of ``items`` ``[N, d]``: ``[B, N]``."""
        out = u.new_empty(u.size(0), items.size(0))
        for start in range(0, items.size(0), self.block_items):
            block = items[start : start + self.block_items]
            out[:, start : start + block.size(0)] = self.score(u.unsqueeze(1), block.unsqueeze(0))
        return out

    def ip_transform(self, u: Tensor, items: Tensor) -> tuple[Tensor, Tensor] | None:
        """``(queries [B, d'], index vectors [N, d'])`` whose inner products rank as :meth:`score_all`,
        or ``None`` when the scorer has no exact inner-product form."""
        return None

    def score_fn(self, user_emb: Tensor, item_emb: Tensor) -> Callable[[Tensor], Tensor]:
        """``fn(user ids [B]) -> [B, N]`` scores against every item (the evaluation's scorer)."""

        def fn(users: Tensor) -> Tensor:
            return self.score_all(user_emb[users], item_emb)

        return fn

    def spec(self) -> dict[str, Any]:
        """What :func:`scorer_from_spec` needs to rebuild this scorer (learned values travel
        in the model's ``state_dict``)."""
        return {"name": self.name}


@register_scorer
class DotScore(Scorer):
    r"""Inner product :math:`s(u, i) = u \cdot i` (MF, LightGCN, XSimGCL...)."""

    name = "dot"

    def score(self, u: Tensor, i: Tensor) -> Tensor:
        return (u * i).sum(-1)

    def score_all(self, u: Tensor, items: Tensor) -> Tensor:
        return u @ items.t()

    def score_fn(self, user_emb: Tensor, item_emb: Tensor) -> Callable[[Tensor], Tensor]:
        item_t = item_emb.t().contiguous()  # one transpose for every chunk of users

        def fn(users: Tensor) -> Tensor:
            return user_emb[users] @ item_t

        return fn

    def ip_transform(self, u: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        return u, items


@register_scorer
class CosineScore(Scorer):
    r"""Cosine similarity :math:`s(u, i) = u \cdot i / (\|u\| \|i\|)` (zero vectors score 0)."""

    name = "cosine"

    def score(self, u: Tensor, i: Tensor) -> Tensor:
        return (F.normalize(u, dim=-1) * F.normalize(i, dim=-1)).sum(-1)

    def score_all(self, u: Tensor, items: Tensor) -> Tensor:
        return F.normalize(u, dim=-1) @ F.normalize(items, dim=-1).t()

    def ip_transform(self, u: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        return F.normalize(u, dim=-1), F.normalize(items, dim=-1)


@register_scorer
class NegSquaredEuclideanScore(Scorer):
    r"""Negative squared Euclidean distance :math:`s(u, i) = -\|u - i\|^2` (a metric-learning score)."""

    name = "neg_sq_euclidean"

    def score(self, u: Tensor, i: Tensor) -> Tensor:
        return -(u - i).pow(2).sum(-1)

    def score_all(self, u: Tensor, items: Tensor) -> Tensor:
        # ||u||^2 - 2 u.i + ||i||^2 without a [B, N, d] intermediate
        return -(u.pow(2).sum(-1, keepdim=True) - 2 * u @ items.t() + items.pow(2).sum(-1).unsqueeze(0)).clamp(min=0)

    def ip_transform(self, u: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        q = torch.cat([2 * u, -torch.ones_like(u[:, :1])], dim=1)
        x = torch.cat([items, items.pow(2).sum(-1, keepdim=True)], dim=1)
        return q, x


def get_scorer_class(name: str) -> type[Scorer]:
    """The scorer class registered as ``name`` (importing its module when it lives elsewhere).

    Raises:
        ValueError: no such scorer.
    """
    if name not in SCORERS and name in SCORER_MODULES:
        import_module(SCORER_MODULES[name])
    if name not in SCORERS:
        raise ValueError(f"unknown scorer {name!r}; registered: {', '.join(sorted(set(SCORERS) | set(SCORER_NAMES)))}")
    return SCORERS[name]


def build_scorer(name: str, params: dict[str, Any] | None = None) -> Scorer:
    """The scorer ``name`` with constructor options ``params`` (a config's ``train.score_params``).

    Raises:
        ValueError: an unknown scorer, or options it does not take (named in the message).
    """
    cls = get_scorer_class(name)
    try:
        return cls(**(params or {}))
    except TypeError as exc:
        import inspect

        takes = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "args", "kwargs")]
        raise ValueError(f"invalid score_params for scorer {name!r}: {exc}; it takes "
                         f"{', '.join(takes) if takes else 'no options (score_params: {})'} (train.score_params "
                         "layers over the preset's: `graphrec config MODEL` shows the resolved ones)") from None  # fmt: skip


def scorer_from_spec(spec: dict[str, Any] | None) -> Scorer:
    """The scorer described by ``spec`` (a model card's ``scorer``); ``None`` means :class:`DotScore`
    (model folders written before scorers were recorded).

    Raises:
        ValueError: the name is not a registered scorer.
    """
    if not spec:
        return DotScore()
    spec = dict(spec)
    name = spec.pop("name")
    return get_scorer_class(name)(**spec)
