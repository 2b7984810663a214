"""The one training loop, for every task.

A :class:`Task` says what a problem is: its batches, the loss of a batch, and how a model
is evaluated on a part (``valid``, ``test``). The :class:`Trainer` owns everything else:

* the epoch loop and the timing (seconds per training epoch, the first one excluded: it
  builds caches);
* early stopping and selection (``select: best`` keeps the weights of the best validation
  evaluation and stops after ``patience`` evaluations without improvement; ``select: last``
  keeps the last epoch and never stops early);
* the optimizer, from :func:`graphrec.tasks.optim.build_optimizer` (Adam, AdamW,
  RiemannianAdam), with optional per-row learning rates;
* checkpoints that hold *every* piece of state (model, optimizer, stopper, selected
  weights, history, the RNG of torch, NumPy and Python), so a resumed run ends with the same
  weights and metrics as an uninterrupted one, bit for bit;
* progress (a rich bar, or a callback), the device, and :meth:`Trainer.wrap`, where a subclass
  may wrap the model the loop runs;
* a guard against non-finite values (``nan_guard``): a NaN or infinite loss, gradient or
  parameter stops training with a :class:`NonFiniteError` naming the epoch, the step and the
  parameter, before the optimizer writes the bad values into the weights;
* data-parallel training when the process group has several ranks (``torchrun``; see
  :mod:`graphrec.tasks.distributed`): each rank computes its share of every global batch, gradients are
  averaged exactly (embedding tables sparsely), evaluations and stopping decisions are the same on every rank,
  and rank 0 alone reports progress and writes checkpoints (which hold every rank's random-number state, so a
  run resumes on the same number of ranks with identical results).

A task may also define ``start_epoch(model, epoch)``, called before each training epoch
(e.g. to re-cluster the origins of a multi-manifold scorer on a schedule).

>>> trainer = Trainer(epochs=200, patience=20)                       # doctest: +SKIP
>>> result = trainer.fit(model, NodeTask(data, cfg.train))            # doctest: +SKIP
>>> result.test["accuracy"], result.best_epoch, result.s_per_epoch   # doctest: +SKIP
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

from graphrec.tasks import distributed as dp
from graphrec.tasks.optim import RowLRScale, attach_row_lr, build_optimizer, is_manifold_parameter
from graphrec.utils import distributed as du
from graphrec.utils.faults import fault_point
from graphrec.utils.io import atomic_open
from graphrec.utils.seed import rng_state, set_rng_state

Part = Literal["valid", "test"]
#: ``progress(epoch, total_epochs, info)`` after every epoch; ``info`` has ``epoch``, ``loss`` and,
#: on evaluated epochs, ``valid`` (the selection metric) and ``valid_loss`` when the task has one.
ProgressFn = Callable[[int, int, dict], None]
StopRule = Literal["metric", "loss", "metric_or_loss"]
NanGuard = Literal["auto", "loss", "grads", "none"]


class NonFiniteError(FloatingPointError):
    """Training produced a NaN or an infinite value; the message names the epoch, the step and the parameter."""


@runtime_checkable
class Task(Protocol):
    """A problem the :class:`Trainer` optimises.

    Attributes:
        metric: key of the selection metric in :meth:`evaluate`'s result (higher is better),
            e.g. ``"accuracy"``, ``"micro_f1"``, ``"ndcg@10"``.
        stop_rule: ``metric`` (improvement of ``metric``; ties broken by a lower ``loss``),
            ``loss`` (a lower validation loss), or ``metric_or_loss`` (patience resets when
            either improves; an epoch is selected when both do, as in the GAT and GESM
            reference code). The two ``loss`` rules need ``loss`` in the evaluation.
    """

    metric: str
    stop_rule: StopRule

    def to(self, device: torch.device) -> None:
        """Move the task's tensors to ``device``."""

    def batches(self, epoch: int) -> Iterable[Any]:
        """The training batches of ``epoch`` (1-based), in order."""

    def step_loss(self, model: nn.Module, batch: Any) -> tuple[Tensor, int]:
        """``(loss, examples)`` of one batch in training mode; the trainer backpropagates the loss
        and reports the examples-weighted mean per epoch."""

    def has_part(self, part: Part) -> bool:
        """Whether ``part`` holds anything to evaluate."""

    def evaluate(self, model: nn.Module, part: Part) -> dict[str, float]:
        """Metrics of ``model`` (in evaluation mode, without gradients) on ``part``."""


