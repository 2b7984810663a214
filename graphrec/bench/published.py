"""Published accuracy on the public recommendation splits, printed beside our rows.

Each anchor is the number a paper or a benchmark rerun reports on *the same split* that
the catalog loads (``graphrec datasets``), with where it comes from. Those numbers were
selected the way their sources did it (LightGCN's and UltraGCN's code report the best test
epoch); ours are the test metrics at the epoch chosen on a validation part carved from
the training pairs (``data.valid_ratio``), so a tie is a good result for us.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Anchor:
    dataset: str  # catalog name
    model: str  # as the source names it
    metrics: dict[str, float]  # "recall@20" -> value
    source: str
    row: str | None = None  # the benchmark row it stands beside (None: a method graphrec does not ship)
    loss: str | None = "bpr"  # the row's train.loss the number was trained with (None: any)


ANCHORS: tuple[Anchor, ...] = (
    Anchor("gowalla", "LightGCN", {"recall@20": 0.1830, "ndcg@20": 0.1554},
           "He et al., SIGIR 2020, Table 3", "lightgcn"),
    Anchor("gowalla", "LightGCN (BARS rerun)", {"recall@20": 0.1820, "ndcg@20": 0.1547},
           "BARS / RecZoo benchmark rerun"),
    Anchor("gowalla", "UltraGCN", {"recall@20": 0.1862, "ndcg@20": 0.1580},
           "Mao et al., CIKM 2021, Table 2 (RecZoo README)"),
    Anchor("ml-1m", "MF-BPR", {"recall@20": 0.2532, "ndcg@20": 0.2440},
           "FreeRec/RePo MF-BPR README, MovieLens1M_m2 (its statistics are this split's: 6,022 users, 3,043 "
           "items, 796,244 train, 99,455 test)", "mf"),
    Anchor("ml-1m", "UltraGCN", {"recall@20": 0.2787, "ndcg@20": 0.2642},
           "RecZoo benchmarks/UltraGCN_ml-1m_x0.md"),
    Anchor("amazon-cd", "LightGCN", {"recall@20": 0.1404, "ndcg@20": 0.0881},
           "Sun et al. (HGCF), WWW 2021, Table 2, d = 50", "lightgcn"),
    Anchor("amazon-cd", "HGCF", {"recall@20": 0.1455, "ndcg@20": 0.0909},
           "Sun et al. (HGCF), WWW 2021, Table 2, d = 50", "hgcf", loss="margin"),
    Anchor("beauty", "SASRec", {"hit@10": 0.0848, "ndcg@10": 0.0432},
           "RecBole rerun (leave-one-out, full ranking)"),
)  # fmt: skip


def anchors_for(dataset: str | None) -> list[Anchor]:
    """The anchors of ``dataset`` (catalog name, case-insensitive); none for a store folder."""
    if dataset is None:
        return []
    return [a for a in ANCHORS if a.dataset == dataset.lower()]


def anchor_of_row(dataset: str | None, row: str, loss: str | None = None) -> Anchor | None:
    """The published number of benchmark row ``row`` (``lightgcn``, ``mf``...) trained with ``loss``
    (``train.loss``; None: not checked) on ``dataset``, if any: an MF row trained with the sampled
    softmax is not MF-BPR, so it gets no MF-BPR number beside it."""
    for a in anchors_for(dataset):
        if a.row == row and (loss is None or a.loss is None or a.loss == loss):
            return a
    return None
