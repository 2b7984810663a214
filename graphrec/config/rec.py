"""Configuration of recommendation (link prediction): the schema and its resolution.

Layers, later wins: the defaults below (RecBole's protocol for MovieLens-100k) -> the
model's preset (``graphrec/config/presets/rec/<model>.yaml``) -> its per-dataset section ->
extra layers (a pipeline's ``rec:`` mapping) -> a user YAML file -> ``--set
section.key=value``. Sections: ``model`` (the backbone's own parameters, validated by the
registry), ``train``, ``data``, ``eval``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from graphrec.config.base import Strict, TaskConfig
from graphrec.config.presets import resolve_task_config
from graphrec.config.trainer import TrainerConfig
from graphrec.metrics import ALL_METRICS

#: Scorer names (graphrec.nn.score.SCORER_NAMES; listed here so configs validate without torch).
SCORES = Literal["dot", "cosine", "neg_sq_euclidean", "hyperbolic", "lorentz_sqdist", "multi_manifold"]


class RecTrainConfig(TrainerConfig):
    """The trainer's options with recommendation's defaults, plus pair sampling and inputs."""

    loss: Literal["bpr", "bce", "softmax", "margin"] = Field("bpr", description=(
        "bpr: BPR, pairwise, mean over the negatives; bce: binary cross-entropy on the positive and the sampled "
        "negatives; softmax: sampled softmax (InfoNCE) of the positive against its num_negatives negatives at "
        "temperature (Wu et al., TOIS 2023); with score: cosine it is the SSM setting; margin: hinge "
        "max(0, margin - s+ + s-), HGCF's margin ranking loss with score: lorentz_sqdist"))
    margin: float = Field(0.1, ge=0, description="loss: margin, the margin between positive and negative scores")
    temperature: float = Field(1.0, gt=0, description="softmax loss: scores are divided by it (0.05-0.2 with cosine)")
    score: SCORES = Field("dot", description=(
        "how a user and an item score in training, evaluation and serving: dot (inner product), cosine, "
        "neg_sq_euclidean, hyperbolic (distance after expmap0), lorentz_sqdist (points on the hyperboloid, HGCF), "
        "multi_manifold (ad targeting)"))
    score_params: dict[str, Any] = Field({}, description=(
        "options of the scorer, e.g. {kind: lorentz, curvature: 1.0, learnable: true} for hyperbolic"))
    negatives: Literal["uniform", "popularity"] = "uniform"
    num_negatives: int = Field(1, ge=1, description="negatives per positive pair")
    popularity_exponent: float = Field(0.75, ge=0, description="popularity negatives: p(i) ~ count(i)^exponent")
    exclude_positives: bool = Field(True, description="resample negatives that are training positives of the user")
    lr: float = Field(1e-3, gt=0)
    reg_weight: float = Field(0.0, ge=0, description="L2 on the batch's input embeddings (LightGCN-style)")
    batch_size: int = Field(2048, ge=1, description="positive pairs per step")
    epochs: int = Field(300, ge=1)
    patience: int = Field(30, ge=1, description="evaluations without improvement before stopping (select: best)")
    stop_on: str = Field("ndcg@10", description="validation metric for early stopping and model selection")
    embedding_dim: int = Field(64, ge=1)
    inputs: Literal["id", "features", "both"] = Field("id", description="ID embeddings, store features, or both")
    init: Literal["xavier_normal", "xavier_uniform", "normal"] = "xavier_normal"
    init_std: float = Field(0.1, gt=0, description="for init: normal")
    sampler: Literal["full", "neighbor"] = Field("full", description="full-graph steps, or sampled subgraphs")
    num_neighbors: list[int] = Field([10, 10, 10], description="neighbour sampler: fan-out per hop (-1 = all)")
    partition: Literal["random", "metis"] = Field("random", description=(
        "several ranks with sampler: neighbor: how the training graph is cut into one part per rank; each rank "
        "trains on the pairs of the users it owns and samples from its part plus the halo (nodes within "
        "len(num_neighbors) hops). random: seeded, edge-balanced; metis: fewer cut edges, a smaller halo "
        "(graphrec[dist] extra)"))

    @field_validator("stop_on")
    @classmethod
    def _metric(cls, value: str) -> str:
        name, _, k = value.partition("@")
        if name not in ALL_METRICS or not k.isdigit() or int(k) < 1:
            raise ValueError(f"stop_on must look like ndcg@10 (metrics: {', '.join(ALL_METRICS)}), got {value!r}")
        return value


def feature_table_keys(value: list[str]) -> list[str]:
    """Feature-table keys checked to look like ``<node type>/<name>``, without repeats (order kept).

    Raises:
        ValueError: a key without exactly one ``/`` or with an empty part.
    """
    bad = [k for k in value if k.count("/") != 1 or not all(k.split("/"))]
    if bad:
        raise ValueError(f"feature tables are named <node type>/<name>, e.g. user/sasrec; got {bad}")
    return list(dict.fromkeys(value))


#: ``data.features`` of the rec and ads configs: feature tables of the store attached as node features.
FeatureTables = Annotated[list[str], AfterValidator(feature_table_keys), Field(description=(
    "feature tables of the store attached as node features, e.g. user/sasrec (<node type>/<name>; written by "
    "graphrec encode or GraphStore.write_features); nodes without a row get zeros. Used by train.inputs: features "
    "or both"))]


class RecDataConfig(Strict):
    target: str = Field("item", description="target node type to recommend (item, ad, ...)")
    event_types: list[str] | None = Field(None, description="event types that count as interactions (default: all)")
    window: tuple[str | int | None, str | int | None] | None = Field(None, description="[start, end) of the store build")
    min_interactions: int = Field(0, ge=0, description="k-core filter of the store build")
    split: Literal["auto", "random", "loo", "time", "published"] = Field(
        "auto", description="auto: the dataset's own protocol (graphrec datasets: published for gowalla, ml-1m and "
        "amazon-cd, loo for the sequence datasets, random for ml-100k and any store folder); random: per user 8:1:1 "
        "(ratios); loo: per user, last pair test, second to last validation; time: one global cut (time_quantiles); "
        "published: the dataset's published test set exactly, validation carved from its training pairs (valid_ratio)")  # fmt: skip
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    time_quantiles: tuple[float, float] = (0.8, 0.9)
    valid_ratio: float = Field(0.1, ge=0, lt=1, description=(
        "published split: per user with n training pairs, floor(valid_ratio * n) of them, drawn at random (split_seed), "
        "become validation, at least one when n >= 2 and never all (the user keeps >= 1 training pair); 0: no "
        "validation part (set train.select: last; the trainer then keeps the last epoch)"))  # fmt: skip
    split_seed: int | None = Field(None, description="seed of the random split and of the published split's "
                                   "validation draw (default: the run's seed)")  # fmt: skip
    drop_cold_items: bool = Field(False, description="drop validation/test pairs of items without training pairs")
    features: FeatureTables = []


def positive_ks(value: list[int]) -> list[int]:
    """Cut-offs sorted and deduplicated; an empty list or one below 1 is an error."""
    if not value or min(value) < 1:
        raise ValueError(f"ks must be positive integers, got {value}")
    return sorted(set(value))


#: Cut-offs K of the @K metrics: positive, sorted, without repeats.
Cutoffs = Annotated[list[int], AfterValidator(positive_ks)]


class RecEvalConfig(Strict):
    ks: Cutoffs = Field([10, 20], description="cut-offs")
    metrics: list[str] = Field(list(ALL_METRICS))
    chunk_size: int | None = Field(None, ge=1, description="users per evaluation chunk (default: ~256 MB of scores)")

    @field_validator("metrics")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(ALL_METRICS))
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; known: {list(ALL_METRICS)}")
        return value



class RecConfig(TaskConfig):
    """A recommendation run: backbone, trainer, data view and split, evaluation."""

    train: RecTrainConfig = RecTrainConfig()
    data: RecDataConfig = RecDataConfig()
    eval: RecEvalConfig = RecEvalConfig()

    @model_validator(mode="after")
    def _stop_metric_is_computed(self) -> RecConfig:
        name, _, k = self.train.stop_on.partition("@")
        if int(k) not in self.eval.ks or name not in self.eval.metrics:
            raise ValueError(f"train.stop_on={self.train.stop_on!r} is not among the computed metrics "
                             f"(eval.metrics={self.eval.metrics}, eval.ks={self.eval.ks})")  # fmt: skip
        return self


def resolve_rec_config(
    model: str,
    dataset: str | None = None,
    overrides: list[str] | None = None,
    config_file: str | Path | None = None,
    layers: Iterable[tuple[str, dict]] = (),
) -> RecConfig:
    """The recommendation config of ``model`` on ``dataset`` after every layer.

    ``layers`` are extra ``(source, mapping)`` layers between the preset and ``config_file``
    (the nightly pipeline passes its ``rec:`` mapping this way).

    Raises:
        ConfigError: unknown model, key or value (the message names the key and its source).
    """
    return resolve_task_config(RecConfig, "rec", model, dataset, overrides, config_file, layers)
