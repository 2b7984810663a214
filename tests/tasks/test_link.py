import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from graphrec.bench.rec import ModelRow, build_row_model
from graphrec.config import ConfigError
from graphrec.config.rec import resolve_rec_config
from graphrec.sampling import NegativeSampler
from graphrec.tasks.link import build_rec_model, evaluate

from fixtures import run_rec

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny graphs: one thread is fastest

FAST = ["train.epochs=20", "train.patience=20", "train.batch_size=256", "train.lr=0.01", "train.eval_every=5"]


def _pairs(e):
    return set(zip(e[0].tolist(), e[1].tolist(), strict=True))


def test_message_passing_graph_holds_training_pairs_only(inter):
    data = inter.split(seed=0)
    g = data.graph
    U = data.num_users
    fwd = {(int(a), int(b) - U) for a, b in g.t().tolist() if a < U}
    bwd = {(int(b), int(a) - U) for a, b in g.t().tolist() if a >= U}
    assert fwd == bwd == _pairs(data.train)
    assert not fwd & (_pairs(data.split.valid) | _pairs(data.split.test))


def test_popularity_baseline_is_beaten_by_mf_and_lightgcn(inter):
    data = inter.split(seed=0)
    # popularity: every user gets the same scores
    counts = data.item_counts.float()
    pop = evaluate(None, data, "test", embeddings=(torch.ones(data.num_users, 1), counts.view(-1, 1)))
    for model in ("mf", "lightgcn"):
        cfg = resolve_rec_config(model, None, FAST)
        _, res = run_rec(data, cfg, seed=0)
        assert res.test["recall@10"] > pop["recall@10"] + 0.1, (model, res.test, pop)
        assert res.best_epoch % 5 == 0 and res.epochs <= 20
        assert set(res.test) >= {f"{m}@{k}" for m in ("recall", "ndcg", "mrr", "hit", "map", "precision", "coverage")
                                 for k in (10, 20)}


def test_test_ranking_masks_training_and_validation_items(inter):
    data = inter.split(seed=1)
    # scores by hand (one-hot item "embeddings"): training items 100, validation 30, test 20
    scores = torch.zeros(data.num_users, data.num_items)
    for part, value in (("train", 100.0), ("valid", 30.0), ("test", 20.0)):
        e = getattr(data.split, part)
        scores[e[0], e[1]] = value
    emb = (scores, torch.eye(data.num_items))
    test = evaluate(None, data, "test", embeddings=emb)
    assert test["ndcg@10"] == pytest.approx(1.0) and test["recall@20"] == pytest.approx(1.0)
    valid = evaluate(None, data, "valid", embeddings=emb)
    assert valid["ndcg@10"] == pytest.approx(1.0)  # training items masked, validation items first
    emb_rev = (scores.where(scores != 30.0, torch.tensor(10.0)), torch.eye(data.num_items))
    # test items are not masked in validation: ranked above the validation items they push them down
    assert evaluate(None, data, "valid", embeddings=emb_rev)["ndcg@10"] < 0.9


@pytest.mark.parametrize("overrides", [
    ["train.loss=bce", "train.num_negatives=3"],
    ["train.negatives=popularity"],
    ["train.hop_sampling.enabled=true", "train.hop_sampling.granularity=node", "train.reg_weight=1e-4"],
    ["train.sampler=neighbor", "train.num_neighbors=[5, 5]"],
    ["train.inputs=both"],
])
def test_training_variants_run_and_learn(inter, overrides):
    data = inter.split(seed=0)
    if "train.inputs=both" in overrides:
        inter.user_features = (torch.randn(inter.num_users, 3), None)
        data = inter.split(seed=0)
    cfg = resolve_rec_config("lightgcn", None, FAST[:1] + ["train.epochs=10", "train.eval_every=5", "train.lr=0.01",
                                                             "train.batch_size=256"] + overrides)  # fmt: skip
    model, res = run_rec(data, cfg, seed=0)
    assert np.isfinite(res.history[-1]["loss"]) and res.test["recall@20"] > 0.2


