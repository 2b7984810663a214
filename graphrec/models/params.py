"""Hyperparameters of every built-in model: pydantic only, importable without torch.

The configuration layer validates ``model.*`` keys against these classes (so ``graphrec
config`` and config errors need no torch); each model module imports its own class from here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ModelParams(BaseModel):
    """Base of every backbone's hyperparameters; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class GCNParams(ModelParams):
    hidden: int = Field(16, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)
    act: str = "relu"


class GATParams(ModelParams):
    hidden: int = Field(8, ge=1, description="size per head")
    heads: int = Field(8, ge=1)
    out_heads: int = Field(1, ge=1)
    dropout: float = Field(0.6, ge=0, lt=1)
    attn_dropout: float = Field(0.6, ge=0, lt=1)
    num_layers: int = Field(2, ge=2)
    residual: bool = False
    act: str = "elu"


class SAGEParams(ModelParams):
    hidden: int = Field(64, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)
    aggr: Literal["mean", "max", "sum"] = "mean"
    act: str = "relu"


class SGCParams(ModelParams):
    K: int = Field(2, ge=1, description="propagation steps")


class APPNPParams(ModelParams):
    hidden: int = Field(64, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)
    K: int = Field(10, ge=1, description="power-iteration steps")
    alpha: float = Field(0.1, gt=0, le=1, description="teleport probability")
    edge_dropout: float = Field(0.0, ge=0, lt=1, description="dropout on Â's entries per step")
    act: str = "relu"


class HopGCNParams(ModelParams):
    K: int = Field(2, ge=1, description="number of GCN layers (propagation steps)")
    hidden: int = Field(64, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)
    act: str = "relu"


class GSMParams(ModelParams):
    hidden: int = Field(512, ge=1)
    K: int = Field(15, ge=1, description="blocks in the step mixture (hops 0..K-1)")
    dropout: float = Field(0.3, ge=0, lt=1, description="dropout on the concatenated mixture")
    input_dropout: float = Field(0.0, ge=0, lt=1)


class GESMParams(ModelParams):
    hidden: int = Field(64, ge=1, description="size per attention head")
    heads: int = Field(8, ge=1)
    K: int = Field(15, ge=1, description="blocks in the step mixture (hops 0..K-1)")
    dropout: float = Field(0.3, ge=0, lt=1, description="dropout on the concatenated mixture")
    attn_dropout: float = Field(0.7, ge=0, lt=1, description="dropout on attention coefficients")
    reg_sample_rate: float = Field(0.05, gt=0, le=1, description="fraction of P's entries in the structure regulariser")
    reg_beta: float = Field(1.0, ge=0, le=1)
    reg_weight: float = Field(1.0, ge=0, description="weight of the structure regulariser (0 disables it)")


class LightGCNParams(ModelParams):
    K: int = Field(3, ge=1, description="propagation layers; the output is the mean of layers 0..K")


class MFParams(ModelParams):
    pass


class HGCFParams(ModelParams):
    K: int = Field(3, ge=1, description=(
        "propagation steps in the tangent space; the output sums steps 1..K (HGCF's num_layers = K + 1: its "
        "Amazon-CD setting, 4 layers, is K = 3)"))
    curvature: float = Field(1.0, gt=0, description="c: the hyperboloid of the embeddings has curvature -c (HGCF: 1)")
    init_scale: float = Field(0.1, gt=0, description=(
        "ID embeddings start at expmap0 of tangent vectors drawn from U(-init_scale, init_scale) (HGCF: 0.1)"))


class XSimGCLParams(ModelParams):
    K: int = Field(2, ge=1, description="propagation layers; the output is the mean of layers 1..K")
    eps: float = Field(0.2, ge=0, description="L2 norm of the noise added to every row after each layer (training only)")
    cl_weight: float = Field(0.2, ge=0, description="weight (lambda) of the contrastive loss")
    tau: float = Field(0.2, gt=0, description="InfoNCE temperature")
    cl_layer: int = Field(1, ge=1, description="layer l* whose (noisy) embedding is contrasted with the output")

    @model_validator(mode="after")
    def _layer_exists(self) -> XSimGCLParams:
        if self.cl_layer > self.K:
            raise ValueError(f"cl_layer ({self.cl_layer}) must be at most K ({self.K})")
        return self
