"""Node classification: full-batch training with early stopping on validation.

Transductive (one graph with train/val/test masks) and inductive (train on some graphs,
select on others, report on unseen graphs); single-label (softmax cross-entropy,
accuracy) and multi-label (BCE, micro-F1).
"""

from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.transforms import NormalizeFeatures

from graphrec.config import TrainConfig
from graphrec.data.ppi import InductiveDataset


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class FitResult:
    metric: str  # "accuracy" or "micro_f1"
    test: float  # test metric at the selected epoch
    val: float  # validation metric at the selected epoch
    best_epoch: int
    epochs: int  # epochs run (early stopping may cut them short)
    ms_per_epoch: float  # mean wall time of one training step (forward, backward, update)
    seconds: float  # wall time of the whole fit, evaluation included
    history: list[dict] = field(default_factory=list)
    state_dict: dict | None = None  # weights at the selected epoch


def micro_f1(logits: Tensor, y: Tensor) -> float:
    pred = logits > 0
    y = y > 0.5
    tp = (pred & y).sum().item()
    fp = (pred & ~y).sum().item()
    fn = (~pred & y).sum().item()
    return 2 * tp / max(2 * tp + fp + fn, 1)


def prepare(data, normalize_features: bool):
    """Row-normalise features (a copy; the dataset is untouched)."""
    if not normalize_features:
        return data
    norm = NormalizeFeatures()
    if isinstance(data, InductiveDataset):
        return InductiveDataset(
            data.name,
            [norm(g.clone()) for g in data.train],
            [norm(g.clone()) for g in data.val],
            [norm(g.clone()) for g in data.test],
            data.num_features,
            data.num_classes,
            data.multilabel,
        )
    return norm(data.clone())


