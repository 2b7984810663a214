"""Data-parallel training: batch sharding, exact gradient averaging, sharded evaluation, 2-rank runs under torchrun
(the same numbers as one process), and a rank killed mid-epoch (a clear failure; the restart resumes to the same
result as an uninterrupted run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data

from graphrec.config.node import TrainConfig
from graphrec.tasks import distributed as dp
from graphrec.tasks.node import NodeTask
from graphrec.utils import distributed as du

HERE = Path(__file__).resolve().parent.parent
REPO = HERE.parent


def torchrun(args: list[str], cwd: Path, env: dict | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc-per-node 2 ARGS`` (a free port per run), one thread per rank."""
    full = {**{k: v for k, v in os.environ.items() if k != "GRAPHREC_TRAIN_FAULT"}, "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *args],
                          cwd=cwd, env=full, capture_output=True, text=True, timeout=timeout)  # fmt: skip


# ------------------------------------------------------------------ one process
def test_shard_range_covers_every_row_once():
    for n in (0, 1, 5, 50, 51):
        for world in (1, 2, 3):
            ranges = [du.shard_range(n, r, world) for r in range(world)]
            rows = [i for a, b in ranges for i in range(a, b)]
            assert rows == list(range(n))
            assert max(b - a for a, b in ranges) - min(b - a for a, b in ranges) <= 1


def test_shard_batch_splits_tuples_and_dicts_and_refuses_the_rest():
    u, i = torch.arange(5), torch.arange(5) * 10
    first, second = dp.shard_batch((u, i), 0, 2), dp.shard_batch((u, i), 1, 2)
    assert torch.equal(torch.cat([first[0], second[0]]), u) and torch.equal(torch.cat([first[1], second[1]]), i)
    d = dp.shard_batch({"items": u.view(5, 1), "y": i}, 1, 2)
    assert d["items"].shape == (2, 1) and torch.equal(d["y"], i[3:])
    assert dp.shard_batch((u[:1],), 1, 2) is None  # an empty share
    with pytest.raises(TypeError, match="different first dimensions"):
        dp.shard_batch((u, i[:3]), 0, 2)
    with pytest.raises(TypeError, match="must define shard_batch"):
        dp.shard_batch(Data(x=u), 0, 2)


def test_node_task_shards_the_training_mask_and_leaves_the_graph_alone():
    n = 11
    mask = torch.zeros(n, dtype=torch.bool)
    mask[[0, 2, 3, 7, 9]] = True
    data = Data(x=torch.randn(n, 3), edge_index=torch.tensor([[0, 1], [1, 0]]), y=torch.zeros(n, dtype=torch.long),
                train_mask=mask, val_mask=~mask, test_mask=~mask)  # fmt: skip
    task = NodeTask(data, TrainConfig(normalize_features=False))
    batch = next(iter(task.batches(1)))
    shares = [task.shard_batch(batch, r, 2) for r in range(2)]
    assert torch.equal(shares[0].train_mask | shares[1].train_mask, mask)
    assert not bool((shares[0].train_mask & shares[1].train_mask).any())
    assert torch.equal(batch.train_mask, mask)  # the task's graph is untouched
    assert shares[0].x is batch.x  # features shared, not copied
    assert task.shard_batch(batch, 5, 6) is None  # 5 training nodes, 6 ranks: the last share is empty


def test_single_process_is_not_distributed_and_resume_checks_the_rank_count():
    assert du.world_size() == 1 and du.rank() == 0 and du.is_main() and not du.init_from_env()
    state = {"torch": torch.get_rng_state()}
    assert dp.pick_rank_state(None, state) is state
    with pytest.raises(ValueError, match="written by 2 rank"):
        dp.pick_rank_state([state, state], state)


def test_collective_errors_become_rank_failures():
    with pytest.raises(du.RankFailure, match="another rank stopped or hung"), du.collective("averaging"):
        raise RuntimeError("Connection reset by peer")


