import json

import pytest
from artifact_helpers import contents, publish, read_tree
from typer.testing import CliRunner

from graphrec.artifacts import ArtifactRegistry
from graphrec.cli import app

runner = CliRunner()


def invoke(*args, env=None):
    return runner.invoke(app, ["artifacts", *map(str, args)], env=env)


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(autouse=True)
def _no_env_root(monkeypatch):
    monkeypatch.delenv("GRAPHREC_ARTIFACTS", raising=False)


@pytest.fixture
def root(tmp_path):
    reg = ArtifactRegistry(tmp_path / "reg", keep=None)
    publish(reg, "2026-11-23", date="2026-11-23", metrics={"ndcg@10": 0.2712345, "recall@10": 0.25})
    publish(reg, "2026-11-24", date="2026-11-24", metrics={"ndcg@10": 0.28})
    publish(reg, "2026-11-25", promote=False, date="2026-11-25")
    return reg.root


def test_root_is_required_and_must_exist(tmp_path):
    r = invoke("list")
    assert r.exit_code == 2 and "pass --root DIR or set $GRAPHREC_ARTIFACTS" in flat(r.output)
    r = invoke("list", "--root", tmp_path / "nope")
    assert r.exit_code == 1 and "error: no artifact registry at" in flat(r.output)


def test_list(root):
    r = invoke("list", "--root", root)
    assert r.exit_code == 0, r.output
    lines = {line.split()[0]: line for line in r.output.splitlines() if line.strip() and line.split()[0].isdigit()}
    assert set(lines) >= {"1", "2", "3"}
    # a narrow terminal may fold the labels over two lines
    assert "production" in lines["2"] and "rollback" in lines["1"]
    assert (
        "production" not in lines["3"]
        and "rollback" not in lines["3"]
        and "2026-11-25" in lines["3"]
    )
    assert "ndcg@10 0." in lines["1"] and "ndcg@10" not in lines["3"]
    r = invoke("list", env={"GRAPHREC_ARTIFACTS": str(root)})  # the root from the environment
    assert r.exit_code == 0 and "production" in r.output
    rows = json.loads(invoke("list", "--root", root, "--json").stdout)
    assert [(v["version"], v["is_production"], v["is_rollback_target"]) for v in rows] == [
        (1, False, True),
        (2, True, False),
        (3, False, False),
    ]
    assert rows[0]["meta"]["metrics"]["recall@10"] == 0.25 and "model.pt" in rows[0]["files"]


def test_show(root):
    doc = json.loads(invoke("show", "production", "--root", root, "--json").stdout)
    assert (
        doc["version"] == 2 and doc["is_production"] and doc["verified"] and doc["problems"] == []
    )
    assert doc["meta"]["date"] == "2026-11-24" and set(doc["files"]) == set(contents("x"))
    r = invoke("show", "3", "--root", root)
    assert r.exit_code == 0 and "version 3" in r.output and "every file matches" in r.output
    (root / "versions" / "000003" / "metrics.json").write_text("{}")
    r = invoke("show", "3", "--root", root)
    assert r.exit_code == 0 and "changed file metrics.json" in flat(r.output)
    r = invoke("show", "latest", "--root", root)
    assert r.exit_code == 2 and "must be a number or 'production'" in r.output
    r = invoke("show", "9", "--root", root)
    assert (
        r.exit_code == 1
        and "version 9 does not exist" in flat(r.output)
        and "versions: 1, 2, 3" in flat(r.output)
    )


def test_promote_rollback_history(root):
    r = invoke("promote", "3", "--root", root, "--reason", "manual check passed")
    assert r.exit_code == 0 and "production: version 3 (was 2)" in r.output
    assert ArtifactRegistry(root).production.version == 3
    assert "already production" in invoke("promote", "3", "--root", root).output
    r = invoke("promote", "8", "--root", root)
    assert r.exit_code == 1 and "version 8 does not exist" in flat(r.output)
    r = invoke("rollback", "--root", root, "-m", "bad")
    assert r.exit_code == 0 and "production is version 2 (was 3)" in r.output
    prod = ArtifactRegistry(root).production
    assert prod.version == 2 and read_tree(prod.path) == contents("2026-11-24")
    assert invoke("rollback", "--root", root).exit_code == 0
    r = invoke("rollback", "--root", root)
    assert r.exit_code == 1 and "nothing to roll back to" in flat(r.output)
    hist = json.loads(invoke("history", "--root", root, "--json").stdout)
    assert [(h["action"], h["version"], h["reason"]) for h in hist] == [
        ("promote", 1, ""),
        ("promote", 2, ""),
        ("promote", 3, "manual check passed"),
        ("rollback", 2, "bad"),
        ("rollback", 1, ""),
    ]
    assert "manual check passed" in invoke("history", "--root", root).output


def test_verify(root):
    r = invoke("verify", "--root", root)
    assert r.exit_code == 0 and "ok: 3 version(s) intact" in r.output
    (root / "versions" / "000001" / "model.pt").unlink()
    (root / "versions" / "000002" / "extra.txt").write_text("x")
    r = invoke("verify", "--root", root)
    assert r.exit_code == 1
    assert (
        "version 1: missing file model.pt" in r.output
        and "version 2: extra file extra.txt" in r.output
    )
    assert "error: 2 problem(s)" in flat(r.output)
    assert invoke("verify", "3", "--root", root).exit_code == 0
    assert invoke("verify", "1", "--root", root).exit_code == 1


def test_prune(root):
    publish(ArtifactRegistry(root, keep=None), "2026-11-26", promote=False)
    r = invoke("prune", "--keep", "1", "--root", root, "--json")
    assert r.exit_code == 0, r.output
    # 2 is production and 1 the rollback target: only 3 goes
    assert json.loads(r.stdout) == {"removed": [3], "kept": [1, 2, 4]}
    assert "nothing to remove" in invoke("prune", "--keep", "1", "--root", root).output
    assert invoke("prune", "--keep", "0", "--root", root).exit_code == 2
