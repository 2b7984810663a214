"""Kill the ingest process with SIGKILL at random moments; the store must stay consistent.

After every kill the store opens at the last committed version, every file of every
version matches its checksum, no event is lost, and a retry of the same ingest succeeds.
"""

import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from graphrec.store import GraphStore, LogSchema, ingest, synth

CHILD = textwrap.dedent("""
    import sys
    from graphrec.store import ingest
    print("ready", flush=True)
    ingest(sys.argv[1], [sys.argv[2]], attributes={"item": sys.argv[3]}, echo=False)
""")


@pytest.fixture(scope="module")
def crash_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    base = synth(root / "base", events=6_000, days=2, seed=1, side_tables=False)
    delta = synth(root / "delta", events=30_000, days=3, first_day=2, seed=1,
                  users=base.users, items=base.items, ads=base.ads)
    ingest(root / "pristine", [root / "base" / "events"], schema=LogSchema.load(root / "base" / "schema.yaml"), echo=False)
    expected_base = GraphStore(root / "pristine").manifest().counts.events
    # calibrate: how long the child's ingest runs after it is ready
    shutil.copytree(root / "pristine", root / "calib")
    t = _run_child(root / "calib", root, kill_after=None)
    expected_total = GraphStore(root / "calib").manifest().counts.events
    assert expected_base + 0.99 * delta.good <= expected_total <= expected_base + delta.good
    return root, t, expected_base, expected_total


def _run_child(store, root, kill_after):
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(store), str(root / "delta" / "events"), str(root / "delta" / "items.parquet")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        t0 = time.perf_counter()
        if kill_after is None:
            assert proc.wait(timeout=120) == 0, proc.stderr.read()
            return time.perf_counter() - t0
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
        return proc.wait(timeout=60)


def _trial(crash_setup, rng, k):
    root, duration, expected_base, expected_total = crash_setup
    store_dir = root / f"trial{k}"
    shutil.rmtree(store_dir, ignore_errors=True)
    shutil.copytree(root / "pristine", store_dir)
    rc = _run_child(store_dir, root, kill_after=rng.uniform(0, duration * 1.1))
    store = GraphStore(store_dir)
    assert store.version in (1, 2)
    committed = store.version == 2
    if not committed:
        assert rc == -signal.SIGKILL
    for v in range(store.version + 1):
        assert store.verify(v) == [], f"trial {k}: version {v} damaged"
    assert store.manifest().counts.events == (expected_total if committed else expected_base)
    report = ingest(store, [root / "delta" / "events"], attributes={"item": root / "delta" / "items.parquet"}, echo=False)
    assert report.invariant_ok
    assert store.manifest().counts.events == expected_total
    assert store.verify() == []
    if committed:
        assert report.accepted == 0  # everything was already there: duplicates
    referenced = {f.path for v in range(store.version + 1) for f in store.manifest(v).files()}
    on_disk = {p.relative_to(store_dir).as_posix() for p in store_dir.glob("*/**/*.parquet") if "cache" not in p.parts}
    assert on_disk == referenced, "orphans of the killed writer were not removed"
    shutil.rmtree(store_dir)
    return committed


def test_sigkill_at_random_moments_quick(crash_setup):
    rng = random.Random(20240101)
    for k in range(3):
        _trial(crash_setup, rng, k)


@pytest.mark.slow
def test_sigkill_at_random_moments_many(crash_setup):
    rng = random.Random(7)
    outcomes = [_trial(crash_setup, rng, k) for k in range(24)]
    # Kills land before and after the commit point (the window spans the whole ingest).
    assert 0 < sum(outcomes) < len(outcomes), outcomes
