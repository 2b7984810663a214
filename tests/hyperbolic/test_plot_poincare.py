"""``graphrec plot poincare`` and :func:`graphrec.plots.plot_poincare`: hyperbolic models on the Poincaré disk."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.hyperbolic.multi import MultiManifoldScore, disk_panels
from graphrec.nn.score import build_scorer
from graphrec.plots import plot_poincare

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"


def _model_dir(tmp_path, dim=2, score="multi_manifold", params=None):
    from graphrec.models import BipartiteRecommender, build_model
    from graphrec.serving import export_model

    from fixtures import planted

    data = planted(num_users=40, num_items=30, per_user=8).split(seed=0)
    scorer = build_scorer(score, params if params is not None else {"num_manifolds": 3})
    torch.manual_seed(0)
    model = BipartiteRecommender(data.num_users, data.num_items, build_model("mf", dim, dim), dim, needs_graph=False,
                                 scorer=scorer)  # fmt: skip
    if isinstance(scorer, MultiManifoldScore):
        scorer.fit_origins(model.embeddings(data.graph)[0])
    return export_model(model, data, tmp_path / f"{score}-{dim}d", config={"model": {"name": "mf"}})


def test_plot_poincare_writes_a_png_and_checks_shapes(tmp_path):
    rng = np.random.default_rng(0)
    M, U, N = 3, 50, 80
    users, items = rng.uniform(-0.7, 0.7, (M, U, 2)), rng.uniform(-0.7, 0.7, (M, N, 2))
    origins = rng.uniform(-0.5, 0.5, (M, M, 2))
    origins[np.arange(M), np.arange(M)] = 0
    out = plot_poincare(users, items, origins, rng.integers(0, M, U), [0.5, 1.0, 2.0], tmp_path / "p.png",
                        weights=[0.2, 0.3, 0.5], target="ad")  # fmt: skip
    assert out.read_bytes()[:8] == PNG and out.stat().st_size > 20_000
    with pytest.raises(ValueError, match=r"origins \[M, M, 2\]"):
        plot_poincare(users, items, origins[:2], np.zeros(U, int), [1.0, 1.0, 1.0], tmp_path / "bad.png")


def test_disk_coordinates_centre_each_manifold_on_its_origin():
    g = torch.Generator().manual_seed(1)
    users, items = torch.randn(60, 2, generator=g), 3 * torch.randn(90, 2, generator=g)
    s = MultiManifoldScore(num_manifolds=3, curvature=2.0)
    s.fit_origins(users)
    p = s.disk_coordinates(users, items)
    assert p["users"].shape == (3, 60, 2) and p["items"].shape == (3, 90, 2) and p["origins"].shape == (3, 3, 2)
    np.testing.assert_allclose(p["origins"][np.arange(3), np.arange(3)], 0.0, atol=1e-12)
    for key in ("users", "items", "origins"):
        assert (np.linalg.norm(p[key], axis=-1) < 1).all()  # scaled by sqrt(c) into the unit disk
    nearest = torch.cdist(users.double(), s.origins.double()).argmin(1).numpy()
    assert (p["clusters"] == nearest).all() and np.allclose(p["curvatures"], 2.0)
    single = disk_panels(build_scorer("hyperbolic", {"curvature": 0.5}), users, items)  # one panel, no weights
    assert single["users"].shape == (1, 60, 2) and single["weights"] is None
    assert (np.linalg.norm(single["items"], axis=-1) < 1).all()
    with pytest.raises(ValueError, match="2-D"):
        s.disk_coordinates(torch.zeros(5, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="not hyperbolic"):
        disk_panels(build_scorer("dot"), users, items)


def test_cli_draws_a_two_dimensional_model(tmp_path):
    path = _model_dir(tmp_path)
    res = runner.invoke(app, ["plot", "poincare", str(path), "--out", str(tmp_path / "disk.png")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "disk.png").read_bytes()[:8] == PNG
    single = _model_dir(tmp_path, score="hyperbolic", params={"curvature": 1.0})
    res = runner.invoke(app, ["plot", "poincare", str(single), "--out", str(tmp_path / "one.png"), "--max-points", "10"])
    assert res.exit_code == 0, res.output


def test_cli_rejects_models_it_cannot_draw(tmp_path):
    wide = _model_dir(tmp_path, dim=4)
    res = runner.invoke(app, ["plot", "poincare", str(wide), "--out", str(tmp_path / "x.png")])
    assert res.exit_code == 2 and "4-dimensional" in res.output and "train.embedding_dim=2" in res.output
    euclid = _model_dir(tmp_path, score="dot", params={})
    res = runner.invoke(app, ["plot", "poincare", str(euclid), "--out", str(tmp_path / "x.png")])
    assert res.exit_code == 2 and "not a hyperbolic scorer" in " ".join(res.output.split())
    res = runner.invoke(app, ["plot", "poincare", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.png")])
    assert res.exit_code == 2 and "nowhere does not exist" in " ".join(res.output.split())
    assert not (tmp_path / "x.png").exists()


def test_panels_zoom_in_on_points_near_the_centre():
    from graphrec.plots import disk_window

    rng = np.random.default_rng(0)
    spread = rng.uniform(-0.6, 0.6, size=(200, 2))
    assert disk_window(spread) == 1.06  # points out to the disk's middle: the whole disk
    near = spread * 0.01  # a barely trained model
    half = disk_window(near)
    radii = np.linalg.norm(near, axis=1)
    assert np.quantile(radii, 0.99) < half < 0.02 and half == pytest.approx(1.15 * np.quantile(radii, 0.99))
