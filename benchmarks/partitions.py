"""Partition quality: METIS against the seeded edge-balanced random partition, on a recommendation training graph.

For each method and halo depth K, one row per rank: owned nodes, halo nodes, local edges (what a rank holds to
sample K hops from its owned nodes exactly), the edges cut, the replication factor ((owned + halo) / owned) and
the edge balance (max / mean local edges), plus the seconds the partition took. The graph is the user+item
training graph of a dataset of ``graphrec datasets`` or of a graph-store folder (both directions).

    python benchmarks/partitions.py gowalla --parts 2 --hops 1,2,3 --json results/partitions_gowalla.json
"""

from __future__ import annotations

import argparse
import time

from graphrec.config.rec import resolve_rec_config
from graphrec.data.interactions import load_interactions
from graphrec.sampling import partition_graph, partition_report
from graphrec.utils.io import atomic_write_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", help="a dataset name (gowalla, ml-1m, ...) or a graph-store folder")
    ap.add_argument("--parts", type=int, default=2)
    ap.add_argument("--hops", default="1,2,3")
    ap.add_argument("--methods", default="random,metis")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    cfg = resolve_rec_config("lightgcn", None, [])
    data = load_interactions(args.dataset, cfg.data).split(cfg.data, seed=0)
    g, n = data.graph, data.num_nodes
    print(f"{args.dataset}: {n:,} nodes ({data.num_users:,} users), {g.size(1):,} directed training edges")
    rows = []
    for method in args.methods.split(","):
        t0 = time.perf_counter()
        parts = partition_graph(g, n, args.parts, method=method, seed=0)
        took = time.perf_counter() - t0
        for k in (int(h) for h in args.hops.split(",")):
            rep = partition_report(g, parts, num_hops=k)
            for r in rep.rows():
                row = {"method": method, "hops": k, "partition_s": took, "cut_share": rep.cut_share,
                       "balance": rep.balance, **r}  # fmt: skip
                rows.append(row)
                print({key: (round(v, 3) if isinstance(v, float) else v) for key, v in row.items()})
    if args.json:
        atomic_write_json(args.json, {"dataset": args.dataset, "parts": args.parts, "nodes": n,
                                      "edges": int(g.size(1)), "rows": rows})  # fmt: skip


if __name__ == "__main__":
    main()
