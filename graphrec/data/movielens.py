"""MovieLens-100k (GroupLens): ratings as a polars event table, plus item and user attributes."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from graphrec.data.root import (
    NETWORK_ERRORS,
    cache_dir,
    data_root,
    download_and_unzip,
    missing_error,
)

ML100K_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
ML100K_FILES = ("u.data", "u.item", "u.user", "u.genre")
GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip


@dataclass
class MovieLens100k:
    events: pl.DataFrame  # user_id, item_id, rating, timestamp (UTC datetime)
    items: pl.DataFrame  # item_id, title, release_date, url, genres (list[str])
    users: pl.DataFrame  # user_id, age, gender, occupation, zip_code


def movielens_100k_dir(root=None):
    """Folder with the ml-100k files, downloading them when missing and the network allows."""
    root = root or data_root()
    folder = root / "movielens" / "ml-100k"
    missing = [folder / f for f in ML100K_FILES if not (folder / f).exists()]
    if not missing:
        return folder
    target = cache_dir() / "movielens"  # downloads land in the cache, never in the data root
    if (target / "ml-100k" / "u.data").exists():
        return target / "ml-100k"
    try:
        download_and_unzip(ML100K_URL, target)
    except NETWORK_ERRORS as exc:
        raise missing_error("MovieLens-100k", missing, ML100K_URL, str(exc)) from exc
    return target / "ml-100k"


def read_ml100k_ratings(path) -> pl.DataFrame:
    return pl.read_csv(
        path,
        separator="\t",
        has_header=False,
        new_columns=["user_id", "item_id", "rating", "timestamp"],
        schema_overrides={"user_id": pl.Int64, "item_id": pl.Int64, "rating": pl.Float32, "timestamp": pl.Int64},
    ).with_columns(pl.from_epoch("timestamp", time_unit="s").dt.replace_time_zone("UTC"))


def read_ml100k_items(path) -> pl.DataFrame:
    cols = ["item_id", "title", "release_date", "video_release_date", "url", *GENRES]
    raw = pl.read_csv(
        path, separator="|", has_header=False, new_columns=cols, encoding="latin-1",
        infer_schema=False, quote_char=None,
    )  # fmt: skip
    flags = pl.concat_list([pl.when(pl.col(g) == "1").then(pl.lit(g)) for g in GENRES]).list.drop_nulls()
    return raw.select(
        pl.col("item_id").cast(pl.Int64),
        "title",
        "release_date",
        "url",
        flags.alias("genres"),
    )


def read_ml100k_users(path) -> pl.DataFrame:
    return pl.read_csv(
        path, separator="|", has_header=False,
        new_columns=["user_id", "age", "gender", "occupation", "zip_code"],
        schema_overrides={"user_id": pl.Int64, "age": pl.Int64, "zip_code": pl.String},
    )  # fmt: skip


def load_movielens_100k(root=None) -> MovieLens100k:
    folder = movielens_100k_dir(root)
    return MovieLens100k(
        events=read_ml100k_ratings(folder / "u.data"),
        items=read_ml100k_items(folder / "u.item"),
        users=read_ml100k_users(folder / "u.user"),
    )
