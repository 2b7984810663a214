"""LightGCN (He et al., 2020) as a K-step propagation backbone."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphrec.models.params import LightGCNParams
from graphrec.models.registry import Backbone, register
from graphrec.nn.hop_sampling import max_steps
from graphrec.nn.propagation import Propagation


class LightGCNPropagation(Propagation):
    r"""LightGCN's operator :math:`D^{-1/2} A D^{-1/2}` *without* self-loops, cached as CSR.

    Same caching and backward as :class:`~graphrec.nn.Propagation`; only the
    normalisation differs (GCN's ``symmetric`` adds self-loops, LightGCN does not).
    """

    def __init__(self):
        super().__init__("symmetric_no_loops")


@register("lightgcn", LightGCNParams)
class LightGCN(Backbone):
    r"""LightGCN: :math:`E = \frac{1}{K+1} \sum_{k=0}^{K} \hat A^k E_0` with
    :math:`\hat A = D^{-1/2} A D^{-1/2}` (no self-loops, no weights, no non-linearity).

    On ID embeddings (``in_channels == out_channels``) the layer has no parameters, as in
    the paper. With other sizes, a linear map ``in -> out`` is applied first, so the
    module also serves feature-based tasks. ``steps=k`` returns the mean of layers 0..k
    (per node when ``steps`` is a tensor), so :class:`~graphrec.nn.HopSampling` applies.
    """

    supports_steps = True

    def __init__(self, in_channels: int, out_channels: int, K: int):
        super().__init__()
        self.num_steps = K
        self.prop = LightGCNPropagation()
        self.lin = nn.Linear(in_channels, out_channels) if in_channels != out_channels else None

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None, steps=None) -> Tensor:
        if self.lin is not None:
            x = self.lin(x)
        k_max = max_steps(steps, self.num_steps)
        h, total = x, x
        sums = [x] if isinstance(steps, Tensor) else None
        for _ in range(k_max):
            h = self.prop(h, edge_index, edge_weight)
            total = total + h
            if sums is not None:
                sums.append(total)
        if sums is None:
            return total / (k_max + 1)
        k = steps.to(x.device).view(-1)
        stacked = torch.stack(sums, 0)  # [k_max + 1, N, F]: running sums of layers 0..j
        picked = stacked.gather(0, k.view(1, -1, 1).expand(1, *stacked.shape[1:])).squeeze(0)
        return picked / (k.to(x.dtype) + 1).view(-1, 1)

    def extra_repr(self) -> str:
        return f"K={self.num_steps}"
