"""Synthetic interaction logs at any scale, for scale and fault tests.

The generator is vectorised numpy, one UTC day at a time, each day seeded from
``(seed, day index)`` so a later day can be generated alone (an incremental delta) and
still belong to the same population:

* users with power-law (Pareto) activity, each in one of ``clusters`` taste clusters;
* items and ads with Zipf popularity; 60% of a user's picks come from its cluster's
  shifted popularity ranking, so clusters have their own hot items;
* a daily rhythm (activity peaks in the evening, dips at night);
* item events (view, click, add_to_cart, purchase with a price, rating 1-5) and ad events
  (impression, click, conversion), a ``device`` context column;
* side tables for users (age, region), items (category, price, title) and ads
  (advertiser, campaign, bid);
* optionally a share of bad rows (null ids, unknown event/target types, impossible
  timestamps; in CSV/NDJSON also unparsable values and malformed lines) and of exact
  duplicate rows. The counts written are returned, so a test can check the ingest.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from graphrec.store.schema import LogSchema, NodeAttributes

ITEM_EVENTS = (("view", 0.70), ("click", 0.20), ("add_to_cart", 0.05), ("purchase", 0.03), ("rating", 0.02))
AD_EVENTS = (("impression", 0.90), ("click", 0.08), ("conversion", 0.02))
DEVICES = ("mobile", "web", "app")
REGIONS = ("north", "south", "east", "west", "central")
CATEGORIES = ("books", "electronics", "fashion", "home", "sports", "toys", "food", "beauty")
AD_SHARE = 0.3
CLUSTER_SHARE = 0.6
#: Relative activity per hour of the day (UTC): low at night, peak in the evening.
HOURLY = 1.0 + 0.8 * np.sin(2 * np.pi * (np.arange(24) - 14) / 24)


@dataclass
class SynthReport:
    """What :func:`synth` wrote."""

    out: str
    format: str
    files: list[str] = field(default_factory=list)
    rows: int = 0          # event rows written (good + bad + duplicates + malformed lines)
    good: int = 0
    bad: int = 0           # rows that must be quarantined (including malformed lines)
    duplicates: int = 0    # exact copies of good rows added on purpose
    users: int = 0
    items: int = 0
    ads: int = 0
    first_day: str = ""
    days: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def synth_schema(id_type: Literal["int", "string"] = "int") -> LogSchema:
    """The log schema of the synthetic logs."""
    return LogSchema(
        name="synthetic",
        id_type=id_type,
        target_types=["item", "ad"],
        event_types=["view", "click", "add_to_cart", "purchase", "rating", "impression", "conversion"],
        context={"device": "string"},
        attributes={
            "user": NodeAttributes(id_column="user_id", columns={"age": "numeric", "region": "categorical"}),
            "item": NodeAttributes(
                id_column="item_id", columns={"category": "categorical", "price": "numeric", "title": "text"}
            ),
            "ad": NodeAttributes(
                id_column="ad_id", columns={"advertiser": "categorical", "campaign": "categorical", "bid": "numeric"}
            ),
        },
    )


def default_sizes(events: int) -> tuple[int, int, int]:
    """Users, items and ads for a log of ``events`` rows."""
    return max(100, events // 50), max(50, events // 200), max(10, events // 2000)


class _Population:
    def __init__(self, seed: int, users: int, items: int, ads: int, clusters: int):
        rng = np.random.default_rng([seed, 0xC0FFEE])
        self.users, self.items, self.ads = users, items, ads
        activity = rng.pareto(1.5, users) + 1.0
        self.user_cdf = np.cumsum(activity / activity.sum())
        self.cluster = rng.integers(0, clusters, users)
        self.item_of_rank = rng.permutation(items)
        self.ad_of_rank = rng.permutation(ads)
        self.item_cdf = _zipf_cdf(items, 1.05)
        self.ad_cdf = _zipf_cdf(ads, 0.9)
        self.item_shift = rng.integers(0, items, clusters)
        self.ad_shift = rng.integers(0, ads, clusters)
        self.hour_p = HOURLY / HOURLY.sum()


def _zipf_cdf(n: int, s: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return np.cumsum(w / w.sum())


def _draw(rng: np.random.Generator, cdf: np.ndarray, n: int) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), cdf.size - 1)


def _day_frame(pop: _Population, day: dt.date, n: int, rng: np.random.Generator) -> pl.DataFrame:
    user = _draw(rng, pop.user_cdf, n)
    cluster = pop.cluster[user]
    is_ad = rng.random(n) < AD_SHARE
    local = rng.random(n) < CLUSTER_SHARE
    item_rank = _draw(rng, pop.item_cdf, n)
    item_rank = np.where(local, (item_rank + pop.item_shift[cluster]) % pop.items, item_rank)
    ad_rank = _draw(rng, pop.ad_cdf, n)
    ad_rank = np.where(local, (ad_rank + pop.ad_shift[cluster]) % pop.ads, ad_rank)
    target = np.where(is_ad, pop.ad_of_rank[ad_rank], pop.item_of_rank[item_rank])

    item_names = np.array([e for e, _ in ITEM_EVENTS])
    ad_names = np.array([e for e, _ in AD_EVENTS])
    item_ev = item_names[_draw(rng, np.cumsum([p for _, p in ITEM_EVENTS]), n)]
    ad_ev = ad_names[_draw(rng, np.cumsum([p for _, p in AD_EVENTS]), n)]
    event = np.where(is_ad, ad_ev, item_ev)

    hour = rng.choice(24, size=n, p=pop.hour_p)
    midnight = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
    ts = midnight + hour * 3600 + rng.integers(0, 3600, n)

    value = np.full(n, np.nan)
    rating = event == "rating"
    value[rating] = np.clip(np.round(rng.normal(3.6, 1.1, rating.sum())), 1, 5)
    priced = (event == "purchase") | (event == "conversion")
    value[priced] = np.round(rng.lognormal(3.0, 0.8, priced.sum()), 2)
    device = np.array(DEVICES)[_draw(rng, np.cumsum([0.55, 0.30, 0.15]), n)]

    df = pl.DataFrame({
        "timestamp": ts.astype(np.int64),
        "user_id": user.astype(np.int64) + 1,
        "target_type": np.where(is_ad, "ad", "item"),
        "target_id": target.astype(np.int64) + 1,
        "event_type": event,
        "value": value,
        "device": device,
    }).with_columns(pl.col("value").fill_nan(None))
    return df.sort("timestamp", maintain_order=True)


def _corrupt(df: pl.DataFrame, rng: np.random.Generator, bad_rate: float, dup_rate: float, text: bool):
    """Return (frame with bad rows and duplicates, number of bad rows, number of duplicates)."""
    n = df.height
    n_bad = int(round(n * bad_rate))
    n_dup = int(round(n * dup_rate))
    if not n_bad and not n_dup:
        return df, 0, 0
    if text:
        df = df.with_columns(pl.col("timestamp").cast(pl.String), pl.col("value").cast(pl.String))
    idx = rng.permutation(n)
    bad_idx, dup_idx = idx[:n_bad], idx[n_bad:n_bad + n_dup]
    kinds = ["null_user", "null_target", "unknown_event", "unknown_target", "time_range"]
    if text:
        kinds += ["bad_time", "bad_value"]
    kind = np.array(kinds)[np.arange(n_bad) % len(kinds)]
    row = pl.Series("__i", np.arange(n))

    def mask(k: str) -> pl.Series:
        return row.is_in(pl.Series(bad_idx[kind == k]).implode())

    df = df.with_columns(
        user_id=pl.when(mask("null_user")).then(None).otherwise(pl.col("user_id")),
        target_id=pl.when(mask("null_target")).then(None).otherwise(pl.col("target_id")),
        event_type=pl.when(mask("unknown_event")).then(pl.lit("clik")).otherwise(pl.col("event_type")),
        target_type=pl.when(mask("unknown_target")).then(pl.lit("banner")).otherwise(pl.col("target_type")),
        timestamp=pl.when(mask("time_range")).then(
            pl.lit("-86400") if text else pl.lit(-86400, pl.Int64)
        ).otherwise(pl.col("timestamp")),
    )
    if text:
        df = df.with_columns(
            timestamp=pl.when(mask("bad_time")).then(pl.lit("yesterday")).otherwise(pl.col("timestamp")),
            value=pl.when(mask("bad_value")).then(pl.lit("n/a")).otherwise(pl.col("value")),
        )
    if n_dup:
        df = pl.concat([df, df[dup_idx.tolist()]])
    return df, n_bad, n_dup


def _with_ids(df: pl.DataFrame, id_type: str, id_cols: dict[str, str]) -> pl.DataFrame:
    if id_type == "int":
        return df
    return df.with_columns([pl.concat_str(pl.lit(prefix), pl.col(c).cast(pl.String)).alias(c) for c, prefix in id_cols.items()])


def _write(df: pl.DataFrame, path: Path, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if fmt == "parquet":
        df.write_parquet(tmp, compression="zstd", compression_level=1)
    elif fmt == "csv":
        df.write_csv(tmp)
    else:
        df.write_ndjson(tmp)
    os.replace(tmp, path)


def synth(
    out: str | os.PathLike,
    *,
    events: int = 1_000_000,
    days: int = 30,
    first_day: int = 0,
    start: str | dt.date = "2024-01-01",
    users: int | None = None,
    items: int | None = None,
    ads: int | None = None,
    clusters: int = 20,
    bad_rate: float = 0.0,
    duplicate_rate: float = 0.0,
    format: Literal["parquet", "csv", "ndjson"] = "parquet",
    id_type: Literal["int", "string"] = "int",
    side_tables: bool = True,
    seed: int = 0,
    progress: bool = False,
) -> SynthReport:
    """Write ``events`` rows spread over days ``first_day .. first_day + days - 1``.

    Files: ``<out>/events/events-YYYY-MM-DD.<ext>`` (one per day), ``<out>/users.<ext>``,
    ``items.<ext>``, ``ads.<ext>`` and ``<out>/schema.yaml``. Population sizes default
    to :func:`default_sizes`; pass the same sizes and seed to extend a log by more days.
    """
    if format not in ("parquet", "csv", "ndjson"):
        raise ValueError(f"format must be parquet, csv or ndjson, got {format!r}")
    if not 0 <= bad_rate < 1 or not 0 <= duplicate_rate < 1:
        raise ValueError("bad_rate and duplicate_rate must be in [0, 1)")
    out = Path(out)
    du, di, da = default_sizes(events)
    users, items, ads = users or du, items or di, ads or da
    pop = _Population(seed, users, items, ads, clusters)
    start_date = dt.date.fromisoformat(start) if isinstance(start, str) else start
    ext = {"parquet": "parquet", "csv": "csv", "ndjson": "ndjson"}[format]
    text = format != "parquet"
    report = SynthReport(out=str(out), format=format, users=users, items=items, ads=ads, days=days,
                         first_day=(start_date + dt.timedelta(days=first_day)).isoformat())
    per_day = np.full(days, events // days, dtype=np.int64)
    per_day[: events % days] += 1
    id_cols = {"user_id": "u", "target_id": "t"}

    bar = None
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        task = bar.add_task("generating days", total=days)
    try:
        for k in range(days):
            day_index = first_day + k
            day = start_date + dt.timedelta(days=day_index)
            rng = np.random.default_rng([seed, day_index])
            df = _day_frame(pop, day, int(per_day[k]), rng)
            good = df.height
            df, n_bad, n_dup = _corrupt(df, rng, bad_rate, duplicate_rate, text)
            if text:  # epoch seconds as ISO text (the column is text only when rows were corrupted)
                ts = pl.col("timestamp").cast(pl.String)
                df = df.with_columns(
                    timestamp=pl.when(ts.str.contains(r"^\d+$"))
                    .then(pl.from_epoch(ts.cast(pl.Int64, strict=False), "s").dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
                    .otherwise(ts)
                )
            df = _with_ids(df, id_type, id_cols)
            path = out / "events" / f"events-{day.isoformat()}.{ext}"
            _write(df, path, format)
            malformed = 0
            if text and bad_rate > 0:
                malformed = max(1, n_bad // 10)
                with open(path, "a", encoding="utf-8") as fh:
                    for _ in range(malformed):
                        fh.write(f"{day.isoformat()}T12:00:00Z,1,item\n" if format == "csv" else '{"timestamp": 1, "user_id": \n')
            report.files.append(str(path))
            report.rows += df.height + malformed
            report.good += good - n_bad
            report.bad += n_bad + malformed
            report.duplicates += n_dup
            if bar is not None:
                bar.update(task, advance=1)
    finally:
        if bar is not None:
            bar.stop()

    if side_tables:
        rng = np.random.default_rng([seed, 0x5EED])
        tables = {
            "users": pl.DataFrame({
                "user_id": np.arange(1, users + 1), "age": rng.integers(16, 80, users),
                "region": np.array(REGIONS)[rng.integers(0, len(REGIONS), users)],
            }),
            "items": pl.DataFrame({
                "item_id": np.arange(1, items + 1),
                "category": np.array(CATEGORIES)[rng.integers(0, len(CATEGORIES), items)],
                "price": np.round(rng.lognormal(3.0, 0.8, items), 2),
            }).with_columns(title=pl.concat_str(pl.col("category"), pl.lit(" product #"), pl.col("item_id").cast(pl.String))),
            "ads": pl.DataFrame({
                "ad_id": np.arange(1, ads + 1),
                "advertiser": pl.Series(rng.integers(0, max(2, ads // 10), ads)).cast(pl.String).str.pad_start(4, "0"),
                "campaign": pl.Series(rng.integers(0, max(2, ads // 3), ads)).cast(pl.String).str.pad_start(5, "0"),
                "bid": np.round(rng.uniform(0.05, 2.0, ads), 3),
            }),
        }
        for name, df in tables.items():
            id_col = {"users": "user_id", "items": "item_id", "ads": "ad_id"}[name]
            df = _with_ids(df, id_type, {id_col: "u" if name == "users" else "t"})
            _write(df, out / f"{name}.{ext}", format)
    synth_schema(id_type).save(out / "schema.yaml")
    return report
