import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest
from artifact_helpers import contents, publish, read_tree, stage, write_files

from graphrec.artifacts import (
    ArtifactError,
    ArtifactLockedError,
    ArtifactNotFoundError,
    ArtifactRegistry,
    CorruptArtifactError,
)


@pytest.fixture
def reg(tmp_path):
    return ArtifactRegistry(tmp_path / "reg", keep=None, lock_timeout=0.3)


def test_empty_registry_reads_as_empty(reg):
    assert not reg.root.exists()
    assert reg.versions() == [] and reg.production is None and reg.history() == []
    assert reg.find(run_id="x") == [] and reg.verify() == []
    with pytest.raises(ArtifactNotFoundError, match="it has no versions"):
        reg.get(1)


def test_publish_writes_manifest_and_moves_folder(reg):
    folder, files = stage(reg, "d1")
    assert folder.parent == reg.root / "staging" and list(folder.iterdir())
    av = reg.publish(folder, {"run_id": "d1", "metrics": {"ndcg@10": 0.31}}, reason="first")
    assert not folder.exists()
    assert av.version == 1 and av.path == reg.root / "versions" / "000001"
    assert av.is_production and reg.production == av
    assert read_tree(av.path) == files
    manifest = json.loads((av.path / "manifest.json").read_text())
    assert manifest["format"] == "graphrec-artifact/1" and manifest["version"] == 1
    assert manifest["meta"] == {"run_id": "d1", "metrics": {"ndcg@10": 0.31}}
    assert manifest["files"] == {
        rel: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        for rel, data in files.items()
    }
    assert av.bytes == sum(len(d) for d in files.values())
    assert [h["version"] for h in reg.history()] == [1]
    assert reg.history()[0]["action"] == "promote" and reg.history()[0]["reason"] == "first"


def test_list_get_find(reg):
    publish(reg, "d1", date="2026-11-24")
    v2 = publish(reg, "d2", promote=False, date="2026-11-25")
    publish(reg, "d3", promote=False, date="2026-11-25")
    assert [v.version for v in reg.versions()] == [1, 2, 3]
    assert [v.is_production for v in reg.versions()] == [True, False, False]
    assert not v2.is_production and reg.production.version == 1
    assert reg.get(2).meta == {"run_id": "d2", "date": "2026-11-25"}
    assert [v.version for v in reg.find(date="2026-11-25")] == [2, 3]
    assert [v.version for v in reg.find(date="2026-11-25", run_id="d3")] == [3]
    assert reg.find(run_id="d9") == [] and reg.find(missing_key=None) == []
    with pytest.raises(
        ArtifactNotFoundError, match=r"version 7 does not exist .*versions: 1, 2, 3"
    ):
        reg.get(7)


def test_publish_from_a_folder_outside_the_registry(reg, tmp_path):
    elsewhere = write_files(tmp_path / "build", contents("x"))
    av = reg.publish(elsewhere, {"run_id": "x"})
    assert not elsewhere.exists() and read_tree(av.path) == contents("x")


def test_publish_rejects_bad_input(reg, tmp_path):
    with pytest.raises(ArtifactError, match="does not exist"):
        reg.publish(tmp_path / "nope", {})
    with pytest.raises(ArtifactError, match="holds no files"):
        reg.publish(reg.staging_dir("empty"), {})
    folder, _ = stage(reg, "a")
    with pytest.raises(ArtifactError, match="JSON-serialisable"):
        reg.publish(folder, {"when": object()})
    with pytest.raises(ArtifactError, match=r"meta keys must be strings, got \[1\]"):
        reg.publish(folder, {1: "x"})
    (folder / "manifest.json").write_text("{}")
    with pytest.raises(ArtifactError, match="reserved"):
        reg.publish(folder, {})
    (folder / "manifest.json").unlink()
    (folder / "link").symlink_to(folder / "model.pt")
    with pytest.raises(ArtifactError, match="not a plain file"):
        reg.publish(folder, {})
    (folder / "link").unlink()
    (folder / ".manifest.json.k2j3.tmp").write_text("{")  # a manifest write cut short earlier
    av = reg.publish(folder, {"metrics": {"auc": float("nan")}})
    assert ".manifest.json.k2j3.tmp" not in av.files and reg.verify(1) == []
    assert math.isnan(reg.get(1).meta["metrics"]["auc"])  # kept as NaN, not turned into null
    with pytest.raises(ArtifactError, match="published version"):
        reg.publish(av.path, {})
    with pytest.raises(ArtifactError, match="is the registry"):
        reg.publish(reg.root, {})
    with pytest.raises(ValueError, match="staging name"):
        reg.staging_dir("../escape")
    assert [v.version for v in reg.versions()] == [1] and reg.verify() == []


