"""Helpers of the ad-targeting tests: small ad logs with a planted click rule, as stores."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from graphrec.store import GraphStore, LogSchema, NodeAttributes, ingest

DAY = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def ad_schema() -> LogSchema:
    return LogSchema(
        target_types=["item", "ad"],
        event_types=["view", "impression", "click", "conversion"],
        attributes={
            "user": NodeAttributes(id_column="user_id", columns={"age": "numeric"}),
            "item": NodeAttributes(id_column="item_id", columns={"shelf": "categorical"}),
            "ad": NodeAttributes(id_column="ad_id", columns={"advertiser": "categorical"}),
        },
    )


def planted_ad_frame(users: int = 60, ads: int = 8, items: int = 12, days: int = 2, seed: int = 0,
                     impressions: bool = True, p_in: float = 0.8, p_out: float = 0.05) -> pl.DataFrame:  # fmt: skip
    """Every user is shown every ad once (on a random day); users and ads fall in two groups and a
    user clicks an ad of its own group with probability ``p_in``, of the other with ``p_out`` (a
    conversion follows one click in four). Each user views 6 items, 90% of its own group.
    ``impressions=False`` keeps the clicks only (a log without impressions)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        for a in range(ads):
            t = DAY + dt.timedelta(days=int(rng.integers(days)), seconds=int(rng.integers(80_000)))
            if impressions:
                rows.append((t, f"u{u}", "ad", f"a{a}", "impression"))
            if rng.random() < (p_in if u % 2 == a % 2 else p_out):
                rows.append((t + dt.timedelta(seconds=30), f"u{u}", "ad", f"a{a}", "click"))
                if rng.random() < 0.25:
                    rows.append((t + dt.timedelta(seconds=90), f"u{u}", "ad", f"a{a}", "conversion"))
        for _ in range(6):
            own = rng.random() < 0.9
            i = int(rng.integers(items // 2)) * 2 + (u % 2 if own else 1 - u % 2)
            t = DAY + dt.timedelta(days=int(rng.integers(days)), seconds=int(rng.integers(80_000)))
            rows.append((t, f"u{u}", "item", f"i{i}", "view"))
    return pl.DataFrame(rows, schema=["timestamp", "user_id", "target_type", "target_id", "event_type"], orient="row")


def side_tables(users: int = 60, ads: int = 8, items: int = 12) -> dict:
    return {
        "user": [("users", pl.DataFrame({"user_id": [f"u{u}" for u in range(users)], "age": [20.0 + u for u in range(users)]}))],
        "item": [("items", pl.DataFrame({"item_id": [f"i{i}" for i in range(items)], "shelf": [f"s{i % 2}" for i in range(items)]}))],
        "ad": [("ads", pl.DataFrame({"ad_id": [f"a{a}" for a in range(ads)], "advertiser": [f"adv{a % 2}" for a in range(ads)]}))],
    }  # fmt: skip


def planted_ad_store(root: Path, **kwargs) -> Path:
    """A store holding :func:`planted_ad_frame` (keyword arguments go to it) and the side tables."""
    sizes = {k: kwargs[k] for k in ("users", "ads", "items") if k in kwargs}
    rep = ingest(root, [("events", planted_ad_frame(**kwargs))], attributes=side_tables(**sizes), schema=ad_schema(),
                 echo=False)  # fmt: skip
    assert rep.accepted > 0 and GraphStore.exists(root)
    return root
