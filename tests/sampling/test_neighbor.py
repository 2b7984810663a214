import itertools
import math

import numpy as np
import pytest
import torch
from scipy.stats import chisquare
from torch_geometric.data import Data, HeteroData
from torch_geometric.sampler import NegativeSampling, NodeSamplerInput

from graphrec.sampling import (
    CSRNeighborSampler,
    link_loader,
    neighbor_sampler,
    node_loader,
    pyg_sampler_available,
    sample_k_of_d,
)


def _random_graph(n=200, e=2000, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Data(edge_index=torch.randint(0, n, (2, e), generator=g), num_nodes=n)


def _stars(copies: int, leaves: int) -> Data:
    """``copies`` disjoint stars: centre c * (leaves + 1), leaves pointing at it."""
    centres = torch.arange(copies) * (leaves + 1)
    src = (centres.view(-1, 1) + torch.arange(1, leaves + 1)).reshape(-1)
    dst = centres.repeat_interleave(leaves)
    return Data(edge_index=torch.stack([src, dst]), num_nodes=copies * (leaves + 1))


def test_output_layout_matches_pyg_contract():
    data = _random_graph()
    ei = data.edge_index
    s = CSRNeighborSampler(data, [4, 3], seed=0)
    seeds = torch.tensor([5, 17, 3, 99])
    out = s.sample(seeds)
    assert torch.equal(out.node[:4], seeds)  # seeds first, in order
    assert out.node.unique().numel() == out.node.numel()
    assert sum(out.num_sampled_nodes) == out.node.numel() and sum(out.num_sampled_edges) == out.row.numel()
    # every sampled edge is a real edge, and edge ids point at it (messages flow row -> col)
    assert torch.equal(ei[0, out.edge], out.node[out.row]) and torch.equal(ei[1, out.edge], out.node[out.col])
    assert out.edge.unique().numel() == out.edge.numel()  # without replacement
    # hop 1: each seed gets min(4, in-degree) incoming edges
    deg = torch.bincount(ei[1], minlength=200)
    hop1 = out.num_sampled_edges[0]
    cnt = torch.bincount(out.col[:hop1], minlength=4)[:4]
    assert torch.equal(cnt, deg[seeds].clamp(max=4))
    # hop 2 expands only the nodes discovered at hop 1
    hop2_dst = out.col[hop1:].unique()
    assert bool((hop2_dst >= 4).all() and (hop2_dst < 4 + out.num_sampled_nodes[1]).all())
    # the global -> local table is left clean for the next call
    assert bool((s._local == -1).all())


def test_take_all_and_replacement():
    data = _random_graph(50, 400)
    deg = torch.bincount(data.edge_index[1], minlength=50)
    out = CSRNeighborSampler(data, [-1]).sample(torch.arange(50))
    assert out.row.numel() == 400
    out = CSRNeighborSampler(data, [7], replace=True).sample(torch.arange(50))
    assert torch.equal(torch.bincount(out.col, minlength=50), (deg > 0).long() * 7)


def test_k_subsets_are_uniform_chi_square():
    """3 of 6 neighbours: the 20 subsets must be equally likely (PyG's distribution)."""
    copies, leaves, k = 4000, 6, 3
    data = _stars(copies, leaves)
    s = CSRNeighborSampler(data, [k], seed=1)
    counts = {c: 0 for c in itertools.combinations(range(1, leaves + 1), k)}
    for _ in range(3):  # 12k draws
        out = s.sample(torch.arange(copies) * (leaves + 1))
        centre = out.node[out.col]
        leaf = (out.node[out.row] - centre).view(copies, k).sort(1).values
        for row in leaf.tolist():
            counts[tuple(row)] += 1
    obs = np.array(list(counts.values()))
    assert chisquare(obs).pvalue > 1e-3, obs
    # the test has power: a cyclic-window sampler has exactly uniform marginals (each leaf 1/2)
    # but only 6 of the 20 subsets, and is rejected
    rng = np.random.default_rng(0)
    start = rng.integers(0, leaves, obs.sum())
    window = {c: 0 for c in counts}
    for st in start.tolist():
        window[tuple(sorted((st + j) % leaves + 1 for j in range(k)))] += 1
    assert chisquare(np.array(list(window.values()))).pvalue < 1e-6


def test_floyd_marginals_on_varied_degrees():
    g = torch.Generator().manual_seed(0)
    deg = torch.tensor([1, 3, 5, 10, 40] * 2000)
    rows, offs = sample_k_of_d(deg, 4, generator=g)
    assert torch.equal(torch.bincount(rows, minlength=deg.numel()), deg.clamp(max=4))
    assert bool((offs < deg[rows]).all())
    # distinct within a row
    key = rows * 100 + offs
    assert key.unique().numel() == key.numel()
    # each offset of a degree-40 row is taken with probability 4/40
    sel = deg[rows] == 40
    hist = torch.bincount(offs[sel], minlength=40).numpy()
    assert chisquare(hist).pvalue > 1e-3


def test_pyg_loaders_drive_the_sampler():
    data = _random_graph(120, 1500)
    data.x = torch.arange(120, dtype=torch.float).view(-1, 1)
    loader = node_loader(data, [5, 5], input_nodes=torch.arange(40), batch_size=16, shuffle=False)
    batches = list(loader)
    assert len(batches) == 3
    b = batches[0]
    assert b.batch_size == 16 and torch.equal(b.n_id[:16], torch.arange(16))
    assert torch.equal(b.x.view(-1).long(), b.n_id)  # features follow the sampled nodes
    assert torch.equal(data.edge_index[:, b.e_id], b.n_id[b.edge_index])
    # link loader with triplet negatives restricted by weight to nodes >= 60
    w = torch.zeros(120)
    w[60:] = 1
    ll = link_loader(data, [3], data.edge_index[:, :64], batch_size=32,
                     neg_sampling=NegativeSampling("triplet", amount=2, dst_weight=w))  # fmt: skip
    b = next(iter(ll))
    assert b.dst_neg_index.shape == (32, 2)
    assert bool((b.n_id[b.dst_neg_index] >= 60).all())
    assert torch.equal(b.n_id[b.src_index], data.edge_index[0, b.input_id])
    assert torch.equal(b.n_id[b.dst_pos_index], data.edge_index[1, b.input_id])


def test_sampler_choice_and_errors():
    data = _random_graph()
    s = neighbor_sampler(data, [2])
    assert isinstance(s, CSRNeighborSampler) != pyg_sampler_available()
    assert isinstance(neighbor_sampler(data, [2], prefer="torch"), CSRNeighborSampler)
    if not pyg_sampler_available():
        with pytest.raises(ImportError, match="pyg-lib or torch-sparse"):
            neighbor_sampler(data, [2], prefer="pyg")
    with pytest.raises(TypeError, match="homogeneous"):
        CSRNeighborSampler(HeteroData(), [2])
    with pytest.raises(ValueError, match="num_neighbors"):
        CSRNeighborSampler(data, [])
    with pytest.raises(NotImplementedError, match="temporal"):
        s = CSRNeighborSampler(data, [2])
        s.sample_from_nodes(NodeSamplerInput(None, torch.tensor([1]), time=torch.tensor([0])))
    assert math.isfinite(len(repr(s)))


@pytest.mark.skipif(not pyg_sampler_available(), reason="needs pyg-lib or torch-sparse")
def test_same_marginals_as_pyg_sampler():  # pragma: no cover - runs where PyG's sampler is installed
    data = _stars(3000, 6)
    seeds = torch.arange(3000) * 7
    ours = CSRNeighborSampler(data, [3]).sample(seeds)
    theirs = neighbor_sampler(data, [3], prefer="pyg")._sample(seeds)
    a = torch.bincount((ours.node[ours.row] % 7), minlength=7)[1:].numpy()
    b = torch.bincount((theirs.node[theirs.row] % 7), minlength=7)[1:].numpy()
    assert chisquare(a, b * a.sum() / b.sum()).pvalue > 1e-3


@pytest.mark.dgl
def test_same_subset_distribution_as_dgl():
    """Two-sample chi-square: our 2-of-5 subsets against DGL's sample_neighbors on the same graph."""
    from scipy.stats import chi2_contingency

    try:
        from graphrec.store import import_dgl

        dgl = import_dgl()
    except ImportError:
        pytest.skip("DGL is not installed")
    copies, leaves, k = 3000, 5, 2
    data = _stars(copies, leaves)
    seeds = torch.arange(copies) * (leaves + 1)
    keys = {c: i for i, c in enumerate(itertools.combinations(range(1, leaves + 1), k))}

    def tally(src: torch.Tensor, dst: torch.Tensor) -> np.ndarray:
        off = (src - dst).view(-1)
        order = torch.argsort(dst * 10 + off)
        pairs = off[order].view(-1, k).tolist()
        counts = np.zeros(len(keys))
        for p in pairs:
            counts[keys[tuple(p)]] += 1
        return counts

    ours = CSRNeighborSampler(data, [k], seed=0).sample(seeds)
    a = tally(ours.node[ours.row], ours.node[ours.col])
    g = dgl.graph((data.edge_index[0], data.edge_index[1]), num_nodes=data.num_nodes)
    sg = dgl.sampling.sample_neighbors(g, seeds, k)
    src, dst = sg.edges()
    b = tally(src, dst)
    assert a.sum() == b.sum() == copies
    assert chi2_contingency(np.stack([a, b])).pvalue > 1e-3
