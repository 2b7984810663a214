import json

import numpy as np
import pytest
import torch

from graphrec.artifacts import ArtifactRegistry
from graphrec.config import ConfigError
from graphrec.pipeline import PipelineLockedError, load_pipeline_config, read_log, run_night
from graphrec.pipeline.state import pipeline_lock
from graphrec.store import GraphStore

from fixtures import day


def _night_versions(store: GraphStore, name: str, date: str) -> list[int]:
    return [m.version for m in store.log() if m.ingest is not None and m.ingest.message == f"{name} night {date}"]


def test_first_night_publishes_and_a_rerun_does_nothing(make_cfg):
    cfg = make_cfg()
    r = run_night(cfg, day(0), progress=False)
    assert r.status == "published" and r.exit_code == 0 and not r.skipped
    assert r.artifact_version == 1 and r.warm_from is None and r.train["mode"] == "cold"
    reg = ArtifactRegistry(cfg.paths_resolved["artifacts"])
    assert reg.production.version == 1 and reg.verify(1) == []
    files = {p.name for p in reg.get(1).path.iterdir()}
    assert {"model.pt", "metrics.json", "config.yaml", "MODEL_CARD.md", "index.faiss", "card.json"} <= files
    assert "cold start" in (reg.get(1).path / "MODEL_CARD.md").read_text()
    store = GraphStore(cfg.paths_resolved["store"])
    version = store.version

    again = run_night(cfg, day(0), progress=False)
    assert again.skipped and again.status == "published" and again.exit_code == 0
    assert GraphStore(cfg.paths_resolved["store"]).version == version  # nothing ingested twice
    assert [v.version for v in reg.versions()] == [1]
    events = [e["event"] for e in read_log(cfg.paths_resolved["runs"] / day(0) / "log.jsonl")]
    assert events[0] == "run_start" and events[-1] == "run_end" and events.count("stage_end") == 8


def test_force_reruns_the_date_without_ingesting_it_twice(make_cfg):
    cfg = make_cfg()
    run_night(cfg, day(0), progress=False)
    r = run_night(cfg, day(0), force=True, progress=False)
    assert r.status == "published" and r.artifact_version == 2 and not r.skipped
    store = GraphStore(cfg.paths_resolved["store"])
    assert len(_night_versions(store, cfg.name, day(0))) == 1


def test_second_night_warm_starts_from_production(make_cfg):
    cfg = make_cfg()
    run_night(cfg, day(0), progress=False)
    r = run_night(cfg, day(1), progress=False)
    assert r.status == "published" and r.warm_from == 1 and r.train["mode"] == "warm"
    assert r.train["epochs"] == cfg.warm.epochs
    state = json.loads((cfg.paths_resolved["runs"] / day(1) / "state.json").read_text())
    ws = state["stages"]["train"]["warm_start"]
    assert ws["users_kept"] > 0 and ws["users_new"] > 0  # the second day brings new users
    assert "embedding.weight" in ws["copied"]
    assert "production" in r.metrics and r.gate["passed"]


def test_cold_mode_ignores_production(make_cfg):
    cfg = make_cfg()
    run_night(cfg, day(0), progress=False)
    r = run_night(make_cfg("train.mode=cold"), day(1), progress=False)
    assert r.warm_from is None and r.train["epochs"] == cfg.train.cold_epochs


def test_regression_is_gated_and_production_stays(make_cfg, monkeypatch):
    cfg = make_cfg()
    run_night(cfg, day(0), progress=False)
    monkeypatch.setenv("GRAPHREC_PIPELINE_FAULT", "regress")
    r = run_night(cfg, day(1), progress=False)
    assert r.status == "gated" and r.exit_code == 3 and r.artifact_version is None
    assert any(c.get("gated") and not c["passed"] for c in r.gate["checks"])
    reg = ArtifactRegistry(cfg.paths_resolved["artifacts"])
    assert reg.production.version == 1 and [v.version for v in reg.versions()] == [1]
    monkeypatch.delenv("GRAPHREC_PIPELINE_FAULT")
    # gated is final for the date; the next night warm-starts from the production model
    assert run_night(cfg, day(1), progress=False).skipped
    assert run_night(cfg, day(2), progress=False).warm_from == 1


def test_a_second_concurrent_run_is_refused(make_cfg):
    cfg = make_cfg()
    with pipeline_lock(cfg.paths_resolved["runs"], "other"):
        with pytest.raises(PipelineLockedError, match="another pipeline run holds the lock"):
            run_night(cfg, day(0), progress=False)


def test_missing_logs_fail_with_a_clear_error_and_allow_empty_runs(make_cfg):
    cfg = make_cfg()
    r = run_night(cfg, "2026-12-25", progress=False)
    assert r.status == "failed" and r.exit_code == 1 and "no logs for 2026-12-25" in r.error
    state = json.loads((cfg.paths_resolved["runs"] / "2026-12-25" / "state.json").read_text())
    assert state["failed_stage"] == "ingest"
    run_night(cfg, day(0), progress=False)
    r = run_night(make_cfg("source.allow_empty=true"), day(3), progress=False)  # day 3's log unread: not day 1..3
    assert r.status in ("published", "gated")


