"""``graphrec encode``: encoder configs, training through the one trainer, evaluation, feature tables in the
store, warm starts, checkpoints, and the pure helpers of the encoder benchmarks."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import yaml
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.config import ConfigError
from graphrec.config.encoder import EncoderConfig, resolve_encoder_config
from graphrec.encoders import from_store, load_behaviour_sequences
from graphrec.store import GraphStore, LogSchema, ingest
from graphrec.store.schema import NodeAttributes
from graphrec.tasks.encode import (
    ENCODER_FILE,
    build_encoder_model,
    embed_users,
    encode,
    encoder_tokenizer,
    item_vectors,
    rank_next,
    save_encoder,
    warm_start,
)

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
OBJECTIVES = ("sasrec", "clue", "shopperbert", "lmrec")
#: Tiny and fast: every test trains for 1-2 epochs at dim 16.
SMALL = ["model.dim=16", "model.layers=1", "model.heads=2", "model.max_len=8", "train.epochs=2", "train.batch_size=8",
         "model.vocab_size=300", "train.device=cpu"]  # fmt: skip
BASE = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
ITEMS = 12


def _frame(rows: list[tuple[dt.datetime, str, str, str, str]]) -> pl.DataFrame:
    return pl.DataFrame({"timestamp": [r[0] for r in rows], "user_id": [r[1] for r in rows],
                         "target_type": [r[2] for r in rows], "target_id": [r[3] for r in rows],
                         "event_type": [r[4] for r in rows], "value": [1.0] * len(rows)})  # fmt: skip


def _events(users: int = 10, per: int = 7, seed: int = 0) -> list[tuple]:
    """Each user clicks ``per`` distinct items (no repeats) and one ad; ads share external ids with items
    ("i1", "i2": the two target types are separate id spaces). User ``cold`` only views items."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        for k, i in enumerate(rng.permutation(ITEMS)[:per]):
            rows.append((BASE + dt.timedelta(hours=24 * u + k), f"u{u}", "item", f"i{i}", "click"))
        rows.append((BASE + dt.timedelta(hours=24 * u + per), f"u{u}", "ad", f"i{1 + u % 2}", "click"))
    for k, i in enumerate((3, 5, 7, 9)):
        rows.append((BASE + dt.timedelta(hours=k), "cold", "item", f"i{i}", "view"))
    return rows


def make_store(root: Path, users: int = 10, seed: int = 0) -> GraphStore:
    """A tiny store: clicks on items (with a title and a genre) and ads, and a user with views only."""
    schema = LogSchema(attributes={"item": NodeAttributes(id_column="item_id", columns={"title": "text",
                                                                                        "genre": "categorical"})})  # fmt: skip
    side = pl.DataFrame({"item_id": [f"i{i}" for i in range(ITEMS)], "title": [f"film number {i}" for i in range(ITEMS)],
                         "genre": [("drama", "comedy", "horror")[i % 3] for i in range(ITEMS)]})  # fmt: skip
    ingest(root, [("day1", _frame(_events(users, seed=seed)))], schema=schema, attributes={"item": ("items", side)},
           echo=False)  # fmt: skip
    return GraphStore(root)


@pytest.fixture
def store(tmp_path) -> GraphStore:
    return make_store(tmp_path / "store")


def _cfg(objective: str = "sasrec", *extra: str) -> EncoderConfig:
    return resolve_encoder_config(objective, overrides=[*SMALL, *extra])


