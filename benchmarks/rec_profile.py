"""Where a recommendation training step spends its time: ``torch.profiler`` over a few steps.

Builds the configured model and link task on a catalog dataset's split (seed 0), runs warm-up
steps, times ``--steps`` training steps (sampling, forward, loss, backward, optimizer), times
the negative sampling alone, and prints the profiler's operators by self CPU time.

    python -m benchmarks.rec_profile --dataset gowalla --model lightgcn --threads 2 --set train.batch_size=8192
    python -m benchmarks.rec_profile --dataset ml-1m --model mf --threads 1 --set train.loss=softmax \\
        --set train.score=cosine --set train.temperature=0.2 --set train.num_negatives=64 --set train.batch_size=4096
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from graphrec.config.rec import resolve_rec_config
from graphrec.data.interactions import load_interactions
from graphrec.tasks.link import LinkTask, build_rec_model
from graphrec.tasks.optim import build_optimizer


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="gowalla")
    p.add_argument("--model", default="lightgcn")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=5, help="steps timed, and steps profiled")
    p.add_argument("--rows", type=int, default=15, help="operators shown")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = resolve_rec_config(args.model, args.dataset, args.overrides)
    data = load_interactions(args.dataset, cfg.data).split(cfg.data, 0)
    torch.manual_seed(0)
    model, task = build_rec_model(cfg, data), LinkTask(data, cfg)
    t = cfg.train
    opt = build_optimizer(model, t.optimizer, t.lr, t.weight_decay, t.weight_decay_on)
    batches = task.batches(0)

    def step() -> None:
        loss, _ = task.step_loss(model, next(batches))
        opt.zero_grad()
        loss.backward()
        opt.step()

    model.train()
    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    per_step = (time.perf_counter() - t0) / args.steps
    t0 = time.perf_counter()
    for _ in range(args.steps):
        next(batches)
    sampling = (time.perf_counter() - t0) / args.steps
    steps = -(-data.train.size(1) // t.batch_size)
    print(f"{args.dataset} {args.model}: {per_step:.3f} s/step ({sampling:.3f} s of it drawing the batch and its "
          f"negatives), {steps} steps/epoch, {torch.get_num_threads()} thread(s)")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