@dataclass
class FitResult:
    """What a fit returns, for every task: one set of keys, times in seconds."""

    metric: str  # the selection metric, a key of ``valid`` and ``test``
    valid: dict[str, float]  # validation metrics of the selected weights
    test: dict[str, float]  # test metrics of the selected weights
    best_epoch: int  # the selected epoch (select: last -> the last epoch)
    epochs: int  # epochs run (early stopping may cut the budget short)
    s_per_epoch: float  # mean wall time of a training epoch (no evaluation), the first one excluded
    seconds: float  # the whole fit, evaluation included (over every attempt of a resumed run)
    history: list[dict] = field(default_factory=list)  # one ``info`` per epoch (see ProgressFn)
    stopped_by: str | None = None  # "patience" (early stopping), "time_budget", or None (the epoch budget ran out)
    state_dict: dict | None = None  # the selected weights (``keep_state=True``)

    def __repr__(self) -> str:
        return (f"FitResult({self.metric}: valid {self.valid_score:.4f}, test {self.test_score:.4f}; epoch "
                f"{self.best_epoch} of {self.epochs}, {self.s_per_epoch:.3f} s/epoch, {self.seconds:.1f} s)")

    @property
    def valid_score(self) -> float:
        return float(self.valid.get(self.metric, math.nan))

    @property
    def test_score(self) -> float:
        return float(self.test.get(self.metric, math.nan))


class Stopper:
    """Early stopping and selection on validation evaluations (see :class:`Task` for the rules)."""

    def __init__(self, rule: StopRule, patience: int):
        if rule not in ("metric", "loss", "metric_or_loss"):
            raise ValueError(f"unknown stop rule {rule!r}; choose metric, loss or metric_or_loss")
        self.rule, self.patience = rule, patience
        self.best_metric, self.best_loss = -math.inf, math.inf
        self.bad = 0

    def update(self, metric: float, loss: float | None) -> bool:
        """Record one evaluation; returns whether it is the new selected one."""
        if self.rule != "metric" and loss is None:
            raise ValueError(f"stop rule {self.rule!r} needs a validation loss, and the task reports none")
        lo = math.inf if loss is None else loss
        if self.rule == "metric":
            record = reset = metric > self.best_metric or (metric == self.best_metric and lo < self.best_loss)
        elif self.rule == "loss":
            record = reset = lo < self.best_loss
        else:
            reset = metric >= self.best_metric or lo <= self.best_loss
            record = metric >= self.best_metric and lo <= self.best_loss
        if reset:
            self.best_metric, self.best_loss = max(metric, self.best_metric), min(lo, self.best_loss)
            self.bad = 0
        else:
            self.bad += 1
        return record

    @property
    def exhausted(self) -> bool:
        return self.bad >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best_metric": self.best_metric, "best_loss": self.best_loss, "bad": self.bad}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_metric, self.best_loss = float(state["best_metric"]), float(state["best_loss"])
        self.bad = int(state["bad"])


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> CUDA when torch sees a GPU, else the CPU; otherwise ``torch.device(device)``.

    Raises:
        ValueError: a CUDA device is asked for and torch sees none.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for, but torch sees no CUDA device "
                         f"(torch {torch.__version__}, CUDA build: {torch.version.cuda is not None})")  # fmt: skip
    return dev