# ------------------------------------------------------------------ two ranks (gloo)
def test_two_ranks_average_gradients_exactly_and_match_one_process(tmp_path):
    worker = str(HERE / "dist_worker.py")
    res = torchrun([worker, str(tmp_path / "two")], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"two.rank{r}.json").read_text()) for r in range(2)]
    single = subprocess.run([sys.executable, worker, str(tmp_path / "one")], cwd=tmp_path, capture_output=True,
                            text=True, env={**os.environ, "WORLD_SIZE": "1", "PYTHONPATH": str(REPO)})  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]
    one = json.loads((tmp_path / "one.rank0.json").read_text())
    for r in ranks:
        assert r["world"] == 2
        for case, kind in (("sparse", "sparse_steps"), ("dense", "dense_steps")):
            assert r[case]["max_err"] < 1e-5 and r[case]["loss_err"] < 1e-5, (case, r[case])
            assert r[case]["unused_is_none"] and r[case][kind] == 1  # the table went the expected way
        assert r["sparse"]["n"] == 20 and r["dense"]["n"] == 5000
        full, shard = r["eval"]["full"], r["eval"]["shard"]
        assert shard.keys() == full.keys() and all(shard[k] == pytest.approx(full[k], abs=1e-9) for k in full)
    # both ranks hold the same weights, and the same as one process trained on the same global batches
    assert ranks[0]["trainer"]["weights"] == ranks[1]["trainer"]["weights"]
    assert ranks[0]["trainer"]["weights"] == pytest.approx(one["trainer"]["weights"], rel=1e-5, abs=1e-6)
    assert ranks[0]["trainer"]["loss"] == pytest.approx(one["trainer"]["loss"], rel=1e-5)


@pytest.fixture
def ml100k_data(shared_data):
    if not (shared_data / "movielens" / "ml-100k" / "u.data").exists():
        pytest.skip("MovieLens-100k is not in GRAPHREC_DATA")
    return shared_data


