"""User-encoder training as a :class:`~graphrec.tasks.trainer.Task`, and the path from behaviour logs to node features.

* Data: :class:`~graphrec.encoders.BehaviourSequences` of a dataset or a graph store, split
  leave-one-out or at two instants (``data.split``); no held-out behaviour is ever in its own input.
* Model: one transformer stack under one of four objectives (``model.name``: ``sasrec``,
  ``clue``, ``shopperbert``, ``lmrec``; :mod:`graphrec.encoders.objectives`).
* Evaluation: ``sasrec`` ranks the next behaviour over all items (full ranking; the items of the
  user's own input are masked, as in the S3-Rec / ICLRec evaluation), HR@K and NDCG@K; every
  objective also reports its validation loss, which selects the others' epochs.
* Features: :func:`encode` trains, then writes the user (and item) embeddings into the store as
  versioned feature tables (``user/<name>``, ``item/<name>``) that ``data.features`` of a
  recommendation or ad config attaches as node features. Every user with a history gets an
  embedding, also those without edges in a training graph (the cold-start case).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from graphrec.config.encoder import EncoderConfig
from graphrec.tasks.trainer import FitResult, Part, ProgressFn, Trainer
from graphrec.utils import distributed as du
from graphrec.utils.io import atomic_open, atomic_write_json, atomic_write_text

ENCODER_FILE = "encoder.pt"


# ---------------------------------------------------------------------------- data and model
def load_encoder_data(dataset: str | os.PathLike, cfg: EncoderConfig):
    """``(sequences, split)`` of a dataset (``graphrec datasets``) or a graph-store folder, as ``cfg.data`` says.

    Raises:
        ValueError: an unknown dataset, or filters that leave no behaviour.
        DatasetNotAvailableError: missing data files.
    """
    from graphrec.encoders import load_behaviour_sequences

    d = cfg.data
    seqs = load_behaviour_sequences(str(dataset), target_types=d.target_types, event_types=d.event_types,
                                    window=tuple(d.window) if d.window else None)  # fmt: skip
    if len(seqs) == 0:
        raise ValueError(f"{dataset}: no user has a behaviour left after data.target_types / event_types / window")
    split = seqs.leave_one_out(d.min_length) if d.split == "loo" else seqs.time_cut(d.valid_start, d.test_start)
    return seqs, split


def text_vectors(cfg: EncoderConfig, seqs) -> Tensor | None:
    """Frozen item-text vectors ``[M + 1, t]`` from ``model.text_tower`` (row 0, padding, is zero), or None."""
    tower_name = cfg.model.text_tower
    if tower_name is None:
        return None
    from graphrec.encoders.text import TextTower, tiny_text_tower

    if seqs.item_text is None:
        raise ValueError(f"model.text_tower={tower_name!r}, but {seqs.name} has no item text (S3-Rec sequence files "
                         "carry item ids only); drop the text tower")  # fmt: skip
    tower = tiny_text_tower() if tower_name == "tiny" else TextTower(tower_name)
    vec = tower.encode(list(seqs.item_text))
    vec[0] = 0.0
    return torch.from_numpy(np.ascontiguousarray(vec, dtype=np.float32))


def build_encoder_model(cfg: EncoderConfig, seqs, tokenizer_json: str | None = None) -> nn.Module:
    """The configured objective over ``seqs``' vocabulary (items, fields, item texts); lmrec trains its BPE
    tokenizer on the item texts unless ``tokenizer_json`` (a saved one, for warm starts) is given.

    Raises:
        ValueError: bad options (e.g. lmrec on sequences without item text).
    """
    from graphrec.encoders import build_encoder

    m = cfg.model
    params = dict(dim=m.dim, layers=m.layers, heads=m.heads, ffn=m.ffn, dropout=m.dropout, max_len=m.max_len,
                  fields=list(m.fields), pool=cfg.pool)  # fmt: skip
    if m.name == "clue":
        params["temperature"] = m.temperature
    elif m.name == "shopperbert":
        params["mask_prob"] = m.mask_prob
    elif m.name == "lmrec":
        params.update(lm_weight=m.lm_weight, num_negatives=m.num_negatives, vocab_size=m.vocab_size)
        if tokenizer_json is not None:
            params["tokenizer_json"] = tokenizer_json
    return build_encoder(m.name, seqs, text_vectors=text_vectors(cfg, seqs), **params)


# ---------------------------------------------------------------------------- the task
class EncoderTask:
    """Encoder pretraining for the :class:`~graphrec.tasks.trainer.Trainer` (module docstring).

    ``progress_text()`` gives the training throughput in behaviour tokens per second (lmrec: BPE tokens).
    """

    def __init__(self, seqs, split, cfg: EncoderConfig, seed: int = 0):
        self.seqs, self.split, self.cfg, self.seed = seqs, split, cfg, seed
        stop = cfg.stop_on
        self.metric = "neg_loss" if stop == "loss" else stop
        self.stop_rule = "loss" if stop == "loss" else "metric"
        self.device = torch.device("cpu")
        self._tokens = self.tokens_last_epoch = 0
        self._t0: float | None = None
        self.tokens_per_s: list[float] = []

    def to(self, device: torch.device) -> None:
        self.device = device

    def _move(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        if self.device.type == "cpu":
            return batch
        return {k: v.to(self.device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()}

    def batches(self, epoch: int) -> Iterable[dict[str, Tensor]]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        self._tokens, self._t0 = 0, time.perf_counter()
        for batch in self._model.make_batches(self.seqs, self.split, self.cfg.train.batch_size, self.cfg.model.max_len,
                                              gen, part="train"):  # fmt: skip
            yield self._move(batch)
        self.tokens_last_epoch = self._tokens
        self.tokens_per_s.append(self._tokens / max(time.perf_counter() - self._t0, 1e-9))

    def step_loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, int]:
        loss = model.loss(batch)
        self._tokens += int(model.batch_tokens(batch))
        n = next(iter(batch.values())).shape[0]
        return loss, n

    def progress_text(self) -> str:
        if self._t0 is None:
            return ""
        rate = self._tokens / max(time.perf_counter() - self._t0, 1e-9)
        return f"{rate / 1000:.1f}k tokens/s"

    def fit_model(self, model: nn.Module) -> None:
        """The task's batches come from the objective being trained (each objective makes its own views)."""
        self._model = model

    def _rows(self, part: Part) -> np.ndarray:
        pos = self.split.valid_pos if part == "valid" else self.split.test_pos
        return np.flatnonzero(pos >= 0)

    def has_part(self, part: Part) -> bool:
        return self._rows(part).size > 0

    @torch.no_grad()
    def evaluate(self, model: nn.Module, part: Part) -> dict[str, float]:
        model.eval()
        rows = self._rows(part)
        pos = (self.split.valid_pos if part == "valid" else self.split.test_pos)[rows]
        out: dict[str, float] = {"users": float(rows.size)}
        if self.cfg.model.name == "sasrec":
            out.update(rank_next(model, self.seqs, rows, pos, self.cfg.model.max_len, self.cfg.eval.ks,
                                 self.cfg.eval.chunk_size, self.device))  # fmt: skip
        else:
            gen = torch.Generator().manual_seed(self.seed * 7919 + (1 if part == "valid" else 2))
            total, count = 0.0, 0
            for batch in model.make_batches(self.seqs, self.split, self.cfg.train.batch_size, self.cfg.model.max_len,
                                            gen, part=part):  # fmt: skip
                batch = self._move(batch)
                n = next(iter(batch.values())).shape[0]
                total += float(model.loss(batch)) * n
                count += n
            # No batch (no held-out behaviour with an input): an infinite loss never wins selection.
            out["loss"] = total / count if count else math.inf
        out["neg_loss"] = -out["loss"]
        return out


