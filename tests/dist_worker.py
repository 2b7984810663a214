"""One rank of the 2-rank checks in tests/tasks/test_distributed.py (run by torchrun; writes JSON per rank).

Checks, on a real gloo process group:
* GradientSync gives every rank the gradient of the global batch's mean loss, for dense parameters and for an
  embedding table exchanged sparsely (few rows touched) and densely (most rows touched);
* evaluate_topk(shard=True) returns the metrics of all users on every rank;
* the Trainer on 2 ranks ends with the same weights as one process on the same global batches.
"""

from __future__ import annotations

import json
import os
import sys

import torch
from torch import nn

from graphrec.metrics import evaluate_topk
from graphrec.metrics.ranking import CSR
from graphrec.tasks import distributed as dp
from graphrec.tasks.trainer import Trainer
from graphrec.utils import distributed as du

ROWS, DIM = 5000, 8


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.table = nn.Embedding(ROWS, DIM)
        self.head = nn.Linear(DIM, 1)
        self.unused = nn.Parameter(torch.zeros(3))  # never gets a gradient: must stay None on every rank

    def loss(self, idx: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ((self.head(self.table(idx)).squeeze(-1) - y) ** 2).mean()


def grads_of(model: Model, idx, y) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    model.loss(idx, y).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


class ToyTask:
    """A regression task with uneven global batches (the last has fewer rows than ranks would like)."""

    metric, stop_rule = "neg_mse", "metric"

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(1)
        self.idx = torch.randint(0, ROWS, (203,), generator=g)
        self.y = torch.randn(203, generator=g)

    def to(self, device):
        pass

    def batches(self, epoch):
        perm = torch.randperm(self.idx.numel())
        for s in range(0, perm.numel(), 50):
            j = perm[s : s + 50]
            yield self.idx[j], self.y[j]

    def step_loss(self, model, batch):
        idx, y = batch
        return model.loss(idx, y), idx.numel()

    def has_part(self, part):
        return part == "valid"

    def evaluate(self, model, part):
        with torch.no_grad():
            return {"neg_mse": -float(model.loss(self.idx, self.y))}


def main(out: str) -> None:
    du.init_from_env()
    rank, world = du.rank(), du.world_size()
    res: dict = {"rank": rank, "world": world}

    # 1. gradient synchronisation, sparse (20 rows of 5000) and dense (every row)
    for case, n_rows in (("sparse", 20), ("dense", ROWS)):
        model = Model()
        g = torch.Generator().manual_seed(7)
        idx = torch.randint(0, ROWS, (n_rows,), generator=g) if case == "sparse" else torch.arange(ROWS)
        y = torch.randn(idx.numel(), generator=g)
        ref = grads_of(model, idx, y)  # the whole global batch in one process
        share = dp.shard_batch((idx, y), rank, world)
        sync = dp.GradientSync(model)
        model.zero_grad(set_to_none=True)
        loss = model.loss(*share)
        loss.backward()
        total, n = sync(float(loss.detach()), share[0].numel())
        res[case] = {
            "max_err": max(float((p.grad - ref[name]).abs().max()) for name, p in model.named_parameters()
                           if name in ref),
            "unused_is_none": model.unused.grad is None,
            "n": n, "loss_err": abs(total - float(model.loss(idx, y))),
            "sparse_steps": sync.sparse_steps, "dense_steps": sync.dense_steps,
        }

    # 2. sharded full-ranking evaluation
    g = torch.Generator().manual_seed(3)
    users, items = 37, 50
    scores = torch.randn(users, items, generator=g)
    rows = torch.randint(0, users, (120,), generator=g)
    cols = torch.randint(0, items, (120,), generator=g)
    truth = CSR.from_pairs(rows, cols, users)
    full = evaluate_topk(lambda u: scores[u], truth, items, (5, 10))
    shard = evaluate_topk(lambda u: scores[u], truth, items, (5, 10), shard=True)
    res["eval"] = {"full": full, "shard": shard}

    # 3. the trainer: 3 epochs on 2 ranks end where one process ends
    torch.manual_seed(5)
    model = Model()
    fit = Trainer(epochs=3, patience=10, lr=0.05, progress=None).fit(model, ToyTask())
    res["trainer"] = {"valid": fit.valid, "weights": [float(p.detach().double().sum()) for p in model.parameters()],
                      "loss": [h["loss"] for h in fit.history]}
    with open(f"{out}.rank{rank}.json", "w") as fh:
        json.dump(res, fh)
    du.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
    # no interpreter finalisation after the process group is gone (see graphrec/__main__.py)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
