"""Configuration of the nightly pipeline (``pipelines/nightly.yaml``).

One YAML file describes a recurring job: where the day's logs come from, where the store,
the published artifacts and the run records live, which model is trained with which
budgets, how it is evaluated and when a candidate is published. Every key is validated;
an unknown key fails naming it and the file (or ``--set``) it came from. ``--set
section.key=value`` overrides any key (for example ``--set train.mode=cold`` or ``--set
rec.train.lr=0.01``).

The ``rec:`` section *is* a recommendation config (:class:`graphrec.config.RecConfig`, the
keys of ``graphrec bench rec --set``), layered over the preset of its model; ``warm.rec``
is layered over it on warm nights. An ``ads:`` mapping (an ad-targeting config,
:class:`graphrec.config.AdsConfig`, the keys of ``graphrec bench ads --set``) makes every night
train, gate and publish an ad-targeting model instead (:mod:`graphrec.pipeline.ads`).

Relative paths are resolved against the current working directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from graphrec.config import (
    AdsConfig,
    ConfigError,
    Layers,
    RecConfig,
    Strict,
    deep_merge,
    read_yaml_mapping,
    resolve_ads_config,
    resolve_rec_config,
    validate,
)


class SourceConfig(Strict):
    """Where a night's events come from."""

    kind: Literal[
        "events", "movielens-100k", "gowalla", "ml-1m", "amazon-cd", "beauty", "sports", "toys", "yelp",
        "ml-100k-ads", "criteo", "avazu",
    ] = Field(
        "events",
        description="events: log files in the store's schema; or a catalog dataset replayed day by day from its "
        "adapter's timestamps: movielens-100k (the ratings' own), gowalla, ml-1m, amazon-cd (published splits: "
        "train pairs on 2000-01-01, test pairs on 2000-01-02), beauty, sports, toys, yelp (S3-Rec sequences: a "
        "user's k-th item at 2000-01-01 + k seconds, all on one day), ml-100k-ads (MovieLens-100k as a user-ad proxy, "
        "the ratings' timestamps), criteo, avazu (the CTR samples, a format test)",
    )
    path: str | None = Field(
        None,
        description="events: file pattern with {date} (YYYY-MM-DD), e.g. logs/{date}/*.parquet, or one log (a "
        "file, folder or glob without {date}: read again when it changes; each night trains on its rows up to "
        "that date); a dataset kind: its folder (the ml-100k folder; gowalla, ml-1m, amazon-cd: the split's "
        "folder; beauty, sports, toys, yelp: the sequence file), default: the data root's copy",
    )
    history: list[str] = Field(
        [], description="events: files ingested once, before the first night, into an empty store"
    )
    attributes: dict[str, list[str]] = Field({}, description="events: side tables by node type, ingested with each night")
    schema_file: str | None = Field(None, description="events: the store's log schema (YAML or JSON)")
    allow_empty: bool = Field(False, description="a night without log files commits nothing instead of failing")


class PathsConfig(Strict):
    workdir: str = Field("results/nightly", description="base folder of the defaults below")
    store: str | None = Field(None, description="graph store folder (default: WORKDIR/store)")
    artifacts: str | None = Field(None, description="artifact registry (default: WORKDIR/artifacts)")
    runs: str | None = Field(None, description="run records and stage checkpoints (default: WORKDIR/runs)")

    def resolve(self) -> dict[str, Path]:
        base = Path(os.path.expanduser(self.workdir))
        return {
            "workdir": base,
            "store": Path(os.path.expanduser(self.store)) if self.store else base / "store",
            "artifacts": Path(os.path.expanduser(self.artifacts)) if self.artifacts else base / "artifacts",
            "runs": Path(os.path.expanduser(self.runs)) if self.runs else base / "runs",
        }


class NightConfig(Strict):
    """What one night trains on and holds out."""

    window_days: int | None = Field(
        None, ge=1, description="train on the last N days up to the night's date (default: all history)"
    )
    holdout: tuple[float, float, float] = Field(
        (0.8, 0.1, 0.1),
        description="the night's own pairs, per user: train / validation / held-out test (older days all train)",
    )


class TrainConfig(Strict):
    """The nightly schedule of training (the training itself is configured under ``rec``)."""

    mode: Literal["warm", "cold"] = Field(
        "warm", description="warm: start from the production model's weights; cold: retrain from scratch"
    )
    cold_epochs: int = Field(60, ge=1, description="epoch budget of a cold (re)train, and of the first night")
    checkpoint_every: int = Field(1, ge=1, description="epochs between training checkpoints (resume after a crash)")
    seed: int = Field(0, description="training seed (the night's date is mixed in)")
    threads: int | None = Field(None, ge=1, description="torch CPU threads")


