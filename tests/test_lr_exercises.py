"""Chapter 03 check functions: pass the references, fail plausible mistakes with a message naming them."""
import numpy as np
import pytest

from flatlab.exercises import lr as E
from flatlab.curvature import stability_threshold
from flatlab.sweep import Run


def test_heavy_ball_reference_passes_and_agrees_with_curvature(capsys):
    assert E.check_heavy_ball_threshold(E.heavy_ball_threshold_reference)
    assert "✓ heavy_ball_threshold" in capsys.readouterr().out
    for lr, beta in [(0.1, 0.0), (0.3, 0.9)]:
        assert E.heavy_ball_threshold_reference(lr, beta) == pytest.approx(stability_threshold(lr, "heavy_ball", beta))


@pytest.mark.parametrize("wrong, phrase", [
    (lambda lr, b: 2 / lr, "ignored the momentum"),
    (lambda lr, b: 2 * (1 - b) / lr, "effective step size"),
    (lambda lr, b: (2 + 2 * b) / (lr * (1 + 2 * b)), "Nesterov"),
    (lambda lr, b: (1 + b) / lr, "missing a factor 2"),
    (lambda lr, b: lr / (2 + 2 * b), "upside down"),
])
def test_heavy_ball_mistakes_are_named(capsys, wrong, phrase):
    assert not E.check_heavy_ball_threshold(wrong)
    out = capsys.readouterr().out
    assert out.startswith("✗") and phrase in out and "expected" in out


def test_heavy_ball_stub_crash_and_wrong_type(capsys):
    def stub(lr, b):
        raise NotImplementedError

    assert not E.check_heavy_ball_threshold(stub)
    assert "not implemented yet" in capsys.readouterr().out
    assert not E.check_heavy_ball_threshold(lambda lr, b: lr.nope)
    assert "raised AttributeError" in capsys.readouterr().out
    assert not E.check_heavy_ball_threshold(lambda lr, b: "fast")
    assert "return a number" in capsys.readouterr().out


def test_warmup_reference_passes_and_matches_the_sweep_rule(capsys, clouds):
    assert E.check_warmup_lr(E.warmup_lr_reference)
    assert "✓ warmup_lr" in capsys.readouterr().out
    from flatlab.models import MLP

    run = Run(MLP(2, [4], 3), clouds, steps=10, lr=0.3, warmup=4)
    assert [run.lr_at(t) for t in range(1, 7)] == pytest.approx([E.warmup_lr_reference(t, 0.3, 4) for t in range(1, 7)])


@pytest.mark.parametrize("wrong, phrase", [
    (lambda t, lr, w: lr * t / w if w else lr, "cap the factor"),
    (lambda t, lr, w: lr * min(1.0, (t - 1) / w) if w else lr, "off by one: the first step"),
    (lambda t, lr, w: lr * min(1.0, (t + 1) / w) if w else lr, "off by one: steps count from 1"),
    (lambda t, lr, w: lr * min(1.0, t / w), "warmup=0 means no warmup"),
    (lambda t, lr, w: lr * min(1.0, w / t) if w else lr, "upside down"),
])
def test_warmup_mistakes_are_named(capsys, wrong, phrase):
    assert not E.check_warmup_lr(wrong)
    out = capsys.readouterr().out
    assert out.startswith("✗") and phrase in out


def test_warmup_stub(capsys):
    def stub(step, lr, warmup):
        raise NotImplementedError

    assert not E.check_warmup_lr(stub)
    assert "not implemented yet" in capsys.readouterr().out


# ---- GD on a quadratic in closed form -------------------------------------------------------
def _loop(h, w, lr, t):
    for _ in range(t):
        w = w - lr * h @ w
    return w


def test_gd_iterate_reference_passes_and_matches_the_loop_and_quadratic_run(capsys):
    from flatlab.widgets.lr import quadratic_run

    assert E.check_gd_iterate(E.gd_iterate_reference)
    assert "✓ gd_iterate" in capsys.readouterr().out
    assert E.check_gd_iterate(_loop)                      # an honest loop is a correct answer too
    assert E.check_gd_iterate(lambda h, w, lr, t: np.linalg.matrix_power(np.eye(len(w)) - lr * h, t) @ w)
    capsys.readouterr()
    h = np.array([[3.0, 1.0], [1.0, 2.0]])
    w0 = np.array([1.0, -2.0])
    assert E.gd_iterate_reference(h, w0, 0.1, 25) == pytest.approx(_loop(h, w0, 0.1, 25))
    traj, _ = quadratic_run([10.0, 1.0], 0.15, 0.0, steps=20)
    w0 = np.asarray(traj[0], dtype=float)
    closed = E.gd_iterate_reference(np.diag([10.0, 1.0]), w0, 0.15, len(traj) - 1)
    assert np.asarray(traj[-1], dtype=float) == pytest.approx(closed)


@pytest.mark.parametrize("wrong, phrase", [
    (lambda h, w, lr, t: (np.eye(len(w)) - lr * h) ** t @ w, "elementwise"),
    (lambda h, w, lr, t: np.linalg.matrix_power(np.eye(len(w)) + lr * h, t) @ w, "not I + ηH"),
    (lambda h, w, lr, t: np.linalg.matrix_power(np.eye(len(w)) - lr * h, max(t - 1, 0)) @ w, "not t − 1"),
    (lambda h, w, lr, t: np.linalg.matrix_power(np.eye(len(w)) - lr * h, t + 1) @ w, "not t + 1"),
    (lambda h, w, lr, t: (1 - lr * np.linalg.eigh(h)[0]) ** t * (np.linalg.eigh(h)[1].T @ w), "rotate back"),
    (lambda h, w, lr, t: np.linalg.eigh(h)[1] @ ((1 - lr * np.linalg.eigh(h)[0]) ** t * w), "project w₀"),
    (lambda h, w, lr, t: (1 - lr * np.linalg.eigvalsh(h).max()) ** t * w, "its own factor"),
    (lambda h, w, lr, t: w - t * lr * h @ w, "do not add t copies"),
])
def test_gd_iterate_mistakes_are_named(capsys, wrong, phrase):
    assert not E.check_gd_iterate(wrong)
    out = capsys.readouterr().out
    assert out.startswith("✗ gd_iterate") and phrase in out and "expected" in out, out


def test_gd_iterate_stub_crash_and_shape(capsys):
    def stub(h, w, lr, t):
        raise NotImplementedError

    assert not E.check_gd_iterate(stub)
    assert "not implemented yet" in capsys.readouterr().out
    assert not E.check_gd_iterate(lambda h, w, lr, t: h.nope)
    assert "raised AttributeError" in capsys.readouterr().out
    assert not E.check_gd_iterate(lambda h, w, lr, t: np.linalg.matrix_power(np.eye(len(w)) - lr * h, t))
    assert "shaped like w₀" in capsys.readouterr().out
