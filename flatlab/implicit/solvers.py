"""Conjugate gradients from matrix-vector products and the natural-gradient direction
(Jᵀ diag(w) J + λI)⁻¹ g solved with them on ``torch.func`` Jacobian-vector products."""
from __future__ import annotations

from typing import Callable

import torch

from .. import _validate as _v
from ._common import _matrix


def conjugate_gradient(matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, iters: int = 100,
                       tol: float = 1e-10, precond: Callable[[torch.Tensor], torch.Tensor] | None = None
                       ) -> tuple[torch.Tensor, int]:
    """Solve A x = b for symmetric positive definite A given only x ↦ A x (Hestenes–Stiefel conjugate gradients,
    preconditioned by x ↦ M⁻¹x when ``precond`` is given), from x = 0; stops when ‖r‖ ≤ tol·‖b‖.
    Returns (x, iterations used).

    >>> A = torch.tensor([[3., 1.], [1., 2.]], dtype=torch.float64)
    >>> x, _ = conjugate_gradient(lambda v: A @ v, torch.tensor([1., 0.], dtype=torch.float64))
    >>> torch.allclose(A @ x, torch.tensor([1., 0.], dtype=torch.float64))
    True
    """
    if not callable(matvec):
        raise TypeError("matvec must be a callable x -> A x")
    iters = _v.integer("iters", iters, 1)
    _v.non_negative("tol", tol)
    x = torch.zeros_like(b)
    r = b.clone()
    stop = float(tol * b.norm()) ** 2
    if float(r @ r) <= stop:
        return x, 0
    z = precond(r) if precond is not None else r
    p = z.clone()
    rz = r @ z
    for i in range(1, iters + 1):
        ap = matvec(p)
        alpha = rz / (p @ ap)
        x = x + alpha * p
        r = r - alpha * ap
        if float(r @ r) <= stop:
            return x, i
        z = precond(r) if precond is not None else r
        rz_new = r @ z
        p = z + (rz_new / rz) * p
        rz = rz_new
    return x, iters


def natural_gradient(f: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor, grad: torch.Tensor, damping: float,
                     weights: torch.Tensor | None = None, cg_iters: int = 200, tol: float = 1e-10) -> torch.Tensor:
    """Natural-gradient direction d = (Jᵀ diag(weights) J + λ I)⁻¹ g, with J = ∂f/∂θ the Jacobian of the model
    outputs f(θ) (the Fisher / Gauss–Newton matrix of a loss whose output-space curvature is ``weights``;
    ``weights=None`` means 1). Solved by conjugate gradients; each product J ᵀ(w ⊙ J v) costs one
    ``torch.func.jvp`` and one ``torch.func.vjp`` — the matrix is never formed.

    >>> X = torch.randn(5, 3, dtype=torch.float64); g = torch.ones(3, dtype=torch.float64)
    >>> d = natural_gradient(lambda t: X @ t, torch.zeros(3, dtype=torch.float64), g, damping=0.1)
    >>> torch.allclose(d, torch.linalg.solve(X.T @ X + 0.1 * torch.eye(3, dtype=torch.float64), g))
    True
    """
    from torch.func import jvp, vjp

    if not callable(f):
        raise TypeError("f must be a callable theta -> outputs")
    theta, grad = _matrix("theta", theta, 1), _matrix("grad", grad, 1)
    if theta.shape != grad.shape:
        raise ValueError(f"grad has shape {tuple(grad.shape)}, theta {tuple(theta.shape)}")
    damping = _v.non_negative("damping", damping)
    out, pullback = vjp(f, theta)
    if weights is not None:
        weights = _matrix("weights", weights, 1)
        if weights.shape != out.reshape(-1).shape:
            raise ValueError(f"weights has shape {tuple(weights.shape)} but f has {out.numel()} outputs")
        weights = weights.reshape(out.shape)

    def matvec(v: torch.Tensor) -> torch.Tensor:
        jv = jvp(f, (theta,), (v,))[1]
        if weights is not None:
            jv = jv * weights
        return pullback(jv)[0] + damping * v

    d, _ = conjugate_gradient(matvec, grad, iters=cg_iters, tol=tol)
    return d
