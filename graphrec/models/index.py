"""The index of models: what ``graphrec models`` lists and ``graphrec config`` validates, without torch.

Each entry names the module that registers the model (imported on first use by
:func:`graphrec.models.get_spec`), its parameter class (:mod:`graphrec.models.params`), a
plain one-line summary, the tasks it has presets for, and its capability flags. The flags
are declared on the model classes (:class:`graphrec.models.Backbone`); a test keeps this index
equal to them. A model family in another package adds its entry here with its own module.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphrec.models import params as P


class UnknownModelError(KeyError):
    """No model is registered under this name."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    module: str  # registers the model when imported
    params: type[P.ModelParams]
    summary: str  # one line, plain text
    task: str = "node"  # the task its settings are tuned for: what `graphrec config NAME` shows by default
    supports_steps: bool = False  # K propagation steps: hop sampling applies
    needs_graph: bool = True
    learns_inputs: bool = True
    riemannian: bool = False


_B = "graphrec.models.baselines"
INDEX: dict[str, ModelInfo] = {i.name: i for i in (
    ModelInfo("gcn", _B, P.GCNParams, "two-layer GCN (Kipf & Welling, 2017)"),
    ModelInfo("gat", _B, P.GATParams, "graph attention network (Velickovic et al., 2018)"),
    ModelInfo("sage", _B, P.SAGEParams, "two-layer GraphSAGE, full batch (Hamilton et al., 2017)"),
    ModelInfo("sgc", _B, P.SGCParams, "simplified graph convolution: a linear model on A^K X (Wu et al., 2019)",
              supports_steps=True, learns_inputs=False),
    ModelInfo("appnp", _B, P.APPNPParams, "MLP, then K steps of personalised PageRank (Klicpera et al., 2019)",
              supports_steps=True),
    ModelInfo("hopgcn", _B, P.HopGCNParams, "K-layer GCN between input and output layers (depth studies)",
              supports_steps=True),
    ModelInfo("gsm", "graphrec.models.gesm", P.GSMParams, "graph step mixture (Shin et al.)", supports_steps=True),
    ModelInfo("gesm", "graphrec.models.gesm", P.GESMParams,
              "graph entities with step mixture: entity attention + step mixture (Shin et al.)", supports_steps=True),
    ModelInfo("mf", "graphrec.models.mf", P.MFParams, "matrix factorisation, BPR-MF (Rendle et al., 2009)",
              task="rec", needs_graph=False),
    ModelInfo("lightgcn", "graphrec.models.lightgcn", P.LightGCNParams,
              "mean of K linear propagation layers of ID embeddings (He et al., 2020)", task="rec", supports_steps=True),
    ModelInfo("xsimgcl", "graphrec.models.xsimgcl", P.XSimGCLParams,
              "LightGCN with noise and cross-layer contrastive loss (Yu et al., 2023)", task="rec"),
    ModelInfo("hgcf", "graphrec.hyperbolic.hgcf", P.HGCFParams,
              "hyperbolic GCN: ID embeddings on the hyperboloid, skip-summed tangent aggregation (Sun et al., 2021)",
              task="rec", supports_steps=True, riemannian=True),
)}  # fmt: skip


def model_info(name: str) -> ModelInfo:
    """The index entry of ``name`` (case-insensitive).

    Raises:
        UnknownModelError: no such model (the message lists the known ones).
    """
    key = name.lower()
    if key not in INDEX:
        import difflib

        near = difflib.get_close_matches(key, list(INDEX), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise UnknownModelError(f"unknown model {name!r}{hint}; registered: {', '.join(sorted(INDEX))}")
    return INDEX[key]
