"""Natural gradient descent on deep matrix factorization (Kerekes et al.): the block-Jacobi (Kronecker-factored)
preconditioner and :func:`train_ngd_factorization` with its metrics (``METRICS``: all entries or the observed ones)."""
from __future__ import annotations

import math
from typing import Callable

import torch

from .. import _validate as _v
from ..data import Dataset
from ._common import DTYPE, _completion_data, _single_threaded
from .factorization import DeepMatrixFactorization, _product
from .solvers import conjugate_gradient
from .spectra import effective_rank

METRICS = ("all", "observed")


def _block_preconditioner(theta: torch.Tensor, depth: int, n: int, damping: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """Block-Jacobi preconditioner for JᵀJ + λI of W = W_L⋯W_1: the block of factor i is
    (J_iᵀJ_i + λI) V = A_i V B_i + λV with A_i = SᵀS (S = W_L⋯W_{i+1}) and B_i = PPᵀ (P = W_{i−1}⋯W_1),
    inverted exactly through the eigendecompositions of A_i and B_i (a Kronecker-factored solve)."""
    f = theta.reshape(depth, n, n)
    eye = torch.eye(n, dtype=theta.dtype)
    pre = [eye]
    for i in range(depth - 1):
        pre.append(f[i] @ pre[-1])
    suf = [eye]
    for i in range(depth - 1, 0, -1):
        suf.append(suf[-1] @ f[i])
    suf = suf[::-1]  # suf[i] = W_L ⋯ W_{i+2} (0-based factor i)
    parts = []
    for i in range(depth):
        ea, qa = torch.linalg.eigh(suf[i].T @ suf[i])
        eb, qb = torch.linalg.eigh(pre[i] @ pre[i].T)
        denom = ea.clamp(min=0)[:, None] * eb.clamp(min=0)[None, :]
        denom = denom + max(damping, 1e-12 * float(denom.max()), 1e-300)
        parts.append((qa, qb, denom))

    def apply(g: torch.Tensor) -> torch.Tensor:
        out = []
        for (qa, qb, denom), gi in zip(parts, g.reshape(depth, n, n)):
            out.append(qa @ ((qa.T @ gi @ qb) / denom) @ qb.T)
        return torch.stack(out).reshape(-1)

    return apply


@_single_threaded
def train_ngd_factorization(dataset: Dataset, depth: int = 3, init_scale: float = 1e-3, steps: int = 200,
                            lr: float = 0.5, damping: float = 1e-4, metric: str = "all", max_step: float = 0.1,
                            tol: float = 1e-8, seed: int = 0, cg_iters: int = 100, cg_tol: float = 1e-4,
                            record_every: int = 1, n_singular: int = 5):
    """Natural gradient descent on ½‖P_Ω(W_L⋯W_1 − M)‖²_F: θ ← θ − η (JᵀJ + λI)⁻¹ ∇L, each step's length capped
    at ``max_step``·‖θ‖ (the linearization W(θ + δ) ≈ W(θ) + Jδ only holds for small δ).

    ``metric="all"``: J = ∂ vec(W)/∂θ over **all** n² entries — the function-space (Fisher) metric, which
    makes the step in W ≈ −η P_Ω(W − M) whatever the depth (reparameterization invariance).
    ``metric="observed"``: J over the observed entries only (the Gauss–Newton / Fisher matrix of the
    training data), which is *not* invariant. Conjugate gradients on ``torch.func`` jvp/vjp products.
    Returns a :class:`flatlab.train.History` (step, train_loss, test_error, effective_rank, sv1…, cg) with
    ``.info["w"]`` the final W (numpy).

    >>> ds = flatlab.data.low_rank_matrix(n=10, rank=1, observed_fraction=0.5)  # doctest: +SKIP
    >>> h = train_ngd_factorization(ds, depth=2, steps=20)                       # doctest: +SKIP
    """
    from torch.func import jvp, vjp

    from ..train import Recorder

    m, mask = _completion_data(dataset)
    depth, steps, n_singular = _v.integer("depth", depth, 1), _v.integer("steps", steps, 1), _v.integer("n_singular", n_singular, 1)
    lr, max_step = _v.positive("lr", lr), _v.positive("max_step", max_step)
    damping, tol = _v.non_negative("damping", damping), _v.non_negative("tol", tol)
    record_every, cg_iters = _v.integer("record_every", record_every, 1), _v.integer("cg_iters", cg_iters, 1)
    cg_tol = _v.positive("cg_tol", cg_tol)
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r} is not known; allowed values: {', '.join(METRICS)}")
    n = m.shape[0]
    n_singular = min(n_singular, n)
    model = DeepMatrixFactorization(n, depth, init_scale, seed)
    theta = torch.cat([f.detach().reshape(-1) for f in model.factors])
    pmask = mask.to(DTYPE)
    target = m * pmask
    norm_obs, norm_test = float(target.norm()) ** 2, float((m * (1 - pmask)).norm()) ** 2
    obs_idx = mask.reshape(-1).nonzero().squeeze(1)

    def matrix_of(t: torch.Tensor) -> torch.Tensor:
        return _product(list(t.reshape(depth, n, n)))

    def outputs(t: torch.Tensor) -> torch.Tensor:
        flat = matrix_of(t).reshape(-1)
        return flat if metric == "all" else flat[obs_idx]

    rec, cg_used = Recorder(divergence_factor=None), 0
    for step in range(steps + 1):
        w = matrix_of(theta)
        r = pmask * w - target
        rel = float((r * r).sum()) / norm_obs
        if not math.isfinite(rel):
            rec.diverged_step = step
            break
        last = step == steps or rel < tol
        if step % record_every == 0 or last:
            s = torch.linalg.svdvals(w)
            rec.add(step, {"train_loss": rel,
                           "test_error": (float((((w - m) * (1 - pmask)) ** 2).sum()) / norm_test) ** 0.5,
                           "effective_rank": effective_rank(s.numpy()) if float(s.sum()) > 0 else float("nan"),
                           **{f"sv{k + 1}": float(s[k]) for k in range(n_singular)}, "cg": cg_used})
        if last:
            break
        out, pullback = vjp(outputs, theta)
        grad = pullback(r.reshape(-1) if metric == "all" else r.reshape(-1)[obs_idx])[0]  # ∇L = Jᵀ R

        def matvec(v: torch.Tensor) -> torch.Tensor:
            return pullback(jvp(outputs, (theta,), (v,))[1])[0] + damping * v

        direction, cg_used = conjugate_gradient(matvec, grad, iters=cg_iters, tol=cg_tol,
                                                precond=_block_preconditioner(theta, depth, n, damping))
        delta = lr * direction
        cap = max_step * float(theta.norm())
        size = float(delta.norm())
        if size > cap:
            delta = delta * (cap / size)
        theta = theta - delta
    if rec.rows and rec.last["train_loss"] < tol:
        rec.stop()
    return rec.history(w=matrix_of(theta).numpy().copy(), depth=depth, init_scale=init_scale, metric=metric,
                       damping=damping, lr=lr)
