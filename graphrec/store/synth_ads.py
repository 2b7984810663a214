"""A synthetic ad log with a known ad hierarchy and a known click-through rate for every (user, ad) pair.

The data are synthetic. They exist so that a benchmark can measure what a model recovers:
the true ranking of ads for each user (:func:`true_ctr`) and the tree the ads come from
(:class:`AdTruth`). The log has the layout of :func:`graphrec.store.synth` and enters the store
with :func:`ingest_synth_ads`.

Generative model (numpy generators seeded by ``seed``; the population from ``seed`` alone,
each day from ``(seed, day index)``, so a later day can be generated alone and still belong to
the same population):

* **Tree.** ``advertisers`` (A) advertisers, each with ``campaigns`` (C) campaigns, each with
  ``creatives`` (K) creatives. The ads are the creatives: ad ``a`` (0-based; external id
  ``a + 1``) is creative ``a % K`` of campaign ``(a // K) % C`` of advertiser ``a // (C K)``.
  Depths: root 0, advertiser 1, campaign 2, creative (ad) 3. A node is written as its path,
  ``(advertiser, campaign, creative)``, truncated to its depth.
* **Items** hang under campaigns (depth 2): item category k is advertiser k, subcategory
  (k, j) is campaign j of advertiser k. The campaigns get the items in turn, in a random
  order (each campaign ``items // (A C)`` or one more); popularity is Zipf(1) over a random
  ranking of all items.
* **Users.** Each user has a path (advertiser, campaign, creative), uniform over the tree,
  and an interest depth d in {1, 2, 3}, drawn with ``depth_probs``; the user's interest node
  is the path's prefix of length d (an advertiser, a campaign or a single creative). Activity
  ~ Gamma(2, 1/2) (mean 1) scales all of a user's events.
* **Tree distance** between the interest node (depth d) and a node of depth e:
  ``d + e - 2 l``, with l the depth of their lowest common ancestor (the length of the
  common prefix of the two paths, at most ``min(d, e)``).
* **True CTR** of user u on ad a::

      ctr(u, a) = b_a + (1 - b_a) * ctr_max * exp(-ctr_decay * max(0, dist(u, a) + depth_noise * eps(u, a)))

  ``b_a`` is the ad's base rate, ``base_ctr`` times LogNormal(-1/8, 1/2) (mean ``base_ctr``),
  at most 0.5. ``eps(u, a)`` ~ N(0, 1) is a fixed pseudo-random number per pair (a hash of
  ``noise_key`` and the pair, drawn by Box-Muller), so ``depth_noise`` is the spread, in
  tree levels, of pair-specific departures from the tree; with 0 the CTR is a function of
  the tree distance and the ad's base rate alone.
* **Impressions.** Per user and day Poisson(activity * impressions_per_user / days). An
  impression is targeted with probability ``targeted_share`` (a uniform ad of the user's
  advertiser), else drawn from all ads in proportion to a budget (LogNormal(0, 1) per ad).
  Times follow a daily rhythm (busy evenings, quiet nights), uniform within the hour.
* **Clicks** ~ Bernoulli(ctr(u, a)) per impression, 1-300 s after it; **conversions** ~
  Bernoulli(c_a) per click, 1 min - 2 h after it, ``value`` = the order value (LogNormal);
  ``c_a`` is ``conversion_rate`` times LogNormal(-1/8, 1/2), at most 1. Follow-up events are
  kept in the impression's UTC day (clamped to its last second).
* **Item events.** Per user and day Poisson(activity * item_events_per_user / days). A
  campaign g is drawn in proportion to ``pop(g) * exp(-item_decay * dist(u, g))`` (``pop(g)``:
  the popularity mass of its items), then an item of g by popularity; 95% ``view``, 5%
  ``purchase`` with ``value`` = the item's price. Item history thus follows the same interest
  as ad clicks, at campaign resolution (it cannot tell creatives apart).

Exact duplicate rows (same second, user, target and event; rare) are dropped before writing,
so every row written is accepted by an ingest. Labels for an ad task: ``click`` and
``conversion`` are positives; an ``impression`` of an ad that the same user never clicked is an
explicit negative.

Files: ``<out>/events/events-YYYY-MM-DD.<ext>`` (one per day), ``<out>/users.<ext>``,
``items.<ext>``, ``ads.<ext>``, ``<out>/schema.yaml`` and ``<out>/truth.npz`` (read it with
:func:`load_truth`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from graphrec.store.schema import LogSchema, NodeAttributes

#: Bumped whenever the same arguments would produce a different log.
GENERATOR_VERSION = 1
TRUTH_FORMAT = "graphrec.ad-truth/1"
TRUTH_FILE = "truth.npz"
#: Depth of an ad (creative) and of an item (campaign) in the tree.
AD_DEPTH, ITEM_DEPTH = 3, 2
AD_EVENTS = ("impression", "click", "conversion")
ITEM_EVENTS = ("view", "purchase")
PURCHASE_SHARE = 0.05
REGIONS = ("north", "south", "east", "west", "central")
#: Relative activity per hour of the day (UTC): low at night, peak in the evening.
HOURLY = 1.0 + 0.8 * np.sin(2 * np.pi * (np.arange(24) - 14) / 24)
_DAY = 86_400
EVENT_COLUMNS = ("timestamp", "user_id", "target_type", "target_id", "event_type", "value")


def synth_ads_schema() -> LogSchema:
    """The log schema of :func:`synth_ads` logs: integer ids, ``item`` and ``ad`` targets."""
    return LogSchema(
        name="synthetic-ads",
        id_type="int",
        target_types=["item", "ad"],
        event_types=[*ITEM_EVENTS, *AD_EVENTS],
        attributes={
            "user": NodeAttributes(id_column="user_id", columns={"age": "numeric", "region": "categorical"}),
            "item": NodeAttributes(
                id_column="item_id",
                columns={"category": "categorical", "subcategory": "categorical", "price": "numeric"},
            ),
            "ad": NodeAttributes(id_column="ad_id", columns={"advertiser": "categorical", "campaign": "categorical"}),
        },
    )


# ---------------------------------------------------------------------------------- the truth
@dataclass(frozen=True)
class AdTruth:
    """The hidden parameters of a :func:`synth_ads` log (``truth.npz``).

    Users, ads and items are 0-based indices here; their external ids in the log are
    ``index + 1``. Paths are (advertiser, campaign within the advertiser, creative within the
    campaign); an item's creative is -1.
    """

    advertisers: int
    campaigns: int
    creatives: int
    user_path: np.ndarray  # (users, 3) int64
    user_depth: np.ndarray  # (users,) int64 in {1, 2, 3}: depth of the interest node
    ad_path: np.ndarray  # (ads, 3) int64
    ad_base_ctr: np.ndarray  # (ads,) float64: b_a
    ad_conversion_rate: np.ndarray  # (ads,) float64: c_a, conversions per click
    ad_budget: np.ndarray  # (ads,) float64: share of the untargeted impressions
    item_path: np.ndarray  # (items, 3) int64, creative -1
    item_popularity: np.ndarray  # (items,) float64, sums to 1
    ctr_max: float
    ctr_decay: float
    depth_noise: float
    item_decay: float
    targeted_share: float
    noise_key: int  # key of the per-pair noise eps(u, a)
    seed: int
    version: int = GENERATOR_VERSION

    @property
    def num_users(self) -> int:
        return int(self.user_depth.shape[0])

    @property
    def num_ads(self) -> int:
        return int(self.ad_path.shape[0])

    @property
    def num_items(self) -> int:
        return int(self.item_path.shape[0])

    @property
    def ad_campaign(self) -> np.ndarray:
        """(ads,) int64: the global campaign index ``advertiser * campaigns + campaign`` of each ad."""
        return self.ad_path[:, 0] * self.campaigns + self.ad_path[:, 1]

    @property
    def user_interest(self) -> np.ndarray:
        """(users, 3) int64: the interest node of each user, its path with -1 below its depth."""
        keep = np.arange(3)[None, :] < self.user_depth[:, None]
        return np.where(keep, self.user_path, -1)

    def user_index(self, ids: Any) -> np.ndarray:
        """0-based indices of external user ids (any shape). Raises ``KeyError`` for unknown ids."""
        return _index(ids, self.num_users, "user")

    def ad_index(self, ids: Any) -> np.ndarray:
        """0-based indices of external ad ids (any shape). Raises ``KeyError`` for unknown ids."""
        return _index(ids, self.num_ads, "ad")

    def distance(self, users: np.ndarray, ads: np.ndarray) -> np.ndarray:
        """Tree distance (int64, 0-6) between the interest node of user indices and the leaf of
        ad indices; the arrays broadcast like numpy's."""
        users, ads = np.broadcast_arrays(np.asarray(users), np.asarray(ads))
        return _distance(self.user_path[users], self.user_depth[users], self.ad_path[ads], AD_DEPTH)

    def ctr(self, users: np.ndarray, ads: np.ndarray) -> np.ndarray:
        """True CTR (float64) of user indices on ad indices; the arrays broadcast like numpy's."""
        users, ads = np.broadcast_arrays(np.asarray(users, dtype=np.int64), np.asarray(ads, dtype=np.int64))
        eff = self.distance(users, ads) + self.depth_noise * _pair_normal(self.noise_key, users, ads)
        base = self.ad_base_ctr[ads]
        return base + (1.0 - base) * self.ctr_max * np.exp(-self.ctr_decay * np.maximum(eff, 0.0))

    def save(self, path: str | os.PathLike) -> None:
        """Write ``truth.npz`` atomically (plain arrays: :func:`load_truth` never unpickles)."""
        from graphrec.utils.io import atomic_open

        arrays = {k: np.asarray(v) for k, v in asdict(self).items()}
        arrays["noise_key"] = np.asarray(self.noise_key, dtype=np.uint64)
        with atomic_open(path, "wb") as fh:
            np.savez_compressed(fh, format=np.asarray(TRUTH_FORMAT), **arrays)