class Trainer:
    """The training loop (see the module docstring).

    Args:
        epochs: epoch budget.
        patience: evaluations without improvement before stopping (``select: best``).
        eval_every: epochs between validation evaluations; the last epoch is always evaluated.
        select: ``best`` or ``last``.
        optimizer, lr, weight_decay, weight_decay_on: passed to
            :func:`~graphrec.tasks.optim.build_optimizer`.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or a ``torch.device``.
        progress: ``True`` for a rich progress bar on stderr, a :data:`ProgressFn`, or None.
        checkpoint: a path (written atomically) or a callable given the checkpoint state,
            every ``checkpoint_every`` epochs, on early stopping and after the last epoch.
        resume: a checkpoint state (or its path) to continue from.
        row_lr: :class:`~graphrec.tasks.optim.RowLRScale` adjustments (warm starts).
        keep_state: return the selected weights in :attr:`FitResult.state_dict`.
        time_budget: seconds of fitting (evaluations included) after which training stops at the end of
            the running epoch, which is then evaluated; selection applies as usual (default: no limit).
        curvature_lr: learning rate of learnable curvatures (their own parameter group; default ``lr``).
        nan_guard: ``loss`` (check the loss of every step), ``grads`` (also every gradient, before the
            optimizer step; about a millisecond per million weights), ``auto`` (``grads`` for models with
            manifold parameters or learnable curvatures, ``loss`` otherwise) or ``none``.
    """

    def __init__(
        self,
        epochs: int = 200,
        patience: int = 100,
        eval_every: int = 1,
        select: Literal["best", "last"] = "best",
        optimizer: str = "auto",
        lr: float = 0.01,
        weight_decay: float = 0.0,
        weight_decay_on: str = "all",
        device: str | torch.device = "auto",
        progress: bool | ProgressFn | None = None,
        checkpoint: str | os.PathLike | Callable[[dict], None] | None = None,
        checkpoint_every: int = 1,
        resume: dict | str | os.PathLike | None = None,
        row_lr: Sequence[RowLRScale] | None = None,
        keep_state: bool = False,
        curvature_lr: float | None = None,
        nan_guard: NanGuard = "auto",
        time_budget: float | None = None,
    ):
        if select not in ("best", "last"):
            raise ValueError(f"select must be 'best' or 'last', got {select!r}")
        for name, value in (("epochs", epochs), ("patience", patience), ("eval_every", eval_every),
                            ("checkpoint_every", checkpoint_every)):  # fmt: skip
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        self.epochs, self.patience, self.eval_every, self.select = epochs, patience, eval_every, select
        self.optimizer_name, self.lr = optimizer, lr
        self.weight_decay, self.weight_decay_on = weight_decay, weight_decay_on
        self.device = resolve_device(device)
        self.progress, self.checkpoint, self.checkpoint_every = progress, checkpoint, checkpoint_every
        self.resume, self.row_lr, self.keep_state = resume, list(row_lr or []), keep_state
        if nan_guard not in ("auto", "loss", "grads", "none"):
            raise ValueError(f"nan_guard must be auto, loss, grads or none, got {nan_guard!r}")
        self.curvature_lr, self.nan_guard = curvature_lr, nan_guard
        if time_budget is not None and not time_budget > 0:
            raise ValueError(f"time_budget must be a positive number of seconds, got {time_budget}")
        self.time_budget = time_budget

    @classmethod
    def from_config(cls, cfg: Any, **kwargs: Any) -> Trainer:
        """A trainer with the options of a ``train`` config section
        (:class:`~graphrec.config.TrainerConfig` or a subclass); ``kwargs`` add or override."""
        opts = {k: getattr(cfg, k) for k in ("epochs", "patience", "eval_every", "select", "optimizer", "lr",
                                              "weight_decay", "weight_decay_on", "device")}  # fmt: skip
        opts.update({k: getattr(cfg, k) for k in ("curvature_lr", "nan_guard", "time_budget") if hasattr(cfg, k)})
        return cls(**{**opts, **kwargs})

    # ------------------------------------------------------------------ seams
    def wrap(self, model: nn.Module) -> nn.Module:
        """The model the loop runs (default: itself); a subclass may wrap it. Data-parallel training needs no
        wrapper: :class:`~graphrec.tasks.distributed.GradientSync` synchronises after ``backward``."""
        return model

    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        opt = build_optimizer(model, self.optimizer_name, self.lr, self.weight_decay, self.weight_decay_on,
                              curvature_lr=self.curvature_lr)  # fmt: skip
        attach_row_lr(opt, self.row_lr)
        return opt

    def save_checkpoint(self, state: dict) -> None:
        if callable(self.checkpoint):
            self.checkpoint(state)
        elif self.checkpoint is not None:
            with atomic_open(Path(self.checkpoint), "wb") as fh:
                torch.save(state, fh)

    # ------------------------------------------------------------------ the loop
    def fit(self, model: nn.Module, task: Task) -> FitResult:
        """Train ``model`` on ``task``; see the class docstring.

        Raises:
            ValueError: ``select: best`` with an empty validation part, or an invalid option.
        """
        has_valid = task.has_part("valid")
        if self.select == "best" and not has_valid:
            raise ValueError("the validation part is empty; selecting the best epoch needs one (or select: last)")
        model.to(self.device)
        task.to(self.device)
        world = du.world_size()
        sync = shard = None
        if world > 1:
            dp.broadcast_parameters(model)
            sync = dp.GradientSync(model)
            shard = getattr(task, "shard_batch", None) or dp.shard_batch
        run = self.wrap(model)
        opt = self.make_optimizer(model)
        try:
            return self._fit(model, task, run, opt, sync, shard, world)
        finally:
            if sync is not None:
                sync.close()

    def _fit(self, model: nn.Module, task: Task, run: nn.Module, opt: torch.optim.Optimizer,
             sync: dp.GradientSync | None, shard: Callable | None, world: int) -> FitResult:  # fmt: skip
        has_valid = task.has_part("valid")
        stopper = Stopper(task.stop_rule, self.patience)
        best: tuple[int, dict[str, float]] | None = None
        best_state: dict | None = None
        history: list[dict] = []
        epoch_times: list[float] = []
        last_eval: tuple[int, dict[str, float]] | None = None
        first, stopped, elapsed = 1, False, 0.0
        stopped_by: str | None = None
        guard = self.nan_guard
        if guard == "auto":
            guard = "grads" if any(is_manifold_parameter(p) or getattr(p, "is_curvature", False)
                                   for p in model.parameters()) else "loss"  # fmt: skip
        start_epoch = getattr(task, "start_epoch", None)
        resume = self.resume
        if isinstance(resume, str | os.PathLike):
            resume = torch.load(resume, map_location=self.device, weights_only=True)
        if resume is not None:
            missing = sorted(_CHECKPOINT_KEYS - set(resume))
            if missing:
                raise ValueError(f"the checkpoint to resume from lacks {missing}: it was written by another "
                                 "version of graphrec; delete it to start the run again")  # fmt: skip
            model.load_state_dict(resume["model"])
            opt.load_state_dict(resume["optimizer"])
            stopper.load_state_dict(resume["stopper"])
            if resume["best_epoch"] is not None:
                best = (int(resume["best_epoch"]), dict(resume["best_valid"]))
            best_state = resume["best_state"]
            if resume["last_eval_epoch"] is not None:
                last_eval = (int(resume["last_eval_epoch"]), dict(resume["last_eval"]))
            history, epoch_times = list(resume["history"]), list(resume["epoch_times"])
            first, stopped, elapsed = int(resume["epoch"]) + 1, bool(resume["stopped"]), float(resume["seconds"])
            stopped_by = resume.get("stopped_by")
            set_rng_state(dp.pick_rank_state(resume.get("rng_ranks"), resume["rng"]))
        t_start = time.perf_counter() - elapsed
        epoch = first - 1
        progress = self.progress if du.is_main() else None
        with _Progress(progress, self.epochs, task.metric, getattr(task, "progress_text", None)) as bar:
            if resume is not None:
                bar.update(epoch, {"epoch": epoch, **(history[-1] if history else {})})
            for epoch in range(first, self.epochs + 1) if not stopped else ():
                if start_epoch is not None:
                    start_epoch(model, epoch)
                run.train()
                t0 = time.perf_counter()
                loss = train_epoch(run, task, opt, epoch, guard=guard, on_step=bar.step if bar.live else None,
                                   sync=sync, shard=shard)  # fmt: skip
                epoch_times.append(time.perf_counter() - t0)
                if world > 1:
                    dp.check_replicas(model, epoch)
                info: dict[str, Any] = {"epoch": epoch, "loss": loss}
                # every rank must take the same branch: one rank's clock decides for all
                over = du.agree(self.time_budget is not None and time.perf_counter() - t_start > self.time_budget,
                                "the time budget")  # fmt: skip
                if has_valid and (epoch % self.eval_every == 0 or epoch == self.epochs or over):
                    val = _evaluate(task, model, "valid")
                    last_eval = (epoch, val)
                    info["valid"] = float(val[task.metric])
                    if "loss" in val:
                        info["valid_loss"] = float(val["loss"])
                    if stopper.update(float(val[task.metric]), val.get("loss")):
                        best = (epoch, val)
                        if self.select == "best":
                            best_state = copy.deepcopy(model.state_dict())
                info["seconds"] = time.perf_counter() - t_start  # wall time so far: time-to-accuracy curves
                history.append(info)
                stopped = (self.select == "best" and stopper.exhausted) or over
                if stopped and epoch < self.epochs:
                    stopped_by = "time_budget" if over else "patience"
                if self.checkpoint is not None and (epoch % self.checkpoint_every == 0 or stopped or epoch == self.epochs):
                    rngs = dp.rng_for_ranks(rng_state()) if world > 1 else None
                    if du.is_main():
                        self.save_checkpoint({
                            "epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                            "stopper": stopper.state_dict(), "stopped": stopped, "stopped_by": stopped_by,
                            "best_epoch": best[0] if best else None, "best_valid": best[1] if best else {},
                            "best_state": best_state,
                            "last_eval_epoch": last_eval[0] if last_eval else None,
                            "last_eval": last_eval[1] if last_eval else {},
                            "history": history, "epoch_times": epoch_times, "rng": rng_state(),
                            "seconds": time.perf_counter() - t_start, **({"rng_ranks": rngs} if rngs else {}),
                        })  # fmt: skip
                    du.barrier("writing the checkpoint")  # no rank runs ahead of a checkpoint it may resume from
                bar.update(epoch, info)  # after the checkpoint: a failing callback loses no epoch
                if stopped:
                    break
        if self.select == "best":
            if best is None or best_state is None:  # pragma: no cover - the first evaluation is always selected
                raise RuntimeError("no validation evaluation was selected")
            model.load_state_dict(best_state)
            best_epoch, valid = best
        else:
            best_epoch = epoch
            if not has_valid:
                valid = {}
            elif last_eval is not None and last_eval[0] == epoch:
                valid = last_eval[1]
            else:
                valid = _evaluate(task, model, "valid")
        test = _evaluate(task, model, "test") if task.has_part("test") else {}
        steady = epoch_times[1:] or epoch_times
        return FitResult(
            metric=task.metric, valid=dict(valid), test=test, best_epoch=best_epoch, epochs=epoch,
            s_per_epoch=float(np.mean(steady)) if steady else 0.0, seconds=time.perf_counter() - t_start,
            history=history, state_dict=copy.deepcopy(model.state_dict()) if self.keep_state else None,
            stopped_by=stopped_by,
        )  # fmt: skip


