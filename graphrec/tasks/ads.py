r"""Ad targeting: which users click which ads, on the whole user-item-ad graph of a store.

**Labels.** A (user, ad) pair is *labelled* when the log holds a positive event on it
(``data.positive_events``, default ``click`` and ``conversion``: label 1) or an impression
(``data.impression_event``) without any positive event of that user on that ad (label 0, an
explicit negative). Each pair counts once, at the time of its first event. A log without
impressions has positives only: sampled ads are then the negatives (every training step, and
``data.held_out_negatives`` fixed ones per held-out positive).

**Split** (stated in every result): ``random`` splits each user's labelled pairs 8:1:1
(``data.ratios``, RecBole's rounding, :func:`graphrec.data.splits.random_split`); ``time``
cuts all pairs at two time quantiles (:func:`graphrec.data.splits.time_split`). Held-out
pairs of users without a training pair are kept: their item history may still place them.

**Graph.** One homogeneous graph: user ``u`` is node ``u``, the other targets (items, the
log's context) follow, then the ads; an ad's row among the recommender's targets is
``num_context_items + ad``. Edges, both directions, weighted by ``data.event_weights`` (default
1 per event; impressions left out) times each event's own weight, repeated events of a pair
summed: every event on the other targets (with ``split: time``, those before the validation
cut), and the events on ads of **training** pairs only, so no held-out label reaches the graph.

**Model.** :class:`AdTargetingModel`, a :class:`~graphrec.models.BipartiteRecommender` whose
targets are the items followed by the ads, with any registered backbone and the scorer of
``train.score`` / ``train.score_params``. Its click probability is
:math:`p(u, a) = \sigma(\alpha\, s(u, a) + \beta)` with the scorer's :math:`s` and a learned
affine (:math:`\alpha = \mathrm{softplus}(\cdot) > 0`, so every ranking is the scorer's own;
``train.calibration: none`` fixes :math:`\alpha = 1, \beta = 0`).

**Loss.** Binary cross-entropy of those logits on the batch's labelled pairs, plus
``train.num_negatives`` sampled ads per positive labelled 0 (the default: none when the log
has impressions, so :math:`p` estimates the click rate of a shown ad; one when it has none),
optional L2 on the batch's inputs, and the backbone's auxiliary losses. BCE is a proper
scoring rule: minimising it makes :math:`p` a calibrated probability.

**Metrics** (:meth:`AdsTask.evaluate`): on the part's labelled pairs AUC, log loss and ECE
(``eval.ece_bins`` equal-width bins; :mod:`graphrec.metrics.binary`); and, ranking all ads per
user with the user's training positives masked (validation positives too for test), HR@K,
NDCG@K and Recall@K of the part's positive pairs (:func:`graphrec.metrics.evaluate_topk`).

**Queries** (:class:`AdTargeting`, a model folder written by :func:`export_ads_model`): the
top ads for a user, and the audience of an ad: its top users.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.config.ads import ADS_RANKING_METRICS, AdsConfig, AdsDataConfig
from graphrec.data.splits import random_split, time_split
from graphrec.metrics import CSR, evaluate_topk
from graphrec.metrics.binary import binary_metrics
from graphrec.models import BipartiteRecommender
from graphrec.nn.score import Scorer, build_scorer
from graphrec.sampling import NegativeSampler
from graphrec.tasks.link import build_id_backbone
from graphrec.tasks.trainer import FitResult, Part, ProgressFn, Trainer

USER = "user"
Features = tuple[Tensor | None, Tensor | None]  # (numeric x, categorical x_cat)


# ---------------------------------------------------------------------------- the log
@dataclass
class AdLog:
    """The events of a store that ad targeting needs, before any split (contiguous store ids).

    ``pairs``: the labelled (user, ad) pairs, each once: ``user``, ``ad``, ``time`` (epoch
    seconds of the pair's first event), ``label`` (1: a positive event; 0: impressions only) and
    ``impressions`` (how many times the ad was shown to the user).
    ``ad_events`` / ``item_events``: ``(user, target, time, weight)`` of every event with a
    positive graph weight on the ads and on the other targets (``target`` counts the other
    target types one after another, in ``item_types`` order).
    """

    num_users: int
    num_ads: int
    item_types: list[tuple[str, int]]  # (node type, count) of the other targets, in node order
    pairs: dict[str, np.ndarray]
    ad_events: dict[str, np.ndarray]
    item_events: dict[str, np.ndarray]
    has_impressions: bool
    target: str = "ad"
    user_ids: list[Any] | None = None
    ad_ids: list[Any] | None = None
    user_features: Features | None = None
    target_features: Features | None = None  # the other targets' rows, then the ads' rows
    info: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        pos = int(self.pairs["label"].sum())
        return (f"AdLog({self.num_users:,} users, {self.num_ads:,} {self.target}s, {self.num_items:,} other targets; "
                f"{self.pairs['label'].size:,} labelled pairs, {pos:,} positive; "
                f"{'impressions as negatives' if self.has_impressions else 'no impressions: sampled negatives'})")  # fmt: skip

    @property
    def num_items(self) -> int:
        """Targets that are not ads (context in the graph, never ranked)."""
        return sum(n for _, n in self.item_types)

    @classmethod
    def from_store(cls, store, cfg: AdsDataConfig | None = None, version: int | None = None) -> AdLog:
        """Read the labelled pairs and the graph's events from ``store`` (a path or a
        :class:`~graphrec.store.GraphStore`) at ``version``.

        Raises:
            ValueError: the ad type, a positive event, an event weight's event type or a graph
                target type is not in the store's schema, or ``cfg.features`` names a feature table
                the store version lacks (the message lists what it has).
        """
        from graphrec.store import GraphStore, build

        cfg = cfg or AdsDataConfig()
        st = store if isinstance(store, GraphStore) else GraphStore(store)
        schema = st.schema(st.manifest(version).version)
        where = f"the store at {st.root}"
        if cfg.target not in schema.target_types:
            raise ValueError(f"data.target {cfg.target!r} is not a target type of {where}; it has {schema.target_types}")
        positive = [e for e in cfg.positive_events if e in schema.event_types]
        if not positive:
            raise ValueError(f"none of data.positive_events {cfg.positive_events} is an event type of {where}; "
                             f"it has {schema.event_types}")  # fmt: skip
        unknown = sorted(set(cfg.event_weights) - set(schema.event_types))
        if unknown:
            raise ValueError(f"data.event_weights names event types that {where} does not have: {unknown}; "
                             f"it has {schema.event_types}")  # fmt: skip
        others = [t for t in schema.target_types if t != cfg.target]
        graph_targets = others if cfg.graph_targets is None else list(cfg.graph_targets)
        bad = sorted(set(graph_targets) - set(others))
        if bad:
            raise ValueError(f"data.graph_targets {bad} are not target types of {where} other than the ads "
                             f"({cfg.target!r}); choose among {others}")  # fmt: skip
        impression = cfg.impression_event if cfg.impression_event in schema.event_types else None
        weights: dict[str, float] = dict.fromkeys(schema.event_types, 1.0)
        if impression is not None:
            weights[impression] = 0.0
        weights.update(cfg.event_weights)
        data = build(st, version=version, window=tuple(cfg.window) if cfg.window else None,
                     target_types=[cfg.target, *graph_targets], event_weights=weights, reverse=False,
                     feature_tables=cfg.features or None)  # fmt: skip
        n_users, n_ads = int(data[USER].num_nodes), int(data[cfg.target].num_nodes)

        def edges(target: str) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
            out = []
            for et in data.edge_types:
                if et[0] == USER and et[2] == target:
                    s = data[et]
                    out.append((et[1], s.edge_index[0].numpy(), s.edge_index[1].numpy(), s.edge_time.numpy(),
                                s.edge_weight.numpy().astype(np.float64)))  # fmt: skip
            return out

        ad_edges = edges(cfg.target)
        label_events = [(ev, u, a, t) for ev, u, a, t, _ in ad_edges if ev in positive or ev == impression]
        pairs = _label_pairs(label_events, positive, impression, n_ads)
        ad_events = _concat_events([(u, a, t, w) for _, u, a, t, w in ad_edges])
        offset, item_types, item_parts = 0, [], []
        for t in graph_targets:
            n = int(data[t].num_nodes)
            item_parts += [(u, i + offset, tt, w) for _, u, i, tt, w in edges(t)]
            item_types.append((t, n))
            offset += n
        store_info = dict(getattr(data, "store_info", {}) or {})
        version_used = store_info.get("version")
        info = {"store": store_info, "target": cfg.target, "positive_events": positive, "impression_event": impression,
                "graph_targets": graph_targets, "event_weights": weights}  # fmt: skip
        feats = [_features(data[t]) for t in graph_targets] + [_features(data[cfg.target])]
        return cls(
            num_users=n_users, num_ads=n_ads, item_types=item_types, pairs=pairs, ad_events=ad_events,
            item_events=_concat_events(item_parts), has_impressions=impression is not None and bool(
                any(ev == impression and u.size for ev, u, *_ in label_events)),
            target=cfg.target, user_ids=_external_ids(st, USER, version_used, n_users),
            ad_ids=_external_ids(st, cfg.target, version_used, n_ads), user_features=_features(data[USER]),
            target_features=_stack_features(feats, [n for _, n in item_types] + [n_ads]), info=info,
        )  # fmt: skip

    def split(self, cfg: AdsDataConfig | None = None, seed: int = 0) -> AdsData:
        """The labelled pairs split for one run, and the training graph (module docstring).

        ``cfg.split_seed`` overrides ``seed``.

        Raises:
            ValueError: no labelled pair, or no training pair after the split.
        """
        cfg = cfg or AdsDataConfig()
        seed = seed if cfg.split_seed is None else cfg.split_seed
        p = self.pairs
        if p["user"].size == 0:
            raise ValueError(f"{self!r} holds no labelled (user, {self.target}) pair: no positive or impression event")
        if cfg.split == "random":
            s = random_split(p["user"], p["ad"], cfg.ratios, seed, p["time"])
            cut = None
        else:
            s = time_split(p["user"], p["ad"], p["time"], quantiles=cfg.time_quantiles)
            cut = s.info["valid_start"]
        return self._assemble(s, cut, seed, cfg.held_out_negatives)

    def night_split(self, day_start: int, day_end: int, holdout: tuple[float, float, float] = (0.8, 0.1, 0.1),
                    seed: int = 0, held_out_negatives: int = 1) -> AdsData:  # fmt: skip
        """The nightly pipeline's split (:mod:`graphrec.pipeline.night`'s protocol, on labelled pairs): pairs
        first seen before ``day_start`` train; each user's pairs first seen in ``[day_start, day_end)`` are
        split at random in ``holdout`` ratios into training, validation and held-out (test) pairs.

        Raises:
            ValueError: no labelled pair, or no training pair.
        """
        from graphrec.data.splits import EdgeSplit

        p = self.pairs
        if p["user"].size == 0:
            raise ValueError(f"{self!r} holds no labelled (user, {self.target}) pair: no positive or impression event")
        past = p["time"] < day_start
        today = (p["time"] >= day_start) & (p["time"] < day_end)
        day = random_split(p["user"][today], p["ad"][today], holdout, seed, p["time"][today])
        past_edges = torch.from_numpy(np.stack([p["user"][past], p["ad"][past]]))
        s = EdgeSplit(torch.cat([past_edges, day.train], dim=1), day.valid, day.test, "nightly",
                      {"day_start": int(day_start), "day_end": int(day_end), "holdout": list(holdout), "seed": seed,
                       "history_pairs": int(past.sum()), "day_pairs": int(today.sum())})  # fmt: skip
        return self._assemble(s, None, seed, held_out_negatives)

    def _assemble(self, s, cut: int | None, seed: int, held_out_negatives: int) -> AdsData:
        """:class:`AdsData` from an :class:`~graphrec.data.splits.EdgeSplit` of the labelled pairs: labels
        attached, and without impressions fixed sampled negatives beside the held-out positives."""
        p = self.pairs
        s.check_disjoint(self.num_ads)
        keys = p["user"] * self.num_ads + p["ad"]  # sorted: _label_pairs returns pairs in key order
        parts = {}
        for name in ("train", "valid", "test"):
            e = getattr(s, name)
            k = e[0].numpy() * self.num_ads + e[1].numpy()
            parts[name] = (e[0], e[1], torch.from_numpy(p["label"][np.searchsorted(keys, k)].astype(np.float32)))
        if parts["train"][0].numel() == 0:
            raise ValueError(f"the {s.method} split left no training pair ({s.sizes()})")
        sampled = not self.has_impressions
        if sampled:  # no explicit negatives: fixed sampled negatives beside each held-out positive
            positives = np.unique(keys[p["label"] > 0])
            rng = np.random.default_rng([seed, 0xAD])
            for name in ("valid", "test"):
                parts[name] = _with_sampled_negatives(parts[name], held_out_negatives, self.num_ads, positives, rng)
        info = {**{k: v for k, v in self.info.items() if k != "store"}, "split": s.method, **s.info,
                "sampled_negatives": sampled}  # fmt: skip
        return AdsData(self, parts, s.method, cut, info)


def _label_pairs(events: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], positive: list[str],
                 impression: str | None, n_ads: int) -> dict[str, np.ndarray]:  # fmt: skip
    """One row per (user, ad) pair with a label event, sorted by ``user * n_ads + ad``: its first time, its
    label, and its number of impressions."""
    if not events:
        z = np.zeros(0, np.int64)
        return {"user": z, "ad": z, "time": z, "label": np.zeros(0, np.int8), "impressions": z}
    u = np.concatenate([e[1] for e in events]).astype(np.int64)
    a = np.concatenate([e[2] for e in events]).astype(np.int64)
    t = np.concatenate([e[3] for e in events]).astype(np.int64)
    pos = np.concatenate([np.full(e[1].size, e[0] in positive) for e in events])
    imp = np.concatenate([np.full(e[1].size, e[0] == impression) for e in events])
    keys, inv = np.unique(u * n_ads + a, return_inverse=True)
    first = np.full(keys.size, np.iinfo(np.int64).max)
    np.minimum.at(first, inv, t)
    label = np.zeros(keys.size, np.int8)
    label[inv[pos]] = 1
    return {"user": keys // n_ads, "ad": keys % n_ads, "time": first, "label": label,
            "impressions": np.bincount(inv[imp], minlength=keys.size).astype(np.int64)}  # fmt: skip


def _concat_events(parts: list[tuple[np.ndarray, ...]]) -> dict[str, np.ndarray]:
    """``(user, target, time, weight)`` arrays of the events with a positive weight."""
    cols = ("user", "target", "time", "weight")
    if not parts:
        return {c: np.zeros(0, np.float64 if c == "weight" else np.int64) for c in cols}
    out = {c: np.concatenate([p[k] for p in parts]) for k, c in enumerate(cols)}
    keep = out["weight"] > 0
    return {c: (v[keep].astype(np.float64) if c == "weight" else v[keep].astype(np.int64)) for c, v in out.items()}


def _with_sampled_negatives(part: tuple[Tensor, Tensor, Tensor], k: int, n_ads: int, positives: np.ndarray,
                            rng: np.random.Generator) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """The part's positive pairs plus ``k`` uniform ads per positive that are no positive of that user."""
    u, a, _ = part
    if u.numel() == 0:
        return part
    nu = np.repeat(u.numpy(), k)
    na = rng.integers(0, n_ads, nu.size)
    for _ in range(50):  # redraw the hits on a positive (RecBole redraws the same way)
        hit = np.isin(nu * n_ads + na, positives)
        if not hit.any():
            break
        na[hit] = rng.integers(0, n_ads, int(hit.sum()))
    ok = ~np.isin(nu * n_ads + na, positives)  # a user who clicked every ad keeps fewer negatives
    nu, na = nu[ok], na[ok]
    return (torch.cat([u, torch.from_numpy(nu)]), torch.cat([a, torch.from_numpy(na)]),
            torch.cat([torch.ones(u.numel()), torch.zeros(nu.size)]))  # fmt: skip


