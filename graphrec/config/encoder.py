"""Configuration of user-encoder training (``graphrec encode``): the schema and its resolution.

Layers, later wins: the defaults below -> the objective's preset
(``graphrec/config/presets/encode/<objective>.yaml``) -> its per-dataset section -> extra layers
(a pipeline's ``encoders.config`` mapping) -> a user YAML file -> ``--set section.key=value``.
Sections: ``model`` (the objective and the transformer's size), ``train``, ``data``, ``eval``,
``features`` (what is written into the store).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from graphrec.config.base import ConfigError, Strict, did_you_mean, validate
from graphrec.config.presets import merge_layers
from graphrec.config.rec import Cutoffs
from graphrec.config.trainer import TrainerConfig

#: The encoder objectives (graphrec.encoders.OBJECTIVES; listed here so configs validate without torch).
OBJECTIVES = ("sasrec", "clue", "shopperbert", "lmrec")
Objective = Literal["sasrec", "clue", "shopperbert", "lmrec"]
#: Input fields a behaviour may carry besides its item: event type, time fields, categorical side attributes.
InputField = Literal["event", "time", "category"]
#: An instant: an ISO string, epoch seconds, or a date / datetime (what YAML makes of an unquoted 2024-03-01).
Instant = str | int | dt.datetime | dt.date


class EncoderModelConfig(Strict):
    """The objective and the transformer stack (one stack for every objective)."""

    name: Objective = Field(description=(
        "sasrec: next-behaviour prediction, causal attention, cross-entropy over all items (Kang & McAuley 2018); "
        "clue: contrastive InfoNCE between two views of a user (CLUE, Shin et al. 2023); shopperbert: masked "
        "behaviour prediction, one head per field (Shin et al. 2021); lmrec: causal language model over the "
        "history as text plus lambda * BCE(user . item) (Shin et al., ACL 2023)"))
    dim: int = Field(64, ge=8, description="hidden size d")
    layers: int = Field(2, ge=1, description="transformer layers")
    heads: int = Field(2, ge=1, description="attention heads (dim must be divisible by heads)")
    ffn: int | None = Field(None, ge=1, description="feed-forward size (default 4 * dim)")
    dropout: float = Field(0.2, ge=0, lt=1, description="dropout of embeddings, attention and feed-forward")
    max_len: int = Field(50, ge=2, description="behaviours per input (the most recent ones); lmrec: BPE tokens")
    fields: list[InputField] = Field([], description=(
        "side inputs added to each behaviour's item embedding: event (event type), time (hour, weekday, day, month, "
        "year), category (the items' categorical side attributes)"))
    text_tower: str | None = Field(None, description=(
        "frozen item-text vectors added to the item inputs: minilm (all-MiniLM-L6-v2, the graphrec[text] extra), "
        "tiny (a random tiny tower, for tests), or a local sentence-transformers folder"))
    temperature: float = Field(0.1, gt=0, description="clue: InfoNCE temperature")
    mask_prob: float = Field(0.15, gt=0, lt=1, description="shopperbert: share of behaviours masked")
    pool: Literal["last", "mean", "cls"] | None = Field(None, description=(
        "user embedding: last hidden state (sasrec default), mean of the last hidden states (clue default), or "
        "[CLS] (shopperbert default); lmrec uses the hidden state at the history's end token"))
    lm_weight: float = Field(0.01, ge=0, description="lmrec: lambda, the weight of BCE(user . item) beside the LM loss")
    num_negatives: int = Field(4, ge=1, description="lmrec: sampled negative items per positive")
    vocab_size: int = Field(4000, ge=300, description="lmrec: BPE vocabulary size (trained on the item texts)")

    @model_validator(mode="after")
    def _heads(self) -> EncoderModelConfig:
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by heads ({self.heads})")
        return self


class EncoderTrainConfig(TrainerConfig):
    """The trainer's options with encoder defaults, plus the batch size."""

    epochs: int = Field(200, ge=1)
    patience: int = Field(10, ge=1, description="evaluations without improvement before stopping (select: best)")
    lr: float = Field(1e-3, gt=0)
    optimizer: Literal["auto", "adam", "adamw", "riemannian_adam"] = "adamw"
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(128, ge=2, description="sequences per step (clue: users per batch, so 2x views)")
    stop_on: str = Field("auto", description="selection: ndcg@10 (any computed hit/ndcg@K) for sasrec, the validation "
                         "loss for the others; auto picks that")  # fmt: skip

    @field_validator("stop_on")
    @classmethod
    def _metric(cls, value: str) -> str:
        name, _, k = value.partition("@")
        if value not in ("auto", "loss") and (name not in ("hit", "ndcg") or not k.isdigit() or int(k) < 1):
            raise ValueError(f"stop_on must be auto, loss, or hit@K / ndcg@K, got {value!r}")
        return value


