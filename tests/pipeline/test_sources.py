"""``source.kind``: a catalog dataset replayed day by day from its adapter's timestamps."""

import datetime as dt
import os
import typing
from pathlib import Path

import polars as pl
import pytest

from graphrec.config import ConfigError
from graphrec.pipeline import load_pipeline_config
from graphrec.pipeline.config import SourceConfig
from graphrec.pipeline.sources import REPLAYED, history_sources, night_sources, store_schema
from graphrec.store import adapters as A

from fixtures import PUBLIC_PATHS, SEQUENCE_KINDS, slice_gowalla, slice_sequences, write_public

TRAIN_DAY, TEST_DAY = dt.date(2000, 1, 1), dt.date(2000, 1, 2)


def data_root(*need: str) -> Path:
    root = os.environ.get("GRAPHREC_DATA")
    if not root or not all((Path(root) / p).exists() for p in need):
        pytest.skip(f"GRAPHREC_DATA with {', '.join(need)} is not available")
    return Path(root)


def pairs(sources) -> list[tuple[int, int]]:
    """The (user, item) pairs of adapter sources, sorted (repeats kept)."""
    frames = [f for _, f in sources]
    if not frames:
        return []
    ev = pl.concat(frames)
    return sorted(zip(ev["user_id"].to_list(), ev["target_id"].to_list(), strict=True))


def expand(lists: dict[int, list[int]]) -> list[tuple[int, int]]:
    return sorted((u, i) for u, items in lists.items() for i in items)


def test_every_kind_but_events_is_replayed():
    kinds = typing.get_args(SourceConfig.model_fields["kind"].annotation)
    assert set(kinds) == {"events", *REPLAYED} and set(REPLAYED) == set(A.ADAPTERS)


def test_gowalla_slice_nights_are_the_published_split(tmp_path):
    train, test = slice_gowalla(data_root(PUBLIC_PATHS["gowalla"]), tmp_path / "gowalla")
    src = SourceConfig(kind="gowalla", path=str(tmp_path / "gowalla"))
    assert store_schema(src) == A.gowalla_schema()
    history, attributes = history_sources(src, TEST_DAY)
    assert attributes == {} and pairs(history) == expand(train)
    assert [name for name, _ in history] == [f"{tmp_path / 'gowalla'} (before 2000-01-02)"]
    night, attributes = night_sources(src, TEST_DAY)
    assert attributes == {} and pairs(night) == expand(test)
    assert [name for name, _ in night] == [f"{tmp_path / 'gowalla'} (2000-01-02)"]
    assert pairs(night_sources(src, TRAIN_DAY)[0]) == expand(train)
    assert night_sources(src, dt.date(2000, 1, 3)) == ([], {})
    assert pairs(history_sources(src, TRAIN_DAY)[0]) == []


@pytest.mark.parametrize("kind", ["gowalla", "ml-1m", "amazon-cd"])
def test_handwritten_published_splits(tmp_path, kind):
    train = {0: [0, 1, 2], 1: [2, 3], 2: [4]}
    test = {0: [3], 1: [0, 4], 2: [1]}
    src = SourceConfig(kind=kind, path=str(write_public(tmp_path / kind, kind, train, test)))
    assert store_schema(src) == A.ADAPTERS[kind].schema()
    assert pairs(history_sources(src, TEST_DAY)[0]) == expand(train)
    assert pairs(night_sources(src, TEST_DAY)[0]) == expand(test)


def test_a_sequence_is_one_night(tmp_path):
    path, lines = slice_sequences(data_root(PUBLIC_PATHS["beauty"]), "beauty", tmp_path)
    src = SourceConfig(kind="beauty", path=str(path))
    assert store_schema(src).name == "s3rec-beauty"
    assert pairs(history_sources(src, TRAIN_DAY)[0]) == []
    [(_, night)] = night_sources(src, TRAIN_DAY)[0]
    assert pairs([("", night)]) == expand(lines)
    first = night.filter(pl.col("user_id") == 1)["timestamp"] - A.SEQUENCE_TIME
    assert first.to_list() == list(range(len(lines[1])))  # the k-th item k seconds in
    assert night_sources(src, TEST_DAY) == ([], {})


@pytest.mark.parametrize("kind", SEQUENCE_KINDS)
def test_handwritten_sequences(tmp_path, kind):
    lines = {1: [5, 6, 5], 2: [7]}
    src = SourceConfig(kind=kind, path=str(write_public(tmp_path, kind, lines)))
    assert store_schema(src) == A.sequence_schema(kind)
    assert pairs(night_sources(src, TRAIN_DAY)[0]) == expand(lines)


def test_default_path_is_the_data_roots_copy():
    data_root(PUBLIC_PATHS["toys"])
    [(name, night)] = night_sources(SourceConfig(kind="toys"), TRAIN_DAY)[0]
    assert name.endswith("Toys_and_Games.txt (2000-01-01)") and night.height == 167_597  # shared/data/README.md


def test_movielens_100k_replays_as_before():
    """The generalised path gives MovieLens-100k's nights exactly as the former special case did."""
    root = data_root("movielens/ml-100k/u.data")
    src = SourceConfig(kind="movielens-100k")
    events, attributes = A.movielens_100k_sources(root / "movielens" / "ml-100k")
    [(name, ratings)] = events
    date = dt.date(1998, 3, 25)
    start = int(dt.datetime(1998, 3, 25, tzinfo=dt.UTC).timestamp())
    history, attrs = history_sources(src, date)
    assert [n for n, _ in history] == [f"{name} (before 1998-03-25)"]
    ts = pl.col("timestamp").cast(pl.Int64)  # u.data is read as text
    assert history[0][1].equals(ratings.filter(ts < start))
    assert {k: [(n, f.height) for n, f in v] for k, v in attrs.items()} == {
        k: [(n, f.height) for n, f in v] for k, v in attributes.items()
    }
    [(night_name, night)] = night_sources(src, date)[0]
    assert night_name == f"{name} (1998-03-25)" and night.height > 0
    assert night.equals(ratings.filter(ts.is_between(start, start + 86_399)))
    assert night_sources(src, dt.date(1990, 1, 1)) == ([], {})
    assert store_schema(src) == A.movielens_100k_schema()


def test_an_unknown_kind_lists_the_valid_ones():
    with pytest.raises(ConfigError) as exc:
        load_pipeline_config(None, ["source.kind=gowala"])
    msg = str(exc.value)
    assert "source.kind" in msg and "(from --set source.kind=gowala)" in msg
    for kind in ("events", *REPLAYED):
        assert f"'{kind}'" in msg


def test_a_dataset_kind_needs_no_path():
    cfg = load_pipeline_config(None, ["source.kind=gowalla"])
    assert cfg.source.kind == "gowalla" and cfg.source.path is None
