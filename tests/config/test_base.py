"""The one configuration machinery: layers with sources, overrides, errors that name key and source."""

import pytest

from graphrec.config import (
    ConfigError,
    Layers,
    RecConfig,
    apply_overrides,
    resolve_config,
    resolve_rec_config,
)


def test_layers_merge_in_order_and_remember_their_source(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("train: {lr: 0.5, epochs: 3}\nmodel: {hidden: 8}\n")
    layers = Layers().add("defaults", {"train": {"lr": 0.1, "patience": 5}}).add_file(f)
    layers.add_overrides(["train.lr=0.7", "model.act=elu"], ["train", "model"])
    merged = layers.merged()
    assert merged == {"train": {"lr": 0.7, "patience": 5, "epochs": 3}, "model": {"hidden": 8, "act": "elu"}}
    assert layers.source_of(["train", "lr"]) == "--set train.lr=0.7"
    assert layers.source_of(["train", "epochs"]) == str(f)
    assert layers.source_of(["train", "patience"]) == "defaults"
    assert layers.source_of(["train", "epochs", "deeper"]) == str(f)  # the longest prefix a layer set
    assert layers.source_of(["data"]) is None


def test_unknown_keys_name_the_key_and_the_file_they_came_from(tmp_path):
    f = tmp_path / "exp.yaml"
    f.write_text("train:\n  lr: 0.01\n  lrr: 0.5\n")
    with pytest.raises(ConfigError, match=rf"unknown config key 'train.lrr' \(from {f}\)"):
        resolve_config("gcn", "Cora", config_file=f)
    with pytest.raises(ConfigError, match=r"unknown config key 'train.epochz' \(from --set train.epochz=3\)"):
        resolve_rec_config("mf", None, ["train.epochz=3"])
    with pytest.raises(ConfigError, match=r"model 'gcn': unknown config key 'model.hiden' \(from --set model.hiden=4\)"):
        resolve_config("gcn", None, ["model.hiden=4"])
    with pytest.raises(ConfigError, match=r"train.lr: Input should be greater than 0 \(from --set train.lr=-1\)"):
        resolve_rec_config("lightgcn", None, ["train.lr=-1"])


def test_bad_files_are_named(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="no config file at .*nope.yaml"):
        resolve_config("gcn", None, config_file=missing)
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        resolve_config("gcn", None, config_file=bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="list.yaml: expected a mapping"):
        resolve_config("gcn", None, config_file=listy)


def test_a_different_model_name_in_a_layer_is_refused():
    with pytest.raises(ConfigError, match="model.name 'gat' .* differs from the model being configured, 'gcn'"):
        resolve_config("gcn", None, ["model.name=gat"])


def test_overrides_reject_unknown_sections_and_bad_syntax():
    with pytest.raises(ConfigError, match="keys start with one of"):
        apply_overrides({}, ["optim.lr=1"], ["train"])
    with pytest.raises(ConfigError, match="must look like section.key=value"):
        apply_overrides({}, ["train.lr"], ["train"])
    with pytest.raises(ConfigError, match="'lr' is not a section"):
        apply_overrides({"train": {"lr": 1}}, ["train.lr.x=2"], ["train"])


def test_trainer_options_are_shared_and_validated():
    node, rec = resolve_config("gcn", "Cora"), resolve_rec_config("lightgcn")
    for cfg in (node, rec):
        assert cfg.train.optimizer == "auto" and cfg.train.device == "auto" and cfg.train.select == "best"
    assert resolve_rec_config("mf", None, ["train.optimizer=adamw", "train.device=cuda:1"]).train.device == "cuda:1"
    with pytest.raises(ConfigError, match="device must be auto, cpu, cuda or cuda:N"):
        resolve_config("gcn", None, ["train.device=gpu"])
    with pytest.raises(ConfigError, match="train.optimizer"):
        resolve_rec_config("mf", None, ["train.optimizer=sgd"])
    # a dumped config validates back to the same config (model folders and run records rely on it)
    assert RecConfig.model_validate(rec.model_dump(mode="json")) == rec


def test_an_unknown_key_suggests_the_nearest_valid_one():
    with pytest.raises(ConfigError, match=r"'train.lrr' \(from --set train.lrr=1\); did you mean 'train.lr'\?"):
        resolve_config("gcn", None, ["train.lrr=1"])
    with pytest.raises(ConfigError, match=r"did you mean 'train.hop_sampling.distribution'\?"):
        resolve_rec_config("lightgcn", None, ["train.hop_sampling.distributon=linear"])
    with pytest.raises(ConfigError, match=r"did you mean 'model.hidden'\?"):
        resolve_config("gcn", None, ["model.hiden=3"])
    with pytest.raises(ConfigError) as exc:
        resolve_config("gcn", None, ["train.zzzzzz=3"])
    assert "did you mean" not in str(exc.value)  # nothing close: no guess
