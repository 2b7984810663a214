"""HyperbolicSpace against geoopt's manifolds and the closed forms, in float32 and float64, for several curvatures."""

import math

import geoopt
import pytest
import torch
import torch.nn.functional as F

from graphrec.hyperbolic import HyperbolicSpace, curvature_parameters, curvatures

pytestmark = pytest.mark.usefixtures("one_thread")

CURVATURES = [0.3, 1.0, 4.0]
DTYPES = [torch.float32, torch.float64]
CASES = [(kind, c, dtype) for kind in ("poincare", "lorentz") for c in CURVATURES for dtype in DTYPES]
IDS = [f"{k}-c{c}-{str(t).removeprefix('torch.')}" for k, c, t in CASES]


def _tol(dtype):
    # float64: a fixed curvature is held in a float32 buffer (c exact to ~1e-7 relative), which distances near the
    # ball's boundary amplify by up to ~10
    return {"rtol": 1e-4, "atol": 1e-4} if dtype == torch.float32 else {"rtol": 1e-5, "atol": 1e-6}


def _tangent(n, d, c, dtype, seed=0, radius=2.5):
    """Tangent vectors at the origin with distances from it up to ``radius`` (units of the radius of curvature)."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(n, d, generator=g, dtype=torch.float64)
    r = torch.rand(n, 1, generator=g, dtype=torch.float64) * radius + 0.05
    return (F.normalize(v, dim=-1) * r / math.sqrt(c)).to(dtype)


def _geoopt(kind, c, dtype):
    c = torch.tensor(c, dtype=torch.float64)
    m = geoopt.PoincareBall(c=c) if kind == "poincare" else geoopt.Lorentz(k=1.0 / c)
    return m.to(dtype)


def _minkowski(x, y):
    return (x * y).sum(-1) - 2 * x[..., 0] * y[..., 0]


@pytest.mark.parametrize("kind, c, dtype", CASES, ids=IDS)
def test_maps_and_points_agree_with_geoopt(kind, c, dtype):
    s = HyperbolicSpace(kind, c)
    v = _tangent(64, 5, c, dtype, radius=2.0)
    x = s.expmap0(v)
    assert x.dtype == dtype and x.shape == (64, s.point_dim(5)) == (64, 5 if kind == "poincare" else 6)
    m = _geoopt(kind, c, dtype)
    ref = m.expmap0(v) if kind == "poincare" else m.expmap0(F.pad(v, (1, 0)))
    assert torch.allclose(x, ref, **_tol(dtype))
    if kind == "poincare":
        assert bool((x.norm(dim=-1) < 1 / math.sqrt(c)).all())
    else:  # on the hyperboloid <x, x>_L = -1/c, upper sheet
        scale = x[:, 0] ** 2  # the quadratic form's terms are of this order
        assert torch.allclose(_minkowski(x, x) * c, torch.full_like(x[:, 0], -1.0), atol=1e-5 * float(scale.max().detach() * c))
        assert bool((x[:, 0] > 0).all())
    assert torch.allclose(s.logmap0(x), v, **_tol(dtype))  # the round trip
    back = m.logmap0(x) if kind == "poincare" else m.logmap0(x)[:, 1:]
    assert torch.allclose(s.logmap0(x), back, **_tol(dtype))


@pytest.mark.parametrize("kind, c, dtype", CASES, ids=IDS)
def test_distance_is_geoopts_and_the_closed_form(kind, c, dtype):
    s = HyperbolicSpace(kind, c)
    x, y = s.expmap0(_tangent(40, 4, c, dtype, 1)), s.expmap0(_tangent(40, 4, c, dtype, 2))
    d = s.dist(x, y)
    assert d.dtype == dtype and d.shape == (40,)
    xd, yd = x.double(), y.double()
    assert torch.allclose(d.double(), _geoopt(kind, c, torch.float64).dist(xd, yd), **_tol(dtype))
    if kind == "poincare":  # (1/sqrt c) arcosh(1 + 2c|x-y|^2 / ((1 - c|x|^2)(1 - c|y|^2)))
        arg = 1 + 2 * c * (xd - yd).pow(2).sum(-1) / ((1 - c * xd.pow(2).sum(-1)) * (1 - c * yd.pow(2).sum(-1)))
    else:  # (1/sqrt c) arcosh(-c <x, y>_L)
        arg = -c * _minkowski(xd, yd)
    closed = torch.arccosh(arg) / math.sqrt(c)
    assert torch.allclose(d.double(), closed, **_tol(dtype))
    assert torch.allclose(s.sqdist(x, y), d * d)
    assert torch.allclose(s.dist(y, x), d, **_tol(dtype))  # symmetric
    assert s.dist(x[:, None], y[None, :5]).shape == (40, 5)  # broadcasting


@pytest.mark.parametrize("kind, c, dtype", CASES, ids=IDS)
def test_distance_from_the_origin(kind, c, dtype):
    s = HyperbolicSpace(kind, c)
    v = _tangent(30, 3, c, dtype, 3, radius=2.5)
    o = s.origin(30, 3, like=v)
    assert o.shape == (30, s.point_dim(3)) and o.dtype == dtype
    assert torch.allclose(s.expmap0(torch.zeros_like(v)), o, atol=1e-7)
    factor = 2.0 if kind == "poincare" else 1.0  # the ball's conformal factor at the origin is 2
    tol = {"rtol": 1e-3, "atol": 1e-3} if dtype == torch.float32 else _tol(dtype)
    assert torch.allclose(s.dist(o, s.expmap0(v)), factor * v.norm(dim=-1), **tol)
    assert torch.allclose(s.dist(o, o), torch.zeros(30, dtype=dtype), atol=1e-3)
    far = s.dist(o[:1], s.expmap0(v[:1] / v[:1].norm() * 8 / math.sqrt(c))).detach()
    if kind == "poincare":
        # geoopt keeps ball points 4e-3 (float32) or 1e-5 (float64) inside the boundary: distances from the origin
        # stop at 2 artanh(1 - eps) / sqrt(c), about 6.2 and 12.2 radii of curvature
        eps = 4e-3 if dtype == torch.float32 else 1e-5
        assert float(far) == pytest.approx(2 * math.atanh(1 - eps) / math.sqrt(c), rel=1e-3)
    else:
        assert float(far) == pytest.approx(8 / math.sqrt(c), rel=1e-3)


@pytest.mark.parametrize("c", CURVATURES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_to_lorentz_and_to_poincare_are_isometries(c, dtype):
    ball, hyp = HyperbolicSpace("poincare", c), HyperbolicSpace("lorentz", c)
    x, y = ball.expmap0(_tangent(30, 4, c, dtype, 4, 1.5)), ball.expmap0(_tangent(30, 4, c, dtype, 5, 1.5))
    lx, ly = ball.to_lorentz(x), ball.to_lorentz(y)
    assert lx.shape == (30, 5)
    assert torch.allclose(c * _minkowski(lx, lx).double(), torch.full((30,), -1.0, dtype=torch.float64), atol=1e-4)
    assert torch.allclose(hyp.dist(lx, ly), ball.dist(x, y), **_tol(dtype))
    assert torch.allclose(hyp.to_poincare(lx), x, **_tol(dtype))  # the inverse of to_lorentz
    assert torch.equal(hyp.to_lorentz(lx), lx) and torch.equal(ball.to_poincare(x), x)  # pass through
    # the hyperboloid's own points land in the ball of radius 1/sqrt(c), distances kept
    p, q = hyp.expmap0(_tangent(30, 4, c, dtype, 6, 1.5)), hyp.expmap0(_tangent(30, 4, c, dtype, 7, 1.5))
    bp, bq = hyp.to_poincare(p), hyp.to_poincare(q)
    assert bool((bp.norm(dim=-1) < 1 / math.sqrt(c)).all())
    assert torch.allclose(ball.dist(bp, bq), hyp.dist(p, q), **_tol(dtype))


@pytest.mark.parametrize("kind, c, dtype", CASES, ids=IDS)
def test_proj_puts_points_back_on_the_space(kind, c, dtype):
    s = HyperbolicSpace(kind, c)
    x = s.expmap0(_tangent(20, 4, c, dtype, 8))
    g = torch.Generator().manual_seed(9)
    off = x + 0.3 / math.sqrt(c) * torch.randn(x.shape, generator=g, dtype=torch.float64).to(dtype)
    p = s.proj(off)
    if kind == "poincare":
        off = off * (2 / math.sqrt(c)) / off.norm(dim=-1, keepdim=True)  # outside the ball
        p = s.proj(off)
        assert bool((p.norm(dim=-1) < 1 / math.sqrt(c)).all())
    else:
        assert torch.allclose(c * _minkowski(p, p).double(), torch.full((20,), -1.0, dtype=torch.float64), atol=1e-4)
        assert torch.equal(p[:, 1:], off[:, 1:])  # the space coordinates are kept, the time coordinate solved for
    assert torch.allclose(s.proj(x), x, **_tol(dtype))  # points of the space stay where they are


@pytest.mark.parametrize("kind", ["poincare", "lorentz"])
def test_minkowski_form_ranks_as_the_distance(kind):
    s = HyperbolicSpace(kind, 2.0)
    q = s.expmap0(_tangent(6, 4, 2.0, torch.float64, 10))
    p = s.expmap0(_tangent(300, 4, 2.0, torch.float64, 11))
    a, b = s.minkowski_ranking_form(q, p)
    by_dist = torch.argsort(s.dist(q[:, None], p[None]), dim=1)
    by_ip = torch.argsort(a @ b.t(), dim=1, descending=True)
    assert torch.equal(by_dist, by_ip)


@pytest.mark.parametrize("kind", ["poincare", "lorentz"])
def test_a_learnable_curvature_moves_under_training_and_stays_in_its_range(kind):
    s = HyperbolicSpace(kind, 1.0, learnable=True, c_range=(0.2, 5.0))
    assert curvature_parameters(s) == [s.curvature_raw] and s.curvature_raw.is_curvature
    with pytest.raises(ValueError, match="fixed curvature"):
        s.geoopt_manifold()
    # fit c to distances measured in a space of curvature 3
    truth = HyperbolicSpace(kind, 3.0)
    u, w = _tangent(50, 3, 1.0, torch.float64, 12, 1.0), _tangent(50, 3, 1.0, torch.float64, 13, 1.0)
    target = truth.dist(truth.expmap0(u), truth.expmap0(w))
    opt = torch.optim.Adam(s.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        loss = (s.dist(s.expmap0(u), s.expmap0(w)) - target).pow(2).mean()
        loss.backward()
        opt.step()
    assert abs(float(s.c.detach()) - 3.0) < 0.1, float(s.c.detach())
    assert curvatures(s) == {"space": pytest.approx(float(s.c.detach()))}
    # pushed hard either way, it stays in c_range (and its gradient stays finite)
    for sign, bound in ((1.0, 5.0), (-1.0, 0.2)):
        s = HyperbolicSpace(kind, 1.0, learnable=True, c_range=(0.2, 5.0))
        opt = torch.optim.SGD(s.parameters(), lr=100.0)
        for _ in range(20):
            opt.zero_grad()
            (-sign * s.c * 1e3 + s.dist(s.expmap0(u), s.expmap0(w)).sum()).backward()
            assert torch.isfinite(s.curvature_raw.grad)
            opt.step()
        assert float(s.c.detach()) == pytest.approx(bound) and torch.isfinite(s.curvature_raw)


@pytest.mark.parametrize("kind", ["poincare", "lorentz"])
@pytest.mark.parametrize("learnable", [False, True])
def test_zero_vectors_and_coincident_points_give_finite_gradients(kind, learnable):
    s = HyperbolicSpace(kind, 1.5, learnable=learnable)
    v = torch.zeros(4, 3, requires_grad=True)
    w = torch.zeros(4, 3, requires_grad=True)
    x, y = s.expmap0(v), s.expmap0(w)
    (s.dist(x, y).sum() + s.sqdist(x, y).sum() + s.logmap0(x).sum() + s.dist(x, x.detach()).sum()).backward()
    for t in (v, w):
        assert bool(torch.isfinite(t.grad).all())
    if learnable:
        assert torch.isfinite(s.curvature_raw.grad)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown hyperbolic model 'klein'"):
        HyperbolicSpace("klein")
    with pytest.raises(ValueError, match="curvature must be positive"):
        HyperbolicSpace("lorentz", -1.0)
    with pytest.raises(ValueError, match="outside c_range"):
        HyperbolicSpace("lorentz", 50.0, learnable=True, c_range=(0.1, 10.0))
    with pytest.raises(ValueError, match="learnable must be true or false, got 'false'"):
        HyperbolicSpace("lorentz", 1.0, learnable="false")  # a quoted YAML value: truthy


@pytest.mark.parametrize("kind", ["lorentz", "poincare"])
@pytest.mark.parametrize("c", [0.5, 1.0, 4.0])
def test_the_ranking_form_keeps_float32_rankings_exact_near_the_origin(kind, c):
    """Near the origin the Minkowski product is -1/c plus a tiny term that float32 loses; the ranking form
    shifts it by a constant per query so that a float32 inner-product index still ranks as the float64 distance."""
    g = torch.Generator().manual_seed(0)
    space = HyperbolicSpace(kind, c).double()
    users = space.expmap0(torch.randn(50, 8, generator=g, dtype=torch.float64) * 1e-2)
    items = space.expmap0(torch.randn(400, 8, generator=g, dtype=torch.float64) * 1e-2)
    exact = (-space.dist(users.unsqueeze(1), items.unsqueeze(0))).topk(10, dim=1).indices
    q, p = space.minkowski_ranking_form(users, items)
    served = (q.float() @ p.float().t()).topk(10, dim=1).indices
    assert torch.equal(served, exact)
    mq, mp = space.minkowski_form(users, items)  # the plain products: equal up to a constant per query
    assert torch.allclose((q @ p.t()) - (mq @ mp.t()), ((q @ p.t()) - (mq @ mp.t()))[:, :1].expand(-1, 400), atol=1e-12)