def _external_ids(store, node_type: str, version: int | None, n: int) -> list[Any]:
    m = store.id_map(node_type, version).sort("id")
    return m["external_id"].head(n).to_list()


def _features(node_store) -> Features | None:
    x, x_cat = getattr(node_store, "x", None), getattr(node_store, "x_cat", None)
    if x is None and x_cat is None:
        return None
    return (x.float() if x is not None else None, x_cat.long() if x_cat is not None else None)


def _stack_features(feats: list[Features | None], counts: list[int]) -> Features | None:
    """Features of several node types stacked by row: each type's numeric and categorical columns
    get their own column block (zeros, or the missing category 0, in the other types' rows)."""
    if all(f is None for f in feats):
        return None
    widths = [(f[0].size(1) if f and f[0] is not None else 0, f[1].size(1) if f and f[1] is not None else 0)
              for f in feats]  # fmt: skip
    nx, nc, rows = sum(w[0] for w in widths), sum(w[1] for w in widths), sum(counts)
    x = torch.zeros(rows, nx) if nx else None
    x_cat = torch.zeros(rows, nc, dtype=torch.long) if nc else None
    r = cx = cc = 0
    for f, (wx, wc), n in zip(feats, widths, counts, strict=True):
        if f is not None and wx:
            x[r : r + n, cx : cx + wx] = f[0][:n]
        if f is not None and wc:
            x_cat[r : r + n, cc : cc + wc] = f[1][:n]
        r, cx, cc = r + n, cx + wx, cc + wc
    return x, x_cat


