"""Figures: accuracy against depth, the nightly replay, training curves, hyperbolic embeddings on the
Poincaré disk. Drawing only (NumPy arrays and result rows in, PNG out); the runs that produce the
points live in :mod:`graphrec.bench`, :mod:`graphrec.pipeline` and :mod:`graphrec.hyperbolic`."""

from __future__ import annotations

import datetime as dt
import statistics
from pathlib import Path
from typing import Any

from graphrec.utils.io import atomic_open


def _save(fig, path: str | Path, dpi: int | None = None, layout: bool = True) -> Path:
    """Lay out (unless the caller did), write to a PNG atomically (a reader never sees half a file), close."""
    import matplotlib.pyplot as plt

    if layout:
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


#: Hyperbolic distances from the centre drawn as dashed circles on the Poincaré disk (units of 1/sqrt(c)).
DISK_RINGS: tuple[float, ...] = (1.0, 2.0, 4.0)


def disk_window(*points: Any, quantile: float = 0.99, threshold: float = 0.5) -> float:
    """Half-width of a panel's view of the unit disk: 1.06 (the whole disk), or, when the ``quantile`` of the points'
    radii is below ``threshold`` (a barely trained model sits near the centre), 1.15 times that radius."""
    import numpy as np

    radii = np.concatenate([np.linalg.norm(np.asarray(p, float).reshape(-1, 2), axis=1) for p in points])
    r = float(np.quantile(radii, quantile)) if radii.size else 1.0
    return 1.06 if r >= threshold else max(1.15 * r, 1e-3)


