"""Bad input: every record ends up accepted, quarantined with a reason, or counted as a duplicate."""

import io
import json
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_helpers import events_frame, write_csv

from graphrec.store import REASONS, GraphStore, LogSchema, ingest

GOOD = "2024-01-01T10:00:00Z,u1,item,i1,click,1.5"


def run(tmp_path, sources, schema=None):
    report = ingest(tmp_path / "st", sources, schema=schema or LogSchema(), echo=False)
    assert report.read == report.accepted + report.quarantined + report.duplicates
    assert report.invariant_ok
    q = GraphStore(tmp_path / "st").quarantine(only=True)
    assert q.height == report.quarantined
    return report, q


def test_malformed_csv_lines(tmp_path):
    src = write_csv(tmp_path / "m.csv", [
        GOOD,
        "2024-01-01T10:00:01Z,u1,item,i1",                    # too few fields
        "2024-01-01T10:00:02Z,u1,item,i1,click,1,extra",      # too many fields
        "2024-01-01T10:00:03Z,u2,item,i2,click,2",
    ])
    r, q = run(tmp_path, [src])
    assert (r.read, r.accepted, r.quarantined) == (4, 2, 2)
    assert q["reason"].to_list() == ["malformed_line"] * 2
    assert q["row"].to_list() == [3, 4]  # line numbers, header = line 1
    assert q["source"].to_list() == [str(src)] * 2
    assert "expected 6 fields, found 4" in q["detail"][0]
    assert q["raw"][0] == "2024-01-01T10:00:01Z,u1,item,i1"


def test_unbalanced_quote(tmp_path):
    src = write_csv(tmp_path / "q.csv", [GOOD, '"2024-01-01T10:00:01Z,u1,item,i1,click,1'])
    r, q = run(tmp_path, [src])
    assert (r.accepted, r.quarantined) == (1, 1)
    assert q["reason"][0] == "malformed_line" and q["row"][0] == 3


@pytest.mark.parametrize(
    "line, reason, field",
    [
        (",u1,item,i1,click,1", "missing_value", "timestamp"),
        ("2024-01-01T10:00:00Z,,item,i1,click,1", "missing_value", "user_id"),
        ("2024-01-01T10:00:00Z,u1,item,  ,click,1", "missing_value", "target_id"),
        ("yesterday,u1,item,i1,click,1", "bad_timestamp", "timestamp"),
        ("2024-02-30T10:00:00Z,u1,item,i1,click,1", "bad_timestamp", "timestamp"),
        ("99999999999999,u1,item,i1,click,1", "bad_timestamp", "timestamp"),
        ("2024-01-01T10:00:00Z,u1,shoe,i1,click,1", "unknown_target_type", "target_type"),
        ("2024-01-01T10:00:00Z,u1,item,i1,clikc,1", "unknown_event_type", "event_type"),
        ("2024-01-01T10:00:00Z,u1,item,i1,click,abc", "bad_value", "value"),
    ],
)
def test_row_level_reasons(tmp_path, line, reason, field):
    src = write_csv(tmp_path / "r.csv", [GOOD, line])
    r, q = run(tmp_path, [src])
    assert (r.accepted, r.quarantined) == (1, 1)
    row = q.row(0, named=True)
    assert (row["reason"], row["field"], row["row"]) == (reason, field, 3)
    assert field in row["detail"]
    assert json.loads(row["raw"])["user_id"] in ("u1", None)
    assert reason in REASONS


def test_int_ids_and_wrong_column_types(tmp_path):
    s = LogSchema(id_type="int", context={"position": "int", "sponsored": "bool"})
    frame = pl.DataFrame({
        "timestamp": [1_700_000_000, 1_700_000_001, 1_700_000_002, 1_700_000_003, 1_700_000_004],
        "user_id": [1.0, 2.5, 3.0, 4.0, 5.0],                 # floats: 2.5 is not an id
        "target_type": ["item"] * 5,
        "target_id": [10, 11, 12, 13, 14],
        "event_type": ["view"] * 5,
        "position": ["1", "2", "x", "4", "5"],
        "sponsored": ["yes", "no", "true", "maybe", "0"],
    })
    nested = pl.DataFrame({
        "timestamp": [1_700_000_000], "user_id": [[1, 2]], "target_type": ["item"], "target_id": [1], "event_type": ["view"],
    })
    r, q = run(tmp_path, [("typed", frame), ("nested", nested)], s)
    assert r.accepted == 2
    got = {(x["row"], x["source"]): (x["reason"], x["field"]) for x in q.iter_rows(named=True)}
    assert got == {
        (2, "typed"): ("bad_id", "user_id"),
        (3, "typed"): ("bad_value", "position"),
        (4, "typed"): ("bad_value", "sponsored"),
        (1, "nested"): ("bad_type", "user_id"),
    }
    ev = GraphStore(tmp_path / "st").events(external_ids=True).collect().sort("timestamp")
    assert ev["user_id"].to_list() == [1, 5] and ev["sponsored"].to_list() == [True, False]


