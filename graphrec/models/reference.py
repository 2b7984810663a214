"""Reference implementations from other libraries, for side-by-side benchmarks only."""

from __future__ import annotations

import warnings

from torch import Tensor, nn

from graphrec.models.bipartite import BipartiteRecommender


class PyGLightGCN(BipartiteRecommender):
    """``torch_geometric.nn.models.LightGCN`` as a :class:`BipartiteRecommender` (the ``pyg_lightgcn``
    row of ``graphrec bench rec``): PyG's own propagation over the recommender's ID-embedding
    table, so the same loss, evaluation and export apply.

    ``input_format="csr"`` feeds PyG a transposed sparse CSR adjacency (its fast path for
    ``LGConv`` on CPU, about 4x faster per step here than an ``edge_index``), built once per graph.
    """

    def __init__(self, num_users: int, num_items: int, dim: int, K: int, init: str = "xavier_uniform",
                 init_std: float = 0.1, input_format: str = "csr"):  # fmt: skip
        if input_format not in ("csr", "edge_index"):
            raise ValueError(f"input_format must be 'csr' or 'edge_index', got {input_format!r}")
        from torch_geometric.nn.models import LightGCN

        super().__init__(num_users, num_items, nn.Identity(), dim, init=init, init_std=init_std)
        self.input_format = input_format
        self.model = LightGCN(num_users + num_items, dim, K)
        self.model.embedding = self.embedding  # one table: PyG propagates the recommender's embeddings
        self._adj = self._key = None

    def forward(self, edge_index: Tensor, n_id: Tensor | None = None, edge_weight: Tensor | None = None) -> Tensor:
        if n_id is not None:
            raise ValueError("the PyG reference LightGCN trains on the full graph only (train.sampler: full)")
        if edge_weight is not None or self.input_format == "edge_index":
            return self.model.get_embedding(edge_index, edge_weight)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
            return self.model.get_embedding(self._adj_t(edge_index))

    def _adj_t(self, edge_index: Tensor) -> Tensor:
        from torch_geometric.utils import to_torch_csr_tensor

        key = (edge_index.data_ptr(), edge_index._version, edge_index.shape[1])
        if self._key != key:
            n = self.num_nodes
            self._adj, self._key = to_torch_csr_tensor(edge_index.flip(0), size=(n, n)), key
        return self._adj
