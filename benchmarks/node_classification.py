"""Node-classification benchmark: registered models on Planetoid's public split, plus PyG's
own GCN example (``examples/gcn.py``) trained by the same trainer in the same run, so the
epoch-time ratio compares implementations, not machines.

    python -m benchmarks.node_classification --datasets Cora,CiteSeer \
        --models gcn,gat,appnp,sgc,sage --seeds 10 --json results/nodes.json

Prints a markdown table (mean ± std of test accuracy at the best-validation epoch,
ms per training epoch, and our GCN's epoch time over the reference's).
"""

from __future__ import annotations

import argparse
import shlex
import sys

import torch
import torch.nn.functional as F
from rich.console import Console
from torch import nn
from torch_geometric.nn import GCNConv

from graphrec.bench.nodes import results_table, run_node_benchmark, write_results


class PyGExampleGCN(nn.Module):
    """The model of PyG's ``examples/gcn.py``: dense input dropout, cached GCNConv layers."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 16):
        super().__init__()
        self.conv1 = GCNConv(in_channels, hidden, cached=True)
        self.conv2 = GCNConv(hidden, out_channels, cached=True)

    @property
    def first_layer(self) -> nn.Module:  # the example decays conv1's weights only
        return self.conv1

    def forward(self, x, edge_index, edge_weight=None):
        x = F.dropout(x, p=0.5, training=self.training)
        x = self.conv1(x, edge_index, edge_weight).relu()
        x = F.dropout(x, p=0.5, training=self.training)
        return self.conv2(x, edge_index, edge_weight)


REFERENCE = "pyg-gcn-example"


def markdown(results) -> str:
    lines = [
        "| dataset | model | test accuracy (%) | seeds | ms/epoch | epochs (mean) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        name = r.model + (" + hop sampling" if r.hop_sampling else "")
        lines.append(
            f"| {r.dataset} | {name} | {100 * r.mean:.1f} ± {100 * r.std:.1f} | {r.seeds} | "
            f"{1000 * r.s_per_epoch:.1f} | {r.epochs_mean:.0f} |"
        )
    by = {(r.dataset, r.model): r for r in results}
    for ds in dict.fromkeys(r.dataset for r in results):
        ours, ref = by.get((ds, "gcn")), by.get((ds, REFERENCE))
        if ours and ref:
            lines.append(
                f"\n{ds}: our GCN {1000 * ours.s_per_epoch:.1f} ms/epoch vs PyG example {1000 * ref.s_per_epoch:.1f} "
                f"ms/epoch, ratio {ours.s_per_epoch / ref.s_per_epoch:.2f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="Cora,CiteSeer")
    ap.add_argument("--models", default="gcn,gat,appnp,sgc,sage")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--no-reference", action="store_true", help="skip PyG's GCN example")
    ap.add_argument("--set", action="append", default=[], help="config override, e.g. train.epochs=100")
    ap.add_argument("--json", default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    extra = None if args.no_reference else {REFERENCE: ("gcn", lambda i, o: PyGExampleGCN(i, o))}
    results = run_node_benchmark(
        args.datasets.split(","), args.models.split(","), args.seeds, overrides=args.set, extra=extra
    )
    Console().print(results_table(results))
    print(markdown(results))
    if args.json:
        write_results(args.json, results, command="python -m benchmarks.node_classification " + shlex.join(sys.argv[1:]))


if __name__ == "__main__":
    main()
