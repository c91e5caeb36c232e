"""Separable logistic regression: the log-domain logistic loss and :func:`train_logistic` (GD, normalized GD
and natural GD of a linear classifier, optionally reparameterized), with the methods it knows (``METHODS``)."""
from __future__ import annotations

import math

import torch

from .. import _validate as _v
from ._common import DTYPE, _log_steps, _matrix, _single_threaded, _xy
from .references import mirrored  # noqa: F401  (train_logistic's docstring example calls it)
from .solvers import natural_gradient

METHODS = ("gd", "normalized", "ngd")


def log_logistic_loss(margins: torch.Tensor) -> torch.Tensor:
    """log ℓ(m) for the logistic loss ℓ(m) = log(1 + e^{−m}), exact in the log domain even when ℓ underflows.

    >>> float(log_logistic_loss(torch.tensor([1000.0], dtype=torch.float64)))
    -1000.0
    """
    m = margins.to(DTYPE)
    pos = m > 0
    t = torch.exp(-m.clamp(min=0))  # ∈ (0, 1] where m > 0
    ratio = torch.where(t > 0, torch.log1p(t) / torch.where(t > 0, t, torch.ones_like(t)), torch.ones_like(t))
    big = -m + torch.log(ratio)  # log(log1p(t)) = log t + log(log1p(t)/t)
    small = torch.log(torch.nn.functional.softplus(-m.clamp(max=0)))
    return torch.where(pos, big, small)


def logistic_loss(w, x, y) -> float:
    """Mean logistic loss L(w) = (1/N) Σ log(1 + exp(−y_i⟨w, x_i⟩)).

    >>> round(logistic_loss(torch.zeros(2), torch.ones(3, 2), torch.ones(3)), 6)
    0.693147
    """
    x, y = _xy(x, y)
    w = _matrix("w", w, 1)
    return float(torch.nn.functional.softplus(-(x @ w) * y).mean())


@_single_threaded
def train_logistic(x, y, steps: int = 10_000, lr: float = 1.0, method: str = "gd", reference=None,
                   reparam=None, damping: float = 1e-6, n_records: int = 60, cg_iters: int = 50):
    """Full-batch training of a linear classifier w = A θ (A = ``reparam``, default I) on the logistic loss.

    ``method``: ``"gd"`` θ ← θ − η∇L; ``"normalized"`` θ ← θ − η∇L/L (the ratio computed in the log domain,
    so it stays exact after L underflows); ``"ngd"`` θ ← θ − η F_λ⁻¹∇L with the Fisher
    F = (1/N) Σ p_i(1−p_i) ∇m_i ∇m_iᵀ and relative damping λ = ``damping``·tr(F)/dim, solved by CG.
    Records at log-spaced steps: loss (log10), ‖w‖, normalized margin and, with a ``reference`` direction,
    cos(w, reference). Returns a :class:`flatlab.train.History`; ``.info["w"]`` holds the final w.

    >>> X, y = mirrored(torch.tensor([[2., 0.], [1., 3.]]), torch.tensor([1., 1.]))
    >>> h = train_logistic(X, y, steps=100); bool(h.final.margin > 0)
    True
    """
    from ..train import Recorder

    x, y = _xy(x, y)
    steps, n_records, cg_iters = _v.integer("steps", steps, 1), _v.integer("n_records", n_records, 2), _v.integer("cg_iters", cg_iters, 1)
    lr = _v.positive("lr", lr)
    damping = _v.non_negative("damping", damping)
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not known; allowed values: {', '.join(METHODS)}")
    d = x.shape[1]
    a = torch.eye(d, dtype=DTYPE) if reparam is None else _matrix("reparam", reparam, 2)
    if a.shape[0] != d:
        raise ValueError(f"reparam must have {d} rows (w = reparam @ theta), got shape {tuple(a.shape)}")
    ref = None
    if reference is not None:
        ref = _matrix("reference", reference, 1)
        ref = ref / ref.norm()
    z = (y[:, None] * x) @ a  # margins m = z θ
    n = len(y)
    theta = torch.zeros(a.shape[1], dtype=DTYPE)
    records = set(_log_steps(steps, n_records).tolist())
    rec = Recorder(divergence_factor=None)

    def record(step: int, m: torch.Tensor) -> None:
        w = a @ theta
        norm = float(w.norm())
        log_loss = float(torch.logsumexp(log_logistic_loss(m), 0) - math.log(n)) / math.log(10)
        if rec.rows and rec.last["step"] == step:   # the last record of a step is the one kept
            rec.rows.pop()
        row = rec.add(step, {"log10_loss": log_loss, "norm": norm,
                             "margin": float(m.min()) / norm if norm > 0 else float("nan")})
        if ref is not None:
            row["cos"] = float(w @ ref) / norm if norm > 0 else float("nan")

    zt = z.T.contiguous()
    for step in range(steps + 1):
        m = torch.mv(z, theta)
        if step in records:
            record(step, m)
            if not torch.isfinite(theta).all():
                rec.diverged_step = step
                break
        if step == steps:
            break
        if method == "gd":  # the hot loop: two BLAS calls and a sigmoid
            theta.addmv_(zt, torch.sigmoid(m.neg_()), alpha=lr / n)
            continue
        if method == "normalized":
            # ∇L/L = −Σ_i σ(−m_i) z_i / Σ_j ℓ(m_j), with the weights formed in the log domain
            logw = torch.nn.functional.logsigmoid(-m) - torch.logsumexp(log_logistic_loss(m), 0)
            g = -(z.T @ torch.exp(logw))
        else:  # natural gradient
            s = torch.sigmoid(-m)
            g = -(z.T @ s) / n
            fw = s * (1 - s) / n
            lam = damping * float((fw[:, None] * z * z).sum()) / z.shape[1]
            if lam == 0 or float(g.norm()) == 0:  # the Fisher underflowed: every margin is beyond ~700
                rec.stop()
                record(step, m)
                break
            g = natural_gradient(lambda t: z @ t, theta, g, damping=lam, weights=fw, cg_iters=cg_iters)
        theta = theta - lr * g
    return rec.history(w=a @ theta, method=method, lr=lr, steps=steps, damping=damping)
