"""Ranking metrics for recommendation, computed from top-k lists in bounded memory.

Full-ranking protocol (RecBole's): every user with at least one ground-truth item in the
split is scored against *all* items; the items the user interacted with in earlier
splits are masked (score -inf) before the top-k is taken. Per user, with ``h_r = 1`` when
the item at rank r (1-based) is relevant and ``G`` the set of relevant items:

* ``recall@k``    = sum_{r<=k} h_r / |G|
* ``precision@k`` = sum_{r<=k} h_r / k
* ``hit@k``       = 1 if any h_r (r <= k)
* ``mrr@k``       = 1 / (rank of the first hit), 0 without a hit
* ``ndcg@k``      = sum_{r<=k} h_r / log2(r + 1), divided by the same sum for an ideal
  list with min(|G|, k) hits
* ``map@k``       = sum_{r<=k} h_r * precision@r / min(|G|, k)

and ``coverage@k`` = share of the catalogue that appears in at least one user's top-k.
Means are over evaluated users. The definitions agree with RecBole and with
``torch_geometric.metrics.LinkPred*`` (the tests check the latter on random data).

:func:`evaluate_topk` scores users in chunks: memory is O(chunk x items), never
O(users x items).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from graphrec.metrics import ALL_METRICS
from graphrec.utils import distributed as du


@dataclass(frozen=True)
class CSR:
    """Items per user in compressed rows: user u's items are ``indices[indptr[u]:indptr[u+1]]``."""

    indptr: Tensor  # [num_users + 1], int64
    indices: Tensor  # [nnz], int64, sorted within each row

    @classmethod
    def from_pairs(cls, users: Tensor, items: Tensor, num_users: int) -> CSR:
        """Rows from (user, item) pairs; duplicate pairs are kept once."""
        users, items = users.long(), items.long()
        if users.numel():
            if int(users.min()) < 0 or int(users.max()) >= num_users:
                raise ValueError(f"user ids must be in [0, {num_users}); got {int(users.min())}..{int(users.max())}")
            n_items = int(items.max()) + 1
            key = torch.unique(users * n_items + items)  # sorted: by user, then item
            users, items = key // n_items, key % n_items
        counts = torch.bincount(users, minlength=num_users)
        indptr = torch.zeros(num_users + 1, dtype=torch.long)
        indptr[1:] = torch.cumsum(counts, 0)
        return cls(indptr, items)

    @property
    def num_rows(self) -> int:
        return self.indptr.numel() - 1

    def row_lengths(self) -> Tensor:
        return self.indptr[1:] - self.indptr[:-1]

    def rows(self, start: int, end: int) -> tuple[Tensor, Tensor]:
        """``(row offset within [start, end), item)`` pairs of rows start..end-1."""
        lo, hi = int(self.indptr[start]), int(self.indptr[end])
        lengths = self.row_lengths()[start:end]
        rows = torch.repeat_interleave(torch.arange(end - start), lengths)
        return rows, self.indices[lo:hi]

    def row(self, u: int) -> Tensor:
        return self.indices[int(self.indptr[u]) : int(self.indptr[u + 1])]

    def union(self, other: CSR) -> CSR:
        """Row-wise union of two CSR with the same number of rows."""
        if other.num_rows != self.num_rows:
            raise ValueError(f"row counts differ: {self.num_rows} and {other.num_rows}")
        r1 = torch.repeat_interleave(torch.arange(self.num_rows), self.row_lengths())
        r2 = torch.repeat_interleave(torch.arange(other.num_rows), other.row_lengths())
        return CSR.from_pairs(torch.cat([r1, r2]), torch.cat([self.indices, other.indices]), self.num_rows)


def hits_from_topk(topk: Tensor, truth_keys: Tensor, rows: Tensor, num_items: int) -> Tensor:
    """``[B, k]`` bool: is ``topk[b, r]`` among the relevant items of row ``rows[b]``?

    ``truth_keys`` holds ``row * num_items + item`` for every relevant pair, sorted.
    """
    keys = rows.view(-1, 1) * num_items + topk
    if truth_keys.numel() == 0:
        return torch.zeros_like(keys, dtype=torch.bool)
    pos = torch.searchsorted(truth_keys, keys).clamp_(max=truth_keys.numel() - 1)
    return truth_keys[pos] == keys


