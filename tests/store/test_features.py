"""Feature tables: versioned per-node vectors written into the store and attached by build."""

import json

import numpy as np
import polars as pl
import pytest
import torch
from store_helpers import events_frame

from graphrec.store import GraphStore, LogSchema, SchemaError, build, ingest
from graphrec.store.cli import store_app
from graphrec.store.schema import NodeAttributes
from graphrec.store.store import collect_garbage

ENCODER = {"objective": "sasrec", "params": {"dim": 4}}


def _store(tmp_path, *, users: int = 7, n: int = 60, items: int = 5, attributes: bool = False) -> GraphStore:
    schema = LogSchema(attributes={"user": NodeAttributes(id_column="user_id", columns={"age": "numeric"})}
                       if attributes else {})  # fmt: skip
    side = {"user": ("users", pl.DataFrame({"user_id": ["u0", "u1"], "age": [20.0, 40.0]}))} if attributes else None
    ingest(tmp_path / "st", [("d1", events_frame(n, users=users, items=items))], schema=schema, attributes=side, echo=False)
    return GraphStore(tmp_path / "st")


def _vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def test_round_trip_commits_a_new_version_and_leaves_the_old_one_without_features(tmp_path):
    store = _store(tmp_path)
    v0 = store.version
    size = store.manifest().id_maps["user"].size
    ids = np.arange(size)[::-1][: size - 2].copy()  # unsorted, two users left out
    x = _vectors(ids.size, 4)
    m = store.write_features("user", "sasrec", ids, x, data_version=v0, encoder=ENCODER, meta={"ndcg@10": 0.3})
    assert m.version == store.version == v0 + 1 and m.parent == v0
    assert store.features(version=v0) == {} and list(store.features()) == ["user/sasrec"]
    assert store.features("item") == {}
    entry = store.features()["user/sasrec"]
    assert (entry.dim, entry.rows, entry.data_version, entry.encoder, entry.meta) == (4, ids.size, v0, ENCODER,
                                                                                     {"ndcg@10": 0.3})  # fmt: skip
    got_ids, got_x = store.read_features("user/sasrec")
    order = np.argsort(ids)
    assert got_ids.dtype == np.int64 and got_x.dtype == np.float32
    np.testing.assert_array_equal(got_ids, ids[order])
    np.testing.assert_array_equal(got_x, x[order])  # bit-identical float32
    with pytest.raises(KeyError, match=r"no feature table 'user/other'.*user/sasrec"):
        store.read_features("user/other")
    with pytest.raises(KeyError, match="it has none"):
        store.read_features("user/sasrec", version=v0)
    # the events and id maps of the new version are the old ones
    assert store.manifest().partitions == store.manifest(v0).partitions
    assert store.manifest().id_maps == store.manifest(v0).id_maps
    # writing the same key again replaces the table in a further version
    store.write_features("user", "sasrec", np.array([0]), np.ones((1, 2)), data_version=v0, encoder=ENCODER)
    assert store.features()["user/sasrec"].dim == 2 and store.features(version=v0 + 1)["user/sasrec"].dim == 4


def test_bad_tables_are_refused_with_the_table_named(tmp_path):
    store = _store(tmp_path)
    v, size = store.version, store.manifest().id_maps["user"].size
    ok = dict(data_version=v, encoder=ENCODER)
    cases = [
        (("user", "t", np.array([0, size]), np.zeros((2, 3))), ValueError, r"'user/t'.*outside \[0, 7\).*e\.g\. 7"),
        (("user", "t", np.array([-1]), np.zeros((1, 3))), ValueError, "outside"),
        (("user", "t", np.array([0, 1]), np.array([[0.0], [np.nan]])), ValueError, r"'user/t'.*NaN.*id 1"),
        (("user", "t", np.array([0]), np.array([[1e39]])), ValueError, "infinite"),  # beyond float32
        (("user", "t", np.array([0, 1]), np.zeros((3, 2))), ValueError, r"'user/t'.*shape \[n, dim\]"),
        (("user", "t", np.array([0, 1]), np.zeros(2)), ValueError, "shape"),
        (("user", "t", np.array([[0, 1]]), np.zeros((2, 2))), ValueError, "1-D integer"),
        (("user", "t", np.array([0.0, 1.0]), np.zeros((2, 2))), ValueError, "1-D integer"),
        (("user", "t", np.array([1, 1]), np.zeros((2, 2))), ValueError, r"unique.*id 1"),
        (("user", "a/b", np.array([0]), np.zeros((1, 2))), ValueError, "name must match"),
        (("shop", "t", np.array([0]), np.zeros((1, 2))), SchemaError, r"'shop/t'.*not a node type.*'user'"),
    ]
    for args, exc, match in cases:
        with pytest.raises(exc, match=match):
            store.write_features(*args, **ok)
    with pytest.raises(ValueError, match="encoder must be a JSON-ready"):
        store.write_features("user", "t", np.array([0]), np.zeros((1, 2)), data_version=v, encoder={"f": object()})
    assert store.version == v and not list((store.root / "features").rglob("*.parquet"))  # nothing committed


def test_verify_checks_feature_files_and_gc_keeps_them(tmp_path):
    store = _store(tmp_path)
    store.write_features("user", "enc", np.arange(3), _vectors(3, 5), data_version=store.version, encoder=ENCODER)
    assert store.verify() == []
    path = store.path(store.features()["user/enc"].file)
    orphan = path.parent / "enc-v000099-deadbeef.parquet"  # left by a writer that crashed before its commit
    orphan.write_bytes(b"x")
    with store.lock():
        removed = collect_garbage(store)
    assert removed == [orphan.relative_to(store.root).as_posix()] and path.is_file()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert store.verify() == [f"{store.features()['user/enc'].file.path}: checksum mismatch"]
    path.write_bytes(bytes(data[:-1]))
    assert "bytes, manifest says" in store.verify()[0]


