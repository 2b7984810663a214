"""Training-step time per model, measured round-robin so that every model sees the same
machine load, plus PyG's own GCN example as the reference and one whole 300-epoch GESM run.

    python -m benchmarks.epoch_time --datasets Cora,CiteSeer --rounds 5 --epochs 20

Reports the median ms per training epoch (forward, backward, optimizer step: the optimizer of
the model's config, ``graphrec.tasks.optim.build_optimizer``, Adam by default) over rounds, in
wall time and in this process's CPU time (less sensitive to other jobs on the machine),
the ratio of our GCN to PyG's example, and the time of a full 300-epoch GESM fit (early
stopping off, evaluation every epoch included).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from benchmarks.node_classification import PyGExampleGCN
from graphrec.bench.report import environment
from graphrec.config import resolve_config
from graphrec.data import load_planetoid
from graphrec.nn import fused
from graphrec.tasks.node import build_backbone, fit_node, prepare
from graphrec.tasks.optim import build_optimizer
from graphrec.utils.seed import seed_everything

MODELS = ["gcn", "pyg-gcn-example", "gat", "appnp", "sgc", "sage", "gsm", "gesm"]


def make(name, data):
    cfg = resolve_config("gcn" if name == "pyg-gcn-example" else name, data.name)
    seed_everything(0)
    if name == "pyg-gcn-example":
        model = PyGExampleGCN(data.num_features, data.num_classes)
    else:
        model = build_backbone(cfg, data.num_features, data.num_classes)
    t = cfg.train
    return model, build_optimizer(model, t.optimizer, t.lr, t.weight_decay, t.weight_decay_on)


def step(model, opt, data):
    model.train()
    opt.zero_grad(set_to_none=True)
    out = model(data.x, data.edge_index)
    loss = torch.nn.functional.cross_entropy(out[data.train_mask], data.y[data.train_mask])
    aux = model.auxiliary_loss() if hasattr(model, "auxiliary_loss") else None
    (loss + aux if aux is not None else loss).backward()
    opt.step()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="Cora,CiteSeer")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=20, help="training steps per model per round")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--full-gesm", action="store_true", help="also time a whole 300-epoch GESM fit on Cora")
    ap.add_argument("--gesm-threads", type=int, default=None,
                    help="torch threads of the whole GESM run (default: --threads); 2 on a 2-core machine")
    ap.add_argument("--gesm-kernel-threads", type=int, default=None,
                    help="threads of graphrec's fused kernels in the whole GESM run (default: torch's)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = {"environment": environment(), "rows": [], "full_gesm": None}
    for ds in args.datasets.split(","):
        data = prepare(load_planetoid(ds), True)
        models = {m: make(m, data) for m in args.models.split(",")}
        for model, opt in models.values():
            for _ in range(3):  # warm-up: caches (normalised adjacency, CSR features)
                step(model, opt, data)
        times = {m: [] for m in models}
        cpu = {m: [] for m in models}
        for _ in range(args.rounds):
            for m, (model, opt) in models.items():
                t0, c0 = time.perf_counter(), time.process_time()
                for _ in range(args.epochs):
                    step(model, opt, data)
                times[m].append(1000 * (time.perf_counter() - t0) / args.epochs)
                cpu[m].append(1000 * (time.process_time() - c0) / args.epochs)
        print(f"\n{ds}: median ms per training epoch over {args.rounds} rounds of {args.epochs} epochs (wall, CPU)")
        for m in times:
            wall, c = statistics.median(times[m]), statistics.median(cpu[m])
            out["rows"].append({"dataset": ds, "model": m, "ms_per_epoch": wall, "cpu_ms_per_epoch": c})
            print(f"  {m:18s} {wall:8.1f} {c:8.1f}")
        if "gcn" in times and "pyg-gcn-example" in times:
            for label, t in (("wall", times), ("CPU", cpu)):
                ratio = statistics.median(t["gcn"]) / statistics.median(t["pyg-gcn-example"])
                print(f"  ratio gcn / pyg-gcn-example ({label}) = {ratio:.2f}")
    if args.full_gesm:
        if args.gesm_threads:
            torch.set_num_threads(args.gesm_threads)
        if args.gesm_kernel_threads:
            fused.set_num_threads(args.gesm_kernel_threads)
        data = load_planetoid("Cora")
        cfg = resolve_config("gesm", "Cora", ["train.epochs=300", "train.patience=1000"])
        seed_everything(0)
        model = build_backbone(cfg, data.num_features, data.num_classes)
        c0 = time.process_time()
        res = fit_node(data, model, cfg.train)
        cpu_s = time.process_time() - c0
        out["full_gesm"] = {"epochs": res.epochs, "seconds": res.seconds, "cpu_seconds": cpu_s, "test": res.test_score,
                            "threads": torch.get_num_threads(), "kernel_threads": fused.get_num_threads()}  # fmt: skip
        print(f"\nGESM, Cora, {res.epochs} epochs (early stopping off, {torch.get_num_threads()} torch threads, "
              f"{fused.get_num_threads()} kernel threads): "
              f"{res.seconds:.1f} s wall, "
              f"{cpu_s:.1f} s CPU, test {100 * res.test_score:.1f}%")  # fmt: skip
    print(json.dumps(out["environment"]))
    if args.json:
        from graphrec.utils.io import atomic_write_json

        atomic_write_json(args.json, out)


if __name__ == "__main__":
    main()
