"""The datasets graphrec knows by name (node classification and recommendation), and where each is found.

>>> from graphrec.data import load_dataset
>>> cora = load_dataset("Cora")          # torch_geometric Data with the public split   # doctest: +SKIP
>>> ml = load_dataset("ml-100k")          # Interactions, through a cached graph store  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphrec.data.movielens import ML100K_FILES, movielens_100k_dir
from graphrec.data.planetoid import load_planetoid, planetoid_raw_files
from graphrec.data.ppi import PPI_RAW_FILES, load_ppi
from graphrec.data.root import cache_dir, data_root

NODE = "node classification"
REC = "recommendation"


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    task: str  # NODE, NODE + " (inductive, multi-label)", or REC
    files: tuple[str, ...]  # relative to the data root
    summary: str
    ingest: Callable[[Path], Any] | None = None  # recommendation datasets: write the dataset into a new store
    aliases: tuple[str, ...] = ()  # other accepted names (case-insensitive)


def _ingest_ml100k(root: Path) -> None:
    from graphrec.store import ingest_movielens_100k

    ingest_movielens_100k(root, movielens_100k_dir(), echo=False)


def _planetoid(name: str, summary: str) -> DatasetInfo:
    root = data_root()
    return DatasetInfo(name, NODE, tuple(str(p.relative_to(root)) for p in planetoid_raw_files(name, root)), summary)


def _catalog() -> dict[str, DatasetInfo]:
    infos = [
        _planetoid("Cora", "2,708 papers, 5,429 citations, 7 classes; Planetoid public split"),
        _planetoid("CiteSeer", "3,327 papers, 4,732 citations, 6 classes; Planetoid public split"),
        _planetoid("PubMed", "19,717 papers, 44,338 citations, 3 classes; Planetoid public split"),
        DatasetInfo("PPI", NODE + " (inductive, multi-label)", tuple(f"ppi/raw/{f}" for f in PPI_RAW_FILES),
                    "24 protein graphs (20/2/2), 121 labels"),  # fmt: skip
        DatasetInfo("ml-100k", REC, tuple(f"movielens/ml-100k/{f}" for f in ML100K_FILES),
                    "MovieLens-100k (GroupLens): 943 users, 1,682 items, 100k ratings as implicit feedback",
                    _ingest_ml100k, aliases=("movielens-100k", "ml100k")),  # fmt: skip
    ]
    return {i.name: i for i in infos}


#: Every named dataset (the files are relative to the data root when this module was imported).
DATASETS: dict[str, DatasetInfo] = _catalog()


def is_dataset(name: str) -> bool:
    return any(name.lower() in (i.name.lower(), *i.aliases) for i in DATASETS.values())


def get_dataset(name: str) -> DatasetInfo:
    """The catalog entry of ``name`` (case-insensitive).

    Raises:
        ValueError: ``name`` is not in the catalog (the message lists it).
    """
    for info in DATASETS.values():
        if name.lower() in (info.name.lower(), *info.aliases):
            return info
    raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


def rec_dataset_names() -> list[str]:
    return [n for n, i in DATASETS.items() if i.task == REC]


def available_datasets() -> list[dict]:
    """One row per known dataset: where its files are (data root, cache) or what is missing."""
    rows = []
    for info in _catalog().values():  # the data root may have changed since import
        where, missing = None, list(info.files)
        for base in (data_root(), cache_dir()):
            miss = [f for f in info.files if not (base / f).exists()]
            if not miss:
                where, missing = base, []
                break
            if len(miss) < len(missing):
                missing = miss
        rows.append({"name": info.name, "task": info.task, "summary": info.summary,
                     "status": "local" if where else "missing", "path": str(where) if where else None,
                     "missing": missing})  # fmt: skip
    return rows


def load_node_dataset(name: str):
    """A node-classification dataset by name: a ``Data`` (transductive, Planetoid public
    split) or an :class:`~graphrec.data.ppi.InductiveDataset` (PPI)."""
    info = get_dataset(name)
    if not info.task.startswith(NODE):
        raise ValueError(f"{info.name!r} is a {info.task} dataset, not a node-classification one; "
                         f"node datasets: {', '.join(n for n, i in DATASETS.items() if i.task.startswith(NODE))}")  # fmt: skip
    if info.name == "PPI":
        return load_ppi()
    return load_planetoid(info.name)


def load_dataset(name: str, cfg=None):
    """Any named dataset: node classification -> ``Data`` / ``InductiveDataset``;
    recommendation -> :class:`~graphrec.data.interactions.Interactions` (``cfg``: a
    :class:`~graphrec.config.RecDataConfig` choosing the target, event types, window, k-core).

    Raises:
        ValueError: unknown name.
        DatasetNotAvailableError: the files are missing and cannot be downloaded (the message
            names the files and ``GRAPHREC_DATA``).
    """
    info = get_dataset(name)
    if info.task == REC:
        from graphrec.data.interactions import load_interactions

        return load_interactions(info.name, cfg)
    return load_node_dataset(info.name)
