"""GESM's structure-based regularisation: linked nodes get similar embeddings."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class StructureRegularizer(nn.Module):
    r"""Hinge between linked and random pairs on a fixed sample of edges.

    A fraction ``sample_rate`` of the entries of P (self-loops included) is drawn once per
    graph, with the same number of random "negative" nodes. With
    :math:`s^+ = \sigma(z_i^\top z_j)` for sampled edges and :math:`s^- = \sigma(z_i^\top z_n)`
    for negatives:

    .. math::
        L = \operatorname{mean}\,\max\big(0,\; \beta (1 - s^+) - (1 - \beta)(1 - s^-)\big)

    With the default :math:`\beta = 1` this is the mean of :math:`1 - s^+`.
    """

    def __init__(self, sample_rate: float = 0.05, beta: float = 1.0, seed: int | None = None):
        super().__init__()
        if not 0 < sample_rate <= 1:
            raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}")
        self.sample_rate, self.beta, self.seed = sample_rate, beta, seed
        # The seed of the edge sample, drawn from torch's generator on the first forward pass when
        # ``seed`` is None; a buffer, so a checkpoint restores the same sample on resume.
        self.register_buffer("sample_seed", torch.tensor(-1 if seed is None else seed, dtype=torch.int64))
        self._key: tuple | None = None
        self._pos: Tensor | None = None
        self._neg: Tensor | None = None

    def _sample(self, edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
        key = (edge_index.data_ptr(), edge_index.shape[1], num_nodes)
        if key != self._key:
            if int(self.sample_seed) < 0:
                self.sample_seed.fill_(int(torch.randint(0, 2**31 - 1, ())))
            gen = torch.Generator()
            gen.manual_seed(int(self.sample_seed))
            size = max(1, int(edge_index.size(1) * self.sample_rate))
            pick = torch.randperm(edge_index.size(1), generator=gen)[:size]
            self._pos = edge_index[:, pick.to(edge_index.device)]
            if size <= num_nodes:
                neg = torch.randperm(num_nodes, generator=gen)[:size]
            else:
                neg = torch.randint(0, num_nodes, (size,), generator=gen)
            self._neg = neg.to(edge_index.device)
            self._key = key
        return self._pos, self._neg

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints written before the sample's seed was kept: draw it again on the next forward
        state_dict.setdefault(prefix + "sample_seed", torch.tensor(-1, dtype=torch.int64))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, z: Tensor, edge_index: Tensor) -> Tensor:
        pos, neg = self._sample(edge_index, z.size(0))
        # one gather (its backward zero-fills a z-sized gradient once, not three times)
        zi, zj, zn = z[torch.cat([pos[1], pos[0], neg])].split([pos.size(1), pos.size(1), neg.numel()])
        s_pos = torch.sigmoid((zi * zj).sum(-1))
        s_neg = torch.sigmoid((zi * zn).sum(-1))
        return torch.clamp(self.beta * (1 - s_pos) - (1 - self.beta) * (1 - s_neg), min=0).mean()
