"""Metrics of predicted probabilities against 0/1 labels: AUC, log loss, expected calibration error.

Used by ad targeting (:mod:`graphrec.tasks.ads`) on held-out labelled (user, ad) pairs, where a
prediction is a click probability ``p = sigmoid(logit)``:

* ``auc`` — area under the ROC curve (the probability that a random positive scores above a
  random negative, ties counting one half); scikit-learn's ``roc_auc_score``.
* ``log_loss`` — mean binary cross-entropy :math:`-\\frac1N \\sum_n y_n \\log p_n + (1 - y_n) \\log(1 - p_n)`
  (natural log); scikit-learn's ``log_loss``.
* ``ece`` — expected calibration error with ``bins`` equal-width bins over [0, 1] (Naeini et al.,
  AAAI 2015; Guo et al., ICML 2017, eq. 3): :math:`\\sum_b \\frac{|B_b|}{N} |\\bar y_b - \\bar p_b|`,
  with :math:`\\bar y_b` the share of positives and :math:`\\bar p_b` the mean prediction of the pairs in
  bin ``b``. A prediction ``p`` falls in bin ``min(floor(p * bins), bins - 1)``: bins are ``[b/B, (b+1)/B)``,
  the last one closed at 1. Empty bins contribute nothing.

Inputs are 1-d arrays or tensors of equal length; labels are 0/1 (bool or numbers).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: Default number of equal-width ECE bins.
ECE_BINS = 10


def _arrays(labels: Any, probs: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels.detach().cpu() if hasattr(labels, "detach") else labels).astype(np.float64).reshape(-1)
    p = np.asarray(probs.detach().cpu() if hasattr(probs, "detach") else probs).astype(np.float64).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(f"labels and probabilities differ in length: {y.size} and {p.size}")
    if y.size and not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    if p.size and (not np.isfinite(p).all() or p.min() < 0 or p.max() > 1):
        raise ValueError("probabilities must be finite and in [0, 1]")
    return y, p


def roc_auc(labels: Any, probs: Any) -> float:
    """Area under the ROC curve of scores ``probs`` (any monotone score works) against ``labels``;
    NaN when the labels hold one class only (no pair to compare)."""
    from sklearn.metrics import roc_auc_score

    y, p = _arrays(labels, probs)
    if y.size == 0 or y.min() == y.max():
        return math.nan
    return float(roc_auc_score(y, p))


def log_loss(labels: Any, probs: Any) -> float:
    """Mean binary cross-entropy (natural log) of probabilities ``probs``; probabilities are clipped
    to [eps, 1 - eps] (float64's eps) as scikit-learn does, so a confident mistake costs ~36, not
    infinity. NaN on empty input."""
    from sklearn.metrics import log_loss as sk_log_loss

    y, p = _arrays(labels, probs)
    if y.size == 0:
        return math.nan
    return float(sk_log_loss(y, p, labels=[0.0, 1.0]))


def expected_calibration_error(labels: Any, probs: Any, bins: int = ECE_BINS) -> float:
    """ECE with ``bins`` equal-width bins (module docstring); NaN on empty input.

    Hand-written: scikit-learn's ``calibration_curve`` gives the per-bin means but drops the bin
    sizes that weight them (and empty bins), and the metric is three lines of numpy.

    Raises:
        ValueError: ``bins < 1``, mismatched lengths, labels other than 0/1, probabilities outside [0, 1].
    """
    if int(bins) < 1:
        raise ValueError(f"bins must be a positive integer, got {bins}")
    y, p = _arrays(labels, probs)
    if y.size == 0:
        return math.nan
    b = np.minimum((p * bins).astype(np.int64), bins - 1)
    n = np.bincount(b, minlength=bins).astype(np.float64)
    gap = np.abs(np.bincount(b, weights=y, minlength=bins) - np.bincount(b, weights=p, minlength=bins))
    return float(gap.sum() / n.sum())  # sum_b (n_b / N) |mean y_b - mean p_b| = sum_b |sum y - sum p| / N


def binary_metrics(labels: Any, probs: Any, bins: int = ECE_BINS) -> dict[str, float]:
    """``{"auc", "log_loss", "ece", "pairs", "positives"}`` of one set of predictions."""
    y, p = _arrays(labels, probs)
    return {"auc": roc_auc(y, p), "log_loss": log_loss(y, p), "ece": expected_calibration_error(y, p, bins),
            "pairs": float(y.size), "positives": float(y.sum())}  # fmt: skip