def load_ad_log(dataset: str | os.PathLike, cfg: AdsDataConfig | None = None, version: int | None = None) -> AdLog:
    """The :class:`AdLog` of a named dataset (``graphrec datasets``: ``ads-synth``, ``ml-100k-ads``...) or a store folder.

    Raises:
        ValueError: ``dataset`` is neither a known dataset nor a graph-store folder.
        DatasetNotAvailableError: a named dataset's files are missing.
    """
    from graphrec.data.catalog import get_dataset, is_dataset
    from graphrec.data.interactions import dataset_store
    from graphrec.store import GraphStore

    if isinstance(dataset, str) and is_dataset(dataset):
        info = get_dataset(dataset)
        log = AdLog.from_store(dataset_store(info.name), cfg, version)
        log.info["dataset"] = info.name
        return log
    path = Path(dataset)
    if not GraphStore.exists(path):
        raise ValueError(f"{str(dataset)!r} is neither a known dataset (graphrec datasets; ad targeting: ads-synth, "
                         "ml-100k-ads) nor a graph store folder")  # fmt: skip
    log = AdLog.from_store(path, cfg, version)
    log.info["dataset"] = str(path)
    return log


# ---------------------------------------------------------------------------- one split
@dataclass
class AdsData:
    """One split of an :class:`AdLog`: labelled pairs per part and the training graph."""

    log: AdLog
    parts: dict[str, tuple[Tensor, Tensor, Tensor]]  # part -> (user [n], ad [n], label [n] float 0/1)
    method: str
    cut: int | None  # split: time, the validation cut (epoch seconds); graph events before it
    info: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k} {v[0].numel():,} ({int(v[2].sum()):,} positive)" for k, v in self.parts.items())
        return f"AdsData({self.num_users:,} users, {self.num_ads:,} {self.log.target}s; {self.method} split: {sizes})"

    @property
    def num_users(self) -> int:
        return self.log.num_users

    @property
    def num_ads(self) -> int:
        return self.log.num_ads

    @property
    def num_items(self) -> int:
        return self.log.num_items

    @property
    def num_nodes(self) -> int:
        return self.num_users + self.num_items + self.num_ads

    @property
    def ad_offset(self) -> int:
        """Node id of ad 0 (users, then the other targets, then the ads)."""
        return self.num_users + self.num_items

    def sizes(self) -> dict[str, int]:
        return {k: int(v[0].numel()) for k, v in self.parts.items()}

    def positives(self, part: str) -> CSR:
        """Positive ads per user in ``part`` (rows: every user)."""
        return self._positives[part]

    @cached_property
    def _positives(self) -> dict[str, CSR]:
        out = {}
        for name, (u, a, y) in self.parts.items():
            m = y > 0
            out[name] = CSR.from_pairs(u[m], a[m], self.num_users)
        return out

    @cached_property
    def _graph(self) -> tuple[Tensor, Tensor]:
        from torch_geometric.utils import coalesce

        log, U = self.log, self.num_users
        ev = log.ad_events
        u, a, _ = self.parts["train"]
        train_keys = np.sort(u.numpy() * self.num_ads + a.numpy())
        k = ev["user"] * self.num_ads + ev["target"]
        on = np.isin(k, train_keys)  # ad events of training pairs only: no held-out label in the graph
        it = log.item_events
        keep = np.ones(it["user"].size, bool) if self.cut is None else it["time"] < self.cut
        src = np.concatenate([it["user"][keep], ev["user"][on]])
        dst = np.concatenate([U + it["target"][keep], self.ad_offset + ev["target"][on]])
        w = np.concatenate([it["weight"][keep], ev["weight"][on]])
        ei, ew = coalesce(torch.from_numpy(np.stack([src, dst])), torch.from_numpy(w).float(), self.num_nodes)
        return torch.cat([ei, ei.flip(0)], dim=1), torch.cat([ew, ew])

    @property
    def graph(self) -> Tensor:
        """Message-passing ``edge_index`` ``[2, E]`` over all nodes, both directions (module docstring)."""
        return self._graph[0]

    @property
    def edge_weight(self) -> Tensor:
        """``[E]`` weight of each edge of :attr:`graph`."""
        return self._graph[1]

    @cached_property
    def ad_counts(self) -> Tensor:
        """Training positives per ad (popularity negatives)."""
        u, a, y = self.parts["train"]
        return torch.bincount(a[y > 0], minlength=self.num_ads)

    def train_positive_keys(self) -> Tensor:
        """Sorted ``user * num_ads + ad`` of the training positives."""
        u, a, y = self.parts["train"]
        m = y > 0
        return torch.sort(u[m] * self.num_ads + a[m]).values

    def summary(self) -> dict[str, Any]:
        return {"users": self.num_users, "ads": self.num_ads, "items": self.num_items, **self.sizes(),
                "split": self.method, "edges": int(self.graph.size(1))}  # fmt: skip


