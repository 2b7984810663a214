"""Serving latency: ``recommend()`` on a warm index, per query.

Measures an exported model folder (``--model DIR``, e.g. from
``graphrec bench rec --export``), or a synthetic one of ``--users`` x ``--items`` random
embeddings with ``--seen`` seen items per user (built in a temporary folder). The
recommender is loaded once (the warm state a server keeps), then ``--queries`` random
known users are asked for ``-k`` unseen items one query at a time; every answer is
checked to hold k items none of which the user has seen. Wall-clock and CPU time per query
are both reported: on a shared machine the wall clock also counts time the process waited
for a core. Also reports the wall time of one
cold ``graphrec recommend`` process (interpreter start, imports and loading included) for
context.

    python -m benchmarks.rec_serving --model models/lightgcn --queries 2000 -k 10
    python -m benchmarks.rec_serving --users 100000 --items 50000 --queries 2000 -k 10
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from graphrec.serving import export_embeddings, load_recommender
from graphrec.utils.io import atomic_write_json


def synthetic_model(root: Path, users: int, items: int, dim: int, seen: int, index: str, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    su = np.repeat(np.arange(users), seen)
    si = rng.integers(0, items, users * seen)
    return export_embeddings(root / "model", rng.normal(size=(users, dim)).astype(np.float32),
                             rng.normal(size=(items, dim)).astype(np.float32), seen=(su, si), index=index)  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="exported model folder (default: a synthetic one)")
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--items", type=int, default=50_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--seen", type=int, default=50, help="synthetic: seen items per user")
    p.add_argument("--index", default="flat", choices=["flat", "hnsw"], help="synthetic: index kind")
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cli", action=argparse.BooleanOptionalAction, default=True, help="also time one cold CLI call")
    p.add_argument("--json", default=None)
    p.add_argument("--faiss-threads", type=int, default=1, help="OpenMP threads of one faiss search")
    args = p.parse_args(argv)
    import faiss

    faiss.omp_set_num_threads(args.faiss_threads)

    tmp = None
    if args.model is None:
        tmp = Path(tempfile.mkdtemp(prefix="graphrec-serving-"))
        t0 = time.perf_counter()
        path = synthetic_model(tmp, args.users, args.items, args.dim, args.seen, args.index, args.seed)
        build_s = time.perf_counter() - t0
    else:
        path, build_s = Path(args.model), None
    try:
        t0 = time.perf_counter()
        rec = load_recommender(path)
        load_s = time.perf_counter() - t0
        ids = list(rec._user_index)  # external ids of the known users
        rng = np.random.default_rng(args.seed)
        picks = [ids[i] for i in rng.integers(0, len(ids), args.queries)]
        rec.recommend(picks[0], args.k)  # warm-up
        lat, cpu = np.empty(args.queries), np.empty(args.queries)
        for q, user in enumerate(picks):
            c0, t0 = time.process_time(), time.perf_counter()
            out = rec.recommend(user, args.k)
            lat[q], cpu[q] = time.perf_counter() - t0, time.process_time() - c0
            seen = set(rec.seen(user)) if q < 200 else None  # check the first 200 answers fully
            if len(out) != min(args.k, rec.num_items - len(rec._seen_row(rec.user_index(user)))):
                raise AssertionError(f"user {user!r}: {len(out)} items returned, expected {args.k}")
            if seen is not None and {r.item for r in out} & seen:
                raise AssertionError(f"user {user!r}: a seen item was recommended")
        cli_s = None
        if args.cli:
            exe = Path(sys.executable).with_name("graphrec")
            cmd = [str(exe), "recommend", "--model", str(path), "--user", str(picks[0]), "-k", str(args.k), "--json"]
            t0 = time.perf_counter()
            res = subprocess.run(cmd, capture_output=True, text=True, check=False)
            cli_s = time.perf_counter() - t0
            if res.returncode != 0 or len(json.loads(res.stdout)) != args.k:
                raise AssertionError(f"graphrec recommend failed: {res.stderr}")
        ms, cpu_ms = lat * 1000, cpu * 1000
        out = {
            "model": str(args.model) if args.model else f"synthetic {args.users} users x {args.items} items, dim {args.dim}",
            "index": rec.card.get("index"),
            "users": rec.num_users,
            "items": rec.num_items,
            "k": args.k,
            "queries": args.queries,
            "ms_p50": round(float(np.percentile(ms, 50)), 3),
            "ms_p95": round(float(np.percentile(ms, 95)), 3),
            "ms_p99": round(float(np.percentile(ms, 99)), 3),
            "ms_max": round(float(ms.max()), 3),
            "ms_mean": round(float(ms.mean()), 3),
            "cpu_ms_p50": round(float(np.percentile(cpu_ms, 50)), 3),
            "cpu_ms_p95": round(float(np.percentile(cpu_ms, 95)), 3),
            "faiss_threads": args.faiss_threads,
            "load_s": round(load_s, 2),
            "export_s": round(build_s, 2) if build_s is not None else None,
            "cli_cold_s": round(cli_s, 2) if cli_s is not None else None,
            "command": "python -m benchmarks.rec_serving " + " ".join(sys.argv[1:] if argv is None else argv),
        }
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out, indent=2))
    if args.json:
        atomic_write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()
