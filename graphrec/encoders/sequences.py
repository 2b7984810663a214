"""Per-user behaviour sequences for transformer user encoders.

>>> from graphrec.encoders import load_behaviour_sequences, pad_batch
>>> seqs = load_behaviour_sequences("ml-100k")        # doctest: +SKIP
>>> split = seqs.leave_one_out()                       # doctest: +SKIP
>>> batch = pad_batch(seqs, [0, 1], split.test_pos[[0, 1]], 50)  # doctest: +SKIP

A :class:`BehaviourSequences` holds every user's behaviours (user -> target events) in CSR
layout, oldest first: row ``k`` is ``item[indptr[k]:indptr[k + 1]]`` with the matching
``event`` types and ``time`` stamps. Targets of every kept target type share one token
space 1..M (0 is padding), grouped by type in ``target_types`` order; the side tables give
each token categorical codes (``item_cats``) and a plain-text rendering (``item_text``).

Two sources:

* :func:`from_store`: the events of a graph-store version, ordered per user by time, ties
  in the store's ingest order (the order the events come out of its day partitions; the
  stable sort RecBole applies to its interaction files);
* :func:`from_s3rec`: the exact S3-Rec sequence files (:mod:`graphrec.data.sequences`),
  which have no times, categories or text.

Two split protocols (:class:`SequenceSplit`): :meth:`BehaviourSequences.leave_one_out`, the
ICLRec protocol (train ``seq[:-2]``, validation target ``seq[-2]``, test target ``seq[-1]``),
and :meth:`BehaviourSequences.time_cut`, one global time cut. :func:`pad_batch` turns rows
and end positions into the left-padded int64 tensors a model reads.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import Tensor

from graphrec.store import GraphStore, LogSchema
from graphrec.store.schema import USER
from graphrec.store.store import to_utc

#: Calendar fields of a behaviour's time, each coded 1..TIME_VOCAB[field] (0 = padding or unknown time).
TIME_FIELDS: tuple[str, ...] = ("hour", "weekday", "day", "month", "year")
#: Years are coded ``year - 1970 + 1``, clipped to 1..YEARS (1970..2069).
YEARS = 100
#: Codes per time field, padding excluded: hour 0..23 -> 1..24, weekday Monday..Sunday -> 1..7,
#: day of month -> 1..31, month -> 1..12, year -> 1..YEARS.
TIME_VOCAB: dict[str, int] = {"hour": 24, "weekday": 7, "day": 31, "month": 12, "year": YEARS}

#: Text columns of a side table rendered into ``item_text`` by default, in this order.
DEFAULT_TEXT_FIELDS: tuple[str, ...] = ("title", "name", "brand", "description")
#: Multi-valued text columns (values separated by ``|``) and the categorical field of their first value.
MULTI_VALUED: dict[str, str] = {"genres": "genre", "categories": "category", "tags": "tag"}
#: Event type of the S3-Rec files (as their store adapter ingests them).
S3REC_EVENT = "review"


@dataclass
class BehaviourSequences:
    """Per-user time-ordered behaviours in CSR layout. Row ``k`` is one user.

    Row ``k`` holds ``item[indptr[k]:indptr[k + 1]]`` (tokens 1..``num_items``, oldest
    first), with ``event`` codes (1..len(``event_types``)) and ``time`` (UTC epoch seconds,
    0 = unknown) aligned with it. Per token ``t`` (index ``t``; row 0 is padding):
    ``item_ids[t - 1]`` its external id, ``target_types[item_type[t]]`` its target type,
    ``item_index[t]`` the store's contiguous id within that type, ``item_cats[f][t]`` the
    code of categorical field ``f`` (``cat_vocab[f][code - 1]``, 0 unknown) and
    ``item_text[t]`` its text.
    """

    name: str
    user_ids: list  # external user id of row k
    user_index: np.ndarray  # int64 [N]: the store's contiguous user id of row k (k for S3-Rec files)
    indptr: np.ndarray  # int64 [N + 1]
    item: np.ndarray  # int64 [E]: target token 1..num_items (0 = padding)
    event: np.ndarray  # int64 [E]: event-type code 1..len(event_types) (0 = padding)
    time: np.ndarray  # int64 [E]: UTC epoch seconds (0 = unknown)
    num_items: int  # M: tokens 1..M
    item_ids: list  # external id of token t at item_ids[t - 1]
    item_type: np.ndarray  # int64 [M + 1]: index into target_types (0 for the padding row too)
    item_index: np.ndarray  # int64 [M + 1]: contiguous id within the target type (-1 for padding)
    target_types: list[str]
    event_types: list[str]
    item_cats: dict[str, np.ndarray] = field(default_factory=dict)  # field -> int64 [M + 1] codes, 0 unknown
    cat_vocab: dict[str, list[str]] = field(default_factory=dict)  # field -> values; code c is values[c - 1]
    item_text: list[str] | None = None  # [M + 1] text per token ("" for padding and unknown)
    info: dict = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n, e, m = len(self.user_ids), self.item.size, self.num_items
        if self.indptr.shape != (n + 1,) or self.indptr[0] != 0 or self.indptr[-1] != e:
            raise ValueError(f"{self.name}: indptr must have {n + 1} entries from 0 to {e}, "
                             f"got shape {self.indptr.shape}")  # fmt: skip
        if np.any(np.diff(self.indptr) < 0):
            raise ValueError(f"{self.name}: indptr must be non-decreasing")
        for arr_name in ("event", "time"):
            if getattr(self, arr_name).shape != (e,):
                raise ValueError(f"{self.name}: {arr_name} has shape {getattr(self, arr_name).shape}, item has ({e},)")
        if self.user_index.shape != (n,):
            raise ValueError(f"{self.name}: user_index has shape {self.user_index.shape}, expected ({n},)")
        if e and (self.item.min() < 1 or self.item.max() > m):
            raise ValueError(f"{self.name}: item tokens must be in 1..{m}, got {self.item.min()}..{self.item.max()}")
        if e and (self.event.min() < 1 or self.event.max() > len(self.event_types)):
            raise ValueError(f"{self.name}: event codes must be in 1..{len(self.event_types)}, "
                             f"got {self.event.min()}..{self.event.max()}")  # fmt: skip
        if len(self.item_ids) != m:
            raise ValueError(f"{self.name}: {len(self.item_ids)} item ids for {m} tokens")
        for arr_name in ("item_type", "item_index"):
            if getattr(self, arr_name).shape != (m + 1,):
                raise ValueError(f"{self.name}: {arr_name} must have shape ({m + 1},)")
        for f, codes in self.item_cats.items():
            if codes.shape != (m + 1,):
                raise ValueError(f"{self.name}: item_cats[{f!r}] must have shape ({m + 1},), got {codes.shape}")
            if f not in self.cat_vocab or (codes.size and codes.max() > len(self.cat_vocab[f])):
                raise ValueError(f"{self.name}: item_cats[{f!r}] has codes beyond its cat_vocab")
        if self.item_text is not None and len(self.item_text) != m + 1:
            raise ValueError(f"{self.name}: item_text must have {m + 1} entries, got {len(self.item_text)}")

    # ------------------------------------------------------------------ rows
    def __len__(self) -> int:
        return len(self.user_ids)

    def __getitem__(self, k: int) -> np.ndarray:
        """Tokens of row ``k`` (int64, oldest first)."""
        k = self._row(k)
        return self.item[self.indptr[k] : self.indptr[k + 1]]

    @property
    def lengths(self) -> np.ndarray:
        """int64 [N]: behaviours per row."""
        return np.diff(self.indptr)

    @property
    def num_events(self) -> int:
        return int(self.item.size)

    def _row(self, k: int) -> int:
        n = len(self)
        k = int(k)
        if not -n <= k < n:
            raise IndexError(f"{self.name}: row {k} out of range for {n} rows")
        return k + n if k < 0 else k

    def __repr__(self) -> str:
        types = ", ".join(self.target_types)
        events = ", ".join(self.event_types)
        parts = [f"{len(self):,} users", f"{self.num_items:,} tokens ({types})",
                 f"{self.num_events:,} behaviours ({events})"]  # fmt: skip
        known = self.time[self.time != 0]
        if known.size:
            lo, hi = (dt.datetime.fromtimestamp(int(t), dt.UTC).date() for t in (known.min(), known.max()))
            parts.append(f"time {lo}..{hi}")
        else:
            parts.append("no times")
        if self.item_cats:
            parts.append("cats " + ", ".join(f"{f}[{len(self.cat_vocab[f])}]" for f in self.item_cats))
        if self.item_text is not None:
            parts.append("text")
        return f"BehaviourSequences({self.name}: " + "; ".join(parts) + ")"

    # ------------------------------------------------------------------ derived fields
    def time_fields(self) -> dict[str, np.ndarray]:
        """Calendar codes of every behaviour's time, per :data:`TIME_FIELDS`.

        Returns:
            ``{field: int64 [E]}``, codes 1..``TIME_VOCAB[field]`` in the schema's time zone
            (``info["timezone"]``, UTC by default); 0 where the time is unknown (``time == 0``).
            Computed once and cached.
        """
        if "time_fields" not in self._cache:
            tz = self.info.get("timezone") or "UTC"
            t = pl.from_epoch(pl.Series("t", self.time), time_unit="s").dt.replace_time_zone("UTC")
            if tz != "UTC":
                t = t.dt.convert_time_zone(tz)
            known = self.time != 0
            year = np.clip(t.dt.year().to_numpy().astype(np.int64) - 1970 + 1, 1, YEARS)
            codes = {
                "hour": t.dt.hour().to_numpy().astype(np.int64) + 1,
                "weekday": t.dt.weekday().to_numpy().astype(np.int64),  # ISO: Monday = 1 .. Sunday = 7
                "day": t.dt.day().to_numpy().astype(np.int64),
                "month": t.dt.month().to_numpy().astype(np.int64),
                "year": year,
            }
            self._cache["time_fields"] = {f: np.where(known, codes[f], 0).astype(np.int64) for f in TIME_FIELDS}
        return self._cache["time_fields"]

    def token_text(self, token: int) -> str:
        """The text of ``token``: ``item_text[token]``, or ``"<target type> <external id>"`` where there is none."""
        text = self.item_text[token] if self.item_text is not None else ""
        if text:
            return text
        if token < 1:
            return ""
        return f"{self.target_types[self.item_type[token]]} {self.item_ids[token - 1]}"

    def text_view(self, k: int, end: int | None = None, sep: str = " ; ", eos: str = "</s>") -> str:
        """Row ``k``'s behaviours before position ``end`` (exclusive; default all) as text.

        Each behaviour is ``"<event type> <token text>"`` (:meth:`token_text`); they are
        joined by ``sep`` oldest first and followed by ``" " + eos`` (just ``eos`` for an
        empty history). This is the history-as-text input of LMRec (Shi et al., 2024).

        Raises:
            IndexError: ``k`` or ``end`` is out of range.
        """
        row = self._row(k)
        n = int(self.indptr[row + 1] - self.indptr[row])
        end = n if end is None else int(end)
        if not 0 <= end <= n:
            raise IndexError(f"{self.name}: end {end} out of range for row {row} of length {n}")
        lo = int(self.indptr[row])
        parts = [f"{self.event_types[int(e) - 1]} {self.token_text(int(t))}"
                 for t, e in zip(self.item[lo : lo + end], self.event[lo : lo + end], strict=True)]  # fmt: skip
        text = sep.join(parts)
        return f"{text} {eos}" if parts and eos else text + eos

    # ------------------------------------------------------------------ splits
    def leave_one_out(self, min_length: int = 3) -> SequenceSplit:
        """ICLRec's leave-one-out split (``src/datasets.py`` of ICLRec; S3-Rec, Zhou et al. 2020).

        A row of length ``L >= min_length`` trains on ``seq[:L - 2]``; its validation target
        is ``seq[L - 2]`` (input ``seq[:L - 2]``), its test target ``seq[L - 1]`` (input
        ``seq[:L - 1]``). A shorter row keeps every behaviour for training and has no
        validation or test target (``-1``); their number is ``info["short_rows"]``.

        Raises:
            ValueError: ``min_length < 2`` (a row needs a validation and a test behaviour).
        """
        if min_length < 2:
            raise ValueError(f"min_length must be at least 2 (one validation and one test behaviour), got {min_length}")
        lengths = self.lengths
        held = lengths >= min_length
        train_end = np.where(held, lengths - 2, lengths)
        valid_pos = np.where(held, lengths - 2, -1)
        test_pos = np.where(held, lengths - 1, -1)
        info = {"min_length": int(min_length), "short_rows": int((~held).sum())}
        return SequenceSplit(self, "loo", train_end.astype(np.int64), valid_pos.astype(np.int64),
                             test_pos.astype(np.int64), info)  # fmt: skip

    def time_cut(self, valid_start: Any, test_start: Any) -> SequenceSplit:
        """One global time cut: behaviours before ``valid_start`` are the training input.

        Per row: the validation target is the first behaviour in ``[valid_start,
        test_start)`` (its input: everything before it, i.e. the training part); the test
        target is the first behaviour at or after ``test_start`` (its input: everything
        before it, validation-window behaviours included). ``-1`` where a row has none.

        Args:
            valid_start, test_start: datetimes, dates, ISO strings or epoch seconds (UTC when naive).

        Raises:
            ValueError: ``valid_start`` is after ``test_start``, the times are unknown
                (S3-Rec files), or a row is not in time order.
        """
        vs, ts = (int(to_utc(v).timestamp()) for v in (valid_start, test_start))
        if vs > ts:
            raise ValueError(f"valid_start ({to_utc(valid_start).isoformat()}) is after test_start "
                             f"({to_utc(test_start).isoformat()})")  # fmt: skip
        if self.num_events and not np.any(self.time):
            raise ValueError(f"{self.name}: behaviours have no times (time == 0); use leave_one_out()")
        lengths = self.lengths
        rows = np.repeat(np.arange(len(self)), lengths)
        if self.num_events > 1:
            back = (np.diff(self.time) < 0) & (rows[1:] == rows[:-1])
            if back.any():
                k = int(rows[1:][back][0])
                raise ValueError(f"{self.name}: row {k} (user {self.user_ids[k]}) is not in time order")
        n = len(self)
        # Rows are in time order, so "how many behaviours are before t" is the position of the first at or after t.
        before_valid = np.bincount(rows, weights=self.time < vs, minlength=n).astype(np.int64)
        before_test = np.bincount(rows, weights=self.time < ts, minlength=n).astype(np.int64)
        train_end = before_valid
        valid_pos = np.where(before_test > before_valid, before_valid, -1)
        test_pos = np.where(before_test < lengths, before_test, -1)
        info = {"valid_start": vs, "test_start": ts}
        return SequenceSplit(self, "time", train_end, valid_pos.astype(np.int64), test_pos.astype(np.int64), info)

    def subset(self, rows: Sequence[int] | np.ndarray) -> BehaviourSequences:
        """The rows ``rows`` (in that order) with the same token space, categories and text."""
        idx = np.asarray(rows, dtype=np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"{self.name}: rows must be in [0, {n}), got {idx.min()}..{idx.max()}")
        idx = np.where(idx < 0, idx + n, idx)
        lens = self.lengths[idx]
        indptr = np.zeros(idx.size + 1, dtype=np.int64)
        np.cumsum(lens, out=indptr[1:])
        gather = np.repeat(self.indptr[idx] - indptr[:-1], lens) + np.arange(int(indptr[-1]), dtype=np.int64)
        return BehaviourSequences(
            name=self.name,
            user_ids=[self.user_ids[int(k)] for k in idx],
            user_index=self.user_index[idx].copy(),
            indptr=indptr,
            item=self.item[gather],
            event=self.event[gather],
            time=self.time[gather],
            num_items=self.num_items,
            item_ids=self.item_ids,
            item_type=self.item_type,
            item_index=self.item_index,
            target_types=self.target_types,
            event_types=self.event_types,
            item_cats=self.item_cats,
            cat_vocab=self.cat_vocab,
            item_text=self.item_text,
            info={**self.info, "subset_of": n},
        )

    def filter_events(self, keep: np.ndarray) -> BehaviourSequences:
        """The behaviours where ``keep`` (bool ``[E]``, aligned with :attr:`item`) is true, order kept; rows left
        empty are dropped. The token space, categories and text are unchanged.

        Raises:
            ValueError: ``keep`` does not have one entry per behaviour.
        """
        keep = np.asarray(keep, dtype=bool).reshape(-1)
        if keep.size != self.item.size:
            raise ValueError(f"{self.name}: keep has {keep.size} entries for {self.item.size} behaviours")
        row = np.repeat(np.arange(len(self), dtype=np.int64), self.lengths)
        lens = np.bincount(row[keep], minlength=len(self))
        rows = np.flatnonzero(lens > 0)
        indptr = np.zeros(rows.size + 1, dtype=np.int64)
        np.cumsum(lens[rows], out=indptr[1:])
        return dataclasses.replace(
            self, user_ids=[self.user_ids[int(k)] for k in rows], user_index=self.user_index[rows].copy(),
            indptr=indptr, item=self.item[keep], event=self.event[keep], time=self.time[keep],
            info={**self.info, "filtered_from": int(self.item.size)},
        )  # fmt: skip


@dataclass
class SequenceSplit:
    """Split positions per row of :attr:`sequences`.

    Training input of row ``k``: ``seq[:train_end[k]]``. Validation: input
    ``seq[:valid_pos[k]]``, target ``seq[valid_pos[k]]`` (``valid_pos[k] = -1``: none). Test:
    input ``seq[:test_pos[k]]``, target ``seq[test_pos[k]]`` (``-1``: none). A held-out
    behaviour is never in its own input nor in the training input:
    ``train_end <= valid_pos < test_pos`` wherever they are present (checked on creation).
    """

    sequences: BehaviourSequences
    method: str  # "loo" | "time"
    train_end: np.ndarray  # int64 [N]
    valid_pos: np.ndarray  # int64 [N]
    test_pos: np.ndarray  # int64 [N]
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, lengths = len(self.sequences), self.sequences.lengths
        for arr_name in ("train_end", "valid_pos", "test_pos"):
            if getattr(self, arr_name).shape != (n,):
                raise ValueError(f"{arr_name} has shape {getattr(self, arr_name).shape}; the sequences have {n} rows")
        problems = {
            "train_end out of [0, length]": (self.train_end < 0) | (self.train_end > lengths),
            "valid_pos out of range": (self.valid_pos < -1) | (self.valid_pos >= lengths),
            "test_pos out of range": (self.test_pos < -1) | (self.test_pos >= lengths),
            "valid_pos < train_end": (self.valid_pos >= 0) & (self.valid_pos < self.train_end),
            "test_pos < train_end": (self.test_pos >= 0) & (self.test_pos < self.train_end),
            "test_pos <= valid_pos": (self.test_pos >= 0) & (self.valid_pos >= 0) & (self.test_pos <= self.valid_pos),
        }
        for what, bad in problems.items():
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise ValueError(f"{self.sequences.name}: {what} in row {k} (user {self.sequences.user_ids[k]}): "
                                 f"train_end {self.train_end[k]}, valid_pos {self.valid_pos[k]}, "
                                 f"test_pos {self.test_pos[k]}, length {lengths[k]}")  # fmt: skip

    def __repr__(self) -> str:
        return (f"SequenceSplit({self.method}: {len(self.sequences):,} rows, train {int(self.train_end.sum()):,} "
                f"behaviours, valid {int((self.valid_pos >= 0).sum()):,} targets, "
                f"test {int((self.test_pos >= 0).sum()):,} targets)")  # fmt: skip

    def held_out(self, part: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, ends, targets)`` of ``part`` (``"valid"`` or ``"test"``): the rows with a
        target, their input end positions (exclusive) and target tokens; int64 each.

        Raises:
            ValueError: ``part`` is neither ``valid`` nor ``test``.
        """
        if part not in ("valid", "test"):
            raise ValueError(f"part must be 'valid' or 'test', got {part!r}")
        pos = self.valid_pos if part == "valid" else self.test_pos
        rows = np.flatnonzero(pos >= 0).astype(np.int64)
        ends = pos[rows]
        return rows, ends, self.sequences.item[self.sequences.indptr[rows] + ends]


