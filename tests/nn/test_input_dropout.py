import pytest
import torch

from graphrec.nn import InputDropout


def sparse_features(n=200, f=100, density=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, f, generator=g) < density).float() * torch.rand(n, f, generator=g)


@pytest.mark.parametrize("sparse_output", [True, False])
def test_eval_mode_is_identity(sparse_output):
    x = sparse_features()
    d = InputDropout(0.5, sparse_output=sparse_output).eval()
    y = d(x)
    assert torch.equal(y.to_dense() if y.layout != torch.strided else y, x)


@pytest.mark.parametrize("sparse_output", [True, False])
def test_training_drops_nonzeros_with_rate_p_and_rescales(sparse_output):
    torch.manual_seed(0)
    x = sparse_features(400, 200)
    p = 0.3
    y = InputDropout(p, sparse_output=sparse_output).train()(x)
    y = y.to_dense() if y.layout != torch.strided else y
    nz = x != 0
    assert (y[~nz] == 0).all()  # zeros stay zeros
    kept = y[nz] != 0
    assert torch.allclose(y[nz][kept], x[nz][kept] / (1 - p))
    assert abs(1 - kept.float().mean().item() - p) < 0.03


def test_linear_on_sparse_output_matches_dense():
    x = sparse_features()
    lin = torch.nn.Linear(100, 7)
    y = lin(InputDropout(0.0).eval()(x))
    assert torch.allclose(y, lin(x), atol=1e-5)


def test_dense_input_falls_back_to_ordinary_dropout():
    x = torch.rand(50, 20) + 0.1  # fully dense
    y = InputDropout(0.5).train()(x)
    assert y.layout == torch.strided and ((y == 0) | torch.isclose(y, 2 * x)).all()


def test_rejects_bad_probability():
    with pytest.raises(ValueError):
        InputDropout(1.0)


def test_fast_dropout_rate_and_scale():
    from graphrec.nn.functional import dropout

    torch.manual_seed(0)
    x = torch.rand(400, 300) + 0.5
    y = dropout(x, 0.3, True)
    kept = y != 0
    assert abs(1 - kept.float().mean().item() - 0.3) < 0.01
    assert torch.allclose(y[kept], x[kept] / 0.7)
    assert dropout(x, 0.3, False) is x
