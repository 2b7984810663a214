"""Node classification as a :class:`~graphrec.tasks.trainer.Task`: full-batch steps, selection on validation.

Transductive (one graph with ``train_mask`` / ``val_mask`` / ``test_mask``) and inductive
(an :class:`~graphrec.data.ppi.InductiveDataset`: train on some graphs, select on others,
report on unseen ones); single-label (softmax cross-entropy, accuracy) and multi-label
(binary cross-entropy, micro-F1).

>>> cfg = resolve_config("gesm", "Cora")                                   # doctest: +SKIP
>>> model = build_backbone(cfg, data.num_features, num_classes(data))        # doctest: +SKIP
>>> fit_node(data, model, cfg.train).test["accuracy"]                       # doctest: +SKIP
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.transforms import NormalizeFeatures

from graphrec.config.node import NodeConfig, TrainConfig
from graphrec.data.ppi import InductiveDataset
from graphrec.metrics import micro_f1
from graphrec.models import build_model
from graphrec.tasks.trainer import FitResult, Part, ProgressFn, Trainer

#: ``train.stop_on`` of the node config -> the trainer's stop rule.
STOP_RULES = {"acc": "metric", "loss": "loss", "acc_or_loss": "metric_or_loss"}


def build_backbone(cfg: NodeConfig, in_channels: int, out_channels: int) -> nn.Module:
    """The configured backbone for ``in_channels`` features and ``out_channels`` classes,
    hop-sampled when ``train.hop_sampling.enabled``.

    Raises:
        ValueError: invalid parameters, or hop sampling on a model without K propagation steps.
    """
    hs = cfg.train.hop_sampling
    return build_model(cfg.model_name, in_channels, out_channels,
                       hop_sampling=hs.model_dump() if hs.enabled else None, **cfg.model_params)  # fmt: skip


def num_classes(data: Data | InductiveDataset) -> int:
    if isinstance(data, InductiveDataset):
        return data.num_classes
    return int(getattr(data, "num_classes", int(data.y.max()) + 1))


def prepare(data: Data | InductiveDataset, normalize_features: bool) -> Data | InductiveDataset:
    """Row-normalised features (a copy; the dataset is untouched)."""
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


def _loss(logits: Tensor, y: Tensor, multilabel: bool) -> Tensor:
    if multilabel:
        return F.binary_cross_entropy_with_logits(logits, y.float())
    return F.cross_entropy(logits, y)


def _metric(logits: Tensor, y: Tensor, multilabel: bool) -> float:
    if multilabel:
        return micro_f1(logits, y)
    return (logits.argmax(-1) == y).float().mean().item() if y.numel() else 0.0


def _forward(model: nn.Module, g: Data) -> Tensor:
    return model(g.x, g.edge_index, getattr(g, "edge_weight", None))


def _with_aux(model: nn.Module, loss: Tensor) -> Tensor:
    aux = model.auxiliary_loss() if hasattr(model, "auxiliary_loss") else None
    return loss + aux if aux is not None else loss


class NodeTask:
    """Node classification on one graph (masks) or on graph lists (inductive).

    Args:
        data: a ``Data`` with ``x``, ``edge_index``, ``y`` and the three masks, or an
            :class:`~graphrec.data.ppi.InductiveDataset`.
        cfg: the ``train`` section (normalisation, ``stop_on``, inductive ``batch_size``).

    Raises:
        ValueError: the training mask selects no node.
    """

    def __init__(self, data: Data | InductiveDataset, cfg: TrainConfig):
        self.data = prepare(data, cfg.normalize_features)
        self.inductive = isinstance(self.data, InductiveDataset)
        self.multilabel = self.data.multilabel if self.inductive else self.data.y.dim() > 1
        self.metric = "micro_f1" if self.multilabel else "accuracy"
        self.stop_rule = STOP_RULES[cfg.stop_on]
        self.batch_size = cfg.batch_size
        if not self.inductive and int(self.data.train_mask.sum()) == 0:
            raise ValueError("the training mask selects no node")

    def to(self, device: torch.device) -> None:
        if self.inductive:
            d = self.data
            self.data = InductiveDataset(d.name, [g.to(device) for g in d.train], [g.to(device) for g in d.val],
                                         [g.to(device) for g in d.test], d.num_features, d.num_classes, d.multilabel)  # fmt: skip
        else:
            self.data = self.data.to(device)

    def batches(self, epoch: int) -> Iterable[Any]:
        if not self.inductive:
            yield self.data
            return
        order = torch.randperm(len(self.data.train)).tolist()
        for i in range(0, len(order), self.batch_size):
            yield Batch.from_data_list([self.data.train[j] for j in order[i : i + self.batch_size]])

    def shard_batch(self, batch: Data, rank: int, world: int) -> Data | None:
        """Rank ``rank``'s share of a training step (several ranks): a transductive graph keeps its nodes and edges
        (the forward pass needs the whole neighbourhood) with the training mask cut to the rank's contiguous
        share of the training nodes; an inductive batch keeps the rank's share of its graphs. None: no share."""
        from graphrec.utils.distributed import shard_range

        if self.inductive:
            graphs = batch.to_data_list()
            a, b = shard_range(len(graphs), rank, world)
            return Batch.from_data_list(graphs[a:b]) if b > a else None
        idx = torch.nonzero(batch.train_mask).view(-1)
        a, b = shard_range(idx.numel(), rank, world)
        if b <= a:
            return None
        mask = torch.zeros_like(batch.train_mask)
        mask[idx[a:b]] = True
        out = copy.copy(batch)
        out.train_mask = mask
        return out

    def step_loss(self, model: nn.Module, batch: Data) -> tuple[Tensor, int]:
        out = _forward(model, batch)
        if self.inductive:
            loss, n = _loss(out, batch.y, self.multilabel), batch.num_nodes
        else:
            m = batch.train_mask
            loss, n = _loss(out[m], batch.y[m], self.multilabel), int(m.sum())
        return _with_aux(model, loss), n

    def has_part(self, part: Part) -> bool:
        if self.inductive:
            return bool(self.data.val if part == "valid" else self.data.test)
        return bool((self.data.val_mask if part == "valid" else self.data.test_mask).any())

    @torch.no_grad()
    def evaluate(self, model: nn.Module, part: Part) -> dict[str, float]:
        """``{metric: ..., "loss": ...}`` on the validation or test nodes (graphs)."""
        model.eval()
        if self.inductive:
            graphs = self.data.val if part == "valid" else self.data.test
            out = torch.cat([_forward(model, g) for g in graphs])
            y = torch.cat([g.y for g in graphs])
        else:
            m = self.data.val_mask if part == "valid" else self.data.test_mask
            out, y = _forward(model, self.data)[m], self.data.y[m]
        return {self.metric: _metric(out, y, self.multilabel), "loss": float(_loss(out, y, self.multilabel))}


def fit_node(data: Data | InductiveDataset, model: nn.Module, cfg: TrainConfig,
             progress: bool | ProgressFn | None = None, **trainer_options: Any) -> FitResult:  # fmt: skip
    """Train ``model`` on ``data`` with the options of ``cfg`` (a node ``train`` section);
    ``trainer_options`` go to :class:`~graphrec.tasks.trainer.Trainer` (``checkpoint``, ``resume``,
    ``keep_state``...)."""
    return Trainer.from_config(cfg, progress=progress, **trainer_options).fit(model, NodeTask(data, cfg))
