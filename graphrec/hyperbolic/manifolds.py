r"""Hyperbolic spaces on geoopt: the Poincaré ball and the Lorentz hyperboloid, with a fixed or learnable curvature.

**Sign convention** (one for every config and API of graphrec): ``curvature: c`` with
``c > 0`` is a space of constant sectional curvature :math:`-c`. geoopt spells it two ways,
and this module translates: ``geoopt.PoincareBall(c)`` has curvature :math:`-c` (its
stereographic ``k = -c``), and ``geoopt.Lorentz(k)`` is the hyperboloid
:math:`\langle x, x\rangle_L = -k` of curvature :math:`-1/k`, so ``k = 1/c``.

**Coordinates.** A space of dimension ``d`` takes tangent vectors at the origin as ``[..., d]``
Euclidean vectors (:meth:`HyperbolicSpace.expmap0`, :meth:`HyperbolicSpace.logmap0`). Points
are ``[..., d]`` on the ball and ``[..., d + 1]`` on the hyperboloid (the time coordinate
first); :meth:`HyperbolicSpace.point_dim` says which.

**Numerics**, as the stable hyperbolic GNN codes (HGCN, HGCF) do it:

* geoopt's own maps and distances (they clamp their arguments); nothing here re-derives
  :math:`\operatorname{arcosh}` or :math:`\operatorname{artanh}` (geoopt#227: a hand-rolled
  arcosh gave NaN under ``RiemannianAdam``);
* distances are evaluated in float64 and cast back: on the ball, geoopt clamps the
  argument of :math:`\operatorname{artanh}` to :math:`1 - 10^{-7}`, which float32 rounds to
  1 (an infinite distance); the Lorentz :math:`\operatorname{arcosh}` is float64 in geoopt already;
* distances are clamped to ``[0, max_dist]`` and squared distances likewise;
* points are re-projected onto the manifold (:meth:`HyperbolicSpace.proj`) after every
  map, and :func:`graphrec.tasks.optim.build_optimizer` trains manifold parameters with
  ``RiemannianAdam``, which retracts after each update;
* zero tangent vectors map to the origin without a NaN gradient (geoopt#243: the norm of a
  zero vector): norms are clamped below before division.

**Learnable curvature** (``learnable=True``): :math:`c = \mathrm{clamp}(\mathrm{softplus}(\rho),
c_{\min}, c_{\max})` with a free Euclidean parameter ``curvature_raw`` (:math:`\rho`), so
:math:`c` stays positive and in a documented range; the parameter is flagged ``is_curvature``,
so the optimizer factory puts it in its own parameter group (own learning rate, no weight decay).
Public results disagree on whether learning it helps, so it is off by default.
"""

from __future__ import annotations

import math
from typing import Literal

import geoopt
import torch
import torch.nn.functional as F
from geoopt.manifolds.lorentz import math as lmath
from geoopt.manifolds.stereographic import math as smath
from torch import Tensor, nn

Kind = Literal["poincare", "lorentz"]
KINDS: tuple[str, ...] = ("poincare", "lorentz")
#: Default range of a learnable curvature ``c`` (curvature ``-c``).
C_RANGE: tuple[float, float] = (1e-2, 1e2)
#: Distances are clamped to this (a distance of 50 already means ``cosh`` of ~1e21).
MAX_DIST = 50.0
#: Tangent norms are clamped to this before ``expmap0``, so ``cosh``/``sinh`` stay finite in float32.
MAX_TANGENT_NORM = 40.0
_EPS = 1e-15


def _softplus_inverse(c: float) -> float:
    return c + math.log(-math.expm1(-c))  # log(exp(c) - 1), stable for large c


