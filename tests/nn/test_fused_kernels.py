import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.nn import fused
from graphrec.nn.step_mixture import StepMixtureLinear

pytestmark = pytest.mark.skipif(not fused.AVAILABLE, reason="numba is not installed")


def _mask(n, c, p, seed):
    """The kept-and-scaled mask of ``dropout_linear`` for an (n, c) input, read back through
    an identity weight."""
    with torch.no_grad():
        return fused.dropout_linear(torch.ones(n, c), torch.eye(c), p, seed=seed)


def test_zero_dropout_is_the_plain_product_with_its_gradients():
    torch.manual_seed(0)
    x = torch.randn(300, 40, requires_grad=True)
    w = torch.randn(7, 40, requires_grad=True)
    g = torch.randn(300, 7)
    fused.dropout_linear(x, w, 0.0).backward(g)
    gx, gw = x.grad.clone(), w.grad.clone()
    x.grad = w.grad = None
    (x @ w.t()).backward(g)
    torch.testing.assert_close(gx, x.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gw, w.grad, rtol=1e-5, atol=1e-4)


def test_output_and_gradients_follow_one_mask():
    torch.manual_seed(1)
    n, c, p = 600, 48, 0.3
    m = _mask(n, c, p, seed=123)
    scale = 1 / (1 - p)
    values = torch.unique(m).tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(scale, rel=2**-14)  # p is rounded to 2**-16
    x = torch.randn(n, c, requires_grad=True)
    w = torch.randn(5, c, requires_grad=True)
    g = torch.randn(n, 5)
    y = fused.dropout_linear(x, w, p, seed=123)
    y.backward(g)
    gx, gw = x.grad.clone(), w.grad.clone()
    x.grad = w.grad = None
    ref = (x * m) @ w.t()
    ref.backward(g)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(gx, x.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gw, w.grad, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.7])
def test_drop_rate_and_independence(p):
    n, c = 1000, 200
    kept = _mask(n, c, p, seed=7) > 0
    total = n * c
    rate = 1 - kept.float().mean().item()
    assert abs(rate - p) < 5 * math.sqrt(p * (1 - p) / total)
    # neighbouring entries (same row, same column) are dropped independently
    both_row = (~kept[:, :-1] & ~kept[:, 1:]).float().mean().item()
    both_col = (~kept[:-1] & ~kept[1:]).float().mean().item()
    for both in (both_row, both_col):
        assert abs(both - p * p) < 6 * math.sqrt(p * p * (1 - p * p) / (total - n))
    # per-column and per-row rates do not drift (a chi-square over the 200 columns)
    col_drop = (~kept).sum(0).double()
    chi2 = ((col_drop - n * p) ** 2 / (n * p * (1 - p))).sum().item()
    assert chi2 < c + 6 * math.sqrt(2 * c)


def test_masks_differ_by_seed_and_repeat_with_torch_seed():
    x, w = torch.randn(256, 64), torch.randn(3, 64)
    assert not torch.equal(_mask(64, 64, 0.5, seed=1), _mask(64, 64, 0.5, seed=2))
    torch.manual_seed(5)
    a = fused.dropout_linear(x, w, 0.5)
    torch.manual_seed(5)
    b = fused.dropout_linear(x, w, 0.5)
    assert torch.equal(a, b)


def test_outputs_and_input_gradients_do_not_depend_on_the_thread_count():
    torch.manual_seed(2)
    x = torch.randn(1500, 96, requires_grad=True)
    w = torch.randn(6, 96, requires_grad=True)
    g = torch.randn(1500, 6)
    before = torch.get_num_threads()
    outs = []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            x.grad = w.grad = None
            y = fused.dropout_linear(x, w, 0.4, seed=99)
            y.backward(g)
            outs.append((y.detach().clone(), x.grad.clone(), w.grad.clone()))
    finally:
        torch.set_num_threads(before)
    for y, gx, gw in outs[1:]:
        assert torch.equal(y, outs[0][0]) and torch.equal(gx, outs[0][1])
        # the weight gradient is one BLAS product; its summation order may follow the threads
        torch.testing.assert_close(gw, outs[0][2], rtol=1e-5, atol=1e-4)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="columns"):
        fused.dropout_linear(torch.randn(4, 3), torch.randn(2, 5), 0.1)
    with pytest.raises(ValueError, match="probability"):
        fused.dropout_linear(torch.randn(4, 3), torch.randn(2, 3), 1.0)
    with pytest.raises(ValueError, match="float32"):
        fused.dropout_linear(
            torch.randn(4, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64), 0.1
        )


def test_csr_spmm_matches_scipy_on_any_thread_count():
    rng = np.random.default_rng(0)
    a = sp.random(700, 700, density=0.01, format="csr", random_state=rng, dtype=np.float32)
    h = torch.randn(700, 33)
    ref = torch.from_numpy(a @ h.numpy())
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            out = fused.csr_spmm(a.indptr, a.indices, a.data, h)
            torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    finally:
        torch.set_num_threads(before)


