import pytest

from graphrec.config import ConfigError, resolve_config


def test_paper_defaults_and_per_dataset_sections():
    gat = resolve_config("gat", "Cora")
    assert gat.model_params["heads"] == 8 and gat.train.lr == 0.005
    ppi = resolve_config("gat", "PPI")
    assert ppi.model_params["num_layers"] == 3 and ppi.train.normalize_features is False
    assert resolve_config("gesm", "PPI").model_params["K"] == 5
    assert resolve_config("gesm", "Cora").model_params["K"] == 15


def test_overrides_are_parsed_as_yaml_and_win():
    cfg = resolve_config("gcn", "Cora", ["model.hidden=32", "train.lr=0.05", "train.hop_sampling.enabled=true"])
    assert cfg.model_params["hidden"] == 32 and cfg.train.lr == 0.05 and cfg.train.hop_sampling.enabled is True


def test_user_file_layers_between_defaults_and_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model: {hidden: 24}\ntrain: {epochs: 7}\n")
    cfg = resolve_config("gcn", None, ["train.epochs=9"], f)
    assert cfg.model_params["hidden"] == 24 and cfg.train.epochs == 9


@pytest.mark.parametrize(
    "override, key",
    [("model.hiddn=3", "model.hiddn"), ("train.lrr=1", "train.lrr"), ("trian.lr=1", "trian.lr"),
     ("train.hop_sampling.dist=uniform", "train.hop_sampling.dist")],
)  # fmt: skip
def test_unknown_key_fails_and_names_it(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        resolve_config("gcn", "Cora", [override])


def test_bad_values_fail():
    with pytest.raises(ConfigError, match="dropout"):
        resolve_config("gcn", None, ["model.dropout=1.5"])
    with pytest.raises(ConfigError, match="stop_on"):
        resolve_config("gcn", None, ["train.stop_on=sometimes"])
    with pytest.raises(ConfigError, match="section.key=value"):
        resolve_config("gcn", None, ["train.lr"])


def test_unknown_model():
    with pytest.raises(ConfigError, match="registered"):
        resolve_config("gnn9000")