def load_truth(path: str | os.PathLike) -> AdTruth:
    """Read ``truth.npz`` of a :func:`synth_ads` log (``path``: the file or the log folder).

    Raises:
        FileNotFoundError: no truth file there.
        ValueError: the file is not a truth file of this format.
    """
    path = Path(path)
    if path.is_dir():
        path = path / TRUTH_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no ad-log truth at {path} (synth_ads writes {TRUTH_FILE} next to the log)")
    with np.load(path, allow_pickle=False) as z:
        if "format" not in z.files or str(z["format"]) != TRUTH_FORMAT:
            raise ValueError(f"{path} is not a {TRUTH_FORMAT} file")
        data = {k: z[k] for k in z.files if k != "format"}
    scalars = {"advertisers": int, "campaigns": int, "creatives": int, "ctr_max": float, "ctr_decay": float,
               "depth_noise": float, "item_decay": float, "targeted_share": float, "noise_key": int, "seed": int,
               "version": int}  # fmt: skip
    for k, cast in scalars.items():
        data[k] = cast(data[k])
    return AdTruth(**data)


def true_ctr(truth: AdTruth | str | os.PathLike, user_ext_ids: Any, ad_ext_ids: Any) -> np.ndarray:
    """True click-through rate of users on ads, by the external ids of the log (float64 in (0, 1)).

    The id arrays broadcast like numpy's: equal shapes give one CTR per pair,
    ``users[:, None]`` and ``ads[None, :]`` a users x ads matrix (e.g. to rank every ad per user
    for an NDCG against model scores). ``truth``: an :class:`AdTruth`, ``truth.npz`` or the log folder.

    Raises:
        KeyError: an id is not a user (ad) of the log.
    """
    t = truth if isinstance(truth, AdTruth) else load_truth(truth)
    return t.ctr(t.user_index(user_ext_ids), t.ad_index(ad_ext_ids))


