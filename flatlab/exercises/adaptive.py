"""Exercises of chapter 06 (adaptive optimizers and averaging): Adam's stability threshold, Adam's
preconditioned sharpness and Adam's bias-corrected step."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .base import Array, Case, Hint, Number, raw_shape, run_cases, spec

__all__ = ["adam_threshold_reference", "check_adam_threshold", "preconditioned_lambda_max_reference",
           "check_preconditioned_lambda_max", "adam_step_reference", "check_adam_step"]


def adam_threshold_reference(lr: float, beta1: float) -> float:
    """Largest stable preconditioned sharpness of Adam: (2 + 2β₁) / ((1 − β₁) η)."""
    return (2 + 2 * beta1) / ((1 - beta1) * lr)


@spec("adam_threshold")
def _adam_threshold_spec() -> dict:
    # β₁ = 0.5 alone would not do: there (1+β)/((1−β)η) equals heavy ball's (2+2β)/η
    cases = [(1e-3, 0.9), (0.01, 0.0), (0.1, 0.5), (2e-4, 0.95), (0.05, 0.8), (0.02, 0.3)]
    return dict(
        cases=[Case(c, f"η={c[0]:g}, β₁={c[1]:g}") for c in cases], reference=adam_threshold_reference,
        answer=Number(), params=("lr", "beta1"),
        hints=[
            Hint.like("2/η is plain GD's threshold; Adam's momentum changes it", lambda lr, b: 2 / lr),
            Hint.like("(2+2β)/η is heavy ball's threshold; Adam's EMA momentum m ← β₁m + (1−β₁)g scales the gradient "
                      "by (1−β₁), so divide by (1−β₁) too", lambda lr, b: (2 + 2 * b) / lr),
            Hint.like("the numerator is 2 + 2β₁ (the root z = −1 of z² − (1+β₁−(1−β₁)ηλ)z + β₁), not 2",
                      lambda lr, b: 2 / ((1 - b) * lr)),
            Hint.like("missing a factor 2: the root z = −1 gives (1−β₁)ηλ = 2 + 2β₁, not 1 + β₁",
                      lambda lr, b: (1 + b) / ((1 - b) * lr)),
            Hint.like("divide by (1 − β₁), do not multiply: the EMA shrinks the gradient by (1 − β₁), so the "
                      "threshold grows by 1/(1 − β₁)", lambda lr, b: (2 + 2 * b) * (1 - b) / lr),
            Hint.like("38/η holds only for β₁ = 0.9; use β₁", lambda lr, b: 38 / lr),
            Hint.like("you returned the threshold upside down: λ_max = (2+2β₁)/((1−β₁)η), not its inverse",
                      lambda lr, b: (1 - b) * lr / (2 + 2 * b)),
        ])


def check_adam_threshold(fn: Callable) -> bool:
    """Check ``fn(lr, beta1) -> float`` returns (2+2β₁)/((1−β₁)η) and name the likely mistake."""
    return run_cases("adam_threshold", fn, **_adam_threshold_spec())


def preconditioned_lambda_max_reference(hessian, v_hat, eps: float = 1e-8) -> float:
    """λ_max(P⁻¹H) with P = diag(√v̂ + ε), computed as λ_max of the symmetric P^{-1/2} H P^{-1/2}."""
    h = np.asarray(hessian, dtype=float)
    s = 1.0 / np.sqrt(np.sqrt(np.asarray(v_hat, dtype=float)) + eps)
    return float(np.linalg.eigvalsh(s[:, None] * h * s[None, :])[-1])


def _sym(h, p, which=-1) -> float:
    """An eigenvalue (default the largest) of P^{-1/2} H P^{-1/2} for the diagonal ``p``."""
    s = 1.0 / np.sqrt(p)
    return float(np.linalg.eigvalsh(s[:, None] * h * s[None, :])[which])


@spec("preconditioned_lambda_max")
def _preconditioned_spec() -> dict:
    rng = np.random.default_rng(0)
    q = np.linalg.qr(rng.normal(size=(4, 4)))[0]
    cases = [
        (np.diag([4.0, 1.0]), np.array([0.04, 0.01]), 1e-8),
        (np.array([[2.0, 1.0], [1.0, 3.0]]), np.array([0.25, 1e-4]), 1e-8),
        (q @ np.diag([10.0, 3.0, 1.0, -0.5]) @ q.T, np.array([1e-2, 4e-4, 1e-6, 0.09]), 1e-8),
        (np.array([[5.0, 2.0], [2.0, 1.0]]), np.array([1e-12, 1e-2]), 1e-3),
    ]
    return dict(
        cases=[Case(c, f"H={np.round(c[0], 2).tolist()}, v̂={c[1].tolist()}, ε={c[2]:g}") for c in cases],
        reference=preconditioned_lambda_max_reference, answer=Number(), params=("hessian", "v_hat", "eps"),
        in_place="build P into a new array (p = np.sqrt(v_hat) + eps), leave v_hat as it is",
        hints=[
            Hint("return only the largest eigenvalue (one number), not all of them",
                 lambda c, o: raw_shape(o) == (len(c.args[1]),)),
            Hint.like("that is λ_max(H): divide by Adam's preconditioner P first",
                      lambda h, v, eps: float(np.linalg.eigvalsh(h)[-1])),
            Hint.like("eigvalsh sorts ascending: [-1] is the largest eigenvalue, [0] the smallest",
                      lambda h, v, eps: _sym(h, np.sqrt(v) + eps, 0)),
            Hint.like("P is √v̂ + ε (a root mean square), not v̂ + ε", lambda h, v, eps: _sym(h, v + eps)),
            Hint.like("you left out ε: where v̂ ≈ 0 it is ε that bounds Adam's step", lambda h, v, eps: _sym(h, np.sqrt(v))),
            Hint.like("ε is added after the square root: P = √v̂ + ε, not √(v̂ + ε)",
                      lambda h, v, eps: _sym(h, np.sqrt(v + eps))),
            Hint.like("you multiplied by P; the update divides the gradient by P, so use P^{-1/2} H P^{-1/2}",
                      lambda h, v, eps: _sym(h, 1 / (np.sqrt(v) + eps))),
            Hint.like("P⁻¹H is not symmetric, so eigvalsh (which reads one triangle) is wrong for it; use the "
                      "symmetric P^{-1/2} H P^{-1/2}, which has the same eigenvalues",
                      lambda h, v, eps: float(np.linalg.eigvalsh(h / (np.sqrt(v) + eps)[:, None])[-1])),
        ])


def check_preconditioned_lambda_max(fn: Callable) -> bool:
    """Check ``fn(hessian, v_hat, eps) -> float`` (numpy arrays) returns λ_max(P⁻¹H), P = diag(√v̂ + ε)."""
    return run_cases("preconditioned_lambda_max", fn, **_preconditioned_spec())


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


def _emas(g, b1, b2, square=np.square):
    m = v = 0.0
    for gt in g:
        m, v = b1 * m + (1 - b1) * gt, b2 * v + (1 - b2) * square(gt)
    return m, v


def _adam_variant(f) -> Callable:
    """A candidate update ``f(m, v, t, g, lr, b1, b2, eps)`` from the EMAs m, v after the t rows of g."""
    def candidate(g, lr, b1, b2, eps):
        m, v = _emas(g, b1, b2)
        return f(m, v, len(g), g, lr, b1, b2, eps)
    return candidate


@spec("adam_step")
def _adam_step_spec() -> dict:
    rng = np.random.default_rng(6)
    cases = [
        (np.array([[1e-4, -3.0, 0.02]]), 0.3, 0.9, 0.999, 1e-8),
        (np.array([[0.5, -1.0], [0.3, -0.8], [0.4, -1.2]]), 0.01, 0.9, 0.999, 1e-8),
        (rng.normal(size=(10, 4)) * np.array([1e-3, 1.0, 10.0, 0.1]), 1e-3, 0.9, 0.999, 1e-8),
        (rng.normal(size=(5, 3)), 0.1, 0.5, 0.9, 1e-8),
        (np.array([[0.01, 0.2, 0.0], [0.02, -0.1, 0.0]]), 0.05, 0.9, 0.99, 0.1),
        (rng.normal(size=(40, 2)) + np.array([1.0, -0.5]), 2e-3, 0.8, 0.95, 1e-6),
    ]
    A = _adam_variant
    sqrt = np.sqrt
    return dict(
        cases=[Case(c, f"t={len(c[0])}, {c[0].shape[1]} parameters, η={c[1]:g}, β₁={c[2]:g}, β₂={c[3]:g}, ε={c[4]:g}")
               for c in cases],
        reference=adam_step_reference, params=("grads", "lr", "beta1", "beta2", "eps"),
        answer=Array(kinds=("numpy",), why="the chapter calls .round(4) on it"),
        in_place="compute g² into a new array (g ** 2), leave grads as they are",
        hints=[
            Hint("return only the step after the last gradient (one entry per parameter), not one row per step",
                 lambda c, o: raw_shape(o) == c.args[0].shape),
            Hint.like("no bias correction: divide m by 1 − β₁ᵗ and v by 1 − β₂ᵗ — the uncorrected step is "
                      "(1−β₁ᵗ)/√(1−β₂ᵗ) times the corrected one: at t = 1 with β₁ = 0.9, β₂ = 0.999 about 3.2 "
                      "times too large", A(lambda m, v, t, g, lr, b1, b2, eps: -lr * m / (sqrt(v) + eps))),
            Hint.like("correct v as well: v̂_t = v_t/(1 − β₂ᵗ)",
                      A(lambda m, v, t, g, lr, b1, b2, eps: -lr * m / (1 - b1**t) / (sqrt(v) + eps))),
            Hint.like("correct m as well: m̂_t = m_t/(1 − β₁ᵗ)",
                      A(lambda m, v, t, g, lr, b1, b2, eps: -lr * m / (sqrt(v / (1 - b2**t)) + eps))),
            Hint.like("the corrections are swapped: m̂ uses β₁ᵗ, v̂ uses β₂ᵗ",
                      A(lambda m, v, t, g, lr, b1, b2, eps: -lr * (m / (1 - b2**t)) / (sqrt(v / (1 - b1**t)) + eps))),
            Hint.like("off by one in the bias correction: after t gradients divide by 1 − βᵗ, not 1 − βᵗ⁻¹ (which is 0 "
                      "at t = 1)", A(lambda m, v, t, g, lr, b1, b2, eps:
                                     -lr * (m / (1 - b1**(t - 1))) / (sqrt(v / (1 - b2**(t - 1))) + eps))),
            Hint.like("off by one in the bias correction: after t gradients divide by 1 − βᵗ, not 1 − βᵗ⁺¹",
                      A(lambda m, v, t, g, lr, b1, b2, eps:
                        -lr * (m / (1 - b1**(t + 1))) / (sqrt(v / (1 - b2**(t + 1))) + eps))),
            Hint.like("ε is added after the square root: √v̂ + ε, not √(v̂ + ε)",
                      A(lambda m, v, t, g, lr, b1, b2, eps: -lr * m / (1 - b1**t) / sqrt(v / (1 - b2**t) + eps))),
            Hint.like("wrong sign: the step goes against the gradient, −η m̂/(√v̂ + ε)",
                      A(lambda m, v, t, g, lr, b1, b2, eps: lr * m / (1 - b1**t) / (sqrt(v / (1 - b2**t)) + eps))),
            Hint.like("multiply by the learning rate η", A(lambda m, v, t, g, lr, b1, b2, eps:
                                                           -m / (1 - b1**t) / (sqrt(v / (1 - b2**t)) + eps))),
            Hint.like("divide by the root √v̂ (an RMS of the gradients), not by v̂",
                      A(lambda m, v, t, g, lr, b1, b2, eps: -lr * m / (1 - b1**t) / (v / (1 - b2**t) + eps))),
            Hint.like("v is the running average of the *squared* gradients g², not of |g|",
                      lambda g, lr, b1, b2, eps: (lambda m, v: -lr * m / (1 - b1**len(g)) / (
                          sqrt(v / (1 - b2**len(g))) + eps))(*_emas(g, b1, b2, np.abs))),
            Hint.like("return the last step θ_t − θ_{t−1} only, not the sum of all t steps",
                      lambda g, lr, b1, b2, eps: np.sum([adam_step_reference(g[:k], lr, b1, b2, eps)
                                                         for k in range(1, len(g) + 1)], axis=0)),
            Hint.like("m and v are running averages over all the gradients, not the last gradient alone",
                      lambda g, lr, b1, b2, eps: -lr * g[-1] / (np.abs(g[-1]) + eps)),
        ])


def check_adam_step(fn: Callable) -> bool:
    """Check ``fn(grads, lr, beta1, beta2, eps) -> update`` (numpy; ``grads`` has one row per step) is Adam's
    bias-corrected step −η m̂_t/(√v̂_t + ε) after the last gradient."""
    return run_cases("adam_step", fn, **_adam_step_spec())
