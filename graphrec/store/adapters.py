"""Adapters from public data sets to the log schema.

Public datasets enter the store through an adapter too, so the pipeline can replay them
like any log.

MovieLens-100k (GroupLens): ``u.data`` ratings become ``rating`` events on ``item``
targets with the rating as ``value``; ``u.item`` (Latin-1) gives item titles, release
dates, years and genre flags; ``u.user`` gives age, gender, occupation and zip code.

Four published train/test splits and four sequence files have no timestamps; their
adapters encode the published split or order as time instead (integer ids as in the
files, ``item`` targets, no ratings):

* train/test splits (Gowalla as LightGCN's ``checkin`` events, MovieLens-1M as RecZoo's
  ``rating`` events, Amazon-CD as HGCF's ``review`` events): every training pair at
  :data:`TRAIN_TIME` (2000-01-01T00:00:00Z), every test pair at :data:`TEST_TIME`, one day
  later. The two halves land in two day partitions, and a time cut at ``TEST_TIME``
  (``graphrec.data``'s ``published`` split) gives back the published split exactly.
* sequences (S3-Rec's Beauty, Sports, Toys, Yelp; ``review`` events): the k-th item of a
  user's line (k = 0, 1, ...) at ``SEQUENCE_TIME + k`` seconds. The times order each user's
  items; across users the common clock means nothing (every user starts at the same
  instant), so a global time cut of these stores is meaningless.

:data:`ADAPTERS` names each adapter as ``graphrec store ingest --source`` and the nightly
pipeline's ``source.kind`` do (the catalog's names, ``movielens-100k`` for MovieLens-100k).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from graphrec.store.errors import SourceError
from graphrec.store.schema import LogSchema, NodeAttributes
from graphrec.store.sources import read_text_table

MOVIELENS_GENRES = [
    "unknown", "action", "adventure", "animation", "childrens", "comedy", "crime", "documentary",
    "drama", "fantasy", "film_noir", "horror", "musical", "mystery", "romance", "sci_fi",
    "thriller", "war", "western",
]


def movielens_100k_schema() -> LogSchema:
    """The log schema of MovieLens-100k: integer ids, ``rating`` events on ``item``."""
    return LogSchema(
        name="movielens-100k",
        id_type="int",
        timestamp_unit="s",
        target_types=["item"],
        event_types=["rating"],
        attributes={
            "user": NodeAttributes(
                id_column="user_id",
                columns={"age": "numeric", "gender": "categorical", "occupation": "categorical", "zip_code": "text"},
            ),
            "item": NodeAttributes(
                id_column="item_id",
                columns={
                    "title": "text",
                    "release_date": "text",
                    "year": "numeric",
                    "imdb_url": "text",
                    **{f"genre_{g}": "numeric" for g in MOVIELENS_GENRES},
                },
            ),
        },
    )


def movielens_100k_sources(path: str | os.PathLike) -> tuple[list[Any], dict[str, list[Any]]]:
    """``(event sources, attribute sources)`` for an ``ml-100k`` folder, ready for ingest."""
    root = Path(path)
    files = {n: root / n for n in ("u.data", "u.item", "u.user")}
    missing = [n for n, p in files.items() if not p.is_file()]
    if missing:
        raise SourceError(f"{root} is not a MovieLens-100k folder: missing {', '.join(missing)}")
    ratings = read_text_table(
        files["u.data"], separator="\t", encoding="utf-8", names=["user_id", "target_id", "value", "timestamp"]
    ).with_columns(target_type=pl.lit("item"), event_type=pl.lit("rating"))
    items = read_text_table(
        files["u.item"], separator="|", encoding="latin-1",
        names=["item_id", "title", "release_date", "video_release_date", "imdb_url",
               *[f"genre_{g}" for g in MOVIELENS_GENRES]],
    ).drop("video_release_date").with_columns(year=pl.col("release_date").str.slice(-4))
    users = read_text_table(
        files["u.user"], separator="|", encoding="utf-8",
        names=["user_id", "age", "gender", "occupation", "zip_code"],
    )
    return (
        [(str(files["u.data"]), ratings)],
        {"user": [(str(files["u.user"]), users)], "item": [(str(files["u.item"]), items)]},
    )


def ingest_movielens_100k(store: Any, path: str | os.PathLike, **kwargs: Any):
    """Ingest an ``ml-100k`` folder into ``store`` (created with the MovieLens schema if new)."""
    return ADAPTERS["movielens-100k"].ingest(store, path, **kwargs)


# ---------------------------------------------------------------------------- published splits
#: Every training pair of a published train/test split: 2000-01-01T00:00:00Z (epoch seconds).
TRAIN_TIME = 946_684_800
#: Every test pair of a published split: one day after :data:`TRAIN_TIME`, in its own day partition.
TEST_TIME = TRAIN_TIME + 86_400
#: The first item of every sequence; the k-th item is ``k`` seconds later.
SEQUENCE_TIME = TRAIN_TIME

Pairs = tuple[np.ndarray, np.ndarray]  # (user, item), int64


def _schema(name: str, event: str) -> LogSchema:
    return LogSchema(
        name=name, id_type="int", timestamp_unit="s", target_types=["item"], event_types=[event]
    )


def gowalla_schema() -> LogSchema:
    """Gowalla (LightGCN split): integer ids (LightGCN's remap ids), ``checkin`` events on ``item``."""
    return _schema("gowalla-lightgcn", "checkin")


def ml_1m_schema() -> LogSchema:
    """MovieLens-1M (RecZoo split): integer ids (RecZoo's remapped ids), ``rating`` events on ``item``."""
    return _schema("ml-1m-reczoo", "rating")


def amazon_cd_schema() -> LogSchema:
    """Amazon-CD (HGCF split): integer ids (HGCF's), ``review`` events on ``item``."""
    return _schema("amazon-cd-hgcf", "review")


def sequence_schema(name: str) -> LogSchema:
    """An S3-Rec sequence file (``beauty``, ``sports``, ``toys``, ``yelp``): integer ids, ``review`` events."""
    return _schema(f"s3rec-{name.lower()}", "review")


def _files(folder: str | os.PathLike, names: tuple[str, ...], what: str) -> dict[str, Path]:
    root = Path(folder)
    if not root.exists():
        raise SourceError(f"{root} does not exist (expected the {what} folder with {', '.join(names)})")
    if not root.is_dir():
        raise SourceError(f"{root} is a file; expected the {what} folder with {', '.join(names)}")
    files = {n: root / n for n in names}
    missing = [n for n, p in files.items() if not p.is_file()]
    if missing:
        raise SourceError(f"{root} is not a {what} folder: missing {', '.join(missing)}")
    return files


def read_user_lines(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse a ``user item item ...`` file (one line per user, ids separated by blanks; LF or CRLF).

    Returns ``(users, indptr, items)``, all int64: ``users[k]`` is the id that starts the
    k-th non-blank line and ``items[indptr[k]:indptr[k + 1]]`` are the ids after it, in file
    order (repeats kept).

    Raises:
        SourceError: the file cannot be read, is not ASCII, or a field is not a
            non-negative integer (the message names the line).
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read {path}: {exc}") from exc
    lines = pl.DataFrame({"line": text.splitlines()}, schema={"line": pl.String}).with_row_index(
        "no", offset=1
    )
    lines = lines.with_columns(pl.col("line").str.strip_chars()).filter(
        pl.col("line").str.len_bytes() > 0
    )
    if lines.height == 0:
        return np.zeros(0, np.int64), np.zeros(1, np.int64), np.zeros(0, np.int64)
    tokens = lines.select("no", tok=pl.col("line").str.replace_all(r"\s+", " ").str.split(" "))
    flat = tokens.select("no", "tok").explode("tok")
    values = flat["tok"].str.to_integer(base=10, strict=False)
    bad = values.is_null() | (values < 0)
    if bad.any():
        k = int(bad.arg_max())
        raise SourceError(
            f"{path}, line {flat['no'][k]}: {flat['tok'][k]!r} is not a non-negative integer id"
        )
    lengths = tokens["tok"].list.len().to_numpy().astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    values = values.to_numpy().astype(np.int64, copy=False)
    first = np.zeros(values.size, dtype=bool)
    first[starts[:-1]] = True
    indptr = np.concatenate([[0], np.cumsum(lengths - 1)])
    return values[first], indptr, values[~first]


def _expand(users: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    return np.repeat(users, np.diff(indptr))


def _user_lines(
    path: Path, what: str, first_user: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`read_user_lines` plus the check that the users are ``first_user, first_user + 1, ...`` in line order."""
    users, indptr, items = read_user_lines(path)
    expected = np.arange(first_user, first_user + users.size)
    if not np.array_equal(users, expected):
        k = int(np.flatnonzero(users != expected)[0])
        raise SourceError(f"{path} is not a {what} file: line {k + 1} is user {users[k]}, expected {expected[k]} "
                          f"(one line per user, users {first_user}.. in line order)")  # fmt: skip
    return users, indptr, items


def _events(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray | int]], event: str
) -> pl.DataFrame:
    """Event rows of the log schema from ``(user, item, time)`` arrays (time: epoch seconds)."""
    user = np.concatenate([p[0] for p in parts]).astype(np.int64, copy=False)
    item = np.concatenate([p[1] for p in parts]).astype(np.int64, copy=False)
    time = np.concatenate([np.broadcast_to(np.asarray(p[2], np.int64), p[0].shape) for p in parts])
    return pl.DataFrame({"timestamp": time, "user_id": user, "target_type": "item", "target_id": item,
                         "event_type": event})  # fmt: skip


def _published(train: Pairs, test: Pairs, event: str) -> pl.DataFrame:
    """Training pairs at :data:`TRAIN_TIME`, then test pairs at :data:`TEST_TIME`."""
    return _events([(*train, TRAIN_TIME), (*test, TEST_TIME)], event)


# ---------------------------------------------------------------------------- Gowalla
GOWALLA_FILES = ("s_adj_mat.npz", "test.txt")


def gowalla_pairs(path: str | os.PathLike) -> tuple[Pairs, Pairs]:
    """``(train, test)`` (user, item) pairs of a LightGCN ``gowalla`` folder.

    Training pairs: the user x item block ``A[:U, U:]`` of ``s_adj_mat.npz`` (the
    unnormalised symmetric adjacency over U users then the items; read with
    ``scipy.sparse.load_npz``, which never unpickles), row by row with sorted items. Test
    pairs: ``test.txt``, one line per user (users 0..U-1 in line order), in file order.

    Raises:
        SourceError: a file is missing or not in this layout.
    """
    import scipy.sparse

    files = _files(path, GOWALLA_FILES, "LightGCN Gowalla")
    users, indptr, items = _user_lines(files["test.txt"], "LightGCN test.txt")
    n_users = users.size
    try:
        adj = scipy.sparse.load_npz(files["s_adj_mat.npz"]).tocsr()
    except (OSError, ValueError, KeyError) as exc:
        raise SourceError(
            f"cannot read {files['s_adj_mat.npz']} as a scipy sparse matrix: {exc}"
        ) from exc
    n = adj.shape[0]
    if adj.shape[1] != n or n <= n_users:
        raise SourceError(f"{files['s_adj_mat.npz']}: expected a square (users + items) adjacency with more than "
                          f"{n_users} rows (the users of test.txt), got shape {adj.shape}")  # fmt: skip
    ui = adj[:n_users, n_users:].tocoo()
    if (
        adj[:n_users, :n_users].nnz
        or adj[n_users:, n_users:].nnz
        or adj[n_users:, :n_users].nnz != ui.nnz
    ):
        raise SourceError(f"{files['s_adj_mat.npz']} is not a user-item adjacency over the {n_users} users of "
                          "test.txt (user-user or item-item entries, or not symmetric)")  # fmt: skip
    order = np.lexsort((ui.col, ui.row))  # CSR keeps this order; a COO file need not
    train = (ui.row[order].astype(np.int64), ui.col[order].astype(np.int64))
    n_items = n - n_users
    if items.size and items.max() >= n_items:
        raise SourceError(
            f"{files['test.txt']}: item {items.max()} is outside the adjacency's {n_items} items"
        )
    return train, (_expand(users, indptr), items)


def gowalla_sources(path: str | os.PathLike) -> list[Any]:
    """Event sources of a LightGCN ``gowalla`` folder: ``checkin`` events, training pairs at
    :data:`TRAIN_TIME`, test pairs at :data:`TEST_TIME` (module docstring)."""
    train, test = gowalla_pairs(path)
    return [(str(Path(path)), _published(train, test, "checkin"))]


# ---------------------------------------------------------------------------- MovieLens-1M
ML1M_FILES = ("train.txt", "test.txt")


def ml_1m_pairs(path: str | os.PathLike) -> tuple[Pairs, Pairs]:
    """``(train, test)`` pairs of a RecZoo ``ml-1m`` folder (``train.txt``, ``test.txt``: CRLF,
    one line per user, users 0.. in line order), in file order."""
    files = _files(path, ML1M_FILES, "RecZoo MovieLens-1M")
    out = []
    for name in ML1M_FILES:
        users, indptr, items = _user_lines(files[name], f"RecZoo {name}")
        out.append((_expand(users, indptr), items))
    return out[0], out[1]


def ml_1m_sources(path: str | os.PathLike) -> list[Any]:
    """Event sources of a RecZoo ``ml-1m`` folder: ``rating`` events (no rating values), training
    pairs at :data:`TRAIN_TIME`, test pairs at :data:`TEST_TIME`."""
    train, test = ml_1m_pairs(path)
    return [(str(Path(path)), _published(train, test, "rating"))]


# ---------------------------------------------------------------------------- Amazon-CD
AMAZON_CD_FILES = ("train.pkl", "test.pkl")
AMAZON_CD_ALL = "user_item_list.pkl"


def _int_lists(obj: Any, path: Path, container: type) -> list[tuple[int, list[int]]]:
    """``[(key, items)]`` of a ``dict`` of int -> list of int (or a ``list`` of lists of int).

    Raises:
        SourceError: ``obj`` is anything else (the message names ``path`` and what was found).
    """
    want = "a dict of int -> list of int" if container is dict else "a list of lists of int"
    if type(obj) is not container:
        raise SourceError(f"{path}: expected {want}, found a {type(obj).__name__}")
    pairs = list(obj.items()) if container is dict else list(enumerate(obj))
    for key, items in pairs:
        if type(key) is not int:
            raise SourceError(f"{path}: expected {want}, found a {type(key).__name__} key {key!r}")
        if type(items) is not list:
            raise SourceError(
                f"{path}: expected {want}, found a {type(items).__name__} for {key!r}"
            )
        for x in items:
            if type(x) is not int or x < 0:
                raise SourceError(f"{path}: expected {want}, found {x!r} in the items of {key!r}")
    return pairs


def _flatten(pairs: list[tuple[int, list[int]]]) -> Pairs:
    lengths = np.fromiter((len(v) for _, v in pairs), dtype=np.int64, count=len(pairs))
    users = np.repeat(np.fromiter((k for k, _ in pairs), dtype=np.int64, count=len(pairs)), lengths)
    items = np.fromiter((x for _, v in pairs for x in v), dtype=np.int64, count=int(lengths.sum()))
    return users, items


def amazon_cd_pairs(path: str | os.PathLike) -> tuple[Pairs, Pairs]:
    """``(train, test)`` pairs of an HGCF ``Amazon-CD`` folder, in the pickles' order.

    ``train.pkl`` and ``test.pkl`` (dict user -> list of items) are read with
    :func:`graphrec.utils.io.load_plain_pickle` (every global refused) and must hold exactly
    that structure; when ``user_item_list.pkl`` is there (list, element u = every item of
    user u), each user's train and test items must be disjoint and together equal it.

    Raises:
        SourceError: a file is missing, holds a global, or has another structure (the
            message names the file).
    """
    import pickle

    from graphrec.utils.io import load_plain_pickle

    root = Path(path)
    files = _files(root, AMAZON_CD_FILES, "HGCF Amazon-CD")

    def load(p: Path) -> Any:
        try:
            return load_plain_pickle(p)
        except (pickle.UnpicklingError, OSError) as exc:
            raise SourceError(str(exc) if str(p) in str(exc) else f"{p}: {exc}") from exc

    train = _flatten(_int_lists(load(files["train.pkl"]), files["train.pkl"], dict))
    test = _flatten(_int_lists(load(files["test.pkl"]), files["test.pkl"], dict))
    if (root / AMAZON_CD_ALL).is_file():
        full = _flatten(_int_lists(load(root / AMAZON_CD_ALL), root / AMAZON_CD_ALL, list))
        width = int(max(a.max(initial=0) for a in (train[1], test[1], full[1]))) + 1

        def keys(p: Pairs) -> np.ndarray:
            return np.sort(p[0] * width + p[1])

        both = np.concatenate([keys(train), keys(test)])
        if np.intersect1d(keys(train), keys(test)).size or not np.array_equal(
            np.sort(both), np.unique(keys(full))
        ):
            raise SourceError(f"{root}: train.pkl and test.pkl do not split {AMAZON_CD_ALL} (per user, disjoint "
                              "parts that together hold every item of the user)")  # fmt: skip
    return train, test


def amazon_cd_sources(path: str | os.PathLike) -> list[Any]:
    """Event sources of an HGCF ``Amazon-CD`` folder: ``review`` events, training pairs at
    :data:`TRAIN_TIME`, test pairs at :data:`TEST_TIME`."""
    train, test = amazon_cd_pairs(path)
    return [(str(Path(path)), _published(train, test, "review"))]


# ---------------------------------------------------------------------------- S3-Rec sequences
def sequence_lines(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(users, indptr, items)`` of an S3-Rec sequence file (users 1..N in line order, items
    oldest first, repeats kept; see :func:`read_user_lines`)."""
    return _user_lines(Path(path), "S3-Rec sequence", first_user=1)


def sequence_sources(path: str | os.PathLike) -> list[Any]:
    """Event sources of an S3-Rec sequence file: ``review`` events, the k-th item of a user's
    line (k = 0, 1, ...) at :data:`SEQUENCE_TIME` + k seconds. Repeated items stay separate
    events (their times differ)."""
    users, indptr, items = sequence_lines(path)
    pos = np.arange(items.size, dtype=np.int64) - np.repeat(indptr[:-1], np.diff(indptr))
    return [
        (str(Path(path)), _events([(_expand(users, indptr), items, SEQUENCE_TIME + pos)], "review"))
    ]


# ---------------------------------------------------------------------------- by name
Sources = tuple[list[Any], dict[str, list[Any]]]  # (event sources, attribute sources by node type)


@dataclass(frozen=True)
class Adapter:
    """How one named public dataset enters the store."""

    #: The log schema of a store it creates.
    schema: Callable[[], LogSchema]
    #: ``path -> (event sources, attribute sources)``, ready for :func:`graphrec.store.ingest`.
    sources: Callable[[str | os.PathLike], Sources]
    #: What ``path`` is, in words (help texts and errors).
    reads: str
    #: The dataset in the store's manifest: ``"<title> from <path>"`` is the default ingest message.
    title: str

    def ingest(self, store: Any, path: str | os.PathLike, **kwargs: Any):
        """Ingest ``path`` into ``store`` (created with :attr:`schema` if new); ``kwargs`` go to
        :func:`graphrec.store.ingest` (``message``, ``progress``, ``echo``...)."""
        from graphrec.store.ingest import ingest

        events, attributes = self.sources(path)
        kwargs.setdefault("message", f"{self.title} from {path}")
        return ingest(store, events, attributes=attributes or None, schema=self.schema(), **kwargs)


def _events_only(fn: Callable[[str | os.PathLike], list[Any]]) -> Callable[[str | os.PathLike], Sources]:
    def sources(path: str | os.PathLike) -> Sources:
        return fn(path), {}

    return sources


#: ``--source`` / ``source.kind`` name -> adapter. The names are the catalog's (``graphrec
#: datasets``), MovieLens-100k's being ``movielens-100k`` (an alias of the catalog's ``ml-100k``).
#: The events' times: MovieLens's own; published splits, train at :data:`TRAIN_TIME` and test
#: at :data:`TEST_TIME`; sequences, :data:`SEQUENCE_TIME` + k seconds (module docstring).
ADAPTERS: dict[str, Adapter] = {
    "movielens-100k": Adapter(movielens_100k_schema, movielens_100k_sources,
                              "the ml-100k folder (u.data, u.item, u.user)", "MovieLens-100k"),
    "gowalla": Adapter(gowalla_schema, _events_only(gowalla_sources),
                       "LightGCN's gowalla folder (s_adj_mat.npz, test.txt)", "Gowalla (LightGCN split)"),
    "ml-1m": Adapter(ml_1m_schema, _events_only(ml_1m_sources),
                     "RecZoo's ml-1m folder (train.txt, test.txt)", "MovieLens-1M (RecZoo split)"),
    "amazon-cd": Adapter(amazon_cd_schema, _events_only(amazon_cd_sources),
                         "HGCF's Amazon-CD folder (train.pkl, test.pkl)", "Amazon-CD (HGCF split)"),
    **{name: Adapter(partial(sequence_schema, name), _events_only(sequence_sources),
                     f"the S3-Rec sequence file ({stem}.txt)", f"{name} (S3-Rec sequences)")
       for name, stem in (("beauty", "Beauty"), ("sports", "Sports_and_Outdoors"), ("toys", "Toys_and_Games"),
                          ("yelp", "Yelp"))},
}  # fmt: skip
