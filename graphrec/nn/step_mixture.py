"""Mixture of random-walk steps (GSM / GESM): concatenate :math:`P^k H` for k = 0..K-1."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from graphrec.nn import fused
from graphrec.nn.functional import dropout
from graphrec.nn.hop_sampling import max_steps
from graphrec.nn.propagation import Propagation


class StepMixture(nn.Module):
    r"""Concatenation of the propagated states

    .. math::
        \mathrm{SM}(H) = \big\Vert_{k=0}^{K-1} P^k H, \qquad H_0 = H,\; H_k = P H_{k-1}

    computed iteratively (O(K |E| h)); :math:`P^k` is never formed. ``num_steps`` is K,
    the number of blocks. With ``steps=k`` (an int, or one value per node) only blocks
    0..k-1 are filled; later blocks are zero, so the layer that reads the mixture sees the
    same feature positions at every depth.

    Args:
        num_blocks: K, the number of concatenated blocks (hops 0..K-1).
        normalization: see :class:`~graphrec.nn.propagation.Propagation`.
    """

    def __init__(self, num_blocks: int, normalization: str = "random_walk"):
        super().__init__()
        if num_blocks < 1:
            raise ValueError(f"need at least one block, got {num_blocks}")
        self.num_steps = num_blocks
        self.prop = Propagation(normalization)

    def out_channels(self, in_channels: int) -> int:
        return self.num_steps * in_channels

    def forward(
        self, h: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None, steps: Tensor | int | None = None
    ) -> Tensor:
        k_max = max_steps(steps, self.num_steps)
        if k_max < 1:
            raise ValueError("the step mixture needs at least one block (steps >= 1)")
        blocks = [h]
        for _ in range(k_max - 1):
            blocks.append(self.prop(blocks[-1], edge_index, edge_weight))
        if isinstance(steps, Tensor):
            # Node i keeps blocks j < steps[i].
            keep = torch.arange(k_max, device=h.device).view(1, -1) < steps.to(h.device).view(-1, 1)
            blocks = [b * keep[:, j : j + 1].to(b.dtype) for j, b in enumerate(blocks)]
        blocks += [h.new_zeros(h.shape)] * (self.num_steps - k_max)
        return torch.cat(blocks, dim=-1)

    def extra_repr(self) -> str:
        return f"K={self.num_steps}"


class StepMixtureLinear(nn.Module):
    r"""The step mixture followed by dropout and one linear layer, without materialising
    the K-block concatenation.

    Equal to ``Linear(dropout(StepMixture(h)))`` with the same weights, computed as
    :math:`\sum_k \mathrm{dropout}(P^k H)\, W_k + b`. Without dropout (evaluation, or
    ``dropout=0``) the product is reassociated, :math:`P^k (H W_k)`, and evaluated by
    Horner's rule on the narrow projected matrices:
    :math:`Y_0 + P(Y_1 + P(Y_2 + \dots))` with :math:`Y_k = H W_k`, so propagation runs on
    ``out_channels`` columns instead of ``in_channels``.

    The parameters live in ``self.lin`` (an ``nn.Linear(K * in_channels, out_channels)``),
    laid out exactly as for the concatenation.
    """

    def __init__(self, in_channels: int, out_channels: int, num_blocks: int, dropout: float = 0.0,
                 normalization: str = "random_walk"):  # fmt: skip
        super().__init__()
        self.mixture = StepMixture(num_blocks, normalization)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.dropout = dropout
        self.lin = nn.Linear(num_blocks * in_channels, out_channels)
        nn.init.xavier_normal_(self.lin.weight)
        nn.init.zeros_(self.lin.bias)

    @property
    def num_steps(self) -> int:
        return self.mixture.num_steps

    def block_weights(self) -> Tensor:
        """``[K, in_channels, out_channels]``: W_k for each block."""
        w = self.lin.weight.view(self.out_channels, self.num_steps, self.in_channels)
        return w.permute(1, 2, 0)

    def forward(
        self, h: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None, steps: Tensor | int | None = None
    ) -> Tensor:
        k_max = max_steps(steps, self.num_steps)
        if k_max < 1:
            raise ValueError("the step mixture needs at least one block (steps >= 1)")
        W = self.block_weights()[:k_max]
        prop = self.mixture.prop
        per_node = isinstance(steps, Tensor)
        if per_node:
            keep = torch.arange(k_max, device=h.device).view(1, -1) < steps.to(h.device).view(-1, 1)
        drop = self.training and self.dropout > 0
        if drop and not per_node and fused.supports(h, self.lin.weight):
            host = prop.host_arrays(edge_index, h.size(0), edge_weight)
            if host is not None and host[0][2].dtype == np.float32:
                # dropout, projection and the backward's gradient sums in fused passes
                return fused.mixture_dropout_linear(h, self.lin.weight, *host, k_max, self.dropout) + self.lin.bias
        if drop or per_node:
            Wt = self.lin.weight.view(self.out_channels, self.num_steps, self.in_channels)  # W_k^T = Wt[:, k]
            out = None
            state = h
            for k in range(k_max):
                if k > 0:
                    state = prop(state, edge_index, edge_weight)
                if drop and fused.supports(state, Wt[:, k]):
                    y = fused.dropout_linear(state, Wt[:, k], self.dropout)  # one pass instead of ~12
                else:
                    y = dropout(state, self.dropout, self.training) @ W[k]
                if per_node:
                    y = y * keep[:, k : k + 1].to(y.dtype)
                out = y if out is None else out + y
            return out + self.lin.bias
        # Horner's rule on the projected blocks.
        Y = (h @ W.permute(1, 0, 2).reshape(self.in_channels, -1)).view(h.size(0), k_max, -1)
        out = Y[:, k_max - 1]
        for k in range(k_max - 2, -1, -1):
            out = Y[:, k] + prop(out, edge_index, edge_weight)
        return out + self.lin.bias

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, K={self.num_steps}, dropout={self.dropout}"
