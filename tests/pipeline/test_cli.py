import json

import yaml
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.pipeline.state import pipeline_lock

from fixtures import day

runner = CliRunner()


def _config(cfg, tmp_path):
    path = tmp_path / "nightly.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    return str(path)


def test_run_exit_codes(make_cfg, tmp_path, monkeypatch):
    cfg = make_cfg()
    path = _config(cfg, tmp_path)
    res = runner.invoke(app, ["pipeline", "run", path, "--date", day(0), "--quiet", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["status"] == "published" and out["artifact_version"] == 1
    res = runner.invoke(app, ["pipeline", "run", path, "--date", day(0), "--quiet"])
    assert res.exit_code == 0 and "already published" in res.output
    monkeypatch.setenv("GRAPHREC_PIPELINE_FAULT", "regress")
    res = runner.invoke(app, ["pipeline", "run", path, "--date", day(1), "--quiet"])
    assert res.exit_code == 3 and "gated, not published" in res.output
    monkeypatch.delenv("GRAPHREC_PIPELINE_FAULT")
    with pipeline_lock(cfg.paths_resolved["runs"], "held by the test"):
        res = runner.invoke(app, ["pipeline", "run", path, "--date", day(2), "--quiet"])
    assert res.exit_code == 4 and "held by the test" in res.output
    res = runner.invoke(app, ["pipeline", "run", path, "--date", "2026-12-25", "--quiet"])
    assert res.exit_code == 1 and "no logs for 2026-12-25" in res.output
    res = runner.invoke(app, ["pipeline", "status", path, "--json"])
    rows = {r["date"]: r for r in json.loads(res.stdout)}
    assert rows[day(0)]["status"] == "published" and rows[day(1)]["status"] == "gated"
    assert rows["2026-12-25"]["failed_stage"] == "ingest"


def test_bad_config_and_date_exit_2(make_cfg, tmp_path):
    path = _config(make_cfg(), tmp_path)
    res = runner.invoke(app, ["pipeline", "run", path, "--date", day(0), "--set", "train.budget=3"])
    assert res.exit_code == 2 and "train.budget" in res.output
    res = runner.invoke(app, ["pipeline", "run", path, "--date", "25/11/2026"])
    assert res.exit_code == 2 and "YYYY-MM-DD" in res.output


def test_replay_both_modes_writes_table_and_plot(make_cfg, tmp_path):
    path = _config(make_cfg(), tmp_path)
    out = tmp_path / "replay"
    res = runner.invoke(app, ["pipeline", "replay", path, "--from", day(0), "--to", day(2), "--mode", "both",
                              "--out", str(out), "--quiet"])  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads((out / "nights.json").read_text())
    rows = data["rows"]
    assert [(r["mode"], r["date"]) for r in rows] == [(m, day(d)) for m in ("warm", "cold") for d in range(3)]
    warm = [r for r in rows if r["mode"] == "warm"]
    cold = [r for r in rows if r["mode"] == "cold"]
    assert warm[0]["warm_from"] is None and warm[1]["warm_from"] is not None
    assert all(r["warm_from"] is None for r in cold)
    assert all(r["epochs"] == 5 for r in warm[1:]) and all(r["epochs"] == 15 for r in cold)
    assert {"warm_vs_cold_train_time", "warm_vs_cold_canary_ndcg@10"} <= set(data["summary"])
    assert (out / "replay.png").stat().st_size > 10_000 and (out / "nights.csv").read_text().count("\n") == 7
    assert (out / "warm" / "artifacts").is_dir() and (out / "cold" / "store").is_dir()
