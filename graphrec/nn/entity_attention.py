"""GESM's multi-head entity attention."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.utils import softmax


class EntityAttention(MessagePassing):
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
        super().__init__(aggr="add", node_dim=0)
        self.in_channels, self.out_channels, self.heads, self.dropout = in_channels, out_channels, heads, dropout
        self.lin = Linear(in_channels, heads * out_channels, bias=False, weight_initializer="glorot")
        self.att_i = nn.Parameter(torch.empty(heads, out_channels))
        self.att_j = nn.Parameter(torch.empty(heads, out_channels))
        self.att_i_bias = nn.Parameter(torch.zeros(heads))
        self.att_j_bias = nn.Parameter(torch.zeros(heads))
        self.bias = nn.Parameter(torch.zeros(heads * out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
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
        z = self.lin(x).view(-1, H, C)
        f_i = (z * self.att_i).sum(-1) + self.att_i_bias  # [N, H], role of the target
        f_j = (z * self.att_j).sum(-1) + self.att_j_bias  # [N, H], role of the source
        src, dst = edge_index
        e = f_i[dst] * f_j[src] * edge_weight.view(-1, 1)
        alpha = softmax(e, dst, num_nodes=z.size(0))
        self._alpha = alpha
        alpha = F.dropout(alpha, self.dropout, self.training)
        out = self.propagate(edge_index, x=z, alpha=alpha, size=None)
        out = F.elu(out + self.bias.view(H, C) + z)
        return out.reshape(-1, H * C), z.reshape(-1, H * C)

    def message(self, x_j: Tensor, alpha: Tensor) -> Tensor:
        return alpha.unsqueeze(-1) * x_j

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, heads={self.heads}, dropout={self.dropout})"
