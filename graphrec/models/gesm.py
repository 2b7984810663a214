"""GSM and GESM (Shin et al., "Graphs, Entities, and Step Mixture")."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.models.params import GESMParams, GSMParams
from graphrec.models.registry import Backbone, register
from graphrec.nn.entity_attention import EntityAttention
from graphrec.nn.input_dropout import InputDropout
from graphrec.nn.propagation import Propagation
from graphrec.nn.step_mixture import StepMixtureLinear
from graphrec.nn.structure_reg import StructureRegularizer


@register("gsm", GSMParams)
class GSM(Backbone):
    r"""Graph step mixture: :math:`Z = \big(\Vert_{k=0}^{K-1} P^k \,\mathrm{ELU}(X W_0)\big) W_1`
    with :math:`P = \tilde A D^{-1}`."""

    supports_steps = True

    def __init__(self, in_channels, out_channels, hidden, K, dropout, input_dropout):
        super().__init__()
        self.input_dropout = InputDropout(input_dropout)
        self.lin = nn.Linear(in_channels, hidden)
        nn.init.xavier_uniform_(self.lin.weight)
        nn.init.zeros_(self.lin.bias)
        self.mixture = StepMixtureLinear(hidden, out_channels, K, dropout, "random_walk")

    @property
    def num_steps(self) -> int:
        return self.mixture.num_steps

    @property
    def first_layer(self) -> nn.Module:
        return self.lin

    def forward(self, x, edge_index, edge_weight=None, steps=None) -> Tensor:
        h = F.elu(self.lin(self.input_dropout(x)))
        return self.mixture(h, edge_index, edge_weight, steps)


@register("gesm", GESMParams)
class GESM(Backbone):
    r"""Graph entities with step mixture: multi-head entity attention over
    :math:`P = \tilde A D^{-1}`, then the step mixture and one linear layer, trained with
    a structure regulariser on a fixed sample of P's entries."""

    supports_steps = True

    def __init__(self, in_channels, out_channels, hidden, heads, K, dropout, attn_dropout,
                 reg_sample_rate, reg_beta, reg_weight):  # fmt: skip
        super().__init__()
        self.prop = Propagation("random_walk")
        self.attention = EntityAttention(in_channels, hidden, heads, attn_dropout)
        self.mixture = StepMixtureLinear(hidden * heads, out_channels, K, dropout, "random_walk")
        self.reg = StructureRegularizer(reg_sample_rate, reg_beta) if reg_weight > 0 else None
        self.reg_weight = reg_weight
        self._aux: Tensor | None = None
        self._as_input = InputDropout(0.0)  # sparse view of wide bag-of-words features

    @property
    def num_steps(self) -> int:
        return self.mixture.num_steps

    @property
    def first_layer(self) -> nn.Module:
        return self.attention

    def forward(self, x, edge_index, edge_weight=None, steps=None) -> Tensor:
        ei, w = self.prop.weighted_edges(edge_index, x.size(0), edge_weight)
        h, z = self.attention(self._as_input(x), ei, w)
        if self.reg is not None and self.training:
            self._aux = self.reg_weight * self.reg(z, ei)
        else:
            self._aux = None
        return self.mixture(h, edge_index, edge_weight, steps)

    def auxiliary_loss(self) -> Tensor | None:
        """The structure regulariser of the last training forward pass."""
        return self._aux
