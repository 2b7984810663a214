"""1000 training steps from adversarial starting points (near the boundary / at huge norms, duplicates, zero vectors)
give no NaN or infinity, with the hyperbolic scorers and with HGCF, in float32."""

import geoopt
import pytest
import torch

from graphrec.config import resolve_rec_config
from graphrec.hyperbolic.hgcf import HGCF, MAX_RADIUS
from graphrec.hyperbolic.scores import HyperbolicDistanceScore, LorentzSqDistScore
from graphrec.models.bipartite import pair_loss
from graphrec.tasks.link import LinkTask, build_rec_model
from graphrec.tasks.trainer import Trainer
from graphrec.utils.seed import seed_everything

from fixtures import planted

pytestmark = pytest.mark.usefixtures("one_thread")
STEPS = 1000


def _adversarial_tangent(n, d, g):
    """Rows: huge norms (beyond the clamp of expmap0), moderate, zero vectors, and duplicates of a huge row."""
    v = torch.randn(n, d, generator=g)
    v[: n // 4] *= 1e4
    v[n // 4 : n // 2] = 0.0
    v[n // 2 : n // 2 + 4] = v[0]
    return v


def _assert_finite(step, *tensors):
    for t in tensors:
        assert t is None or bool(torch.isfinite(t).all()), f"non-finite values at step {step}"


@pytest.mark.parametrize("scorer", [
    HyperbolicDistanceScore("lorentz", 1.0, learnable=True),
    HyperbolicDistanceScore("poincare", 0.05, learnable=True, squared=True),
], ids=["lorentz-learnable", "poincare-c0.05-sq-learnable"])  # fmt: skip
def test_the_distance_scorer_trains_from_adversarial_euclidean_inputs(scorer):
    g = torch.Generator().manual_seed(0)
    emb = torch.nn.Parameter(_adversarial_tangent(48, 4, g))
    opt = torch.optim.Adam([emb, *scorer.parameters()], lr=0.05)
    for step in range(STEPS):
        u, i, j = (torch.randint(0, 48, (32,), generator=g) for _ in range(3))
        kind = ("bpr", "margin")[step % 2]
        loss = pair_loss(kind, scorer.score(emb[u], emb[i]), scorer.score(emb[u, None], emb[j, None]), margin=0.5)
        opt.zero_grad()
        loss.backward()
        _assert_finite(step, loss, emb.grad, *(p.grad for p in scorer.parameters()))
        opt.step()
    _assert_finite(STEPS, emb, scorer.space.c, scorer.score_all(emb.detach(), emb.detach()))
    lo, hi = scorer.space.c_range
    assert lo <= float(scorer.space.c.detach()) <= hi


def _far_rows_at_the_cap(v):
    norm = v.norm(dim=-1, keepdim=True)  # huge rows: at the largest radius an HGCF ID embedding can have
    return torch.where(norm > MAX_RADIUS, v * MAX_RADIUS / norm, v)


@pytest.mark.parametrize("distance", ["lorentzian", "geodesic"])
def test_lorentz_scores_train_points_from_adversarial_positions(distance):
    g = torch.Generator().manual_seed(1)
    space = HGCF(4, 4).input_manifold  # the ID table's hyperboloid (BoundedLorentz), curvature -1
    points = space.expmap0(_far_rows_at_the_cap(_adversarial_tangent(48, 4, g)))
    emb = geoopt.ManifoldParameter(points, manifold=space.geoopt_manifold())
    scorer = LorentzSqDistScore(1.0, distance=distance)
    opt = geoopt.optim.RiemannianAdam([emb], lr=0.05)
    for step in range(STEPS):
        u, i, j = (torch.randint(0, 48, (32,), generator=g) for _ in range(3))
        loss = pair_loss("margin", scorer.score(emb[u], emb[i]), scorer.score(emb[u, None], emb[j, None]), margin=0.1)
        opt.zero_grad()
        loss.backward()
        _assert_finite(step, loss, emb.grad)
        opt.step()
        _assert_finite(step, emb)
    _assert_finite(STEPS, scorer.score_all(emb.detach(), emb.detach()))


def test_hgcf_trains_from_adversarial_embeddings_without_nan():
    data = planted(num_users=30, num_items=20, per_user=6).split(seed=0)
    n_steps = -(-data.train.size(1) // 16)  # steps per epoch at batch 16
    epochs = -(-STEPS // n_steps)
    cfg = resolve_rec_config("hgcf", None, [f"train.epochs={epochs}", "train.batch_size=16", "train.embedding_dim=4",
                                            "train.lr=0.05", "train.eval_every=100000", "train.select=last",
                                            "train.weight_decay=1e-3", "train.nan_guard=grads"])  # fmt: skip
    seed_everything(0)
    model = build_rec_model(cfg, data)
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():  # far rows, the origin, duplicates
        model.embedding.weight.copy_(model.backbone.space.expmap0(_far_rows_at_the_cap(_adversarial_tangent(50, 4, g))))
    res = Trainer.from_config(cfg.train, progress=None).fit(model, LinkTask(data, cfg))  # NonFiniteError if not
    assert res.epochs * n_steps >= STEPS
    users, items = model.embeddings(data.graph)
    _assert_finite(STEPS, model.embedding.weight, users, items, model.scorer.score_all(users, items))
