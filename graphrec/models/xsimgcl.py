"""XSimGCL (Yu et al., TKDE 2023): LightGCN propagation with noise, and cross-layer contrast."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.models.lightgcn import LightGCNPropagation
from graphrec.models.params import XSimGCLParams
from graphrec.models.registry import Backbone, register


def info_nce(anchor: Tensor, positive: Tensor, tau: float) -> Tensor:
    r"""InfoNCE with cosine similarity: row ``r`` of ``anchor`` against every row of ``positive``,
    row ``r`` being its positive and the others its negatives.

    :math:`-\frac{1}{n} \sum_r \log \frac{\exp(\cos(a_r, p_r) / \tau)}{\sum_s \exp(\cos(a_r, p_s) / \tau)}`
    """
    a, p = F.normalize(anchor, dim=-1), F.normalize(positive, dim=-1)
    logits = a @ p.t() / tau
    return F.cross_entropy(logits, torch.arange(a.size(0), device=a.device))


def uniform_noise(h: Tensor, eps: float) -> Tensor:
    r"""XSimGCL's perturbation of ``h``: :math:`\mathrm{sign}(h) \odot \epsilon \frac{u}{\|u\|_2}`,
    :math:`u \sim U(0, 1)^d` per row, so every row of the noise has L2 norm ``eps`` and each
    entry the sign of the matching entry of ``h`` (the noise keeps every row in its orthant)."""
    return torch.sign(h) * F.normalize(torch.rand_like(h), dim=-1) * eps


@register("xsimgcl", XSimGCLParams)
class XSimGCL(Backbone):
    r"""XSimGCL: LightGCN propagation with uniform noise, contrasting layer l* with the output.

    Training forward, from :math:`E_0` (the inputs) for :math:`k = 1..K`:

    .. math::
        E'_k = \hat A E_{k-1}, \qquad
        E_k = E'_k + \mathrm{sign}(E'_k) \odot \epsilon \frac{U_k}{\|U_k\|_2}, \qquad
        E = \frac{1}{K} \sum_{k=1}^{K} E_k

    with :math:`\hat A = D^{-1/2} A D^{-1/2}` (LightGCN's operator,
    :class:`~graphrec.models.lightgcn.LightGCNPropagation`) and :math:`U_k` uniform noise on
    [0, 1) normalised per row. As in the paper and its reference code (SELFRec), the mean
    drops layer 0 (the inputs), the noise of layer k feeds layer k + 1, and the contrastive
    view is the noisy :math:`E_{l^*}`. In evaluation mode there is no noise: the output is the
    mean of :math:`\hat A^k E_0` over k = 1..K.

    The contrastive loss (:meth:`batch_auxiliary_loss`) is
    ``cl_weight * sum(InfoNCE(E[g], E_{l*}[g], tau))`` over index groups ``g`` of the last
    training forward's rows; on the user-item graph the trainer passes the batch's unique
    users and its unique positive items (the reference code's choice), contrasted separately.

    Args:
        K: propagation layers (paper: 2-3).
        eps: noise norm per row (paper: 0.2 on dense data sets).
        cl_weight: lambda, the weight of the contrastive loss (paper: 0.2 on Yelp2018 and
            Amazon-Kindle).
        tau: InfoNCE temperature (paper: 0.2).
        cl_layer: l*, the contrasted layer (paper: 1).

    With ``in_channels != out_channels`` a linear map ``in -> out`` is applied first, as in
    :class:`~graphrec.models.lightgcn.LightGCN`.
    """

    def __init__(self, in_channels: int, out_channels: int, K: int = 2, eps: float = 0.2,
                 cl_weight: float = 0.2, tau: float = 0.2, cl_layer: int = 1):  # fmt: skip
        super().__init__()
        if not 1 <= cl_layer <= K:
            raise ValueError(f"need 1 <= cl_layer <= K, got cl_layer={cl_layer}, K={K}")
        self.num_layers, self.eps, self.cl_weight, self.tau, self.cl_layer = K, eps, cl_weight, tau, cl_layer
        self.prop = LightGCNPropagation()
        self.lin = nn.Linear(in_channels, out_channels) if in_channels != out_channels else None
        self._views: tuple[Tensor, Tensor] | None = None

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        if self.lin is not None:
            x = self.lin(x)
        noisy = self.training and self.eps > 0
        h, total, view = x, None, None
        for k in range(1, self.num_layers + 1):
            h = self.prop(h, edge_index, edge_weight)
            if noisy:
                h = h + uniform_noise(h, self.eps)
            total = h if total is None else total + h
            if k == self.cl_layer:
                view = h
        out = total / self.num_layers
        self._views = (out, view) if self.training else None
        return out

    def batch_auxiliary_loss(self, groups: Sequence[Tensor]) -> Tensor:
        """``cl_weight`` times the summed InfoNCE of each index group (rows of the last training
        forward's output), between the output and the layer-``cl_layer`` embedding."""
        if self._views is None:
            raise RuntimeError("the contrastive loss needs a forward pass in training mode first")
        out, view = self._views
        loss = out.new_zeros(())
        for g in groups:
            if g.numel() > 1:
                loss = loss + info_nce(out[g], view[g], self.tau)
        return self.cl_weight * loss

    def extra_repr(self) -> str:
        return f"K={self.num_layers}, eps={self.eps}, cl_weight={self.cl_weight}, tau={self.tau}, cl_layer={self.cl_layer}"
