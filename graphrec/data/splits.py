"""Train / validation / test splits of user-item interactions.

Four protocols, all on deduplicated (user, item) pairs (implicit feedback: a pair counts
once, at the time it was *first* seen):

* :func:`random_split` — per user, a random 8:1:1 (RecBole's ``RS`` with ``group_by:
  user`` and its rounding: validation and test each get ``floor(0.1 n)`` items, at least
  one while the training part keeps more than one).
* :func:`leave_one_out` — per user, chronological: the last pair is the test item, the one
  before it the validation item, the rest train (RecBole's ``LS``: a user with two pairs
  gets one train and one test pair, a user with one pair only a train pair).
* :func:`time_split` — one global time cut: pairs before ``valid_start`` train, then
  validation until ``test_start``, then test (cuts given as timestamps or as quantiles of
  the interaction times).
* :func:`published_split` — a dataset's published train/test split, which its store
  adapter encodes in time: test is exactly the pairs at or after ``test_start``, the rest
  is training. The published files have no validation part, so one is carved from the
  training pairs: per user with ``n`` training pairs, ``floor(valid_ratio * n)`` of them at
  random (seeded), at least one when ``n >= 2`` and never all of them (the user keeps at
  least one training pair); ``valid_ratio = 0`` leaves validation empty.

``Interactions.split`` with ``data.split: auto`` picks the dataset's own protocol
(``Interactions.info["protocol"]``, set from the catalog; ``random`` for store folders).

Validation and test pairs never enter the message-passing graph: the task builds that
graph from ``train`` alone (:meth:`EdgeSplit.check_disjoint` verifies that no pair is in two
parts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import Tensor

SplitMethod = Literal["random", "loo", "time", "published"]


@dataclass
class EdgeSplit:
    """Edges ``[2, E]`` as (user, item) rows for each part, plus what produced them."""

    train: Tensor
    valid: Tensor
    test: Tensor
    method: str
    info: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"EdgeSplit({self.method}: " + ", ".join(f"{k} {v:,}" for k, v in self.sizes().items()) + ")"

    def sizes(self) -> dict[str, int]:
        return {"train": self.train.size(1), "valid": self.valid.size(1), "test": self.test.size(1)}

    def check_disjoint(self, num_items: int) -> None:
        """Raise if a (user, item) pair is in two parts (a leak into the training graph)."""
        keys = {}
        for name in ("train", "valid", "test"):
            e = getattr(self, name)
            keys[name] = e[0].long() * num_items + e[1].long()
        # One stable sort of all keys finds a shared pair (equal neighbours from two parts);
        # three hash-based intersections took ~1 s on a million pairs. Only a failure looks closer.
        k = np.concatenate([v.numpy() for v in keys.values()])
        part = np.repeat(np.arange(3, dtype=np.int8), [v.numel() for v in keys.values()])
        order = np.argsort(k, kind="stable")
        k, part = k[order], part[order]
        if not ((k[1:] == k[:-1]) & (part[1:] != part[:-1])).any():
            return
        for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")):
            both = np.intersect1d(keys[a].numpy(), keys[b].numpy())
            if both.size:
                u, i = divmod(int(both[0]), num_items)
                raise AssertionError(f"{both.size} pair(s) are in both {a} and {b}, e.g. user {u}, item {i}")


def dedup_pairs(user: np.ndarray, item: np.ndarray, time: np.ndarray | None = None):
    """Keep each (user, item) pair once, at its earliest time; output sorted by (user, time, item)."""
    user, item = np.asarray(user, dtype=np.int64), np.asarray(item, dtype=np.int64)
    if user.shape != item.shape:
        raise ValueError(f"user and item arrays differ in length: {user.shape} vs {item.shape}")
    time = np.zeros_like(user) if time is None else np.asarray(time, dtype=np.int64)
    order = np.lexsort((time, item, user))  # by user, item, then time: first of a pair is earliest
    u, i, t = user[order], item[order], time[order]
    first = np.ones(u.size, dtype=bool)
    first[1:] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
    u, i, t = u[first], i[first], t[first]
    order = np.lexsort((i, t, u))
    return u[order], i[order], t[order]


def _rank_in_group(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a sorted group vector: position of each row in its group and the group's size."""
    n = group.size
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    sizes = np.diff(np.r_[starts, n])
    start_of = np.repeat(starts, sizes)
    return np.arange(n) - start_of, np.repeat(sizes, sizes)


def _edges(u: np.ndarray, i: np.ndarray, mask: np.ndarray) -> Tensor:
    return torch.from_numpy(np.stack([u[mask], i[mask]]).astype(np.int64, copy=False))


