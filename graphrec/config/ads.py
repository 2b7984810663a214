"""Configuration of ad targeting (user -> ad click prediction): the schema and its resolution.

Layers, later wins: the defaults below -> the model's preset
(``graphrec/config/presets/ads/<model>.yaml``) -> its per-dataset section -> extra layers (a
pipeline's ``ads:`` mapping) -> a user YAML file -> ``--set section.key=value``. Sections:
``model`` (the backbone's parameters, validated by the registry), ``train``, ``data``, ``eval``.

The task itself is :mod:`graphrec.tasks.ads` (labels, split, loss, metrics: ``docs/ads.md``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from graphrec.config.base import Strict, TaskConfig
from graphrec.config.presets import resolve_task_config
from graphrec.config.rec import SCORES, Cutoffs, FeatureTables, RecTrainConfig
from graphrec.config.trainer import TrainerConfig

#: Ranking metrics of ad targeting (full ranking of all ads per user), and the metrics of the
#: held-out labelled pairs.
ADS_RANKING_METRICS = ("hit", "ndcg", "recall")
ADS_PAIR_METRICS = ("auc", "log_loss", "ece")


def _rec(name: str) -> str:
    """The description of ``RecTrainConfig``'s field ``name`` (the same option, the same words)."""
    return RecTrainConfig.model_fields[name].description or ""


class AdsTrainConfig(TrainerConfig):
    """The trainer's options with ad targeting's defaults, plus the model's inputs, scorer and negatives."""

    lr: float = Field(0.005, gt=0)
    epochs: int = Field(100, ge=1)
    patience: int = Field(10, ge=1, description="evaluations without improvement before stopping (select: best)")
    stop_on: str = Field("auc", description=(
        "validation metric for early stopping and model selection: auc, log_loss (lower is better), or hit@K, "
        "ndcg@K, recall@K of the full ranking of ads (K in eval.ks)"))
    score: SCORES = Field("dot", description=_rec("score"))
    score_params: dict[str, Any] = Field({}, description=_rec("score_params"))
    calibration: Literal["affine", "none"] = Field("affine", description=(
        "affine: the click probability is sigmoid(a * score + b) with learned a > 0 and b (b starts at the logit "
        "of the training label rate), so distance scores (at most 0) can still mean p > 0.5; a > 0 keeps every "
        "ranking the scorer's own, and every scorer gets the same probability head (a scorer with its own affine, "
        "multi_manifold, composes with it into one affine map); none: sigmoid(score)"))
    embedding_dim: int = Field(32, ge=1)
    batch_size: int = Field(4096, ge=1, description="labelled (user, ad) pairs per step")
    num_negatives: int | None = Field(None, ge=0, description=(
        "sampled negative ads per positive pair, labelled 0 beside the explicit negatives (impressions "
        "without a click); default: 0 when the log has impressions, 1 when it has none"))
    negatives: Literal["uniform", "popularity"] = Field("uniform", description="how sampled negative ads are drawn")
    popularity_exponent: float = Field(0.75, ge=0, description=_rec("popularity_exponent"))
    reg_weight: float = Field(0.0, ge=0, description=_rec("reg_weight"))
    inputs: Literal["id", "features", "both"] = Field("id", description=(
        "ID embeddings, store features (users, items and ads; each type's columns), or both"))
    init: Literal["xavier_normal", "xavier_uniform", "normal"] = "xavier_normal"
    init_std: float = Field(0.1, gt=0, description="for init: normal")

    @field_validator("stop_on")
    @classmethod
    def _metric(cls, value: str) -> str:
        if value in ("auc", "log_loss"):
            return value
        name, _, k = value.partition("@")
        if name not in ADS_RANKING_METRICS or not k.isdigit() or int(k) < 1:
            raise ValueError(f"stop_on must be auc, log_loss, or one of {', '.join(ADS_RANKING_METRICS)} at a "
                             f"cut-off (ndcg@10), got {value!r}")  # fmt: skip
        return value


class AdsDataConfig(Strict):
    """Which events are labels, which form the graph, and how the labelled pairs are split."""

    target: str = Field("ad", description="the node type of the ads")
    positive_events: list[str] = Field(["click", "conversion"], description=(
        "event types on ads that label a (user, ad) pair 1 (those absent from the store's schema are skipped; "
        "at least one must exist)"))
    impression_event: str | None = Field("impression", description=(
        "event type of an ad shown to a user: a shown pair without a positive event is labelled 0; null, or a "
        "log without it: sampled ads are the negatives"))
    event_weights: dict[str, float] = Field({}, description=(
        "edge weight of each event type in the message-passing graph (default 1; 0 leaves the type out); the "
        "impression event is left out unless given a weight here. Multiplied by each event's own weight; "
        "repeated events of one (user, target) pair add up"))
    graph_targets: list[str] | None = Field(None, description=(
        "other target types whose events join the graph (a user's item history informs their ads); default: "
        "every target type of the store but the ads"))
    window: tuple[str | int | None, str | int | None] | None = Field(None, description="[start, end) of the store build")
    split: Literal["random", "time"] = Field("random", description=(
        "random: per user, the labelled (user, ad) pairs in ratios (RecBole's rounding); time: one global cut at "
        "time_quantiles of the pairs' first-event times (then only events before the validation cut form the "
        "graph)"))
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    time_quantiles: tuple[float, float] = (0.8, 0.9)
    split_seed: int | None = Field(None, description="seed of the random split and of sampled held-out negatives "
                                   "(default: the run's seed)")  # fmt: skip
    held_out_negatives: int = Field(1, ge=1, description=(
        "a log without impressions: sampled negative ads per held-out positive pair, fixed per split (for AUC, "
        "log loss and ECE)"))
    features: FeatureTables = []

    @field_validator("positive_events")
    @classmethod
    def _some(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("positive_events must name at least one event type")
        return value

    @field_validator("event_weights")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [k for k, w in value.items() if w < 0]
        if bad:
            raise ValueError(f"event weights must not be negative: {bad}")
        return value


class AdsEvalConfig(Strict):
    ks: Cutoffs = Field([10, 20], description="cut-offs of HR@K, NDCG@K and Recall@K (full ranking of all ads)")
    ece_bins: int = Field(10, ge=1, description="equal-width bins over [0, 1] of the expected calibration error")
    chunk_size: int | None = Field(None, ge=1, description="users per ranking chunk (default: ~256 MB of scores)")



class AdsConfig(TaskConfig):
    """An ad-targeting run: backbone, trainer, labels and split, evaluation."""

    train: AdsTrainConfig = AdsTrainConfig()
    data: AdsDataConfig = AdsDataConfig()
    eval: AdsEvalConfig = AdsEvalConfig()

    @model_validator(mode="after")
    def _stop_metric_is_computed(self) -> AdsConfig:
        name, _, k = self.train.stop_on.partition("@")
        if k and int(k) not in self.eval.ks:
            raise ValueError(f"train.stop_on={self.train.stop_on!r} is not among the computed metrics "
                             f"(eval.ks={self.eval.ks})")  # fmt: skip
        return self


def resolve_ads_config(
    model: str,
    dataset: str | None = None,
    overrides: list[str] | None = None,
    config_file: str | Path | None = None,
    layers: Iterable[tuple[str, dict]] = (),
) -> AdsConfig:
    """The ad-targeting config of ``model`` on ``dataset`` after every layer.

    Raises:
        ConfigError: unknown model, key or value (the message names the key and its source).
    """
    return resolve_task_config(AdsConfig, "ads", model, dataset, overrides, config_file, layers)
