"""PPI (protein-protein interaction, 24 graphs, 121 labels) in PyG's raw layout.

Files under ``<root>/ppi/raw``: ``{train,valid,test}_{graph.json,feats.npy,graph_id.npy,labels.npy}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from graphrec.data.root import (
    NETWORK_ERRORS,
    cache_dir,
    data_root,
    missing_error,
    writable_copy,
)

PPI_SPLITS = ("train", "valid", "test")
if TYPE_CHECKING:  # PyG loads when the dataset does, not when the catalog is listed
    from torch_geometric.data import Data

PPI_RAW_FILES = [f"{s}_{f}" for s in PPI_SPLITS for f in ("graph.json", "feats.npy", "graph_id.npy", "labels.npy")]


@dataclass
class InductiveDataset:
    """Graphs for inductive training: fit on ``train``, select on ``val``, report on ``test``."""

    name: str
    train: list[Data]
    val: list[Data]
    test: list[Data]
    num_features: int
    num_classes: int
    multilabel: bool = True


def load_ppi(root=None) -> InductiveDataset:
    root = root or data_root()
    raw = root / "ppi" / "raw"
    missing = [raw / f for f in PPI_RAW_FILES if not (raw / f).exists()]
    if missing:
        base = cache_dir() / "ppi"  # downloads land in the cache, never in the data root
    elif root == cache_dir():
        base = root / "ppi"
    else:
        base = writable_copy(raw, "ppi/raw").parent
    try:
        from torch_geometric.datasets import PPI

        splits = {s: PPI(str(base), split=s) for s in ("train", "val", "test")}
    except NETWORK_ERRORS as exc:
        raise missing_error("PPI", missing, PPI.url, str(exc)) from exc
    train = splits["train"]
    return InductiveDataset(
        name="PPI",
        train=list(splits["train"]),
        val=list(splits["val"]),
        test=list(splits["test"]),
        num_features=train.num_features,
        num_classes=train.num_classes,
    )
