"""Ad adapters: MovieLens-100k as a user-ad proxy, and the Criteo and Avazu CTR samples.

The real files come from ``$GRAPHREC_DATA`` (skipped when absent); malformed inputs are written by hand.
"""

import json
import os
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from graphrec.store import GraphStore, SourceError, build
from graphrec.store.adapters import ADAPTERS, CLICK_RATING, criteo_frame
from graphrec.store.cli import store_app

CRITEO_HEAD = "ctr/criteo_dac_head1000/train.txt"
CRITEO_SAMPLE = "ctr/deepctr_samples/criteo_sample.txt"
AVAZU_SAMPLE = "ctr/deepctr_samples/avazu_sample.txt"


def data_file(rel: str) -> Path:
    root = os.environ.get("GRAPHREC_DATA")
    if not root or not (Path(root) / rel).is_file():
        pytest.skip(f"GRAPHREC_DATA with {rel} is not available")
    return Path(root) / rel


def test_ml_100k_ads_counts_and_hierarchy(tmp_path, ml100k):
    ratings = pl.read_csv(ml100k / "u.data", separator="\t", has_header=False, new_columns=["u", "i", "r", "t"])
    clicks = int((ratings["r"] >= CLICK_RATING).sum())
    assert ratings.height == 100_000 and clicks == 55_375  # u.data: 34,174 fours + 21,201 fives
    rep = ADAPTERS["ml-100k-ads"].ingest(tmp_path / "st", ml100k, echo=False)
    assert rep.invariant_ok and rep.read == rep.accepted + rep.quarantined + rep.duplicates
    assert (rep.quarantined, rep.duplicates) == (0, 0)
    assert rep.accepted == 100_000 + clicks + 943 + 1682
    st = GraphStore(tmp_path / "st")
    assert st.info()["counts"]["by_event"] == {"ad/impression": 100_000, "ad/click": clicks}
    data = build(st)
    imp, clk = data["user", "impression", "ad"], data["user", "click", "ad"]
    assert (imp.num_edges, clk.num_edges) == (100_000, clicks)
    assert getattr(imp, "edge_value", None) is None  # the rating is not kept: it would give the label away
    # each click is an impression of the same pair at the same time
    key = lambda s: set(zip(s.edge_index[0].tolist(), s.edge_index[1].tolist(), s.edge_time.tolist(), strict=True))  # noqa: E731
    assert key(clk) <= key(imp)
    # the ads: movie ids, the first genre as the top level, every genre in `genres`
    ads = st.attributes("ad")
    assert ads.height == 1682 and data["ad"].num_nodes == 1682 and data["user"].num_nodes == 943
    toy = st.to_internal("ad", [1])[0]
    assert data["ad"].text["title"][toy] == "Toy Story (1995)"
    assert data["ad"].text["genres"][toy] == "animation|childrens|comedy"
    genre = data["ad"].cat_vocab["genre"][int(data["ad"].x_cat[toy, data["ad"].x_cat_names.index("genre")]) - 1]
    assert genre == "animation" and len(data["ad"].cat_vocab["genre"]) == 19
    assert data["user"].cat_vocab["gender"] == ["F", "M"]
    # u.data's clicks, pair by pair
    want = ratings.filter(pl.col("r") >= CLICK_RATING).select("u", "i").sort("u", "i")
    got = pl.DataFrame({"u": st.to_external("user", clk.edge_index[0].numpy()),
                        "i": st.to_external("ad", clk.edge_index[1].numpy())}).sort("u", "i")  # fmt: skip
    assert got.equals(want)