# ---------------------------------------------------------------------------- config
def test_config_errors_name_the_key_and_its_source(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown encoder objective 'sasrek'; did you mean 'sasrec'\?"):
        resolve_encoder_config("sasrek")
    with pytest.raises(ConfigError, match=r"train.stop_on='hit@10'.*clue.*\(from --set train.stop_on=hit@10\)"):
        resolve_encoder_config("clue", overrides=["train.stop_on=hit@10"])
    with pytest.raises(ConfigError, match=r"train.stop_on='ndcg@5' is not among .*eval.ks.*\(from --set"):
        resolve_encoder_config("sasrec", overrides=["train.stop_on=ndcg@5"])
    with pytest.raises(ConfigError, match=r"model: dim \(30\) must be divisible by heads \(4\) \(from --set model"):
        resolve_encoder_config("sasrec", overrides=["model.dim=30", "model.heads=4"])
    path = tmp_path / "enc.yaml"
    path.write_text("data: {split: time, valid_start: 2024-03-01}\n")
    with pytest.raises(ConfigError, match=rf"data: split: time needs valid_start and test_start.*\(from {path}\)"):
        resolve_encoder_config("sasrec", config_file=path)
    with pytest.raises(ConfigError, match=r"unknown config key 'model.dimm' \(from --set model.dimm=3\); did you mean "
                                          r"'model.dim'\?"):  # fmt: skip
        resolve_encoder_config("sasrec", overrides=["model.dimm=3"])
    with pytest.raises(ConfigError, match=r"model.name 'clue' \(from --set model.name=clue\) differs"):
        resolve_encoder_config("sasrec", overrides=["model.name=clue"])
    # the defaults of each objective are valid, and pick the selection metric the objective can compute
    assert resolve_encoder_config("sasrec").stop_on == "ndcg@10"
    assert {resolve_encoder_config(o).stop_on for o in OBJECTIVES[1:]} == {"loss"}
    assert resolve_encoder_config("sasrec", "ml-100k").model.max_len == 200  # the per-dataset section


def test_run_config_with_task_encode_is_validated_with_its_sections():
    from graphrec.tasks.run import load_run_config

    spec, cfg = load_run_config({"task": "encode", "dataset": "x", "model": {"name": "clue"}}, ["features.name=mine"])
    assert spec.task == "encode" and isinstance(cfg, EncoderConfig) and cfg.table_name == "mine"
    with pytest.raises(ConfigError, match="features.name"):
        load_run_config({"task": "encode", "dataset": "x", "model": {"name": "clue"}}, ["features.name=a/b"])


# ---------------------------------------------------------------------------- graphrec encode and feature tables
def _reload(out: Path, dataset: Path):
    """The encoder saved in ``out``, rebuilt from its config and weights."""
    cfg = EncoderConfig.model_validate(yaml.safe_load((out / "config.yaml").read_text()))
    seqs = load_behaviour_sequences(str(dataset))
    model = build_encoder_model(cfg, seqs, encoder_tokenizer(out))
    model.load_state_dict(torch.load(out / ENCODER_FILE, map_location="cpu", weights_only=True)["model"])
    return cfg, seqs, model


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_encode_command_writes_user_tables_of_every_user_with_a_history(objective, store, tmp_path):
    v0 = store.version
    out = tmp_path / "enc"
    sets = [a for s in SMALL for a in ("--set", s)]
    res = runner.invoke(app, ["encode", "--dataset", str(store.root), "--objective", objective, *sets,
                              "--out", str(out), "--json", "--quiet"])  # fmt: skip
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["epochs"] == 2 and report["dim"] == 16 and report["out"] == str(out)
    store = GraphStore(store.root)
    assert report["store_version"] == store.version > v0
    assert f"user/{objective}" in report["tables"] and sorted(report["tables"]) == sorted(store.features())
    cfg, seqs, model = _reload(out, store.root)
    ids, x = store.read_features(f"user/{objective}")
    # every user with a behaviour has a row, by the store's contiguous id; rows are the saved encoder's embeddings
    assert np.array_equal(ids, store.to_internal("user", seqs.user_ids)) and np.array_equal(ids, seqs.user_index)
    assert "cold" in seqs.user_ids and x.shape == (len(seqs), 16)
    np.testing.assert_allclose(x, embed_users(model, seqs), rtol=0, atol=1e-6)
    entry = store.features()[f"user/{objective}"]
    assert entry.encoder["objective"] == objective and entry.data_version == v0 and entry.meta["seed"] == 0
    item_tables = {k for k in report["tables"] if not k.startswith("user/")}
    if objective == "clue":
        assert item_tables == set()  # clue learns no item vectors
    else:
        assert item_tables == {f"item/{objective}", f"ad/{objective}"}
        iv = item_vectors(model)
        for ttype in ("item", "ad"):
            ids, x = store.read_features(f"{ttype}/{objective}")
            tok = np.flatnonzero(seqs.item_type[1:] == seqs.target_types.index(ttype)) + 1
            assert np.array_equal(ids, seqs.item_index[tok])
            np.testing.assert_allclose(x, iv[tok - 1], rtol=0, atol=1e-6)


def test_library_encode_returns_the_tables_rows_and_cold_users_get_an_embedding(store):
    res = encode(store.root, _cfg("sasrec"), seed=2, progress=None)
    assert res.tables == ["user/sasrec", "item/sasrec", "ad/sasrec"] and res.store_version == store.version
    ids, x = store.read_features("user/sasrec")
    assert np.array_equal(ids, res.sequences.user_index)
    assert np.array_equal(x, res.users)  # bit for bit
    cold = res.sequences.user_ids.index("cold")
    assert np.abs(res.users[cold]).sum() > 0  # views only: no click edge, still an embedding
    item_ids, item_x = store.read_features("item/sasrec")
    tok = store.to_internal("item", [f"i{i}" for i in range(ITEMS)])
    assert np.array_equal(item_ids, np.sort(tok)) and np.array_equal(item_x, res.items[: item_ids.size])
    assert "wrote user/sasrec, item/sasrec, ad/sasrec" in repr(res)
    again = encode(store.root, _cfg("sasrec"), seed=2, progress=None, write=False)
    assert np.array_equal(again.users, res.users) and again.tables == []  # seeded: the same run twice


def test_features_attach_to_a_rec_run_and_lightgcn_trains_on_them(store, tmp_path):
    from graphrec.tasks.run import train

    res = encode(store.root, _cfg("sasrec"), progress=None)
    rec = train({"task": "rec", "dataset": str(store.root), "seed": 0,
                 "model": {"name": "lightgcn", "K": 1},
                 "train": {"epochs": 2, "batch_size": 32, "inputs": "both", "embedding_dim": 16, "stop_on": "ndcg@5"},
                 "eval": {"ks": [5]},
                 "data": {"features": ["user/sasrec", "item/sasrec"], "event_types": ["click"]}}, progress=None)  # fmt: skip
    src = rec.data.source
    cold = store.to_internal("user", ["cold"])[0]
    assert cold not in src.user  # no click: the user has no edge in the rec graph
    ux = src.user_features[0].numpy()
    np.testing.assert_array_equal(ux[res.sequences.user_index], res.users)  # the feature rows are the embeddings
    assert np.abs(ux[cold]).sum() > 0
    ix = src.item_features[0].numpy()
    assert ix.shape == (ITEMS, 16) and np.array_equal(ix, res.items[:ITEMS])  # item tokens 1..ITEMS: contiguous ids
    assert rec.fit.epochs == 2 and all(math.isfinite(h["loss"]) for h in rec.fit.history)
    with pytest.raises(ValueError, match="user/nope"):
        train({"task": "rec", "dataset": str(store.root), "model": {"name": "lightgcn"}, "train": {"epochs": 1},
               "data": {"features": ["user/nope"]}}, progress=None)  # fmt: skip


# ---------------------------------------------------------------------------- embeddings and evaluation
def test_embeddings_are_deterministic_in_eval_mode(store):
    cfg = _cfg("clue", "model.dropout=0.5")
    seqs = from_store(store)
    torch.manual_seed(0)
    model = build_encoder_model(cfg, seqs)
    a = embed_users(model, seqs)
    model.train()  # embed_users switches to evaluation mode itself
    b = embed_users(model, seqs)
    assert np.array_equal(a, b) and a.shape == (len(seqs), 16) and a.dtype == np.float32
    assert not model.training
    # a shorter input gives another embedding; an empty input gives zeros
    ends = np.maximum(seqs.lengths - 1, 0)
    ends[0] = 0
    c = embed_users(model, seqs, ends, chunk_size=3)
    assert np.all(c[0] == 0) and not np.array_equal(c[1:], a[1:])


class _Planted(torch.nn.Module):
    """Scores of a planted model: ``input_score`` for the items of the input, ``shared`` for ``shared_item``,
    0 elsewhere; records the inputs it was given."""

    def __init__(self, inner, input_score: float, shared_item: int = 0, shared: float = 0.0):
        super().__init__()
        self.inner, self.input_score, self.shared_item, self.shared = inner, input_score, shared_item, shared
        self.seen: list[dict] = []

    def user_batches(self, seqs, rows, ends, max_len):
        return self.inner.user_batches(seqs, rows, ends, max_len)

    def scores(self, batch):
        self.seen.append(batch)
        out = torch.zeros(batch["item"].shape[0], self.inner.num_items + 1)
        if self.shared_item:
            out[:, self.shared_item] = self.shared
        out.scatter_(1, batch["item"] * batch["mask"], self.input_score)
        out[:, 0] = -math.inf
        return out


def _no_repeat_sequences(users: int = 6, length: int = 6, items: int = 30, shared_last: bool = False):
    """Sequences without repeats; with ``shared_last``, every user's last behaviour is token ``items``."""
    from graphrec.encoders import BehaviourSequences

    rng = np.random.default_rng(0)
    rows = [rng.permutation(items - 1)[:length] + 1 for _ in range(users)]
    if shared_last:
        rows = [np.r_[r[:-1], items] for r in rows]
    item = np.concatenate(rows).astype(np.int64)
    return BehaviourSequences(name="planted", user_ids=list(range(users)), user_index=np.arange(users),
                              indptr=np.arange(users + 1) * length, item=item, event=np.ones_like(item),
                              time=np.zeros_like(item), num_items=items, item_ids=list(range(1, items + 1)),
                              item_type=np.zeros(items + 1, np.int64), item_index=np.arange(-1, items),
                              target_types=["item"], event_types=["click"])  # fmt: skip


def test_rank_next_never_shows_the_target_and_masks_the_input():
    seqs = _no_repeat_sequences()
    split = seqs.leave_one_out()
    cfg = _cfg("sasrec")
    rows, ends, targets = split.held_out("test")
    # A model that copies its input scores the held-out behaviour like every other unseen item: ties count against
    # the target, so it hits nothing. Were the target in its input, it would rank first.
    copy = _Planted(build_encoder_model(cfg, seqs), input_score=10.0)
    out = rank_next(copy, seqs, rows, ends, cfg.model.max_len, [1, 10, 20], chunk_size=4)
    assert out["hit@1"] == out["hit@10"] == out["hit@20"] == 0.0 and out["ndcg@10"] == 0.0
    seen = {int(r): b["item"][j][b["mask"][j]].numpy() for b in copy.seen for j, r in enumerate(b["row"])}
    for k, end, target in zip(rows, ends, targets, strict=True):
        assert np.array_equal(seen[int(k)], seqs[int(k)][max(0, end - cfg.model.max_len) : end])
        assert target not in seen[int(k)]
    # A constant model ties every item: no hit either (it would have HR 1 if ties counted for the target).
    flat = _Planted(build_encoder_model(cfg, seqs), input_score=0.0)
    assert rank_next(flat, seqs, rows, ends, cfg.model.max_len, [10])["hit@10"] == 0.0
    # The input's items are masked: a model that scores them above the (shared) target still ranks it first.
    seqs = _no_repeat_sequences(shared_last=True)
    rows, ends, targets = seqs.leave_one_out().held_out("test")
    assert set(targets.tolist()) == {30}
    masked = _Planted(build_encoder_model(cfg, seqs), input_score=10.0, shared_item=30, shared=5.0)
    out = rank_next(masked, seqs, rows, ends, cfg.model.max_len, [1, 5])
    assert out["hit@1"] == 1.0 and out["ndcg@5"] == pytest.approx(1.0)


def test_sasrec_evaluation_in_the_trainer_reports_ranking_and_loss(store):
    res = encode(store.root, _cfg("sasrec", "train.epochs=1", "eval.ks=[5,10]"), write=False, progress=None)
    v = res.fit.valid
    assert {"hit@5", "hit@10", "ndcg@5", "ndcg@10", "loss", "neg_loss", "users"} <= set(v)
    assert v["users"] == float((res.split.valid_pos >= 0).sum()) > 0
    assert 0 <= v["ndcg@10"] <= v["hit@10"] <= 1 and v["neg_loss"] == -v["loss"] > -math.log(res.sequences.num_items) * 3
    assert res.fit.metric == "ndcg@10"


def test_training_steps_report_a_running_loss_and_the_token_throughput(store):
    from graphrec.tasks.encode import EncoderTask
    from graphrec.tasks.trainer import _Progress, train_epoch

    cfg = _cfg("sasrec", "train.batch_size=3")
    seqs = from_store(store)
    split = seqs.leave_one_out()
    torch.manual_seed(0)
    model = build_encoder_model(cfg, seqs)
    task = EncoderTask(seqs, split, cfg)
    task.fit_model(model)
    assert task.progress_text() == ""  # nothing trained yet
    steps: list[tuple[int, float]] = []
    loss = train_epoch(model, task, torch.optim.Adam(model.parameters()), 1, on_step=lambda s, v: steps.append((s, v)))
    rows = np.flatnonzero(split.train_end >= 2)
    assert [s for s, _ in steps] == list(range(1, math.ceil(rows.size / 3) + 1))
    assert steps[-1][1] == pytest.approx(loss)
    # sasrec reads seq[:t] to predict seq[1:t + 1]: t - 1 input positions per row, at most max_len
    assert task.tokens_last_epoch == int(np.minimum(split.train_end[rows] - 1, cfg.model.max_len).sum())
    assert len(task.tokens_per_s) == 1 and task.progress_text().endswith("k tokens/s")
    bar = _Progress(None, 3, "ndcg@10", task.progress_text)
    assert not bar.live and bar._text({"loss": 1.5, "valid": 0.25}).startswith("loss 1.5000  valid ndcg@10 0.2500  ")
    assert bar._text({"loss": 1.5}).endswith("k tokens/s")
    bar.step(1, 0.5)  # without a bar: nothing to refresh, no error


# ---------------------------------------------------------------------------- warm starts
def test_warm_start_copies_weights_and_remaps_items_by_type_and_id(store, tmp_path):
    cfg = _cfg("shopperbert")  # [MASK] is used in training, so its row must carry over too
    first = encode(store.root, cfg, seed=0, write=False, out=tmp_path / "enc", progress=None)
    old_seqs, old = first.sequences, first.model
    # a new item "i0b" sorts after the items, so every ad token moves by one
    later = [(BASE + dt.timedelta(days=30), "u0", "item", "i0b", "click"), (BASE + dt.timedelta(days=30), "u99", "item",
                                                                            "i3", "click")]  # fmt: skip
    ingest(store.root, [("day2", _frame(later))], echo=False)
    seqs = from_store(GraphStore(store.root))
    assert seqs.num_items == old_seqs.num_items + 1
    torch.manual_seed(5)
    model = build_encoder_model(cfg, seqs)
    fresh = model.model.item_embedding.weight.detach().clone()
    counts = warm_start(model, seqs, tmp_path / "enc")
    assert counts["items"] == old_seqs.num_items
    old_tok = {(old_seqs.target_types[old_seqs.item_type[t]], str(old_seqs.item_ids[t - 1])): t
               for t in range(1, old_seqs.num_items + 1)}  # fmt: skip
    new_emb, old_emb = model.model.item_embedding.weight.detach(), old.model.item_embedding.weight.detach()
    for t in range(1, seqs.num_items + 1):
        key = (seqs.target_types[seqs.item_type[t]], str(seqs.item_ids[t - 1]))
        if key in old_tok:
            assert torch.equal(new_emb[t], old_emb[old_tok[key]]), key
        else:
            assert key == ("item", "i0b") and torch.equal(new_emb[t], fresh[t])
    assert torch.equal(new_emb[seqs.num_items + 1], old_emb[old_seqs.num_items + 1])  # [MASK]
    assert torch.equal(new_emb[0], old_emb[0])
    new_state, old_state = model.state_dict(), old.state_dict()
    same = [k for k, v in old_state.items() if k in new_state and new_state[k].shape == v.shape]
    assert len(same) > 5 and all(torch.equal(new_state[k], old_state[k]) for k in same)
    assert counts["tensors"] == len(same) + 1  # + the remapped item table
    with pytest.raises(ValueError, match="no encoder to warm-start from"):
        warm_start(model, seqs, tmp_path / "nothing")
    with pytest.raises(ValueError, match="holds a shopperbert encoder; this one is sasrec"):
        warm_start(build_encoder_model(_cfg("sasrec"), seqs), seqs, tmp_path / "enc")


def test_lmrec_warm_start_keeps_its_tokenizer(store, tmp_path):
    cfg = _cfg("lmrec", "train.epochs=1")
    first = encode(store.root, cfg, write=False, out=tmp_path / "lm", progress=None)
    tok = encoder_tokenizer(tmp_path / "lm")
    assert tok == first.model.tokenizer_json and encoder_tokenizer(tmp_path / "none") is None
    seqs = from_store(store)
    model = build_encoder_model(cfg, seqs, tok)
    counts = warm_start(model, seqs, tmp_path / "lm")
    assert counts["tensors"] == len(first.model.state_dict())
    assert all(torch.equal(v, first.model.state_dict()[k]) for k, v in model.state_dict().items())
    np.testing.assert_array_equal(embed_users(model, seqs), first.users)


def test_save_encoder_writes_a_folder_that_warm_start_reads(store, tmp_path):
    cfg = _cfg("sasrec")
    seqs = from_store(store)
    model = build_encoder_model(cfg, seqs)
    dest = save_encoder(model, seqs, cfg, tmp_path / "f", {"valid": {"ndcg@10": 0.5}})
    assert {p.name for p in dest.iterdir()} == {ENCODER_FILE, "config.yaml", "metrics.json"}
    assert json.loads((dest / "metrics.json").read_text())["valid"]["ndcg@10"] == 0.5
    assert EncoderConfig.model_validate(yaml.safe_load((dest / "config.yaml").read_text())) == cfg


# ---------------------------------------------------------------------------- checkpoints through graphrec.train
def test_an_interrupted_encode_run_resumes_to_the_same_result(store, tmp_path):
    from graphrec.tasks.run import train

    def config(name: str) -> dict:
        return {"task": "encode", "dataset": str(store.root), "seed": 1, "out": str(tmp_path / name),
                "model": {"name": "sasrec", "dim": 16, "layers": 1, "max_len": 8, "dropout": 0.3},
                "train": {"epochs": 4, "batch_size": 4, "select": "best"}, "features": {"write": False}}  # fmt: skip

    full = train(config("full"), progress=None)

    def crash(epoch, total, info):
        if epoch == 2:
            raise KeyboardInterrupt  # killed after the checkpoint of epoch 2

    with pytest.raises(KeyboardInterrupt):
        train(config("enc"), progress=crash)
    ckpt = tmp_path / ".enc.ckpt.pt"
    assert ckpt.is_file() and not (tmp_path / "enc").exists()
    resumed = train(config("enc"), progress=None)
    assert not ckpt.exists() and (tmp_path / "enc" / ENCODER_FILE).is_file()
    assert resumed.spec.task == "encode" and resumed.fit.epochs == full.fit.epochs == 4
    assert resumed.fit.valid == full.fit.valid and resumed.fit.test == full.fit.test
    drop = lambda f: [{k: v for k, v in h.items() if k != "seconds"} for h in f.history]  # noqa: E731
    assert drop(resumed.fit) == drop(full.fit)
    assert np.array_equal(resumed.data.users, full.data.users)
    assert all(torch.equal(v, full.model.state_dict()[k]) for k, v in resumed.model.state_dict().items())


# ---------------------------------------------------------------------------- the command line
def test_encode_help_and_usage_errors(store, tmp_path):
    res = runner.invoke(app, ["encode", "--help"])
    assert res.exit_code == 0 and "--objective" in res.output and "--init-from" in res.output
    res = runner.invoke(app, ["encode", "--dataset", str(tmp_path / "nope"), "--objective", "sasrec", "--quiet"])
    assert res.exit_code == 2 and "neither a known dataset" in res.output and "nope" in res.output
    res = runner.invoke(app, ["encode", "--dataset", str(store.root)])
    assert res.exit_code == 2 and "--objective" in res.output
    res = runner.invoke(app, ["encode", "--dataset", str(store.root), "--objective", "bert4rec"])
    assert res.exit_code == 2 and "unknown encoder objective 'bert4rec'" in res.output
    path = tmp_path / "rec.yaml"
    path.write_text(f"task: rec\ndataset: {store.root}\nmodel: {{name: lightgcn}}\n")
    res = runner.invoke(app, ["encode", str(path)])
    assert res.exit_code == 2 and "graphrec encode takes task: encode" in res.output


def test_encode_command_follows_the_config_and_refuses_bad_outputs_before_training(store, tmp_path):
    sets = [a for s in SMALL for a in ("--set", s)]
    v0 = store.version
    # features.write: false in the config is not overridden by the command's default
    res = runner.invoke(app, ["encode", "--dataset", str(store.root), "--objective", "clue", *sets,
                              "--set", "features.write=false", "--json", "--quiet"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["tables"] == [] and GraphStore(store.root).version == v0
    # an --out that is a file fails before anything is trained or written
    afile = tmp_path / "taken.yaml"
    afile.write_text("x: 1\n")
    res = runner.invoke(app, ["encode", "--dataset", str(store.root), "--objective", "clue", *sets, "--out", str(afile)])
    assert res.exit_code == 2 and "is a file" in res.output and GraphStore(store.root).version == v0
    # a config error names the file it comes from
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"task: encode\ndataset: {store.root}\nmodel: {{name: clue, dimm: 16}}\n")
    res = runner.invoke(app, ["encode", str(cfg)])
    assert res.exit_code == 2 and "dimm" in res.output and "bad.yaml" in res.output
    # a warm start from an encoder of another size copies nothing: an error, not a silent cold start
    out = tmp_path / "enc16"
    assert runner.invoke(app, ["encode", "--dataset", str(store.root), "--objective", "clue", *sets, "--no-write",
                               "--out", str(out), "--quiet"]).exit_code == 0  # fmt: skip
    res = runner.invoke(app, ["encode", "--dataset", str(store.root), "--objective", "clue", *sets, "--no-write",
                              "--set", "model.dim=32", "--init-from", str(out), "--quiet"])  # fmt: skip
    assert res.exit_code == 2 and "do not fit" in res.output and "model.dim" in res.output
    # the hint after writing names every table (rich markup must not eat the brackets)
    res = runner.invoke(app, ["encode", "--dataset", str(store.root), "--objective", "sasrec", *sets, "--quiet"])
    assert res.exit_code == 0 and "data.features=[user/sasrec," in res.output


def test_encode_from_a_run_config_with_graphrec_train(store, tmp_path):
    path = tmp_path / "enc.yaml"
    path.write_text(yaml.safe_dump({"task": "encode", "dataset": str(store.root), "out": str(tmp_path / "e"),
                                    "model": {"name": "clue", "dim": 16, "layers": 1, "max_len": 8},
                                    "train": {"epochs": 1, "batch_size": 4}, "features": {"name": "myclue"}}))  # fmt: skip
    res = runner.invoke(app, ["train", str(path), "--json", "--quiet"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["out"] == str(tmp_path / "e") and (tmp_path / "e" / ENCODER_FILE).is_file()
    assert list(GraphStore(store.root).features()) == ["user/myclue"]
    res = runner.invoke(app, ["encode", str(path), "--set", "train.epochs=1", "--no-write", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "clue encoder on" in res.output and "valid" in res.output
    res = runner.invoke(app, ["encode", str(path), "--no-write"])  # progress lines (stderr is no terminal here)
    assert res.exit_code == 0, res.output
    assert "epoch 1/1" in res.output and "tokens/s" in res.output


def test_a_time_split_takes_the_dates_yaml_reads(store, tmp_path):
    path = tmp_path / "enc.yaml"
    path.write_text("data: {split: time, valid_start: 2024-03-04, test_start: 2024-03-07T12:00:00}\n")
    cfg = resolve_encoder_config("sasrec", config_file=path, overrides=SMALL)
    res = encode(store.root, cfg, write=False, progress=None)
    s = res.split
    assert s.method == "time" and s.info == {"valid_start": int(dt.datetime(2024, 3, 4, tzinfo=dt.UTC).timestamp()),
                                             "test_start": int(dt.datetime(2024, 3, 7, 12, tzinfo=dt.UTC).timestamp())}
    assert res.fit.valid["users"] == float((s.valid_pos >= 0).sum()) > 0 and (s.test_pos >= 0).sum() > 0
    assert EncoderConfig.model_validate(cfg.model_dump(mode="json")).data.valid_start == "2024-03-04"


# ---------------------------------------------------------------------------- benchmark helpers
def _rec_data(n_users: int = 12, n_items: int = 15, per: int = 8, seed: int = 0):
    from graphrec.data.interactions import Interactions

    rng = np.random.default_rng(seed)
    u = np.repeat(np.arange(n_users), per)
    i = np.concatenate([rng.permutation(n_items)[:per] for _ in range(n_users)])
    inter = Interactions(u.astype(np.int64), i.astype(np.int64), np.arange(u.size, dtype=np.int64), n_users, n_items)
    return inter, inter.split(None, seed)


def test_cold_start_split_keeps_at_most_keep_pairs_of_cold_users_and_leaves_the_rest():
    from graphrec.bench.encoders import cold_start_split, slice_users

    _, data = _rec_data()
    cold_data, cold = cold_start_split(data, seed=3, share=0.25, keep=2)
    assert cold.size == 3 and np.all(np.diff(cold) > 0)
    before, after = data.split.train.numpy(), cold_data.split.train.numpy()
    for user in range(data.num_users):
        b = set(before[1][before[0] == user].tolist())
        a = set(after[1][after[0] == user].tolist())
        if user in cold:
            assert a <= b and len(a) == min(2, len(b))
        else:
            assert a == b
    assert torch.equal(cold_data.split.valid, data.split.valid) and torch.equal(cold_data.split.test, data.split.test)
    assert cold_data.split.info["cold_users"] == 3 and cold_data.split.info["cold_keep"] == 2
    again, cold2 = cold_start_split(data, seed=3, share=0.25, keep=2)
    assert np.array_equal(cold, cold2) and torch.equal(again.split.train, cold_data.split.train)
    sliced = slice_users(cold_data, cold)
    assert set(sliced.split.test[0].tolist()) <= set(cold.tolist()) and torch.equal(sliced.split.train, cold_data.split.train)


def test_train_pair_sequences_drops_exactly_the_held_out_pairs():
    from graphrec.bench.encoders import train_pair_sequences
    from graphrec.encoders import BehaviourSequences

    inter, data = _rec_data()
    order = np.lexsort((inter.time, inter.user))
    u, i = inter.user[order], inter.item[order]
    indptr = np.r_[0, np.cumsum(np.bincount(u, minlength=inter.num_users))]
    m = inter.num_items
    seqs = BehaviourSequences(name="t", user_ids=list(range(inter.num_users)), user_index=np.arange(inter.num_users),
                              indptr=indptr, item=i + 1, event=np.ones_like(i), time=np.zeros_like(i), num_items=m,
                              item_ids=list(range(m)), item_type=np.zeros(m + 1, np.int64), item_index=np.arange(-1, m),
                              target_types=["item"], event_types=["click"])  # fmt: skip
    out = train_pair_sequences(seqs, data, inter)
    kept = {(int(k), int(t) - 1) for r, k in enumerate(out.user_index) for t in out[r]}
    s = data.split
    held = {(int(a), int(b)) for e in (s.valid, s.test) for a, b in e.T.tolist()}
    train = {(int(a), int(b)) for a, b in s.train.T.tolist()}
    assert held and kept == train and not kept & held
    assert out.num_events == seqs.num_events - len(held)


def test_power_law_fit_recovers_a_planted_exponent():
    from graphrec.bench.encoders import power_law_fit

    rows = []
    for size, flops in enumerate(np.geomspace(1e9, 1e13, 5)):
        best = 3.0 * flops**-0.07  # reached at the third epoch, at compute `flops`
        for epoch, extra in enumerate((0.5, 0.1, 0.0, 0.2)):
            rows.append({"layers": 1, "dim": 16 * (size + 1), "flops": flops * (epoch + 1) / 3, "valid_loss": best + extra})
    fit = power_law_fit(rows)
    assert fit["b"] == pytest.approx(0.07, abs=1e-9) and fit["a"] == pytest.approx(3.0, rel=1e-6)
    assert fit["r2"] == pytest.approx(1.0) and fit["points"] == 5
    assert math.isnan(power_law_fit(rows[:4])["b"])  # one size: no fit