# ---------------------------------------------------------------------------- the model
class AdTargetingModel(BipartiteRecommender):
    """A :class:`~graphrec.models.BipartiteRecommender` over users and ``num_items + num_ads``
    targets (the other targets, then the ads), with the click probability
    ``sigmoid(alpha * score + beta)`` (module docstring).

    Args:
        num_items: targets that are not ads (context in the graph, never ranked).
        num_ads: the ads; ad ``a`` is target row ``num_items + a``.
        calibration: ``affine`` (learned alpha > 0 and beta) or ``none``.
        Others: :class:`~graphrec.models.BipartiteRecommender`'s.
    """

    def __init__(self, num_users: int, num_items: int, num_ads: int, backbone: nn.Module, dim: int, *,
                 calibration: str = "affine", **kwargs: Any):  # fmt: skip
        super().__init__(num_users, num_items + num_ads, backbone, dim, **kwargs)
        if calibration not in ("affine", "none"):
            raise ValueError(f"calibration must be 'affine' or 'none', got {calibration!r}")
        self.num_context_items, self.num_ads = num_items, num_ads
        self.calibration_scale = self.calibration_bias = None
        if calibration == "affine":
            self.calibration_scale = nn.Parameter(torch.tensor(math.log(math.expm1(1.0))))  # softplus -> 1
            self.calibration_bias = nn.Parameter(torch.zeros(()))

    @property
    def ad_offset(self) -> int:
        """Node id of ad 0."""
        return self.num_users + self.num_context_items

    def calibration(self) -> tuple[float, float]:
        """``(alpha, beta)`` of the click probability ``sigmoid(alpha * score + beta)``."""
        if self.calibration_scale is None:
            return 1.0, 0.0
        return float(F.softplus(self.calibration_scale.detach())), float(self.calibration_bias.detach())

    def calibrate(self, scores: Tensor) -> Tensor:
        """Logits of the click probability from scorer scores (any shape)."""
        if self.calibration_scale is None:
            return scores
        return F.softplus(self.calibration_scale) * scores + self.calibration_bias

    def logits(self, users: Tensor, ads: Tensor) -> Tensor:
        """Click logits of pairs of output embeddings ``[..., d]`` (user side first) -> ``[...]``."""
        return self.calibrate(self.scorer.score(users, ads))

    @torch.no_grad()
    def embeddings(self, graph: Tensor, edge_weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(users [U, d], targets [num_items + num_ads, d])`` in evaluation mode on the weighted graph."""
        was = self.training
        self.eval()
        try:
            out = self(graph, edge_weight=edge_weight)
        finally:
            self.train(was)
        return out[: self.num_users], out[self.num_users :]

    def user_ad_embeddings(self, graph: Tensor, edge_weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(users [U, d], ads [A, d])``: output embeddings in evaluation mode, the ads' rows only."""
        users, targets = self.embeddings(graph, edge_weight)
        return users, targets[self.num_context_items :]


def build_ads_model(cfg: AdsConfig, data: AdsData) -> AdTargetingModel:
    """The configured backbone on ``data``'s user-item-ad graph, with ``train.score`` as scorer.

    Raises:
        ValueError: a backbone that cannot learn its inputs, bad parameters or scorer options,
            or ``inputs`` with features on a store without any.
    """
    t = cfg.train
    spec, backbone = build_id_backbone(cfg)
    log = data.log
    model = AdTargetingModel(
        data.num_users, data.num_items, data.num_ads, backbone, t.embedding_dim, calibration=t.calibration,
        needs_graph=spec.needs_graph, inputs=t.inputs, scorer=build_scorer(t.score, t.score_params),
        user_features=log.user_features, item_features=log.target_features, init=t.init, init_std=t.init_std,
    )  # fmt: skip
    if model.calibration_bias is not None:  # start at the base rate: logit of the training label mean
        _, _, y = data.parts["train"]
        pos = float(y.sum())
        total = y.numel() + pos * num_sampled_negatives(cfg, data)
        rate = min(max(pos / max(total, 1.0), 1e-4), 1 - 1e-4)
        with torch.no_grad():
            model.calibration_bias.fill_(math.log(rate / (1 - rate)))
    return model


def num_sampled_negatives(cfg: AdsConfig, data: AdsData) -> int:
    """Sampled negative ads per training positive: ``train.num_negatives``, by default 0 when the log has
    impressions and 1 when it has none."""
    n = cfg.train.num_negatives
    return n if n is not None else (0 if data.log.has_impressions else 1)


# ---------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate_ads(model: AdTargetingModel, data: AdsData, part: str = "test", ks: Sequence[int] = (10, 20),
                 ece_bins: int = 10, chunk_size: int | None = None,
                 embeddings: tuple[Tensor, Tensor] | None = None) -> dict[str, float]:  # fmt: skip
    """Metrics of ``model`` on ``part`` (module docstring): ``auc``, ``log_loss``, ``ece``, ``loss`` (= log loss),
    ``pairs``, ``positives``, and ``hit@K``, ``ndcg@K``, ``recall@K``, ``users`` of the full ranking of the ads.

    ``embeddings``: ``(users [U, d], ads [A, d])`` to use instead of computing them.

    Raises:
        ValueError: an unknown part, or a cut-off larger than the number of ads.
    """
    if embeddings is None:
        embeddings = model.user_ad_embeddings(data.graph.to(_device(model)), data.edge_weight.to(_device(model)))
    return evaluate_embeddings(*embeddings, model.scorer, data, part, ks, ece_bins, chunk_size, model.calibrate)