def optimizer_for(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam with weight decay on all parameters, on weights only, or on the first layer only."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.weight_decay == 0 or cfg.weight_decay_on == "all":
        groups = [{"params": params, "weight_decay": cfg.weight_decay}]
    elif cfg.weight_decay_on == "non_bias":
        decay = [p for n, p in model.named_parameters() if p.requires_grad and not n.endswith("bias")]
        ids = {id(p) for p in decay}
        groups = [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": [p for p in params if id(p) not in ids], "weight_decay": 0.0},
        ]
    else:
        first = _first_layer(model)
        if first is None:
            raise ValueError(f"{type(model).__name__} has no 'first_layer'; use weight_decay_on: all")
        ids = {id(p) for p in first.parameters()}
        groups = [
            {"params": [p for p in params if id(p) in ids], "weight_decay": cfg.weight_decay},
            {"params": [p for p in params if id(p) not in ids], "weight_decay": 0.0},
        ]
    return torch.optim.Adam(groups, lr=cfg.lr)


def _first_layer(model: nn.Module) -> nn.Module | None:
    while not hasattr(model, "first_layer") and hasattr(model, "model"):
        model = model.model  # wrappers such as HopSampling
    return getattr(model, "first_layer", None)


def _aux_loss(model: nn.Module) -> Tensor | None:
    fn = getattr(model, "auxiliary_loss", None)
    return fn() if fn is not None else None


class _Stopper:
    """Early stopping on validation; decides when to record the test metric."""

    def __init__(self, rule: str, patience: int):
        self.rule, self.patience = rule, patience
        self.best_acc, self.best_loss = -float("inf"), float("inf")
        self.bad = 0

    def update(self, acc: float, loss: float) -> tuple[bool, bool]:
        """Returns (record this epoch, stop now)."""
        if self.rule == "acc":
            record = acc > self.best_acc or (acc == self.best_acc and loss < self.best_loss)
            reset = record
        elif self.rule == "loss":
            record = reset = loss < self.best_loss
        else:  # acc_or_loss, as in the GAT and GESM reference code
            reset = acc >= self.best_acc or loss <= self.best_loss
            record = acc >= self.best_acc and loss <= self.best_loss
        if reset:
            self.best_acc, self.best_loss = max(acc, self.best_acc), min(loss, self.best_loss)
            self.bad = 0
        else:
            self.bad += 1
        return record, self.bad >= self.patience


def _loss_and_metric(logits: Tensor, y: Tensor, multilabel: bool) -> tuple[Tensor, float]:
    if multilabel:
        return F.binary_cross_entropy_with_logits(logits, y.float()), micro_f1(logits, y)
    loss = F.cross_entropy(logits, y)
    return loss, (logits.argmax(-1) == y).float().mean().item() if y.numel() else 0.0


def fit(data, model: nn.Module, cfg: TrainConfig, progress=None, keep_state: bool = False) -> FitResult:
    """Train ``model`` on ``data`` (a ``Data`` with masks, or an :class:`InductiveDataset`).

    ``progress`` is an optional callable ``progress(epoch, total, info: dict)`` invoked after
    every epoch (the CLI passes a rich progress bar updater).
    """
    data = prepare(data, cfg.normalize_features)
    if isinstance(data, InductiveDataset):
        return _fit_inductive(data, model, cfg, progress, keep_state)
    return _fit_transductive(data, model, cfg, progress, keep_state)


def _fit_transductive(data: Data, model, cfg, progress, keep_state) -> FitResult:
    multilabel = data.y.dim() > 1
    opt = optimizer_for(model, cfg)
    stopper = _Stopper(cfg.stop_on, cfg.patience)
    x, ei, y = data.x, data.edge_index, data.y
    ew = getattr(data, "edge_weight", None)
    train_m, val_m, test_m = data.train_mask, data.val_mask, data.test_mask
    if int(train_m.sum()) == 0:
        raise ValueError("the training mask selects no node")
    best, best_state = None, None
    history, step_times = [], []
    t_start = time.perf_counter()
    epoch = 0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        out = model(x, ei, ew)
        loss, _ = _loss_and_metric(out[train_m], y[train_m], multilabel)
        aux = _aux_loss(model)
        total = loss + aux if aux is not None else loss
        total.backward()
        opt.step()
        step_times.append(time.perf_counter() - t0)

        model.eval()
        with torch.no_grad():
            out = model(x, ei, ew)
            val_loss, val_acc = _loss_and_metric(out[val_m], y[val_m], multilabel)
        record, stop = stopper.update(val_acc, float(val_loss))
        if record:
            _, test_acc = _loss_and_metric(out[test_m], y[test_m], multilabel)
            best = (epoch, val_acc, test_acc)
            if keep_state:
                best_state = copy.deepcopy(model.state_dict())
        info = {"epoch": epoch, "train_loss": loss.item(), "val_loss": float(val_loss), "val": val_acc}
        history.append(info)
        if progress is not None:
            progress(epoch, cfg.epochs, info)
        if stop:
            break
    return _result(multilabel, best, epoch, step_times, t_start, history, best_state)


def _result(multilabel, best, epochs, step_times, t_start, history, state) -> FitResult:
    if best is None:
        raise RuntimeError("no epoch was selected (validation metric never computed)")
    # Skip the first step: it builds caches (normalised adjacency, sparse features).
    steady = step_times[1:] or step_times
    return FitResult(
        metric="micro_f1" if multilabel else "accuracy",
        test=best[2],
        val=best[1],
        best_epoch=best[0],
        epochs=epochs,
        ms_per_epoch=1000 * float(np.mean(steady)),
        seconds=time.perf_counter() - t_start,
        history=history,
        state_dict=state,
    )


def _evaluate_graphs(model, graphs: list[Data], multilabel: bool) -> tuple[float, float]:
    model.eval()
    outs, ys = [], []
    with torch.no_grad():
        for g in graphs:
            outs.append(model(g.x, g.edge_index, getattr(g, "edge_weight", None)))
            ys.append(g.y)
    loss, metric = _loss_and_metric(torch.cat(outs), torch.cat(ys), multilabel)
    return float(loss), metric


def _fit_inductive(ds: InductiveDataset, model, cfg, progress, keep_state) -> FitResult:
    opt = optimizer_for(model, cfg)
    stopper = _Stopper(cfg.stop_on, cfg.patience)
    best, best_state = None, None
    history, step_times = [], []
    t_start = time.perf_counter()
    multilabel = ds.multilabel
    epoch = 0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = torch.randperm(len(ds.train)).tolist()
        epoch_loss, t0 = 0.0, time.perf_counter()
        for i in range(0, len(order), cfg.batch_size):
            batch = Batch.from_data_list([ds.train[j] for j in order[i : i + cfg.batch_size]])
            opt.zero_grad(set_to_none=True)
            out = model(batch.x, batch.edge_index, getattr(batch, "edge_weight", None))
            loss, _ = _loss_and_metric(out, batch.y, multilabel)
            aux = _aux_loss(model)
            (loss + aux if aux is not None else loss).backward()
            opt.step()
            epoch_loss += loss.item()
        step_times.append(time.perf_counter() - t0)
        val_loss, val_metric = _evaluate_graphs(model, ds.val, multilabel)
        record, stop = stopper.update(val_metric, val_loss)
        if record:
            _, test_metric = _evaluate_graphs(model, ds.test, multilabel)
            best = (epoch, val_metric, test_metric)
            if keep_state:
                best_state = copy.deepcopy(model.state_dict())
        info = {"epoch": epoch, "train_loss": epoch_loss, "val_loss": val_loss, "val": val_metric}
        history.append(info)
        if progress is not None:
            progress(epoch, cfg.epochs, info)
        if stop:
            break
    return _result(multilabel, best, epoch, step_times, t_start, history, best_state)
