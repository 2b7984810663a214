"""Warm start from a published model, and its embeddings mapped onto tonight's ids.

A published version is a model folder (:class:`~graphrec.serving.format.ModelFolder`): the
model's weights, the external ids of its users and targets, and the interactions it knew.
Tonight's model may know more users and targets. Rows are matched by
external id: rows of nodes the published model was trained on take its weights; the others
(new ids, or ids it had a row for but no interaction with, e.g. users known from a side
table only) are new: they keep their fresh initialisation or are folded in. Parameters other than the ID-embedding
table are copied when their shapes match.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from graphrec.serving.format import ModelFolder


def _row_map(old_ids: list[Any], new_ids: list[Any], trained: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(new rows, old rows)`` of the external ids present in both (and, with ``trained``,
    whose old row was trained: an id the old model had a row for but no interaction with
    kept its random initialisation, so it counts as new)."""
    old = {x: n for n, x in enumerate(old_ids) if trained is None or trained[n]}
    new_rows, old_rows = [], []
    for n, x in enumerate(new_ids):
        o = old.get(x)
        if o is not None:
            new_rows.append(n)
            old_rows.append(o)
    return np.asarray(new_rows, np.int64), np.asarray(old_rows, np.int64)


@dataclass
class WarmStartReport:
    users_kept: int = 0
    users_new: int = 0
    targets_kept: int = 0
    targets_new: int = 0
    copied: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)  # parameters left at their initialisation
    folded_in: dict[str, int] = field(default_factory=dict)  # new nodes started from their neighbours
    new_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # embedding rows not copied

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "new_rows"}


def published_ids(folder: Path, target: str) -> tuple[list[Any], list[Any]]:
    m = ModelFolder(folder)
    return m.ids("user"), m.ids(target)


@torch.no_grad()
def warm_start(model: nn.Module, folder: Path, user_ids: list[Any], target_ids: list[Any],
               target: str = "item", train_pairs: Tensor | None = None) -> WarmStartReport:  # fmt: skip
    """Load the published model in ``folder`` into ``model`` (a ``BipartiteRecommender``), by external id.

    The rows of the model's ID-embedding table (``model.id_embedding_key``) are remapped;
    every other parameter is copied when its shape matches.

    With ``train_pairs`` (``[2, E]`` user, target rows of the training graph), new nodes
    are *folded in*: a new user's ID embedding starts as the mean of the published
    embeddings of the targets it interacted with (and a new target's as the mean of its known
    users'), so it starts where its neighbours are instead of at random; nodes without a
    known neighbour keep their fresh initialisation.
    """
    published = ModelFolder(folder)
    state = published.state_dict()
    old_users, old_targets = published.ids("user"), published.ids(target)
    seen_u, seen_t = published.seen()
    trained_u = np.bincount(seen_u, minlength=len(old_users))[: len(old_users)] > 0
    trained_t = np.bincount(seen_t, minlength=len(old_targets))[: len(old_targets)] > 0
    key = model.id_embedding_key
    report = WarmStartReport()
    own = model.state_dict()
    for name, value in state.items():
        if name == key and name in own:
            w = own[name]
            if value.shape[0] != len(old_users) + len(old_targets) or value.shape[1] != w.shape[1]:
                report.fresh.append(name)
                continue
            nu, ou = _row_map(old_users, user_ids, trained_u)
            nt, ot = _row_map(old_targets, target_ids, trained_t)
            w[torch.from_numpy(nu)] = value[torch.from_numpy(ou)]
            w[torch.from_numpy(nt + len(user_ids))] = value[torch.from_numpy(ot + len(old_users))]
            report.users_kept, report.users_new = int(nu.size), len(user_ids) - int(nu.size)
            report.targets_kept, report.targets_new = int(nt.size), len(target_ids) - int(nt.size)
            report.copied.append(name)
            copied = np.zeros(w.size(0), dtype=bool)
            copied[nu] = True
            copied[nt + len(user_ids)] = True
            report.new_rows = np.flatnonzero(~copied)
            if train_pairs is not None:
                report.folded_in = _fold_in(w, train_pairs, len(user_ids), len(target_ids), nu, nt)
        elif name in own and own[name].shape == value.shape:
            own[name].copy_(value)
            report.copied.append(name)
        else:
            report.fresh.append(name)
    report.fresh += [n for n in own if n not in state]
    return report


def _fold_in(w: Tensor, pairs: Tensor, n_users: int, n_targets: int, known_u: np.ndarray,
             known_t: np.ndarray) -> dict[str, int]:  # fmt: skip
    """Set rows of new users (targets) of the embedding table ``w`` to the mean of their known neighbours' rows."""
    is_known = torch.zeros(n_users + n_targets, dtype=torch.bool)
    is_known[torch.from_numpy(known_u)] = True
    is_known[torch.from_numpy(known_t + n_users)] = True
    u, t = pairs[0].long(), pairs[1].long() + n_users
    out = {}
    for name, dst, src in (("users", u, t), ("targets", t, u)):
        keep = ~is_known[dst] & is_known[src]
        dst, src = dst[keep], src[keep]
        if dst.numel() == 0:
            out[name] = 0
            continue
        total = torch.zeros_like(w).index_add_(0, dst, w[src])
        count = torch.bincount(dst, minlength=w.size(0)).to(w.dtype)
        rows = torch.nonzero(count).view(-1)
        w[rows] = total[rows] / count[rows, None]
        out[name] = int(rows.numel())
    return out


def published_embeddings(folder: Path, target: str, user_ids: list[Any], target_ids: list[Any]) -> tuple[Tensor, Tensor]:
    """The published output embeddings arranged in tonight's ids (zeros for nodes it does not know)."""
    published = ModelFolder(folder)

    def arrange(node_type: str, ids: list[Any]) -> Tensor:
        emb = published.embeddings(node_type)
        out = np.zeros((len(ids), emb.shape[1]), np.float32)
        new_rows, old_rows = _row_map(published.ids(node_type), ids)
        out[new_rows] = emb[old_rows]
        return torch.from_numpy(out)

    return arrange("user", user_ids), arrange(target, target_ids)


def published_scorer(folder: Path):
    """The published model's scorer, with its learned values when it has any."""
    return ModelFolder(folder).load_scorer()
