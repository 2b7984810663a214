"""Versions: immutable manifests, atomic commits, one writer at a time."""

import json
import os
import subprocess
import sys
import textwrap
import time

import polars as pl
import pytest
from store_helpers import events_frame

from graphrec.store import (
    GraphStore,
    LogSchema,
    SchemaError,
    StoreExistsError,
    StoreLockedError,
    StoreNotFoundError,
    VersionNotFoundError,
    ingest,
)
from graphrec.store.store import FAULT_ENV, collect_garbage


def _three_versions(tmp_path, schema):
    st = tmp_path / "st"
    for d in range(1, 4):
        ingest(st, [(f"d{d}", events_frame(10 * d, day=f"2024-01-0{d}", offset=100 * d))], schema=schema,
               message=f"day {d}", echo=False)
    return GraphStore(st)


def test_init_open_and_errors(tmp_path, schema):
    with pytest.raises(StoreNotFoundError, match="no graph store"):
        GraphStore(tmp_path / "none")
    store = GraphStore.init(tmp_path / "st", schema)
    assert store.version == 0 and store.manifest().counts.events == 0
    with pytest.raises(StoreExistsError):
        GraphStore.init(tmp_path / "st", schema)
    assert GraphStore.init(tmp_path / "st", schema, exist_ok=True).version == 0


def test_log_and_past_versions(tmp_path, schema):
    store = _three_versions(tmp_path, schema)
    log = store.log()
    assert [m.version for m in log] == [3, 2, 1, 0]
    assert [m.parent for m in log] == [2, 1, 0, None]
    assert [m.ingest.message for m in log[:3]] == ["day 3", "day 2", "day 1"]
    assert [store.events(v).collect().height for v in range(4)] == [0, 10, 30, 60]
    assert store.manifest(-2).version == 2
    assert store.events(2, start="2024-01-02", end="2024-01-03").collect().height == 20
    with pytest.raises(VersionNotFoundError, match="never committed"):
        store.manifest(7)
    info = store.info(2)
    assert info["version"] == 2 and info["counts"]["events"] == 30 and info["id_maps"]["user"] == 7
    json.dumps(store.info())  # JSON-ready


def test_versions_are_immutable(tmp_path, schema):
    store = _three_versions(tmp_path, schema)
    before = {p: p.read_bytes() for p in (tmp_path / "st").rglob("*") if p.is_file() and "cache" not in p.parts
              and p.name not in ("CURRENT", "LOCK")}
    ingest(store, [("more", events_frame(5, day="2024-01-02", offset=999))], echo=False)
    for p, data in before.items():
        assert p.read_bytes() == data, f"{p} was modified"
    for v in range(5):
        assert store.verify(v) == []


def test_verify_detects_damage(tmp_path, schema):
    store = _three_versions(tmp_path, schema)
    f = store.manifest().partitions["2024-01-02"][0]
    path = store.path(f)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert any("checksum mismatch" in p for p in store.verify())
    path.unlink()
    assert any("missing file" in p for p in store.verify())


def test_second_writer_is_refused(tmp_path, schema):
    store = GraphStore.init(tmp_path / "st", schema)
    with store.lock():
        with pytest.raises(StoreLockedError, match="another process"):
            ingest(store, [("a", events_frame(3))], echo=False)
    assert ingest(store, [("a", events_frame(3))], echo=False).version == 1


def test_second_writer_process_is_refused(tmp_path, schema):
    store = GraphStore.init(tmp_path / "st", schema)
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from graphrec.store import GraphStore
            with GraphStore({str(store.root)!r}).lock():
                print("locked", flush=True)
                time.sleep(30)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreLockedError, match=rf"pid {holder.pid}"):
            ingest(store, [("a", events_frame(3))], echo=False)
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    # the lock dies with its process
    assert ingest(store, [("a", events_frame(3))], echo=False).version == 1


CHILD = textwrap.dedent("""
    import sys
    import polars as pl
    from graphrec.store import ingest
    ingest(sys.argv[1], [sys.argv[2]], echo=False)
""")