@torch.no_grad()
def rank_next(model: nn.Module, seqs, rows: np.ndarray, pos: np.ndarray, max_len: int, ks: Iterable[int],
              chunk_size: int = 256, device: torch.device | None = None) -> dict[str, float]:  # fmt: skip
    """Full-ranking HR@K and NDCG@K of the behaviour at ``pos[j]`` of row ``rows[j]`` given ``seq[:pos[j]]``,
    over every item, the items of the input masked (S3-Rec / ICLRec protocol); ``loss`` is the mean
    cross-entropy of the target over all items.

    One relevant item per user, so HR@K = Recall@K and NDCG@K = 1 / log2(rank + 2) when rank < K.
    Ties count against the target (an item scoring equal to it ranks above it)."""
    ks = sorted(ks)
    order = np.argsort(pos, kind="stable")  # batches of similar input length (sums do not depend on the order)
    rows, pos = np.asarray(rows)[order], np.asarray(pos)[order]
    hits = {k: 0.0 for k in ks}
    ndcg = {k: 0.0 for k in ks}
    ce = 0.0
    for start in range(0, rows.size, chunk_size):
        r, p = rows[start:start + chunk_size], pos[start:start + chunk_size]
        batch = model.user_batches(seqs, r, p, max_len)
        if device is not None and device.type != "cpu":
            batch = {k: v.to(device) for k, v in batch.items()}
        scores = model.scores(batch).float()  # [B, M + 1]
        target = torch.as_tensor(np.array([seqs[int(k)][int(j)] for k, j in zip(r, p, strict=True)]),
                                 device=scores.device)  # fmt: skip
        ce += float(nn.functional.cross_entropy(scores[:, 1:], target - 1, reduction="sum"))
        # Mask the input's items (the whole history, not only the max_len behaviours the model saw).
        hist_rows = np.concatenate([np.full(int(j), b) for b, j in enumerate(p)]) if p.sum() else np.zeros(0, int)
        hist_items = np.concatenate([seqs[int(k)][: int(j)] for k, j in zip(r, p, strict=True)]) if p.sum() else \
            np.zeros(0, int)  # fmt: skip
        scores[:, 0] = -math.inf
        t_score = scores.gather(1, target[:, None]).clone()
        scores[torch.as_tensor(hist_rows, device=scores.device), torch.as_tensor(hist_items, device=scores.device)] = -math.inf
        scores.scatter_(1, target[:, None], -math.inf)  # the target is no competitor of itself
        rank = (scores >= t_score).sum(1)  # ties count against the target (a constant model hits nothing)
        for k in ks:
            hit = rank < k
            hits[k] += float(hit.sum())
            ndcg[k] += float((hit.float() / torch.log2(rank.float() + 2)).sum())
    n = max(rows.size, 1)
    out = {f"hit@{k}": hits[k] / n for k in ks}
    out.update({f"ndcg@{k}": ndcg[k] / n for k in ks})
    out["loss"] = ce / n
    return out


