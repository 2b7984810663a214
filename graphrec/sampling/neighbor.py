"""Neighbour sampling in pure torch, as a PyG ``BaseSampler``.

PyG's own :class:`~torch_geometric.sampler.NeighborSampler` needs ``pyg-lib`` or
``torch-sparse``, and neither installs from PyPI for recent torch on CPU.
:class:`CSRNeighborSampler` implements the same sampling (uniform, per destination node,
``num_neighbors[h]`` in-neighbours at hop h, without replacement unless ``replace=True``)
with vectorised torch ops on a CSC copy of the graph, and hands PyG's
:class:`~torch_geometric.loader.NodeLoader` / :class:`~torch_geometric.loader.LinkLoader`
the same :class:`~torch_geometric.sampler.SamplerOutput` layout as PyG's sampler:

* ``node``: seeds first (in the given order), then new nodes in order of first discovery;
* ``row`` / ``col``: local source / destination index of each sampled edge (messages flow
  row -> col, towards the seeds);
* ``edge``: ids of the sampled edges in the input graph (``edge_permutation`` is None);
* ``num_sampled_nodes`` / ``num_sampled_edges`` per hop.

Sampling k of d neighbours without replacement uses Robert Floyd's algorithm, run for
all destination nodes at once: O(k^2) vectorised work per node, independent of the degree,
so hubs cost no more than anyone else. Each k-subset is equally likely.

:func:`neighbor_sampler` returns PyG's sampler when ``pyg-lib`` or ``torch-sparse`` is
installed and this one otherwise; :func:`node_loader` and :func:`link_loader` wrap PyG's
loaders around it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.sampler import (
    BaseSampler,
    EdgeSamplerInput,
    NegativeSampling,
    NodeSamplerInput,
    SamplerOutput,
)
from torch_geometric.sampler.neighbor_sampler import edge_sample, node_sample

_UNSET = torch.iinfo(torch.long).max


def pyg_sampler_available() -> bool:
    """True when PyG's compiled neighbour sampling (pyg-lib or torch-sparse) is importable."""
    import torch_geometric.typing as t

    return bool(t.WITH_PYG_LIB or t.WITH_TORCH_SPARSE)