# ---------------------------------------------------------------------------- batches
def pad_batch(
    seqs: BehaviourSequences,
    rows: Sequence[int] | np.ndarray | Tensor,
    ends: Sequence[int] | np.ndarray | Tensor | None,
    max_len: int,
    *,
    left_pad: bool = True,
) -> dict[str, Tensor]:
    """The model input for ``rows``: each row's last ``max_len`` behaviours before ``ends[b]``.

    Args:
        rows: ``[B]`` row indices of ``seqs``.
        ends: ``[B]`` exclusive end positions within each row (``None``: the whole row);
            the behaviours ``seq[max(0, end - max_len):end]`` are kept.
        max_len: ``L``, the width of every output.
        left_pad: padding on the left (the most recent behaviour in the last column, as
            SASRec's input; Kang & McAuley 2018), else on the right.

    Returns:
        ``{"item", "event", <each of TIME_FIELDS>, "cat:<field>" for each categorical
        field: int64 [B, L] (0 = padding), "mask": bool [B, L] (True = real behaviour)}``.

    Raises:
        ValueError: ``max_len < 1``, ``rows`` and ``ends`` differ in length, or an end is
            outside ``[0, length of its row]``.
        IndexError: a row is out of range.
    """
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    idx = _as_int64(rows)
    n = len(seqs)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexError(f"{seqs.name}: rows must be in [0, {n}), got {idx.min()}..{idx.max()}")
    lengths = seqs.lengths[idx]
    end = lengths if ends is None else _as_int64(ends)
    if end.shape != idx.shape:
        raise ValueError(f"{idx.size} rows but {end.size} ends")
    bad = (end < 0) | (end > lengths)
    if bad.any():
        b = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{seqs.name}: end {end[b]} of batch entry {b} is outside row {idx[b]} "
                         f"(length {lengths[b]})")  # fmt: skip
    count = np.minimum(end, max_len)
    col = np.arange(max_len, dtype=np.int64)[None, :]
    if left_pad:
        pos = end[:, None] - max_len + col
        mask = col >= (max_len - count)[:, None]
    else:
        pos = (end - count)[:, None] + col
        mask = col < count[:, None]
    flat = np.where(mask, seqs.indptr[idx][:, None] + pos, 0)

    def gather(values: np.ndarray) -> Tensor:
        out = np.where(mask, values[flat], 0) if values.size else np.zeros(mask.shape, dtype=np.int64)
        return torch.from_numpy(np.ascontiguousarray(out, dtype=np.int64))

    item = gather(seqs.item)
    batch = {"item": item, "event": gather(seqs.event)}
    for f, codes in seqs.time_fields().items():
        batch[f] = gather(codes)
    for f, codes in seqs.item_cats.items():
        batch[f"cat:{f}"] = torch.from_numpy(codes)[item]  # padding token 0 has code 0
    batch["mask"] = torch.from_numpy(mask)
    return batch


