"""Chapter 04 exercises: check functions and reference solutions.

Each ``check_*`` runs the student's function on several cases, prints ✓/✗ with the case, the expected and
the obtained value and a hint naming the likely mistake, and returns True only when every case passes.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .base import NOT_IMPLEMENTED, as_number, not_implemented
from .base import call as _call, report as _report


# ------------------------------------------------------------------------------------------------
# the normalized margin of a linear classifier
# ------------------------------------------------------------------------------------------------
def normalized_margin_reference(w, x, y) -> float:
    """Geometric margin of the separator ⟨w, x⟩ = 0: ``min_i y_i ⟨w, x_i⟩ / ‖w‖`` (negative if a point is
    misclassified); the hard-margin SVM direction maximizes it over ``w``."""
    w, x, y = (np.asarray(a, dtype=float) for a in (w, x, y))
    return float((y * (x @ w)).min() / np.linalg.norm(w))


def _margin_hint(got: float, w, x, y) -> str:
    scores, norm = x @ w, np.linalg.norm(w)
    candidates = [
        ((y * scores).min(), "divide by ‖w‖: the margin is a distance, it must not change when w is scaled"),
        ((y * scores).min() / norm**2, "divide by ‖w‖, not ‖w‖²"),
        (scores.min() / norm, "multiply by the labels: a point is on the right side when y_i⟨w, x_i⟩ > 0"),
        (np.abs(scores).min() / norm,
         "keep the sign: a misclassified point has a *negative* margin, |⟨w, x_i⟩| hides it"),
        ((y * scores).mean() / norm, "the margin is the *smallest* y_i⟨w, x_i⟩/‖w‖ over the points, not their mean"),
        ((y * scores).max() / norm, "the margin is the *smallest* y_i⟨w, x_i⟩/‖w‖ over the points, not the largest"),
        ((y * scores / (norm * np.linalg.norm(x, axis=1))).min(),
         "divide by ‖w‖ only: dividing by ‖x_i‖ too gives a cosine, not a distance"),
    ]
    for value, hint in candidates:
        if np.isclose(got, value, rtol=1e-6, atol=1e-12):
            return " — " + hint
    return ""


def check_normalized_margin(fn: Callable) -> bool:
    """Check ``fn(w, x, y) -> float`` (numpy in) returns the normalized margin min_i y_i⟨w, x_i⟩ / ‖w‖."""
    rng = np.random.default_rng(7)
    x4 = rng.normal(size=(12, 4)) * np.array([1.0, 3.0, 0.5, 2.0])
    w4 = np.array([1.0, -0.5, 2.0, 0.3])
    y4 = np.sign(x4 @ w4)
    cases = [
        (np.array([3.0, 0.0]), np.array([[2.0, 5.0]]), np.array([1.0])),
        (np.array([1.0, 1.0]), np.array([[2.0, 0.0], [0.5, 0.5], [-1.0, -3.0]]), np.array([1.0, 1.0, -1.0])),
        (np.array([10.0, 10.0]), np.array([[2.0, 0.0], [0.5, 0.5], [-1.0, -3.0]]), np.array([1.0, 1.0, -1.0])),
        (np.array([1.0, -2.0]), np.array([[1.0, 0.0], [0.0, 0.5], [1.0, 3.0]]), np.array([1.0, -1.0, 1.0])),
        (w4, x4, y4),
        (3.0 * w4, x4, np.where(np.arange(12) == 5, -y4, y4)),
    ]
    failures = []
    for w, x, y in cases:
        got, err = _call(fn, w.copy(), x.copy(), y.copy())
        if err == NOT_IMPLEMENTED:
            return not_implemented("normalized_margin")
        case = f"w={np.round(w, 2).tolist()}, {len(y)} point{'s' if len(y) > 1 else ''} in {x.shape[1]}-D"
        if err:
            failures.append(f"{case}: {err}")
            continue
        try:
            got = float(got)
        except (TypeError, ValueError):
            failures.append(f"{case}: return one number, got {type(got).__name__}"
                            + (" — take the minimum over the points" if np.size(got) > 1 else ""))
            continue
        expected = normalized_margin_reference(w, x, y)
        if not np.isclose(got, expected, rtol=1e-6, atol=1e-12):
            failures.append(f"{case}: expected {expected:.6g}, got {got:.6g}{_margin_hint(got, w, x, y)}")
    return _report("normalized_margin", failures, len(cases))


# ------------------------------------------------------------------------------------------------
# effective rank (Roy & Vetterli 2007)
# ------------------------------------------------------------------------------------------------
def effective_rank_reference(singular_values) -> float:
    """exp(H(p)) with p_i = σ_i / Σ_j σ_j and H the Shannon entropy in nats (0·log 0 = 0)."""
    s = np.asarray(singular_values, dtype=float)
    p = s[s > 0] / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def _effective_rank_hint(got: float, s: np.ndarray) -> str:
    pos = s[s > 0]
    p = pos / pos.sum()
    h = float(-(p * np.log(p)).sum())
    q = pos**2 / (pos**2).sum()
    candidates = [
        (float(np.exp(-(q * np.log(q)).sum())), "normalize by the sum of the singular values (p = σ/Σσ), not of their squares"),
        (h, "you returned the entropy H; the effective rank is exp(H)"),
        (float(np.exp(-(p * np.log2(p)).sum())), "entropy in bits needs 2**H, entropy in nats exp(H) — do not mix log2 with exp"),
        (float(len(pos)), "that is the number of non-zero singular values (the rank), not the effective rank"),
    ]
    for value, hint in candidates:
        if np.isclose(got, value, rtol=1e-6):
            return " — " + hint
    return ""


def check_effective_rank(fn: Callable) -> bool:
    """Check ``fn(singular_values) -> float`` returns Roy & Vetterli's effective rank exp(H(σ/‖σ‖₁))."""
    cases = [np.array([1.0, 0.0, 0.0]), np.array([2.0, 2.0, 0.0]), np.array([3.0, 1.0]),
             np.array([5.0, 4.0, 3.0, 2.0, 1.0]), np.array([10.0, 1e-3, 1e-3, 0.0]), np.ones(6)]
    failures = []
    for s in cases:
        got, err = _call(fn, s.copy())
        if err == NOT_IMPLEMENTED:
            return not_implemented("effective_rank")
        expected = effective_rank_reference(s)
        case = f"σ = {s.tolist()}"
        if err:
            failures.append(f"{case}: {err}")
            continue
        got, bad = as_number(got)
        if bad:
            failures.append(f"{case}: {bad}")
            continue
        if not np.isfinite(got):
            failures.append(f"{case}: got {got} — skip zero singular values (0·log 0 counts as 0)")
        elif not np.isclose(got, expected, rtol=1e-6):
            failures.append(f"{case}: expected {expected:.6g}, got {got:.6g}{_effective_rank_hint(got, s)}")
    return _report("effective_rank", failures, len(cases))


