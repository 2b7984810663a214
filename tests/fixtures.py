"""Small datasets written in the exact on-disk formats of the real ones (Planetoid, PPI, event logs),
a planted-preference interaction log, and a one-call recommender fit."""

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
