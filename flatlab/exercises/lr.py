"""Chapter 03 exercises: check functions and reference solutions.

Each ``check_*`` runs the student's function on several cases, prints ✓/✗ with the case, the expected and
the obtained value and a hint naming the likely mistake, and returns True only when every case passes; a
stub that still raises ``NotImplementedError`` gets a friendly note.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .base import NOT_IMPLEMENTED, as_number, not_implemented
from .base import call as _call, report as _report

__all__ = ["gd_iterate_reference", "check_gd_iterate", "heavy_ball_threshold_reference",
           "check_heavy_ball_threshold", "warmup_lr_reference", "check_warmup_lr"]


# ------------------------------------------------------------------------------------------------
# gradient descent on a quadratic, in closed form
# ------------------------------------------------------------------------------------------------
def gd_iterate_reference(hessian, w0, lr: float, steps: int) -> np.ndarray:
    """GD on ``L(w) = ½ wᵀHw`` after ``t`` steps: ``w_t = (I − ηH)ᵗ w₀ = Q diag((1 − ηλᵢ)ᵗ) Qᵀ w₀``
    with ``H = Q diag(λ) Qᵀ`` — each eigen-direction shrinks (or grows) by its own factor 1 − ηλᵢ per step."""
    lam, q = np.linalg.eigh(np.asarray(hessian, dtype=float))
    return q @ ((1.0 - lr * lam) ** steps * (q.T @ np.asarray(w0, dtype=float)))


def _gd_iterate_hint(h, w0, lr, t, got) -> str:
    eye = np.eye(len(w0))
    lam, q = np.linalg.eigh(h)
    candidates = [
        ((eye - lr * h) ** t @ w0, "`**` on a numpy array is elementwise: use np.linalg.matrix_power(I − ηH, t) "
                                   "or the eigendecomposition"),
        (np.linalg.matrix_power(eye + lr * h, t) @ w0,
         "a gradient step goes downhill: the factor is I − ηH, not I + ηH"),
        (np.linalg.matrix_power(eye - lr * h, max(t - 1, 0)) @ w0, "off by one: apply the step t times, not t − 1"),
        (np.linalg.matrix_power(eye - lr * h, t + 1) @ w0, "off by one: apply the step t times, not t + 1"),
        ((1 - lr * lam) ** t * (q.T @ w0), "rotate back: (1 − ηλᵢ)ᵗ scales the coordinates Qᵀw₀ in the eigenbasis, "
                                           "so return Q · (those scaled coordinates)"),
        (q @ ((1 - lr * lam) ** t * w0), "project w₀ onto the eigenvectors first: the factors act on Qᵀw₀, not on w₀"),
        ((1 - lr * lam.max()) ** t * w0, "every eigen-direction has its own factor (1 − ηλᵢ)ᵗ, not only the top one"),
        (w0 - t * lr * (h @ w0), "the gradient changes after every step: t steps multiply by (I − ηH) t times, "
                                 "they do not add t copies of the first step"),
    ]
    for value, hint in candidates:
        if value.shape == got.shape and np.allclose(got, value, rtol=1e-6, atol=1e-9 * np.abs(value).max()):
            return " — " + hint
    return ""


def check_gd_iterate(fn: Callable) -> bool:
    """Check ``fn(hessian, w0, lr, steps) -> w_t`` (numpy) is GD's iterate (I − ηH)ᵗ w₀ on ½ wᵀHw."""
    rng = np.random.default_rng(3)
    q = np.linalg.qr(rng.normal(size=(4, 4)))[0]
    cases = [
        (np.diag([10.0, 1.0]), np.array([1.0, 1.0]), 0.05, 5),
        (np.diag([10.0, 1.0]), np.array([1.0, -2.0]), 0.21, 30),          # past 2/λ_max: the sharp direction grows
        (np.array([[3.0, 1.0], [1.0, 2.0]]), np.array([1.0, -2.0]), 0.1, 1),
        (np.array([[3.0, 1.0], [1.0, 2.0]]), np.array([0.5, 1.5]), 0.3, 12),
        (q @ np.diag([8.0, 2.0, 0.5, 0.0]) @ q.T, rng.normal(size=4), 0.2, 40),
        (np.array([[2.0, -1.0], [-1.0, 2.0]]), np.array([1.0, 3.0]), 0.4, 0),
    ]
    failures = []
    for h, w0, lr, t in cases:
        got, err = _call(fn, h.copy(), w0.copy(), lr, t)
        if err == NOT_IMPLEMENTED:
            return not_implemented("gd_iterate")
        case = f"H={np.round(h, 2).tolist()}, w₀={np.round(w0, 2).tolist()}, η={lr:g}, t={t}"
        if err:
            failures.append(f"{case}: {err}")
            continue
        try:
            got = np.asarray(got.detach() if hasattr(got, "detach") else got, dtype=float)
        except (TypeError, ValueError):
            failures.append(f"{case}: return an array shaped like w₀, got {type(got).__name__}")
            continue
        expected = gd_iterate_reference(h, w0, lr, t)
        if got.shape != expected.shape:
            failures.append(f"{case}: return a vector shaped like w₀ {expected.shape}, got shape {got.shape}")
            continue
        if np.allclose(got, expected, rtol=1e-6, atol=1e-9 * np.abs(expected).max()):
            continue
        failures.append(f"{case}: expected {np.round(expected, 5).tolist()}, got {np.round(got, 5).tolist()}"
                        + _gd_iterate_hint(h, w0, lr, t, got))
    return _report("gd_iterate", failures, len(cases))