@pytest.mark.parametrize("name, params", [("gesm", ["model.heads=2", "model.hidden=8", "model.K=3"]),
                                          ("gsm", ["model.hidden=16", "model.K=3"]),
                                          ("hopgcn", ["model.hidden=16", "model.dropout=0.0"])])
def test_registered_backbones_train_on_the_bipartite_graph(inter, name, params):
    data = inter.split(seed=0)
    cfg = resolve_rec_config(name, None, ["train.epochs=4", "train.eval_every=2", "train.batch_size=512"] + params)
    model, res = run_rec(data, cfg, seed=0)
    users, items = model.embeddings(data.graph)
    assert users.shape == (data.num_users, 64) and torch.isfinite(items).all()
    assert res.test["recall@20"] > 0


def test_pyg_reference_lightgcn_equals_ours_with_the_same_weights(inter):
    data = inter.split(seed=0)
    cfg = resolve_rec_config("lightgcn", None, ["model.K=2"])
    ours = build_rec_model(cfg, data)
    ref = build_row_model(ModelRow("pyg_lightgcn", "lightgcn", reference="pyg_lightgcn"), cfg, data)
    ref.model.embedding.weight.data.copy_(ours.embedding.weight.data)
    assert torch.allclose(ours(data.graph), ref(data.graph), atol=1e-6)
    with pytest.raises(ValueError, match="hop sampling does not apply"):
        build_row_model(ModelRow("pyg_lightgcn", "lightgcn", reference="pyg_lightgcn"),
                        resolve_rec_config("lightgcn", None, ["train.hop_sampling.enabled=true"]), data)


def test_negative_sampler_excludes_positives_and_follows_popularity():
    keys = torch.tensor([0 * 10 + 1, 0 * 10 + 2, 1 * 10 + 5])
    ns = NegativeSampler(10, exclude=keys)
    neg = ns.sample(torch.tensor([0] * 500 + [1] * 500), 2)
    assert neg.shape == (1000, 2)
    assert not ((neg[:500] == 1) | (neg[:500] == 2)).any() and not (neg[500:] == 5).any()
    counts = torch.tensor([1.0, 4.0, 9.0, 16.0])
    pop = NegativeSampler(4, "popularity", counts, exponent=0.5)
    hist = torch.bincount(pop.sample(torch.zeros(20000, dtype=torch.long)).view(-1), minlength=4).numpy()
    expected = np.array([1, 2, 3, 4]) / 10 * 20000
    assert chisquare(hist, expected).pvalue > 1e-3


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="train.lrr"):
        resolve_rec_config("mf", None, ["train.lrr=0.1"])
    with pytest.raises(ConfigError, match="model.hidden"):
        resolve_rec_config("mf", None, ["model.hidden=3"])
    with pytest.raises(ConfigError, match="stop_on"):
        resolve_rec_config("mf", None, ["train.stop_on=ndcg@50"])
    with pytest.raises(ConfigError, match="keys start with one of"):
        resolve_rec_config("mf", None, ["optim.lr=0.1"])
    with pytest.raises(ConfigError, match="unknown model"):
        resolve_rec_config("nope")


def test_sgc_is_refused_for_learnable_inputs(inter):
    with pytest.raises(ValueError, match="'sgc' cannot learn its inputs"):
        build_rec_model(resolve_rec_config("sgc"), inter.split(seed=0))


def test_pyg_reference_lightgcn_trains(inter):
    data = inter.split(seed=0)
    cfg = resolve_rec_config("lightgcn", None, ["train.epochs=2", "train.batch_size=512"])
    from graphrec.tasks.link import fit_link

    res = fit_link(data, build_row_model(ModelRow("pyg_lightgcn", "lightgcn", reference="pyg_lightgcn"), cfg, data), cfg)
    assert res.epochs == 2 and res.test["recall@20"] > 0
