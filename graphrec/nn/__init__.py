"""Layers, one concept per module."""

from graphrec.nn.entity_attention import EntityAttention
from graphrec.nn.hop_sampling import HopSampler, HopSampling
from graphrec.nn.input_dropout import InputDropout
from graphrec.nn.propagation import Propagation, random_walk_weights, symmetric_weights
from graphrec.nn.step_mixture import StepMixture
from graphrec.nn.structure_reg import StructureRegularizer

__all__ = [
    "EntityAttention",
    "HopSampler",
    "HopSampling",
    "InputDropout",
    "Propagation",
    "StepMixture",
    "StructureRegularizer",
    "random_walk_weights",
    "symmetric_weights",
]
