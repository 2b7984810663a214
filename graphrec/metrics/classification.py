"""Classification metrics of node classification."""

from __future__ import annotations

from torch import Tensor


def micro_f1(logits: Tensor, y: Tensor) -> float:
    """Micro-averaged F1 of multi-label predictions ``logits > 0`` ``[N, L]`` against ``y`` ``[N, L]``
    (0/1): ``2 TP / (2 TP + FP + FN)`` over every (node, label) pair."""
    pred = logits > 0
    y = y > 0.5
    tp = (pred & y).sum().item()
    fp = (pred & ~y).sum().item()
    fn = (~pred & y).sum().item()
    return 2 * tp / max(2 * tp + fp + fn, 1)
