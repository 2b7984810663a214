import pytest
import torch
from torch_geometric.utils import to_undirected

from graphrec.nn import EntityAttention, Propagation, StepMixture, StructureRegularizer
from graphrec.nn.propagation import random_walk_weights


def small_graph(n=12, m=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, m), generator=g)
    ei = ei[:, ei[0] != ei[1]]
    return to_undirected(ei, num_nodes=n), n


def dense_rw(ei, n):
    A = torch.zeros(n, n)
    A[ei[1], ei[0]] = 1.0  # row = target, column = source
    A = A + torch.eye(n)
    return A / A.sum(0, keepdim=True)  # Ã D^-1: columns sum to one


def dense_sym(ei, n):
    A = torch.zeros(n, n)
    A[ei[1], ei[0]] = 1.0
    A = A + torch.eye(n)
    d = A.sum(1).pow(-0.5)
    return d.view(-1, 1) * A * d.view(1, -1)


def test_random_walk_propagation_equals_dense_reference():
    ei, n = small_graph()
    h = torch.randn(n, 5)
    P = dense_rw(ei, n)
    assert torch.allclose(P.sum(0), torch.ones(n))
    assert torch.allclose(Propagation("random_walk")(h, ei), P @ h, atol=1e-6)


def test_symmetric_propagation_equals_dense_reference():
    ei, n = small_graph(seed=1)
    h = torch.randn(n, 4)
    assert torch.allclose(Propagation("symmetric")(h, ei), dense_sym(ei, n) @ h, atol=1e-6)


def test_step_mixture_equals_dense_powers_and_masks_blocks():
    ei, n = small_graph(seed=2)
    h = torch.randn(n, 3)
    P = dense_rw(ei, n)
    sm = StepMixture(4, "random_walk")
    out = sm(h, ei)
    ref = torch.cat([torch.linalg.matrix_power(P, k) @ h for k in range(4)], -1)
    assert torch.allclose(out, ref, atol=1e-5)
    # steps=2 keeps blocks 0..1 and zeroes the rest; per-node steps choose per row.
    assert torch.allclose(sm(h, ei, steps=2), torch.cat([ref[:, :6], torch.zeros(n, 6)], -1), atol=1e-5)
    per = torch.randint(1, 5, (n,))
    out = sm(h, ei, steps=per)
    for i in range(n):
        k = int(per[i])
        assert torch.allclose(out[i, : 3 * k], ref[i, : 3 * k], atol=1e-5)
        assert (out[i, 3 * k :] == 0).all()


def test_propagation_cache_follows_the_graph():
    ei1, n = small_graph(seed=3)
    ei2, _ = small_graph(seed=4)
    prop, h = Propagation("random_walk"), torch.randn(n, 2)
    prop(h, ei1)
    assert torch.allclose(prop(h, ei2), dense_rw(ei2, n) @ h, atol=1e-6)


def test_entity_attention_weights_sum_to_one_per_node():
    ei, n = small_graph(seed=5)
    ei_w, w = random_walk_weights(ei, n)
    att = EntityAttention(6, 4, heads=3, dropout=0.0).eval()
    x = torch.randn(n, 6)
    h, z = att(x, ei_w, w)
    assert h.shape == (n, 12) and z.shape == (n, 12)
    sums = torch.zeros(n, 3).index_add_(0, ei_w[1], att._alpha)
    assert torch.allclose(sums, torch.ones(n, 3), atol=1e-5)


def test_entity_attention_matches_formula():
    ei, n = small_graph(seed=6)
    ei_w, w = random_walk_weights(ei, n)
    att = EntityAttention(5, 2, heads=1).eval()
    x = torch.randn(n, 5)
    h, z = att(x, ei_w, w)
    P = dense_rw(ei, n)
    f1 = z @ att.att_i[0] + att.att_i_bias[0]
    f2 = z @ att.att_j[0] + att.att_j_bias[0]
    e = f1.view(-1, 1) * f2.view(1, -1) * P
    e = e.masked_fill(P == 0, float("-inf"))
    alpha = torch.softmax(e, dim=1)
    ref = torch.nn.functional.elu(alpha @ z + att.bias + z)
    assert torch.allclose(h, ref, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])  # float32 takes the fused kernels
def test_entity_attention_aggregation_and_gradients_match_message_passing(dtype):
    from graphrec.nn.entity_attention import _EdgeLayout, _HeadAggregate

    ei, n = small_graph(seed=9)
    ei_w, _ = random_walk_weights(ei, n)
    torch.manual_seed(0)
    alpha = torch.rand(ei_w.size(1), 3, dtype=dtype, requires_grad=True)
    z = torch.randn(n, 3, 4, dtype=dtype, requires_grad=True)
    out = _HeadAggregate.apply(alpha, z, _EdgeLayout(ei_w, n))
    src, dst = ei_w
    ref = torch.zeros(n, 3, 4, dtype=dtype).index_add(0, dst, alpha.unsqueeze(-1) * z[src])
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {}
    torch.testing.assert_close(out, ref, **tol)
    g = torch.randn(n, 3, 4, dtype=dtype)
    ga, gz = torch.autograd.grad(out, (alpha, z), g)
    ra, rz = torch.autograd.grad(ref, (alpha, z), g)
    torch.testing.assert_close(ga, ra, **tol)
    torch.testing.assert_close(gz, rz, **tol)


def test_structure_regularizer_sample_is_fixed_and_loss_bounded():
    ei, n = small_graph(seed=7)
    reg = StructureRegularizer(0.2, beta=1.0, seed=0)
    z = torch.randn(n, 8, requires_grad=True)
    l1 = reg(z, ei)
    pos = reg._pos.clone()
    reg(z, ei)
    assert torch.equal(pos, reg._pos)
    assert 0 <= l1.item() <= 1
    l1.backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    # Identical, large embeddings for every node make linked pairs score ~1: loss ~0.
    assert float(reg(torch.ones(n, 8) * 3, ei)) < 1e-6


def test_fused_mixture_linear_equals_linear_of_concatenation():
    from graphrec.nn.step_mixture import StepMixtureLinear

    ei, n = small_graph(seed=8)
    h = torch.randn(n, 5)
    fused = StepMixtureLinear(5, 3, num_blocks=4, dropout=0.5)
    ref = fused.lin(StepMixture(4, "random_walk")(h, ei))
    fused.eval()  # Horner's rule on the projected blocks
    assert torch.allclose(fused(h, ei), ref, atol=1e-5)
    concat2 = torch.cat([StepMixture(4)(h, ei)[:, :10], torch.zeros(n, 10)], -1)
    assert torch.allclose(fused(h, ei, steps=2), fused.lin(concat2), atol=1e-5)
    # Training path (block-wise sum) with dropout off, and per-node steps.
    fused.train()
    fused.dropout = 0.0
    per = torch.randint(1, 5, (n,))
    assert torch.allclose(fused(h, ei, steps=per), fused.lin(StepMixture(4)(h, ei, steps=per)), atol=1e-5)
    fused.dropout = 0.5
    torch.manual_seed(0)
    samples = torch.stack([fused(h, ei) for _ in range(400)]).mean(0)
    assert torch.allclose(samples, ref, atol=0.25)  # dropout is unbiased


def test_propagation_gradient_matches_dense():
    ei, n = small_graph(seed=9)
    P = dense_rw(ei, n)
    h = torch.randn(n, 4, requires_grad=True)
    g = torch.randn(n, 4)
    (Propagation("random_walk")(h, ei) * g).sum().backward()
    assert torch.allclose(h.grad, P.t() @ g, atol=1e-6)
