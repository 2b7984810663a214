"""Exports of a built graph to networkx and DGL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphrec.store.dgl_compat import import_dgl


def _is_reverse(edge_type: tuple[str, str, str]) -> bool:
    return edge_type[1].startswith("rev_")


def to_networkx(
    data: Any,
    *,
    reverse: bool = False,
    edge_attrs: Sequence[str] = ("edge_time", "edge_weight", "edge_value"),
    node_attrs: bool = False,
):
    """A ``networkx.MultiDiGraph`` of ``data`` (a HeteroData from :func:`build`).

    Nodes are ``(node_type, id)`` tuples with a ``type`` attribute; every edge keeps its
    relation as ``key``/``relation`` and the listed edge attributes. Reverse (``rev_*``)
    edge types are left out unless ``reverse=True``. With ``node_attrs=True`` the rows of
    ``x`` are attached as ``x`` (lists of floats).
    """
    import networkx as nx

    g = nx.MultiDiGraph()
    for nt in data.node_types:
        n = data[nt].num_nodes or 0
        x = data[nt].get("x") if node_attrs else None
        if x is not None:
            rows = x.tolist()
            g.add_nodes_from(((nt, i), {"type": nt, "x": rows[i]}) for i in range(n))
        else:
            g.add_nodes_from(((nt, i) for i in range(n)), type=nt)
    for et in data.edge_types:
        if _is_reverse(et) and not reverse:
            continue
        src_t, rel, dst_t = et
        store = data[et]
        ei = store.edge_index.numpy()
        cols = {a: store[a].numpy().tolist() for a in edge_attrs if a in store}
        names = list(cols)
        values = list(zip(*cols.values(), strict=True)) if cols else [()] * ei.shape[1]
        g.add_edges_from(
            ((src_t, s), (dst_t, d), rel, {"relation": rel, **dict(zip(names, v, strict=True))})
            for s, d, v in zip(ei[0].tolist(), ei[1].tolist(), values, strict=True)
        )
    return g


def to_dgl(data: Any, *, reverse: bool = True):
    """A DGL heterograph of ``data`` with the same node ids, tensors and edge types.

    Node tensors whose first dimension is the node count become ``ndata``; edge tensors
    become ``edata``. Non-tensor attributes (text, vocabularies) are not carried.
    Requires the ``graphrec[dgl]`` extra (see :mod:`graphrec.store.dgl_compat`).
    """
    import torch

    dgl = import_dgl()
    edges = {
        et: (data[et].edge_index[0], data[et].edge_index[1])
        for et in data.edge_types
        if reverse or not _is_reverse(et)
    }
    num_nodes = {nt: int(data[nt].num_nodes or 0) for nt in data.node_types}
    if not edges:  # DGL needs at least one relation to know the node types
        nts = list(num_nodes)
        edges = {(nts[0], "_none", nts[0]): (torch.empty(0, dtype=torch.int64), torch.empty(0, dtype=torch.int64))}
    g = dgl.heterograph(edges, num_nodes_dict=num_nodes, idtype=torch.int64)
    for nt in data.node_types:
        for key, value in data[nt].items():
            if torch.is_tensor(value) and value.dim() >= 1 and value.shape[0] == num_nodes[nt]:
                g.nodes[nt].data[key] = value
    for et in edges:
        if et not in data.edge_types:
            continue
        for key, value in data[et].items():
            if key != "edge_index" and torch.is_tensor(value) and value.shape[0] == data[et].num_edges:
                g.edges[et].data[key] = value
    return g


def edge_counts(data: Any) -> dict[str, int]:
    """``{'user,rating,item': n, ...}`` for a quick summary."""
    return {",".join(et): int(data[et].num_edges) for et in data.edge_types}


__all__ = ["edge_counts", "to_dgl", "to_networkx"]
