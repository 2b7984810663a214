"""The recommendation benchmark's rows and table: published numbers beside ours, costs per row."""

from rich.console import Console

from graphrec.bench.published import ANCHORS, anchor_of_row, anchors_for
from graphrec.bench.rec import RecBenchRun, _duration, results_table, summarize
from graphrec.tasks.trainer import FitResult


def _fit(r20, n20, seconds=30.0, best=7):
    test = {"recall@10": r20 / 2, "ndcg@10": n20 / 2, "recall@20": r20, "ndcg@20": n20}
    return FitResult("recall@20", dict(test), test, best, 10, 2.5, seconds)


def _run(dataset, model, fits, rss=(2**30, 3 * 2**30)):
    run = RecBenchRun(dataset, model, False, {"data": {"split": "auto"}}, fits, list(range(len(fits))))
    run.peak_rss, run.split = list(rss), "published"
    return run


def test_rows_carry_the_published_number_and_the_costs():
    rows = summarize([_run("gowalla", "lightgcn", [_fit(0.17, 0.14, 20.0), _fit(0.18, 0.15, 40.0)]),
                      _run("gowalla", "xsimgcl", [_fit(0.19, 0.16)])])  # fmt: skip
    by = {(r["model"], r["metric"], r["k"]): r for r in rows}
    lg = by["lightgcn", "recall", 20]
    assert lg["published"] == {"value": 0.1830, "model": "LightGCN", "source": anchor_of_row("gowalla", "lightgcn").source}
    assert by["lightgcn", "ndcg", 20]["published"]["value"] == 0.1554
    assert by["lightgcn", "recall", 10]["published"] is None  # no @10 anchor on Gowalla
    assert by["xsimgcl", "recall", 20]["published"] is None
    assert lg["split"] == "published"  # the method that ran, not the config's "auto"
    assert lg["peak_rss_gib"] == 3.0 and lg["seconds"] == 60.0 and lg["seconds_per_seed"] == 30.0
    assert lg["best_epoch_mean"] == 7 and abs(lg["mean"] - 0.175) < 1e-12


def test_table_fits_100_columns_and_names_the_anchors_without_a_row():
    rows = summarize([_run("gowalla", "lightgcn", [_fit(0.17, 0.14), _fit(0.18, 0.15)]),
                      _run("gowalla", "mf", [_fit(0.15, 0.12), _fit(0.16, 0.13)])])  # fmt: skip
    console = Console(width=100, record=True, color_system=None)
    console.print(results_table(rows))
    text = console.export_text()
    assert all(len(line.rstrip()) <= 100 for line in text.splitlines())
    assert "…" not in text  # no cell folded
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("lightgcn"))
    assert "0.1830/0.1554" in line and "0.1750±.0071" in line
    assert "UltraGCN R@20 0.1862 / N@20 0.1580" in text.replace("\n", " ").replace("  ", " ")
    assert "LightGCN R@20 0.1830" not in text  # already beside its row


def test_anchor_lookup():
    assert anchors_for(None) == [] and anchors_for("nope") == []
    assert {a.model for a in anchors_for("ML-1M")} == {"MF-BPR", "UltraGCN"}
    assert anchor_of_row("ml-1m", "mf").metrics["recall@20"] == 0.2532
    assert all(a.source and a.metrics for a in ANCHORS)


def test_duration_units():
    assert [_duration(s) for s in (3.21, 42, 750, 7200)] == ["3.2 s", "42 s", "12.5 m", "2.0 h"]


def _history_row(model, stop_on="recall@20"):
    hist = [{"epoch": e, "loss": 1 / e, "seconds": 10.0 * e, **({"valid": 0.01 * e} if e % 2 == 0 else {})}
            for e in range(1, 9)]  # fmt: skip
    return {"dataset": "gowalla", "model": model, "metric": "recall", "k": 20, "mean": 0.1, "best_epoch_mean": 8,
            "history": hist, "config": {"train": {"stop_on": stop_on}}}  # fmt: skip


def test_time_to_accuracy_plot_from_bench_json(tmp_path):
    import json

    from typer.testing import CliRunner

    from graphrec.cli import app

    path = tmp_path / "rows.json"
    path.write_text(json.dumps([_history_row("lightgcn"), _history_row("mf")]))
    res = CliRunner().invoke(app, ["plot", "time-to-accuracy", str(path), "--out", str(tmp_path / "t.png")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a run that stopped on another metric has no recall@20 history to draw
    path.write_text(json.dumps([_history_row("lightgcn", stop_on="ndcg@10")]))
    res = CliRunner().invoke(app, ["plot", "time-to-accuracy", str(path), "--out", str(tmp_path / "u.png")])
    assert res.exit_code != 0 and "train.stop_on=recall@20" in res.output and not (tmp_path / "u.png").exists()


def test_an_mf_row_trained_with_another_loss_gets_no_mf_bpr_number():
    run = _run("ml-1m", "mf", [_fit(0.26, 0.25)])
    run.config["train"] = {"loss": "softmax"}
    assert all(r["published"] is None for r in summarize([run]))
    run.config["train"] = {"loss": "bpr"}
    assert {r["published"]["value"] for r in summarize([run]) if r["k"] == 20} == {0.2532, 0.2440}


def test_a_re_split_of_a_published_dataset_gets_no_published_number():
    run = _run("gowalla", "lightgcn", [_fit(0.17, 0.14), _fit(0.18, 0.15)])
    run.split = "random"
    rows = summarize([run])
    assert all(r["published"] is None for r in rows)
    console = Console(width=100, record=True, color_system=None)
    console.print(results_table(rows))
    text = console.export_text()
    assert "0.1830" not in text and "UltraGCN" not in text


def test_one_seed_shows_no_standard_deviation():
    console = Console(width=100, record=True, color_system=None)
    console.print(results_table(summarize([_run("gowalla", "lightgcn", [_fit(0.17, 0.14)])])))
    line = next(ln for ln in console.export_text().splitlines() if ln.strip().startswith("lightgcn"))
    assert "0.1700" in line and "±" not in line
