"""The public recommendation datasets of the catalog: Gowalla (LightGCN), MovieLens-1M (RecZoo),
Amazon-CD (HGCF) and the S3-Rec sequences (Beauty, Sports, Toys, Yelp).

Slices of the real files (written to tmp_path) check parsing, the adapters and the published
split line by line; the full files (``$GRAPHREC_DATA``, skipped when absent) check the
statistics of ``shared/data/README.md``.
"""

from __future__ import annotations

import io
import os
import pickle
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.config.rec import RecDataConfig
from graphrec.data import (
    DatasetNotAvailableError,
    Interactions,
    available_datasets,
    get_dataset,
    load_dataset,
    load_sequences,
    published_split,
    read_sequences,
)
from graphrec.data.catalog import DATASETS
from graphrec.store import SourceError
from graphrec.store import adapters as A
from graphrec.utils.io import load_plain_pickle

#: shared/data/README.md, sections 4-7.
README = {
    "gowalla": {"users": 29_858, "items": 40_981, "train": 810_128, "test": 217_242},
    "ml-1m": {"users": 6_022, "items": 3_043, "train": 796_244, "test": 99_455},
    "amazon-cd": {"users": 22_947, "items": 18_395, "train": 328_779, "test": 93_522},
    "beauty": {"users": 22_363, "items": 12_101, "interactions": 198_502},
    "sports": {"users": 35_598, "items": 18_357, "interactions": 296_337},
    "toys": {"users": 19_412, "items": 11_924, "interactions": 167_597},
    "yelp": {"users": 30_431, "items": 20_033, "interactions": 316_354},
}
GOWALLA, ML1M, AMAZON = "recsys/gowalla-lightgcn", "recsys/ml-1m-reczoo", "recsys/amazon-cd-hgcf"
SEQ = {
    "beauty": "Beauty",
    "sports": "Sports_and_Outdoors",
    "toys": "Toys_and_Games",
    "yelp": "Yelp",
}


def _root(*need: str) -> Path:
    root = os.environ.get("GRAPHREC_DATA")
    if not root or not all((Path(root) / p).exists() for p in need):
        pytest.skip(f"GRAPHREC_DATA with {', '.join(need)} is not available")
    return Path(root)


def _lines(path: Path, n: int | None = None, last: bool = False) -> list[list[int]]:
    rows = [
        [int(x) for x in line.split()] for line in path.read_text().splitlines() if line.strip()
    ]
    return rows[-1:] if last else rows[:n]


def _store_split(tmp_path, sources, schema, protocol, cfg=None):
    """Ingest adapter sources into a store, read them back, split as load_interactions would."""
    from graphrec.store import ingest

    rep = ingest(tmp_path / "st", sources, schema=schema, echo=False)
    assert rep.invariant_ok and rep.quarantined == 0 and rep.duplicates == 0
    inter = Interactions.from_store(tmp_path / "st")
    inter.info["protocol"] = protocol
    return inter, inter.split(cfg or RecDataConfig(), seed=0)


def _external(inter: Interactions, edges) -> set[tuple[int, int]]:
    u, i = edges.numpy()
    return {
        (inter.user_ids[a], inter.item_ids[b]) for a, b in zip(u.tolist(), i.tolist(), strict=True)
    }


def _per_user(pairs: set[tuple[int, int]], user: int) -> list[int]:
    return sorted(i for u, i in pairs if u == user)


PUBLISHED = {"split": "published", "test_start": A.TEST_TIME}


