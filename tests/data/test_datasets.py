from __future__ import annotations

import urllib.error

import pytest
import torch

from graphrec.data import (
    DatasetNotAvailableError,
    available_datasets,
    cache_dir,
    data_root,
    label_rate_split,
    load_dataset,
    load_planetoid,
    load_ppi,
)

from fixtures import write_planetoid, write_ppi


def test_data_root_prefers_env(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHREC_DATA", str(tmp_path))
    assert data_root() == tmp_path
    monkeypatch.delenv("GRAPHREC_DATA")
    assert data_root() == cache_dir()


def test_cora_public_split_from_shared_root(cora, shared_data):
    assert cora.num_nodes == 2708 and cora.num_features == 1433 and cora.num_classes == 7
    assert cora.edge_index.size(1) == 10556
    assert (int(cora.train_mask.sum()), int(cora.val_mask.sum()), int(cora.test_mask.sum())) == (140, 500, 1000)
    # The data root is never written to: PyG's processed/ lands in the cache copy.
    assert not (shared_data / "planetoid" / "Cora" / "processed").exists()
    assert list(cache_dir().glob("mirrors/*/planetoid/Cora/processed"))


def test_citeseer_public_split(shared_data):
    d = load_planetoid("citeseer")  # case-insensitive name
    assert (d.num_nodes, d.num_features, d.num_classes) == (3327, 3703, 6)
    assert (int(d.train_mask.sum()), int(d.val_mask.sum()), int(d.test_mask.sum())) == (120, 500, 1000)


def test_pubmed_loader_on_files_in_its_format(tmp_path, monkeypatch):
    root = tmp_path / "root"
    meta = write_planetoid(root / "planetoid" / "PubMed" / "raw", "pubmed")
    monkeypatch.setenv("GRAPHREC_DATA", str(root))
    d = load_planetoid("PubMed")
    assert d.num_nodes == meta["num_nodes"] and d.num_features == meta["num_features"]
    assert int(d.train_mask.sum()) == meta["train"] and int(d.test_mask.sum()) == meta["test"]
    assert int(d.val_mask.sum()) == 500
    assert not (root / "planetoid" / "PubMed" / "processed").exists()


def test_missing_dataset_offline_names_file_and_env_var(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setenv("GRAPHREC_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("GRAPHREC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("torch_geometric.io.fs.cp", offline)
    with pytest.raises(DatasetNotAvailableError) as info:
        load_planetoid("PubMed")
    msg = str(info.value)
    assert "ind.pubmed.x" in msg and "GRAPHREC_DATA" in msg


def test_unknown_planetoid_name():
    with pytest.raises(ValueError, match="unknown Planetoid dataset"):
        load_planetoid("Corra")


def test_ppi_loader_on_files_in_its_format(tmp_path, monkeypatch):
    root = tmp_path / "root"
    meta = write_ppi(root / "ppi" / "raw", graphs=(3, 1, 2))
    monkeypatch.setenv("GRAPHREC_DATA", str(root))
    ds = load_ppi()
    assert (len(ds.train), len(ds.val), len(ds.test)) == (3, 1, 2)
    assert ds.num_features == meta["num_features"] and ds.num_classes == meta["num_labels"]
    g = ds.train[0]
    assert g.num_nodes == meta["nodes_per_graph"] and g.y.shape == (meta["nodes_per_graph"], meta["num_labels"])
    assert int(g.edge_index.max()) < g.num_nodes  # re-indexed per graph


def test_movielens_100k_through_the_catalog(shared_data):
    ml = load_dataset("ML-100K")  # names are case-insensitive
    assert (ml.user.size, ml.num_users, ml.num_items) == (100_000, 943, 1682)
    assert ml.info["dataset"] == "ml-100k" and ml.target == "item"
    assert sorted(ml.user_ids) == list(range(1, 944))  # external ids from the store's id map
    assert ml.time.min() == 874724710  # first rating, epoch seconds (UTC)
    with pytest.raises(ValueError, match="unknown dataset 'ml-10m'"):
        load_dataset("ml-10m")


def test_available_datasets_lists_local_and_missing(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHREC_CACHE", str(tmp_path))
    rows = {r["name"]: r for r in available_datasets()}
    assert rows["Cora"]["status"] == "local"
    assert rows["PPI"]["status"] == "missing" and rows["PPI"]["missing"]


def test_label_rate_split_keeps_eval_sets_and_covers_classes(cora):
    d = label_rate_split(cora, 0.01, seed=3)
    assert int(d.train_mask.sum()) == round(0.01 * cora.num_nodes)
    assert not (d.train_mask & (cora.val_mask | cora.test_mask)).any()
    assert torch.equal(d.val_mask, cora.val_mask) and torch.equal(d.test_mask, cora.test_mask)
    assert d.y[d.train_mask].unique().numel() == 7
    assert torch.equal(label_rate_split(cora, 0.01, seed=3).train_mask, d.train_mask)
    assert not torch.equal(label_rate_split(cora, 0.01, seed=4).train_mask, d.train_mask)


def test_two_data_roots_never_share_a_cached_dataset(tmp_path, monkeypatch):
    """A mirror (and PyG's processed/ files) belongs to one data root: another root's Cora is
    not served from it, and a changed raw file is processed again."""
    monkeypatch.setenv("GRAPHREC_CACHE", str(tmp_path / "cache"))
    small = write_planetoid(tmp_path / "a" / "planetoid" / "Cora" / "raw", "cora")
    other = write_planetoid(tmp_path / "b" / "planetoid" / "Cora" / "raw", "cora", num_unlabelled=60, num_classes=4)
    monkeypatch.setenv("GRAPHREC_DATA", str(tmp_path / "a"))
    assert load_planetoid("Cora").num_nodes == small["num_nodes"]
    monkeypatch.setenv("GRAPHREC_DATA", str(tmp_path / "b"))
    b = load_planetoid("Cora")
    assert b.num_nodes == other["num_nodes"] and b.num_classes == 4
    write_planetoid(tmp_path / "b" / "planetoid" / "Cora" / "raw", "cora", num_unlabelled=70, num_classes=4)
    assert load_planetoid("Cora").num_nodes == other["num_nodes"] + 10  # rebuilt from the new files


def test_dataset_names_and_aliases():
    from graphrec.data import get_dataset, load_node_dataset

    assert get_dataset("movielens-100k").name == get_dataset("ML100K").name == "ml-100k"
    with pytest.raises(ValueError, match="'ml-100k' is a recommendation dataset, not a node-classification one; "
                                         "node datasets: Cora, CiteSeer, PubMed, PPI"):
        load_node_dataset("ml-100k")
