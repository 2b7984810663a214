"""End to end: synthetic logs -> graph store -> training -> export -> recommend."""

import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.config.rec import RecDataConfig
from graphrec.data.interactions import Interactions
from graphrec.store import GraphStore, LogSchema, ingest, synth

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny graphs: one thread is fastest

runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("recstore")
    synth(root / "logs", events=8000, days=3, users=150, items=120, ads=30, seed=0)
    ingest(root / "store", [root / "logs" / "events"], attributes={"item": root / "logs" / "items.parquet"},
           schema=LogSchema.load(root / "logs" / "schema.yaml"), echo=False)  # fmt: skip
    return root / "store"


@pytest.mark.parametrize("target", ["item", "ad"])
def test_interactions_from_the_store_keep_external_ids(store, target):
    st = GraphStore(store)
    inter = Interactions.from_store(st, RecDataConfig(target=target))
    ev = st.events(external_ids=True).filter(pl.col("target_type") == target).collect()
    assert len(inter.user) == ev.height
    got = set(zip([inter.user_ids[u] for u in inter.user], [inter.item_ids[i] for i in inter.item], strict=True))
    assert got == set(zip(ev["user_id"].to_list(), ev["target_id"].to_list(), strict=True))
    assert inter.num_items == st.id_map(target).height and inter.target == target
    if target == "item":
        assert inter.item_features is not None  # price / category side table
    data = inter.split(RecDataConfig(target=target, split="time"), seed=0)
    assert data.summary()["split"] == "time" and data.train.size(1) > 0


def test_event_type_filter_and_bad_target(store):
    inter = Interactions.from_store(store, RecDataConfig(target="ad", event_types=["click"]))
    assert inter.info["event_types"] == ["click"]
    with pytest.raises(ValueError, match="unknown event type"):
        Interactions.from_store(store, RecDataConfig(target="ad", event_types=["buy"]))
    with pytest.raises(ValueError, match="unknown target type"):
        Interactions.from_store(store, RecDataConfig(target="shop"))