# ------------------------------------------------------------------------------ slices
def test_gowalla_slice_through_adapter_store_and_published_split(tmp_path):
    import scipy.sparse as sp

    root = _root(GOWALLA)
    n_users, k = 29_858, 6
    adj = sp.load_npz(root / GOWALLA / "s_adj_mat.npz").tocsr()
    block = adj[:k, n_users:]  # the first k users, every item column
    n_items = block.shape[1]
    small = sp.bmat(
        [[sp.csr_matrix((k, k)), block], [block.T, sp.csr_matrix((n_items, n_items))]]
    ).tocsr()
    folder = tmp_path / "gowalla"
    folder.mkdir()
    sp.save_npz(folder / "s_adj_mat.npz", small)
    lines = (root / GOWALLA / "test.txt").read_text().splitlines()[:k]
    (folder / "test.txt").write_text("\n".join(lines) + "\n")

    (tu, ti), (su, si) = A.gowalla_pairs(folder)
    first_row = sorted(adj[0, n_users:].indices.tolist())
    assert ti[tu == 0].tolist() == first_row and tu.size == block.nnz
    test_lines = _lines(folder / "test.txt")
    assert [test_lines[0][0], *si[su == 0].tolist()] == test_lines[0]
    assert [test_lines[-1][0], *si[su == k - 1].tolist()] == test_lines[-1]

    inter, data = _store_split(tmp_path, A.gowalla_sources(folder), A.gowalla_schema(), PUBLISHED)
    assert data.split.method == "published" and data.info["split"] == "published"
    test = _external(inter, data.split.test)
    train = _external(inter, data.split.train) | _external(inter, data.split.valid)
    assert len(test) == data.split.test.size(1) == sum(len(r) - 1 for r in test_lines)
    for row in (test_lines[0], test_lines[-1]):
        assert _per_user(test, row[0]) == sorted(row[1:])
    assert _per_user(train, 0) == first_row
    assert _per_user(train, k - 1) == sorted(adj[k - 1, n_users:].indices.tolist())
    assert inter.user_ids == list(range(k))  # user ids are the remap ids


def test_ml_1m_slice_crlf_through_store(tmp_path):
    root = _root(ML1M)
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    for name in ("train.txt", "test.txt"):
        raw = (root / ML1M / name).read_bytes()
        (folder / name).write_bytes(b"".join(raw.splitlines(keepends=True)[:4]))
        assert b"\r\n" in (folder / name).read_bytes()
    (tu, ti), (su, si) = A.ml_1m_pairs(folder)
    train_lines, test_lines = _lines(folder / "train.txt"), _lines(folder / "test.txt")
    assert ti[tu == 0].tolist() == train_lines[0][1:] and si[su == 3].tolist() == test_lines[-1][1:]
    inter, data = _store_split(tmp_path, A.ml_1m_sources(folder), A.ml_1m_schema(), PUBLISHED)
    test = _external(inter, data.split.test)
    train = _external(inter, data.split.train) | _external(inter, data.split.valid)
    for rows, got in ((train_lines, train), (test_lines, test)):
        for row in (rows[0], rows[-1]):
            assert _per_user(got, row[0]) == sorted(row[1:])
    assert data.split.valid.size(1) == sum(max(1, int(0.1 * (len(r) - 1))) for r in train_lines)


def test_amazon_cd_slice_of_the_pickles(tmp_path):
    root = _root(AMAZON)
    train, test = (load_plain_pickle(root / AMAZON / f) for f in ("train.pkl", "test.pkl"))
    full = load_plain_pickle(root / AMAZON / "user_item_list.pkl")
    folder = tmp_path / "amazon"
    folder.mkdir()
    users = [0, 1, 2, 22_946]
    for name, obj in (
        ("train.pkl", {u: train[u] for u in users}),
        ("test.pkl", {u: test[u] for u in users}),
    ):
        (folder / name).write_bytes(pickle.dumps(obj, protocol=3))
    (tu, ti), (su, si) = A.amazon_cd_pairs(folder)  # no user_item_list.pkl: no consistency check
    assert ti[tu == 0].tolist() == train[0] and si[su == 22_946].tolist() == test[22_946]
    # user_item_list.pkl (a list indexed by user) must be split exactly by train + test
    (folder / "user_item_list.pkl").write_bytes(
        pickle.dumps([full[u] if u in users else [] for u in range(22_947)])
    )
    A.amazon_cd_pairs(folder)
    (folder / "user_item_list.pkl").write_bytes(
        pickle.dumps([full[u][:-1] if u in users else [] for u in range(22_947)])
    )
    with pytest.raises(SourceError, match="do not split user_item_list.pkl"):
        A.amazon_cd_pairs(folder)
    (folder / "user_item_list.pkl").unlink()
    inter, data = _store_split(
        tmp_path, A.amazon_cd_sources(folder), A.amazon_cd_schema(), PUBLISHED
    )
    got = _external(inter, data.split.test)
    assert _per_user(got, 0) == sorted(test[0]) and _per_user(got, 22_946) == sorted(test[22_946])