def test_ingest_carries_the_table_and_build_gives_new_users_zeros(tmp_path):
    store = _store(tmp_path, attributes=True)
    v1, n1 = store.version, store.manifest().id_maps["user"].size
    x = _vectors(n1, 3, seed=1)
    store.write_features("user", "enc", np.arange(n1), x, data_version=v1, encoder=ENCODER)
    entry = store.features()["user/enc"]
    ingest(store, [("d2", events_frame(30, day="2024-01-02", users=12, offset=500))], echo=False)
    n2 = store.manifest().id_maps["user"].size
    assert n2 > n1 and store.features() == {"user/enc": entry}
    assert store.verify() == []

    data = build(store, feature_tables=["user/enc"])
    u = data["user"]
    assert u.x.shape == (n2, 1 + 3) and u.x.dtype == torch.float32
    assert u.x_names == ["age", "enc[0]", "enc[1]", "enc[2]"]
    np.testing.assert_array_equal(u.x[:n1, 1:].numpy(), x)
    assert (u.x[n1:, 1:] == 0).all() and u.x[0, 0] == 20.0  # the side table's column stays first
    np.testing.assert_array_equal(u.x_missing.numpy(), np.arange(n2) >= n1)
    assert data.store_info["feature_tables"]["user/enc"] == {
        "node_type": "user", "columns": [1, 4], "rows": n1, "data_version": v1, "objective": "sasrec"}
    assert not hasattr(data["item"], "x_missing")
    # without side features, the table alone; "all" attaches every table
    data = build(store, features=False, feature_tables="all")
    assert data["user"].x.shape == (n2, 3) and data["user"].x_names == ["enc[0]", "enc[1]", "enc[2]"]
    assert not hasattr(build(store)["user"], "x_missing")
    with pytest.raises(ValueError, match=r"no feature table 'user/nope'.*\['user/enc'\]"):
        build(store, feature_tables=["user/nope"])


def test_store_info_lists_feature_tables(tmp_path):
    from typer.testing import CliRunner

    store = _store(tmp_path)
    store.write_features("user", "clue", np.arange(4), _vectors(4, 6), data_version=store.version,
                         encoder={"objective": "clue"})  # fmt: skip
    runner = CliRunner()
    info = json.loads(runner.invoke(store_app, ["info", "--store", str(store.root), "--json"]).output)
    assert info["features"] == {"user/clue": {"dim": 6, "rows": 4, "objective": "clue", "data_version": 1,
                                              "version": 2}}  # fmt: skip
    r = runner.invoke(store_app, ["info", "--store", str(store.root)])
    assert r.exit_code == 0 and "user/clue" in r.output and "encoder clue" in r.output
    r = runner.invoke(store_app, ["log", "--store", str(store.root)])
    assert "features user/clue" in r.output


def test_rec_config_features_reach_the_model_inputs(tmp_path, one_thread):
    from graphrec.config.rec import RecDataConfig, resolve_rec_config
    from graphrec.data.interactions import Interactions
    from graphrec.tasks.link import build_rec_model, fit_link
    from graphrec.utils.seed import seed_everything

    store = _store(tmp_path, users=20, n=400, items=37)  # 37 prime: each user meets 20 distinct targets
    n = store.manifest().id_maps["user"].size
    ids = np.arange(0, n, 2)  # every other user has a vector
    x = _vectors(ids.size, 4, seed=2)
    store.write_features("user", "sasrec", ids, x, data_version=store.version, encoder=ENCODER)
    with pytest.raises(ValueError, match="<node type>/<name>"):
        RecDataConfig(features=["sasrec"])
    dcfg = RecDataConfig(features=["user/sasrec"])
    inter = Interactions.from_store(store, dcfg)
    ux, ucat = inter.user_features
    want = np.zeros((n, 4), dtype=np.float32)
    want[ids] = x
    np.testing.assert_array_equal(ux.numpy(), want)
    assert ucat is None and inter.info["store"]["feature_tables"]["user/sasrec"]["columns"] == [0, 4]

    cfg = resolve_rec_config("lightgcn", None, ["train.inputs=features", "train.epochs=1", "train.eval_every=1",
                                                "train.batch_size=256", "data.features=[user/sasrec]"])  # fmt: skip
    assert cfg.data.features == ["user/sasrec"]
    seed_everything(0)
    data = inter.split(cfg.data, seed=0)
    model = build_rec_model(cfg, data)
    assert model.user_enc is not None and model.user_enc.lin.in_features == 4
    before = model.user_enc.lin.weight.detach().clone()
    res = fit_link(data, model, cfg)
    assert np.isfinite(res.history[-1]["loss"]) and not torch.equal(before, model.user_enc.lin.weight)
    with pytest.raises(ValueError, match="no feature table 'user/clue'"):
        Interactions.from_store(store, RecDataConfig(features=["user/clue"]))


def test_ads_config_features_reach_the_ad_log(tmp_path):
    from graphrec.config.ads import AdsDataConfig
    from graphrec.tasks.ads import AdLog

    store = _store(tmp_path)
    x = _vectors(2, 3, seed=3)
    store.write_features("ad", "enc", np.array([1, 0]), x, data_version=store.version, encoder=ENCODER)
    with pytest.raises(ValueError, match="<node type>/<name>"):
        AdsDataConfig(features=["ad/"])
    log = AdLog.from_store(store, AdsDataConfig(features=["ad/enc"], graph_targets=[]))
    ax, _ = log.target_features
    np.testing.assert_array_equal(ax[:2].numpy(), x[[1, 0]])
    assert (ax[2:] == 0).all() and log.user_features is None
