"""The Hessian eigenvalue density by stochastic Lanczos quadrature (SLQ): Lanczos with full
reorthogonalization, the quadrature nodes and weights (:func:`slq_nodes`) and the Gaussian-broadened
density (:func:`spectral_density`)."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.linalg as sla
import torch
from torch import Tensor, nn

from .. import _validate as _v
from ._common import Data, LossFn, _alphas, _rademacher
from .hessian import HessianOperator



def _lanczos(op: HessianOperator, v: Tensor, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` Lanczos steps from ``v`` (float64, full reorthogonalization) → (α, β)."""
    v = v / torch.linalg.vector_norm(v)
    V = [v]
    alphas: list[float] = []
    betas: list[float] = []
    thresh = 100 * torch.finfo(op.dtype).eps
    w = op.matvec(v)
    for j in range(steps):
        a = float(V[-1] @ w)
        alphas.append(a)
        if j == steps - 1:
            break
        w = w - a * V[-1] - (betas[-1] * V[-2] if betas else 0.0)
        Vm = torch.stack(V)
        for _ in range(2):  # full reorthogonalization, twice is enough
            w = w - Vm.T @ (Vm @ w)
        b = float(torch.linalg.vector_norm(w))
        scale = max(max(abs(x) for x in alphas), max(betas, default=0.0), 1e-300)
        if b <= thresh * scale:  # invariant subspace found: the quadrature is exact already
            break
        betas.append(b)
        V.append(w / b)
        w = op.matvec(V[-1])
    return np.asarray(alphas), np.asarray(betas)


def _slq(op: HessianOperator, n_probes: int, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    steps = min(steps, op.dim)
    nodes = np.zeros((n_probes, steps))
    weights = np.zeros((n_probes, steps))
    for i, z in enumerate(_rademacher(op.dim, n_probes, seed)):
        a, b = _lanczos(op, z, steps)
        if len(a) == 1:
            theta, U = a.copy(), np.ones((1, 1))
        else:
            theta, U = sla.eigh_tridiagonal(a, b[:len(a) - 1])
        m = len(theta)
        nodes[i, :m] = theta
        nodes[i, m:] = theta[-1]  # padding (weight 0) when Lanczos stopped early
        weights[i, :m] = U[0, :] ** 2
    return nodes, weights


def slq_nodes(model: nn.Module, loss_fn: LossFn, data: Data, n_probes: int = 8,
              lanczos_steps: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stochastic Lanczos quadrature nodes and weights: ``zᵀf(H)z/‖z‖² ≈ Σ_j w_j f(θ_j)``.

    For each Rademacher probe ``z`` (the same probes as :func:`hessian_trace` with this ``seed``)
    run ``m = min(lanczos_steps, dim)`` Lanczos steps; the Ritz values ``θ_j`` of the tridiagonal
    ``T`` are the nodes and the squared first components of its eigenvectors the weights (each
    row sums to 1). Exact for polynomials of degree < 2m, so ``mean_i Σ_j w_ij θ_ij`` equals
    Hutchinson's ``tr H / dim`` with the same probes. Returns arrays ``[n_probes, m]``; rows of
    probes whose Krylov space closed early are padded with weight 0.

    >>> model = torch.nn.Linear(3, 2)
    >>> data = (torch.randn(8, 3), torch.randint(0, 2, (8,)))
    >>> nodes, weights = slq_nodes(model, torch.nn.functional.cross_entropy, data, lanczos_steps=4)
    >>> nodes.shape
    (8, 4)
    """
    n_probes = _v.integer("n_probes", n_probes, 1)
    lanczos_steps = _v.integer("lanczos_steps", lanczos_steps, 1)
    seed = _v.seed("seed", seed)
    op = HessianOperator(model, loss_fn, data)
    return _slq(op, n_probes, lanczos_steps, seed)


def _density(nodes: np.ndarray, weights: np.ndarray, grid: Any, sigma: float | None
             ) -> tuple[np.ndarray, np.ndarray]:
    live = weights > 0
    lo, hi = float(nodes[live].min()), float(nodes[live].max())
    if sigma is None:
        sigma = 0.01 * (hi - lo) if hi > lo else 1e-3 * max(1.0, abs(hi))
    if grid is None:
        n = int(min(200_001, max(1001, math.ceil((hi - lo + 12 * sigma) / (sigma / 5)) + 1)))
        grid = np.linspace(lo - 6 * sigma, hi + 6 * sigma, n)
    else:
        grid = _alphas("grid", grid)
        if grid.size < 2 or np.any(np.diff(grid) <= 0):
            raise ValueError("grid must be strictly increasing with at least 2 points")
    w = weights[live] / nodes.shape[0]
    t = nodes[live]
    dens = np.zeros_like(grid)
    for chunk in range(0, t.size, 256):
        tt, ww = t[chunk:chunk + 256], w[chunk:chunk + 256]
        dens += (ww[None, :] * np.exp(-0.5 * ((grid[:, None] - tt[None, :]) / sigma) ** 2)).sum(1)
    dens /= sigma * math.sqrt(2 * math.pi)
    return grid, dens


def spectral_density(model: nn.Module, loss_fn: LossFn, data: Data, n_probes: int = 8,
                     lanczos_steps: int = 60, grid: np.ndarray | Sequence[float] | None = None,
                     sigma: float | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Hessian eigenvalue density by stochastic Lanczos quadrature with Gaussian broadening.

    ``φ(t) = (1/n_probes) Σ_i Σ_j w_ij N(t; θ_ij, σ²)`` with the nodes and weights of
    :func:`slq_nodes`; it integrates to 1 over ℝ. Default ``σ = 1 %`` of the Ritz-value range and a
    grid reaching 6σ beyond the extreme Ritz values with spacing ≤ σ/5, so the density also
    integrates to 1 on the grid (trapezoid rule). Use a log scale to see the bulk and the outliers.

    >>> model = torch.nn.Linear(3, 2)
    >>> data = (torch.randn(8, 3), torch.randint(0, 2, (8,)))
    >>> grid, dens = spectral_density(model, torch.nn.functional.cross_entropy, data, lanczos_steps=4)
    >>> round(float(np.trapezoid(dens, grid)), 6)
    1.0
    """
    if sigma is not None:
        sigma = _v.positive("sigma", sigma)
    nodes, weights = slq_nodes(model, loss_fn, data, n_probes=n_probes,
                               lanczos_steps=lanczos_steps, seed=seed)
    return _density(nodes, weights, grid, sigma)