@torch.no_grad()
def evaluate_embeddings(users: Tensor, ads: Tensor, scorer: Scorer, data: AdsData, part: str = "test",
                        ks: Sequence[int] = (10, 20), ece_bins: int = 10, chunk_size: int | None = None,
                        calibrate: Callable[[Tensor], Tensor] | None = None) -> dict[str, float]:  # fmt: skip
    """:func:`evaluate_ads` of output embeddings ``users [U, d]`` and ``ads [A, d]`` scored by ``scorer``, the
    click probability ``sigmoid(calibrate(score))`` (a published model's, in the nightly gate).

    Raises:
        ValueError: an unknown part, or a cut-off larger than the number of ads.
    """
    if part not in ("valid", "test"):
        raise ValueError(f"part must be 'valid' or 'test', got {part!r}")
    if max(ks) > data.num_ads:
        raise ValueError(f"eval.ks {list(ks)} exceeds the number of {data.log.target}s ({data.num_ads})")
    calibrate = calibrate if calibrate is not None else (lambda x: x)
    u, a, y = data.parts[part]
    p = torch.empty(u.numel())
    for s in range(0, u.numel(), 65536):
        bu, ba = u[s : s + 65536].to(users.device), a[s : s + 65536].to(users.device)
        p[s : s + 65536] = torch.sigmoid(calibrate(scorer.score(users[bu], ads[ba])).float()).cpu()
    out = binary_metrics(y.numpy(), p.numpy(), ece_bins)
    out["loss"] = out["log_loss"]
    exclude = [data.positives("train")] + ([data.positives("valid")] if part == "test" else [])
    ranking = evaluate_topk(_score_fn(scorer, users, ads), data.positives(part), data.num_ads, ks, exclude,
                            chunk_size=chunk_size, metrics=ADS_RANKING_METRICS)  # fmt: skip
    return {**out, **ranking}


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _score_fn(scorer: Scorer, users: Tensor, ads: Tensor):
    """``fn(user ids [B]) -> [B, A]`` scores on the CPU, computed where the embeddings (and the scorer) are."""

    def fn(batch: Tensor) -> Tensor:
        return scorer.score_all(users[batch.to(users.device)], ads).cpu()

    return fn


