"""Kill publish and promote with SIGKILL at each step, and at random moments.

After every kill the registry must read cleanly: every version folder is complete and
matches its manifest, PRODUCTION names the old or the new version, and a retry succeeds.
"""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from artifact_helpers import contents, publish, read_tree

from graphrec.artifacts import FAULT_ENV, FAULT_POINTS, ArtifactRegistry

PUBLISH = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[2])
    from artifact_helpers import publish
    from graphrec.artifacts import ArtifactRegistry
    publish(ArtifactRegistry(sys.argv[1]), "crash", reason="nightly")
""")

PROMOTE = textwrap.dedent("""
    import sys
    from graphrec.artifacts import ArtifactRegistry
    ArtifactRegistry(sys.argv[1]).promote(int(sys.argv[2]), reason="manual")
""")

LOOP = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[2])
    from artifact_helpers import publish
    from graphrec.artifacts import ArtifactRegistry
    reg = ArtifactRegistry(sys.argv[1], keep=3)
    print("ready", flush=True)
    for i in range(10_000):
        publish(reg, f"loop{i}")
        if i % 3 == 2:
            reg.rollback(reason="loop")
""")

HERE = os.path.dirname(os.path.dirname(__file__))  # tests/, where artifact_helpers.py is


def _run(code: str, *args: str, fault: str | None = None) -> int:
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    if fault:
        env[FAULT_ENV] = fault
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode in (0, -signal.SIGKILL), proc.stderr
    return proc.returncode


def check_invariants(root) -> ArtifactRegistry:
    """The registry reads cleanly: complete versions only, a valid production pointer."""
    reg = ArtifactRegistry(root, keep=None)
    assert reg.verify() == []
    names = sorted(p.name for p in (reg.root / "versions").iterdir() if not p.name.startswith("."))
    assert [int(n) for n in names] == reg.version_numbers() == [v.version for v in reg.versions()]
    for v in reg.versions():
        assert (v.path / "manifest.json").is_file() and read_tree(v.path) == contents(
            v.meta["run_id"]
        )
    prod = reg.production
    assert prod is None or prod.version in reg.version_numbers()
    return reg


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_publish_killed_at_each_step(tmp_path, point):
    root = tmp_path / "reg"
    first = publish(ArtifactRegistry(root, keep=None), "base")
    assert _run(PUBLISH, str(root), HERE, fault=point) == -signal.SIGKILL
    reg = check_invariants(root)
    expected_versions = [1] if point == "after_manifest" else [1, 2]
    assert reg.version_numbers() == expected_versions
    assert reg.production.version == (2 if point == "after_pointer" else 1)
    if point == "after_manifest":
        # the crashed publish's folder stays, ignored by readers
        assert len(list((root / "staging").iterdir())) == 1
    if point == "after_pointer":
        assert [h["version"] for h in reg.history()] == [1]  # killed before the history append
        assert reg.rollback_target.version == first.version == 1

    # a retry publishes, cleans up the leftovers and completes the history
    assert _run(PUBLISH, str(root), HERE) == 0
    reg = check_invariants(root)
    retry = reg.version_numbers()[-1]
    assert retry == expected_versions[-1] + 1 and reg.production.version == retry
    assert list((root / "staging").iterdir()) == [] and not list(root.glob(".trash/*"))
    promoted = [1, 2, retry] if point == "after_pointer" else [1, retry]
    assert [h["version"] for h in reg.history()] == promoted
    assert reg.rollback().version == promoted[-2]
    assert read_tree(reg.production.path) == contents(
        "crash" if point == "after_pointer" else "base"
    )


def test_promote_killed_after_the_pointer(tmp_path):
    root = tmp_path / "reg"
    reg = ArtifactRegistry(root, keep=None)
    publish(reg, "a")
    publish(reg, "b")
    assert _run(PROMOTE, str(root), "1", fault="after_pointer") == -signal.SIGKILL
    reg = check_invariants(root)
    assert reg.production.version == 1 and [h["version"] for h in reg.history()] == [1, 2]
    assert reg.rollback().version == 2  # the rollback chain travels with the pointer
    hist = reg.history()
    assert [(h["action"], h["version"], h["previous"]) for h in hist] == [
        ("promote", 1, None),
        ("promote", 2, 1),
        ("promote", 1, 2),
        ("rollback", 2, 1),
    ]
    assert hist[2]["reason"] == "manual"


def test_killed_at_random_moments(tmp_path):
    rng = random.Random(7)
    root = tmp_path / "reg"
    for trial in range(4):
        with subprocess.Popen(
            [sys.executable, "-c", LOOP, str(root), HERE],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
            time.sleep(rng.uniform(0.05, 0.6))
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=60) == -signal.SIGKILL, proc.stderr.read()
        reg = check_invariants(root)
        before = reg.production
        av = publish(ArtifactRegistry(root, keep=3), f"retry{trial}")
        reg = check_invariants(root)
        assert reg.production == av and len(reg.version_numbers()) <= 5
        if before is not None:
            assert reg.rollback().version == before.version
    assert reg.version_numbers()[-1] > 4  # the killed loops published too, not only the retries
