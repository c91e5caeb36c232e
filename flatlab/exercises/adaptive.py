"""Exercises of chapter 06 (adaptive optimizers and averaging): Adam's stability threshold, Adam's
preconditioned sharpness and Adam's bias-corrected step."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .base import NOT_IMPLEMENTED, as_number, call, not_implemented, report

__all__ = ["adam_threshold_reference", "check_adam_threshold", "preconditioned_lambda_max_reference",
           "check_preconditioned_lambda_max", "adam_step_reference", "check_adam_step"]


def adam_threshold_reference(lr: float, beta1: float) -> float:
    """Largest stable preconditioned sharpness of Adam: (2 + 2β₁) / ((1 − β₁) η)."""
    return (2 + 2 * beta1) / ((1 - beta1) * lr)


def check_adam_threshold(fn: Callable) -> bool:
    """Check ``fn(lr, beta1) -> float`` returns (2+2β₁)/((1−β₁)η) and name the likely mistake."""
    cases = [(1e-3, 0.9), (0.01, 0.0), (0.1, 0.5), (2e-4, 0.95), (0.05, 0.8)]
    failures = []
    for lr, b in cases:
        got, err = call(fn, lr, b)
        if err == NOT_IMPLEMENTED:
            return not_implemented("adam_threshold")
        case = f"η={lr:g}, β₁={b:g}"
        if err:
            failures.append(f"{case}: {err}")
            continue
        got, bad = as_number(got)
        if bad:
            failures.append(f"{case}: {bad}")
            continue
        expected = adam_threshold_reference(lr, b)
        if np.isclose(got, expected, rtol=1e-9):
            continue
        hint = ""
        if np.isclose(got, 2 / lr, rtol=1e-9):
            hint = " — 2/η is plain GD's threshold; Adam's momentum changes it"
        elif np.isclose(got, (2 + 2 * b) / lr, rtol=1e-9):
            hint = (" — (2+2β)/η is heavy ball's threshold; Adam's EMA momentum m ← β₁m + (1−β₁)g scales the "
                    "gradient by (1−β₁), so divide by (1−β₁) too")
        elif np.isclose(got, 2 / ((1 - b) * lr), rtol=1e-9):
            hint = " — the numerator is 2 + 2β₁ (the root z = −1 of z² − (1+β₁−(1−β₁)ηλ)z + β₁), not 2"
        elif np.isclose(got, 38 / lr, rtol=1e-9):
            hint = " — 38/η holds only for β₁ = 0.9; use β₁"
        failures.append(f"{case}: expected {expected:.6g}, got {got:.6g}{hint}")
    return report("adam_threshold", failures, len(cases))


def preconditioned_lambda_max_reference(hessian, v_hat, eps: float = 1e-8) -> float:
    """λ_max(P⁻¹H) with P = diag(√v̂ + ε), computed as λ_max of the symmetric P^{-1/2} H P^{-1/2}."""
    h = np.asarray(hessian, dtype=float)
    s = 1.0 / np.sqrt(np.sqrt(np.asarray(v_hat, dtype=float)) + eps)
    return float(np.linalg.eigvalsh(s[:, None] * h * s[None, :])[-1])


def check_preconditioned_lambda_max(fn: Callable) -> bool:
    """Check ``fn(hessian, v_hat, eps) -> float`` (numpy arrays) returns λ_max(P⁻¹H), P = diag(√v̂ + ε)."""
    rng = np.random.default_rng(0)
    q = np.linalg.qr(rng.normal(size=(4, 4)))[0]
    cases = [
        (np.diag([4.0, 1.0]), np.array([0.04, 0.01]), 1e-8),
        (np.array([[2.0, 1.0], [1.0, 3.0]]), np.array([0.25, 1e-4]), 1e-8),
        (q @ np.diag([10.0, 3.0, 1.0, -0.5]) @ q.T, np.array([1e-2, 4e-4, 1e-6, 0.09]), 1e-8),
        (np.array([[5.0, 2.0], [2.0, 1.0]]), np.array([1e-12, 1e-2]), 1e-3),
    ]
    failures = []
    for h, v, eps in cases:
        got, err = call(fn, h.copy(), v.copy(), eps)
        if err == NOT_IMPLEMENTED:
            return not_implemented("preconditioned_lambda_max")
        case = f"H={np.round(h, 2).tolist()}, v̂={v.tolist()}, ε={eps:g}"
        if err:
            failures.append(f"{case}: {err}")
            continue
        got, bad = as_number(got)
        if bad:
            failures.append(f"{case}: {bad}")
            continue
        expected = preconditioned_lambda_max_reference(h, v, eps)
        if np.isclose(got, expected, rtol=1e-6):
            continue

        def top(p):
            s = 1.0 / np.sqrt(p)
            return float(np.linalg.eigvalsh(s[:, None] * h * s[None, :])[-1])

        hint = ""
        if np.isclose(got, np.linalg.eigvalsh(h)[-1], rtol=1e-6):
            hint = " — that is λ_max(H): divide by Adam's preconditioner P first"
        elif np.isclose(got, top(v + eps), rtol=1e-6):
            hint = " — P is √v̂ + ε (a root mean square), not v̂ + ε"
        elif np.isclose(got, top(np.sqrt(v)), rtol=1e-6):
            hint = " — you left out ε: where v̂ ≈ 0 it is ε that bounds Adam's step"
        elif np.isclose(got, float(np.linalg.eigvalsh(np.sqrt(np.sqrt(v) + eps)[:, None] * h
                                                      * np.sqrt(np.sqrt(v) + eps)[None, :])[-1]), rtol=1e-6):
            hint = " — you multiplied by P; the update divides the gradient by P, so use P^{-1/2} H P^{-1/2}"
        elif np.isclose(got, float(np.linalg.eigvalsh(h / (np.sqrt(v) + eps)[:, None])[-1]), rtol=1e-6):
            hint = (" — P⁻¹H is not symmetric, so eigvalsh (which reads one triangle) is wrong for it; "
                    "use the symmetric P^{-1/2} H P^{-1/2}, which has the same eigenvalues")
        failures.append(f"{case}: expected {expected:.6g}, got {got:.6g}{hint}")
    return report("preconditioned_lambda_max", failures, len(cases))


def adam_step_reference(grads, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> np.ndarray:
    """Adam's update ``θ_t − θ_{t−1} = −η m̂_t / (√v̂_t + ε)`` after the gradients ``g_1 … g_t`` (rows of
    ``grads``), with ``m̂_t = m_t/(1 − β₁ᵗ)``, ``v̂_t = v_t/(1 − β₂ᵗ)`` and m, v the EMAs of g and g² from 0."""
    g = np.asarray(grads, dtype=float)
    m, v = np.zeros(g.shape[1:]), np.zeros(g.shape[1:])
    for gt in g:
        m = beta1 * m + (1 - beta1) * gt
        v = beta2 * v + (1 - beta2) * gt**2
    t = len(g)
    return -lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)


def _adam_variants(g, lr, b1, b2, eps):
    """The update under the usual mistakes, keyed by the hint that names them."""
    t = len(g)
    m = v = 0.0
    steps = []
    for k, gt in enumerate(g, start=1):
        m, v = b1 * m + (1 - b1) * gt, b2 * v + (1 - b2) * gt**2
        steps.append(-lr * (m / (1 - b1**k)) / (np.sqrt(v / (1 - b2**k)) + eps))
    mh, vh = m / (1 - b1**t), v / (1 - b2**t)
    with np.errstate(all="ignore"):
        return [
            (-lr * m / (np.sqrt(v) + eps), "no bias correction: divide m by 1 − β₁ᵗ and v by 1 − β₂ᵗ — at t = 1 the "
                                           "uncorrected step is (1−β₁)/√(1−β₂) ≈ 3.2 times too small"),
            (-lr * mh / (np.sqrt(v) + eps), "correct v as well: v̂_t = v_t/(1 − β₂ᵗ)"),
            (-lr * m / (np.sqrt(vh) + eps), "correct m as well: m̂_t = m_t/(1 − β₁ᵗ)"),
            (-lr * (m / (1 - b2**t)) / (np.sqrt(v / (1 - b1**t)) + eps),
             "the corrections are swapped: m̂ uses β₁ᵗ, v̂ uses β₂ᵗ"),
            (-lr * mh / np.sqrt(vh + eps), "ε is added after the square root: √v̂ + ε, not √(v̂ + ε)"),
            (lr * mh / (np.sqrt(vh) + eps), "wrong sign: the step goes against the gradient, −η m̂/(√v̂ + ε)"),
            (-lr * mh / (vh + eps), "divide by the root √v̂ (an RMS of the gradients), not by v̂"),
            (np.sum(steps, axis=0), "return the last step θ_t − θ_{t−1} only, not the sum of all t steps"),
            (-lr * g[-1] / (np.abs(g[-1]) + eps), "m and v are running averages over all the gradients, not the "
                                                  "last gradient alone"),
        ]


def check_adam_step(fn: Callable) -> bool:
    """Check ``fn(grads, lr, beta1, beta2, eps) -> update`` (numpy; ``grads`` has one row per step) is Adam's
    bias-corrected step −η m̂_t/(√v̂_t + ε) after the last gradient."""
    rng = np.random.default_rng(6)
    cases = [
        (np.array([[1e-4, -3.0, 0.02]]), 0.3, 0.9, 0.999, 1e-8),
        (np.array([[0.5, -1.0], [0.3, -0.8], [0.4, -1.2]]), 0.01, 0.9, 0.999, 1e-8),
        (rng.normal(size=(10, 4)) * np.array([1e-3, 1.0, 10.0, 0.1]), 1e-3, 0.9, 0.999, 1e-8),
        (rng.normal(size=(5, 3)), 0.1, 0.5, 0.9, 1e-8),
        (np.array([[0.01, 0.2, 0.0], [0.02, -0.1, 0.0]]), 0.05, 0.9, 0.99, 0.1),
        (rng.normal(size=(40, 2)) + np.array([1.0, -0.5]), 2e-3, 0.8, 0.95, 1e-6),
    ]
    failures = []
    for g, lr, b1, b2, eps in cases:
        got, err = call(fn, g.copy(), lr, b1, b2, eps)
        if err == NOT_IMPLEMENTED:
            return not_implemented("adam_step")
        case = f"t={len(g)}, {g.shape[1]} parameters, η={lr:g}, β₁={b1:g}, β₂={b2:g}, ε={eps:g}"
        if err:
            failures.append(f"{case}: {err}")
            continue
        try:
            got = np.asarray(got.detach() if hasattr(got, "detach") else got, dtype=float)
        except (TypeError, ValueError):
            failures.append(f"{case}: return an array with one entry per parameter, got {type(got).__name__}")
            continue
        expected = adam_step_reference(g, lr, b1, b2, eps)
        if got.shape != expected.shape:
            failures.append(f"{case}: return one step per parameter, shape {expected.shape}, got shape {got.shape}"
                            + (" — only the step after the last gradient" if got.shape == g.shape else ""))
            continue
        if np.allclose(got, expected, rtol=1e-6, atol=1e-12):
            continue
        hint = next((h for value, h in _adam_variants(g, lr, b1, b2, eps)
                     if np.all(np.isfinite(value)) and np.allclose(got, value, rtol=1e-6, atol=1e-12)), "")
        failures.append(f"{case}: expected {np.round(expected, 6).tolist()}, got {np.round(got, 6).tolist()}"
                        + (f" — {hint}" if hint else ""))
    return report("adam_step", failures, len(cases))
