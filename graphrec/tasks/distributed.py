"""Data-parallel training on ``torch.distributed``: what the :class:`~graphrec.tasks.trainer.Trainer` does when
it runs on several ranks (``torchrun --nproc-per-node N -m graphrec train CONFIG``).

Semantics (every rank holds a full replica of the model, as in DDP):

* **One global batch per step.** Every rank draws the task's batches with the same seed, so all ranks see the
  same global batch; rank ``r`` computes the loss of its contiguous share (:func:`shard_batch`, or the task's
  own ``shard_batch``). The config's ``batch_size`` stays the global batch size, and a run on N ranks takes the
  same optimizer steps as a run on one.
* **Gradients are averaged exactly.** :class:`GradientSync` all-reduces ``n_r · g_r`` and ``n_r`` (``n_r`` the
  rank's examples, ``g_r`` the gradient of its mean loss) and divides: the result is the gradient of the
  global batch's mean loss, whatever the shares' sizes (an empty share contributes nothing).
* **ID-embedding tables are exchanged sparsely.** The weight of every ``nn.Embedding`` with at least
  ``sparse_min_rows`` rows is synchronised by gathering only the rows some rank touched (their indices and
  values), not by a dense all-reduce of the whole table; a step that touches most rows (full-graph
  propagation) falls back to the dense all-reduce, which is then cheaper. Rows that no rank touched get a
  zero gradient, as in a single process.
* The loss and the non-finite guard are global: a NaN on one rank stops every rank at the same step.

Why not ``torch.nn.parallel.DistributedDataParallel``: its reducer only sees gradients that flow from the
outputs of the wrapped ``forward``, and it all-reduces every parameter densely. graphrec's tasks compute
losses through model methods (``loss``, ``embeddings``, ``logits``), sampled steps touch a varying subset of
parameters, and the ID tables are the bulk of the weights; one explicit synchronisation after ``backward``
covers all tasks and lets the tables go sparse. It loses DDP's overlap of communication with the backward
pass, which matters little on CPU (gloo) and for these shallow models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from graphrec.utils import distributed as du

#: Embedding tables with at least this many rows are exchanged sparsely (smaller ones ride in the dense bucket).
SPARSE_MIN_ROWS = 4096




def shard_batch(batch: Any, rank: int, world: int) -> Any:
    """Rank ``rank``'s share of a batch: a tensor, or a tuple/list/dict of tensors sharing their first dimension;
    None when the share is empty (a global batch with fewer rows than ranks).

    Raises:
        TypeError: a batch of another kind (the task must define ``shard_batch``), or tensors whose first
            dimensions differ.
    """
    out = _split(batch, rank, world)
    return None if batch_size_of(out) == 0 else out


def _split(batch: Any, rank: int, world: int) -> Any:
    if isinstance(batch, Tensor):
        a, b = du.shard_range(batch.size(0), rank, world)
        return batch[a:b]
    if isinstance(batch, Mapping):
        keys = list(batch)
        return dict(zip(keys, _split([batch[k] for k in keys], rank, world), strict=True))
    if isinstance(batch, tuple | list) and batch and all(isinstance(t, Tensor) for t in batch):
        sizes = {int(t.size(0)) for t in batch}
        if len(sizes) != 1:
            raise TypeError(f"cannot split a batch whose tensors have different first dimensions {sorted(sizes)} across "
                            "ranks; the task must define shard_batch(batch, rank, world)")  # fmt: skip
        n = sizes.pop()
        a, b = du.shard_range(n, rank, world)
        out = [t[a:b] for t in batch]
        return tuple(out) if isinstance(batch, tuple) else out
    raise TypeError(f"cannot split a {type(batch).__name__} batch across ranks; the task must define "
                    "shard_batch(batch, rank, world)")  # fmt: skip


def batch_size_of(batch: Any) -> int:
    """Rows of a batch that :func:`shard_batch` splits (0 for an empty share)."""
    if isinstance(batch, Tensor):
        return int(batch.size(0))
    if isinstance(batch, Mapping):
        return batch_size_of(next(iter(batch.values()))) if batch else 0
    if isinstance(batch, tuple | list) and batch:
        return batch_size_of(batch[0])
    return 1


def embedding_tables(model: nn.Module, min_rows: int = SPARSE_MIN_ROWS) -> set[int]:
    """``id()`` of the weights of the model's ``nn.Embedding`` modules with at least ``min_rows`` rows."""
    return {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding) and m.num_embeddings >= min_rows}


