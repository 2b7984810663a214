"""Ad targeting (graphrec.tasks.ads): labels, split without leakage, training, metrics, queries, CLI, config."""

from __future__ import annotations

import inspect
import json
import math
import typing

import numpy as np
import pytest
import torch
from ads_helpers import planted_ad_frame, planted_ad_store
from pydantic import BaseModel
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from graphrec.config import AdsConfig, ConfigError, resolve_ads_config
from graphrec.metrics.binary import binary_metrics, expected_calibration_error, log_loss, roc_auc
from graphrec.tasks.ads import (
    AdLog,
    AdsTask,
    AdTargeting,
    UnknownIdError,
    build_ads_model,
    evaluate_ads,
    export_ads_model,
    fit_ads,
    load_ad_log,
)
from graphrec.utils.seed import seed_everything

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = ["train.epochs=2", "train.batch_size=128", "eval.ks=[1,3]"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return planted_ad_store(tmp_path_factory.mktemp("ads") / "st")


@pytest.fixture(scope="module")
def clicks_only(tmp_path_factory):
    return planted_ad_store(tmp_path_factory.mktemp("ads") / "clicks", impressions=False)


def _fit(store, model="mf", *overrides, seed=0):
    cfg = resolve_ads_config(model, None, [*FAST, *overrides])
    data = load_ad_log(str(store), cfg.data).split(cfg.data, seed)
    seed_everything(seed)
    m = build_ads_model(cfg, data)
    return cfg, data, m, fit_ads(data, m, cfg)


# ------------------------------------------------------------------------------------------------ metrics
def test_auc_and_log_loss_equal_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.clip(0.3 * y + rng.random(500) * 0.7, 0, 1)
    p[:5] = [0.0, 1.0, 0.5, 0.5, 0.5]  # saturated and tied predictions
    assert roc_auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert log_loss(y, p) == pytest.approx(sk_log_loss(y, p), rel=1e-12)
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))  # one class: no pair to rank


def test_the_tasks_metrics_equal_sklearn_on_the_models_predictions(store):
    """The task's AUC and log loss against scikit-learn's, on the trained model's click probabilities of the test
    pairs computed here through the model's own logits (not the evaluation's code path)."""
    _, data, model, fit = _fit(store, "lightgcn", "train.score=hyperbolic")
    users, ads = model.user_ad_embeddings(data.graph, data.edge_weight)
    u, a, y = data.parts["test"]
    with torch.no_grad():
        p = torch.sigmoid(model.logits(users[u], ads[a])).double().numpy()
    assert len(set(y.tolist())) == 2
    assert fit.test["auc"] == pytest.approx(roc_auc_score(y.numpy(), p), abs=1e-6)
    assert fit.test["log_loss"] == pytest.approx(sk_log_loss(y.numpy(), p), rel=1e-5)


def test_ece_by_hand():
    p = np.array([0.05, 0.15, 0.95, 0.96, 0.10, 1.0])
    y = np.array([0, 1, 1, 1, 0, 1])
    # bins of width 0.1: {0.05 | y 0}, {0.15, 0.10 | y 1, 0}, {0.95, 0.96, 1.0 | y 1, 1, 1}
    by_hand = (1 * abs(0 - 0.05) + 2 * abs(0.5 - 0.125) + 3 * abs(1 - (0.95 + 0.96 + 1.0) / 3)) / 6
    assert expected_calibration_error(y, p, bins=10) == pytest.approx(by_hand, abs=1e-12)
    assert expected_calibration_error(y, p, bins=1) == pytest.approx(abs(y.mean() - p.mean()), abs=1e-12)
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        expected_calibration_error([0], [1.5])
    with pytest.raises(ValueError, match="differ in length"):
        binary_metrics([0, 1], [0.5])


# ------------------------------------------------------------------------------------------------ labels and split
def test_labels_are_clicks_and_unclicked_impressions(store):
    frame = planted_ad_frame()
    ads = frame.filter(frame["target_type"] == "ad")
    clicked = set(ads.filter(ads["event_type"].is_in(["click", "conversion"])).select("user_id", "target_id").iter_rows())
    shown = set(ads.select("user_id", "target_id").iter_rows())
    log = load_ad_log(str(store))
    assert log.has_impressions
    uid, aid = log.user_ids, log.ad_ids
    got = {(uid[u], aid[a]): int(y) for u, a, y in zip(log.pairs["user"], log.pairs["ad"], log.pairs["label"], strict=True)}
    assert set(got) == shown
    assert {k for k, y in got.items() if y == 1} == clicked
    assert sum(1 for y in got.values() if y == 0) == len(shown - clicked) > 0  # the explicit negatives
    assert (log.pairs["impressions"] == 1).all()  # every ad is shown to every user once


