"""Acceptance: MovieLens-100k -> store -> HeteroData."""

import polars as pl
import pytest
import torch

from graphrec.store import GraphStore, build, ingest_movielens_100k, movielens_100k_sources


@pytest.fixture
def ml(tmp_path, ml100k):
    report = ingest_movielens_100k(tmp_path / "ml", ml100k, echo=False)
    return GraphStore(tmp_path / "ml"), report, ml100k


def test_movielens_100k_to_heterodata(ml):
    store, report, path = ml
    assert report.invariant_ok and report.quarantined == 0 and report.duplicates == 0
    assert report.accepted == 100_000 + 943 + 1682
    data = build(store, event_weights={"rating": "value"})
    assert data["user"].num_nodes == 943
    assert data["item"].num_nodes == 1682
    fwd, rev = data["user", "rating", "item"], data["item", "rev_rating", "user"]
    assert fwd.num_edges == rev.num_edges == 100_000
    assert torch.equal(fwd.edge_index.flip(0), rev.edge_index)
    # timestamps, ratings and ids round-trip to u.data exactly
    raw = pl.read_csv(path / "u.data", separator="\t", has_header=False,
                      new_columns=["user", "item", "rating", "ts"])
    got = pl.DataFrame({
        "user": store.to_external("user", fwd.edge_index[0].numpy()),
        "item": store.to_external("item", fwd.edge_index[1].numpy()),
        "rating": fwd.edge_value.numpy().astype("int64"),
        "ts": fwd.edge_time.numpy(),
    })
    assert got.sort(got.columns).equals(raw.sort(raw.columns))
    assert torch.equal(fwd.edge_weight, fwd.edge_value)


def test_movielens_id_maps_round_trip(ml):
    store, _, _ = ml
    for nt, n in (("user", 943), ("item", 1682)):
        m = store.id_map(nt)
        assert m.height == n and m["id"].to_list() == list(range(n))
        assert sorted(m["external_id"].to_list()) == list(range(1, n + 1))
        ids = store.to_internal(nt, m["external_id"].to_list())
        assert ids.tolist() == list(range(n))


def test_movielens_features(ml):
    store, _, _ = ml
    data = build(store)
    i = store.to_internal("item", [1])[0]
    assert data["item"].text["title"][i] == "Toy Story (1995)"
    names = data["item"].x_names
    assert data["item"].x[i, names.index("year")] == 1995
    assert data["item"].x[i, names.index("genre_animation")] == 1
    # u.item is Latin-1: accented titles survive
    titles = data["item"].text["title"]
    assert any("é" in t for t in titles)
    u = store.to_internal("user", [1])[0]
    assert data["user"].x[u, data["user"].x_names.index("age")] == 24
    assert data["user"].cat_vocab["gender"] == ["F", "M"]


def test_movielens_sources_missing_files(tmp_path):
    from graphrec.store import SourceError

    with pytest.raises(SourceError, match="not a MovieLens-100k folder"):
        movielens_100k_sources(tmp_path)
