"""Chapter 03 exercises: check functions and reference solutions.

Each ``check_*`` runs the student's function on several cases, prints ✓/✗ with the case, the expected and
the obtained value and a hint naming the likely mistake, and returns True only when every case passes; a
stub that still raises ``NotImplementedError`` gets a friendly note.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .base import Array, Case, Hint, Number, raw_shape, run_cases, spec

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


def _power(h, lr, t, sign=-1.0):
    return np.linalg.matrix_power(np.eye(len(h)) + sign * lr * h, t)


@spec("gd_iterate")
def _gd_iterate_spec() -> dict:
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
    eigh = np.linalg.eigh
    return dict(
        cases=[Case(c, f"H={np.round(c[0], 2).tolist()}, w₀={np.round(c[1], 2).tolist()}, η={c[2]:g}, t={c[3]}")
               for c in cases],
        reference=gd_iterate_reference, params=("hessian", "w0", "lr", "steps"),
        answer=Array(kinds=("numpy",), why="the chapter calls .round(4) on it"),
        in_place="start from a copy (w = w0.copy()) or write w = w - η·H @ w",
        hints=[
            Hint("return the iterate w_t (a vector shaped like w₀), not the matrix (I − ηH)ᵗ",
                 lambda c, o: raw_shape(o) == c.args[0].shape),
            Hint.like("`**` on a numpy array is elementwise: use np.linalg.matrix_power(I − ηH, t) or the "
                      "eigendecomposition", lambda h, w, lr, t: (np.eye(len(w)) - lr * h) ** t @ w),
            Hint.like("a gradient step goes downhill: the factor is I − ηH, not I + ηH",
                      lambda h, w, lr, t: _power(h, lr, t, +1) @ w),
            Hint.like("off by one: apply the step t times, not t − 1", lambda h, w, lr, t: _power(h, lr, max(t - 1, 0)) @ w),
            Hint.like("off by one: apply the step t times, not t + 1", lambda h, w, lr, t: _power(h, lr, t + 1) @ w),
            Hint.like("rotate back: (1 − ηλᵢ)ᵗ scales the coordinates Qᵀw₀ in the eigenbasis, so return Q · (those "
                      "scaled coordinates)", lambda h, w, lr, t: (1 - lr * eigh(h)[0]) ** t * (eigh(h)[1].T @ w)),
            Hint.like("project w₀ onto the eigenvectors first: the factors act on Qᵀw₀, not on w₀",
                      lambda h, w, lr, t: eigh(h)[1] @ ((1 - lr * eigh(h)[0]) ** t * w)),
            Hint.like("Q diag(…) Qᵀ: the eigenvectors are the *columns* of Q — you used Q and Qᵀ the other way round",
                      lambda h, w, lr, t: eigh(h)[1].T @ ((1 - lr * eigh(h)[0]) ** t * (eigh(h)[1] @ w))),
            Hint.like("every eigen-direction has its own factor (1 − ηλᵢ)ᵗ, not only the top one",
                      lambda h, w, lr, t: (1 - lr * np.linalg.eigvalsh(h).max()) ** t * w),
            Hint.like("the gradient changes after every step: t steps multiply by (I − ηH) t times, they do not add "
                      "t copies of the first step", lambda h, w, lr, t: w - t * lr * (h @ w)),
        ])


def check_gd_iterate(fn: Callable) -> bool:
    """Check ``fn(hessian, w0, lr, steps) -> w_t`` (numpy) is GD's iterate (I − ηH)ᵗ w₀ on ½ wᵀHw."""
    return run_cases("gd_iterate", fn, **_gd_iterate_spec())


# ------------------------------------------------------------------------------------------------
# the heavy-ball stability threshold
# ------------------------------------------------------------------------------------------------
def heavy_ball_threshold_reference(lr: float, momentum: float) -> float:
    """Largest curvature λ on which heavy ball ``w⁺ = w − ηλw + β(w − w⁻)`` is stable: (2 + 2β)/η.

    The characteristic polynomial ``z² − (1 + β − ηλ) z + β`` has a root at ``z = −1`` when
    ``1 + (1 + β − ηλ) + β = 0``; complex roots have ``|z|² = β < 1``.
    """
    return (2.0 + 2.0 * momentum) / lr


