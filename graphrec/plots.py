"""Figures: accuracy against depth, the nightly replay. Drawing only; the runs that produce the
points live in :mod:`graphrec.bench` and :mod:`graphrec.pipeline`."""

from __future__ import annotations

import datetime as dt
import statistics
from pathlib import Path
from typing import Any

from graphrec.utils.io import atomic_open


def _save(fig, path: str | Path, dpi: int | None = None) -> Path:
    """Lay out, write to a PNG atomically (a reader never sees half a file), close."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", **({"dpi": dpi} if dpi else {}))
    plt.close(fig)
    return path


def plot_depth(points: list, path: str | Path, title: str | None = None) -> Path:
    """Write the depth curves (:class:`graphrec.bench.depth.DepthPoint` s: test accuracy against K,
    fixed K and hop sampling) to a PNG, atomically."""
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
    return _save(fig, path)


def plot_replay(rows: list[dict[str, Any]], metric: str, path: Path) -> None:
    """Held-out and canary ``metric`` per night, and training time, for each replay mode, to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    for mode, style in (("warm", "-o"), ("cold", "--s")):
        mine = [r for r in rows if r["mode"] == mode]
        if not mine:
            continue
        x = [dt.date.fromisoformat(r["date"]) for r in mine]
        gated = [i for i, r in enumerate(mine) if r.get("status") == "gated"]
        for ax, key in ((axes[0], f"holdout_{metric}"), (axes[1], f"canary_{metric}")):
            y = [r[key] if r[key] is not None else float("nan") for r in mine]
            ax.plot(x, y, style, ms=3, label=mode)
            if gated:  # the candidates the gate refused: production stayed as it was
                ax.plot([x[i] for i in gated], [y[i] for i in gated], "x", color="red", ms=8, mew=2,
                        label=f"{mode}: gated (not published)")  # fmt: skip
        axes[2].plot(x, [r["train_s"] for r in mine], style, ms=3, label=mode)
    axes[0].set_ylabel(f"held-out {metric}")
    axes[1].set_ylabel(f"canary {metric}")
    axes[2].set_ylabel("training time (s)")
    axes[0].set_title("Nightly replay: tonight's model on tonight's held-out pairs and on the canary set")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.autofmt_xdate()
    _save(fig, path, dpi=110)


def plot_history(history: list[dict[str, Any]], path: str | Path, title: str = "training",
                 metric: str = "validation metric") -> Path:  # fmt: skip
    """Training loss per epoch and the validation ``metric`` per evaluation (a fit's ``history``), to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h.get("loss", float("nan")) for h in history], color="tab:blue", label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color="tab:blue")
    evaluated = [h for h in history if "valid" in h]
    if evaluated:
        ax2 = ax.twinx()
        ax2.plot([h["epoch"] for h in evaluated], [h["valid"] for h in evaluated], "o-", ms=3, color="tab:orange",
                 label=metric)  # fmt: skip
        ax2.set_ylabel(f"validation {metric}", color="tab:orange")
        best = max(evaluated, key=lambda h: h["valid"])
        ax2.axvline(best["epoch"], color="grey", ls=":", lw=1)
        right = best["epoch"] > (epochs[0] + epochs[-1]) / 2  # label on the side with room
        ax2.annotate(f"best {best['valid']:.4f} (epoch {best['epoch']})", (best["epoch"], best["valid"]),
                     textcoords="offset points", xytext=(-6 if right else 6, -14), ha="right" if right else "left",
                     fontsize=8)  # fmt: skip
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_time_to_accuracy(rows: list[dict[str, Any]], path: str | Path, metric: str = "recall@20",
                          title: str | None = None) -> Path:  # fmt: skip
    """Validation ``metric`` against wall seconds since the start of training, one line per model, to a PNG.

    ``rows`` are ``graphrec bench rec --json`` rows; each (dataset, model) contributes the curve of its first
    seed (the rows' ``history``: ``seconds`` and ``valid`` per evaluated epoch) and its test ``metric``
    (mean over seeds, at the selected epoch) in the legend. The curves need the runs' ``train.stop_on`` to
    be ``metric`` (the history records the stopping metric only).

    Raises:
        ValueError: no row holds ``metric`` with a history that has wall seconds and validation values.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name, k = metric.split("@")
    curves = []
    for r in rows:
        if r.get("metric") != name or r.get("k") != int(k):
            continue
        stop_on = (r.get("config") or {}).get("train", {}).get("stop_on")
        pts = [(h["seconds"], h["valid"]) for h in r.get("history") or [] if "valid" in h and "seconds" in h]
        if pts and stop_on == metric:
            curves.append((r, pts))
    if not curves:
        raise ValueError(f"no benchmark row with a history of validation {metric} and wall seconds "
                         f"(run graphrec bench rec with --set train.stop_on={metric})")  # fmt: skip
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    for r, pts in curves:
        xs, ys = zip(*pts, strict=True)
        label = f"{r['model']}: test {metric} {r['mean']:.4f} (selected epoch {r['best_epoch_mean']:.0f})"
        ax.plot([x / 60 for x in xs], ys, "o-", ms=3, label=label)
    datasets = sorted({r["dataset"] for r, _ in curves})
    ax.set_xlabel("wall time since the start of training (minutes, evaluations included)")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title(title or f"{', '.join(datasets)}: time to accuracy (first seed of each row)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)
