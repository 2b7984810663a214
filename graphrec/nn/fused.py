"""Fused CPU kernels (numba) for the hot loop of the step mixture.

GESM's training step drops out each of its K blocks ``P^k H`` (``N x 512`` on Cora) and
multiplies it by a ``512 x classes`` slice of the output layer. Written with torch ops,
every block costs about a dozen passes over ``N x 512`` floats (random words, compare,
cast, scale, multiply, the skinny matrix products and their backward), and those passes,
not arithmetic, dominate the step on CPU. :func:`dropout_linear` does the same work in one
pass forward and one backward (about 1.7x faster per block on one thread). :func:`csr_spmm`
is the sparse-dense product of every propagation step, split by rows over threads.

The kernels release the GIL and run on a small thread pool sized by
``torch.get_num_threads()`` (or :func:`set_num_threads`); for :func:`dropout_linear`:

* the keep mask comes from a counter-based hash of ``(seed, row, column // 4)``
  (splitmix64, four 16-bit uniforms per 64-bit hash), computed inside the loop that uses
  it, so it does not depend on the number of threads; it is kept as one byte per entry
  for the backward pass;
* the drop rate is ``round(p * 2**16) / 2**16`` (within 2**-16 of ``p``) and kept values
  are scaled by the exact inverse keep rate, so the output is unbiased;
* the seed is drawn from torch's generator, so ``torch.manual_seed`` makes runs repeatable;
* the input gradient is computed row by row, so outputs and input gradients do not
  depend on the thread count either; the weight gradient is one BLAS product
  (``g^T`` times the stored dropped-out input).

numba is optional: :data:`AVAILABLE` is ``False`` without it and callers keep the torch
path (:func:`graphrec.nn.functional.dropout` followed by a matrix product).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

try:  # numba is optional; without it the torch ops are used
    from numba import njit

    AVAILABLE = True
except ImportError:  # pragma: no cover - exercised only where numba is missing
    AVAILABLE = False

_CHUNK = 256  # rows per unit of work handed to a thread by the dropout kernels

if AVAILABLE:
    _GOLDEN = np.uint64(0x9E3779B97F4A7C15)
    _M1 = np.uint64(0xBF58476D1CE4E5B9)
    _M2 = np.uint64(0x94D049BB133111EB)
    _S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
    _S16, _S32, _S48, _LOW16 = np.uint64(16), np.uint64(32), np.uint64(48), np.uint64(0xFFFF)

    @njit(inline="always", cache=True)
    def _hash64(seed, counter):
        """splitmix64 of ``seed + counter * golden``: 64 uniform bits."""
        z = seed + counter * _GOLDEN
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
        return z ^ (z >> _S31)

    @njit(inline="always", cache=True)
    def _draw_row(seed, i, threshold, keep):
        """Keep flags of row ``i``: entry c is kept when its 16-bit uniform (quarter ``c % 4``
        of the hash of word ``c // 4`` of the row) is at least ``threshold``."""
        C = keep.shape[1]
        words = C // 4
        base = np.uint64(i) * np.uint64(words + 1)
        for w in range(words):
            r = _hash64(seed, base + np.uint64(w))
            keep[i, 4 * w] = np.int64(r & _LOW16) >= threshold
            keep[i, 4 * w + 1] = np.int64((r >> _S16) & _LOW16) >= threshold
            keep[i, 4 * w + 2] = np.int64((r >> _S32) & _LOW16) >= threshold
            keep[i, 4 * w + 3] = np.int64(r >> _S48) >= threshold
        if 4 * words < C:
            r = _hash64(seed, base + np.uint64(words))
            for q in range(C - 4 * words):
                keep[i, 4 * words + q] = np.int64((r >> np.uint64(16 * q)) & _LOW16) >= threshold

    @njit(nogil=True, fastmath=True, cache=True)
    def _forward(x, wt, seed, threshold, scale, y, keep, xm, accumulate, ch0, ch1):
        """``y (+)= xm @ wt.T`` with ``xm = keep * scale * x``; ``keep`` (one byte per entry)
        is drawn here, and both are stored for the backward pass."""
        N, C = x.shape
        n_out = wt.shape[0]
        for ch in range(ch0, ch1):
            for i in range(ch * _CHUNK, min(N, (ch + 1) * _CHUNK)):
                _draw_row(seed, i, threshold, keep)
                for c in range(C):
                    xm[i, c] = x[i, c] * scale if keep[i, c] else np.float32(0.0)
                for o in range(n_out):
                    acc = np.float32(0.0)
                    for c in range(C):
                        acc += xm[i, c] * wt[o, c]
                    y[i, o] = y[i, o] + acc if accumulate else acc

    @njit(nogil=True, fastmath=True, cache=True)
    def _backward(wt, g, keep, scale, gx, accumulate, ch0, ch1):
        """``gx (+)= keep * scale * (g @ wt)`` (the weight gradient is one BLAS product,
        ``g^T xm``, outside)."""
        N, C = gx.shape
        n_out = wt.shape[0]
        row = np.empty(C, dtype=np.float32)
        for ch in range(ch0, ch1):
            for i in range(ch * _CHUNK, min(N, (ch + 1) * _CHUNK)):
                for c in range(C):
                    row[c] = np.float32(0.0)
                for o in range(n_out):
                    go = g[i, o]
                    for c in range(C):
                        row[c] += go * wt[o, c]
                if accumulate:
                    for c in range(C):
                        gx[i, c] += row[c] * scale if keep[i, c] else np.float32(0.0)
                else:
                    for c in range(C):
                        gx[i, c] = row[c] * scale if keep[i, c] else np.float32(0.0)

    @njit(nogil=True, fastmath=True, cache=True)
    def _csr_spmm(crow, col, val, h, out, r0, r1):
        C = h.shape[1]
        for i in range(r0, r1):
            for c in range(C):
                out[i, c] = 0.0
            for e in range(crow[i], crow[i + 1]):
                j, v = col[e], val[e]
                for c in range(C):
                    out[i, c] += v * h[j, c]

    @njit(nogil=True, fastmath=True, cache=True)
    def _head_spmm(crow, col, a, z, out, r0, r1):
        """``out[i, h] = sum_e a[e, h] * z[col[e], h]`` over the CSR row of i, every head."""
        H, C = z.shape[1], z.shape[2]
        for i in range(r0, r1):
            for h in range(H):
                for c in range(C):
                    out[i, h, c] = 0.0
            for e in range(crow[i], crow[i + 1]):
                j = col[e]
                for h in range(H):
                    v = a[e, h]
                    for c in range(C):
                        out[i, h, c] += v * z[j, h, c]

    @njit(nogil=True, fastmath=True, cache=True)
    def _head_sampled_dot(crow, col, g, z, out, r0, r1):
        """``out[e, h] = g[i, h] . z[col[e], h]`` for every stored entry e = (i, col[e])."""
        H, C = z.shape[1], z.shape[2]
        for i in range(r0, r1):
            for e in range(crow[i], crow[i + 1]):
                j = col[e]
                for h in range(H):
                    acc = np.float32(0.0)
                    for c in range(C):
                        acc += g[i, h, c] * z[j, h, c]
                    out[e, h] = acc


def _threshold(p: float) -> tuple[int, float]:
    t = round(p * 65536)
    return t, 65536 / (65536 - t)


_POOL: ThreadPoolExecutor | None = None
_POOL_PID: int | None = None
_THREADS: int | None = None


def set_num_threads(n: int | None) -> None:
    """Threads of the fused kernels; ``None`` (the default) follows ``torch.get_num_threads()``.

    Torch's OpenMP workers keep spinning for a while after each parallel op, so on a small
    machine a run is often fastest with torch on one thread and the kernels, which carry
    most of GESM's step, on all cores: ``torch.set_num_threads(1); set_num_threads(2)``.
    """
    global _THREADS
    if n is not None and n < 1:
        raise ValueError(f"need at least one thread, got {n}")
    _THREADS = n


def get_num_threads() -> int:
    """Threads the fused kernels use."""
    return _THREADS if _THREADS is not None else torch.get_num_threads()


def split_bounds(n: int, parts: int, crow: np.ndarray | None = None) -> list[int]:
    """``parts + 1`` increasing bounds over ``range(n)``: equal counts of rows, or with ``crow``
    (a CSR row pointer) equal counts of stored entries, each part within one row's entries of
    ``nnz / parts``."""
    if crow is None:
        return [n * t // parts for t in range(parts + 1)]
    nnz = int(crow[n])
    return [0, *(int(np.searchsorted(crow[: n + 1], nnz * t // parts)) for t in range(1, parts)), n]


def _run_chunks(kernel, nchunks: int, *args, crow: np.ndarray | None = None) -> None:
    """Run ``kernel(*args, ch0, ch1)`` over chunk ranges on :func:`get_num_threads`
    threads. The kernels release the GIL; a plain thread pool is used rather than numba's
    parallel backend, whose OpenMP runtime is not the one torch links and would spin
    against torch's threads.

    With ``crow`` (the row pointer of a CSR matrix whose rows are the chunks), each thread
    gets an equal share of stored entries rather than of rows: on a user-item graph the
    first half of the rows can hold two thirds of the entries, and an even row split then
    leaves one thread idle for a third of the product."""
    global _POOL, _POOL_PID
    threads = max(1, min(get_num_threads(), nchunks))
    if threads == 1:
        kernel(*args, 0, nchunks)
        return
    # a forked child inherits the pool object but not its threads: start a new one there
    if _POOL is None or _POOL._max_workers < threads or _POOL_PID != os.getpid():
        _POOL = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="graphrec-fused")
        _POOL_PID = os.getpid()
    bounds = split_bounds(nchunks, threads, crow)
    futures = [_POOL.submit(kernel, *args, bounds[t], bounds[t + 1]) for t in range(1, threads)]
    kernel(*args, bounds[0], bounds[1])
    for f in futures:
        f.result()


class _DropoutLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight_t: Tensor, p: float, seed: int) -> Tensor:
        t, scale = _threshold(p)
        xc, wc = x.detach().contiguous(), weight_t.detach().contiguous()
        y = torch.empty(x.size(0), weight_t.size(0), dtype=x.dtype)
        keep = torch.empty(x.shape, dtype=torch.bool)
        xm = torch.empty_like(xc)
        nchunks = (x.size(0) + _CHUNK - 1) // _CHUNK
        _run_chunks(_forward, nchunks, xc.numpy(), wc.numpy(), np.uint64(seed), t, np.float32(scale), y.numpy(),
                    keep.numpy(), xm.numpy(), False)  # fmt: skip
        ctx.save_for_backward(xm, wc, keep)
        ctx.scale = scale
        return y

    @staticmethod
    def backward(ctx, g: Tensor):
        xm, wt, keep = ctx.saved_tensors
        need_gx, need_gw = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        g = g.detach().contiguous()
        gx = gw = None
        if need_gx:
            gx = torch.empty_like(xm)
            nchunks = (xm.size(0) + _CHUNK - 1) // _CHUNK
            _run_chunks(_backward, nchunks, wt.numpy(), g.numpy(), keep.numpy(), np.float32(ctx.scale), gx.numpy(),
                        False)  # fmt: skip
        if need_gw:
            gw = g.t() @ xm
        return gx, gw, None, None


class _MixtureDropoutLinear(torch.autograd.Function):
    """``sum_k dropout(P^k h) W_k^T`` for k < k_max with autograd done by hand: the
    backward runs Horner's rule on the gradients, ``G_k = D_k + P^T G_{k+1}``, adding each
    block's dropout gradient ``D_k`` into the propagated buffer inside the kernel instead of
    in separate passes."""

    @staticmethod
    def forward(
        ctx, h: Tensor, weight: Tensor, op: tuple, op_t: tuple, k_max: int, p: float
    ) -> Tensor:
        n, C = h.shape
        n_out = weight.size(0)
        wt = (
            weight.detach().view(n_out, -1, C)[:, :k_max].permute(1, 0, 2).contiguous()
        )  # [k, O, C]
        t, scale = _threshold(p)
        nchunks = (n + _CHUNK - 1) // _CHUNK
        y = np.empty((n, n_out), dtype=np.float32)
        masked, keeps = [], []  # per block: the dropped-out input and its keep flags
        state = h.detach().contiguous().numpy()
        for k in range(k_max):
            if k > 0:
                nxt = np.empty_like(state)
                _run_chunks(_csr_spmm, n, *op, state, nxt, crow=op[0])
                state = nxt
            keep = np.empty(state.shape, dtype=np.bool_)
            xm = np.empty_like(state)
            seed = np.uint64(int(torch.randint(0, 2**62, (1,)).item()))
            _run_chunks(
                _forward, nchunks, state, wt[k].numpy(), seed, t, np.float32(scale), y, keep, xm, k > 0
            )
            masked.append(xm)
            keeps.append(keep)
        ctx.masked, ctx.keeps, ctx.wt = masked, keeps, wt
        ctx.op_t, ctx.scale, ctx.shape = op_t, scale, (n_out, weight.size(1) // C, C)
        return torch.from_numpy(y)

    @staticmethod
    def backward(ctx, g: Tensor):
        masked, keeps, wt, scale = ctx.masked, ctx.keeps, ctx.wt, np.float32(ctx.scale)
        n_out, K, C = ctx.shape
        n, k_max = masked[0].shape[0], len(masked)
        nchunks = (n + _CHUNK - 1) // _CHUNK
        g = g.detach().contiguous()
        gn = g.numpy()
        need_gh, need_gw = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        G = None
        for k in range(k_max - 1, -1, -1) if need_gh else ():
            if G is not None:
                nxt = np.empty_like(G)
                _run_chunks(_csr_spmm, n, *ctx.op_t, G, nxt, crow=ctx.op_t[0])
                G = nxt
            accumulate = G is not None
            if not accumulate:
                G = np.empty((n, C), dtype=np.float32)
            _run_chunks(_backward, nchunks, wt[k].numpy(), gn, keeps[k], scale, G, accumulate)
        grad_h = torch.from_numpy(G) if need_gh else None
        grad_w = None
        if need_gw:
            gt = g.t().contiguous()
            blocks = [gt @ torch.from_numpy(xm) for xm in masked]
            blocks += [g.new_zeros(n_out, C)] * (K - k_max)
            grad_w = torch.cat(blocks, dim=1)
        return grad_h, grad_w, None, None, None, None


def mixture_dropout_linear(
    h: Tensor, weight: Tensor, op: tuple, op_t: tuple, k_max: int, p: float
) -> Tensor:
    r""":math:`\sum_{k<k_{max}} \mathrm{dropout}(P^k h)\, W_k^\top` in training mode: the
    step mixture's blocks, each with its own dropout mask, through one linear layer
    (without its bias).

    Args:
        h: ``[N, C]`` float32 CPU input.
        weight: ``[O, K * C]``, the output layer's weight (``nn.Linear`` layout; block k is
            ``weight[:, k * C:(k + 1) * C]``).
        op, op_t: ``(crow, col, values)`` numpy arrays of P and of its transpose.
        k_max: blocks used (at most K).
        p: drop probability.
    """
    if not (supports(h, weight) and h.size(1) and weight.size(1) % h.size(1) == 0):
        raise ValueError(
            "mixture_dropout_linear needs numba, float32 2-D CPU tensors and a [O, K * C] weight"
        )
    if not 1 <= k_max <= weight.size(1) // h.size(1):
        raise ValueError(f"k_max must be in 1..{weight.size(1) // h.size(1)}, got {k_max}")
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    return _MixtureDropoutLinear.apply(h, weight, op, op_t, k_max, p)


def csr_spmm(crow, col, val, h: Tensor) -> Tensor:
    """``A @ h`` for a CSR matrix given as numpy arrays ``(crow, col, val)`` and a dense
    float32 CPU ``h``, split by rows over :func:`get_num_threads` threads (scipy's
    kernel is single-threaded)."""
    n = crow.shape[0] - 1
    hc = h.detach().contiguous().numpy()
    out = np.empty((n, hc.shape[1]), dtype=hc.dtype)
    _run_chunks(_csr_spmm, n, crow, col, val, hc, out, crow=crow)
    return torch.from_numpy(out)


class CSRTranspose:
    """The transpose of a CSR pattern ``(crow, col)`` with ``ncols`` columns, built once:
    ``crow``, ``col`` of the transposed pattern and ``perm``, the position in the original
    values of each transposed entry."""

    def __init__(self, crow: np.ndarray, col: np.ndarray, ncols: int):
        pattern = sp.csr_matrix((np.arange(col.shape[0]), col, crow), shape=(crow.shape[0] - 1, ncols)).tocsc()
        self.crow, self.col, self.perm = pattern.indptr, pattern.indices, pattern.data


class _CSRMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, values: Tensor, w: Tensor, crow: np.ndarray, col: np.ndarray, t: CSRTranspose) -> Tensor:
        vals = values.detach().contiguous().numpy()
        ctx.vals_t, ctx.t = vals[t.perm], t
        return csr_spmm(crow, col, vals, w)

    @staticmethod
    def backward(ctx, g: Tensor):
        t = ctx.t
        return None, csr_spmm(t.crow, t.col, ctx.vals_t, g), None, None, None


def csr_matmul(x: Tensor, w: Tensor, transpose: CSRTranspose) -> Tensor:
    """``x @ w`` for a constant sparse CSR ``x`` (no gradient) and a dense float32 ``w``,
    forward and backward through the threaded CSR kernel; ``transpose`` is
    ``CSRTranspose`` of ``x``'s pattern, kept by the caller, so the backward pass does not
    re-sort ``x`` every step as torch's sparse ``addmm`` does."""
    return _CSRMatmul.apply(x.values(), w, x.crow_indices().numpy(), x.col_indices().numpy(), transpose)


def head_spmm(crow: np.ndarray, col: np.ndarray, a: Tensor, z: Tensor) -> Tensor:
    """Multi-head sparse product: ``out[i, h] = sum_j A_h[i, j] z[j, h]`` where the heads
    share one CSR pattern ``(crow, col)`` and ``a`` holds their values, ``[nnz, H]`` in CSR
    order; ``z`` is ``[N, H, C]`` float32."""
    n = crow.shape[0] - 1
    zc = z.detach().contiguous().numpy()
    out = np.empty((n, zc.shape[1], zc.shape[2]), dtype=zc.dtype)
    _run_chunks(_head_spmm, n, crow, col, a.detach().contiguous().numpy(), zc, out, crow=crow)
    return torch.from_numpy(out)


def head_sampled_dot(crow: np.ndarray, col: np.ndarray, g: Tensor, z: Tensor) -> Tensor:
    """``[nnz, H]``: for every stored entry (i, j) of the pattern and every head,
    ``g[i, h] . z[j, h]`` (the gradient of :func:`head_spmm` with respect to ``a``)."""
    n = crow.shape[0] - 1
    out = np.empty((col.shape[0], z.shape[1]), dtype=np.float32)
    _run_chunks(
        _head_sampled_dot,
        n,
        crow,
        col,
        g.detach().contiguous().numpy(),
        z.detach().contiguous().numpy(),
        out,
        crow=crow,
    )
    return torch.from_numpy(out)


def supports(x: Tensor, weight_t: Tensor) -> bool:
    """Whether :func:`dropout_linear` has a fused kernel for these inputs."""
    return (
        AVAILABLE
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight_t.dtype == torch.float32
        and x.dim() == 2
        and weight_t.dim() == 2
    )


def dropout_linear(x: Tensor, weight_t: Tensor, p: float, seed: int | None = None) -> Tensor:
    r"""``dropout(x, p) @ weight_t.T`` in one fused pass (training mode).

    Args:
        x: ``[N, C]`` float32 CPU tensor.
        weight_t: ``[O, C]``, the weight in ``nn.Linear`` layout.
        p: drop probability (PyTorch semantics).
        seed: the mask's seed; drawn from torch's default generator when ``None``. The
            same seed gives the same mask for the same shape.
    """
    if not supports(x, weight_t):
        raise ValueError("dropout_linear needs numba and float32 2-D CPU tensors")
    if x.size(1) != weight_t.size(1):
        raise ValueError(f"x has {x.size(1)} columns but weight_t expects {weight_t.size(1)}")
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)).item())
    return _DropoutLinear.apply(x, weight_t, p, seed)