def test_yelp_slice_sequences_and_store_view(tmp_path):
    root = _root("sequences/s3rec/Yelp.txt")
    path = tmp_path / "Yelp.txt"
    path.write_text(
        "".join((root / "sequences/s3rec/Yelp.txt").read_text().splitlines(keepends=True)[:5])
    )
    lines = _lines(path)
    seqs = read_sequences(path)
    assert len(seqs) == 5 and seqs.user_ids.tolist() == [1, 2, 3, 4, 5]
    assert [seqs[k].tolist() for k in range(5)] == [r[1:] for r in lines]  # exact, repeats kept
    assert len(set(lines[0][1:])) < len(lines[0]) - 1  # user 1 repeats businesses
    loo = seqs.leave_one_out()
    assert loo.valid_target[0] == lines[0][-2] and loo.test_target[-1] == lines[-1][-1]
    assert loo.train(0).tolist() == lines[0][1:-2] and loo.test_input(0).tolist() == lines[0][1:-1]

    [(_, frame)] = A.sequence_sources(path)
    assert frame.height == sum(len(r) - 1 for r in lines)
    first = frame.filter(frame["user_id"] == 1)
    assert (first["timestamp"] - A.SEQUENCE_TIME).to_list() == list(range(len(lines[0]) - 1))
    inter, data = _store_split(
        tmp_path, A.sequence_sources(path), A.sequence_schema("yelp"), {"split": "loo"}
    )
    assert inter.user.size == frame.height  # the store keeps repeats (their times differ)
    assert data.split.method == "loo" and data.split.test.size(1) == 5
    test = _external(inter, data.split.test)
    last = lines[-1]
    if last[-1] not in last[1:-1]:
        assert _per_user(test, last[0]) == [last[-1]]


def test_parser_names_the_bad_line(tmp_path):
    path = tmp_path / "train.txt"
    path.write_bytes(b"0 1 2\r\n1 3 x4\r\n")
    with pytest.raises(
        SourceError, match=r"train.txt, line 2: 'x4' is not a non-negative integer id"
    ):
        A.read_user_lines(path)
    path.write_bytes(b"0 1 2\n2 3\n")
    (path.parent / "test.txt").write_bytes(b"0 5\n1 6\n")
    with pytest.raises(SourceError, match="line 2 is user 2, expected 1"):
        A.ml_1m_pairs(tmp_path)


