"""The pipeline config nests a typed recommendation config (``rec:``), layered over the model's preset."""

import pytest

from graphrec.config import ConfigError, RecConfig, resolve_rec_config
from graphrec.pipeline import load_pipeline_config
from graphrec.pipeline.config import REC_DEFAULTS

SOURCE = ["source.path=logs/{date}.parquet"]


def test_rec_is_a_recommendation_config_over_the_preset():
    cfg = load_pipeline_config(None, SOURCE)
    assert isinstance(cfg.rec, RecConfig) and cfg.rec.model_name == "lightgcn"
    preset = resolve_rec_config("lightgcn")
    assert cfg.rec.train.lr == preset.train.lr and cfg.rec.model == preset.model  # the preset's values
    assert cfg.rec.train.select == REC_DEFAULTS["train"]["select"] == "last"  # pipeline defaults over the preset
    assert cfg.rec.train.stop_on == cfg.gate.metric


def test_rec_keys_from_file_and_set_are_typed_and_layered(tmp_path):
    f = tmp_path / "night.yaml"
    f.write_text("source: {path: 'l/{date}.parquet'}\nrec: {model: {name: xsimgcl, K: 3}, train: {lr: 0.004}}\n"
                 "warm: {epochs: 7, rec: {train: {lr: 0.0005}}}\n")
    cfg = load_pipeline_config(f, ["rec.train.batch_size=512", "rec.eval.ks=[5, 10]"])
    assert cfg.rec.model_name == "xsimgcl" and cfg.rec.model_params["K"] == 3
    assert cfg.rec.model_params["cl_weight"] == resolve_rec_config("xsimgcl").model_params["cl_weight"]
    assert (cfg.rec.train.lr, cfg.rec.train.batch_size, cfg.rec.eval.ks) == (0.004, 512, [5, 10])
    cold, warm = cfg.night_rec(warm=False, epochs=40), cfg.night_rec(warm=True, epochs=cfg.warm.epochs)
    assert (cold.train.lr, cold.train.epochs) == (0.004, 40)
    assert (warm.train.lr, warm.train.epochs, warm.train.batch_size) == (0.0005, 7, 512)


def test_bad_rec_keys_fail_at_load_naming_key_and_source(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'train.lrr' \(from --set rec.train.lrr=1\)"):
        load_pipeline_config(None, [*SOURCE, "rec.train.lrr=1"])
    f = tmp_path / "p.yaml"
    f.write_text("source: {path: 'l/{date}'}\nwarm: {rec: {train: {lr: -1}}}\n")
    with pytest.raises(ConfigError, match=r"warm.rec: .*train.lr: Input should be greater than 0"):
        load_pipeline_config(f)
    with pytest.raises(ConfigError, match=r"unknown model 'nope'"):
        load_pipeline_config(None, [*SOURCE, "rec.model.name=nope"])
    with pytest.raises(ConfigError, match="gate.metric 'mrr@10' is not computed"):
        load_pipeline_config(None, [*SOURCE, "gate.metric=mrr@10", "rec.eval.metrics=[ndcg]",
                                    "rec.train.stop_on=ndcg@10"])  # fmt: skip
    with pytest.raises(ConfigError, match=r"unknown config key 'model.name' \(keys start with one of"):
        load_pipeline_config(None, [*SOURCE, "model.name=gcn"])  # the old layout is refused, not ignored


def test_shipped_config_is_valid():
    from graphrec.pipeline.cli import shipped_config

    cfg = load_pipeline_config("pipelines/nightly.yaml")
    assert load_pipeline_config(shipped_config()) == cfg  # pipelines/nightly.yaml is the packaged one
    assert cfg.source.kind == "movielens-100k" and cfg.rec.model_name == "lightgcn"
    assert cfg.night_rec(warm=True, epochs=cfg.warm.epochs).train.lr == 0.001


def test_a_file_in_the_old_layout_names_each_moved_key(tmp_path):
    f = tmp_path / "old.yaml"
    f.write_text("source: {path: 'l/{date}'}\nmodel: {name: lightgcn, set: [train.lr=0.005]}\n"
                 "train: {warm_epochs: 20, mode: warm}\neval: {ks: [10]}\n")
    with pytest.raises(ConfigError) as exc:
        load_pipeline_config(f)
    msg = str(exc.value)
    assert msg.startswith(f"{f} uses keys that moved in graphrec 0.2")
    for hint in ("model.name -> rec.model.name", "train.warm_epochs -> warm.epochs", "eval.ks -> rec.eval.ks"):
        assert hint in msg


def test_rec_file_sits_between_the_preset_and_the_rec_mapping(tmp_path):
    rec_file = tmp_path / "rec.yaml"
    rec_file.write_text("train: {lr: 0.1, batch_size: 99}\n")
    cfg = load_pipeline_config(None, [*SOURCE, f"rec_file={rec_file}", "rec.train.lr=0.01"])
    assert cfg.rec.train.lr == 0.01 and cfg.rec.train.batch_size == 99  # --set rec.* wins over the rec_file
    with pytest.raises(ConfigError, match="no rec_file at"):
        load_pipeline_config(None, [*SOURCE, f"rec_file={tmp_path / 'missing.yaml'}"])