# ---------------------------------------------------------------------------- the task
class AdsTask:
    """Ad targeting on one split (:class:`AdsData`) as a :class:`~graphrec.tasks.trainer.Task`.

    Raises:
        ValueError: no training pair, or ``eval.ks`` larger than the number of ads.
    """

    def __init__(self, data: AdsData, cfg: AdsConfig):
        if data.parts["train"][0].numel() == 0:
            raise ValueError("the training split holds no labelled pair")
        y_train, y_valid = data.parts["train"][2], data.parts["valid"][2]
        if not bool((y_train > 0).any()):
            events = ", ".join(data.log.info.get("positive_events") or []) or "none"
            raise ValueError(f"the training split holds no positive pair: no user has a positive event "
                             f"(data.positive_events: {events}) on any {data.log.target}; nothing to learn")  # fmt: skip
        if cfg.train.stop_on == "auc" and y_valid.numel() and bool((y_valid == y_valid[0]).all()):
            raise ValueError(f"every validation pair has label {int(y_valid[0])}: the validation AUC that selects "
                             "the epoch is undefined; set train.stop_on: log_loss, or use a longer log")  # fmt: skip
        if max(cfg.eval.ks) > data.num_ads:
            raise ValueError(f"eval.ks {cfg.eval.ks} exceeds the number of {data.log.target}s ({data.num_ads}): "
                             "set eval.ks to smaller cut-offs")  # fmt: skip
        self.data, self.cfg = data, cfg
        t = cfg.train
        self.metric = t.stop_on
        self.stop_rule = "loss" if t.stop_on == "log_loss" else "metric"
        self.num_negatives = num_sampled_negatives(cfg, data)
        if self.num_negatives == 0 and not data.log.has_impressions:
            raise ValueError("train.num_negatives is 0 but the log has no impressions: every training pair would be "
                             "positive; set train.num_negatives >= 1")  # fmt: skip
        self.negatives = NegativeSampler(data.num_ads, t.negatives, data.ad_counts, t.popularity_exponent,
                                         data.train_positive_keys())  # fmt: skip
        self.device = torch.device("cpu")
        self.graph, self.edge_weight = data.graph, data.edge_weight

    def to(self, device: torch.device) -> None:
        self.device = device
        self.graph, self.edge_weight = self.data.graph.to(device), self.data.edge_weight.to(device)

    def start_epoch(self, model: AdTargetingModel, epoch: int) -> None:
        """Before each epoch: a scorer with ``on_epoch_start(epoch, user_embeddings)`` (the
        multi-manifold scorer re-clusters its origins) gets it, with a callable returning the
        users' current output embeddings ``[U, d]``."""
        hook = getattr(model.scorer, "on_epoch_start", None)
        if hook is not None:
            hook(epoch, lambda: model.user_ad_embeddings(self.graph, self.edge_weight)[0])

    def batches(self, epoch: int) -> Iterable[Any]:
        u, a, y = self.data.parts["train"]
        bs = self.cfg.train.batch_size
        perm = torch.randperm(u.numel())
        for start in range(0, perm.numel(), bs):
            idx = perm[start : start + bs]
            bu, ba, by = u[idx], a[idx], y[idx]
            if self.num_negatives:
                pos_u = bu[by > 0]
                neg = self.negatives.sample(pos_u, self.num_negatives).view(-1)
                bu = torch.cat([bu, pos_u.repeat_interleave(self.num_negatives)])
                ba, by = torch.cat([ba, neg]), torch.cat([by, torch.zeros(neg.numel())])
            yield bu, ba, by

    def step_loss(self, model: AdTargetingModel, batch: Any) -> tuple[Tensor, int]:
        u, a, y = (x.to(self.device) for x in batch)
        rows = a + model.ad_offset
        if model.needs_graph:
            out = model(self.graph, edge_weight=self.edge_weight)
            iu, ia, n_id = u, rows, None
        else:  # no message passing: compute the batch's rows only
            n_id, inv = torch.unique(torch.cat([u, rows]), return_inverse=True)
            out = model(self.graph, n_id=n_id)
            iu, ia = inv[: u.numel()], inv[u.numel() :]
        loss = F.binary_cross_entropy_with_logits(model.logits(out[iu], out[ia]), y)
        t = self.cfg.train
        if t.reg_weight > 0 and model.manifold is not None:
            raise ValueError(f"reg_weight={t.reg_weight} (train.reg_weight) is an L2 penalty on Euclidean inputs; "
                             f"{type(model.backbone).__name__}'s inputs are points on a manifold: set it to 0 and use "
                             "train.weight_decay")  # fmt: skip
        if t.reg_weight > 0:
            ids = torch.cat([iu, ia])
            loss = loss + t.reg_weight * model.ego(ids if n_id is None else n_id[ids]).pow(2).sum() / (2 * u.numel())
        pos = y > 0
        aux = model.auxiliary_loss(iu[pos], ia[pos]) if bool(pos.any()) else model.auxiliary_loss(iu, ia)
        return (loss + aux if aux is not None else loss), int(u.numel())

    def has_part(self, part: Part) -> bool:
        return self.data.parts[part][0].numel() > 0

    def evaluate(self, model: nn.Module, part: Part) -> dict[str, float]:
        e = self.cfg.eval
        emb = model.user_ad_embeddings(self.graph, self.edge_weight)
        return evaluate_ads(model, self.data, part, e.ks, e.ece_bins, e.chunk_size, embeddings=emb)


