"""HGCF: the encoder is HGCF's (checked against a dense reference built on geoopt), the recommender holds its ID
embeddings on the hyperboloid and trains them with RiemannianAdam, and it learns a planted graph."""

import geoopt
import pytest
import torch
import torch.nn.functional as F
from torch_geometric.utils import to_dense_adj

from graphrec.config import resolve_rec_config
from graphrec.hyperbolic import HyperbolicSpace
from graphrec.hyperbolic.hgcf import HGCF, MAX_RADIUS, BoundedLorentz
from graphrec.models import MODELS, BipartiteRecommender, build_model, get_spec, model_info
from graphrec.nn import HopSampling
from graphrec.nn.propagation import row_weights
from graphrec.nn.score import DotScore
from graphrec.tasks.link import LinkTask, build_rec_model, evaluate
from graphrec.tasks.optim import build_optimizer
from graphrec.tasks.trainer import Trainer
from graphrec.utils.seed import seed_everything

from fixtures import planted, random_graph

pytestmark = pytest.mark.usefixtures("one_thread")
SEED = 0


def _points(n, d, c=1.0, scale=0.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return HyperbolicSpace("lorentz", c).expmap0(torch.randn(n, d, generator=g) * scale)


def _on_hyperboloid(x, c):
    x = x.detach()  # (geoopt's scripted maps can hand back outputs that require grad once a graph was traced)
    return (c * ((x * x).sum(-1) - 2 * x[:, 0] ** 2)).add(1).abs().max()


def _dense_hgcf(x, ei, K, c):
    """HGCF's encoder with dense matrices and geoopt's Lorentz maps: exp0(sum_k P^k log0 x), P = D~^-1 (A + I)."""
    m = geoopt.Lorentz(k=torch.tensor(1.0 / c, dtype=torch.float64))
    n = x.size(0)
    a = to_dense_adj(ei, max_num_nodes=n)[0].double().clamp(max=1).t()  # a[i, j] = 1 for an edge j -> i
    a = a + torch.eye(n, dtype=torch.float64)
    p = a / a.sum(1, keepdim=True)
    h = m.logmap0(x.double())[:, 1:]
    total = torch.zeros_like(h)
    for _ in range(K):
        h = p @ h
        total = total + h
    return m.expmap0(F.pad(total, (1, 0)))


def test_registered_as_a_riemannian_k_step_rec_model():
    spec, info = get_spec("hgcf"), model_info("hgcf")
    assert "hgcf" in MODELS and spec.cls is HGCF and info.module == "graphrec.hyperbolic.hgcf" and info.task == "rec"
    assert spec.supports_steps and spec.riemannian and spec.needs_graph and spec.learns_inputs
    m = build_model("hgcf", 8, 8)
    assert (m.num_steps, float(m.space.c), m.init_scale, m.space.kind) == (3, 1.0, 0.1, "lorentz")
    assert not list(m.parameters())  # no weights on ID embeddings, as in HGCF
    assert isinstance(build_model("hgcf", 8, 8, hop_sampling={"enabled": True}), HopSampling)
    with pytest.raises(ValueError, match="model.curvature"):
        build_model("hgcf", 8, 8, curvature=0)


def test_row_normalisation_is_hgcns():
    ei = random_graph()
    n = int(ei.max()) + 1
    ei_w, w = row_weights(ei, n)
    m = torch.zeros(n, n).index_put_((ei_w[1], ei_w[0]), w, accumulate=True)  # m[target, source]
    a = to_dense_adj(ei, max_num_nodes=n)[0].clamp(max=1).t() + torch.eye(n)
    assert torch.allclose(m, a / a.sum(1, keepdim=True), atol=1e-6)  # HGCN's normalize(adj + I): rows sum to one


@pytest.mark.parametrize("K, c", [(1, 1.0), (3, 1.0), (4, 0.5)])
def test_forward_is_hgcfs_encoder(K, c):
    ei = random_graph()
    n = int(ei.max()) + 1
    x = _points(n, 6, c)
    m = build_model("hgcf", 6, 6, K=K, curvature=c)
    out = m(x, ei)
    assert out.shape == (n, 7)
    assert torch.allclose(out.double(), _dense_hgcf(x, ei, K, c), atol=1e-4)
    assert float(_on_hyperboloid(out, c)) < 1e-3


def test_steps_follow_the_k_step_contract():
    ei = random_graph()
    n = int(ei.max()) + 1
    x = _points(n, 4, seed=1)
    m = build_model("hgcf", 4, 4, K=3)
    for k in (1, 2, 3):
        assert torch.allclose(m(x, ei, steps=k), build_model("hgcf", 4, 4, K=k)(x, ei), atol=1e-6)
    assert torch.allclose(m(x, ei, steps=0), x, atol=1e-4)  # no step: the inputs
    per_node = torch.randint(1, 4, (n,))
    out = m(x, ei, steps=per_node)
    for k in (1, 2, 3):
        rows = per_node == k
        assert torch.allclose(out[rows], m(x, ei, steps=k)[rows], atol=1e-6)
    with pytest.raises(ValueError, match="requested 4 steps, but the model has K=3"):
        m(x, ei, steps=4)


def test_euclidean_inputs_are_tangent_vectors_and_widths_are_checked():
    ei = random_graph()
    n = int(ei.max()) + 1
    space = HyperbolicSpace("lorentz", 1.0)
    v = torch.randn(n, 5) * 0.3
    m = build_model("hgcf", 5, 5, K=2)
    tangent = m(v, ei)
    assert tangent.shape == (n, 5)
    assert torch.allclose(space.expmap0(tangent), m(space.expmap0(v), ei), atol=1e-5)  # the maps left to the caller
    lin = build_model("hgcf", 5, 3, K=2)  # features -> a linear map -> the summed steps
    assert lin(v, ei).shape == (n, 3)
    with pytest.raises(ValueError, match=r"takes points on the hyperboloid \[N, 6\] or tangent vectors \[N, 5\]"):
        m(torch.randn(n, 7), ei)
    with pytest.raises(ValueError, match="has a linear map and takes tangent vectors"):
        lin(space.expmap0(v), ei)


def _cfg(*overrides):
    return resolve_rec_config("hgcf", None, ["train.epochs=25", "train.batch_size=256", "train.embedding_dim=8",
                                             "train.lr=0.01", *overrides])  # fmt: skip


def test_the_id_manifold_is_geoopts_hyperboloid_with_a_float32_safe_retraction():
    m = build_model("hgcf", 4, 4, curvature=2.0).input_manifold.geoopt_manifold()
    assert isinstance(m, BoundedLorentz) and float(m.k) == pytest.approx(0.5) and m.max_radius == MAX_RADIUS
    space = HyperbolicSpace("lorentz", 2.0)
    g = torch.Generator().manual_seed(SEED)
    x = space.expmap0(torch.randn(6, 4, generator=g, dtype=torch.float64))
    u = m.proju(x, torch.randn(6, 5, generator=g, dtype=torch.float64))
    mink = (u * u).sum(-1, keepdim=True) - 2 * u[:, :1] ** 2
    assert torch.allclose(m.component_inner(x, u), mink)  # the squared Riemannian norm, computed stably
    step = 1e-2 * u / m.component_inner(x, u).sqrt()  # Riemannian norm 0.01
    y = m.retr(x, step)
    assert float(_on_hyperboloid(y, 2.0)) < 1e-9
    # a retraction: the exponential map to first order (their end points differ by O(|step|^2))
    moved, gap = space.dist(x, y).detach(), space.dist(y, m.expmap(x, step)).detach()
    assert torch.allclose(moved, torch.full_like(moved, 1e-2), rtol=0.02) and float(gap.max()) < 1e-3
    assert float(m.inner(y, m.transp(x, y, u), y).detach().abs().max()) < 1e-9  # transported onto y's tangent space
    far = space.expmap0(torch.tensor([[30.0, 0, 0, 0]]))
    capped = m.projx(far.double())
    assert float(space.dist(space.origin(1, 4, like=capped), capped).detach()) == pytest.approx(MAX_RADIUS / 2**0.5, rel=1e-6)
    # far from the origin in float32, geoopt's own step turns NaN; this one does not
    x32 = space.expmap0(torch.tensor([[9.0 / 2**0.5, 0, 0, 0]]))
    g = m.egrad2rgrad(x32, torch.tensor([[1e3, -1e3, 5.0, 1.0, 1.0]]))
    step = -0.05 * g / m.component_inner(x32, g).sqrt()
    assert bool(torch.isfinite(m.retr(x32, step)).all()) and float(m.component_inner(x32, g).detach()) > 0


def test_the_recommender_holds_hgcf_inits_on_the_hyperboloid_and_picks_riemannian_adam():
    data = planted(num_users=30, num_items=20, per_user=6).split(seed=0)
    cfg = _cfg("model.curvature=2.0", "model.init_scale=0.05", "train.score_params={curvature: 2.0}")
    seed_everything(0)
    model = build_rec_model(cfg, data)
    w = model.embedding.weight
    assert isinstance(w, geoopt.ManifoldParameter) and isinstance(w.manifold, BoundedLorentz)
    assert w.shape == (50, 9) and float(w.manifold.k) == pytest.approx(0.5)
    assert float(_on_hyperboloid(w.detach(), 2.0)) < 1e-5
    tangent = model.backbone.space.logmap0(w.detach()).detach()  # HGCF's init: exp0 of U(-init_scale, init_scale)
    assert float(tangent.abs().max()) <= 0.05 + 1e-5 and float(tangent.abs().max()) > 0.04
    assert type(build_optimizer(model, "auto")).__name__ == "RiemannianAdam"
    assert model.first_layer[0] is model.embedding  # weight_decay_on: first_layer decays the ID table


def test_hgcf_learns_a_planted_graph_and_stays_on_the_hyperboloid():
    data = planted(num_users=80, num_items=60, per_user=12).split(seed=0)
    cfg = _cfg("train.weight_decay=1e-4")
    seed_everything(0)
    model = build_rec_model(cfg, data)
    before = evaluate(model, data, "test")["recall@10"]
    res = Trainer.from_config(cfg.train, progress=None).fit(model, LinkTask(data, cfg))
    losses = [h["loss"] for h in res.history]
    assert losses[-1] < 0.5 * losses[0], losses
    assert res.test["recall@10"] > before + 0.2, (before, res.test)
    w = model.embedding.weight.detach()
    assert isinstance(model.embedding.weight, geoopt.ManifoldParameter)
    assert float(_on_hyperboloid(w, 1.0)) < 1e-4  # RiemannianAdam retracts onto the hyperboloid after every step
    users, items = model.embeddings(data.graph)
    assert float(_on_hyperboloid(torch.cat([users, items]), 1.0)) < 1e-4


@pytest.mark.parametrize("granularity", ["step", "node"])
def test_hop_sampling_trains_hgcf(granularity):
    data = planted(num_users=30, num_items=20, per_user=6).split(seed=0)
    cfg = _cfg("train.epochs=3", "train.hop_sampling.enabled=true", f"train.hop_sampling.granularity={granularity}")
    seed_everything(0)
    model = build_rec_model(cfg, data)
    assert isinstance(model.backbone, HopSampling) and isinstance(model.embedding.weight, geoopt.ManifoldParameter)
    res = Trainer.from_config(cfg.train, progress=None).fit(model, LinkTask(data, cfg))
    assert res.epochs == 3 and all(torch.isfinite(torch.tensor(h["loss"])) for h in res.history)
    assert torch.equal(model.embeddings(data.graph)[0], model.embeddings(data.graph)[0])  # full depth in evaluation


def test_hgcf_trains_on_sampled_subgraphs():
    data = planted(num_users=60, num_items=40, per_user=10).split(seed=0)
    cfg = _cfg("train.epochs=6", "train.sampler=neighbor", "train.num_neighbors=[4, 4]")
    seed_everything(0)
    model = build_rec_model(cfg, data)
    res = Trainer.from_config(cfg.train, progress=None).fit(model, LinkTask(data, cfg))
    assert res.history[-1]["loss"] < res.history[0]["loss"]
    assert float(_on_hyperboloid(model.embedding.weight.detach(), 1.0)) < 1e-4


def test_settings_that_cannot_work_are_refused_with_their_names():
    data = planted(num_users=30, num_items=20, per_user=6).split(seed=0)
    with pytest.raises(ValueError, match="curvature -1 .*train.score_params.curvature.*curvature -2 .*model.curvature"):
        build_rec_model(_cfg("model.curvature=2.0"), data)
    with pytest.raises(ValueError, match="score 'lorentz_sqdist' takes points on a hyperboloid, but LightGCN"):
        build_rec_model(resolve_rec_config("lightgcn", None, ["train.score=lorentz_sqdist"]), data)
    backbone = build_model("hgcf", 8, 8)
    with pytest.raises(ValueError, match="inputs='both': HGCF takes points on a manifold"):
        BipartiteRecommender(30, 20, backbone, 8, inputs="both", user_features=(torch.randn(30, 3), None))
    model = BipartiteRecommender(30, 20, backbone, 8, scorer=DotScore())
    out = model(data.graph)
    b = torch.tensor([0, 1])
    with pytest.raises(ValueError, match=r"reg_weight=0.001 \(train.reg_weight\) is an L2 penalty on Euclidean"):
        model.loss(out, b, b + 30, (b + 31).view(2, 1), kind="margin", reg_weight=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_hgcf_trains_on_cuda_in_float32():
    data = planted(num_users=60, num_items=40, per_user=10).split(seed=0)
    cfg = _cfg("train.epochs=5", "train.device=cuda", "train.hop_sampling.enabled=true")
    seed_everything(0)
    model = build_rec_model(cfg, data)
    res = Trainer.from_config(cfg.train, progress=None).fit(model, LinkTask(data, cfg))
    w = model.embedding.weight
    assert w.device.type == "cuda" and w.dtype == torch.float32 and bool(torch.isfinite(w).all())
    assert float(_on_hyperboloid(w.detach(), 1.0)) < 1e-4 and res.history[-1]["loss"] < res.history[0]["loss"]
