"""SIGKILL during ingest, training and publish: the rerun completes and published versions stay intact."""

import os
import signal
import subprocess
import sys

import pytest
import torch
import yaml

from graphrec.artifacts import ArtifactRegistry
from graphrec.pipeline import read_log, run_night
from graphrec.store import GraphStore

from fixtures import day

RUN = (
    "import sys; from graphrec.pipeline import load_pipeline_config, run_night; "
    "r = run_night(load_pipeline_config(sys.argv[1]), sys.argv[2], progress=False); sys.exit(r.exit_code)"
)


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _killed_run(cfg, date, tmp_path, env: dict[str, str]) -> None:
    path = tmp_path / f"pipeline-{date}.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    proc = subprocess.run([sys.executable, "-c", RUN, str(path), date], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-2000:])


def _intact(cfg) -> ArtifactRegistry:
    reg = ArtifactRegistry(cfg.paths_resolved["artifacts"])
    for v in reg.versions():
        assert reg.verify(v.version) == [], v.version
    assert GraphStore(cfg.paths_resolved["store"]).verify() == []
    return reg


@pytest.mark.parametrize("env", [{"GRAPHREC_STORE_FAULT": "after_data"}, {"GRAPHREC_STORE_FAULT": "after_current"},
                                 {"GRAPHREC_PIPELINE_FAULT": "ingest_committed"}], ids=lambda e: next(iter(e.values())))  # fmt: skip
def test_kill_during_ingest(make_cfg, tmp_path, env):
    cfg = make_cfg()
    assert run_night(cfg, day(0), progress=False).status == "published"
    _killed_run(cfg, day(1), tmp_path, env)
    r = run_night(cfg, day(1), progress=False)
    assert r.status == "published" and r.artifact_version == 2
    store = GraphStore(cfg.paths_resolved["store"])
    marks = [m for m in store.log() if m.ingest is not None and m.ingest.message == f"{cfg.name} night {day(1)}"]
    assert len(marks) == 1  # the day was ingested exactly once
    reg = _intact(cfg)
    assert reg.production.version == 2


def test_kill_during_training_resumes_from_the_checkpoint(make_cfg, tmp_path, one_thread):
    cfg = make_cfg("train.threads=1", workdir=tmp_path / "killed")
    _killed_run(cfg, day(0), tmp_path, {"GRAPHREC_PIPELINE_FAULT": "train_epoch_7"})
    r = run_night(cfg, day(0), progress=False)
    assert r.status == "published" and r.train["epochs"] == cfg.train.cold_epochs
    log = read_log(cfg.paths_resolved["runs"] / day(0) / "log.jsonl")
    assert [e["epoch"] for e in log if e["event"] == "train_resume"] == [7]
    assert {e["attempt"] for e in log} == {1, 2}
    # the same night without the crash gives the same weights
    ref = make_cfg("train.threads=1", workdir=tmp_path / "uninterrupted")
    assert run_night(ref, day(0), progress=False).status == "published"
    a = torch.load(ArtifactRegistry(cfg.paths_resolved["artifacts"]).production.path / "model.pt", weights_only=True)
    b = torch.load(ArtifactRegistry(ref.paths_resolved["artifacts"]).production.path / "model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    _intact(cfg)


@pytest.mark.parametrize("point", ["after_manifest", "after_move", "after_pointer"])
def test_kill_during_publish(make_cfg, tmp_path, point):
    cfg = make_cfg()
    assert run_night(cfg, day(0), progress=False).status == "published"
    _killed_run(cfg, day(1), tmp_path, {"GRAPHREC_ARTIFACTS_FAULT": point})
    reg = _intact(cfg)
    assert reg.production.version in (1, 2)  # the old or the new one, never a broken one
    r = run_night(cfg, day(1), progress=False)
    assert r.status == "published"
    reg = _intact(cfg)
    ours = reg.find(run_id=f"{cfg.name}/{day(1)}/0")
    assert len(ours) == 1 and reg.production.version == ours[0].version
    assert [v.version for v in reg.versions()] == [1, ours[0].version]
