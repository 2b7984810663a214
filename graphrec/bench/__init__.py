"""Benchmarks on public data: node classification (:mod:`.nodes`), recommendation (:mod:`.rec`), ad targeting (:mod:`.ads`),
accuracy against depth (:mod:`.depth`), and what every run writes (:mod:`.report`).

``graphrec.bench.build_backbone`` is the model factory's old home (before 0.2), kept for one
release: use :func:`graphrec.tasks.node.build_backbone`. Names are imported on first use.
"""

from graphrec.utils.lazy import lazy_exports

_EXPORTS = {
    "BenchResult": ".nodes",
    "results_table": ".nodes",
    "run_node_benchmark": ".nodes",
    "run_one": ".nodes",
    "write_results": ".nodes",
    "build_backbone": ".nodes",
    "parse_models": ".rec",
    "run_rec_benchmark": ".rec",
    "summarize": ".rec",
    "run_ads_benchmark": ".ads",
    "DepthPoint": ".depth",
    "depth_study": ".depth",
    "environment": ".report",
    "load_results": ".report",
}

__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
