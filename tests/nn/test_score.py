"""The Scorer contract: pair scores, blocked all-item scores, and exact inner-product forms."""

import pytest
import torch

from graphrec.nn.score import (
    SCORERS,
    CosineScore,
    DotScore,
    NegSquaredEuclideanScore,
    Scorer,
    scorer_from_spec,
)

ALL = [DotScore, CosineScore, NegSquaredEuclideanScore]


def _emb(seed=0, users=7, items=50, d=5):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(users, d, generator=g, dtype=torch.float64), torch.randn(items, d, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("cls", ALL)
def test_score_all_equals_pairwise_scores_in_any_block_size(cls):
    u, items = _emb()
    s = cls()
    brute = torch.stack([torch.stack([s.score(u[b], items[n]) for n in range(items.size(0))]) for b in range(u.size(0))])
    assert torch.allclose(s.score_all(u, items), brute, atol=1e-10)
    s.block_items = 3  # the generic blocked path gives the same scores
    assert torch.allclose(Scorer.score_all(s, u, items), brute, atol=1e-10)
    assert s.score(u[:, None, :], items[None, :4, :]).shape == (7, 4)  # broadcasting: [B, k] negatives


@pytest.mark.parametrize("cls", ALL)
def test_inner_product_form_ranks_exactly_as_the_scorer(cls):
    u, items = _emb(1, items=200)
    s = cls()
    q, x = s.ip_transform(u, items)
    truth = s.score_all(u, items)
    ip = q @ x.t()
    assert torch.equal(torch.argsort(truth, dim=1, descending=True, stable=True)[:, :50],
                       torch.argsort(ip, dim=1, descending=True, stable=True)[:, :50])
    # the inner product differs from the score by a constant per user at most
    assert torch.allclose((ip - truth).std(1), torch.zeros(u.size(0), dtype=u.dtype), atol=1e-9)


def test_score_fn_scores_a_chunk_of_users_against_every_item():
    u, items = _emb(2)
    for s in (DotScore(), NegSquaredEuclideanScore()):
        fn = s.score_fn(u, items)
        users = torch.tensor([4, 0])
        assert torch.allclose(fn(users), s.score_all(u[users], items))


def test_specs_round_trip_and_unknown_names_fail():
    for cls in ALL:
        assert type(scorer_from_spec(cls().spec())) is cls
    assert type(scorer_from_spec(None)) is DotScore  # model folders written before scorers were recorded
    assert set(SCORERS) >= {"dot", "cosine", "neg_sq_euclidean"}
    with pytest.raises(ValueError, match="unknown scorer 'lorentz'"):
        scorer_from_spec({"name": "lorentz"})


def test_a_scorer_without_an_inner_product_form_says_so():
    class MaxScore(Scorer):
        name = "test_max"

        def score(self, u, i):
            return (u * i).max(-1).values

    u, items = _emb(3)
    s = MaxScore()
    assert s.ip_transform(u, items) is None
    assert s.score_all(u, items).shape == (7, 50)