def fit_ads(data: AdsData, model: AdTargetingModel, cfg: AdsConfig, progress: bool | ProgressFn | None = None,
            **trainer_options: Any) -> FitResult:  # fmt: skip
    """Train ``model`` on ``data`` with the options of ``cfg``; ``trainer_options`` go to
    :class:`~graphrec.tasks.trainer.Trainer` (``checkpoint``, ``resume``, ``keep_state``...)."""
    trainer_options.setdefault("keep_state", True)
    return Trainer.from_config(cfg.train, progress=progress, **trainer_options).fit(model, AdsTask(data, cfg))


# ---------------------------------------------------------------------------- model folder and queries
def export_ads_model(model: AdTargetingModel, data: AdsData, out_dir: str | os.PathLike, *, config: dict | None = None,
                     metrics: dict | None = None, history: list[dict] | None = None, index: str = "flat",
                     overwrite: bool = False) -> Path:  # fmt: skip
    """Write a model folder (:mod:`graphrec.serving.format`) of a trained ad-targeting model: the
    users' and the ads' output embeddings (target type ``data.target``), the training positives as
    seen pairs, the scorer, the weights, and in the card ``task: ads``, the calibration
    ``{"scale": alpha, "bias": beta}`` and the graph layout (``num_items`` other targets before the ads).
    ``graphrec ads``, ``graphrec audience`` and ``graphrec recommend`` serve it."""
    from graphrec.serving.export import export_embeddings

    dev = _device(model)
    users, ads = model.user_ad_embeddings(data.graph.to(dev), data.edge_weight.to(dev))
    log = data.log
    u, a, y = data.parts["train"]
    m = y > 0
    alpha, beta = model.calibration()
    card = {
        "task": "ads",
        "model": (config or {}).get("model", {}).get("name") if config else type(model).__name__,
        "config": config,
        "metrics": metrics,
        "data": {k: v for k, v in {**data.info, "store": log.info.get("store"), "dataset": log.info.get("dataset")}.items()
                 if _jsonable(v)},
        "split": data.sizes(),
        "calibration": {"scale": alpha, "bias": beta},
        "graph": {"num_items": data.num_items, "item_types": [list(t) for t in log.item_types]},
    }  # fmt: skip
    return export_embeddings(
        out_dir, users.cpu().numpy(), ads.cpu().numpy(), user_ids=log.user_ids, item_ids=log.ad_ids,
        seen=(u[m].numpy(), a[m].numpy()), target=log.target, index=index, card=card,  # type: ignore[arg-type]
        state_dict=model.state_dict(), scorer=model.scorer, history=history, overwrite=overwrite,
    )  # fmt: skip


def _jsonable(value: Any) -> bool:
    import json

    try:
        json.dumps(value)
        return True
    except TypeError:
        return False


