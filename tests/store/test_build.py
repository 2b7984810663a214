import datetime as dt

import numpy as np
import polars as pl
import pytest
import torch
from store_helpers import events_frame

from graphrec.store import GraphStore, LogSchema, build, ingest, partition_arrays
from graphrec.store.build import CACHE_DIR
from graphrec.store.schema import NodeAttributes


@pytest.fixture
def store(tmp_path):
    s = LogSchema(attributes={
        "user": NodeAttributes(id_column="user_id", columns={"age": "numeric", "region": "categorical"}),
        "item": NodeAttributes(id_column="item_id", columns={"price": "numeric", "title": "text", "category": "categorical"}),
    })
    days = [events_frame(40, day=f"2024-01-0{d}", offset=40 * d, users=6, items=4) for d in (1, 2, 3)]
    users = pl.DataFrame({"user_id": ["u0", "u1", "u2"], "age": [20, None, 40], "region": ["n", "s", None]})
    items = pl.DataFrame({"item_id": ["t1", "t2"], "price": [1.5, 2.5], "title": ["one", "two"], "category": ["a", "b"]})
    ingest(tmp_path / "st", [(f"d{i}", d) for i, d in enumerate(days)], schema=s,
           attributes={"user": ("users", users), "item": ("items", items)}, echo=False)
    return GraphStore(tmp_path / "st")


def test_structure_ids_times_weights(store):
    data = build(store)
    assert set(data.node_types) == {"user", "item", "ad"}
    assert data["user"].num_nodes == store.manifest().id_maps["user"].size
    assert set(data.edge_types) == {
        ("user", "click", "item"), ("item", "rev_click", "user"),
        ("user", "impression", "ad"), ("ad", "rev_impression", "user"),
    }
    fwd, rev = data["user", "click", "item"], data["item", "rev_click", "user"]
    assert torch.equal(fwd.edge_index.flip(0), rev.edge_index)
    assert fwd.edge_time.dtype == torch.int64 and fwd.edge_weight.dtype == torch.float32
    total = sum(data[et].num_edges for et in data.edge_types if not et[1].startswith("rev_"))
    assert total == store.manifest().counts.events == 120
    # edges match the stored events exactly (ids, times, values)
    ev = store.events(external_ids=True).filter(pl.col("event_type") == "click").collect()
    got = pl.DataFrame({"user": fwd.edge_index[0].numpy(), "target": fwd.edge_index[1].numpy(),
                        "t": fwd.edge_time.numpy(), "v": fwd.edge_value.numpy().astype(np.float64)})
    want = ev.select("user", "target", t=pl.col("timestamp").dt.epoch("s"), v="value")
    assert got.sort(got.columns).equals(want.sort(want.columns))
    assert data.store_info["version"] == store.version


def test_window_and_filters(store):
    data = build(store, window=("2024-01-02", dt.date(2024, 1, 3)))
    t = torch.cat([data[et].edge_time for et in data.edge_types])
    lo = int(dt.datetime(2024, 1, 2, tzinfo=dt.UTC).timestamp())
    assert t.min() >= lo and t.max() < lo + 86400
    assert sum(data[et].num_edges for et in data.edge_types) == 2 * 40
    data = build(store, event_types=["click"], reverse=False)
    assert data.edge_types == [("user", "click", "item")]
    data = build(store, target_types=["ad"], window=(None, "2024-01-02T00:00:00Z"))
    assert {et[2] for et in data.edge_types} == {"ad", "user"} and data["user", "impression", "ad"].num_edges == 10
    with pytest.raises(ValueError, match="unknown event type"):
        build(store, event_types=["swipe"])
    with pytest.raises(ValueError, match="empty window"):
        build(store, window=("2024-01-03", "2024-01-02"))


def test_event_weights_and_value(store):
    data = build(store, event_weights={"click": 2.0, "impression": 0.5})
    assert torch.all(data["user", "click", "item"].edge_weight == 2.0)
    assert torch.all(data["user", "impression", "ad"].edge_weight == 0.5)
    data = build(store, event_weights={"click": "value"})
    e = data["user", "click", "item"]
    assert torch.equal(e.edge_weight, e.edge_value)


