"""Four pretraining objectives for transformer user encoders over :class:`BehaviourSequences`.

>>> from graphrec.encoders import load_behaviour_sequences                 # doctest: +SKIP
>>> from graphrec.encoders.objectives import build_encoder                 # doctest: +SKIP
>>> seqs = load_behaviour_sequences("ml-100k"); split = seqs.leave_one_out()  # doctest: +SKIP
>>> enc = build_encoder("sasrec", seqs, max_len=50)                        # doctest: +SKIP
>>> for batch in enc.make_batches(seqs, split, 128, generator=torch.Generator().manual_seed(0)):  # doctest: +SKIP
...     enc.loss(batch).backward()
>>> z = enc.embed(enc.user_batches(seqs, [0, 1], split.train_end[[0, 1]]))  # [2, d]  # doctest: +SKIP

Every objective is an ``nn.Module`` over one :class:`~graphrec.encoders.model.BehaviourTransformer`
(``.model``) with the same interface:

* ``make_batches(seqs, split, batch_size, max_len=None, generator=None, part="train")``: the
  batches of one epoch (flat dicts of tensors, row 0 of every value is the batch dimension).
  ``part="train"`` reads each row's training input ``seq[:train_end]``, shuffled by
  ``generator``; ``"valid"`` / ``"test"`` read ``seq[:pos + 1]`` for the rows with a held-out
  behaviour at ``pos`` (its input and the held-out behaviour itself), in row order, and score
  that behaviour where the objective allows (sasrec, shopperbert, lmrec). Random draws (masks,
  views, prefixes, negatives) all come from ``generator`` (default: seeded 0, reproducible);
* ``loss(batch)``: a scalar; ``embed(batch)``: user vectors [B, d], deterministic in eval mode;
* ``user_batches(seqs, rows, ends, max_len=None)``: ONE batch holding ``seq[:ends[b]]`` of each row
  (the input of :meth:`embed` and :meth:`scores`);
* ``scores(batch)``: [B, M + 1] next-item scores (column 0, padding, is ``-inf``) and
  ``item_embeddings()``: [M + 1, d], where the objective defines them (sasrec, shopperbert's
  item table, lmrec); else ``NotImplementedError``.

Objectives (:data:`OBJECTIVES`, built by :func:`build_encoder`; parameters :data:`ENCODER_PARAMS`):

* ``sasrec`` (Kang & McAuley, ICDM 2018): causal attention, cross-entropy over all items at every
  position of the shifted sequence (the full-softmax form of the public reruns, Klenitskiy &
  Vasilev, RecSys 2023, which beats the paper's one-negative BCE); user = last hidden state.
* ``clue`` (Shin et al., AAAI 2023, "Scaling Law for Recommendation Models"): two views of each
  user, the two halves (by count, i.e. in time order) of the training sequence when it has at
  least 4 behaviours, else two independent augmentations among crop / mask / reorder (CL4SRec,
  Xie et al. 2022); bidirectional encoder, mean pool, a projection head, symmetric in-batch
  InfoNCE (the CLIP form; Radford et al. 2021) with a temperature; user = mean pool (no projection).
* ``shopperbert`` (Shin et al. 2021, arXiv 2106.00573): ``[CLS]`` + bidirectional encoder; 15% of
  the behaviours masked (at least one per sequence): the item by BERT's 80/10/10 rule
  (``[MASK]`` / a random item / kept; Devlin et al. 2019), every other field of the behaviour set
  to 0; one cross-entropy head per field (item over all items, tied to the item embeddings, and
  each input field with at least two values), averaged; user = ``[CLS]`` (or mean pool).
* ``lmrec`` (Shin et al., ACL 2023, "Pivotal Role of Language Modeling in Recommender Systems"):
  a causal language model over the byte-level BPE tokens of the history as text
  (``BehaviourSequences.text_view``), L1 = next-token cross-entropy; z_u = hidden state at the
  history's ``</s>``, z_i = hidden state at the ``</s>`` of the item's text;
  p = sigmoid(<W_u z_u, W_i z_i>), L2 = BCE over the positive and ``num_negatives`` uniform
  negatives; L = L1 + lm_weight · L2 (λ = 0.01, the paper's Table 9). The positive is the
  behaviour right after a random prefix of the training sequence.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.encoders.model import BehaviourTransformer, num_parameters, train_flops
from graphrec.encoders.sequences import (
    TIME_FIELDS,
    TIME_VOCAB,
    BehaviourSequences,
    SequenceSplit,
    pad_batch,
)
from graphrec.encoders.tokenizer import BPETokenizer

__all__ = [
    "ENCODER_PARAMS",
    "FIELD_GROUPS",
    "OBJECTIVES",
    "PARAM_HELP",
    "CLUE",
    "EncoderObjective",
    "LMRec",
    "SASRec",
    "ShopperBERT",
    "build_encoder",
    "info_nce",
    "input_fields",
    "num_parameters",
    "train_flops",
]

#: Side-input groups a behaviour may carry besides its item (``fields`` parameter).
FIELD_GROUPS = ("event", "time", "category")
PARTS = ("train", "valid", "test")
#: Length bucketing sorts rows by length within windows of this many batches (make_batches).
BUCKET_WINDOW = 50

_COMMON: dict[str, Any] = {"dim": 64, "layers": 2, "heads": 2, "ffn": None, "dropout": 0.2, "max_len": 50,
                           "fields": [], "text_vectors": None}  # fmt: skip
#: Parameters of each objective and their defaults (small: an ML-100k epoch takes seconds on 2 CPU cores).
ENCODER_PARAMS: dict[str, dict[str, Any]] = {
    "sasrec": {**_COMMON, "pool": "last"},
    "clue": {**_COMMON, "dropout": 0.1, "fields": ["event", "time", "category"], "pool": "mean",
             "temperature": 0.1, "proj_dim": 64, "crop_ratio": 0.6, "mask_ratio": 0.3, "reorder_ratio": 0.6},
    "shopperbert": {**_COMMON, "dropout": 0.1, "fields": ["event", "time", "category"], "pool": "cls",
                    "mask_prob": 0.15},
    # 128 tokens hold the last ~7 behaviours of ML-100k (~18 tokens each: event, title, genres); an epoch takes ~7 s on 2 cores
    # (256 tokens and 4,000 BPE tokens: ~19 s).
    "lmrec": {"dim": 64, "layers": 2, "heads": 2, "ffn": None, "dropout": 0.1, "max_len": 128, "pool": "last",
              "lm_weight": 0.01, "num_negatives": 4, "vocab_size": 2000, "item_max_len": 32, "tokenizer_json": None},
}  # fmt: skip
#: What each parameter means.
PARAM_HELP: dict[str, str] = {
    "dim": "hidden size d",
    "layers": "transformer layers",
    "heads": "attention heads (dim must be divisible by heads)",
    "ffn": "feed-forward width (None: 4 * dim)",
    "dropout": "dropout of the input embeddings, attention and feed-forward",
    "max_len": "behaviours per input, the most recent kept (lmrec: BPE tokens of the history text)",
    "fields": f"side inputs per behaviour besides the item, any of {FIELD_GROUPS}: event type, the time fields "
              f"{TIME_FIELDS}, the items' categorical attributes (shopperbert also predicts each)",
    "text_vectors": "frozen item-text vectors [M + 1, t] (row 0 padding) projected and added to the item inputs",
    "pool": "user embedding: last (most recent hidden state; lmrec: the history's </s>), mean, or cls (shopperbert)",
    "temperature": "clue: InfoNCE temperature",
    "proj_dim": "clue: output size of the projection head",
    "crop_ratio": "clue: share of a short sequence kept by the crop augmentation",
    "mask_ratio": "clue: share of a short sequence masked by the mask augmentation",
    "reorder_ratio": "clue: share of a short sequence shuffled by the reorder augmentation",
    "mask_prob": "shopperbert: share of behaviours masked (at least one per sequence)",
    "lm_weight": "lmrec: lambda, the weight of the recommendation BCE beside the LM loss (L = L1 + lambda L2)",
    "num_negatives": "lmrec: uniformly sampled negative items per positive",
    "vocab_size": "lmrec: largest BPE vocabulary (trained on the item texts)",
    "item_max_len": "lmrec: BPE tokens of an item's text, </s> included",
    "tokenizer_json": "lmrec: a saved tokenizer (BPETokenizer.to_json) instead of training one",
}  # fmt: skip


def input_fields(seqs: BehaviourSequences, groups: Sequence[str]) -> dict[str, int]:
    """The model's input fields (batch key -> vocabulary size) for field groups of :data:`FIELD_GROUPS`.

    ``event`` -> ``{"event": number of event types}``; ``time`` -> every :data:`TIME_FIELDS` key;
    ``category`` -> ``"cat:<name>"`` for every categorical attribute of ``seqs`` (none for S3-Rec files).

    Raises:
        ValueError: an unknown group.
    """
    out: dict[str, int] = {}
    for g in groups:
        if g == "event":
            out["event"] = len(seqs.event_types)
        elif g == "time":
            out.update({f: TIME_VOCAB[f] for f in TIME_FIELDS})
        elif g == "category":
            out.update({f"cat:{f}": len(seqs.cat_vocab[f]) for f in seqs.item_cats})
        else:
            raise ValueError(f"unknown input field group {g!r}; choose among {FIELD_GROUPS}")
    return out


def info_nce(z1: Tensor, z2: Tensor, temperature: float, groups: Tensor | None = None) -> Tensor:
    """Symmetric in-batch InfoNCE (CLIP form; Radford et al. 2021; Oord et al. 2018).

    Row b of ``z1`` and row b of ``z2`` (L2-normalised here) are the only positive pair of each
    other; every other row of the other view is a negative. Rows with the same ``groups`` value
    (the same user twice in a batch) are neither positives nor negatives of each other: their
    off-diagonal logits are dropped, so duplicates are handled, not refused.

    Args:
        z1, z2: float [B, k], the two views.
        temperature: the softmax temperature tau (> 0).
        groups: optional [B] ids (the user row of each pair).

    Returns:
        scalar: (CE(S, I) + CE(S^T, I)) / 2 with S = z1 z2^T / tau.
    """
    z1, z2 = F.normalize(z1, dim=-1), F.normalize(z2, dim=-1)
    logits = z1 @ z2.T / temperature
    if groups is not None:
        same = groups[:, None] == groups[None, :]
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, -math.inf)
    target = torch.arange(z1.shape[0], device=z1.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def _regather(batch: dict[str, Tensor], cols: list[Sequence[int]], masked: list[Sequence[int]], width: int,
              mask_token: int) -> dict[str, Tensor]:  # fmt: skip
    """A new left-padded batch whose row b holds the columns ``cols[b]`` of ``batch`` row b, in that order,
    right-aligned in ``width`` columns; the new positions ``masked[b]`` (counted in ``cols[b]``) become
    ``[MASK]`` with every other field 0. Hand-written because no library gathers ragged column lists."""
    n = len(cols)
    index = torch.full((n, width), -1, dtype=torch.long)
    hide = torch.zeros(n, width, dtype=torch.bool)
    for b, (c, m) in enumerate(zip(cols, masked, strict=True)):
        c = list(c)[-width:] if len(c) > width else list(c)
        if c:
            index[b, width - len(c):] = torch.as_tensor(c, dtype=torch.long)
            for p in m:
                if p < len(c):
                    hide[b, width - len(c) + p] = True
    real = index >= 0
    safe = index.clamp(min=0)
    out: dict[str, Tensor] = {}
    for key, value in batch.items():
        if key in ("mask", "row"):
            continue
        v = value.gather(1, safe) * real
        out[key] = v.masked_fill(hide, mask_token if key == "item" else 0)
    out["mask"] = batch["mask"].gather(1, safe) & real
    if "row" in batch:
        out["row"] = batch["row"]
    return out


def _trim(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """Drop the leading columns that are padding in every row. Exact, not an approximation: positions are
    counted back from the last column (:class:`BehaviourTransformer`), and padding sees only itself."""
    mask = batch["mask"]
    real = mask.any(0)
    first = int(real.to(torch.int8).argmax()) if bool(real.any()) else mask.shape[1] - 1
    if first == 0:
        return batch
    return {k: v[:, first:] if v.dim() == 2 and v.shape == mask.shape else v for k, v in batch.items()}


class EncoderObjective(nn.Module):
    """Common part of the objectives (module docstring): row selection, shuffling, batching.

    Subclasses set :attr:`objective`, :attr:`min_input` (the fewest training behaviours a row needs) and
    implement :meth:`_batch`, :meth:`loss`, :meth:`embed`.
    """

    objective: ClassVar[str] = ""
    min_input: ClassVar[int] = 1
    min_batch: ClassVar[int] = 1  # fewest rows in a batch; a smaller last batch is merged into the one before
    bucket: ClassVar[bool] = True  # training batches of rows of similar length (make_batches)

    def __init__(self, model: BehaviourTransformer, num_items: int, max_len: int, pool: str,
                 params: dict[str, Any]) -> None:  # fmt: skip
        super().__init__()
        self.model = model
        self.num_items = int(num_items)
        self.max_len = int(max_len)
        self.pool_how = pool
        self.params = params

    # ---------------------------------------------------------------- batches
    def _check(self, seqs: BehaviourSequences) -> None:
        if seqs.num_items != self.num_items:
            raise ValueError(f"{self.objective}: {seqs.name} has {seqs.num_items} item tokens; the encoder was built "
                             f"for {self.num_items}")  # fmt: skip

    def _max_len(self, max_len: int | None) -> int:
        max_len = self.max_len if max_len is None else int(max_len)
        if not 1 <= max_len <= self.max_len:
            raise ValueError(f"{self.objective}: max_len {max_len} outside 1..{self.max_len} (the model's max_len)")
        return max_len

    def make_batches(self, seqs: BehaviourSequences, split: SequenceSplit, batch_size: int,
                     max_len: int | None = None, generator: torch.Generator | None = None,
                     part: str = "train") -> Iterator[dict[str, Tensor]]:  # fmt: skip
        """The batches of one epoch of ``part`` (module docstring).

        Args:
            seqs: the sequences ``split`` was made from.
            split: positions per row (:class:`SequenceSplit`).
            batch_size: rows (users) per batch (clue: a last batch of one user joins the one before).
            max_len: input width (default and largest: the model's ``max_len``).
            generator: shuffles the training rows and draws every random choice; None = no shuffling
                and a generator seeded 0.
            part: ``"train"``, ``"valid"`` or ``"test"``.

        Yields:
            flat dicts of tensors, each with ``"row"`` (int64 [B], the rows of ``seqs``) and ``"mask"``; columns
            that are padding in every row are left out, so a batch may be narrower than ``max_len``.

        Raises:
            ValueError: an unknown part, a split of other sequences, a bad ``max_len`` or ``batch_size``.
        """
        self._check(seqs)
        max_len = self._max_len(max_len)
        if part not in PARTS:
            raise ValueError(f"{self.objective}: part must be one of {PARTS}, got {part!r}")
        if len(split.train_end) != len(seqs):
            raise ValueError(f"{self.objective}: the split has {len(split.train_end)} rows, {seqs.name} has {len(seqs)}")
        if batch_size < 1:
            raise ValueError(f"{self.objective}: batch_size must be >= 1, got {batch_size}")
        held_out = part != "train"
        if held_out:
            pos = split.valid_pos if part == "valid" else split.test_pos
            rows = np.flatnonzero(pos >= max(self.min_input - 1, 1)).astype(np.int64)
            ends = pos[rows] + 1
        else:
            rows = np.flatnonzero(split.train_end >= self.min_input).astype(np.int64)
            ends = split.train_end[rows]
        shuffle = generator is not None and not held_out
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        if shuffle:
            perm = torch.randperm(rows.size, generator=gen).numpy()
            rows, ends = rows[perm], ends[perm]
        if shuffle and self.bucket:
            # Length bucketing: within windows of BUCKET_WINDOW batches, rows of similar length share a batch, so a
            # batch is as wide as its longest row, not as max_len (Beauty: most users have < 10 behaviours and an
            # unbucketed step computed ~5x more padding than behaviours); the batches' order is then shuffled.
            lens = np.minimum(ends, max_len)
            window = batch_size * BUCKET_WINDOW
            order = np.concatenate([c + np.argsort(lens[c:c + window], kind="stable")
                                    for c in range(0, rows.size, window)]) if rows.size else rows  # fmt: skip
            rows, ends = rows[order], ends[order]
        starts = list(range(0, rows.size, batch_size))
        if len(starts) > 1 and rows.size - starts[-1] < self.min_batch:
            starts.pop()  # a too small last batch joins the one before it
        bounds = [(start, starts[i + 1] if i + 1 < len(starts) else rows.size) for i, start in enumerate(starts)]
        if shuffle and self.bucket:
            bounds = [bounds[int(i)] for i in torch.randperm(len(bounds), generator=gen)]
        for start, stop in bounds:
            yield _trim(self._batch(seqs, rows[start:stop], ends[start:stop], max_len, gen, held_out))

    def _batch(self, seqs: BehaviourSequences, rows: np.ndarray, ends: np.ndarray, max_len: int,
               gen: torch.Generator, held_out: bool) -> dict[str, Tensor]:  # fmt: skip
        raise NotImplementedError

    def user_batches(self, seqs: BehaviourSequences, rows: Sequence[int] | np.ndarray, ends: Sequence[int] | np.ndarray,
                     max_len: int | None = None) -> dict[str, Tensor]:  # fmt: skip
        """One batch with ``seq[:ends[b]]`` of each row ``rows[b]`` (its last ``max_len`` behaviours), the input of
        :meth:`embed` and :meth:`scores`; ``"row"`` holds the rows. An empty input embeds to zeros."""
        self._check(seqs)
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        batch = pad_batch(seqs, rows, np.asarray(ends, dtype=np.int64).reshape(-1), self._max_len(max_len))
        batch["row"] = torch.from_numpy(rows.copy())
        return _trim(batch)

    # ---------------------------------------------------------------- model
    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """The objective's training loss (scalar) on a batch of :meth:`make_batches`."""
        raise NotImplementedError

    def embed(self, batch: dict[str, Tensor]) -> Tensor:
        """User embeddings [B, d] of a batch of :meth:`user_batches` (pooled per ``pool``)."""
        h = self.model(batch)
        return self.model.pool(h, batch["mask"], self.pool_how)

    def scores(self, batch: dict[str, Tensor]) -> Tensor:
        """Next-item scores [B, M + 1] (column 0 = -inf) of a batch of :meth:`user_batches`."""
        raise NotImplementedError(f"{self.objective} does not score next items")

    def item_embeddings(self) -> Tensor:
        """Item vectors [M + 1, d] (row 0 = padding)."""
        raise NotImplementedError(f"{self.objective} learns no item vectors")

    def batch_tokens(self, batch: dict[str, Tensor]) -> int:
        """Positions the model processes for ``batch`` (behaviours or BPE tokens), for :func:`train_flops`."""
        return int(sum(int(v.sum()) for k, v in batch.items() if k == "mask" or k.endswith(":mask")))

    def extra_repr(self) -> str:
        return f"objective={self.objective}, items={self.num_items}, max_len={self.max_len}, pool={self.pool_how}"


# ---------------------------------------------------------------------------- SASRec
class SASRec(EncoderObjective):
    """Next-behaviour prediction with causal attention and full-softmax cross-entropy (module docstring).

    Training batch: inputs ``seq[t - L : t - 1]`` and ``"target"`` [B, L], the next item at every real
    input position (0 = no loss); on held-out parts only the last column (the held-out item) has a target.
    """

    objective = "sasrec"
    min_input = 2

    def _batch(self, seqs: BehaviourSequences, rows: np.ndarray, ends: np.ndarray, max_len: int, gen: torch.Generator,
               held_out: bool) -> dict[str, Tensor]:
        full = pad_batch(seqs, rows, ends, max_len + 1)
        batch = {k: v[:, :-1] for k, v in full.items()}
        target = full["item"][:, 1:] * full["mask"][:, :-1]
        if held_out:
            target[:, :-1] = 0
        batch["target"] = target
        batch["row"] = torch.from_numpy(rows.copy())
        return batch

    def _item_table(self) -> Tensor:
        return self.model.item_vectors()[1 : self.num_items + 1]

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        h = self.model(batch)
        where = batch["target"] > 0
        if not where.any():
            raise ValueError("sasrec: the batch has no target (every row needs two behaviours)")
        logits = h[where] @ self._item_table().T  # only the real positions: [n, M], not [B, L, M]
        return F.cross_entropy(logits, batch["target"][where] - 1)

    def scores(self, batch: dict[str, Tensor]) -> Tensor:
        z = self.model.pool(self.model(batch), batch["mask"], "last")
        out = z @ self.model.item_vectors()[: self.num_items + 1].T
        out[:, 0] = -math.inf
        return out

    def item_embeddings(self) -> Tensor:
        return self.model.item_vectors()[: self.num_items + 1]


# ---------------------------------------------------------------------------- CLUE
class CLUE(EncoderObjective):
    """Contrastive user encoder: two views per user, in-batch InfoNCE (module docstring).

    Training batch: 2B sequences; rows ``0..B-1`` are the first views and ``B..2B-1`` the second views of
    the same users (``"row"`` [2B] names the user of each). Each batch of :meth:`make_batches` holds a user
    once; :func:`info_nce` also accepts duplicates (they are left out of each other's negatives).
    """

    objective = "clue"
    min_input = 2
    min_batch = 2  # a lone user has no in-batch negative
    bucket = False  # in-batch negatives stay a uniform draw of users, not users of the same history length

    def __init__(self, model: BehaviourTransformer, num_items: int, max_len: int, pool: str, params: dict[str, Any],
                 temperature: float, proj_dim: int, crop_ratio: float, mask_ratio: float,
                 reorder_ratio: float) -> None:  # fmt: skip
        super().__init__(model, num_items, max_len, pool, params)
        if temperature <= 0:
            raise ValueError(f"clue: temperature must be > 0, got {temperature}")
        for name, r in (("crop_ratio", crop_ratio), ("mask_ratio", mask_ratio), ("reorder_ratio", reorder_ratio)):
            if not 0 < r <= 1:
                raise ValueError(f"clue: {name} must be in (0, 1], got {r}")
        self.temperature = float(temperature)
        self.crop_ratio, self.mask_ratio, self.reorder_ratio = crop_ratio, mask_ratio, reorder_ratio
        dim = model.dim
        # SimCLR's MLP head (Chen et al. 2020); the user embedding is taken before it.
        self.projection = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, proj_dim))

    def _augment(self, n: int, gen: torch.Generator) -> tuple[list[int], list[int]]:
        """One random augmentation of positions 0..n-1 (CL4SRec's crop / mask / reorder): ``(order, masked)``."""
        order = list(range(n))
        op = int(torch.randint(3, (1,), generator=gen))
        if op == 0:  # crop: a contiguous part
            k = max(1, int(self.crop_ratio * n))
            s = int(torch.randint(n - k + 1, (1,), generator=gen))
            return order[s : s + k], []
        if op == 1:  # mask: some behaviours become [MASK]
            k = max(1, int(self.mask_ratio * n))
            return order, torch.randperm(n, generator=gen)[:k].tolist()
        k = min(n, max(2, int(self.reorder_ratio * n)))  # reorder: shuffle a contiguous part
        s = int(torch.randint(n - k + 1, (1,), generator=gen))
        order[s : s + k] = [order[s + i] for i in torch.randperm(k, generator=gen).tolist()]
        return order, []

    @staticmethod
    def _crop(start: int, k: int, width: int, gen: torch.Generator) -> list[int]:
        """Columns of a random contiguous crop of ``ceil(k / 2)``..``k`` of the ``k`` columns from ``start``."""
        lo = (k + 1) // 2
        size = lo + int(torch.randint(k - lo + 1, (1,), generator=gen))
        offset = int(torch.randint(k - size + 1, (1,), generator=gen))
        return list(range(start + offset, start + offset + size))

    def _batch(self, seqs: BehaviourSequences, rows: np.ndarray, ends: np.ndarray, max_len: int, gen: torch.Generator,
               held_out: bool) -> dict[str, Tensor]:
        long = ends >= 4
        half = ends // 2
        first = pad_batch(seqs, rows, np.where(long, half, ends), max_len)
        full = pad_batch(seqs, rows, ends, max_len)
        cols1: list[list[int]] = []
        cols2: list[list[int]] = []
        masked1: list[list[int]] = []
        masked2: list[list[int]] = []
        for b, n in enumerate(ends.tolist()):
            if long[b]:
                k1 = min(int(half[b]), max_len)
                k2 = min(n - int(half[b]), max_len)  # the second half: the last n - n//2 behaviours
                if held_out:
                    cols1.append(list(range(max_len - k1, max_len)))
                    cols2.append(list(range(max_len - k2, max_len)))
                else:
                    # A random contiguous crop of each half, half to all of it: with whole halves, the two views
                    # of a user have the same length, and the length alone tells users apart (a shortcut that
                    # left the embeddings without taste: linear-probe gender AUC 0.59 on MovieLens-100k).
                    cols1.append(self._crop(max_len - k1, k1, max_len, gen))
                    cols2.append(self._crop(max_len - k2, k2, max_len, gen))
                masked1.append([])
                masked2.append([])
            else:
                k = min(n, max_len)
                real = list(range(max_len - k, max_len))
                for cols, masked in ((cols1, masked1), (cols2, masked2)):
                    order, m = self._augment(k, gen)
                    cols.append([real[i] for i in order])
                    masked.append(m)
        token = self.model.mask_token
        v1 = _regather(first, cols1, masked1, max_len, token)
        v2 = _regather(full, cols2, masked2, max_len, token)
        batch = {k: torch.cat([v1[k], v2[k]]) for k in v1}
        r = torch.from_numpy(rows.copy())
        batch["row"] = torch.cat([r, r])
        return batch

    def project(self, batch: dict[str, Tensor]) -> Tensor:
        """Projected (not normalised) mean-pooled views [B, proj_dim]."""
        h = self.model(batch)
        return self.projection(self.model.pool(h, batch["mask"], "mean"))

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        z = self.project(batch)
        n = z.shape[0] // 2  # a single user has no negative: its loss is 0 (make_batches avoids that)
        groups = batch["row"][:n] if "row" in batch else None
        return info_nce(z[:n], z[n:], self.temperature, groups)


