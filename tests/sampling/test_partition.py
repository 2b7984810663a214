import importlib.util
import sys

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import dijkstra
from torch_geometric.data import Data
from torch_geometric.utils import k_hop_subgraph, to_undirected

from graphrec.sampling import (
    CSRNeighborSampler,
    LocalGraph,
    local_graph,
    memory_per_rank,
    partition_graph,
    partition_report,
)


def _has_pymetis() -> bool:
    return importlib.util.find_spec("pymetis") is not None


METHODS = ["random", pytest.param("metis", marks=pytest.mark.skipif(not _has_pymetis(), reason="pymetis not installed"))]


def _bipartite(users=200, items=100, edges=1500, seed=0, both_ways=True):
    """Random user-item graph; users 0..users-1, items after them. Item popularity is skewed."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randint(0, users, (edges,), generator=g)
    i = (torch.rand(edges, generator=g) ** 2 * items).long() + users
    ei = torch.stack([u, i])
    if both_ways:
        ei = torch.cat([ei, ei.flip(0)], 1)
    return ei, users + items


def _grid(rows=15, cols=20):
    idx = torch.arange(rows * cols).view(rows, cols)
    right = torch.stack([idx[:, :-1].reshape(-1), idx[:, 1:].reshape(-1)])
    down = torch.stack([idx[:-1].reshape(-1), idx[1:].reshape(-1)])
    return torch.cat([right, down], 1), rows * cols  # one direction only


def _two_clusters(size=150, p=0.1, bridges=3, seed=0):
    rng = np.random.default_rng(seed)
    blocks = []
    for offset in (0, size):
        a = np.triu(rng.random((size, size)) < p, 1)
        r, c = np.nonzero(a)
        blocks.append(np.stack([r + offset, c + offset]))
    bridge = np.stack([rng.choice(size, bridges, replace=False), size + rng.choice(size, bridges, replace=False)])
    ei = torch.from_numpy(np.concatenate(blocks + [bridge], 1)).long()
    return to_undirected(ei), 2 * size, bridges


def _hop_reference(ei, num_nodes, sources):
    """Undirected hop distance from the nearest source (inf when unreachable), by scipy BFS."""
    a = sp.coo_matrix((np.ones(ei.size(1)), (ei[0].numpy(), ei[1].numpy())), shape=(num_nodes, num_nodes))
    if len(sources) == 0:
        return np.full(num_nodes, np.inf)
    return dijkstra(a.tocsr(), directed=False, indices=sources, unweighted=True, min_only=True)


def _cut(ei, parts):
    """Undirected cross-part edges, counted once, by brute force over Python tuples."""
    pairs = {tuple(sorted(e)) for e in ei.t().tolist() if e[0] != e[1]}
    return sum(int(parts[a] != parts[b]) for a, b in pairs)


# ------------------------------------------------------------------------------ partition_graph
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("balance", ["edges", "nodes"])
@pytest.mark.parametrize("graph", ["bipartite", "grid"])
def test_every_node_in_exactly_one_part(method, balance, graph):
    ei, n = _bipartite() if graph == "bipartite" else _grid()
    parts = partition_graph(ei, n, 4, method=method, balance=balance, seed=1)
    assert parts.shape == (n,) and parts.dtype == torch.long
    assert int(parts.min()) >= 0 and int(parts.max()) < 4
    counts = torch.bincount(parts, minlength=4)
    assert counts.sum() == n and bool((counts > 0).all())  # four non-empty parts
    assert torch.equal(partition_graph(ei, n, 1, method=method), torch.zeros(n, dtype=torch.long))


def test_random_balances_degree_sums_or_node_counts():
    ei, n = _bipartite(users=300, items=60, edges=3000)  # skewed item degrees
    deg = torch.bincount(to_undirected(ei)[0], minlength=n).double()
    for seed in range(3):
        parts = partition_graph(ei, n, 5, method="random", seed=seed, balance="edges")
        load = torch.bincount(parts, weights=deg, minlength=5)
        assert float(load.max() / load.mean()) < 1.1, load
        counts = torch.bincount(partition_graph(ei, n, 5, method="random", seed=seed, balance="nodes"), minlength=5)
        assert int(counts.max() - counts.min()) <= 1
    # node balance alone leaves the degree sums far less even on this skewed graph
    loads = [torch.bincount(partition_graph(ei, n, 5, method="random", seed=s, balance="nodes"), weights=deg, minlength=5)
             for s in range(3)]
    assert max(float(x.max() / x.mean()) for x in loads) > 1.1


def test_metis_finds_the_communities():
    pytest.importorskip("pymetis")
    ei, n, bridges = _two_clusters()
    metis = partition_graph(ei, n, 2, method="metis")
    rand = partition_graph(ei, n, 2, method="random")
    cut_metis, cut_rand = _cut(ei, metis), _cut(ei, rand)
    assert cut_metis <= bridges < cut_rand / 50
    # the two clusters land in different parts
    assert metis[: n // 2].unique().numel() == 1 and metis[n // 2:].unique().numel() == 1
    assert partition_report(ei, metis).total_edge_cut == cut_metis


def test_metis_takes_directed_edges_self_loops_and_repeats():
    pytest.importorskip("pymetis")
    ei, n = _grid()
    messy = torch.cat([ei, ei[:, :40], torch.arange(10).repeat(2, 1)], 1)  # one direction, repeats, loops
    a = partition_graph(messy, n, 3, method="metis", seed=2)
    b = partition_graph(to_undirected(ei), n, 3, method="metis", seed=2)
    assert torch.equal(a, b)
    assert partition_report(messy, a).total_edge_cut == _cut(ei, a)


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_partition(method):
    ei, n = _bipartite()
    a = partition_graph(ei, n, 4, method=method, seed=3)
    assert torch.equal(a, partition_graph(ei, n, 4, method=method, seed=3))
    if method == "random":
        assert not torch.equal(a, partition_graph(ei, n, 4, method=method, seed=4))


def test_bad_input_is_named():
    ei, n = _grid()
    with pytest.raises(ValueError, match="num_parts"):
        partition_graph(ei, n, 0, method="random")
    with pytest.raises(ValueError, match="num_parts"):
        partition_graph(ei, n, n + 1, method="random")
    bad = ei.clone()
    bad[1, 7] = n
    with pytest.raises(ValueError, match=rf"edge_index\[1, 7\] = {n} is outside"):
        partition_graph(bad, n, 2, method="random")
    bad[1, 7] = -1
    with pytest.raises(ValueError, match="outside"):
        local_graph(bad, n, torch.zeros(n, dtype=torch.long), 0)
    with pytest.raises(ValueError, match=r"\[2, E\]"):
        partition_graph(ei[:1], n, 2, method="random")
    with pytest.raises(TypeError, match="integer"):
        partition_graph(ei.float(), n, 2, method="random")
    with pytest.raises(ValueError, match="method"):
        partition_graph(ei, n, 2, method="spectral")
    with pytest.raises(ValueError, match="balance"):
        partition_graph(ei, n, 2, method="random", balance="degree")
    parts = torch.zeros(n, dtype=torch.long)
    with pytest.raises(ValueError, match="num_nodes"):
        local_graph(ei, n, parts[:-1], 0)
    with pytest.raises(ValueError, match="rank"):
        local_graph(ei, n, parts, -1)
    with pytest.raises(ValueError, match="num_hops"):
        local_graph(ei, n, parts, 0, num_hops=0)
    with pytest.raises(ValueError, match="negative"):
        partition_report(ei, parts - 1)


def test_missing_pymetis_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pymetis", None)  # import pymetis -> ImportError
    ei, n = _grid()
    with pytest.raises(ImportError, match=r"graphrec\[dist\]"):
        partition_graph(ei, n, 2, method="metis")
    assert partition_graph(ei, n, 2, method="random").numel() == n  # random needs no extra


# ------------------------------------------------------------------------------ local_graph
@pytest.mark.parametrize("num_hops", [1, 2, 3])
@pytest.mark.parametrize("graph", ["bipartite", "grid"])
def test_local_graph_matches_bfs_reference(num_hops, graph):
    ei, n = _bipartite(users=150, items=80, edges=300) if graph == "bipartite" else _grid()
    parts = partition_graph(ei, n, 3, method="random", seed=5)
    for rank in range(3):
        lg = local_graph(ei, n, parts, rank, num_hops)
        owned = torch.nonzero(parts == rank).view(-1)
        dist = _hop_reference(ei, n, owned.numpy())
        # owned first (ascending), then the halo ring by ring
        assert lg.num_owned == owned.numel() and torch.equal(lg.global_id[: lg.num_owned], owned)
        assert torch.equal(lg.owned_mask, torch.arange(lg.num_local) < owned.numel())
        held = np.nonzero(dist <= num_hops)[0]
        assert sorted(lg.global_id.tolist()) == held.tolist()
        halo = set(held.tolist()) - set(owned.tolist())
        assert set(lg.global_id[lg.num_owned:].tolist()) == halo and lg.num_halo == len(halo)
        local_dist = dist[lg.global_id.numpy()]
        assert np.all(np.diff(local_dist) >= 0)
        assert lg.num_per_hop == [int((dist == h).sum()) for h in range(num_hops + 1)]
        # edges: exactly those with an end within num_hops - 1 hops, relabelled
        inner = dist <= num_hops - 1
        want = np.nonzero(inner[ei[0].numpy()] | inner[ei[1].numpy()])[0]
        assert lg.edge_id.tolist() == want.tolist()
        assert torch.equal(lg.global_id[lg.edge_index], ei[:, lg.edge_id])
        assert torch.equal(lg.degree, torch.bincount(ei[1], minlength=n)[lg.global_id])


def test_k_hop_neighbourhood_of_owned_seeds_is_the_full_graphs():
    ei, n = _bipartite(users=200, items=100, edges=400, both_ways=False)  # directed: users -> items
    parts = partition_graph(ei, n, 4, method="random", seed=0)
    sym = to_undirected(ei, num_nodes=n)
    for k in (1, 2, 3):
        lg = local_graph(ei, n, parts, 2, k)
        seeds = lg.global_id[: lg.num_owned][::3]
        full_nodes, _, _, full_mask = k_hop_subgraph(seeds, k, sym, num_nodes=n)
        local_sym = to_undirected(lg.edge_index, num_nodes=lg.num_local)
        loc_nodes, _, _, loc_mask = k_hop_subgraph(lg.to_local(seeds), k, local_sym, num_nodes=lg.num_local)
        assert sorted(lg.global_id[loc_nodes].tolist()) == full_nodes.tolist()
        # the walks' edges: every edge with an end within k - 1 hops of the seeds, on both graphs
        inner_full = k_hop_subgraph(seeds, k - 1, sym, num_nodes=n)[0] if k > 1 else seeds
        inner_loc = lg.to_local(k_hop_subgraph(seeds, k - 1, sym, num_nodes=n)[0] if k > 1 else seeds)
        assert bool((inner_loc >= 0).all())
        e_full = torch.isin(ei, inner_full).any(0).nonzero().view(-1)
        e_loc = lg.edge_id[torch.isin(lg.edge_index, inner_loc).any(0)]
        assert torch.equal(e_full, e_loc.sort().values)


@pytest.mark.parametrize("fanout", [[-1, -1], [3, 2]])
def test_neighbour_sampler_sees_the_same_from_owned_seeds(fanout):
    ei, n = _bipartite(users=200, items=100, edges=1200)
    parts = partition_graph(ei, n, 4, method="random", seed=1)
    lg = local_graph(ei, n, parts, 0, num_hops=len(fanout))
    seeds = lg.global_id[: lg.num_owned][:20]
    full = CSRNeighborSampler(Data(edge_index=ei, num_nodes=n), fanout, seed=7).sample(seeds)
    loc = CSRNeighborSampler(Data(edge_index=lg.edge_index, num_nodes=lg.num_local), fanout, seed=7).sample(lg.to_local(seeds))
    # same draws: the kept in-edges of every node within K - 1 hops are the full lists, in order
    assert torch.equal(lg.global_id[loc.node], full.node)
    assert torch.equal(lg.edge_id[loc.edge], full.edge)
    if fanout == [-1, -1]:
        # too shallow a local graph misses part of the 2-hop neighbourhood: the test can fail
        shallow = local_graph(ei, n, parts, 0, num_hops=1)
        out = CSRNeighborSampler(Data(edge_index=shallow.edge_index, num_nodes=shallow.num_local), fanout).sample(
            shallow.to_local(seeds))
        assert out.node.numel() < full.node.numel()


def test_propagation_with_full_degree_matches_on_owned_nodes():
    """K steps of symmetric-normalised propagation (LightGCN's) agree on the owned rows."""
    ei, n = _grid()
    ei = to_undirected(ei)  # the outer ring of a grid region has neighbours outside it
    parts = partition_graph(ei, n, 3, method="metis" if _has_pymetis() else "random", seed=2)
    x = torch.randn(n, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    deg = torch.bincount(ei[1], minlength=n).clamp(min=1).double()

    def propagate(edge_index, h, d, steps):
        src, dst = edge_index
        w = (d[src] * d[dst]).rsqrt().view(-1, 1)
        for _ in range(steps):
            h = torch.zeros_like(h).index_add_(0, dst, h[src] * w)
        return h

    for k in (1, 2, 3):
        lg = local_graph(ei, n, parts, 1, k)
        want = propagate(ei, x, deg, k)[lg.global_id[: lg.num_owned]]
        got = propagate(lg.edge_index, x[lg.global_id], lg.degree.clamp(min=1).double(), k)[: lg.num_owned]
        assert torch.allclose(got, want)
        if k >= 2:  # the local degree is incomplete at the outer ring: using it gives other numbers
            local_deg = torch.bincount(lg.edge_index[1], minlength=lg.num_local).clamp(min=1).double()
            wrong = propagate(lg.edge_index, x[lg.global_id], local_deg, k)[: lg.num_owned]
            assert not torch.allclose(wrong, want)


def test_to_local():
    ei, n = _grid()
    parts = partition_graph(ei, n, 4, method="random", seed=0)
    lg = local_graph(ei, n, parts, 3, 2)
    assert torch.equal(lg.to_local(lg.global_id), torch.arange(lg.num_local))
    perm = torch.randperm(lg.num_local, generator=torch.Generator().manual_seed(0))
    assert torch.equal(lg.to_local(lg.global_id[perm]), perm)
    absent = torch.tensor(sorted(set(range(n)) - set(lg.global_id.tolist())))
    assert absent.numel() > 0 and bool((lg.to_local(absent) == -1).all())
    mixed = torch.stack([lg.global_id[:3], absent[:3]])  # shape kept
    assert torch.equal(lg.to_local(mixed), torch.tensor([[0, 1, 2], [-1, -1, -1]]))
    with pytest.raises(ValueError, match="outside"):
        lg.to_local(torch.tensor([n]))


def test_empty_part():
    # a star: the hub outweighs total / num_parts, so the random split leaves a part empty
    n = 40
    ei = to_undirected(torch.stack([torch.zeros(n - 1, dtype=torch.long), torch.arange(1, n)]))
    parts = partition_graph(ei, n, 8, method="random", seed=0)
    empty = [p for p in range(8) if not bool((parts == p).any())]
    assert empty
    lg = local_graph(ei, n, parts, empty[0], 2)
    assert isinstance(lg, LocalGraph) and lg.num_local == 0 and lg.num_edges == 0
    assert lg.to_local(torch.arange(n)).eq(-1).all()
    report = partition_report(ei, parts)
    assert report.owned[empty[0]] == 0 and torch.isnan(report.replication[empty[0]])


# ------------------------------------------------------------------------------ report, memory
@pytest.mark.parametrize("num_hops", [1, 2])
def test_partition_report_agrees_with_local_graphs(num_hops):
    ei, n = _bipartite(users=150, items=80, edges=400)
    parts = partition_graph(ei, n, 3, method="random", seed=4)
    r = partition_report(ei, parts, num_hops)
    graphs = [local_graph(ei, n, parts, p, num_hops) for p in range(3)]
    assert r.num_parts == 3 and r.owned.tolist() == [g.num_owned for g in graphs]
    assert r.halo.tolist() == [g.num_halo for g in graphs]
    assert r.local_edges.tolist() == [g.num_edges for g in graphs]
    assert torch.allclose(r.replication, torch.tensor([g.num_local / g.num_owned for g in graphs], dtype=torch.float64))
    assert r.balance == pytest.approx(max(g.num_edges for g in graphs) / np.mean([g.num_edges for g in graphs]))
    assert r.total_edge_cut == _cut(ei, parts) and int(r.edge_cut.sum()) == 2 * r.total_edge_cut
    assert r.num_edges == len({tuple(sorted(e)) for e in ei.t().tolist()})
    assert r.replication_factor == pytest.approx(sum(g.num_local for g in graphs) / n)
    assert len(r.rows()) == 3 and r.to_dict()["total_edge_cut"] == r.total_edge_cut


def test_memory_per_rank_terms():
    ei, n = _bipartite(users=300, items=100, edges=600)
    parts = partition_graph(ei, n, 4, method="random", seed=0)
    small, big = local_graph(ei, n, parts, 1, 1), local_graph(ei, n, parts, 1, 3)
    assert big.num_edges > small.num_edges
    m_small, m_big = (memory_per_rank(g, n, dim=32, optimizer_slots=2) for g in (small, big))
    for m, g in ((m_small, small), (m_big, big)):
        assert all(v > 0 for v in m.values())
        assert m["edge_index"] == 16 * g.num_edges and m["edge_id"] == 8 * g.num_edges
        assert m["global_id"] == 8 * g.num_local
        assert m["replicated"] == 4 * 32 * n * (1 + 2 + 1)
        assert m["total"] == m["per_rank"] + m["replicated"]
    assert m_big["edge_index"] / m_small["edge_index"] == pytest.approx(big.num_edges / small.num_edges)
    assert m_big["replicated"] == m_small["replicated"]  # the table does not shrink with the graph
    assert memory_per_rank(small, n, 32, optimizer_slots=0)["optimizer"] == 0
    with pytest.raises(ValueError, match="dim"):
        memory_per_rank(small, n, 0)
