"""Matrix factorisation as a backbone: no message passing at all."""

from __future__ import annotations

from torch import Tensor, nn

from graphrec.models.params import MFParams
from graphrec.models.registry import Backbone, register


@register("mf", MFParams)
class MF(Backbone):
    r"""Matrix factorisation (BPR-MF, Rendle et al., 2009): the score of a pair is the dot
    product of its ID embeddings, so the backbone returns its input unchanged
    (``in_channels == out_channels``) or a linear map of it. ``edge_index`` is ignored."""

    needs_graph = False

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.lin = nn.Linear(in_channels, out_channels) if in_channels != out_channels else None

    def forward(self, x: Tensor, edge_index: Tensor | None = None, edge_weight: Tensor | None = None) -> Tensor:
        return self.lin(x) if self.lin is not None else x