def test_threads_split_a_skewed_csr_by_stored_entries():
    # a user-item-like pattern: the first 100 rows hold 90% of the entries
    rng = np.random.default_rng(1)
    heavy = sp.random(100, 400, density=0.45, format="csr", random_state=rng, dtype=np.float32)
    light = sp.random(300, 400, density=0.0167, format="csr", random_state=rng, dtype=np.float32)
    a = sp.vstack([heavy, light]).tocsr()
    for parts in (2, 3):
        bounds = fused.split_bounds(a.shape[0], parts, a.indptr)
        assert bounds[0] == 0 and bounds[-1] == a.shape[0] and bounds == sorted(bounds)
        share = np.diff(a.indptr[bounds])
        assert share.max() - share.min() <= 2 * np.diff(a.indptr).max()  # balanced to a row's entries
        assert bounds[1] < 100  # an even row split would give the first part nearly everything
    h = torch.randn(400, 16)
    before = torch.get_num_threads()
    try:
        for threads in (2, 3):
            torch.set_num_threads(threads)
            torch.testing.assert_close(fused.csr_spmm(a.indptr, a.indices, a.data, h),
                                       torch.from_numpy(a @ h.numpy()), rtol=1e-5, atol=1e-5)  # fmt: skip
    finally:
        torch.set_num_threads(before)
    assert fused.split_bounds(10, 3) == [0, 3, 6, 10]


def test_step_mixture_training_pass_matches_the_unfused_layer_without_dropout_noise(monkeypatch):
    """With dropout active, the fused and the torch paths draw different masks; at p -> 0
    they must agree, and at p > 0 their outputs must have the same mean over many draws."""
    torch.manual_seed(3)
    n = 200
    ei = torch.randint(0, n, (2, 800))
    h = torch.randn(n, 32)
    layer = StepMixtureLinear(32, 4, num_blocks=3, dropout=0.5).train()
    with torch.no_grad():
        fused_mean = torch.stack([layer(h, ei) for _ in range(300)]).mean(0)
        monkeypatch.setattr(fused, "AVAILABLE", False)
        torch_mean = torch.stack([layer(h, ei) for _ in range(300)]).mean(0)
        exact = layer.eval()(h, ei)
    scale = exact.abs().mean()
    assert (fused_mean - exact).abs().mean() < 0.1 * scale
    assert (torch_mean - exact).abs().mean() < 0.1 * scale


@pytest.mark.parametrize("steps", [None, 2])
def test_fused_mixture_equals_the_blockwise_fused_path(monkeypatch, steps):
    """The whole-mixture kernel (hand-written backward) and the block-by-block kernels draw
    the same masks from the same torch seed, so outputs and gradients must agree."""
    torch.manual_seed(4)
    n = 300
    ei = torch.randint(0, n, (2, 1500))
    h0 = torch.randn(n, 24)
    layer = StepMixtureLinear(24, 5, num_blocks=4, dropout=0.4).train()
    g = torch.randn(n, 5)

    def run():
        h = h0.clone().requires_grad_(True)
        layer.zero_grad()
        torch.manual_seed(11)
        out = layer(h, ei, steps=steps)
        out.backward(g)
        return out.detach(), h.grad, layer.lin.weight.grad.clone(), layer.lin.bias.grad.clone()

    whole = run()
    monkeypatch.setattr(type(layer.mixture.prop), "host_arrays", lambda *a, **k: None)
    blockwise = run()
    for a, b in zip(whole, blockwise, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    if steps is not None:  # blocks past `steps` get no gradient
        assert whole[2].view(5, 4, 24)[:, steps:].abs().sum() == 0


def test_kernel_thread_count_follows_torch_unless_set():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert fused.get_num_threads() == 1
        fused.set_num_threads(3)
        assert fused.get_num_threads() == 3
        with pytest.raises(ValueError):
            fused.set_num_threads(0)
    finally:
        fused.set_num_threads(None)
        torch.set_num_threads(before)
    assert fused.get_num_threads() == before


def test_entity_attention_on_sparse_input_matches_dense_input():
    """A sparse CSR input takes the fused product with the cached transpose; outputs and
    weight gradients must equal those of the same features given densely."""
    from graphrec.nn import EntityAttention
    from graphrec.nn.propagation import random_walk_weights

    torch.manual_seed(6)
    n, f = 120, 50
    x = (torch.rand(n, f) < 0.1).float() * torch.rand(n, f)
    ei, w = random_walk_weights(torch.randint(0, n, (2, 500)), n)
    att = EntityAttention(f, 4, heads=3, dropout=0.0)
    grads = []
    for inp in (x, x.to_sparse_csr()):
        att.zero_grad()
        h, z = att(inp, ei, w)
        (h.square().sum() + z.sum()).backward()
        grads.append((h.detach(), z.detach(), att.lin.weight.grad.clone(), att.att_i.grad.clone()))
    assert att._input_transpose(x.to_sparse_csr()) is not None
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def _spmm_in_child(queue):
    a = sp.identity(300, format="csr", dtype=np.float32)
    h = torch.ones(300, 4)
    queue.put(float(fused.csr_spmm(a.indptr, a.indices, a.data, h).sum()))


def test_kernels_run_in_a_forked_child_after_the_parent_used_the_pool():
    import multiprocessing as mp

    fused.set_num_threads(2)
    try:
        a = sp.identity(300, format="csr", dtype=np.float32)
        fused.csr_spmm(a.indptr, a.indices, a.data, torch.ones(300, 4))  # parent starts its pool
        ctx = mp.get_context("fork")
        queue = ctx.Queue()
        child = ctx.Process(target=_spmm_in_child, args=(queue,))
        child.start()
        child.join(timeout=60)
        if child.is_alive():
            child.kill()
        assert child.exitcode == 0, "the child hung or failed"
        assert queue.get(timeout=5) == 1200.0
    finally:
        fused.set_num_threads(None)