class UnknownIdError(KeyError):
    """A user or ad id that the model does not know; the message says where its ids are."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Target:
    """One answer of a targeting query: an ad for a user, or a user for an ad."""

    id: Any  # external id (ad for ads_for_user, user for audience)
    score: float  # the scorer's score (higher: more likely)
    probability: float  # calibrated click probability sigmoid(alpha * score + beta)
    rank: int


class AdTargeting:
    """A loaded ad-targeting model folder (:func:`export_ads_model`): :meth:`ads_for_user` and
    :meth:`audience` (the targeting query), exact scans with the model's own scorer.

    Raises:
        FileNotFoundError: ``path`` is not a model folder (nor an artifact registry).
        ValueError: the folder holds another task's model.
    """

    def __init__(self, path: str | os.PathLike):
        from graphrec.serving.format import ModelFolder, resolve_model_dir

        folder = ModelFolder(resolve_model_dir(path))
        task = folder.card.get("task", "rec")
        if task != "ads":
            raise ValueError(f"{folder.path} holds a {task!r} model, not an ad-targeting one: train one with a run "
                             "config of task: ads (graphrec train), or graphrec bench ads --export")  # fmt: skip
        self.path, self.card, self.target = folder.path, folder.card, folder.target
        self.user_ids, self.ad_ids = folder.ids("user"), folder.ids(self.target)
        self._index = {"user": {x: n for n, x in enumerate(self.user_ids)}, "ad": {x: n for n, x in enumerate(self.ad_ids)}}
        self._types = {"user": self.card.get("user_id_type", "int"), "ad": self.card.get("target_id_type", "int")}
        self.users = torch.from_numpy(folder.embeddings("user"))
        self.ads = torch.from_numpy(folder.embeddings(self.target))
        self.scorer = folder.load_scorer()
        cal = self.card.get("calibration") or {}
        self.scale, self.bias = float(cal.get("scale", 1.0)), float(cal.get("bias", 0.0))
        su, sa = folder.seen()
        self.seen_by_user = CSR.from_pairs(torch.from_numpy(su), torch.from_numpy(sa), len(self.user_ids))
        self.seen_by_ad = CSR.from_pairs(torch.from_numpy(sa), torch.from_numpy(su), len(self.ad_ids))

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_ads(self) -> int:
        return len(self.ad_ids)

    def _lookup(self, kind: str, x: Any) -> int:
        key = x
        if self._types[kind] == "int" and isinstance(x, str):
            try:
                key = int(x)
            except ValueError:
                key = x
        elif self._types[kind] == "string" and not isinstance(x, str):
            key = str(x)
        if isinstance(key, np.integer):
            key = int(key)
        n = self._index[kind].get(key)
        if n is None:
            ids = self.user_ids if kind == "user" else self.ad_ids
            what = "user" if kind == "user" else self.target
            table = self.path / "embeddings" / f"{'user' if kind == 'user' else self.target}.parquet"
            raise UnknownIdError(f"unknown {what} {x!r}: not among the {len(ids):,} {what}s of the model at {self.path} "
                                 f"(e.g. {', '.join(map(str, ids[:5]))}). Ids are the external ids of the logs it was "
                                 f"trained on ({what}_id / target_id); the column external_id of {table} lists them all")  # fmt: skip
        return n

    def probability(self, scores: Tensor) -> Tensor:
        return torch.sigmoid(self.scale * scores + self.bias)

    def _top(self, scores: Tensor, exclude: Tensor | None, ids: list[Any], k: int) -> list[Target]:
        scores = scores.float().clone()
        if exclude is not None and exclude.numel():
            scores[exclude] = -torch.inf
        k = min(k, int(torch.isfinite(scores).sum()))
        values, idx = torch.topk(scores, k)
        probs = self.probability(values)
        return [Target(ids[int(i)], float(v), float(p), r + 1)
                for r, (v, p, i) in enumerate(zip(values, probs, idx, strict=True))]  # fmt: skip

    @torch.no_grad()
    def ads_for_user(self, user: Any, k: int = 10, *, exclude_seen: bool = True) -> list[Target]:
        """The ``k`` ads ``user`` most likely clicks, best first (the training positives excluded unless
        ``exclude_seen=False``).

        Raises:
            UnknownIdError: an unknown user. ValueError: ``k < 1``.
        """
        if k < 1:
            raise ValueError(f"k must be a positive integer, got {k}")
        u = self._lookup("user", user)
        scores = self.scorer.score_all(self.users[u : u + 1], self.ads)[0]
        return self._top(scores, self.seen_by_user.row(u) if exclude_seen else None, self.ad_ids, k)

    @torch.no_grad()
    def audience(self, ad: Any, k: int = 10, *, exclude_seen: bool = True) -> list[Target]:
        """The ``k`` users most likely to click ``ad``, best first: the targeting query (users who
        clicked it in training excluded unless ``exclude_seen=False``).

        Raises:
            UnknownIdError: an unknown ad. ValueError: ``k < 1``.
        """
        if k < 1:
            raise ValueError(f"k must be a positive integer, got {k}")
        a = self._lookup("ad", ad)
        scores = self.scorer.score(self.users, self.ads[a : a + 1])  # user side first: [U, d] against [1, d]
        return self._top(scores, self.seen_by_ad.row(a) if exclude_seen else None, self.user_ids, k)


def ads_for_user(model_dir: str | os.PathLike, user: Any, k: int = 10, *, exclude_seen: bool = True) -> list[Target]:
    """Top-``k`` ads for ``user`` from the ad-targeting model folder ``model_dir`` (:class:`AdTargeting`)."""
    return AdTargeting(model_dir).ads_for_user(user, k, exclude_seen=exclude_seen)


def audience(model_dir: str | os.PathLike, ad: Any, k: int = 10, *, exclude_seen: bool = True) -> list[Target]:
    """Top-``k`` users for ``ad`` (its audience) from the ad-targeting model folder ``model_dir``."""
    return AdTargeting(model_dir).audience(ad, k, exclude_seen=exclude_seen)
