"""The synthetic hierarchical ad log: determinism, the tree, the CTR model, the truth file, ingest and build."""

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from graphrec.store import GraphStore, build
from graphrec.store.cli import store_app
from graphrec.store.synth_ads import (
    AdTruth,
    ingest_synth_ads,
    load_truth,
    synth_ads,
    synth_ads_schema,
    tree_distance,
    true_ctr,
)

SMALL = {"users": 400, "items": 120, "days": 4}


def events(report) -> pl.DataFrame:
    return pl.read_parquet(report.files)


def test_same_seed_same_log_other_seed_other_log(tmp_path):
    a = synth_ads(tmp_path / "a", seed=5, **SMALL)
    b = synth_ads(tmp_path / "b", seed=5, **SMALL)
    c = synth_ads(tmp_path / "c", seed=6, **SMALL)
    assert events(a).equals(events(b)) and not events(a).equals(events(c))
    for name in ("users", "items", "ads"):
        assert pl.read_parquet(tmp_path / "a" / f"{name}.parquet").equals(pl.read_parquet(tmp_path / "b" / f"{name}.parquet"))
    ta, tb, tc = (load_truth(tmp_path / k) for k in "abc")
    assert np.array_equal(ta.user_path, tb.user_path) and ta.noise_key == tb.noise_key
    assert not np.array_equal(ta.user_path, tc.user_path)
    # counts add up
    ev = events(a)
    assert a.rows == ev.height == a.impressions + a.clicks + a.conversions + a.item_events
    assert ev.filter(pl.col("event_type") == "click").height == a.clicks
    assert len(a.files) == 4 and a.first_day == "2024-01-01"


