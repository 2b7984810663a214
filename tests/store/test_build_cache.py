"""The per-partition edge cache: cached builds equal uncached ones, damaged files are rebuilt."""

import datetime as dt

import numpy as np
import polars as pl
import pytest
import torch

from graphrec.store import GraphStore, LogSchema, build, ingest, partition_arrays
from graphrec.store.build import CACHE_DIR, _cache_path, _read_cache
from graphrec.store.schema import NodeAttributes


def _frame(rng: np.random.Generator, n: int, day: str) -> pl.DataFrame:
    """``n`` events on ``day``: values and per-event weights present on some events only."""
    base = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    et = rng.choice(["view", "click", "rating", "impression"], n)
    value = np.where((rng.random(n) < 0.5) & (et != "view"), rng.random(n) * 5, np.nan)
    weight = np.where((rng.random(n) < 0.3) & (et != "click"), rng.random(n) * 3, np.nan)
    return pl.DataFrame({
        "timestamp": [base + dt.timedelta(seconds=int(s)) for s in rng.integers(0, 86400, n)],
        "user_id": [f"u{i}" for i in rng.integers(0, 40, n)],
        "target_type": np.where(et == "impression", "ad", "item"),
        "target_id": [f"t{i}" for i in rng.integers(0, 30, n)],
        "event_type": et,
        "value": pl.Series(value).fill_nan(None),
        "weight": pl.Series(weight).fill_nan(None),
    })  # fmt: skip


@pytest.fixture
def store(tmp_path) -> GraphStore:
    """Six days; day 3 holds two partition files (a second ingest of that day)."""
    rng = np.random.default_rng(0)
    schema = LogSchema(
        attributes={
            "item": NodeAttributes(
                id_column="item_id", columns={"price": "numeric", "category": "categorical"}
            )
        }
    )
    items = pl.DataFrame({"item_id": ["t1", "t2"], "price": [1.0, 2.0], "category": ["a", None]})
    days = [(f"d{d}", _frame(rng, 150, f"2024-01-0{d}")) for d in range(1, 6)]
    ingest(tmp_path / "st", days, schema=schema, attributes={"item": ("items", items)}, echo=False)
    ingest(tmp_path / "st", [("late", _frame(rng, 60, "2024-01-03"))], echo=False)
    return GraphStore(tmp_path / "st")


def assert_same_graph(a, b) -> None:
    """Equal node and edge types, and every attribute equal in dtype, shape and value (NaN = NaN)."""
    assert a.node_types == b.node_types and a.edge_types == b.edge_types
    for t in [*a.node_types, *a.edge_types]:
        da, db = a[t].to_dict(), b[t].to_dict()
        assert da.keys() == db.keys(), t
        for k, va in da.items():
            vb = db[k]
            if isinstance(va, torch.Tensor):
                assert va.dtype == vb.dtype and va.shape == vb.shape, (t, k)
                if va.is_floating_point():
                    assert torch.equal(va.isnan(), vb.isnan()), (t, k)
                    va, vb = va.nan_to_num(), vb.nan_to_num()
                assert torch.equal(va, vb), (t, k)
            else:
                assert va == vb, (t, k)
    assert a.store_info == b.store_info


OPTIONS = [
    {},
    {"window": ("2024-01-02T06:00:00Z", "2024-01-04T18:00:00Z"), "event_weights": {"rating": "value", "view": 0.2}},
    {"target_types": ["item"], "event_types": ["click", "rating"], "reverse": False},
    {"min_interactions": 4, "event_weights": {"click": 2}},
    {"collapse": True, "window": ("2024-01-03", None), "event_weights": {"rating": "value"}},
    {"window": ("2024-01-05T12:00:00Z", "2024-01-06"), "categorical": "onehot"},
]  # fmt: skip


@pytest.mark.parametrize("options", OPTIONS, ids=range(len(OPTIONS)))
def test_cached_build_equals_uncached_build(store, options):
    reference = build(store, cache=False, **options)
    assert not (store.root / CACHE_DIR).exists(), "cache=False must not write the cache"
    cold = build(store, **options)  # decodes and fills the cache
    warm = build(store, **options)  # reads the cache only
    assert_same_graph(reference, cold)
    assert_same_graph(reference, warm)
    if "window" not in options:
        assert sum(cold[et].num_edges for et in cold.edge_types if et[0] == "user") > 0