def test_held_out_labels_never_reach_the_graph(store):
    log = load_ad_log(str(store))
    data = log.split(seed=0)
    g = data.graph
    edges = set(zip(g[0].tolist(), g[1].tolist(), strict=True))
    for part in ("valid", "test"):
        u, a, y = data.parts[part]
        assert u.numel() > 0 and int(y.sum()) > 0
        for uu, aa in zip(u.tolist(), a.tolist(), strict=True):
            assert (uu, data.ad_offset + aa) not in edges and (data.ad_offset + aa, uu) not in edges
    u, a, y = data.parts["train"]
    pos = [(x, data.ad_offset + z) for x, z, w in zip(u.tolist(), a.tolist(), y.tolist(), strict=True) if w > 0]
    neg = [(x, data.ad_offset + z) for x, z, w in zip(u.tolist(), a.tolist(), y.tolist(), strict=True) if w == 0]
    assert all(e in edges for e in pos)  # training clicks are edges (both directions)
    assert not any(e in edges for e in neg)  # impressions are not, by default
    assert any(data.num_users <= d < data.ad_offset for d in g[1].tolist())  # item events are
    weighted = AdLog.from_store(store, resolve_ads_config("mf", None, ["data.event_weights={impression: 0.5}"]).data)
    wdata = weighted.split(seed=0)
    wedges = set(zip(wdata.graph[0].tolist(), wdata.graph[1].tolist(), strict=True))
    assert all(e in wedges for e in neg)  # a weight puts training impressions into the graph ...
    for uu, aa in zip(*wdata.parts["test"][:2], strict=True):  # ... never held-out ones
        assert (int(uu), wdata.ad_offset + int(aa)) not in wedges


def test_time_split_keeps_later_events_out_of_the_graph(store):
    cfg = resolve_ads_config("mf", None, ["data.split=time"]).data
    data = load_ad_log(str(store), cfg).split(cfg, 0)
    assert data.method == "time" and data.cut is not None
    it = data.log.item_events
    assert (it["time"] >= data.cut).any()
    n_items_edges = int(((data.graph[1] >= data.num_users) & (data.graph[1] < data.ad_offset)).sum())
    expected = len({(u, t) for u, t, s in zip(it["user"], it["target"], it["time"], strict=True) if s < data.cut})
    assert n_items_edges == expected


def test_a_log_without_impressions_samples_its_negatives(clicks_only):
    cfg = resolve_ads_config("mf", None, FAST)
    log = load_ad_log(str(clicks_only), cfg.data)
    assert not log.has_impressions and int(log.pairs["label"].min()) == 1
    data = log.split(cfg.data, 0)
    positives = set(zip(log.pairs["user"].tolist(), log.pairs["ad"].tolist(), strict=True))
    for part in ("valid", "test"):
        u, a, y = data.parts[part]
        neg = [(x, z) for x, z, w in zip(u.tolist(), a.tolist(), y.tolist(), strict=True) if w == 0]
        assert len(neg) == int(y.sum())  # one sampled negative per held-out positive
        assert not set(neg) & positives
    task = AdsTask(data, cfg)
    bu, ba, by = next(iter(task.batches(1)))
    train_pos = set(zip(data.parts["train"][0].tolist(), data.parts["train"][1].tolist(), strict=True))
    sampled = [(x, z) for x, z, w in zip(bu.tolist(), ba.tolist(), by.tolist(), strict=True) if w == 0]
    assert sampled and not set(sampled) & train_pos
    with pytest.raises(ValueError, match="num_negatives is 0 but the log has no impressions"):
        AdsTask(data, resolve_ads_config("mf", None, [*FAST, "train.num_negatives=0"]))


