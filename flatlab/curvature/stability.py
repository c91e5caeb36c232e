"""Linear stability on a quadratic: ``STABILITY_METHODS``, :func:`stability_threshold` (the largest curvature at
which GD, heavy ball or Nesterov is stable: the edge-of-stability thresholds, Cohen et al. 2021) and
:func:`quadratic_rate` (heavy ball's contraction per step along one direction)."""
from __future__ import annotations

import numpy as np

from .. import _validate as _v

STABILITY_METHODS = ("gd", "heavy_ball", "nesterov")
OPTIMIZERS = STABILITY_METHODS   # the earlier name (flatlab.train.OPTIMIZERS is another list: fit's names)


def stability_threshold(lr: float, optimizer: str = "gd", momentum: float = 0.0) -> float:
    """Largest curvature λ at which the optimizer is stable on ``½λw²``: GD ``2/η``; heavy ball
    ``(2+2β)/η``; Nesterov ``(2+2β)/(η(1+2β))``.

    Derivation (one eigen-direction of a quadratic, ``g = λw``):
    - GD: ``w⁺ = (1−ηλ)w`` is stable iff ``|1−ηλ| < 1`` ⇔ ``λ < 2/η``.
    - Heavy ball (PyTorch SGD momentum, ``w⁺ = w − ηλw + β(w − w⁻)``): characteristic polynomial
      ``z² − (1+β−ηλ)z + β``. Complex roots have ``|z|² = β < 1``; a real root leaves the unit
      disc through ``z = −1`` when ``1 + (1+β−ηλ) + β = 0`` ⇔ ``λ = (2+2β)/η``.
    - Nesterov (PyTorch ``nesterov=True``, i.e. ``y = w + β(w − w⁻)``, ``w⁺ = y − ηλy``):
      ``z² − (1−ηλ)(1+β)z + (1−ηλ)β``; complex roots have ``|z|² = β(1−ηλ) < 1``, and ``z = −1``
      is a root when ``(1−ηλ)(1+2β) = −1`` ⇔ ``λ = (2+2β)/(η(1+2β))``.
    With β = 0 all three are ``2/η``.

    >>> stability_threshold(0.1), stability_threshold(0.5, "heavy_ball", momentum=0.5)
    (20.0, 6.0)
    >>> stability_threshold(0.5, "nesterov", momentum=0.5)
    3.0
    """
    lr = _v.positive("lr", lr)
    _v.choice("optimizer", optimizer, STABILITY_METHODS)
    momentum = _v.number("momentum", momentum, 0, 1, high_open=True)
    lr, b = float(lr), float(momentum)
    if optimizer == "gd":
        if b != 0.0:
            raise ValueError(f"momentum={momentum} must be 0 for optimizer='gd'; use 'heavy_ball' "
                             f"or 'nesterov'")
        return 2.0 / lr
    if optimizer == "heavy_ball":
        return (2.0 + 2.0 * b) / lr
    return (2.0 + 2.0 * b) / (lr * (1.0 + 2.0 * b))


def quadratic_rate(lam: float, lr: float, momentum: float = 0.0) -> float:
    """Per-step contraction of heavy ball along a direction of curvature λ: the largest root modulus
    of ``z² − (1 + β − ηλ) z + β`` (GD: ``|1 − ηλ|``); < 1 ⇔ the direction converges.

    >>> quadratic_rate(10.0, 0.15), round(quadratic_rate(10.0, 0.25), 6)
    (0.5, 1.5)
    """
    roots = np.roots([1.0, -(1.0 + momentum - lr * lam), momentum])
    return float(np.abs(roots).max())