@pytest.mark.parametrize("point, committed", [("after_data", False), ("after_manifest", False), ("after_current", True)])
def test_crash_at_each_commit_step(tmp_path, schema, point, committed):
    store = _three_versions(tmp_path, schema)
    src = tmp_path / "new.parquet"
    events_frame(25, day="2024-01-05", users=40, offset=5000).write_parquet(src)
    env = {**os.environ, FAULT_ENV: point}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(store.root), str(src)], env=env, capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()
    assert store.version == (4 if committed else 3)
    assert store.verify() == []
    assert store.manifest().counts.events == 60 + (25 if committed else 0)
    r = ingest(store, [src], echo=False)  # the retry
    assert r.version == store.version
    assert store.manifest().counts.events == 85
    assert (r.accepted, r.duplicates) == ((0, 25) if committed else (25, 0))
    # orphans of the crashed writer are gone
    referenced = {f.path for v in range(store.version + 1) for f in store.manifest(v).files()}
    on_disk = {p.relative_to(store.root).as_posix() for p in store.root.glob("*/**/*.parquet") if "cache" not in p.parts}
    assert on_disk == referenced


def test_garbage_collection_keeps_committed_files(tmp_path, schema):
    store = _three_versions(tmp_path, schema)
    (store.root / "events" / "day=2030-01-01").mkdir()
    (store.root / "events" / "day=2030-01-01" / "part-v000009-dead.parquet").write_bytes(b"x")
    (store.root / "versions" / "v000004.json").write_text("{}")
    (store.root / "idmaps" / "user" / ".part.tmp").write_bytes(b"x")
    with store.lock():
        removed = collect_garbage(store)
    assert sorted(removed) == sorted([
        "events/day=2030-01-01/part-v000009-dead.parquet", "versions/v000004.json", "idmaps/user/.part.tmp"])
    assert all(store.verify(v) == [] for v in range(4))


def test_reader_sees_new_commits(tmp_path, schema):
    store = _three_versions(tmp_path, schema)
    reader = GraphStore(store.root)
    assert reader.version == 3
    ingest(store.root, [("x", events_frame(1, day="2024-02-01", offset=77))], echo=False)
    assert reader.version == 4 and reader.events().collect().height == 61
    assert isinstance(reader.events(3).collect(), pl.DataFrame)


def test_empty_store_reads(tmp_path):
    store = GraphStore.init(tmp_path / "st", LogSchema())
    assert store.events().collect().height == 0
    assert store.id_map("user").height == 0
    assert store.quarantine().height == 0
    assert store.attributes("item") is None
    assert time.time() > 0


def test_a_failed_first_ingest_leaves_no_store(tmp_path):
    from graphrec.store import SourceError

    root = tmp_path / "st"
    with pytest.raises(SchemaError, match="no side table is declared for node type 'item'"):
        ingest(root, [("ev", events_frame(3))], attributes={"item": [("t", events_frame(1))]}, echo=False)
    assert not root.exists()
    with pytest.raises(SourceError, match="no such file or folder"):
        ingest(root, [tmp_path / "missing.csv"], echo=False)
    assert not root.exists()
    ingest(root, [("ev", events_frame(3))], schema=LogSchema(context={"device": "string"}), echo=False)
    assert GraphStore(root).schema().context == {"device": "string"}  # the schema asked for, not the default


def test_evolve_schema_command_extends_the_store(tmp_path):
    from typer.testing import CliRunner

    from graphrec.cli import app

    root = tmp_path / "st"
    ingest(root, [("ev", events_frame(3))], echo=False)
    wider = LogSchema(context={"device": "string"})
    (tmp_path / "wider.yaml").write_text(wider.to_yaml())
    runner = CliRunner()
    with pytest.raises(SchemaError, match="graphrec store evolve-schema"):
        ingest(root, [("ev", events_frame(3, offset=3))], schema=wider, echo=False)
    res = runner.invoke(app, ["store", "evolve-schema", "--store", str(root), "--schema", str(tmp_path / "wider.yaml")])
    assert res.exit_code == 0, res.output
    assert "version 2" in res.output and GraphStore(root).schema().hash() == wider.hash()
    rep = ingest(root, [("ev", events_frame(3, offset=3).with_columns(device=pl.lit("ios")))], schema=wider, echo=False)
    assert rep.version == 3 and rep.accepted == 3
    narrower = tmp_path / "narrow.yaml"
    narrower.write_text(LogSchema().to_yaml())
    res = runner.invoke(app, ["store", "evolve-schema", "--store", str(root), "--schema", str(narrower)])
    assert res.exit_code != 0 and "device" in res.output  # removing a column is not an extension
