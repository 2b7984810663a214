import datetime as dt

import polars as pl
import pytest
from store_helpers import events_frame, write_csv

from graphrec.store import GraphStore, LogSchema, SchemaError, SourceError, ingest
from graphrec.store.schema import NodeAttributes


def test_ingest_commits_version_with_counts(tmp_path, schema):
    src = tmp_path / "ev.parquet"
    events_frame(40).write_parquet(src)
    report = ingest(tmp_path / "st", [src], schema=schema, echo=False)
    assert report.version == 1 and report.parent == 0
    assert (report.read, report.accepted, report.quarantined, report.duplicates) == (40, 40, 0, 0)
    assert report.invariant_ok
    store = GraphStore(tmp_path / "st")
    m = store.manifest()
    assert m.counts.events == 40 and m.ingest.read == 40 and m.schema_hash == schema.hash()
    assert list(m.partitions) == ["2024-01-01"]
    assert m.id_maps["user"].size == 7 and m.id_maps["item"].size == m.id_maps["ad"].size == 5
    assert store.verify() == []


def test_invariant_is_printed(tmp_path, schema, capsys):
    src = tmp_path / "ev.parquet"
    events_frame(3).write_parquet(src)
    ingest(tmp_path / "st", [src], schema=schema)
    assert "read 3 = accepted 3 + quarantined 0 + duplicates 0" in capsys.readouterr().err


def test_sources_csv_ndjson_parquet_folder_and_glob(tmp_path, schema):
    df = events_frame(30)
    d = tmp_path / "logs"
    d.mkdir()
    df[:10].write_parquet(d / "a.parquet")
    df[10:20].with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).write_csv(d / "b.csv")
    df[20:].with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).write_ndjson(d / "c.ndjson")
    r1 = ingest(tmp_path / "st1", [d], schema=schema, echo=False)
    r2 = ingest(tmp_path / "st2", [str(d / "*.*")], schema=schema, echo=False)
    assert r1.accepted == r2.accepted == 30
    assert [f.format for f in r1.files] == ["parquet", "csv", "ndjson"]
    a = GraphStore(tmp_path / "st1").events(external_ids=True).collect().sort("timestamp")
    assert a["user_id"].to_list() == df["user_id"].to_list()
    assert a["timestamp"].to_list() == df["timestamp"].to_list()


def test_missing_source_is_a_clear_error(tmp_path, schema):
    with pytest.raises(SourceError, match="no such file"):
        ingest(tmp_path / "st", [tmp_path / "nope.csv"], schema=schema, echo=False)
    with pytest.raises(SourceError, match="no input files match"):
        ingest(tmp_path / "st", [str(tmp_path / "*.parquet")], schema=schema, echo=False)
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(SourceError, match="unsupported file type"):
        ingest(tmp_path / "st", [tmp_path / "x.txt"], schema=schema, echo=False)
    with pytest.raises(SourceError, match="nothing to ingest"):
        ingest(tmp_path / "st", [], schema=schema, echo=False)


def test_schema_mismatch_is_refused(tmp_path, schema):
    src = tmp_path / "ev.parquet"
    events_frame(3).write_parquet(src)
    ingest(tmp_path / "st", [src], schema=schema, echo=False)
    with pytest.raises(SchemaError, match="differs"):
        ingest(tmp_path / "st", [src], schema=LogSchema(), echo=False)


def test_timestamps_to_utc(tmp_path):
    s = LogSchema(timezone="Europe/Paris", timestamp_unit="ms")
    src = write_csv(tmp_path / "t.csv", [
        "2024-06-01T12:00:00+02:00,u1,item,i1,view,",   # explicit offset
        "2024-06-01T12:00:01Z,u1,item,i1,view,",        # UTC
        "2024-06-01 12:00:02,u1,item,i1,view,",         # naive: Europe/Paris (UTC+2 in June)
        "1717243203000,u1,item,i1,view,",               # epoch milliseconds
        "2024-06-01,u1,item,i1,view,",                  # a date: midnight in Paris
    ])
    ingest(tmp_path / "st", [src], schema=s, echo=False)
    ts = GraphStore(tmp_path / "st").events().collect()["timestamp"].sort().to_list()
    utc = dt.UTC
    assert ts == [
        dt.datetime(2024, 5, 31, 22, 0, 0, tzinfo=utc),
        dt.datetime(2024, 6, 1, 10, 0, 0, tzinfo=utc),
        dt.datetime(2024, 6, 1, 10, 0, 2, tzinfo=utc),
        dt.datetime(2024, 6, 1, 12, 0, 1, tzinfo=utc),
        dt.datetime(2024, 6, 1, 12, 0, 3, tzinfo=utc),
    ]


def test_native_datetime_columns(tmp_path):
    naive = pl.DataFrame({
        "timestamp": [dt.datetime(2024, 1, 1, 12)], "user_id": ["u"], "target_type": ["item"],
        "target_id": ["i"], "event_type": ["view"],
    })
    aware = naive.with_columns(pl.col("timestamp").dt.replace_time_zone("America/New_York"))
    ingest(tmp_path / "st", [("naive", naive), ("aware", aware)], schema=LogSchema(), echo=False)
    ts = GraphStore(tmp_path / "st").events().collect()["timestamp"].sort().to_list()
    assert ts == [dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC), dt.datetime(2024, 1, 1, 17, tzinfo=dt.UTC)]


