"""Configuration of node classification: the schema and its resolution.

Layers, later wins: the defaults below -> the model's preset
(``graphrec/config/presets/node/<model>.yaml``, hyperparameters from its paper) -> its
per-dataset section -> a user YAML file -> ``--set section.key=value``. Sections:
``model`` (the backbone's parameters, validated by the model registry), ``train``, ``data``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from graphrec.config.base import Strict, TaskConfig
from graphrec.config.presets import resolve_task_config
from graphrec.config.trainer import TrainerConfig


class TrainConfig(TrainerConfig):
    """The trainer's options with node classification's defaults, plus its own."""

    lr: float = Field(0.01, gt=0)
    weight_decay: float = Field(5e-4, ge=0)
    epochs: int = Field(200, ge=1)
    patience: int = Field(100, ge=1, description="evaluations without improvement before stopping (select: best)")
    stop_on: Literal["loss", "acc", "acc_or_loss"] = Field(
        "acc_or_loss",
        description="acc_or_loss: patience resets when validation accuracy or loss improves; "
        "the selected epoch is the last one where both did (GAT and GESM reference code)",
    )
    normalize_features: bool = Field(True, description="row-normalise the input features")
    batch_size: int = Field(1, ge=1, description="graphs per step in inductive training")


class DataConfig(Strict):
    label_rate: float | None = Field(None, gt=0, lt=1, description="random labelled training set of this fraction of nodes")


class NodeConfig(TaskConfig):
    """A node-classification run: backbone, trainer, data."""

    train: TrainConfig = TrainConfig()
    data: DataConfig = DataConfig()



#: The name of :class:`NodeConfig` before 0.2, kept for one release.
ExperimentConfig = NodeConfig


def resolve_config(
    model: str,
    dataset: str | None = None,
    overrides: list[str] | None = None,
    config_file: str | Path | None = None,
) -> NodeConfig:
    """The node-classification config of ``model`` on ``dataset`` after every layer.

    Raises:
        ConfigError: unknown model, key or value (the message names the key and its source).
    """
    return resolve_task_config(NodeConfig, "node", model, dataset, overrides, config_file)
