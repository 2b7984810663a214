"""Neighbour-sampler throughput: graphrec's pure-torch sampler against DGL's, same graph.

Two graphs: the MovieLens-100k user-item graph (both directions) when ``$GRAPHREC_DATA``
has it, and a synthetic power-law graph (Chung-Lu: ``--nodes`` nodes, ``--m`` random
edges per node with endpoints drawn by a Zipf-like weight, made undirected). For each,
``--batches`` batches of ``--batch-size`` random seed nodes are sampled with fan-out
``--fanout`` (e.g. 10,10) by

* ``graphrec``: :class:`graphrec.sampling.CSRNeighborSampler.sample` (the sampler alone);
* ``graphrec+NodeLoader``: the same through PyG's ``NodeLoader`` (sampling + subgraph
  collation, as in training);
* ``dgl``: ``dgl.dataloading.NeighborSampler(fanout).sample_blocks`` (sampling + block
  construction), when DGL imports (``graphrec.store.import_dgl``);
* ``pyg``: PyG's ``NeighborSampler`` when pyg-lib or torch-sparse is installed.

Both libraries run on the same number of threads (``--threads``). Prints a markdown table
of seed nodes per second, sampled edges per batch and per second, and writes JSON with
``--json``. DGL's ``sample_blocks`` expands every node of the previous layer (seeds
included) at each hop, PyG's convention (ours) only the newly reached ones, so DGL samples
more edges for the same seeds: compare seeds/s and edges/s together.

    python -m benchmarks.rec_sampler --fanout 10,10 --batch-size 1024 --threads 1 --json results/rec_sampler.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
from torch_geometric.data import Data
from torch_geometric.utils import remove_self_loops, to_undirected

from graphrec.sampling import CSRNeighborSampler, node_loader, pyg_sampler_available
from graphrec.utils.io import atomic_write_json


def movielens_graph() -> Data | None:
    from graphrec.data import load_dataset

    try:
        ml = load_dataset("ml-100k")
    except Exception:  # noqa: BLE001 - data absent: skip this graph
        return None
    u = torch.from_numpy(ml.user)
    i = torch.from_numpy(ml.item) + ml.num_users
    return Data(edge_index=torch.stack([torch.cat([u, i]), torch.cat([i, u])]), num_nodes=ml.num_users + ml.num_items)


def power_law_graph(n: int, m: int, seed: int, exponent: float = 0.8) -> Data:
    """Chung-Lu graph: ``n * m`` edges whose endpoints are drawn with weight ``(rank + 1)^-exponent``,
    made undirected (degrees follow a power law; a few hubs have thousands of neighbours)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.arange(1, n + 1, dtype=torch.float64).pow(-exponent)
    perm = torch.randperm(n, generator=g)
    src = perm[torch.multinomial(w, n * m, replacement=True, generator=g)]
    dst = perm[torch.multinomial(w, n * m, replacement=True, generator=g)]
    ei = torch.stack([src, dst])
    ei, _ = remove_self_loops(ei)
    return Data(edge_index=to_undirected(ei, num_nodes=n), num_nodes=n)


def _time(fn, batches: list[torch.Tensor], repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` seconds for all batches, and mean sampled edges per batch."""
    fn(batches[0])  # warm-up
    best, edges = float("inf"), 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        sizes = [fn(b) for b in batches]
        best = min(best, time.perf_counter() - t0)
        edges = statistics.fmean(sizes)
    return best, edges


def bench_graph(name: str, data: Data, fanout: list[int], batch_size: int, n_batches: int, repeats: int,
                seed: int) -> list[dict]:  # fmt: skip
    g = torch.Generator().manual_seed(seed)
    batches = [torch.randint(0, data.num_nodes, (batch_size,), generator=g).unique() for _ in range(n_batches)]
    n_seeds = sum(b.numel() for b in batches)
    rows = []

    def record(impl: str, secs: float, edges: float) -> None:
        rows.append({"graph": name, "nodes": int(data.num_nodes), "edges": int(data.edge_index.size(1)),
                     "impl": impl, "fanout": fanout, "batch_size": batch_size, "batches": n_batches,
                     "seeds_per_s": round(n_seeds / secs, 1), "ms_per_batch": round(1000 * secs / n_batches, 2),
                     "sampled_edges_per_batch": round(edges, 1),
                     "sampled_edges_per_s": round(edges * n_batches / secs)})  # fmt: skip

    ours = CSRNeighborSampler(data, fanout)
    record("graphrec", *_time(lambda b: ours.sample(b).row.numel(), batches, repeats))

    loader = node_loader(data, fanout, batch_size=batch_size, shuffle=False)  # all nodes: index = node id

    def through_loader(b: torch.Tensor) -> int:
        out = loader.collate_fn(b.tolist())
        return int(out.edge_index.size(1))

    record("graphrec+NodeLoader", *_time(through_loader, batches, repeats))

    if pyg_sampler_available():  # pragma: no cover - not installable on this platform today
        from graphrec.sampling import neighbor_sampler

        pyg = neighbor_sampler(data, fanout, prefer="pyg")
        record("pyg", *_time(lambda b: pyg._sample(b).row.numel(), batches, repeats))

    try:
        from graphrec.store import import_dgl

        dgl = import_dgl()
    except ImportError as exc:
        print(f"DGL unavailable ({exc}); reporting graphrec alone", file=sys.stderr)
        return rows
    dg = dgl.graph((data.edge_index[0], data.edge_index[1]), num_nodes=data.num_nodes)
    sampler = dgl.dataloading.NeighborSampler(fanout)

    def dgl_sample(b: torch.Tensor) -> int:
        _, _, blocks = sampler.sample_blocks(dg, b)
        return sum(int(bl.num_edges()) for bl in blocks)

    record(f"dgl {dgl.__version__}", *_time(dgl_sample, batches, repeats))
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| graph | nodes | edges | sampler | seeds/s | ms/batch | sampled edges/batch | sampled edges/s |",
             "|---|---:|---:|---|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['graph']} | {r['nodes']:,} | {r['edges']:,} | {r['impl']} | {r['seeds_per_s']:,.0f} | "
                     f"{r['ms_per_batch']:.1f} | {r['sampled_edges_per_batch']:,.0f} | {r['sampled_edges_per_s']:,.0f} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fanout", default="10,10")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--nodes", type=int, default=200_000, help="power-law graph size")
    p.add_argument("--m", type=int, default=10, help="edges per node of the power-law graph (before symmetrising)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    fanout = [int(x) for x in args.fanout.split(",")]
    try:  # the same thread budget for DGL's OpenMP sampler
        from graphrec.store import import_dgl

        import_dgl().utils.set_num_threads(args.threads)
    except ImportError:
        pass
    rows = []
    ml = movielens_graph()
    if ml is not None:
        rows += bench_graph("ml-100k user-item", ml, fanout, args.batch_size, args.batches, args.repeats, args.seed)
    pl_graph = power_law_graph(args.nodes, args.m, args.seed)
    rows += bench_graph(f"power-law (Chung-Lu, {args.m} edges/node)", pl_graph, fanout, args.batch_size, args.batches, args.repeats, args.seed)
    print(markdown(rows))
    if args.json:
        cmd = "python -m benchmarks.rec_sampler " + " ".join(sys.argv[1:] if argv is None else argv)
        atomic_write_json(args.json, {"rows": rows, "threads": args.threads, "command": cmd})
    return rows


if __name__ == "__main__":
    main()