# ------------------------------------------------------------------------------------------------
# the natural gradient of least squares
# ------------------------------------------------------------------------------------------------
def natural_gradient_linear_reference(x, grad, damping: float):
    """(F + λI)⁻¹ g for L(θ) = (1/2n)‖Xθ − y‖², whose Fisher (= Gauss–Newton) matrix is F = XᵀX/n."""
    x = np.asarray(x, dtype=float)
    g = np.asarray(grad, dtype=float)
    fisher = x.T @ x / len(x) + damping * np.eye(x.shape[1])
    return np.linalg.solve(fisher, g)


def check_natural_gradient_linear(fn: Callable) -> bool:
    """Check ``fn(x, grad, damping) -> direction`` returns (XᵀX/n + λI)⁻¹ grad (numpy arrays in and out)."""
    rng = np.random.default_rng(4)
    cases = []
    for n, d, lam in ((20, 3, 0.1), (50, 5, 1e-3), (8, 4, 1.0), (30, 6, 0.0)):
        x = rng.normal(size=(n, d)) * rng.uniform(0.2, 3.0, size=d)
        cases.append((x, rng.normal(size=d), lam))
    failures = []
    for x, g, lam in cases:
        got, err = _call(fn, x.copy(), g.copy(), lam)
        if err == NOT_IMPLEMENTED:
            return not_implemented("natural_gradient_linear")
        n, d = x.shape
        case = f"X {n}×{d}, λ={lam:g}"
        if err:
            failures.append(f"{case}: {err}")
            continue
        got = np.asarray(got.detach() if hasattr(got, "detach") else got, dtype=float).reshape(-1)
        expected = natural_gradient_linear_reference(x, g, lam)
        if got.shape != expected.shape:
            failures.append(f"{case}: expected a vector of length {d}, got shape {got.shape}"
                            + (" — the Fisher is d×d: XᵀX, not XXᵀ" if got.size == n else ""))
            continue
        if np.allclose(got, expected, rtol=1e-6, atol=1e-9):
            continue
        eye = np.eye(d)
        hints = [
            (np.linalg.solve(x.T @ x + lam * eye, g), "divide XᵀX by n: the loss is a mean over the examples"),
            (np.linalg.solve(x.T @ x / n, g) if lam > 0 else None, "add the damping λI before solving"),
            ((x.T @ x / n + lam * eye) @ g, "solve with the Fisher (multiply by its inverse), do not multiply by it"),
            (np.linalg.solve((x.T @ x + lam * eye) / n, g), "the damping λI is added after dividing XᵀX by n"),
            (g, "that is the plain gradient: precondition it with (F + λI)⁻¹"),
        ]
        hint = next((h for v, h in hints if v is not None and np.allclose(got, v, rtol=1e-6, atol=1e-9)), "")
        failures.append(f"{case}: expected {np.round(expected, 4).tolist()}, got {np.round(got, 4).tolist()}"
                        + (f" — {hint}" if hint else ""))
    return _report("natural_gradient_linear", failures, len(cases))


__all__ = ["normalized_margin_reference", "check_normalized_margin", "effective_rank_reference", "check_effective_rank",
           "natural_gradient_linear_reference", "check_natural_gradient_linear"]
