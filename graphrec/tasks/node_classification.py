"""Old import path of node classification (before 0.2), kept for one release.

Use :mod:`graphrec.tasks.node` (``NodeTask``, ``fit_node``, ``build_backbone``) and
:func:`graphrec.utils.seed.seed_everything`, or :func:`graphrec.train`.
"""

from __future__ import annotations

from graphrec.metrics import micro_f1
from graphrec.tasks.node import NodeTask, build_backbone, prepare
from graphrec.tasks.node import fit_node as fit
from graphrec.tasks.trainer import FitResult
from graphrec.utils.seed import seed_everything

__all__ = ["FitResult", "NodeTask", "build_backbone", "fit", "micro_f1", "prepare", "seed_everything"]
