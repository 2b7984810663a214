"""Sampling for training: a pure-torch neighbour sampler behind PyG's loaders, negative items, and
graph partitions (METIS or random) with halo local graphs for distributed training."""

from graphrec.sampling.negative import NegativeSampler
from graphrec.sampling.neighbor import (
    CSRNeighborSampler,
    link_loader,
    neighbor_sampler,
    node_loader,
    pyg_sampler_available,
    sample_k_of_d,
)
from graphrec.sampling.partition import (
    LocalGraph,
    PartitionStats,
    local_graph,
    memory_per_rank,
    partition_graph,
    partition_report,
)

__all__ = [
    "CSRNeighborSampler",
    "LocalGraph",
    "NegativeSampler",
    "PartitionStats",
    "link_loader",
    "local_graph",
    "memory_per_rank",
    "neighbor_sampler",
    "node_loader",
    "partition_graph",
    "partition_report",
    "pyg_sampler_available",
    "sample_k_of_d",
]