# ------------------------------------------------------------------------------------------------ training
@pytest.mark.parametrize("model", ["mf", "lightgcn"])
def test_learns_the_planted_rule(store, model):
    cfg, data, m, res = _fit(store, model, "train.epochs=25", "train.lr=0.05", "train.batch_size=64")
    assert res.test["auc"] > 0.8, res.test
    assert res.test["log_loss"] < 0.5 and res.test["ece"] < 0.2
    assert set(res.test) >= {"auc", "log_loss", "ece", "hit@1", "ndcg@3", "recall@3", "users"}
    again = evaluate_ads(m, data, "test", cfg.eval.ks, cfg.eval.ece_bins)
    assert again["auc"] == pytest.approx(res.test["auc"])
    # the probabilities behind the pair metrics: sigmoid(alpha * score + beta) of the output embeddings
    users, ads = m.user_ad_embeddings(data.graph, data.edge_weight)
    u, a, y = data.parts["test"]
    p = torch.sigmoid(m.logits(users[u], ads[a])).detach().numpy()
    assert again["auc"] == pytest.approx(roc_auc_score(y.numpy(), p))
    assert again["log_loss"] == pytest.approx(sk_log_loss(y.numpy(), p), rel=1e-5)


def test_item_history_reaches_users_without_ad_labels(store):
    """Through the graph, LightGCN places a user with no training ad pair by its item views; MF cannot."""
    cfg = resolve_ads_config("lightgcn", None, [*FAST, "train.epochs=30", "train.lr=0.05", "train.batch_size=64"])
    log = load_ad_log(str(store), cfg.data)
    cold = np.isin(log.pairs["user"], np.arange(0, 60, 6))  # every sixth user: all its ad pairs held out
    from graphrec.data.splits import EdgeSplit

    p = log.pairs
    e = lambda m: torch.from_numpy(np.stack([p["user"][m], p["ad"][m]]))  # noqa: E731
    rng = np.random.default_rng(0).random(p["user"].size) < 0.85
    data = log._assemble(EdgeSplit(e(~cold & rng), e(~cold & ~rng), e(cold), "cold users"), None, 0, 1)
    scores = {}
    for name in ("lightgcn", "mf"):
        c = resolve_ads_config(name, None, [*FAST, "train.epochs=30", "train.lr=0.05", "train.batch_size=64",
                                            "train.select=last"])  # fmt: skip
        seed_everything(0)
        model = build_ads_model(c, data)
        scores[name] = fit_ads(data, model, c).test["auc"]
    assert scores["lightgcn"] > 0.75 and scores["mf"] < 0.65, scores  # MF's cold users keep random embeddings


def test_start_epoch_refits_a_multi_manifold_scorer(store):
    _, data, m, res = _fit(store, "mf", "train.score=multi_manifold", "train.score_params={num_manifolds: 2}")
    assert m.scorer.fitted and int(m.scorer.last_fit_epoch) == 1
    assert m.scorer.origins.shape == (2, m.dim)
    assert 0 <= res.test["auc"] <= 1


def test_stop_on_log_loss_selects_by_the_validation_loss(store):
    cfg, data, m, res = _fit(store, "mf", "train.stop_on=log_loss", "train.epochs=4")
    task = AdsTask(data, cfg)
    assert task.stop_rule == "loss" and task.metric == "log_loss"
    losses = [h["valid_loss"] for h in res.history]
    assert res.valid["log_loss"] == pytest.approx(min(losses))


# ------------------------------------------------------------------------------------------------ queries and CLI
@pytest.fixture(scope="module")
def exported(store, tmp_path_factory):
    out = {}
    for score in ("dot", "multi_manifold"):
        params = ["train.score_params={num_manifolds: 2, aggregation: membership}"] if score != "dot" else []
        cfg = resolve_ads_config("lightgcn", None, [*FAST, "train.epochs=3", f"train.score={score}", *params])
        data = load_ad_log(str(store), cfg.data).split(cfg.data, 0)
        seed_everything(0)
        m = build_ads_model(cfg, data)
        fit_ads(data, m, cfg)
        path = export_ads_model(m, data, tmp_path_factory.mktemp("models") / score, config=cfg.model_dump(mode="json"))
        out[score] = (path, m, data)
    return out


