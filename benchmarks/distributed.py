"""Scale-out benchmark: one mini-batch LightGCN epoch on a graph store, on 1 or N ranks (``torchrun``).

Each rank loads the store's user-item interactions, splits them (per user 8:1:1, seed 0), and builds the
recommendation task with ``sampler: neighbor``; on several ranks the task partitions the training graph
(``--partition``), keeps its owned nodes plus the halo and trains on the pairs of the users it owns
(:class:`graphrec.tasks.link.LinkTask`). The script then times training steps alone (no evaluation: full
ranking of a million users is not what this measures) and reports, per rank: seconds to load and to build the
task, the partition (owned and halo nodes, local edges, replication), steps, seconds per step and per epoch,
training pairs per second, peak RSS, and the memory-per-rank formula's terms
(:func:`graphrec.sampling.memory_per_rank`) beside it. Rank 0 writes the JSON.

    graphrec store synth /tmp/log --events 20000000 --users 1000000 --items 100000 --days 60
    graphrec store ingest --store /tmp/store /tmp/log/events --schema /tmp/log/schema.yaml
    torchrun --standalone --nproc-per-node 2 benchmarks/distributed.py /tmp/store --json results/dist2.json
    python benchmarks/distributed.py /tmp/store --steps 30 --json results/dist1.json    # the 1-rank reference

``--steps N`` times the first N steps only (a scaling measurement); the default runs the whole epoch.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import torch

from graphrec.config.rec import resolve_rec_config
from graphrec.data.interactions import load_interactions
from graphrec.sampling import memory_per_rank
from graphrec.tasks.link import LinkTask, build_rec_model
from graphrec.tasks.trainer import train_epoch
from graphrec.utils import distributed as du
from graphrec.utils.io import atomic_write_json
from graphrec.utils.seed import seed_everything


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class FirstSteps:
    """The first ``steps`` batches of a task (a partial epoch for scaling measurements)."""

    def __init__(self, task: LinkTask, steps: int | None):
        self.task, self.steps = task, steps

    def __getattr__(self, name):
        return getattr(self.task, name)

    def batches(self, epoch: int):
        for k, b in enumerate(self.task.batches(epoch), 1):
            yield b
            if self.steps is not None and k >= self.steps:
                break


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", help="a graph-store folder, or a dataset of `graphrec datasets` (gowalla, ...)")
    ap.add_argument("--batch-size", type=int, default=65536, help="global batch (positive pairs per step)")
    ap.add_argument("--fanout", default="5,5", help="neighbour sampler fan-out per hop (LightGCN K = hops)")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--partition", default="random", choices=("random", "metis"))
    ap.add_argument("--steps", type=int, default=None, help="time only the first N steps")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    du.init_from_env()
    rank, world = du.rank(), du.world_size()
    fanout = [int(x) for x in args.fanout.split(",")]
    cfg = resolve_rec_config("lightgcn", None, [f"model.K={len(fanout)}", "train.sampler=neighbor",
                                                f"train.num_neighbors={fanout}", f"train.batch_size={args.batch_size}",
                                                f"train.embedding_dim={args.dim}", f"train.partition={args.partition}",
                                                "train.lr=0.001"])  # fmt: skip
    t0 = time.perf_counter()
    data = load_interactions(args.store, cfg.data).split(cfg.data, seed=0)
    t_load = time.perf_counter() - t0
    rss_load = peak_rss_mb()
    seed_everything(0)
    t0 = time.perf_counter()
    task = LinkTask(data, cfg)
    t_task = time.perf_counter() - t0
    model = build_rec_model(cfg, data)
    from graphrec.tasks import distributed as dp

    sync = shard = None
    if world > 1:
        dp.broadcast_parameters(model)
        sync, shard = dp.GradientSync(model), task.shard_batch
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    du.barrier()
    t0 = time.perf_counter()
    loss = train_epoch(model, FirstSteps(task, args.steps), opt, 1, sync=sync, shard=shard)
    t_epoch = time.perf_counter() - t0
    steps = args.steps or task.steps or len(task.loader)
    pairs = int(data.train.size(1))
    row = {
        "rank": rank, "world": world, "events_in_store": None, "train_pairs": pairs, "users": data.num_users,
        "items": data.num_items, "load_s": t_load, "task_s": t_task, "rss_after_load_mb": rss_load,
        "steps": steps, "s_per_step": t_epoch / max(steps, 1), "seconds": t_epoch, "loss": loss,
        "pairs_per_s": steps * cfg.train.batch_size / t_epoch, "peak_rss_mb": peak_rss_mb(),
        "partition": getattr(task, "partition_info", None),
        "sparse_table_steps": sync.sparse_steps if sync else None, "dense_table_steps": sync.dense_steps if sync else None,
        "sent_mb": sync.bytes_sent / 2**20 if sync else 0.0,
    }
    if task.local is not None:
        row["memory_formula_mb"] = {k: v / 2**20 for k, v in memory_per_rank(task.local, data.num_nodes, args.dim).items()}
    if args.steps is None:
        row["epoch_s"] = t_epoch
    rows = du.all_gather_object(row)
    if rank == 0:
        from graphrec.store import GraphStore

        if GraphStore.exists(args.store):  # a store folder (a dataset name has its own statistics)
            events = int(GraphStore(args.store).manifest().counts.events)
            for r in rows:
                r["events_in_store"] = events
        for r in rows:
            print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items() if k != "memory_formula_mb"})
        if args.json:
            atomic_write_json(args.json, {"args": vars(args), "ranks": rows})
    du.shutdown()


if __name__ == "__main__":
    main()
    # no interpreter finalisation after the process group is gone (see graphrec/__main__.py)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
