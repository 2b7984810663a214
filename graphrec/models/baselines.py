"""Classic GNN baselines built from PyG layers: GCN, GAT, GraphSAGE, and the K-step
propagation models SGC, APPNP and a K-layer GCN (``hopgcn``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GATConv, GCNConv, SAGEConv
from torch_geometric.nn.resolver import activation_resolver

from graphrec.models.params import (
    APPNPParams,
    GATParams,
    GCNParams,
    HopGCNParams,
    SAGEParams,
    SGCParams,
)
from graphrec.models.registry import Backbone, register
from graphrec.nn.hop_sampling import max_steps, select_steps
from graphrec.nn.input_dropout import InputDropout
from graphrec.nn.propagation import Propagation


@register("gcn", GCNParams)
class GCN(Backbone):
    """Two-layer GCN (Kipf & Welling, 2017)."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int, dropout: float, act: str):
        super().__init__()
        self.input_dropout = InputDropout(dropout)
        # Normalised once per graph (cached by graph identity, so inductive use stays correct).
        self.norm = Propagation("symmetric")
        self.conv1 = GCNConv(in_channels, hidden, normalize=False)
        self.conv2 = GCNConv(hidden, out_channels, normalize=False)
        self.act = activation_resolver(act)
        self.dropout = dropout

    @property
    def first_layer(self) -> nn.Module:
        return self.conv1

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        ei, w = self.norm.weighted_edges(edge_index, x.size(0), edge_weight)
        x = self.input_dropout(x)
        x = self.act(self.conv1(x, ei, w))
        x = F.dropout(x, self.dropout, self.training)
        return self.conv2(x, ei, w)


@register("gat", GATParams)
class GAT(Backbone):
    """Graph attention network (Veličković et al., 2018); output heads averaged."""

    def __init__(self, in_channels, out_channels, hidden, heads, out_heads, dropout, attn_dropout,
                 num_layers, residual, act):  # fmt: skip
        super().__init__()
        self.input_dropout = InputDropout(dropout)
        self.convs = nn.ModuleList()
        dim = in_channels
        for _ in range(num_layers - 1):
            self.convs.append(GATConv(dim, hidden, heads=heads, dropout=attn_dropout, residual=residual))
            dim = hidden * heads
        self.convs.append(
            GATConv(dim, out_channels, heads=out_heads, concat=False, dropout=attn_dropout, residual=residual)
        )
        self.act = activation_resolver(act)
        self.dropout = dropout

    @property
    def first_layer(self) -> nn.Module:
        return self.convs[0]

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        x = self.input_dropout(x)
        for conv in self.convs[:-1]:
            x = self.act(conv(x, edge_index))
            x = F.dropout(x, self.dropout, self.training)
        return self.convs[-1](x, edge_index)


@register("sage", SAGEParams)
class GraphSAGE(Backbone):
    """Two-layer GraphSAGE (Hamilton et al., 2017), full batch."""

    def __init__(self, in_channels, out_channels, hidden, dropout, aggr, act):
        super().__init__()
        # SAGEConv indexes rows of x, which a sparse CSR input does not support.
        self.input_dropout = InputDropout(dropout, sparse_output=False)
        self.conv1 = SAGEConv(in_channels, hidden, aggr=aggr)
        self.conv2 = SAGEConv(hidden, out_channels, aggr=aggr)
        self.act = activation_resolver(act)
        self.dropout = dropout

    @property
    def first_layer(self) -> nn.Module:
        return self.conv1

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        x = self.input_dropout(x)
        x = self.act(self.conv1(x, edge_index))
        x = F.dropout(x, self.dropout, self.training)
        return self.conv2(x, edge_index)