def sample_k_of_d(deg: Tensor, k: int, replace: bool = False, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """For each row with degree ``deg[r]``: ``min(k, deg[r])`` distinct offsets in ``[0, deg[r])``.

    Returns ``(row, offset)`` pairs (rows with at most k neighbours first; not sorted).
    With ``replace=True`` every row with a
    neighbour draws exactly ``k`` offsets, with replacement. ``k < 0`` takes all offsets.
    """
    deg = deg.long()
    n = deg.numel()
    if k < 0:
        rows = torch.repeat_interleave(torch.arange(n), deg)
        starts = torch.cumsum(deg, 0) - deg
        return rows, torch.arange(rows.numel()) - starts[rows]
    if replace:
        has = deg > 0
        rows = torch.nonzero(has).view(-1).repeat_interleave(k)
        r = torch.rand(rows.numel(), generator=generator, dtype=torch.float64)
        return rows, (r * deg[rows]).long().clamp_(max=(deg[rows] - 1).clamp(min=0))
    small = deg <= k
    # Rows with at most k neighbours keep them all.
    s_rows = torch.nonzero(small).view(-1)
    s_deg = deg[s_rows]
    s_rep = torch.repeat_interleave(s_rows, s_deg)
    s_start = torch.cumsum(s_deg, 0) - s_deg
    s_off = torch.arange(s_rep.numel()) - torch.repeat_interleave(s_start, s_deg)
    # Rows with more: Floyd's algorithm, k rounds over all such rows at once.
    b_rows = torch.nonzero(~small).view(-1)
    if b_rows.numel() == 0 or k == 0:
        return s_rep, s_off
    d = deg[b_rows]
    chosen = torch.empty(b_rows.numel(), k, dtype=torch.long)
    for i in range(k):
        j = d - k + i  # candidate range [0, j]
        t = (torch.rand(b_rows.numel(), generator=generator, dtype=torch.float64) * (j + 1)).long()
        t = torch.minimum(t, j)
        if i > 0:
            dup = (chosen[:, :i] == t.view(-1, 1)).any(1)
            t = torch.where(dup, j, t)
        chosen[:, i] = t
    return torch.cat([s_rep, b_rows.repeat_interleave(k)]), torch.cat([s_off, chosen.view(-1)])


class CSRNeighborSampler(BaseSampler):
    """Uniform multi-hop neighbour sampler on a homogeneous graph, in pure torch.

    Args:
        data: a :class:`~torch_geometric.data.Data` with ``edge_index`` (messages flow
            ``edge_index[0] -> edge_index[1]``) and ``num_nodes``.
        num_neighbors: neighbours per hop; ``-1`` takes all.
        replace: sample with replacement.
        seed: seed of the sampler's own random generator (default: torch's global RNG).
    """

    def __init__(self, data: Data, num_neighbors: Sequence[int], replace: bool = False, seed: int | None = None):
        if not isinstance(data, Data):
            raise TypeError(
                f"CSRNeighborSampler samples homogeneous graphs (torch_geometric.data.Data), got {type(data).__name__}; "
                "convert a HeteroData with to_homogeneous() first"
            )
        if len(num_neighbors) == 0 or any(int(k) < -1 for k in num_neighbors):
            raise ValueError(f"num_neighbors must be a non-empty list of ints >= -1, got {list(num_neighbors)}")
        self.num_neighbors = [int(k) for k in num_neighbors]
        self.replace = replace
        self.num_nodes = int(data.num_nodes)
        ei = data.edge_index
        if ei.numel() and (int(ei.min()) < 0 or int(ei.max()) >= self.num_nodes):
            raise ValueError(f"edge_index holds node ids outside [0, {self.num_nodes})")
        # CSC: incoming edges grouped by destination.
        dst = ei[1].long()
        self.perm = torch.argsort(dst, stable=True)
        self.row = ei[0].long()[self.perm].contiguous()
        self.colptr = torch.zeros(self.num_nodes + 1, dtype=torch.long)
        self.colptr[1:] = torch.cumsum(torch.bincount(dst, minlength=self.num_nodes), 0)
        self.deg = self.colptr[1:] - self.colptr[:-1]
        self.generator = None
        if seed is not None:
            self.generator = torch.Generator().manual_seed(seed)
        self._local = torch.full((self.num_nodes,), -1, dtype=torch.long)  # global -> local, reset after use
        self._first = torch.full((self.num_nodes,), _UNSET, dtype=torch.long)  # scratch, reset after use

    @property
    def num_hops(self) -> int:
        return len(self.num_neighbors)

    def sample(self, seed: Tensor) -> SamplerOutput:
        """Sample the ``num_hops``-hop neighbourhood of ``seed`` (global node ids)."""
        seed = seed.long().view(-1)
        local = self._local
        nodes = [seed]
        n_nodes = seed.numel()
        # First occurrence wins for a repeated seed.
        first = torch.arange(n_nodes - 1, -1, -1)
        local[seed.flip(0)] = first
        frontier = torch.arange(n_nodes)  # local ids of the current hop's destinations
        frontier_g = seed
        rows, cols, edges = [], [], []
        num_sampled_nodes, num_sampled_edges = [n_nodes], []
        try:
            for k in self.num_neighbors:
                r, off = sample_k_of_d(self.deg.index_select(0, frontier_g), k, self.replace, self.generator)
                dst_local = frontier.index_select(0, r)
                pos = self.colptr.index_select(0, frontier_g.index_select(0, r)) + off
                nbr = self.row.index_select(0, pos)
                nbr_local = local.index_select(0, nbr)
                new = nbr_local < 0
                if bool(new.any()):
                    cand = nbr[new]
                    # First occurrence of each new node, without sorting: min position per node.
                    pos_in = torch.arange(cand.numel())
                    first = self._first
                    first.scatter_reduce_(0, cand, pos_in, reduce="amin")
                    new_nodes = cand[first.index_select(0, cand) == pos_in]  # in order of first discovery
                    first[cand] = _UNSET
                    local[new_nodes] = torch.arange(n_nodes, n_nodes + new_nodes.numel())
                    nbr_local = local.index_select(0, nbr)
                else:
                    new_nodes = torch.zeros(0, dtype=torch.long)
                nodes.append(new_nodes)
                n_nodes += new_nodes.numel()
                rows.append(nbr_local)
                cols.append(dst_local)
                edges.append(self.perm.index_select(0, pos))
                num_sampled_nodes.append(new_nodes.numel())
                num_sampled_edges.append(pos.numel())
                frontier_g, frontier = new_nodes, local[new_nodes]
        finally:
            node = torch.cat(nodes)
            local[node] = -1
        return SamplerOutput(
            node=node,
            row=torch.cat(rows),
            col=torch.cat(cols),
            edge=torch.cat(edges),
            batch=None,
            num_sampled_nodes=num_sampled_nodes,
            num_sampled_edges=num_sampled_edges,
        )

    # BaseSampler -----------------------------------------------------------------
    def _sample(self, seed: Tensor, seed_time: Tensor | None = None, **kwargs) -> SamplerOutput:
        if isinstance(seed, dict):
            raise TypeError("CSRNeighborSampler samples homogeneous graphs only")
        if seed_time is not None:
            raise NotImplementedError("temporal sampling (seed_time) is not supported by CSRNeighborSampler")
        return self.sample(seed)

    def sample_from_nodes(self, inputs: NodeSamplerInput, **kwargs) -> SamplerOutput:
        return node_sample(inputs, self._sample)

    def sample_from_edges(self, inputs: EdgeSamplerInput, neg_sampling: NegativeSampling | None = None) -> SamplerOutput:
        return edge_sample(inputs, self._sample, self.num_nodes, False, None, neg_sampling)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_nodes={self.num_nodes}, num_neighbors={self.num_neighbors}, replace={self.replace})"


