"""Negative sampling for recommendation: items a user did not interact with, drawn per user."""

from __future__ import annotations

import torch
from torch import Tensor


class NegativeSampler:
    """Draws negative items per user: uniform or proportional to ``count^exponent``.

    With ``exclude`` (sorted ``user * num_items + item`` keys of the positives), draws that
    hit a positive are redrawn (up to ``max_rounds`` times; RecBole does the same).
    """

    def __init__(self, num_items: int, distribution: str = "uniform", counts: Tensor | None = None,
                 exponent: float = 0.75, exclude: Tensor | None = None, max_rounds: int = 20):  # fmt: skip
        if distribution not in ("uniform", "popularity"):
            raise ValueError(f"unknown negative distribution {distribution!r}; choose uniform or popularity")
        self.num_items = num_items
        self.distribution = distribution
        self.cdf = None
        if distribution == "popularity":
            if counts is None:
                raise ValueError("popularity negatives need the item counts")
            w = counts.double().clamp(min=0) ** exponent
            if float(w.sum()) <= 0:
                w = torch.ones(num_items, dtype=torch.float64)
            self.cdf = torch.cumsum(w / w.sum(), 0)
            self.cdf[-1] = 1.0
        self.exclude = exclude
        self.max_rounds = max_rounds

    def _draw(self, n: int) -> Tensor:
        if self.cdf is None:
            return torch.randint(self.num_items, (n,))
        return torch.searchsorted(self.cdf, torch.rand(n, dtype=torch.float64)).clamp_(max=self.num_items - 1)

    def sample(self, users: Tensor, num: int = 1) -> Tensor:
        """``[len(users), num]`` negative items."""
        u = users.view(-1, 1).expand(-1, num).reshape(-1)
        neg = self._draw(u.numel())
        if self.exclude is not None and self.exclude.numel():
            # Only the redrawn positions can still hit a positive: check those, not all draws again
            # (dense data, e.g. MovieLens-1M with 64 negatives, takes several rounds).
            todo = torch.arange(u.numel())
            for _ in range(self.max_rounds):
                todo = todo[self._is_positive(u[todo], neg[todo])]
                if todo.numel() == 0:
                    break
                neg[todo] = self._draw(todo.numel())
        return neg.view(-1, num)

    def _is_positive(self, u: Tensor, items: Tensor) -> Tensor:
        keys = u * self.num_items + items
        pos = torch.searchsorted(self.exclude, keys).clamp_(max=self.exclude.numel() - 1)
        return self.exclude[pos] == keys
