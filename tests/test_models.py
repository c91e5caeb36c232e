import pytest
import torch

from flatlab.models import MLP, ModularMLP, n_params


def test_mlp_shapes_and_parameter_count():
    m = MLP(40, [64, 32], 10)
    assert m(torch.zeros(5, 40)).shape == (5, 10)
    assert n_params(m) == 40 * 64 + 64 + 64 * 32 + 32 + 32 * 10 + 10
    assert len(m.linears) == 3


def test_mlp_seed_and_init_scale():
    a, b = MLP(4, [8], 2, seed=1), MLP(4, [8], 2, seed=1)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    c = MLP(4, [8], 2, seed=1, init_scale=0.1)
    assert all(torch.allclose(0.1 * p, q) for p, q in zip(a.parameters(), c.parameters()))


@pytest.mark.parametrize("act", ["relu", "tanh", "gelu", "softplus", "sigmoid", "linear"])
def test_activations(act):
    assert MLP(3, [4], 2, activation=act)(torch.randn(2, 3)).shape == (2, 2)


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="activation='swish'.*allowed"):
        MLP(3, [4], 2, activation="swish")
    with pytest.raises(ValueError, match="hidden"):
        MLP(3, [0], 2)
    with pytest.raises(ValueError, match="init_scale"):
        MLP(3, [4], 2, init_scale=-1.0)
    with pytest.raises(ValueError, match=r"shape \(batch, 3\)"):
        MLP(3, [4], 2)(torch.zeros(2, 5))


def test_modular_mlp():
    m = ModularMLP(p=7, embed_dim=4, hidden=8, seed=0)
    assert m(torch.tensor([[0, 6], [3, 3]])).shape == (2, 7)
    with pytest.raises(ValueError, match="residues in 0..6"):
        m(torch.tensor([[0, 7]]))
    with pytest.raises(ValueError, match="integer pairs"):
        m(torch.zeros(2, 2))


def test_rescaling_keeps_the_function_exactly():
    from flatlab.models import rescale_layers

    m = MLP(6, [16, 16], 3, seed=2)
    x = torch.randn(20, 6)
    for alpha in (0.1, 3.0, 25.0):
        for layer in (0, 1):
            r = rescale_layers(m, alpha, layer)
            torch.testing.assert_close(r(x), m(x), rtol=1e-5, atol=1e-5)
            assert torch.allclose(r.linears[layer].weight, alpha * m.linears[layer].weight)
    with pytest.raises(ValueError, match="activation='tanh' is not positively homogeneous"):
        rescale_layers(MLP(6, [16, 16], 3, activation="tanh"), 2.0)
    with pytest.raises(ValueError, match="alpha"):
        rescale_layers(m, -1.0)
    with pytest.raises(ValueError, match="layer=2"):
        rescale_layers(m, 2.0, layer=2)