def plot_poincare(users: Any, items: Any, origins: Any, clusters: Any, curvatures: Any, path: str | Path,
                  weights: Any = None, title: str | None = None, target: str = "item",
                  weight_label: str = "w", zoom: bool = True) -> Path:  # fmt: skip
    r"""Users and items of a 2-D hyperbolic model on the unit Poincaré disk, one panel per manifold, to a PNG.

    Args:
        users: ``[M, U, 2]`` user coordinates in each manifold's unit disk (the ball of radius
            :math:`1/\sqrt{c_m}` scaled by :math:`\sqrt{c_m}`); items: ``[M, N, 2]`` the same for the items (ads).
        origins: ``[M, M, 2]``: ``origins[m, j]`` is where cluster origin ``j`` lands in manifold ``m``
            (``origins[m, m]`` is the disk's centre).
        clusters: ``[U]`` each user's cluster (colours users and origins alike).
        curvatures: ``[M]`` :math:`c_m` (curvature :math:`-c_m`), shown in each panel's title.
        weights: ``[M]`` aggregation weights (optional, shown as ``weight_label`` in the titles).
        target: what the items are called in the legend (``item``, ``ad``).
        zoom: zoom a panel in on its points when nearly all of them lie within half the disk's radius
            (:func:`disk_window`); the title then says by how much.

    Dashed circles mark the hyperbolic distances :data:`DISK_RINGS` from the centre (in units of :math:`1/\sqrt{c_m}`).
    Matplotlib's Agg backend; the PNG is written atomically.

    Raises:
        ValueError: arrays whose shapes do not match.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    users, items, origins = np.asarray(users, float), np.asarray(items, float), np.asarray(origins, float)
    clusters, curvatures = np.asarray(clusters, int), np.asarray(curvatures, float)
    M = curvatures.shape[0]
    if users.ndim != 3 or users.shape[0] != M or users.shape[2] != 2 or items.ndim != 3 or items.shape[0] != M \
            or items.shape[2] != 2 or origins.shape != (M, M, 2) or clusters.shape != (users.shape[1],):
        raise ValueError(f"plot_poincare takes users [M, U, 2], items [M, N, 2], origins [M, M, 2], clusters [U] and "
                         f"curvatures [M]; got {users.shape}, {items.shape}, {origins.shape}, {clusters.shape} and "
                         f"{curvatures.shape}")  # fmt: skip
    cols = min(M, 4)
    rows = -(-M // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(max(4.2 * cols, 7.5), 4.5 * rows + 0.8), dpi=120, squeeze=False)
    palette = plt.get_cmap("tab10" if M <= 10 else "tab20")
    theta = np.linspace(0, 2 * np.pi, 400)
    for m, ax in enumerate(axes.flat):
        if m >= M:
            ax.axis("off")
            continue
        ax.fill(np.cos(theta), np.sin(theta), color="#f4f4f4", zorder=0)
        ax.plot(np.cos(theta), np.sin(theta), color="black", lw=1, zorder=1)
        for rho in DISK_RINGS:  # a hyperbolic distance rho from the centre is Euclidean radius tanh(rho / 2)
            r = np.tanh(rho / 2)
            ax.plot(r * np.cos(theta), r * np.sin(theta), color="grey", lw=0.5, ls="--", zorder=1)
            ax.annotate(f"{rho:g}", (r * np.cos(0.3), r * np.sin(0.3)), fontsize=7, color="dimgrey", ha="left",
                        va="bottom", zorder=6)  # fmt: skip
        ax.scatter(items[m, :, 0], items[m, :, 1], s=5, marker="x", lw=0.6, color="#555555", alpha=0.45, zorder=2,
                   label=f"{target}s" if m == 0 else None)  # fmt: skip
        ax.scatter(users[m, :, 0], users[m, :, 1], s=6, c=[palette(c % palette.N) for c in clusters], alpha=0.6,
                   lw=0, zorder=3)  # fmt: skip
        for j in range(M):
            own = j == m
            ax.scatter(*origins[m, j], s=260 if own else 120, marker="*", color=palette(j % palette.N),
                       edgecolors="black", linewidths=1.2 if own else 0.6, zorder=5)  # fmt: skip
            if M > 1:
                ax.annotate(str(j), origins[m, j], textcoords="offset points", xytext=(6, 5), fontsize=8,
                            fontweight="bold" if own else "normal", zorder=6)  # fmt: skip
        head = f"manifold {m}: c = {curvatures[m]:.3g}" if M > 1 else f"c = {curvatures[m]:.3g}"
        if weights is not None:
            head += f", {weight_label} = {float(np.asarray(weights)[m]):.2f}"
        half = disk_window(users[m], items[m], origins[m]) if zoom else 1.06
        if half < 1.06:
            head += f" (zoomed ×{1 / half:.3g})"
        ax.set_title(head, fontsize=10)
        ax.set_xlim(-half, half)
        ax.set_ylim(-half, half)
        ax.set_aspect("equal")
        ax.axis("off")
    handles = [plt.Line2D([], [], ls="", marker="x", color="#555555", label=f"{target}s")]
    handles += [plt.Line2D([], [], ls="", marker="o", ms=5, color=palette(j % palette.N),
                           label=f"users of cluster {j}" if M > 1 else "users") for j in range(M)]  # fmt: skip
    handles.append(plt.Line2D([], [], ls="", marker="*", ms=11, color="white", markeredgecolor="black",
                              label="cluster origins (the panel's own at the centre)" if M > 1 else "origin"))  # fmt: skip
    handles.append(plt.Line2D([], [], ls="--", lw=0.8, color="grey",
                              label=f"distance {', '.join(f'{r:g}' for r in DISK_RINGS)} from the centre (units 1/√c)"))
    ncol = min(len(handles), 4 if cols > 2 else 2)  # two panels: the long labels need two columns
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.suptitle(title or f"users and {target}s on the Poincaré disk" + (", one panel per manifold" if M > 1 else ""),
                 fontsize=11)  # fmt: skip
    legend_inches = 0.22 * -(-len(handles) // ncol) + 0.15
    fig.tight_layout(rect=(0, legend_inches / fig.get_figheight(), 1, 1))  # room for the legend below the panels
    return _save(fig, path, layout=False)
