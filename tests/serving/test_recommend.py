import json

import numpy as np
import polars as pl
import pytest
import torch
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.nn.score import CosineScore, NegSquaredEuclideanScore, Scorer, register_scorer
from graphrec.serving import (
    Recommender,
    UnknownUserError,
    export_embeddings,
    export_model,
    load_recommender,
    recommend,
)

runner = CliRunner()


@pytest.fixture
def exported(tmp_path):
    rng = np.random.default_rng(0)
    U, V = rng.normal(size=(30, 8)), rng.normal(size=(120, 8))
    su, si = rng.integers(0, 30, 600), rng.integers(0, 120, 600)
    path = export_embeddings(tmp_path / "m", U, V, user_ids=[100 + u for u in range(30)],
                             item_ids=[f"i{i}" for i in range(120)], seen=(su, si),
                             card={"model": "test"}, state_dict={"w": torch.ones(3)})  # fmt: skip
    return path, U, V, su, si


def _brute(U, V, su, si, u, k):
    s = U[u] @ V.T
    s[si[su == u]] = -np.inf
    return [f"i{i}" for i in np.argsort(-s, kind="stable")[:k]]


def test_recommendations_are_the_best_unseen_items(exported):
    path, U, V, su, si = exported
    rec = Recommender(path)
    for u in range(30):
        got = rec.recommend(100 + u, 10)
        assert len(got) == 10 and [r.rank for r in got] == list(range(1, 11))
        assert [r.item for r in got] == _brute(U, V, su, si, u, 10)
        assert not {r.item for r in got} & set(rec.seen(100 + u))
        assert all(r.source == "model" for r in got)
    with_seen = rec.recommend(100, 10, exclude_seen=False)
    s = U[0] @ V.T
    assert [r.item for r in with_seen] == [f"i{i}" for i in np.argsort(-s, kind="stable")[:10]]
    assert rec.recommend("105", 3) == rec.recommend(105, 3)  # CLI strings work for int ids


def test_unknown_user_error_and_popular_fallback(exported):
    path, *_ , si = exported
    with pytest.raises(UnknownUserError, match="unknown user 999: not among the 30 users"):
        recommend(path, 999, 5)
    with pytest.raises(UnknownUserError, match="unknown user 'abc'"):
        recommend(path, "abc", 5)
    pop = recommend(path, 999, 5, fallback="popular")
    counts = np.bincount(si, minlength=120)
    assert [r.item for r in pop] == [f"i{i}" for i in np.lexsort((np.arange(120), -counts))[:5]]
    assert all(r.source == "popular" for r in pop) and pop[0].score == counts.max()


def test_catalogue_smaller_than_k_and_warm_cache(exported):
    path, *_ = exported
    rec = load_recommender(path)
    assert load_recommender(path) is rec
    n_unseen = rec.num_items - len(rec.seen(100))
    assert len(rec.recommend(100, 500)) == n_unseen


def test_export_layout_and_atomic_overwrite(exported, tmp_path):
    path, U, V, *_ = exported
    card = json.loads((path / "card.json").read_text())
    assert card["format"] == "graphrec-recommender/2" and card["target"] == "item" and card["model"] == "test"
    users = pl.read_parquet(path / "embeddings" / "user.parquet")
    assert users.columns == ["external_id", "id", "embedding"] and users["external_id"][0] == 100
    assert np.allclose(np.stack(users["embedding"].to_list()), U, atol=1e-6)
    assert torch.equal(torch.load(path / "model.pt", weights_only=True)["w"], torch.ones(3))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_embeddings(path, U, V)
    export_embeddings(path, U[:5], V, overwrite=True)
    assert Recommender(path).num_users == 5
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left
    with pytest.raises(ValueError, match="not unique"):
        export_embeddings(tmp_path / "x", U, V, user_ids=[1] * 30)


def test_hnsw_index_agrees_with_exact_search(tmp_path):
    rng = np.random.default_rng(1)
    U, V = rng.normal(size=(20, 16)), rng.normal(size=(2000, 16))
    su, si = np.repeat(np.arange(20), 30), rng.integers(0, 2000, 600)
    flat = Recommender(export_embeddings(tmp_path / "f", U, V, seen=(su, si)))
    hnsw = Recommender(export_embeddings(tmp_path / "h", U, V, seen=(su, si), index="hnsw"))
    overlap = np.mean([len({r.item for r in flat.recommend(u, 10)} & {r.item for r in hnsw.recommend(u, 10)}) / 10
                       for u in range(20)])  # fmt: skip
    assert overlap > 0.9
    assert all(not {r.item for r in hnsw.recommend(u, 10)} & set(hnsw.seen(u)) for u in range(20))