def test_k_core_keeps_ids_and_marks_nodes(store):
    full = build(store)
    data = build(store, min_interactions=25)
    assert data["user"].num_nodes == full["user"].num_nodes
    mask = data["user"].node_mask
    for et in data.edge_types:
        if et[0] == "user":
            assert mask[data[et].edge_index[0]].all()
    # every surviving node has >= 25 interactions
    deg = torch.zeros(data["user"].num_nodes, dtype=torch.long)
    for et in data.edge_types:
        if et[0] == "user":
            deg += torch.bincount(data[et].edge_index[0], minlength=data["user"].num_nodes)
    assert (deg[mask] >= 25).all() and (deg[~mask] == 0).all()


def test_collapse_merges_repeated_pairs(store):
    data = build(store, collapse=True, event_types=["click"])
    e = data["user", "click", "item"]
    pairs = set(zip(e.edge_index[0].tolist(), e.edge_index[1].tolist(), strict=True))
    assert len(pairs) == e.num_edges
    full = build(store, event_types=["click"])
    assert e.edge_weight.sum() == pytest.approx(full["user", "click", "item"].edge_weight.sum().item())


def test_node_features(store):
    data = build(store)
    users = store.id_map("user")
    u = dict(zip(users["external_id"], users["id"], strict=True))
    assert data["user"].x_names == ["age"]
    assert data["user"].x[u["u0"], 0] == 20 and data["user"].x[u["u1"], 0] == 0  # missing -> 0
    assert data["user"].cat_vocab == {"region": ["n", "s"]}
    assert data["user"].x_cat[u["u0"], 0] == 1 and data["user"].x_cat[u["u2"], 0] == 0
    items = store.id_map("item")
    i = dict(zip(items["external_id"], items["id"], strict=True))
    assert data["item"].text["title"][i["t2"]] == "two" and data["item"].text["title"][i["t3"]] == ""
    onehot = build(store, categorical="onehot")
    assert onehot["item"].x_names == ["price", "category=a", "category=b"]
    assert onehot["item"].x[i["t2"]].tolist() == [2.5, 0.0, 1.0]
    assert "x" not in build(store, features=False)["item"]


def test_partition_cache_is_used_and_keyed_by_checksum(store, monkeypatch):
    build(store)
    cache = store.root / CACHE_DIR
    files = sorted(cache.glob("*.bin"))
    assert len(files) == 3
    calls = []
    real = pl.read_parquet
    monkeypatch.setattr(pl, "read_parquet", lambda *a, **k: calls.append(a) or real(*a, **k))
    again = build(store, features=False)
    assert calls == [], "a cached partition was decoded again"
    ingest(store, [("d4", events_frame(10, day="2024-01-04", offset=999))], echo=False)
    calls.clear()
    build(store, features=False)
    assert len(calls) == 1  # only the new partition
    assert len(list(cache.glob("*.bin"))) == 4
    entry = store.manifest().partitions["2024-01-01"][0]
    assert entry.checksum.split(":")[1] in " ".join(p.name for p in files)
    a = partition_arrays(store, entry)
    assert set(a) == {("item", "click"), ("ad", "impression")}
    assert sum(g["user"].shape[0] for g in a.values()) == 40
    assert sum(again[et].num_edges for et in again.edge_types) == 240


def test_build_past_version_and_empty(store, tmp_path):
    ingest(store, [("d9", events_frame(10, day="2024-01-09", users=50, offset=5000))], echo=False)
    old = build(store, version=1)
    assert old["user"].num_nodes == store.manifest(1).id_maps["user"].size < store.manifest().id_maps["user"].size
    empty = build(GraphStore.init(tmp_path / "empty", LogSchema()))
    assert empty.edge_types == [] and empty["user"].num_nodes == 0