def _as_int64(values: Any) -> np.ndarray:
    if isinstance(values, Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.int64).reshape(-1)


# ---------------------------------------------------------------------------- sources
def from_store(
    store: GraphStore | str | os.PathLike,
    *,
    version: int | None = None,
    target_types: Sequence[str] | None = None,
    event_types: Sequence[str] | None = None,
    window: tuple[Any, Any] | None = None,
    text_fields: Sequence[str] | None = None,
) -> BehaviourSequences:
    """Every user's behaviours in ``version`` of a graph store, oldest first.

    Events are ordered per user by timestamp, ties in the store's ingest order (the order
    of its day partitions and their rows), as RecBole's stable sort by timestamp. Tokens
    cover every id of the kept target types' id maps, type after type: token
    ``offset[type] + id + 1``. Users without a kept event are not rows.

    Side tables of the target types give:

    * ``item_cats``: every ``categorical`` column; the first value of a multi-valued text
      column (``genres``, ``categories``, ``tags``, ``|``-separated) as ``genre``,
      ``category``, ``tag``; the first set flag of a group of 0/1 numeric columns
      ``<prefix>_<value>`` (MovieLens's ``genre_action``, ...) as ``<prefix>``;
    * ``item_text``: the ``text_fields`` columns (default: those of
      :data:`DEFAULT_TEXT_FIELDS` that exist), then ``" | "`` and the token's categories
      (every flag / multi-valued value, then the categorical values), e.g.
      ``"Toy Story (1995) | animation, childrens, comedy"``; ``None`` without side tables.

    Args:
        store: a :class:`~graphrec.store.GraphStore` or its folder.
        version: store version (default: current).
        target_types / event_types: keep only these (default: all of the schema, in its order);
            event codes follow this order.
        window: ``(start, end)``, half-open; datetimes, dates, ISO strings or epoch seconds.
        text_fields: side-table columns rendered into ``item_text``.

    Raises:
        ValueError: an unknown target type, event type or text field.
        StoreNotFoundError: ``store`` is not a store folder.
    """
    st = store if isinstance(store, GraphStore) else GraphStore(store)
    manifest = st.manifest(version)
    version = manifest.version
    schema = st.schema(version)
    ttypes = list(schema.target_types if target_types is None else target_types)
    etypes = list(schema.event_types if event_types is None else event_types)
    for what, given, known in (("target type", ttypes, schema.target_types),
                               ("event type", etypes, schema.event_types)):  # fmt: skip
        unknown = [t for t in given if t not in known]
        if unknown or not given or len(set(given)) != len(given):
            raise ValueError(f"{st.root}: {what}s must be distinct names among {known}; got {given}")

    sizes = [manifest.id_maps[t].size if t in manifest.id_maps else 0 for t in ttypes]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    start, end = window if window is not None else (None, None)
    events = (
        st.events(version, start=start, end=end, columns=["timestamp", "user", "target_type", "target", "event_type"])
        .with_row_index("order")  # the store's ingest order, the tie-breaker of equal times
        .filter(pl.col("target_type").is_in(ttypes) & pl.col("event_type").is_in(etypes))
        .select(
            "user",
            "order",
            time=pl.col("timestamp").dt.epoch("s"),
            item=pl.col("target") + 1 + pl.col("target_type").replace_strict(ttypes, offsets[:-1].tolist(),
                                                                              return_dtype=pl.Int64),
            event=pl.col("event_type").replace_strict(etypes, list(range(1, len(etypes) + 1)), return_dtype=pl.Int64),
        )
        .sort(["user", "time", "order"])
        .collect()
    )
    user = events["user"].to_numpy().astype(np.int64)
    user_index, counts = np.unique(user, return_counts=True)
    indptr = np.zeros(user_index.size + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    user_map = st.id_map(USER, version)
    user_ids = (pl.DataFrame({"id": user_index}).join(user_map, on="id", how="left", maintain_order="left")
                ["external_id"].to_list())  # fmt: skip

    num_items = int(offsets[-1])
    item_type = np.zeros(num_items + 1, dtype=np.int64)
    item_index = np.full(num_items + 1, -1, dtype=np.int64)
    item_ids: list[Any] = []
    for j, t in enumerate(ttypes):
        lo, hi = int(offsets[j]) + 1, int(offsets[j + 1]) + 1
        item_type[lo:hi] = j
        item_index[lo:hi] = np.arange(sizes[j], dtype=np.int64)
        item_ids += st.id_map(t, version).sort("id")["external_id"].to_list() if sizes[j] else []
    item_cats, cat_vocab, item_text = _side_features(st, version, schema, ttypes, sizes, text_fields)

    info = {
        "source": "store",
        "store": {"root": str(st.root), "version": version},
        "window": [None if w is None else to_utc(w).isoformat() for w in window] if window else None,
        "timezone": schema.timezone,
    }
    return BehaviourSequences(
        name=schema.name if schema.name != LogSchema().name else st.root.name,
        user_ids=user_ids,
        user_index=user_index.astype(np.int64),
        indptr=indptr,
        item=events["item"].to_numpy().astype(np.int64),
        event=events["event"].to_numpy().astype(np.int64),
        time=events["time"].to_numpy().astype(np.int64),
        num_items=num_items,
        item_ids=item_ids,
        item_type=item_type,
        item_index=item_index,
        target_types=ttypes,
        event_types=etypes,
        item_cats=item_cats,
        cat_vocab=cat_vocab,
        item_text=item_text,
        info=info,
    )


def _flag_groups(table: pl.DataFrame, numeric: list[str]) -> dict[str, list[str]]:
    """Groups of at least two 0/1 numeric columns ``<prefix>_<value>``: ``{prefix: [column, ...]}``."""
    groups: dict[str, list[str]] = {}
    for c in numeric:
        prefix, _, rest = c.partition("_")
        if rest:
            groups.setdefault(prefix, []).append(c)
    out = {}
    for prefix, cols in groups.items():
        if len(cols) < 2:
            continue
        values = table.select(pl.col(cols).cast(pl.Float64)).to_numpy()
        values = values[~np.isnan(values)]
        if np.isin(values, (0.0, 1.0)).all():
            out[prefix] = cols
    return out


def _side_features(
    st: GraphStore,
    version: int,
    schema: LogSchema,
    ttypes: list[str],
    sizes: list[int],
    text_fields: Sequence[str] | None,
) -> tuple[dict[str, np.ndarray], dict[str, list[str]], list[str] | None]:
    """``(item_cats, cat_vocab, item_text)`` of the token space from the target types' side tables."""
    num_items = int(sum(sizes))
    values: dict[str, list[str | None]] = {}  # categorical field -> value per token (index t - 1)
    texts: list[str] | None = None
    known_text: set[str] = set()
    offset = 0
    for t, n in zip(ttypes, sizes, strict=True):
        spec = schema.attributes.get(t)
        table = st.attributes(t, version) if spec is not None else None
        if table is None or n == 0:
            offset += n
            continue
        full = pl.DataFrame({"id": np.arange(n, dtype=np.int64)}).join(table, on="id", how="left",
                                                                       maintain_order="left")  # fmt: skip
        kinds = spec.columns
        text_cols = [c for c, k in kinds.items() if k == "text"]
        known_text.update(text_cols)
        fields = [c for c in (text_fields if text_fields is not None else DEFAULT_TEXT_FIELDS) if c in text_cols]
        multi: list[list[str]] = [[] for _ in range(n)]  # every category of each token, for its text
        # a flag group and a multi-valued text column give "first value" fields
        for prefix, cols in _flag_groups(full, [c for c, k in kinds.items() if k == "numeric"]).items():
            names = [c[len(prefix) + 1 :] for c in cols]  # as the ad proxies' "genres" column spells them
            flags = full.select(pl.col(cols).cast(pl.Float64).fill_null(0.0).fill_nan(0.0)).to_numpy() > 0.5
            col = values.setdefault(prefix, [None] * num_items)
            for i in range(n):
                hit = [names[j] for j in np.flatnonzero(flags[i])]
                multi[i] += hit
                col[offset + i] = hit[0] if hit else None
        for c, single in MULTI_VALUED.items():
            if kinds.get(c) != "text":
                continue
            lists = full[c].fill_null("").str.split("|").to_list()
            own = kinds.get(single) == "categorical"  # a categorical column of that name wins
            col = values.setdefault(single, [None] * num_items)
            for i, vs in enumerate(lists):
                vs = [v.strip() for v in vs if v.strip()]
                multi[i] += vs
                if not own:
                    col[offset + i] = vs[0] if vs else None
        cats = [c for c, k in kinds.items() if k == "categorical"]
        for c in cats:
            col = values.setdefault(c, [None] * num_items)
            for i, v in enumerate(full[c].cast(pl.String).to_list()):
                col[offset + i] = v if v not in (None, "") else None
        if texts is None:
            texts = [""] * (num_items + 1)
        parts = [full[c].cast(pl.String).fill_null("").to_list() for c in fields]
        cat_values = [full[c].cast(pl.String).to_list() for c in cats]
        for i in range(n):
            head = " | ".join(p[i].strip() for p in parts if p[i].strip())
            tags = list(dict.fromkeys([*multi[i], *(cv[i] for cv in cat_values if cv[i])]))
            texts[offset + 1 + i] = " | ".join(s for s in (head, ", ".join(tags)) if s)
        offset += n
    if text_fields is not None:
        unknown = [c for c in text_fields if c not in known_text]
        if unknown:
            raise ValueError(f"{st.root}: text field(s) {unknown} are not text columns of the side tables of "
                             f"{ttypes}; text columns: {sorted(known_text)}")  # fmt: skip
    item_cats, cat_vocab = {}, {}
    for f, vals in values.items():
        vocab = sorted({v for v in vals if v is not None})
        if not vocab:
            continue
        code = {v: c for c, v in enumerate(vocab, start=1)}
        arr = np.zeros(num_items + 1, dtype=np.int64)
        arr[1:] = [code.get(v, 0) if v is not None else 0 for v in vals]
        item_cats[f], cat_vocab[f] = arr, vocab
    return item_cats, cat_vocab, texts


def from_s3rec(seqs: Any) -> BehaviourSequences:
    """:class:`BehaviourSequences` of S3-Rec sequences (:class:`graphrec.data.sequences.Sequences`).

    Tokens are the file's item ids (1..M, so token ``t`` has external id ``t``); every
    behaviour is a ``review`` with unknown time (0). There are no categories and no text.
    """
    m = int(seqs.num_items)
    return BehaviourSequences(
        name=seqs.name,
        user_ids=np.asarray(seqs.user_ids).tolist(),
        user_index=np.arange(len(seqs), dtype=np.int64),
        indptr=np.asarray(seqs.indptr, dtype=np.int64).copy(),
        item=np.asarray(seqs.items, dtype=np.int64).copy(),
        event=np.ones(seqs.items.size, dtype=np.int64),
        time=np.zeros(seqs.items.size, dtype=np.int64),
        num_items=m,
        item_ids=list(range(1, m + 1)),
        item_type=np.zeros(m + 1, dtype=np.int64),
        item_index=np.arange(-1, m, dtype=np.int64),
        target_types=["item"],
        event_types=[S3REC_EVENT],
        info={"source": "s3rec", "timezone": "UTC", **seqs.info},
    )


def load_behaviour_sequences(dataset: str | os.PathLike, *, target_types: Sequence[str] | None = None,
                             event_types: Sequence[str] | None = None,
                             window: tuple[Any, Any] | None = None) -> BehaviourSequences:  # fmt: skip
    """Behaviour sequences of a dataset; ``target_types``, ``event_types`` and ``window`` filter a store's events
    (:func:`from_store`; the S3-Rec files take none).

    ``beauty``, ``sports``, ``toys``, ``yelp``: the exact S3-Rec files (:func:`from_s3rec`);
    another recommendation or ad dataset of the catalog (``ml-100k``, ...): its graph store
    (:func:`graphrec.data.interactions.dataset_store`, :func:`from_store`); else a store folder.

    Raises:
        ValueError: ``dataset`` is neither a known dataset nor a store folder, or a catalog
            dataset without interactions (e.g. a node-classification one).
        DatasetNotAvailableError: a named dataset's files are missing and cannot be downloaded.
    """
    from graphrec.data.catalog import get_dataset, is_dataset
    from graphrec.data.interactions import dataset_store
    from graphrec.data.public import SEQUENCE_FILES
    from graphrec.data.sequences import load_sequences

    if isinstance(dataset, str) and is_dataset(dataset):
        name = get_dataset(dataset).name
        if name in SEQUENCE_FILES:
            if target_types or event_types or window:
                raise ValueError(f"{name} is an S3-Rec sequence file (item ids only): data.target_types, "
                                 "data.event_types and data.window apply to graph stores")  # fmt: skip
            out = from_s3rec(load_sequences(name))
        else:
            out = from_store(dataset_store(name), target_types=target_types, event_types=event_types, window=window)
        out.name = name
        out.info["dataset"] = name
        return out
    path = Path(dataset)
    if not GraphStore.exists(path):
        raise ValueError(f"{str(dataset)!r} is neither a known dataset (see `graphrec datasets`; sequence datasets: "
                         f"{', '.join(SEQUENCE_FILES)}) nor a graph store folder")  # fmt: skip
    out = from_store(path, target_types=target_types, event_types=event_types, window=window)
    out.info["dataset"] = str(path)
    return out
