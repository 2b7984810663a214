"""``--device cuda``: GESM on Cora and LightGCN on MovieLens-100k train on a GPU (GPU machines only)."""

import pytest
import torch

from graphrec.tasks.run import train

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device")]


def test_gesm_on_cora_trains_on_cuda(shared_data, tmp_path):
    run = train({"task": "node", "dataset": "Cora", "model": {"name": "gesm"}, "out": str(tmp_path / "gesm"),
                 "train": {"epochs": 60, "device": "cuda"}}, progress=None)  # fmt: skip
    assert next(run.model.parameters()).device.type == "cuda"
    assert run.fit.test["accuracy"] > 0.75 and (tmp_path / "gesm" / "model.pt").is_file()


def test_lightgcn_on_ml100k_trains_on_cuda_and_is_served(shared_data, tmp_path):
    from graphrec.serving import recommend

    run = train({"task": "rec", "dataset": "ml-100k", "model": {"name": "lightgcn"}, "out": str(tmp_path / "lgcn"),
                 "train": {"epochs": 20, "lr": 0.005, "device": "cuda"}}, progress=None)  # fmt: skip
    assert next(run.model.parameters()).device.type == "cuda"
    assert run.fit.test["ndcg@10"] > 0.15
    assert len(recommend(tmp_path / "lgcn", 196, 10)) == 10
