"""Accuracy against propagation depth K, with and without hop sampling (oversmoothing study)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from graphrec.bench.nodes import run_node_benchmark
from graphrec.utils.io import atomic_write_json


@dataclass
class DepthPoint:
    dataset: str
    model: str
    K: int
    hop_sampling: bool
    mean: float
    std: float
    seeds: int
    s_per_epoch: float


def depth_study(
    dataset: str,
    models: list[str],
    depths: list[int],
    seeds: int = 3,
    overrides: list[str] | None = None,
    show_progress: bool = True,
) -> list[DepthPoint]:
    """Test accuracy of each propagation model at each depth K, trained with a fixed K and
    with hop sampling (k drawn uniformly from 1..K while training, K at evaluation)."""
    points = []
    for K in depths:
        for hop in (False, True):
            extra = [f"model.K={K}", f"train.hop_sampling.enabled={str(hop).lower()}"]
            rows = run_node_benchmark(
                [dataset], models, seeds, overrides=[*(overrides or []), *extra], show_progress=show_progress
            )
            for r in rows:
                points.append(DepthPoint(dataset, r.model, K, hop, r.mean, r.std, seeds, r.s_per_epoch))
    return points


def save_points(points: list[DepthPoint], path: str | Path) -> None:
    atomic_write_json(path, [asdict(p) for p in points])