# ---------------------------------------------------------------------------- ShopperBERT
class ShopperBERT(EncoderObjective):
    """Masked behaviour prediction with ``[CLS]`` and one head per field (module docstring).

    Training batch: the masked inputs, ``"masked"`` bool [B, L] and ``"label:<key>"`` [B, L] for the item
    and each head field (0 away from the masked positions, and where a value is unknown). On held-out
    parts exactly the last behaviour (the held-out one) is masked, always as ``[MASK]``.
    """

    objective = "shopperbert"
    min_input = 1
    rule = (0.8, 0.1, 0.1)  # BERT: [MASK] / random item / kept

    def __init__(self, model: BehaviourTransformer, num_items: int, max_len: int, pool: str, params: dict[str, Any],
                 mask_prob: float) -> None:  # fmt: skip
        super().__init__(model, num_items, max_len, pool, params)
        if not 0 < mask_prob < 1:
            raise ValueError(f"shopperbert: mask_prob must be in (0, 1), got {mask_prob}")
        self.mask_prob = float(mask_prob)
        # A field with a single value is known for free once the item is masked; it gets no head.
        self.heads = nn.ModuleDict({k: nn.Linear(model.dim, v + 1) for k, v in model.fields.items() if v >= 2})

    def _batch(self, seqs: BehaviourSequences, rows: np.ndarray, ends: np.ndarray, max_len: int, gen: torch.Generator,
               held_out: bool) -> dict[str, Tensor]:
        batch = pad_batch(seqs, rows, ends, max_len)
        mask = batch["mask"]
        if held_out:
            sel = torch.zeros_like(mask)
            sel[:, -1] = mask[:, -1]
        else:
            sel = (torch.rand(mask.shape, generator=gen) < self.mask_prob) & mask
            none = ~sel.any(1) & mask.any(1)
            if none.any():  # at least one masked behaviour per sequence: a random real one
                pick = (torch.rand(mask.shape, generator=gen) * mask).argmax(1)
                sel[none, pick[none]] = True
        out: dict[str, Tensor] = {"label:item": batch["item"] * sel}
        for key in self.heads:
            out[f"label:{key}"] = batch[key] * sel
        item = batch["item"].clone()
        if held_out:
            item[sel] = self.model.mask_token
        else:
            u = torch.rand(mask.shape, generator=gen)
            rand_item = torch.randint(1, self.num_items + 1, mask.shape, generator=gen)
            p_mask, p_rand, _ = self.rule
            item = torch.where(sel & (u < p_mask), self.model.mask_token, item)
            item = torch.where(sel & (u >= p_mask) & (u < p_mask + p_rand), rand_item, item)
        inputs = {k: (v.masked_fill(sel, 0) if k not in ("mask",) else v) for k, v in batch.items()}
        inputs["item"] = item
        return {**inputs, "masked": sel, **out, "row": torch.from_numpy(rows.copy())}

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        h = self.model(batch)[:, 1:]  # drop [CLS]
        where = batch["masked"]
        if not where.any():
            raise ValueError("shopperbert: the batch has no masked behaviour")
        hs = h[where]
        items = self.model.item_vectors()[1 : self.num_items + 1]
        losses = [F.cross_entropy(hs @ items.T, batch["label:item"][where] - 1)]
        for key, head in self.heads.items():
            target = batch[f"label:{key}"][where]
            if (target > 0).any():  # unknown values (code 0, e.g. no time) are no target
                losses.append(F.cross_entropy(head(hs), target, ignore_index=0))
        return torch.stack(losses).mean()

    def item_embeddings(self) -> Tensor:
        return self.model.item_vectors()[: self.num_items + 1]


