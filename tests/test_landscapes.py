import numpy as np
import pytest
import torch

from flatlab import landscapes
from flatlab.train import trajectory


@pytest.fixture
def land():
    return landscapes.sharp_and_flat()


def test_minima_have_the_analytic_hessian(land):
    for basin in land.basins:
        w = torch.tensor(basin.centre, dtype=torch.float64)
        assert float(land.grad(w).norm()) < 1e-8
        h = land.hessian(basin.centre).numpy()
        np.testing.assert_allclose(h, np.array(basin.hessian), atol=1e-8)
        np.testing.assert_allclose(np.linalg.eigvalsh(h), basin.eigenvalues, atol=1e-8)


def test_grad_matches_autograd_everywhere(land):
    w = torch.randn(20, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2
    w.requires_grad_(True)
    auto = torch.autograd.grad(land(w).sum(), w)[0]
    torch.testing.assert_close(land.grad(w.detach()), auto)


@pytest.mark.parametrize("factor,expected", [(0.5, "sharp"), (0.95, "sharp"), (1.1, "flat"), (1.5, "flat")])
def test_gd_stability_threshold_is_two_over_lambda(land, factor, expected):
    sharp = land.basin("sharp")
    lr = factor * 2 / sharp.lambda_max
    for start in [(-0.9, 0.4), (-1.1, 0.6), (-1.0, 0.45)]:
        assert trajectory(land, start, lr=lr, steps=500).basin == expected


def test_above_flat_threshold_diverges(land):
    t = trajectory(land, (-0.9, 0.4), lr=1.05 * 2 / land.basin("flat").lambda_max, steps=500)
    assert t.diverged and t.diverged_step is not None and t.basin is None


def test_grid_and_which_basin(land):
    xs, ys, z = land.grid(n=11)
    assert z.shape == (11, 11) and np.isfinite(z).all()
    assert land.which_basin((1.5, -0.5)) == "flat"


def test_bad_landscape_input(land):
    with pytest.raises(ValueError, match="last dimension of size 2"):
        land(torch.zeros(3))
    with pytest.raises(ValueError, match="basin='deep'"):
        land.basin("deep")
    with pytest.raises(ValueError, match="sharpness"):
        landscapes.sharp_and_flat(sharpness=1.0)
    with pytest.raises(ValueError, match="lr"):
        trajectory(land, (0, 0), lr=-0.1)
    with pytest.raises(ValueError, match="start"):
        trajectory(land, (0, 0, 0), lr=0.1)


def test_momentum_threshold_heavy_ball():
    valley = landscapes.Landscape([landscapes.Basin("q", (0.0, 0.0), ((4.0, 0.0), (0.0, 1.0)))])
    beta = 0.5
    threshold = (2 + 2 * beta) / 4.0  # heavy ball on a quadratic: stable iff η < (2+2β)/λ
    assert not trajectory(valley, (0.1, 0.1), lr=0.97 * threshold, steps=2000, momentum=beta).diverged
    assert trajectory(valley, (0.1, 0.1), lr=1.03 * threshold, steps=2000, momentum=beta, bound=10).diverged


def test_value_and_grad_matches_the_loss_and_autograd():
    import torch

    from flatlab.landscapes import sharp_and_flat

    land = sharp_and_flat()
    w = torch.tensor([[-0.9, 0.4], [1.2, -0.3]], dtype=torch.float64, requires_grad=True)
    value, grad = land.value_and_grad(w.detach())
    land(w).sum().backward()
    assert torch.allclose(value, land(w.detach())) and torch.allclose(grad, w.grad)
    assert torch.equal(land.grad(w.detach()), grad)


def test_one_point_value_and_grad_is_the_batched_one_to_rounding():
    """A 2-D runner's single point goes through NumPy (point_value_and_grad): it must be the torch batch's result."""
    import numpy as np
    import torch

    from flatlab.landscapes import sharp_and_flat

    land = sharp_and_flat(temperature=0.01)  # a low temperature: the softmax weights saturate, log-sum-exp must not
    pts = torch.tensor(np.random.default_rng(0).uniform(-40, 40, (300, 2)), dtype=torch.float64)
    values, grads = land.value_and_grad(pts)
    for w, v, g in zip(pts, values, grads):
        v1, g1 = land.value_and_grad(w.clone())
        assert torch.isfinite(v1) and abs(float(v1 - v)) <= 1e-12 * (1 + abs(float(v)))
        assert torch.allclose(g1, g, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("momentum,noise", [(0.0, 0.0), (0.6, 0.0), (0.3, 0.5)])
def test_trajectory_is_heavy_ball_through_the_optimizer_runner_bit_for_bit(land, momentum, noise):
    import torch
    from torch import nn

    from flatlab.train.trajectories import HeavyBall, optimizer_trajectory

    for lr, start in ((0.09, (-0.9, 0.4)), (0.11, (-0.95, 0.5)), (4.5, (2.0, 1.0))):
        fast = trajectory(land, start, lr=lr, steps=300, momentum=momentum, noise=noise, seed=3)
        w = nn.Parameter(torch.tensor(start, dtype=torch.float64))
        ref = optimizer_trajectory(land, w, HeavyBall([w], lr, momentum), 300, lr, momentum, noise=noise,
                                   generator=torch.Generator().manual_seed(3))
        assert np.array_equal(fast.points, ref.points) and np.array_equal(fast.losses, ref.losses)
        assert (fast.diverged, fast.diverged_step, fast.basin) == (ref.diverged, ref.diverged_step, ref.basin)


def test_a_diverging_point_gives_inf_or_nan_not_an_error(land):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grad = land.point_value_and_grad(np.array([1e200, -1e200]))
        assert not np.isfinite(grad).all() or not np.isfinite(value)
        t = trajectory(land, (2.0, 1.0), lr=10.0, steps=500, bound=1e308, momentum=0.5)
    assert t.diverged and t.basin is None and np.isfinite(t.points).all()
