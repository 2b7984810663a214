"""Graph-store benchmark: ingest throughput and peak memory, incremental delta, HeteroData build.

    python benchmarks/store_ingest.py                    # 10M synthetic events (the reported run)
    python benchmarks/store_ingest.py --events 1000000   # a quicker run

Steps, each timed in a fresh child process so that its peak RSS is its own:

1. generate ``--events`` synthetic events over ``--days`` days (parquet, one file per day)
   plus one extra day holding 1% as many events (the delta);
2. full ingest of the ``--days`` days into an empty store;
3. delta ingest of the extra day into that store, against a full re-ingest of all
   ``--days + 1`` days into an empty store;
4. HeteroData build of the whole store, first with a cold per-partition cache, then warm;
5. the same full ingest written plainly with pandas (validate, UTC, drop duplicates,
   factorize ids, write day partitions), for comparison.

Results are printed as a table and, with ``--json PATH``, written as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class _Clock:
    """Wall time and CPU time (user + system, all threads) of a block."""

    def __enter__(self) -> _Clock:
        self.load = os.getloadavg()[0]
        self._r = resource.getrusage(resource.RUSAGE_SELF)
        self._t = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t
        r = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu_seconds = (r.ru_utime - self._r.ru_utime) + (r.ru_stime - self._r.ru_stime)

    def as_dict(self) -> dict:
        return {"seconds": self.seconds, "cpu_seconds": self.cpu_seconds, "load_before": self.load}


# ------------------------------------------------------------------------------ phases (child)
def phase_synth(args: argparse.Namespace) -> dict:
    from graphrec.store import synth

    t = time.perf_counter()
    base = synth(args.work / "logs", events=args.events, days=args.days, seed=args.seed)
    delta_events = max(1, args.events // 100)
    delta = synth(args.work / "delta", events=delta_events, days=1, first_day=args.days, seed=args.seed,
                  users=base.users, items=base.items, ads=base.ads, side_tables=False)
    return {"seconds": time.perf_counter() - t, "rows": base.rows, "delta_rows": delta.rows,
            "users": base.users, "items": base.items, "ads": base.ads}


def phase_ingest(args: argparse.Namespace) -> dict:
    from graphrec.store import LogSchema, ingest

    sources = [Path(p) for p in args.sources.split(",")]
    schema = LogSchema.load(args.work / "logs" / "schema.yaml")
    with _Clock() as clock:
        report = ingest(args.store, sources, schema=schema, echo=False)
    assert report.invariant_ok
    return {**clock.as_dict(), "read": report.read, "accepted": report.accepted,
            "duplicates": report.duplicates, "quarantined": report.quarantined,
            "partitions_written": len(report.partitions_written), "version": report.version}


def phase_build(args: argparse.Namespace) -> dict:
    import torch  # noqa: F401  (imported before timing: import cost is not build cost)
    import torch_geometric  # noqa: F401

    from graphrec.store import build

    out = {}
    for label in ("cold", "warm"):
        with _Clock() as clock:
            data = build(args.store, event_weights={"rating": "value"})
        out[f"{label}_seconds"] = clock.seconds
        out[f"{label}_cpu_seconds"] = clock.cpu_seconds
    out["edges"] = sum(int(data[et].num_edges) for et in data.edge_types if not et[1].startswith("rev_"))
    out["nodes"] = {nt: int(data[nt].num_nodes) for nt in data.node_types}
    return out


def phase_pandas(args: argparse.Namespace) -> dict:
    """The same ingest written plainly with pandas (no quarantine table, no manifest)."""
    import numpy as np
    import pandas as pd

    files = sorted((args.work / "logs" / "events").glob("*.parquet"))
    out = Path(args.store)
    clock = _Clock().__enter__()
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    read = len(df)
    required = ["timestamp", "user_id", "target_type", "target_id", "event_type"]
    ok = df[required].notna().all(axis=1)
    ok &= df["target_type"].isin(["item", "ad"])
    ok &= df["event_type"].isin(["view", "click", "add_to_cart", "purchase", "rating", "impression", "conversion"])
    df["timestamp"] = pd.to_datetime(df["timestamp"], unit="s", utc=True, errors="coerce")
    ok &= df["timestamp"].notna()
    bad = df[~ok]
    df = df[ok]
    before = len(df)
    df = df.drop_duplicates()
    duplicates = before - len(df)
    df["user"] = pd.factorize(df["user_id"])[0]
    df["target"] = -1
    for tt in ("item", "ad"):
        m = df["target_type"] == tt
        df.loc[m, "target"] = pd.factorize(df.loc[m, "target_id"])[0]
    df = df.sort_values("timestamp", kind="stable")
    df["day"] = df["timestamp"].dt.strftime("%Y-%m-%d")
    cols = ["timestamp", "user", "target_type", "target", "event_type", "value", "device"]
    for day, part in df.groupby("day", sort=True):
        d = out / f"day={day}"
        d.mkdir(parents=True, exist_ok=True)
        part[cols].to_parquet(d / "part.parquet", compression="zstd", index=False)
    bad.to_parquet(out / "quarantine.parquet", index=False)
    clock.__exit__()
    return {**clock.as_dict(), "read": read, "accepted": len(df), "duplicates": duplicates,
            "quarantined": len(bad), "pandas": pd.__version__, "numpy": np.__version__}


PHASES = {"synth": phase_synth, "ingest": phase_ingest, "build": phase_build, "pandas": phase_pandas}


def run_phase(name: str, args: argparse.Namespace, **extra: str) -> dict:
    cmd = [sys.executable, __file__, "--phase", name, "--work", str(args.work),
           "--events", str(args.events), "--days", str(args.days), "--seed", str(args.seed)]
    for k, v in extra.items():
        cmd += [f"--{k}", str(v)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"phase {name} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ driver
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=10_000_000, help="synthetic events (default 10M)")
    p.add_argument("--days", type=int, default=30, help="days the events span (default 30)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.add_argument("--skip-pandas", action="store_true", help="skip the pandas comparison")
    p.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    p.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--sources", type=str, help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.phase:
        result = PHASES[args.phase](args)
        result["peak_rss_mb"] = _peak_rss_mb()
        print(json.dumps(result))
        return

    own_work = args.work is None
    args.work = Path(args.work or tempfile.mkdtemp(prefix="graphrec-bench-"))
    args.work.mkdir(parents=True, exist_ok=True)
    logs, delta = args.work / "logs" / "events", args.work / "delta" / "events"
    try:
        res: dict = {"events": args.events, "days": args.days, "cpus": os.cpu_count(),
                     "command": " ".join([Path(sys.executable).name, *sys.argv]),
                     "python": platform.python_version(), "machine": platform.machine()}
        import polars as pl

        res["polars"] = pl.__version__
        print(f"generating {args.events:,} events over {args.days} days (+1 delta day) in {args.work} ...", flush=True)
        res["synth"] = run_phase("synth", args)

        print("full ingest ...", flush=True)
        res["full"] = run_phase("ingest", args, store=args.work / "store", sources=logs)
        res["full"]["events_per_s"] = res["full"]["read"] / res["full"]["seconds"]

        print("delta ingest (one more day, 1%) ...", flush=True)
        res["delta"] = run_phase("ingest", args, store=args.work / "store", sources=delta)
        print("full re-ingest of all days ...", flush=True)
        res["reingest"] = run_phase("ingest", args, store=args.work / "store2", sources=f"{logs},{delta}")
        res["delta_vs_reingest"] = res["delta"]["seconds"] / res["reingest"]["seconds"]
        shutil.rmtree(args.work / "store2", ignore_errors=True)

        print("HeteroData build ...", flush=True)
        res["build"] = run_phase("build", args, store=args.work / "store")

        if not args.skip_pandas:
            print("pandas ingest ...", flush=True)
            res["pandas"] = run_phase("pandas", args, store=args.work / "pandas")
            res["pandas"]["events_per_s"] = res["pandas"]["read"] / res["pandas"]["seconds"]
            res["pandas_vs_store"] = res["pandas"]["seconds"] / res["full"]["seconds"]
    finally:
        if own_work:
            shutil.rmtree(args.work, ignore_errors=True)

    f, d, r, b = res["full"], res["delta"], res["reingest"], res["build"]
    rows = [
        ("full ingest", f"{f['read']:,} rows in {f['seconds']:.2f} s = {f['events_per_s'] / 1e6:.2f} M events/s; "
                        f"CPU {f['cpu_seconds']:.1f} s; peak RSS {f['peak_rss_mb'] / 1024:.2f} GiB; "
                        f"load before {f['load_before']:.1f}"),
        ("delta ingest (1 day, 1%)", f"{d['read']:,} rows in {d['seconds']:.2f} s; "
                                     f"{d['partitions_written']} partition written"),
        ("full re-ingest", f"{r['read']:,} rows in {r['seconds']:.2f} s; "
                           f"delta/full = {100 * res['delta_vs_reingest']:.1f}%"),
        ("HeteroData build", f"{b['edges']:,} edges: cold cache {b['cold_seconds']:.2f} s, "
                             f"warm cache {b['warm_seconds']:.2f} s (CPU {b['warm_cpu_seconds']:.1f} s); peak RSS {b['peak_rss_mb'] / 1024:.2f} GiB"),
    ]
    if "pandas" in res:
        pd_ = res["pandas"]
        rows.append(("pandas ingest", f"{pd_['seconds']:.2f} s = {pd_['events_per_s'] / 1e6:.2f} M events/s; "
                                      f"CPU {pd_['cpu_seconds']:.1f} s; peak RSS {pd_['peak_rss_mb'] / 1024:.2f} GiB; "
                                      f"pandas/store time = {res['pandas_vs_store']:.2f}x"))
    width = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
