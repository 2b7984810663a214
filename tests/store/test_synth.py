import polars as pl
import pytest

from graphrec.store import GraphStore, LogSchema, ingest, synth


def test_synth_is_deterministic_and_realistic(tmp_path):
    a = synth(tmp_path / "a", events=20_000, days=4, seed=3)
    b = synth(tmp_path / "b", events=20_000, days=4, seed=3)
    assert a.rows == b.rows == 20_000 and len(a.files) == 4
    fa = pl.read_parquet(a.files)
    assert fa.equals(pl.read_parquet(b.files))
    assert set(fa["target_type"].unique()) == {"item", "ad"}
    # power law: the top 1% of items get a large share of item events
    counts = fa.filter(pl.col("target_type") == "item")["target_id"].value_counts(sort=True)["count"]
    assert counts.head(max(1, a.items // 100)).sum() / counts.sum() > 0.05
    # daily rhythm: evenings busier than nights
    hours = pl.from_epoch(fa["timestamp"], "s").dt.hour().value_counts().sort("timestamp")["count"].to_list()
    assert hours[20] > 2 * hours[8]
    assert set(fa.filter(pl.col("event_type") == "rating")["value"].unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_synth_bad_rows_are_quarantined(tmp_path):
    for fmt in ("csv", "ndjson", "parquet"):
        r = synth(tmp_path / fmt, events=5_000, days=2, bad_rate=0.02, duplicate_rate=0.01, format=fmt,
                  id_type="string")
        ext = fmt
        report = ingest(tmp_path / f"st-{fmt}", [tmp_path / fmt / "events"],
                        attributes={"item": tmp_path / fmt / f"items.{ext}"},
                        schema=LogSchema.load(tmp_path / fmt / "schema.yaml"), echo=False)
        assert report.invariant_ok
        assert report.quarantined == r.bad
        assert report.duplicates >= r.duplicates
        assert report.read == r.rows + r.items
        if fmt != "parquet":
            assert {"bad_timestamp", "bad_value", "malformed_line", "missing_value"} <= set(report.reasons)


def test_synth_extends_by_one_day(tmp_path):
    base = synth(tmp_path / "base", events=3_000, days=3, seed=1)
    delta = synth(tmp_path / "delta", events=300, days=1, first_day=3, seed=1,
                  users=base.users, items=base.items, ads=base.ads, side_tables=False)
    assert delta.first_day == "2024-01-04" and len(delta.files) == 1
    st = tmp_path / "st"
    ingest(st, [tmp_path / "base" / "events"], schema=LogSchema.load(tmp_path / "base" / "schema.yaml"), echo=False)
    r = ingest(st, [tmp_path / "delta" / "events"], echo=False)
    assert r.partitions_written == ["2024-01-04"]
    assert GraphStore(st).manifest().id_maps["user"].size <= base.users


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_clean_text_logs_ingest_completely(tmp_path, fmt):
    rep = synth(tmp_path / "logs", events=500, days=2, users=20, items=15, ads=3, format=fmt, seed=4)
    assert rep.bad == 0 and rep.rows == 500
    ing = ingest(tmp_path / "st", [tmp_path / "logs" / "events"], schema=LogSchema.load(tmp_path / "logs" / "schema.yaml"),
                 echo=False)  # fmt: skip
    assert (ing.read, ing.accepted) == (500, 500)
