"""flatlab.implicit.separable against exact references: a hand-solved ℓ1 max margin, the LP's optimality, autograd,
the conjugate-gradient natural gradient on jvp/vjp, sklearn's SVM direction, and the invariance of natural gradient."""
import math

import numpy as np
import pytest
import torch

from flatlab import implicit as I

D = torch.float64


@pytest.fixture(scope="module")
def small():
    return I.sparse_classification(n_train=20, n_test=400, dim=40, k=2, seed=0)


@pytest.fixture(scope="module")
def comparison(small):
    return I.separable_comparison(small, runs=[(1, "gd"), (2, "gd"), (2, "ngd"), (3, "ngd")], target_log10_loss=-20)


def test_sparse_classification_is_seeded_sparse_and_separable():
    a, b = I.sparse_classification(seed=3), I.sparse_classification(seed=3)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, I.sparse_classification(seed=4).x_train)
    w = a.meta["w_star"]
    assert int((w != 0).sum()) == 2 and float(w.norm()) == pytest.approx(1.0)
    assert I.classification_error(w, a.x_train, a.y_train) == 0 and I.classification_error(w, a.x_test, a.y_test) == 0


def test_l1_max_margin_on_hand_instance():
    # min ‖w‖₁ s.t. 2w₁ ≥ 1, w₁ + 3w₂ ≥ 1: w = (1/2, 1/6), ℓ1 margin 1/‖w‖₁ = 3/2
    w = I.l1_max_margin(torch.tensor([[2.0, 0.0], [1.0, 3.0]]), torch.tensor([1.0, 1.0]))
    assert torch.allclose(w, torch.tensor([0.5, 1 / 6], dtype=D) / math.hypot(0.5, 1 / 6), atol=1e-9)


def test_l1_max_margin_beats_every_other_direction(small):
    x, y = small.x_train.double(), small.y_train.double()
    w = I.l1_max_margin(x, y)
    best = float(((x @ w) * y).min() / w.abs().sum())
    g = torch.Generator().manual_seed(0)
    for _ in range(200):  # random perturbations of the optimum never have a larger ℓ1-normalized margin
        c = w + 0.05 * torch.randn(w.shape, generator=g, dtype=D)
        assert float(((x @ c) * y).min() / c.abs().sum()) <= best + 1e-12
    svm = I.svm_direction(*I.mirrored(x, y)).w
    assert float(((x @ svm) * y).min() / svm.abs().sum()) < best


def test_l1_max_margin_refuses_non_separable_data():
    with pytest.raises(ValueError, match="separable"):
        I.l1_max_margin(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([1.0, -1.0]))


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_gd_direction_is_the_autograd_gradient(small, depth):
    x, y = small.x_train.double(), small.y_train.double()
    g = torch.Generator().manual_seed(depth)
    u = (0.5 + torch.rand(x.shape[1], generator=g, dtype=D)).requires_grad_()
    v = (0.5 + torch.rand(x.shape[1], generator=g, dtype=D)).requires_grad_()
    loss = torch.nn.functional.softplus(-(x @ I.diagonal_weight(u, v, depth)) * y).mean()
    gu, gv = torch.autograd.grad(loss, (u, v))
    # the module's GD direction: ∂w/∂u ⊙ ∇_w L and ∂w/∂v ⊙ ∇_w L, with ∇_w L from the margins
    m = (x @ I.diagonal_weight(u, v, depth).detach()) * y
    grad_w = -(x.T @ (y * torch.sigmoid(-m))) / len(y)
    du, dv = (depth * u.detach() ** (depth - 1) * grad_w, -depth * v.detach() ** (depth - 1) * grad_w)
    assert torch.allclose(du, gu) and torch.allclose(dv, gv)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_closed_form_natural_gradient_equals_conjugate_gradients_on_jvp(depth):
    g = torch.Generator().manual_seed(depth)
    u, v = 0.2 + torch.rand(6, generator=g, dtype=D), 0.2 + torch.rand(6, generator=g, dtype=D)
    grad_w = torch.randn(6, generator=g, dtype=D)
    damping = 1e-3
    du, dv = I.natural_gradient_diagonal(u, v, grad_w, depth, damping)
    theta = torch.cat([u, v])
    jac = torch.cat([torch.diag(depth * u ** (depth - 1)), -torch.diag(depth * v ** (depth - 1))], 1)  # ∂w/∂θ
    lam = damping * float(((depth * u ** (depth - 1)) ** 2 + (depth * v ** (depth - 1)) ** 2).max())
    cg = I.natural_gradient(lambda t: I.diagonal_weight(t[:6], t[6:], depth), theta, jac.T @ grad_w, damping=lam)
    dense = torch.linalg.solve(jac.T @ jac + lam * torch.eye(12, dtype=D), jac.T @ grad_w)
    assert torch.allclose(torch.cat([du, dv]), dense, atol=1e-10) and torch.allclose(cg, dense, atol=1e-8)
    # the step it makes in w is depth-1 GD's, ∇_w L, shrunk per coordinate by ‖g_i‖²/(‖g_i‖² + λ) — exactly ∇_w L undamped
    sq = (depth * u ** (depth - 1)) ** 2 + (depth * v ** (depth - 1)) ** 2
    assert torch.allclose(jac @ dense, grad_w * sq / (sq + lam), atol=1e-12)
    du0, dv0 = I.natural_gradient_diagonal(u, v, grad_w, depth, 0.0)
    assert torch.allclose(jac @ torch.cat([du0, dv0]), grad_w, atol=1e-12)


