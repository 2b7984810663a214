"""Configuration: one strict base, one layering and override machinery, one schema per task.

>>> from graphrec.config import resolve_config, resolve_rec_config
>>> resolve_config("gesm", "Cora", ["train.epochs=50"]).train.epochs        # doctest: +SKIP
50
>>> resolve_rec_config("lightgcn", "ml-100k", ["train.lr=0.01"]).train.lr   # doctest: +SKIP
0.01
>>> resolve_ads_config("lightgcn", "ads-synth", ["train.score=hyperbolic"]).train.score  # doctest: +SKIP
'hyperbolic'
"""

from graphrec.config.ads import (
    AdsConfig,
    AdsDataConfig,
    AdsEvalConfig,
    AdsTrainConfig,
    resolve_ads_config,
)
from graphrec.config.base import (
    ConfigError,
    Layers,
    Strict,
    apply_overrides,
    deep_merge,
    parse_override,
    read_yaml_mapping,
    validate,
    validation_message,
)
from graphrec.config.node import (
    DataConfig,
    ExperimentConfig,
    NodeConfig,
    TrainConfig,
    resolve_config,
)
from graphrec.config.presets import preset, resolve_task_config
from graphrec.config.rec import (
    RecConfig,
    RecDataConfig,
    RecEvalConfig,
    RecTrainConfig,
    resolve_rec_config,
)
from graphrec.config.trainer import HopSamplingConfig, TrainerConfig

__all__ = [
    "AdsConfig",
    "AdsDataConfig",
    "AdsEvalConfig",
    "AdsTrainConfig",
    "ConfigError",
    "DataConfig",
    "ExperimentConfig",
    "HopSamplingConfig",
    "Layers",
    "NodeConfig",
    "RecConfig",
    "RecDataConfig",
    "RecEvalConfig",
    "RecTrainConfig",
    "Strict",
    "TrainConfig",
    "TrainerConfig",
    "apply_overrides",
    "deep_merge",
    "parse_override",
    "preset",
    "resolve_ads_config",
    "read_yaml_mapping",
    "resolve_config",
    "resolve_rec_config",
    "resolve_task_config",
    "validate",
    "validation_message",
]
