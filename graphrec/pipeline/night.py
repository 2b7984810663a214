"""The data of one night: training graph, the night's held-out pairs, the canary set.

Protocol (the same every night, for warm starts and cold retrains alike):

* The training window ends with the night's day ``D`` (all history, or the last
  ``window_days`` days). Pairs are deduplicated at their first time.
* Pairs first seen before ``D`` are training pairs. Each user's pairs first seen on ``D``
  are split at random (``night.holdout``, default 8:1:1, RecBole's rounding) into training,
  validation and *held-out* pairs: the held-out pairs measure how well tonight's model
  ranks what users did today, and never enter the message-passing graph.
* The **canary set** is frozen on the first night: ``users`` users drawn among those with
  at least ``min_interactions`` pairs, and a random ``fraction`` of each one's pairs. Those
  pairs are excluded from training on every night, so the canary measures every model on
  the same questions.

Validation and held-out pairs of users without a training pair are dropped (nothing can
rank for them); the counts are recorded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch

from graphrec.data.interactions import Interactions, RecData
from graphrec.data.splits import EdgeSplit, dedup_pairs, drop_cold, random_split
from graphrec.metrics import CSR, evaluate_topk
from graphrec.nn.score import DotScore, Scorer
from graphrec.utils.io import atomic_open

CANARY_COLUMNS = ("user_external_id", "target_external_id")


@dataclass
class NightData:
    data: RecData  # train / valid / test (= tonight's held-out pairs)
    canary: torch.Tensor  # [2, C] canary pairs in tonight's ids (may be empty)
    info: dict

    @property
    def canary_csr(self) -> CSR:
        return CSR.from_pairs(self.canary[0], self.canary[1], self.data.num_users)


def _keys(u: np.ndarray, i: np.ndarray, n_items: int) -> np.ndarray:
    return u.astype(np.int64) * n_items + i.astype(np.int64)


def draw_canary(inter: Interactions, before: int | None, users: int, min_interactions: int, fraction: float,
                seed: int) -> pl.DataFrame:  # fmt: skip
    """Draw the canary set from the pairs first seen before ``before`` (epoch seconds; None: all)."""
    u, i, t = dedup_pairs(inter.user, inter.item, inter.time)
    if before is not None and bool((t < before).any()):
        keep = t < before
        u, i = u[keep], i[keep]
    counts = np.bincount(u, minlength=inter.num_users)
    eligible = np.flatnonzero(counts >= min_interactions)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(eligible, size=min(users, eligible.size), replace=False))
    picked_u, picked_i = [], []
    for user in chosen:
        items = i[u == user]
        n = max(1, math.floor(fraction * items.size))
        take = rng.choice(items, size=n, replace=False)
        picked_u.append(np.full(n, user))
        picked_i.append(np.sort(take))
    cu = np.concatenate(picked_u) if picked_u else np.zeros(0, np.int64)
    ci = np.concatenate(picked_i) if picked_i else np.zeros(0, np.int64)
    uid = inter.user_ids or list(range(inter.num_users))
    iid = inter.item_ids or list(range(inter.num_items))
    return pl.DataFrame({CANARY_COLUMNS[0]: [uid[x] for x in cu], CANARY_COLUMNS[1]: [iid[x] for x in ci]})


def load_or_draw_canary(path: Path, inter: Interactions, before: int | None, cfg) -> pl.DataFrame:
    """The frozen canary set at ``path``; drawn and written (atomically) when it does not exist."""
    if path.is_file():
        return pl.read_parquet(path)
    df = draw_canary(inter, before, cfg.users, cfg.min_interactions, cfg.fraction, cfg.seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as fh:
        df.write_parquet(fh)
    return df


def canary_pairs(canary: pl.DataFrame, inter: Interactions) -> np.ndarray:
    """Canary pairs ``[2, C]`` in the ids of ``inter`` (pairs of unknown ids are dropped)."""
    if canary.height == 0:
        return np.zeros((2, 0), np.int64)
    uid = {x: n for n, x in enumerate(inter.user_ids or range(inter.num_users))}
    iid = {x: n for n, x in enumerate(inter.item_ids or range(inter.num_items))}
    u = np.array([uid.get(x, -1) for x in canary[CANARY_COLUMNS[0]].to_list()], np.int64)
    i = np.array([iid.get(x, -1) for x in canary[CANARY_COLUMNS[1]].to_list()], np.int64)
    ok = (u >= 0) & (i >= 0)
    return np.stack([u[ok], i[ok]])


def night_split(inter: Interactions, day_start: int, day_end: int, holdout: tuple[float, float, float],
                seed: int, canary: np.ndarray | None = None) -> NightData:  # fmt: skip
    """Split ``inter`` for the night ``[day_start, day_end)`` (see the module docstring)."""
    u, i, t = dedup_pairs(inter.user, inter.item, inter.time)
    n_items = inter.num_items
    canary = np.zeros((2, 0), np.int64) if canary is None else np.asarray(canary, np.int64)
    is_canary = np.isin(_keys(u, i, n_items), _keys(canary[0], canary[1], n_items))
    today = (t >= day_start) & (t < day_end) & ~is_canary
    past = (t < day_start) & ~is_canary
    day = random_split(u[today], i[today], holdout, seed, t[today])
    train = torch.cat([torch.from_numpy(np.stack([u[past], i[past]])), day.train], dim=1)
    split = EdgeSplit(train, day.valid, day.test, "nightly",
                      {"day_start": int(day_start), "day_end": int(day_end), "holdout": list(holdout), "seed": seed})  # fmt: skip
    split = drop_cold(split, inter.num_users, n_items, users=True, items=False)
    split.check_disjoint(n_items)
    data = RecData(inter.num_users, n_items, split, inter, info={**inter.info, "split": "nightly", **split.info})
    info = {
        "pairs": int(u.size),
        "history_pairs": int(past.sum()),
        "day_pairs": int(today.sum()),
        "day_users": int(np.unique(u[today]).size),
        "canary_pairs": int(is_canary.sum()),
        **{f"{k}_pairs": v for k, v in split.sizes().items()},
        "dropped_cold": split.info.get("dropped_cold", {}),
    }
    return NightData(data, torch.from_numpy(canary[:, np.isin(_keys(canary[0], canary[1], n_items),
                                                             _keys(u, i, n_items))]), info)  # fmt: skip


def rank_metrics(user_emb: torch.Tensor, item_emb: torch.Tensor, night: NightData, part: str,
                 ks: list[int], scorer: Scorer | None = None) -> dict[str, float]:  # fmt: skip
    """Full-ranking metrics of embeddings scored by ``scorer`` (default: inner product) on
    ``holdout`` (training and validation items masked) or ``canary`` (training items masked)."""
    d = night.data
    if part == "holdout":
        truth, exclude = d.csr("test"), [d.csr("train"), d.csr("valid")]
    elif part == "canary":
        truth, exclude = night.canary_csr, [d.csr("train")]
    else:
        raise ValueError(f"part must be 'holdout' or 'canary', got {part!r}")
    if truth.indices.numel() == 0:
        return {"users": 0}
    scorer = scorer if scorer is not None else DotScore()
    out = evaluate_topk(scorer.score_fn(user_emb, item_emb), truth, d.num_items, ks, exclude)
    out["users"] = int(out["users"])
    return out
