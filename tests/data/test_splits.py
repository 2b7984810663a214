import numpy as np
import pytest
import torch

from graphrec.data.splits import (
    EdgeSplit,
    dedup_pairs,
    drop_cold,
    leave_one_out,
    random_split,
    time_split,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny graphs: one thread is fastest


def _log(n_per_user, seed=0, n_items=500):
    rng = np.random.default_rng(seed)
    users, items, times = [], [], []
    for u, n in enumerate(n_per_user):
        its = rng.choice(n_items, n, replace=False)
        users += [u] * n
        items += its.tolist()
        times += rng.integers(0, 10_000, n).tolist()
    return np.array(users), np.array(items), np.array(times)


def _pairs(e):
    return set(zip(e[0].tolist(), e[1].tolist(), strict=True))


@pytest.mark.parametrize("n, expected", [(10, (8, 1, 1)), (20, (16, 2, 2)), (5, (3, 1, 1)), (2, (1, 0, 1)), (1, (1, 0, 0)),
                                         (37, (31, 3, 3))])
def test_random_split_follows_recbole_rounding(n, expected):
    u, i, t = _log([n])
    s = random_split(u, i, seed=3, time=t)
    assert (s.train.size(1), s.valid.size(1), s.test.size(1)) == expected


def test_random_split_is_a_partition_per_user_and_seeded():
    u, i, t = _log([30, 12, 7, 50, 3], seed=1)
    a = random_split(u, i, seed=0, time=t)
    b = random_split(u, i, seed=0, time=t)
    c = random_split(u, i, seed=1, time=t)
    assert all(torch.equal(getattr(a, p), getattr(b, p)) for p in ("train", "valid", "test"))
    assert _pairs(a.test) != _pairs(c.test)
    a.check_disjoint(500)
    assert _pairs(a.train) | _pairs(a.valid) | _pairs(a.test) == set(zip(u.tolist(), i.tolist(), strict=True))
    for user, n in enumerate([30, 12, 7, 50, 3]):
        assert int((a.valid[0] == user).sum()) == max(int(0.1 * n), 1 if n >= 3 else 0)


def test_dedup_keeps_the_earliest_time_of_a_pair():
    u, i, t = dedup_pairs(np.array([0, 0, 0, 1]), np.array([5, 5, 6, 5]), np.array([9, 3, 4, 1]))
    assert list(zip(u.tolist(), i.tolist(), t.tolist(), strict=True)) == [(0, 5, 3), (0, 6, 4), (1, 5, 1)]


def test_leave_one_out_holds_out_the_latest_pairs():
    u = np.array([0, 0, 0, 0, 1, 1, 2])
    i = np.array([10, 11, 12, 13, 10, 11, 10])
    t = np.array([4, 1, 3, 2, 7, 5, 1])
    s = leave_one_out(u, i, t)
    assert _pairs(s.test) == {(0, 10), (1, 10)}  # latest of user 0 and of user 1
    assert _pairs(s.valid) == {(0, 12)}  # user 1 has two pairs: one train, one test
    assert _pairs(s.train) == {(0, 11), (0, 13), (1, 11), (2, 10)}


def test_time_split_is_a_global_cut():
    u, i, t = _log([40, 40, 40], seed=2)
    s = time_split(u, i, t, quantiles=(0.7, 0.85))
    tmap = dict(zip(zip(u.tolist(), i.tolist(), strict=True), t.tolist(), strict=True))
    times = {p: [tmap[x] for x in _pairs(getattr(s, p))] for p in ("train", "valid", "test")}
    assert max(times["train"]) < min(times["valid"]) and max(times["valid"]) < min(times["test"])
    explicit = time_split(u, i, t, valid_start=5000, test_start=8000)
    assert max(tmap[x] for x in _pairs(explicit.train)) < 5000 <= min(tmap[x] for x in _pairs(explicit.valid))
    with pytest.raises(ValueError, match="is after"):
        time_split(u, i, t, valid_start=9000, test_start=1000)


def test_leaks_are_detected_and_cold_users_dropped():
    leak = EdgeSplit(torch.tensor([[0, 1], [5, 6]]), torch.tensor([[0], [5]]), torch.zeros(2, 0, dtype=torch.long), "x")
    with pytest.raises(AssertionError, match="both train and valid.*user 0, item 5"):
        leak.check_disjoint(10)
    s = EdgeSplit(torch.tensor([[0], [1]]), torch.tensor([[0, 2], [2, 3]]), torch.tensor([[1], [4]]), "time")
    d = drop_cold(s, 3, 5)
    assert _pairs(d.valid) == {(0, 2)} and d.test.size(1) == 0
    assert d.info["dropped_cold"] == {"valid": 1, "test": 1}
    assert drop_cold(s, 3, 5, items=True).valid.size(1) == 0