@pytest.mark.parametrize(("rel", "rows", "clicks"), [(CRITEO_HEAD, 1000, 205), (CRITEO_SAMPLE, 200, 49)])
def test_criteo_samples_go_through_the_store(tmp_path, rel, rows, clicks):
    path = data_file(rel)
    rep = ADAPTERS["criteo"].ingest(tmp_path / "st", path, echo=False)
    assert rep.invariant_ok and rep.read == rep.accepted + rep.quarantined + rep.duplicates
    assert (rep.read, rep.accepted) == (2 * rows + clicks, 2 * rows + clicks)  # impressions, clicks, user rows
    st = GraphStore(tmp_path / "st")
    assert st.info()["counts"]["by_event"] == {"ad/impression": rows, "ad/click": clicks}
    data = build(st)
    assert data["user"].num_nodes == data["ad"].num_nodes == rows
    assert data["user"].x_names == [f"i{k}" for k in range(1, 14)]
    assert data["user"].x_cat_names == [f"c{k}" for k in range(1, 27)]
    frame = criteo_frame(path)
    assert frame.height == rows and int((frame["label"] == "1").sum()) == clicks
    # one row per record, in file order: record k at 2000-01-01 + k - 1 seconds
    times = data["user", "impression", "ad"].edge_time
    assert times.min().item() == 946_684_800 and times.max().item() == 946_684_800 + rows - 1


def test_criteo_head_pads_stripped_lines():
    frame = criteo_frame(data_file(CRITEO_HEAD))
    assert frame.width == 40 and frame["c26"].null_count() > 0  # lines with 37-38 fields end in nulls


def test_avazu_sample_goes_through_the_store(tmp_path):
    path = data_file(AVAZU_SAMPLE)
    raw = pl.read_csv(path, infer_schema=False)
    rows, clicks = raw.height, int((raw["click"] == "1").sum())
    assert (rows, clicks) == (100, 20)
    rep = ADAPTERS["avazu"].ingest(tmp_path / "st", path, echo=False)
    assert rep.invariant_ok and rep.read == rep.accepted + rep.quarantined + rep.duplicates
    assert (rep.read, rep.accepted, rep.quarantined, rep.duplicates) == (rows + clicks, rows + clicks, 0, 0)
    st = GraphStore(tmp_path / "st")
    info = st.info()
    assert info["counts"]["by_event"] == {"ad/impression": rows, "ad/click": clicks}
    assert info["counts"]["first_day"] == "2014-10-21"  # hour 14102100
    users = raw.select(pl.when(pl.col("device_id") == "a99f214a").then(pl.col("device_ip") + "-" + pl.col("device_model"))
                       .otherwise(pl.col("device_id")))  # fmt: skip
    assert info["id_maps"] == {"user": users.n_unique(), "ad": raw["C14"].n_unique()}
    ev = pl.read_parquet([st.path(f) for fs in st.manifest().partitions.values() for f in fs])
    assert ev["impression_id"].n_unique() == rows and set(ev["site_id"]) == set(raw["site_id"])


def test_bad_ctr_files_are_named(tmp_path):
    (tmp_path / "bad.txt").write_text("0\t1\n2\t3\n")
    with pytest.raises(SourceError, match=r"bad.txt, line 2: label is '2', expected 0 or 1"):
        criteo_frame(tmp_path / "bad.txt")
    (tmp_path / "long.txt").write_text("0" + "\tx" * 40 + "\n")
    with pytest.raises(SourceError, match="line 1: 41 tab-separated fields, Criteo has 40"):
        criteo_frame(tmp_path / "long.txt")
    with pytest.raises(SourceError, match="does not exist"):
        ADAPTERS["criteo"].sources(tmp_path / "nope")
    (tmp_path / "a.csv").write_text("id,click,hour\n1,0,14102100\n")
    with pytest.raises(SourceError, match="the header is not Avazu's"):
        ADAPTERS["avazu"].sources(tmp_path / "a.csv")
    assert not (tmp_path / "st").exists()


def test_cli_ingest_source_ml_100k_ads(tmp_path, ml100k):
    r = CliRunner().invoke(store_app, ["ingest", "--store", str(tmp_path / "st"), "--source", "ml-100k-ads",
                                       str(ml100k), "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["accepted"] == rep["read"] == 100_000 + 55_375 + 943 + 1682
    st = GraphStore(tmp_path / "st")
    assert st.schema().name == "ml-100k-ads" and "user-ad proxy" in st.manifest().ingest.message
    r = CliRunner().invoke(store_app, ["ingest", "--store", str(tmp_path / "st2"), "--source", "avazu", "--json"],
                           obj={"dataset_path": lambda name: data_file(AVAZU_SAMPLE)})  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["accepted"] == 120
