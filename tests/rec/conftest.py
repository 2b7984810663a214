"""Fixtures of the recommendation tests: a small planted-preference interaction log."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec.data.interactions import Interactions
from graphrec.tasks.link import build_rec_model, fit_link
from graphrec.utils.seed import seed_everything


def planted(num_users=120, num_items=80, clusters=4, per_user=16, seed=0) -> Interactions:
    """Users of cluster c mostly pick items of cluster c: a graph with signal to learn."""
    rng = np.random.default_rng(seed)
    uc = rng.integers(0, clusters, num_users)
    ic = np.arange(num_items) % clusters
    users, items = [], []
    for u in range(num_users):
        own = np.flatnonzero(ic == uc[u])
        pick = rng.choice(own, per_user - 3, replace=False).tolist()
        pick += rng.choice(num_items, 3, replace=False).tolist()
        for i in dict.fromkeys(pick):
            users.append(u)
            items.append(i)
    users, items = np.array(users), np.array(items)
    return Interactions(users, items, rng.integers(0, 10**6, users.size), num_users, num_items,
                        user_ids=[f"u{u}" for u in range(num_users)], item_ids=[1000 + i for i in range(num_items)])  # fmt: skip


@pytest.fixture
def inter() -> Interactions:
    return planted()


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny graphs: one torch thread is faster than several (and the CI box is shared)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def run_rec(data, cfg, seed: int = 0, **trainer_options):
    """Seed, build the configured recommender, fit it: ``(model, result)``."""
    seed_everything(seed)
    model = build_rec_model(cfg, data)
    return model, fit_link(data, model, cfg, **trainer_options)