@spec("heavy_ball_threshold")
def _heavy_ball_spec() -> dict:
    # β = 0.5 alone would not do: there (1 + β)/η equals Nesterov's (2 + 2β)/(η(1 + 2β))
    cases = [(0.1, 0.0), (0.1, 0.9), (0.5, 0.5), (0.01, 0.99), (2.0, 0.3), (0.05, 0.7)]
    return dict(
        cases=[Case(c, f"η={c[0]}, β={c[1]}") for c in cases], reference=heavy_ball_threshold_reference,
        answer=Number(), params=("lr", "momentum"),
        hints=[
            Hint.like("you ignored the momentum: the momentum term enlarges the stable range to (2 + 2β)/η",
                      lambda lr, b: 2.0 / lr),
            Hint.like("2/(η/(1−β)) uses the effective step size η/(1−β) of the slow drift; stability is set by the "
                      "oscillating root z = −1, which gives (2 + 2β)/η", lambda lr, b: 2.0 * (1 - b) / lr),
            Hint.like("that is Nesterov's threshold (2 + 2β)/(η(1 + 2β)), not heavy ball's",
                      lambda lr, b: (2 + 2 * b) / (lr * (1 + 2 * b))),
            Hint.like("missing a factor 2: the root z = −1 gives 1 + (1 + β − ηλ) + β = 0, so ηλ = 2 + 2β",
                      lambda lr, b: (1 + b) / lr),
            Hint.like("the root z = −1 gives 1 + (1 + β − ηλ) + β = 0: both β terms count, ηλ = 2 + 2β, not 2 + β",
                      lambda lr, b: (2 + b) / lr),
            Hint.like("that is Adam's threshold (2 + 2β)/((1 − β)η); heavy ball's gradient is not scaled by (1 − β)",
                      lambda lr, b: (2 + 2 * b) / ((1 - b) * lr)),
            Hint.like("you returned the threshold upside down: λ_max = (2 + 2β)/η, i.e. η_max = (2 + 2β)/λ",
                      lambda lr, b: lr / (2 + 2 * b)),
        ])


def check_heavy_ball_threshold(fn: Callable) -> bool:
    """Check ``fn(lr, momentum) -> float`` returns the largest stable curvature (2 + 2β)/η of heavy ball."""
    return run_cases("heavy_ball_threshold", fn, **_heavy_ball_spec())


# ------------------------------------------------------------------------------------------------
# linear learning-rate warmup
# ------------------------------------------------------------------------------------------------
def warmup_lr_reference(step: int, lr: float, warmup: int) -> float:
    """Linear warmup: the learning rate of step ``step`` (1, 2, …) is ``η · min(1, step / warmup)``;
    ``warmup = 0`` means no warmup (the constant η) — the rule of ``flatlab.sweep.Run.lr_at``."""
    return lr if warmup == 0 else lr * min(1.0, step / warmup)


def _warm(f) -> Callable:
    """A candidate rate ``f(step, lr, warmup)``, the constant η when warmup = 0."""
    return lambda t, lr, w: lr if w == 0 else f(t, lr, w)


@spec("warmup_lr")
def _warmup_spec() -> dict:
    cases = [(1, 0.5, 100), (50, 0.5, 100), (100, 0.5, 100), (250, 0.5, 100), (1, 1.0, 1), (7, 0.2, 0), (3, 0.1, 4)]
    return dict(
        cases=[Case(c, f"step={c[0]}, η={c[1]}, warmup={c[2]}") for c in cases], reference=warmup_lr_reference,
        answer=Number(), params=("step", "lr", "warmup"),
        hints=[
            Hint.raised("warmup=0 means no warmup: return η without dividing", ZeroDivisionError),
            Hint.like("after the warmup the rate must stay at η: cap the factor with min(1, step/warmup)",
                      _warm(lambda t, lr, w: lr * t / w)),
            Hint.like("cap the factor with min(1, step/warmup), not max: the rate grows up to η, not from it",
                      _warm(lambda t, lr, w: lr * max(1.0, t / w))),
            Hint.like("off by one: the first step (step=1) already moves, with η/warmup, not 0",
                      _warm(lambda t, lr, w: lr * min(1.0, (t - 1) / w))),
            Hint.like("off by one: steps count from 1, so step=1 has η/warmup",
                      _warm(lambda t, lr, w: lr * min(1.0, (t + 1) / w))),
            Hint.like("the ratio is upside down: the rate grows like step/warmup",
                      _warm(lambda t, lr, w: lr * min(1.0, w / t))),
            Hint.like("multiply by η: min(1, step/warmup) is only the fraction of the full rate",
                      _warm(lambda t, lr, w: min(1.0, t / w))),
            Hint.like("use true division step / warmup, not floor division //", _warm(lambda t, lr, w: lr * min(1, t // w))),
        ])


def check_warmup_lr(fn: Callable) -> bool:
    """Check ``fn(step, lr, warmup) -> float`` is linear warmup η·min(1, step/warmup) (constant when warmup=0)."""
    return run_cases("warmup_lr", fn, **_warmup_spec())