@torch.no_grad()
def broadcast_parameters(model: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (as DDP does when it wraps a model), so that the
    replicas start identical even when their initialisation differed."""
    if not du.is_distributed():
        return
    import torch.distributed as dist

    dev = du.comm_device()
    for name, t in list(model.state_dict(keep_vars=True).items()):
        if not isinstance(t, Tensor) or t.numel() == 0:
            continue
        buf = t.detach().to(dev).contiguous()
        with du.collective(f"broadcasting the initial weights ({name})"):
            dist.broadcast(buf, src=0)
        t.detach().copy_(buf)


@torch.no_grad()
def replica_fingerprint(model: nn.Module) -> Tensor:
    """One float64 number per parameter (its sum), to check that the replicas did not drift apart."""
    sums = [p.detach().double().sum() for p in model.parameters()]
    return torch.stack(sums) if sums else torch.zeros(0, dtype=torch.float64)


def check_replicas(model: nn.Module, epoch: int) -> None:
    """Fail when the ranks' weights differ (they take identical optimizer steps, so they never should).

    Raises:
        RuntimeError: naming the first parameter that differs.
    """
    if not du.is_distributed():
        return
    fp = replica_fingerprint(model)
    both = du.all_reduce_(torch.cat([fp, -fp]), "max", "checking the replicas")  # the max and (negated) the min
    hi, lo = both[: fp.numel()], -both[fp.numel() :]
    bad = torch.nonzero(~torch.isclose(lo, hi, rtol=1e-6, atol=1e-9)).view(-1)
    if bad.numel():
        name = [n for n, _ in model.named_parameters()][int(bad[0])]
        raise RuntimeError(f"after epoch {epoch} the ranks' weights differ (first: {name}, sums {float(lo[bad[0]])} .. "
                           f"{float(hi[bad[0]])}); every rank must run the same code on the same data")  # fmt: skip


class GradientSync:
    """Average gradients over ranks after ``backward`` (see the module docstring).

    Args:
        model: the replica whose ``.grad`` fields are synchronised in place.
        sparse_min_rows: embedding tables with at least this many rows go through the sparse exchange.

    Call ``sync(loss_value, n)`` on every rank after ``backward`` (even with ``n = 0`` and no gradients);
    it returns ``(global mean loss, global examples)``.
    """

    def __init__(self, model: nn.Module, sparse_min_rows: int = SPARSE_MIN_ROWS):
        tables = embedding_tables(model, sparse_min_rows)
        params = [p for p in model.parameters() if p.requires_grad]
        self.dense = [p for p in params if id(p) not in tables]
        self.tables = [p for p in params if id(p) in tables]
        # The tables' lookups produce sparse gradients (their rows are then known without scanning the table, which
        # costs as much as the rest of a step at 10^6 rows); a table also used as a dense weight (an output layer)
        # still accumulates a dense gradient, which the exchange handles by scanning. After the exchange the
        # optimizer sees the same dense gradient as in one process. close() restores the modules.
        self._sparse_modules = [m for m in model.modules() if isinstance(m, nn.Embedding) and id(m.weight) in tables
                                and not m.sparse] if du.is_distributed() else []  # fmt: skip
        for m in self._sparse_modules:
            m.sparse = True
        self.sparse_steps = 0  # steps whose table exchange was sparse (reported by benchmarks)
        self.dense_steps = 0
        self.bytes_sent = 0  # payload this rank contributed to collectives

    def close(self) -> None:
        """Give the embedding modules back their dense gradients (the model may train again in one process)."""
        for m in self._sparse_modules:
            m.sparse = False
        self._sparse_modules = []

    def __call__(self, loss_value: float, n: int) -> tuple[float, int]:
        if not du.is_distributed():
            return loss_value, n
        dev = du.comm_device()
        # One bucket: n-weighted dense gradients, then one "has a gradient" flag per parameter, then loss·n and n.
        parts = [(p.grad.reshape(-1) * n if p.grad is not None else torch.zeros(p.numel(), device=p.device)).to(dev)
                 for p in self.dense]  # fmt: skip
        flags = torch.tensor([float(p.grad is not None) for p in (*self.dense, *self.tables)], device=dev)
        head = torch.tensor([loss_value * n if n else 0.0, float(n)], device=dev)
        bucket = torch.cat([*parts, flags, head]) if parts else torch.cat([flags, head])
        du.all_reduce_(bucket, "sum", "averaging the gradients")
        self.bytes_sent += bucket.numel() * bucket.element_size()
        total_loss, total_n = float(bucket[-2]), int(round(float(bucket[-1])))
        denom = max(total_n, 1)
        offset, nf = 0, flags.numel()
        has_grad = (bucket[-2 - nf : -2] > 0).tolist()
        for k, p in enumerate(self.dense):
            g = bucket[offset : offset + p.numel()]
            offset += p.numel()
            # a parameter without a gradient on every rank keeps none: the optimizer skips it, as in one process
            p.grad = (g / denom).view_as(p).to(p.device) if has_grad[k] else None
        for k, p in enumerate(self.tables):
            self._sync_table(p, n, denom, has_grad[len(self.dense) + k])
        return (total_loss / denom if total_n else float("nan")), total_n

    def _sync_table(self, p: nn.Parameter, n: int, denom: int, any_grad: bool) -> None:
        """Sum ``n · grad`` of a table over ranks into ``p.grad`` (in place: a table's gradient is the largest
        buffer of a step), sending only the touched rows when that is smaller than the table."""
        dev, world = du.comm_device(), du.world_size()
        g = p.grad
        if not any_grad:  # no rank has a gradient for it (identical decision everywhere: it came from the bucket)
            p.grad = None
            return
        d = p[0].numel()
        if g is not None and g.is_sparse:  # the rows the lookups touched, without a pass over the table
            g = g.coalesce()
            rows, values = g.indices()[0], g.values().reshape(-1, d)
            live = values.abs().amax(1) > 0  # a row looked up but reaching no loss term sends nothing
            rows, values = rows[live], values[live]
            g = p.grad = torch.zeros_like(p)
            if rows.numel():
                g.view(g.shape[0], d).index_put_((rows,), values, accumulate=True)
        else:
            if g is None:
                g = p.grad = torch.zeros_like(p)
            rows = torch.nonzero(g.abs().amax(1) > 0).view(-1) if n else torch.zeros(0, dtype=torch.long, device=p.device)
        if not n:
            rows = rows[:0]
        sizes = torch.zeros(world, dtype=torch.long)
        sizes[du.rank()] = rows.numel()
        du.all_reduce_(sizes, "sum", "sizing the sparse gradients")
        if int(sizes.sum()) == 0:
            g.zero_()
            return
        if int(sizes.sum()) * (d + 1) >= p.numel():  # most rows touched: the dense all-reduce is cheaper
            self.dense_steps += 1
            g.mul_(n)
            du.all_reduce_(g, "sum", "averaging the embedding gradients")
            self.bytes_sent += g.numel() * g.element_size()
            g.div_(denom)
            return
        self.sparse_steps += 1
        cap = int(sizes.max())
        idx = torch.full((cap,), -1, dtype=torch.long, device=dev)
        val = torch.zeros(cap, d, dtype=p.dtype, device=dev)
        if rows.numel():
            idx[: rows.numel()] = rows.to(dev)
            val[: rows.numel()] = g[rows].reshape(rows.numel(), d).to(dev) * (n / denom)
        all_idx = du.all_gather(idx, "exchanging the touched embedding rows")
        all_val = du.all_gather(val, "exchanging the touched embedding rows")
        self.bytes_sent += idx.numel() * 8 + val.numel() * val.element_size()
        g.zero_()
        flat = g.view(g.shape[0], d)
        for i, v in zip(all_idx, all_val, strict=True):
            keep = i >= 0
            flat.index_add_(0, i[keep].to(g.device), v[keep].to(g.device))


def rng_for_ranks(state: dict) -> list[dict]:
    """Every rank's random-number state (rank order), for a checkpoint that N ranks resume from."""
    return du.all_gather_object(state, "saving the random-number states")


def pick_rank_state(states: Sequence[dict] | None, fallback: dict) -> dict:
    """This rank's random-number state from a checkpoint written by the same number of ranks.

    Raises:
        ValueError: the checkpoint was written by a different number of ranks.
    """
    if not du.is_distributed() and not states:
        return fallback
    world = du.world_size()
    if states is None or len(states) != world:
        have = len(states) if states else 1
        how = "one process (without torchrun)" if have == 1 else f"torchrun --nproc-per-node {have}"
        raise ValueError(f"the checkpoint was written by {have} rank(s) and this run has {world}: resume with "
                         f"{how}, or delete the checkpoint to start again")  # fmt: skip
    return states[du.rank()]