# ---------------------------------------------------------------------------- LMRec
class LMRec(EncoderObjective):
    """Causal LM over the history as text + λ · BCE of user-item pairs (module docstring).

    Token 0 is padding and 1 ``</s>`` (:class:`~graphrec.encoders.tokenizer.BPETokenizer`). Training batch:
    ``"item"`` / ``"mask"`` [B, T] the history tokens (left-padded, the last ``max_len`` tokens, ending in
    ``</s>``), ``"pos:item"`` / ``"pos:mask"`` [B, Ti] the positive item's text tokens and ``"neg:item"`` /
    ``"neg:mask"`` [B * K, Ti] those of the K negatives of each row (row-major). Held-out parts take the whole
    input before the held-out behaviour as history and the held-out behaviour as the positive.

    Attributes:
        tokenizer: the :class:`BPETokenizer`; :attr:`tokenizer_json` its JSON (store it with the weights and
            pass it back as ``tokenizer_json`` to rebuild the same vocabulary).
    """

    objective = "lmrec"
    min_input = 2

    def __init__(self, model: BehaviourTransformer, seqs: BehaviourSequences, tokenizer: BPETokenizer, max_len: int,
                 pool: str, params: dict[str, Any], lm_weight: float, num_negatives: int,
                 item_max_len: int) -> None:  # fmt: skip
        super().__init__(model, seqs.num_items, max_len, pool, params)
        if num_negatives < 1 or seqs.num_items < 2:
            raise ValueError(f"lmrec: needs num_negatives >= 1 (got {num_negatives}) and at least 2 items "
                             f"(got {seqs.num_items})")  # fmt: skip
        if item_max_len < 2:
            raise ValueError(f"lmrec: item_max_len must be >= 2 (text + </s>), got {item_max_len}")
        self.tokenizer = tokenizer
        self.tokenizer_json = tokenizer.to_json()
        self.lm_weight = float(lm_weight)
        self.num_negatives = int(num_negatives)
        self.item_max_len = int(item_max_len)
        dim = model.dim
        self.user_head = nn.Linear(dim, dim, bias=False)  # W_u
        self.item_head = nn.Linear(dim, dim, bias=False)  # W_i
        texts = [seqs.token_text(t) for t in range(1, seqs.num_items + 1)]
        ids = [i[: self.item_max_len - 1] + [tokenizer.eos_id] for i in tokenizer.encode_batch(texts)]
        table = torch.zeros(seqs.num_items + 1, self.item_max_len, dtype=torch.long)
        for t, i in enumerate(ids, start=1):
            table[t, self.item_max_len - len(i):] = torch.as_tensor(i)
        # Derived from the item texts, so neither saved with the weights (it can be large) nor moved to the
        # accelerator: batches are made on the CPU.
        self.item_tokens = table

    def _check(self, seqs: BehaviourSequences) -> None:
        super()._check(seqs)
        if seqs.item_text is None:
            raise ValueError(f"lmrec: {seqs.name} has no item text (S3-Rec sequence files carry ids only)")

    def _history(self, seqs: BehaviourSequences, rows: np.ndarray, ends: np.ndarray, max_len: int) -> dict[str, Tensor]:
        texts = [seqs.text_view(int(k), int(e)) for k, e in zip(rows, ends, strict=True)]
        ids = [i[-max_len:] for i in self.tokenizer.encode_batch(texts)]  # keep the most recent tokens and </s>
        width = max(1, max(len(i) for i in ids))
        item = torch.zeros(len(ids), width, dtype=torch.long)
        for b, i in enumerate(ids):
            if i:
                item[b, width - len(i):] = torch.as_tensor(i)
        return {"item": item, "mask": item > 0}

    def _items(self, tokens: Tensor) -> dict[str, Tensor]:
        t = self.item_tokens[tokens.cpu()]
        keep = (t > 0).any(0)  # drop columns that are padding in every row
        first = int(keep.float().argmax()) if keep.any() else t.shape[1] - 1
        t = t[:, first:]
        return {"item": t, "mask": t > 0}

    def _batch(self, seqs: BehaviourSequences, rows: np.ndarray, ends: np.ndarray, max_len: int, gen: torch.Generator,
               held_out: bool) -> dict[str, Tensor]:
        ends = np.asarray(ends, dtype=np.int64)
        if held_out:
            cut = ends - 1
        else:  # a random prefix of 1..n-1 behaviours; the next behaviour is the positive
            cut = (torch.rand(len(ends), generator=gen).numpy() * (ends - 1)).astype(np.int64) + 1
            cut = np.minimum(cut, ends - 1)
        batch = self._history(seqs, rows, cut, max_len)
        pos = torch.from_numpy(seqs.item[seqs.indptr[rows] + cut].copy())
        k = self.num_negatives
        neg = torch.randint(1, self.num_items, (len(rows), k), generator=gen)
        neg = neg + (neg >= pos[:, None]).long()  # uniform over the items other than the positive
        p, n = self._items(pos), self._items(neg.reshape(-1))
        batch.update({"pos:item": p["item"], "pos:mask": p["mask"], "neg:item": n["item"], "neg:mask": n["mask"],
                      "row": torch.from_numpy(np.asarray(rows, dtype=np.int64).copy())})  # fmt: skip
        return batch

    def user_batches(self, seqs: BehaviourSequences, rows: Sequence[int] | np.ndarray, ends: Sequence[int] | np.ndarray,
                     max_len: int | None = None) -> dict[str, Tensor]:  # fmt: skip
        """One batch of history tokens of ``seq[:ends[b]]`` of each row (``max_len`` counts BPE tokens)."""
        self._check(seqs)
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        batch = self._history(seqs, rows, np.asarray(ends, dtype=np.int64).reshape(-1), self._max_len(max_len))
        batch["row"] = torch.from_numpy(rows.copy())
        return batch

    def _encode_items(self, batch: dict[str, Tensor]) -> Tensor:
        return self.model.pool(self.model(batch), batch["mask"], "last")  # the </s> state

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        h = self.model(batch)
        tokens, mask = batch["item"], batch["mask"]
        pairs = mask[:, :-1] & mask[:, 1:]
        vocab = self.model.item_vectors()[1 : self.tokenizer.vocab_size]  # every token but <pad>
        lm = F.cross_entropy(h[:, :-1][pairs] @ vocab.T, tokens[:, 1:][pairs] - 1) if pairs.any() else h.sum() * 0
        zu = self.user_head(self.model.pool(h, mask, "last"))  # the history's </s>
        zp = self.item_head(self._encode_items({"item": batch["pos:item"], "mask": batch["pos:mask"]}))
        zn = self.item_head(self._encode_items({"item": batch["neg:item"], "mask": batch["neg:mask"]}))
        pos_logit = (zu * zp).sum(-1)
        neg_logit = torch.einsum("bd,bkd->bk", zu, zn.view(zu.shape[0], -1, zu.shape[1]))
        logits = torch.cat([pos_logit[:, None], neg_logit], 1)
        labels = torch.zeros_like(logits)
        labels[:, 0] = 1.0
        rec = F.binary_cross_entropy_with_logits(logits, labels)
        return lm + self.lm_weight * rec

    def item_embeddings(self, chunk: int = 1024) -> Tensor:
        """z_i of every item token [M + 1, d] (row 0 = 0): the ``</s>`` state of each item's text."""
        device = self.user_head.weight.device
        out = [torch.zeros(1, self.model.dim, device=device)]
        for start in range(1, self.num_items + 1, chunk):
            batch = self._items(torch.arange(start, min(start + chunk, self.num_items + 1)))
            out.append(self._encode_items({k: v.to(device) for k, v in batch.items()}))
        return torch.cat(out)

    def scores(self, batch: dict[str, Tensor]) -> Tensor:
        """<W_u z_u, W_i z_i> against every item [B, M + 1] (it encodes every item text: costly per call)."""
        zu = self.user_head(self.model.pool(self.model(batch), batch["mask"], "last"))
        out = zu @ self.item_head(self.item_embeddings()).T
        out[:, 0] = -math.inf
        return out


