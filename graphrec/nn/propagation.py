"""Fixed-weight propagation over a sparse adjacency, shared by every K-step model.

``h <- P h`` is computed as a CSR sparse-dense product, O(|E| h) per step; ``P^k`` is
never formed. The CSR matrix is built once per graph and cached on the module.
"""

from __future__ import annotations

import warnings

import scipy.sparse as sp
import torch
from torch import Tensor, nn
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import add_remaining_self_loops

from graphrec.nn import fused


def random_walk_weights(edge_index: Tensor, num_nodes: int, edge_weight: Tensor | None = None):
    r"""GESM's transition matrix :math:`P = \tilde A D^{-1}` with :math:`\tilde A = A + I`.

    In PyG's source-to-target convention the message j -> i carries
    :math:`\tilde A_{ij} / d_j`: each edge is weighted by one over its *source* degree
    (self-loops added first), so every column of P sums to one.
    """
    edge_index, edge_weight = add_remaining_self_loops(edge_index, edge_weight, 1.0, num_nodes)
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.size(1), device=edge_index.device)
    deg = torch.zeros(num_nodes, dtype=edge_weight.dtype, device=edge_weight.device)
    deg.index_add_(0, edge_index[0], edge_weight)
    return edge_index, edge_weight / deg[edge_index[0]]


def row_weights(edge_index: Tensor, num_nodes: int, edge_weight: Tensor | None = None):
    r"""HGCN's and HGCF's row-normalised :math:`\tilde D^{-1} \tilde A` with :math:`\tilde A = A + I`: every node
    takes the mean of itself and its neighbours.

    In PyG's source-to-target convention the message j -> i carries :math:`\tilde A_{ij} / \tilde d_i`: each
    edge is weighted by one over its *target* degree (self-loops added first), so every row of P sums to one.
    """
    edge_index, edge_weight = add_remaining_self_loops(edge_index, edge_weight, 1.0, num_nodes)
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.size(1), device=edge_index.device)
    deg = torch.zeros(num_nodes, dtype=edge_weight.dtype, device=edge_weight.device)
    deg.index_add_(0, edge_index[1], edge_weight)
    return edge_index, edge_weight / deg[edge_index[1]]


def symmetric_weights(edge_index: Tensor, num_nodes: int, edge_weight: Tensor | None = None):
    r"""GCN's :math:`D^{-1/2} (A + I) D^{-1/2}` (PyG's ``gcn_norm``)."""
    return gcn_norm(edge_index, edge_weight, num_nodes, add_self_loops=True)


def symmetric_weights_no_loops(edge_index: Tensor, num_nodes: int, edge_weight: Tensor | None = None):
    r"""LightGCN's :math:`D^{-1/2} A D^{-1/2}`, without self-loops."""
    return gcn_norm(edge_index, edge_weight, num_nodes, add_self_loops=False)


NORMALIZATIONS = {
    "random_walk": random_walk_weights,
    "row": row_weights,
    "symmetric": symmetric_weights,
    "symmetric_no_loops": symmetric_weights_no_loops,
}


