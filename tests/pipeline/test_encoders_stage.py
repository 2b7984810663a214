"""The encoders stage of a night: a user encoder trained on the behaviours before the night (never a canary pair),
its feature tables written into the store, attached by the night's training, warm-started the next night."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest
import torch

from graphrec.config import ConfigError
from graphrec.encoders import from_store
from graphrec.pipeline import run_night
from graphrec.pipeline.sources import day_bounds
from graphrec.store import GraphStore

from fixtures import day

ENCODER = [
    "encoders.enabled=true",
    "encoders.config.model.name=sasrec",
    "encoders.config.model.dim=16",
    "encoders.config.model.layers=1",
    "encoders.config.model.max_len=10",
    "encoders.config.train.batch_size=16",
    "encoders.cold_epochs=1",
    "encoders.warm_epochs=1",
    "rec.data.features=[user/sasrec]",
    "rec.train.inputs=both",
]


@pytest.fixture
def enc_cfg(make_cfg, logs):
    # day 0 is the history ingested before the first night, so that night's encoder has behaviours to read
    return make_cfg(f"source.history=[{logs}/{day(0)}.parquet]", *ENCODER)


@pytest.fixture
def spy(monkeypatch):
    """The sequences each encoder fit was given."""
    import graphrec.tasks.encode as encode_module

    seen: list = []
    real = encode_module.fit_encoder

    def fit_encoder(seqs, split, model, cfg, **kw):
        seen.append((seqs, split, cfg))
        return real(seqs, split, model, cfg, **kw)

    monkeypatch.setattr(encode_module, "fit_encoder", fit_encoder)
    return seen


def _stages(cfg, date: str) -> dict:
    return json.loads((cfg.paths_resolved["runs"] / date / "state.json").read_text())["stages"]


def test_two_nights_train_write_attach_and_warm_start(enc_cfg, spy):
    cfg = enc_cfg
    r = run_night(cfg, day(1), progress=False)
    assert r.status == "published", r.error
    st = _stages(cfg, day(1))
    enc, ingest_v = st["encoders"], st["ingest"]["version"]
    assert enc["full_retrain"] is True and enc["warm_start"] is None and enc["epochs"] == 1
    assert enc["tables"] == ["user/sasrec", "item/sasrec"] and enc["version"] > ingest_v
    store = GraphStore(cfg.paths_resolved["store"])
    entry = store.features(version=enc["version"])["user/sasrec"]
    assert entry.data_version == ingest_v and entry.meta["run"] == f"{cfg.name}/{day(1)}/0" and entry.dim == 16
    assert store.features(version=ingest_v) == {}  # the night's ingest comes first, the tables in a version of their own

    # what the encoder read: only behaviours before the night, and no canary pair
    (seqs, split, ecfg), = spy
    assert ecfg.train.epochs == 1 and ecfg.model.dim == 16 and ecfg.train.select == "last"
    start, _ = day_bounds(dt.date.fromisoformat(day(1)))
    assert seqs.info["store"]["version"] == ingest_v and seqs.time.max() < start
    canary = pl.read_parquet(cfg.paths_resolved["runs"] / "canary.parquet")
    held = set(zip(*(canary[c].to_list() for c in canary.columns[:2]), strict=True))
    read = {(seqs.user_ids[k], seqs.item_ids[t - 1]) for k in range(len(seqs)) for t in seqs[k]}
    assert held and not held & read
    everything = from_store(store, version=ingest_v, window=(None, start))
    all_pairs = {(everything.user_ids[k], everything.item_ids[t - 1]) for k in range(len(everything)) for t in everything[k]}
    assert held <= all_pairs  # the canary pairs are in the history: the stage took them out
    assert enc["behaviours"] == seqs.num_events < everything.num_events
    ids, x = store.read_features("user/sasrec", enc["version"])
    assert np.array_equal(ids, seqs.user_index) and x.shape == (len(seqs), 16)

    # the night's training read the version with the table and used it (a feature projection was trained)
    state = torch.load(cfg.paths_resolved["runs"] / day(1) / "model.pt", weights_only=True)
    rec_cfg = json.loads((cfg.paths_resolved["runs"] / day(1) / "rec_config.json").read_text())
    assert rec_cfg["train"]["inputs"] == "both" and rec_cfg["data"]["features"] == ["user/sasrec"]
    assert state["user_enc.lin.weight"].shape[1] == 16  # the projection of the 16-dimensional encoder features

    # the second night warm-starts from the first night's encoder and writes a new version of the table
    r2 = run_night(cfg, day(2), progress=False)
    # (the gate compares with the first night's model on a few users: either outcome is a finished night)
    assert r2.status in ("published", "gated") and r2.error is None and r2.train["mode"] == "warm"
    st2 = _stages(cfg, day(2))
    enc2 = st2["encoders"]
    assert enc2["full_retrain"] is False and enc2["warm_start"]["items"] > 0 and enc2["version"] > st2["ingest"]["version"]
    store = GraphStore(cfg.paths_resolved["store"])
    entry2 = store.features()["user/sasrec"]
    assert entry2.meta["run"] == f"{cfg.name}/{day(2)}/0" and entry2.data_version == st2["ingest"]["version"]
    seqs2 = spy[1][0]
    assert seqs2.time.max() < day_bounds(dt.date.fromisoformat(day(2)))[0] <= seqs2.time.max() + 86400 and len(seqs2) >= len(seqs)
    saved = json.loads((cfg.paths_resolved["runs"] / "encoder.json").read_text())
    assert saved == {"last_full": day(1), "folder": str(cfg.paths_resolved["runs"] / day(2) / "encoder")}

    # a finished night is not run again: no table is written twice
    version = store.version
    again = run_night(cfg, day(2), progress=False)
    assert again.skipped and GraphStore(cfg.paths_resolved["store"]).version == version and len(spy) == 2


def test_a_crash_after_the_tables_are_committed_does_not_write_them_again(enc_cfg, spy, monkeypatch):
    import graphrec.pipeline.runner as runner

    real = runner.atomic_write_json

    def crash(path, data):
        if path.name == "encoder.json":
            raise OSError("disk gone")  # after the store commit, before the stage's record
        return real(path, data)

    monkeypatch.setattr(runner, "atomic_write_json", crash)
    r = run_night(enc_cfg, day(1), progress=False)
    assert r.status == "failed" and "encoders" in r.error
    version = GraphStore(enc_cfg.paths_resolved["store"]).version
    monkeypatch.setattr(runner, "atomic_write_json", real)
    r = run_night(enc_cfg, day(1), progress=False)
    assert r.status == "published", r.error
    enc = _stages(enc_cfg, day(1))["encoders"]
    assert enc["resumed"] is True and enc["version"] == version == GraphStore(enc_cfg.paths_resolved["store"]).version
    assert len(spy) == 1  # the encoder was trained once


def test_a_first_night_without_history_skips_the_encoder(make_cfg):
    cfg = make_cfg(*[o for o in ENCODER if not o.startswith("rec.")])
    r = run_night(cfg, day(0), progress=False)
    assert r.status == "published", r.error
    assert _stages(cfg, day(0))["encoders"]["skipped"] == f"no behaviour before {day(0)}"
    assert GraphStore(cfg.paths_resolved["store"]).features() == {}


def test_disabled_encoders_skip_and_bad_encoder_keys_fail_when_the_config_is_read(make_cfg):
    cfg = make_cfg()
    assert not cfg.encoders.enabled
    with pytest.raises(ConfigError, match=r"model.dimm.*encoders.config"):
        make_cfg("encoders.enabled=true", "encoders.config.model.name=sasrec", "encoders.config.model.dimm=3")
    with pytest.raises(ConfigError, match="unknown encoder objective 'sasrek'"):
        make_cfg("encoders.enabled=true", "encoders.config.model.name=sasrek")
    with pytest.raises(ConfigError, match="clue"):
        make_cfg("encoders.enabled=true", "encoders.config.model.name=clue", "encoders.config.train.stop_on=hit@10")
    night = cfg.model_copy(update={"encoders": cfg.encoders.model_copy(update={"enabled": True})}).night_encoder(3)
    assert night.model_name == "sasrec" and night.train.epochs == 3 and night.train.select == "last"
