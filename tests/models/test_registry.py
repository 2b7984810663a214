"""Every registered model: its flags are true of it, and it trains a step on both tasks."""

import pytest
import torch

from graphrec.config import resolve_config, resolve_rec_config
from graphrec.models import MODELS, Backbone, UnknownModelError, build_model, get_spec
from graphrec.models.registry import has_batch_term
from graphrec.nn import HopSampling
from graphrec.tasks.link import LinkTask, build_rec_model
from graphrec.tasks.node import NodeTask, build_backbone
from graphrec.tasks.trainer import Trainer
from graphrec.utils.seed import seed_everything

from fixtures import planted, planted_partition

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = {"gesm": ["model.hidden=8", "model.heads=2", "model.K=3"], "gsm": ["model.hidden=16", "model.K=3"],
         "gat": ["model.hidden=4", "model.heads=2"], "appnp": ["model.K=3"]}  # fmt: skip


@pytest.mark.parametrize("name", sorted(MODELS))
def test_flags_are_true_of_the_model(name):
    spec = get_spec(name)
    model = build_model(name, 8, 8)
    assert isinstance(model, Backbone) and spec.cls is type(model)
    assert hasattr(model, "num_steps") == spec.supports_steps
    x = torch.randn(20, 8, requires_grad=True)
    ei = torch.randint(0, 20, (2, 60))
    model.train()
    out = model(x, ei)
    assert out.shape == (20, 8)
    out.sum().backward()
    learned = x.grad is not None and bool(x.grad.abs().sum() > 0)
    assert learned == spec.learns_inputs, f"{name}: learns_inputs={spec.learns_inputs}, gradient reached x: {learned}"
    if not spec.needs_graph:
        assert torch.equal(model.eval()(x, ei), model(x, ei[:, :0]))  # edges make no difference
    if spec.supports_steps:
        assert isinstance(build_model(name, 8, 8, hop_sampling={"enabled": True}), HopSampling)
    else:
        with pytest.raises(ValueError, match="no K propagation steps|has none"):
            build_model(name, 8, 8, hop_sampling={"enabled": True})
    assert has_batch_term(model) == (name == "xsimgcl")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_trains_on_both_tasks(name):
    seed_everything(0)
    data = planted_partition(n=120)
    cfg = resolve_config(name, None, ["train.epochs=2", *SMALL.get(name, [])])
    res = Trainer.from_config(cfg.train).fit(build_backbone(cfg, data.num_features, 3), NodeTask(data, cfg.train))
    assert res.epochs == 2 and 0 <= res.test_score <= 1
    rec = planted(num_users=30, num_items=20, per_user=6).split(seed=0)
    rcfg = resolve_rec_config(name, None, ["train.epochs=1", *SMALL.get(name, [])])
    if not get_spec(name).learns_inputs:
        with pytest.raises(ValueError, match="cannot learn its inputs"):
            build_rec_model(rcfg, rec)
        return
    res = Trainer.from_config(rcfg.train).fit(build_rec_model(rcfg, rec), LinkTask(rec, rcfg))
    assert res.epochs == 1 and 0 <= res.test["ndcg@10"] <= 1


def test_the_index_is_the_registry():
    from graphrec.models import INDEX
    from graphrec.models.registry import FLAGS

    assert set(INDEX) == set(MODELS)
    for name, info in INDEX.items():
        spec = MODELS[name]
        assert info.params is spec.params and spec.cls.__module__ == info.module
        assert all(getattr(info, f) == getattr(spec, f) for f in FLAGS), name
    with pytest.raises(UnknownModelError, match="unknown model 'nope'; registered: appnp"):
        get_spec("nope")


def test_an_index_entry_that_disagrees_with_its_class_is_refused(monkeypatch):
    from graphrec.models import registry

    class Wrong(Backbone):
        supports_steps = True  # the index says mf has no propagation steps and ignores the graph

    monkeypatch.delitem(registry.MODELS, "mf")
    with pytest.raises(ValueError, match=r"disagrees with Wrong on \['supports_steps', 'needs_graph'\]"):
        registry.register("mf", registry.INDEX["mf"].params)(Wrong)


@pytest.mark.parametrize("task", ["node", "rec"])
def test_every_model_ships_a_preset_for_every_task(task):
    from graphrec.config.presets import preset_path

    missing = [n for n in MODELS if not preset_path(task, n).is_file()]
    assert not missing, f"models without a {task} preset: {missing}"