@pytest.mark.parametrize("score", ["dot", "multi_manifold"])
def test_queries_equal_brute_force(exported, score):
    path, m, data = exported[score]
    t = AdTargeting(path)
    users, ads = m.user_ad_embeddings(data.graph, data.edge_weight)
    with torch.no_grad():
        full = m.logits(users.unsqueeze(1), ads.unsqueeze(0))  # [U, A] click logits, user side first
    train_pos = data.positives("train")
    u = 7
    row = full[u].clone()
    row[train_pos.row(u)] = -torch.inf
    got = t.ads_for_user(data.log.user_ids[u], k=3)
    assert [r.id for r in got] == [data.log.ad_ids[i] for i in torch.argsort(row, descending=True, stable=True)[:3]]
    assert [r.probability for r in got] == pytest.approx(torch.sigmoid(row.sort(descending=True).values[:3]).tolist(),
                                                         rel=1e-4)  # fmt: skip
    a = 2
    col = full[:, a].clone()
    clicked = (data.parts["train"][1] == a) & (data.parts["train"][2] > 0)
    col[data.parts["train"][0][clicked]] = -torch.inf
    aud = t.audience(data.log.ad_ids[a], k=5)
    assert [r.id for r in aud] == [data.log.user_ids[i] for i in torch.argsort(col, descending=True, stable=True)[:5]]
    assert [r.rank for r in aud] == [1, 2, 3, 4, 5]
    every = t.audience(data.log.ad_ids[a], k=1000, exclude_seen=False)
    assert len(every) == data.num_users


