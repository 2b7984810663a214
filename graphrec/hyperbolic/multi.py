r"""The multi-manifold hyperbolic scorer for ad targeting: one hyperbolic space per user cluster.

Shin et al., "Multi-Manifold Learning for Large-scale Targeted Advertising System" (AdKDD 2020,
arXiv 2007.02334) is published as an abstract only: several hyperbolic manifolds with learnable
curvatures, the origin of each at the centroid of a user cluster, preference from the hyperbolic
distance between user and ad, the final prediction an aggregate over the manifolds. **The
formulas below are graphrec's own formulation of that abstract**, not the paper's.

**Score.** ``M`` spaces :math:`\mathbb{H}_m` of curvature :math:`-c_m` (one
:class:`~graphrec.hyperbolic.HyperbolicSpace` each; :math:`c_m` learnable by default, clamped to
``c_range``); :math:`\mu_m \in \mathbb{R}^d` the centroid of user cluster ``m`` (k-means on the
user embeddings). A user's and an ad's Euclidean embeddings :math:`e_u, e_a` (from any backbone)
are mapped relative to that origin and compared by geodesic distance:

.. math::

    x^m = \exp^{c_m}_0(e - \mu_m), \qquad s_m(u, a) = -d_{c_m}(x^m_u, x^m_a),

    s(u, a) = \sum_m w_m(u)\, s_m(u, a), \qquad \text{logit}(u, a) = \alpha\, s(u, a) + \beta .

The weights are either learned, :math:`w = \mathrm{softmax}(\theta)` (``aggregation: weights``),
or the user's soft cluster membership, :math:`w_m(u) = \mathrm{softmax}_m(-\lVert e_u - \mu_m
\rVert^2 / \tau)` (``aggregation: membership``); both are positive and sum to 1. The
calibration :math:`\alpha = \mathrm{clamp}(\mathrm{softplus}(\rho), 10^{-3}, 10^{3}) > 0` and
:math:`\beta` are learned, so the score is a logit for binary cross-entropy, log loss and AUC
(``calibration: false`` fixes :math:`\alpha = 1, \beta = 0`). The affine map is strictly
increasing and the same for every item, so it never changes a ranking; with pairwise losses
(BPR, softmax) :math:`\beta` gets no gradient and :math:`\alpha` acts as an inverse
temperature. With ``loss: margin`` a learnable :math:`\alpha` can meet any margin by growing:
use ``calibration: false`` there.

**Origins.** A persistent ``[M, d]`` buffer (a saved model reproduces its scores). Until the first
fit it is empty, meaning every origin is the Euclidean origin (the method is then ``M`` spaces
at 0). :meth:`MultiManifoldScore.fit_origins` runs scikit-learn's ``KMeans`` (k-means++ seeding,
several restarts, deterministic for a seed; chosen over faiss's ``Kmeans`` for its k-means++
initialisation and its handling of empty clusters; users beyond :data:`KMEANS_MAX_POINTS` are
subsampled, so a refit stays in seconds). Fewer distinct users than ``M`` (including ``U < M``
and all users identical) put the origins on the distinct users, repeated. A refit keeps each
manifold's identity: the new centroids are matched to the previous origins by minimum total
squared distance (Hungarian assignment), so the curvature and weight learned for manifold ``m``
stay with the cluster they were learned on; a first fit orders clusters by size. The schedule
(:meth:`~MultiManifoldScore.on_epoch_start`, called by the recommendation task before every
epoch): epoch 1, then every ``recluster_every`` epochs (``0``: only at epoch 1).

**Serving and top-k.** With ``M == 1`` the scorer has an exact inner-product form
(:meth:`~MultiManifoldScore.ip_transform`: the Minkowski form of
:meth:`HyperbolicSpace.minkowski_ranking_form` after the translation), so a faiss index serves it.
With ``M > 1`` a weighted sum of distances has no such form; graphrec's serving then ranks every
ad with :meth:`~MultiManifoldScore.score_all` (an exact scan). :meth:`~MultiManifoldScore.topk`
is the cheaper alternative, candidate generation and exact re-ranking: per manifold the top ``C``
ads of its Minkowski inner-product form (one inner-product search per manifold: a blocked matrix
product here, what a per-manifold faiss index would answer), their union re-scored exactly. Its guarantee is
Fagin's threshold rule (Fagin, Lotem & Naor, "Optimal aggregation algorithms for middleware",
PODS 2001; the threshold algorithm's stopping rule, valid for any aggregation that is monotone in
each manifold's score): an ad outside manifold ``m``'s top ``C`` has :math:`s_m \le \tau_m`, the
lowest :math:`s_m` among those ``C``; the weights being nonnegative, its aggregate is at most
:math:`\tau = \sum_m w_m \tau_m`. So when the ``k``-th re-ranked candidate scores at least
:math:`\tau` the result *is* the brute-force top-``k`` (up to exact ties, and to float64 rounding of the
Minkowski products that order each manifold's candidates). That holds always for
``M == 1`` (``C >= k``) and for ``C >= N``, but **not in general** for a fixed ``C`` with
``M > 1``: an ad that is second-rate on every manifold can beat ads that are first on one and
last on the others. ``topk`` reports the certificate per query, and with ``exact=True``
(default) re-runs the uncertified queries with twice the candidates until it holds (at worst a
full scan), so its answer always equals brute force.

**Numerics.** Maps and distances are :class:`HyperbolicSpace`'s (geoopt's clamped functions),
evaluated in float64 and cast back. Mapped points stay within :data:`MAX_RADIUS` of their
manifold's origin (longer tangent vectors are shortened, so huge embeddings land at a finite
radius, and two nearby far points keep a resolved distance instead of the float64 cancellation
noise of the Minkowski product beyond); membership logits are computed in float64 and
clamped. Zero vectors, duplicates, identical users and huge norms give finite scores and
gradients. The Lorentz model is the default: the ball's
coordinates saturate (geoopt projects them to radius :math:`(1 - 10^{-5})/\sqrt{c}` in float64,
:math:`(1 - 4 \cdot 10^{-3})/\sqrt{c}` in float32: at most about 12 resp. 6 from the origin, so
farther points collapse onto the boundary), the hyperboloid resolves distances from the origin up
to 15, and its Minkowski product is the ranking form itself (no ball-to-hyperboloid map).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.hyperbolic.manifolds import C_RANGE, KINDS, HyperbolicSpace, Kind, _softplus_inverse
from graphrec.nn.score import Scorer, register_scorer

Aggregation = Literal["weights", "membership"]
AGGREGATIONS: tuple[str, ...] = ("weights", "membership")
#: k-means is fitted on at most this many users (a seeded uniform sample beyond it).
KMEANS_MAX_POINTS = 200_000
#: k-means restarts (k-means++ seeding each); the best inertia wins.
KMEANS_RESTARTS = 3
#: Range of the calibration scale alpha.
SCALE_RANGE: tuple[float, float] = (1e-3, 1e3)
#: Squared distances in the membership logits are clamped to this (finite softmax at any norm).
_MAX_SQDIST = 1e30
#: Largest distance of a mapped point from its manifold's origin (units of 1/sqrt(c)); longer tangent vectors are
#: shortened before ``expmap0``. On the hyperboloid, the float64 Minkowski product of two points at distance r from
#: the origin carries an absolute error of about cosh(r)^2 * 1e-16, so the distance of two nearby points there is
#: uncertain by about arcosh(1 + that): 0.02 at r = 15, 0.5 at r = 18, 2.7 at r = 20 (HyperbolicSpace's own tangent
#: clamp, 40, is far looser). On the ball, geoopt's float64 projection saturates at 2 artanh(1 - 1e-5) = 12.2.
MAX_RADIUS: dict[str, float] = {"lorentz": 15.0, "poincare": 12.0}
#: Rows per chunk of the k-means assignment and of mean memberships.
_CHUNK = 8192


class TopK(NamedTuple):
    """Result of :meth:`MultiManifoldScore.topk`."""

    values: Tensor  #: ``[B, k]`` scores (logits), best first; equal to ``score(u, items[indices])``
    indices: Tensor  #: ``[B, k]`` rows of ``items``
    certified: Tensor  #: ``[B]`` bool: the threshold certificate held (the result is the exact top-k)


@register_scorer
class MultiManifoldScore(Scorer):
    r"""Multi-manifold hyperbolic score (graphrec's formulation of Shin et al., AdKDD 2020; see the module docstring).

    Args:
        num_manifolds: ``M``, the number of spaces (= user clusters).
        kind: ``"lorentz"`` (default: the more stable, see the module docstring) or ``"poincare"``.
        curvature: initial :math:`c > 0` of every space (curvature :math:`-c`).
        learnable: learn each space's curvature (softplus-parameterised, clamped to ``c_range``).
        c_range: ``(c_min, c_max)`` of a learnable curvature.
        aggregation: ``"weights"`` (softmax of a learned vector) or ``"membership"`` (the user's soft
            cluster membership at temperature ``membership_temperature``, in squared embedding units).
        membership_temperature: :math:`\tau > 0`.
        recluster_every: epochs between k-means refits of the origins (``0``: fit once, at epoch 1).
        kmeans_seed: seed of every k-means fit of the schedule.
        calibration: learn the affine :math:`\alpha s + \beta` (``False``: the logit is ``s`` itself).

    Raises:
        ValueError: an option out of range (named in the message).
    """

    name = "multi_manifold"
    #: Float64 elements of one block's ``[B, block, point_dim]`` intermediates in score_all and topk (64 MB).
    block_elements: int = 1 << 23

    def __init__(self, num_manifolds: int = 4, kind: Kind = "lorentz", curvature: float = 1.0, learnable: bool = True,
                 c_range: Sequence[float] = C_RANGE, aggregation: Aggregation = "weights",
                 membership_temperature: float = 1.0, recluster_every: int = 0, kmeans_seed: int = 0,
                 calibration: bool = True):  # fmt: skip
        super().__init__()
        if isinstance(num_manifolds, bool) or not isinstance(num_manifolds, int) or num_manifolds < 1:
            raise ValueError(f"num_manifolds must be a positive integer, got {num_manifolds!r}")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}")
        tau = float(membership_temperature)
        if not (math.isfinite(tau) and tau > 0):
            raise ValueError(f"membership_temperature must be positive and finite, got {membership_temperature!r}")
        if isinstance(recluster_every, bool) or not isinstance(recluster_every, int) or recluster_every < 0:
            raise ValueError(f"recluster_every must be an integer >= 0 (0: fit once), got {recluster_every!r}")
        if isinstance(kmeans_seed, bool) or not isinstance(kmeans_seed, int):
            raise ValueError(f"kmeans_seed must be an integer, got {kmeans_seed!r}")
        if len(c_range) != 2:
            raise ValueError(f"c_range must be (c_min, c_max), got {c_range!r}")
        self.num_manifolds, self.kind, self.aggregation = num_manifolds, kind, aggregation
        self.curvature, self.learnable = float(curvature), bool(learnable)
        self.c_range = tuple(float(c) for c in c_range)
        self.membership_temperature, self.recluster_every, self.kmeans_seed = tau, recluster_every, kmeans_seed
        self.calibration = bool(calibration)
        self.spaces = nn.ModuleList(HyperbolicSpace(kind, curvature, learnable, self.c_range)
                                    for _ in range(num_manifolds))  # fmt: skip
        if aggregation == "weights":
            self.weight_logits = nn.Parameter(torch.zeros(num_manifolds))
        if self.calibration:
            self.scale_raw = nn.Parameter(torch.tensor(_softplus_inverse(1.0)))
            self.bias = nn.Parameter(torch.zeros(()))
        # [M, 0] until fitted: every origin at the Euclidean origin; [M, d] after (resized on load)
        self.register_buffer("origins", torch.zeros(num_manifolds, 0))
        self.register_buffer("last_fit_epoch", torch.zeros((), dtype=torch.long))  # 0: never fitted by the schedule
        self.register_buffer("cluster_fraction", torch.full((num_manifolds,), 1.0 / num_manifolds))
        self.register_buffer("mean_membership", torch.full((num_manifolds,), 1.0 / num_manifolds))

    def extra_repr(self) -> str:
        return (f"M={self.num_manifolds}, kind={self.kind}, aggregation={self.aggregation}, "
                f"fitted={self.fitted}, recluster_every={self.recluster_every}")  # fmt: skip

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "num_manifolds": self.num_manifolds, "kind": self.kind, "curvature": self.curvature,
                "learnable": self.learnable, "c_range": list(self.c_range), "aggregation": self.aggregation,
                "membership_temperature": self.membership_temperature, "recluster_every": self.recluster_every,
                "kmeans_seed": self.kmeans_seed, "calibration": self.calibration}  # fmt: skip

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the origins' width is the embedding size, known once fitted: take the saved shape
        saved = state_dict.get(prefix + "origins")
        if isinstance(saved, Tensor) and saved.shape != self.origins.shape:
            self.origins = torch.zeros(saved.shape, dtype=saved.dtype, device=self.origins.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- parts of the score ----------------------------------------------------------------------------------------

    @property
    def fitted(self) -> bool:
        """Whether the origins have been fitted (else every origin is the Euclidean origin)."""
        return self.origins.size(1) > 0

    def curvatures(self) -> Tensor:
        """``[M]`` curvature magnitudes :math:`c_m` (the spaces' curvatures are :math:`-c_m`)."""
        return torch.stack([s.c for s in self.spaces])

    def scale(self) -> Tensor:
        r"""The calibration scale :math:`\alpha > 0` (0-d; 1 without calibration)."""
        if not self.calibration:
            return torch.ones((), device=self.origins.device)
        return F.softplus(self.scale_raw).clamp(*SCALE_RANGE)

    def _translate(self, e: Tensor, m: int) -> Tensor:
        """``e - mu_m`` in float64 (``e`` itself before the origins are fitted)."""
        e = e.double()
        return e - self.origins[m].double() if self.fitted else e

    def points(self, e: Tensor) -> list[Tensor]:
        """Per manifold, the points ``[..., point_dim]`` (float64) of embeddings ``e`` ``[..., d]``:
        ``expmap0(e - mu_m)``, at most :data:`MAX_RADIUS` from the manifold's origin (longer tangent vectors are
        shortened)."""
        out = []
        for m, space in enumerate(self.spaces):
            v = self._translate(e, m)
            # d(0, expmap0(v)) is |v| sqrt(c) on the hyperboloid and 2 |v| sqrt(c) on the ball (units of 1/sqrt(c))
            limit = MAX_RADIUS[self.kind] / (space.c.double().sqrt() * (2.0 if self.kind == "poincare" else 1.0))
            norm = v.norm(dim=-1, keepdim=True).clamp_min(1e-15)
            out.append(space.expmap0(torch.where(norm > limit, v * (limit / norm), v)))
        return out

    def membership(self, users: Tensor) -> Tensor:
        r"""Soft cluster membership ``[..., M]`` (float64, rows sum to 1) of user embeddings ``[..., d]``:
        :math:`\mathrm{softmax}_m(-\lVert e_u - \mu_m\rVert^2 / \tau)` (uniform before the origins are fitted)."""
        u = users.double()
        if not self.fitted:
            return u.new_full((*u.shape[:-1], self.num_manifolds), 1.0 / self.num_manifolds)
        sq = (u.unsqueeze(-2) - self.origins.double()).pow(2).sum(-1).clamp(max=_MAX_SQDIST)
        return torch.softmax(-sq / self.membership_temperature, dim=-1)

    def _mean_membership(self, users: Tensor) -> Tensor:
        """``[M]`` mean membership of users ``[U, d]`` (in chunks: no ``[U, M, d]`` intermediate)."""
        total = sum(self.membership(blk).sum(0) for blk in users.split(_CHUNK))
        return total / users.size(0)

    def weights(self, users: Tensor | None = None) -> Tensor:
        """Aggregation weights (float64): ``[M]`` learned ones, or ``[..., M]`` memberships of ``users`` ``[..., d]``.

        Raises:
            ValueError: membership aggregation without ``users``.
        """
        if self.aggregation == "weights":
            return torch.softmax(self.weight_logits.double(), dim=0)
        if users is None:
            raise ValueError("membership aggregation weighs the manifolds per user: pass the users' embeddings")
        return self.membership(users)

    def manifold_scores(self, u: Tensor, i: Tensor) -> Tensor:
        """Per-manifold scores ``[..., M]`` (float64, :math:`s_m = -d_m \\le 0`) of ``u``, ``i`` ``[..., d]``
        (broadcast)."""
        return torch.stack([-space.dist(xu, xi) for space, xu, xi in zip(self.spaces, self.points(u), self.points(i),
                                                                           strict=True)], dim=-1)  # fmt: skip

    def _calibrate(self, s: Tensor) -> Tensor:
        if not self.calibration:
            return s
        return self.scale().double() * s + self.bias.double()

    def aggregate(self, u: Tensor, i: Tensor) -> Tensor:
        """The uncalibrated aggregate ``[...]`` (float64, :math:`\\sum_m w_m s_m \\le 0`) of ``u``, ``i``
        ``[..., d]``."""
        return (self.manifold_scores(u, i) * self.weights(u)).sum(-1)

    # -- the Scorer contract ---------------------------------------------------------------------------------------

    def score(self, u: Tensor, i: Tensor) -> Tensor:
        """Logits ``[...]`` of users ``u`` and ads/items ``i`` ``[..., d]`` (broadcast; ``u`` is the user side)."""
        return self._calibrate(self.aggregate(u, i)).to(torch.promote_types(u.dtype, i.dtype))

    def _block(self, rows: int, dim: int) -> int:
        width = self.spaces[0].point_dim(dim)
        return max(1, min(self.block_items, self.block_elements // max(1, rows * (width + self.num_manifolds))))

    def score_all(self, u: Tensor, items: Tensor) -> Tensor:
        """Logits ``[B, N]`` of users ``u`` ``[B, d]`` against ``items`` ``[N, d]``, in blocks of items
        (float64 intermediates of at most :attr:`block_elements` elements per block)."""
        out = u.new_empty(u.size(0), items.size(0), dtype=torch.promote_types(u.dtype, items.dtype))
        xu = [x.unsqueeze(1) for x in self.points(u)]
        w = self.weights(u)
        w = w.unsqueeze(1) if w.dim() == 2 else w
        step = self._block(u.size(0), u.size(1))
        for start in range(0, items.size(0), step):
            xi = [x.unsqueeze(0) for x in self.points(items[start : start + step])]
            s = torch.stack([-sp.dist(a, b) for sp, a, b in zip(self.spaces, xu, xi, strict=True)], dim=-1)
            out[:, start : start + s.size(1)] = self._calibrate((s * w).sum(-1))
        return out

    def ip_transform(self, u: Tensor, items: Tensor) -> tuple[Tensor, Tensor] | None:
        """With one manifold, ``(q [B, d + 1], x [N, d + 1])`` whose inner products are the Minkowski products
        of the translated points (they rank as the score; the weight is 1 and the affine increasing); ``None``
        with several (served by an exact scan; see :meth:`topk`)."""
        if self.num_manifolds != 1:
            return None
        q, x = self.spaces[0].minkowski_ranking_form(self.points(u)[0], self.points(items)[0])
        return q.to(u.dtype), x.to(items.dtype)

    # -- top-k by candidate generation and exact re-ranking ----------------------------------------------------------

    def _ip_top(self, q: Tensor, p: Tensor, c: int) -> Tensor:
        """``[B, c]`` rows of ``p`` with the largest inner products with each row of ``q`` (blocked scan)."""
        best_v = q.new_empty(q.size(0), 0)
        best_i = torch.empty(q.size(0), 0, dtype=torch.long, device=q.device)
        step = max(c, self.block_elements // max(1, q.size(0)))
        for start in range(0, p.size(0), step):
            v = q @ p[start : start + step].t()
            i = torch.arange(start, start + v.size(1), device=q.device).expand_as(v)
            v, i = torch.cat([best_v, v], 1), torch.cat([best_i, i], 1)
            best_v, top = torch.topk(v, min(c, v.size(1)), dim=1)
            best_i = i.gather(1, top)
        return best_i

    @torch.no_grad()
    def topk(self, u: Tensor, items: Tensor, k: int, candidates_per_manifold: int | None = None,
             exact: bool = True) -> TopK:  # fmt: skip
        """Top-``k`` items of each user by candidate generation and exact re-ranking.

        Per manifold, the ``C = candidates_per_manifold`` (default ``4 k``; at least ``k``) items with the
        largest Minkowski inner products (:meth:`HyperbolicSpace.minkowski_ranking_form`: the nearest in that
        manifold); their union re-scored with :meth:`score`. The result is the brute-force top-``k`` when
        Fagin's threshold certificate holds (see the module docstring): always for ``M == 1`` and for
        ``C >= N``; with ``exact=True`` the uncertified users are re-run with ``2 C`` until it holds.

        Args:
            u: ``[B, d]`` user embeddings; items: ``[N, d]``; k: ``1 <= k`` (at most ``N`` are returned).

        Returns:
            :class:`TopK` ``(values [B, k'], indices [B, k'], certified [B])``, ``k' = min(k, N)``, best first.

        Raises:
            ValueError: ``k < 1``, ``candidates_per_manifold < 1``, or shapes that do not match.
        """
        if k < 1:
            raise ValueError(f"k must be a positive integer, got {k}")
        if candidates_per_manifold is not None and candidates_per_manifold < 1:
            raise ValueError(f"candidates_per_manifold must be positive, got {candidates_per_manifold}")
        if u.dim() != 2 or items.dim() != 2 or u.size(1) != items.size(1):
            raise ValueError(f"topk takes users [B, d] and items [N, d]; got {tuple(u.shape)} and {tuple(items.shape)}")
        n, b = items.size(0), u.size(0)
        k = min(k, n)
        c = min(n, max(k, candidates_per_manifold or 4 * k))
        dtype = torch.promote_types(u.dtype, items.dtype)
        values = torch.empty(b, k, dtype=dtype, device=u.device)
        indices = torch.empty(b, k, dtype=torch.long, device=u.device)
        certified = torch.zeros(b, dtype=torch.bool, device=u.device)
        forms = [sp.minkowski_ranking_form(xu, xi) for sp, xu, xi in
                 zip(self.spaces, self.points(u), self.points(items), strict=True)]  # fmt: skip
        todo = torch.arange(b, device=u.device)
        while todo.numel():
            cand = torch.cat([self._ip_top(q[todo], p, c) for q, p in forms], dim=1)  # [b', M c]
            uu = u[todo].unsqueeze(1)
            s = self.manifold_scores(uu, items[cand])  # [b', M c, M]
            w = self.weights(uu)
            total = (s * w).sum(-1)
            # the same item found by several manifolds counts once
            order = cand.sort(dim=1)
            dup = torch.zeros_like(cand, dtype=torch.bool)
            dup.scatter_(1, order.indices[:, 1:], order.values[:, 1:] == order.values[:, :-1])
            ranked = total.masked_fill(dup, -math.inf)
            top_v, top = torch.topk(ranked, k, dim=1)
            # Fagin's threshold: an item outside manifold m's candidates has s_m <= tau_m
            tau_m = torch.stack([s[:, m * c : (m + 1) * c, m].min(1).values for m in range(self.num_manifolds)], 1)
            tau = (tau_m * (w if w.dim() == 1 else w[:, 0])).sum(-1)
            ok = (top_v[:, -1] >= tau) | (c >= n)
            done = ok | (not exact)
            rows = todo[done]
            values[rows] = self._calibrate(top_v[done]).to(dtype)
            indices[rows] = cand[done].gather(1, top[done])
            certified[rows] = ok[done]
            todo, c = todo[~done], min(n, 2 * c)
        return TopK(values, indices, certified)

    # -- origins ---------------------------------------------------------------------------------------------------

    @torch.no_grad()
    def fit_origins(self, user_emb: Tensor, seed: int | None = None) -> Tensor:
        """Set the origins to the k-means centroids of user embeddings ``[U, d]`` and return them ``[M, d]``.

        scikit-learn ``KMeans`` (k-means++, :data:`KMEANS_RESTARTS` restarts, ``random_state=seed``, default
        ``kmeans_seed``) on at most :data:`KMEANS_MAX_POINTS` users; as many threads as torch uses. With at most
        ``M`` distinct users the origins are those users (repeated). A refit matches the new centroids to the
        current origins (minimum total squared distance), a first fit orders them by cluster size.

        Raises:
            ValueError: not a ``[U, d]`` matrix, no user, or non-finite embeddings (the count is named).
        """
        from scipy.optimize import linear_sum_assignment
        from sklearn.cluster import KMeans
        from threadpoolctl import threadpool_limits

        seed = self.kmeans_seed if seed is None else int(seed)
        if user_emb.dim() != 2 or user_emb.size(0) == 0 or user_emb.size(1) == 0:
            raise ValueError(f"fit_origins takes user embeddings [U, d] with U, d >= 1, got {tuple(user_emb.shape)}")
        x = user_emb.detach().double().cpu().numpy()
        bad = int((~np.isfinite(x).all(1)).sum())
        if bad:
            raise ValueError(f"{bad} of {x.shape[0]} user embeddings are not finite: cannot cluster them")
        if x.shape[0] > KMEANS_MAX_POINTS:
            x = x[np.sort(np.random.default_rng(seed).choice(x.shape[0], KMEANS_MAX_POINTS, replace=False))]
        M = self.num_manifolds
        distinct = np.unique(x, axis=0)
        if distinct.shape[0] <= M:
            centers = distinct[np.arange(M) % distinct.shape[0]]
        else:
            with threadpool_limits(limits=torch.get_num_threads()):
                centers = KMeans(M, n_init=KMEANS_RESTARTS, random_state=seed).fit(x).cluster_centers_
        chunks = np.array_split(x, -(-x.shape[0] // _CHUNK))
        labels = np.concatenate([((blk[:, None] - centers[None]) ** 2).sum(-1).argmin(1) for blk in chunks])
        sizes = np.bincount(labels, minlength=M)
        if self.fitted and self.origins.size(1) == x.shape[1]:
            old = self.origins.double().cpu().numpy()
            rows, cols = linear_sum_assignment(((centers[:, None] - old[None]) ** 2).sum(-1))
            perm = np.empty(M, dtype=np.int64)
            perm[cols] = rows  # origin j <- the new centroid assigned to it
        else:
            perm = np.lexsort((*centers.T[::-1], -sizes))  # largest cluster first, ties by coordinates
        centers, sizes = centers[perm], sizes[perm]
        dev = self.origins.device
        self.origins = torch.as_tensor(centers, dtype=user_emb.dtype if user_emb.is_floating_point() else torch.float32,
                                       device=dev)  # fmt: skip
        self.cluster_fraction = torch.as_tensor(sizes / sizes.sum(), dtype=torch.float32, device=dev)
        self.mean_membership = self._mean_membership(torch.as_tensor(x, device=dev)).float()
        return self.origins

    def due(self, epoch: int) -> bool:
        """Whether the schedule refits the origins before ``epoch`` (1-based): epoch 1, every
        ``recluster_every`` epochs after it, and any epoch while the origins are not fitted."""
        r = self.recluster_every
        return epoch == 1 or not self.fitted or (r > 0 and (epoch - 1) % r == 0)

    def on_epoch_start(self, epoch: int, user_embeddings: Callable[[], Tensor]) -> bool:
        """The schedule hook, called before each training epoch: refit the origins on ``user_embeddings()``
        (called only when due, see :meth:`due`) and return whether it did."""
        if not self.due(epoch):
            return False
        self.fit_origins(user_embeddings(), self.kmeans_seed)
        self.last_fit_epoch.fill_(int(epoch))
        return True

    # -- reports and plots -----------------------------------------------------------------------------------------

    @torch.no_grad()
    def report(self, users: Tensor | None = None) -> dict[str, Any]:
        """For benchmark tables: ``curvatures`` (:math:`c_m`), ``weights`` (learned) or ``mean_membership``
        (over ``users`` ``[U, d]`` when given, else at the last fit), ``cluster_fraction`` (users per cluster at
        the last fit), ``origin_norms`` (:math:`\\lVert\\mu_m\\rVert`), ``scale`` and ``bias`` of the calibration,
        ``last_fit_epoch``."""
        out: dict[str, Any] = {"kind": self.kind, "num_manifolds": self.num_manifolds, "aggregation": self.aggregation,
                               "curvatures": self.curvatures().tolist()}  # fmt: skip
        if self.aggregation == "weights":
            out["weights"] = self.weights().tolist()
        else:
            mean = self._mean_membership(users) if users is not None else self.mean_membership
            out["mean_membership"] = mean.tolist()
        out["cluster_fraction"] = self.cluster_fraction.tolist()
        out["origin_norms"] = self.origins.norm(dim=1).tolist() if self.fitted else [0.0] * self.num_manifolds
        out["scale"] = float(self.scale())
        out["bias"] = float(self.bias) if self.calibration else 0.0
        out["last_fit_epoch"] = int(self.last_fit_epoch)
        return out

    @torch.no_grad()
    def disk_coordinates(self, users: Tensor, items: Tensor) -> dict[str, np.ndarray]:
        r"""Coordinates on the unit Poincaré disk of a 2-D model, one panel per manifold (for
        :func:`graphrec.plots.plot_poincare`): ``users`` ``[M, U, 2]``, ``items`` ``[M, N, 2]``, ``origins``
        ``[M, M, 2]`` (where origin ``j`` lands in manifold ``m``; ``origins[m, m]`` is the centre), ``clusters``
        ``[U]`` (each user's nearest origin), ``curvatures`` ``[M]``, ``weights`` ``[M]`` (learned, or the mean
        membership of ``users``). Points of manifold ``m`` are scaled by :math:`\sqrt{c_m}` from its ball of
        radius :math:`1/\sqrt{c_m}`.

        Raises:
            ValueError: embeddings that are not 2-D.
        """
        if users.dim() != 2 or users.size(1) != 2 or items.dim() != 2 or items.size(1) != 2:
            raise ValueError(f"the Poincaré disk shows 2-D embeddings; got users {tuple(users.shape)} and items "
                             f"{tuple(items.shape)} (train with train.embedding_dim=2)")  # fmt: skip
        mu = self.origins.double() if self.fitted else users.new_zeros(self.num_manifolds, 2, dtype=torch.float64)

        def disk(space: HyperbolicSpace, pts: Tensor) -> np.ndarray:
            return (space.to_poincare(pts) * space.c.double().sqrt()).cpu().numpy()

        ups, ips, ops = [], [], []
        for space, xu, xi, xo in zip(self.spaces, self.points(users), self.points(items), self.points(mu), strict=True):
            ups.append(disk(space, xu))
            ips.append(disk(space, xi))
            ops.append(disk(space, xo))
        clusters = (users.double().unsqueeze(1) - mu).pow(2).sum(-1).argmin(1)
        w = self.weights() if self.aggregation == "weights" else self._mean_membership(users)
        return {"users": np.stack(ups), "items": np.stack(ips), "origins": np.stack(ops),
                "clusters": clusters.cpu().numpy(), "curvatures": self.curvatures().double().cpu().numpy(),
                "weights": w.cpu().numpy()}  # fmt: skip


@torch.no_grad()
def disk_panels(scorer: Scorer, users: Tensor, items: Tensor) -> dict[str, np.ndarray | None]:
    r"""Unit-Poincaré-disk coordinates of a 2-D hyperbolic model's users ``[U, d]`` and items ``[N, d]``, for
    :func:`graphrec.plots.plot_poincare`: :meth:`MultiManifoldScore.disk_coordinates` (one panel per manifold),
    or one panel for a single-space scorer with a ``space`` (:class:`HyperbolicSpace`): ``hyperbolic`` (2-D
    Euclidean outputs mapped by its ``points``) or ``lorentz_sqdist`` (outputs already on the 2-D hyperboloid,
    ``d = 3``). ``weights`` is ``None`` for a single space.

    Raises:
        ValueError: a scorer that is not hyperbolic, or embeddings that are not of a 2-D space.
    """
    if isinstance(scorer, MultiManifoldScore):
        return scorer.disk_coordinates(users, items)
    space = getattr(scorer, "space", None)
    if not isinstance(space, HyperbolicSpace):
        raise ValueError(f"scorer {scorer.name!r} is not hyperbolic: the Poincaré disk shows models scored with "
                         "multi_manifold, hyperbolic or lorentz_sqdist")  # fmt: skip
    to_points = getattr(scorer, "points", None)  # Euclidean outputs -> points; without it the outputs are points
    want = 2 if to_points is not None else 3
    if users.dim() != 2 or users.size(1) != want or items.dim() != 2 or items.size(1) != want:
        raise ValueError(f"the Poincaré disk shows 2-D spaces: scorer {scorer.name!r} needs {want}-wide embeddings, "
                         f"got users {tuple(users.shape)} and items {tuple(items.shape)} "
                         "(train with train.embedding_dim=2)")  # fmt: skip

    def disk(e: Tensor) -> np.ndarray:
        x = to_points(e.double()) if to_points is not None else space.proj(e.double())
        return (space.to_poincare(x) * space.c.double().sqrt()).cpu().numpy()

    return {"users": disk(users)[None], "items": disk(items)[None], "origins": np.zeros((1, 1, 2)),
            "clusters": np.zeros(users.size(0), dtype=np.int64), "curvatures": space.c.double().cpu().numpy()[None],
            "weights": None}  # fmt: skip