def fit_encoder(seqs, split, model: nn.Module, cfg: EncoderConfig, seed: int = 0,
                progress: bool | ProgressFn | None = None, **trainer_options: Any) -> tuple[FitResult, EncoderTask]:  # fmt: skip
    """Train ``model`` (an objective of :func:`build_encoder_model`) on ``split``; ``trainer_options`` go to the
    :class:`~graphrec.tasks.trainer.Trainer`. Returns the fit and the task (its ``tokens_per_s`` per epoch)."""
    task = EncoderTask(seqs, split, cfg, seed)
    task.fit_model(model)
    trainer_options.setdefault("keep_state", False)
    fit = Trainer.from_config(cfg.train, progress=progress, **trainer_options).fit(model, task)
    return fit, task


# ---------------------------------------------------------------------------- embeddings
@torch.no_grad()
def embed_users(model: nn.Module, seqs, ends: np.ndarray | None = None, max_len: int | None = None,
                chunk_size: int = 256) -> np.ndarray:  # fmt: skip
    """User embeddings ``[N, d]`` float32 of every row of ``seqs`` from ``seq[:ends[k]]`` (default: the whole
    history), in evaluation mode (deterministic). A row with an empty input gets zeros."""
    model.eval()
    ends = seqs.lengths if ends is None else np.asarray(ends)
    max_len = max_len or model.max_len
    device = next(model.parameters()).device
    out = None
    by_length = np.argsort(ends, kind="stable")  # batches of similar length; rows are written back in place
    for start in range(0, len(seqs), chunk_size):
        rows = by_length[start:start + chunk_size]
        e = ends[rows]
        batch = model.user_batches(seqs, rows, e, max_len)
        batch = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}
        z = model.embed(batch).float().cpu().numpy()
        if out is None:
            out = np.zeros((len(seqs), z.shape[1]), dtype=np.float32)
        z[e <= 0] = 0.0
        out[rows] = z
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def item_vectors(model: nn.Module) -> np.ndarray | None:
    """Item embeddings ``[M, d]`` (token 1..M) where the objective learns them, else None."""
    fn = getattr(model, "item_embeddings", None)
    if fn is None:
        return None
    try:
        with torch.no_grad():
            emb = fn()
    except NotImplementedError:
        return None
    return emb[1 : model.num_items + 1].detach().float().cpu().numpy()


