"""Check functions of chapter 06: pass the references, name the plausible mistakes."""
import numpy as np
import pytest

from flatlab.exercises import adaptive as ex


def _stub(*args):
    raise NotImplementedError


def test_threshold_reference_passes(capsys):
    assert ex.check_adam_threshold(ex.adam_threshold_reference)
    assert capsys.readouterr().out.startswith("✓ adam_threshold")


@pytest.mark.parametrize("wrong, message", [
    (lambda lr, b: 2 / lr, "plain GD's threshold"),
    (lambda lr, b: (2 + 2 * b) / lr, "heavy ball's threshold"),
    (lambda lr, b: 2 / ((1 - b) * lr), "numerator is 2 + 2β₁"),
    (lambda lr, b: 38 / lr, "only for β₁ = 0.9"),
])
def test_threshold_mistakes_are_named(wrong, message, capsys):
    assert not ex.check_adam_threshold(wrong)
    out = capsys.readouterr().out
    assert out.startswith("✗") and message in out and "expected" in out


def test_threshold_stub_crash_and_type(capsys):
    assert not ex.check_adam_threshold(_stub)
    assert "not implemented yet" in capsys.readouterr().out
    assert not ex.check_adam_threshold(lambda lr, b: lr.nope)
    assert "raised AttributeError" in capsys.readouterr().out
    assert not ex.check_adam_threshold(lambda lr, b: "big")
    assert "return a number" in capsys.readouterr().out


def test_preconditioned_reference_passes(capsys):
    assert ex.check_preconditioned_lambda_max(ex.preconditioned_lambda_max_reference)
    assert capsys.readouterr().out.startswith("✓ preconditioned_lambda_max")


def test_preconditioned_nonsymmetric_route_via_eigvals_also_passes(capsys):
    def via_eigvals(h, v, eps):
        return float(np.max(np.linalg.eigvals(h / (np.sqrt(v) + eps)[:, None]).real))

    assert ex.check_preconditioned_lambda_max(via_eigvals)


def _sym(h, p):
    s = 1 / np.sqrt(p)
    return float(np.linalg.eigvalsh(s[:, None] * h * s[None, :])[-1])


@pytest.mark.parametrize("wrong, message", [
    (lambda h, v, eps: float(np.linalg.eigvalsh(h)[-1]), "that is λ_max(H)"),
    (lambda h, v, eps: _sym(h, v + eps), "not v̂ + ε"),
    (lambda h, v, eps: _sym(h, np.sqrt(v)), "left out ε"),
    (lambda h, v, eps: _sym(h, 1 / (np.sqrt(v) + eps)), "you multiplied by P"),
    (lambda h, v, eps: float(np.linalg.eigvalsh(h / (np.sqrt(v) + eps)[:, None])[-1]), "not symmetric"),
])
def test_preconditioned_mistakes_are_named(wrong, message, capsys):
    assert not ex.check_preconditioned_lambda_max(wrong)
    out = capsys.readouterr().out
    assert out.startswith("✗") and message in out


def test_preconditioned_stub(capsys):
    assert not ex.check_preconditioned_lambda_max(_stub)
    assert "not implemented yet" in capsys.readouterr().out


def test_reference_agrees_with_flatlab_adaptive():
    """The exercise's reference and flatlab.adaptive.preconditioned_sharpness compute the same thing."""
    import torch
    import torch.nn.functional as F

    from flatlab.adaptive import preconditioned_sharpness

    model = torch.nn.Linear(3, 1).double()
    x, y = torch.randn(20, 3, dtype=torch.float64), torch.randn(20, 1, dtype=torch.float64)
    xa = torch.cat([x, torch.ones(20, 1, dtype=torch.float64)], 1)
    h = (2 / 20) * xa.T @ xa  # MSE Hessian in (weight, bias) order
    v = np.array([0.1, 0.02, 1e-4, 0.3])
    p = torch.tensor(np.sqrt(v) + 1e-8)
    got = float(preconditioned_sharpness(model, F.mse_loss, (x, y), p, tol=1e-10)[0])
    assert got == pytest.approx(ex.preconditioned_lambda_max_reference(h.numpy(), v, 1e-8), rel=1e-8)


