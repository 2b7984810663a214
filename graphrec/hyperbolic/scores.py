r"""Hyperbolic-distance scorers: the :class:`~graphrec.nn.score.Scorer` contract in hyperbolic space.

* :class:`HyperbolicDistanceScore` (``hyperbolic``): any backbone's Euclidean output ``[..., d]``
  is read as a tangent vector at the origin and mapped onto a :class:`~graphrec.hyperbolic.HyperbolicSpace`
  (Poincaré ball or Lorentz hyperboloid, curvature :math:`-c`, fixed or learnable) by ``expmap0``;
  the score is :math:`-d(u, i)` or :math:`-d(u, i)^2` (the geodesic distance).
* :class:`LorentzSqDistScore` (``lorentz_sqdist``): the inputs already are points on the hyperboloid
  :math:`\langle x, x\rangle_L = -1/c` (``[..., d + 1]``, e.g. the output of the ``hgcf`` backbone); the score
  is minus a squared distance: the squared Lorentzian distance of Law et al. (ICML 2019),
  :math:`\|x - y\|_L^2 = -2/c - 2\langle x, y\rangle_L`, or the squared geodesic distance
  :math:`\tfrac1c\operatorname{arcosh}^2(-c\langle x, y\rangle_L)`, which HGCF's margin loss uses.

Both rank items exactly as the Minkowski inner product :math:`\langle u, i\rangle_L` does (every one of these
distances grows as it falls), so :meth:`~graphrec.nn.score.Scorer.ip_transform` is exact
(:meth:`HyperbolicSpace.minkowski_ranking_form`) and a model trained with them is served by a plain
inner-product index. Scores over all items (``score_all``) are computed from Minkowski products in float64, in
blocks of items, so memory stays at a few ``[B, block]`` matrices and far-from-origin points lose no precision to
cancellation (:math:`x_0 y_0` and :math:`x_s \cdot y_s` are both of order :math:`e^{r}`); the evaluation
(``score_fn``) ranks by those products themselves, which order items exactly as the scores.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from geoopt.manifolds.lorentz.math import arcosh
from torch import Tensor

from graphrec.hyperbolic.manifolds import C_RANGE, MAX_DIST, HyperbolicSpace, Kind
from graphrec.nn.score import Scorer, register_scorer

#: Items per block of ``score_all`` (a few ``[B, block]`` float64 matrices at a time).
BLOCK_ITEMS = 2048


def _blocked(q: Tensor, points: Tensor, block: int, dtype: torch.dtype, fn: Callable[[Tensor], Tensor]) -> Tensor:
    """``[B, N]`` scores ``fn(q @ points.T)`` in ``dtype``, the Minkowski products computed in float64, ``block`` items
    at a time (so memory stays at a few ``[B, block]`` matrices beside the output)."""
    q = q.double()
    out = torch.empty(q.size(0), points.size(0), dtype=dtype, device=q.device)
    for start in range(0, points.size(0), block):
        out[:, start : start + block] = fn(q @ points[start : start + block].double().t())
    return out


def _geodesic(minkowski: Tensor, c: Tensor) -> Tensor:
    r"""Geodesic distances :math:`\tfrac{1}{\sqrt c}\operatorname{arcosh}(-c\langle x, y\rangle_L)` of Minkowski
    products (geoopt's float64 ``arcosh``, its argument clamped to ``>= 1``), clamped to ``[0, MAX_DIST]``."""
    c = c.to(minkowski)
    return (arcosh((-c * minkowski).clamp_min(1.0)) / c.sqrt()).clamp(0.0, MAX_DIST)


def _ranking_fn(q: Tensor, points: Tensor, block: int) -> Callable[[Tensor], Tensor]:
    """``fn(user ids [B]) -> [B, N]`` Minkowski products of the ranking form (float64 products in blocks of items,
    returned in float32: their resolution in distance, about 1e-7, is that of float32 distances beyond 1)."""
    q, points = q.double(), points.double()

    def fn(users: Tensor) -> Tensor:
        return _blocked(q[users.to(q.device)], points, block, torch.float32, lambda m: m)

    return fn


@register_scorer
class HyperbolicDistanceScore(Scorer):
    r"""Minus the hyperbolic distance of two Euclidean vectors mapped onto a hyperbolic space:
    :math:`s(u, i) = -d_c(\exp_0(u), \exp_0(i))` (``squared``: :math:`-d_c^2`).

    Inputs are ``[..., d]`` Euclidean vectors (any backbone's output), read as tangent vectors at the origin.
    Distances are geoopt's (float64 inside, clamped to ``[0, MAX_DIST]``), curvature :math:`-c`
    (:mod:`graphrec.hyperbolic.manifolds` for the conventions). Note that the ball's ``expmap0`` doubles
    distances from the origin (its conformal factor is 2 there): :math:`d(0, \exp_0(v)) = 2\|v\|` on the ball,
    :math:`\|v\|` on the hyperboloid.

    Args:
        kind: ``"lorentz"`` (default) or ``"poincare"``.
        curvature: :math:`c > 0` (the initial value when learnable).
        learnable: learn :math:`c` (softplus-parameterised and clamped to ``c_range``; it is saved in the
            model's ``state_dict`` and reloaded with the model folder).
        c_range: ``(c_min, c_max)`` of a learnable curvature.
        squared: score :math:`-d^2` instead of :math:`-d` (the same ranking; other loss gradients).

    Raises:
        ValueError: an unknown kind or a bad curvature (:class:`~graphrec.hyperbolic.HyperbolicSpace`).
    """

    name = "hyperbolic"
    block_items = BLOCK_ITEMS

    def __init__(self, kind: Kind = "lorentz", curvature: float = 1.0, learnable: bool = False,
                 c_range: tuple[float, float] | list[float] = C_RANGE, squared: bool = False):  # fmt: skip
        super().__init__()
        if not isinstance(squared, bool):
            raise ValueError(f"squared must be true or false, got {squared!r}")
        self.space = HyperbolicSpace(kind, curvature, learnable, tuple(c_range))
        self.curvature, self.squared = float(curvature), bool(squared)

    def extra_repr(self) -> str:
        return f"squared={self.squared}"

    def points(self, v: Tensor) -> Tensor:
        """Points ``[..., point_dim(d)]`` of Euclidean vectors ``v`` ``[..., d]`` (``expmap0``)."""
        return self.space.expmap0(v)

    def _from_dist(self, d: Tensor) -> Tensor:
        return -(d * d) if self.squared else -d

    def score(self, u: Tensor, i: Tensor) -> Tensor:
        return self._from_dist(self.space.dist(self.points(u), self.points(i)))

    def score_all(self, u: Tensor, items: Tensor) -> Tensor:
        c = self.space.c.detach()
        with torch.no_grad():  # rankings and serving; training goes through score()
            q, p = self.space.minkowski_form(self.points(u.double()), self.points(items.double()))
            return _blocked(q, p, self.block_items, torch.promote_types(u.dtype, items.dtype),
                            lambda m: self._from_dist(_geodesic(m, c)))  # fmt: skip

    def score_fn(self, user_emb: Tensor, item_emb: Tensor) -> Callable[[Tensor], Tensor]:
        """``fn(user ids [B]) -> [B, N]``: for evaluation, the Minkowski products of :meth:`ip_transform`, which rank
        every user's items exactly as :meth:`score_all` (no inverse hyperbolic function per pair)."""
        return _ranking_fn(*self.ip_transform(user_emb, item_emb), self.block_items)

    def ip_transform(self, u: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        """``(q [B, d + 1], x [N, d + 1])`` with :math:`q \\cdot x = \\langle \\exp_0 u, \\exp_0 i\\rangle_L` plus a constant per user
        (:meth:`HyperbolicSpace.minkowski_ranking_form`, the maps in float64), ranking exactly as :math:`-d` and :math:`-d^2`."""
        dtype = torch.promote_types(u.dtype, items.dtype)
        with torch.no_grad():
            q, p = self.space.minkowski_ranking_form(self.points(u.double()), self.points(items.double()))
        return q.to(dtype), p.to(dtype)

    def spec(self) -> dict[str, Any]:
        s = self.space
        return {"name": self.name, "kind": s.kind, "curvature": self.curvature, "learnable": s.learnable,
                "c_range": list(s.c_range), "squared": self.squared}  # fmt: skip


@register_scorer
class LorentzSqDistScore(Scorer):
    r"""Minus a squared distance of two points on the hyperboloid :math:`\langle x, x\rangle_L = -1/c` (curvature
    :math:`-c`, fixed): the score of HGCF-style models, whose backbone outputs points (``hgcf``).

    ``distance="lorentzian"`` (default): the squared Lorentzian distance (Law et al., "Lorentzian Distance
    Learning for Hyperbolic Representations", ICML 2019), :math:`s(x, y) = -\|x - y\|_L^2 = 2/c +
    2\langle x, y\rangle_L`, clamped to :math:`\le 0`; a smooth function of the Minkowski product, with no
    inverse hyperbolic function.
    ``distance="geodesic"``: the squared geodesic distance :math:`s(x, y) = -\tfrac1c\operatorname{arcosh}^2
    (-c\langle x, y\rangle_L)`, clamped at ``MAX_DIST ** 2``: what HGCF's margin ranking loss (Sun et al., WWW
    2021) is computed with in its reference code (``HGCFModel.decode``, HGCN's ``Hyperboloid.sqdist``).

    Both decrease with :math:`-\langle x, y\rangle_L`, so they rank alike and ``ip_transform`` is exact.

    Args:
        curvature: :math:`c > 0` of the points' hyperboloid (the backbone's ``model.curvature``).
        distance: ``"lorentzian"`` or ``"geodesic"``.

    Inputs: ``[..., d + 1]`` points, time coordinate first.

    Raises:
        ValueError: a curvature that is not positive, or an unknown ``distance``.
    """

    name = "lorentz_sqdist"
    block_items = BLOCK_ITEMS

    def __init__(self, curvature: float = 1.0, distance: Literal["lorentzian", "geodesic"] = "lorentzian"):
        super().__init__()
        if distance not in ("lorentzian", "geodesic"):
            raise ValueError(f"distance must be 'lorentzian' or 'geodesic', got {distance!r}")
        self.space = HyperbolicSpace("lorentz", curvature)
        self.curvature, self.distance = float(curvature), distance

    @property
    def point_curvature(self) -> float:
        """:math:`c` of the hyperboloid the inputs must lie on (checked by the recommender against its backbone)."""
        return self.curvature

    def extra_repr(self) -> str:
        return f"distance={self.distance!r}"

    def score(self, u: Tensor, i: Tensor) -> Tensor:
        if self.distance == "geodesic":
            return -self.space.sqdist(u, i)
        c = self.space.c.to(u)
        minkowski = (u * i).sum(-1) - 2 * u[..., 0] * i[..., 0]
        return (2 / c + 2 * minkowski).clamp(max=0.0)

    def score_all(self, u: Tensor, items: Tensor) -> Tensor:
        c = self.space.c.double()
        if self.distance == "geodesic":
            fn = lambda m: -_geodesic(m, c).pow(2)  # noqa: E731
        else:
            fn = lambda m: (2 / c + 2 * m).clamp(max=0.0)  # noqa: E731
        with torch.no_grad():
            q, p = self.space.minkowski_form(u, items)
            return _blocked(q, p, self.block_items, torch.promote_types(u.dtype, items.dtype), fn)

    def score_fn(self, user_emb: Tensor, item_emb: Tensor) -> Callable[[Tensor], Tensor]:
        """``fn(user ids [B]) -> [B, N]``: for evaluation, the ranking form of :meth:`ip_transform` (the Minkowski
        products :math:`\\langle u, i\\rangle_L` plus a constant per user), which
        rank every user's items exactly as :meth:`score_all`."""
        return _ranking_fn(*self.ip_transform(user_emb, item_emb), self.block_items)

    def ip_transform(self, u: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`HyperbolicSpace.minkowski_ranking_form`: :math:`q \\cdot x = \\langle u, i\\rangle_L` plus a constant per
        user, exact for both distances and precise in float32 near the origin."""
        return self.space.minkowski_ranking_form(u, items)

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "curvature": self.curvature, "distance": self.distance}