def random_split(
    user: np.ndarray,
    item: np.ndarray,
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    time: np.ndarray | None = None,
) -> EdgeSplit:
    """Per-user random split with RecBole's rounding (see the module docstring)."""
    if len(ratios) != 3 or any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise ValueError(f"ratios must be three non-negative numbers, got {ratios}")
    total = sum(ratios)
    r_train, r_valid, r_test = (r / total for r in ratios)
    u, i, _ = dedup_pairs(user, item, time)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(u.size), u))  # random order within each user
    u, i = u[order], i[order]
    pos, n = _rank_in_group(u)
    n_valid = np.floor(r_valid * n).astype(np.int64)
    n_test = np.floor(r_test * n).astype(np.int64)
    # RecBole: a part with 0 < ratio * n < 1 gets one pair while the training part keeps > 1.
    n_train = n - n_valid - n_test
    for part, r in ((n_test, r_test), (n_valid, r_valid)):
        bump = (n_train > 1) & (r * n > 0) & (r * n < 1)
        part[bump] += 1
        n_train -= bump
    train = pos < n_train
    valid = (pos >= n_train) & (pos < n_train + n_valid)
    test = pos >= n_train + n_valid
    return EdgeSplit(_edges(u, i, train), _edges(u, i, valid), _edges(u, i, test), "random",
                     {"ratios": [r_train, r_valid, r_test], "seed": seed})  # fmt: skip


def leave_one_out(user: np.ndarray, item: np.ndarray, time: np.ndarray) -> EdgeSplit:
    """Per-user chronological leave-one-out (ties in time broken by item id)."""
    u, i, _ = dedup_pairs(user, item, time)  # sorted by user, then time
    pos, n = _rank_in_group(u)
    held = np.minimum(2, n - 1)  # validation + test pairs of the user
    n_train = n - held
    train = pos < n_train
    test = pos == n - 1
    test &= ~train
    valid = ~train & ~test
    return EdgeSplit(_edges(u, i, train), _edges(u, i, valid), _edges(u, i, test), "loo", {})


def time_split(
    user: np.ndarray,
    item: np.ndarray,
    time: np.ndarray,
    valid_start: int | None = None,
    test_start: int | None = None,
    quantiles: tuple[float, float] = (0.8, 0.9),
) -> EdgeSplit:
    """One global cut: ``time < valid_start`` train, ``< test_start`` validation, rest test.

    Without explicit cuts (epoch seconds), they are the ``quantiles`` of the pair times.
    """
    u, i, t = dedup_pairs(user, item, time)
    if valid_start is None or test_start is None:
        if not 0 < quantiles[0] <= quantiles[1] < 1:
            raise ValueError(f"time quantiles must satisfy 0 < q1 <= q2 < 1, got {quantiles}")
        qs = np.quantile(t, quantiles, method="lower") if t.size else np.zeros(2, dtype=np.int64)
        valid_start = int(qs[0]) if valid_start is None else valid_start
        test_start = int(qs[1]) if test_start is None else test_start
    if valid_start > test_start:
        raise ValueError(f"valid_start ({valid_start}) is after test_start ({test_start})")
    train = t < valid_start
    valid = (t >= valid_start) & (t < test_start)
    test = t >= test_start
    return EdgeSplit(_edges(u, i, train), _edges(u, i, valid), _edges(u, i, test), "time",
                     {"valid_start": int(valid_start), "test_start": int(test_start)})  # fmt: skip


def published_split(
    user: np.ndarray,
    item: np.ndarray,
    time: np.ndarray,
    test_start: int,
    valid_ratio: float = 0.1,
    seed: int = 0,
) -> EdgeSplit:
    """The published split encoded in time: pairs at or after ``test_start`` are the test set
    exactly; validation is carved from the rest per user (rule in the module docstring).

    Raises:
        ValueError: ``valid_ratio`` is not in [0, 1).
    """
    if not 0 <= valid_ratio < 1:
        raise ValueError(f"valid_ratio must be in [0, 1), got {valid_ratio}")
    # A pair in both train and test (the published files have none) stays in train.
    u, i, t = dedup_pairs(user, item, time)
    test = t >= test_start
    tu, ti = u[~test], i[~test]
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(tu.size), tu))  # random order within each user
    tu, ti = tu[order], ti[order]
    pos, n = _rank_in_group(tu)
    n_valid = np.floor(valid_ratio * n).astype(np.int64)
    if valid_ratio > 0:
        # at least one when n >= 2, and the user keeps one training pair
        n_valid = np.clip(n_valid, np.minimum(1, n - 1), n - 1)
    valid = pos < n_valid
    return EdgeSplit(_edges(tu, ti, ~valid), _edges(tu, ti, valid), _edges(u, i, test), "published",
                     {"test_start": int(test_start), "valid_ratio": valid_ratio, "seed": seed})  # fmt: skip


def drop_cold(split: EdgeSplit, num_users: int, num_items: int, users: bool = True, items: bool = False) -> EdgeSplit:
    """Remove validation/test pairs whose user (and optionally item) has no training pair."""
    has_u = torch.zeros(num_users, dtype=torch.bool)
    has_u[split.train[0]] = True
    has_i = torch.zeros(num_items, dtype=torch.bool)
    has_i[split.train[1]] = True
    dropped = {}

    def keep(e: Tensor, name: str) -> Tensor:
        m = torch.ones(e.size(1), dtype=torch.bool)
        if users:
            m &= has_u[e[0]]
        if items:
            m &= has_i[e[1]]
        dropped[name] = int((~m).sum())
        return e[:, m]

    out = EdgeSplit(split.train, keep(split.valid, "valid"), keep(split.test, "test"), split.method, dict(split.info))
    out.info["dropped_cold"] = dropped
    return out
