"""Benchmarks of the transformer user encoders (``graphrec bench encoders``).

Four protocols, each a function returning result rows (dicts) that ``graphrec bench`` prints and writes:

* :func:`run_sequential`: next-behaviour recommendation, leave-one-out, full ranking over all
  items (the items of the user's input masked, as in S3-Rec / ICLRec), HR@K and NDCG@K of the
  test behaviour at the epoch selected on validation; seconds per epoch and tokens per second.
* :func:`run_probe`: user representation. Each objective's frozen user embedding (from the
  whole history), and the baselines computed with the same protocol (majority class, SVD-64 of
  the interaction matrix, the mean MiniLM embedding of the titles a user rated), go through a
  linear probe on MovieLens-100k users: 5-fold stratified CV, logistic regression; gender ROC
  AUC, 7-bucket age accuracy, occupation accuracy (a control).
* :func:`run_features`: encoders as node features. MovieLens-100k, per-user random 8:1:1,
  full ranking: a backbone with ID embeddings only against the same backbone with the encoder's
  user and item vectors beside (``inputs: both``) or in place of (``inputs: features``) them,
  overall and on a cold-user slice. The encoder reads only the training pairs of the split.
* :func:`run_scaling`: validation loss against training compute (6 N D FLOPs, Kaplan et al. 2020)
  for several model sizes, with a power-law fit (a small-scale check of CLUE's scaling finding).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from graphrec.config.encoder import EncoderConfig, resolve_encoder_config
from graphrec.utils.memory import PeakRSS

#: Published next-item numbers beside ours: (HR@10, NDCG@10), leave-one-out, full ranking.
PUBLISHED_SEQUENTIAL: dict[str, dict[str, tuple[float, float]]] = {
    "ml-100k": {"SASRec (RecBole rerun)": (0.1198, 0.0594), "GRU4Rec (RecBole rerun)": (0.1304, 0.0650)},
    "beauty": {"SASRec (RecBole rerun)": (0.0848, 0.0432)},
}
#: Probe reference numbers of the issue's protocol (measured elsewhere; ours are computed by run_probe).
PUBLISHED_PROBE = {"gender_auc": {"MiniLM mean": 0.755, "SVD-64": 0.747},
                   "age_acc": {"SVD-64": 0.419, "majority": 0.329}, "occupation_acc": {"majority": 0.208}}


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def _cfg(objective: str, dataset: str | None, overrides: Sequence[str]) -> EncoderConfig:
    return resolve_encoder_config(objective, dataset, list(overrides))


# ---------------------------------------------------------------------------- sequential recommendation
def run_sequential(dataset: str, objective: str = "sasrec", seeds: Sequence[int] = (0, 1, 2),
                   overrides: Sequence[str] = (), progress: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """One row per seed: test HR@K / NDCG@K at the selected epoch, the selected epoch, s/epoch, tokens/s, peak RSS."""
    from graphrec.data.catalog import get_dataset, is_dataset
    from graphrec.tasks.encode import build_encoder_model, fit_encoder, load_encoder_data
    from graphrec.utils.seed import seed_everything

    key = get_dataset(dataset).name if is_dataset(dataset) else None
    cfg = _cfg(objective, key, overrides)
    if cfg.model_name != "sasrec":
        raise ValueError(f"{objective}: next-behaviour ranking needs an objective that scores items (sasrec)")
    seqs, split = load_encoder_data(dataset, cfg)
    rows = []
    for seed in seeds:
        seed_everything(seed)
        with PeakRSS() as peak:
            model = build_encoder_model(cfg, seqs)
            fit, task = fit_encoder(seqs, split, model, cfg, seed=seed, progress=progress)
        rows.append({"dataset": key or str(dataset), "objective": objective, "seed": seed,
                     **{f"test_{k}": v for k, v in fit.test.items() if k != "users"},
                     **{f"valid_{k}": v for k, v in fit.valid.items() if k != "users"},
                     "best_epoch": fit.best_epoch, "epochs": fit.epochs, "s_per_epoch": fit.s_per_epoch,
                     "seconds": fit.seconds, "tokens_per_s": float(np.mean(task.tokens_per_s or [0.0])),
                     "peak_rss_gib": peak.bytes / 2**30, "users": int(fit.test.get("users", 0)),
                     "config": cfg.model_dump(mode="json")})  # fmt: skip
    return rows


def sequential_summary(rows: list[dict[str, Any]], ks: Sequence[int] = (10, 20)) -> dict[str, Any]:
    """Mean and std over seeds of the test metrics, with the published numbers beside them."""
    out: dict[str, Any] = {"dataset": rows[0]["dataset"], "objective": rows[0]["objective"], "seeds": len(rows)}
    for k in ks:
        for m in ("hit", "ndcg"):
            vals = [r.get(f"test_{m}@{k}") for r in rows]
            if all(v is not None for v in vals):
                out[f"{m}@{k}"] = mean_std(vals)
    out["s_per_epoch"] = mean_std([r["s_per_epoch"] for r in rows])
    out["best_epoch"] = mean_std([r["best_epoch"] for r in rows])
    out["published"] = PUBLISHED_SEQUENTIAL.get(out["dataset"], {})
    return out


# ---------------------------------------------------------------------------- linear probe
def run_probe(objectives: Sequence[str] = ("sasrec", "clue", "shopperbert", "lmrec"), seeds: Sequence[int] = (0, 1, 2),
              overrides: Sequence[str] = (), text_tower: bool = True, progress: bool = False,
              log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """The probe table on MovieLens-100k users: baselines, then one row per objective (mean ± std over ``seeds``
    of the encoder; each probe is itself 5-fold CV)."""
    from graphrec.encoders.probe import baseline_embeddings, ml100k_user_labels, probe_table
    from graphrec.tasks.encode import encode

    log = log or (lambda s: None)
    tower = None
    if text_tower:
        try:
            from graphrec.encoders.text import TextTower

            tower = TextTower()
        except ImportError as exc:
            log(f"no MiniLM baseline: {exc}")
    labels = ml100k_user_labels()
    n_users = labels["gender"].shape[0]
    rows = probe_table(baseline_embeddings(tower))
    for objective in objectives:
        per_seed = []
        for seed in seeds:
            cfg = _cfg(objective, "ml-100k", [*overrides, "features.write=false"])
            t0 = time.perf_counter()
            res = encode("ml-100k", cfg, seed=seed, write=False, progress=progress)
            emb = _by_user_id(res.sequences, res.users, n_users)
            label = objective + (f" + {cfg.model.text_tower} item text" if cfg.model.text_tower else "")
            row = probe_table({f"{label} (seed {seed})": emb})[0]
            row["train_seconds"] = time.perf_counter() - t0
            row["best_epoch"] = res.fit.best_epoch
            per_seed.append(row)
            log(f"{objective} seed {seed}: {_fmt_probe(row)} ({row['train_seconds']:.0f} s)")
        rows.append(_merge_seeds(label, per_seed))
    return rows


def _by_user_id(seqs, users: np.ndarray, n_users: int) -> np.ndarray:
    """Rows of ``users`` reordered to MovieLens user ids 1..n (external ids as strings or ints)."""
    out = np.zeros((n_users, users.shape[1]), dtype=np.float32)
    for row, uid in enumerate(seqs.user_ids):
        j = int(uid) - 1
        if 0 <= j < n_users:
            out[j] = users[row]
    return out


def _merge_seeds(name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"name": name, "seeds": len(rows)}
    for key in ("gender_auc", "age_acc", "occupation_acc"):
        merged[key] = mean_std([r[key][0] if isinstance(r[key], list | tuple) else r[key] for r in rows])
    merged["train_seconds"] = mean_std([r["train_seconds"] for r in rows])
    merged["per_seed"] = rows
    return merged


def _fmt_probe(row: dict[str, Any]) -> str:
    def f(v):
        return f"{v[0]:.3f} ± {v[1]:.3f}" if isinstance(v, list | tuple) else f"{v:.3f}"

    return f"gender AUC {f(row['gender_auc'])}, age acc {f(row['age_acc'])}, occupation acc {f(row['occupation_acc'])}"


# ---------------------------------------------------------------------------- encoders as node features
def cold_start_split(data, seed: int, share: float = 0.2, keep: int = 5):
    """``data`` with a cold-user slice: ``share`` of the users (drawn with ``seed``) keep at most ``keep`` of their
    training pairs in the graph; their held-out pairs are unchanged. Returns ``(data, cold_users)``.

    The dropped pairs leave the graph only: they stay in the behaviour history an encoder reads (a user with a
    history but few graph edges, the cold-start case of CLUE and LMRec). MovieLens-100k has >= 20 ratings per user,
    so without this the slice of users with <= 5 training pairs is empty."""
    from graphrec.data.interactions import RecData
    from graphrec.data.splits import EdgeSplit

    rng = np.random.default_rng(seed + 104_729)
    n = data.num_users
    cold = np.sort(rng.choice(n, size=max(1, int(round(share * n))), replace=False))
    u, i = data.split.train[0].numpy(), data.split.train[1].numpy()
    is_cold = np.isin(u, cold)
    order = rng.permutation(u.size)
    # keep the first `keep` pairs of each cold user in a random order
    rank = np.zeros(u.size, dtype=np.int64)
    o_u = u[order]
    sort = np.argsort(o_u, kind="stable")
    starts = np.r_[0, np.flatnonzero(np.diff(o_u[sort])) + 1]
    pos = np.arange(u.size) - np.repeat(starts, np.diff(np.r_[starts, u.size]))
    rank[order[sort]] = pos
    kept = ~is_cold | (rank < keep)
    train = torch.from_numpy(np.stack([u[kept], i[kept]]))
    s = data.split
    split = EdgeSplit(train, s.valid, s.test, s.method, {**s.info, "cold_users": int(cold.size), "cold_keep": keep})
    return RecData(data.num_users, data.num_items, split, data.source, info=dict(data.info)), cold


def slice_users(data, users: np.ndarray):
    """``data`` with validation and test pairs of ``users`` only (the training graph unchanged)."""
    from graphrec.data.interactions import RecData
    from graphrec.data.splits import EdgeSplit

    s = data.split
    keep = lambda e: e[:, torch.from_numpy(np.isin(e[0].numpy(), users))]  # noqa: E731
    split = EdgeSplit(s.train, keep(s.valid), keep(s.test), s.method, dict(s.info))
    return RecData(data.num_users, data.num_items, split, data.source, info=dict(data.info))


def train_pair_sequences(seqs, data, inter):
    """``seqs`` restricted to the behaviours whose (user, item) pair is a training pair of ``data``'s split before
    the cold-start cut (never a validation or test pair: nothing held out reaches the encoder)."""
    s = data.split
    valid_test = torch.cat([s.valid, s.test], dim=1).numpy()
    n_items = data.num_items
    held = set((valid_test[0] * n_items + valid_test[1]).tolist())
    row_user = np.repeat(np.asarray(seqs.user_index), seqs.lengths)
    tok_item = np.asarray(seqs.item_index)[seqs.item]
    keys = row_user * n_items + tok_item
    keep = ~np.isin(keys, np.fromiter(held, dtype=np.int64, count=len(held)))
    return seqs.filter_events(keep)


def run_features(models: Sequence[str] = ("lightgcn", "gesm"), objective: str = "sasrec", seeds: Sequence[int] = (0, 1, 2),
                 encoder_overrides: Sequence[str] = (), rec_overrides: Sequence[str] = (), cold_share: float = 0.2,
                 progress: bool = False, log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """MovieLens-100k 8:1:1 full ranking: ID-only against encoder features (``both`` and ``features``), overall and
    on the cold slice (:func:`cold_start_split`). One row per (model, inputs, seed)."""
    from graphrec.config import resolve_rec_config
    from graphrec.data.interactions import load_interactions
    from graphrec.encoders import load_behaviour_sequences
    from graphrec.tasks.encode import build_encoder_model, embed_users, fit_encoder, item_vectors
    from graphrec.tasks.link import build_rec_model, evaluate, fit_link
    from graphrec.utils.seed import seed_everything

    log = log or (lambda s: None)
    all_seqs = load_behaviour_sequences("ml-100k")
    rows: list[dict[str, Any]] = []
    base_cfg = resolve_rec_config(models[0], "ml-100k", list(rec_overrides))
    inter = load_interactions("ml-100k", base_cfg.data)
    for seed in seeds:
        data, cold = cold_start_split(inter.split(base_cfg.data, seed), seed, cold_share)
        ecfg = _cfg(objective, "ml-100k", [*encoder_overrides, "features.write=false"])
        seqs = train_pair_sequences(all_seqs, data, inter)
        split = seqs.leave_one_out(ecfg.data.min_length)
        seed_everything(seed)
        enc = build_encoder_model(ecfg, seqs)
        t0 = time.perf_counter()
        efit, _ = fit_encoder(seqs, split, enc, ecfg, seed=seed, progress=progress)
        users = np.zeros((inter.num_users, ecfg.model.dim), dtype=np.float32)
        users[np.asarray(seqs.user_index)] = embed_users(enc, seqs)  # the whole training history
        items = np.zeros((inter.num_items, ecfg.model.dim), dtype=np.float32)
        iv = item_vectors(enc)
        if iv is not None:
            items[np.asarray(seqs.item_index)[1:]] = iv
        log(f"seed {seed}: {objective} encoder, epoch {efit.best_epoch}, {time.perf_counter() - t0:.0f} s")
        feats = (torch.from_numpy(users), None), (torch.from_numpy(items), None) if iv is not None else None
        cold_data = slice_users(data, cold)
        for model_name in models:
            for inputs in ("id", "both", "features"):
                cfg = resolve_rec_config(model_name, "ml-100k", [*rec_overrides, f"train.inputs={inputs}"])
                # The encoder's vectors replace the store's side-table features for this comparison (the store
                # path, data.features, attaches the same table; tests/encoders check they are equal).
                src = inter if inputs == "id" else _with_features(inter, *feats)
                d = data if inputs == "id" else _rebind(data, src)
                seed_everything(seed)
                model = build_rec_model(cfg, d)
                fit = fit_link(d, model, cfg, progress=progress)
                cd = cold_data if inputs == "id" else _rebind(cold_data, src)
                cold_test = evaluate(model, cd, "test", ks=cfg.eval.ks)
                row = {"model": model_name, "inputs": inputs, "encoder": objective, "seed": seed,
                       **{f"test_{k}": v for k, v in fit.test.items() if k != "users"},
                       **{f"cold_test_{k}": v for k, v in cold_test.items() if k != "users"},
                       "cold_users": int(cold.size), "best_epoch": fit.best_epoch, "s_per_epoch": fit.s_per_epoch}  # fmt: skip
                rows.append(row)
                log(f"  {model_name} inputs={inputs}: test recall@20 {row.get('test_recall@20', math.nan):.4f}, "
                    f"cold recall@20 {row.get('cold_test_recall@20', math.nan):.4f}")  # fmt: skip
    return rows


def _with_features(inter, user_feats, item_feats):
    import dataclasses

    return dataclasses.replace(inter, user_features=user_feats, item_features=item_feats)


def _rebind(data, source):
    from graphrec.data.interactions import RecData

    return RecData(data.num_users, data.num_items, data.split, source, info=dict(data.info))


# ---------------------------------------------------------------------------- scaling
#: Model sizes of the scaling check: (layers, dim, heads).
SCALING_SIZES: tuple[tuple[int, int, int], ...] = ((1, 16, 1), (1, 32, 2), (2, 64, 2), (2, 128, 4), (4, 128, 4))


def run_scaling(dataset: str = "ml-100k", objective: str = "clue", sizes: Sequence[tuple[int, int, int]] = SCALING_SIZES,
                seed: int = 0, overrides: Sequence[str] = (), progress: bool = False,
                log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Per model size and epoch: parameters N, cumulative training compute C = 6 N D (D = tokens seen) and the
    validation loss; the fit uses each size's best validation loss against the compute spent to reach it."""
    from graphrec.encoders.objectives import num_parameters
    from graphrec.tasks.encode import build_encoder_model, fit_encoder, load_encoder_data
    from graphrec.utils.seed import seed_everything

    log = log or (lambda s: None)
    rows = []
    for layers, dim, heads in sizes:
        cfg = _cfg(objective, dataset, [*overrides, f"model.layers={layers}", f"model.dim={dim}",
                                        f"model.heads={heads}", "train.stop_on=loss"])  # fmt: skip
        seqs, split = load_encoder_data(dataset, cfg)
        seed_everything(seed)
        model = build_encoder_model(cfg, seqs)
        n_params = num_parameters(model, non_embedding=True)
        fit, task = fit_encoder(seqs, split, model, cfg, seed=seed, progress=progress)
        tokens_per_epoch = float(task.tokens_last_epoch)  # behaviour tokens one training epoch reads
        curve = [(h["epoch"], -h["valid"]) for h in fit.history if "valid" in h]
        for epoch, loss in curve:
            rows.append({"layers": layers, "dim": dim, "heads": heads, "params": n_params, "epoch": epoch,
                         "tokens": tokens_per_epoch * epoch, "flops": 6.0 * n_params * tokens_per_epoch * epoch,
                         "valid_loss": loss, "objective": objective, "dataset": dataset})  # fmt: skip
        log(f"{layers} layers x {dim}: {n_params:,} parameters, best validation loss {-fit.valid['neg_loss']:.4f} "
            f"at epoch {fit.best_epoch}")  # fmt: skip
    return rows