def per_user_metrics(hits: Tensor, num_relevant: Tensor, k: int) -> dict[str, Tensor]:
    """Per-user metric values at cut-off ``k`` from a ``[B, >=k]`` hit matrix."""
    h = hits[:, :k].to(torch.float64)
    n = num_relevant.to(torch.float64)
    ranks = torch.arange(1, k + 1, dtype=torch.float64)
    found = h.sum(1)
    discount = 1.0 / torch.log2(ranks + 1.0)
    idcg = torch.cumsum(discount, 0)[(num_relevant.clamp(min=1, max=k) - 1).long()]
    denom = n.clamp(min=1.0)
    return {
        "recall": found / denom,
        "precision": found / k,
        "hit": (found > 0).to(torch.float64),
        "mrr": (h / ranks).max(1).values,
        "ndcg": (h * discount).sum(1) / idcg,
        "map": ((torch.cumsum(h, 1) / ranks) * h).sum(1) / n.clamp(min=1.0, max=float(k)),
    }


class RankingAccumulator:
    """Sums per-user metrics over chunks; :meth:`result` returns the means and coverage."""

    def __init__(self, ks: Sequence[int], num_items: int, metrics: Iterable[str] = ALL_METRICS):
        self.ks = sorted({int(k) for k in ks})
        if not self.ks or self.ks[0] < 1:
            raise ValueError(f"cut-offs k must be positive integers, got {list(ks)}")
        self.metrics = list(metrics)
        unknown = set(self.metrics) - set(ALL_METRICS)
        if unknown:
            raise ValueError(f"unknown metric(s) {sorted(unknown)}; known: {list(ALL_METRICS)}")
        self.num_items = num_items
        self.sums = {f"{m}@{k}": 0.0 for m in self.metrics if m != "coverage" for k in self.ks}
        self.covered = {k: torch.zeros(num_items, dtype=torch.bool) for k in self.ks} if "coverage" in self.metrics else {}
        self.users = 0

    @property
    def max_k(self) -> int:
        return self.ks[-1]

    def update(self, topk: Tensor, hits: Tensor, num_relevant: Tensor) -> None:
        """Add a chunk: ``topk`` [B, max_k] item ids, ``hits`` [B, max_k], ``num_relevant`` [B] (> 0)."""
        self.users += int(topk.size(0))
        for k in self.ks:
            vals = per_user_metrics(hits, num_relevant, k)
            for m in self.metrics:
                if m != "coverage":
                    self.sums[f"{m}@{k}"] += float(vals[m].sum())
            if k in self.covered:
                self.covered[k][topk[:, :k].reshape(-1)] = True

    def all_reduce(self) -> None:
        """Sum the counts and sums of every rank's accumulator (and OR the coverage masks), so that
        :meth:`result` gives the metrics of all ranks' users on every rank; a no-op in a single process."""
        if not du.is_distributed():
            return
        names = list(self.sums)  # built in the same order on every rank
        sums = torch.tensor([self.sums[n] for n in names] + [float(self.users)], dtype=torch.float64)
        du.all_reduce_(sums, "sum", "reducing the ranking metrics")
        self.sums = {n: float(v) for n, v in zip(names, sums[:-1].tolist(), strict=True)}
        self.users = int(round(float(sums[-1])))
        for k, mask in self.covered.items():
            m = mask.to(torch.uint8)
            du.all_reduce_(m, "max", "reducing the coverage")
            self.covered[k] = m.bool()

    def result(self) -> dict[str, float]:
        out = {name: (s / self.users if self.users else 0.0) for name, s in self.sums.items()}
        for k, mask in self.covered.items():
            out[f"coverage@{k}"] = float(mask.float().mean()) if self.num_items else 0.0
        out["users"] = float(self.users)
        return out


