"""The nightly pipeline with an ``ads:`` section: ingest, train, evaluate, gate and publish an ad-targeting model."""

from __future__ import annotations

import json

import polars as pl
import pytest
from ads_helpers import ad_schema, planted_ad_frame

from graphrec.config import ConfigError
from graphrec.pipeline import load_pipeline_config, run_night

pytestmark = pytest.mark.usefixtures("one_thread")

DATES = ("2024-01-01", "2024-01-02", "2024-01-03")


@pytest.fixture
def ad_logs(tmp_path):
    """Three days of the planted ad log (every user shown every ad once), one parquet file a day, and its schema."""
    frame = planted_ad_frame(users=60, ads=8, items=12, days=3, seed=1)
    folder = tmp_path / "logs"
    folder.mkdir()
    for d in DATES:
        frame.filter(pl.col("timestamp").dt.date() == pl.lit(d).str.to_date()).write_parquet(folder / f"{d}.parquet")
    ad_schema().save(tmp_path / "schema.yaml")
    return tmp_path


def _cfg(root, *overrides):
    return load_pipeline_config(None, [
        "name=ads-nightly", "source.kind=events", f"source.path={root}/logs/{{date}}.parquet",
        f"source.schema_file={root}/schema.yaml", f"paths.workdir={root}/work", "train.mode=cold",
        "train.cold_epochs=12", "eval.canary=null", "gate.metric=auc", "gate.min_users=3", "gate.tolerance=0.3",
        "ads={model: {name: lightgcn}, eval: {ks: [1, 3]}, train: {batch_size: 64, lr: 0.05}}", *overrides,
    ])  # fmt: skip


def test_nights_train_gate_and_publish_an_ads_model(ad_logs):
    from graphrec.artifacts import ArtifactRegistry
    from graphrec.tasks.ads import AdTargeting

    cfg = _cfg(ad_logs)
    assert cfg.night_ads(12).train.stop_on == "auc" and cfg.night_ads(12).train.select == "last"
    first = run_night(cfg, DATES[0], progress=False)
    assert first.status == "published", first.error
    assert first.train["task"] == "ads" and first.train["mode"] == "cold" and first.train["epochs"] == 12
    hold = first.metrics["candidate"]["holdout"]
    assert hold["users"] >= 3 and 0.5 < hold["auc"] <= 1 and {"log_loss", "ece", "ndcg@3", "hit@1"} <= set(hold)
    second = run_night(cfg, DATES[1], progress=False)
    assert second.status == "published", second.error or second.gate
    assert "production" in second.metrics and second.metrics["production_version"] == 1
    checks = {c["set"]: c for c in second.gate["checks"]}
    assert checks["holdout"]["gated"] and checks["holdout"]["candidate"] == second.metrics["candidate"]["holdout"]["auc"]
    assert not checks["canary"]["gated"]  # an ads night has no canary set
    reg = ArtifactRegistry(ad_logs / "work" / "artifacts")
    assert reg.production.version == 2 and reg.production.meta["task"] == "ads"
    card = json.loads((reg.production.path / "card.json").read_text())
    assert card["task"] == "ads" and card["target"] == "ad" and "calibration" in card
    assert "ad targeting with lightgcn" in (reg.production.path / "MODEL_CARD.md").read_text()
    t = AdTargeting(ad_logs / "work" / "artifacts")  # the registry root serves its production version
    assert len(t.audience("a0", 5)) == 5 and len(t.ads_for_user("u1", 2)) == 2
    again = run_night(cfg, DATES[1], progress=False)
    assert again.skipped and again.status == "published"


def test_a_regressed_ads_candidate_is_gated(ad_logs, monkeypatch):
    cfg = _cfg(ad_logs, "gate.tolerance=0.05")
    assert run_night(cfg, DATES[0], progress=False).status == "published"
    monkeypatch.setenv("GRAPHREC_PIPELINE_FAULT", "regress")  # a candidate that ranks at random
    r = run_night(cfg, DATES[1], progress=False)
    assert r.status == "gated" and "auc regressed" in r.gate["reason"], r.gate


def test_ads_pipeline_config_errors(ad_logs):
    with pytest.raises(ConfigError, match="train.mode: warm is not available for ads nights"):
        _cfg(ad_logs, "train.mode=warm")
    with pytest.raises(ConfigError, match="gate.metric 'log_loss' is not an ads gate metric"):
        _cfg(ad_logs, "gate.metric=log_loss")
    with pytest.raises(ConfigError, match=r"rec \(from --set rec.model.name=mf\) is not used.*ads section"):
        _cfg(ad_logs, "rec.model.name=mf")
    with pytest.raises(ConfigError, match=r"warm.rec \(from --set warm.rec.train.lr=0.1\) is not used"):
        _cfg(ad_logs, "warm.rec.train.lr=0.1")
    with pytest.raises(ConfigError, match="gate.metric 'ndcg@10' is not computed: K must be in ads.eval.ks"):
        _cfg(ad_logs, "gate.metric=ndcg@10")
    with pytest.raises(ConfigError, match="ads: unknown config key 'train.lrr'"):
        _cfg(ad_logs, "ads.train.lrr=1")
