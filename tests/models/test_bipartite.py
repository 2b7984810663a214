import pytest
import torch
from torch_geometric.nn.models import LightGCN as PyGLightGCN

from graphrec.models import MODELS, build_model
from graphrec.models.bipartite import BipartiteRecommender
from graphrec.nn import HopSampling

from fixtures import random_graph

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny graphs: one thread is fastest


def test_registered_with_the_k_step_contract():
    assert MODELS["lightgcn"].supports_steps and not MODELS["mf"].supports_steps
    assert build_model("lightgcn", 8, 8).num_steps == 3
    with pytest.raises(ValueError, match="model.K"):
        build_model("lightgcn", 8, 8, K=0)
    with pytest.raises(ValueError, match="unknown key"):
        build_model("mf", 8, 8, hidden=3)


def test_lightgcn_matches_torch_geometric():
    ei = random_graph()
    for K in (1, 2, 3):
        ref = PyGLightGCN(30, 16, K)
        ours = build_model("lightgcn", 16, 16, K=K)
        x = ref.embedding.weight
        assert torch.allclose(ours(x, ei), ref.get_embedding(ei), atol=1e-6)
    assert not list(build_model("lightgcn", 16, 16).parameters())  # no weights on ID embeddings
    assert build_model("lightgcn", 8, 16)(torch.randn(30, 8), ei).shape == (30, 16)


def test_lightgcn_steps_and_hop_sampling():
    ei, x = random_graph(), torch.randn(30, 8)
    m = build_model("lightgcn", 8, 8, K=4)
    assert torch.allclose(m(x, ei, steps=0), x)
    assert torch.allclose(m(x, ei, steps=4), m(x, ei))
    steps = torch.randint(0, 5, (30,))
    per_node = m(x, ei, steps=steps)
    for k in range(5):
        sel = steps == k
        assert torch.allclose(per_node[sel], m(x, ei, steps=k)[sel], atol=1e-6)
    hs = HopSampling(m, granularity="node")
    hs.train()
    hs(x, ei)
    assert isinstance(hs.last_steps, torch.Tensor) and hs.last_steps.min() >= 1
    hs.eval()
    assert torch.allclose(hs(x, ei), m(x, ei))
    with pytest.raises(ValueError, match="requested 5 steps"):
        m(x, ei, steps=5)


def test_lightgcn_gradient_flows_through_the_cached_operator():
    ei = random_graph()
    x = torch.randn(30, 8, requires_grad=True)
    m = build_model("lightgcn", 8, 8, K=2)
    m(x, ei).pow(2).sum().backward()
    ref_x = x.detach().clone().requires_grad_(True)
    ref = PyGLightGCN(30, 8, 2)
    ref.embedding.weight = torch.nn.Parameter(ref_x)
    ref.get_embedding(ei).pow(2).sum().backward()
    assert torch.allclose(x.grad, ref.embedding.weight.grad, atol=1e-5)


@pytest.mark.parametrize("name, params", [
    ("mf", {}), ("lightgcn", {"K": 2}), ("gsm", {"hidden": 16, "K": 3}), ("gcn", {"hidden": 16}),
    ("gesm", {"hidden": 4, "heads": 2, "K": 3}), ("hopgcn", {"K": 2, "hidden": 16}),
])
def test_any_registered_backbone_runs_on_the_bipartiterandom_graph(name, params):
    U, V, d = 6, 9, 8
    ei = torch.tensor([[0, 1, 2, 3, 4, 5, 0], [6, 7, 8, 9, 10, 11, 14]])
    ei = torch.cat([ei, ei.flip(0)], 1)
    rec = BipartiteRecommender(U, V, build_model(name, d, d, **params), d, needs_graph=name != "mf")
    out = rec(ei)
    assert out.shape == (U + V, d) and torch.isfinite(out).all()
    out[:U].sum().backward()
    assert rec.embedding.weight.grad is not None


