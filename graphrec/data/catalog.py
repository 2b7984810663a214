"""The datasets graphrec knows by name, and where each one is found."""

from __future__ import annotations

from dataclasses import dataclass

from graphrec.data.movielens import ML100K_FILES
from graphrec.data.planetoid import canonical_planetoid_name, load_planetoid, planetoid_raw_files
from graphrec.data.ppi import PPI_RAW_FILES, load_ppi
from graphrec.data.root import cache_dir, data_root


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    task: str
    files: tuple[str, ...]  # relative to the data root


def _planetoid(name: str) -> DatasetInfo:
    root = data_root()
    return DatasetInfo(
        name, "node classification", tuple(str(p.relative_to(root)) for p in planetoid_raw_files(name, root))
    )


DATASETS: dict[str, DatasetInfo] = {
    "Cora": _planetoid("Cora"),
    "CiteSeer": _planetoid("CiteSeer"),
    "PubMed": _planetoid("PubMed"),
    "PPI": DatasetInfo("PPI", "node classification (inductive, multi-label)", tuple(f"ppi/raw/{f}" for f in PPI_RAW_FILES)),
    "ml-100k": DatasetInfo("ml-100k", "recommendation", tuple(f"movielens/ml-100k/{f}" for f in ML100K_FILES)),
}


def available_datasets() -> list[dict]:
    """One row per known dataset: where its files are (data root, cache) or what is missing."""
    rows = []
    for info in DATASETS.values():
        where, missing = None, list(info.files)
        for base in (data_root(), cache_dir()):
            miss = [f for f in info.files if not (base / f).exists()]
            if not miss:
                where, missing = base, []
                break
            if len(miss) < len(missing):
                missing = miss
        rows.append(
            {
                "name": info.name,
                "task": info.task,
                "status": "local" if where else "missing",
                "path": str(where) if where else None,
                "missing": missing,
            }
        )
    return rows


def load_node_dataset(name: str):
    """A homogeneous node-classification dataset by name: a ``Data`` (transductive) or an
    ``InductiveDataset`` (PPI)."""
    if name.lower() == "ppi":
        return load_ppi()
    return load_planetoid(canonical_planetoid_name(name))