class HyperbolicSpace(nn.Module):
    r"""A hyperbolic space of curvature :math:`-c`: the Poincaré ball or the Lorentz hyperboloid.

    Args:
        kind: ``"poincare"`` or ``"lorentz"`` (the hyperboloid is the more stable for deep stacks).
        curvature: :math:`c > 0` (the space's curvature is :math:`-c`); the initial value when learnable.
        learnable: learn :math:`c` (softplus-parameterised, clamped to ``c_range``).
        c_range: ``(c_min, c_max)`` of a learnable curvature.

    Raises:
        ValueError: an unknown kind, a curvature that is not positive and finite, or one outside ``c_range``,
            or a ``learnable`` that is not a bool (a YAML string such as ``"false"`` would read as true).
    """

    def __init__(self, kind: Kind = "lorentz", curvature: float = 1.0, learnable: bool = False,
                 c_range: tuple[float, float] = C_RANGE):  # fmt: skip
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown hyperbolic model {kind!r}; choose poincare or lorentz")
        c = float(curvature)
        lo, hi = (float(v) for v in c_range)
        if not (math.isfinite(c) and c > 0):
            raise ValueError(f"curvature must be positive (the space's curvature is -c), got {curvature!r}")
        if not isinstance(learnable, bool):
            raise ValueError(f"learnable must be true or false, got {learnable!r}")
        if not (0 < lo < hi):
            raise ValueError(f"c_range must satisfy 0 < c_min < c_max, got {c_range!r}")
        if learnable and not lo <= c <= hi:
            raise ValueError(f"initial curvature {c} is outside c_range {c_range!r}")
        self.kind, self.learnable, self.c_range = kind, bool(learnable), (lo, hi)
        if learnable:
            self.curvature_raw = nn.Parameter(torch.tensor(_softplus_inverse(c)))
            self.curvature_raw.is_curvature = True  # its own parameter group (graphrec.tasks.optim)
        else:
            self.register_buffer("_c", torch.tensor(c))

    def extra_repr(self) -> str:
        return f"kind={self.kind}, c={float(self.c.detach()):.4g}, learnable={self.learnable}"

    @property
    def c(self) -> Tensor:
        """The curvature magnitude :math:`c` (a 0-d tensor; the space's curvature is :math:`-c`)."""
        if self.learnable:
            return F.softplus(self.curvature_raw).clamp(*self.c_range)
        return self._c

    def _k(self, like: Tensor) -> Tensor:
        """geoopt's ``k`` for this space, in ``like``'s dtype and device."""
        c = self.c.to(like)
        return -c if self.kind == "poincare" else 1.0 / c

    def point_dim(self, dim: int) -> int:
        """Size of a point's coordinates for a ``dim``-dimensional space: ``dim`` (ball) or ``dim + 1`` (hyperboloid)."""
        return dim if self.kind == "poincare" else dim + 1

    def geoopt_manifold(self) -> geoopt.Manifold:
        """A geoopt manifold with this space's (current) curvature, e.g. for a ``ManifoldParameter``.

        Raises:
            ValueError: the curvature is learnable (a parameter's manifold must not move under it).
        """
        if self.learnable:
            raise ValueError("points stored as ManifoldParameter need a fixed curvature; with a learnable one, "
                             "store tangent vectors at the origin and map them with expmap0")  # fmt: skip
        c = float(self.c)
        return geoopt.PoincareBall(c=c) if self.kind == "poincare" else geoopt.Lorentz(k=1.0 / c)

    # -- maps ------------------------------------------------------------------------------------------------------

    def expmap0(self, v: Tensor) -> Tensor:
        """Points ``[..., point_dim(d)]`` of tangent vectors ``v`` ``[..., d]`` at the origin (projected onto the space).

        Tangent norms are clamped to :data:`MAX_TANGENT_NORM` (radius in units of :math:`1/\\sqrt{c}`)."""
        c = self.c.to(v)
        scale = MAX_TANGENT_NORM / c.sqrt()
        norm = v.norm(dim=-1, keepdim=True).clamp_min(_EPS)
        v = torch.where(norm > scale, v * (scale / norm), v)
        if self.kind == "poincare":
            k = -c
            return smath.project(smath.expmap0(v, k=k), k=k)
        k = 1.0 / c
        u = F.pad(v, (1, 0))  # the tangent space at the origin (sqrt(k), 0, ..., 0) is {u: u_0 = 0}
        return lmath.project(lmath.expmap0(u, k=k), k=k)

    def logmap0(self, x: Tensor) -> Tensor:
        """Tangent vectors ``[..., d]`` at the origin of points ``x`` ``[..., point_dim(d)]`` (inverse of :meth:`expmap0`)."""
        k = self._k(x)
        if self.kind == "poincare":
            return smath.logmap0(smath.project(x, k=k), k=k)
        return lmath.logmap0(lmath.project(x, k=k), k=k)[..., 1:]

    def proj(self, x: Tensor) -> Tensor:
        """Points ``x`` projected back onto the space (inside the ball's float-safe radius; onto the hyperboloid)."""
        k = self._k(x)
        return smath.project(x, k=k) if self.kind == "poincare" else lmath.project(x, k=k)

    def origin(self, *shape: int, like: Tensor | None = None) -> Tensor:
        """The origin ``[*shape, point_dim]`` (the last entry of ``shape`` is the space's dimension ``d``)."""
        *lead, d = shape
        out = torch.zeros(*lead, self.point_dim(d), dtype=None if like is None else like.dtype,
                          device=None if like is None else like.device)  # fmt: skip
        if self.kind == "lorentz":
            out[..., 0] = self.c.to(out).rsqrt()
        return out

    # -- distances -------------------------------------------------------------------------------------------------

    def dist(self, x: Tensor, y: Tensor) -> Tensor:
        """Geodesic distance ``[...]`` between points ``x``, ``y`` ``[..., point_dim]`` (broadcast), in units of length
        of the space (:math:`1/\\sqrt{c}` is its radius of curvature); computed in float64, clamped to ``[0, MAX_DIST]``."""
        dtype = torch.promote_types(x.dtype, y.dtype)
        xd, yd = x.double(), y.double()
        c = self.c.double()
        if self.kind == "poincare":
            d = smath.dist(smath.project(xd, k=-c), smath.project(yd, k=-c), k=-c)
        else:
            # geoopt's arcosh of -c <x, y>_L (lmath.dist), its argument clamped to >= 1: for far points the product
            # cancels (x_0 y_0 and x_s . y_s are both ~e^r) and can come out above -1/c, where arcosh is NaN
            d = lmath.arcosh((-c * lmath.inner(xd, yd)).clamp_min(1.0)) / c.sqrt()
        return d.clamp(0.0, MAX_DIST).to(dtype)

    def sqdist(self, x: Tensor, y: Tensor) -> Tensor:
        """Squared geodesic distance ``[...]`` (clamped to ``MAX_DIST ** 2``)."""
        return self.dist(x, y).pow(2)

    def to_lorentz(self, x: Tensor) -> Tensor:
        """Points on the hyperboloid ``[..., d + 1]`` of the same space (isometric; hyperboloid points pass through)."""
        if self.kind == "lorentz":
            return x
        c = self.c.to(x)
        x = smath.project(x, k=-c)
        sq = (c * x.pow(2).sum(-1, keepdim=True)).clamp(max=1 - 1e-7)
        # the ball of radius 1/sqrt(c) -> the hyperboloid <y, y>_L = -1/c (HGCN's formula, in closed form)
        return torch.cat([(1 + sq), 2 * c.sqrt() * x], dim=-1) / ((1 - sq) * c.sqrt())

    def to_poincare(self, x: Tensor) -> Tensor:
        """Points on the Poincaré ball ``[..., d]`` of the same space (for plots; ball points pass through)."""
        if self.kind == "poincare":
            return x
        # inverse of to_lorentz: x = y_s / (1 + sqrt(c) y_0), a point of the ball of radius 1/sqrt(c)
        # (geoopt's lorentz_to_poincare lands in a ball of another radius)
        return x[..., 1:] / (1 + self.c.to(x).sqrt() * x[..., :1])

    def minkowski_form(self, queries: Tensor, points: Tensor) -> tuple[Tensor, Tensor]:
        r"""``(q [B, d + 1], p [N, d + 1])`` with :math:`q \cdot p = \langle x, y\rangle_L = -x_0 y_0 + \sum_i x_i y_i`,
        the Minkowski product of the points on the hyperboloid (ball points are mapped there first, an isometry).

        For distances, in float64: near the origin the product is :math:`-1/c` plus a small term, which float32
        cannot resolve; rank with :meth:`minkowski_ranking_form` instead.
        """
        q, p = self.to_lorentz(queries), self.to_lorentz(points)
        return torch.cat([-q[..., :1], q[..., 1:]], dim=-1), p

    def minkowski_ranking_form(self, queries: Tensor, points: Tensor) -> tuple[Tensor, Tensor]:
        r"""``(q [B, d + 1], p [N, d + 1])`` whose inner products rank ``points`` for each query exactly as
        :math:`-d(\text{query}, \text{point})` does, and keep their precision in float32 (what a faiss index computes).

        On the hyperboloid :math:`d(x, y) = \operatorname{arcosh}(-c\langle x, y\rangle_L) / \sqrt{c}` decreases as the
        Minkowski product :math:`\langle x, y\rangle_L = -x_0 y_0 + x_s \cdot y_s` grows. Near the origin that product
        is :math:`-1/c` plus a small term, lost to float32 rounding; so with :math:`r = 1/\sqrt{c}` and
        :math:`a_x = x_0 - r = \lVert x_s\rVert^2 / (x_0 + r)` (computed without cancellation),
        :math:`q = (-(r + a_x), x_s)` and :math:`p = (a_y, y_s)` give
        :math:`q \cdot p = \langle x, y\rangle_L + r^2 + r a_x`: the product plus a constant per query, every term
        small near the origin. Ball points are first mapped to the hyperboloid (an isometry).
        """
        q, p = self.to_lorentz(queries), self.to_lorentz(points)
        r = self.c.to(q).rsqrt()
        a_q = q[..., 1:].pow(2).sum(-1, keepdim=True) / (q[..., :1] + r)
        a_p = p[..., 1:].pow(2).sum(-1, keepdim=True) / (p[..., :1] + r)
        return torch.cat([-(r + a_q), q[..., 1:]], dim=-1), torch.cat([a_p, p[..., 1:]], dim=-1)


def curvature_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The learnable curvature parameters of ``module`` (those flagged ``is_curvature``)."""
    return [p for p in module.parameters() if getattr(p, "is_curvature", False)]


def curvatures(module: nn.Module) -> dict[str, float]:
    """``{submodule name: c}`` of every :class:`HyperbolicSpace` in ``module`` (for reports)."""
    return {name or "space": float(m.c.detach()) for name, m in module.named_modules() if isinstance(m, HyperbolicSpace)}
