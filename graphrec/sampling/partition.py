"""Graph partitioning for distributed (data-parallel) GNN training.

Each of ``P`` ranks trains on the seeds it *owns* and holds only the part of the graph that
a ``K``-layer model started from those seeds can reach:

* :func:`partition_graph` assigns every node to one part, with METIS (multilevel k-way
  partitioning, Karypis & Kumar, "A fast and high quality multilevel scheme for
  partitioning irregular graphs", SIAM J. Sci. Comput. 20(1), 1998; through ``pymetis``)
  or with a seeded random, edge-balanced assignment (the baseline METIS is measured against);
* :func:`local_graph` cuts out one rank's :class:`LocalGraph`: its owned nodes, the halo
  (every node within ``num_hops`` hops of an owned node that is not owned, as in the halo /
  "L-hop neighbourhood" partitions of DistDGL, Zheng et al., IA3 2020), and every edge
  incident to a node within ``num_hops - 1`` hops of an owned node;
* :func:`partition_report` measures a partition (:class:`PartitionStats`): owned and halo
  nodes, local edges, edge cut, replication factor and edge balance per part;
* :func:`memory_per_rank` gives the bytes a rank holds, term by term.

Hops are counted on the graph taken as undirected (an edge ``u -> v`` joins ``u`` and ``v``
both ways), so the guarantee below holds whichever way messages flow.

Guarantee. Let ``S`` be any set of owned nodes of a rank and ``K = num_hops``. Every walk of
at most ``K`` edges that starts in ``S`` (in either direction along each edge) uses only
edges of the local graph: its ``i``-th edge leaves a node within ``i - 1 <= K - 1`` hops of
an owned node, and all edges incident to such a node are kept. So a ``K``-hop neighbour
sampler (:class:`~graphrec.sampling.CSRNeighborSampler` with ``K`` fan-outs) or ``K`` steps
of message passing started from ``S`` see exactly the nodes and edges they see on the full
graph, and every node within ``K - 1`` hops keeps its full in-degree (a sampler draws from
the same neighbour lists, in the same order). Nodes exactly ``K`` hops out (the outer
ring of the halo) keep only the edges towards the inside; a symmetric degree normalisation
(GCN, LightGCN) must take their degree from :attr:`LocalGraph.degree`, the full-graph
in-degree, not from the local ``edge_index``. The outputs at nodes other than ``S`` are not
covered by the guarantee.

Memory per rank. With ``E_local`` local edges, ``n_local = n_owned + n_halo`` local nodes,
``N`` nodes in the full graph, a ``d``-dimensional float32 embedding table and an optimiser
keeping ``s`` float32 slots per parameter (``s = 2`` for Adam, 1 for momentum SGD, 0 for
plain SGD), one rank holds about::

    bytes ~ 16 E_local          edge_index, int64 [2, E_local]          per rank
          +  8 E_local          edge_id, int64 [E_local]                per rank
          +  8 n_local          global_id, int64 [n_local]              per rank
          +  8 n_local          degree, int64 [n_local]                 per rank
          +  4 d N              embedding table, float32 [N, d]         replicated
          +  4 d N s            optimiser state                         replicated
          +  4 d N              dense gradient of the table             replicated

The graph terms shrink as ``P`` grows (about ``E / P`` times the replication factor); the
embedding table, its optimiser state and its gradient are replicated on every rank under
data parallelism (DDP all-reduces the gradient), so they do not shrink: at large ``N`` the
table, not the graph, sets the memory per rank. A sparse gradient holds only the touched
rows (about ``4 d n_local`` bytes) instead of ``4 d N``. Activations, sampled mini-batches
and the framework itself come on top. :func:`memory_per_rank` returns each term.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torch_geometric.utils import remove_self_loops, to_undirected

_DIST_HINT = "pip install 'graphrec[dist]'"

__all__ = [
    "LocalGraph",
    "PartitionStats",
    "local_graph",
    "memory_per_rank",
    "partition_graph",
    "partition_report",
]


# ------------------------------------------------------------------------------ checks
def _check_edge_index(edge_index: Tensor, num_nodes: int) -> Tensor:
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        shape = tuple(edge_index.shape) if isinstance(edge_index, Tensor) else type(edge_index).__name__
        raise ValueError(f"edge_index must be a tensor of shape [2, E], got {shape}")
    if edge_index.dtype.is_floating_point or edge_index.dtype.is_complex or edge_index.dtype == torch.bool:
        raise TypeError(f"edge_index must hold integer node ids, got dtype {edge_index.dtype}")
    if not isinstance(num_nodes, int) or num_nodes < 1:
        raise ValueError(f"num_nodes must be an int >= 1, got {num_nodes!r}")
    edge_index = edge_index.long()
    if edge_index.numel():
        bad = (edge_index < 0) | (edge_index >= num_nodes)
        if bool(bad.any()):
            side, col = (int(i) for i in bad.nonzero()[0])
            raise ValueError(
                f"edge_index[{side}, {col}] = {int(edge_index[side, col])} is outside [0, {num_nodes}) "
                f"(num_nodes={num_nodes})"
            )
    return edge_index


def _check_parts(parts: Tensor, num_nodes: int | None = None) -> Tensor:
    if not isinstance(parts, Tensor) or parts.dim() != 1 or parts.numel() == 0:
        shape = tuple(parts.shape) if isinstance(parts, Tensor) else type(parts).__name__
        raise ValueError(f"parts must be a non-empty 1-D tensor [num_nodes], got {shape}")
    if parts.dtype.is_floating_point or parts.dtype.is_complex or parts.dtype == torch.bool:
        raise TypeError(f"parts must hold integer part ids, got dtype {parts.dtype}")
    if num_nodes is not None and parts.numel() != num_nodes:
        raise ValueError(f"parts has {parts.numel()} entries but num_nodes={num_nodes}")
    parts = parts.long()
    if int(parts.min()) < 0:
        node = int((parts < 0).nonzero()[0])
        raise ValueError(f"parts[{node}] = {int(parts[node])} is negative; part ids must be >= 0")
    return parts


def _check_hops(num_hops: int) -> None:
    if not isinstance(num_hops, int) or num_hops < 1:
        raise ValueError(f"num_hops must be an int >= 1, got {num_hops!r}")


# ------------------------------------------------------------------------------ partitioning
def partition_graph(
    edge_index: Tensor,
    num_nodes: int,
    num_parts: int,
    method: Literal["metis", "random"] = "metis",
    seed: int = 0,
    balance: Literal["edges", "nodes"] = "edges",
) -> Tensor:
    """Assign each node to one of ``num_parts`` parts.

    The graph is taken as undirected: self-loops and repeated edges are dropped and every
    edge is stored both ways first (METIS expects a simple symmetric graph; pymetis does not
    check, and miscounts the cut of anything else). With ``balance="edges"`` each node weighs its degree + 1, so parts carry
    about equal numbers of edges (the +1 keeps isolated nodes from being free); with
    ``balance="nodes"`` every node weighs 1.

    * ``"metis"``: METIS k-way partitioning (recursive bisection up to 8 parts, as pymetis
      chooses), minimising the edge cut under the weight balance (Karypis & Kumar, SIAM J.
      Sci. Comput. 1998). ``seed`` goes to METIS' own random generator (``Options.seed``);
      for a given graph and seed the result is deterministic.
    * ``"random"``: a seeded random permutation of the nodes, cut into ``num_parts`` runs of
      about equal total weight (node ``i`` of the permutation goes to the part in which the
      midpoint of its weight interval in the running sum falls). The baseline METIS is
      compared with; its expected edge cut is ``(1 - 1/num_parts)`` of the edges.

    A part can come out empty when one node weighs more than ``total / num_parts`` (a hub
    in a tiny graph); :func:`partition_report` shows it.

    Args:
        edge_index: ``[2, E]`` integer node ids in ``[0, num_nodes)``; direction ignored.
        num_nodes: ``N``, number of nodes (isolated nodes included).
        num_parts: ``P``, ``1 <= P <= N``.
        method: ``"metis"`` (needs the ``graphrec[dist]`` extra) or ``"random"``.
        seed: random seed.
        balance: ``"edges"`` or ``"nodes"``.

    Returns:
        ``[N]`` int64 part id of each node, in ``[0, P)``, on ``edge_index``'s device.

    Raises:
        ValueError: bad shape, node ids out of range, ``num_parts`` outside ``[1, N]``, an
            unknown ``method`` or ``balance``.
        TypeError: ``edge_index`` not integer.
        ImportError: ``method="metis"`` without pymetis (``pip install 'graphrec[dist]'``).
    """
    device = edge_index.device if isinstance(edge_index, Tensor) else torch.device("cpu")
    ei = _check_edge_index(edge_index, num_nodes).cpu()
    if method not in ("metis", "random"):
        raise ValueError(f"method must be 'metis' or 'random', got {method!r}")
    if balance not in ("edges", "nodes"):
        raise ValueError(f"balance must be 'edges' or 'nodes', got {balance!r}")
    if not isinstance(num_parts, int) or not 1 <= num_parts <= num_nodes:
        raise ValueError(f"num_parts must be an int in [1, num_nodes={num_nodes}], got {num_parts!r}")
    if num_parts == 1:
        return torch.zeros(num_nodes, dtype=torch.long, device=device)
    # Simple undirected graph, sorted by source (to_undirected coalesces): METIS' CSR input.
    row, col = to_undirected(remove_self_loops(ei)[0], num_nodes=num_nodes)
    deg = torch.bincount(row, minlength=num_nodes)
    weight = deg + 1 if balance == "edges" else None
    if method == "random":
        parts = _random_parts(weight if weight is not None else torch.ones(num_nodes, dtype=torch.long), num_parts, seed)
    else:
        indptr = torch.zeros(num_nodes + 1, dtype=torch.long)
        indptr[1:] = torch.cumsum(deg, 0)
        parts = _metis_parts(indptr, col, weight, num_parts, seed)
    return parts.to(device)


def _random_parts(weight: Tensor, num_parts: int, seed: int) -> Tensor:
    perm = torch.randperm(weight.numel(), generator=torch.Generator().manual_seed(seed))
    w = weight[perm]
    end = torch.cumsum(w, 0)
    total = int(end[-1])
    # Twice the midpoint of each node's interval in the running sum, so the split is in integers.
    part = ((2 * end - w) * num_parts) // (2 * total)
    parts = torch.empty_like(perm)
    parts[perm] = part.clamp_(max=num_parts - 1)
    return parts


def _metis_parts(indptr: Tensor, adjncy: Tensor, weight: Tensor | None, num_parts: int, seed: int) -> Tensor:
    try:
        import pymetis
    except ImportError as err:
        raise ImportError(f"partition_graph(method='metis') needs pymetis: {_DIST_HINT}") from err
    xadj, adj = indptr.numpy(), adjncy.numpy()
    kwargs = {
        "vweights": None if weight is None else weight.numpy(),
        "options": pymetis.Options(seed=int(seed)),
    }
    if hasattr(pymetis, "CSRAdjacency"):  # pymetis >= 2025.2; passing xadj/adjncy is deprecated there
        result = pymetis.part_graph(num_parts, adjacency=pymetis.CSRAdjacency(xadj, adj), **kwargs)
    else:
        result = pymetis.part_graph(num_parts, xadj=xadj, adjncy=adj, **kwargs)
    return torch.from_numpy(np.asarray(result.vertex_part, dtype=np.int64))


# ------------------------------------------------------------------------------ halo
def _hop_distance(edge_index: Tensor, start: Tensor, num_hops: int) -> Tensor:
    """``[N]`` hops (undirected) from the nearest ``start`` node; ``num_hops + 1`` beyond.

    Written out rather than through ``torch_geometric.utils.k_hop_subgraph``: that returns
    only the ``num_hops`` subset and its induced edges, while the local graph needs every
    ring (the ``num_hops - 1`` set decides which edges are kept, and the rings order the
    halo), and it follows one edge direction only. One O(E) pass per hop either way.
    """
    row, col = edge_index
    dist = torch.full((start.numel(),), num_hops + 1, dtype=torch.long)
    dist[start] = 0
    frontier = start.clone()
    reached = start.clone()
    for h in range(1, num_hops + 1):
        nbr = torch.zeros_like(reached)
        nbr[col[frontier[row]]] = True
        nbr[row[frontier[col]]] = True
        frontier = nbr & ~reached
        if not bool(frontier.any()):
            break
        dist[frontier] = h
        reached |= frontier
    return dist


@dataclass(eq=False)
class LocalGraph:
    """One rank's share of a partitioned graph (see :func:`local_graph`).

    Local ids run ``0 .. n_local - 1``: owned nodes first, then the halo ring by ring (1 hop
    out, 2 hops out, ... ``num_hops`` out); within each group by ascending global id.

    Attributes:
        rank: the part this graph belongs to.
        num_hops: ``K``, the depth it was cut for.
        num_nodes: ``N``, nodes in the full graph.
        edge_index: ``[2, E_local]`` int64 local ids; the kept columns of the input
            ``edge_index`` in their original order and direction.
        edge_id: ``[E_local]`` int64 column of each local edge in the input ``edge_index``
            (to fetch edge features or labels).
        global_id: ``[n_local]`` int64 global id of each local node.
        num_per_hop: ``K + 1`` counts: owned nodes, then halo nodes 1, ..., ``K`` hops out.
        degree: ``[n_local]`` int64 in-degree in the full graph (``edge_index[1]`` counts),
            for normalisations at the outer ring, whose local degree is incomplete.
    """

    rank: int
    num_hops: int
    num_nodes: int
    edge_index: Tensor
    edge_id: Tensor
    global_id: Tensor
    num_per_hop: list[int]
    degree: Tensor

    @property
    def num_owned(self) -> int:
        """Owned nodes (local ids ``0 .. num_owned - 1``)."""
        return self.num_per_hop[0]

    @property
    def num_halo(self) -> int:
        """Halo nodes (local ids ``num_owned .. n_local - 1``)."""
        return sum(self.num_per_hop[1:])

    @property
    def num_local(self) -> int:
        """``n_local = num_owned + num_halo``."""
        return self.global_id.numel()

    @property
    def num_edges(self) -> int:
        """``E_local``."""
        return self.edge_index.size(1)

    @property
    def owned_mask(self) -> Tensor:
        """``[n_local]`` bool, True for owned nodes."""
        return torch.arange(self.num_local, device=self.global_id.device) < self.num_owned

    def to_local(self, global_ids: Tensor) -> Tensor:
        """Local id of each global id (any shape), ``-1`` for nodes this rank does not hold.

        Raises:
            ValueError: an id outside ``[0, num_nodes)``.
            TypeError: non-integer ids.
        """
        if not isinstance(global_ids, Tensor):
            global_ids = torch.as_tensor(global_ids)
        if global_ids.dtype.is_floating_point or global_ids.dtype.is_complex or global_ids.dtype == torch.bool:
            raise TypeError(f"global ids must be integers, got dtype {global_ids.dtype}")
        g = global_ids.long().reshape(-1).contiguous()
        if g.numel() and (int(g.min()) < 0 or int(g.max()) >= self.num_nodes):
            bad = int(g[(g < 0) | (g >= self.num_nodes)][0])
            raise ValueError(f"global id {bad} is outside [0, num_nodes={self.num_nodes})")
        out = torch.full_like(g, -1)
        # Each group (owned, ring 1, ...) is sorted by global id: a binary search per group
        # needs no [N] lookup table, which would cost every rank 8 N bytes.
        start = 0
        for count in self.num_per_hop:
            if count:
                seg = self.global_id[start:start + count]
                pos = torch.searchsorted(seg, g).clamp_(max=count - 1)
                hit = seg[pos] == g
                out = torch.where(hit, pos + start, out)
            start += count
        return out.view(global_ids.shape)


def local_graph(edge_index: Tensor, num_nodes: int, parts: Tensor, rank: int, num_hops: int = 1) -> LocalGraph:
    """Cut rank ``rank``'s :class:`LocalGraph` out of a partitioned graph.

    Holds the owned nodes (``parts == rank``), the halo (every node within ``num_hops``
    hops of an owned node, edges taken as undirected, that is not owned), and every edge
    incident to a node within ``num_hops - 1`` hops of an owned node. Then a ``num_hops``-hop
    sampler or ``num_hops`` message-passing steps started from owned seeds see the same
    neighbourhood as on the full graph (the module docstring states and proves the
    guarantee). A rank that owns no node gets an empty graph.

    Args:
        edge_index: ``[2, E]`` integer node ids in ``[0, num_nodes)``.
        num_nodes: ``N``.
        parts: ``[N]`` part id of each node (:func:`partition_graph`).
        rank: the part to cut out, ``>= 0``.
        num_hops: ``K >= 1``, the number of layers / sampler hops to serve.

    Returns:
        A :class:`LocalGraph` on the CPU.

    Raises:
        ValueError: bad shapes, node ids out of range, ``parts`` not of length ``N`` or
            negative, ``rank < 0``, ``num_hops < 1``.
        TypeError: non-integer ``edge_index`` or ``parts``.
    """
    ei = _check_edge_index(edge_index, num_nodes).cpu()
    parts = _check_parts(parts, num_nodes).cpu()
    _check_hops(num_hops)
    if not isinstance(rank, int) or rank < 0:
        raise ValueError(f"rank must be an int >= 0, got {rank!r}")
    dist = _hop_distance(ei, parts == rank, num_hops)
    inner = dist < num_hops
    edge_id = (inner[ei[0]] | inner[ei[1]]).nonzero().view(-1)
    held = (dist <= num_hops).nonzero().view(-1)  # ascending global id
    global_id = held[torch.sort(dist[held], stable=True).indices]
    num_per_hop = torch.bincount(dist[global_id], minlength=num_hops + 1)[: num_hops + 1].tolist()
    local = torch.full((num_nodes,), -1, dtype=torch.long)
    local[global_id] = torch.arange(global_id.numel())
    degree = torch.bincount(ei[1], minlength=num_nodes)[global_id]
    return LocalGraph(
        rank=rank,
        num_hops=num_hops,
        num_nodes=num_nodes,
        edge_index=local[ei[:, edge_id]],
        edge_id=edge_id,
        global_id=global_id,
        num_per_hop=num_per_hop,
        degree=degree,
    )


# ------------------------------------------------------------------------------ report
@dataclass(eq=False)
class PartitionStats:
    """Per-part measures of a partition (see :func:`partition_report`); tensors are ``[P]``.

    Attributes:
        num_hops: the halo depth the local graphs were measured at.
        owned: owned nodes per part.
        halo: halo nodes per part (within ``num_hops`` hops, not owned).
        local_edges: edges of each part's :class:`LocalGraph` (columns of ``edge_index``).
        edge_cut: undirected edges (self-loops and repeats dropped, as METIS counts them)
            with one end owned by the part and the other elsewhere.
        total_edge_cut: undirected edges whose ends lie in different parts, each once
            (``edge_cut.sum() / 2``; METIS' objective).
        num_edges: undirected edges of the simple graph (the denominator of the cut share).
        replication: ``(owned + halo) / owned`` per part (float64; nan or inf for an empty part).
        balance: ``max / mean`` of ``local_edges`` (1 is perfect; nan when no part has edges).
    """

    num_hops: int
    owned: Tensor
    halo: Tensor
    local_edges: Tensor
    edge_cut: Tensor
    total_edge_cut: int
    num_edges: int
    replication: Tensor
    balance: float

    @property
    def num_parts(self) -> int:
        return self.owned.numel()

    @property
    def replication_factor(self) -> float:
        """Nodes held over all ranks divided by ``N``: ``sum(owned + halo) / sum(owned)``."""
        return float((self.owned + self.halo).sum()) / float(self.owned.sum())

    @property
    def cut_share(self) -> float:
        """``total_edge_cut / num_edges`` (0 when the graph has no edge)."""
        return self.total_edge_cut / self.num_edges if self.num_edges else 0.0

    def rows(self) -> list[dict]:
        """One dict per part (for a table)."""
        return [
            {
                "part": p,
                "owned": int(self.owned[p]),
                "halo": int(self.halo[p]),
                "local_edges": int(self.local_edges[p]),
                "edge_cut": int(self.edge_cut[p]),
                "replication": float(self.replication[p]),
            }
            for p in range(self.num_parts)
        ]

    def to_dict(self) -> dict:
        """Plain Python values (tensors as lists), for JSON."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, Tensor):
                d[k] = v.tolist()
        d.update(num_parts=self.num_parts, replication_factor=self.replication_factor, cut_share=self.cut_share)
        return d


def partition_report(edge_index: Tensor, parts: Tensor, num_hops: int = 1) -> PartitionStats:
    """Measure a partition: per part owned and halo nodes, local edges, edge cut,
    replication factor, and the edge balance (max / mean of local edges).

    ``N`` is ``parts.numel()``; ``P`` is ``parts.max() + 1`` (parts with no node count, with
    zeros). Costs one :func:`local_graph`-sized pass per part, O(P K E).

    Args:
        edge_index: ``[2, E]`` integer node ids in ``[0, N)``.
        parts: ``[N]`` part id of each node.
        num_hops: ``K >= 1``, the halo depth.

    Raises:
        ValueError / TypeError: as :func:`local_graph`.
    """
    parts = _check_parts(parts).cpu()
    num_nodes = parts.numel()
    ei = _check_edge_index(edge_index, num_nodes).cpu()
    _check_hops(num_hops)
    num_parts = int(parts.max()) + 1
    owned = torch.bincount(parts, minlength=num_parts)
    halo = torch.zeros(num_parts, dtype=torch.long)
    local_edges = torch.zeros(num_parts, dtype=torch.long)
    for p in range(num_parts):
        dist = _hop_distance(ei, parts == p, num_hops)
        halo[p] = int(((dist > 0) & (dist <= num_hops)).sum())
        inner = dist < num_hops
        local_edges[p] = int((inner[ei[0]] | inner[ei[1]]).sum())
    row, col = to_undirected(remove_self_loops(ei)[0], num_nodes=num_nodes)
    once = row < col
    row, col = row[once], col[once]
    cross = parts[row] != parts[col]
    edge_cut = torch.bincount(parts[row[cross]], minlength=num_parts) + torch.bincount(parts[col[cross]], minlength=num_parts)
    mean_edges = float(local_edges.double().mean())
    return PartitionStats(
        num_hops=num_hops,
        owned=owned,
        halo=halo,
        local_edges=local_edges,
        edge_cut=edge_cut,
        total_edge_cut=int(cross.sum()),
        num_edges=int(row.numel()),
        replication=(owned + halo).double() / owned.double(),
        balance=float(local_edges.max()) / mean_edges if mean_edges > 0 else float("nan"),
    )


# ------------------------------------------------------------------------------ memory
def memory_per_rank(local: LocalGraph, num_nodes: int, dim: int, optimizer_slots: int = 2) -> dict[str, int]:
    """Bytes one rank holds, term by term (the formula in the module docstring).

    Per-rank terms are measured on ``local``'s tensors (``edge_index``, ``edge_id``,
    ``global_id``, ``degree``); replicated terms assume a float32 ``[num_nodes, dim]``
    embedding table (``embedding``), ``optimizer_slots`` float32 copies of it in the
    optimiser (``optimizer``; 2 for Adam's moments) and a dense float32 gradient
    (``gradients``). Also returned: ``per_rank`` (sum of the graph terms), ``replicated``
    (sum of the table terms) and ``total``. Activations, mini-batches and the framework's
    own memory are not included.

    Args:
        local: the rank's :class:`LocalGraph`.
        num_nodes: ``N``, rows of the embedding table.
        dim: ``d``, embedding width.
        optimizer_slots: ``s >= 0``, float32 state tensors per parameter.

    Raises:
        ValueError: ``num_nodes < 1``, ``dim < 1`` or ``optimizer_slots < 0``.
    """
    if num_nodes < 1 or dim < 1 or optimizer_slots < 0:
        raise ValueError(
            f"need num_nodes >= 1, dim >= 1, optimizer_slots >= 0; got num_nodes={num_nodes}, dim={dim}, "
            f"optimizer_slots={optimizer_slots}"
        )
    graph = {
        name: t.numel() * t.element_size()
        for name, t in (
            ("edge_index", local.edge_index),
            ("edge_id", local.edge_id),
            ("global_id", local.global_id),
            ("degree", local.degree),
        )
    }
    table = 4 * dim * num_nodes
    replicated = {"embedding": table, "optimizer": table * optimizer_slots, "gradients": table}
    per_rank, repl = sum(graph.values()), sum(replicated.values())
    return {**graph, **replicated, "per_rank": per_rank, "replicated": repl, "total": per_rank + repl}