def test_tree_and_side_tables(tmp_path):
    r = synth_ads(tmp_path, advertisers=3, campaigns=2, creatives=5, **SMALL)
    t = load_truth(tmp_path)
    assert r.ads == t.num_ads == 3 * 2 * 5
    ads = pl.read_parquet(tmp_path / "ads.parquet")
    assert ads["ad_id"].to_list() == list(range(1, 31))
    # ad a is creative a % 5 of campaign (a // 5) % 2 of advertiser a // 10
    assert ads.group_by("advertiser").len().sort("advertiser")["len"].to_list() == [10, 10, 10]
    assert ads.group_by("campaign").len()["len"].to_list() == [5] * 6
    assert (ads["campaign"].str.split("/").list.first() == ads["advertiser"]).all()
    assert ads["advertiser"].to_list() == [f"adv_{a // 10:02d}" for a in range(30)]
    assert np.array_equal(t.ad_path[:, 1], (np.arange(30) // 5) % 2) and np.array_equal(t.ad_path[:, 2], np.arange(30) % 5)
    assert np.array_equal(t.ad_campaign, np.arange(30) // 5)
    # items hang under campaigns; category k is advertiser k
    items = pl.read_parquet(tmp_path / "items.parquet")
    assert items.height == 120 and items["category"].to_list() == [f"cat_{a:02d}" for a in t.item_path[:, 0]]
    assert items["subcategory"].to_list() == [f"cat_{a:02d}/sub_{c:02d}" for a, c in t.item_path[:, :2]]
    assert items.group_by("subcategory").len()["len"].to_list() == [20] * 6  # the campaigns take the items in turn
    assert pl.read_parquet(tmp_path / "users.parquet").columns == ["user_id", "age", "region"]
    # users: a path and an interest depth; the interest node is the path cut at the depth
    assert set(np.unique(t.user_depth)) <= {1, 2, 3} and t.user_path.shape == (400, 3)
    interest = t.user_interest
    assert ((interest >= 0).sum(axis=1) == t.user_depth).all()


def test_true_ctr_falls_with_tree_distance(tmp_path):
    synth_ads(tmp_path, depth_noise=0.0, **SMALL)
    t = load_truth(tmp_path)
    assert isinstance(t, AdTruth) and t.depth_noise == 0.0
    users = np.arange(1, t.num_users + 1)
    ads = np.arange(1, t.num_ads + 1)
    ctr = true_ctr(t, users[:, None], ads[None, :])
    dist = tree_distance(t, users[:, None], ads[None, :])
    assert ctr.shape == dist.shape == (t.num_users, t.num_ads) and ((ctr > 0) & (ctr < 1)).all()
    # without noise the CTR above the ad's base rate is ctr_max * exp(-decay * distance)
    base = t.ad_base_ctr[None, :]
    np.testing.assert_allclose((ctr - base) / (1 - base), t.ctr_max * np.exp(-t.ctr_decay * dist))
    # distances: the interest node's own subtree is closest
    u = int(np.flatnonzero(t.user_depth == 3)[0])
    own = int((t.user_path[u] * [t.campaigns * t.creatives, t.creatives, 1]).sum())
    assert dist[u, own] == 0 and dist[u].max() == 6
    u1 = int(np.flatnonzero(t.user_depth == 1)[0])
    assert set(np.unique(dist[u1])) == {2, 4}
    # pair equals matrix; a bad id is named
    assert np.allclose(true_ctr(t, users[:5], ads[:5]), ctr[np.arange(5), np.arange(5)])
    with pytest.raises(KeyError, match=r"97 is not one of the log's ad ids \(1..96\)"):
        true_ctr(t, [1], [97])


def test_clicks_follow_the_true_ctr(tmp_path):
    r = synth_ads(tmp_path, users=1500, items=200, days=7, impressions_per_user=60, seed=1)
    t = load_truth(tmp_path)
    ev = events(r)
    imp = ev.filter(pl.col("event_type") == "impression")
    clk = ev.filter(pl.col("event_type") == "click")
    d_imp = tree_distance(t, imp["user_id"].to_numpy(), imp["target_id"].to_numpy())
    d_clk = tree_distance(t, clk["user_id"].to_numpy(), clk["target_id"].to_numpy())
    rate = {d: (d_clk == d).sum() / max(1, (d_imp == d).sum()) for d in range(7)}
    near = (d_clk <= 2).sum() / (d_imp <= 2).sum()
    far = (d_clk >= 4).sum() / (d_imp >= 4).sum()
    assert near > 2 * far, rate
    assert rate[1] > rate[3] > rate[5] and rate[2] > rate[4] > rate[6], rate
    # calibrated: the clicks are the sum of Bernoulli(true CTR) over the impressions
    p = true_ctr(t, imp["user_id"].to_numpy(), imp["target_id"].to_numpy())
    assert abs(clk.height - p.sum()) < 4 * np.sqrt((p * (1 - p)).sum())
    # every click and conversion follows an impression of the same user on the same ad, the same day
    pairs = imp.select("user_id", "target_id").unique()
    for ev_type in ("click", "conversion"):
        fol = ev.filter(pl.col("event_type") == ev_type)
        assert fol.join(pairs, on=["user_id", "target_id"], how="anti").height == 0
    assert 0 < r.conversions < r.clicks
    # item events follow the same interest: most fall under the user's advertiser
    items = pl.read_parquet(tmp_path / "items.parquet")
    iv = ev.filter(pl.col("target_type") == "item")
    adv_of_item = t.item_path[iv["target_id"].to_numpy() - 1, 0]
    adv_of_user = t.user_path[iv["user_id"].to_numpy() - 1, 0]
    assert (adv_of_item == adv_of_user).mean() > 0.6
    assert set(iv["event_type"].unique()) == {"view", "purchase"}
    prices = dict(zip(items["item_id"].to_list(), items["price"].to_list(), strict=True))
    bought = iv.filter(pl.col("event_type") == "purchase")
    assert bought["value"].to_list() == [prices[i] for i in bought["target_id"].to_list()]


def test_ingest_and_build_the_user_item_ad_graph(tmp_path):
    r = synth_ads(tmp_path / "log", **SMALL)
    rep = ingest_synth_ads(tmp_path / "st", tmp_path / "log", echo=False)
    assert rep.invariant_ok and rep.quarantined == 0 and rep.duplicates == 0
    assert rep.read == rep.accepted == r.rows + r.users + r.items + r.ads
    st = GraphStore(tmp_path / "st")
    assert st.schema().hash() == synth_ads_schema().hash()
    data = build(st)
    for et, n in ((("user", "impression", "ad"), r.impressions), (("user", "click", "ad"), r.clicks),
                  (("user", "conversion", "ad"), r.conversions)):  # fmt: skip
        assert data[et].num_edges == n
    items = data["user", "view", "item"].num_edges + data["user", "purchase", "item"].num_edges
    assert items == r.item_events
    assert (data["user"].num_nodes, data["item"].num_nodes, data["ad"].num_nodes) == (r.users, r.items, r.ads)
    assert data["ad"].x_cat_names == ["advertiser", "campaign"] and len(data["ad"].cat_vocab["campaign"]) == 24
    # store ids back to the truth's external ids
    clk = data["user", "click", "ad"].edge_index
    users, ads = st.to_external("user", clk[0].numpy()), st.to_external("ad", clk[1].numpy())
    assert true_ctr(tmp_path / "log", np.asarray(users), np.asarray(ads)).shape == (r.clicks,)


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_text_formats_ingest_completely(tmp_path, fmt):
    r = synth_ads(tmp_path / "log", users=60, items=30, days=2, format=fmt)
    assert all(f.endswith(f".{fmt}") for f in r.files) and (tmp_path / "log" / f"ads.{fmt}").is_file()
    rep = ingest_synth_ads(tmp_path / "st", tmp_path / "log", echo=False)
    assert rep.invariant_ok and rep.accepted == rep.read == r.rows + 60 + 30 + r.ads


def test_a_later_day_extends_the_same_population(tmp_path):
    base = synth_ads(tmp_path / "base", **SMALL)
    delta = synth_ads(tmp_path / "delta", first_day=4, **{**SMALL, "days": 1}, side_tables=False)
    assert delta.first_day == "2024-01-05" and not (tmp_path / "delta" / "ads.parquet").exists()
    a, b = load_truth(tmp_path / "base"), load_truth(tmp_path / "delta")
    assert np.array_equal(a.user_path, b.user_path) and np.array_equal(a.ad_base_ctr, b.ad_base_ctr)
    ingest_synth_ads(tmp_path / "st", tmp_path / "base", echo=False)
    rep = ingest_synth_ads(tmp_path / "st", tmp_path / "delta", echo=False)
    assert rep.partitions_written == ["2024-01-05"] and rep.accepted == delta.rows and base.rows > 0


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="depth_probs must be three"):
        synth_ads(tmp_path, depth_probs=(0.5, 0.6, 0.0))
    with pytest.raises(ValueError, match="sizes must be at least 1: campaigns=0"):
        synth_ads(tmp_path, campaigns=0)
    with pytest.raises(ValueError, match="shares must lie in"):
        synth_ads(tmp_path, targeted_share=1.5)
    with pytest.raises(FileNotFoundError, match="no ad-log truth"):
        load_truth(tmp_path)


def test_cli_synth_ads_writes_and_ingests(tmp_path):
    r = CliRunner().invoke(store_app, ["synth-ads", str(tmp_path / "log"), "--users", "50", "--items", "20", "--days",
                                       "2", "--advertisers", "2", "--store", str(tmp_path / "st"), "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["ads"] == 2 * 4 * 4 and out["truth"].endswith("truth.npz") and "[ok]" in out["ingest"]
    assert GraphStore(tmp_path / "st").info()["counts"]["events"] == out["rows"]
    r = CliRunner().invoke(store_app, ["synth-ads", "--help"])
    assert r.exit_code == 0 and "--depth-noise" in r.output
