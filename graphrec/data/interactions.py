"""Interactions from the graph store, split into a training graph and held-out pairs.

:class:`Interactions` holds every (user, target) event of one target type with the
store's contiguous ids, the external ids (from the store's id maps) and node features;
:meth:`Interactions.split` turns it into :class:`RecData` for one seed. The
message-passing graph of :class:`RecData` is built from the training pairs only.

A named dataset carries its own split protocol (``info["protocol"]``, from the catalog:
``published`` with the adapter's test instant, ``loo`` or ``random``); ``data.split: auto``
follows it, and a store folder without one splits at random.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from graphrec.config.rec import RecDataConfig
from graphrec.data.catalog import ad_dataset_names, get_dataset, is_dataset, rec_dataset_names
from graphrec.data.root import cache_dir
from graphrec.data.splits import (
    EdgeSplit,
    drop_cold,
    leave_one_out,
    published_split,
    random_split,
    time_split,
)
from graphrec.metrics import CSR
from graphrec.utils.io import exclusive_lock

USER = "user"
Features = tuple[Tensor | None, Tensor | None]  # (numeric x, categorical x_cat)


@dataclass
class Interactions:
    """All interactions between users and one target type, before any split."""

    user: np.ndarray  # int64, contiguous user ids
    item: np.ndarray  # int64, contiguous target ids
    time: np.ndarray  # int64, epoch seconds
    num_users: int
    num_items: int
    target: str = "item"
    user_ids: list[Any] | None = None  # external id of each user (index = contiguous id)
    item_ids: list[Any] | None = None
    user_features: Features | None = None
    item_features: Features | None = None
    info: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        src = self.info.get("dataset") or (self.info.get("store") or {}).get("root")
        return (f"Interactions({self.user.size:,} events, {self.num_users:,} users, {self.num_items:,} {self.target}s"
                + (f", from {src}" if src else "") + ")")  # fmt: skip

    def __post_init__(self) -> None:
        for name, arr, n in (("user", self.user, self.num_users), ("item", self.item, self.num_items)):
            if arr.size and (arr.min() < 0 or arr.max() >= n):
                raise ValueError(f"{name} ids must be in [0, {n}); got {arr.min()}..{arr.max()}")
        if self.user_ids is not None and len(self.user_ids) != self.num_users:
            raise ValueError(f"{len(self.user_ids)} external user ids for {self.num_users} users")
        if self.item_ids is not None and len(self.item_ids) != self.num_items:
            raise ValueError(f"{len(self.item_ids)} external {self.target} ids for {self.num_items} {self.target}s")

    @classmethod
    def from_hetero(cls, data, target: str = "item", event_types: list[str] | None = None,
                    store=None) -> Interactions:  # fmt: skip
        """Interactions from a store build (``HeteroData`` with ``('user', event, target)`` edges).

        External ids come from ``store`` (a :class:`~graphrec.store.GraphStore` or path),
        or from the store recorded in ``data.store_info`` when it exists.
        """
        if target == USER or target not in data.node_types:
            raise ValueError(f"unknown target node type {target!r}; the graph has {[t for t in data.node_types if t != USER]}")
        etypes = [et for et in data.edge_types if et[0] == USER and et[2] == target and not et[1].startswith("rev_")]
        known = sorted(et[1] for et in etypes)
        if event_types is not None:
            missing = sorted(set(event_types) - set(known))
            if missing:
                raise ValueError(f"no {missing} events on {target!r} in the graph; it has {known}")
            etypes = [et for et in etypes if et[1] in event_types]
        if not etypes:
            raise ValueError(f"the graph has no user -> {target!r} edges")
        users, items, times = [], [], []
        for et in etypes:
            s = data[et]
            users.append(s.edge_index[0].numpy())
            items.append(s.edge_index[1].numpy())
            t = getattr(s, "edge_time", None)
            times.append(t.numpy() if t is not None else np.zeros(s.edge_index.size(1), dtype=np.int64))
        n_users, n_items = int(data[USER].num_nodes), int(data[target].num_nodes)
        info: dict[str, Any] = {"event_types": [et[1] for et in etypes], "target": target}
        store_info = getattr(data, "store_info", None)
        if store_info is not None:
            info["store"] = dict(store_info)
        user_ids = item_ids = None
        if store is None and store_info is not None and Path(store_info["root"]).exists():
            store = store_info["root"]
        if store is not None:
            from graphrec.store import GraphStore

            st = store if isinstance(store, GraphStore) else GraphStore(store)
            version = store_info.get("version") if store_info else None
            user_ids = _external_ids(st, USER, version, n_users)
            item_ids = _external_ids(st, target, version, n_items)
        return cls(
            # One copy into fresh int64 arrays: no memory is shared with ``data``.
            user=np.concatenate(users, dtype=np.int64),
            item=np.concatenate(items, dtype=np.int64),
            time=np.concatenate(times, dtype=np.int64),
            num_users=n_users,
            num_items=n_items,
            target=target,
            user_ids=user_ids,
            item_ids=item_ids,
            user_features=_features(data[USER]),
            item_features=_features(data[target]),
            info=info,
        )

    @classmethod
    def from_store(cls, store, cfg: RecDataConfig | None = None, version: int | None = None) -> Interactions:
        """Build the graph of ``store`` (window, event types, k-core and feature tables from ``cfg``) and read
        its interactions.

        Raises:
            ValueError: ``cfg.features`` names a feature table the store version lacks (the message lists those it has).
        """
        from graphrec.store import GraphStore, build

        cfg = cfg or RecDataConfig()
        st = store if isinstance(store, GraphStore) else GraphStore(store)
        data = build(st, version=version, window=tuple(cfg.window) if cfg.window else None,
                     event_types=cfg.event_types, target_types=[cfg.target],
                     min_interactions=cfg.min_interactions, reverse=False,
                     feature_tables=cfg.features or None)  # fmt: skip
        return cls.from_hetero(data, cfg.target, cfg.event_types, store=st)

    @property
    def protocol(self) -> dict[str, Any]:
        """The dataset's own split protocol (``info["protocol"]``, set from the catalog by
        :func:`load_interactions`); ``{"split": "random"}`` when none was recorded (store folders)."""
        return self.info.get("protocol") or {"split": "random"}

    def split(self, cfg: RecDataConfig | None = None, seed: int = 0) -> RecData:
        """Split into train / validation / test for one run (``cfg.split_seed`` overrides ``seed``).

        ``cfg.split: auto`` follows :attr:`protocol`; ``published`` needs a protocol with a
        ``test_start`` (the published datasets of the catalog).

        Raises:
            ValueError: ``published`` on interactions without a published split.
        """
        cfg = cfg or RecDataConfig()
        method = self.protocol["split"] if cfg.split == "auto" else cfg.split
        seed = seed if cfg.split_seed is None else cfg.split_seed
        if method == "random":
            s = random_split(self.user, self.item, cfg.ratios, seed, self.time)
        elif method == "loo":
            s = leave_one_out(self.user, self.item, self.time)
        elif method == "time":
            s = time_split(self.user, self.item, self.time, quantiles=cfg.time_quantiles)
        elif method == "published":
            if "test_start" not in self.protocol:
                src = self.info.get("dataset") or "these interactions"
                raise ValueError(f"split: published needs a dataset with a published train/test split (graphrec "
                                 f"datasets: gowalla, ml-1m, amazon-cd); {src} has none: choose random, loo or time")  # fmt: skip
            start = self.protocol["test_start"]
            s = published_split(self.user, self.item, self.time, start, cfg.valid_ratio, seed)
        else:  # pragma: no cover - pydantic validates the choice
            raise ValueError(f"unknown split {cfg.split!r}")
        s = drop_cold(s, self.num_users, self.num_items, users=True, items=cfg.drop_cold_items)
        s.check_disjoint(self.num_items)
        return RecData(self.num_users, self.num_items, s, self, info={**self.info, "split": s.method, **s.info})


@dataclass
class RecData:
    """One split of :class:`Interactions`: training graph, held-out pairs, lookup tables."""

    num_users: int
    num_items: int
    split: EdgeSplit
    source: Interactions
    info: dict = field(default_factory=dict)

    @property
    def target(self) -> str:
        return self.source.target

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k} {v:,}" for k, v in self.split.sizes().items())
        return f"RecData({self.num_users:,} users, {self.num_items:,} {self.target}s; {self.split.method} split: {sizes})"

    @property
    def num_nodes(self) -> int:
        return self.num_users + self.num_items

    @property
    def train(self) -> Tensor:
        return self.split.train

    @cached_property
    def graph(self) -> Tensor:
        """Message-passing ``edge_index`` of the user+item graph: training pairs only, both directions.

        Item ``i`` is node ``num_users + i``.
        """
        u, i = self.split.train[0], self.split.train[1] + self.num_users
        return torch.stack([torch.cat([u, i]), torch.cat([i, u])])

    def csr(self, part: str) -> CSR:
        """Items per user in ``part`` (``train``, ``valid``, ``test``)."""
        return self._csr[part]

    @cached_property
    def _csr(self) -> dict[str, CSR]:
        return {p: CSR.from_pairs(getattr(self.split, p)[0], getattr(self.split, p)[1], self.num_users)
                for p in ("train", "valid", "test")}  # fmt: skip

    @cached_property
    def item_counts(self) -> Tensor:
        """Training interactions per item."""
        return torch.bincount(self.split.train[1], minlength=self.num_items)

    def train_keys(self) -> Tensor:
        """Sorted ``user * num_items + item`` of the training pairs."""
        c = self.csr("train")
        rows = torch.repeat_interleave(torch.arange(self.num_users), c.row_lengths())
        return rows * self.num_items + c.indices

    def summary(self) -> dict[str, Any]:
        return {"users": self.num_users, self.target + "s": self.num_items, **self.split.sizes(),
                "split": self.split.method}  # fmt: skip


def _external_ids(store, node_type: str, version: int | None, n: int) -> list[Any]:
    m = store.id_map(node_type, version).sort("id")
    if m.height < n:
        raise ValueError(f"the store's {node_type} id map has {m.height} ids, the graph {n} nodes")
    return m["external_id"].head(n).to_list()


def _features(node_store) -> Features | None:
    x = getattr(node_store, "x", None)
    x_cat = getattr(node_store, "x_cat", None)
    if x is None and x_cat is None:
        return None
    return (x.float() if x is not None else None, x_cat.long() if x_cat is not None else None)


# ---------------------------------------------------------------------------- named datasets
def dataset_store(name: str) -> Path:
    """A graph store holding the recommendation or ad dataset ``name``, ingested once into the cache
    (``<cache>/stores/<name>``; ``ads-synth`` is generated first, see :func:`dataset_truth`).

    Raises:
        ValueError: ``name`` is not a recommendation or ad dataset of the catalog.
        DatasetNotAvailableError: its files are missing and cannot be downloaded.
    """
    from graphrec.store import GraphStore

    info = get_dataset(name)
    if info.ingest is None:
        raise ValueError(f"{info.name!r} is a {info.task} dataset, not a recommendation or ad one; "
                         f"recommendation datasets: {', '.join(rec_dataset_names())}; "
                         f"ad datasets: {', '.join(ad_dataset_names())}")  # fmt: skip
    root = Path(cache_dir()) / "stores" / info.name.lower()
    if GraphStore.exists(root) and GraphStore(root).version >= 1:
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    # concurrent first uses wait for one ingest
    with exclusive_lock(root.parent / f".{info.name.lower()}.lock", wait=3600, dataset=info.name):
        if not (GraphStore.exists(root) and GraphStore(root).version >= 1):
            info.ingest(root)
    return root


def dataset_truth(name: str) -> Path:
    """The ground truth (``truth.npz``) of a synthetic dataset, the one :func:`dataset_store` ingests.

    ``ads-synth``: read it with :func:`graphrec.store.synth_ads.load_truth`; its
    :func:`~graphrec.store.synth_ads.true_ctr` takes the store's external user and ad ids.
    The log is generated into the cache on first use.

    Raises:
        ValueError: ``name`` has no ground truth (only the synthetic datasets have one).
    """
    from graphrec.data.catalog import ads_synth_dir
    from graphrec.store.synth_ads import TRUTH_FILE

    info = get_dataset(name)
    if info.name != "ads-synth":
        raise ValueError(f"{info.name!r} has no ground truth; the synthetic dataset with one is ads-synth")
    return ads_synth_dir() / TRUTH_FILE


def load_interactions(dataset: str | os.PathLike, cfg: RecDataConfig | None = None) -> Interactions:
    """Interactions of a named recommendation dataset (``graphrec datasets``) or of a graph-store folder.

    Raises:
        ValueError: ``dataset`` is neither a known dataset nor a store folder.
        DatasetNotAvailableError: a named dataset's files are missing and cannot be downloaded.
    """
    from graphrec.store import GraphStore

    if isinstance(dataset, str) and is_dataset(dataset):
        info = get_dataset(dataset)
        inter = Interactions.from_store(dataset_store(dataset), cfg)
        inter.info["dataset"] = info.name
        inter.info["protocol"] = info.protocol_info()  # what data.split: auto follows
        return inter
    path = Path(dataset)
    if not GraphStore.exists(path):
        raise ValueError(f"{str(dataset)!r} is neither a known recommendation dataset "
                         f"({', '.join(rec_dataset_names())}) nor a graph store folder")  # fmt: skip
    inter = Interactions.from_store(path, cfg)
    inter.info["dataset"] = str(path)
    return inter