def tree_distance(truth: AdTruth | str | os.PathLike, user_ext_ids: Any, ad_ext_ids: Any) -> np.ndarray:
    """Tree distance (int64, 0-6) between users' interest nodes and ads, by external ids
    (broadcast like :func:`true_ctr`)."""
    t = truth if isinstance(truth, AdTruth) else load_truth(truth)
    return t.distance(t.user_index(user_ext_ids), t.ad_index(ad_ext_ids))


def _index(ids: Any, n: int, what: str) -> np.ndarray:
    a = np.asarray(ids)
    if a.dtype.kind not in "iu":
        try:
            a = a.astype(np.int64)
        except (TypeError, ValueError) as exc:
            raise KeyError(f"{what} ids must be integers (the log's external ids 1..{n})") from exc
    idx = a.astype(np.int64) - 1
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = a.ravel()[np.flatnonzero((idx.ravel() < 0) | (idx.ravel() >= n))[0]]
        raise KeyError(f"{bad} is not one of the log's {what} ids (1..{n})")
    return idx


def _distance(upath: np.ndarray, udepth: np.ndarray, npath: np.ndarray, ndepth: int | np.ndarray) -> np.ndarray:
    """``d + e - 2 l`` for paths (..., 3) at depths d (interest) and e (node)."""
    same = np.cumprod(upath == npath, axis=-1).sum(axis=-1)  # common prefix length
    lca = np.minimum(same, np.minimum(udepth, ndepth))
    return (udepth + ndepth - 2 * lca).astype(np.int64)