def test_parquet_with_string_columns_of_wrong_content(tmp_path):
    df = events_frame(4).with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                      pl.Series("value", ["1", "two", "3", None]))
    df.write_parquet(tmp_path / "s.parquet")
    r, q = run(tmp_path, [tmp_path / "s.parquet"])
    assert (r.accepted, r.quarantined) == (3, 1)
    assert q.row(0, named=True)["detail"] == "field 'value': cannot parse 'two' as a finite number"


def test_duplicates_are_counted_not_quarantined(tmp_path):
    src = write_csv(tmp_path / "d.csv", [GOOD, GOOD, GOOD, "2024-01-01T10:00:00Z,u1,item,i1,click,2"])
    r, _ = run(tmp_path, [src])
    assert (r.read, r.accepted, r.quarantined, r.duplicates) == (4, 2, 0, 2)


def test_empty_files(tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "empty.parquet").write_bytes(b"")
    (tmp_path / "empty.ndjson").write_bytes(b"")
    write_csv(tmp_path / "header_only.csv", [])
    events_frame(0).write_parquet(tmp_path / "no_rows.parquet")
    good = write_csv(tmp_path / "good.csv", [GOOD])
    r, q = run(tmp_path, [tmp_path / n for n in ("empty.csv", "empty.parquet", "empty.ndjson", "header_only.csv",
                                                  "no_rows.parquet")] + [good])
    assert (r.read, r.accepted, r.quarantined) == (1, 1, 0)
    assert [f.status for f in r.files] == ["empty"] * 5 + ["ok"]


def test_truncated_parquet_is_quarantined_as_a_file(tmp_path):
    buf = io.BytesIO()
    events_frame(100).write_parquet(buf)
    data = buf.getvalue()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.parquet").write_bytes(b"not a parquet file at all")
    good = write_csv(tmp_path / "good.csv", [GOOD])
    r, q = run(tmp_path, [tmp_path / "cut.parquet", tmp_path / "junk.parquet", good])
    assert (r.read, r.accepted, r.quarantined) == (3, 1, 2)
    assert q["reason"].to_list() == ["unreadable_file"] * 2
    assert q["row"].null_count() == 2
    assert "unreadable parquet file" in q["detail"][0]
    assert [f.status for f in r.files] == ["unreadable", "unreadable", "ok"]


def test_invalid_utf8_csv(tmp_path):
    p = tmp_path / "latin.csv"
    p.write_bytes(("timestamp,user_id,target_type,target_id,event_type\n"
                   "2024-01-01,J\xfcrgen,item,i1,view\n").encode("latin-1"))
    r, q = run(tmp_path, [p])
    assert q["reason"].to_list() == ["unreadable_file"] and "UTF" in q["detail"][0].upper()


def test_extra_and_missing_columns(tmp_path):
    extra = write_csv(tmp_path / "extra.csv", [GOOD + ",oops"],
                      header="timestamp,user_id,target_type,target_id,event_type,value,surprise\n")
    missing = write_csv(tmp_path / "missing.csv", ["2024-01-01T10:00:00Z,u1,item,i1"],
                        header="timestamp,user_id,target_type,target_id\n")
    no_value = write_csv(tmp_path / "optional.csv", ["2024-01-01T10:00:00Z,u1,item,i1,view"],
                         header="timestamp,user_id,target_type,target_id,event_type\n")
    r, q = run(tmp_path, [extra, missing, no_value])
    assert (r.accepted, r.quarantined) == (1, 2)
    rows = {x["source"]: x for x in q.iter_rows(named=True)}
    assert rows[str(extra)]["reason"] == "unexpected_column" and "surprise" in rows[str(extra)]["detail"]
    assert json.loads(rows[str(extra)]["raw"])["surprise"] == "oops"  # nothing lost
    assert rows[str(missing)]["reason"] == "missing_column" and rows[str(missing)]["field"] == "event_type"


def test_extra_columns_can_be_ignored(tmp_path):
    extra = write_csv(tmp_path / "extra.csv", [GOOD + ",oops"],
                      header="timestamp,user_id,target_type,target_id,event_type,value,surprise\n")
    r, _ = run(tmp_path, [extra], LogSchema(extra_columns="ignore"))
    assert r.accepted == 1