def test_retention_keeps_the_newest_versions(make_cfg):
    cfg = make_cfg("publish.keep=2")
    for d in range(3):
        assert run_night(cfg, day(d), progress=False).status == "published"
    reg = ArtifactRegistry(cfg.paths_resolved["artifacts"])
    assert [v.version for v in reg.versions()] == [2, 3] and reg.production.version == 3


def test_rollback_then_next_night_starts_from_the_restored_version(make_cfg):
    cfg = make_cfg()
    for d in range(2):
        run_night(cfg, day(d), progress=False)
    reg = ArtifactRegistry(cfg.paths_resolved["artifacts"])
    before = {p.relative_to(reg.get(1).path): p.read_bytes() for p in reg.get(1).path.rglob("*") if p.is_file()}
    reg.rollback(reason="test")
    assert reg.production.version == 1 and reg.verify(1) == []
    after = {p.relative_to(reg.get(1).path): p.read_bytes() for p in reg.get(1).path.rglob("*") if p.is_file()}
    assert before == after
    assert run_night(cfg, day(2), progress=False).warm_from == 1


def test_held_out_and_canary_pairs_never_enter_training(make_cfg):
    cfg = make_cfg()
    for d in range(2):
        run_night(cfg, day(d), progress=False)
    for d in range(2):
        split = np.load(cfg.paths_resolved["runs"] / day(d) / "split.npz")
        keys = {name: set(map(tuple, split[name].T.tolist())) for name in ("train", "valid", "test", "canary")}
        assert keys["canary"] and keys["test"]
        assert not keys["train"] & keys["test"] and not keys["train"] & keys["valid"]
        assert not keys["train"] & keys["canary"]
    c0 = np.load(cfg.paths_resolved["runs"] / day(0) / "split.npz")["canary"]
    c1 = np.load(cfg.paths_resolved["runs"] / day(1) / "split.npz")["canary"]
    assert np.array_equal(c0, c1)  # frozen on the first night


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="train.epochz"):
        load_pipeline_config(None, ["train.epochz=3", "source.path=x/{date}.parquet"])
    assert load_pipeline_config(None, ["source.path=logs/today.parquet"]).source.path == "logs/today.parquet"  # one log
    with pytest.raises(ConfigError, match="source.path is required"):
        load_pipeline_config(None, ["source.kind=events"])
    bad = tmp_path / "p.yaml"
    bad.write_text("source: {kind: events, path: 'l/{date}'}\ngate: {metric: ndcg@50}\n")
    with pytest.raises(ConfigError, match="eval.ks"):
        load_pipeline_config(bad)


def test_warm_start_copies_rows_by_external_id(make_cfg):
    from graphrec.config.rec import resolve_rec_config
    from graphrec.pipeline.warm import published_ids, warm_start
    from graphrec.tasks.link import build_rec_model

    cfg = make_cfg()
    run_night(cfg, day(0), progress=False)
    folder = ArtifactRegistry(cfg.paths_resolved["artifacts"]).production.path
    old_users, old_items = published_ids(folder, "item")
    old = torch.load(folder / "model.pt", weights_only=True)["embedding.weight"]
    # a new id space: two unseen users first, the old users reversed; items unchanged
    users = ["new-a", "new-b", *reversed(old_users)]
    items = list(old_items)
    rcfg = resolve_rec_config("lightgcn", None, ["model.K=2"])

    class D:  # the two fields build_rec_model reads from a RecData
        num_users, num_items = len(users), len(items)

        class source:
            user_features = item_features = None

    model = build_rec_model(rcfg, D)
    fresh = model.embedding.weight.detach().clone()
    rep = warm_start(model, folder, users, items)
    w = model.embedding.weight.detach()
    assert rep.users_kept == len(old_users) and rep.users_new == 2 and rep.targets_new == 0
    assert torch.equal(w[:2], fresh[:2])  # new users keep their initialisation
    assert torch.equal(w[2], old[len(old_users) - 1])  # the last old user is now row 2
    assert torch.equal(w[len(users)], old[len(old_users)])  # first item


def test_fold_in_starts_new_nodes_at_their_neighbours_mean():
    from graphrec.pipeline.warm import _fold_in

    w = torch.arange(12, dtype=torch.float32).view(6, 2).clone()  # users 0-2, targets 3-5 (items 0-2)
    known_u, known_t = np.array([0, 1]), np.array([0, 1])  # user 2 and item 2 are new
    pairs = torch.tensor([[2, 2, 0, 1], [0, 1, 2, 2]])  # new user 2 -> items 0, 1; users 0, 1 -> new item 2
    before = w.clone()
    out = _fold_in(w, pairs, 3, 3, known_u, known_t)
    assert out == {"users": 1, "targets": 1}
    assert torch.equal(w[2], (before[3] + before[4]) / 2)
    assert torch.equal(w[5], (before[0] + before[1]) / 2)
    assert torch.equal(w[[0, 1, 3, 4]], before[[0, 1, 3, 4]])  # known rows untouched


