"""GESM's multi-head entity attention."""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.utils import softmax

from graphrec.nn import fused
from graphrec.nn.propagation import spmm


def _csr(crow: Tensor, col: Tensor, values: Tensor, n: int) -> Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, values, (n, n), check_invariants=False)


class _EdgeLayout:
    """An edge list as CSR by target (aggregation) and by source (its transpose), built once."""

    def __init__(self, edge_index: Tensor, n: int):
        src, dst = edge_index
        self.n = n
        self.order = torch.argsort(dst * n + src)  # edge order -> CSR order (rows = targets)
        self.crow = torch.zeros(n + 1, dtype=torch.long, device=edge_index.device)
        self.crow[1:] = torch.cumsum(torch.bincount(dst, minlength=n), 0)
        self.col = src[self.order]
        self.order_t = torch.argsort(src * n + dst)  # rows = sources
        self.crow_t = torch.zeros(n + 1, dtype=torch.long, device=edge_index.device)
        self.crow_t[1:] = torch.cumsum(torch.bincount(src, minlength=n), 0)
        self.col_t = dst[self.order_t]
        self.fused = fused.AVAILABLE and edge_index.device.type == "cpu"
        if self.fused:  # numpy views for the fused kernels
            self.np_crow, self.np_col = self.crow.numpy(), self.col.numpy()
            self.np_crow_t, self.np_col_t = self.crow_t.numpy(), self.col_t.numpy()


class _HeadAggregate(torch.autograd.Function):
    """``out[i, h] = sum_j alpha[(j->i), h] * z[j, h]`` as one sparse product per head.

    Equal to PyG's gather-multiply-scatter message passing, without materialising the
    ``[E, heads, channels]`` messages: the backward pass multiplies by the transposed
    pattern for ``z`` and samples ``g z^T`` on the pattern (``torch.sparse.sampled_addmm``)
    for ``alpha``. On CPU in float32 with numba, all heads go through one fused kernel
    (:func:`graphrec.nn.fused.head_spmm`, :func:`graphrec.nn.fused.head_sampled_dot`),
    which also skips the head-major copies of ``z`` and of the gradient.
    """

    @staticmethod
    def forward(ctx, alpha: Tensor, z: Tensor, layout: _EdgeLayout) -> Tensor:
        ctx.layout = layout
        if layout.fused and z.dtype == alpha.dtype == torch.float32:
            ctx.fused = True
            ctx.save_for_backward(alpha, z)
            return fused.head_spmm(layout.np_crow, layout.np_col, alpha[layout.order], z)
        ctx.fused = False
        n, heads = z.size(0), z.size(1)
        zt = z.permute(1, 0, 2).contiguous()  # [H, N, C]: one contiguous block per head
        a = alpha[layout.order]  # CSR order
        out = torch.stack([spmm(_csr(layout.crow, layout.col, a[:, h].contiguous(), n), zt[h]) for h in range(heads)])
        ctx.save_for_backward(alpha, zt)
        return out.permute(1, 0, 2)

    @staticmethod
    def backward(ctx, grad: Tensor):
        lay: _EdgeLayout = ctx.layout
        if ctx.fused:
            alpha, z = ctx.saved_tensors
            grad_alpha = grad_z = None
            if ctx.needs_input_grad[0]:
                grad_alpha = torch.empty_like(alpha)
                grad_alpha[lay.order] = fused.head_sampled_dot(lay.np_crow, lay.np_col, grad, z)
            if ctx.needs_input_grad[1]:
                grad_z = fused.head_spmm(lay.np_crow_t, lay.np_col_t, alpha[lay.order_t], grad)
            return grad_alpha, grad_z, None
        alpha, zt = ctx.saved_tensors
        n, heads = zt.size(1), zt.size(0)
        gt = grad.permute(1, 0, 2).contiguous()
        grad_alpha = grad_z = None
        if ctx.needs_input_grad[0]:
            pattern = _csr(lay.crow, lay.col, torch.ones(lay.col.numel(), dtype=zt.dtype, device=zt.device), n)
            vals = torch.stack([torch.sparse.sampled_addmm(pattern, gt[h], zt[h].t(), beta=0).values()
                                for h in range(heads)], dim=1)  # fmt: skip
            grad_alpha = torch.empty_like(alpha)
            grad_alpha[lay.order] = vals
        if ctx.needs_input_grad[1]:
            a_t = alpha[lay.order_t]
            grad_z = torch.stack([spmm(_csr(lay.crow_t, lay.col_t, a_t[:, h].contiguous(), n), gt[h])
                                  for h in range(heads)]).permute(1, 0, 2)  # fmt: skip
        return grad_alpha, grad_z, None