@register("sgc", SGCParams)
class SGC(Backbone):
    """Simplified graph convolution (Wu et al., 2019): a linear model on Â^K X.

    The propagated features Â^k X for k = 0..K do not depend on the weights, so they are
    computed once per graph and reused every epoch; for the same reason no gradient reaches
    the inputs (``learns_inputs = False``): to learn ID embeddings through K linear
    propagation steps, use ``lightgcn``, its trainable counterpart.
    """

    supports_steps = True

    learns_inputs = False

    def __init__(self, in_channels: int, out_channels: int, K: int):
        super().__init__()
        self.num_steps = K
        self.prop = Propagation("symmetric")
        self.lin = nn.Linear(in_channels, out_channels)
        self._key: tuple | None = None
        self._states: list[Tensor] = []

    @property
    def first_layer(self) -> nn.Module:
        return self.lin

    def forward(self, x, edge_index, edge_weight=None, steps=None) -> Tensor:
        k = max_steps(steps, self.num_steps)
        key = (x.data_ptr(), x._version, edge_index.data_ptr(), edge_index.shape[1])
        if key != self._key:
            states = [x]
            with torch.no_grad():
                for _ in range(self.num_steps):
                    states.append(self.prop(states[-1], edge_index, edge_weight))
            self._states, self._key = states, key
        return self.lin(select_steps(self._states[: k + 1], steps))


@register("appnp", APPNPParams)
class APPNPNet(Backbone):
    """Predict then propagate (Klicpera et al., 2019): an MLP, then K steps of personalised PageRank
    :math:`H^{t+1} = (1-\\alpha) \\hat A H^t + \\alpha H^0`."""

    supports_steps = True

    def __init__(self, in_channels, out_channels, hidden, dropout, K, alpha, edge_dropout, act):
        super().__init__()
        self.num_steps = K
        self.alpha = alpha
        self.edge_dropout = edge_dropout
        self.input_dropout = InputDropout(dropout)
        self.lin1 = nn.Linear(in_channels, hidden)
        self.lin2 = nn.Linear(hidden, out_channels)
        self.act = activation_resolver(act)
        self.dropout = dropout
        self.prop = Propagation("symmetric")

    @property
    def first_layer(self) -> nn.Module:
        return self.lin1

    def _step(self, h: Tensor, edge_index: Tensor, edge_weight: Tensor | None) -> Tensor:
        if self.training and self.edge_dropout > 0:
            ei, w = self.prop.weighted_edges(edge_index, h.size(0), edge_weight)
            w = F.dropout(w, self.edge_dropout, True)
            out = torch.zeros_like(h).index_add_(0, ei[1], h[ei[0]] * w.view(-1, 1))
        else:
            out = self.prop(h, edge_index, edge_weight)
        return (1 - self.alpha) * out + self.alpha * self._h0

    def forward(self, x, edge_index, edge_weight=None, steps=None) -> Tensor:
        x = self.input_dropout(x)
        h = self.act(self.lin1(x))
        h = self.lin2(F.dropout(h, self.dropout, self.training))
        self._h0 = h
        states = [h]
        for _ in range(max_steps(steps, self.num_steps)):
            states.append(self._step(states[-1], edge_index, edge_weight))
        return select_steps(states, steps)


@register("hopgcn", HopGCNParams)
class HopGCN(Backbone):
    """K-layer GCN between an input and an output linear layer, so any prefix of its
    layers is a valid model (used for depth studies and hop sampling)."""

    supports_steps = True

    def __init__(self, in_channels, out_channels, K, hidden, dropout, act):
        super().__init__()
        self.num_steps = K
        self.input_dropout = InputDropout(dropout)
        self.lin_in = nn.Linear(in_channels, hidden)
        self.norm = Propagation("symmetric")
        self.convs = nn.ModuleList(GCNConv(hidden, hidden, normalize=False) for _ in range(K))
        self.lin_out = nn.Linear(hidden, out_channels)
        self.act = activation_resolver(act)
        self.dropout = dropout

    @property
    def first_layer(self) -> nn.Module:
        return self.lin_in

    def forward(self, x, edge_index, edge_weight=None, steps=None) -> Tensor:
        ei, w = self.norm.weighted_edges(edge_index, x.size(0), edge_weight)
        h = self.act(self.lin_in(self.input_dropout(x)))
        states = [h]
        for conv in self.convs[: max_steps(steps, self.num_steps)]:
            h = F.dropout(states[-1], self.dropout, self.training)
            states.append(self.act(conv(h, ei, w)))
        h = select_steps(states, steps)
        return self.lin_out(F.dropout(h, self.dropout, self.training))