def test_cli_ads_and_audience(exported):
    from graphrec.cli import app

    path = str(exported["dot"][0])
    t = AdTargeting(path)
    runner = CliRunner()
    res = runner.invoke(app, ["ads", "--model", path, "--user", "u3", "-k", "2", "--json"])
    assert res.exit_code == 0, res.output
    assert [r["ad"] for r in json.loads(res.output)] == [r.id for r in t.ads_for_user("u3", 2)]
    res = runner.invoke(app, ["audience", "--model", path, "--ad", "a1", "-k", "3", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert [r["user"] for r in rows] == [r.id for r in t.audience("a1", 3)] and all(0 < r["probability"] < 1 for r in rows)
    res = runner.invoke(app, ["audience", "--model", path, "--ad", "a1", "-k", "3"])
    assert res.exit_code == 0 and "p(click)" in res.output
    res = runner.invoke(app, ["ads", "--model", path, "--user", "nobody"])
    assert res.exit_code == 1
    assert "unknown user 'nobody'" in res.output and "external_id" in res.output
    res = runner.invoke(app, ["audience", "--model", path, "--ad", "zz"])
    assert res.exit_code == 1 and "unknown ad 'zz'" in res.output
    with pytest.raises(UnknownIdError, match="e.g. u"):
        t.ads_for_user("nobody")


def test_a_recommendation_folder_is_refused(tmp_path):
    from graphrec.serving import export_embeddings

    export_embeddings(tmp_path / "rec", np.ones((2, 3)), np.ones((4, 3)))
    with pytest.raises(ValueError, match="holds a 'rec' model, not an ad-targeting one"):
        AdTargeting(tmp_path / "rec")


def test_graphrec_train_with_task_ads(store, tmp_path):
    from graphrec.tasks.run import train

    res = train({"task": "ads", "dataset": str(store), "seed": 1, "model": {"name": "mf"},
                 "train": {"epochs": 2}, "eval": {"ks": [1, 3]}}, out=tmp_path / "m", progress=None)  # fmt: skip
    assert res.fit.epochs == 2 and isinstance(res.config, AdsConfig)
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    assert card["task"] == "ads" and card["target"] == "ad" and card["metrics"]["test"]["auc"] == res.fit.test["auc"]
    assert set(card["calibration"]) == {"scale", "bias"} and card["graph"]["num_items"] == 12
    assert len(AdTargeting(tmp_path / "m").audience("a0", 4)) == 4


# ------------------------------------------------------------------------------------------------ config
def test_config_errors_name_the_key(store):
    with pytest.raises(ConfigError, match="unknown config key 'train.lrr'.*did you mean 'train.lr'"):
        resolve_ads_config("mf", None, ["train.lrr=0.1"])
    with pytest.raises(ConfigError, match="unknown config key 'data.positive'"):
        resolve_ads_config("mf", None, ["data.positive=[click]"])
    with pytest.raises(ConfigError, match="stop_on must be auc, log_loss"):
        resolve_ads_config("mf", None, ["train.stop_on=mrr@10"])
    with pytest.raises(ConfigError, match="not among the computed metrics"):
        resolve_ads_config("mf", None, ["train.stop_on=ndcg@5"])
    with pytest.raises(ConfigError, match="positive_events must name at least one"):
        resolve_ads_config("mf", None, ["data.positive_events=[]"])
    with pytest.raises(ValueError, match=r"event_weights names event types .*\['purchase'\]"):
        AdLog.from_store(store, resolve_ads_config("mf", None, ["data.event_weights={purchase: 2}"]).data)
    with pytest.raises(ValueError, match="data.target 'banner' is not a target type"):
        AdLog.from_store(store, resolve_ads_config("mf", None, ["data.target=banner"]).data)
    with pytest.raises(ValueError, match="none of data.positive_events"):
        AdLog.from_store(store, resolve_ads_config("mf", None, ["data.positive_events=[like]"]).data)
    cfg, data, *_ = _fit(store, "mf")
    with pytest.raises(ValueError, match="exceeds the number of ads"):
        AdsTask(data, resolve_ads_config("mf", None, ["eval.ks=[10]"]))


def _literals() -> dict[str, tuple]:
    """``{"Class.field": choices}`` of every Literal in :class:`AdsConfig` (nested sections included)."""
    out: dict[str, tuple] = {}

    def literals(ann) -> list[tuple]:
        if typing.get_origin(ann) is typing.Literal:
            return [typing.get_args(ann)]
        return [lit for a in typing.get_args(ann) for lit in literals(a)]

    def walk(model: type[BaseModel]) -> None:
        for name, f in model.model_fields.items():
            for lit in literals(f.annotation):
                out[f"{model.__name__}.{name}"] = lit
            for a in (f.annotation, *typing.get_args(f.annotation)):
                if inspect.isclass(a) and issubclass(a, BaseModel):
                    walk(a)

    walk(AdsConfig)
    return out


RUNNERS = {
    "AdsTrainConfig.select": "train.select={}",
    "AdsTrainConfig.optimizer": "train.optimizer={}",
    "AdsTrainConfig.weight_decay_on": "train.weight_decay_on={}",
    "AdsTrainConfig.nan_guard": "train.nan_guard={}",
    "AdsTrainConfig.score": "train.score={}",
    "AdsTrainConfig.calibration": "train.calibration={}",
    "AdsTrainConfig.negatives": "train.negatives={}",
    "AdsTrainConfig.inputs": "train.inputs={}",
    "AdsTrainConfig.init": "train.init={}",
    "AdsDataConfig.split": "data.split={}",
    "HopSamplingConfig.distribution": "train.hop_sampling.distribution={}",
    "HopSamplingConfig.granularity": "train.hop_sampling.granularity={}",
}


def test_every_literal_of_the_ads_config_has_a_runner():
    assert set(_literals()) == set(RUNNERS)


@pytest.mark.parametrize("key, choice", [(k, c) for k, cs in sorted(_literals().items()) for c in cs])
def test_every_choice_of_the_ads_config_runs(store, key, choice):
    extra = ["train.hop_sampling.enabled=true"] if key.startswith("HopSampling") else []
    extra += ["train.weight_decay=0.01"] if key.endswith(("optimizer", "weight_decay_on")) else []
    extra += ["train.num_negatives=1"] if key.endswith("negatives") else []
    model = "hgcf" if choice == "lorentz_sqdist" else "lightgcn"  # its points on the hyperboloid are what it scores
    _, _, m, res = _fit(store, model, RUNNERS[key].format(choice), *extra)
    assert res.epochs >= 1 and 0 <= res.test["auc"] <= 1 and math.isfinite(res.test["log_loss"])


def test_no_positive_or_a_one_class_validation_is_a_clear_error(store):
    # a store with impressions but no click: every label 0, the validation AUC NaN at every epoch
    cfg = resolve_ads_config("mf", None, FAST)
    data = load_ad_log(str(store), cfg.data).split(cfg.data, 0)
    u, a, y = data.parts["valid"]
    data.parts["valid"] = (u, a, torch.zeros_like(y))
    with pytest.raises(ValueError, match="every validation pair has label 0.*stop_on: log_loss"):
        AdsTask(data, cfg)
    AdsTask(data, resolve_ads_config("mf", None, [*FAST, "train.stop_on=log_loss"]))
    u, a, y = data.parts["train"]
    data.parts["train"] = (u, a, torch.zeros_like(y))
    with pytest.raises(ValueError, match="no positive pair.*click, conversion"):
        AdsTask(data, cfg)
