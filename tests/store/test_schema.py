import datetime as dt

import pytest

from graphrec.store import GraphStore, LogSchema, SchemaError
from graphrec.store.schema import NodeAttributes


def test_roundtrip_yaml_json_and_hash(tmp_path):
    s = LogSchema(
        context={"device": "string", "position": "int"},
        attributes={"item": NodeAttributes(id_column="item_id", columns={"title": "text", "price": "numeric"})},
    )
    for name in ("s.yaml", "s.json"):
        s.save(tmp_path / name)
        loaded = LogSchema.load(tmp_path / name)
        assert loaded == s
        assert loaded.hash() == s.hash()
    assert s.hash().startswith("sha256:")
    assert LogSchema(version=2).hash() != LogSchema().hash()


def test_defaults_are_documented_types():
    s = LogSchema()
    assert s.node_types == ["user", "item", "ad"]
    assert {"view", "click", "purchase", "rating", "impression", "conversion"} <= set(s.event_types)
    assert s.min_timestamp.tzinfo is not None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"target_types": ["user"]}, "acting node type"),
        ({"target_types": []}, "must not be empty"),
        ({"event_types": ["Click"]}, "not a valid name"),
        ({"event_types": ["click", "click"]}, "duplicates"),
        ({"context": {"user_id": "string"}}, "reserved"),
        ({"attributes": {"shop": {"columns": {}}}}, "unknown node type"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"min_timestamp": dt.datetime(2030, 1, 1), "max_timestamp": dt.datetime(2020, 1, 1)}, "before"),
    ],
)
def test_invalid_schemas_name_the_problem(kwargs, message):
    with pytest.raises(SchemaError, match=message):
        LogSchema.from_dict(kwargs)


def test_bad_schema_file(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("- just\n- a list\n")
    with pytest.raises(SchemaError, match="mapping"):
        LogSchema.load(p)
    p.write_text("target_types: [item]\nunknown_key: 1\n")
    with pytest.raises(SchemaError, match="unknown_key"):
        LogSchema.load(p)


def test_evolve_schema_is_additive_only(tmp_path):
    store = GraphStore.init(tmp_path / "st", LogSchema())
    wider = LogSchema(event_types=[*LogSchema().event_types, "share"])
    m = store.evolve_schema(wider)
    assert m.version == 1 and store.schema().hash() == wider.hash()
    assert store.schema(0).hash() == LogSchema().hash()
    with pytest.raises(SchemaError, match="removed"):
        store.evolve_schema(LogSchema(event_types=["view"]))
    with pytest.raises(SchemaError, match="id_type"):
        store.evolve_schema(LogSchema(id_type="int", event_types=wider.event_types))