def test_bench_export_recommend_end_to_end(store, tmp_path):
    out, models = tmp_path / "r.json", tmp_path / "models"
    res = runner.invoke(app, [
        "bench", "rec", "--dataset", str(store), "--models", "mf,lightgcn+hop", "--seeds", "2", "--target", "ad",
        "--set", "train.epochs=3", "--set", "train.batch_size=1024", "--json", str(out), "--export", str(models),
        "--quiet", "--threads", "1",
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())
    assert {r["model"] for r in rows} == {"mf", "lightgcn+hop"}
    for key in ("dataset", "model", "metric", "k", "mean", "std", "seeds", "s_per_epoch", "values", "command"):
        assert key in rows[0]
    assert {(r["metric"], r["k"]) for r in rows} >= {("recall", 10), ("ndcg", 20), ("coverage", 10)}
    assert all(r["seeds"] == 2 and len(r["values"]) == 2 and r["s_per_epoch"] > 0 for r in rows)
    assert next(r for r in rows if r["model"] == "lightgcn+hop")["hop_sampling"] is True
    # recommend for a known user: k ads the user has not seen
    st = GraphStore(store)
    ev = st.events(external_ids=True).filter(pl.col("target_type") == "ad").collect()
    per_user = ev.group_by("user_id").agg(pl.col("target_id").n_unique().alias("n")).sort(["n", "user_id"])
    user = per_user["user_id"][0]  # the lightest user: plenty of unseen ads
    seen = set(ev.filter(pl.col("user_id") == user)["target_id"].to_list())
    res = runner.invoke(app, ["recommend", "--model", str(models / "lightgcn+hop"), "--user", str(user), "-k", "5", "--json"])
    assert res.exit_code == 0, res.output
    recs = json.loads(res.stdout)
    assert len(recs) == 5 and not {r["item"] for r in recs} & seen
    card = json.loads((models / "mf" / "card.json").read_text())
    assert card["target"] == "ad" and card["metrics"]["seed"] == 0 and card["config"]["model"]["name"] == "mf"


def test_bench_rec_fails_fast_on_bad_input(store):
    res = runner.invoke(app, ["bench", "rec", "--dataset", str(store), "--models", "mf", "--set", "train.lrr=1"])
    assert res.exit_code == 2 and "train.lrr" in res.output
    res = runner.invoke(app, ["bench", "rec", "--models", "mf+hop"])
    assert res.exit_code == 2 and "has no K propagation steps" in res.output
    res = runner.invoke(app, ["bench", "rec", "--dataset", "nowhere", "--models", "mf", "--quiet"])
    assert res.exit_code == 2 and "neither a known recommendation dataset" in res.output


def _ml100k() -> Path:
    root = os.environ.get("GRAPHREC_DATA")
    path = Path(root) / "movielens" / "ml-100k" if root else None
    if path is None or not (path / "u.data").is_file():
        pytest.skip("MovieLens-100k not found: set GRAPHREC_DATA")
    return path


def test_movielens_split_sizes_match_recbole():
    _ml100k()
    from graphrec.data import load_dataset

    inter = load_dataset("ml-100k")
    data = inter.split(seed=0)
    # RecBole: per user floor(0.1 n) validation and test pairs
    n = np.bincount(inter.user)
    assert data.split.valid.size(1) == data.split.test.size(1) == int(np.floor(0.1 * n).sum())
    assert data.train.size(1) + 2 * data.split.valid.size(1) == 100_000
    loo = inter.split(RecDataConfig(split="loo"), seed=0)
    assert loo.split.test.size(1) == loo.split.valid.size(1) == 943


@pytest.mark.slow
def test_movielens_mf_reaches_the_recbole_anchor(tmp_path):
    _ml100k()
    out = tmp_path / "r.json"
    res = runner.invoke(app, ["bench", "rec", "--dataset", "ml-100k", "--models", "mf", "--seeds", "1",
                              "--json", str(out), "--quiet", "--threads", "1"])  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = {(r["metric"], r["k"]): r["mean"] for r in json.loads(out.read_text())}
    assert rows[("recall", 10)] >= 0.23 and rows[("ndcg", 10)] >= 0.27


def test_bench_rec_has_a_popularity_floor_and_keeps_the_curve(store, tmp_path):
    out = tmp_path / "r.json"
    res = runner.invoke(app, ["bench", "rec", "--dataset", str(store), "--models", "pop,mf", "--seeds", "1",
                              "--set", "train.epochs=4", "--json", str(out), "--quiet"])  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = {(r["model"], r["metric"], r["k"]): r for r in json.loads(out.read_text())}
    pop = rows[("pop", "ndcg", 10)]
    assert pop["epochs_mean"] == 0 and pop["history"] == [] and 0 < pop["mean"] < 1
    mf = rows[("mf", "ndcg", 10)]
    assert [h["epoch"] for h in mf["history"]] == [1, 2, 3, 4] and "valid" in mf["history"][-1]


def test_recommendations_carry_the_titles_of_the_store(store, tmp_path):
    from graphrec.serving import Recommender

    res = runner.invoke(app, ["bench", "rec", "--dataset", str(store), "--models", "mf", "--seeds", "1",
                              "--set", "train.epochs=2", "--export", str(tmp_path / "ex"), "--quiet"])  # fmt: skip
    assert res.exit_code == 0, res.output
    rec = Recommender(tmp_path / "ex" / "mf")
    user = rec.folder.ids("user")[0]
    got = rec.recommend(user, 3)
    titles = dict(GraphStore(store).attributes("item").select("id", "title").iter_rows())
    ids = dict(zip(GraphStore(store).id_map("item")["external_id"], GraphStore(store).id_map("item")["id"], strict=True))
    assert [r.label for r in got] == [titles[ids[r.item]] for r in got] and all(got[0].label.split())
    res = runner.invoke(app, ["recommend", "--model", str(tmp_path / "ex" / "mf"), "--user", str(user), "-k", "3"])
    assert res.exit_code == 0 and "title" in res.stdout and got[0].label in res.stdout
