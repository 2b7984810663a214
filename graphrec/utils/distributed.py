"""The process group of a data-parallel run: rank, world size, and the few collectives graphrec needs.

A run is distributed when it is started by ``torchrun`` (or Ray Train, or any launcher that sets
``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``, the ``env://`` rendezvous of
``torch.distributed``) with ``WORLD_SIZE`` > 1. Everything here is a no-op in a single process, so
callers never branch on "am I distributed" beyond asking :func:`world_size`.

Backends: ``gloo`` on CPU, ``nccl`` when the ranks train on CUDA devices (``auto`` picks).
The collective timeout (``GRAPHREC_DIST_TIMEOUT`` seconds, default 300) bounds how long a rank
waits for a peer that hangs; a peer that dies is seen at once as a closed connection.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist

#: Seconds a collective waits for the other ranks before failing (a hung peer).
DEFAULT_TIMEOUT_S = 300


class RankFailure(RuntimeError):
    """A collective failed: another rank died or hung. The message says what to do (resume from the checkpoint)."""


def env_world_size() -> int:
    """``WORLD_SIZE`` of the launcher's environment (1 when unset)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_distributed() -> bool:
    """Whether a process group with more than one rank is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Rank 0 (or a single process): the one that writes checkpoints, logs and artifacts."""
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0") or 0)


def shard_range(n: int, rank: int, world: int) -> tuple[int, int]:
    """``[start, end)`` of rank ``rank``'s contiguous share of ``n`` rows (the shares differ by at most one)."""
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def init_from_env(backend: str = "auto", timeout_s: float | None = None) -> bool:
    """Join the process group the launcher describes (``env://``); returns whether the run is distributed.

    A single process (no ``WORLD_SIZE`` or ``WORLD_SIZE=1``) returns False and initialises nothing. An
    already initialised group (Ray Train's ``TorchTrainer`` makes one) is kept.

    Args:
        backend: ``gloo``, ``nccl`` or ``auto`` (``nccl`` when CUDA is available, else ``gloo``).
        timeout_s: collective timeout (default ``$GRAPHREC_DIST_TIMEOUT`` or 300 s).

    Raises:
        ValueError: ``WORLD_SIZE`` > 1 but the rendezvous variables are missing.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    if env_world_size() <= 1:
        return False
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ValueError(f"WORLD_SIZE={env_world_size()} but {missing} are not set: launch with torchrun "
                           "(torchrun --nproc-per-node N -m graphrec train CONFIG)")  # fmt: skip
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    timeout = float(timeout_s or os.environ.get("GRAPHREC_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))
    dist.init_process_group(backend, timeout=dt.timedelta(seconds=timeout))
    return True


def shutdown() -> None:
    """Leave the process group (a no-op when none is initialised).

    A barrier first: a rank that tears its group down while a peer's last collective (a broadcast it sent, whose
    receiver is still reading) is in flight can abort in gloo's teardown ("terminate called without an active
    exception"); after the barrier no collective is pending anywhere."""
    if dist.is_available() and dist.is_initialized():
        if dist.get_world_size() > 1:
            try:
                dist.barrier()
            except RuntimeError:  # a peer is already gone: nothing is pending with it either
                pass
        dist.destroy_process_group()


def comm_device() -> torch.device:
    """Where collective buffers live: the rank's GPU under NCCL, else the CPU."""
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


@contextmanager
def collective(what: str) -> Iterator[None]:
    """Turn a failed collective into a :class:`RankFailure` that says which step failed and what to do."""
    try:
        yield
    except RankFailure:
        raise
    except RuntimeError as exc:  # DistBackendError and gloo's errors are RuntimeErrors
        detail = " ".join(str(exc).split())[:300]
        raise RankFailure(f"rank {rank()} of {world_size()}: {what} failed because another rank stopped or hung "
                          f"({detail}); the job cannot go on with a missing rank") from exc


def all_reduce_(tensor: torch.Tensor, op: str = "sum", what: str = "all-reduce") -> torch.Tensor:
    """In-place all-reduce (``sum``, ``max`` or ``min``) of a tensor; identity in a single process."""
    if not is_distributed():
        return tensor
    ops = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}
    dev = comm_device()
    buf = tensor if tensor.device == dev else tensor.to(dev)
    with collective(what):
        dist.all_reduce(buf, op=ops[op])
    if buf is not tensor:
        tensor.copy_(buf)
    return tensor


def all_gather(tensor: torch.Tensor, what: str = "all-gather") -> list[torch.Tensor]:
    """Every rank's ``tensor`` (same shape and dtype on every rank), in rank order."""
    if not is_distributed():
        return [tensor]
    dev = comm_device()
    buf = tensor.to(dev).contiguous()
    out = [torch.empty_like(buf) for _ in range(world_size())]
    with collective(what):
        dist.all_gather(out, buf)
    return [t.to(tensor.device) for t in out]


def broadcast_object(obj: Any, src: int = 0, what: str = "broadcast") -> Any:
    """``obj`` of rank ``src`` on every rank (picklable values: metrics, decisions)."""
    if not is_distributed():
        return obj
    box = [obj]
    with collective(what):
        dist.broadcast_object_list(box, src=src, device=comm_device())
    return box[0]


def all_gather_object(obj: Any, what: str = "all-gather") -> list[Any]:
    """Every rank's ``obj``, in rank order."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    with collective(what):
        dist.all_gather_object(out, obj)
    return out


def barrier(what: str = "barrier") -> None:
    if is_distributed():
        with collective(what):
            dist.barrier()


@contextmanager
def main_first(what: str = "preparing the data") -> Iterator[None]:
    """Rank 0 runs the block first, then the other ranks: for work that fills a shared cache (a dataset
    processed or ingested on first use), which the ranks must not write at the same time."""
    if not is_distributed():
        yield
        return
    if not is_main():
        barrier(what)
    yield  # on an error rank 0 leaves without the barrier: the others then fail at once instead of repeating it
    if is_main():
        barrier(what)


def agree(flag: bool, what: str = "a decision") -> bool:
    """True on every rank when ``flag`` is true on any rank (a per-rank clock or condition made collective,
    so that every rank takes the same branch)."""
    if not is_distributed():
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    all_reduce_(t, "max", what)
    return bool(t.item() > 0)
