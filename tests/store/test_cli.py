import json

import pytest
from store_helpers import events_frame
from typer.testing import CliRunner

from graphrec.store import GraphStore, LogSchema
from graphrec.store.cli import store_app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(store_app, [str(a) for a in args])


@pytest.fixture
def logs(tmp_path):
    r = invoke("synth", tmp_path / "logs", "--events", 4000, "--days", 2, "--bad-rate", 0.01, "--json")
    assert r.exit_code == 0, r.output
    return tmp_path / "logs", json.loads(r.output)


def test_synth_ingest_info_log_build(tmp_path, logs):
    logs_dir, synth_report = logs
    st = tmp_path / "st"
    r = invoke("ingest", logs_dir / "events", "--store", st, "--schema", logs_dir / "schema.yaml",
               "-a", f"item={logs_dir / 'items.parquet'}", "-a", f"ad={logs_dir / 'ads.parquet'}", "-m", "first",
               "--no-progress")
    assert r.exit_code == 0, r.output
    assert "read" in r.output and "= accepted" in r.output
    r = invoke("info", "--store", st, "--json")
    info = json.loads(r.output)
    assert info["version"] == 1 and info["counts"]["quarantined"] == synth_report["bad"]
    r = invoke("info", "--store", st)
    assert r.exit_code == 0 and "events" in r.output
    r = invoke("log", "--store", st, "--json")
    assert [v["version"] for v in json.loads(r.output)] == [1, 0]
    assert json.loads(r.output)[0]["ingest"]["message"] == "first"
    assert invoke("log", "--store", st).exit_code == 0
    r = invoke("quarantine", "--store", st, "--json", "--limit", 3)
    assert len(json.loads(r.output)) == 3
    assert "quarantined rows" in invoke("quarantine", "--store", st, "--reason", "missing_value").output
    out = tmp_path / "g.pt"
    r = invoke("build", "--store", st, "--start", "2024-01-01", "--end", "2024-01-02", "-w", "click=2",
               "-w", "rating=value", "--out", out, "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["nodes"]["user"] == GraphStore(st).manifest().id_maps["user"].size and out.is_file()
    assert invoke("verify", "--store", st, "--all").exit_code == 0
    assert "target_types" in invoke("schema", "--store", st).output


def test_init_and_events_source(tmp_path):
    src = tmp_path / "e.csv"
    events_frame(5).write_csv(src)
    schema = tmp_path / "s.yaml"
    LogSchema().save(schema)
    assert invoke("init", "--store", tmp_path / "st", "--schema", schema).exit_code == 0
    r = invoke("ingest", "--store", tmp_path / "st", "--source", "events", src, "--json")
    assert r.exit_code == 0 and json.loads(r.output)["accepted"] == 5
    assert invoke("init", "--store", tmp_path / "st").exit_code == 1


def test_movielens_source(tmp_path, ml100k):
    r = invoke("ingest", "--store", tmp_path / "ml", "--source", "movielens-100k", ml100k, "--no-progress")
    assert r.exit_code == 0, r.output
    assert "read 102,625 = accepted 102,625 + quarantined 0 + duplicates 0" in r.output
    info = json.loads(invoke("info", "--store", tmp_path / "ml", "--json").output)
    assert info["id_maps"] == {"user": 943, "item": 1682} and info["counts"]["events"] == 100_000


def test_errors_are_one_line_with_exit_1(tmp_path):
    r = invoke("info", "--store", tmp_path / "missing")
    assert r.exit_code == 1 and "no graph store" in r.output
    r = invoke("ingest", tmp_path / "nope.csv", "--store", tmp_path / "st")
    assert r.exit_code == 1 and "no such file" in r.output
    store = GraphStore.init(tmp_path / "locked", LogSchema())
    src = tmp_path / "e.parquet"
    events_frame(2).write_parquet(src)
    with store.lock():
        r = invoke("ingest", src, "--store", store.root)
    assert r.exit_code == 1 and "another process" in r.output
    r = invoke("info", "--store", store.root, "--version", 9)
    assert r.exit_code == 1 and "never committed" in r.output


def test_attributes_only(tmp_path, logs):
    logs_dir, _ = logs
    st = tmp_path / "st"
    assert invoke("init", "--store", st, "--schema", logs_dir / "schema.yaml").exit_code == 0
    r = invoke("ingest", "--store", st, "-a", f"user={logs_dir / 'users.parquet'}", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["new_ids"]["user"] > 0
    r = invoke("ingest", "--store", st)
    assert r.exit_code == 1 and "nothing to ingest" in r.output


def test_quarantine_refuses_an_unknown_reason(tmp_path):
    from graphrec.store import ingest

    ingest(tmp_path / "st", [("ev", events_frame(2))], echo=False)
    res = runner.invoke(store_app, ["quarantine", "--store", str(tmp_path / "st"), "--reason", "bad_vlaue"])
    assert res.exit_code == 2 and "unknown reason 'bad_vlaue'" in res.output
