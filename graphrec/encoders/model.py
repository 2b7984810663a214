"""One transformer stack over behaviour sequences, shared by every user-encoder objective.

:class:`BehaviourTransformer` turns a padded batch of behaviours (the dict of
:func:`graphrec.encoders.sequences.pad_batch`: ``item``, ``mask`` and one ``[B, L]`` code
tensor per field) into hidden states ``[B, L, dim]`` (``[B, L + 1, dim]`` with a ``[CLS]``
token in front). The objectives of :mod:`graphrec.encoders.objectives` (SASRec, CLUE,
ShopperBERT, LMRec) differ only in the attention direction, the ``[CLS]`` token, the fields
and what they put on top.

Input per position (Devlin et al. 2019 style sum of embeddings)::

    x = E_item[item] (+ W_text · text_vectors[item]) + sum_f E_f[batch[f]] + P[position]

Positions are counted back from the most recent behaviour (``max_len - 1`` is the last
column of a left-padded batch), so one behaviour keeps its position whatever the width
of the batch. Code 0 of every field is padding / unknown and embeds to zero.

Also :func:`num_parameters` and :func:`train_flops` (``6 · N · tokens``, Kaplan et al. 2020,
"Scaling Laws for Neural Language Models", eq. 2.1) for scaling plots.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

POOLS = ("last", "mean", "cls")


class BehaviourTransformer(nn.Module):
    """Pre-LN GELU transformer (``nn.TransformerEncoder``) over behaviour sequences.

    Args:
        num_items: M; item tokens run 1..M, 0 is padding and ``M + 1`` is ``[MASK]``
            (:attr:`mask_token`).
        dim: hidden size d.
        layers: number of encoder layers.
        heads: attention heads (``dim`` must be a multiple).
        ffn: feed-forward width (default ``4 * dim``).
        dropout: dropout on the input embeddings and inside every layer.
        max_len: the widest batch (behaviours, without ``[CLS]``) the model accepts.
        fields: batch key -> vocabulary size V of a categorical input field, codes 1..V
            (0 = padding / unknown / masked), e.g. ``{"event": 2, "hour": 24, "cat:genre": 18}``.
        causal: position i attends to positions <= i only (SASRec, LMRec); otherwise
            bidirectional (CLUE, ShopperBERT).
        cls_token: put a learned ``[CLS]`` vector in front of every sequence (ShopperBERT).
        text_vectors: optional frozen item-text vectors ``[M + 1, t]`` (row 0 = padding) or
            ``[M + 2, t]``; projected to ``dim`` by a linear map and added to the item embedding.

    Attention mask: padded positions attend only to themselves, real positions attend only to
    real ones (and only backwards when causal). PyTorch's ``key_padding_mask`` together with a
    causal mask leaves the leading pads of a left-padded row with no key at all, and their
    softmax is NaN; the combined per-row mask built here never has an empty row.

    Raises:
        ValueError: ``dim`` not divisible by ``heads``, a bad ``text_vectors`` shape, or (in
            :meth:`forward`) a batch wider than ``max_len`` or missing a field.
    """

    def __init__(self, num_items: int, dim: int = 64, layers: int = 2, heads: int = 2, ffn: int | None = None,
                 dropout: float = 0.2, max_len: int = 50, fields: Mapping[str, int] | None = None,
                 causal: bool = True, cls_token: bool = False, text_vectors: Tensor | None = None) -> None:  # fmt: skip
        super().__init__()
        if dim % heads:
            raise ValueError(f"BehaviourTransformer: dim {dim} is not a multiple of heads {heads}")
        if num_items < 1 or max_len < 1:
            raise ValueError(f"BehaviourTransformer: num_items ({num_items}) and max_len ({max_len}) must be >= 1")
        self.num_items = int(num_items)
        self.dim = int(dim)
        self.heads = int(heads)
        self.max_len = int(max_len)
        self.causal = bool(causal)
        self.fields = {str(k): int(v) for k, v in (fields or {}).items()}
        self.mask_token = self.num_items + 1
        self.item_embedding = nn.Embedding(self.num_items + 2, dim, padding_idx=0)
        self.field_embeddings = nn.ModuleDict({k: nn.Embedding(v + 1, dim, padding_idx=0) for k, v in self.fields.items()})
        self.position = nn.Embedding(self.max_len, dim)
        self.cls = nn.Parameter(torch.zeros(dim)) if cls_token else None
        if text_vectors is not None:
            tv = torch.as_tensor(text_vectors, dtype=torch.float32)
            if tv.dim() != 2 or tv.shape[0] not in (self.num_items + 1, self.num_items + 2):
                raise ValueError(f"BehaviourTransformer: text_vectors must be [num_items + 1, t] = [{self.num_items + 1}, t], "
                                 f"got {tuple(tv.shape)}")  # fmt: skip
            if tv.shape[0] == self.num_items + 1:  # a zero row for [MASK], so a masked item shows no text either
                tv = torch.cat([tv, tv.new_zeros(1, tv.shape[1])])
            self.register_buffer("text_vectors", tv)
            self.text_projection: nn.Linear | None = nn.Linear(tv.shape[1], dim, bias=False)
        else:
            self.text_vectors = None
            self.text_projection = None
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(dim, heads, ffn or 4 * dim, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)  # fmt: skip
        # Nested tensors are unavailable with norm_first anyway; saying so silences a warning per build.
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(dim), enable_nested_tensor=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Embeddings ~ N(0, 0.02) (BERT / GPT-2 initialisation), padding rows zero."""
        embeddings = [self.item_embedding, self.position, *self.field_embeddings.values()]
        for emb in embeddings:
            nn.init.normal_(emb.weight, std=0.02)
            if emb.padding_idx is not None:
                with torch.no_grad():
                    emb.weight[emb.padding_idx].zero_()
        if self.cls is not None:
            nn.init.normal_(self.cls, std=0.02)

    def item_vectors(self, tokens: Tensor | None = None) -> Tensor:
        """Input (and tied output) vectors of item tokens: ``[*tokens.shape, dim]``, or ``[M + 2, dim]``
        for every token (pad, 1..M, [MASK]) when ``tokens`` is None."""
        if tokens is None:
            tokens = torch.arange(self.num_items + 2, device=self.item_embedding.weight.device)
        x = self.item_embedding(tokens)
        if self.text_projection is not None:
            x = x + self.text_projection(self.text_vectors[tokens])
        return x

    def attention_mask(self, mask: Tensor) -> Tensor:
        """Boolean ``[B * heads, L, L]`` mask, True = may not attend (``nn.MultiheadAttention`` convention).

        Query i may attend key j iff j is real (or j == i), and j <= i when causal; every row keeps
        at least its diagonal, so no softmax is over an empty set (no NaN for pads)."""
        length = mask.shape[1]
        allowed = mask[:, None, :].expand(-1, length, -1).clone()
        allowed |= torch.eye(length, dtype=torch.bool, device=mask.device)
        if self.causal:
            allowed &= torch.ones(length, length, dtype=torch.bool, device=mask.device).tril()
        return (~allowed).repeat_interleave(self.heads, dim=0)

    def forward(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Hidden states of the last layer (after the final LayerNorm).

        Args:
            batch: ``item`` int64 [B, L], ``mask`` bool [B, L] (True = real behaviour) and every key
                of :attr:`fields` as int64 [B, L]; other keys are ignored.

        Returns:
            float [B, L, dim], or [B, L + 1, dim] with ``[CLS]`` at index 0; padded positions are zero.
        """
        items = batch["item"]
        mask = batch["mask"].bool()
        width = items.shape[1]
        if width > self.max_len:
            raise ValueError(f"BehaviourTransformer: batch of {width} positions is wider than max_len {self.max_len}")
        x = self.item_vectors(items)
        for key, emb in self.field_embeddings.items():
            if key not in batch:
                raise ValueError(f"BehaviourTransformer: the batch has no field {key!r} (it has {sorted(batch)})")
            x = x + emb(batch[key])
        x = x + self.position(torch.arange(self.max_len - width, self.max_len, device=items.device))
        if self.cls is not None:
            x = torch.cat([self.cls.expand(x.shape[0], 1, -1), x], dim=1)
            mask = torch.cat([mask.new_ones(mask.shape[0], 1), mask], dim=1)
        h = self.encoder(self.dropout(x), mask=self.attention_mask(mask))
        return h * mask[..., None]

    def pool(self, hidden: Tensor, mask: Tensor, how: str = "last") -> Tensor:
        """One vector per sequence.

        Args:
            hidden: [B, L, dim] or [B, L + 1, dim] (with ``[CLS]``) from :meth:`forward`.
            mask: bool [B, L], True = real behaviour (the batch's mask, without ``[CLS]``).
            how: ``"last"`` (the most recent real behaviour), ``"mean"`` (mean over real behaviours)
                or ``"cls"`` (the ``[CLS]`` state). A row without behaviours pools to zero
                (``"last"``, ``"mean"``).

        Returns:
            float [B, dim].
        """
        mask = mask.bool()
        offset = hidden.shape[1] - mask.shape[1]
        if offset not in (0, 1) or (offset == 1) != (self.cls is not None):
            raise ValueError(f"BehaviourTransformer.pool: hidden {tuple(hidden.shape)} does not match mask {tuple(mask.shape)}")
        if how == "cls":
            if self.cls is None:
                raise ValueError("BehaviourTransformer.pool: 'cls' pooling needs cls_token=True")
            return hidden[:, 0]
        tokens = hidden[:, offset:]
        if how == "mean":
            m = mask[..., None].to(tokens.dtype)
            return (tokens * m).sum(1) / m.sum(1).clamp(min=1.0)
        if how == "last":
            width = mask.shape[1]
            last = width - 1 - mask.flip(1).to(torch.int8).argmax(1)
            out = tokens[torch.arange(tokens.shape[0], device=tokens.device), last]
            return out * mask.any(1, keepdim=True).to(out.dtype)
        raise ValueError(f"BehaviourTransformer.pool: how must be one of {POOLS}, got {how!r}")


def num_parameters(model: nn.Module, *, non_embedding: bool = False, trainable_only: bool = True) -> int:
    """Number of parameters of ``model``.

    Args:
        non_embedding: leave out the weights of every ``nn.Embedding`` (item, field and position
            tables), the count N of Kaplan et al. (2020).
        trainable_only: count only parameters with ``requires_grad``.
    """
    skip: set[int] = set()
    if non_embedding:
        skip = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    return sum(p.numel() for p in model.parameters() if id(p) not in skip and (p.requires_grad or not trainable_only))


def train_flops(model: nn.Module, tokens: int, *, non_embedding: bool = True) -> float:
    """Training compute estimate ``C = 6 · N · tokens`` floating-point operations (Kaplan et al. 2020,
    eq. 2.1: 2N per token forward, 4N backward), with N = :func:`num_parameters` (non-embedding
    by default, as in the paper). ``tokens`` = positions processed (behaviours or BPE tokens).
    Divide by 8.64e19 for petaflop/s-days. It leaves out attention (``~ L / 12d`` relative) and the
    output softmax over all items, which a large item vocabulary can make dominant."""
    return 6.0 * num_parameters(model, non_embedding=non_embedding) * float(tokens)