def _evaluate(task: Task, model: nn.Module, part: Part) -> dict[str, float]:
    """``task.evaluate``; on several ranks rank 0's result is every rank's, so that selection and early stopping
    take the same decisions everywhere (a task may shard its evaluation and reduce it itself)."""
    return du.broadcast_object(task.evaluate(model, part), 0, f"sharing the {part} metrics")


_CHECKPOINT_KEYS = {"epoch", "model", "optimizer", "stopper", "stopped", "best_epoch", "best_valid", "best_state",
                    "last_eval_epoch", "last_eval", "history", "epoch_times", "rng", "seconds"}  # fmt: skip


def train_epoch(model: nn.Module, task: Task, opt: torch.optim.Optimizer, epoch: int,
                guard: NanGuard = "loss", on_step: Callable[[int, float], None] | None = None,
                sync: Callable[[float, int], tuple[float, int]] | None = None,
                shard: Callable[[Any, int, int], Any] | None = None) -> float:  # fmt: skip
    """One training epoch: every batch of ``task`` (forward, loss, backward, optimizer step);
    returns the examples-weighted mean loss. The body of :meth:`Trainer.fit`'s loop (benchmarks
    time it alone). ``on_step(step, running mean loss)`` after every step (the progress bar's
    within-epoch line).

    On several ranks, ``shard(batch, rank, world)`` gives the rank's share of each global batch (None: an
    empty share) and ``sync(loss, n)`` averages the gradients after ``backward`` and returns the global loss
    (:class:`~graphrec.tasks.distributed.GradientSync`); the loss is then the global batch's.
    ``$GRAPHREC_TRAIN_FAULT`` = ``rank<R>-epoch<E>-step<S>`` kills that rank there (crash tests).

    Raises:
        NonFiniteError: ``guard`` is ``loss`` or ``grads`` and a loss (or, with ``grads``, a gradient)
            is NaN or infinite; the optimizer has not stepped on it, so the weights are those of the step before.
    """
    total, count = 0.0, 0
    rank, world = du.rank(), du.world_size()
    for step, batch in enumerate(task.batches(epoch), 1):
        fault_point("GRAPHREC_TRAIN_FAULT", f"rank{rank}-epoch{epoch}-step{step}")
        opt.zero_grad(set_to_none=True)
        if shard is not None:
            batch = shard(batch, rank, world)
        if batch is None:  # this rank's share of the global batch is empty: it contributes no gradient
            value, n = 0.0, 0
        else:
            loss, n = task.step_loss(model, batch)
            value = float(loss.detach())
        if sync is None and guard != "none" and not math.isfinite(value):
            loss.backward()  # the gradients say which parameter the non-finite value flows to
            raise NonFiniteError(_non_finite_message(model, epoch, step, f"the loss is {value}"))
        if batch is not None:
            loss.backward()
        if sync is not None:
            value, n = sync(value, n)  # the global batch's loss; a NaN on any rank is a NaN on every rank
            if guard != "none" and not math.isfinite(value):
                raise NonFiniteError(_non_finite_message(model, epoch, step, f"the loss is {value} (on some rank)"))
        if guard == "grads":
            bad = [p.grad for p in model.parameters() if p.grad is not None]
            if bad and not bool(torch.stack([torch.isfinite(g).all() for g in bad]).all()):
                raise NonFiniteError(_non_finite_message(model, epoch, step, "a gradient is not finite"))
        opt.step()
        total += value * n
        count += n
        if on_step is not None:
            on_step(step, total / max(count, 1))
    return total / max(count, 1)


