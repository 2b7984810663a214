"""Hyperbolic geometry for recommendation and ad targeting, on geoopt.

* :mod:`~graphrec.hyperbolic.manifolds`: :class:`HyperbolicSpace` (Poincaré ball or Lorentz
  hyperboloid, curvature :math:`-c`, fixed or learnable) and the numerics every model here uses;
* :mod:`~graphrec.hyperbolic.scores`: hyperbolic-distance scorers (the
  :class:`~graphrec.nn.score.Scorer` contract, served exactly by an inner-product index);
* :mod:`~graphrec.hyperbolic.multi`: the multi-manifold scorer for ad targeting
  (cluster origins, per-manifold curvature, aggregated distances);
* :mod:`~graphrec.hyperbolic.hgcf`: an HGCF-style hyperbolic graph recommender backbone.
"""

from graphrec.hyperbolic.manifolds import KINDS, HyperbolicSpace, curvature_parameters, curvatures

__all__ = ["KINDS", "HyperbolicSpace", "curvature_parameters", "curvatures"]
