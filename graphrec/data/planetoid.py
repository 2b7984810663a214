"""Planetoid citation graphs (Cora, CiteSeer, PubMed) with the public split."""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphrec.data.root import (
    NETWORK_ERRORS,
    cache_dir,
    data_root,
    missing_error,
    writable_copy,
)

if TYPE_CHECKING:  # torch and PyG load when a dataset does, not when the catalog is listed
    from torch_geometric.data import Data

PLANETOID_NAMES = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
_RAW_SUFFIXES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


def canonical_planetoid_name(name: str) -> str:
    try:
        return PLANETOID_NAMES[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown Planetoid dataset {name!r}; choose from {sorted(PLANETOID_NAMES.values())}"
        ) from None


def planetoid_raw_files(name: str, root=None) -> list:
    name = canonical_planetoid_name(name)
    raw = (root or data_root()) / "planetoid" / name / "raw"
    return [raw / f"ind.{name.lower()}.{s}" for s in _RAW_SUFFIXES]


def load_planetoid(name: str, root=None) -> Data:
    """Load ``name`` with the Planetoid public split (140/500/1000 train/val/test for Cora).

    Raw files are read from ``<root>/planetoid/<Name>/raw`` and mirrored into the cache,
    because PyG writes ``processed/`` next to ``raw/`` and the data root may be read-only.
    Missing files are downloaded into the cache when the network allows.
    """
    name = canonical_planetoid_name(name)
    root = root or data_root()
    files = planetoid_raw_files(name, root)
    missing = [f for f in files if not f.exists()]
    if missing:
        base = cache_dir() / "planetoid"  # downloads land in the cache, never in the data root
    elif root == cache_dir():
        base = root / "planetoid"
    else:
        # PyG writes processed/ beside raw/; the data root may be shared or read-only.
        base = writable_copy(root / "planetoid" / name / "raw", f"planetoid/{name}/raw").parents[1]
    try:
        from torch_geometric.datasets import Planetoid

        ds = Planetoid(str(base), name, split="public")
    except NETWORK_ERRORS as exc:
        raise missing_error(name, missing, Planetoid.url, str(exc)) from exc
    data = ds[0]
    data.name = name
    data.num_classes = int(ds.num_classes)
    return data


def label_rate_split(data: Data, rate: float, seed: int) -> Data:
    """Training set of ``rate * num_nodes`` labelled nodes, drawn at random outside the public
    validation and test sets, with at least one node per class (Li et al., 2018 protocol).
    Validation and test masks stay the public ones."""
    import torch

    if not 0 < rate < 1:
        raise ValueError(f"label rate must be in (0, 1), got {rate}")
    gen = torch.Generator().manual_seed(seed)
    n = data.num_nodes
    pool = (~data.val_mask & ~data.test_mask).nonzero().view(-1)
    n_train = max(int(round(rate * n)), int(data.y.max()) + 1)
    perm = pool[torch.randperm(pool.numel(), generator=gen)]
    chosen = []
    # One node per class first, so no class is absent from training.
    for c in range(int(data.y.max()) + 1):
        of_c = perm[data.y[perm] == c]
        if of_c.numel():
            chosen.append(of_c[:1])
    chosen = torch.cat(chosen)
    rest = perm[~torch.isin(perm, chosen)][: max(n_train - chosen.numel(), 0)]
    train = torch.zeros(n, dtype=torch.bool)
    train[torch.cat([chosen, rest])] = True
    out = data.clone()
    out.train_mask = train
    return out
