"""The hyperbolic scorers: pair and all-item scores agree, the inner-product form ranks exactly, and the served model
(a model folder queried through graphrec's serving path) returns the brute-force top-k."""

import json
import math

import numpy as np
import pytest
import torch

from graphrec.hyperbolic import HyperbolicSpace
from graphrec.hyperbolic.scores import HyperbolicDistanceScore, LorentzSqDistScore
from graphrec.nn.score import SCORERS, Scorer, build_scorer, scorer_from_spec
from graphrec.serving import Recommender, export_embeddings, export_model
from graphrec.serving.format import ModelFolder

from fixtures import planted

pytestmark = pytest.mark.usefixtures("one_thread")

EUCLIDEAN = {  # scorers of Euclidean vectors
    "lorentz": lambda: HyperbolicDistanceScore("lorentz", 1.0),
    "lorentz-sq-c2.5": lambda: HyperbolicDistanceScore("lorentz", 2.5, squared=True),
    "poincare-c0.5": lambda: HyperbolicDistanceScore("poincare", 0.5),
    "poincare-sq-learnable": lambda: HyperbolicDistanceScore("poincare", 2.0, learnable=True, squared=True),
}
POINTS = {  # scorers of points on the hyperboloid of curvature -c
    "lorentzian-c1": lambda: LorentzSqDistScore(1.0),
    "geodesic-c0.5": lambda: LorentzSqDistScore(0.5, distance="geodesic"),
}
ALL = {**EUCLIDEAN, **POINTS}