def test_ndjson_bad_lines(tmp_path):
    p = tmp_path / "e.ndjson"
    good = {"timestamp": "2024-01-01T00:00:00Z", "user_id": "u", "target_type": "item", "target_id": 7,
            "event_type": "view", "value": 1}
    p.write_text("\n".join([json.dumps(good), '{"timestamp": "2024-01-01', "[1, 2]",
                            json.dumps({**good, "event_type": "zap"})]) + "\n")
    r, q = run(tmp_path, [p])
    assert (r.read, r.accepted, r.quarantined) == (4, 1, 3)
    assert sorted(zip(q["row"], q["reason"], strict=True)) == [
        (2, "malformed_line"), (3, "malformed_line"), (4, "unknown_event_type")]
    assert GraphStore(tmp_path / "st").id_map("item")["external_id"].to_list() == ["7"]


def test_quarantine_accumulates_over_versions(tmp_path):
    src = write_csv(tmp_path / "x.csv", [GOOD, "bad,u,item,i,view,"])
    run(tmp_path, [src])
    ingest(tmp_path / "st", [src], echo=False)
    store = GraphStore(tmp_path / "st")
    assert store.quarantine().height == 2
    assert store.quarantine(version=1).height == 1
    assert store.quarantine(only=True)["version"].to_list() == [2]
    assert store.manifest().counts.quarantined == 2


# --------------------------------------------------------------------------- property test
ROW_KINDS = ["good", "dup", "null_user", "bad_time", "bad_event", "bad_target", "bad_value", "malformed"]


def _line(kind: str, i: int) -> str:
    ts = f"2024-01-0{1 + i % 3}T{i % 24:02d}:{i % 60:02d}:00Z"
    base = [ts, f"u{i % 5}", "item" if i % 2 else "ad", f"t{i % 4}", "click", str(i)]
    if kind == "null_user":
        base[1] = ""
    elif kind == "bad_time":
        base[0] = "31/12/2024"
    elif kind == "bad_event":
        base[4] = "purr"
    elif kind == "bad_target":
        base[2] = "banner"
    elif kind == "bad_value":
        base[5] = "NaNx"
    elif kind == "malformed":
        return ",".join(base[:3])
    return ",".join(base)


@st.composite
def mixtures(draw):
    return draw(st.lists(
        st.tuples(
            st.sampled_from(["csv", "ndjson", "parquet", "empty", "truncated"]),
            st.lists(st.sampled_from(ROW_KINDS), max_size=25),
        ),
        min_size=1, max_size=4,
    ))


def _is_good(line: str) -> bool:
    parts = line.split(",")
    return (len(parts) == 6 and parts[1] != "" and parts[0][0] == "2" and parts[4] == "click"
            and parts[2] in ("item", "ad") and parts[5].isdigit())


@settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(mixtures())
def test_invariant_on_random_mixtures(files):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths, expect_q, good_rows, counter = [], 0, [], 0
        for k, (fmt, kinds) in enumerate(files):
            lines: list[str] = []
            for kind in kinds:
                if kind == "dup":
                    if lines:
                        lines.append(lines[-1])
                        continue
                    kind = "good"
                counter += 1
                lines.append(_line(kind, counter))
            ext = {"csv": "csv", "empty": "csv", "ndjson": "ndjson"}.get(fmt, "parquet")
            path = tmp / f"f{k}.{ext}"
            well_formed = [ln for ln in lines if ln.count(",") == 5]
            frame = pl.DataFrame([ln.split(",") for ln in well_formed], orient="row",
                                 schema=["timestamp", "user_id", "target_type", "target_id", "event_type", "value"])
            if fmt == "empty":
                path.write_bytes(b"")
                kept = []
            elif fmt == "csv":
                write_csv(path, lines)
                kept = lines
            elif fmt == "ndjson":
                path.write_text("".join(
                    json.dumps(r) + "\n" if ln.count(",") == 5 else '{"broken": \n'
                    for ln, r in zip(lines, _rows(lines), strict=True)))
                kept = lines
            else:
                buf = io.BytesIO()
                frame.write_parquet(buf)
                data = buf.getvalue()
                if fmt == "truncated":
                    data = data[: len(data) // 2]
                    expect_q += 1  # one record for the unreadable file
                    kept = []
                else:
                    kept = well_formed  # malformed lines cannot exist in parquet
                path.write_bytes(data)
            expect_q += sum(1 for ln in kept if not _is_good(ln))
            good_rows += [ln for ln in kept if _is_good(ln)]
            paths.append(path)
        report = ingest(tmp / "st", paths, schema=LogSchema(), echo=False)
        assert report.read == report.accepted + report.quarantined + report.duplicates
        assert report.invariant_ok
        assert report.quarantined == expect_q
        assert report.accepted == len(set(good_rows))
        assert report.duplicates == len(good_rows) - len(set(good_rows))
        store = GraphStore(tmp / "st")
        assert store.manifest().counts.events == len(set(good_rows))
        assert store.quarantine().height == expect_q


def _rows(lines: list[str]) -> list[dict | None]:
    cols = ["timestamp", "user_id", "target_type", "target_id", "event_type", "value"]
    return [dict(zip(cols, ln.split(","), strict=True)) if ln.count(",") == 5 else None for ln in lines]


NON_FINITE = ["inf", "-inf", "NaN", "nan", "1e400", "-1E999", "Infinity"]


@pytest.mark.parametrize("field", ["value", "weight", "score"])
@pytest.mark.parametrize("text", NON_FINITE)
def test_non_finite_numbers_are_quarantined_in_every_numeric_field(tmp_path, field, text):
    schema = LogSchema(context={"score": "float"})
    header = "timestamp,user_id,target_type,target_id,event_type,value,weight,score\n"
    row = {"value": "1.5", "weight": "2", "score": "0.3", field: text}
    path = write_csv(tmp_path / "e.csv", [f"2024-01-01T10:00:00Z,u1,item,i1,click,{row['value']},{row['weight']},{row['score']}",
                                          "2024-01-01T11:00:00Z,u2,item,i1,click,1,1,1"], header=header)  # fmt: skip
    rep, q = run(tmp_path, [path], schema)
    assert (rep.accepted, rep.quarantined) == (1, 1)
    assert q["reason"].to_list() == ["bad_value"] and q["field"].to_list() == [field] and q["row"].to_list() == [2]
    assert "finite number" in q["detail"][0]


def test_non_finite_floats_in_parquet_and_side_tables(tmp_path):
    schema = LogSchema.model_validate({"attributes": {"item": {"id_column": "item_id", "columns": {"price": "numeric"}}}})
    ev = events_frame(4).with_columns(
        pl.Series("value", [1.0, float("nan"), float("inf"), 2.0]), pl.Series("weight", [1.0, 1.0, 1.0, float("-inf")])
    )
    items = pl.DataFrame({"item_id": ["t0", "t1", "t2"], "price": [1.0, float("inf"), float("nan")]})
    rep = ingest(tmp_path / "st", [("events", ev)], attributes={"item": [("items", items)]}, schema=schema, echo=False)
    q = GraphStore(tmp_path / "st").quarantine(only=True).sort("table", "row")
    assert rep.accepted == 1 + 1 and rep.quarantined == 3 + 2  # events, then the side table
    assert set(q["reason"]) == {"bad_value"}
    assert q.filter(pl.col("table") != "events")["row"].to_list() == [2, 3]
    assert q.filter(pl.col("table") == "events")["field"].to_list() == ["value", "value", "weight"]


@pytest.mark.parametrize("unit, value, accepted", [
    ("ms", "1717236000", False),  # seconds read as ms: 1970-01-20
    ("ms", "1717236000.5", False),
    ("ms", "1717236000123", True),
    ("s", "1717236000", True),
    ("us", "1717236000123", False),  # ms read as us
    ("us", "1717236000123456", True),
    ("ns", "1717236000123456", False),  # us read as ns
    ("s", "86400", True),  # 1970-01-02 in seconds: no other unit has this magnitude
])  # fmt: skip
def test_epoch_numbers_in_the_wrong_unit_are_quarantined(tmp_path, unit, value, accepted):
    path = write_csv(tmp_path / "e.csv", [f"{value},u1,item,i1,click,1"])
    rep, q = run(tmp_path, [path], LogSchema(timestamp_unit=unit))
    assert rep.accepted == int(accepted)
    if not accepted:
        assert q["reason"].to_list() == ["bad_timestamp"] and f"epoch numbers are in '{unit}'" in q["detail"][0]


def test_a_wrong_unit_in_a_native_integer_column_is_caught_too(tmp_path):
    ev = events_frame(2).with_columns(pl.Series("timestamp", [1717236000, 1717236000000]))
    rep = ingest(tmp_path / "st", [("ev", ev)], schema=LogSchema(timestamp_unit="ms"), echo=False)
    assert (rep.accepted, rep.quarantined) == (1, 1)
