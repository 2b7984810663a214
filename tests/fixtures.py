"""Small datasets written in the exact on-disk formats of the real ones (Planetoid, PPI, event logs,
the published splits and S3-Rec sequences, handwritten or sliced from ``$GRAPHREC_DATA``), a
planted-preference interaction log, and a one-call recommender fit."""

from __future__ import annotations

import datetime as dt
import json
import pickle
from collections import defaultdict
from pathlib import Path

import networkx as nx
import numpy as np
import polars as pl
import scipy.sparse as sp
from networkx.readwrite import json_graph


def write_planetoid(raw_dir: Path, prefix: str, num_train=60, num_val=500, num_test=100, num_unlabelled=40,
                    num_features=30, num_classes=3, seed=0) -> dict:  # fmt: skip
    """Write ``ind.<prefix>.*`` files as in Yang et al.'s release (pickled scipy/numpy, text test index).

    The node classes form a planted partition, so the graph carries signal."""
    rng = np.random.default_rng(seed)
    n_all = num_train + num_val + num_unlabelled  # "allx": every non-test node
    n = n_all + num_test
    labels = rng.integers(0, num_classes, n)
    feats = (rng.random((n, num_features)) < 0.1).astype(np.float32)
    feats[np.arange(n), labels] = 1.0  # one informative feature per class
    onehot = np.eye(num_classes, dtype=np.int64)[labels]
    graph = defaultdict(list)
    for i in range(n):
        same = np.flatnonzero(labels == labels[i])
        for j in rng.choice(same, 3):
            if j != i:
                graph[i].append(int(j))
                graph[int(j)].append(i)
    test_nodes = np.arange(n_all, n)
    test_index = rng.permutation(test_nodes)  # listed in shuffled order, as in the release
    raw_dir.mkdir(parents=True, exist_ok=True)

    def dump(name, obj):
        with open(raw_dir / f"ind.{prefix}.{name}", "wb") as fh:
            pickle.dump(obj, fh, protocol=2)

    dump("x", sp.csr_matrix(feats[:num_train]))
    dump("y", onehot[:num_train])
    dump("allx", sp.csr_matrix(feats[:n_all]))
    dump("ally", onehot[:n_all])
    dump("tx", sp.csr_matrix(feats[test_index]))
    dump("ty", onehot[test_index])
    dump("graph", dict(graph))
    (raw_dir / f"ind.{prefix}.test.index").write_text("\n".join(str(i) for i in test_index) + "\n")
    return {"num_nodes": n, "num_features": num_features, "num_classes": num_classes,
            "train": num_train, "val": num_val, "test": num_test}  # fmt: skip


def write_ppi(raw_dir: Path, graphs=(3, 1, 1), nodes_per_graph=40, num_features=8, num_labels=5, seed=0) -> dict:
    """Write PPI's raw layout: ``{split}_graph.json`` (networkx node-link), ``_feats.npy``,
    ``_graph_id.npy`` (1-based, contiguous per split) and ``_labels.npy`` (multi-hot)."""
    rng = np.random.default_rng(seed)
    raw_dir.mkdir(parents=True, exist_ok=True)
    W = rng.normal(size=(num_features, num_labels))
    gid = 1
    for split, count in zip(("train", "valid", "test"), graphs, strict=True):
        g = nx.DiGraph()
        feats, labels, ids = [], [], []
        offset = 0
        for _ in range(count):
            n = nodes_per_graph
            g.add_nodes_from(range(offset, offset + n))
            src = rng.integers(0, n, 3 * n) + offset
            dst = rng.integers(0, n, 3 * n) + offset
            for a, b in zip(src.tolist(), dst.tolist(), strict=True):
                if a != b:
                    g.add_edge(a, b)
                    g.add_edge(b, a)
            x = rng.normal(size=(n, num_features)).astype(np.float32)
            feats.append(x)
            labels.append((x @ W > 0).astype(np.float32))
            ids.append(np.full(n, gid, dtype=np.int64))
            offset += n
            gid += 1
        (raw_dir / f"{split}_graph.json").write_text(json.dumps(json_graph.node_link_data(g, edges="links")))
        np.save(raw_dir / f"{split}_feats.npy", np.concatenate(feats))
        np.save(raw_dir / f"{split}_labels.npy", np.concatenate(labels))
        np.save(raw_dir / f"{split}_graph_id.npy", np.concatenate(ids))
    return {"graphs": graphs, "nodes_per_graph": nodes_per_graph, "num_features": num_features, "num_labels": num_labels}