# ------------------------------------------------------------------------------------------------
# the heavy-ball stability threshold
# ------------------------------------------------------------------------------------------------
def heavy_ball_threshold_reference(lr: float, momentum: float) -> float:
    """Largest curvature λ on which heavy ball ``w⁺ = w − ηλw + β(w − w⁻)`` is stable: (2 + 2β)/η.

    The characteristic polynomial ``z² − (1 + β − ηλ) z + β`` has a root at ``z = −1`` when
    ``1 + (1 + β − ηλ) + β = 0``; complex roots have ``|z|² = β < 1``.
    """
    return (2.0 + 2.0 * momentum) / lr


def check_heavy_ball_threshold(fn: Callable) -> bool:
    """Check ``fn(lr, momentum) -> float`` returns the largest stable curvature (2 + 2β)/η of heavy ball."""
    cases = [(0.1, 0.0), (0.1, 0.9), (0.5, 0.5), (0.01, 0.99), (2.0, 0.3)]
    failures = []
    for lr, beta in cases:
        got, err = _call(fn, lr, beta)
        if err == NOT_IMPLEMENTED:
            return not_implemented("heavy_ball_threshold")
        case = f"η={lr}, β={beta}"
        if err:
            failures.append(f"{case}: {err}")
            continue
        got, bad = as_number(got)
        if bad:
            failures.append(f"{case}: {bad}")
            continue
        expected = heavy_ball_threshold_reference(lr, beta)
        if np.isclose(got, expected, rtol=1e-9):
            continue
        hints = [
            (2.0 / lr, "you ignored the momentum: the momentum term enlarges the stable range to (2 + 2β)/η"),
            (2.0 * (1 - beta) / lr,
             "2/(η/(1−β)) uses the effective step size η/(1−β) of the slow drift; stability is set by the "
             "oscillating root z = −1, which gives (2 + 2β)/η"),
            ((2 + 2 * beta) / (lr * (1 + 2 * beta)), "that is Nesterov's threshold (2 + 2β)/(η(1 + 2β)), not heavy ball's"),
            ((1 + beta) / lr, "missing a factor 2: the root z = −1 gives 1 + (1 + β − ηλ) + β = 0"),
            (lr / (2 + 2 * beta), "you returned the threshold upside down: λ_max = (2 + 2β)/η, i.e. η_max = (2 + 2β)/λ"),
        ]
        hint = next((h for v, h in hints if np.isfinite(v) and np.isclose(got, v, rtol=1e-9)), "")
        failures.append(f"{case}: expected {expected:.6g}, got {got:.6g}" + (f" — {hint}" if hint else ""))
    return _report("heavy_ball_threshold", failures, len(cases))


# ------------------------------------------------------------------------------------------------
# linear learning-rate warmup
# ------------------------------------------------------------------------------------------------
def warmup_lr_reference(step: int, lr: float, warmup: int) -> float:
    """Linear warmup: the learning rate of step ``step`` (1, 2, …) is ``η · min(1, step / warmup)``;
    ``warmup = 0`` means no warmup (the constant η) — the rule of ``flatlab.sweep.Run.lr_at``."""
    return lr if warmup == 0 else lr * min(1.0, step / warmup)


def check_warmup_lr(fn: Callable) -> bool:
    """Check ``fn(step, lr, warmup) -> float`` is linear warmup η·min(1, step/warmup) (constant when warmup=0)."""
    cases = [(1, 0.5, 100), (50, 0.5, 100), (100, 0.5, 100), (250, 0.5, 100), (1, 1.0, 1), (7, 0.2, 0), (3, 0.1, 4)]
    failures = []
    for step, lr, warmup in cases:
        got, err = _call(fn, step, lr, warmup)
        if err == NOT_IMPLEMENTED:
            return not_implemented("warmup_lr")
        case = f"step={step}, η={lr}, warmup={warmup}"
        if err:
            hint = " — warmup=0 means no warmup: return η without dividing" if "division" in err.lower() else ""
            failures.append(f"{case}: {err}{hint}")
            continue
        got, bad = as_number(got)
        if bad:
            failures.append(f"{case}: {bad}")
            continue
        expected = warmup_lr_reference(step, lr, warmup)
        if np.isclose(got, expected, rtol=1e-9):
            continue
        hint = ""
        if warmup and np.isclose(got, lr * step / warmup, rtol=1e-9):
            hint = "after the warmup the rate must stay at η: cap the factor with min(1, step/warmup)"
        elif warmup and np.isclose(got, lr * min(1.0, (step - 1) / warmup), rtol=1e-9):
            hint = "off by one: the first step (step=1) already moves, with η/warmup, not 0"
        elif warmup and np.isclose(got, lr * min(1.0, (step + 1) / warmup), rtol=1e-9):
            hint = "off by one: steps count from 1, so step=1 has η/warmup"
        elif warmup and np.isclose(got, lr * warmup / max(step, 1), rtol=1e-9):
            hint = "the ratio is upside down: the rate grows like step/warmup"
        failures.append(f"{case}: expected {expected:.6g}, got {got:.6g}" + (f" — {hint}" if hint else ""))
    return _report("warmup_lr", failures, len(cases))
