import math

import numpy as np
import pytest
import torch
from torch_geometric.nn.models import LightGCN as PyGLightGCN

from graphrec.config.rec import resolve_rec_config
from graphrec.models import MODELS, build_model
from graphrec.models.bipartite import BipartiteRecommender
from graphrec.models.lightgcn import LightGCNPropagation
from graphrec.models.xsimgcl import info_nce, uniform_noise
from graphrec.tasks.link import build_rec_model

from fixtures import random_graph, run_rec

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny graphs: one thread is fastest


def test_registered_with_validated_parameters():
    assert "xsimgcl" in MODELS and not MODELS["xsimgcl"].supports_steps
    m = build_model("xsimgcl", 8, 8)
    assert (m.num_layers, m.eps, m.cl_weight, m.tau, m.cl_layer) == (2, 0.2, 0.2, 0.2, 1)
    assert not list(m.parameters())  # no weights on ID embeddings
    assert isinstance(m.prop, LightGCNPropagation)
    with pytest.raises(ValueError, match="cl_layer"):
        build_model("xsimgcl", 8, 8, K=2, cl_layer=3)
    with pytest.raises(ValueError, match="model.tau"):
        build_model("xsimgcl", 8, 8, tau=0)


@pytest.mark.parametrize("K", [1, 2, 3])
def test_eval_is_noise_free_lightgcn_without_layer_zero(K):
    ei = random_graph()
    ref = PyGLightGCN(30, 16, K)
    x = ref.embedding.weight.detach()
    m = build_model("xsimgcl", 16, 16, K=K, eps=0.5).eval()
    out = m(x, ei)
    # PyG's LightGCN averages layers 0..K: remove layer 0 to get the mean of layers 1..K
    expected = (ref.get_embedding(ei).detach() * (K + 1) - x) / K
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.equal(m(x, ei), out)  # deterministic
    torch.manual_seed(0)
    assert not torch.allclose(m.train()(x, ei), out, atol=1e-3)  # training adds noise


def test_noise_has_the_configured_norm_and_the_sign_of_its_input():
    h = torch.randn(50, 16)
    h[0, :3] = 0.0
    noise = uniform_noise(h, 0.3)
    nonzero = h != 0
    assert torch.all(torch.sign(noise[nonzero]) == torch.sign(h[nonzero]))
    assert torch.all(noise[~nonzero] == 0)
    assert torch.allclose(noise[1:].norm(dim=-1), torch.full((49,), 0.3), atol=1e-6)


def test_training_forward_follows_the_layer_recursion():
    ei, x = random_graph(), torch.randn(30, 8)
    m = build_model("xsimgcl", 8, 8, K=3, eps=0.1, cl_layer=2).train()
    torch.manual_seed(3)
    out = m(x, ei)
    torch.manual_seed(3)
    prop, h, layers = LightGCNPropagation(), x, []
    for _ in range(3):
        h = prop(h, ei)
        h = h + torch.sign(h) * torch.nn.functional.normalize(torch.rand_like(h), dim=-1) * 0.1
        layers.append(h)
    assert torch.allclose(out, sum(layers) / 3, atol=1e-6)
    assert torch.allclose(m._views[1], layers[1], atol=1e-6)


def test_info_nce_matches_a_direct_computation():
    g = torch.Generator().manual_seed(1)
    a, p, tau = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g), 0.2
    expected = 0.0
    for r in range(5):
        sims = [float(torch.dot(a[r], p[s]) / (a[r].norm() * p[s].norm())) / tau for s in range(5)]
        expected -= sims[r] - math.log(sum(math.exp(v) for v in sims))
    assert info_nce(a, p, tau).item() == pytest.approx(expected / 5, rel=1e-5)


def test_contrastive_loss_uses_the_batch_groups_and_gradients_flow():
    ei = random_graph()
    U, V = 12, 18  # nodes 0..11 users, 12..29 items (edges are arbitrary here: only the shapes matter)
    rec = BipartiteRecommender(U, V, build_model("xsimgcl", 8, 8, K=2, cl_weight=0.5, tau=0.3), 8)
    rec.train()
    out = rec(ei)
    users, items = torch.tensor([0, 3, 3, 7]), torch.tensor([12, 20, 25, 20])
    loss = rec.auxiliary_loss(users, items)
    final, view = rec.backbone._views
    u, i = torch.tensor([0, 3, 7]), torch.tensor([12, 20, 25])
    expected = 0.5 * (info_nce(final[u], view[u], 0.3) + info_nce(final[i], view[i], 0.3))
    assert torch.allclose(loss, expected)
    assert torch.equal(final, out)
    (out[users] * out[items]).sum().add(loss).backward()
    grad = rec.embedding.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    with pytest.raises(ValueError, match="depends on the batch"):
        rec.auxiliary_loss()
    rec.eval()
    rec(ei)
    with pytest.raises(RuntimeError, match="training mode"):
        rec.auxiliary_loss(users, items)


def test_trainer_adds_the_contrastive_loss_and_other_models_keep_theirs(inter):
    data = inter.split(seed=0)
    U = data.num_users
    u, i = data.train[0, :64], data.train[1, :64] + U
    j = torch.randint(data.num_items, (64, 1)) + U
    losses = {}
    for w in (0.0, 0.3):
        cfg = resolve_rec_config("xsimgcl", None, [f"model.cl_weight={w}"])
        torch.manual_seed(0)
        model = build_rec_model(cfg, data).train()
        torch.manual_seed(1)  # the same noise for both
        out = model(data.graph)
        losses[w] = model.loss(out, u, i, j).item()
    final, view = model.backbone._views
    uu, ii = torch.unique(u), torch.unique(i)
    cl = 0.3 * (info_nce(final[uu], view[uu], 0.2) + info_nce(final[ii], view[ii], 0.2)).item()
    assert cl > 0 and losses[0.3] - losses[0.0] == pytest.approx(cl, rel=1e-4)
    # GESM's batch-independent regulariser still goes through the no-argument hook
    cfg = resolve_rec_config("gesm", None, ["model.heads=2", "model.hidden=8", "model.K=3"])
    gesm = build_rec_model(cfg, data).train()
    out = gesm(data.graph)
    assert gesm.auxiliary_loss(u, i) is not None and gesm.backbone.auxiliary_loss() is not None


@pytest.mark.parametrize("sampler", [[], ["train.sampler=neighbor", "train.num_neighbors=[5, 5]"]])
def test_xsimgcl_fits_end_to_end(inter, sampler):
    data = inter.split(seed=0)
    cfg = resolve_rec_config("xsimgcl", None, ["train.epochs=10", "train.eval_every=5", "train.lr=0.01",
                                               "train.batch_size=256", "model.cl_weight=0.01"] + sampler)  # fmt: skip
    model, res = run_rec(data, cfg, seed=0)
    assert np.isfinite(res.history[-1]["loss"]) and res.test["recall@20"] > 0.2
    users, items = model.embeddings(data.graph)
    assert users.shape == (data.num_users, 64) and torch.isfinite(items).all()
