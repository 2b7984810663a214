"""``graphrec store ingest --source NAME [PATH]``: the catalog datasets through their adapters.

Slices of the real files (``$GRAPHREC_DATA``, skipped when absent; written to tmp_path as in
tests/data/test_public.py) and handwritten folders in the same layouts.
"""

import json
import os
import re
import urllib.error
from pathlib import Path

import pytest
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.store import GraphStore
from graphrec.store.adapters import ADAPTERS
from graphrec.store.cli import SourceKind, store_app

from fixtures import PUBLIC_PATHS, slice_gowalla, slice_sequences, write_public

runner = CliRunner()


def invoke(*args, obj=None):
    return runner.invoke(store_app, [str(a) for a in args], obj=obj)


def flat(text: str) -> str:
    """The output without rich's box and line breaks (an error message wraps inside a box)."""
    return re.sub(r"[\s│╭╮╰╯─]+", " ", text)


def data_root(*kinds: str) -> Path:
    root = os.environ.get("GRAPHREC_DATA")
    if not root or not all((Path(root) / PUBLIC_PATHS[k]).exists() for k in kinds):
        pytest.skip(f"GRAPHREC_DATA with {', '.join(kinds)} is not available")
    return Path(root)


def info(store: Path) -> dict:
    r = invoke("info", "--store", store, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_every_source_has_an_adapter():
    assert {s.value for s in SourceKind} == {"events", *ADAPTERS}


def test_gowalla_slice(tmp_path):
    train, test = slice_gowalla(data_root("gowalla"), tmp_path / "gowalla")
    pairs = sum(map(len, train.values())) + sum(map(len, test.values()))
    r = invoke("ingest", "--store", tmp_path / "st", "--source", "gowalla", tmp_path / "gowalla", "--no-progress")
    assert r.exit_code == 0, r.output
    assert f"read {pairs:,} = accepted {pairs:,} + quarantined 0 + duplicates 0" in flat(r.output)
    data = info(tmp_path / "st")
    c = data["counts"]
    assert c["events"] == pairs and c["by_event"] == {"item/checkin": pairs}
    assert (c["days"], c["first_day"], c["last_day"], data["partitions"]) == (2, "2000-01-01", "2000-01-02", 2)
    st = GraphStore(tmp_path / "st")
    assert st.schema().name == "gowalla-lightgcn"
    assert st.manifest().ingest.message == f"Gowalla (LightGCN split) from {tmp_path / 'gowalla'}"


def test_beauty_slice(tmp_path):
    path, lines = slice_sequences(data_root("beauty"), "beauty", tmp_path / "s3rec")
    items = sum(map(len, lines.values()))
    r = invoke("ingest", "--store", tmp_path / "st", "--source", "beauty", path, "--json", "-m", "five users")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["accepted"] == rep["read"] == items and rep["duplicates"] == 0
    data = info(tmp_path / "st")
    c = data["counts"]
    # a sequence's k-th item is at 2000-01-01 + k seconds: every event in one day partition
    assert c["events"] == items and (c["days"], c["first_day"], data["partitions"]) == (1, "2000-01-01", 1)
    st = GraphStore(tmp_path / "st")
    assert st.schema().name == "s3rec-beauty" and st.manifest().ingest.message == "five users"


@pytest.mark.parametrize("kind", ["gowalla", "ml-1m", "amazon-cd"])
def test_handwritten_published_splits_are_two_days(tmp_path, kind):
    train = {0: [0, 1, 2], 1: [2, 3], 2: [4]}
    test = {0: [3], 1: [0, 4], 2: [1]}
    folder = write_public(tmp_path / kind, kind, train, test)
    r = invoke("ingest", "--store", tmp_path / "st", "--source", kind, folder, "--json")
    assert r.exit_code == 0, r.output
    c = info(tmp_path / "st")["counts"]
    assert c["events"] == 10 and (c["days"], c["first_day"], c["last_day"]) == (2, "2000-01-01", "2000-01-02")


def test_more_than_one_path_is_refused(tmp_path):
    r = invoke("ingest", "--store", tmp_path / "st", "--source", "beauty", tmp_path / "a.txt", tmp_path / "b.txt")
    assert r.exit_code == 2
    assert "--source beauty takes at most one path, the S3-Rec sequence file (Beauty.txt); got 2" in flat(r.output)
    assert not (tmp_path / "st").exists()
    r = invoke("ingest", "--store", tmp_path / "st", "--source", "gowala", tmp_path / "a", tmp_path / "b")
    assert r.exit_code == 2 and "'gowala' is not one of" in flat(r.output) and "'gowalla'" in flat(r.output)


def test_a_dataset_brings_its_own_schema(tmp_path):
    r = invoke("ingest", "--store", tmp_path / "st", "--source", "yelp", "--schema", tmp_path / "s.yaml")
    assert r.exit_code == 2 and "--schema and --attributes are for --source events" in flat(r.output)


def test_a_path_of_the_wrong_layout_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    r = invoke("ingest", "--store", tmp_path / "st", "--source", "ml-1m", tmp_path / "empty")
    assert r.exit_code == 1
    assert "is not a RecZoo MovieLens-1M folder: missing train.txt, test.txt" in flat(r.output)


def test_no_path_uses_the_resolver_of_the_context(tmp_path):
    folder = write_public(tmp_path / "d", "amazon-cd", {0: [1, 2]}, {0: [3]})
    asked = []

    def resolve(name):
        asked.append(name)
        return folder

    r = invoke("ingest", "--store", tmp_path / "st", "--source", "amazon-cd", "--json", obj={"dataset_path": resolve})
    assert r.exit_code == 0, r.output
    assert asked == ["amazon-cd"] and json.loads(r.output)["accepted"] == 3
    r = invoke("ingest", "--store", tmp_path / "st2", "--source", "amazon-cd")  # store_app alone: no data root
    assert r.exit_code == 2 and "only the `graphrec` command resolves" in flat(r.output)


def test_no_path_and_no_files_names_the_file_and_graphrec_data(tmp_path, monkeypatch):
    import graphrec.data.public as public

    def offline(url, dest, sha256=None):
        raise urllib.error.URLError("offline")

    monkeypatch.setenv("GRAPHREC_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("GRAPHREC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(public, "download", offline)
    r = runner.invoke(app, ["store", "ingest", "--store", str(tmp_path / "st"), "--source", "gowalla"])
    assert r.exit_code == 1, r.output
    msg = flat(r.output)
    assert "error: gowalla is not available: missing" in msg and "s_adj_mat.npz" in msg and "$GRAPHREC_DATA" in msg
    assert str(tmp_path / "data" / "recsys" / "gowalla-lightgcn") in r.output.replace("\n", "")


def test_no_path_reads_the_data_roots_copy(tmp_path):
    data_root("beauty")
    r = runner.invoke(app, ["store", "ingest", "--store", str(tmp_path / "st"), "--source", "beauty", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["accepted"] == 198_502  # shared/data/README.md


def test_ingesting_the_same_dataset_again_is_nothing_new_not_an_error(tmp_path):
    train, test = slice_gowalla(data_root("gowalla"), tmp_path / "gowalla")
    pairs = sum(map(len, train.values())) + sum(map(len, test.values()))
    args = ("ingest", "--store", tmp_path / "st", "--source", "gowalla", tmp_path / "gowalla", "--no-progress")
    assert invoke(*args).exit_code == 0
    r = invoke(*args)
    assert r.exit_code == 0, r.output
    assert f"nothing new: all {pairs:,} rows are already in the store" in flat(r.output)
    assert info(tmp_path / "st")["counts"]["events"] == pairs


def test_a_path_that_does_not_exist_is_named_as_such(tmp_path):
    r = invoke("ingest", "--store", tmp_path / "st", "--source", "Gowalla", tmp_path / "nope", "--no-progress")
    assert r.exit_code != 0 and "does not exist" in flat(r.output) and "nope" in flat(r.output)  # any case
    (tmp_path / "f.txt").write_text("0 1\n")
    r = invoke("ingest", "--store", tmp_path / "st", "--source", "ml-1m", tmp_path / "f.txt", "--no-progress")
    assert r.exit_code != 0 and "is a file" in flat(r.output)