def neighbor_sampler(data: Data, num_neighbors: Sequence[int], replace: bool = False, prefer: str = "auto") -> BaseSampler:
    """PyG's ``NeighborSampler`` when pyg-lib or torch-sparse is installed, else :class:`CSRNeighborSampler`.

    ``prefer``: ``"auto"``, ``"pyg"`` (fail without the libraries) or ``"torch"`` (always ours).
    """
    if prefer not in ("auto", "pyg", "torch"):
        raise ValueError(f"prefer must be 'auto', 'pyg' or 'torch', got {prefer!r}")
    if prefer == "torch" or (prefer == "auto" and not pyg_sampler_available()):
        return CSRNeighborSampler(data, num_neighbors, replace=replace)
    if not pyg_sampler_available():
        raise ImportError("PyG's NeighborSampler needs pyg-lib or torch-sparse; neither is installed")
    from torch_geometric.sampler import NeighborSampler

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return NeighborSampler(data, list(num_neighbors), replace=replace)


def node_loader(data: Data, num_neighbors: Sequence[int], input_nodes: Tensor | None = None, *,
                replace: bool = False, prefer: str = "auto", **kwargs):  # fmt: skip
    """A PyG :class:`~torch_geometric.loader.NodeLoader` driven by :func:`neighbor_sampler`."""
    from torch_geometric.loader import NodeLoader

    sampler = neighbor_sampler(data, num_neighbors, replace, prefer)
    return NodeLoader(data, node_sampler=sampler, input_nodes=input_nodes, **kwargs)


def link_loader(data: Data, num_neighbors: Sequence[int], edge_label_index: Tensor | None = None, *,
                neg_sampling: NegativeSampling | None = None, replace: bool = False, prefer: str = "auto",
                **kwargs):  # fmt: skip
    """A PyG :class:`~torch_geometric.loader.LinkLoader` driven by :func:`neighbor_sampler`."""
    from torch_geometric.loader import LinkLoader

    sampler = neighbor_sampler(data, num_neighbors, replace, prefer)
    return LinkLoader(data, link_sampler=sampler, edge_label_index=edge_label_index,
                      neg_sampling=neg_sampling, **kwargs)  # fmt: skip