def test_id_maps_are_stable_append_only_and_round_trip(tmp_path, schema):
    st = tmp_path / "st"
    first = events_frame(20, users=4)
    ingest(st, [("day1", first)], schema=schema, echo=False)
    store = GraphStore(st)
    users_v1 = store.id_map("user")
    assert users_v1["id"].to_list() == list(range(4))
    # external ids in order of first appearance
    assert users_v1["external_id"].to_list() == ["u0", "u1", "u2", "u3"]
    second = events_frame(20, day="2024-01-02", users=6, offset=100)
    ingest(st, [("day2", second)], echo=False)
    users_v2 = store.id_map("user")
    assert users_v2.head(4).equals(users_v1), "existing ids must never change"
    assert users_v2.height == 6
    assert store.id_map("user", version=1).equals(users_v1)
    ext = ["u5", "u0", "nobody"]
    ids = store.to_internal("user", ext)
    assert ids[-1] == -1
    assert store.to_external("user", ids[:2]) == ext[:2]
    with pytest.raises(IndexError):
        store.to_external("user", [99])
    # events joined back to external ids equal the input
    back = store.events(external_ids=True).collect().sort("timestamp", "user_id")
    want = pl.concat([first, second]).sort("timestamp", "user_id")
    assert back["user_id"].to_list() == want["user_id"].to_list()
    assert back["target_id"].to_list() == want["target_id"].to_list()


def test_duplicates_dropped_within_batch_and_against_store(tmp_path, schema):
    st = tmp_path / "st"
    df = events_frame(10)
    r = ingest(st, [("a", pl.concat([df, df[:3]]))], schema=schema, echo=False)
    assert (r.accepted, r.duplicates) == (10, 3)
    r = ingest(st, [("b", df[5:]), ("c", events_frame(2, day="2024-01-05"))], echo=False)
    assert (r.read, r.accepted, r.duplicates) == (7, 2, 5)
    assert GraphStore(st).manifest().counts.events == 12
    # a different value is not a duplicate
    r = ingest(st, [("d", df[:1].with_columns(value=pl.lit(-1.0)))], echo=False)
    assert (r.accepted, r.duplicates) == (1, 0)


def test_incremental_day_writes_only_that_partition_and_id_tail(tmp_path, schema):
    st = tmp_path / "st"
    days = [events_frame(50, day=f"2024-01-0{d}", offset=d * 50, users=10 + d) for d in range(1, 4)]
    ingest(st, [(f"d{i}", d) for i, d in enumerate(days)], schema=schema, echo=False)
    store = GraphStore(st)
    before = {p.relative_to(st).as_posix() for p in st.rglob("*.parquet")}
    r = ingest(st, [("d4", events_frame(20, day="2024-01-04", users=20, offset=900))], echo=False)
    after = {p.relative_to(st).as_posix() for p in st.rglob("*.parquet")}
    new = sorted(after - before)
    assert r.partitions_written == ["2024-01-04"]
    assert [p.split("/")[0] for p in new] == ["events", "idmaps"]
    assert new[0].startswith("events/day=2024-01-04/")
    assert new[1].startswith("idmaps/user/")
    m1, m2 = store.manifest(1), store.manifest(2)
    assert {d: f for d, f in m2.partitions.items() if d != "2024-01-04"} == m1.partitions
    assert m2.id_maps["user"].files[:-1] == m1.id_maps["user"].files


def test_attributes_upsert_and_register_nodes(tmp_path):
    s = LogSchema(attributes={"item": NodeAttributes(id_column="item_id", columns={
        "title": "text", "price": "numeric", "category": "categorical"})})
    st = tmp_path / "st"
    ingest(st, [("ev", events_frame(8, items=3))], schema=s, echo=False)
    items = pl.DataFrame({"item_id": ["t1", "t2", "cold"], "title": ["a", "b", "c"], "price": ["1.5", "2", "x"],
                          "category": ["k", "k", "m"]})
    r = ingest(st, [], attributes={"item": ("items", items)}, echo=False)
    assert (r.read, r.accepted, r.quarantined) == (3, 2, 1)
    store = GraphStore(st)
    q = store.quarantine(only=True)
    assert q["reason"].to_list() == ["bad_value"] and q["field"].to_list() == ["price"]
    table = store.attributes("item")
    assert table.height == 2
    update = pl.DataFrame({"item_id": ["t2", "new"], "title": ["B", "n"], "price": [3.0, 4.0], "category": ["m", None]})
    r = ingest(st, [], attributes={"item": [("upd", update), ("same", update[:1])]}, echo=False)
    assert (r.accepted, r.duplicates) == (2, 1)
    table = store.attributes("item").join(store.id_map("item"), on="id")
    assert dict(zip(table["external_id"], table["title"], strict=True)) == {"t1": "a", "t2": "B", "new": "n"}
    assert store.id_map("item")["external_id"].to_list()[-1] == "new"
    assert store.attributes("item", version=2).height == 2
    with pytest.raises(SchemaError, match="no side table"):
        ingest(st, [], attributes={"ad": ("x", update)}, echo=False)


def test_progress_callback(tmp_path, schema):
    steps = []
    ingest(tmp_path / "st", [("a", events_frame(5))], schema=schema, echo=False,
           progress=lambda step, done, total: steps.append(step))
    assert "writing partitions" in steps and steps[-1] == "committing"


def test_folder_scan_skips_json_sidecars(tmp_path, schema):
    d = tmp_path / "logs"
    d.mkdir()
    events_frame(4).write_parquet(d / "a.parquet")
    (d / "notes.json").write_text('{"not": "events"}')
    (d / "schema.yaml").write_text(schema.to_yaml())
    r = ingest(tmp_path / "st", [d], schema=schema, echo=False)
    assert [f.source for f in r.files] == [str(d / "a.parquet")] and r.accepted == 4
