from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True, scope="session")
def _session_cache(tmp_path_factory):
    """One writable cache for the test session, so nothing is written into ~/.cache."""
    old = os.environ.get("GRAPHREC_CACHE")
    os.environ["GRAPHREC_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("GRAPHREC_CACHE", None)
    else:
        os.environ["GRAPHREC_CACHE"] = old


@pytest.fixture
def shared_data() -> Path:
    """The offline data folder (``$GRAPHREC_DATA``); tests that need it skip without it."""
    root = os.environ.get("GRAPHREC_DATA")
    if not root or not (Path(root) / "planetoid" / "Cora" / "raw").exists():
        pytest.skip("GRAPHREC_DATA with Cora is not available")
    return Path(root)


@pytest.fixture
def cora(shared_data):
    from graphrec.data import load_planetoid

    return load_planetoid("Cora")


@pytest.fixture
def inter():
    """A small planted-preference interaction log (:func:`fixtures.planted`)."""
    from fixtures import planted

    return planted()


@pytest.fixture
def one_thread():
    """Tiny graphs: one torch thread is faster than several (and the CI box is shared)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
