import math

import pytest
import torch
from torch_geometric.metrics import (
    LinkPredCoverage,
    LinkPredHitRatio,
    LinkPredMAP,
    LinkPredMRR,
    LinkPredNDCG,
    LinkPredPrecision,
    LinkPredRecall,
)

from graphrec.metrics import (
    CSR,
    RankingAccumulator,
    evaluate_topk,
    hits_from_topk,
    per_user_metrics,
)
from graphrec.nn.score import DotScore

PYG = {
    "recall": LinkPredRecall,
    "ndcg": LinkPredNDCG,
    "mrr": LinkPredMRR,
    "hit": LinkPredHitRatio,
    "map": LinkPredMAP,
    "precision": LinkPredPrecision,
}


def test_per_user_metrics_by_hand():
    # relevant items: 3 of them; hits at ranks 2 and 4 of the top 5
    hits = torch.tensor([[False, True, False, True, False]])
    m = per_user_metrics(hits, torch.tensor([3]), 5)
    assert m["recall"].item() == pytest.approx(2 / 3)
    assert m["precision"].item() == pytest.approx(2 / 5)
    assert m["hit"].item() == 1
    assert m["mrr"].item() == pytest.approx(1 / 2)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg"].item() == pytest.approx(dcg / idcg)
    assert m["map"].item() == pytest.approx((1 / 2 + 2 / 4) / 3)
    empty = per_user_metrics(torch.zeros(1, 5, dtype=torch.bool), torch.tensor([2]), 5)
    assert all(v.item() == 0 for v in empty.values())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_agree_with_torch_geometric(seed):
    g = torch.Generator().manual_seed(seed)
    n_users, n_items, k_max = 60, 40, 20
    topk = torch.stack([torch.randperm(n_items, generator=g)[:k_max] for _ in range(n_users)])
    # ground truth: 1..12 random items per user, planted partly inside the top-k
    users, items = [], []
    for u in range(n_users):
        n = int(torch.randint(1, 13, (1,), generator=g))
        pool = torch.cat([topk[u, : int(torch.randint(0, k_max, (1,), generator=g))], torch.randperm(n_items, generator=g)])
        chosen = list(dict.fromkeys(pool.tolist()))[:n]
        users += [u] * len(chosen)
        items += chosen
    truth = CSR.from_pairs(torch.tensor(users), torch.tensor(items), n_users)
    keys = torch.repeat_interleave(torch.arange(n_users), truth.row_lengths()) * n_items + truth.indices
    hits = hits_from_topk(topk, keys, torch.arange(n_users), n_items)
    acc = RankingAccumulator([5, 10, 20], n_items)
    acc.update(topk, hits, truth.row_lengths())
    ours = acc.result()
    label = torch.stack([torch.tensor(users), torch.tensor(items)])
    for k in (5, 10, 20):
        for name, cls in PYG.items():
            metric = cls(k)
            metric.update(topk, label)
            assert ours[f"{name}@{k}"] == pytest.approx(float(metric.compute()), abs=1e-6), f"{name}@{k}"
        cov = LinkPredCoverage(k, n_items)
        cov.update(topk, label)
        assert ours[f"coverage@{k}"] == pytest.approx(float(cov.compute()), abs=1e-6)


def _brute_force(scores, truth_sets, exclude_sets, k):
    """Reference: Python loops over users."""
    recalls, ndcgs = [], []
    for u, relevant in enumerate(truth_sets):
        if not relevant:
            continue
        s = scores[u].clone()
        for i in exclude_sets[u]:
            s[i] = -math.inf
        top = torch.argsort(s, descending=True, stable=True)[:k].tolist()
        h = [1.0 if (i in relevant and s[i] > -math.inf) else 0.0 for i in top]
        recalls.append(sum(h) / len(relevant))
        idcg = sum(1 / math.log2(r + 2) for r in range(min(len(relevant), k)))
        ndcgs.append(sum(x / math.log2(r + 2) for r, x in enumerate(h)) / idcg)
    return sum(recalls) / len(recalls), sum(ndcgs) / len(ndcgs)


def test_evaluate_topk_masks_excluded_items_and_is_chunk_invariant():
    g = torch.Generator().manual_seed(0)
    U, V, d = 37, 50, 8
    users_e, items_e = torch.randn(U, d, generator=g), torch.randn(V, d, generator=g)
    scores = users_e @ items_e.t()
    # exclude each user's 5 best-scored items: a masked item must never be counted
    ex_items = torch.topk(scores, 5, dim=1).indices
    exclude = CSR.from_pairs(torch.arange(U).repeat_interleave(5), ex_items.reshape(-1), U)
    # truth: 3 random items per user, one of them a masked one (it cannot be a hit)
    tr_u, tr_i = [], []
    for u in range(U):
        for i in {int(ex_items[u, 0]), *torch.randint(0, V, (2,), generator=g).tolist()}:
            tr_u.append(u)
            tr_i.append(i)
    truth = CSR.from_pairs(torch.tensor(tr_u), torch.tensor(tr_i), U)
    results = [evaluate_topk(DotScore().score_fn(users_e, items_e), truth, V, (5, 10), exclude, chunk_size=c)
               for c in (1, 7, None)]  # fmt: skip
    for r in results[1:]:
        assert r == pytest.approx(results[0])
    recall, ndcg = _brute_force(scores, [set(truth.row(u).tolist()) for u in range(U)],
                                [set(exclude.row(u).tolist()) for u in range(U)], 10)  # fmt: skip
    assert results[0]["recall@10"] == pytest.approx(recall)
    assert results[0]["ndcg@10"] == pytest.approx(ndcg)
    assert results[0]["users"] == U


def test_evaluate_topk_skips_users_without_relevant_items_and_checks_inputs():
    truth = CSR.from_pairs(torch.tensor([0, 0, 2]), torch.tensor([1, 1, 3]), 4)  # duplicate pair kept once
    assert truth.row_lengths().tolist() == [1, 0, 1, 0]
    perfect = lambda u: torch.nn.functional.one_hot(truth.indices[truth.indptr[u]], 5).float()  # noqa: E731
    r = evaluate_topk(perfect, truth, 5, ks=(1,))
    assert r["users"] == 2 and r["recall@1"] == 1.0 and r["ndcg@1"] == 1.0 and r["coverage@1"] == pytest.approx(2 / 5)
    with pytest.raises(ValueError, match="exceeds the number of items"):
        evaluate_topk(perfect, truth, 5, ks=(6,))
    with pytest.raises(ValueError, match="score_fn returned shape"):
        evaluate_topk(lambda u: torch.zeros(u.numel(), 4), truth, 5, ks=(1,))
    with pytest.raises(ValueError, match="unknown metric"):
        RankingAccumulator([1], 5, ["recall", "auc"])


def test_csr_union_and_bad_ids():
    a = CSR.from_pairs(torch.tensor([0, 1]), torch.tensor([2, 3]), 3)
    b = CSR.from_pairs(torch.tensor([0, 2]), torch.tensor([2, 0]), 3)
    u = a.union(b)
    assert [u.row(i).tolist() for i in range(3)] == [[2], [3], [0]]
    with pytest.raises(ValueError, match="user ids must be in"):
        CSR.from_pairs(torch.tensor([5]), torch.tensor([0]), 3)