def test_staging_dirs_are_fresh(reg):
    a, b = reg.staging_dir("run"), reg.staging_dir("run")
    assert a != b and a.is_dir() and b.is_dir() and not list(a.iterdir())
    assert a.parent == b.parent == reg.root / "staging" and a.name.startswith("run.")


def test_verify_detects_changed_missing_and_extra_files(reg):
    av = publish(reg, "d1")
    publish(reg, "d2", promote=False)
    assert reg.verify() == [] and reg.verify(1) == []
    model = av.path / "model.pt"
    original = model.read_bytes()
    model.write_bytes(bytes([original[0] ^ 1]) + original[1:])  # same size, one bit differs
    assert reg.verify(1) == [
        f"version 1: changed file model.pt (sha256 {hashlib.sha256(model.read_bytes()).hexdigest()[:12]}…, "
        f"manifest says {hashlib.sha256(original).hexdigest()[:12]}…)"
    ]
    model.write_bytes(original + b"!")
    assert reg.verify(1) == [
        f"version 1: changed file model.pt ({len(original) + 1} bytes, manifest says {len(original)})"
    ]
    model.write_bytes(original)
    (av.path / "embeddings" / "user.parquet").unlink()
    (av.path / "embeddings" / "stray.parquet").write_bytes(b"x")
    assert reg.verify(1) == [
        "version 1: missing file embeddings/user.parquet",
        "version 1: extra file embeddings/stray.parquet",
    ]
    assert reg.verify(2) == []
    assert reg.verify() == reg.verify(1)
    with pytest.raises(ArtifactNotFoundError, match="version 5 does not exist"):
        reg.verify(5)


def test_promote_and_rollback_restore_exactly_the_previous_production(reg):
    published = {}
    for tag in ("d1", "d2", "d3"):
        published[tag] = publish(reg, tag).version
    assert reg.production.version == 3 and reg.rollback_target.version == 2
    av = reg.rollback(reason="bad metrics")
    assert av.version == 2 and reg.production.version == 2
    assert read_tree(reg.production.path) == contents("d2")  # byte-identical to what was published
    assert reg.rollback().version == 1 and read_tree(reg.production.path) == contents("d1")
    with pytest.raises(
        ArtifactError, match="nothing to roll back to.*version 1 is the first production version"
    ):
        reg.rollback()
    assert reg.production.version == 1  # a refused rollback changes nothing
    reg.promote(3, reason="fixed")
    assert reg.rollback().version == 1
    hist = reg.history()
    assert [(h["action"], h["version"], h["previous"]) for h in hist] == [
        ("promote", 1, None),
        ("promote", 2, 1),
        ("promote", 3, 2),
        ("rollback", 2, 3),
        ("rollback", 1, 2),
        ("promote", 3, 1),
        ("rollback", 1, 3),
    ]
    assert hist[3]["reason"] == "bad metrics" and hist[5]["reason"] == "fixed"
    assert all(h["time"] for h in hist)


def test_rollback_skips_versions_that_no_longer_exist(reg):
    for tag in ("d1", "d2", "d3"):
        publish(reg, tag)
    shutil.rmtree(reg.root / "versions" / "000002")  # removed by hand
    assert reg.rollback_target.version == 1
    assert reg.rollback().version == 1
    publish(reg, "d4")  # production 4; earlier: 1 (the rollback above popped 3)
    shutil.rmtree(reg.root / "versions" / "000001")
    assert reg.rollback_target is None
    with pytest.raises(ArtifactError, match=r"earlier production versions \(1\) no longer exist"):
        reg.rollback()
    assert reg.production.version == 4


def test_rollback_and_promote_errors(reg):
    with pytest.raises(ArtifactNotFoundError, match="no artifact registry"):
        reg.rollback()
    publish(reg, "d1", promote=False)
    with pytest.raises(ArtifactNotFoundError, match="no production version to roll back from"):
        reg.rollback()
    with pytest.raises(ArtifactNotFoundError, match=r"version 4 does not exist .*versions: 1"):
        reg.promote(4)
    reg.promote(1)
    reg.promote(1)  # already production: nothing recorded
    assert len(reg.history()) == 1
    with pytest.raises(ArtifactError, match="first production version"):
        reg.rollback()


