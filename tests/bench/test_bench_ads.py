"""``graphrec bench ads``: scorer x dimension rows on a tiny synthetic ad log, its JSON, its errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from graphrec.bench.ads import ctr_recovery, find_truth, parse_scorers
from graphrec.cli import app

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A tiny synth_ads log (8 ads, known CTR) ingested into a store, its truth copied beside the store."""
    import shutil

    from graphrec.store.synth_ads import ingest_synth_ads, synth_ads

    root = tmp_path_factory.mktemp("bench-ads")
    synth_ads(root / "log", users=80, items=20, advertisers=2, campaigns=2, creatives=2, days=2,
              impressions_per_user=12, item_events_per_user=8, seed=3)  # fmt: skip
    ingest_synth_ads(root / "st", root / "log", echo=False)
    shutil.copy(root / "log" / "truth.npz", root / "st" / "truth.npz")
    return root


def test_rows_put_a_euclidean_model_beside_every_hyperbolic_one():
    assert parse_scorers(["multi"]) == ["dot", "multi"]
    assert parse_scorers(["hyperbolic", "distance"]) == ["distance", "hyperbolic"]
    assert parse_scorers(["Multi_Manifold", "euclidean", "dot"]) == ["dot", "multi"]
    with pytest.raises(ValueError, match="unknown scorer row 'poincare'; choose among dot, distance"):
        parse_scorers(["poincare"])


def test_bench_ads_writes_its_json(synthetic, tmp_path):
    out = tmp_path / "ads.json"
    res = CliRunner().invoke(app, [
        "bench", "ads", "--dataset", str(synthetic / "st"), "--models", "hyperbolic,multi", "--dims", "2,4",
        "--seeds", "2", "--backbone", "mf", "--set", "train.epochs=2", "--set", "eval.ks=[1,3]",
        "--set", "multi.num_manifolds=2", "--json", str(out), "--threads", "1", "--quiet",
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())
    assert [(r["model"], r["dim"]) for r in rows] == [("dot", 2), ("dot", 4), ("hyperbolic", 2), ("hyperbolic", 4),
                                                      ("multi", 2), ("multi", 4), ("truth", 0)]  # fmt: skip
    truth = rows.pop()  # the reference row: the true CTR as the prediction, on the same test pairs
    assert truth["scorer"] == "true CTR" and truth["recovery"]["mean"] == 1.0 and truth["test"]["auc"]["mean"] > 0.55
    assert truth["test"]["auc"]["values"] != [r["test"]["auc"]["values"] for r in rows][0]
    for r in rows:
        assert r["seeds"] == 2 and r["backbone"] == "mf" and r["split"] == "random"
        assert len(r["test"]["auc"]["values"]) == 2 and 0 <= r["test"]["auc"]["mean"] <= 1
        assert {"log_loss", "ece", "hit@3", "ndcg@3"} <= set(r["test"])
        assert len(r["recovery"]["values"]) == 2 and 0 < r["recovery"]["mean"] <= 1  # the truth was found
        assert r["s_per_epoch"] > 0 and r["epochs_mean"] == 2 and r["environment"]["threads"] == 1
        assert r["config"]["train"]["embedding_dim"] == r["dim"]
    by = {(r["model"], r["dim"]): r for r in rows}
    assert by[("dot", 2)]["curvatures"] is None and by[("dot", 2)]["weights"] is None
    assert len(by[("hyperbolic", 2)]["curvatures"]) == 1  # learnable: the row's own score_params
    assert len(by[("multi", 4)]["curvatures"]) == 2 and math.isclose(sum(by[("multi", 4)]["weights"]), 1, rel_tol=1e-6)
    assert by[("multi", 2)]["config"]["train"]["score_params"]["num_manifolds"] == 2  # --set multi.* reached the row
    assert by[("hyperbolic", 2)]["config"]["train"]["score_params"] == {"kind": "lorentz", "learnable": True}
    assert "HR@3" in res.output and "CTR N@10" in res.output and "multi" in res.output


def test_bench_ads_fails_before_training(synthetic):
    runner = CliRunner()
    res = runner.invoke(app, ["bench", "ads", "--dataset", str(synthetic / "st"), "--set", "train.lrr=1"])
    assert res.exit_code == 2 and "unknown config key 'train.lrr'" in res.output
    res = runner.invoke(app, ["bench", "ads", "--dataset", str(synthetic / "st"), "--models", "dot",
                              "--set", "multi.num_manifolds=2"])  # fmt: skip
    assert res.exit_code == 2 and "names the row(s) ['multi']" in res.output
    res = runner.invoke(app, ["bench", "ads", "--dataset", str(synthetic / "st"), "--models", "multi",
                              "--set", "multi.num_manifold=2"])  # fmt: skip
    assert res.exit_code == 2 and "num_manifold" in res.output
    res = runner.invoke(app, ["bench", "ads", "--dataset", str(synthetic / "st"), "--models", "euclid"])
    assert res.exit_code == 2 and "unknown scorer row 'euclid'" in res.output
    res = runner.invoke(app, ["bench", "ads", "--dataset", str(synthetic / "nowhere"), "--dims", "2", "--seeds", "1"])
    assert res.exit_code == 2 and "neither a known dataset" in res.output


def test_recovery_is_one_for_the_true_ranking(synthetic):
    """ctr_recovery with embeddings whose inner products are the true CTR is 1; reversed, it is far lower."""
    import torch

    from graphrec.config import resolve_ads_config
    from graphrec.store.synth_ads import load_truth
    from graphrec.tasks.ads import build_ads_model, load_ad_log

    truth = load_truth(find_truth(synthetic / "st"))
    cfg = resolve_ads_config("mf", None, ["eval.ks=[1,3]"])
    data = load_ad_log(str(synthetic / "st"), cfg.data).split(cfg.data, 0)
    model = build_ads_model(cfg, data)  # scorer: dot
    ctr = truth.ctr((np.asarray(data.log.user_ids) - 1)[:, None], (np.asarray(data.log.ad_ids) - 1)[None, :])
    users, ads = torch.eye(data.num_users, dtype=torch.float64), torch.from_numpy(ctr.T.copy())  # u . a = ctr[u, a]
    assert ctr_recovery(model, data, truth, embeddings=(users, ads)) == pytest.approx(1.0)
    assert ctr_recovery(model, data, truth, embeddings=(users, -ads)) < 0.8
    assert 0 < ctr_recovery(model, data, truth) < 1  # the untrained model's own embeddings
