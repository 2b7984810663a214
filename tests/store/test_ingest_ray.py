"""The Ray Data engine of the ingest commits exactly what the local engine commits."""

from __future__ import annotations

import json
import logging
import sys
import types
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from store_helpers import events_frame
from typer.testing import CliRunner

from graphrec.store import GraphStore, ingest
from graphrec.store.cli import store_app
from graphrec.store.synth import synth, synth_schema

runner = CliRunner()
# Ray Data 2.60 warns about its own defaults (deprecated settings) when its context is created.
pytestmark = pytest.mark.filterwarnings(r"ignore::DeprecationWarning:ray(\..*)?$")
REPORT_FIELDS = {"read", "accepted", "quarantined", "duplicates", "reasons", "files", "invariant_ok", "version",
                 "parent", "partitions_written", "new_ids", "id_map_sizes"}


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray (2 CPUs) for the module; the ingest uses it and leaves it running."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
             ignore_reinit_error=True)
    yield ray
    ray.shutdown()


def snapshot(root: Path) -> dict:
    """Everything a version holds, read back from disk (partition files one by one, in order)."""
    store = GraphStore(root)
    assert store.verify() == []
    m = store.manifest()
    return {
        "events": store.events().collect(),
        "partitions": {day: [pl.read_parquet(store.path(f)) for f in files] for day, files in m.partitions.items()},
        "id_maps": {nt: store.id_map(nt) for nt in m.id_maps},
        "attributes": {nt: store.attributes(nt) for nt in m.attributes},
        "quarantine": store.quarantine(),
        "files": [f.model_dump() for f in m.ingest.files],
        "counts": m.counts.model_dump(),
        # the files themselves: byte-identical partitions, id-map chunks and quarantine
        "checksums": {
            "partitions": {day: [f.checksum for f in files] for day, files in m.partitions.items()},
            "id_maps": {nt: [f.checksum for f in e.files] for nt, e in m.id_maps.items()},
            "quarantine": [f.checksum for f in m.quarantine],
        },
    }


def assert_same(a, b, where: str = "") -> None:
    """``a == b``, frames compared exactly (values, dtypes, row order)."""
    assert type(a) is type(b), where
    if isinstance(a, pl.DataFrame):
        assert_frame_equal(a, b, check_exact=True)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{k}]")
    else:
        assert a == b, where


def both(tmp_path: Path, name: str, sources, **kw):
    """Ingest ``sources`` into ``<name>-local`` and ``<name>-ray``; return both reports."""
    local = ingest(tmp_path / f"{name}-local", sources, echo=False, **kw)
    ray = ingest(tmp_path / f"{name}-ray", sources, echo=False, engine="ray", workers=2, **kw)
    return local, ray


def test_clean_parquet_log_with_side_tables(tmp_path, ray_cluster):
    logs = tmp_path / "logs"
    synth(logs, events=20_000, days=3, format="parquet", seed=5)
    attributes = {nt: logs / f"{nt}s.parquet" for nt in ("user", "item", "ad")}
    local, ray = both(tmp_path, "st", [logs / "events"], schema=synth_schema(), attributes=attributes)
    assert local.model_dump(include=REPORT_FIELDS) == ray.model_dump(include=REPORT_FIELDS)
    assert sum(f.accepted for f in ray.files if f.table == "events") == 20_000 and ray.quarantined == 0
    a, b = snapshot(tmp_path / "st-local"), snapshot(tmp_path / "st-ray")
    assert set(a["id_maps"]) == {"user", "item", "ad"} and set(a["attributes"]) == {"user", "item", "ad"}
    assert a["events"].height == 20_000
    assert_same(a, b)
    assert ray_cluster.is_initialized(), "a Ray the ingest did not start must be left running"


