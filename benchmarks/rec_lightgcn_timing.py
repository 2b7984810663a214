"""Epoch time of graphrec's LightGCN against ``torch_geometric.nn.models.LightGCN``, interleaved.

PyG's model is timed with its two input formats: a transposed sparse CSR adjacency (the
one the ``pyg_lightgcn`` benchmark row uses, about 4x faster here) and a plain
``edge_index`` (as in PyG's ``examples/lightgcn.py``). All are trained by the same loop (the
training epoch of ``graphrec.tasks.trainer.Trainer`` over ``graphrec.tasks.link.LinkTask``'s
full-graph batches, with the config's optimizer) on the same MovieLens-100k split with the
same settings (the ``lightgcn`` config). Epochs alternate between the models (A B C A B C ...),
so a change in machine load hits all alike; ratios of median epoch times are reported.
Accuracy is compared by ``graphrec bench rec --models lightgcn,pyg_lightgcn``; this script
only times.

    python -m benchmarks.rec_lightgcn_timing --epochs 20 --threads 1
    python -m benchmarks.rec_lightgcn_timing --dataset gowalla --epochs 6 --slow-epochs 0 --threads 2 \
        --set train.batch_size=8192
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from graphrec.config.rec import resolve_rec_config
from graphrec.data.interactions import load_interactions
from graphrec.models.reference import PyGLightGCN
from graphrec.tasks.link import LinkTask, build_rec_model
from graphrec.tasks.optim import build_optimizer
from graphrec.tasks.trainer import train_epoch
from graphrec.utils.io import atomic_write_json
from graphrec.utils.seed import seed_everything


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="ml-100k")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--slow-epochs", type=int, default=3, help="epochs timed for PyG with an edge_index input (0: not timed)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override for all models, e.g. train.batch_size=8192 (repeatable)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = resolve_rec_config("lightgcn", args.dataset, args.overrides)
    data = load_interactions(args.dataset, cfg.data).split(cfg.data, args.seed)
    if cfg.train.sampler != "full":
        raise SystemExit(f"this benchmark times full-graph epochs; the config has train.sampler={cfg.train.sampler!r}")
    tc = cfg.train
    models = {}
    variants = (("graphrec", None), ("pyg (csr adj_t)", "csr"), ("pyg (edge_index)", "edge_index"))
    for name, ref in variants[: 3 if args.slow_epochs > 0 else 2]:  # --slow-epochs 0: no edge_index row
        seed_everything(args.seed)
        if ref is None:
            m = build_rec_model(cfg, data)
        else:
            m = PyGLightGCN(data.num_users, data.num_items, tc.embedding_dim, cfg.model_params["K"],
                            tc.init, tc.init_std, input_format=ref)  # fmt: skip
        task = LinkTask(data, cfg)  # its own negative sampler (the config's: uniform, training positives excluded)
        models[name] = (m, build_optimizer(m, tc.optimizer, tc.lr, tc.weight_decay, tc.weight_decay_on), task)
    times: dict[str, list[float]] = {n: [] for n in models}
    for epoch in range(args.epochs + 1):
        for name, (m, opt, task) in models.items():
            if name == "pyg (edge_index)" and epoch > args.slow_epochs:
                continue  # ~25x slower than ours: a few epochs suffice
            m.train()
            t0 = time.perf_counter()
            train_epoch(m, task, opt, epoch)
            if epoch > 0:  # the first epoch builds caches
                times[name].append(time.perf_counter() - t0)
    med = {n: statistics.median(t) for n, t in times.items()}
    out = {
        "dataset": args.dataset,
        "epochs": {n: len(t) for n, t in times.items()},
        "threads": args.threads,
        "batch_size": tc.batch_size,
        "train_pairs": int(data.train.size(1)),
        "s_per_epoch_median": {n: round(v, 4) for n, v in med.items()},
        "ratio_graphrec_over_pyg_csr": round(med["graphrec"] / med["pyg (csr adj_t)"], 3),
        "ratio_graphrec_over_pyg_edge_index": round(med["graphrec"] / med["pyg (edge_index)"], 3)
        if "pyg (edge_index)" in med else None,
        "command": "python -m benchmarks.rec_lightgcn_timing " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    print(json.dumps(out, indent=2))
    if args.json:
        atomic_write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()
