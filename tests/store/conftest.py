"""Fixtures of the graph-store tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from graphrec.store import LogSchema


@pytest.fixture
def schema() -> LogSchema:
    return LogSchema(context={"device": "string"})


@pytest.fixture
def ml100k() -> Path:
    """The MovieLens-100k folder under ``$GRAPHREC_DATA``; skips when absent."""
    root = os.environ.get("GRAPHREC_DATA")
    path = Path(root) / "movielens" / "ml-100k" if root else None
    if path is None or not (path / "u.data").is_file():
        pytest.skip("MovieLens-100k not found: set GRAPHREC_DATA to the data root (with movielens/ml-100k)")
    return path
