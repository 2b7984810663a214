"""Sampling for training: a pure-torch neighbour sampler behind PyG's loaders, and negative items."""

from graphrec.sampling.negative import NegativeSampler
from graphrec.sampling.neighbor import (
    CSRNeighborSampler,
    link_loader,
    neighbor_sampler,
    node_loader,
    pyg_sampler_available,
    sample_k_of_d,
)

__all__ = [
    "CSRNeighborSampler",
    "NegativeSampler",
    "link_loader",
    "neighbor_sampler",
    "node_loader",
    "pyg_sampler_available",
    "sample_k_of_d",
]
