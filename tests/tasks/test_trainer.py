"""The one training loop: selection, early stopping, and exact resume for every option."""

import io
import math

import pytest
import torch

from graphrec.config import resolve_config, resolve_rec_config
from graphrec.tasks.link import LinkTask, build_rec_model
from graphrec.tasks.node import NodeTask, build_backbone
from graphrec.tasks.trainer import Stopper, Trainer
from graphrec.utils.seed import seed_everything

from fixtures import planted, planted_partition

pytestmark = pytest.mark.usefixtures("one_thread")


def _roundtrip(state: dict) -> dict:
    """A checkpoint as it comes back from disk (weights_only, as every graphrec load)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def _node(model_name: str, options: list[str]):
    data = planted_partition(n=200)
    cfg = resolve_config(model_name, None, options)

    def make():
        seed_everything(0)
        return build_backbone(cfg, data.num_features, 3), NodeTask(data, cfg.train)

    return cfg.train, make


def _link(model_name: str, options: list[str]):
    data = planted(num_users=60, num_items=40, per_user=10).split(seed=0)
    cfg = resolve_rec_config(model_name, None, ["train.batch_size=128", "train.lr=0.02", *options])

    def make():
        seed_everything(0)
        return build_rec_model(cfg, data), LinkTask(data, cfg)

    return cfg.train, make


def _fit(train_cfg, make, **options):
    model, task = make()
    res = Trainer.from_config(train_cfg, keep_state=True, **options).fit(model, task)
    return res


def _without_time(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]  # wall time differs run to run


def _same(a, b) -> None:
    assert (a.best_epoch, a.epochs, a.metric) == (b.best_epoch, b.epochs, b.metric)
    assert a.valid == b.valid and a.test == b.test
    assert _without_time(a.history) == _without_time(b.history)
    assert a.state_dict.keys() == b.state_dict.keys()
    for k in a.state_dict:
        assert torch.equal(a.state_dict[k], b.state_dict[k]), k


CASES = {
    # (task, model, options): every selection / early-stopping combination
    "node-best-early-stop": ("node", "gcn", ["train.epochs=40", "train.patience=3", "train.stop_on=loss"]),
    "node-best-metric": ("node", "gcn", ["train.epochs=25", "train.patience=100", "train.stop_on=acc"]),
    "node-best-acc-or-loss": ("node", "gcn", ["train.epochs=25", "train.patience=4"]),
    "node-last": ("node", "gcn", ["train.epochs=20", "train.patience=2", "train.select=last"]),
    "node-gesm-regulariser": ("node", "gesm", ["train.epochs=12", "train.lr=0.02", "model.hidden=8", "model.heads=2",
                                                 "model.K=3", "train.patience=100"]),
    "node-hop-sampling": ("node", "gsm", ["train.epochs=12", "model.hidden=16", "model.K=4",
                                          "train.hop_sampling.enabled=true", "train.hop_sampling.granularity=node"]),
    "link-best-early-stop": ("link", "lightgcn", ["train.epochs=30", "train.patience=2", "train.eval_every=2"]),
    "link-best": ("link", "mf", ["train.epochs=12", "train.patience=100", "train.eval_every=3"]),
    "link-last": ("link", "lightgcn", ["train.epochs=12", "train.patience=1", "train.select=last", "train.eval_every=2"]),
    "link-sampled-xsimgcl": ("link", "xsimgcl", ["train.epochs=6", "train.sampler=neighbor", "train.num_neighbors=[4, 4]",
                                                 "model.cl_weight=0.05"]),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_resume_from_any_epoch_equals_the_uninterrupted_run(case):
    kind, name, options = CASES[case]
    train_cfg, make = (_node if kind == "node" else _link)(name, options)
    saved: dict[int, dict] = {}
    full = _fit(train_cfg, make, checkpoint=lambda s: saved.__setitem__(s["epoch"], _roundtrip(s)))
    assert sorted(saved) == list(range(1, full.epochs + 1))
    if "early-stop" in case:
        assert full.epochs < train_cfg.epochs, "the case must stop early"
        assert saved[full.epochs]["stopped"]
    if train_cfg.select == "last":
        assert full.epochs == train_cfg.epochs and full.best_epoch == full.epochs  # select: last never stops early
    kills = sorted({1, 2, full.epochs // 2, full.epochs - 1, full.epochs} - {0})
    for epoch in kills:  # killed right after the checkpoint of ``epoch``
        resumed = _fit(train_cfg, make, resume=saved[epoch])
        _same(full, resumed)


def test_resume_through_a_checkpoint_file(tmp_path):
    train_cfg, make = _node("gcn", ["train.epochs=10", "train.patience=100"])
    path = tmp_path / "ckpt.pt"
    first = _fit(train_cfg, make, checkpoint=path, checkpoint_every=4)
    state = torch.load(path, weights_only=True)
    assert state["epoch"] == 10  # written every 4 epochs and after the last
    model, task = make()
    again = Trainer.from_config(train_cfg, keep_state=True, resume=path).fit(model, task)
    _same(first, again)


def test_a_foreign_checkpoint_is_refused_with_a_clear_message():
    train_cfg, make = _node("gcn", ["train.epochs=3"])
    model, task = make()
    with pytest.raises(ValueError, match="lacks .*stopper.*delete it"):
        Trainer.from_config(train_cfg, resume={"epoch": 1, "model": model.state_dict()}).fit(model, task)


def test_select_last_keeps_the_last_weights_and_best_keeps_the_selected():
    train_cfg, make = _link("lightgcn", ["train.epochs=8", "train.eval_every=2", "train.select=last"])
    last = _fit(train_cfg, make)
    assert last.best_epoch == last.epochs == 8
    assert last.valid["ndcg@10"] == last.history[-1]["valid"]  # the last evaluation, not re-run
    best_cfg, make_best = _link("lightgcn", ["train.epochs=8", "train.eval_every=2", "train.patience=100"])
    best = _fit(best_cfg, make_best)
    evaluated = {h["epoch"]: h["valid"] for h in best.history if "valid" in h}
    assert sorted(evaluated) == [2, 4, 6, 8]
    assert best.best_epoch == max(evaluated, key=lambda e: (evaluated[e], -e))
    assert best.valid["ndcg@10"] == evaluated[best.best_epoch]


def test_stopper_rules():
    s = Stopper("metric_or_loss", patience=2)
    assert s.update(0.5, 1.0)  # first evaluation: selected
    assert not s.update(0.6, 1.1)  # metric better, loss worse: patience resets, not selected
    assert s.bad == 0
    assert not s.update(0.4, 1.2) and not s.update(0.4, 1.3) and s.exhausted
    m = Stopper("metric", patience=1)
    assert m.update(0.5, None) and not m.update(0.5, None) and m.exhausted  # ties do not improve
    with pytest.raises(ValueError, match="needs a validation loss"):
        Stopper("loss", 3).update(0.5, None)


def test_select_best_needs_a_validation_part():
    data = planted(num_users=30, num_items=20, per_user=6).split(seed=0)
    from graphrec.data.splits import EdgeSplit

    data.split = EdgeSplit(data.split.train, data.split.train[:, :0], data.split.test, "custom")
    cfg = resolve_rec_config("mf", None, ["train.epochs=2"])
    seed_everything(0)
    with pytest.raises(ValueError, match="validation part is empty"):
        Trainer.from_config(cfg.train).fit(build_rec_model(cfg, data), LinkTask(data, cfg))
    last = resolve_rec_config("mf", None, ["train.epochs=2", "train.select=last"])
    res = Trainer.from_config(last.train).fit(build_rec_model(last, data), LinkTask(data, last))
    assert res.valid == {} and res.test["recall@10"] >= 0 and res.epochs == 2


def test_progress_callback_and_result_units():
    train_cfg, make = _node("gcn", ["train.epochs=5"])
    seen = []
    res = _fit(train_cfg, make, progress=lambda e, n, info: seen.append((e, n, dict(info))))
    assert [e for e, _, _ in seen] == [1, 2, 3, 4, 5] and all(n == 5 for _, n, _ in seen)
    assert {"epoch", "loss", "valid", "valid_loss"} <= set(seen[-1][2])
    assert 0 < res.s_per_epoch < res.seconds and math.isfinite(res.history[-1]["loss"])
    assert res.test_score == res.test["accuracy"] and res.valid_score == res.valid["accuracy"]


def test_cuda_is_refused_where_torch_sees_none():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="sees no CUDA device"):
        Trainer(device="cuda")


def test_time_budget_stops_after_the_running_epoch_and_evaluates_it():
    train_cfg, make = _link("lightgcn", ["train.epochs=50", "train.eval_every=10", "train.patience=100"])
    res = _fit(train_cfg, make, time_budget=1e-9)  # over budget from the first epoch on
    assert res.epochs == 1 and res.best_epoch == 1 and "valid" in res.history[0]
    assert res.stopped_by == "time_budget"
    full = _fit(*_link("mf", ["train.epochs=2"]))
    assert full.stopped_by is None and full.epochs == 2
    with pytest.raises(ValueError, match="time_budget"):
        Trainer(time_budget=0)


class _Task:
    """A one-weight regression whose loss turns NaN at a chosen step (for the guard)."""

    metric, stop_rule = "score", "metric"

    def __init__(self, bad_step: int, where: str):
        self.bad_step, self.where, self.calls = bad_step, where, 0

    def to(self, device):
        pass

    def batches(self, epoch):
        return range(4)

    def step_loss(self, model, batch):
        self.calls += 1
        x = torch.tensor(math.nan if self.calls == self.bad_step and self.where == "input" else 1.0)
        out = model(x.view(1, 1)).sum()
        if self.calls == self.bad_step and self.where == "grad":
            out = out + (model.weight - model.weight.detach()).abs().sqrt().sum()  # adds 0; its gradient is not finite
        return (out - 2) ** 2, 1

    def has_part(self, part):
        return False

    def evaluate(self, model, part):
        return {"score": 0.0}


@pytest.mark.parametrize("where, guard", [("input", "loss"), ("grad", "grads")])
def test_nan_guard_names_the_step_and_parameter_and_keeps_the_last_finite_weights(where, guard):
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1)
    before = {}
    task = _Task(bad_step=7, where=where)  # epoch 2, step 3

    def keep(epoch, total, info):
        before.update({k: v.clone() for k, v in model.state_dict().items()})

    what = "the loss is nan" if where == "input" else "a gradient is not finite"
    with pytest.raises(FloatingPointError, match=rf"epoch 2, step 3: {what}.*weight \(1 of 1 gradient entries\)"):
        Trainer(epochs=3, select="last", nan_guard=guard, lr=0.01, progress=keep).fit(model, task)
    if where == "grad":  # the optimizer never stepped on the NaN gradient
        assert torch.isfinite(model.weight).all()
    # with the guard off the NaN reaches the weights
    model = torch.nn.Linear(1, 1)
    Trainer(epochs=2, select="last", nan_guard="none", lr=0.01).fit(model, _Task(bad_step=3, where="grad"))
    assert not torch.isfinite(model.weight).all()


def test_learnable_curvature_gets_its_own_group_without_weight_decay():
    from graphrec.hyperbolic import HyperbolicSpace
    from graphrec.tasks.optim import build_optimizer

    model = torch.nn.ModuleDict({"lin": torch.nn.Linear(2, 2), "space": HyperbolicSpace("lorentz", 1.0, learnable=True)})
    opt = build_optimizer(model, "adam", lr=0.01, weight_decay=0.1, curvature_lr=0.05)
    curv = [g for g in opt.param_groups if g.get("name") == "curvature"]
    assert len(curv) == 1 and curv[0]["lr"] == 0.05 and curv[0]["weight_decay"] == 0.0
    assert curv[0]["params"] == [model["space"].curvature_raw]
    assert sum(len(g["params"]) for g in opt.param_groups) == 3  # weight, bias, curvature: each once