def test_training_lands_on_the_target_loss(small):
    h = I.train_separable(small.x_train, small.y_train, depth=2, target_log10_loss=-12)
    assert h.stopped_early and h.final.log10_loss == pytest.approx(-12, abs=1e-9)
    assert h.final.log10_loss <= -12 and h.final.margin > 0
    short = I.train_separable(small.x_train, small.y_train, depth=2, target_log10_loss=-12, max_steps=3)
    assert not short.stopped_early and short.final.log10_loss > -12


def test_depth_one_gd_converges_to_the_svm_and_depth_two_towards_l1(comparison):
    gd1, gd2 = comparison.run(1, "gd"), comparison.run(2, "gd")
    assert gd1.cos_l2 > 0.999
    assert gd2.cos_l1 > 0.9 and gd2.cos_l1 > gd1.cos_l1 + 0.1 and gd2.cos_l2 < 0.9
    assert gd2.l1_over_l2 < gd1.l1_over_l2  # sparser
    assert (comparison.table.log10_loss - (-20)).abs().max() < 1e-9  # compared at equal training loss


def test_natural_gradient_is_invariant_to_depth(comparison):
    ref = comparison.directions[(1, "gd")]
    for depth in (2, 3):
        assert 1 - float(comparison.directions[(depth, "ngd")] @ ref) < 1e-3
    # …while GD's direction does depend on depth (the test can fail: GD is not invariant)
    assert 1 - float(comparison.directions[(2, "gd")] @ ref) > 0.05


def test_natural_gradient_trajectories_agree_between_depths(small):
    recs = {d: I.train_separable(small.x_train, small.y_train, depth=d, method="ngd", target_log10_loss=-4,
                                 kappa=0.01, references={"truth": small.meta["w_star"]}) for d in (2, 3)}
    # the same path: at the same loss the directions agree, all along (compared at matching loss levels)
    a, b = recs[2], recs[3]
    levels = np.linspace(-0.5, -3.5, 7)
    ca = np.interp(-levels, -a.log10_loss.to_numpy(), a.cos_truth.to_numpy())
    cb = np.interp(-levels, -b.log10_loss.to_numpy(), b.cos_truth.to_numpy())
    assert np.abs(ca - cb).max() < 0.02


def test_runs_are_reproducible(small):
    a = I.train_separable(small.x_train, small.y_train, depth=2, method="ngd", target_log10_loss=-5)
    b = I.train_separable(small.x_train, small.y_train, depth=2, method="ngd", target_log10_loss=-5)
    assert torch.equal(a.info["w"], b.info["w"])


@pytest.mark.parametrize("kwargs, error, match", [
    ({"method": "adam"}, ValueError, "method"),
    ({"method": 3}, TypeError, "method"),
    ({"depth": 0}, ValueError, "depth"),
    ({"depth": 2.0}, TypeError, "depth"),
    ({"alpha": -1.0}, ValueError, "alpha"),
    ({"kappa": 1.5}, ValueError, "kappa"),
    ({"kappa": 0}, ValueError, "kappa"),
    ({"target_log10_loss": 0.0}, ValueError, "target_log10_loss"),
    ({"damping": -1e-3}, ValueError, "damping"),
    ({"max_steps": 0}, ValueError, "max_steps"),
    ({"references": {"a": torch.ones(3)}}, ValueError, "references"),
])
def test_bad_arguments_name_the_parameter(small, kwargs, error, match):
    with pytest.raises(error, match=match):
        I.train_separable(small.x_train, small.y_train, **kwargs)


def test_bad_data_and_comparison_arguments(small):
    with pytest.raises(ValueError, match="±1"):
        I.train_separable(torch.ones(3, 2), torch.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(TypeError, match="x"):
        I.train_separable([[1.0]], torch.ones(1))
    with pytest.raises(ValueError, match="k=5"):
        I.sparse_classification(dim=4, k=5)
    with pytest.raises(TypeError, match="seed"):
        I.sparse_classification(seed="1")
    with pytest.raises(TypeError, match="dataset"):
        I.separable_comparison(small.x_train)
    with pytest.raises(TypeError, match="runs"):
        I.separable_comparison(small, runs=[])
    with pytest.raises(KeyError, match="depth=4"):
        I.SeparableComparison(table=I.separable_comparison(small, runs=[(1, "gd")], target_log10_loss=-3).table).run(4, "gd")
