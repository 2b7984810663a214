"""Tables and paired comparisons from ``graphrec bench rec --json`` files.

    python -m benchmarks.rec_compare results/rec_ml100k.json --pair lightgcn+hop:lightgcn --pair lightgcn:mf

Prints a markdown table (mean ± std over seeds of the test metrics, seconds per epoch,
epochs run) and, for each ``--pair A:B``, the paired comparison on every metric given by
``--metrics``: mean of A, mean of B, relative gain of A over B, the number of seeds where A
wins, and the paired t-test p-value (seeds share the split, so runs pair up by seed).
``--time-ratio A:B`` prints A's seconds per epoch over B's. ``FILE::SUFFIX`` appends SUFFIX to
the model names of that file's rows (to keep runs with other settings apart).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from scipy.stats import ttest_rel

COLUMNS = [("recall", 10), ("ndcg", 10), ("mrr", 10), ("hit", 10), ("recall", 20), ("ndcg", 20), ("map", 10),
           ("precision", 10), ("coverage", 10)]  # fmt: skip


def load(paths: list[str]) -> list[dict]:
    """Rows of all files; rows of one (dataset, model, metric, k) from several runs (e.g. seeds
    0-2 and 3-4) are merged by seed and their mean and std recomputed."""
    groups: dict[tuple, list[dict]] = {}
    for spec in paths:
        p, _, suffix = spec.partition("::")  # "file.json:: (lr 5e-3)" labels that file's rows
        for r in json.loads(Path(p).read_text()):
            r = dict(r, model=r["model"] + suffix)
            groups.setdefault((r["dataset"], r["model"], r["metric"], r["k"]), []).append(r)
    rows = []
    for parts in groups.values():
        if len(parts) == 1:
            rows.append(parts[0])
            continue
        by_seed: dict[int, float] = {}
        for r in parts:
            for s, v in zip(r["seed_list"], r["values"], strict=True):
                by_seed.setdefault(s, v)  # a seed run twice is deterministic: keep the first
        seeds = sorted(by_seed)
        vals = [by_seed[s] for s in seeds]
        n = [r["seeds"] for r in parts]
        merged = dict(parts[0])
        merged.update(
            values=vals, seed_list=seeds, seeds=len(vals), mean=statistics.fmean(vals),
            std=statistics.stdev(vals) if len(vals) > 1 else 0.0,
            s_per_epoch=sum(r["s_per_epoch"] * k for r, k in zip(parts, n, strict=True)) / sum(n),
            epochs_mean=sum(r["epochs_mean"] * k for r, k in zip(parts, n, strict=True)) / sum(n),
            command=[r.get("command") for r in parts],
        )  # fmt: skip
        rows.append(merged)
    return rows


def index(rows: list[dict]) -> dict[tuple[str, str, int], dict]:
    return {(r["model"], r["metric"], r["k"]): r for r in rows}


def table(rows: list[dict]) -> str:
    idx = index(rows)
    models = list(dict.fromkeys(r["model"] for r in rows))
    head = "| model | " + " | ".join(f"{m}@{k}" for m, k in COLUMNS) + " | s/epoch | epochs | seeds |"
    lines = [head, "|---|" + "---:|" * (len(COLUMNS) + 3)]
    for model in models:
        cells = []
        for m, k in COLUMNS:
            r = idx.get((model, m, k))
            cells.append(f"{r['mean']:.4f} ± {r['std']:.4f}" if r else "")
        any_r = next(r for r in rows if r["model"] == model)
        lines.append(f"| {model} | " + " | ".join(cells)
                     + f" | {any_r['s_per_epoch']:.2f} | {any_r['epochs_mean']:.0f} | {any_r['seeds']} |")  # fmt: skip
    return "\n".join(lines)


def paired(rows: list[dict], a: str, b: str, metrics: list[tuple[str, int]]) -> str:
    idx = index(rows)
    lines = [f"**{a} vs {b}** (paired by seed)", "", "| metric | " + a + " | " + b + " | gain | wins | p (paired t) |",
             "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for m, k in metrics:
        ra, rb = idx.get((a, m, k)), idx.get((b, m, k))
        if ra is None or rb is None:
            raise SystemExit(f"no {m}@{k} rows for {a!r} and {b!r}")
        pa, pb = dict(zip(ra["seed_list"], ra["values"], strict=True)), dict(zip(rb["seed_list"], rb["values"], strict=True))
        seeds = sorted(set(pa) & set(pb))
        va, vb = [pa[s] for s in seeds], [pb[s] for s in seeds]
        gain = statistics.fmean(va) / statistics.fmean(vb) - 1
        wins = sum(x > y for x, y in zip(va, vb, strict=True))
        p = ttest_rel(va, vb).pvalue if len(seeds) > 1 else float("nan")
        lines.append(f"| {m}@{k} | {statistics.fmean(va):.4f} | {statistics.fmean(vb):.4f} | {100 * gain:+.1f}% | "
                     f"{wins}/{len(seeds)} | {p:.3g} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json", nargs="+", help="result files; FILE::SUFFIX renames that file's models")
    p.add_argument("--pair", action="append", default=[], help="A:B, e.g. lightgcn+hop:lightgcn")
    p.add_argument("--time-ratio", action="append", default=[], help="A:B: A's s/epoch over B's")
    p.add_argument("--metrics", default="ndcg@10,recall@10,ndcg@20,recall@20")
    args = p.parse_args(argv)
    rows = load(args.json)
    print(table(rows))
    metrics = [(m.split("@")[0], int(m.split("@")[1])) for m in args.metrics.split(",")]
    for pair in args.pair:
        a, b = pair.split(":")
        print()
        print(paired(rows, a, b, metrics))
    idx = index(rows)
    for pair in args.time_ratio:
        a, b = pair.split(":")
        ta, tb = idx[(a, "ndcg", 10)]["s_per_epoch"], idx[(b, "ndcg", 10)]["s_per_epoch"]
        print(f"\nepoch time {a} / {b}: {ta:.3f} s / {tb:.3f} s = {ta / tb:.2f}")


if __name__ == "__main__":
    main()