# ---- Adam's bias-corrected step -------------------------------------------------------------
def test_adam_step_reference_passes_and_matches_torch_adam(capsys):
    import torch

    assert ex.check_adam_step(ex.adam_step_reference)
    assert capsys.readouterr().out.startswith("✓ adam_step")
    grads = np.random.default_rng(0).normal(size=(7, 5))
    theta = torch.nn.Parameter(torch.zeros(5, dtype=torch.float64))
    opt = torch.optim.Adam([theta], lr=0.01, betas=(0.8, 0.99), eps=1e-6)
    for g in grads:
        before = theta.detach().clone()
        theta.grad = torch.tensor(g)
        opt.step()
    step = (theta.detach() - before).numpy()
    assert step == pytest.approx(ex.adam_step_reference(grads, 0.01, 0.8, 0.99, 1e-6), rel=1e-10, abs=1e-14)


def test_adam_first_step_moves_every_weight_by_lr():
    step = ex.adam_step_reference(np.array([[1e-3, -3.0, 40.0]]), 0.3)
    assert np.abs(step) == pytest.approx(0.3, rel=1e-4)


def _adam(g, lr, b1, b2, eps, correct_m=True, correct_v=True, eps_inside=False, sign=-1, root=True, swap=False):
    """Adam's last step, optionally with one of the usual mistakes."""
    m, v = np.zeros(g.shape[1]), np.zeros(g.shape[1])
    for gt in g:
        m, v = b1 * m + (1 - b1) * gt, b2 * v + (1 - b2) * gt**2
    t = len(g)
    c1, c2 = (1 - b2**t, 1 - b1**t) if swap else (1 - b1**t, 1 - b2**t)
    mh = m / c1 if correct_m else m
    vh = v / c2 if correct_v else v
    if not root:
        return sign * lr * mh / (vh + eps)
    return sign * lr * mh / (np.sqrt(vh + eps) if eps_inside else np.sqrt(vh) + eps)


def _all_steps(g, lr, b1, b2, eps):
    return np.sum([ex.adam_step_reference(g[:k], lr, b1, b2, eps) for k in range(1, len(g) + 1)], axis=0)


@pytest.mark.parametrize("wrong, message", [
    (lambda g, lr, b1, b2, eps: _adam(g, lr, b1, b2, eps, correct_m=False, correct_v=False), "no bias correction"),
    (lambda g, lr, b1, b2, eps: _adam(g, lr, b1, b2, eps, correct_v=False), "correct v as well"),
    (lambda g, lr, b1, b2, eps: _adam(g, lr, b1, b2, eps, correct_m=False), "correct m as well"),
    (lambda g, lr, b1, b2, eps: _adam(g, lr, b1, b2, eps, swap=True), "swapped"),
    (lambda g, lr, b1, b2, eps: _adam(g, lr, b1, b2, eps, root=False), "not by v̂"),
    (lambda g, lr, b1, b2, eps: _adam(g, lr, b1, b2, eps, eps_inside=True), "√v̂ + ε, not √(v̂ + ε)"),
    (lambda g, lr, b1, b2, eps: _adam(g, lr, b1, b2, eps, sign=+1), "wrong sign"),
    (_all_steps, "not the sum of all t steps"),
    (lambda g, lr, b1, b2, eps: -lr * g[-1] / (np.abs(g[-1]) + eps), "not the last gradient alone"),
])
def test_adam_step_mistakes_are_named(wrong, message, capsys):
    assert not ex.check_adam_step(wrong)
    out = capsys.readouterr().out
    assert out.startswith("✗ adam_step") and message in out and "expected" in out, out


def test_adam_step_stub_crash_and_shape(capsys):
    assert not ex.check_adam_step(_stub)
    assert "not implemented yet" in capsys.readouterr().out
    assert not ex.check_adam_step(lambda g, lr, b1, b2, eps: g.nope)
    assert "raised AttributeError" in capsys.readouterr().out
    assert not ex.check_adam_step(lambda g, lr, b1, b2, eps: -lr * g)
    assert "only the step after the last gradient" in capsys.readouterr().out