def power_law_fit(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Fit L(C) = a * C^(-b) (least squares in log-log) to each size's compute-efficient frontier: for every size,
    its lowest validation loss and the compute spent to reach it."""
    best: dict[tuple, tuple[float, float]] = {}
    for r in rows:
        key = (r["layers"], r["dim"])
        if key not in best or r["valid_loss"] < best[key][1]:
            best[key] = (r["flops"], r["valid_loss"])
    pts = np.array(sorted(best.values()))
    if len(pts) < 2 or (pts[:, 0] <= 0).any():
        return {"a": math.nan, "b": math.nan, "r2": math.nan, "points": len(pts)}
    x, y = np.log(pts[:, 0]), np.log(pts[:, 1])
    slope, intercept = np.polyfit(x, y, 1)
    pred = slope * x + intercept
    r2 = 1 - float(((y - pred) ** 2).sum()) / max(float(((y - y.mean()) ** 2).sum()), 1e-12)
    return {"a": float(math.exp(intercept)), "b": float(-slope), "r2": r2, "points": len(pts)}


def plot_scaling(rows: list[dict[str, Any]], path: str, title: str | None = None) -> None:
    """Validation loss against training compute, one curve per size, the fitted power law dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fit = power_law_fit(rows)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    sizes = sorted({(r["layers"], r["dim"], r["params"]) for r in rows}, key=lambda s: s[2])
    for layers, dim, params in sizes:
        pts = sorted((r["flops"], r["valid_loss"]) for r in rows if (r["layers"], r["dim"]) == (layers, dim))
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", lw=1, label=f"{layers}L x {dim} ({params / 1e3:.0f}k)")
    if math.isfinite(fit["b"]):
        xs = np.geomspace(min(r["flops"] for r in rows), max(r["flops"] for r in rows), 50)
        ax.plot(xs, fit["a"] * xs ** (-fit["b"]), "k--", lw=1,
                label=f"fit L = {fit['a']:.3g} C^-{fit['b']:.3f} (R² {fit['r2']:.2f})")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    ax.yaxis.set_major_formatter(FormatStrFormatter("%.2f"))  # losses near 6-7: plain numbers, not 7.4x10^0
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks(np.round(np.linspace(min(r["valid_loss"] for r in rows), max(r["valid_loss"] for r in rows), 6), 2))
    ax.set_xlabel("training compute C = 6 N D (FLOPs; N non-embedding parameters, D tokens)")
    ax.set_ylabel("validation loss")
    epochs = max(r["epoch"] for r in rows)
    ax.set_title(title or f"{rows[0]['objective']} on {rows[0]['dataset']}: validation loss against compute "
                 f"({epochs} epochs per size)", fontsize=10)  # fmt: skip
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
