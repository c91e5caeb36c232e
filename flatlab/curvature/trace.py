"""Stochastic estimates of the Hessian trace: Hutchinson and Hutch++ (:func:`hessian_trace`,
``TRACE_METHODS``, and ``_trace`` on a :class:`HessianOperator`)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .. import _validate as _v
from ._common import Data, LossFn, _rademacher
from .hessian import HessianOperator



TRACE_METHODS = ("hutchinson", "hutch++")


def _check_method(method: Any) -> str:
    return _v.choice("method", method, TRACE_METHODS)


def _trace(op: HessianOperator, n_samples: int, method: str, seed: int) -> float:
    dim = op.dim
    if method == "hutchinson":
        zs = _rademacher(dim, n_samples, seed)
        return float(np.mean([float(z @ op.matvec(z)) for z in zs]))
    # Hutch++ (Meyer et al. 2021, Algorithm 1) with exactly n_samples products:
    # m1 = n//3 for the sketch H S, m1 for H Q, the rest for Hutchinson on the deflated part.
    m1 = n_samples // 3
    m2 = n_samples - 2 * m1
    zs = _rademacher(dim, n_samples, seed)
    S = torch.stack(zs[:m1], dim=1)
    G = torch.stack(zs[m1:m1 + m2], dim=1)
    HS = torch.stack([op.matvec(S[:, j]) for j in range(m1)], dim=1)
    Q, _ = torch.linalg.qr(HS)
    HQ = torch.stack([op.matvec(Q[:, j]) for j in range(Q.shape[1])], dim=1)
    t_low = float(torch.sum(Q * HQ))
    Gp = G - Q @ (Q.T @ G)
    t_rest = float(np.mean([float(Gp[:, j] @ op.matvec(Gp[:, j])) for j in range(m2)]))
    return t_low + t_rest


def hessian_trace(model: nn.Module, loss_fn: LossFn, data: Data, n_samples: int = 100,
                  method: str = "hutchinson", seed: int = 0) -> float:
    """Stochastic estimate of ``tr H = E[zᵀ H z]`` with Rademacher probes ``z``.

    ``"hutchinson"``: the mean of ``zᵀHz`` over ``n_samples`` probes (error ~ 1/√n).
    ``"hutch++"``: exact trace of a low-rank sketch ``QᵀHQ`` (Q from ``H S``) plus Hutchinson on
    ``(I−QQᵀ)H(I−QQᵀ)`` — the same ``n_samples`` Hessian-vector products, error ~ 1/n when the
    spectrum decays (Meyer et al. 2021). Probe ``i`` is the same for every method and for
    :func:`slq_nodes` with the same ``seed``.

    >>> model = torch.nn.Linear(3, 2)
    >>> data = (torch.randn(8, 3), torch.randint(0, 2, (8,)))
    >>> t = hessian_trace(model, torch.nn.functional.cross_entropy, data, n_samples=30)
    """
    n_samples = _v.integer("n_samples", n_samples, 1)
    seed = _v.seed("seed", seed)
    method = _check_method(method)
    if method == "hutch++" and n_samples < 3:
        raise ValueError(f"n_samples={n_samples} must be >= 3 for method='hutch++'")
    op = HessianOperator(model, loss_fn, data)
    return _trace(op, n_samples, method, seed)