# ---------------------------------------------------------------------- nightly logs
START = dt.date(2026, 11, 1)
DAYS = 6


def write_logs(folder: Path, days: int = DAYS, users: int = 60, items: int = 40, per_day: int = 300, seed: int = 0):
    """Per-day parquet logs in the log schema: clustered users (so there is something to learn)
    and a few new users and items every day."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    cluster_u = rng.integers(0, 8, users)
    cluster_i = rng.integers(0, 8, items)
    for d in range(days):
        date = START + dt.timedelta(days=d)
        active_u = min(users, 40 + 4 * d)  # new users appear every day
        active_i = min(items, 30 + 2 * d)
        u = rng.integers(0, active_u, per_day)
        same = rng.random(per_day) < 0.95
        i = np.empty(per_day, dtype=np.int64)
        for n in range(per_day):
            pool = np.flatnonzero((cluster_i[:active_i] == cluster_u[u[n]]) == same[n])
            i[n] = rng.choice(pool) if pool.size else rng.integers(0, active_i)
        base = dt.datetime.combine(date, dt.time(), tzinfo=dt.UTC).timestamp()
        ts = (base + np.sort(rng.integers(0, 86400, per_day))).astype(np.int64)
        pl.DataFrame({
            "timestamp": pl.Series(ts * 1_000_000).cast(pl.Datetime("us", "UTC")),
            "user_id": [f"u{x}" for x in u],
            "target_type": ["item"] * per_day,
            "target_id": [f"i{x}" for x in i],
            "event_type": ["click"] * per_day,
        }).write_parquet(folder / f"{date.isoformat()}.parquet")
    return folder


def day(n: int) -> str:
    return (START + dt.timedelta(days=n)).isoformat()


# ---------------------------------------------------------------------- public datasets
#: Where each catalog dataset's adapter input lies under the data root (graphrec.data.public).
PUBLIC_PATHS = {
    "gowalla": "recsys/gowalla-lightgcn", "ml-1m": "recsys/ml-1m-reczoo", "amazon-cd": "recsys/amazon-cd-hgcf",
    "beauty": "sequences/s3rec/Beauty.txt", "sports": "sequences/s3rec/Sports_and_Outdoors.txt",
    "toys": "sequences/s3rec/Toys_and_Games.txt", "yelp": "sequences/s3rec/Yelp.txt",
}  # fmt: skip
SEQUENCE_KINDS = ("beauty", "sports", "toys", "yelp")

Lists = dict[int, list[int]]  # user -> items


def write_public(folder: Path, kind: str, train: Lists, test: Lists | None = None) -> Path:
    """``train`` (and ``test``) in the published layout of the catalog dataset ``kind``; returns
    what its adapter reads (the folder, or the sequence file ``folder/<kind>.txt``).

    Published splits (gowalla, ml-1m: users 0..U-1, every one in ``test``; amazon-cd): the two
    halves. Sequences (users 1..N): ``train[u]`` is user u's line, ``test`` is not used."""
    folder.mkdir(parents=True, exist_ok=True)

    def lines(d: Lists, eol: str = "\n") -> str:
        return "".join(f"{u} {' '.join(map(str, v))}{eol}" for u, v in d.items())

    if kind in SEQUENCE_KINDS:
        path = folder / f"{kind}.txt"
        path.write_text(lines(train))
        return path
    assert test is not None
    if kind == "gowalla":
        n_users, n_items = len(test), 1 + max(i for d in (train, test) for v in d.values() for i in v)
        rows = [u for u, v in train.items() for _ in v]
        cols = [n_users + i for v in train.values() for i in v]
        n = n_users + n_items
        adj = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)).tocsr()
        sp.save_npz(folder / "s_adj_mat.npz", (adj + adj.T).tocsr())
        (folder / "test.txt").write_text(lines(test))
    elif kind == "ml-1m":
        (folder / "train.txt").write_bytes(lines(train, "\r\n").encode())
        (folder / "test.txt").write_bytes(lines(test, "\r\n").encode())
    elif kind == "amazon-cd":
        (folder / "train.pkl").write_bytes(pickle.dumps(train, protocol=3))
        (folder / "test.pkl").write_bytes(pickle.dumps(test, protocol=3))
    else:
        raise ValueError(f"not a published dataset: {kind!r}")
    return folder


