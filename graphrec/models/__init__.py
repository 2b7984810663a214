"""Backbones by name, and the bipartite recommender that puts any of them on a user-item graph.

Importing this package registers every built-in model.
"""

# imported for their registration side effects (node classification and recommendation backbones)
from graphrec.models import baselines, gesm, lightgcn, mf, xsimgcl  # noqa: F401
from graphrec.models.bipartite import BipartiteRecommender, NodeFeatureEncoder, pair_loss
from graphrec.models.registry import (
    LAZY_MODELS,
    MODELS,
    Backbone,
    ModelParams,
    ModelSpec,
    UnknownModelError,
    build_model,
    get_spec,
    register,
    validate_params,
)

__all__ = [
    "LAZY_MODELS",
    "MODELS",
    "Backbone",
    "BipartiteRecommender",
    "ModelParams",
    "ModelSpec",
    "NodeFeatureEncoder",
    "UnknownModelError",
    "build_model",
    "get_spec",
    "pair_loss",
    "register",
    "validate_params",
]