def to_csr(edge_index: Tensor, edge_weight: Tensor, num_nodes: int) -> Tensor:
    """Sparse CSR matrix M with ``M[target, source] = weight``, so ``M @ h`` aggregates messages."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        coo = torch.sparse_coo_tensor(
            torch.stack([edge_index[1], edge_index[0]]), edge_weight, (num_nodes, num_nodes), check_invariants=False
        ).coalesce()
        return coo.to_sparse_csr()


def spmm(op: Tensor, h: Tensor, host: sp.csr_matrix | None = None) -> Tensor:
    """``op @ h`` for a sparse CSR ``op`` and a dense ``h``.

    On CPU with float32 and numba, :func:`graphrec.nn.fused.csr_spmm` computes it (split by
    rows over :func:`graphrec.nn.fused.get_num_threads` threads; ~20% faster than scipy on
    one thread). Otherwise, with
    ``host`` (the same matrix in scipy, see :func:`scipy_csr`), scipy's CSR
    kernel computes it: about 2x faster than torch 2.13's for a 2708 x 512 ``h``, with no
    intermediate copy. Otherwise ``addmm`` with ``beta=0`` into a fresh output, which skips
    the extra fill and copy of ``op @ h`` (about 4x faster than ``op @ h`` on CPU).
    benchmarks/epoch_time.py measures the effect.
    """
    if h.dim() != 2:
        return op @ h
    if fused.AVAILABLE and h.device.type == "cpu" and h.dtype == op.dtype == torch.float32 \
            and op.layout == torch.sparse_csr:  # fmt: skip
        if host is not None:
            return fused.csr_spmm(host.indptr, host.indices, host.data, h)
        return fused.csr_spmm(op.crow_indices().numpy(), op.col_indices().numpy(), op.values().detach().numpy(), h)
    if host is not None and h.device.type == "cpu" and h.dtype == op.dtype:
        return torch.from_numpy(host @ h.detach().numpy())
    return torch.addmm(h.new_empty(op.size(0), h.size(1)), op, h, beta=0)


def scipy_csr(op: Tensor) -> sp.csr_matrix | None:
    """The CPU CSR tensor ``op`` as a scipy matrix (None for other devices or dtypes)."""
    if op.device.type != "cpu" or op.dtype not in (torch.float32, torch.float64):
        return None
    return sp.csr_matrix((op.values().numpy(), op.col_indices().numpy(), op.crow_indices().numpy()), shape=tuple(op.shape))


class _SpMM(torch.autograd.Function):
    """``op @ h`` whose backward multiplies by a cached transpose (torch would transpose and
    re-sort the CSR matrix on every backward pass)."""

    @staticmethod
    def forward(ctx, op: Tensor, op_t: Tensor, h: Tensor, host=None, host_t=None) -> Tensor:
        ctx.op_t, ctx.host_t = op_t, host_t
        return spmm(op, h, host)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return None, None, spmm(ctx.op_t, grad.contiguous(), ctx.host_t), None, None


class Propagation(nn.Module):
    """Normalised adjacency as a cached CSR operator: ``prop(h, edge_index)`` returns ``P h``.

    Args:
        normalization: ``"random_walk"`` (GESM/GSM: Ã D⁻¹), ``"symmetric"`` (GCN, SGC,
            APPNP: D^-½ Ã D^-½), ``"symmetric_no_loops"`` (LightGCN: D^-½ A D^-½) or ``"row"``
            (HGCN/HGCF: D̃⁻¹ Ã, the mean over the neighbours and the node itself).
    """

    def __init__(self, normalization: str = "symmetric"):
        super().__init__()
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization {normalization!r}; choose from {sorted(NORMALIZATIONS)}")
        self.normalization = normalization
        self._key: tuple | None = None
        self._op: Tensor | None = None
        self._op_t: Tensor | None = None
        self._host = self._host_t = None  # scipy copies of the operator and its transpose
        self._edges: tuple[Tensor, Tensor] | None = None

    def weighted_edges(self, edge_index: Tensor, num_nodes: int, edge_weight: Tensor | None = None):
        """``(edge_index, weight)`` of the normalised matrix, self-loops included (cached)."""
        self.operator(edge_index, num_nodes, edge_weight)
        return self._edges

    def operator(self, edge_index: Tensor, num_nodes: int, edge_weight: Tensor | None = None) -> Tensor:
        key = (
            edge_index.data_ptr(), edge_index._version, edge_index.shape[1], num_nodes,
            None if edge_weight is None else (edge_weight.data_ptr(), edge_weight._version),
        )  # fmt: skip
        if key != self._key:
            ei, w = NORMALIZATIONS[self.normalization](edge_index, num_nodes, edge_weight)
            w = w.detach()
            self._edges = (ei, w)
            self._op = to_csr(ei, w, num_nodes)
            self._op_t = to_csr(ei.flip(0), w, num_nodes)
            self._host, self._host_t = scipy_csr(self._op), scipy_csr(self._op_t)
            self._key = key
        return self._op

    def host_arrays(self, edge_index: Tensor, num_nodes: int, edge_weight: Tensor | None = None):
        """``((crow, col, values), (crow_t, col_t, values_t))``: numpy CSR arrays of the
        operator and of its transpose (cached), or ``None`` off the CPU."""
        self.operator(edge_index, num_nodes, edge_weight)
        if self._host is None:
            return None
        return tuple((m.indptr, m.indices, m.data) for m in (self._host, self._host_t))

    def forward(self, h: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        op = self.operator(edge_index, h.size(0), edge_weight)
        if h.requires_grad:
            return _SpMM.apply(op, self._op_t, h, self._host, self._host_t)
        return spmm(op, h, self._host)

    def extra_repr(self) -> str:
        return f"normalization={self.normalization!r}"