def default_chunk_size(num_items: int, budget_bytes: int = 256 * 2**20) -> int:
    """Users per chunk so that one chunk's float32 score matrix stays within ``budget_bytes``."""
    return max(1, budget_bytes // max(4 * num_items, 1))


def evaluate_topk(
    score_fn: Callable[[Tensor], Tensor],
    truth: CSR,
    num_items: int,
    ks: Sequence[int] = (10, 20),
    exclude: CSR | Sequence[CSR] | None = None,
    users: Tensor | None = None,
    chunk_size: int | None = None,
    metrics: Iterable[str] = ALL_METRICS,
    shard: bool = False,
) -> dict[str, float]:
    """Full-ranking metrics of ``score_fn`` against ``truth``.

    Args:
        score_fn: ``score_fn(user_ids [B]) -> [B, num_items]`` scores (higher is better).
        truth: relevant items per user (rows = all users).
        exclude: items to mask per user (e.g. the training interactions); one CSR or several.
        users: users to evaluate (default: every user with at least one relevant item).
        chunk_size: users per chunk (default: :func:`default_chunk_size`).
        shard: on several ranks (``torch.distributed``), each rank ranks a contiguous share of the users and
            the sums are all-reduced: every rank returns the metrics of all users (every rank must call it).
    Returns:
        ``{"recall@10": ..., "ndcg@10": ..., ..., "coverage@20": ..., "users": n}``.
    """
    acc = RankingAccumulator(ks, num_items, metrics)
    if acc.max_k > num_items:
        raise ValueError(f"k={acc.max_k} exceeds the number of items ({num_items})")
    excludes = [] if exclude is None else ([exclude] if isinstance(exclude, CSR) else list(exclude))
    for e in excludes:
        if e.num_rows != truth.num_rows:
            raise ValueError(f"exclude has {e.num_rows} rows, truth has {truth.num_rows}")
    lengths = truth.row_lengths()
    if users is None:
        users = torch.nonzero(lengths > 0).view(-1)
    else:
        users = users.long()
        users = users[lengths[users] > 0]
    if shard and du.is_distributed():
        a, b = du.shard_range(users.numel(), du.rank(), du.world_size())
        users = users[a:b]
    chunk = chunk_size or default_chunk_size(num_items)
    for start in range(0, users.numel(), chunk):
        batch = users[start : start + chunk]
        with torch.no_grad():
            scores = score_fn(batch).float()
        if scores.shape != (batch.numel(), num_items):
            raise ValueError(f"score_fn returned shape {tuple(scores.shape)}, expected ({batch.numel()}, {num_items})")
        scores = scores.clone() if not scores.is_contiguous() else scores
        dev = scores.device  # scores may live on a GPU: mask and take the top-k there, count hits on the CPU
        for e in excludes:
            rows, cols = _gather_rows(e, batch)
            scores[rows.to(dev), cols.to(dev)] = -math.inf
        values, topk = torch.topk(scores, acc.max_k, dim=1)
        del scores
        values, topk = values.cpu(), topk.cpu()
        t_rows, t_cols = _gather_rows(truth, batch)
        keys = t_rows * num_items + t_cols  # sorted: rows ascend, items sorted within rows
        hits = hits_from_topk(topk, keys, torch.arange(batch.numel()), num_items)
        hits &= values > -math.inf  # a masked item never counts, even if it is also relevant
        acc.update(topk, hits, lengths[batch])
    if shard:
        acc.all_reduce()
    return acc.result()


def _gather_rows(csr: CSR, users: Tensor) -> tuple[Tensor, Tensor]:
    """``(position in users, item)`` for every item of the given users."""
    starts, ends = csr.indptr[users], csr.indptr[users + 1]
    lengths = ends - starts
    rows = torch.repeat_interleave(torch.arange(users.numel()), lengths)
    if rows.numel() == 0:
        return rows, rows
    offsets = torch.cumsum(lengths, 0) - lengths
    pos = torch.arange(rows.numel()) - offsets[rows] + starts[rows]
    return rows, csr.indices[pos]
