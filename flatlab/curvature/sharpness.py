"""Sharpness measures around the current weights: worst-case (SAM's first-order maximizer or projected
ascent), adaptive (ASAM's operator ``T = |w| + η``) and average (Gaussian, antithetic) sharpness."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .. import _validate as _v
from ._common import Data, LossFn, _Loss



def _norm(ts: Sequence[Tensor]) -> float:
    return math.sqrt(sum(float(torch.sum(t.double() ** 2)) for t in ts))


ASAM_ETA = 0.01  # Kwon et al.'s offset η in T = |w| + η (their code's default)


def _adaptive_scales(L: "_Loss", adaptive: Any, eta: Any, weights_only: Any) -> list[Tensor]:
    """The diagonal operator ``T`` of the sharpness ball ``‖T⁻¹ε‖ ≤ ρ``, one tensor per parameter.

    Plain: ``T = 1``. Adaptive (Kwon et al. 2021, their eq. and released code): ``T = |w| + η`` on
    the parameters whose name contains ``"weight"``, ``T = 1`` on the others (biases); with
    ``weights_only=False`` every parameter is scaled.
    """
    adaptive = _v.boolean("adaptive", adaptive)
    eta = _v.non_negative("eta", eta)
    weights_only = _v.boolean("weights_only", weights_only)
    if not adaptive:
        return [torch.ones_like(w) for w in L.w]
    scaled = [not weights_only or "weight" in n for n in L.names]
    if not any(scaled):
        raise ValueError("weights_only=True but no parameter's name contains 'weight' (names: "
                         f"{', '.join(L.names[:5])}{' …' if len(L.names) > 5 else ''}); pass "
                         "weights_only=False to scale every parameter")
    return [w.abs() + eta if s else torch.ones_like(w) for w, s in zip(L.w, scaled)]


def worst_case_sharpness(model: nn.Module, loss_fn: LossFn, data: Data, rho: float = 0.05,
                         steps: int = 1, adaptive: bool = False, eta: float = ASAM_ETA,
                         weights_only: bool = True) -> float:
    """Worst-case sharpness ``max_{‖T⁻¹ε‖≤ρ} L(w+ε) − L(w)`` (``T = 1``, or ASAM's ``T`` if adaptive).

    ``steps=1`` is SAM's first-order maximizer ``ε = ρ T²g/‖T g‖`` with ``g = ∇L(w)`` (plain:
    ``ε = ρ g/‖g‖``). ``steps > 1`` continues with normalized projected gradient ascent in the
    ball, ``δ ← Π_ρ(δ + (2ρ/steps) T∇L/‖T∇L‖)``, ``ε = Tδ``, and returns the largest loss increase
    seen (never below the first-order value). Parameters are left unchanged, bit for bit.

    ``adaptive=True`` is Kwon et al.'s (2021) adaptive sharpness with their operator
    ``T = |w| + η`` (``eta``, default 0.01) on the parameters whose name contains ``"weight"`` and
    ``T = 1`` on the others. Only ``eta=0, weights_only=False`` (``T = |w|`` on every parameter)
    makes the value *exactly* invariant to a rescaling such as ``(αW₁, αb₁, W₂/α)`` of a ReLU
    network: the rescaling maps the ball onto the ball. The paper's operator is invariant only
    approximately — where ``α|w| ≫ η`` and the biases' share of the ball is small.

    >>> model = torch.nn.Linear(3, 1)
    >>> data = (torch.randn(8, 3), torch.randn(8, 1))
    >>> s = worst_case_sharpness(model, torch.nn.functional.mse_loss, data, rho=0.05)
    >>> s >= 0
    True
    """
    rho = _v.positive("rho", rho)
    steps = _v.integer("steps", steps, 1)
    L = _Loss(model, loss_fn, data)
    T = _adaptive_scales(L, adaptive, eta, weights_only)
    l0, g = L.value_and_grad()
    u = [t * gi for t, gi in zip(T, g)]
    nu = _norm(u)
    if nu == 0.0:
        return 0.0
    delta = [rho * ui / nu for ui in u]
    eps = [t * d for t, d in zip(T, delta)]
    best = -math.inf
    lr = 2 * rho / steps
    for _ in range(steps - 1):
        lt, gt = L.value_and_grad(eps, check_finite=False)
        if not math.isfinite(lt):  # the ball reaches a diverging point: report it as is
            return lt - l0
        best = max(best, lt)
        u = [t * gi for t, gi in zip(T, gt)]
        nu = _norm(u)
        if nu == 0.0:
            break
        delta = [d + lr * ui / nu for d, ui in zip(delta, u)]
        nd = _norm(delta)
        if nd > rho:
            delta = [d * (rho / nd) for d in delta]
        eps = [t * d for t, d in zip(T, delta)]
    last = L.value(eps, check_finite=False)
    return (last if not math.isfinite(last) else max(best, last)) - l0


def adaptive_sharpness(model: nn.Module, loss_fn: LossFn, data: Data, rho: float = 0.05,
                       steps: int = 1, eta: float = ASAM_ETA, weights_only: bool = True) -> float:
    """Adaptive (ASAM) worst-case sharpness ``max_{‖T⁻¹ε‖≤ρ} L(w+ε) − L(w)``.

    ``T = |w| + η`` on weights, ``1`` on biases (Kwon et al. 2021; ``eta=0.01`` as in their code).
    ``eta=0, weights_only=False`` gives ``T = |w|`` everywhere, which is exactly invariant to the
    ReLU rescalings of :func:`flatlab.models.rescale_layers`; the paper's operator only nearly is.
    Same as ``worst_case_sharpness(..., adaptive=True)``.

    >>> model = torch.nn.Linear(3, 1)
    >>> data = (torch.randn(8, 3), torch.randn(8, 1))
    >>> s = adaptive_sharpness(model, torch.nn.functional.mse_loss, data, rho=0.1)
    """
    return worst_case_sharpness(model, loss_fn, data, rho=rho, steps=steps, adaptive=True, eta=eta,
                                weights_only=weights_only)


def average_sharpness(model: nn.Module, loss_fn: LossFn, data: Data, sigma: float = 0.01,
                      n_samples: int = 20, adaptive: bool = False, seed: int = 0, eta: float = ASAM_ETA,
                      weights_only: bool = True) -> float:
    """Average sharpness ``E_ε[L(w+ε)] − L(w)``, ``ε ~ N(0, σ²T²)`` (``T = 1``; adaptive: ASAM's ``T``).

    Monte Carlo over ``n_samples`` draws, each used antithetically (``±ε``: unbiased, and the
    first-order term ``gᵀε`` cancels exactly), so it costs ``2·n_samples + 1`` forward passes. For
    a quadratic ``½wᵀAw`` each draw gives exactly ``½εᵀAε``, whose mean is ``½σ² tr(TAT)``. The
    adaptive operator ``T`` is the one of :func:`worst_case_sharpness` (``eta``, ``weights_only``).
    Noise is drawn from ``torch.Generator().manual_seed(seed)``; parameters are left unchanged.

    >>> model = torch.nn.Linear(3, 1)
    >>> data = (torch.randn(8, 3), torch.randn(8, 1))
    >>> s = average_sharpness(model, torch.nn.functional.mse_loss, data, sigma=0.1)
    """
    sigma = _v.positive("sigma", sigma)
    n_samples = _v.integer("n_samples", n_samples, 1)
    L = _Loss(model, loss_fn, data)
    T = _adaptive_scales(L, adaptive, eta, weights_only)
    gen = torch.Generator().manual_seed(_v.seed("seed", seed))
    l0 = L.value()
    total = 0.0
    for _ in range(n_samples):
        eps = [sigma * t * torch.randn(w.shape, generator=gen, dtype=torch.float64).to(w.dtype)
               for w, t in zip(L.w, T)]
        total += 0.5 * (L.value(eps, check_finite=False)
                        + L.value([-e for e in eps], check_finite=False))
    return total / n_samples - l0