def slice_gowalla(root: Path, folder: Path, users: int = 6) -> tuple[Lists, Lists]:
    """The first ``users`` users of the data root's LightGCN Gowalla, written to ``folder`` in the
    same layout (as tests/data/test_public.py does); returns their ``(train, test)`` items."""
    src = root / PUBLIC_PATHS["gowalla"]
    adj = sp.load_npz(src / "s_adj_mat.npz").tocsr()
    test_lines = (src / "test.txt").read_text().splitlines()
    n_users = len([line for line in test_lines if line.strip()])
    block = adj[:users, n_users:]
    n_items = block.shape[1]
    small = sp.bmat([[sp.csr_matrix((users, users)), block], [block.T, sp.csr_matrix((n_items, n_items))]]).tocsr()
    folder.mkdir(parents=True, exist_ok=True)
    sp.save_npz(folder / "s_adj_mat.npz", small)
    (folder / "test.txt").write_text("\n".join(test_lines[:users]) + "\n")
    train = {u: sorted(block[u].indices.tolist()) for u in range(users)}
    test = {int(r[0]): [int(x) for x in r[1:]] for r in (line.split() for line in test_lines[:users])}
    return train, test


def slice_sequences(root: Path, kind: str, folder: Path, users: int = 5) -> tuple[Path, Lists]:
    """The first ``users`` lines of the data root's S3-Rec file of ``kind``, written to ``folder``
    under the same name; returns the file and each user's items in order."""
    src = root / PUBLIC_PATHS[kind]
    head = src.read_text().splitlines(keepends=True)[:users]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / src.name).write_text("".join(head))
    return folder / src.name, {int(r[0]): [int(x) for x in r[1:]] for r in (line.split() for line in head)}


def planted(num_users=120, num_items=80, clusters=4, per_user=16, seed=0):
    """Users of cluster c mostly pick items of cluster c: a graph with signal to learn (an ``Interactions``)."""
    from graphrec.data.interactions import Interactions

    rng = np.random.default_rng(seed)
    uc = rng.integers(0, clusters, num_users)
    ic = np.arange(num_items) % clusters
    users, items = [], []
    for u in range(num_users):
        own = np.flatnonzero(ic == uc[u])
        pick = rng.choice(own, per_user - 3, replace=False).tolist()
        pick += rng.choice(num_items, 3, replace=False).tolist()
        for i in dict.fromkeys(pick):
            users.append(u)
            items.append(i)
    users, items = np.array(users), np.array(items)
    return Interactions(users, items, rng.integers(0, 10**6, users.size), num_users, num_items,
                        user_ids=[f"u{u}" for u in range(num_users)], item_ids=[1000 + i for i in range(num_items)])  # fmt: skip


def run_rec(data, cfg, seed: int = 0, **trainer_options):
    """Seed, build the configured recommender, fit it: ``(model, result)``."""
    from graphrec.tasks.link import build_rec_model, fit_link
    from graphrec.utils.seed import seed_everything

    seed_everything(seed)
    model = build_rec_model(cfg, data)
    return model, fit_link(data, model, cfg, **trainer_options)


def planted_partition(n=300, classes=3, f=20, p_in=0.08, p_out=0.005, seed=0):
    """Communities with weakly informative features: the graph is needed to classify well (a PyG ``Data``)."""
    import torch
    from torch_geometric.data import Data

    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    same = y.view(-1, 1) == y.view(1, -1)
    prob = torch.where(same, p_in, p_out)
    adj = torch.rand(n, n, generator=g) < prob
    adj = torch.triu(adj, 1)
    adj = adj | adj.t()
    x = torch.rand(n, f, generator=g) < 0.1
    x[torch.arange(n), y] |= torch.rand(n, generator=g) < 0.4
    perm = torch.randperm(n, generator=g)
    masks = [torch.zeros(n, dtype=torch.bool) for _ in range(3)]
    masks[0][perm[:30]] = masks[1][perm[30:100]] = masks[2][perm[100:]] = True
    return Data(x=x.float(), edge_index=adj.nonzero().t(), y=y, train_mask=masks[0], val_mask=masks[1],
                test_mask=masks[2], num_classes=classes)  # fmt: skip


def random_graph(n: int = 30, e: int = 90, seed: int = 0):
    """An undirected ``edge_index`` [2, E] of ``e`` random pairs among ``n`` nodes, without self-loops."""
    import torch
    from torch_geometric.utils import coalesce, to_undirected

    g = torch.Generator().manual_seed(seed)
    ei = coalesce(to_undirected(torch.randint(0, n, (2, e), generator=g)))
    return ei[:, ei[0] != ei[1]]
