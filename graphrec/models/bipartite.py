"""A registered backbone on the user-item graph, for recommendation.

Users and items (or ads) form one homogeneous graph: user ``u`` is node ``u``, item ``i``
is node ``num_users + i``, and every training interaction is an edge in both directions.
The input of node ``v`` is a learnable ID embedding, node features from the store, or
their sum; the backbone (any registered model: ``mf``, ``lightgcn``, ``gsm``, ``gesm``,
``hopgcn``, ``gcn``...) maps the inputs to the output embeddings through its usual
``forward(x, edge_index, edge_weight)``, and the score of a (user, item) pair is the
recommender's :class:`~graphrec.nn.score.Scorer` of their outputs (the dot product by
default). No backbone is re-implemented here.

A backbone may take its inputs on a manifold: it then declares ``input_manifold`` (an object
with ``point_dim(d)``, ``expmap0(v)`` and ``geoopt_manifold()``, such as
:class:`graphrec.hyperbolic.HyperbolicSpace`) and optionally ``input_init_scale``. The ID table
then holds ``point_dim(dim)`` columns, starts at ``expmap0`` of small tangent vectors, and is a
``geoopt.ManifoldParameter``, so ``optimizer: auto`` trains it with RiemannianAdam (HGCF).

The recommender contract (RecBole's, in graph form): :meth:`BipartiteRecommender.embeddings`
gives the ``(users, items)`` output embeddings, :meth:`BipartiteRecommender.loss` the
training loss of a batch, and ``scorer`` ranks; training, evaluation, export and serving
all go through these three.
"""

from __future__ import annotations

from typing import Literal

import geoopt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.models.registry import has_batch_term
from graphrec.nn.score import CosineScore, DotScore, Scorer

InputMode = Literal["id", "features", "both"]
Init = Literal["xavier_normal", "xavier_uniform", "normal"]


def init_embedding(weight: Tensor, init: Init, std: float = 0.1) -> None:
    if init == "xavier_normal":
        nn.init.xavier_normal_(weight)
    elif init == "xavier_uniform":
        nn.init.xavier_uniform_(weight)
    elif init == "normal":
        nn.init.normal_(weight, std=std)
    else:
        raise ValueError(f"unknown embedding init {init!r}; choose xavier_normal, xavier_uniform or normal")


def input_manifold(backbone: nn.Module):
    """The ``input_manifold`` a backbone (or the model a wrapper such as HopSampling holds) declares, or None."""
    for m in (backbone, getattr(backbone, "model", None)):
        space = getattr(m, "input_manifold", None) if m is not None else None
        if space is not None:
            return space
    return None


def manifold_points(space, num: int, dim: int, init_scale: float | None, init: Init = "xavier_normal",
                    init_std: float = 0.1) -> Tensor:  # fmt: skip
    """``[num, space.point_dim(dim)]`` points ``expmap0(v)`` of tangent vectors ``v`` ``[num, dim]`` drawn from
    ``U(-init_scale, init_scale)`` (HGCF's initialisation), or by ``init`` when ``init_scale`` is None."""
    v = torch.empty(num, dim)
    if init_scale is not None:
        nn.init.uniform_(v, -init_scale, init_scale)
    else:
        init_embedding(v, init, init_std)
    with torch.no_grad():
        return space.expmap0(v)


class NodeFeatureEncoder(nn.Module):
    """Projects one node type's store features to ``dim``: standardised numeric columns
    through a linear layer, plus one embedding per categorical column (index 0 = missing).

    The standardisation statistics are computed once, here, and kept with the module, so
    inference applies the transform that training used.
    """

    def __init__(self, dim: int, x: Tensor | None = None, x_cat: Tensor | None = None):
        super().__init__()
        if x is None and x_cat is None:
            raise ValueError("a feature encoder needs numeric features (x) or categorical ones (x_cat)")
        self.lin = None
        if x is not None:
            x = x.float()
            mean, std = x.mean(0), x.std(0, unbiased=False)
            std = torch.where(std > 0, std, torch.ones_like(std))
            self.register_buffer("x", ((x - mean) / std).nan_to_num(0.0), persistent=False)
            self.lin = nn.Linear(x.size(1), dim)
        self.cats = nn.ModuleList()
        if x_cat is not None:
            self.register_buffer("x_cat", x_cat.long(), persistent=False)
            for c in range(x_cat.size(1)):
                emb = nn.Embedding(int(x_cat[:, c].max()) + 1, dim)
                nn.init.normal_(emb.weight, std=0.1)
                self.cats.append(emb)
        self.dim = dim

    def forward(self, index: Tensor) -> Tensor:
        out = None
        if self.lin is not None:
            out = self.lin(self.x[index])
        for c, emb in enumerate(self.cats):
            e = emb(self.x_cat[index, c])
            out = e if out is None else out + e
        return out


