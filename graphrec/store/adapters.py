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

Ad logs (``impression`` and ``click`` events on ``ad`` targets):

* ``ml-100k-ads``, a proxy: MovieLens-100k's movies stand in for ads, every rating is an
  impression and a rating of 4 or 5 also a click; the first genre is the top level of the ad
  hierarchy (:func:`ml_100k_ads_sources`).
* ``criteo`` and ``avazu``: the Criteo and Avazu Kaggle CTR formats (:func:`criteo_sources`,
  :func:`avazu_sources`). The local copies are samples of 100-1,000 rows: a format test, too
  small to benchmark anything.

:data:`ADAPTERS` names each adapter as ``graphrec store ingest --source`` and the nightly
pipeline's ``source.kind`` do (the catalog's names, ``movielens-100k`` for MovieLens-100k).
"""

from __future__ import annotations

import io
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


# ---------------------------------------------------------------------------- ad proxies and CTR samples
#: MovieLens-100k as ads: a rating at least this high is also a click.
CLICK_RATING = 4
#: The k-th record of a CTR file without times (Criteo) is at ``CTR_TIME + k`` seconds (k = 0, 1, ...).
CTR_TIME = TRAIN_TIME
CRITEO_NUMERIC = tuple(f"i{k}" for k in range(1, 14))
CRITEO_CATEGORICAL = tuple(f"c{k}" for k in range(1, 27))
CRITEO_COLUMNS = ("label", *CRITEO_NUMERIC, *CRITEO_CATEGORICAL)
#: Avazu's device id of devices without one; such a device's user is ``device_ip-device_model``.
AVAZU_NO_DEVICE = "a99f214a"
AVAZU_CONTEXT = (
    "impression_id", "c1", "banner_pos", "site_id", "site_domain", "site_category", "app_id", "app_domain",
    "app_category", "device_id", "device_ip", "device_model", "device_type", "device_conn_type",
    *(f"c{k}" for k in range(15, 22)),
)  # fmt: skip
_AVAZU_HEADER = ("id", "click", "hour", "c1", "banner_pos", "site_id", "site_domain", "site_category", "app_id",
                 "app_domain", "app_category", "device_id", "device_ip", "device_model", "device_type",
                 "device_conn_type", *(f"c{k}" for k in range(14, 22)))  # fmt: skip
_ML_USER = NodeAttributes(
    id_column="user_id",
    columns={"age": "numeric", "gender": "categorical", "occupation": "categorical", "zip_code": "text"},
)


def ml_100k_ads_schema() -> LogSchema:
    """MovieLens-100k as a user-ad proxy: integer ids, ``impression`` and ``click`` events on ``ad``.

    Ad side table: ``genre`` (the first genre, in ``u.genre`` order: the top level of the
    hierarchy), ``genres`` (every genre, ``|``-separated), the genre flags ``genre_<name>``,
    ``title`` and ``year``. User side table: as MovieLens-100k's.
    """
    return LogSchema(
        name="ml-100k-ads",
        id_type="int",
        timestamp_unit="s",
        target_types=["ad"],
        event_types=["impression", "click"],
        attributes={
            "user": _ML_USER,
            "ad": NodeAttributes(
                id_column="ad_id",
                columns={"genre": "categorical", "genres": "text", "title": "text", "year": "numeric",
                         **{f"genre_{g}": "numeric" for g in MOVIELENS_GENRES}},
            ),
        },
    )  # fmt: skip


def ml_100k_ads_sources(path: str | os.PathLike) -> Sources:
    """MovieLens-100k read as ads, a proxy for an ad log (the movies stand in for ads).

    Every rating of ``u.data`` is an ``impression`` of the movie (as an ``ad``, same id) at the
    rating's time; a rating of :data:`CLICK_RATING` or more is also a ``click`` at the same
    time. The rating itself is not kept (no ``value``): it would give the label away. The ad
    side table comes from ``u.item`` (:func:`ml_100k_ads_schema`), the user side table from ``u.user``.

    Raises:
        SourceError: a file is missing.
    """
    events, attributes = movielens_100k_sources(path)
    name, ratings = events[0]
    base = ratings.select("timestamp", "user_id", target_type=pl.lit("ad"), target_id="target_id")
    click = pl.col("value").cast(pl.Int64, strict=False) >= CLICK_RATING
    impressions = base.with_columns(event_type=pl.lit("impression"))
    clicks = base.filter(ratings.select(click).to_series()).with_columns(event_type=pl.lit("click"))
    flags = [f"genre_{g}" for g in MOVIELENS_GENRES]
    named = [pl.when(pl.col(f"genre_{g}") == "1").then(pl.lit(g)) for g in MOVIELENS_GENRES]  # the genre or null
    source, items = attributes["item"][0]
    ads = items.select(ad_id="item_id", genre=pl.coalesce(named),
                       genres=pl.concat_list(named).list.drop_nulls().list.join("|"),
                       title="title", year="year", **{f: f for f in flags})  # fmt: skip
    return (
        [(f"{name} (impressions)", impressions), (f"{name} (clicks: rating >= {CLICK_RATING})", clicks)],
        {"user": attributes["user"], "ad": [(source, ads)]},
    )


def _ctr_file(path: str | os.PathLike, what: str, default: str) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / default
    if not p.is_file():
        raise SourceError(f"{p} does not exist (expected {what})")
    return p


def _label_check(frame: pl.DataFrame, column: str, path: Path, first_line: int) -> None:
    bad = ~frame[column].is_in(["0", "1"]) | frame[column].is_null()
    if bad.any():
        k = int(bad.arg_max())
        raise SourceError(f"{path}, line {k + first_line}: {column} is {frame[column][k]!r}, expected 0 or 1")


def criteo_schema() -> LogSchema:
    """Criteo display ads: integer ids (the record number), ``impression`` and ``click`` on ``ad``;
    the record's 13 counts (``i1`` .. ``i13``, numeric) and 26 hashed categories (``c1`` .. ``c26``,
    categorical) in the user side table."""
    return LogSchema(
        name="criteo",
        id_type="int",
        timestamp_unit="s",
        target_types=["ad"],
        event_types=["impression", "click"],
        attributes={"user": NodeAttributes(id_column="user_id", columns={
            **dict.fromkeys(CRITEO_NUMERIC, "numeric"), **dict.fromkeys(CRITEO_CATEGORICAL, "categorical")})},
    )  # fmt: skip


def criteo_frame(path: str | os.PathLike) -> pl.DataFrame:
    """The records of a Criteo file as strings (columns :data:`CRITEO_COLUMNS`, empty fields null).

    Reads Kaggle's ``train.txt`` layout (tab-separated, no header, 40 fields; lines whose
    trailing empty fields were stripped are padded) or DeepCTR's ``criteo_sample.txt`` (CSV
    with the header ``label,I1..I13,C1..C26``); ``path`` may be the folder of a ``train.txt``.

    Raises:
        SourceError: the file is missing or unreadable, a line has more than 40 fields, the
            header is not Criteo's, or a label is not 0 or 1 (the message names the line).
    """
    p = _ctr_file(path, "a Criteo file (train.txt or criteo_sample.txt)", "train.txt")
    try:
        text = p.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read {p}: {exc}") from exc
    lines = text.splitlines()
    header = lines[0].strip().lower().split(",") if lines else []
    if header and header[0] == "label":
        if tuple(h.strip() for h in header) != CRITEO_COLUMNS:
            raise SourceError(f"{p}: the header is not Criteo's label,I1..I13,C1..C26: {lines[0][:200]!r}")
        frame = pl.read_csv(io.StringIO(text), infer_schema=False, quote_char=None, new_columns=list(CRITEO_COLUMNS))
        first = 2
    else:
        fields = pl.DataFrame({"f": lines}, schema={"f": pl.String}).select(pl.col("f").str.split("\t"))["f"]
        long = fields.list.len() > len(CRITEO_COLUMNS)
        if long.any():
            k = int(long.arg_max())
            raise SourceError(f"{p}, line {k + 1}: {fields[k].len()} tab-separated fields, Criteo has {len(CRITEO_COLUMNS)}")
        frame = pl.DataFrame([fields.list.get(i, null_on_oob=True).alias(c) for i, c in enumerate(CRITEO_COLUMNS)])
        first = 1
    frame = frame.with_columns(pl.when(pl.col(c).str.len_bytes() > 0).then(pl.col(c)).alias(c) for c in CRITEO_COLUMNS)
    _label_check(frame, "label", p, first)
    return frame


def criteo_sources(path: str | os.PathLike) -> Sources:
    """Event and side-table sources of a Criteo file (:func:`criteo_frame`).

    The files carry no user, ad or time: record k (k = 1, 2, ...) is user k seeing ad k at
    :data:`CTR_TIME` + k - 1 seconds (file order kept, clock meaningless); every record is an
    ``impression``, a record labelled 1 also a ``click`` at the same time. Its fields go to the
    user side table (:func:`criteo_schema`).
    """
    p = _ctr_file(path, "a Criteo file (train.txt or criteo_sample.txt)", "train.txt")
    frame = criteo_frame(p).with_row_index("record", offset=1).with_columns(pl.col("record").cast(pl.Int64))
    base = frame.select(timestamp=CTR_TIME + pl.col("record") - 1, user_id="record", target_type=pl.lit("ad"),
                        target_id="record")  # fmt: skip
    clicks = base.filter(frame["label"] == "1")
    users = frame.select(pl.col("record").alias("user_id"), *CRITEO_NUMERIC, *CRITEO_CATEGORICAL)
    return (
        [(f"{p} (impressions)", base.with_columns(event_type=pl.lit("impression"))),
         (f"{p} (clicks)", clicks.with_columns(event_type=pl.lit("click")))],
        {"user": [(str(p), users)]},
    )  # fmt: skip


def avazu_schema() -> LogSchema:
    """Avazu mobile ads: string ids, ``impression`` and ``click`` on ``ad``, the record's fields as
    string context columns (:data:`AVAZU_CONTEXT`)."""
    return LogSchema(
        name="avazu",
        id_type="string",
        timestamp_unit="s",
        target_types=["ad"],
        event_types=["impression", "click"],
        context=dict.fromkeys(AVAZU_CONTEXT, "string"),
    )


def avazu_sources(path: str | os.PathLike) -> list[Any]:
    """Event sources of an Avazu CTR file (CSV with Kaggle's header ``id,click,hour,C1,...,C21``).

    Avazu names neither users nor ads. The user is the ``device_id``, or ``device_ip-device_model``
    for devices without one (:data:`AVAZU_NO_DEVICE`), the usual proxy; the ad is ``C14``, an
    anonymised ad-side field used as an ad proxy. ``hour`` (YYMMDDHH, UTC) is the time. Every
    record is an ``impression``, a record with ``click`` 1 also a ``click`` at the same time; the
    other fields (``id`` as ``impression_id``) are context columns, so no two records coincide.

    Raises:
        SourceError: the file is missing, its header is not Avazu's, or a click or hour is malformed.
    """
    p = _ctr_file(path, "an Avazu CSV file (avazu_sample.txt or Kaggle's train)", "avazu_sample.txt")
    try:
        frame = pl.read_csv(p, infer_schema=False, quote_char=None)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise SourceError(f"cannot read {p}: {exc}") from exc
    frame = frame.rename({c: c.strip().lower() for c in frame.columns})
    if tuple(frame.columns) != _AVAZU_HEADER:
        raise SourceError(f"{p}: the header is not Avazu's id,click,hour,C1,...,C21: {','.join(frame.columns)[:200]}")
    _label_check(frame, "click", p, 2)
    time = (pl.col("hour") + "00").str.to_datetime("%y%m%d%H%M", time_zone="UTC", strict=False)
    bad = frame.select(time.is_null()).to_series()
    if bad.any():
        k = int(bad.arg_max())
        raise SourceError(f"{p}, line {k + 2}: hour {frame['hour'][k]!r} is not YYMMDDHH")
    user = pl.when(pl.col("device_id") == AVAZU_NO_DEVICE).then(
        pl.concat_str("device_ip", pl.lit("-"), "device_model")).otherwise("device_id")  # fmt: skip
    base = frame.select(time.alias("timestamp"), user.alias("user_id"), pl.lit("ad").alias("target_type"),
                        pl.col("c14").alias("target_id"), pl.col("id").alias("impression_id"), *AVAZU_CONTEXT[1:])  # fmt: skip
    clicks = base.filter(frame["click"] == "1")
    return [(f"{p} (impressions)", base.with_columns(event_type=pl.lit("impression"))),
            (f"{p} (clicks)", clicks.with_columns(event_type=pl.lit("click")))]  # fmt: skip


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
    "ml-100k-ads": Adapter(ml_100k_ads_schema, ml_100k_ads_sources, "the ml-100k folder (u.data, u.item, u.user)",
                           "MovieLens-100k as a user-ad proxy (impressions; rating >= 4 clicks)"),
    "criteo": Adapter(criteo_schema, criteo_sources, "a Criteo file: Kaggle's train.txt (tab-separated) or its "
                      "folder, or DeepCTR's criteo_sample.txt (CSV)", "Criteo display ads (CTR sample)"),
    "avazu": Adapter(avazu_schema, _events_only(avazu_sources), "an Avazu CSV file (id,click,hour,C1,...,C21)",
                     "Avazu mobile ads (CTR sample)"),
}  # fmt: skip