def test_published_split_of_a_handwritten_folder(tmp_path):
    """No data needed: a tiny RecZoo-style folder through the adapter, the store and the split."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    train = {0: list(range(10)), 1: [3, 4], 2: [7]}
    test = {0: [10, 11], 1: [5], 2: [12]}  # item 12 occurs only in test: kept
    for name, d in (("train.txt", train), ("test.txt", test)):
        (folder / name).write_bytes(
            b"".join(f"{u} {' '.join(map(str, v))}\r\n".encode() for u, v in d.items())
        )
    inter, data = _store_split(tmp_path, A.ml_1m_sources(folder), A.ml_1m_schema(), PUBLISHED)
    got = {p: _external(inter, getattr(data.split, p)) for p in ("train", "valid", "test")}
    assert got["test"] == {(u, i) for u, v in test.items() for i in v}
    assert got["train"] | got["valid"] == {(u, i) for u, v in train.items() for i in v}
    assert sorted(u for u, _ in got["valid"]) == [0, 1]  # 10 pairs -> 1, 2 pairs -> 1, 1 pair -> 0
    assert data.info["dropped_cold"] == {"valid": 0, "test": 0}
    none = inter.split(RecDataConfig(valid_ratio=0), seed=0)
    assert none.split.valid.size(1) == 0 and none.split.train.size(1) == 13


# ------------------------------------------------------------------------------ full files
@pytest.mark.parametrize("name", ["gowalla", "ml-1m", "amazon-cd"])
def test_published_files_have_the_readme_statistics(name):
    root = _root(*get_dataset(name).files)
    pairs = {"gowalla": A.gowalla_pairs, "ml-1m": A.ml_1m_pairs, "amazon-cd": A.amazon_cd_pairs}[
        name
    ]
    (tu, ti), (su, si) = pairs(root / Path(get_dataset(name).files[0]).parent)
    got = {"users": np.unique(np.r_[tu, su]).size, "items": np.unique(np.r_[ti, si]).size,
           "train": tu.size, "test": su.size}  # fmt: skip
    assert got == README[name] == dict(get_dataset(name).stats)
    train_keys, test_keys = tu * 100_000 + ti, su * 100_000 + si
    assert np.unique(train_keys).size == tu.size and not np.intersect1d(train_keys, test_keys).size
    if name == "amazon-cd":  # one item occurs only in test, and stays there
        assert np.setdiff1d(si, ti).size == 1


@pytest.mark.parametrize("name", list(SEQ))
def test_sequence_files_have_the_readme_statistics(name):
    _root(f"sequences/s3rec/{SEQ[name]}.txt")
    seqs = load_sequences(name)
    got = {
        "users": len(seqs),
        "items": int(np.unique(seqs.items).size),
        "interactions": int(seqs.items.size),
    }
    assert got == README[name] == dict(get_dataset(name).stats)
    assert (
        seqs.num_items == README[name]["items"] and seqs.items.min() == 1
    )  # ids 1..M, 0 free for padding
    assert seqs.lengths.min() == 5 and seqs.user_ids.tolist() == list(range(1, len(seqs) + 1))
    if name == "yelp":
        repeats = [k for k in range(len(seqs)) if np.unique(seqs[k]).size < seqs.lengths[k]]
        assert len(repeats) == 7_102
        assert (
            int(seqs.items.size - sum(np.unique(seqs[k]).size for k in range(len(seqs)))) == 11_830
        )


def test_yelp_graph_view_differs_from_the_exact_protocol_as_documented():
    """The number in graphrec.data.sequences' docstring: users whose store-view loo targets differ."""
    from graphrec.data.splits import leave_one_out

    _root("sequences/s3rec/Yelp.txt")
    seqs = load_sequences("yelp")
    user = np.repeat(seqs.user_ids, seqs.lengths)
    pos = np.arange(seqs.items.size) - np.repeat(seqs.indptr[:-1], seqs.lengths)
    s = leave_one_out(user, seqs.items, pos)  # what the store view (first occurrence) splits
    loo = seqs.leave_one_out()
    test, valid = (
        dict(zip(*s.test.tolist(), strict=True)),
        dict(zip(*s.valid.tolist(), strict=True)),
    )
    differ = sum(test.get(u) != t or valid.get(u) != v
                 for u, v, t in zip(seqs.user_ids.tolist(), loo.valid_target.tolist(), loo.test_target.tolist(),
                                    strict=True))  # fmt: skip
    assert differ == 2_927 and len(test) == 30_431 - 29 and len(valid) == 30_431 - 80


def test_load_dataset_ml_1m_through_the_store_reproduces_the_published_test_set():
    root = _root(ML1M)
    inter = load_dataset("movielens-1m")
    assert inter.info["protocol"] == PUBLISHED and (inter.num_users, inter.num_items) == (
        6_022,
        3_043,
    )
    data = inter.split(RecDataConfig(), seed=0)  # split: auto
    assert data.split.method == "published"
    sizes = data.split.sizes()
    assert sizes["test"] == 99_455 and sizes["train"] + sizes["valid"] == 796_244
    u, i = data.split.test.numpy()
    got = np.sort(np.asarray(inter.user_ids)[u] * 10_000 + np.asarray(inter.item_ids)[i])
    (su, si) = A.ml_1m_pairs(root / ML1M)[1]
    assert np.array_equal(got, np.sort(su * 10_000 + si))
    again = inter.split(RecDataConfig(), seed=0).split
    assert all(
        np.array_equal(getattr(again, p).numpy(), getattr(data.split, p).numpy())
        for p in ("train", "valid")
    )
    other = inter.split(RecDataConfig(split_seed=1), seed=0).split
    assert not np.array_equal(other.valid.numpy(), data.split.valid.numpy())


# ------------------------------------------------------------------------------ the split rule
def test_valid_ratio_rule():
    n = {0: 1, 1: 2, 2: 10, 3: 25, 4: 3}  # training pairs per user
    user = np.concatenate([np.full(k, u) for u, k in n.items()] + [np.array([0, 3])])
    item = np.concatenate([np.arange(k) for k in n.values()] + [np.array([100, 100])])
    time = np.r_[np.zeros(sum(n.values()), np.int64), [5, 5]]
    s = published_split(user, item, time, test_start=5, valid_ratio=0.1, seed=0)
    valid = np.bincount(s.valid[0].numpy(), minlength=5).tolist()
    assert valid == [0, 1, 1, 2, 1]  # floor(0.1 n), at least 1 when n >= 2, never all
    assert s.test.tolist() == [[0, 3], [100, 100]]
    assert np.bincount(s.train[0].numpy(), minlength=5).tolist() == [1, 1, 9, 23, 2]
    s.check_disjoint(101)
    assert np.bincount(
        published_split(user, item, time, 5, 0.5, 0).valid[0].numpy(), minlength=5
    ).tolist() == [0, 1, 5, 12, 1]
    assert published_split(user, item, time, 5, 0.0, 0).valid.size(1) == 0
    a, b = (published_split(user, item, time, 5, 0.1, seed).valid for seed in (0, 0))
    assert a.tolist() == b.tolist()
    with pytest.raises(ValueError, match="valid_ratio must be in"):
        published_split(user, item, time, 5, 1.0)


