import json

from typer.testing import CliRunner

from graphrec.cli import app

runner = CliRunner()


def test_bench_nodes_writes_json_with_required_fields(shared_data, tmp_path):
    out = tmp_path / "r.json"
    res = runner.invoke(
        app, ["bench", "nodes", "--datasets", "Cora", "--models", "sgc", "--seeds", "2", "--json", str(out), "--quiet"]
    )
    assert res.exit_code == 0, res.output
    assert "sgc" in res.stdout and "±" in res.stdout
    rows = json.loads(out.read_text())
    assert len(rows) == 1
    row = rows[0]
    for key in ("dataset", "model", "metric", "mean", "std", "seeds", "s_per_epoch"):
        assert key in row
    assert row["dataset"] == "Cora" and row["model"] == "sgc" and row["seeds"] == 2
    assert 0.7 < row["mean"] <= 1 and len(row["values"]) == 2 and row["s_per_epoch"] > 0


def test_bench_override_unknown_key_fails_fast_naming_it():
    res = runner.invoke(app, ["bench", "nodes", "--models", "gcn", "--set", "model.hiddn=32"])
    assert res.exit_code == 2
    assert "model.hiddn" in res.output


def test_bench_unknown_model_fails():
    res = runner.invoke(app, ["bench", "nodes", "--models", "nope"])
    assert res.exit_code == 2 and "nope" in res.output


def test_bench_low_label_rate_and_hop_sampling_both(shared_data, tmp_path):
    out = tmp_path / "r.json"
    res = runner.invoke(
        app,
        ["bench", "nodes", "--datasets", "Cora", "--models", "sgc", "--seeds", "1", "--label-rate", "0.03",
         "--hop-sampling-both", "--json", str(out), "--quiet"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())
    assert [r["hop_sampling"] for r in rows] == [False, True]
    assert all(r["label_rate"] == 0.03 for r in rows)


def test_datasets_command_lists_local_data(shared_data):
    res = runner.invoke(app, ["datasets", "--json"])
    assert res.exit_code == 0
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["Cora"]["status"] == "local"


def test_config_command_prints_resolved_yaml():
    res = runner.invoke(app, ["config", "gesm", "--dataset", "PPI", "--set", "train.epochs=5"])
    assert res.exit_code == 0, res.output
    assert "epochs: 5" in res.stdout and "heads: 15" in res.stdout


def test_plot_depth_writes_png(shared_data, tmp_path):
    png, js = tmp_path / "d.png", tmp_path / "d.json"
    res = runner.invoke(
        app,
        ["plot", "depth", "--dataset", "Cora", "--models", "sgc", "--depths", "1,3", "--seeds", "1",
         "--out", str(png), "--json", str(js)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    points = json.loads(js.read_text())
    assert {(p["K"], p["hop_sampling"]) for p in points} == {(1, False), (1, True), (3, False), (3, True)}


def test_plot_depth_rejects_models_without_depth():
    res = runner.invoke(app, ["plot", "depth", "--models", "gcn"])
    assert res.exit_code == 2 and "propagation" in res.output


def test_version_and_short_help():
    from graphrec import __version__

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.stdout.strip() == f"graphrec {__version__}"
    res = runner.invoke(app, ["-h"])
    assert res.exit_code == 0 and "train" in res.stdout and "recommend" in res.stdout


def test_listing_commands_do_not_load_torch():
    import subprocess
    import sys

    for args in (["datasets"], ["models"], ["config", "gesm"], ["config", "lightgcn", "--task", "rec"]):
        code = ("import sys; from typer.testing import CliRunner; from graphrec.cli import app; "
                f"r = CliRunner().invoke(app, {args!r}); assert r.exit_code == 0, r.output; print('torch' in sys.modules)")  # fmt: skip
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert out.strip() == "False", args


def test_config_refuses_an_unknown_dataset():
    res = runner.invoke(app, ["config", "gcn", "--dataset", "Kora"])
    assert res.exit_code == 2 and "unknown dataset 'Kora'; known: Cora, CiteSeer" in res.output