def test_recommend_cli(exported):
    path, U, V, su, si = exported
    res = runner.invoke(app, ["recommend", "--model", str(path), "--user", "103", "-k", "4", "--json"])
    assert res.exit_code == 0, res.output
    assert [r["item"] for r in json.loads(res.stdout)] == _brute(U, V, su, si, 3, 4)
    res = runner.invoke(app, ["recommend", "--model", str(path), "--user", "77"])
    assert res.exit_code == 1 and "unknown user '77'" in res.output
    res = runner.invoke(app, ["recommend", "--model", str(path), "--user", "77", "--fallback", "popular", "-k", "3"])
    assert res.exit_code == 0 and "popular" in res.output
    res = runner.invoke(app, ["recommend", "--model", str(path.parent / "nope"), "--user", "1"])
    assert res.exit_code == 2 and "nope does not exist" in " ".join(res.output.split())
    (path.parent / "empty").mkdir()
    res = runner.invoke(app, ["recommend", "--model", str(path.parent / "empty"), "--user", "1"])
    assert res.exit_code == 2 and "not an exported model" in " ".join(res.output.split())


@register_scorer
class _MaxProductScore(Scorer):
    """A scorer without an inner-product form: served by an exact scan."""

    name = "test_max_product"

    def score(self, u, i):
        return (u * i).max(-1).values


@pytest.mark.parametrize("scorer", [NegSquaredEuclideanScore(), CosineScore(), _MaxProductScore()],
                         ids=lambda s: s.name)  # fmt: skip
def test_distance_scorers_are_served_exactly_as_brute_force(tmp_path, scorer):
    rng = np.random.default_rng(2)
    U, V = rng.normal(size=(25, 6)).astype(np.float32), rng.normal(size=(300, 6)).astype(np.float32)
    su, si = rng.integers(0, 25, 400), rng.integers(0, 300, 400)
    path = export_embeddings(tmp_path / scorer.name, U, V, seen=(su, si), scorer=scorer,
                             state_dict={"scorer.unused": torch.zeros(1)})  # fmt: skip
    card = json.loads((path / "card.json").read_text())
    assert card["scorer"]["name"] == scorer.name
    scan = scorer.name == "test_max_product"
    assert card["index"] == ("scan" if scan else "flat") and (path / "index.faiss").exists() != scan
    rec = Recommender(path)
    scores = scorer.score_all(torch.from_numpy(U).double(), torch.from_numpy(V).double()).numpy()
    for u in range(25):
        s = scores[u].copy()
        s[si[su == u]] = -np.inf
        want = np.argsort(-s, kind="stable")[:10]
        got = [r.item for r in rec.recommend(u, 10)]
        assert got == want.tolist(), (scorer.name, u)


def test_bipartite_model_export_records_its_scorer(tmp_path):
    from graphrec.models import BipartiteRecommender, build_model

    from fixtures import planted

    data = planted(num_users=40, num_items=30, per_user=8).split(seed=0)
    model = BipartiteRecommender(data.num_users, data.num_items, build_model("lightgcn", 8, 8, K=2), 8,
                                 scorer=NegSquaredEuclideanScore())  # fmt: skip
    path = export_model(model, data, tmp_path / "m", config={"model": {"name": "lightgcn"}})
    rec = Recommender(path)
    users, items = model.embeddings(data.graph)
    s = model.scorer.score_all(users, items)[3].numpy().astype(np.float64)
    s[np.asarray(data.source.item[data.source.user == 3])] = -np.inf
    want = [data.source.item_ids[i] for i in np.argsort(-s, kind="stable")[:5]]
    assert [r.item for r in rec.recommend(data.source.user_ids[3], 5)] == want


@pytest.mark.parametrize("index", ["flat", "hnsw", "scan"])
def test_exactly_min_k_unseen_items_whatever_the_history(tmp_path, index):
    rng = np.random.default_rng(3)
    n_items = 3000
    U, V = rng.normal(size=(4, 8)).astype(np.float32), rng.normal(size=(n_items, 8)).astype(np.float32)
    histories = {0: 0, 1: n_items - 7, 2: n_items - 25, 3: n_items}  # user -> items seen
    su = np.concatenate([np.full(n, u) for u, n in histories.items()])
    si = np.concatenate([rng.permutation(n_items)[:n] for n in histories.values()])
    scorer = _MaxProductScore() if index == "scan" else None
    path = export_embeddings(tmp_path / index, U, V, seen=(su, si), scorer=scorer,
                             index="flat" if index == "scan" else index)  # fmt: skip
    rec = Recommender(path)
    for u, n_seen in histories.items():
        got = rec.recommend(u, 20)
        assert len(got) == min(20, n_items - n_seen), (index, u)
        assert not {r.item for r in got} & set(rec.seen(u))
        assert [r.rank for r in got] == list(range(1, len(got) + 1))
        assert all(a.score >= b.score for a, b in zip(got, got[1:], strict=False))
    res = runner.invoke(app, ["recommend", "--model", str(path), "--user", "3"])
    assert res.exit_code == 1 and "has seen every one of the 3000 items" in res.output
