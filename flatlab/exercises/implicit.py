"""Chapter 04 exercises: check functions and reference solutions.

Each ``check_*`` runs the student's function on several cases, prints ✓/✗ with the case, the expected and
the obtained value and a hint naming the likely mistake, and returns True only when every case passes.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .base import Array, Case, Hint, Number, raw_shape, run_cases, spec


# ------------------------------------------------------------------------------------------------
# the normalized margin of a linear classifier
# ------------------------------------------------------------------------------------------------
def normalized_margin_reference(w, x, y) -> float:
    """Geometric margin of the separator ⟨w, x⟩ = 0: ``min_i y_i ⟨w, x_i⟩ / ‖w‖`` (negative if a point is
    misclassified); the hard-margin SVM direction maximizes it over ``w``."""
    w, x, y = (np.asarray(a, dtype=float) for a in (w, x, y))
    return float((y * (x @ w)).min() / np.linalg.norm(w))


@spec("normalized_margin")
def _normalized_margin_spec() -> dict:
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
    nrm = np.linalg.norm
    return dict(
        cases=[Case(c, f"w={np.round(c[0], 2).tolist()}, {len(c[2])} point{'s' if len(c[2]) > 1 else ''} in "
                       f"{c[1].shape[1]}-D") for c in cases],
        reference=normalized_margin_reference, answer=Number(), params=("w", "x", "y"),
        hints=[
            Hint("return one number: take the minimum over the points", lambda c, o: raw_shape(o) == c.args[2].shape),
            Hint.like("divide by ‖w‖: the margin is a distance, it must not change when w is scaled",
                      lambda w, x, y: (y * (x @ w)).min()),
            Hint.like("divide by ‖w‖, not ‖w‖²", lambda w, x, y: (y * (x @ w)).min() / nrm(w) ** 2),
            Hint.like("divide by the Euclidean norm ‖w‖₂, not the sum of absolute values ‖w‖₁",
                      lambda w, x, y: (y * (x @ w)).min() / np.abs(w).sum()),
            Hint.like("multiply by the labels: a point is on the right side when y_i⟨w, x_i⟩ > 0",
                      lambda w, x, y: (x @ w).min() / nrm(w)),
            Hint.like("keep the sign: a misclassified point has a *negative* margin, |⟨w, x_i⟩| hides it",
                      lambda w, x, y: np.abs(x @ w).min() / nrm(w)),
            Hint.like("the margin is the *smallest* y_i⟨w, x_i⟩/‖w‖ over the points, not their mean",
                      lambda w, x, y: (y * (x @ w)).mean() / nrm(w)),
            Hint.like("the margin is the *smallest* y_i⟨w, x_i⟩/‖w‖ over the points, not the largest",
                      lambda w, x, y: (y * (x @ w)).max() / nrm(w)),
            Hint.like("np.argmin gives the index of the closest point; return the value, the min itself",
                      lambda w, x, y: float(np.argmin(y * (x @ w)))),
            Hint.like("divide by ‖w‖ only: dividing by ‖x_i‖ too gives a cosine, not a distance",
                      lambda w, x, y: (y * (x @ w) / (nrm(w) * nrm(x, axis=1))).min()),
        ])


def check_normalized_margin(fn: Callable) -> bool:
    """Check ``fn(w, x, y) -> float`` (numpy in) returns the normalized margin min_i y_i⟨w, x_i⟩ / ‖w‖."""
    return run_cases("normalized_margin", fn, **_normalized_margin_spec())


# ------------------------------------------------------------------------------------------------
# effective rank (Roy & Vetterli 2007)
# ------------------------------------------------------------------------------------------------
def effective_rank_reference(singular_values) -> float:
    """exp(H(p)) with p_i = σ_i / Σ_j σ_j and H the Shannon entropy in nats (0·log 0 = 0)."""
    s = np.asarray(singular_values, dtype=float)
    p = s[s > 0] / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def _p(s, power=1.0, by="sum"):
    pos = s[s > 0] ** power
    return pos / (pos.sum() if by == "sum" else pos.max())


@spec("effective_rank")
def _effective_rank_spec() -> dict:
    cases = [np.array([1.0, 0.0, 0.0]), np.array([2.0, 2.0, 0.0]), np.array([3.0, 1.0]),
             np.array([5.0, 4.0, 3.0, 2.0, 1.0]), np.array([10.0, 1e-3, 1e-3, 0.0]), np.ones(6)]
    h = lambda p: float(-(p * np.log(p)).sum())  # noqa: E731
    return dict(
        cases=[Case((s,), f"σ = {s.tolist()}") for s in cases], reference=effective_rank_reference,
        answer=Number(plain=True, why="the chapter rounds it with round(…, 4)"), params=("singular_values",),
        in_place="compute p = s / s.sum() into a new array, leave the singular values as they are",
        hints=[
            Hint("skip zero singular values: 0·log 0 counts as 0 (p·log p is NaN at p = 0)",
                 lambda c, o: o.value is not None and not np.isfinite(o.value)),
            Hint.like("normalize by the sum of the singular values (p = σ/Σσ), not of their squares",
                      lambda s: np.exp(h(_p(s, 2)))),
            Hint.like("normalize by the sum Σσ so that p sums to 1, not by the largest σ",
                      lambda s: np.exp(h(_p(s, by="max")))),
            Hint.like("you returned the entropy H; the effective rank is exp(H)", lambda s: h(_p(s))),
            Hint.like("entropy in bits needs 2**H, entropy in nats exp(H) — do not mix log2 with exp",
                      lambda s: np.exp(-(_p(s) * np.log2(_p(s))).sum())),
            Hint.like("entropy in nats (np.log) goes with exp(H), entropy in bits (np.log2) with 2**H — not 2**H "
                      "with np.log", lambda s: 2.0 ** h(_p(s))),
            Hint.like("that is the participation ratio 1/Σpᵢ²; the effective rank is exp of the Shannon entropy",
                      lambda s: 1 / (_p(s) ** 2).sum()),
            Hint.like("that is the number of non-zero singular values (the rank), not the effective rank",
                      lambda s: float((s > 0).sum())),
        ])


def check_effective_rank(fn: Callable) -> bool:
    """Check ``fn(singular_values) -> float`` returns Roy & Vetterli's effective rank exp(H(σ/‖σ‖₁))."""
    return run_cases("effective_rank", fn, **_effective_rank_spec())