def _non_finite_message(model: nn.Module, epoch: int, step: int, what: str) -> str:
    """Which parameters hold non-finite values or gradients, for :class:`NonFiniteError`."""
    names = []
    for name, p in model.named_parameters():
        for kind, t in (("value", p.detach()), ("gradient", p.grad)):
            if t is not None and not bool(torch.isfinite(t).all()):
                names.append(f"{name} ({int((~torch.isfinite(t)).sum())} of {t.numel()} {kind} entries)")
    where = "; non-finite: " + ", ".join(names) if names else "; every parameter and gradient is finite"
    return (f"training diverged at epoch {epoch}, step {step}: {what}{where}. The weights are those before this step; "
            "lower train.lr, raise the curvature's lower bound, or check the inputs for NaN")  # fmt: skip


class _Progress:
    """A rich bar (``True``, in a terminal), periodic lines (``True``, when stderr is a file or
    a pipe: about every tenth of the budget, or every 30 s), a :data:`ProgressFn`, or nothing.

    A task with a ``progress_text()`` method (e.g. tokens per second) has its text appended; in a
    terminal the bar also refreshes within an epoch (:meth:`step`)."""

    def __init__(self, progress: bool | ProgressFn | None, total: int, metric: str,
                 extra: Callable[[], str] | None = None):  # fmt: skip
        self.callback = progress if callable(progress) else None
        self.total, self.metric, self.extra = total, metric, extra
        self._step_at = 0.0
        self._bar = self._task = None
        self._lines = False
        if progress is True:
            from graphrec.utils.console import err, progress_bar

            if err.is_terminal:
                self._bar = progress_bar()
            else:
                self._lines, self._console = True, err
                self._every, self._last = max(1, total // 10), time.monotonic()

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.__enter__()
            self._task = self._bar.add_task("epochs", total=self.total, info="")
        return self

    @property
    def live(self) -> bool:
        """Whether a rich bar is shown (within-epoch updates are worth making)."""
        return self._bar is not None

    def _text(self, info: dict) -> str:
        text = f"loss {info['loss']:.4f}" if "loss" in info else ""
        if "valid" in info:  # a task that selects on its loss reports -loss as the metric: show the loss
            text += (f"  valid loss {-info['valid']:.4f}" if self.metric == "neg_loss" else
                     f"  valid {self.metric} {info['valid']:.4f}")  # fmt: skip
        if self.extra is not None:
            text += f"  {self.extra()}"
        return text

    def step(self, step: int, loss: float) -> None:
        """Within an epoch: the running loss (and the task's text), at most four times a second."""
        now = time.monotonic()
        if self._bar is not None and now - self._step_at >= 0.25:
            self._step_at = now
            self._bar.update(self._task, info=f"step {step}  loss {loss:.4f}" + (f"  {self.extra()}" if self.extra else ""))

    def update(self, epoch: int, info: dict) -> None:
        if self.callback is not None and info.get("epoch"):
            self.callback(epoch, self.total, info)
        if self._bar is not None:
            self._bar.update(self._task, completed=epoch, info=self._text(info))
        elif self._lines and info.get("epoch"):
            now = time.monotonic()
            if epoch % self._every == 0 or epoch == self.total or now - self._last >= 30:
                self._console.print(f"epoch {epoch}/{self.total}  {self._text(info)}", highlight=False)
                self._last = now

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