# ---------------------------------------------------------------------------- the encode command
@dataclass
class EncodeResult:
    """What :func:`encode` returns."""

    config: EncoderConfig
    fit: FitResult
    model: nn.Module
    sequences: Any
    split: Any
    users: np.ndarray  # [N, d] user embeddings, row k = sequences row k
    items: np.ndarray | None  # [M, d] item embeddings, or None
    tables: list[str] = field(default_factory=list)  # feature tables written ("user/sasrec", ...)
    store_version: int | None = None  # the store version holding them
    out: Path | None = None
    tokens_per_s: float = 0.0  # mean training throughput (behaviour tokens; lmrec: BPE tokens)
    warm_start: dict | None = None  # what a warm start copied: {"tensors": n, "items": item rows matched by external id}

    def __repr__(self) -> str:
        return (f"EncodeResult({self.config.model_name} on {self.sequences.name}: {self.fit!r}; {self.users.shape[0]:,} "
                f"users x {self.users.shape[1]}" + (f"; wrote {', '.join(self.tables)} (store v{self.store_version})"
                                                     if self.tables else "") + ")")  # fmt: skip


def feature_store(dataset: str | os.PathLike):
    """The graph store behind ``dataset`` (a store folder, or a named store-backed dataset's cached store), or None
    for a dataset without one (the S3-Rec sequence files)."""
    from graphrec.data.catalog import get_dataset, is_dataset
    from graphrec.data.interactions import dataset_store
    from graphrec.data.public import SEQUENCE_FILES
    from graphrec.store import GraphStore

    if isinstance(dataset, str) and is_dataset(dataset):
        name = get_dataset(dataset).name
        return None if name in SEQUENCE_FILES else GraphStore(dataset_store(name))
    return GraphStore(dataset)


def write_feature_tables(store, seqs, users: np.ndarray, items: np.ndarray | None, cfg: EncoderConfig,
                         meta: dict | None = None) -> tuple[list[str], int]:  # fmt: skip
    """Write ``users`` (and ``items``) into ``store`` as ``user/<name>`` (and ``<target type>/<name>``) feature
    tables; returns the keys and the store version that holds them."""
    name = cfg.table_name
    data_version = int((seqs.info.get("store") or {}).get("version") or store.version)
    enc = {"objective": cfg.model_name, **cfg.model.model_dump(mode="json")}
    keys = []
    store.write_features("user", name, np.asarray(seqs.user_index, dtype=np.int64), users, data_version=data_version,
                         encoder=enc, meta=meta or {})  # fmt: skip
    keys.append(f"user/{name}")
    if items is not None and cfg.features.items:
        for t, ttype in enumerate(seqs.target_types):
            tok = np.flatnonzero(seqs.item_type[1:] == t) + 1
            if tok.size:
                store.write_features(ttype, name, seqs.item_index[tok].astype(np.int64), items[tok - 1],
                                     data_version=data_version, encoder=enc, meta=meta or {})  # fmt: skip
                keys.append(f"{ttype}/{name}")
    return keys, store.version


