import pytest
import torch

from graphrec.models import MODELS, build_model
from graphrec.nn import HopSampler, HopSampling


def test_sampler_reaches_every_k_and_never_exceeds_K():
    torch.manual_seed(0)
    s = HopSampler(8)
    draws = s.sample((5000,))
    assert draws.min() >= 1 and draws.max() <= 8
    assert set(draws.tolist()) == set(range(1, 9))
    counts = torch.bincount(draws, minlength=9)[1:].float() / 5000
    assert (counts - 1 / 8).abs().max() < 0.03  # uniform by default


def test_geometric_distribution_prefers_small_k():
    torch.manual_seed(0)
    draws = HopSampler(6, "geometric", decay=0.5).sample((4000,))
    counts = torch.bincount(draws, minlength=7)[1:]
    assert (counts[:-1] > counts[1:]).all()


def test_sampler_rejects_bad_ranges():
    with pytest.raises(ValueError):
        HopSampler(3, min_steps=4)
    with pytest.raises(ValueError):
        HopSampler(3, "zipf")


def graph():
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(25, 12, generator=g) < 0.3).float()
    ei = torch.randint(0, 25, (2, 80), generator=g)
    return x, ei


PROPAGATION_MODELS = sorted(n for n, s in MODELS.items() if s.supports_steps)


@pytest.mark.parametrize("name", PROPAGATION_MODELS)
@pytest.mark.parametrize("granularity", ["step", "node"])
def test_wrapper_trains_with_random_depth_and_evaluates_deterministically(name, granularity):
    torch.manual_seed(0)
    x, ei = graph()
    model = HopSampling(build_model(name, 12, 3, K=4), granularity=granularity)
    model.train()
    seen = set()
    for _ in range(60):
        model(x, ei).sum().backward()
        k = model.last_steps
        ks = [k] if isinstance(k, int) else k.tolist()
        assert all(1 <= v <= model.num_steps for v in ks)
        seen.update(ks)
    assert seen == set(range(1, model.num_steps + 1))
    model.eval()
    a, b = model(x, ei), model(x, ei)
    assert torch.equal(a, b)
    assert model.last_steps is None
    # Evaluation runs the full depth: same as the bare model in eval mode.
    assert torch.allclose(a, model.model(x, ei), atol=1e-6)


def test_truncated_depth_changes_output():
    torch.manual_seed(0)
    x, ei = graph()
    m = build_model("sgc", 12, 3, K=3).eval()
    assert not torch.allclose(m(x, ei, steps=1), m(x, ei))
    with pytest.raises(ValueError):
        m(x, ei, steps=4)


def test_wrapper_refuses_models_without_steps():
    with pytest.raises(TypeError, match="K-step contract"):
        HopSampling(build_model("gcn", 12, 3))
