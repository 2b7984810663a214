"""Adapters from public data sets to the log schema.

MovieLens-100k (GroupLens): ``u.data`` ratings become ``rating`` events on ``item``
targets with the rating as ``value``; ``u.item`` (Latin-1) gives item titles, release
dates, years and genre flags; ``u.user`` gives age, gender, occupation and zip code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

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
    from graphrec.store.ingest import ingest

    events, attributes = movielens_100k_sources(path)
    kwargs.setdefault("message", f"MovieLens-100k from {path}")
    return ingest(store, events, attributes=attributes, schema=movielens_100k_schema(), **kwargs)
