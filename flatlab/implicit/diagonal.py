"""Diagonal linear networks w = u⊙u − v⊙v (Woodworth et al.): the model, its stable step size, batched
GD/SGD over many init scales (:func:`train_diagonal`) and the relative error to a reference solution."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import _validate as _v
from ._common import DTYPE, Runs, _single_threaded, _xy


class DiagonalLinearNet(nn.Module):
    """Diagonal linear network f(x) = ⟨w, x⟩ with w = u⊙u − v⊙v, initialized u = v = α·1 (so w = 0): the
    model of Woodworth et al. The init scale α moves GD between the kernel (large α) and rich (small α)
    regimes. The init is deterministic; ``seed`` only adds an optional jitter (``jitter`` > 0).

    >>> net = DiagonalLinearNet(3, alpha=0.1)
    >>> net.weight.tolist()
    [0.0, 0.0, 0.0]
    """

    def __init__(self, dim: int, alpha: float = 1.0, jitter: float = 0.0, seed: int = 0):
        super().__init__()
        dim = _v.integer("dim", dim, 1)
        alpha = _v.positive("alpha", alpha)
        jitter = _v.non_negative("jitter", jitter)
        g = torch.Generator().manual_seed(_v.seed("seed", seed))
        self.u = nn.Parameter(alpha * (1 + jitter * torch.randn(dim, generator=g, dtype=DTYPE)))
        self.v = nn.Parameter(alpha * (1 + jitter * torch.randn(dim, generator=g, dtype=DTYPE)))
        self.alpha = alpha

    @property
    def weight(self) -> torch.Tensor:
        """w = u⊙u − v⊙v."""
        return self.u * self.u - self.v * self.v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(DTYPE) @ self.weight


def diagonal_lr(x, y, alpha: float) -> float:
    """A stable GD step for a diagonal net on ½·mean (⟨w,x⟩ − y)²: η = 1/(λ·max(8α², max|y|/2)), λ = λ_max(XᵀX/n).
    At init the (u, v)-Hessian's top eigenvalue is 8α²λ; later it is ≈ 4λ·max|w_i|.

    >>> diagonal_lr(torch.eye(2), torch.tensor([1., 1.]), 1.0) == 1 / (0.5 * 8)
    True
    """
    x, y = _xy(x, y)
    alpha = _v.positive("alpha", alpha)
    lam = float(torch.linalg.eigvalsh(x.T @ x / len(y))[-1])
    return 1.0 / (lam * max(8 * alpha**2, float(y.abs().max()) / 2))


@_single_threaded
def train_diagonal(x, y, alphas: Sequence[float], steps: int = 100_000, lr: float | Sequence[float] | None = None,
                   tol: float = 1e-8, batch_size: int | None = None, seed: int = 0, record_every: int | None = None,
                   lr_scale: float = 1.0) -> Runs:
    """GD (or SGD with ``batch_size``) on ½·mean(⟨u⊙u − v⊙v, x_i⟩ − y_i)² for every α at once (batched).

    Each α uses ``lr`` (default :func:`diagonal_lr` × ``lr_scale``) and stops when its relative training loss
    ‖Xw − y‖²/‖y‖² < ``tol`` (then it is frozen). A run whose loss becomes NaN/inf or grows 1e6× is
    marked ``diverged``. ``solutions[i]`` is w for ``alphas[i]``.

    >>> X, y = torch.randn(5, 8, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    >>> runs = train_diagonal(X, y, [0.01, 1.0], steps=2000); runs.summary.columns[:3].tolist()
    ['alpha', 'lr', 'steps']
    """
    x, y = _xy(x, y)
    if isinstance(alphas, (int, float)):
        alphas = [alphas]
    alphas = [_v.positive("alphas", a) for a in alphas]
    if not alphas:
        raise ValueError("alphas must hold at least one init scale")
    steps = _v.integer("steps", steps, 1)
    tol = _v.non_negative("tol", tol)
    lr_scale = _v.positive("lr_scale", lr_scale)
    n, d = x.shape
    if batch_size is not None:
        batch_size = _v.integer("batch_size", batch_size, 1)
        if batch_size > n:
            raise ValueError(f"batch_size={batch_size} is larger than the {n} training examples")
    if lr is None:
        lrs = [lr_scale * diagonal_lr(x, y, a) for a in alphas]
    elif isinstance(lr, (int, float)):
        lrs = [_v.positive("lr", lr)] * len(alphas)
    else:
        lrs = [_v.positive("lr", v) for v in lr]
        if len(lrs) != len(alphas):
            raise ValueError(f"lr has {len(lrs)} entries for {len(alphas)} alphas")
    record_every = _v.integer("record_every", record_every, 1) if record_every is not None else max(1, steps // 100)
    g = torch.Generator().manual_seed(_v.seed("seed", seed))
    a = torch.tensor(alphas, dtype=DTYPE)[:, None]
    eta = torch.tensor(lrs, dtype=DTYPE)[:, None]
    usq, vsq = (a * a).repeat(1, d), (a * a).repeat(1, d)  # u⊙u and v⊙v: the update needs only these
    yy = float(y @ y)
    active = torch.ones(len(alphas), dtype=torch.bool)
    diverged = torch.zeros(len(alphas), dtype=torch.bool)
    stop_step = torch.full((len(alphas),), steps)
    hist = []
    rel0 = None
    check_every = 25  # convergence / divergence checks (and records) cost a sync: not every step
    xt = x.T.contiguous()
    step_size = eta.clone()
    step = 0
    while True:
        r = torch.addmm(-y, usq - vsq, xt)  # (A, n) residuals of w = u⊙u − v⊙v
        if step % check_every == 0 or step % record_every == 0 or step == steps:
            rel = (r * r).sum(1) / yy
            if rel0 is None:
                rel0 = rel.clone()
            bad = active & (~torch.isfinite(rel) | (rel > 1e6 * rel0.clamp(min=1e-300)))
            if bad.any():
                diverged |= bad
                stop_step[bad] = step
                active &= ~bad
            done = active & (rel < tol)
            if done.any():
                stop_step[done] = step
                active &= ~done
            step_size = torch.where(active[:, None], eta, torch.zeros_like(eta))
            if step % record_every == 0 or step == steps or not active.any():
                hist.extend({"run": i, "alpha": alphas[i], "step": step, "train_loss": float(rel[i])}
                            for i in range(len(alphas)))
            if step == steps or not active.any():
                break
        if batch_size is None:
            grad = r @ x
            grad *= step_size * (2.0 / n)
        else:
            idx = torch.randperm(n, generator=g)[:batch_size]
            grad = r[:, idx] @ x[idx]
            grad *= step_size * (2.0 / batch_size)
        # u ← u(1 − 2η∇_w L), v ← v(1 + 2η∇_w L), written for the squares
        usq = usq * (1 - grad).square_()
        vsq = vsq * (1 + grad).square_()
        step += 1
    w = usq - vsq
    final_rel = ((w @ x.T - y) ** 2).sum(1) / yy
    summary = pd.DataFrame({"alpha": alphas, "lr": lrs, "steps": stop_step.tolist(),
                            "train_loss": final_rel.tolist(), "converged": (final_rel < max(tol, 1e-300) * 10).tolist(),
                            "diverged": diverged.tolist()})
    return Runs(summary=summary, history=pd.DataFrame(hist), solutions={i: w[i].numpy().copy() for i in range(len(alphas))},
                factors={i: (usq[i].numpy().copy(), vsq[i].numpy().copy()) for i in range(len(alphas))})


def diagonal_hessian(x, y, usq, vsq) -> dict[str, float]:
    """Trace and λ_max of the Hessian of L(u, v) = ½·mean(⟨u⊙u − v⊙v, x_k⟩ − y_k)² at the point with u⊙u = ``usq``,
    v⊙v = ``vsq`` (u, v ≥ 0, as the diagonal nets keep them), and the weighted ℓ1 norm that bounds the trace.

    With J_k = ∂f_k/∂(u, v) = (2u⊙x_k, −2v⊙x_k) and r the residuals, H = JᵀJ/n + diag(2Xᵀr/n, −2Xᵀr/n). The
    residual part has zero trace, so **tr H = 4 Σ_i (u_i² + v_i²) m_i** with m_i = mean_k x_ki² at any point — and
    u_i² + v_i² ≥ |u_i² − v_i²| = |w_i| gives tr H ≥ 4 Σ_i m_i |w_i| (``l1_bound``), with near-equality once
    min(u_i², v_i²) is small: the trace of the Hessian is a weighted ℓ1 norm of the solution (Wu & Su 2023).

    >>> x = torch.eye(2, dtype=torch.float64); h = diagonal_hessian(x, x @ torch.tensor([1., 0.], dtype=torch.float64),
    ...                                                             np.array([1.0, 0.0]), np.array([0.0, 0.0]))
    >>> round(h["trace"], 6), round(h["l1_bound"], 6)
    (2.0, 2.0)
    """
    x, y = _xy(x, y)
    usq, vsq = (torch.as_tensor(np.asarray(a, dtype=float), dtype=DTYPE) for a in (usq, vsq))
    n, d = x.shape
    if usq.shape != (d,) or vsq.shape != (d,):
        raise ValueError(f"usq and vsq must have shape ({d},) like a row of x, got {tuple(usq.shape)}, {tuple(vsq.shape)}")
    if (usq < 0).any() or (vsq < 0).any() or not (torch.isfinite(usq).all() and torch.isfinite(vsq).all()):
        raise ValueError("usq and vsq must be finite and non-negative (they are squares)")
    u, v = usq.sqrt(), vsq.sqrt()
    jac = torch.cat([2 * u * x, -2 * v * x], 1)                   # (n, 2d)
    g = x.T @ (x @ (usq - vsq) - y) / n
    hess = jac.T @ jac / n + torch.diag(torch.cat([2 * g, -2 * g]))
    m = (x * x).mean(0)
    return {"trace": float(4 * ((usq + vsq) * m).sum()), "lambda_max": float(torch.linalg.eigvalsh(hess)[-1]),
            "l1_bound": float(4 * (m * (usq - vsq).abs()).sum()), "dense_trace": float(torch.diagonal(hess).sum())}


def relative_error(w, reference) -> float:
    """‖w − w_ref‖ / ‖w_ref‖.

    >>> relative_error(np.array([1.0, 0.1]), np.array([1.0, 0.0]))
    0.1
    """
    w = np.asarray(w.detach() if isinstance(w, torch.Tensor) else w, dtype=float)
    ref = np.asarray(reference.detach() if isinstance(reference, torch.Tensor) else reference, dtype=float)
    if w.shape != ref.shape:
        raise ValueError(f"w has shape {w.shape}, reference {ref.shape}")
    norm = np.linalg.norm(ref)
    if norm == 0:
        raise ValueError("reference must be non-zero")
    return float(np.linalg.norm(w - ref) / norm)