def test_split_auto_resolves_per_dataset(inter):
    expected = {"ml-100k": "random", "gowalla": "published", "ml-1m": "published", "amazon-cd": "published",
                "beauty": "loo", "sports": "loo", "toys": "loo", "yelp": "loo"}  # fmt: skip
    assert {n: i.split for n, i in DATASETS.items() if i.task == "recommendation"} == expected
    assert (
        inter.split(RecDataConfig(), 0).split.method == "random"
    )  # no protocol (a store folder): random
    assert RecDataConfig().split == "auto"
    inter.info["protocol"] = {"split": "loo"}
    assert inter.split(RecDataConfig(), 0).split.method == "loo"
    assert (
        inter.split(RecDataConfig(split="random"), 0).split.method == "random"
    )  # an explicit choice wins
    inter.info["protocol"] = {"split": "published", "test_start": int(np.quantile(inter.time, 0.8))}
    data = inter.split(RecDataConfig(), 0)
    assert data.split.method == "published"
    held = int((inter.time >= inter.info["protocol"]["test_start"]).sum())
    assert data.split.test.size(1) + data.info["dropped_cold"]["test"] == held
    inter.info.pop("protocol")
    with pytest.raises(
        ValueError, match="split: published needs a dataset with a published train/test split"
    ):
        inter.split(RecDataConfig(split="published"), 0)


def test_ml_100k_still_splits_at_random(shared_data):
    _root("movielens/ml-100k/u.data")
    ml = load_dataset("ml-100k")
    assert ml.info["protocol"] == {"split": "random"}
    auto, explicit = ml.split(RecDataConfig(), 0), ml.split(RecDataConfig(split="random"), 0)
    assert auto.split.method == "random" and auto.split.sizes() == {
        "train": 80_808,
        "valid": 9_596,
        "test": 9_596,
    }
    assert all(np.array_equal(getattr(auto.split, p).numpy(), getattr(explicit.split, p).numpy())
               for p in ("train", "valid", "test"))  # fmt: skip


# ------------------------------------------------------------------------------ pickles
class _Shell:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_globals_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "train.pkl"
    path.write_bytes(pickle.dumps({0: [1, _Shell(marker)]}))
    with pytest.raises(pickle.UnpicklingError) as info:
        load_plain_pickle(path)
    assert ("posix.system" in str(info.value) or "os.system" in str(info.value)) and str(
        path
    ) in str(info.value)
    assert not marker.exists()
    (tmp_path / "test.pkl").write_bytes(pickle.dumps({0: [2]}))
    with pytest.raises(
        SourceError, match=r"train.pkl: refused to load the global (posix|os)\.system"
    ):
        A.amazon_cd_pairs(tmp_path)
    assert not marker.exists()
    assert load_plain_pickle(tmp_path / "test.pkl") == {0: [2]}


@pytest.mark.parametrize("obj, found", [
    ([[1, 2]], "found a list"),
    ({"0": [1]}, "found a str key '0'"),
    ({0: (1, 2)}, "found a tuple for 0"),
    ({0: [1, "2"]}, "found '2' in the items of 0"),
    ({0: [1, True]}, "found True in the items of 0"),
])  # fmt: skip
def test_amazon_cd_refuses_an_unexpected_structure(tmp_path, obj, found):
    (tmp_path / "train.pkl").write_bytes(pickle.dumps(obj))
    (tmp_path / "test.pkl").write_bytes(pickle.dumps({0: [3]}))
    with pytest.raises(
        SourceError, match=f"train.pkl: expected a dict of int -> list of int, {found}"
    ):
        A.amazon_cd_pairs(tmp_path)


# ------------------------------------------------------------------------------ files, downloads, catalog
def _offline(*args, **kwargs):
    raise urllib.error.URLError("network is unreachable")