def test_row_lr_scale_equals_a_larger_learning_rate_for_those_rows():
    from graphrec.tasks.optim import RowLRScale

    torch.manual_seed(0)
    init = torch.randn(3, 4)
    w = torch.nn.Parameter(init.clone())
    opt = torch.optim.Adam([w], lr=0.01)
    RowLRScale(w, torch.tensor([1, 2]), 3.0).attach(opt)
    a, b = torch.nn.Parameter(init[:1].clone()), torch.nn.Parameter(init[1:].clone())
    ref = torch.optim.Adam([{"params": [a], "lr": 0.01}, {"params": [b], "lr": 0.03}])
    for _ in range(6):
        c = torch.randn(3, 4)
        opt.zero_grad()
        ref.zero_grad()
        (w * c).pow(2).sum().backward()
        ((a * c[:1]).pow(2).sum() + (b * c[1:]).pow(2).sum()).backward()
        opt.step()
        ref.step()
    assert torch.allclose(w[:1], a, atol=1e-6) and torch.allclose(w[1:], b, atol=1e-6)
    assert not torch.allclose(w[1:], init[1:])


def test_an_earlier_night_after_later_ones_is_not_promoted_unless_allowed(make_cfg):
    cfg = make_cfg("gate.reference=none")  # this test is about dates, not about the canary bound
    for d in (1, 2):
        run_night(cfg, day(d), progress=False)
    reg = ArtifactRegistry(cfg.paths_resolved["artifacts"])
    prod = reg.production.version
    late = run_night(cfg, day(0), progress=False)
    assert late.status == "gated" and f"trained through {day(2)}, after this night ({day(0)})" in late.gate["reason"]
    assert reg.production.version == prod
    allowed = run_night(cfg, day(0), progress=False, allow_older=True)  # a night gated for its date runs again
    assert allowed.status == "published" and reg.production.version == allowed.artifact_version


def test_the_gate_bounds_slow_drift_against_the_best_published_canary(make_cfg):
    import json

    cfg = make_cfg("gate.tolerance=0.5", "gate.reference_tolerance=0.02")
    first = run_night(cfg, day(0), progress=False)
    ref_path = cfg.paths_resolved["runs"] / "reference.json"
    ref = json.loads(ref_path.read_text())
    assert ref["version"] == first.artifact_version and ref["value"] == first.metrics["candidate"]["canary"]["ndcg@10"]
    # raise the reference above anything reachable: the next candidate drifts below it
    ref["value"] = 0.99
    ref_path.write_text(json.dumps(ref))
    second = run_night(cfg, day(1), progress=False)
    assert second.status == "gated" and "below the best published model's 0.9900" in second.gate["reason"]
    check = [c for c in second.gate["checks"] if c["set"] == "canary vs reference"][0]
    assert check["threshold"] == pytest.approx(0.99 * 0.98) and not check["passed"]
    none = make_cfg("gate.tolerance=0.5", "gate.reference=none", workdir=cfg.paths_resolved["workdir"].parent / "w2")
    run_night(none, day(0), progress=False)
    assert run_night(none, day(1), progress=False).status == "published"
    assert not (none.paths_resolved["runs"] / "reference.json").exists()


def test_one_log_is_read_when_it_changes_and_each_night_trains_up_to_its_date(make_cfg, logs, tmp_path):
    import shutil

    import polars as pl

    one = tmp_path / "one-log"
    one.mkdir()
    for f in sorted(logs.glob("*.parquet"))[:3]:  # the log as it stands: days 0-2
        shutil.copy(f, one)
    cfg = make_cfg(f"source.path={one}", "gate.reference=none")
    first = run_night(cfg, day(1), progress=False)
    state = json.loads((cfg.paths_resolved["runs"] / day(1) / "state.json").read_text())
    assert first.status == "published" and state["stages"]["ingest"]["events"] == 900  # the whole log, once
    ev = pl.concat([pl.read_parquet(f) for f in sorted(one.glob("*.parquet"))])
    end = pl.lit(day(2)).str.to_date().cast(pl.Datetime("us", "UTC"))
    pairs = ev.filter(pl.col("timestamp") < end).select("user_id", "target_id").unique().height
    assert state["stages"]["build"]["pairs"] == pairs  # rows of day 2 are in the store, not in night 1's graph
    second = run_night(cfg, day(2), progress=False)
    assert second.status in ("published", "gated")
    ingest2 = json.loads((cfg.paths_resolved["runs"] / day(2) / "state.json").read_text())["stages"]["ingest"]
    assert ingest2["unchanged_log"] and ingest2["version"] == first.store_version
    shutil.copy(sorted(logs.glob("*.parquet"))[3], one)  # the log grows
    third = run_night(cfg, day(3), progress=False)
    ingest3 = json.loads((cfg.paths_resolved["runs"] / day(3) / "state.json").read_text())["stages"]["ingest"]
    assert third.store_version == first.store_version + 1 and ingest3["events"] == 300 and ingest3["duplicates"] == 900