class EncoderDataConfig(Strict):
    """Which behaviours form the sequences, and how they are split."""

    target_types: list[str] | None = Field(None, description="target node types in the sequences (default: all)")
    event_types: list[str] | None = Field(None, description="event types kept (default: all)")
    window: tuple[Instant | None, Instant | None] | None = Field(None, description="[start, end) of the events")
    split: Literal["loo", "time"] = Field("loo", description=(
        "loo: per user, the last behaviour is the test target and the second to last the validation target (users "
        "with fewer than min_length behaviours only train); time: the first behaviour after valid_start / test_start"))
    min_length: int = Field(3, ge=3, description="loo: behaviours a user needs to be evaluated")
    valid_start: Instant | None = Field(None, description="time split: start of the validation window")
    test_start: Instant | None = Field(None, description="time split: start of the test window")

    @model_validator(mode="after")
    def _time(self) -> EncoderDataConfig:
        if self.split == "time" and (self.valid_start is None or self.test_start is None):
            raise ValueError("split: time needs valid_start and test_start (dates or epoch seconds)")
        return self


class EncoderEvalConfig(Strict):
    ks: Cutoffs = Field([10, 20], description="cut-offs of HR@K and NDCG@K (next-behaviour ranking, sasrec)")
    chunk_size: int = Field(256, ge=1, description="users per evaluation batch")


class EncoderFeaturesConfig(Strict):
    """The feature tables written into the store after training."""

    write: bool = Field(True, description="write user (and item) embeddings into the store as feature tables")
    name: str | None = Field(None, description="table name (default: the objective's name): tables user/<name>, item/<name>")
    items: bool = Field(True, description="also write item embeddings, where the objective learns them (sasrec, "
                        "shopperbert, lmrec)")  # fmt: skip
    history: Literal["all", "train"] = Field("all", description=(
        "the behaviours a user's embedding is computed from: all of them (features for later tasks), or the training "
        "part of the split only"))

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and (not value or not all(c.isalnum() or c in "-_." for c in value)):
            raise ValueError(f"features.name must be letters, digits, '-', '_' or '.', got {value!r}")
        return value


class EncoderConfig(Strict):
    """A user-encoder run: objective and size, trainer, sequences and split, evaluation, feature tables."""

    model: EncoderModelConfig
    train: EncoderTrainConfig = EncoderTrainConfig()
    data: EncoderDataConfig = EncoderDataConfig()
    eval: EncoderEvalConfig = EncoderEvalConfig()
    features: EncoderFeaturesConfig = EncoderFeaturesConfig()

    @property
    def model_name(self) -> str:
        return self.model.name

    @property
    def table_name(self) -> str:
        return self.features.name or self.model.name

    @property
    def pool(self) -> str:
        return self.model.pool or {"sasrec": "last", "clue": "mean", "shopperbert": "cls", "lmrec": "last"}[self.model.name]

    @property
    def stop_on(self) -> str:
        if self.train.stop_on != "auto":
            return self.train.stop_on
        return "ndcg@10" if self.model.name == "sasrec" else "loss"

    @model_validator(mode="after")
    def _stop(self) -> EncoderConfig:
        stop = self.stop_on
        if stop != "loss":
            if self.model.name != "sasrec":
                raise ValueError(f"train.stop_on={stop!r}: only sasrec ranks next behaviours; {self.model.name} "
                                 "selects on the validation loss (stop_on: loss or auto)")  # fmt: skip
            if int(stop.partition("@")[2]) not in self.eval.ks:
                raise ValueError(f"train.stop_on={stop!r} is not among the computed cut-offs (eval.ks={self.eval.ks})")
        return self


def encoder_preset_path(objective: str):
    from importlib import resources

    return resources.files("graphrec.config") / "presets" / "encode" / f"{objective}.yaml"


def resolve_encoder_config(
    objective: str,
    dataset: str | None = None,
    overrides: Iterable[str] | None = None,
    config_file: str | Path | None = None,
    layers: Iterable[tuple[str, dict]] = (),
) -> EncoderConfig:
    """The encoder config of ``objective`` on ``dataset`` after every layer (module docstring).

    Raises:
        ConfigError: an unknown objective, key or value (the message names the key and its source).
    """
    import yaml

    name = objective.lower()
    if name not in OBJECTIVES:
        raise ConfigError(f"unknown encoder objective {objective!r}{did_you_mean(name, OBJECTIVES)}; "
                          f"choose one of {', '.join(OBJECTIVES)}")  # fmt: skip
    path = encoder_preset_path(name)
    if not path.is_file():
        raise ConfigError(f"the encoder preset of {name!r} is missing ({path}): this graphrec installation is "
                          "incomplete; reinstall it")  # fmt: skip
    base = yaml.safe_load(path.read_text()) or {}
    raw, stack = merge_layers(EncoderConfig, name, base, str(path), dataset, overrides, config_file, layers,
                              lambda given: given.lower() == name, "objective")  # fmt: skip
    try:
        return validate(EncoderConfig, raw, stack)
    except ConfigError as exc:
        # EncoderConfig._stop checks keys of two sections at once, so pydantic gives it no location to name a source
        # by: name the layer that set train.stop_on (or, left at auto, eval.ks) here.
        if not str(exc).startswith("train.stop_on="):
            raise
        path = ["train", "stop_on"] if "stop_on" in (raw.get("train") or {}) else ["eval", "ks"]
        source = stack.source_of(path)
        raise ConfigError(f"{exc} (from {source})" if source else str(exc)) from None
