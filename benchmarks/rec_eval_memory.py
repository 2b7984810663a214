"""Full-ranking evaluation at scale: peak memory and time of ``graphrec.metrics.evaluate_topk``.

Synthetic embeddings for ``--users`` users and ``--items`` items; each user has ``--train`` masked items and
``--test`` relevant items drawn at random. Every user is scored against every item in
chunks, so the peak resident memory stays near ``chunk x items x 4`` bytes plus the
inputs, not ``users x items``.

    python -m benchmarks.rec_eval_memory --users 100000 --items 50000 --json results/rec_eval_memory.json

With ``--dataset NAME`` (a catalog dataset with a published split, e.g. ``gowalla``) the users,
items, masked training pairs and relevant test pairs are the dataset's own: every test user is
ranked against every item, the whole published training set masked, as the benchmark's test
evaluation does (embeddings stay random: the cost of ranking does not depend on their values).

    python -m benchmarks.rec_eval_memory --dataset gowalla --threads 2

Prints one JSON object: sizes, chunk size, seconds, peak RSS (``ru_maxrss``) of this
process, the RSS before evaluation (torch + inputs), and the metrics (which are near the
random-ranking level, as they should be for random embeddings).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import torch

from graphrec.metrics import CSR, default_chunk_size, evaluate_topk
from graphrec.nn.score import DotScore
from graphrec.utils.io import atomic_write_json


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _published(name: str) -> tuple[CSR, CSR, int, int]:
    """The published training pairs (all of them: no validation carved) and test pairs of ``name``."""
    from graphrec.config.rec import resolve_rec_config
    from graphrec.data.interactions import load_interactions

    cfg = resolve_rec_config("mf", name, ["data.valid_ratio=0"])
    data = load_interactions(name, cfg.data).split(cfg.data, 0)
    tr, te = data.split.train, data.split.test
    return (CSR.from_pairs(tr[0], tr[1], data.num_users), CSR.from_pairs(te[0], te[1], data.num_users),
            data.num_users, data.num_items)  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--items", type=int, default=50_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--train", type=int, default=50, help="masked items per user")
    p.add_argument("--test", type=int, default=10, help="relevant items per user")
    p.add_argument("--chunk", type=int, default=None, help="users per chunk (default: ~256 MB of scores)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", default=None, help="a catalog dataset: its published train/test pairs")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(args.seed)
    if args.dataset:
        train, test, U, V = _published(args.dataset)
        args.train = round(train.indices.numel() / U, 1)  # reported as the mean per user
        args.test = round(test.indices.numel() / max(1, int((test.indptr[1:] > test.indptr[:-1]).sum())), 1)
    else:
        U, V = args.users, args.items
        rows = torch.arange(U)
        train = CSR.from_pairs(rows.repeat_interleave(args.train), torch.randint(0, V, (U * args.train,), generator=g), U)
        test = CSR.from_pairs(rows.repeat_interleave(args.test), torch.randint(0, V, (U * args.test,), generator=g), U)
    users = torch.randn(U, args.dim, generator=g)
    items = torch.randn(V, args.dim, generator=g)
    rss_before = rss_mb()
    t0 = time.perf_counter()
    metrics = evaluate_topk(DotScore().score_fn(users, items), test, V, (10, 20), train, chunk_size=args.chunk)
    seconds = time.perf_counter() - t0
    out = {
        "dataset": args.dataset or "synthetic",
        "users": U,
        "items": V,
        "dim": args.dim,
        "masked_per_user": args.train,
        "relevant_per_user": args.test,
        "chunk_users": args.chunk or default_chunk_size(V),
        "threads": torch.get_num_threads(),
        "seconds": round(seconds, 2),
        "users_per_s": round(U / seconds, 1),
        "rss_before_eval_mb": round(rss_before, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "dense_scores_would_need_mb": round(U * V * 4 / 2**20, 1),
        "metrics": {k: round(v, 5) for k, v in metrics.items() if k in ("recall@10", "ndcg@10", "coverage@10", "users")},
        "random_recall@10_expected": round(10 / (V - args.train), 6),
        "command": "python -m benchmarks.rec_eval_memory " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    print(json.dumps(out, indent=2))
    if args.json:
        atomic_write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()