def _damaged_inside(work: Path, out: Path) -> Path:
    """A Parquet file whose footer reads but whose data does not (found only when collected)."""
    day = Path(synth(work, events=1000, days=1, format="parquet", side_tables=False, seed=4).files[0])
    pl.read_parquet(day).write_parquet(out, compression="uncompressed", statistics=False)
    clean = out.read_bytes()
    for share in (0.8, 0.7, 0.6, 0.5, 0.9):  # garble 64 bytes of data pages until decoding fails
        data = bytearray(clean)
        at = int(len(data) * share)
        data[at:at + 64] = b"\xff" * 64
        out.write_bytes(bytes(data))
        pl.scan_parquet(out).collect_schema()
        try:
            pl.read_parquet(out)
        except pl.exceptions.ComputeError:
            return out
    raise AssertionError("could not damage the Parquet file's data pages")


def _bad_corpus(tmp_path: Path) -> list[Path]:
    """CSV and NDJSON days with bad rows, malformed lines and duplicates, interleaved so that
    the validation groups (by format) are not contiguous in input order; plus an unreadable
    file, an empty file and a Parquet file damaged inside (found only while validating)."""
    csv = synth(tmp_path / "csv", events=3000, days=3, bad_rate=0.03, duplicate_rate=0.03, format="csv", seed=1)
    nd = synth(tmp_path / "nd", events=3000, days=3, first_day=1, bad_rate=0.03, duplicate_rate=0.03,
               format="ndjson", seed=2)
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "broken.parquet").write_bytes(b"not a parquet file")
    (extra / "empty.csv").write_bytes(b"")
    deep = _damaged_inside(tmp_path / "pq", extra / "deep.parquet")
    files = [Path(f) for pair in zip(csv.files, nd.files, strict=True) for f in pair]
    return [files[0], extra / "broken.parquet", *files[1:4], extra / "empty.csv", deep, *files[4:]]


def test_bad_corpus_same_quarantine_order_and_counts(tmp_path, ray_cluster):
    sources = _bad_corpus(tmp_path / "in")
    schema = synth_schema()
    local, ray = both(tmp_path, "st", sources, schema=schema)
    for r in (local, ray):
        assert r.read == r.accepted + r.quarantined + r.duplicates and r.invariant_ok
        assert all(f.read == f.accepted + f.quarantined + f.duplicates for f in r.files)
    assert [f.model_dump() for f in ray.files] == [f.model_dump() for f in local.files]
    assert local.model_dump(include=REPORT_FIELDS) == ray.model_dump(include=REPORT_FIELDS)
    status = {Path(f.source).name: f.status for f in local.files}
    assert (status["broken.parquet"], status["empty.csv"], status["deep.parquet"]) == ("unreadable", "empty", "unreadable")
    assert local.duplicates > 0 and {"malformed_line", "unreadable_file"} <= set(local.reasons)
    a, b = snapshot(tmp_path / "st-local"), snapshot(tmp_path / "st-ray")
    assert_same(a, b)
    # The order is the local engine's, not the input order: rows found while reading (file by
    # file), then the files damaged inside, then the rejected rows group by group.
    position = {str(p.resolve()): k for k, p in enumerate(sources)}
    order = [position[s] for s in a["quarantine"]["source"]]
    assert order != sorted(order)


def test_delta_on_an_existing_version(tmp_path, ray_cluster):
    logs = tmp_path / "logs"
    report = synth(logs, events=4000, days=2, duplicate_rate=0.02, format="parquet", seed=3, side_tables=False)
    day0, day1 = (Path(f) for f in report.files)
    # the next day, with a larger population: new users, items and ads
    more = synth(tmp_path / "more", events=2000, days=1, first_day=2, users=400, items=200, ads=20, duplicate_rate=0.02,
                 format="parquet", seed=3, side_tables=False)
    day2 = Path(more.files[0])
    schema = synth_schema()
    for name in ("st-local", "st-ray"):
        ingest(tmp_path / name, [day0, day1], schema=schema, echo=False)
    # day 1 again: every row a stored duplicate; day 2: new rows and new ids
    local, ray = both(tmp_path, "st", [day2, ("frame", pl.read_parquet(day1)[:50]), day1])
    assert (ray.version, ray.parent) == (2, 1)
    assert ray.duplicates >= pl.read_parquet(day1).height + 50 and set(ray.new_ids) == {"user", "item", "ad"}
    assert local.model_dump(include=REPORT_FIELDS) == ray.model_dump(include=REPORT_FIELDS)
    assert_same(snapshot(tmp_path / "st-local"), snapshot(tmp_path / "st-ray"))


