"""The multi-manifold scorer: scores, top-k guarantees, origins and their schedule, learning, numerics, serving."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from graphrec.hyperbolic.multi import MultiManifoldScore
from graphrec.nn.score import build_scorer, scorer_from_spec
from graphrec.tasks.optim import build_optimizer

pytestmark = pytest.mark.usefixtures("one_thread")

KINDS = ["lorentz", "poincare"]
AGGREGATIONS = ["weights", "membership"]
BOTH = [(k, a) for k in KINDS for a in AGGREGATIONS]


def _data(users=40, items=200, d=6, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(users, d, generator=g, dtype=dtype), torch.randn(items, d, generator=g, dtype=dtype)


def _fitted(users, **params):
    s = MultiManifoldScore(**params)
    s.fit_origins(users)
    with torch.no_grad():  # unequal weights, curvatures and calibration: nothing trivially symmetric
        for m, space in enumerate(s.spaces):
            if space.learnable:
                space.curvature_raw.add_(0.3 * m - 0.4)
        if s.aggregation == "weights":
            s.weight_logits.copy_(torch.linspace(-1, 1, s.num_manifolds))
        s.scale_raw.add_(0.5)
        s.bias.fill_(0.7)
    return s


def test_registered_options_travel_in_the_spec_and_bad_ones_are_named():
    params = {"num_manifolds": 3, "kind": "poincare", "curvature": 0.5, "learnable": True, "c_range": [0.1, 5.0],
              "aggregation": "membership", "membership_temperature": 0.3, "recluster_every": 4, "kmeans_seed": 7,
              "calibration": False}  # fmt: skip
    s = build_scorer("multi_manifold", params)
    assert isinstance(s, MultiManifoldScore) and s.spec() == {"name": "multi_manifold", **params}
    assert scorer_from_spec(s.spec()).spec() == s.spec()
    assert MultiManifoldScore().kind == "lorentz" and MultiManifoldScore().learnable
    for bad, key in [({"num_manifolds": 0}, "num_manifolds"), ({"aggregation": "max"}, "aggregation"),
                     ({"kind": "klein"}, "kind"), ({"membership_temperature": 0}, "membership_temperature"),
                     ({"recluster_every": -1}, "recluster_every"), ({"c_range": [1.0]}, "c_range"),
                     ({"curvature": 50.0, "c_range": [0.1, 10]}, "curvature")]:  # fmt: skip
        with pytest.raises(ValueError, match=key):
            build_scorer("multi_manifold", bad)


@pytest.mark.parametrize("kind, aggregation", BOTH)
def test_score_equals_score_all_equals_topk(kind, aggregation):
    users, items = _data()
    s = _fitted(users, num_manifolds=3, kind=kind, aggregation=aggregation, membership_temperature=2.0)
    with torch.no_grad():
        full = s.score_all(users, items)
        pairs = s.score(users[:, None], items[None])
        s.block_elements = 300  # tiny blocks: the blocking must not change a value
        blocked = s.score_all(users, items)
        top = s.topk(users, items, 10, candidates_per_manifold=10)
    torch.testing.assert_close(pairs, full, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(blocked, full, rtol=1e-12, atol=1e-12)
    brute = torch.topk(full, 10, dim=1)
    assert top.certified.all()
    assert torch.equal(top.indices, brute.indices)
    torch.testing.assert_close(top.values, brute.values, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(top.values, s.score(users[:, None], items[top.indices]).detach(), rtol=1e-12, atol=1e-12)
    assert full.dtype == torch.float64 and s.score(users.float(), items[:40].float()).dtype == torch.float32


@pytest.mark.parametrize("kind", KINDS)
def test_topk_with_one_manifold_is_brute_force_and_always_certified(kind):
    users, items = _data(users=30, items=300, seed=1)
    s = _fitted(users, num_manifolds=1, kind=kind)
    brute = torch.topk(s.score_all(users, items).detach(), 7, dim=1)
    for c in (7, 20):
        top = s.topk(users, items, 7, candidates_per_manifold=c, exact=False)
        assert top.certified.all()
        assert torch.equal(top.indices, brute.indices)
        torch.testing.assert_close(top.values, brute.values, rtol=1e-12, atol=1e-12)
    assert s.topk(users, items, 1000).indices.shape == (30, 300)  # k beyond the catalogue: all items


def test_topk_certificate_is_the_guarantee_for_several_manifolds():
    # several manifolds, few candidates: the union can miss the true top-k; the certificate says when it did not
    users, items = _data(users=200, items=400, d=4, seed=2)
    s = _fitted(users, num_manifolds=4)
    brute = torch.topk(s.score_all(users, items).detach(), 5, dim=1).indices
    fast = s.topk(users, items, 5, candidates_per_manifold=5, exact=False)
    same = (torch.sort(fast.indices).values == torch.sort(brute).values).all(1)
    assert same[fast.certified].all()  # certified rows are exact
    assert not fast.certified.all() and not same.all()  # and a fixed C is not exact in general
    exact = s.topk(users, items, 5, candidates_per_manifold=5)  # retries with 2C until certified
    assert exact.certified.all() and torch.equal(exact.indices, brute)


def test_ip_transform_is_exact_for_one_manifold_only():
    users, items = _data(seed=3)
    one = _fitted(users, num_manifolds=1, aggregation="membership")
    q, x = one.ip_transform(users, items)
    ranks_ip = torch.argsort(q @ x.t(), dim=1, descending=True)
    ranks = torch.argsort(one.score_all(users, items).detach(), dim=1, descending=True)
    assert torch.equal(ranks_ip, ranks)
    assert _fitted(users, num_manifolds=2).ip_transform(users, items) is None


def test_fit_origins_is_deterministic_and_robust():
    users, _ = _data(users=300, d=5, seed=4)
    a, b = MultiManifoldScore(num_manifolds=4), MultiManifoldScore(num_manifolds=4)
    assert torch.equal(a.fit_origins(users, seed=3), b.fit_origins(users, seed=3))
    assert a.origins.shape == (4, 5) and a.fitted
    frac = a.cluster_fraction
    assert math.isclose(float(frac.sum()), 1.0, rel_tol=1e-6) and bool((frac[:-1] >= frac[1:]).all())  # by size
    # a refit on moved users keeps each manifold on its cluster (the learned curvature stays with it)
    before = a.origins.clone()
    a.fit_origins(users + 0.01, seed=11)
    assert torch.cdist(a.origins.double(), before.double()).argmin(1).tolist() == [0, 1, 2, 3]
    # fewer distinct users than manifolds: the origins are those users, repeated
    few = MultiManifoldScore(num_manifolds=4)
    two = torch.tensor([[1.0, 2.0], [-3.0, 0.5]])
    few.fit_origins(two)
    assert {tuple(r) for r in few.origins.tolist()} == {(1.0, 2.0), (-3.0, 0.5)}
    dup = torch.cat([two] * 20 + [torch.zeros(10, 2)])
    few.fit_origins(dup)
    assert {tuple(r) for r in few.origins.tolist()} == {(1.0, 2.0), (-3.0, 0.5), (0.0, 0.0)}
    same = torch.ones(50, 3)
    few.fit_origins(same)
    assert torch.equal(few.origins, torch.ones(4, 3)) and torch.isfinite(few.mean_membership).all()
    with pytest.raises(ValueError, match="1 of 3 user embeddings are not finite"):
        few.fit_origins(torch.tensor([[0.0, 1.0], [float("nan"), 0.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match=r"\[U, d\]"):
        few.fit_origins(torch.zeros(0, 2))


def test_schedule_refits_at_epoch_one_then_every_recluster_every():
    users, _ = _data(users=50, d=3, seed=5)
    calls = []

    def embeddings():
        calls.append(1)
        return users

    s = MultiManifoldScore(num_manifolds=3, recluster_every=3)
    assert [s.on_epoch_start(e, embeddings) for e in range(1, 9)] == [True, False, False, True, False, False, True, False]
    assert len(calls) == 3 and int(s.last_fit_epoch) == 7  # the embeddings are computed only when due
    once = MultiManifoldScore(num_manifolds=3)
    assert [once.on_epoch_start(e, embeddings) for e in range(1, 6)] == [True, False, False, False, False]
    late = MultiManifoldScore(num_manifolds=3)  # e.g. resumed without origins: fit at the first chance
    assert late.on_epoch_start(5, embeddings) and not late.on_epoch_start(6, embeddings)


@pytest.mark.parametrize("kind", KINDS)
def test_membership_weights_sum_to_one_at_any_norm(kind):
    users, items = _data(users=20, d=4, seed=6)
    s = MultiManifoldScore(num_manifolds=3, kind=kind, aggregation="membership", membership_temperature=0.5)
    torch.testing.assert_close(s.membership(users), torch.full((20, 3), 1 / 3, dtype=torch.float64))  # before fitting
    s.fit_origins(users)
    probe = torch.cat([users, users * 1e15, torch.zeros(2, 4), torch.full((2, 4), 3e38)])
    w = s.membership(probe)
    assert torch.isfinite(w).all() and bool((w >= 0).all())
    torch.testing.assert_close(w.sum(-1), torch.ones(len(probe), dtype=torch.float64))
    assert torch.isfinite(s.score(probe, probe.flip(0))).all()
    assert math.isclose(sum(s.report(users)["mean_membership"]), 1.0, rel_tol=1e-9)
    weights = MultiManifoldScore(num_manifolds=3).weights()
    torch.testing.assert_close(weights.sum(), torch.tensor(1.0, dtype=torch.float64))


def test_state_dict_round_trip_reproduces_the_scores(tmp_path):
    users, items = _data(seed=7)
    s = _fitted(users, num_manifolds=3, aggregation="membership")
    torch.save(s.state_dict(), tmp_path / "s.pt")
    again = scorer_from_spec(s.spec())
    assert not again.fitted
    again.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    assert again.fitted and torch.equal(again.origins, s.origins)
    assert torch.equal(again.score_all(users, items), s.score_all(users, items))
    assert again.report() == s.report()


def _pairs(n_users, n_items, steps, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randint(0, n_users, (16,), generator=g), torch.randint(0, n_items, (16,), generator=g),
             torch.randint(0, n_items, (16,), generator=g)) for _ in range(steps)]  # fmt: skip


def _train(scorer, users, items, steps, lr, curvature_lr=None, refit_every=0):
    """BCE on random (user, positive, negative) triples, embeddings and scorer trained together (Adam)."""
    model = torch.nn.Module()
    model.users, model.items, model.scorer = torch.nn.Parameter(users), torch.nn.Parameter(items), scorer
    opt = build_optimizer(model, "adam", lr=lr, curvature_lr=curvature_lr)
    for step, (u, i, j) in enumerate(_pairs(len(users), len(items), steps)):
        if refit_every and step % refit_every == 0:
            scorer.fit_origins(model.users.detach())
        logits = scorer.score(model.users[u].unsqueeze(1), model.items[torch.stack([i, j], 1)])  # [16, 2]
        loss = F.binary_cross_entropy_with_logits(logits, torch.tensor([[1.0, 0.0]]).expand_as(logits))
        assert torch.isfinite(loss), f"step {step}: loss {loss}"
        opt.zero_grad()
        loss.backward()
        for name, p in model.named_parameters():
            assert p.grad is None or torch.isfinite(p.grad).all(), f"step {step}: gradient of {name}"
        opt.step()
    return model


def test_learned_curvature_moves_and_stays_in_range():
    users, items = _data(users=30, items=40, d=4, seed=8, dtype=torch.float32)
    s = MultiManifoldScore(num_manifolds=2, c_range=(0.2, 5.0))
    s.fit_origins(users)
    _train(s, users.clone(), items.clone(), 60, lr=0.01, curvature_lr=0.05)
    c = s.curvatures().detach()
    assert (c - 1.0).abs().max() > 0.01, c
    wild = MultiManifoldScore(num_manifolds=3, c_range=(0.2, 5.0))
    wild.fit_origins(users)
    _train(wild, users.clone(), items.clone(), 60, lr=1.0, curvature_lr=1e4)
    c = wild.curvatures().detach()
    assert bool(((c >= 0.2) & (c <= 5.0)).all()) and (c - 1.0).abs().max() > 0.1, c
    assert all(0.2 <= x <= 5.0 for x in wild.report()["curvatures"])


@pytest.mark.parametrize("kind, aggregation", BOTH)
def test_a_thousand_steps_on_adversarial_inputs_stay_finite(kind, aggregation):
    g = torch.Generator().manual_seed(9)
    base = torch.randn(6, 4, generator=g)
    adversarial = torch.cat([torch.zeros(6, 4),                    # zero vectors
                             base[:1].repeat(6, 1),                # duplicates
                             1e12 * torch.randn(6, 4, generator=g),  # huge norms
                             base])  # fmt: skip
    identical = base[:1].repeat(24, 1)  # all users the same
    for users in (adversarial, identical):  # 500 steps each
        s = MultiManifoldScore(num_manifolds=2, kind=kind, aggregation=aggregation, membership_temperature=0.1)
        model = _train(s, users.clone(), adversarial.flip(0).clone(), 500, lr=0.5, curvature_lr=0.5, refit_every=100)
        for name, p in model.named_parameters():
            assert torch.isfinite(p).all(), name
        scores = s.score_all(model.users.detach(), model.items.detach())
        assert torch.isfinite(scores).all()
        assert np.isfinite(np.array(s.report()["curvatures"])).all()


def test_link_task_refits_the_origins_on_schedule():
    from graphrec.config import resolve_rec_config
    from graphrec.tasks.link import LinkTask, build_rec_model
    from graphrec.tasks.trainer import Trainer
    from graphrec.utils.seed import seed_everything

    from fixtures import planted

    cfg = resolve_rec_config("mf", None, ["train.epochs=4", "train.batch_size=64", "train.embedding_dim=4",
                                          "train.score=multi_manifold", "train.loss=bce", "train.select=last",
                                          "train.score_params={num_manifolds: 2, recluster_every: 2}"])  # fmt: skip
    data = planted(num_users=30, num_items=20, per_user=6).split(cfg.data, 0)
    seed_everything(0)
    model = build_rec_model(cfg, data)
    res = Trainer.from_config(cfg.train).fit(model, LinkTask(data, cfg))
    s = model.scorer
    assert res.epochs == 4 and s.fitted and int(s.last_fit_epoch) == 3 and s.origins.shape == (2, 4)


@pytest.mark.parametrize("num_manifolds", [1, 3])
def test_serving_returns_the_brute_force_top_k(tmp_path, num_manifolds):
    import json

    from graphrec.serving import Recommender, export_embeddings

    users, items = _data(users=25, items=300, d=5, seed=10, dtype=torch.float32)
    s = _fitted(users, num_manifolds=num_manifolds, aggregation="membership" if num_manifolds == 3 else "weights")
    rng = np.random.default_rng(0)
    su, si = rng.integers(0, 25, 400), rng.integers(0, 300, 400)
    state = {f"scorer.{k}": v for k, v in s.state_dict().items()}
    path = export_embeddings(tmp_path / "m", users.numpy(), items.numpy(), seen=(su, si), scorer=s, state_dict=state)
    assert json.loads((path / "card.json").read_text())["index"] == ("flat" if num_manifolds == 1 else "scan")
    rec = Recommender(path)
    scores = s.score_all(users.double(), items.double()).detach().numpy()
    for u in range(25):
        row = scores[u].copy()
        row[si[su == u]] = -np.inf
        assert [r.item for r in rec.recommend(u, 10)] == np.argsort(-row, kind="stable")[:10].tolist(), u
