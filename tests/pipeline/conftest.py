from pathlib import Path

import pytest

from graphrec.pipeline import load_pipeline_config

from fixtures import write_logs

FAST = [
    "train.cold_epochs=15",
    "warm.epochs=5",
    "rec.train.eval_every=2",
    "rec.train.batch_size=256",
    "rec.train.lr=0.05",
    "rec.model.K=2",
    "eval.canary.users=10",
    "eval.canary.min_interactions=4",
    "gate.min_users=3",
    "gate.tolerance=0.3",
]


@pytest.fixture
def logs(tmp_path):
    return write_logs(tmp_path / "logs")


@pytest.fixture
def make_cfg(tmp_path, logs):
    def make(*overrides, workdir: Path | None = None):
        wd = workdir or tmp_path / "work"
        return load_pipeline_config(None, [
            "name=test-nightly", "source.kind=events", f"source.path={logs}/{{date}}.parquet",
            f"paths.workdir={wd}", *FAST, *overrides,
        ])  # fmt: skip

    return make