def test_missing_file_offline_names_the_file_and_the_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHREC_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("GRAPHREC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("urllib.request.urlopen", _offline)
    with pytest.raises(DatasetNotAvailableError) as info:
        load_dataset("ml-1m")
    msg = str(info.value)
    assert (
        "recsys/ml-1m-reczoo/train.txt" in msg
        and "recsys/ml-1m-reczoo/test.txt" in msg
        and "GRAPHREC_DATA" in msg
    )
    assert "raw.githubusercontent.com/reczoo/RecZoo/5c82e48ded7439d54bcd837f490c3fc58c4742d4" in msg
    with pytest.raises(DatasetNotAvailableError, match=r"Beauty.txt.*GRAPHREC_DATA"):
        load_sequences("beauty")
    assert not list((tmp_path / "cache").rglob("*.txt"))
    rows = {r["name"]: r for r in available_datasets()}
    assert rows["gowalla"]["status"] == "missing" and rows["gowalla"]["stats"] == README["gowalla"]


def test_download_is_checked_and_atomic(tmp_path, monkeypatch):
    root = _root("sequences/s3rec/Toys_and_Games.txt")
    good = (root / "sequences/s3rec/Toys_and_Games.txt").read_bytes()
    monkeypatch.setenv("GRAPHREC_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("GRAPHREC_CACHE", str(tmp_path / "cache"))
    served = []

    def serve(body):
        def urlopen(url, timeout=None):
            served.append(url)
            return io.BytesIO(body)

        return urlopen

    monkeypatch.setattr("urllib.request.urlopen", serve(good[:-10]))  # a truncated download
    with pytest.raises(DatasetNotAvailableError, match="sha256"):
        load_sequences("toys")
    assert not [
        p for p in (tmp_path / "cache").rglob("*") if p.is_file()
    ]  # nothing half-written is left
    monkeypatch.setattr("urllib.request.urlopen", serve(good))
    seqs = load_sequences("toys")
    assert len(seqs) == README["toys"]["users"]
    assert served[-1] == ("https://raw.githubusercontent.com/salesforce/ICLRec/2890e6c3ff6a22c6699fc19cb863b66786c1cde4"
                          "/data/Toys_and_Games.txt")  # fmt: skip
    assert (tmp_path / "cache/sequences/s3rec/Toys_and_Games.txt").read_bytes() == good


def test_a_changed_local_file_is_refused(tmp_path, monkeypatch):
    (tmp_path / "sequences/s3rec").mkdir(parents=True)
    (tmp_path / "sequences/s3rec/Yelp.txt").write_text("1 1 2 3\n")
    monkeypatch.setenv("GRAPHREC_DATA", str(tmp_path))
    with pytest.raises(DatasetNotAvailableError, match="Yelp.txt is not the published file"):
        load_sequences("yelp")


def test_names_aliases_and_the_datasets_command(monkeypatch):
    for alias, name in (("Gowalla-LightGCN", "gowalla"), ("ml1m", "ml-1m"), ("ML-1M-RecZoo", "ml-1m"),
                        ("amazon-cd-hgcf", "amazon-cd"), ("Sports_and_Outdoors", "sports"),
                        ("toys_and_games", "toys"), ("YELP", "yelp")):  # fmt: skip
        assert get_dataset(alias).name == name
    for info in DATASETS.values():
        if info.remote:
            assert all(f.url.startswith("https://raw.githubusercontent.com/") and len(f.sha256) == 64
                       for f in info.remote)  # fmt: skip
            assert info.files == tuple(f.path for f in info.remote)
    with pytest.raises(ValueError, match="'gowalla' is not a sequence dataset"):
        load_sequences("gowalla")
    res = CliRunner().invoke(app, ["datasets", "--json"])
    assert res.exit_code == 0, res.output
    import json

    rows = {r["name"]: r for r in json.loads(res.stdout)}
    for name, stats in README.items():
        assert rows[name]["stats"] == stats and rows[name]["split"] in ("published", "loo")
    monkeypatch.setenv("COLUMNS", "100")  # one line per dataset in a 100-column terminal
    res = CliRunner().invoke(app, ["datasets"])
    line = next(ln for ln in res.stdout.splitlines() if " gowalla " in ln)
    assert "1,027,370" in line and "217,242" in line and "published" in line and "…" not in res.stdout
