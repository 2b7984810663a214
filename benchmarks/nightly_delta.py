"""Nightly incremental cost: one night's delta (ingest + build) against a full rebuild.

    python benchmarks/nightly_delta.py --sliding --evicted --json results/nightly_delta.json
    python benchmarks/nightly_delta.py --events 1000000        # a quicker run

The nightly pipeline ingests one day of logs into the graph store, then builds the
training graph of a window of days through
``Interactions.from_store(store, RecDataConfig(window=..., target="item"), version=V)``.
This benchmark measures that night against rebuilding everything from the logs.

Steps, each timed in a fresh child process so that its peak RSS is its own:

1. generate ``--events`` synthetic events (default 10M) over ``--days`` days plus one
   extra day holding 1% as many events (the night's delta);
2. FULL REBUILD: ingest all ``--days + 1`` days into an empty store, then the pipeline's
   build over the window of all days, with a cold partition cache;
3. NIGHTLY: on a second store that already holds the ``--days`` days and whose cache is
   warm from the previous night's build (the window without the new day), ingest the new
   day, then the same build as in 2;
4. with ``--sliding``, the same for a sliding window of ``--days`` days: the night's window
   drops the oldest day and adds the new one;
5. with ``--evicted``, 2 and 3 again with the files each step reads dropped from the OS
   page cache first (``posix_fadvise``), as when the previous night was a day ago.

Both builds of one window must give the same interactions; the benchmark checks that
(a digest of the user, item and time arrays) and fails otherwise. Results are printed as
a table and, with ``--json PATH``, written as JSON together with the command, the
machine and the load average before every step.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:  # run as a script (benchmarks/ on sys.path) or as benchmarks.nightly_delta
    from store_ingest import _Clock, _peak_rss_mb
except ImportError:  # pragma: no cover
    from benchmarks.store_ingest import _Clock, _peak_rss_mb

START = dt.date(2024, 1, 1)  # first day of the synthetic log (synth's default start)




def _day(i: int) -> str:
    return (START + dt.timedelta(days=i)).isoformat()


# ------------------------------------------------------------------------------ phases (child)
def phase_synth(args: argparse.Namespace) -> dict:
    from graphrec.store import synth

    t = time.perf_counter()
    base = synth(
        args.work / "logs", events=args.events, days=args.days, seed=args.seed, start=START
    )
    delta = synth(
        args.work / "delta",
        events=max(1, args.events // 100),
        days=1,
        first_day=args.days,
        start=START,
        seed=args.seed,
        users=base.users,
        items=base.items,
        ads=base.ads,
        side_tables=False,
    )
    return {
        "seconds": time.perf_counter() - t,
        "rows": base.rows,
        "delta_rows": delta.rows,
        "users": base.users,
        "items": base.items,
        "ads": base.ads,
    }


def _evict(paths: str | None) -> int:
    """Drop the files under ``paths`` from the OS page cache; returns the bytes evicted.

    ``posix_fadvise(DONTNEED)`` drops only these files' clean pages, so the next read
    comes from disk, as after a day of other work, without touching the rest of the
    machine's cache.
    """
    total = 0
    for root in filter(None, (paths or "").split(",")):
        root_path = Path(root)
        for f in [root_path] if root_path.is_file() else root_path.rglob("*"):
            if f.is_file():
                fd = os.open(f, os.O_RDONLY)
                try:
                    os.fsync(fd)  # dirty pages cannot be dropped
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    total += f.stat().st_size
                finally:
                    os.close(fd)
    return total


def phase_ingest(args: argparse.Namespace) -> dict:
    from graphrec.store import LogSchema, ingest

    sources = [Path(p) for p in args.sources.split(",")]
    schema = LogSchema.load(args.work / "logs" / "schema.yaml")
    evicted = _evict(args.evict)
    with _Clock() as clock:
        report = ingest(args.store, sources, schema=schema, echo=False)
    assert report.invariant_ok
    return {
        **clock.as_dict(),
        "read": report.read,
        "accepted": report.accepted,
        "partitions_written": len(report.partitions_written),
        "version": report.version,
        "evicted_bytes": evicted,
    }


def phase_build(args: argparse.Namespace) -> dict:
    """The pipeline's build: the store's graph of the window, read as item interactions."""
    import hashlib

    import torch  # noqa: F401  (imported before timing: import cost is not build cost)
    import torch_geometric  # noqa: F401

    from graphrec.config.rec import RecDataConfig
    from graphrec.data.interactions import Interactions
    from graphrec.store import GraphStore

    store = GraphStore(args.store)
    version = store.version
    cfg = RecDataConfig(window=(args.start, args.end), target="item")
    evicted = _evict(args.evict)
    with _Clock() as clock:
        inter = Interactions.from_store(store, cfg, version=version)
    digest = hashlib.sha256()
    for a in (inter.user, inter.item, inter.time):
        digest.update(a.tobytes())
    return {
        **clock.as_dict(),
        "version": version,
        "window": [args.start, args.end],
        "interactions": int(inter.user.shape[0]),
        "users": inter.num_users,
        "items": inter.num_items,
        "digest": digest.hexdigest(),
        "evicted_bytes": evicted,
    }


PHASES = {"synth": phase_synth, "ingest": phase_ingest, "build": phase_build}


def run_phase(name: str, args: argparse.Namespace, **extra: object) -> dict:
    cmd = [sys.executable, __file__, "--phase", name, "--work", str(args.work),
           "--events", str(args.events), "--days", str(args.days), "--seed", str(args.seed)]  # fmt: skip
    for k, v in extra.items():
        cmd += [f"--{k}", str(v)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"phase {name} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _link_copy(src: Path, dst: Path) -> None:
    """Copy a store with hard links: its files are never modified in place, only replaced."""
    shutil.copytree(src, dst, copy_function=os.link)


def _variant(
    args: argparse.Namespace,
    name: str,
    first: int,
    full_store: Path,
    night_store: Path,
    evict: bool,
) -> dict:
    """One variant: the full rebuild's cold build and the night's ingest + build of one window.

    With ``evict``, the files each step reads are dropped from the page cache first.
    """
    window = (_day(first), _day(args.days + 1))
    delta = args.work / "delta" / "events"
    out: dict = {"window": list(window), "evicted": evict}
    print(f"[{name}] full rebuild: build {window[0]} .. {window[1]}, cold cache ...", flush=True)
    shutil.rmtree(full_store / "cache", ignore_errors=True)
    out["full_build"] = run_phase(
        "build",
        args,
        store=full_store,
        start=window[0],
        end=window[1],
        evict=full_store if evict else "",
    )
    print(f"[{name}] nightly: ingest the new day ...", flush=True)
    out["night_ingest"] = run_phase(
        "ingest",
        args,
        store=night_store,
        sources=delta,
        evict=f"{delta},{night_store}" if evict else "",
    )
    print(f"[{name}] nightly: build {window[0]} .. {window[1]} ...", flush=True)
    out["night_build"] = run_phase(
        "build",
        args,
        store=night_store,
        start=window[0],
        end=window[1],
        evict=night_store if evict else "",
    )
    if out["night_build"]["digest"] != out["full_build"]["digest"]:
        raise SystemExit(f"[{name}] the nightly build differs from the full rebuild's build")
    return out


# ------------------------------------------------------------------------------ driver
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=10_000_000, help="synthetic events (default 10M)")
    p.add_argument("--days", type=int, default=30, help="days before the new day (default 30)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sliding", action="store_true", help="also a sliding window of --days days")
    p.add_argument(
        "--evicted",
        action="store_true",
        help="also the growing window with every step's input files evicted from the page cache",
    )
    p.add_argument(
        "--work", type=Path, default=None, help="work folder (default: temporary, removed)"
    )
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    p.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--sources", type=str, help=argparse.SUPPRESS)
    p.add_argument("--start", type=str, help=argparse.SUPPRESS)
    p.add_argument("--end", type=str, help=argparse.SUPPRESS)
    p.add_argument("--evict", type=str, default="", help=argparse.SUPPRESS)
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
    import polars as pl

    res: dict = {
        "events": args.events,
        "days": args.days,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "polars": pl.__version__,
        "load_start": os.getloadavg(),
    }
    stores = {k: args.work / k for k in ("full", "full_evicted", "night", "night_evicted", "slide")}
    try:
        print(
            f"generating {args.events:,} events over {args.days} (+1) days in {args.work} ...",
            flush=True,
        )
        res["synth"] = run_phase("synth", args)

        print("full rebuild: ingest all days into an empty store ...", flush=True)
        res["full_ingest"] = run_phase(
            "ingest", args, store=stores["full"], sources=f"{logs},{delta}"
        )
        print("nightly setup: the store of the previous nights and their build ...", flush=True)
        res["setup_ingest"] = run_phase("ingest", args, store=stores["night"], sources=logs)
        res["previous_build"] = run_phase(
            "build", args, store=stores["night"], start=_day(0), end=_day(args.days)
        )
        variants = [("growing", 0, "full", "night", False)]
        if args.sliding:
            _link_copy(stores["night"], stores["slide"])
            variants.append(("sliding", 1, "full", "slide", False))
        if args.evicted:
            _link_copy(stores["night"], stores["night_evicted"])
            print("full rebuild, evicted inputs: ingest all days ...", flush=True)
            res["full_ingest_evicted"] = run_phase(
                "ingest",
                args,
                store=stores["full_evicted"],
                sources=f"{logs},{delta}",
                evict=f"{logs},{delta}",
            )
            variants.append(
                ("evicted", 0, "full_evicted", "night_evicted", True)
            )  # last: it evicts shared files
        for name, first, full, night, evict in variants:
            res[name] = _variant(args, name, first, stores[full], stores[night], evict)
            res[name]["full_ingest"] = res["full_ingest_evicted" if evict else "full_ingest"]
        res["load_end"] = os.getloadavg()
    finally:
        if own_work:
            shutil.rmtree(args.work, ignore_errors=True)

    rows = []
    for name, *_ in variants:
        v = res[name]
        fi, fb, ni, nb = v["full_ingest"], v["full_build"], v["night_ingest"], v["night_build"]
        full, night = fi["seconds"] + fb["seconds"], ni["seconds"] + nb["seconds"]
        full_cpu, night_cpu = (
            fi["cpu_seconds"] + fb["cpu_seconds"],
            ni["cpu_seconds"] + nb["cpu_seconds"],
        )
        v.update(full_seconds=full, night_seconds=night, ratio=night / full)
        v.update(
            full_cpu_seconds=full_cpu, night_cpu_seconds=night_cpu, cpu_ratio=night_cpu / full_cpu
        )
        rss_full = max(fi["peak_rss_mb"], fb["peak_rss_mb"]) / 1024
        rss_night = max(ni["peak_rss_mb"], nb["peak_rss_mb"]) / 1024
        rows += [
            (f"{name} {v['window'][0]}..{v['window'][1]}", f"{nb['interactions']:,} interactions"),
            (
                "  full: ingest + cold build",
                f"{fi['seconds']:.2f} + {fb['seconds']:.2f} = {full:.2f} s "
                f"(CPU {full_cpu:.1f} s; peak RSS {rss_full:.2f} GiB)",
            ),
            (
                "  nightly: delta ingest + build",
                f"{ni['seconds']:.2f} + {nb['seconds']:.2f} = {night:.2f} s "
                f"(CPU {night_cpu:.1f} s; peak RSS {rss_night:.2f} GiB)",
            ),
            (
                "  nightly / full",
                f"{100 * v['ratio']:.1f}% wall, {100 * v['cpu_ratio']:.1f}% CPU (target <= 10%)",
            ),
        ]
    rows.append(
        ("previous night's build (warms the cache)", f"{res['previous_build']['seconds']:.2f} s")
    )
    width = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
