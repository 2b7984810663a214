"""Backbones by name, and the bipartite recommender that puts any of them on a user-item graph.

The index (:mod:`graphrec.models.index`) and the parameter classes
(:mod:`graphrec.models.params`) import without torch; a model's module is imported when the
model is first asked for (:func:`get_spec`, :func:`build_model`). ``MODELS`` holds every
built-in model once read.
"""

from graphrec.utils.lazy import lazy_exports

_EXPORTS = {
    "INDEX": ".index",
    "ModelInfo": ".index",
    "UnknownModelError": ".index",
    "model_info": ".index",
    "ModelParams": ".params",
    "Backbone": ".registry",
    "ModelSpec": ".registry",
    "build_model": ".registry",
    "get_spec": ".registry",
    "register": ".registry",
    "validate_params": ".registry",
    "MODELS": ".builtin",
    "BipartiteRecommender": ".bipartite",
    "NodeFeatureEncoder": ".bipartite",
    "pair_loss": ".bipartite",
}

__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
