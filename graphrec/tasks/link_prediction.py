"""Link prediction for recommendation: user -> item (or ad) scoring on store graphs.

* Model: ID embeddings (and/or store features) through any registered backbone on the
  user+item graph (:class:`~graphrec.models.bipartite.BipartiteRecommender`); MF,
  LightGCN, GCN, GSM, GESM..., optionally wrapped in :class:`~graphrec.nn.HopSampling`.
  The score of (u, i) is the dot product of their output embeddings.
* Loss: BPR or BCE on sampled negatives (uniform, or popularity^0.75), optional L2 on the
  batch's input embeddings, plus the backbone's auxiliary losses (GESM's regulariser,
  XSimGCL's contrastive loss on the batch's users and positive items).
* Steps: full graph (every step propagates over the whole training graph, as in RecBole's
  LightGCN) or sampled subgraphs (PyG ``LinkLoader`` driven by
  :class:`~graphrec.sampling.CSRNeighborSampler`) for graphs too large for that.
* Selection: full-ranking validation metric (``train.stop_on``) every ``eval_every``
  epochs, early stopping after ``patience`` evaluations without improvement; the test
  metrics are those of the best validation evaluation. Validation masks training items;
  test masks training and validation items.

Contract: ``fit(data, model, cfg) -> RecFitResult`` and ``evaluate(model, data, part) -> dict``.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.config.rec import RecConfig
from graphrec.metrics import embedding_scorer, evaluate_topk
from graphrec.models import build_model, get_spec
from graphrec.models.bipartite import BipartiteRecommender, init_embedding
from graphrec.nn.hop_sampling import HopSampling
from graphrec.tasks.node_classification import seed_everything
from graphrec.tasks.rec_data import RecData

__all__ = [
    "NegativeSampler",
    "PyGLightGCN",
    "RecFitResult",
    "RowLRScale",
    "build_rec_model",
    "compute_embeddings",
    "evaluate",
    "fit",
    "run_rec",
    "seed_everything",
]


# ---------------------------------------------------------------------------- models
#: Backbones whose forward pass blocks the gradient to their inputs (ID embeddings).
NO_INPUT_GRADIENT = {
    "sgc": "it precomputes A^K X once, without gradients; use lightgcn, its trainable counterpart",
}

def build_rec_model(cfg: RecConfig, data: RecData, reference: str | None = None) -> nn.Module:
    """The configured backbone on ``data``'s user+item graph, hop-sampled when enabled.

    ``reference="pyg_lightgcn"`` builds PyG's own LightGCN with the same settings instead.
    """
    t = cfg.train
    if reference is not None:
        if reference != "pyg_lightgcn":
            raise ValueError(f"unknown reference model {reference!r}; known: pyg_lightgcn")
        if t.hop_sampling.enabled:
            raise ValueError("hop sampling does not apply to the PyG reference LightGCN")
        return PyGLightGCN(data.num_users, data.num_items, t.embedding_dim, cfg.model_params.get("K", 3), t.init, t.init_std)
    spec = get_spec(cfg.model_name)
    if cfg.model_name in NO_INPUT_GRADIENT:
        raise ValueError(f"{cfg.model_name!r} cannot learn its inputs: {NO_INPUT_GRADIENT[cfg.model_name]}")
    backbone = build_model(cfg.model_name, t.embedding_dim, t.embedding_dim, **cfg.model_params)
    hs = t.hop_sampling
    if hs.enabled:
        if not spec.propagation:
            raise ValueError(f"hop sampling needs a propagation model; {cfg.model_name!r} is not one")
        backbone = HopSampling(backbone, hs.distribution, hs.granularity, hs.min_steps, hs.decay)
    src = data.source
    return BipartiteRecommender(
        data.num_users, data.num_items, backbone, t.embedding_dim,
        needs_graph=cfg.model_name != "mf", inputs=t.inputs,
        user_features=src.user_features, item_features=src.item_features, init=t.init, init_std=t.init_std,
    )  # fmt: skip


class PyGLightGCN(nn.Module):
    """``torch_geometric.nn.models.LightGCN`` behind the interface of :class:`BipartiteRecommender`
    (reference for the side-by-side benchmark)."""

    def __init__(self, num_users: int, num_items: int, dim: int, K: int, init: str = "xavier_uniform",
                 init_std: float = 0.1, input_format: str = "csr"):  # fmt: skip
        super().__init__()
        if input_format not in ("csr", "edge_index"):
            raise ValueError(f"input_format must be 'csr' or 'edge_index', got {input_format!r}")
        self.input_format = input_format
        from torch_geometric.nn.models import LightGCN

        self.num_users, self.num_items, self.dim = num_users, num_items, dim
        self.model = LightGCN(num_users + num_items, dim, K)
        init_embedding(self.model.embedding.weight, init, init_std)
        self.needs_graph = True

    @property
    def num_nodes(self) -> int:
        return self.num_users + self.num_items

    def ego(self, n_id: Tensor | None = None) -> Tensor:
        w = self.model.embedding.weight
        return w if n_id is None else w[n_id]

    def forward(self, edge_index: Tensor, n_id: Tensor | None = None, edge_weight: Tensor | None = None) -> Tensor:
        if n_id is not None:
            raise ValueError("the PyG reference LightGCN trains on the full graph only (train.sampler: full)")
        if edge_weight is not None or self.input_format == "edge_index":
            return self.model.get_embedding(edge_index, edge_weight)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
            return self.model.get_embedding(self._adj_t(edge_index))

    def _adj_t(self, edge_index: Tensor) -> Tensor:
        """The graph as a transposed sparse CSR adjacency: PyG's fast input format for ``LGConv``
        on CPU (about 4x faster per step than an ``edge_index`` here). Built once per graph."""
        from torch_geometric.utils import to_torch_csr_tensor

        key = (edge_index.data_ptr(), edge_index._version, edge_index.shape[1])
        if getattr(self, "_key", None) != key:
            n = self.num_nodes
            self._adj, self._key = to_torch_csr_tensor(edge_index.flip(0), size=(n, n)), key
        return self._adj


# ---------------------------------------------------------------------------- negatives
class NegativeSampler:
    """Draws negative items per user: uniform or proportional to ``count^exponent``.

    With ``exclude`` (sorted ``user * num_items + item`` keys of the positives), draws that
    hit a positive are redrawn (up to ``max_rounds`` times; RecBole does the same).
    """

    def __init__(self, num_items: int, distribution: str = "uniform", counts: Tensor | None = None,
                 exponent: float = 0.75, exclude: Tensor | None = None, max_rounds: int = 20):  # fmt: skip
        if distribution not in ("uniform", "popularity"):
            raise ValueError(f"unknown negative distribution {distribution!r}; choose uniform or popularity")
        self.num_items = num_items
        self.distribution = distribution
        self.cdf = None
        if distribution == "popularity":
            if counts is None:
                raise ValueError("popularity negatives need the item counts")
            w = counts.double().clamp(min=0) ** exponent
            if float(w.sum()) <= 0:
                w = torch.ones(num_items, dtype=torch.float64)
            self.cdf = torch.cumsum(w / w.sum(), 0)
            self.cdf[-1] = 1.0
        self.exclude = exclude
        self.max_rounds = max_rounds

    def _draw(self, n: int) -> Tensor:
        if self.cdf is None:
            return torch.randint(self.num_items, (n,))
        return torch.searchsorted(self.cdf, torch.rand(n, dtype=torch.float64)).clamp_(max=self.num_items - 1)

    def sample(self, users: Tensor, num: int = 1) -> Tensor:
        """``[len(users), num]`` negative items."""
        u = users.view(-1, 1).expand(-1, num).reshape(-1)
        neg = self._draw(u.numel())
        if self.exclude is not None and self.exclude.numel():
            for _ in range(self.max_rounds):
                bad = self._is_positive(u, neg)
                n_bad = int(bad.sum())
                if n_bad == 0:
                    break
                neg[bad] = self._draw(n_bad)
        return neg.view(-1, num)

    def _is_positive(self, u: Tensor, items: Tensor) -> Tensor:
        keys = u * self.num_items + items
        pos = torch.searchsorted(self.exclude, keys).clamp_(max=self.exclude.numel() - 1)
        return self.exclude[pos] == keys


def pair_loss(kind: str, pos: Tensor, neg: Tensor) -> Tensor:
    """BPR: -log sigmoid(s+ - s-), mean over (positive, negative) pairs; BCE: logistic loss on both."""
    if kind == "bpr":
        return -F.logsigmoid(pos.view(-1, 1) - neg).mean()
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos)) + \
            F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg))
    raise ValueError(f"unknown loss {kind!r}; choose bpr or bce")


# ---------------------------------------------------------------------------- evaluation
@torch.no_grad()
def compute_embeddings(model: nn.Module, data: RecData) -> tuple[Tensor, Tensor]:
    """``(user embeddings, item embeddings)`` in evaluation mode, on the training graph."""
    was = model.training
    model.eval()
    try:
        out = model(data.graph)
    finally:
        model.train(was)
    return out[: data.num_users], out[data.num_users :]


def evaluate(model: nn.Module, data: RecData, part: str = "test", ks=(10, 20), metrics=None,
             chunk_size: int | None = None, embeddings: tuple[Tensor, Tensor] | None = None) -> dict[str, float]:  # fmt: skip
    """Full-ranking metrics on ``part`` (``valid``: training items masked; ``test``: training
    and validation items masked)."""
    if part not in ("valid", "test"):
        raise ValueError(f"part must be 'valid' or 'test', got {part!r}")
    users, items = embeddings if embeddings is not None else compute_embeddings(model, data)
    exclude = [data.csr("train")] + ([data.csr("valid")] if part == "test" else [])
    kwargs = {} if metrics is None else {"metrics": metrics}
    return evaluate_topk(embedding_scorer(users, items), data.csr(part), data.num_items, ks, exclude,
                         chunk_size=chunk_size, **kwargs)  # fmt: skip


# ---------------------------------------------------------------------------- training
@dataclass
class RecFitResult:
    valid: dict[str, float]  # validation metrics at the selected evaluation
    test: dict[str, float]  # test metrics of the same weights
    best_epoch: int
    epochs: int  # epochs run
    s_per_epoch: float  # mean wall time of one training epoch (no evaluation)
    seconds: float  # whole fit, evaluation included
    history: list[dict] = field(default_factory=list)
    state_dict: dict | None = None


def _optimizer(model: nn.Module, cfg: RecConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)


class RowLRScale:
    """Scales the optimiser's update of some rows of a weight by a factor.

    Adam's (and SGD's) update is proportional to the learning rate, so replacing a row's
    update ``new - old`` by ``scale * (new - old)`` is the same as training that row with
    ``scale x lr``. Warm starts use it to train rows of new users and items faster than the
    rows that start from published weights.
    """

    def __init__(self, weight: Tensor, rows: Tensor, scale: float):
        self.weight, self.rows, self.scale = weight, rows.long(), float(scale)
        self._before: Tensor | None = None

    def before_step(self) -> None:
        if self.rows.numel():
            self._before = self.weight.detach()[self.rows].clone()

    @torch.no_grad()
    def after_step(self) -> None:
        if self._before is not None:
            w = self.weight
            w[self.rows] = self._before + (w[self.rows] - self._before) * self.scale
            self._before = None


class _ScaledStep:
    """An optimiser whose ``step()`` applies :class:`RowLRScale` adjustments."""

    def __init__(self, opt: torch.optim.Optimizer, scales: list[RowLRScale]):
        self.opt, self.scales = opt, scales

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for s in self.scales:
            s.before_step()
        self.opt.step()
        for s in self.scales:
            s.after_step()

    def state_dict(self):
        return self.opt.state_dict()

    def load_state_dict(self, state) -> None:
        self.opt.load_state_dict(state)


def _batch_loss(model: nn.Module, out: Tensor, u: Tensor, i: Tensor, j: Tensor, ego_ids: Tensor | None,
                cfg: RecConfig, n_id: Tensor | None = None) -> Tensor:  # fmt: skip
    """Loss of a batch: ``u``, ``i`` [B] and ``j`` [B, n] index rows of ``out``."""
    eu, ei, ej = out[u], out[i], out[j]
    pos = (eu * ei).sum(-1)
    neg = (eu.unsqueeze(1) * ej).sum(-1)
    loss = pair_loss(cfg.train.loss, pos, neg)
    if cfg.train.reg_weight > 0:
        ids = torch.cat([u, i, j.reshape(-1)])
        ego = model.ego(ids if n_id is None else n_id[ids])
        loss = loss + cfg.train.reg_weight * ego.pow(2).sum() / (2 * u.numel())
    aux = _auxiliary_loss(model, u, i)
    return loss + aux if aux is not None else loss


def _auxiliary_loss(model: nn.Module, u: Tensor, i: Tensor) -> Tensor | None:
    """The model's auxiliary loss; a :class:`BipartiteRecommender` also gets the batch's user and
    positive-item rows of ``out`` (for batch-dependent terms such as XSimGCL's contrastive loss)."""
    fn = getattr(model, "auxiliary_loss", None)
    if fn is None:
        return None
    return fn(u, i) if isinstance(model, BipartiteRecommender) else fn()


def _epoch_full(model, data: RecData, cfg: RecConfig, opt, negs: NegativeSampler) -> float:
    t = cfg.train
    train = data.train
    U = data.num_users
    perm = torch.randperm(train.size(1))
    total = 0.0
    for start in range(0, perm.numel(), t.batch_size):
        idx = perm[start : start + t.batch_size]
        u, i = train[0, idx], train[1, idx]
        j = negs.sample(u, t.num_negatives)
        opt.zero_grad(set_to_none=True)
        if model.needs_graph:
            out = model(data.graph)
            loss = _batch_loss(model, out, u, i + U, j + U, None, cfg)
        else:  # no message passing: compute the batch's rows only
            n_id, inv = torch.unique(torch.cat([u, i + U, j.reshape(-1) + U]), return_inverse=True)
            out = model(data.graph, n_id=n_id)
            B = u.numel()
            loss = _batch_loss(model, out, inv[:B], inv[B : 2 * B], inv[2 * B :].view(B, -1), None, cfg, n_id)
        loss.backward()
        opt.step()
        total += float(loss.detach()) * u.numel()
    return total / max(train.size(1), 1)


def _link_loader(data: RecData, cfg: RecConfig):
    """PyG ``LinkLoader`` over the training pairs with triplet negatives among items."""
    from torch_geometric.data import Data
    from torch_geometric.sampler import NegativeSampling

    from graphrec.sampling import link_loader

    t = cfg.train
    U = data.num_users
    graph = Data(edge_index=data.graph, num_nodes=data.num_nodes)
    weight = torch.zeros(data.num_nodes)
    if t.negatives == "uniform":
        weight[U:] = 1.0
    else:
        weight[U:] = data.item_counts.double().pow(t.popularity_exponent).float()
        if float(weight.sum()) <= 0:
            weight[U:] = 1.0
    neg = NegativeSampling("triplet", amount=t.num_negatives, dst_weight=weight)
    label_index = torch.stack([data.train[0], data.train[1] + U])
    return link_loader(graph, t.num_neighbors, label_index, neg_sampling=neg, batch_size=t.batch_size, shuffle=True)


def _epoch_sampled(model, data: RecData, cfg: RecConfig, opt, loader) -> float:
    total, n = 0.0, 0
    for batch in loader:
        opt.zero_grad(set_to_none=True)
        out = model(batch.edge_index, n_id=batch.n_id)
        j = batch.dst_neg_index.view(batch.src_index.numel(), -1)
        loss = _batch_loss(model, out, batch.src_index, batch.dst_pos_index, j, None, cfg, batch.n_id)
        loss.backward()
        opt.step()
        total += float(loss.detach()) * batch.src_index.numel()
        n += batch.src_index.numel()
    return total / max(n, 1)


def fit(data: RecData, model: nn.Module, cfg: RecConfig, progress: Callable | None = None,
        keep_state: bool = True, checkpoint: Callable[[dict], None] | None = None,
        checkpoint_every: int = 1, resume: dict | None = None,
        row_lr: list[RowLRScale] | None = None) -> RecFitResult:  # fmt: skip
    """Train ``model`` on ``data.train`` with early stopping on the validation metric.

    ``progress(epoch, total, info)`` is called after every epoch. ``checkpoint(state)`` is
    called every ``checkpoint_every`` epochs with everything needed to continue (weights,
    optimiser, early-stopping state, history, the torch RNG state); passing such a state as
    ``resume`` continues the run where it stopped, with the same result as an
    uninterrupted run. With ``train.select: last`` the final weights are kept and the
    validation split may be empty (then nothing is evaluated on it). ``row_lr`` scales the
    learning rate of some rows (:class:`RowLRScale`).
    """
    t = cfg.train
    if data.train.size(1) == 0:
        raise ValueError("the training split holds no interaction")
    has_valid = data.split.valid.size(1) > 0
    if not has_valid and t.select == "best":
        raise ValueError("the validation split holds no interaction; early stopping needs one (or train.select: last)")
    opt = _optimizer(model, cfg)
    if row_lr:
        opt = _ScaledStep(opt, row_lr)
    negs = NegativeSampler(data.num_items, t.negatives, data.item_counts, t.popularity_exponent,
                           data.train_keys() if t.exclude_positives else None)  # fmt: skip
    loader = _link_loader(data, cfg) if t.sampler == "neighbor" else None
    ks, metrics = cfg.eval.ks, cfg.eval.metrics
    best_val, best, best_state = -float("inf"), None, None
    bad, epoch, history, epoch_times = 0, 0, [], []
    first = 1
    if resume is not None:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        best_val, bad = float(resume["best_val"]), int(resume["bad"])
        if resume["best_epoch"] is not None:
            best = (int(resume["best_epoch"]), dict(resume["best_metrics"]))
        best_state = resume["best_state"]
        history, epoch_times = list(resume["history"]), list(resume["epoch_times"])
        epoch = first = int(resume["epoch"]) + 1
        torch.set_rng_state(resume["rng"])
        if bad >= t.patience:  # the run had already stopped early
            first = t.epochs + 1
    t_start = time.perf_counter() - float(resume["seconds"]) if resume is not None else time.perf_counter()
    for epoch in range(first, t.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        if loader is None:
            loss = _epoch_full(model, data, cfg, opt, negs)
        else:
            loss = _epoch_sampled(model, data, cfg, opt, loader)
        epoch_times.append(time.perf_counter() - t0)
        info = {"epoch": epoch, "loss": loss}
        if has_valid and (epoch % t.eval_every == 0 or epoch == t.epochs):
            val = evaluate(model, data, "valid", ks, metrics, cfg.eval.chunk_size)
            score = val[t.stop_on]
            info["valid"] = score
            if score > best_val:
                best_val, best, bad = score, (epoch, val), 0
                if t.select == "best":
                    best_state = copy.deepcopy(model.state_dict())
            else:
                bad += 1
        history.append(info)
        if progress is not None:
            progress(epoch, t.epochs, info)
        stop = bad >= t.patience and t.select == "best"
        if checkpoint is not None and (epoch % checkpoint_every == 0 or stop or epoch == t.epochs):
            checkpoint({
                "epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                "best_val": best_val, "bad": bad, "best_epoch": best[0] if best else None,
                "best_metrics": best[1] if best else {}, "best_state": best_state, "history": history,
                "epoch_times": epoch_times, "rng": torch.get_rng_state(),
                "seconds": time.perf_counter() - t_start,
            })  # fmt: skip
        if stop:
            break
    if t.select == "best":
        if best is None:  # pragma: no cover - the last epoch is always evaluated
            raise RuntimeError("no validation evaluation was run")
        model.load_state_dict(best_state)
        valid, best_epoch = best[1], best[0]
    else:
        valid = evaluate(model, data, "valid", ks, metrics, cfg.eval.chunk_size) if has_valid else {}
        best_epoch = epoch
    test = evaluate(model, data, "test", ks, metrics, cfg.eval.chunk_size) if data.split.test.size(1) else {}
    return RecFitResult(
        valid=valid, test=test, best_epoch=best_epoch, epochs=epoch,
        s_per_epoch=float(np.mean(epoch_times[1:] or epoch_times)) if epoch_times else 0.0,
        seconds=time.perf_counter() - t_start, history=history,
        state_dict=(best_state if t.select == "best" else copy.deepcopy(model.state_dict())) if keep_state else None,
    )  # fmt: skip


def run_rec(data: RecData, cfg: RecConfig, seed: int, progress: Callable | None = None,
            reference: str | None = None) -> tuple[nn.Module, RecFitResult]:  # fmt: skip
    """Seed everything, build the model, fit it: ``(model, result)``."""
    seed_everything(seed)
    model = build_rec_model(cfg, data, reference)
    return model, fit(data, model, cfg, progress)
