"""Every enumerated option of every config is implemented: each ``Literal`` choice runs.

:data:`RUNNERS` maps each ``Literal`` field of every config schema to a function that
exercises one choice end to end on tiny data; a new ``Literal`` without a runner fails
:func:`test_every_literal_field_has_a_runner`.
"""

import inspect
import typing

import polars as pl
import pytest
import torch
from pydantic import BaseModel
from store_helpers import events_frame

import graphrec.config as C
import graphrec.pipeline.config as P
import graphrec.store.schema as S
import graphrec.tasks.run as R
from graphrec.config import resolve_config, resolve_rec_config
from graphrec.models import MODELS, build_model
from graphrec.store import GraphStore, LogSchema, ingest
from graphrec.tasks.link import LinkTask, build_rec_model
from graphrec.tasks.node import NodeTask, build_backbone
from graphrec.tasks.trainer import Trainer
from graphrec.utils.seed import seed_everything

from fixtures import (
    SEQUENCE_KINDS,
    day,
    planted,
    planted_partition,
    write_logs,
    write_planetoid,
    write_public,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def literal_fields() -> dict[str, tuple]:
    """``{"Class.field": choices}`` for every Literal in the config schemas and model parameters."""
    out: dict[str, tuple] = {}
    seen: set[type] = set()

    def literals(ann) -> list[tuple]:
        if typing.get_origin(ann) is typing.Literal:
            return [typing.get_args(ann)]
        return [lit for a in typing.get_args(ann) for lit in literals(a)]

    def walk(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, f in model.model_fields.items():
            for lit in literals(f.annotation):
                key = f"{model.__module__.removeprefix('graphrec.')}.{model.__name__}.{name}"
                out[key] = tuple(sorted({*out.get(key, ()), *lit}))
            for a in (f.annotation, *typing.get_args(f.annotation)):
                if inspect.isclass(a) and issubclass(a, BaseModel):
                    walk(a)

    for model in (C.NodeConfig, C.RecConfig, P.PipelineConfig, S.LogSchema, R.RunSpec):
        walk(model)
    for spec in MODELS.values():
        walk(spec.params)
    return out


def _node(*overrides):
    data = planted_partition(n=150)
    cfg = resolve_config("gcn", None, ["train.epochs=2", *overrides])
    seed_everything(0)
    res = Trainer.from_config(cfg.train).fit(build_backbone(cfg, data.num_features, 3), NodeTask(data, cfg.train))
    assert res.epochs >= 1 and 0 <= res.test_score <= 1


def _rec(*overrides, model="lightgcn", protocol=None):
    inter = planted(num_users=30, num_items=20, per_user=6)
    if protocol:  # what load_interactions records for a named dataset (planted times are 0..10^6)
        inter.info["protocol"] = protocol
    inter.user_features = (torch.randn(30, 3), torch.randint(0, 4, (30, 1)))
    cfg = resolve_rec_config(model, None, ["train.epochs=2", "train.batch_size=64", *overrides])
    data = inter.split(cfg.data, 0)
    seed_everything(0)
    res = Trainer.from_config(cfg.train).fit(build_rec_model(cfg, data), LinkTask(data, cfg))
    assert res.epochs >= 1 and 0 <= res.test.get("ndcg@10", 0) <= 1


def _partition(choice: str) -> None:
    """``train.partition`` acts on several ranks (tests/tasks/test_distributed.py runs 2); here the partition a rank
    would take, and a one-process run that accepts the option."""
    from graphrec.sampling import local_graph, partition_graph

    if choice == "metis":
        pytest.importorskip("pymetis")
    data = planted(num_users=30, num_items=20, per_user=6).split(resolve_rec_config("lightgcn", None, []).data, 0)
    parts = partition_graph(data.graph, data.num_nodes, 2, method=choice)
    held = [local_graph(data.graph, data.num_nodes, parts, r, num_hops=2) for r in range(2)]
    assert sum(g.num_owned for g in held) == data.num_nodes
    _rec("train.sampler=neighbor", "train.num_neighbors=[3, 3]", f"train.partition={choice}")


def _ingest(tmp_path, schema: LogSchema, frame: pl.DataFrame, attributes=None):
    rep = ingest(tmp_path / "st", [("events", frame)], attributes=attributes, schema=schema, echo=False)
    assert rep.accepted >= 1, str(rep)
    return GraphStore(tmp_path / "st")


def _night(tmp_path, *overrides):
    from graphrec.pipeline import load_pipeline_config, run_night

    logs = write_logs(tmp_path / "logs", days=2)
    cfg = load_pipeline_config(None, ["source.kind=events", f"source.path={logs}/{{date}}.parquet",
                                      f"paths.workdir={tmp_path / 'w'}", "train.cold_epochs=2", "warm.epochs=1",
                                      "rec.model.K=1", "eval.canary.users=5", "eval.canary.min_interactions=2",
                                      *overrides])  # fmt: skip
    results = [run_night(cfg, day(d), progress=False) for d in (0, 1)]
    assert all(r.status in ("published", "gated") for r in results), [r.error for r in results]


def _source_kind(tmp_path, kind):
    import datetime as dt
    import os

    from graphrec.pipeline.config import SourceConfig
    from graphrec.pipeline.sources import night_sources

    date = dt.date(1998, 3, 25)
    if kind == "events":
        path = str(tmp_path / "{date}.parquet")
        events_frame(3, day="1998-03-25").write_parquet(tmp_path / "1998-03-25.parquet")
    elif kind in ("movielens-100k", "ml-100k-ads", "criteo", "avazu"):
        if not os.environ.get("GRAPHREC_DATA"):
            pytest.skip(f"{kind} needs GRAPHREC_DATA")
        path = None  # the data root's copy; a day that holds events of each
        date = {"criteo": dt.date(2000, 1, 1), "avazu": dt.date(2014, 10, 21)}.get(kind, date)
    elif kind in SEQUENCE_KINDS:  # users 1.., the k-th item at 2000-01-01 + k seconds
        path, date = str(write_public(tmp_path, kind, {1: [0, 1], 2: [1]})), dt.date(2000, 1, 1)
    else:  # a published split: the test pairs are the night of 2000-01-02
        path, date = str(write_public(tmp_path / kind, kind, {0: [0, 1], 1: [1]}, {0: [2], 1: [0]})), dt.date(2000, 1, 2)
    events, _ = night_sources(SourceConfig(kind=kind, path=path), date)
    assert events


def _run_task(tmp_path, task, monkeypatch):
    if task == "node":
        write_planetoid(tmp_path / "d" / "planetoid" / "Cora" / "raw", "cora")
        monkeypatch.setenv("GRAPHREC_DATA", str(tmp_path / "d"))
        res = R.train({"task": "node", "dataset": "Cora", "model": {"name": "gcn"}, "train": {"epochs": 2}}, progress=None)
    else:
        _ingest(tmp_path, LogSchema(), events_frame(200, users=9, items=30))
        res = R.train({"task": "rec", "dataset": str(tmp_path / "st"), "model": {"name": "mf"}, "train": {"epochs": 2}},
                      progress=None)  # fmt: skip
    assert res.fit.epochs == 2


RUNNERS = {
    "config.node.TrainConfig.select": lambda c, **_: _node(f"train.select={c}"),
    "config.node.TrainConfig.optimizer": lambda c, **_: _node(f"train.optimizer={c}"),
    "config.node.TrainConfig.nan_guard": lambda c, **_: _node(f"train.nan_guard={c}"),
    "config.rec.RecTrainConfig.nan_guard": lambda c, **_: _rec(f"train.nan_guard={c}"),
    "config.node.TrainConfig.weight_decay_on": lambda c, **_: _node(f"train.weight_decay_on={c}"),
    "config.node.TrainConfig.stop_on": lambda c, **_: _node(f"train.stop_on={c}"),
    "config.trainer.HopSamplingConfig.distribution": lambda c, **_: _rec("train.hop_sampling.enabled=true",
                                                          f"train.hop_sampling.distribution={c}"),
    "config.trainer.HopSamplingConfig.granularity": lambda c, **_: _rec("train.hop_sampling.enabled=true",
                                                         f"train.hop_sampling.granularity={c}"),
    "config.rec.RecTrainConfig.select": lambda c, **_: _rec(f"train.select={c}"),
    "config.rec.RecTrainConfig.optimizer": lambda c, **_: _rec(f"train.optimizer={c}", "train.weight_decay=0.01"),
    "config.rec.RecTrainConfig.weight_decay_on": lambda c, **_: _rec(f"train.weight_decay_on={c}", "train.weight_decay=0.01"),
    "config.rec.RecTrainConfig.loss": lambda c, **_: _rec(f"train.loss={c}"),
    "config.rec.RecTrainConfig.score": lambda c, **_: _rec(f"train.score={c}", "train.loss=margin", model="hgcf") if c == "lorentz_sqdist"
                                                      else _rec(f"train.score={c}", "train.loss=softmax", "train.temperature=0.2"),
    "config.rec.RecTrainConfig.negatives": lambda c, **_: _rec(f"train.negatives={c}"),
    "config.rec.RecTrainConfig.inputs": lambda c, **_: _rec(f"train.inputs={c}"),
    "config.rec.RecTrainConfig.init": lambda c, **_: _rec(f"train.init={c}"),
    "config.rec.RecTrainConfig.sampler": lambda c, **_: _rec(f"train.sampler={c}", "train.num_neighbors=[3, 3]"),
    "config.rec.RecTrainConfig.partition": lambda c, **_: _partition(c),
    "config.rec.RecDataConfig.split": lambda c, **_: _rec(f"data.split={c}", "train.select=last",
                                                          protocol={"split": "published", "test_start": 800_000}),
    "pipeline.config.SourceConfig.kind": lambda c, tmp_path, **_: _source_kind(tmp_path, c),
    "pipeline.config.TrainConfig.mode": lambda c, tmp_path, **_: _night(tmp_path, f"train.mode={c}"),
    "pipeline.config.GateConfig.sets": lambda c, tmp_path, **_: _night(tmp_path, f"gate.sets=[{c}]"),
    "pipeline.config.PublishConfig.index": lambda c, tmp_path, **_: _night(tmp_path, f"publish.index={c}"),
    "pipeline.config.GateConfig.reference": lambda c, tmp_path, **_: _night(tmp_path, f"gate.reference={c}"),
    "store.schema.LogSchema.format": lambda c, **_: LogSchema(format=c),
    "store.schema.LogSchema.id_type": lambda c, tmp_path, **_: _ingest(
        tmp_path, LogSchema(id_type=c), events_frame(3).with_columns(user_id=pl.Series([1, 2, 3]), target_id=pl.Series([4, 5, 6]))),
    "store.schema.LogSchema.timestamp_unit": lambda c, tmp_path, **_: _ingest(
        tmp_path, LogSchema(timestamp_unit=c),
        events_frame(1).with_columns(timestamp=pl.lit(1717236000 * {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[c]))),
    "store.schema.LogSchema.context": lambda c, tmp_path, **_: _ingest(
        tmp_path, LogSchema(context={"x": c}),
        events_frame(1).with_columns(x=pl.lit({"string": "a", "int": "3", "float": "0.5", "bool": "true"}[c]))),
    "store.schema.NodeAttributes.columns": lambda c, tmp_path, **_: _ingest(
        tmp_path, LogSchema.model_validate({"attributes": {"item": {"id_column": "item_id", "columns": {"a": c}}}}),
        events_frame(2), attributes={"item": [("items", pl.DataFrame({"item_id": ["t0"], "a": ["1"]}))]}),
    "store.schema.LogSchema.extra_columns": lambda c, tmp_path, **_: _ingest(
        tmp_path, LogSchema(extra_columns=c), events_frame(2) if c == "quarantine" else events_frame(2).with_columns(extra=pl.lit(1))),
    "tasks.run.RunSpec.task": lambda c, tmp_path, monkeypatch, **_: _run_task(tmp_path, c, monkeypatch),
    "models.params.SAGEParams.aggr": lambda c, **_: build_model("sage", 4, 2, aggr=c)(torch.randn(5, 4), torch.tensor([[0, 1], [1, 2]])),
}  # fmt: skip


def test_every_literal_field_has_a_runner():
    assert set(literal_fields()) == set(RUNNERS), "a config option without a runner here is not known to work"


CASES = [(key, choice) for key, choices in sorted(literal_fields().items()) for choice in choices]


@pytest.mark.parametrize("key, choice", CASES, ids=[f"{k}={c}" for k, c in CASES])
def test_every_choice_runs(key, choice, tmp_path, monkeypatch):
    RUNNERS[key](choice, tmp_path=tmp_path, monkeypatch=monkeypatch)
