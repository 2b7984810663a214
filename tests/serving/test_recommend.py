import json

import numpy as np
import polars as pl
import pytest
import torch
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.serving import (
    Recommender,
    UnknownUserError,
    export_embeddings,
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
    assert res.exit_code == 2 and "not an exported model" in " ".join(res.output.split())
