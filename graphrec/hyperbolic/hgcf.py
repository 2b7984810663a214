r"""HGCF (Sun et al., "HGCF: Hyperbolic Graph Convolution Networks for Collaborative Filtering", WWW 2021)
as a K-step backbone of the user-item graph.

Following the reference code (``layer6ai-labs/HGCF``: ``HGCFModel``, the ``resSumGCN`` encoder, ``Hyperboloid``):

* every user and item has an ID embedding on the hyperboloid :math:`\langle x, x\rangle_L = -1/c`, initialised
  as :math:`\exp_0(v)` with :math:`v \sim U(-s, s)^d` (``init_scale`` :math:`s = 0.1`) and trained as a
  ``geoopt.ManifoldParameter`` (HGCF: Riemannian SGD; here ``optimizer: auto``, geoopt's RiemannianAdam) on a
  :class:`BoundedLorentz`, geoopt's hyperboloid with a retraction that stays finite in float32 and a cap of
  ``MAX_RADIUS`` (8 radii of curvature) on the distance from the origin: far beyond what ranking needs (HGCF
  clamps squared distances at 50, i.e. distances at about 7);
* the encoder maps the points to the tangent space at the origin, :math:`h_0 = \log_0(x)`, propagates
  :math:`h_k = P h_{k-1}` with HGCN's row-normalised :math:`P = \tilde D^{-1}(A + I)`, sums the steps (the
  skip connections that keep deep stacks from collapsing onto one point), and maps back:
  :math:`z = \exp_0(\sum_{k=1}^{K} h_k)`; no weights, no non-linearity. HGCF's ``num_layers`` is ``K + 1``.
* users and items score by minus their squared distance (``train.score: lorentz_sqdist``), trained with the
  margin ranking loss :math:`\max(0, m + d^2(u, i) - d^2(u, j))` (``train.loss: margin``).

The recommender (:class:`~graphrec.models.BipartiteRecommender`) reads :attr:`HGCF.input_manifold` and
:attr:`HGCF.input_init_scale` to make its ID table a manifold parameter. Given ``[N, d]`` Euclidean inputs
instead of ``[N, d + 1]`` points, the model reads them as tangent vectors at the origin and returns the summed
tangent vectors, without the maps (with ``in_channels != out_channels`` a linear map ``in -> out`` comes first,
so the module also serves feature-based tasks); ``train.score: hyperbolic`` maps such outputs with ``expmap0``.
"""

from __future__ import annotations

import math

import geoopt
import torch
from geoopt.manifolds.lorentz import math as lmath
from torch import Tensor, nn

from graphrec.hyperbolic.manifolds import HyperbolicSpace
from graphrec.models.params import HGCFParams
from graphrec.models.registry import Backbone, register
from graphrec.nn.hop_sampling import max_steps, select_steps
from graphrec.nn.propagation import Propagation

#: Largest distance from the origin (in radii of curvature, 1/sqrt(c)) of a trained ID embedding.
MAX_RADIUS = 8.0


class BoundedLorentz(geoopt.Lorentz):
    r"""geoopt's hyperboloid :math:`\langle x, x\rangle_L = -k` with a retraction and a vector transport that stay
    finite in float32 far from the origin, for manifold parameters trained by RiemannianAdam.

    geoopt's retraction is the exponential map, whose Minkowski norm of the step cancels catastrophically once
    :math:`x_0^2` dwarfs the float32 precision (some 8 to 10 radii from the origin, the step's norm comes out
    huge, :math:`\cosh` overflows and the parameter turns NaN). Here, as HGCF's Riemannian SGD re-solves :math:`x_0`
    after each step: ``retr(x, u) = projx(x + u)`` (the projection retraction, first order like the exponential
    map) and ``transp(x, y, v) = proju(y, v)`` (transport by projection); ``projx`` also caps the distance from the
    origin at ``max_radius`` (so the gradient's conversion, which scales with :math:`x_0^2`, cannot overflow), and
    ``component_inner`` (RiemannianAdam's squared gradient norm) is computed without the Minkowski form's
    cancellation, which makes it negative, and its square root NaN, far from the origin.
    """

    def __init__(self, k: float = 1.0, max_radius: float = MAX_RADIUS):
        super().__init__(k)
        self.max_radius = float(max_radius)

    def projx(self, x: Tensor, *, dim: int = -1) -> Tensor:
        space = x.narrow(dim, 1, x.size(dim) - 1)
        cap = self.k.to(x).sqrt() * math.sinh(self.max_radius)  # |x_s| = sqrt(k) sinh(r) at distance r
        norm = space.norm(dim=dim, keepdim=True)
        space = torch.where(norm > cap, space * (cap / norm.clamp_min(1e-15)), space)
        return lmath.project(torch.cat([x.narrow(dim, 0, 1), space], dim=dim), k=self.k.to(x), dim=dim)

    def retr(self, x: Tensor, u: Tensor, *, dim: int = -1) -> Tensor:
        return self.projx(x + u, dim=dim)

    def component_inner(self, x: Tensor, u: Tensor, v: Tensor | None = None) -> Tensor:
        r"""Squared Riemannian norm ``[..., 1]`` of tangent vectors ``u`` at ``x`` (RiemannianAdam's second moment).

        :math:`\langle u, u\rangle_L = (k\|u_s\|^2 + \|x_s\|^2 \|u_s^\perp\|^2) / x_0^2` for tangent ``u`` (its time
        coordinate is :math:`x_s \cdot u_s / x_0`), with :math:`u_s^\perp` the part of :math:`u_s` orthogonal to
        :math:`x_s`: a sum of non-negative terms, where the Minkowski form :math:`-u_0^2 + \|u_s\|^2` cancels and
        comes out negative far from the origin (its square root is then NaN)."""
        if v is not None:
            return super().component_inner(x, u, v)
        xs, us = x[..., 1:], u[..., 1:]
        xs_sq = xs.pow(2).sum(-1, keepdim=True)
        along = (xs * us).sum(-1, keepdim=True) / xs_sq.clamp_min(1e-30)
        perp = (us - along * xs).pow(2).sum(-1, keepdim=True)
        k = self.k.to(x)
        return (k * us.pow(2).sum(-1, keepdim=True) + xs_sq * perp) / (k + xs_sq)

    def transp(self, x: Tensor, y: Tensor, v: Tensor, *, dim: int = -1) -> Tensor:
        return self.proju(y, v, dim=dim)

    def extra_repr(self) -> str:
        return f"k={float(self.k):.4g}, max_radius={self.max_radius}"


