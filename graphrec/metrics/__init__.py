"""Metrics: ranking metrics of recommendation (:mod:`.ranking`), micro-F1 (:mod:`.classification`), and AUC,
log loss and expected calibration error of predicted probabilities (:mod:`.binary`, ad targeting).

The metric names import without torch (configs validate against them); the functions load
on first use.
"""

from graphrec.utils.lazy import lazy_exports

#: Per-user ranking metrics, averaged over evaluated users.
RANKING_METRICS = ("recall", "ndcg", "mrr", "hit", "map", "precision")
#: Every metric ``evaluate_topk`` computes: the ranking metrics and catalogue coverage.
ALL_METRICS = (*RANKING_METRICS, "coverage")

_EXPORTS = {
    **dict.fromkeys(["CSR", "RankingAccumulator", "default_chunk_size", "evaluate_topk", "hits_from_topk",
                     "per_user_metrics"], ".ranking"),
    "micro_f1": ".classification",
    **dict.fromkeys(["roc_auc", "log_loss", "expected_calibration_error", "binary_metrics"], ".binary"),
}  # fmt: skip
_all, __getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = ["ALL_METRICS", "RANKING_METRICS", *_all]