def test_warm_cache_serves_any_window_filter_and_version(store, monkeypatch):
    # The cache is keyed by partition file, not by the build's window or filters: a cache
    # filled by a narrow, filtered build serves every other build, and a new version only
    # adds the files of its new partitions.
    build(store, window=("2024-01-02", "2024-01-04"), event_types=["click"], reverse=False)
    decoded = []
    real = pl.read_parquet
    monkeypatch.setattr(pl, "read_parquet", lambda *a, **k: decoded.append(a[0]) or real(*a, **k))
    wider = build(store, window=("2024-01-02", "2024-01-04"), features=False)
    assert decoded == [], "a cached partition was decoded again"
    assert_same_graph(
        wider, build(store, window=("2024-01-02", "2024-01-04"), features=False, cache=False)
    )

    decoded.clear()
    everything = build(store, features=False)
    assert len(decoded) == 3  # days 1, 4 and 5
    decoded.clear()
    assert_same_graph(everything, build(store, features=False))
    assert decoded == []

    version = store.version
    ingest(store, [("d6", _frame(np.random.default_rng(1), 80, "2024-01-06"))], echo=False)
    decoded.clear()
    night = build(store, window=("2024-01-01", "2024-01-07"), features=False)
    assert len(decoded) == 1  # only the new day's partition
    assert_same_graph(
        night, build(store, window=("2024-01-01", "2024-01-07"), features=False, cache=False)
    )
    past = build(store, version=version, features=False)
    assert_same_graph(past, everything)


@pytest.mark.parametrize(
    "damage",
    ["empty", "garbage", "truncated", "wrong_size", "bad_header", "bad_dtype", "old_format"],
)
def test_damaged_cache_file_is_ignored_and_rebuilt(store, damage):
    reference = build(store, cache=False)
    build(store)
    entry = store.manifest().partitions["2024-01-02"][0]
    path = _cache_path(store, entry)
    raw = path.read_bytes()
    hlen = int.from_bytes(raw[8:16], "little")
    header = raw[16 : 16 + hlen]
    damaged = {
        "empty": b"",
        "garbage": b"not a cache file at all",
        "truncated": raw[: len(raw) // 2],
        "wrong_size": raw + b"\0" * 64,
        "bad_header": raw[:16] + b"{" * hlen + raw[16 + hlen :],
        "bad_dtype": raw.replace(b'"<i8"', b'"|O8"', 1),
        "old_format": raw.replace(b'"format": 3', b'"format": 2', 1),
    }[damage]
    assert damaged != raw and len(header) == hlen
    path.write_bytes(damaged)
    assert_same_graph(reference, build(store))
    assert path.read_bytes() == raw  # rewritten, byte for byte the same
    assert set(_read_cache(path)) == set(partition_arrays(store, entry, cache=False))


def test_partition_arrays_materialises_absent_fields(store):
    entry = store.manifest().partitions["2024-01-01"][0]
    for cache in (True, True, False):  # decoded, then cached, then decoded again
        arrays = partition_arrays(store, entry, cache=cache)
        assert set(arrays) == {
            ("item", "view"),
            ("item", "click"),
            ("item", "rating"),
            ("ad", "impression"),
        }
        for group, a in arrays.items():
            assert a["user"].dtype == a["target"].dtype == a["time_us"].dtype == np.int64
            assert a["value"].dtype == a["weight"].dtype == np.float64
            assert a["user"].flags.writeable
            if group[1] == "view":
                assert np.isnan(a["value"]).all()  # absent: NaN on every edge
            if group[1] == "click":
                assert np.isnan(a["weight"]).all()
    ev = store.events(start="2024-01-01", end="2024-01-02").collect()
    assert sum(a["user"].shape[0] for a in arrays.values()) == ev.height


def test_graph_tensors_do_not_map_the_cache_file(store):
    build(store)
    data = build(store, window=("2024-01-02", "2024-01-03"))  # one partition: one piece per group
    before = {
        (et, k): data[et][k].clone() for et in data.edge_types for k in ("edge_index", "edge_time")
    }
    for path in (store.root / CACHE_DIR).glob("*.bin"):
        with open(path, "r+b") as fh:  # overwrite in place: a memory map of the file would see it
            fh.write(b"\0" * path.stat().st_size)
    for (et, k), t in before.items():
        assert torch.equal(data[et][k], t)
    assert_same_graph(build(store), build(store, cache=False))  # and the zeroed files are rebuilt