def _inputs(scorer, users=9, items=300, d=6, seed=0, scale=0.6, dtype=torch.float64):
    """``(u, items)`` in the scorer's input space: Euclidean vectors, or points of its hyperboloid."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(users, d, generator=g, dtype=torch.float64) * scale
    v = torch.randn(items, d, generator=g, dtype=torch.float64) * scale
    if isinstance(scorer, LorentzSqDistScore):
        space = HyperbolicSpace("lorentz", scorer.curvature)
        u, v = space.expmap0(u), space.expmap0(v)
    return u.to(dtype), v.to(dtype)


@pytest.mark.parametrize("name", ALL)
def test_score_all_equals_the_pair_scores_in_any_block_size(name):
    s = ALL[name]()
    u, items = _inputs(s)
    pairs = s.score(u[:, None, :], items[None, :, :])
    assert pairs.shape == (9, 300) and bool((pairs <= 0).all())
    full = s.score_all(u, items)
    assert full.dtype == u.dtype
    assert torch.allclose(full, pairs, rtol=1e-6, atol=1e-6)
    s.block_items = 7
    assert torch.allclose(s.score_all(u, items), full)
    assert torch.allclose(Scorer.score_all(s, u, items), full, rtol=1e-6, atol=1e-6)  # the generic blocked path
    ranked = s.score_fn(u, items)(torch.tensor([3, 0]))  # the evaluation ranks by Minkowski products
    assert ranked.shape == (2, 300)
    assert torch.equal(torch.argsort(ranked, dim=1, descending=True, stable=True)[:, :50],
                       torch.argsort(full[[3, 0]], dim=1, descending=True, stable=True)[:, :50])


@pytest.mark.parametrize("name", ALL)
def test_the_inner_product_form_ranks_exactly_as_score_all(name):
    s = ALL[name]()
    u, items = _inputs(s, seed=1, items=500)
    q, x = s.ip_transform(u, items)
    # Euclidean inputs become hyperboloid points (ball points too, through the isometry): one more coordinate
    assert q.shape[1] == x.shape[1] == items.shape[1] + isinstance(s, HyperbolicDistanceScore)
    truth = s.score_all(u, items)
    by_score = torch.argsort(truth, dim=1, descending=True, stable=True)[:, :50]
    by_ip = torch.argsort(q @ x.t(), dim=1, descending=True, stable=True)[:, :50]
    assert torch.equal(by_score, by_ip)
    # in float32 too (what the index holds), for these well-separated points
    q32, x32 = s.ip_transform(u.float(), items.float())
    assert q32.dtype == torch.float32
    assert torch.equal(torch.argsort(q32 @ x32.t(), dim=1, descending=True, stable=True)[:, :10], by_score[:, :10])


def test_the_lorentz_scores_are_the_closed_forms():
    space = HyperbolicSpace("lorentz", 0.5)
    x, y = space.expmap0(torch.randn(20, 4, dtype=torch.float64)), space.expmap0(torch.randn(20, 4, dtype=torch.float64))
    mink = (x * y).sum(-1) - 2 * x[:, 0] * y[:, 0]
    assert torch.allclose(LorentzSqDistScore(0.5).score(x, y), 2 / 0.5 + 2 * mink)  # -||x - y||_L^2
    assert torch.allclose(LorentzSqDistScore(0.5).score(x, y), -((x - y) ** 2 * torch.tensor([-1, 1, 1, 1, 1])).sum(-1))
    geo = LorentzSqDistScore(0.5, distance="geodesic").score(x, y)
    assert torch.allclose(geo, -torch.arccosh(-0.5 * mink) ** 2 / 0.5)
    h = HyperbolicDistanceScore("lorentz", 0.5)
    v, w = torch.randn(20, 4, dtype=torch.float64), torch.randn(20, 4, dtype=torch.float64)
    assert torch.allclose(h.score(v, w), -space.dist(space.expmap0(v), space.expmap0(w)))
    assert torch.allclose(HyperbolicDistanceScore("lorentz", 0.5, squared=True).score(v, w), -(h.score(v, w) ** 2))


@pytest.mark.parametrize("name", ALL)
def test_specs_round_trip(name):
    s = ALL[name]()
    spec = json.loads(json.dumps(s.spec()))  # what a model card holds
    again = scorer_from_spec(spec)
    assert type(again) is type(s) and again.spec() == s.spec()
    u, items = _inputs(s, items=20)
    assert torch.allclose(again.score_all(u, items), s.score_all(u, items))


def test_registered_by_name_and_bad_options_are_named():
    assert SCORERS["hyperbolic"] is HyperbolicDistanceScore and SCORERS["lorentz_sqdist"] is LorentzSqDistScore
    assert build_scorer("hyperbolic", {"kind": "poincare", "curvature": 2.0}).space.kind == "poincare"
    with pytest.raises(ValueError, match="invalid score_params for scorer 'hyperbolic'.*'radius'"):
        build_scorer("hyperbolic", {"radius": 2.0})
    with pytest.raises(ValueError, match="'dot'.*it takes no options"):
        build_scorer("dot", {"curvature": 1.0})
    with pytest.raises(ValueError, match="'lorentz_sqdist'.*'kind'.*it takes curvature, distance"):
        build_scorer("lorentz_sqdist", {"kind": "lorentz"})
    with pytest.raises(ValueError, match="squared must be true or false, got 3"):
        build_scorer("hyperbolic", {"squared": 3})
    with pytest.raises(ValueError, match="learnable must be true or false"):
        build_scorer("multi_manifold", {"learnable": "no"})
    with pytest.raises(ValueError, match="unknown hyperbolic model 'klein'"):
        build_scorer("hyperbolic", {"kind": "klein"})
    with pytest.raises(ValueError, match="distance must be 'lorentzian' or 'geodesic'"):
        build_scorer("lorentz_sqdist", {"distance": "euclidean"})


def _brute_top(scorer, U, V, su, si, u, k):
    s = scorer.score_all(torch.from_numpy(U[u : u + 1]).double(), torch.from_numpy(V).double())[0].numpy()
    s[si[su == u]] = -np.inf
    return np.argsort(-s, kind="stable")[:k].tolist()


@pytest.mark.parametrize("name", ALL)
def test_served_model_returns_the_brute_force_top_k(tmp_path, name):
    s = ALL[name]()
    U, V = (t.numpy().astype(np.float32) for t in _inputs(s, users=20, items=400, seed=3))
    rng = np.random.default_rng(3)
    su, si = rng.integers(0, 20, 300), rng.integers(0, 400, 300)
    path = export_embeddings(tmp_path / "m", U, V, seen=(su, si), scorer=s,
                             state_dict={f"scorer.{k}": v for k, v in s.state_dict().items()})  # fmt: skip
    card = json.loads((path / "card.json").read_text())
    assert card["scorer"] == s.spec() and card["index"] == "flat"  # an exact inner-product index, no scan
    rec = Recommender(path)
    for u in range(20):
        got = [r.item for r in rec.recommend(u, 10)]
        assert got == _brute_top(s, U, V, su, si, u, 10), (name, u)


def test_a_learned_curvature_trains_travels_in_the_model_folder_and_serves_exactly(tmp_path):
    from graphrec.config import resolve_rec_config
    from graphrec.tasks.link import LinkTask, build_rec_model
    from graphrec.tasks.trainer import Trainer
    from graphrec.utils.seed import seed_everything

    data = planted(num_users=40, num_items=30, per_user=8).split(seed=0)
    cfg = resolve_rec_config("lightgcn", None, [
        "train.epochs=3", "train.batch_size=64", "train.embedding_dim=8", "train.score=hyperbolic",
        "train.score_params={kind: poincare, curvature: 1.0, learnable: true, c_range: [0.1, 10.0]}",
        "train.curvature_lr=0.05"])  # fmt: skip
    seed_everything(0)
    model = build_rec_model(cfg, data)
    Trainer.from_config(cfg.train, progress=None).fit(model, LinkTask(data, cfg))
    c = float(model.scorer.space.c.detach())
    assert c != pytest.approx(1.0, abs=1e-3) and 0.1 <= c <= 10.0  # it moved, within its range
    path = export_model(model, data, tmp_path / "m", config=cfg.model_dump())
    loaded = ModelFolder(path).load_scorer()
    assert isinstance(loaded, HyperbolicDistanceScore) and float(loaded.space.c.detach()) == pytest.approx(c)
    rec = Recommender(path)
    users, items = model.embeddings(data.graph)
    for u in range(0, 40, 7):
        s = model.scorer.score_all(users[u : u + 1].double(), items.double())[0].numpy()
        s[np.asarray(data.source.item[data.source.user == u])] = -np.inf
        want = [data.source.item_ids[i] for i in np.argsort(-s, kind="stable")[:5]]
        assert [r.item for r in rec.recommend(data.source.user_ids[u], 5)] == want


def test_an_exported_hgcf_model_serves_its_lorentz_scores_exactly(tmp_path):
    from graphrec.config import resolve_rec_config

    from fixtures import run_rec

    data = planted(num_users=40, num_items=30, per_user=8).split(seed=0)
    cfg = resolve_rec_config("hgcf", None, ["train.epochs=3", "train.batch_size=64", "train.embedding_dim=8"])
    model, _ = run_rec(data, cfg, progress=None)
    path = export_model(model, data, tmp_path / "m", config=cfg.model_dump())
    card = json.loads((path / "card.json").read_text())
    assert card["scorer"] == {"name": "lorentz_sqdist", "curvature": 1.0, "distance": "geodesic"} and card["dim"] == 9
    rec = Recommender(path)
    users, items = model.embeddings(data.graph)
    for u in range(0, 40, 5):
        s = model.scorer.score_all(users[u : u + 1], items)[0].double().numpy()
        s[np.asarray(data.source.item[data.source.user == u])] = -np.inf
        want = [data.source.item_ids[i] for i in np.argsort(-s, kind="stable")[:5]]
        assert [r.item for r in rec.recommend(data.source.user_ids[u], 5)] == want
    assert math.isfinite(rec.recommend(data.source.user_ids[0], 1)[0].score)