class EntityAttention(nn.Module):
    r"""Multiplicative multi-head attention over the entries of a propagation matrix P.

    For each head, with :math:`Z = X W` (Glorot, no bias):

    .. math::
        f^{(1)} = Z a_1 + b_1, \quad f^{(2)} = Z a_2 + b_2, \quad
        e_{ij} = f^{(1)}_i \, f^{(2)}_j \, P_{ij}, \quad
        \alpha_{ij} = \operatorname{softmax}_{j \in \mathcal N(i)} e_{ij}

    .. math::
        h_i = \mathrm{ELU}\Big(\sum_j \alpha_{ij} Z_j + b + Z_i\Big)

    The score is a product of two scalar projections scaled by :math:`P_{ij}`, not GAT's
    LeakyReLU of a concatenation; ``+ Z_i`` is a residual term. Heads are concatenated.

    Args:
        in_channels: input feature size.
        out_channels: size per head.
        heads: number of heads.
        dropout: dropout probability on the attention coefficients (PyTorch semantics).
    """

    def __init__(self, in_channels: int, out_channels: int, heads: int = 8, dropout: float = 0.0):
        super().__init__()
        self.in_channels, self.out_channels, self.heads, self.dropout = in_channels, out_channels, heads, dropout
        self.lin = Linear(in_channels, heads * out_channels, bias=False, weight_initializer="glorot")
        self.att_i = nn.Parameter(torch.empty(heads, out_channels))
        self.att_j = nn.Parameter(torch.empty(heads, out_channels))
        self.att_i_bias = nn.Parameter(torch.zeros(heads))
        self.att_j_bias = nn.Parameter(torch.zeros(heads))
        self.bias = nn.Parameter(torch.zeros(heads * out_channels))
        self._layout_key: tuple | None = None
        self._layout: _EdgeLayout | None = None
        self._xt_key: tuple | None = None
        self._xt: fused.CSRTranspose | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()
        # A 1x1 convolution to one output channel: Glorot bound over (out_channels, 1).
        bound = math.sqrt(6.0 / (self.out_channels + 1))
        nn.init.uniform_(self.att_i, -bound, bound)
        nn.init.uniform_(self.att_j, -bound, bound)
        nn.init.zeros_(self.att_i_bias)
        nn.init.zeros_(self.att_j_bias)
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor) -> tuple[Tensor, Tensor]:
        """Attend over the weighted edges of P (self-loops included).

        Returns ``(h, z)``: the attended output ``[N, heads * out]`` and the pre-attention
        projection ``z = X W`` of the same shape.
        """
        H, C = self.heads, self.out_channels
        # f = Z a = X (W a): scoring through the [in, 2H] folded weight avoids [N, H, C]
        # products and their gradients.
        w = self.lin.weight.view(H, C, -1)
        w_att = torch.cat([torch.einsum("hcf,hc->fh", w, self.att_i), torch.einsum("hcf,hc->fh", w, self.att_j)], 1)
        transpose = self._input_transpose(x)
        if transpose is not None:  # Z and f in one sparse product, with a cached X^T for the backward
            zf = fused.csr_matmul(x, torch.cat([self.lin.weight.t(), w_att], 1), transpose)
            z, f = zf[:, : H * C].reshape(-1, H, C), zf[:, H * C :]
        else:
            z = self.lin(x).view(-1, H, C)
            f = x @ w_att
        f_i = f[:, :H] + self.att_i_bias  # [N, H], role of the target
        f_j = f[:, H:] + self.att_j_bias  # [N, H], role of the source
        src, dst = edge_index
        e = f_i[dst] * f_j[src] * edge_weight.view(-1, 1)
        alpha = softmax(e, dst, num_nodes=z.size(0))
        self._alpha = alpha
        alpha = F.dropout(alpha, self.dropout, self.training)
        out = _HeadAggregate.apply(alpha, z, self._edge_layout(edge_index, z.size(0)))
        out = F.elu(out + self.bias.view(H, C) + z)
        return out.reshape(-1, H * C), z.reshape(-1, H * C)

    def _input_transpose(self, x: Tensor) -> fused.CSRTranspose | None:
        """The cached transpose of a constant sparse CSR input's pattern (None when the
        fused kernels do not apply)."""
        if not (fused.AVAILABLE and x.layout == torch.sparse_csr and x.device.type == "cpu"
                and x.dtype == torch.float32 and not x.requires_grad):  # fmt: skip
            return None
        crow, col = x.crow_indices(), x.col_indices()
        key = (crow.data_ptr(), col.data_ptr(), col.numel(), tuple(x.shape))
        if key != self._xt_key:
            self._xt_key, self._xt = key, fused.CSRTranspose(crow.numpy(), col.numpy(), x.size(1))
        return self._xt

    def _edge_layout(self, edge_index: Tensor, n: int) -> _EdgeLayout:
        key = (edge_index.data_ptr(), edge_index._version, edge_index.shape[1], n)
        if key != self._layout_key:
            self._layout_key, self._layout = key, _EdgeLayout(edge_index, n)
        return self._layout

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, heads={self.heads}, dropout={self.dropout})"