class WarmConfig(Strict):
    """Warm starts: budget, new rows, and what changes in the recommendation config."""

    epochs: int = Field(15, ge=1, description="epoch budget of a warm start")
    fold_in: bool = Field(
        True, description="new users/targets start at the mean embedding of their known neighbours"
    )
    new_rows_lr: float | None = Field(
        None, gt=0, description="learning rate of the rows of new users/targets (default: the night's)"
    )
    rec: dict[str, Any] = Field(
        {}, description="layered over `rec` on warm nights, e.g. {train: {lr: 0.001}}"
    )


class CanaryConfig(Strict):
    users: int = Field(100, ge=1, description="users in the canary set")
    min_interactions: int = Field(10, ge=2, description="only users with at least this many pairs are drawn")
    fraction: float = Field(0.1, gt=0, lt=1, description="share of each canary user's pairs held out")
    seed: int = 0


class EvalConfig(Strict):
    canary: CanaryConfig | None = Field(
        CanaryConfig(), description="fixed held-out pairs of fixed users, frozen on the first night (null: none)"
    )


class GateConfig(Strict):
    metric: str = Field("ndcg@10", description="metric compared against the production model")
    tolerance: float = Field(0.05, ge=0, le=1, description="publish when candidate >= (1 - tolerance) x production")
    sets: list[Literal["holdout", "canary"]] = Field(["holdout", "canary"], description="evaluation sets gated on")
    min_users: int = Field(5, ge=1, description="a set with fewer evaluated users is reported but not gated on")
    reference: Literal["best", "first", "none"] = Field(
        "best", description="a fixed bound on the canary set: the best canary score of any published model, the "
        "first published model's, or none. Night-to-night comparisons alone let slow drift through",
    )
    reference_tolerance: float = Field(
        0.05, ge=0, le=1, description="publish only when canary >= (1 - reference_tolerance) x the reference"
    )


class PublishConfig(Strict):
    keep: int = Field(5, ge=1, description="published versions kept (production and its rollback target always)")
    index: Literal["flat", "hnsw"] = Field("flat", description="faiss index over the target embeddings")


class EncodersConfig(Strict):
    """The encoders stage: a transformer user encoder trained on the behaviours before the night, whose user (and
    item) embeddings are written into the store as feature tables; ``rec.data.features`` attaches them."""

    enabled: bool = Field(False, description="train the encoder and refresh its feature tables before training")
    config: dict[str, Any] = Field({"model": {"name": "sasrec"}}, description=(
        "an encoder config (model, train, data, eval, features: the keys of `graphrec encode --set`), layered over "
        "its objective's preset (model.name: sasrec, clue, shopperbert or lmrec)"))
    cold_epochs: int = Field(10, ge=1, description="epochs of a full retrain (the first night, and every full_every)")
    warm_epochs: int = Field(2, ge=1, description="epochs of a night warm-started from the last night's encoder")
    full_every: int = Field(7, ge=0, description="nights between full retrains from scratch (0: only the first)")


#: Pipeline defaults of the recommendation config, layered over the model's preset and under
#: the file's ``rec:`` mapping: keep the last epoch, validate every 5 epochs.
REC_DEFAULTS: dict[str, Any] = {"train": {"select": "last", "eval_every": 5, "patience": 10}}


