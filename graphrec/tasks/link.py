"""Recommendation (link prediction) as a :class:`~graphrec.tasks.trainer.Task`: user -> item (or ad) on store graphs.

* Model: ID embeddings (and/or store features) through any registered backbone on the
  user+item graph (:class:`~graphrec.models.BipartiteRecommender`); MF, LightGCN, XSimGCL,
  GCN, GSM, GESM..., hop-sampled when configured. Pairs score through the recommender's
  :class:`~graphrec.nn.score.Scorer`.
* Loss (:meth:`BipartiteRecommender.loss`): BPR or BCE on sampled negatives (uniform, or
  popularity^0.75), optional L2 on the batch's input embeddings, plus the backbone's
  auxiliary losses (GESM's regulariser, XSimGCL's contrastive loss).
* Steps: full graph (every step propagates over the whole training graph, as in RecBole's
  LightGCN) or sampled subgraphs (PyG ``LinkLoader`` driven by
  :class:`~graphrec.sampling.CSRNeighborSampler`) for graphs too large for that.
* Evaluation: full ranking (``train.stop_on`` for selection); validation masks training
  items, test masks training and validation items.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from graphrec.config.rec import RecConfig
from graphrec.data.interactions import RecData
from graphrec.metrics import evaluate_topk
from graphrec.models import BipartiteRecommender, ModelSpec, build_model, get_spec
from graphrec.nn.score import build_scorer
from graphrec.sampling import NegativeSampler
from graphrec.tasks import distributed as dp
from graphrec.tasks.trainer import FitResult, Part, ProgressFn, Trainer
from graphrec.utils import distributed as du


def build_id_backbone(cfg: RecConfig | Any) -> tuple[ModelSpec, nn.Module]:
    """``(spec, backbone)`` of the configured model for learnable ID inputs of ``train.embedding_dim``, hop-sampled
    when enabled (a recommendation or ad-targeting config).

    Raises:
        ValueError: a backbone that cannot learn its inputs (``learns_inputs``), bad parameters,
            or hop sampling on a model without K propagation steps.
    """
    t = cfg.train
    spec = get_spec(cfg.model_name)
    if not spec.learns_inputs:
        raise ValueError(f"{spec.name!r} cannot learn its inputs: its forward pass passes no gradient to them "
                         f"({spec.cls.__name__}.learns_inputs is False); see `graphrec models`")  # fmt: skip
    hs = t.hop_sampling
    backbone = build_model(spec.name, t.embedding_dim, t.embedding_dim,
                           hop_sampling=hs.model_dump() if hs.enabled else None, **cfg.model_params)  # fmt: skip
    return spec, backbone


def build_rec_model(cfg: RecConfig, data: RecData) -> BipartiteRecommender:
    """The configured backbone on ``data``'s user+item graph, hop-sampled when enabled.

    Raises:
        ValueError: see :func:`build_id_backbone`, and bad scorer options.
    """
    t = cfg.train
    spec, backbone = build_id_backbone(cfg)
    src = data.source
    return BipartiteRecommender(
        data.num_users, data.num_items, backbone, t.embedding_dim,
        needs_graph=spec.needs_graph, inputs=t.inputs, scorer=build_scorer(t.score, t.score_params),
        user_features=src.user_features, item_features=src.item_features, init=t.init, init_std=t.init_std,
    )  # fmt: skip


@torch.no_grad()
def evaluate(model: BipartiteRecommender | None, data: RecData, part: str = "test", ks=(10, 20), metrics=None,
             chunk_size: int | None = None, embeddings: tuple[Tensor, Tensor] | None = None,
             shard: bool = False) -> dict[str, float]:  # fmt: skip
    """Full-ranking metrics on ``part`` (``valid``: training items masked; ``test``: training
    and validation items masked), scored by ``model.scorer`` in blocks of users.

    ``embeddings``: ``(users [U, d], items [I, d])`` to rank instead of ``model``'s (scored
    with ``model``'s scorer, or by inner product when ``model`` is None). ``shard``: on several ranks, each
    ranks a share of the users and the metrics are all-reduced (see :func:`~graphrec.metrics.evaluate_topk`).

    Raises:
        ValueError: an unknown ``part``, or a cut-off larger than the catalogue.
    """
    from graphrec.nn.score import DotScore

    if part not in ("valid", "test"):
        raise ValueError(f"part must be 'valid' or 'test', got {part!r}")
    users, items = embeddings if embeddings is not None else model.embeddings(data.graph)
    scorer = model.scorer if model is not None else DotScore()
    exclude = [data.csr("train")] + ([data.csr("valid")] if part == "test" else [])
    kwargs = {} if metrics is None else {"metrics": metrics}
    return evaluate_topk(scorer.score_fn(users, items), data.csr(part), data.num_items, ks, exclude,
                         chunk_size=chunk_size, shard=shard, **kwargs)  # fmt: skip


class LinkTask:
    """Recommendation on one split (:class:`~graphrec.data.interactions.RecData`).

    Raises:
        ValueError: the training split is empty.
    """

    stop_rule = "metric"

    def __init__(self, data: RecData, cfg: RecConfig):
        if data.train.size(1) == 0:
            raise ValueError("the training split holds no interaction")
        self.data, self.cfg = data, cfg
        t = cfg.train
        self.metric = t.stop_on
        self.device = torch.device("cpu")
        self.graph = data.graph
        self.negatives = NegativeSampler(data.num_items, t.negatives, data.item_counts, t.popularity_exponent,
                                         data.train_keys() if t.exclude_positives else None)  # fmt: skip
        self.local = None  # this rank's part of the graph (several ranks, sampler: neighbor)
        self.steps: int | None = None  # training steps per epoch, the same on every rank
        if t.sampler == "neighbor" and du.world_size() > 1:
            self.loader = self._partitioned_loader()
        else:
            self.loader = self._link_loader() if t.sampler == "neighbor" else None

    def to(self, device: torch.device) -> None:
        self.device = device
        self.graph = self.data.graph.to(device)

    def _link_loader(self):
        """PyG ``LinkLoader`` over the training pairs with triplet negatives among items."""
        from torch_geometric.data import Data
        from torch_geometric.sampler import NegativeSampling

        from graphrec.sampling import link_loader

        t, data = self.cfg.train, self.data
        U = data.num_users
        graph = Data(edge_index=data.graph, num_nodes=data.num_nodes)
        neg = NegativeSampling("triplet", amount=t.num_negatives, dst_weight=self._negative_weight())
        label_index = torch.stack([data.train[0], data.train[1] + U])
        return link_loader(graph, t.num_neighbors, label_index, neg_sampling=neg, batch_size=t.batch_size, shuffle=True)

    def _negative_weight(self) -> Tensor:
        """Sampling weight of each node as a negative: 0 for users, 1 (uniform) or count^exponent for items."""
        t, data = self.cfg.train, self.data
        U = data.num_users
        weight = torch.zeros(data.num_nodes)
        if t.negatives == "uniform":
            weight[U:] = 1.0
        else:
            weight[U:] = data.item_counts.double().pow(t.popularity_exponent).float()
            if float(weight.sum()) <= 0:
                weight[U:] = 1.0
        return weight

    def _partitioned_loader(self):
        """This rank's ``LinkLoader`` (several ranks, ``sampler: neighbor``): the training graph is partitioned
        (``train.partition``; rank 0's partition is every rank's), the rank keeps its owned nodes plus the halo
        within ``len(num_neighbors)`` hops (:func:`~graphrec.sampling.local_graph`: sampling from owned users sees
        exactly the full graph's neighbourhoods) and trains on the pairs of the users it owns. Negatives are drawn
        among the items the rank holds. Every rank runs the same number of steps per epoch (the smallest)."""
        from torch_geometric.data import Data
        from torch_geometric.sampler import NegativeSampling

        from graphrec.sampling import link_loader, local_graph, partition_graph

        t, data = self.cfg.train, self.data
        U, N, rank, world = data.num_users, data.num_nodes, du.rank(), du.world_size()
        parts = partition_graph(data.graph, N, world, method=t.partition, seed=0) if du.is_main() else None
        parts = du.broadcast_object(parts, 0, "sharing the partition")
        local = local_graph(data.graph, N, parts, rank, num_hops=len(t.num_neighbors))
        mine = parts[data.train[0]] == rank
        src = local.to_local(data.train[0, mine])
        dst = local.to_local(data.train[1, mine] + U)
        if bool((src < 0).any() or (dst < 0).any()):  # pragma: no cover - the halo holds every 1-hop neighbour
            raise RuntimeError("a training pair of an owned user is not in the rank's local graph")
        weight = self._negative_weight()[local.global_id]
        graph = Data(edge_index=local.edge_index, num_nodes=local.num_local)
        neg = NegativeSampling("triplet", amount=t.num_negatives, dst_weight=weight)
        # train.batch_size stays the global batch: each rank takes its share of it, as in full-graph steps
        loader = link_loader(graph, t.num_neighbors, torch.stack([src, dst]), neg_sampling=neg,
                             batch_size=max(1, -(-t.batch_size // world)), shuffle=True)  # fmt: skip
        steps = torch.tensor([float(len(loader))])
        du.all_reduce_(steps, "min", "agreeing on the steps per epoch")
        self.local, self.steps = local, int(steps.item())
        if self.steps == 0:
            raise ValueError(f"some rank of {world} owns no training pair after partitioning ({int(mine.sum())} on rank "
                             f"{rank}): use fewer ranks, or train.partition: random")  # fmt: skip
        self.partition_info = {"rank": rank, "owned": local.num_owned, "halo": local.num_halo,
                               "local_edges": local.num_edges, "pairs": int(mine.sum()), "steps": self.steps,
                               "items_held": int((local.global_id >= U).sum()), "items": data.num_items}  # fmt: skip
        return loader

    def shard_batch(self, batch: Any, rank: int, world: int) -> Any:
        """Several ranks: a partitioned loader's batch is already the rank's; a global batch is split."""
        return batch if self.local is not None else dp.shard_batch(batch, rank, world)

    def batches(self, epoch: int) -> Iterable[Any]:
        if self.loader is not None:
            for step, batch in enumerate(self.loader, 1):
                yield batch
                if self.steps is not None and step >= self.steps:
                    break
            return
        t, train = self.cfg.train, self.data.train
        perm = torch.randperm(train.size(1))
        for start in range(0, perm.numel(), t.batch_size):
            idx = perm[start : start + t.batch_size]
            u, i = train[0, idx], train[1, idx]
            yield u, i, self.negatives.sample(u, t.num_negatives)

    def step_loss(self, model: BipartiteRecommender, batch: Any) -> tuple[Tensor, int]:
        t, U, dev = self.cfg.train, self.data.num_users, self.device
        opts = {"kind": t.loss, "reg_weight": t.reg_weight, "temperature": t.temperature, "margin": t.margin}
        if self.loader is not None:  # a sampled subgraph
            b = batch.to(dev)
            n_id = b.n_id if self.local is None else self.local.global_id.to(dev)[b.n_id]  # local -> global ids
            out = model(b.edge_index, n_id=n_id)
            j = b.dst_neg_index.view(b.src_index.numel(), -1)
            return model.loss(out, b.src_index, b.dst_pos_index, j, n_id=n_id, **opts), b.src_index.numel()
        u, i, j = (x.to(dev) for x in batch)
        if model.needs_graph:
            out = model(self.graph)
            return model.loss(out, u, i + U, j + U, **opts), u.numel()
        # no message passing: compute the batch's rows only
        n_id, inv = torch.unique(torch.cat([u, i + U, j.reshape(-1) + U]), return_inverse=True)
        out = model(self.graph, n_id=n_id)
        B = u.numel()
        return model.loss(out, inv[:B], inv[B : 2 * B], inv[2 * B :].view(B, -1), n_id=n_id, **opts), B

    def start_epoch(self, model: nn.Module, epoch: int) -> None:
        """Before training epoch ``epoch``: a scorer with an ``on_epoch_start(epoch, user_embeddings)`` hook
        (the multi-manifold scorer refits its cluster origins on its schedule) gets it, with a callable that
        computes the users' output embeddings on the training graph only when the hook needs them."""
        hook = getattr(getattr(model, "scorer", None), "on_epoch_start", None)
        if hook is not None:
            hook(epoch, lambda: model.embeddings(self.graph)[0])

    def has_part(self, part: Part) -> bool:
        return getattr(self.data.split, part).size(1) > 0

    def evaluate(self, model: nn.Module, part: Part) -> dict[str, float]:
        e = self.cfg.eval
        users, items = model.embeddings(self.graph)
        return evaluate(model, self.data, part, e.ks, e.metrics, e.chunk_size, embeddings=(users, items), shard=True)


def fit_link(data: RecData, model: BipartiteRecommender, cfg: RecConfig, progress: bool | ProgressFn | None = None,
             **trainer_options: Any) -> FitResult:  # fmt: skip
    """Train ``model`` on ``data`` with the options of ``cfg``; ``trainer_options`` go to
    :class:`~graphrec.tasks.trainer.Trainer` (``checkpoint``, ``resume``, ``row_lr``, ``keep_state``...)."""
    trainer_options.setdefault("keep_state", True)
    return Trainer.from_config(cfg.train, progress=progress, **trainer_options).fit(model, LinkTask(data, cfg))