OBJECTIVES: dict[str, type[EncoderObjective]] = {"sasrec": SASRec, "clue": CLUE, "shopperbert": ShopperBERT,
                                                  "lmrec": LMRec}  # fmt: skip


def build_encoder(name: str, seqs: BehaviourSequences, **params: Any) -> EncoderObjective:
    """The objective ``name`` (:data:`OBJECTIVES`) over ``seqs``' items, fields and texts.

    Args:
        name: ``sasrec``, ``clue``, ``shopperbert`` or ``lmrec``.
        seqs: the sequences (number of items, event types, categories, item texts; lmrec trains
            its BPE tokenizer on the item texts and event-type names unless ``tokenizer_json`` is given).
        params: any of :data:`ENCODER_PARAMS` ``[name]`` (meanings: :data:`PARAM_HELP`); ``pool=None``
            means the objective's default.

    Returns:
        the objective module, with ``objective``, ``num_items``, ``max_len`` and ``params`` (the resolved
        parameters, JSON-ready: ``text_vectors`` is given as its shape).

    Raises:
        ValueError: an unknown objective or parameter, a bad value, ``lmrec`` on sequences without item
            text, ``fields`` or ``text_vectors`` with ``lmrec`` (its behaviours are text already).
    """
    key = str(name).lower()
    if key not in OBJECTIVES:
        raise ValueError(f"unknown encoder objective {name!r}; choose one of {', '.join(OBJECTIVES)}")
    defaults = ENCODER_PARAMS[key]
    if key == "lmrec":
        if params.get("fields"):
            raise ValueError(f"lmrec reads each behaviour as text (event type and item text); input fields "
                             f"{params['fields']} do not apply (use fields=[])")  # fmt: skip
        if params.get("text_vectors") is not None:
            raise ValueError("lmrec reads item texts as BPE tokens; text_vectors do not apply (use text_vectors=None)")
        params = {k: v for k, v in params.items() if k not in ("fields", "text_vectors")}
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(f"{key}: unknown parameter(s) {unknown}; {key} takes {sorted(defaults)}")
    p = {**defaults, **{k: v for k, v in params.items() if not (k == "pool" and v is None)}}
    for k in ("dim", "layers", "heads", "max_len"):
        if int(p[k]) < 1:
            raise ValueError(f"{key}: {k} must be >= 1, got {p[k]}")
    pool = p["pool"]
    allowed = ("last", "mean") if key == "lmrec" else ("last", "mean", "cls") if key == "shopperbert" else ("last", "mean")
    if pool not in allowed:
        raise ValueError(f"{key}: pool must be one of {allowed}, got {pool!r}")
    record = {k: v for k, v in p.items() if k not in ("text_vectors", "tokenizer_json")}
    arch = {"dim": int(p["dim"]), "layers": int(p["layers"]), "heads": int(p["heads"]), "ffn": p["ffn"],
            "dropout": float(p["dropout"])}  # fmt: skip

    if key == "lmrec":
        if seqs.item_text is None:
            raise ValueError(f"lmrec: {seqs.name} has no item text (S3-Rec sequence files carry item ids only); "
                             "lmrec reads the history as text, pick another objective")  # fmt: skip
        if p["tokenizer_json"]:
            tok = BPETokenizer.from_json(p["tokenizer_json"])
        else:
            texts = [seqs.token_text(t) for t in range(1, seqs.num_items + 1)] + list(seqs.event_types) + [" ; "]
            tok = BPETokenizer.train(texts, vocab_size=int(p["vocab_size"]))
        record["vocab_size"] = tok.vocab_size
        width = max(int(p["max_len"]), int(p["item_max_len"]))
        model = BehaviourTransformer(tok.vocab_size - 1, max_len=width, causal=True, **arch)
        return LMRec(model, seqs, tok, int(p["max_len"]), pool, record, float(p["lm_weight"]),
                     int(p["num_negatives"]), int(p["item_max_len"]))  # fmt: skip

    fields = input_fields(seqs, p["fields"])
    tv = p["text_vectors"]
    record["text_vectors"] = None if tv is None else list(tv.shape)
    model = BehaviourTransformer(seqs.num_items, max_len=int(p["max_len"]), fields=fields, causal=key == "sasrec",
                                 cls_token=key == "shopperbert", text_vectors=tv, **arch)  # fmt: skip
    common = (model, seqs.num_items, int(p["max_len"]), pool, record)
    if key == "sasrec":
        return SASRec(*common)
    if key == "clue":
        return CLUE(*common, temperature=float(p["temperature"]), proj_dim=int(p["proj_dim"]),
                    crop_ratio=float(p["crop_ratio"]), mask_ratio=float(p["mask_ratio"]),
                    reorder_ratio=float(p["reorder_ratio"]))  # fmt: skip
    return ShopperBERT(*common, mask_prob=float(p["mask_prob"]))