class PipelineConfig(Strict):
    """A nightly job (``pipelines/nightly.yaml``). Load it with :func:`load_pipeline_config`,
    which layers ``rec`` over the model's recommendation preset."""

    name: str = Field("nightly", description="job name: recorded in artifacts and run records")
    source: SourceConfig = SourceConfig()
    paths: PathsConfig = PathsConfig()
    night: NightConfig = NightConfig()
    rec: RecConfig = Field(description="the recommendation config (the keys of `graphrec bench rec --set`)")
    rec_file: str | None = Field(None, description="YAML layered over the model's preset, under `rec`")
    ads: dict[str, Any] | None = Field(None, description=(
        "an ad-targeting config (model, train, data, eval: the keys of `graphrec bench ads --set`), layered over "
        "its model's ads preset; when given, every night trains the ad-targeting task (user -> ad click "
        "probability) instead of `rec`, cold (train.mode: cold, train.cold_epochs), evaluates its held-out "
        "labelled pairs (no canary set) and gates on gate.metric (auc, or hit/ndcg/recall@K of ads.eval.ks)"))
    train: TrainConfig = TrainConfig()
    warm: WarmConfig = WarmConfig()
    eval: EvalConfig = EvalConfig()
    gate: GateConfig = GateConfig()
    publish: PublishConfig = PublishConfig()
    encoders: EncodersConfig = EncodersConfig()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value or any(c in value for c in "/\\\n"):
            raise ValueError(f"name must be a non-empty single-line string without slashes, got {value!r}")
        return value

    @model_validator(mode="after")
    def _check(self) -> PipelineConfig:
        if self.source.kind == "events" and not self.source.path:
            raise ValueError("source.path is required for source.kind: events (a pattern with {date}, or one log)")
        name, _, k = self.gate.metric.partition("@")
        if self.ads is not None:
            if self.train.mode != "cold":
                raise ValueError("train.mode: warm is not available for ads nights (an ad-targeting model is "
                                 "retrained from scratch every night): set train.mode: cold")  # fmt: skip
        elif not k.isdigit() or int(k) not in self.rec.eval.ks or name not in self.rec.eval.metrics:
            raise ValueError(f"gate.metric {self.gate.metric!r} is not computed: its cut-off must be in rec.eval.ks "
                             f"{self.rec.eval.ks} and its name in rec.eval.metrics")  # fmt: skip
        if abs(sum(self.night.holdout) - 1.0) > 1e-6:
            raise ValueError(f"night.holdout must sum to 1, got {self.night.holdout}")
        if self.encoders.enabled:
            self.night_encoder(1)  # a bad encoder key fails when the file is read, not at night
        return self

    def night_encoder(self, epochs: int):
        """The encoder config of one night: ``encoders.config`` over its objective's preset, with the pipeline's
        defaults (the last epoch kept, validation every epoch) and the night's epoch budget.

        Raises:
            ConfigError: no objective, or a bad key or value.
        """
        from graphrec.config.encoder import resolve_encoder_config

        raw = self.encoders.config
        name = (raw.get("model") or {}).get("name")
        if not name:
            raise ConfigError("encoders.config.model.name is required: sasrec, clue, shopperbert or lmrec")
        return resolve_encoder_config(str(name), layers=[("pipeline defaults", {"train": {"select": "last"}}),
                                                         ("encoders.config", raw),
                                                         ("the night's budget", {"train": {"epochs": epochs}})])  # fmt: skip

    @property
    def paths_resolved(self) -> dict[str, Path]:
        return self.paths.resolve()

    def night_rec(self, warm: bool, epochs: int) -> RecConfig:
        """The recommendation config of one night: ``rec``, with ``warm.rec`` layered over it on
        warm nights, and the night's epoch budget."""
        layers = [("rec", self.rec.model_dump())]
        if warm and self.warm.rec:
            layers.append(("warm.rec", self.warm.rec))
        layers.append(("the night's budget", {"train": {"epochs": epochs}}))
        return resolve_rec_config(self.rec.model_name, layers=layers)

    def night_ads(self, epochs: int) -> AdsConfig:
        """The ad-targeting config of one night: ``ads`` over its model's preset (and the pipeline's
        defaults: :data:`ADS_DEFAULTS`, ``train.stop_on`` = ``gate.metric``), with the night's epoch budget.

        Raises:
            ConfigError: no ``ads`` mapping, or a bad key or value in it.
        """
        if self.ads is None:
            raise ConfigError("this pipeline has no ads section: it trains the recommendation config `rec`")
        return _resolve_ads(self.ads, self.gate.metric, [("the night's budget", {"train": {"epochs": epochs}})])


#: Pipeline defaults of the ad-targeting config (as :data:`REC_DEFAULTS`): keep the last epoch, validate every 5.
ADS_DEFAULTS: dict[str, Any] = {"train": {"select": "last", "eval_every": 5, "patience": 10}}
#: Gate metrics of an ads night (higher is better): AUC, or a ranking metric at a cut-off of ``ads.eval.ks``.
ADS_GATE_METRICS = ("auc", "hit", "ndcg", "recall")


def _resolve_ads(ads: dict[str, Any], gate_metric: str, extra: list[tuple[str, dict]] = ()) -> AdsConfig:
    model = str((ads.get("model") or {}).get("name", "lightgcn"))
    defaults = deep_merge(ADS_DEFAULTS, {"train": {"stop_on": gate_metric}})
    return resolve_ads_config(model, layers=[("pipeline defaults", defaults), ("ads", ads), *extra])


#: Keys of the pipeline config before 0.2 and where they went (for the error of an old file).
MOVED = {
    "model.name": "rec.model.name", "model.set": "rec (a mapping, e.g. rec: {train: {lr: 0.005}})",
    "model.config_file": "rec_file", "data.target": "rec.data.target", "data.event_types": "rec.data.event_types",
    "data.min_interactions": "rec.data.min_interactions", "data.window_days": "night.window_days",
    "data.holdout": "night.holdout", "train.select": "rec.train.select", "train.patience": "rec.train.patience",
    "train.eval_every": "rec.train.eval_every", "train.warm_epochs": "warm.epochs",
    "train.warm_set": "warm.rec (a mapping)", "train.fold_in": "warm.fold_in",
    "train.new_rows_lr": "warm.new_rows_lr", "eval.ks": "rec.eval.ks",
}  # fmt: skip


