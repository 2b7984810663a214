"""Behaviour sequences: order, token space, side fields, splits and padded batches."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from graphrec.data.sequences import read_sequences
from graphrec.encoders import (
    TIME_FIELDS,
    TIME_VOCAB,
    BehaviourSequences,
    from_s3rec,
    from_store,
    load_behaviour_sequences,
    pad_batch,
)
from graphrec.store import GraphStore, LogSchema, ingest
from graphrec.store.schema import NodeAttributes

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def events(rows: list[tuple[str, str, str, str, str]]) -> pl.DataFrame:
    return pl.DataFrame({
        "timestamp": [at(r[0]) for r in rows],
        "user_id": [r[1] for r in rows],
        "target_type": [r[2] for r in rows],
        "target_id": [r[3] for r in rows],
        "event_type": [r[4] for r in rows],
        "value": [float(k) for k in range(len(rows))],
    })


#: u1 has a three-way tie at 14:30 (two in the first ingest, one in the second) and an earlier event given later.
FIRST = [
    ("2024-03-05T14:30:00", "u1", "item", "i1", "click"),
    ("2024-03-05T14:30:00", "u1", "ad", "a1", "impression"),
    ("2024-03-05T10:00:00", "u1", "item", "i2", "view"),
    ("2024-03-06T09:00:00", "u1", "item", "i3", "purchase"),
    ("2024-03-07T09:00:00", "u1", "item", "i1", "click"),
    ("2024-03-05T14:30:00", "u2", "item", "i2", "click"),
    ("2024-03-08T00:00:00", "u2", "ad", "a2", "click"),
    ("2024-03-05T23:59:59", "u4", "item", "i2", "view"),
]
SECOND = [("2024-03-05T14:30:00", "u1", "item", "i3", "rating")]
U1_ORDER = [("item", "i2", "view"), ("item", "i1", "click"), ("ad", "a1", "impression"),
            ("item", "i3", "rating"), ("item", "i3", "purchase"), ("item", "i1", "click")]  # fmt: skip


@pytest.fixture
def store(tmp_path) -> GraphStore:
    schema = LogSchema(attributes={
        "user": NodeAttributes(id_column="user_id", columns={"age": "numeric"}),
        "item": NodeAttributes(id_column="item_id", columns={
            "title": "text", "brand": "categorical", "tag_x": "numeric", "tag_y": "numeric", "price": "numeric"}),
        "ad": NodeAttributes(id_column="ad_id", columns={"title": "text", "genres": "text", "category": "categorical"}),
    })  # fmt: skip
    items = pl.DataFrame({"item_id": ["i1", "i2"], "title": ["Red Shoe", "Blue Hat"], "brand": ["acme", None],
                          "tag_x": [1.0, 0.0], "tag_y": [1.0, 1.0], "price": [3.5, 7.0]})  # fmt: skip
    ads = pl.DataFrame({"ad_id": ["a1", "a2"], "title": ["Ad One", "Ad Two"], "genres": ["sport|outdoor", None],
                        "category": ["promo", "brand"]})  # fmt: skip
    users = pl.DataFrame({"user_id": ["u9"], "age": [30.0]})  # a user without events
    root = tmp_path / "st"
    ingest(root, [("first", events(FIRST))], schema=schema,
           attributes={"item": ("items", items), "ad": ("ads", ads), "user": ("users", users)}, echo=False)  # fmt: skip
    ingest(root, [("second", events(SECOND))], echo=False)
    return GraphStore(root)


def row_of(seqs: BehaviourSequences, user: str) -> int:
    return seqs.user_ids.index(user)


def described(seqs: BehaviourSequences, k: int) -> list[tuple[str, str, str]]:
    lo, hi = seqs.indptr[k], seqs.indptr[k + 1]
    return [(seqs.target_types[seqs.item_type[t]], seqs.item_ids[t - 1], seqs.event_types[e - 1])
            for t, e in zip(seqs.item[lo:hi], seqs.event[lo:hi], strict=True)]  # fmt: skip


def test_order_ties_users_and_token_space(store):
    seqs = from_store(store)
    assert described(seqs, row_of(seqs, "u1")) == U1_ORDER
    assert sorted(seqs.user_ids) == ["u1", "u2", "u4"]  # u9 has no events: no row
    assert len(seqs) == 3 and seqs.num_events == len(FIRST) + len(SECOND)
    assert np.array_equal(seqs.user_index, store.to_internal("user", seqs.user_ids))
    assert np.all(np.diff(seqs.user_index) > 0)
    # tokens grouped by target type, each the store's contiguous id within its type
    sizes = {t: store.manifest().id_maps[t].size for t in ("item", "ad")}
    assert seqs.num_items == sizes["item"] + sizes["ad"] and seqs.target_types == ["item", "ad"]
    assert seqs.item_type[0] == 0 and seqs.item_index[0] == -1
    assert np.all(np.diff(seqs.item_type[1:]) >= 0) and seqs.item_type[-1] == 1
    for t in range(1, seqs.num_items + 1):
        ttype = seqs.target_types[seqs.item_type[t]]
        assert store.to_internal(ttype, [seqs.item_ids[t - 1]])[0] == seqs.item_index[t]
    # each row is in time order
    rows = np.repeat(np.arange(len(seqs)), seqs.lengths)
    same = rows[1:] == rows[:-1]
    assert np.all(np.diff(seqs.time)[same] >= 0)
    assert "3 users" in repr(seqs) and "item, ad" in repr(seqs)


def test_filters_by_type_and_window(store):
    seqs = from_store(store, target_types=["item"], event_types=["click", "view"], window=("2024-03-05", "2024-03-07"))
    assert seqs.target_types == ["item"] and seqs.event_types == ["click", "view"]
    assert described(seqs, row_of(seqs, "u1")) == [("item", "i2", "view"), ("item", "i1", "click")]
    assert seqs.num_items == store.manifest().id_maps["item"].size
    with pytest.raises(ValueError, match="event type"):
        from_store(store, event_types=["nope"])
    with pytest.raises(ValueError, match="text field"):
        from_store(store, text_fields=["brand_name"])


def test_time_fields_are_utc_calendar_codes(store):
    seqs = from_store(store)
    fields = seqs.time_fields()
    assert list(fields) == list(TIME_FIELDS)
    for k, t in enumerate(seqs.time):
        when = dt.datetime.fromtimestamp(int(t), UTC)
        expected = {"hour": when.hour + 1, "weekday": when.isoweekday(), "day": when.day, "month": when.month,
                    "year": when.year - 1970 + 1}  # fmt: skip
        assert {f: int(fields[f][k]) for f in TIME_FIELDS} == expected
    for f in TIME_FIELDS:
        assert 1 <= fields[f].min() and fields[f].max() <= TIME_VOCAB[f]
    first = row_of(seqs, "u1")
    assert int(seqs.time[seqs.indptr[first]]) == int(at("2024-03-05T10:00:00").timestamp())


def manual(items: list[list[int]], times: list[list[int]] | None = None, tz: str = "UTC") -> BehaviourSequences:
    """Sequences built by hand: one event type, tokens 1..max, category = token parity."""
    lens = [len(r) for r in items]
    m = max(t for r in items for t in r)
    flat = np.array([t for r in items for t in r], dtype=np.int64)
    parity = np.zeros(m + 1, dtype=np.int64)
    parity[1:] = np.arange(1, m + 1) % 2 + 1
    return BehaviourSequences(
        name="manual", user_ids=[f"u{k}" for k in range(len(items))], user_index=np.arange(len(items)),
        indptr=np.concatenate([[0], np.cumsum(lens)]).astype(np.int64), item=flat,
        event=np.ones_like(flat), time=np.array([t for r in times for t in r], dtype=np.int64) if times else
        np.zeros_like(flat), num_items=m, item_ids=list(range(1, m + 1)), item_type=np.zeros(m + 1, dtype=np.int64),
        item_index=np.arange(-1, m), target_types=["item"], event_types=["view"], item_cats={"parity": parity},
        cat_vocab={"parity": ["even", "odd"]}, info={"timezone": tz},
    )  # fmt: skip


def test_time_fields_follow_the_schema_time_zone():
    utc_late = int(at("2024-03-05T20:00:00").timestamp())  # Tuesday 20:00 UTC = Wednesday 05:00 in Tokyo
    tokyo = manual([[1]], [[utc_late]], tz="Asia/Tokyo").time_fields()
    utc = manual([[1]], [[utc_late]]).time_fields()
    assert (utc["hour"][0], utc["weekday"][0], utc["day"][0]) == (21, 2, 5)
    assert (tokyo["hour"][0], tokyo["weekday"][0], tokyo["day"][0]) == (6, 3, 6)
    assert all(v[0] == 0 for v in manual([[1]]).time_fields().values())  # unknown time


def test_side_fields_and_text(store):
    seqs = from_store(store)
    tok = {(seqs.target_types[seqs.item_type[t]], seqs.item_ids[t - 1]): t for t in range(1, seqs.num_items + 1)}
    assert seqs.item_text is not None and seqs.item_text[0] == ""
    assert seqs.item_text[tok["item", "i1"]] == "Red Shoe | x, y, acme"
    assert seqs.item_text[tok["item", "i2"]] == "Blue Hat | y"
    assert seqs.item_text[tok["ad", "a1"]] == "Ad One | sport, outdoor, promo"
    assert seqs.item_text[tok["item", "i3"]] == ""  # no side-table row
    assert set(seqs.item_cats) == {"brand", "tag", "category", "genre"}  # price is no flag group
    for codes in seqs.item_cats.values():
        assert codes.shape == (seqs.num_items + 1,) and codes[0] == 0

    def value(f, key):
        c = seqs.item_cats[f][tok[key]]
        return seqs.cat_vocab[f][c - 1] if c else None

    assert value("tag", ("item", "i1")) == "x" and value("tag", ("item", "i2")) == "y"  # first set flag
    assert value("brand", ("item", "i1")) == "acme" and value("brand", ("item", "i2")) is None
    assert value("brand", ("ad", "a1")) is None and value("category", ("ad", "a2")) == "brand"
    assert value("genre", ("ad", "a1")) == "sport" and value("genre", ("ad", "a2")) is None
    only_title = from_store(store, text_fields=["title"])
    assert only_title.item_text[tok["item", "i1"]] == "Red Shoe | x, y, acme"


def test_text_view(store):
    seqs = from_store(store)
    k = row_of(seqs, "u1")
    assert seqs.text_view(k, 2) == "view Blue Hat | y ; click Red Shoe | x, y, acme </s>"
    full = seqs.text_view(k, sep=" || ", eos="[EOS]")
    assert full.count(" || ") == seqs.lengths[k] - 1 and full.endswith(" [EOS]")
    assert "rating item i3" in full  # a token without text is named by type and id
    assert seqs.text_view(k, 0) == "</s>"
    with pytest.raises(IndexError):
        seqs.text_view(k, int(seqs.lengths[k]) + 1)


def test_leave_one_out_on_the_store(store):
    seqs = from_store(store)
    split = seqs.leave_one_out()
    k, short = row_of(seqs, "u1"), row_of(seqs, "u4")
    assert (split.train_end[k], split.valid_pos[k], split.test_pos[k]) == (4, 4, 5)
    assert (split.train_end[short], split.valid_pos[short], split.test_pos[short]) == (1, -1, -1)
    assert split.info["short_rows"] == 2  # u2 (2 events) and u4 (1)
    rows, ends, targets = split.held_out("test")
    assert rows.tolist() == [k] and ends.tolist() == [5] and targets[0] == seqs[k][-1]
    with pytest.raises(ValueError, match="min_length"):
        seqs.leave_one_out(min_length=1)


def test_time_cut_on_the_store(store):
    seqs = from_store(store)
    split = seqs.time_cut("2024-03-06", at("2024-03-07T00:00:00"))
    u1, u2, u4 = (row_of(seqs, u) for u in ("u1", "u2", "u4"))
    assert (split.train_end[u1], split.valid_pos[u1], split.test_pos[u1]) == (4, 4, 5)
    assert (split.train_end[u2], split.valid_pos[u2], split.test_pos[u2]) == (1, -1, 1)
    assert (split.train_end[u4], split.valid_pos[u4], split.test_pos[u4]) == (1, -1, -1)
    with pytest.raises(ValueError, match="after test_start"):
        seqs.time_cut("2024-03-07", "2024-03-06")


def random_sequences(seed: int, n: int = 60) -> BehaviourSequences:
    rng = np.random.default_rng(seed)
    lens = rng.integers(1, 12, n)
    items = [rng.integers(1, 9, size=int(L)).tolist() for L in lens]
    base = int(at("2024-01-01T00:00:00").timestamp())
    times = [np.sort(base + rng.integers(0, 30, size=int(L)) * 86400).tolist() for L in lens]  # many ties
    return manual(items, times)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_splits_never_leak_the_held_out_behaviour(seed):
    seqs = random_sequences(seed)
    vs, ts = at("2024-01-11T00:00:00").timestamp(), at("2024-01-21T00:00:00").timestamp()
    for split in (seqs.leave_one_out(), seqs.leave_one_out(min_length=5), seqs.time_cut(vs, ts)):
        for k in range(len(seqs)):
            for pos in (split.valid_pos[k], split.test_pos[k]):
                if pos < 0:
                    continue
                assert split.train_end[k] <= pos < seqs.lengths[k]
                batch = pad_batch(seqs, [k], [pos], 50)
                got = batch["item"][0][batch["mask"][0]].numpy()
                assert np.array_equal(got, seqs[k][:pos])  # the input stops right before the target
            if split.valid_pos[k] >= 0 and split.test_pos[k] >= 0:
                assert split.valid_pos[k] < split.test_pos[k]
        if split.method != "time":
            continue
        for k in range(len(seqs)):
            t = seqs.time[seqs.indptr[k] : seqs.indptr[k + 1]]
            assert np.all(t[: split.train_end[k]] < vs)
            v, s = split.valid_pos[k], split.test_pos[k]
            assert (v >= 0) == bool(np.any((t >= vs) & (t < ts)))
            if v >= 0:
                assert vs <= t[v] < ts and v == split.train_end[k]
            assert (s >= 0) == bool(np.any(t >= ts))
            if s >= 0:
                assert t[s] >= ts and np.all(t[:s] < ts)


def test_pad_batch_truncates_and_pads():
    seqs = manual([[1, 2, 3, 4, 5], [6, 7]], [[1_700_000_000 + 3600 * h for h in range(5)], [1_700_000_000] * 2])
    batch = pad_batch(seqs, [0, 1], [4, 2], 3)
    assert set(batch) == {"item", "event", "mask", "cat:parity", *TIME_FIELDS}
    assert batch["item"].tolist() == [[2, 3, 4], [0, 6, 7]]
    assert batch["mask"].tolist() == [[True, True, True], [False, True, True]]
    assert batch["mask"].dtype == torch.bool
    assert all(v.dtype == torch.int64 and v.shape == (2, 3) for k, v in batch.items() if k != "mask")
    assert batch["cat:parity"].tolist() == [[1, 2, 1], [0, 1, 2]]  # odd tokens code 2, padding 0
    hours = seqs.time_fields()["hour"]
    assert batch["hour"][0].tolist() == hours[1:4].tolist() and batch["hour"][1, 0] == 0
    assert torch.all(batch["event"][~batch["mask"]] == 0)
    right = pad_batch(seqs, torch.tensor([0, 1]), None, 3, left_pad=False)
    assert right["item"].tolist() == [[3, 4, 5], [6, 7, 0]]
    assert pad_batch(seqs, [1], [0], 2)["mask"].sum() == 0  # empty history
    with pytest.raises(ValueError, match="outside row"):
        pad_batch(seqs, [1], [3], 4)
    with pytest.raises(IndexError):
        pad_batch(seqs, [2], None, 4)


def test_subset_keeps_rows_and_vocabulary(store):
    seqs = from_store(store)
    sub = seqs.subset([2, 0])
    assert sub.user_ids == [seqs.user_ids[2], seqs.user_ids[0]]
    assert np.array_equal(sub[0], seqs[2]) and np.array_equal(sub[1], seqs[0])
    assert np.array_equal(sub.time[sub.indptr[1] : sub.indptr[2]], seqs.time[seqs.indptr[0] : seqs.indptr[1]])
    assert sub.num_items == seqs.num_items and sub.item_cats is seqs.item_cats


def test_from_s3rec_file(tmp_path):
    path = tmp_path / "Tiny.txt"
    path.write_text("1 3 1 2 5\n2 2 4\n3 5 5 1 4\n")
    raw = read_sequences(path)
    seqs = from_s3rec(raw)
    assert seqs.user_ids == [1, 2, 3] and seqs.num_items == 5 and seqs.item_ids == [1, 2, 3, 4, 5]
    assert seqs[0].tolist() == [3, 1, 2, 5] and seqs[2].tolist() == [5, 5, 1, 4]
    assert not seqs.time.any() and seqs.item_text is None and seqs.item_cats == {}
    assert seqs.text_view(1) == "review item 2 ; review item 4 </s>"
    split = seqs.leave_one_out()
    assert split.info["short_rows"] == 1 and split.valid_pos[1] == -1
    for k in (0, 2):  # the long rows agree with the data layer's ICLRec split
        assert seqs[k][split.valid_pos[k]] == raw[k][-2] and seqs[k][split.test_pos[k]] == raw[k][-1]
        assert np.array_equal(seqs[k][: split.train_end[k]], raw[k][:-2])
    with pytest.raises(ValueError, match="no times"):
        seqs.time_cut(0, 1)
    batch = pad_batch(seqs, [0], None, 3)
    assert batch["item"].tolist() == [[1, 2, 5]] and not any(k.startswith("cat:") for k in batch)
    assert all(not batch[f].any() for f in TIME_FIELDS)  # unknown times are code 0


def test_load_behaviour_sequences_rejects_unknown(tmp_path):
    with pytest.raises(ValueError, match="neither a known dataset"):
        load_behaviour_sequences(str(tmp_path / "nothing-here"))


def test_load_behaviour_sequences_of_a_store_folder(store):
    seqs = load_behaviour_sequences(store.root)
    assert seqs.info["dataset"] == str(store.root) and described(seqs, row_of(seqs, "u1")) == U1_ORDER


def test_movielens_100k():
    root = os.environ.get("GRAPHREC_DATA")
    if not root or not (Path(root) / "movielens" / "ml-100k" / "u.data").is_file():
        pytest.skip("MovieLens-100k not found: set GRAPHREC_DATA to the data root (with movielens/ml-100k)")
    seqs = load_behaviour_sequences("ml-100k")
    assert len(seqs) == 943 and seqs.num_events == 100_000 and seqs.num_items == 1682
    assert seqs.event_types == ["rating"] and seqs.target_types == ["item"]
    toy = seqs.item_ids.index(1) + 1  # u.item line 1
    assert "Toy Story (1995)" in seqs.item_text[toy] and "animation" in seqs.item_text[toy]
    assert seqs.cat_vocab["genre"][seqs.item_cats["genre"][toy] - 1] == "animation"  # its first genre
    assert seqs.leave_one_out().info["short_rows"] == 0  # every ML-100k user has at least 20 ratings
    rows = np.repeat(np.arange(len(seqs)), seqs.lengths)
    assert np.all(np.diff(seqs.time)[rows[1:] == rows[:-1]] >= 0)
