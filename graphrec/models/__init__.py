"""Backbones by name. Importing this package registers every built-in model."""

# imported for their registration side effects (node classification and recommendation backbones)
from graphrec.models import baselines, gesm, lightgcn, mf, xsimgcl  # noqa: F401
from graphrec.models.registry import MODELS, build_model, get_spec, register, validate_params

__all__ = ["MODELS", "build_model", "get_spec", "register", "validate_params"]