# ------------------------------------------------------------------------------------------------
# the natural gradient of least squares
# ------------------------------------------------------------------------------------------------
def natural_gradient_linear_reference(x, grad, damping: float):
    """(F + λI)⁻¹ g for L(θ) = (1/2n)‖Xθ − y‖², whose Fisher (= Gauss–Newton) matrix is F = XᵀX/n."""
    x = np.asarray(x, dtype=float)
    g = np.asarray(grad, dtype=float)
    fisher = x.T @ x / len(x) + damping * np.eye(x.shape[1])
    return np.linalg.solve(fisher, g)


@spec("natural_gradient_linear")
def _natural_gradient_spec() -> dict:
    rng = np.random.default_rng(4)
    cases = []
    for n, d, lam in ((20, 3, 0.1), (50, 5, 1e-3), (8, 4, 1.0), (30, 6, 0.0)):
        x = rng.normal(size=(n, d)) * rng.uniform(0.2, 3.0, size=d)
        cases.append(Case((x, rng.normal(size=d), lam), f"X {n}×{d}, λ={lam:g}"))
    eye = lambda x: np.eye(x.shape[1])  # noqa: E731
    solve = np.linalg.solve
    return dict(
        cases=cases, reference=natural_gradient_linear_reference, answer=Array(), params=("x", "grad", "damping"),
        hints=[
            Hint("the Fisher is d×d: XᵀX, not XXᵀ (the result has one entry per parameter)",
                 lambda c, o: raw_shape(o) == (len(c.args[0]),)),
            Hint.like("divide XᵀX by n: the loss is a mean over the examples",
                      lambda x, g, lam: solve(x.T @ x + lam * eye(x), g)),
            Hint.like("add the damping λI before solving", lambda x, g, lam: solve(x.T @ x / len(x), g)),
            Hint.like("add λ to the diagonal only, λ·np.eye(d): `+ λ` adds it to every entry",
                      lambda x, g, lam: solve(x.T @ x / len(x) + lam, g)),
            Hint.like("solve with the Fisher (multiply by its inverse), do not multiply by it",
                      lambda x, g, lam: (x.T @ x / len(x) + lam * eye(x)) @ g),
            Hint.like("the damping λI is added after dividing XᵀX by n", lambda x, g, lam: solve((x.T @ x + lam * eye(x)) / len(x), g)),
            Hint.like("that is the plain gradient: precondition it with (F + λI)⁻¹", lambda x, g, lam: g),
        ])


def check_natural_gradient_linear(fn: Callable) -> bool:
    """Check ``fn(x, grad, damping) -> direction`` returns (XᵀX/n + λI)⁻¹ grad (numpy arrays in and out)."""
    return run_cases("natural_gradient_linear", fn, **_natural_gradient_spec())


__all__ = ["normalized_margin_reference", "check_normalized_margin", "effective_rank_reference", "check_effective_rank",
           "natural_gradient_linear_reference", "check_natural_gradient_linear"]
