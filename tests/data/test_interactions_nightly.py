"""The nightly build path: a warm partition cache plus one new day gives the same interactions."""

import numpy as np
import polars as pl
import pytest

from graphrec.config.rec import RecDataConfig
from graphrec.data.interactions import Interactions
from graphrec.store import GraphStore, LogSchema, build, ingest, synth

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny graphs: one thread is fastest

SIZES = {"users": 120, "items": 80, "ads": 20}


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    root = tmp_path_factory.mktemp("nightly")
    synth(root / "logs", events=4000, days=4, seed=3, **SIZES)
    synth(root / "delta", events=400, days=1, first_day=4, seed=3, side_tables=False, **SIZES)
    return root


def _same(a: Interactions, b: Interactions) -> None:
    for name in ("user", "item", "time"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype == np.int64 and np.array_equal(x, y), name
    assert (a.num_users, a.num_items, a.user_ids, a.item_ids) == (
        b.num_users,
        b.num_items,
        b.user_ids,
        b.item_ids,
    )
    for fa, fb in ((a.user_features, b.user_features), (a.item_features, b.item_features)):
        assert (fa is None) == (fb is None)
        if fa is not None:
            for ta, tb in zip(fa, fb, strict=True):
                assert (ta is None and tb is None) or bool((ta == tb).all())
    assert a.info == b.info


@pytest.mark.parametrize("first_day", ["2024-01-01", "2024-01-02"], ids=["growing", "sliding"])
def test_night_after_night_equals_a_cold_rebuild(logs, tmp_path, first_day):
    schema = LogSchema.load(logs / "logs" / "schema.yaml")
    ingest(tmp_path / "st", [logs / "logs" / "events"], attributes={"item": logs / "logs" / "items.parquet"},
           schema=schema, echo=False)  # fmt: skip
    store = GraphStore(tmp_path / "st")
    # last night's build warms the cache
    Interactions.from_store(store, RecDataConfig(window=("2024-01-01", "2024-01-05")))
    ingest(store, [logs / "delta" / "events"], echo=False)
    cfg = RecDataConfig(window=(first_day, "2024-01-06"), target="item")
    tonight = Interactions.from_store(store, cfg, version=store.version)

    cold = build(
        store,
        version=store.version,
        window=cfg.window,
        target_types=["item"],
        reverse=False,
        cache=False,
    )
    _same(tonight, Interactions.from_hetero(cold, "item", store=store))
    assert tonight.time.min() >= np.datetime64(first_day, "s").astype(np.int64)
    items = (
        store.events(start=first_day, end="2024-01-06")
        .filter(pl.col("target_type") == "item")
        .collect()
    )
    assert tonight.user.shape[0] == items.height > 2000


def test_interactions_own_their_arrays(logs, tmp_path):
    ingest(tmp_path / "st", [logs / "logs" / "events"], schema=LogSchema.load(logs / "logs" / "schema.yaml"),
           echo=False)  # fmt: skip
    data = build(tmp_path / "st", event_types=["click"], target_types=["item"], reverse=False)
    inter = Interactions.from_hetero(data, "item")
    ei = data["user", "click", "item"].edge_index.numpy()
    assert not np.shares_memory(inter.user, ei) and not np.shares_memory(inter.item, ei)
    assert np.array_equal(inter.user, ei[0]) and np.array_equal(inter.item, ei[1])
