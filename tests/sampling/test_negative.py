"""Negative sampling: redraws only what hit a positive, and draws what the plain loop draws."""

import torch

from graphrec.sampling import NegativeSampler


def _reference(ns: NegativeSampler, users, num):
    """The plain loop: redraw every position that hits a positive, checking all draws each round."""
    u = users.view(-1, 1).expand(-1, num).reshape(-1)
    neg = ns._draw(u.numel())
    for _ in range(ns.max_rounds):
        bad = ns._is_positive(u, neg)
        if not bad.any():
            break
        neg[bad] = ns._draw(int(bad.sum()))
    return neg.view(-1, num)


def test_dense_positives_are_excluded_and_draws_match_the_plain_loop():
    num_users, num_items = 50, 40
    g = torch.Generator().manual_seed(0)
    dense = torch.rand(num_users, num_items, generator=g) < 0.6  # 60% positives: many redraw rounds
    dense[:, 0] = False  # every user has a negative to find
    u, i = dense.nonzero(as_tuple=True)
    keys = torch.sort(u * num_items + i).values
    ns = NegativeSampler(num_items, exclude=keys, max_rounds=200)
    users = torch.randint(0, num_users, (300,), generator=g)
    torch.manual_seed(1)
    got = ns.sample(users, 16)
    torch.manual_seed(1)
    want = _reference(ns, users, 16)
    assert torch.equal(got, want)
    assert got.shape == (300, 16) and not dense[users.view(-1, 1).expand(-1, 16), got].any()
