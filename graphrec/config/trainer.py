"""Options of the one trainer (:class:`graphrec.tasks.Trainer`), shared by every task's ``train`` section."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from graphrec.config.base import Strict

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class HopSamplingConfig(Strict):
    """Random number of propagation steps while training (models with the K-step contract only)."""

    enabled: bool = False
    distribution: Literal["uniform", "geometric", "linear"] = "uniform"
    granularity: Literal["step", "node"] = "step"
    min_steps: int = Field(1, ge=1)
    decay: float = Field(0.8, gt=0, le=1, description="for the geometric distribution")


class TrainerConfig(Strict):
    """The loop's options: budget, early stopping and selection, optimizer, device."""

    epochs: int = Field(200, ge=1, description="epoch budget")
    patience: int = Field(100, ge=1, description="evaluations without improvement before stopping (select: best)")
    eval_every: int = Field(1, ge=1, description="epochs between validation evaluations (the last epoch is always evaluated)")
    select: Literal["best", "last"] = Field(
        "best", description="keep the weights of the best validation evaluation (and stop early), or those of the last epoch"
    )
    optimizer: Literal["auto", "adam", "adamw", "riemannian_adam"] = Field(
        "auto", description="auto: RiemannianAdam when the model holds manifold parameters, Adam otherwise"
    )
    lr: float = Field(0.01, gt=0, description="learning rate")
    weight_decay: float = Field(0.0, ge=0, description="L2 penalty (adam, riemannian_adam) or decoupled decay (adamw)")
    weight_decay_on: Literal["all", "non_bias", "first_layer"] = Field(
        "all", description="parameters that get weight decay: all, every non-bias weight, or the first layer only"
    )
    device: str = Field("auto", description="auto (CUDA when torch sees a GPU), cpu, cuda or cuda:N")
    time_budget: float | None = Field(None, gt=0, description=(
        "seconds of fitting (evaluations included) after which training stops at the end of the running epoch, "
        "which is evaluated; selection applies as usual"))
    curvature_lr: float | None = Field(None, gt=0, description="learning rate of learnable curvatures (default: lr)")
    nan_guard: Literal["auto", "loss", "grads", "none"] = Field("auto", description=(
        "stop with an error naming the step and parameter on a non-finite loss (loss) or also gradient (grads); "
        "auto: grads for hyperbolic models, loss otherwise"))
    hop_sampling: HopSamplingConfig = HopSamplingConfig()

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not _DEVICE.match(value):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {value!r}")
        return value