def _moved_keys(raw: dict) -> list[str]:
    found = []
    for old, new in MOVED.items():
        section, key = old.split(".")
        if isinstance(raw.get(section), dict) and key in raw[section]:
            found.append(f"{old} -> {new}")
    return found


def load_pipeline_config(path: str | os.PathLike | None, overrides: list[str] | None = None) -> PipelineConfig:
    """Read a pipeline YAML (``None``: all defaults), apply ``section.key=value`` overrides, validate.

    ``rec`` is resolved as a recommendation config: the preset of ``rec.model.name``
    (default ``lightgcn``), :data:`REC_DEFAULTS` (with ``train.stop_on`` = ``gate.metric``),
    the ``rec_file``, then the ``rec`` mappings of the file and of ``--set rec.*``.

    Raises:
        ConfigError: a bad file, key or value; the message names the key and its source.
    """
    sections = list(PipelineConfig.model_fields)
    stack = Layers()
    if path is not None:
        stack.add_file(path, "pipeline config")
    stack.add_overrides(overrides, sections)
    raw = stack.merged()
    where = str(path) if path is not None else "pipeline config"
    moved = _moved_keys(raw)
    if moved:
        raise ConfigError(f"{where} uses keys that moved in graphrec 0.2 (docs/pipeline.md): {'; '.join(moved)}")
    rec_layers = [(src, m["rec"]) for src, m in stack.layers if isinstance(m.get("rec"), dict)]
    bad = [src for src, m in stack.layers if "rec" in m and not isinstance(m["rec"], dict)]
    if bad:
        raise ConfigError(f"{where}: rec must be a mapping (from {bad[-1]})")
    if raw.get("ads") is not None:  # an ads pipeline never reads rec: a rec key there would be silently unused
        unused = [(src, key) for src, m in stack.layers for key in ("rec", "rec_file") if key in m]
        unused += [(src, "warm.rec") for src, m in stack.layers if isinstance(m.get("warm"), dict) and "rec" in m["warm"]]
        if unused:
            src, key = unused[-1]
            raise ConfigError(f"{where}: {key} (from {src}) is not used: a pipeline with an ads section trains the "
                              "ad-targeting task; put its settings under ads (model, train, data, eval)")  # fmt: skip
    model = str(((raw.get("rec") or {}).get("model") or {}).get("name", "lightgcn"))
    gate_metric = (raw.get("gate") or {}).get("metric", GateConfig.model_fields["metric"].default)
    # an ads pipeline gates the ads model: its gate metric (auc...) is not one of rec's
    defaults = REC_DEFAULTS if raw.get("ads") is not None else deep_merge(REC_DEFAULTS, {"train": {"stop_on": gate_metric}})
    rec_file = raw.get("rec_file")
    file_layer = [(str(rec_file), read_yaml_mapping(rec_file, "rec_file"))] if rec_file else []
    try:  # preset -> pipeline defaults -> rec_file -> the rec: mappings (file, then --set)
        rec = resolve_rec_config(model, layers=[("pipeline defaults", defaults), *file_layer, *rec_layers])
    except ConfigError as exc:
        raise ConfigError(f"{where}: rec: {exc}") from None
    cfg = validate(PipelineConfig, {**raw, "rec": rec}, stack, where)
    if cfg.ads is not None:  # a bad ads key or gate metric fails now, not at the first night's training
        name, _, k = cfg.gate.metric.partition("@")
        if name not in ADS_GATE_METRICS or bool(k) != (name != "auc") or (k and not k.isdigit()):
            raise ConfigError(f"{where}: gate.metric {cfg.gate.metric!r} is not an ads gate metric: auc, or "
                              "hit@K, ndcg@K, recall@K with K in ads.eval.ks")  # fmt: skip
        try:
            ks = _resolve_ads(cfg.ads, "auc").eval.ks
            if k and int(k) not in ks:
                raise ConfigError(f"gate.metric {cfg.gate.metric!r} is not computed: K must be in ads.eval.ks {ks}")
            _resolve_ads(cfg.ads, cfg.gate.metric)
        except ConfigError as exc:
            raise ConfigError(f"{where}: ads: {exc}") from None
        return cfg
    try:
        cfg.night_rec(warm=True, epochs=cfg.warm.epochs)  # a bad warm.rec fails now, not on the first warm night
    except ConfigError as exc:
        raise ConfigError(f"{where}: warm.rec: {exc}") from None
    return cfg