def test_store_features_as_inputs():
    U, V, d = 4, 5, 8
    ux, ucat = torch.randn(U, 3), torch.tensor([[1, 0], [2, 1], [0, 1], [1, 2]])
    ix = torch.randn(V, 2)
    rec = BipartiteRecommender(U, V, build_model("mf", d, d), d, needs_graph=False, inputs="features",
                               user_features=(ux, ucat), item_features=(ix, None))  # fmt: skip
    assert rec.embedding is None
    out = rec(torch.zeros(2, 0, dtype=torch.long), n_id=torch.tensor([0, 5, 8]))
    assert out.shape == (3, d)
    # users with the same features get the same input
    same = BipartiteRecommender(2, 1, build_model("mf", d, d), d, inputs="features",
                                user_features=(torch.ones(2, 1), None), item_features=None)  # fmt: skip
    e = same.ego()
    assert torch.allclose(e[0], e[1]) and torch.all(e[2] == 0)
    with pytest.raises(ValueError, match="needs node features"):
        BipartiteRecommender(2, 1, build_model("mf", d, d), d, inputs="both")


def test_embeddings_are_copies_and_the_batch_loss_matches_per_row_lookups():
    U, V, d = 5, 7, 4
    ei = torch.tensor([[0, 1, 2, 3, 4], [5, 6, 7, 8, 11]])
    ei = torch.cat([ei, ei.flip(0)], 1)
    rec = BipartiteRecommender(U, V, build_model("mf", d, d), d, needs_graph=False)
    users, items = rec.embeddings(ei)
    assert not users.requires_grad
    users.add_(1.0)  # must not write into the model
    assert torch.equal(rec.embedding.weight[:U], rec.embeddings(ei)[0])
    out = rec(ei)
    u, i, j = torch.tensor([0, 1, 1]), torch.tensor([5, 6, 6]), torch.tensor([[7, 8], [9, 10], [11, 5]])
    loss = rec.loss(out, u, i, j, reg_weight=0.1)
    s_pos = (out[u] * out[i]).sum(-1, keepdim=True)
    s_neg = (out[u].unsqueeze(1) * out[j]).sum(-1)
    reg = 0.1 * rec.embedding.weight[torch.cat([u, i, j.view(-1)])].pow(2).sum() / (2 * 3)
    assert torch.allclose(loss, -torch.nn.functional.logsigmoid(s_pos - s_neg).mean() + reg)


def test_softmax_loss_is_cross_entropy_over_the_positive_and_its_negatives():
    import torch.nn.functional as F

    from graphrec.models.bipartite import pair_loss

    g = torch.Generator().manual_seed(0)
    pos, neg = torch.randn(6, generator=g), torch.randn(6, 5, generator=g)
    logits = torch.cat([pos[:, None], neg], 1) / 0.2
    expected = F.cross_entropy(logits, torch.zeros(6, dtype=torch.long))
    assert torch.allclose(pair_loss("softmax", pos, neg, temperature=0.2), expected, atol=1e-6)
    # one negative at temperature 1 is BPR: -log(e^p / (e^p + e^n)) = -log sigmoid(p - n)
    assert torch.allclose(pair_loss("softmax", pos, neg[:, :1]), pair_loss("bpr", pos, neg[:, :1]), atol=1e-6)
    with pytest.raises(ValueError, match="bpr, bce, softmax or margin"):
        pair_loss("hinge", pos, neg)


def test_cosine_softmax_training_ranks_a_planted_structure():
    from graphrec.config.rec import resolve_rec_config
    from graphrec.nn.score import CosineScore
    from graphrec.tasks.link import build_rec_model, fit_link

    from fixtures import planted

    data = planted().split(seed=0)
    over = ["train.epochs=30", "train.eval_every=30", "train.batch_size=256", "train.lr=0.01", "train.select=last"]
    fits = {}
    for name, extra in (("softmax", ["train.loss=softmax", "train.score=cosine", "train.temperature=0.1",
                                     "train.num_negatives=8"]), ("untrained", ["train.epochs=1", "train.lr=1e-9"])):  # fmt: skip
        cfg = resolve_rec_config("mf", None, over + extra)
        torch.manual_seed(0)
        model = build_rec_model(cfg, data)
        if name == "softmax":
            assert isinstance(model.scorer, CosineScore)
        fits[name] = fit_link(data, model, cfg, keep_state=False).test["ndcg@10"]
    assert fits["softmax"] > fits["untrained"] + 0.2, fits
