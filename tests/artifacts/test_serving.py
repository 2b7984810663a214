import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from graphrec.artifacts import ArtifactNotFoundError, ArtifactRegistry
from graphrec.cli import app
from graphrec.serving import (
    Recommender,
    export_embeddings,
    load_recommender,
    recommend,
    resolve_model_dir,
)

runner = CliRunner()
USERS, ITEMS = 20, 50


def _model(seed: int):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(USERS, 8)), rng.normal(size=(ITEMS, 8))


def _publish(reg: ArtifactRegistry, seed: int, **kwargs):
    """An export folder plus the extras a pipeline adds, published as one version."""
    U, V = _model(seed)
    folder = reg.staging_dir(f"model{seed}")
    export_embeddings(
        folder,
        U,
        V,
        user_ids=list(range(USERS)),
        item_ids=[f"i{i}" for i in range(ITEMS)],
        card={"model": "test", "seed": seed},
    )
    (folder / "metrics.json").write_text(json.dumps({"ndcg@10": 0.1 * seed}))
    (folder / "config.yaml").write_text(f"seed: {seed}\n")
    (folder / "MODEL_CARD.md").write_text(f"# model {seed}\n")
    return reg.publish(folder, {"seed": seed}, **kwargs)


def _best(seed: int, user: int, k: int = 5) -> list[str]:
    U, V = _model(seed)
    return [f"i{i}" for i in np.argsort(-(U[user] @ V.T), kind="stable")[:k]]


def test_load_recommender_serves_the_production_version(tmp_path):
    reg = ArtifactRegistry(tmp_path / "reg")
    v1 = _publish(reg, 1)
    assert {"manifest.json", "metrics.json", "config.yaml", "MODEL_CARD.md", "card.json"} <= {
        p.name for p in v1.path.iterdir()
    }
    assert reg.verify() == []
    rec = load_recommender(reg.root)
    assert rec.path == v1.path.resolve() and rec.card["seed"] == 1
    assert [r.item for r in recommend(reg.root, 3, 5)] == _best(1, 3)
    # the version folder itself loads too
    assert [r.item for r in Recommender(v1.path).recommend(3, 5)] == _best(1, 3)

    _publish(reg, 2, promote=False)
    assert load_recommender(reg.root) is rec  # unchanged production: the cached recommender
    reg.promote(2)
    assert load_recommender(reg.root).card["seed"] == 2
    assert [r.item for r in recommend(reg.root, 3, 5)] == _best(2, 3)
    reg.rollback()
    assert [r.item for r in recommend(str(reg.root), 3, 5)] == _best(1, 3)


def test_resolve_model_dir(tmp_path):
    plain = export_embeddings(tmp_path / "plain", *_model(0))
    assert resolve_model_dir(plain) == plain
    assert resolve_model_dir(tmp_path / "nope") == tmp_path / "nope"
    reg = ArtifactRegistry(tmp_path / "reg")
    v = _publish(reg, 1, promote=False)
    with pytest.raises(ArtifactNotFoundError, match="has no production version"):
        resolve_model_dir(reg.root)
    reg.promote(1)
    assert resolve_model_dir(reg.root) == v.path


def test_recommend_cli_on_a_registry(tmp_path):
    reg = ArtifactRegistry(tmp_path / "reg")
    _publish(reg, 1, promote=False)
    res = runner.invoke(app, ["recommend", "--model", str(reg.root), "--user", "4", "--json"])
    assert res.exit_code == 1 and "has no production version" in " ".join(res.output.split())
    reg.promote(1)
    res = runner.invoke(
        app, ["recommend", "--model", str(reg.root), "--user", "4", "-k", "5", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert [r["item"] for r in json.loads(res.stdout)] == _best(1, 4)


def test_serving_a_registry_does_not_import_torch(tmp_path):
    reg = ArtifactRegistry(tmp_path / "reg")
    _publish(reg, 1)
    code = (
        "import sys; from graphrec.serving import recommend; "
        f"print(recommend({str(reg.root)!r}, 2, 3)[0].item, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [_best(1, 2, 1)[0], "False"]


def test_published_export_is_an_ordinary_folder(tmp_path):
    reg = ArtifactRegistry(tmp_path / "reg")
    v = _publish(reg, 1)
    mode = v.path.stat().st_mode & 0o777
    assert mode == (tmp_path / "reg" / "versions").stat().st_mode & 0o777  # not mkdtemp's 0700