class BipartiteRecommender(nn.Module):
    """Inputs (ID embeddings and/or features) -> backbone on the user+item graph -> embeddings.

    Args:
        num_users, num_items: node counts; items are offset by ``num_users``.
        backbone: a registered model (possibly wrapped in :class:`~graphrec.nn.HopSampling`)
            built with ``in_channels = dim``.
        dim: input size (the ID-embedding size).
        needs_graph: False for backbones that ignore edges (``mf``): only the rows needed by
            a batch are computed.
        inputs: ``"id"``, ``"features"`` or ``"both"`` (ID embedding + projected features).
        user_features / item_features: ``(x, x_cat)`` pairs from the store (either may be None).
        init, init_std: initialisation of the ID embeddings (of their tangent vectors on a manifold, unless
            the backbone declares ``input_init_scale``).
        scorer: how two output embeddings score (default :class:`~graphrec.nn.score.DotScore`).

    With a backbone that declares ``input_manifold`` (module docstring) the inputs are ID embeddings
    only (``inputs="id"``), and :meth:`loss`'s ``reg_weight`` (an L2 penalty on Euclidean inputs) is
    refused: regularise with the optimizer's weight decay, which RiemannianAdam applies in ambient
    coordinates, as HGCF's Riemannian SGD does.

    Raises:
        ValueError: an unknown ``inputs``; features requested without features in the graph, or with a
            manifold backbone; a scorer that takes points (``point_curvature``, e.g. ``lorentz_sqdist``) on a
            backbone without a manifold, or on one of another curvature.
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        backbone: nn.Module,
        dim: int,
        needs_graph: bool = True,
        inputs: InputMode = "id",
        user_features: tuple[Tensor | None, Tensor | None] | None = None,
        item_features: tuple[Tensor | None, Tensor | None] | None = None,
        init: Init = "xavier_normal",
        init_std: float = 0.1,
        scorer: Scorer | None = None,
    ):
        super().__init__()
        if inputs not in ("id", "features", "both"):
            raise ValueError(f"inputs must be 'id', 'features' or 'both', got {inputs!r}")
        self.num_users, self.num_items, self.dim = num_users, num_items, dim
        self.backbone = backbone
        self.scorer = scorer if scorer is not None else DotScore()
        self.needs_graph = needs_graph
        self.inputs = inputs
        self.embedding = None
        space = input_manifold(backbone)
        self._check_scorer(space)
        #: the geoopt manifold of the ID table (a backbone with ``input_manifold``), else None; a submodule, so
        #: that its curvature follows the model's device
        self.manifold: nn.Module | None = None
        if space is not None:
            if inputs != "id":
                raise ValueError(f"inputs={inputs!r}: {self._backbone_name} takes points on a manifold "
                                 "(input_manifold), which only ID embeddings provide; use inputs: id")  # fmt: skip
            scale = getattr(backbone, "input_init_scale", None)
            if scale is None and hasattr(backbone, "model"):
                scale = getattr(backbone.model, "input_init_scale", None)
            self.manifold = space.geoopt_manifold()
            self.embedding = nn.Embedding(num_users + num_items, space.point_dim(dim))
            points = manifold_points(space, num_users + num_items, dim, scale, init, init_std)
            self.embedding.weight = geoopt.ManifoldParameter(self.manifold.projx(points), manifold=self.manifold)
        elif inputs in ("id", "both"):
            self.embedding = nn.Embedding(num_users + num_items, dim)
            init_embedding(self.embedding.weight, init, init_std)
        self.user_enc = self.item_enc = None
        if inputs in ("features", "both"):
            have = [f for f in (user_features, item_features) if f is not None and any(t is not None for t in f)]
            if not have:
                raise ValueError(f"inputs={inputs!r} needs node features, but the graph has none")
            if user_features is not None and any(t is not None for t in user_features):
                self.user_enc = NodeFeatureEncoder(dim, *user_features)
            if item_features is not None and any(t is not None for t in item_features):
                self.item_enc = NodeFeatureEncoder(dim, *item_features)

    @property
    def _backbone_name(self) -> str:
        return type(getattr(self.backbone, "model", self.backbone)).__name__  # through HopSampling

    def _check_scorer(self, space) -> None:
        want = getattr(self.scorer, "point_curvature", None)
        if want is None:
            return
        name = getattr(self.scorer, "name", type(self.scorer).__name__)
        if space is None:
            raise ValueError(f"score {name!r} takes points on a hyperboloid, but {self._backbone_name} outputs "
                             "Euclidean vectors: use a backbone with manifold outputs (hgcf) or score: hyperbolic, "
                             "which maps Euclidean vectors with expmap0")  # fmt: skip
        c = getattr(space, "c", None)
        have = None if c is None else float(torch.as_tensor(c).detach())
        if have is not None and abs(have - want) > 1e-6 * max(have, want):
            raise ValueError(f"score {name!r} expects points of curvature -{want:g} (train.score_params.curvature), "
                             f"but {self._backbone_name}'s points have curvature -{have:g} (model.curvature): "
                             "set them equal")  # fmt: skip

    @property
    def num_nodes(self) -> int:
        return self.num_users + self.num_items

    @property
    def first_layer(self) -> nn.Module:
        """The input layer (ID embeddings and feature encoders): what ``weight_decay_on:
        first_layer`` decays on the user-item graph, i.e. L2 on the inputs only."""
        return nn.ModuleList(m for m in (self.embedding, self.user_enc, self.item_enc) if m is not None)

    @property
    def id_embedding_key(self) -> str | None:
        """The ``state_dict`` key of the ID-embedding table ``[num_users + num_items, dim]`` (users
        first, then items), or None without ID inputs; warm starts remap its rows by external id."""
        return "embedding.weight" if self.embedding is not None else None

    def ego(self, n_id: Tensor | None = None) -> Tensor:
        """Backbone inputs ``[len(n_id), dim]`` of nodes ``n_id`` (default: all nodes)."""
        if n_id is None and self.user_enc is None and self.item_enc is None:
            # the table itself: a lookup of every row would copy it forward and scatter the
            # gradient back row by row (the same values, ~5% of a full-graph step on Gowalla).
            # Without autograd a copy, so that outputs (MF's are its inputs) never alias the weights.
            w = self.embedding.weight
            return w if torch.is_grad_enabled() else w.detach().clone()
        device = next(self.parameters()).device
        n_id = torch.arange(self.num_nodes, device=device) if n_id is None else n_id.to(device)
        out = self.embedding(n_id) if self.embedding is not None else None
        if self.user_enc is not None or self.item_enc is not None:
            feats = torch.zeros(n_id.numel(), self.dim, device=device)
            is_user = n_id < self.num_users
            if self.user_enc is not None and bool(is_user.any()):
                feats[is_user] = self.user_enc(n_id[is_user])
            if self.item_enc is not None and bool((~is_user).any()):
                feats[~is_user] = self.item_enc(n_id[~is_user] - self.num_users)
            out = feats if out is None else out + feats
        return out

    def forward(self, edge_index: Tensor, n_id: Tensor | None = None, edge_weight: Tensor | None = None) -> Tensor:
        """Output embeddings ``[len(n_id) or num_nodes, d]`` of the nodes of a graph.

        ``edge_index`` ``[2, E]`` indexes the nodes ``n_id`` (a sampled subgraph), or all
        nodes when ``n_id`` is None. For a backbone that ignores edges, ``n_id`` may be any
        node list.
        """
        return self.backbone(self.ego(n_id), edge_index, edge_weight)

    @torch.no_grad()
    def embeddings(self, graph: Tensor) -> tuple[Tensor, Tensor]:
        """``(users [num_users, d], items [num_items, d])``: output embeddings in evaluation mode
        (no dropout, no noise, full depth) on ``graph``, the ``[2, E]`` message-passing edges."""
        was = self.training
        self.eval()
        try:
            out = self(graph)
        finally:
            self.train(was)
        return out[: self.num_users], out[self.num_users :]

    def loss(self, out: Tensor, users: Tensor, pos: Tensor, neg: Tensor, *, kind: str = "bpr",
             reg_weight: float = 0.0, n_id: Tensor | None = None, temperature: float = 1.0,
             margin: float = 0.1) -> Tensor:  # fmt: skip
        """Training loss of a batch: pair loss through the scorer, L2 on the batch's inputs, and the
        backbone's auxiliary terms.

        Args:
            out: ``[n, d]`` output of the last training forward (all nodes, or the nodes ``n_id``).
            users, pos: ``[B]`` rows of ``out`` of the batch's users and positive items.
            neg: ``[B, k]`` rows of ``out`` of ``k`` negative items per pair.
            kind: ``bpr``, ``bce``, ``softmax`` or ``margin`` (:func:`pair_loss`).
            reg_weight: weight of ``||inputs||^2 / (2B)`` over the batch's users, positives and
                negatives (LightGCN's regulariser).
            n_id: global node ids of the rows of ``out`` (sampled subgraphs).
            temperature: the softmax loss's temperature.
            margin: the margin loss's margin.
        """
        if reg_weight > 0 and self.manifold is not None:
            raise ValueError(f"reg_weight={reg_weight} (train.reg_weight) is an L2 penalty on Euclidean inputs; "
                             f"{self._backbone_name}'s inputs are points on a manifold: set it to 0 and use "
                             "train.weight_decay (RiemannianAdam applies it in ambient coordinates, as HGCF does)")  # fmt: skip
        B = users.numel()
        # one gather: its backward scatters into one zero [n, d] gradient instead of three
        ids = torch.cat([users, pos, neg.reshape(-1)])
        cosine = isinstance(self.scorer, CosineScore)
        if cosine or (type(self.scorer) is DotScore and neg.shape[1] > 1):
            # Many rows per batch (k negatives per pair): gather the distinct rows once (cosine: normalise
            # each once), then index that small table; the backward scatters into it, not into a zero
            # tensor per pair and negative. (A batched matrix-vector product, bmm, was 3x slower than
            # multiply-and-sum for the negatives' scores here.) One dot-product negative keeps the plain
            # gather below, whose results earlier benchmarks reproduce bit for bit.
            uniq, inv = torch.unique(ids, return_inverse=True)
            table = F.normalize(out[uniq], dim=-1) if cosine else out[uniq]
            eu, ei, ej = table[inv[:B]], table[inv[B : 2 * B]], table[inv[2 * B :]].view(*neg.shape, -1)
            s_pos, s_neg = (eu * ei).sum(-1), (eu.unsqueeze(1) * ej).sum(-1)
        else:
            rows = out[ids]
            eu, ei, ej = rows[:B], rows[B : 2 * B], rows[2 * B :].view(*neg.shape, -1)
            s_pos, s_neg = self.scorer.score(eu, ei), self.scorer.score(eu.unsqueeze(1), ej)
        loss = pair_loss(kind, s_pos, s_neg, temperature, margin)
        if reg_weight > 0:
            ego = self.ego(ids if n_id is None else n_id[ids])
            loss = loss + reg_weight * ego.pow(2).sum() / (2 * B)
        aux = self.auxiliary_loss(users, pos)
        return loss + aux if aux is not None else loss

    def auxiliary_loss(self, users: Tensor | None = None, items: Tensor | None = None) -> Tensor | None:
        """The backbone's extra training losses, or None if it has none.

        A backbone may define ``auxiliary_loss()`` (a term that does not depend on the batch,
        such as GESM's structure regulariser) and ``batch_auxiliary_loss(groups)`` (a term on
        the batch's rows, such as XSimGCL's contrastive loss; ``groups`` are index tensors
        into the last training forward's output). ``users`` and ``items`` are the batch's
        user and positive-item rows of that output; the batch term gets their unique values
        as two groups, so it needs them.
        """
        terms = []
        global_term = getattr(self.backbone, "auxiliary_loss", None)  # a Backbone, HopSampling, or a plain module
        if global_term is not None and (t := global_term()) is not None:
            terms.append(t)
        if users is None or items is None:
            if has_batch_term(self.backbone):
                raise ValueError(
                    f"{type(self.backbone).__name__}'s auxiliary loss depends on the batch: "
                    "call auxiliary_loss(users, items) with the batch's rows of the output"
                )
        elif has_batch_term(self.backbone):
            terms.append(self.backbone.batch_auxiliary_loss([torch.unique(users), torch.unique(items)]))
        if not terms:
            return None
        return terms[0] if len(terms) == 1 else sum(terms[1:], terms[0])


def pair_loss(kind: str, pos: Tensor, neg: Tensor, temperature: float = 1.0, margin: float = 0.1) -> Tensor:
    """Loss of positive scores ``pos`` ``[B]`` against negative scores ``neg`` ``[B, k]``.

    ``bpr``: :math:`-\\log \\sigma(s^+ - s^-)`, mean over (positive, negative) pairs (Rendle et al., 2009);
    ``bce``: logistic loss on both, positives labelled 1 and negatives 0;
    ``softmax``: sampled softmax, :math:`-\\log \\frac{e^{s^+/\\tau}}{e^{s^+/\\tau} + \\sum_j e^{s^-_j/\\tau}}`,
    mean over positives (``temperature`` :math:`\\tau`; Wu et al., "On the Effectiveness of Sampled Softmax
    Loss for Item Recommendation", TOIS 2023, eq. 3). Negatives are sampled uniformly with no
    log-q correction, as there;
    ``margin``: :math:`\\max(0, m - s^+ + s^-)`, mean over (positive, negative) pairs; with the negative squared
    geodesic distance as the score it is HGCF's margin ranking loss (Sun et al., WWW 2021).
    """
    if kind == "softmax":
        logits = torch.cat([pos.view(-1, 1), neg], dim=1) / temperature
        return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()
    if kind == "margin":
        return F.relu(margin - pos.view(-1, 1) + neg).mean()
    if kind == "bpr":
        return -F.logsigmoid(pos.view(-1, 1) - neg).mean()
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos)) + \
            F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg))
    raise ValueError(f"unknown loss {kind!r}; choose bpr, bce, softmax or margin")