_M1, _M2, _GOLDEN = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (uint64 in, uint64 out)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _pair_normal(key: int, users: np.ndarray, ads: np.ndarray) -> np.ndarray:
    """A fixed N(0, 1) number per (user, ad) pair: two hashed uniforms through Box-Muller."""
    with np.errstate(over="ignore"):
        x = (users.astype(np.uint64) << np.uint64(32)) ^ ads.astype(np.uint64)
        h1 = _mix((x ^ np.uint64(key)) + _GOLDEN)
        h2 = _mix(h1 + _GOLDEN)
    u1 = ((h1 >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
    u2 = (h2 >> np.uint64(11)).astype(np.float64) / 2.0**53
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


# ---------------------------------------------------------------------------------- the log
@dataclass
class AdSynthReport:
    """What :func:`synth_ads` wrote."""

    out: str
    format: str
    files: list[str] = field(default_factory=list)
    rows: int = 0  # event rows written: impressions + clicks + conversions + item_events
    impressions: int = 0
    clicks: int = 0
    conversions: int = 0
    item_events: int = 0
    users: int = 0
    items: int = 0
    ads: int = 0
    advertisers: int = 0
    campaigns: int = 0  # per advertiser
    creatives: int = 0  # per campaign
    first_day: str = ""
    days: int = 0
    truth: str = ""
    schema: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


class _Population:
    """Everything that does not change from day to day, and the truth written beside the log."""

    def __init__(self, seed: int, users: int, items: int, tree: tuple[int, int, int], depth_probs: Sequence[float],
                 depth_noise: float, ctr_max: float, ctr_decay: float, base_ctr: float, conversion_rate: float,
                 item_decay: float, targeted_share: float):  # fmt: skip
        a_n, c_n, k_n = tree
        rng = np.random.default_rng([seed, 0xAD5])
        ads = a_n * c_n * k_n
        a = np.arange(ads)
        ad_path = np.stack([a // (c_n * k_n), (a // k_n) % c_n, a % k_n], axis=1).astype(np.int64)
        user_path = np.stack([rng.integers(0, n, users) for n in tree], axis=1).astype(np.int64)
        user_depth = rng.choice(np.arange(1, 4), size=users, p=np.asarray(depth_probs, dtype=np.float64))
        groups = a_n * c_n
        group_of_item = rng.permutation(np.arange(items) % groups)  # campaigns take the items in turn
        item_path = np.stack([group_of_item // c_n, group_of_item % c_n, np.full(items, -1)], axis=1).astype(np.int64)
        pop = 1.0 / (rng.permutation(items) + 1.0)
        self.truth = AdTruth(
            advertisers=a_n, campaigns=c_n, creatives=k_n,
            user_path=user_path, user_depth=user_depth.astype(np.int64), ad_path=ad_path,
            ad_base_ctr=np.minimum(base_ctr * rng.lognormal(-0.125, 0.5, ads), 0.5),
            ad_conversion_rate=np.minimum(conversion_rate * rng.lognormal(-0.125, 0.5, ads), 1.0),
            ad_budget=_normed(rng.lognormal(0.0, 1.0, ads)),
            item_path=item_path, item_popularity=pop / pop.sum(),
            ctr_max=float(ctr_max), ctr_decay=float(ctr_decay), depth_noise=float(depth_noise),
            item_decay=float(item_decay), targeted_share=float(targeted_share),
            noise_key=int(rng.integers(0, 2**63)), seed=int(seed),
        )  # fmt: skip
        self.activity = rng.gamma(2.0, 0.5, users)
        self.ad_cdf = np.cumsum(self.truth.ad_budget)
        self.hour_p = HOURLY / HOURLY.sum()
        # items sorted by campaign, with cumulative popularity: an item of campaign g is a draw in
        # [cum[start[g]], cum[end[g]]) of the popularity mass.
        self.item_order = np.argsort(group_of_item, kind="stable")
        self.item_cum = np.concatenate([[0.0], np.cumsum(self.truth.item_popularity[self.item_order])])
        bounds = np.searchsorted(group_of_item[self.item_order], np.arange(groups + 1))
        self.group_lo, self.group_hi = bounds[:-1], bounds[1:]
        mass = self.item_cum[self.group_hi] - self.item_cum[self.group_lo]
        # campaign weights per user: pop(g) * exp(-item_decay * dist(u, g)); one flat CDF over (user, group)
        g = np.arange(groups)
        gpath = np.stack([g // c_n, g % c_n, np.full(groups, -1)], axis=1)
        dist = _distance(user_path[:, None, :], user_depth[:, None], gpath[None, :, :], ITEM_DEPTH)
        w = mass[None, :] * np.exp(-item_decay * dist)
        w = np.cumsum(w / w.sum(axis=1, keepdims=True), axis=1)
        w[:, -1] = 1.0
        self.group_cdf = (w + np.arange(users)[:, None]).ravel()
        self.groups = groups
        self.prices = np.round(rng.lognormal(3.0, 0.8, items), 2)

    def item_draw(self, user: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        flat = np.searchsorted(self.group_cdf, user + rng.random(user.size), side="right")
        group = np.clip(flat - user * self.groups, 0, self.groups - 1)
        lo, hi = self.group_lo[group], self.group_hi[group]
        x = self.item_cum[lo] + rng.random(user.size) * (self.item_cum[hi] - self.item_cum[lo])
        pos = np.clip(np.searchsorted(self.item_cum, x, side="right") - 1, lo, np.maximum(hi - 1, lo))
        return self.item_order[pos]


def _normed(x: np.ndarray) -> np.ndarray:
    return x / x.sum()


def _times(pop: _Population, midnight: int, n: int, rng: np.random.Generator) -> np.ndarray:
    hour = rng.choice(24, size=n, p=pop.hour_p)
    return midnight + hour * 3600 + rng.integers(0, 3600, n)


def _day_frame(pop: _Population, midnight: int, imp_rate: float, item_rate: float,
               rng: np.random.Generator) -> pl.DataFrame:  # fmt: skip
    t = pop.truth
    users = np.arange(t.num_users)
    last = midnight + _DAY - 1

    # impressions: targeted (an ad of the user's advertiser) or by budget
    user = np.repeat(users, rng.poisson(pop.activity * imp_rate))
    n = user.size
    per_adv = t.campaigns * t.creatives
    targeted = rng.random(n) < t.targeted_share
    by_budget = np.minimum(np.searchsorted(pop.ad_cdf, rng.random(n), side="right"), t.num_ads - 1)
    ad = np.where(targeted, t.user_path[user, 0] * per_adv + rng.integers(0, per_adv, n), by_budget)
    ts = _times(pop, midnight, n, rng)
    click = rng.random(n) < t.ctr(user, ad)
    click_ts = np.minimum(ts[click] + rng.integers(1, 301, int(click.sum())), last)
    conv = rng.random(click_ts.size) < t.ad_conversion_rate[ad[click]]
    conv_ts = np.minimum(click_ts[conv] + rng.integers(60, 7201, int(conv.sum())), last)
    order_value = np.round(rng.lognormal(3.5, 0.8, conv_ts.size), 2)

    # item events: a campaign by interest, an item of it by popularity
    iuser = np.repeat(users, rng.poisson(pop.activity * item_rate))
    item = pop.item_draw(iuser, rng)
    its = _times(pop, midnight, iuser.size, rng)
    purchase = rng.random(iuser.size) < PURCHASE_SHARE

    parts = [
        (ts, user, "ad", ad, "impression", None),
        (click_ts, user[click], "ad", ad[click], "click", None),
        (conv_ts, user[click][conv], "ad", ad[click][conv], "conversion", order_value),
        (its, iuser, "item", item, np.where(purchase, "purchase", "view"), np.where(purchase, pop.prices[item], np.nan)),
    ]  # fmt: skip
    df = pl.concat([
        pl.DataFrame({"timestamp": time, "user_id": who + 1, "target_id": what + 1, "value": value},
                     schema={"timestamp": pl.Int64, "user_id": pl.Int64, "target_id": pl.Int64, "value": pl.Float64})
        .with_columns(target_type=pl.lit(target), event_type=pl.Series(event) if isinstance(event, np.ndarray) else pl.lit(event))
        .select(EVENT_COLUMNS)
        for time, who, target, what, event, value in parts
    ]).with_columns(pl.col("value").fill_nan(None))  # fmt: skip
    return df.sort("timestamp", maintain_order=True).unique(maintain_order=True)


def _write(df: pl.DataFrame, path: Path, fmt: str) -> None:
    from graphrec.utils.io import atomic_open

    with atomic_open(path, "wb") as fh:
        if fmt == "parquet":
            df.write_parquet(fh, compression="zstd", compression_level=1)
        elif fmt == "csv":
            df.write_csv(fh)
        else:
            df.write_ndjson(fh)


def _text_time(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.from_epoch("timestamp", "s").dt.strftime("%Y-%m-%dT%H:%M:%SZ").alias("timestamp"))


def synth_ads(
    out: str | os.PathLike,
    *,
    users: int = 3000,
    items: int = 600,
    advertisers: int = 6,
    campaigns: int = 4,
    creatives: int = 4,
    days: int = 14,
    impressions_per_user: float = 40,
    item_events_per_user: float = 30,
    depth_noise: float = 0.5,
    seed: int = 0,
    format: Literal["parquet", "csv", "ndjson"] = "parquet",
    first_day: int = 0,
    start: str | dt.date = "2024-01-01",
    depth_probs: Sequence[float] = (0.3, 0.4, 0.3),
    targeted_share: float = 0.5,
    ctr_max: float = 0.3,
    ctr_decay: float = 0.8,
    base_ctr: float = 0.01,
    conversion_rate: float = 0.1,
    item_decay: float = 1.5,
    side_tables: bool = True,
) -> AdSynthReport:
    """Write a synthetic hierarchical ad log (module docstring: the generative model) to ``out``.

    Args:
        users, items: population sizes.
        advertisers, campaigns, creatives: the tree; ``campaigns`` per advertiser and
            ``creatives`` per campaign, so ``advertisers * campaigns * creatives`` ads.
        days: days written, ``first_day .. first_day + days - 1`` counted from ``start``.
        impressions_per_user, item_events_per_user: mean events per user over the ``days``
            written (a user's activity scales both).
        depth_noise: spread (standard deviation, in tree levels) of the per-pair deviation
            from the tree distance; 0: CTR follows the tree and the ad's base rate only.
        seed: every draw derives from it; the same arguments write the same files.
        format: ``parquet``, ``csv`` or ``ndjson`` (text formats carry ISO-8601 UTC times).
        first_day: index of the first day; with the same population arguments and seed, a
            later ``first_day`` extends the log (rates are per ``days`` written, so pass
            ``impressions_per_user / days`` per extra day to keep the daily rate).
        depth_probs: shares of users interested in an advertiser, a campaign, a creative.
        targeted_share: share of impressions shown to the user's advertiser (the rest by budget).
        ctr_max, ctr_decay, base_ctr: the CTR curve (module docstring); ``ctr_max`` is the
            CTR at distance 0 above the base rate, ``ctr_decay`` its decay per tree level.
        conversion_rate: mean conversions per click.
        item_decay: decay per tree level of the users' item choices.
        side_tables: also write ``users``, ``items`` and ``ads`` (the truth is always written).

    Returns:
        The files and counts written (``rows = impressions + clicks + conversions + item_events``).

    Raises:
        ValueError: a size below 1, a share outside [0, 1], ``depth_probs`` not three
            non-negative numbers summing to 1, or an unknown format.
    """
    if format not in ("parquet", "csv", "ndjson"):
        raise ValueError(f"format must be parquet, csv or ndjson, got {format!r}")
    sizes = {"users": users, "items": items, "advertisers": advertisers, "campaigns": campaigns,
             "creatives": creatives, "days": days}  # fmt: skip
    small = [f"{k}={v}" for k, v in sizes.items() if v < 1]
    if small:
        raise ValueError(f"sizes must be at least 1: {', '.join(small)}")
    probs = np.asarray(depth_probs, dtype=np.float64)
    if probs.shape != (3,) or (probs < 0).any() or abs(probs.sum() - 1.0) > 1e-9:
        raise ValueError(f"depth_probs must be three non-negative shares summing to 1, got {tuple(depth_probs)}")
    shares = {"targeted_share": targeted_share, "ctr_max": ctr_max, "base_ctr": base_ctr,
              "conversion_rate": conversion_rate}  # fmt: skip
    bad = [f"{k}={v}" for k, v in shares.items() if not 0 <= v <= 1]
    if bad:
        raise ValueError(f"shares must lie in [0, 1]: {', '.join(bad)}")
    rates = {"impressions_per_user": impressions_per_user, "item_events_per_user": item_events_per_user,
             "depth_noise": depth_noise, "ctr_decay": ctr_decay, "item_decay": item_decay}  # fmt: skip
    negative = [f"{k}={v}" for k, v in rates.items() if v < 0]
    if negative:
        raise ValueError(f"must not be negative: {', '.join(negative)}")

    out = Path(out)
    pop = _Population(seed, users, items, (advertisers, campaigns, creatives), probs, depth_noise, ctr_max,
                      ctr_decay, base_ctr, conversion_rate, item_decay, targeted_share)  # fmt: skip
    start_date = dt.date.fromisoformat(start) if isinstance(start, str) else start
    text = format != "parquet"
    report = AdSynthReport(out=str(out), format=format, users=users, items=items, ads=pop.truth.num_ads,
                           advertisers=advertisers, campaigns=campaigns, creatives=creatives, days=days,
                           first_day=(start_date + dt.timedelta(days=first_day)).isoformat())  # fmt: skip
    for k in range(days):
        day_index = first_day + k
        day = start_date + dt.timedelta(days=day_index)
        midnight = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
        rng = np.random.default_rng([seed, 0xAD, day_index])
        df = _day_frame(pop, midnight, impressions_per_user / days, item_events_per_user / days, rng)
        counts = dict(df.group_by("event_type").len().iter_rows())
        report.impressions += counts.get("impression", 0)
        report.clicks += counts.get("click", 0)
        report.conversions += counts.get("conversion", 0)
        report.item_events += counts.get("view", 0) + counts.get("purchase", 0)
        report.rows += df.height
        path = out / "events" / f"events-{day.isoformat()}.{format}"
        _write(_text_time(df) if text else df, path, format)
        report.files.append(str(path))

    if side_tables:
        t = pop.truth
        rng = np.random.default_rng([seed, 0x5EED])
        adv = pl.Series(t.ad_path[:, 0]).cast(pl.String).str.pad_start(2, "0")
        cat = pl.Series(t.item_path[:, 0]).cast(pl.String).str.pad_start(2, "0")
        tables = {
            "users": pl.DataFrame({
                "user_id": np.arange(1, users + 1), "age": rng.integers(16, 80, users),
                "region": np.array(REGIONS)[rng.integers(0, len(REGIONS), users)],
            }),
            "items": pl.DataFrame({
                "item_id": np.arange(1, items + 1), "category": "cat_" + cat,
                "subcategory": "cat_" + cat + "/sub_" + pl.Series(t.item_path[:, 1]).cast(pl.String).str.pad_start(2, "0"),
                "price": pop.prices,
            }),
            "ads": pl.DataFrame({
                "ad_id": np.arange(1, t.num_ads + 1), "advertiser": "adv_" + adv,
                "campaign": "adv_" + adv + "/cmp_" + pl.Series(t.ad_path[:, 1]).cast(pl.String).str.pad_start(2, "0"),
            }),
        }  # fmt: skip
        for name, df in tables.items():
            _write(df, out / f"{name}.{format}", format)
    synth_ads_schema().save(out / "schema.yaml")
    pop.truth.save(out / TRUTH_FILE)  # last: a folder with its truth is complete
    report.truth, report.schema = str(out / TRUTH_FILE), str(out / "schema.yaml")
    return report


def synth_ads_sources(out: str | os.PathLike) -> tuple[list[Path], dict[str, Path]]:
    """``(event sources, side tables by node type)`` of a :func:`synth_ads` folder, for
    :func:`graphrec.store.ingest`.

    Raises:
        SourceError: ``out`` has no ``events`` folder of a synthetic log.
    """
    from graphrec.store.errors import SourceError

    root = Path(out)
    events = root / "events"
    found = sorted(p.suffix for p in events.glob("events-*.*")) if events.is_dir() else []
    if not found:
        raise SourceError(f"{root} is not a synthetic ad log: no {events}/events-YYYY-MM-DD.<ext> files")
    ext = found[0]
    tables = {nt: root / f"{name}{ext}" for nt, name in (("user", "users"), ("item", "items"), ("ad", "ads"))}
    return [events], {nt: p for nt, p in tables.items() if p.is_file()}


def ingest_synth_ads(store: Any, out: str | os.PathLike, **kwargs: Any):
    """Ingest a :func:`synth_ads` folder (events and side tables) into ``store``, created with
    :func:`synth_ads_schema` if new; ``kwargs`` go to :func:`graphrec.store.ingest` (``message``,
    ``progress``, ``echo``...). Returns its :class:`~graphrec.store.IngestReport`."""
    from graphrec.store.ingest import ingest

    events, attributes = synth_ads_sources(out)
    kwargs.setdefault("message", f"synthetic ad log from {out}")
    return ingest(store, events, attributes=attributes, schema=synth_ads_schema(), **kwargs)