def test_prune_keeps_production_and_rollback_target(reg):
    for i in range(1, 7):
        publish(reg, f"d{i}", promote=False)
    reg.promote(2)
    reg.promote(1)  # production 1, rollback target 2: both older than the newest two
    assert reg.prune(keep=2) == [3, 4]
    assert reg.version_numbers() == [1, 2, 5, 6]
    assert reg.production.version == 1 and reg.rollback_target.version == 2
    assert reg.prune(keep=2) == []
    assert reg.prune(keep=1) == [5]
    assert reg.rollback().version == 2
    assert publish(reg, "d7", promote=False).version == 7  # numbers are not reused
    assert reg.verify() == []
    with pytest.raises(ValueError, match="keep must be at least 1"):
        reg.prune(0)


def test_publish_prunes_to_keep(tmp_path):
    reg = ArtifactRegistry(tmp_path / "reg", keep=3)
    for i in range(1, 6):
        publish(reg, f"d{i}")
    assert reg.version_numbers() == [3, 4, 5]
    assert reg.production.version == 5 and reg.rollback().version == 4
    publish(reg, "d6", promote=False)
    assert reg.version_numbers() == [3, 4, 5, 6]  # 3 is the rollback target of 4
    assert reg.production.version == 4


def test_prune_removes_abandoned_staging_folders(reg):
    publish(reg, "d1")
    live, _ = stage(reg, "live")
    crashed, _ = stage(reg, "crashed")
    (crashed / "manifest.json").write_text(
        json.dumps({"format": "graphrec-artifact/1", "version": 9})
    )
    old, _ = stage(reg, "old")
    past = time.time() - 3 * 24 * 3600
    for p in [old, *old.rglob("*")]:
        os.utime(p, (past, past))
    (reg.root / ".trash" / "000099.abcd").mkdir(parents=True)
    assert reg.prune(keep=5) == []
    assert sorted(p.name for p in (reg.root / "staging").iterdir()) == [live.name]
    assert list((reg.root / ".trash").iterdir()) == []
    # a folder that was left by a crashed publish can still be published on purpose
    again, files = stage(reg, "again")
    (again / "manifest.json").write_text(
        json.dumps({"format": "graphrec-artifact/1", "version": 9})
    )
    av = reg.publish(again, {"run_id": "again"})
    assert av.version == 2 and read_tree(av.path) == files and reg.verify() == []


def test_history_ignores_a_torn_last_line_and_the_next_append_repairs_it(reg):
    publish(reg, "d1")
    publish(reg, "d2")
    path = reg.root / "history.jsonl"
    with open(path, "ab") as fh:
        fh.write(b'{"action": "promote", "time": "2026-')  # a writer killed mid-append
    assert [h["version"] for h in reg.history()] == [1, 2]
    reg.rollback()
    assert [(h["action"], h["version"]) for h in reg.history()] == [
        ("promote", 1),
        ("promote", 2),
        ("rollback", 1),
    ]
    assert all(json.loads(line) for line in path.read_text().splitlines())
    path.write_bytes(path.read_bytes() + b"\x00" * 16)  # zero-filled tail after a power loss
    assert len(reg.history()) == 3
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "garbage", *lines[1:]]) + "\n")
    with pytest.raises(CorruptArtifactError, match="line 2"):
        reg.history()


def test_lock_refuses_a_second_writer_after_waiting(reg):
    publish(reg, "d1")
    publish(reg, "d2")
    other = ArtifactRegistry(reg.root, lock_timeout=0.3)
    with reg.lock():
        t0 = time.monotonic()
        with pytest.raises(
            ArtifactLockedError, match=f"being written by another process \\(pid {os.getpid()} "
        ):
            other.promote(1)
        assert time.monotonic() - t0 >= 0.3
        with pytest.raises(ArtifactLockedError):
            other.prune(keep=1)
        assert reg.promote(1).version == 1  # re-entrant for the holder
    assert other.rollback().version == 2  # released


HOLDER = textwrap.dedent("""
    import sys, time
    from graphrec.artifacts import ArtifactRegistry
    with ArtifactRegistry(sys.argv[1]).lock():
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def test_lock_held_by_another_process_is_waited_for(reg):
    publish(reg, "d1")
    publish(reg, "d2")
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(reg.root), "1.0"], stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(ArtifactLockedError, match=f"pid {proc.pid} "):
            ArtifactRegistry(reg.root, lock_timeout=0.1).promote(1)
        t0 = time.monotonic()
        assert ArtifactRegistry(reg.root, lock_timeout=20).promote(1).version == 1
        assert time.monotonic() - t0 > 0.2
        assert proc.wait(timeout=20) == 0
    assert reg.production.version == 1
