"""Every model of the index, registered: ``MODELS`` with all of them."""

from graphrec.models.registry import MODELS, all_specs

all_specs()

__all__ = ["MODELS"]
