"""Exact item sequences of the S3-Rec datasets (Beauty, Sports, Toys, Yelp), for sequential models.

>>> from graphrec.data.sequences import load_sequences
>>> seqs = load_sequences("beauty")            # doctest: +SKIP
>>> seqs[0], seqs.num_items                    # user 1's items, oldest first; ids 1..M  # doctest: +SKIP
>>> loo = seqs.leave_one_out()                 # ICLRec's protocol  # doctest: +SKIP
>>> loo.train(0), loo.valid_target[0], loo.test_target[0]  # doctest: +SKIP

:func:`load_sequences` returns every user's item list exactly as in the file: file order
(oldest first), repeats kept, user ids 1..N and item ids 1..M as in the file, so 0 is free
for padding. :meth:`Sequences.leave_one_out` is the protocol of ICLRec's
``src/datasets.py``: for a sequence ``seq``, training is ``seq[:-2]``, the validation target
``seq[-2]`` (input ``seq[:-2]``) and the test target ``seq[-1]`` (input ``seq[:-1]``).

The graph view of the same datasets (``load_dataset("yelp")``, through the store) is
implicit feedback: a (user, item) pair counts once, at its *first* occurrence, and its
``loo`` split holds out the last two *distinct* items by first occurrence. Where a user's
last items repeat earlier ones, that differs from the exact protocol. Beauty, Sports and
Toys have no repeats, so both views agree. Yelp has repeats (7,102 users). For 2,927 of its
30,431 users the graph view's validation or test item differs from ``seq[-2]`` / ``seq[-1]``:
the test item for 1,434 users, the validation item for 2,897. For 2,027 users, ``seq[-1]``
also occurs earlier in the user's own sequence. Because of the de-duplication, 29 users
have no test pair and 80 no validation pair in the graph view (measured on the published
files). Sequential models should use these sequences, not the graph view's split.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from graphrec.data.catalog import get_dataset
from graphrec.data.public import SEQUENCE_FILES, locate, verify


@dataclass
class Sequences:
    """Each user's items in file order: user ``k`` (0-based line) is ``user_ids[k]`` and its items
    are ``items[indptr[k]:indptr[k + 1]]`` (``seqs[k]``). Item ids run 1..``num_items``; 0 is padding."""

    name: str
    user_ids: np.ndarray  # int64 [N], the file's user ids (1..N in line order)
    indptr: np.ndarray  # int64 [N + 1]
    items: np.ndarray  # int64 [sum of lengths]
    num_items: int  # M: the largest item id
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.user_ids.size

    def __getitem__(self, k: int) -> np.ndarray:
        return self.items[self.indptr[k] : self.indptr[k + 1]]

    def __repr__(self) -> str:
        return f"Sequences({self.name}: {len(self):,} users, {self.num_items:,} items, {self.items.size:,} interactions)"

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def leave_one_out(self) -> LeaveOneOut:
        """ICLRec's leave-one-out targets (module docstring).

        Raises:
            ValueError: a user has fewer than 3 items (no training item would be left).
        """
        short = np.flatnonzero(self.lengths < 3)
        if short.size:
            k = int(short[0])
            raise ValueError(f"{self.name}: user {self.user_ids[k]} has {self.lengths[k]} item(s); leave-one-out "
                             f"needs at least 3 ({short.size} user(s) are shorter)")  # fmt: skip
        end = self.indptr[1:]
        return LeaveOneOut(self, self.items[end - 2], self.items[end - 1])


@dataclass
class LeaveOneOut:
    """Leave-one-out targets of :class:`Sequences`: per user (index k), ``valid_target[k] = seq[-2]``
    and ``test_target[k] = seq[-1]``; the inputs are :meth:`train` (``seq[:-2]``, also the
    validation input) and :meth:`test_input` (``seq[:-1]``)."""

    sequences: Sequences
    valid_target: np.ndarray  # int64 [N]
    test_target: np.ndarray  # int64 [N]

    def train(self, k: int) -> np.ndarray:
        return self.sequences[k][:-2]

    def test_input(self, k: int) -> np.ndarray:
        return self.sequences[k][:-1]


def read_sequences(path, name: str | None = None) -> Sequences:
    """:class:`Sequences` of an S3-Rec sequence file (``user item item ...`` per line).

    Raises:
        SourceError: the file is not in that format (users 1..N in line order, integer ids).
    """
    from pathlib import Path

    from graphrec.store.adapters import sequence_lines

    users, indptr, items = sequence_lines(path)
    if items.size and items.min() < 1:
        from graphrec.store.errors import SourceError

        raise SourceError(
            f"{path}: item id {items.min()} found; S3-Rec item ids start at 1 (0 is padding)"
        )
    return Sequences(
        name or Path(path).stem,
        users,
        indptr,
        items,
        int(items.max(initial=0)),
        {"path": str(path)},
    )


def load_sequences(name: str) -> Sequences:
    """The exact item sequences of a sequence dataset of the catalog: ``beauty``, ``sports``, ``toys``, ``yelp``.

    Files are found (or downloaded) and checked as for :func:`~graphrec.data.load_dataset`.

    Raises:
        ValueError: ``name`` is not a sequence dataset.
        DatasetNotAvailableError: the file is missing and cannot be downloaded, or differs
            from the published one.
    """
    info = get_dataset(name)
    if info.name not in SEQUENCE_FILES:
        raise ValueError(
            f"{info.name!r} is not a sequence dataset; sequence datasets: {', '.join(SEQUENCE_FILES)}"
        )
    folder = locate(info.name, info.remote)
    verify(info.name, folder, info.remote)
    seqs = read_sequences(folder / info.remote[0].path, info.name)
    seqs.info["dataset"] = info.name
    return seqs
