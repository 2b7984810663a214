"""Backbones by name. Importing this package registers every built-in model."""

from graphrec.models import baselines, gesm  # noqa: F401  (registration side effects)
from graphrec.models import lightgcn, mf  # noqa: F401  (recommendation backbones)
from graphrec.models.registry import MODELS, build_model, get_spec, register, validate_params

__all__ = ["MODELS", "build_model", "get_spec", "register", "validate_params"]
