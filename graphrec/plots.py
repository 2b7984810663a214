"""Accuracy against propagation depth K, with and without hop sampling (oversmoothing study)."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

from graphrec.bench import run_node_benchmark
from graphrec.utils.io import atomic_open, atomic_write_json


@dataclass
class DepthPoint:
    dataset: str
    model: str
    K: int
    hop_sampling: bool
    mean: float
    std: float
    seeds: int
    ms_per_epoch: float


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
                points.append(DepthPoint(dataset, r.model, K, hop, r.mean, r.std, seeds, r.ms_per_epoch))
    return points


def plot_depth(points: list[DepthPoint], path: str | Path, title: str | None = None) -> Path:
    """Write the depth curves to a PNG (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    models = list(dict.fromkeys(p.model for p in points))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, model in enumerate(models):
        for hop in (False, True):
            pts = sorted((p for p in points if p.model == model and p.hop_sampling == hop), key=lambda p: p.K)
            if not pts:
                continue
            ks = [p.K for p in pts]
            mean = [100 * p.mean for p in pts]
            std = [100 * p.std for p in pts]
            style = "-o" if not hop else "--s"
            label = f"{model} ({'hop sampling' if hop else 'fixed K'})"
            ax.errorbar(ks, mean, yerr=std, fmt=style, color=colors[i % len(colors)], capsize=3, label=label)
    ax.set_xscale("log", base=2)
    ks = sorted({p.K for p in points})
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("propagation depth K")
    ax.set_ylabel("test accuracy (%)")
    seeds = statistics.mode(p.seeds for p in points) if points else 0
    ax.set_title(title or f"{points[0].dataset}: accuracy vs depth (mean ± std over {seeds} seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png")
    plt.close(fig)
    return path


def save_points(points: list[DepthPoint], path: str | Path) -> None:
    atomic_write_json(path, [asdict(p) for p in points])
