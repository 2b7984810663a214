"""The ad-targeting datasets of the catalog: ads-synth (generated), ml-100k-ads (proxy), criteo and avazu (samples)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.data import DatasetNotAvailableError, adapter_path, get_dataset, load_dataset
from graphrec.data.catalog import ADS, DATASETS, ad_dataset_names, ctr_path
from graphrec.data.interactions import dataset_store, dataset_truth
from graphrec.store import GraphStore
from graphrec.store.synth_ads import load_truth, true_ctr


def need(*rel: str) -> Path:
    root = os.environ.get("GRAPHREC_DATA")
    if not root or not all((Path(root) / r).is_file() for r in rel):
        pytest.skip(f"GRAPHREC_DATA with {', '.join(rel)} is not available")
    return Path(root)


def test_the_catalog_lists_the_ad_datasets():
    assert ad_dataset_names() == ["ads-synth", "ml-100k-ads", "criteo", "avazu"]
    assert get_dataset("synth-ads").name == "ads-synth" and get_dataset("Criteo-Sample").name == "criteo"
    assert DATASETS["ads-synth"].ad_hierarchy == ("advertiser", "campaign")
    assert DATASETS["ml-100k-ads"].ad_hierarchy == ("genre",)
    assert all(DATASETS[n].task == ADS and DATASETS[n].ingest is not None for n in ad_dataset_names())
    res = CliRunner().invoke(app, ["datasets", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["ads-synth"]["status"] == "local"  # generated: no files to miss
    assert rows["ml-100k-ads"]["stats"] == {"users": 943, "ads": 1682, "impressions": 100_000, "clicks": 55_375}
    assert "too small to benchmark" in rows["criteo"]["summary"] and rows["avazu"]["task"] == ADS


def test_ads_synth_store_and_its_truth():
    root = dataset_store("ads-synth")
    st = GraphStore(root)
    counts = st.info()["counts"]["by_event"]
    assert set(counts) == {"ad/impression", "ad/click", "ad/conversion", "item/view", "item/purchase"}
    truth = load_truth(dataset_truth("ads-synth"))
    assert (truth.num_users, truth.num_ads, truth.num_items, truth.seed) == (3000, 96, 600, 0)
    assert dataset_store("ads-synth") == root and st.version == 1  # materialised once
    # the truth speaks the store's external ids
    ads = np.asarray(st.id_map("ad").sort("id")["external_id"].to_list())
    users = np.asarray(st.id_map("user").sort("id")["external_id"].to_list())[:10]
    assert sorted(ads.tolist()) == list(range(1, 97))
    assert true_ctr(truth, users[:, None], ads[None, :]).shape == (10, 96)
    inter = load_dataset("ads-synth")  # the click pairs on ads
    assert inter.target == "ad" and inter.user.size == counts["ad/click"]
    with pytest.raises(ValueError, match="has no ground truth"):
        dataset_truth("ml-100k-ads")
    with pytest.raises(ValueError, match="ads-synth is generated"):
        adapter_path("ads-synth")


def test_ml_100k_ads_through_the_catalog():
    need("movielens/ml-100k/u.data")
    st = GraphStore(dataset_store("ml-100k-ads"))
    assert st.info()["counts"]["by_event"] == {"ad/impression": 100_000, "ad/click": 55_375}
    assert adapter_path("ml-100k-ads") == adapter_path("ml-100k")
    inter = load_dataset("ml-100k-ads")
    assert (inter.user.size, inter.num_users, inter.num_items, inter.target) == (55_375, 943, 1682, "ad")


# criteo: a user side-table row per record as well; avazu: no side table
@pytest.mark.parametrize(("name", "rows", "clicks", "side"), [("criteo", 1000, 205, 1000), ("avazu", 100, 20, 0)])
def test_ctr_samples_through_the_catalog(name, rows, clicks, side):
    need("ctr/criteo_dac_head1000/train.txt", "ctr/deepctr_samples/avazu_sample.txt")
    st = GraphStore(dataset_store(name))
    last = st.manifest().ingest
    assert last.read == last.accepted + last.quarantined + last.duplicates == rows + clicks + side
    assert last.accepted == last.read
    assert st.info()["counts"]["by_event"] == {"ad/impression": rows, "ad/click": clicks}
    stats = DATASETS[name].stats
    assert (stats["impressions"], stats["clicks"]) == (rows, clicks)
    assert st.info()["id_maps"] == {"user": stats["users"], "ad": stats["ads"]}


def test_a_missing_ctr_sample_names_the_file_and_graphrec_data(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHREC_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("GRAPHREC_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DatasetNotAvailableError, match=r"avazu is not available: missing .*avazu_sample.txt.*GRAPHREC_DATA"):
        ctr_path("avazu")