def save_encoder(model: nn.Module, seqs, cfg: EncoderConfig, dest: str | os.PathLike, metrics: dict) -> Path:
    """An encoder folder: ``encoder.pt`` (weights, the item external ids of each row, the tokenizer),
    ``config.yaml`` and ``metrics.json``; :func:`warm_start` reads it."""
    import yaml

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "item_ids": [str(i) for i in seqs.item_ids], "item_types": _token_types(seqs),
             "objective": cfg.model_name, "tokenizer": getattr(model, "tokenizer_json", None)}  # fmt: skip
    with atomic_open(dest / ENCODER_FILE, "wb") as fh:
        torch.save(state, fh)
    atomic_write_text(dest / "config.yaml", yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    atomic_write_json(dest / "metrics.json", metrics)
    return dest


def _token_types(seqs) -> list[str]:
    """The target type of each token 1..M (item and ad ids are separate id spaces: "1" may name both)."""
    return [seqs.target_types[int(t)] for t in seqs.item_type[1:]]


def warm_start(model: nn.Module, seqs, folder: str | os.PathLike) -> dict[str, int]:
    """Initialise ``model`` from the encoder in ``folder`` (:func:`save_encoder`): every tensor whose shape fits is
    copied; item-embedding rows are matched by the items' target types and external ids, so a grown catalogue keeps
    what it learnt (and the [MASK] row after the items).

    Returns ``{"tensors": copied, "items": item rows matched, "misfit": [...]}``; ``misfit`` names the saved tensors
    whose shape differs in more than the number of rows (another ``model.dim``, ``layers``...: not copied), as
    ``"name (saved shape -> this shape)"``. Tensors that differ in rows only (a grown vocabulary) are left as they are.

    Raises:
        ValueError: the folder holds no encoder, or one of another objective.
    """
    path = Path(folder) / ENCODER_FILE
    if not path.is_file():
        raise ValueError(f"no encoder to warm-start from at {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("objective") != getattr(model, "objective", state.get("objective")):
        raise ValueError(f"{path} holds a {state.get('objective')} encoder; this one is {model.objective}")
    own = model.state_dict()
    misfit = [f"{k} ({tuple(v.shape)} -> {tuple(own[k].shape)})" for k, v in state["model"].items()
              if k in own and (v.dim() != own[k].dim() or tuple(v.shape[1:]) != tuple(own[k].shape[1:]))]  # fmt: skip
    if state.get("objective") == "lmrec":
        # lmrec's embedding table holds BPE tokens, not items: with the saved tokenizer (encoder_tokenizer) every
        # tensor keeps its shape and is copied as is.
        copied = 0
        for key, value in state["model"].items():
            if key in own and own[key].shape == value.shape:
                own[key] = value.clone()
                copied += 1
        model.load_state_dict(own)
        return {"tensors": copied, "items": 0, "misfit": misfit}
    old_types = state.get("item_types") or [None] * len(state["item_ids"])
    old_ids = {(t, i): r + 1 for r, (t, i) in enumerate(zip(old_types, state["item_ids"], strict=True))}
    new_types = _token_types(seqs) if state.get("item_types") else [None] * seqs.num_items
    # token -> old token; the [MASK] token follows the items in both tables
    new_rows = np.array([old_ids.get((t, str(i)), -1) for t, i in zip(new_types, seqs.item_ids, strict=True)]
                        + [len(state["item_ids"]) + 1])  # fmt: skip
    copied = matched = 0
    for key, value in state["model"].items():
        if key not in own:
            continue
        tgt = own[key]
        if tgt.shape == value.shape and not key.endswith("item_embedding.weight"):
            own[key] = value.clone()
            copied += 1
        elif key.endswith("item_embedding.weight") and tgt.dim() == 2 and tgt.shape[1] == value.shape[1]:
            hit = np.flatnonzero(new_rows >= 0)
            rows_new = torch.as_tensor(hit + 1)
            rows_old = torch.as_tensor(new_rows[hit])
            keep = rows_old < value.shape[0]
            own[key][rows_new[keep]] = value[rows_old[keep]]
            matched = int(keep[:-1].sum())  # the last row is [MASK]
            copied += 1
    model.load_state_dict(own)
    return {"tensors": copied, "items": matched, "misfit": misfit}


def encoder_tokenizer(folder: str | os.PathLike) -> str | None:
    """The BPE tokenizer (JSON) saved with an lmrec encoder folder, or None (other objectives, or no folder)."""
    path = Path(folder) / ENCODER_FILE
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True).get("tokenizer")


def encode(dataset: str | os.PathLike, cfg: EncoderConfig, *, seed: int = 0, out: str | os.PathLike | None = None,
           write: bool | None = None, init_from: str | os.PathLike | None = None,
           progress: bool | ProgressFn | None = True, **trainer_options: Any) -> EncodeResult:  # fmt: skip
    """Train the encoder of ``cfg`` on ``dataset``, embed every user (and item), write the feature tables into the
    dataset's store (``features.write``; S3-Rec sequence files have no store and write nothing), and save the encoder
    folder to ``out``.

    Args:
        init_from: an encoder folder to warm-start from (:func:`warm_start`).
        trainer_options: passed to the trainer (``checkpoint``, ``resume``, ``time_budget``...).

    Raises:
        ConfigError / ValueError: bad config or data. DatasetNotAvailableError: missing files.
    """
    from graphrec.utils.seed import seed_everything

    with du.main_first("loading the sequences"):  # rank 0 fills the dataset cache, then the others read it
        seqs, split = load_encoder_data(dataset, cfg)
    seed_everything(seed)
    model = build_encoder_model(cfg, seqs, encoder_tokenizer(init_from) if init_from is not None else None)
    warm = None
    if init_from is not None:
        warm = warm_start(model, seqs, init_from)
        if warm["misfit"] or warm["tensors"] == 0:
            raise ValueError(f"warm start from {init_from}: {len(warm['misfit'])} weight(s) of that encoder do not fit "
                             f"this one (another model.dim, layers or heads?), e.g. {', '.join(warm['misfit'][:2])}; "
                             "drop --init-from or use the same model settings")  # fmt: skip
    fit, task = fit_encoder(seqs, split, model, cfg, seed=seed, progress=progress, **trainer_options)
    ends = seqs.lengths if cfg.features.history == "all" else split.train_end
    users = embed_users(model, seqs, ends)
    items = item_vectors(model)
    result = EncodeResult(cfg, fit, model, seqs, split, users, items, warm_start=warm,
                          tokens_per_s=float(np.mean(task.tokens_per_s)) if task.tokens_per_s else 0.0)  # fmt: skip
    if write is None:
        write = cfg.features.write
    if not du.is_main():  # on several ranks, rank 0 alone writes the tables and the encoder folder
        return result
    if write:
        store = feature_store(dataset)
        if store is not None:
            meta = {"seed": seed, "history": cfg.features.history, "valid": fit.valid, "test": fit.test,
                    "best_epoch": fit.best_epoch, "dataset": str(dataset)}  # fmt: skip
            result.tables, result.store_version = write_feature_tables(store, seqs, users, items, cfg, meta)
    if out is not None:
        result.out = save_encoder(model, seqs, cfg, out, {"valid": fit.valid, "test": fit.test, "seed": seed,
                                                          "best_epoch": fit.best_epoch, "epochs": fit.epochs,
                                                          "s_per_epoch": fit.s_per_epoch,
                                                          "tokens_per_s": result.tokens_per_s,
                                                          "tables": result.tables, "dataset": str(dataset)})  # fmt: skip
    return result