def invoke(*args):
    return runner.invoke(store_app, [str(a) for a in args])


def test_cli_engine_ray(tmp_path, ray_cluster):
    r = invoke("synth", tmp_path / "logs", "--events", 3000, "--days", 2, "--bad-rate", 0.02, "--format", "csv", "--json")
    assert r.exit_code == 0, r.output
    logs = tmp_path / "logs"
    common = [logs / "events", "--schema", logs / "schema.yaml", "-a", f"item={logs / 'items.csv'}", "--json"]
    r_local = invoke("ingest", "--store", tmp_path / "st-local", *common)
    r_ray = invoke("ingest", "--store", tmp_path / "st-ray", "--engine", "ray", "--workers", 2, *common)
    assert r_local.exit_code == 0 and r_ray.exit_code == 0, r_ray.output
    got, want = json.loads(r_ray.output), json.loads(r_local.output)
    assert got["quarantined"] > 0
    assert {k: got[k] for k in REPORT_FIELDS} == {k: want[k] for k in REPORT_FIELDS}
    assert_same(snapshot(tmp_path / "st-local"), snapshot(tmp_path / "st-ray"))
    r = invoke("ingest", "--store", tmp_path / "st-x", logs / "events", "--workers", 2)
    assert r.exit_code == 2 and "--engine ray" in r.output
    r = invoke("ingest", "--store", tmp_path / "st-x", "--source", "gowalla", tmp_path, "--engine", "ray")
    assert r.exit_code == 2 and "--source events" in r.output and not (tmp_path / "st-x").exists()


def test_missing_ray_is_a_clear_error(tmp_path, monkeypatch):
    src = tmp_path / "e.parquet"
    events_frame(3).write_parquet(src)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'graphrec\[ray\]'"):
        ingest(tmp_path / "st", [src], echo=False, engine="ray")
    assert not (tmp_path / "st").exists(), "a failed first ingest leaves no store"
    r = invoke("ingest", "--store", tmp_path / "st", src, "--engine", "ray")
    assert r.exit_code == 1 and "pip install 'graphrec[ray]'" in r.output


def test_engine_and_workers_are_checked(tmp_path):
    src = tmp_path / "e.parquet"
    events_frame(3).write_parquet(src)
    with pytest.raises(ValueError, match="engine must be"):
        ingest(tmp_path / "st", [src], echo=False, engine="spark")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="only with engine='ray'"):
        ingest(tmp_path / "st", [src], echo=False, workers=2)
    with pytest.raises(ValueError, match=">= 1"):
        ingest(tmp_path / "st", [src], echo=False, engine="ray", workers=0)


class FakeRay(types.ModuleType):
    """Records what ray_session asks of Ray (no Ray is started)."""

    def __init__(self, initialized: bool):
        super().__init__("ray")
        self.initialized, self.calls = initialized, []

    def is_initialized(self) -> bool:
        return self.initialized

    def init(self, **kwargs) -> None:
        self.calls.append(("init", kwargs))
        self.initialized = True

    def shutdown(self) -> None:
        self.calls.append(("shutdown", {}))
        self.initialized = False


@pytest.mark.parametrize("initialized, address", [(False, None), (False, "ray://head:10001"), (True, None)])
def test_ray_session_starts_joins_and_stops_only_its_own(monkeypatch, initialized, address):
    from graphrec.store.ingest import ray_session

    fake = FakeRay(initialized)
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setitem(sys.modules, "ray.data", types.ModuleType("ray.data"))
    if address:
        monkeypatch.setenv("RAY_ADDRESS", address)
    else:
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with ray_session(3) as ray:
        assert ray is fake and fake.initialized
    names = [c[0] for c in fake.calls]
    if initialized:
        assert names == [] and fake.initialized, "a Ray started by the caller is used and left running"
    else:
        assert names == ["init", "shutdown"]
        kwargs = fake.calls[0][1]
        if address:
            assert kwargs["address"] == address and "num_cpus" not in kwargs
        else:
            assert kwargs["num_cpus"] == 3 and kwargs["include_dashboard"] is False and "address" not in kwargs
        assert kwargs["log_to_driver"] is False
