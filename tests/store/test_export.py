import pytest
import torch
from store_helpers import events_frame

from graphrec.store import LogSchema, build, ingest, to_networkx
from graphrec.store.dgl_compat import dgl_available, import_dgl


@pytest.fixture
def data(tmp_path):
    ingest(tmp_path / "st", [("e", events_frame(30))], schema=LogSchema(), echo=False)
    return build(tmp_path / "st")


def test_to_networkx(data):
    g = to_networkx(data)
    assert g.number_of_nodes() == sum(data[nt].num_nodes for nt in data.node_types)
    assert g.number_of_edges() == 30
    (u, t, key, attrs), *_ = g.edges(keys=True, data=True)
    assert u[0] == "user" and key == attrs["relation"] and {"edge_time", "edge_weight"} <= set(attrs)
    assert to_networkx(data, reverse=True).number_of_edges() == 60
    assert g.nodes[("user", 0)]["type"] == "user"


@pytest.mark.dgl
def test_to_dgl(data):
    if not dgl_available():
        pytest.skip("DGL is not installed (optional extra graphrec[dgl])")
    from graphrec.store import to_dgl

    g = to_dgl(data)
    assert set(g.canonical_etypes) == set(data.edge_types)
    for nt in data.node_types:
        assert g.num_nodes(nt) == data[nt].num_nodes
    for et in data.edge_types:
        src, dst = g.edges(etype=et)
        assert torch.equal(src, data[et].edge_index[0]) and torch.equal(dst, data[et].edge_index[1])
        assert torch.equal(g.edges[et].data["edge_time"], data[et].edge_time)
    assert len(to_dgl(data, reverse=False).canonical_etypes) == len(data.edge_types) // 2
    dgl = import_dgl()
    with pytest.raises(AttributeError, match="graphbolt"):
        dgl.graphbolt.ItemSampler  # noqa: B018


def test_import_dgl_names_the_extra(monkeypatch):
    import graphrec.store.dgl_compat as compat

    monkeypatch.setattr(compat, "dgl_available", lambda: False)
    monkeypatch.delitem(__import__("sys").modules, "dgl", raising=False)
    with pytest.raises(ImportError, match=r"graphrec\[dgl\]"):
        compat.import_dgl()
