"""``graphrec train``: any task from a run config, on a dataset or on the user's own store, then served."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.config import ConfigError
from graphrec.serving import Recommender
from graphrec.store import LogSchema, ingest, synth
from graphrec.tasks.run import evaluate, load_run_config, train

from fixtures import write_planetoid

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A user's own graph store, from synthetic logs."""
    root = tmp_path_factory.mktemp("own")
    synth(root / "logs", events=4000, days=2, users=80, items=60, ads=10, seed=1)
    ingest(root / "store", [root / "logs" / "events"], schema=LogSchema.load(root / "logs" / "schema.yaml"), echo=False)
    return root / "store"


def _config(tmp_path, store, **extra) -> Path:
    cfg = {"task": "rec", "dataset": str(store), "seed": 3, "out": str(tmp_path / "model"),
           "model": {"name": "lightgcn", "K": 2}, "train": {"epochs": 6, "batch_size": 512, "lr": 0.02}, **extra}  # fmt: skip
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_train_on_your_own_store_and_serve_it(store, tmp_path):
    path = _config(tmp_path, store)
    res = runner.invoke(app, ["train", str(path), "--set", "train.epochs=4", "--json", "--quiet"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["epochs"] == 4 and out["test"]["ndcg@10"] > 0 and out["out"] == str(tmp_path / "model")
    card = json.loads((tmp_path / "model" / "card.json").read_text())
    assert card["config"]["train"]["epochs"] == 4 and card["metrics"]["test"] == out["test"]
    assert card["metrics"]["seed"] == 3 and card["scorer"] == {"name": "dot"}
    rec = Recommender(tmp_path / "model")
    user = next(iter(rec._user_index))
    res = runner.invoke(app, ["recommend", "--model", str(tmp_path / "model"), "--user", str(user), "-k", "3", "--json"])
    assert res.exit_code == 0, res.output
    assert [r["item"] for r in json.loads(res.stdout)] == [r.item for r in rec.recommend(user, 3)]


def test_the_library_call_equals_the_command_and_evaluate_reloads_the_folder(store, tmp_path):
    path = _config(tmp_path, store)
    a = train(path, progress=None)
    assert a.fit.test == evaluate(a.out, a.data, "test", ks=[10, 20])  # the folder rebuilds the same model
    b = train(path, ["out=" + str(tmp_path / "again")], progress=None)
    assert a.fit.test == b.fit.test and b.out == tmp_path / "again"  # seeded: the same run twice


def test_an_interrupted_run_resumes_to_the_same_result(store, tmp_path):
    path = _config(tmp_path, store)
    full = train(path, ["out=" + str(tmp_path / "full")], progress=None)

    def crash(epoch, total, info):
        if epoch == 3:
            raise KeyboardInterrupt  # killed after the checkpoint of epoch 3

    with pytest.raises(KeyboardInterrupt):
        train(path, progress=crash)
    ckpt = tmp_path / ".model.ckpt.pt"
    assert ckpt.is_file() and not (tmp_path / "model").exists()
    resumed = train(path, progress=None)
    assert resumed.fit.test == full.fit.test
    no_time = [[{k: v for k, v in h.items() if k != "seconds"} for h in f.history] for f in (resumed.fit, full.fit)]
    assert no_time[0] == no_time[1]  # wall time aside
    times = [h["seconds"] for h in resumed.fit.history]
    assert times == sorted(times)  # the clock continues across the resume
    assert not ckpt.exists()  # removed once the model is written
    emb = [Recommender(p).user_emb for p in (tmp_path / "full", tmp_path / "model")]
    assert np.array_equal(*emb)


def test_a_checkpoint_of_another_config_is_not_resumed(store, tmp_path):
    path = _config(tmp_path, store)

    def crash(epoch, total, info):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(path, progress=crash)
    with pytest.raises(ValueError, match="left by a run with another config"):
        train(path, ["train.lr=0.5"], progress=None)


def test_node_classification_from_a_config(tmp_path, monkeypatch):
    write_planetoid(tmp_path / "data" / "planetoid" / "Cora" / "raw", "cora")
    monkeypatch.setenv("GRAPHREC_DATA", str(tmp_path / "data"))
    cfg = tmp_path / "node.yaml"
    cfg.write_text("task: node\ndataset: Cora\nout: " + str(tmp_path / "gcn") + "\nmodel: {name: gcn}\n"
                   "train: {epochs: 30}\n")  # fmt: skip
    res = runner.invoke(app, ["train", str(cfg), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "accuracy" in res.stdout and (tmp_path / "gcn" / "model.pt").is_file()
    metrics = json.loads((tmp_path / "gcn" / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.6 and metrics["epochs"] == 30
    saved = yaml.safe_load((tmp_path / "gcn" / "config.yaml").read_text())
    assert saved["model"]["name"] == "gcn" and saved["train"]["epochs"] == 30 and saved["task"] == "node"


def test_config_errors_name_the_key_and_file(store, tmp_path):
    path = _config(tmp_path, store, extra_key=1)
    res = runner.invoke(app, ["train", str(path)])
    assert res.exit_code == 2 and f"unknown config key 'extra_key' (from {path})" in res.output
    with pytest.raises(ConfigError, match=r"'eval' .* for task 'node'"):
        load_run_config({"task": "node", "dataset": "Cora", "model": {"name": "gcn"}, "eval": {"ks": [5]}})
    with pytest.raises(ConfigError, match=r"train.lrr.*from --set train.lrr=1"):
        load_run_config(_config(tmp_path, store), ["train.lrr=1"])
    with pytest.raises(ConfigError, match="task: Input should be 'node', 'rec', 'ads' or 'encode'"):
        load_run_config({"task": "clicks", "dataset": "x", "model": {"name": "mf"}})
    res = runner.invoke(app, ["train", str(tmp_path / "missing.yaml")])
    assert res.exit_code == 2 and "no run config at" in res.output


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_examples_are_valid(example):
    spec, cfg = load_run_config(example)
    assert spec.out and cfg.model_name in example.name


def test_evaluate_says_what_it_needs(store, tmp_path):
    run = train(_config(tmp_path, store), ["train.epochs=1"], progress=None)
    with pytest.raises(TypeError, match=r"needs a split of the interactions"):
        evaluate(run.out, run.data.source)
    with pytest.raises(TypeError, match="got str"):
        evaluate(run.out, "ml-100k")


def test_an_interrupted_command_says_where_the_checkpoint_is(store, tmp_path, monkeypatch):
    from graphrec.tasks import trainer

    path = _config(tmp_path, store)
    real = trainer.Trainer.save_checkpoint

    def interrupt_after_two(self, state):
        real(self, state)
        if state["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer.Trainer, "save_checkpoint", interrupt_after_two)
    res = runner.invoke(app, ["train", str(path), "--quiet"])
    assert res.exit_code == 130
    assert f"interrupted; the last finished epoch is in {tmp_path / '.model.ckpt.pt'}: rerun the same command" in res.output
    monkeypatch.setattr(trainer.Trainer, "save_checkpoint", real)
    res = runner.invoke(app, ["train", str(path)])
    assert res.exit_code == 0 and "resuming after epoch 2 from" in res.output


def test_a_node_model_folder_is_not_served(tmp_path, monkeypatch):
    write_planetoid(tmp_path / "data" / "planetoid" / "Cora" / "raw", "cora")
    monkeypatch.setenv("GRAPHREC_DATA", str(tmp_path / "data"))
    train({"task": "node", "dataset": "cora", "model": {"name": "sgc"}, "out": str(tmp_path / "n"),
           "train": {"epochs": 2}}, progress=None)  # fmt: skip
    res = runner.invoke(app, ["recommend", "--model", str(tmp_path / "n"), "--user", "1"])
    assert res.exit_code == 2 and "holds a node-classification model" in res.output


def test_a_diverging_run_ends_with_the_nan_guard_message_not_a_traceback(store, tmp_path):
    path = _config(tmp_path, store)
    res = runner.invoke(app, ["train", str(path), "--quiet", "--set", "train.init=normal", "--set", "train.init_std=1e30",
                              "--set", "train.lr=1e6", "--set", "train.epochs=2"])  # fmt: skip
    assert res.exit_code == 1, res.output
    assert "error: training diverged at epoch 1" in res.output and "lower train.lr" in res.output
    assert "Traceback" not in res.output
