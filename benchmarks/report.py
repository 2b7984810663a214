"""Render benchmark JSON files (from ``graphrec bench nodes --json`` or
``python -m benchmarks.node_classification --json``) as markdown tables.

    python -m benchmarks.report results/base10.json [--paper]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# Published numbers on the Planetoid public split (accuracy %), for side-by-side tables.
PAPER = {
    ("Cora", "gcn"): 81.5, ("CiteSeer", "gcn"): 70.3,
    ("Cora", "gat"): 83.0, ("CiteSeer", "gat"): 72.5,
    ("Cora", "appnp"): 83.3, ("Cora", "sgc"): 81.0, ("CiteSeer", "sgc"): 71.9,
    ("Cora", "gsm"): 82.8, ("CiteSeer", "gsm"): 71.7,
    ("Cora", "gesm"): 84.4, ("CiteSeer", "gesm"): 72.6,
}  # fmt: skip


def rows_of(paths: list[str]) -> list[dict]:
    rows = []
    for p in paths:
        rows += json.loads(Path(p).read_text())
    return rows


def ms_per_epoch(row: dict) -> float:
    """Milliseconds per training epoch: ``s_per_epoch`` (files since 0.2), or ``ms_per_epoch`` (older files)."""
    if "s_per_epoch" in row:
        return 1000 * row["s_per_epoch"]
    return row["ms_per_epoch"]


def table(rows: list[dict], paper: bool = False) -> str:
    head = "| dataset | model | hop sampling | label rate | test accuracy (%) | seeds | ms/epoch | epochs |"
    if paper:
        head += " paper |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        scale = 100 if r["metric"] == "accuracy" else 1
        cells = [
            r["dataset"], r["model"], "yes" if r.get("hop_sampling") else "no",
            f"{100 * r['label_rate']:g}%" if r.get("label_rate") else "public",
            f"{scale * r['mean']:.1f} ± {scale * r['std']:.1f}" if scale == 100 else f"{r['mean']:.3f} ± {r['std']:.3f}",
            str(r["seeds"]), f"{ms_per_epoch(r):.1f}", f"{r['epochs_mean']:.0f}",
        ]  # fmt: skip
        if paper:
            ref = PAPER.get((r["dataset"], r["model"]))
            cells.append(f"{ref:.1f}" if ref and not r.get("label_rate") else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("files", nargs="+")
    ap.add_argument("--paper", action="store_true", help="add the published numbers")
    args = ap.parse_args(argv)
    rows = rows_of(args.files)
    cmds = dict.fromkeys(r.get("command") for r in rows if r.get("command"))
    print(table(rows, args.paper))
    for c in cmds:
        print(f"\nCommand: `{c}`")


if __name__ == "__main__":
    main()