def _run_config(tmp_path: Path, name: str, body: dict) -> Path:
    import yaml

    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_gesm_on_cora_two_ranks_equal_one(shared_data, tmp_path):
    cfg = _run_config(tmp_path, "gesm", {"task": "node", "dataset": "Cora", "seed": 0, "model": {"name": "gesm"},
                                         "train": {"epochs": 8, "patience": 8}})  # fmt: skip
    two = torchrun(["-m", "graphrec", "train", str(cfg), "--json", "--quiet"], tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    lines = [json.loads(line) for line in two.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1  # rank 0 alone reports
    one = subprocess.run([sys.executable, "-m", "graphrec", "train", str(cfg), "--json", "--quiet", "--threads", "1"],
                         cwd=tmp_path, capture_output=True, text=True)  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    a, b = lines[0], json.loads(one.stdout.strip().splitlines()[-1])
    assert a["best_epoch"] == b["best_epoch"]
    assert a["test"]["accuracy"] == pytest.approx(b["test"]["accuracy"], abs=1e-6)
    assert a["valid"]["loss"] == pytest.approx(b["valid"]["loss"], rel=1e-4)


def test_killed_rank_fails_clearly_and_the_restart_resumes_to_the_same_result(ml100k_data, tmp_path):
    body = {"task": "rec", "dataset": "ml-100k", "seed": 0, "model": {"name": "lightgcn", "K": 2},
            "train": {"epochs": 3, "lr": 0.005, "batch_size": 8192, "embedding_dim": 32}}  # fmt: skip
    cfg = _run_config(tmp_path, "lgn", body)
    args = ["-m", "graphrec", "train", str(cfg), "--json", "--quiet"]
    whole = torchrun([*args, "--out", str(tmp_path / "whole")], tmp_path)
    assert whole.returncode == 0, whole.stderr[-3000:]

    crash = torchrun([*args, "--out", str(tmp_path / "crash")], tmp_path,
                     env={"GRAPHREC_TRAIN_FAULT": "rank1-epoch2-step3"})  # fmt: skip
    assert crash.returncode != 0
    assert "another rank" in crash.stderr and "rerun the same command to resume" in crash.stderr, crash.stderr[-3000:]
    ckpt = tmp_path / ".crash.ckpt.pt"
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == 1 and len(state["rng_ranks"]) == 2  # epoch 1 finished; each rank's RNG kept
    assert not (tmp_path / "crash").exists()  # nothing half-written

    again = torchrun([*args, "--out", str(tmp_path / "crash")], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    a = json.loads(whole.stdout.strip().splitlines()[-1])
    b = json.loads(again.stdout.strip().splitlines()[-1])
    assert a["test"] == b["test"] and a["valid"] == b["valid"] and a["best_epoch"] == b["best_epoch"]
    assert not ckpt.exists()
    w1 = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)
    w2 = torch.load(tmp_path / "crash" / "model.pt", weights_only=True)
    assert w1.keys() == w2.keys() and all(torch.equal(w1[k], w2[k]) for k in w1)
    # resuming on another number of ranks is refused with the count to use
    crash2 = torchrun([*args, "--out", str(tmp_path / "c2")], tmp_path, env={"GRAPHREC_TRAIN_FAULT": "rank0-epoch2-step1"})
    assert crash2.returncode != 0
    one = subprocess.run([sys.executable, "-m", "graphrec", "train", str(cfg), "--out", str(tmp_path / "c2"), "--quiet"],
                         cwd=tmp_path, capture_output=True, text=True)  # fmt: skip
    assert one.returncode == 2 and "--nproc-per-node 2" in one.stderr, one.stderr[-2000:]


def test_partitioned_neighbor_sampling_on_two_ranks(ml100k_data, tmp_path):
    body = {"task": "rec", "dataset": "ml-100k", "seed": 0, "model": {"name": "lightgcn", "K": 2},
            "train": {"epochs": 2, "sampler": "neighbor", "num_neighbors": [10, 5], "batch_size": 4096, "lr": 0.005}}
    cfg = _run_config(tmp_path, "sampled", body)
    res = torchrun(["-m", "graphrec", "train", str(cfg), "--json", "--quiet"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["epochs"] == 2 and 0.05 < out["test"]["recall@20"] < 1


def test_ray_train_launch_runs_the_same_training(shared_data, tmp_path):
    pytest.importorskip("ray.train.torch")
    cfg = _run_config(tmp_path, "gesm", {"task": "node", "dataset": "Cora", "seed": 0, "model": {"name": "gesm"},
                                         "train": {"epochs": 4, "patience": 4}})  # fmt: skip
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "OMP_NUM_THREADS": "1"}
    ray = subprocess.run([sys.executable, "-m", "graphrec", "train", str(cfg), "--ray-workers", "2", "--json", "--quiet",
                          "--out", str(tmp_path / "model")], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert ray.returncode == 0, ray.stderr[-3000:]
    a = json.loads(ray.stdout.strip().splitlines()[-1])
    one = subprocess.run([sys.executable, "-m", "graphrec", "train", str(cfg), "--json", "--quiet", "--threads", "1"],
                         cwd=tmp_path, capture_output=True, text=True)  # fmt: skip
    b = json.loads(one.stdout.strip().splitlines()[-1])
    assert a["world_size"] == 2 and a["best_epoch"] == b["best_epoch"]
    assert a["test"]["accuracy"] == pytest.approx(b["test"]["accuracy"], abs=1e-6)
    assert (tmp_path / "model" / "model.pt").is_file()  # rank 0 wrote the model


def test_ad_targeting_two_ranks_equal_one(ml100k_data, tmp_path):
    cfg = _run_config(tmp_path, "ads", {"task": "ads", "dataset": "ml-100k-ads", "seed": 0,
                                        "model": {"name": "lightgcn", "K": 1},
                                        "train": {"epochs": 2, "embedding_dim": 16}})  # fmt: skip
    two = torchrun(["-m", "graphrec", "train", str(cfg), "--json", "--quiet"], tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run([sys.executable, "-m", "graphrec", "train", str(cfg), "--json", "--quiet", "--threads", "1"],
                         cwd=tmp_path, capture_output=True, text=True)  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    a, b = (json.loads(r.stdout.strip().splitlines()[-1]) for r in (two, one))
    for part in ("valid", "test"):
        assert a[part]["auc"] == pytest.approx(b[part]["auc"], abs=1e-5)
        assert a[part]["log_loss"] == pytest.approx(b[part]["log_loss"], rel=1e-5)