class _IDSpace(HyperbolicSpace):
    """The hyperboloid of HGCF's ID embeddings: its geoopt manifold is :class:`BoundedLorentz`."""

    def __init__(self, curvature: float, max_radius: float = MAX_RADIUS):
        super().__init__("lorentz", curvature)
        self.max_radius = max_radius

    def geoopt_manifold(self) -> geoopt.Manifold:
        return BoundedLorentz(k=1.0 / float(self.c), max_radius=self.max_radius)


@register("hgcf", HGCFParams)
class HGCF(Backbone):
    r"""HGCF: points on the hyperboloid -> :math:`\exp_0(\sum_{k=1}^{K} P^k \log_0 x)` (sum of tangent steps).

    Args:
        in_channels, out_channels: the space's dimension ``d`` (equal on ID embeddings; the points have
            ``d + 1`` coordinates).
        K: propagation steps; ``steps=k`` in :meth:`forward` sums steps 1..k (per node when ``steps`` is a
            tensor), so :class:`~graphrec.nn.HopSampling` applies; ``k = 0`` returns the inputs.
        curvature: :math:`c > 0` (the hyperboloid has curvature :math:`-c`).
        init_scale: half-width of the uniform tangent vectors the ID embeddings start from.
    """

    supports_steps = True
    riemannian = True

    def __init__(self, in_channels: int, out_channels: int, K: int = 3, curvature: float = 1.0,
                 init_scale: float = 0.1):  # fmt: skip
        super().__init__()
        self.num_steps, self.dim, self.init_scale = K, in_channels, float(init_scale)
        self.space = _IDSpace(curvature)
        self.prop = Propagation("row")
        self.lin = nn.Linear(in_channels, out_channels) if in_channels != out_channels else None

    @property
    def input_manifold(self) -> HyperbolicSpace:
        """The space of the inputs and outputs (``point_dim``, ``expmap0``, ``geoopt_manifold()``: a
        :class:`BoundedLorentz`, which keeps the ID embeddings finite in float32)."""
        return self.space

    @property
    def input_init_scale(self) -> float:
        """ID embeddings start at ``expmap0`` of tangent vectors drawn from ``U(-init_scale, init_scale)``."""
        return self.init_scale

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None, steps=None) -> Tensor:
        """``[N, d + 1]`` points for ``[N, d + 1]`` points; ``[N, out]`` tangent vectors for ``[N, in]`` vectors.

        Raises:
            ValueError: inputs of another width, or points given to a model with ``in_channels != out_channels``.
        """
        d = self.dim
        points = x.size(-1) == self.space.point_dim(d) and x.size(-1) != d
        if points:
            if self.lin is not None:
                raise ValueError(f"HGCF with in_channels={d} != out_channels has a linear map and takes tangent "
                                 f"vectors [N, {d}], not points on the hyperboloid")  # fmt: skip
            h = self.space.logmap0(x)
        elif x.size(-1) == d:
            h = x if self.lin is None else self.lin(x)
        else:
            raise ValueError(f"HGCF takes points on the hyperboloid [N, {d + 1}] or tangent vectors [N, {d}], "
                             f"got {tuple(x.shape)}")  # fmt: skip
        k_max = max_steps(steps, self.num_steps)
        per_node = isinstance(steps, Tensor)
        states, total = [h], None
        for _ in range(k_max):
            h = self.prop(h, edge_index, edge_weight)
            total = h if total is None else total + h
            if per_node:
                states.append(total)
        if per_node:
            out = select_steps(states, steps)
        else:
            out = states[0] if total is None else total
        return self.space.expmap0(out) if points else out

    def extra_repr(self) -> str:
        return f"K={self.num_steps}, init_scale={self.init_scale}"
