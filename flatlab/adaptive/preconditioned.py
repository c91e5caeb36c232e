"""Adam's preconditioned sharpness λ_max(P⁻¹H), P = diag(√v̂ + ε), its stability threshold
(2+2β₁)/((1−β₁)η) and a probe that records it during training (Cohen et al. 2022, arXiv:2207.14484)."""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import scipy.sparse.linalg as spla
import torch
from torch import Tensor, nn

from .. import _validate as _v
from ..config import one_blas_thread
from ..curvature import HessianOperator, NonFiniteLossError


# ----------------------------------------------------------------------------------------------
# Adam's preconditioned sharpness and its edge of stability
# ----------------------------------------------------------------------------------------------
def adam_threshold(lr: float, beta1: float = 0.9) -> float:
    """Stability threshold of Adam's preconditioned sharpness: λ_max(P⁻¹H) < (2+2β₁)/((1−β₁)η).

    With a frozen preconditioner P, Adam is EMA-style heavy-ball momentum on the quadratic with
    curvature P⁻¹H: z² − (1+β₁−(1−β₁)ηλ)z + β₁ has a root at −1 when λ = (2+2β₁)/((1−β₁)η) — 38/η
    for β₁ = 0.9 (Cohen et al. 2022, arXiv:2207.14484).

    >>> round(adam_threshold(1e-3), 6)
    38000.0
    """
    lr = _v.positive("lr", lr)
    beta1 = _v.number("beta1", beta1, 0, 1, high_open=True)
    return (2 + 2 * beta1) / ((1 - beta1) * lr)


def adam_preconditioner(optimizer: torch.optim.Optimizer, model: nn.Module) -> Tensor:
    """Adam's diagonal preconditioner P = √v̂ + ε, v̂ = v/(1−β₂ᵗ), as one flat float64 vector.

    Read from the state of ``torch.optim.Adam``/``AdamW``/:class:`AdamCM` (``exp_avg_sq``, ``step``);
    entries follow ``model.parameters()`` restricted to ``requires_grad`` (the order of
    ``flatlab.curvature.HessianOperator``).

    >>> model = torch.nn.Linear(2, 1); opt = torch.optim.Adam(model.parameters(), lr=0.1)
    >>> model(torch.ones(4, 2)).pow(2).mean().backward(); opt.step()
    >>> adam_preconditioner(opt, model).shape
    torch.Size([3])
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    groups = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    parts = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        group = groups.get(id(p))
        if group is None or "betas" not in group or "eps" not in group:
            raise ValueError(f"parameter {name!r} is not optimized by an Adam-type optimizer "
                             f"(torch.optim.Adam, AdamW or flatlab.adaptive.AdamCM)")
        state = optimizer.state.get(p, {})
        if "exp_avg_sq" not in state:
            raise ValueError(f"optimizer has no second moment for {name!r} yet: take at least one step first")
        step = float(state["step"])
        v_hat = state["exp_avg_sq"].detach().double() / (1 - group["betas"][1] ** step)
        parts.append((v_hat.sqrt() + group["eps"]).reshape(-1))
    return torch.cat(parts)


def preconditioned_sharpness(model: nn.Module, loss_fn: Callable, data: tuple[Tensor, Tensor],
                             preconditioner: Tensor | torch.optim.Optimizer, k: int = 1, tol: float = 1e-4,
                             v0: Tensor | None = None, return_vectors: bool = False):
    """Top eigenvalues of P⁻¹H (= those of the symmetric P^{-1/2} H P^{-1/2}), descending.

    ``preconditioner`` is the flat diagonal P (all entries > 0) or an Adam-type optimizer, from
    which P = √v̂ + ε is read (:func:`adam_preconditioner`). Lanczos (``scipy.sparse.linalg.eigsh``)
    on a ``LinearOperator`` x ↦ P^{-1/2} H P^{-1/2} x over :class:`flatlab.curvature.HessianOperator`.
    Returns a float64 tensor of the ``k`` values (and the eigenvectors of the symmetric form when
    ``return_vectors``).

    >>> model = torch.nn.Linear(3, 1)
    >>> data = (torch.randn(16, 3), torch.randn(16, 1))
    >>> float(preconditioned_sharpness(model, torch.nn.functional.mse_loss, data, torch.ones(4))[0]) > 0
    True
    """
    op = HessianOperator(model, loss_fn, data)
    if isinstance(preconditioner, torch.optim.Optimizer):
        diag = adam_preconditioner(preconditioner, model)
    elif isinstance(preconditioner, Tensor):
        diag = preconditioner.detach().double().reshape(-1)
    else:
        raise TypeError("preconditioner must be a flat tensor (the diagonal of P) or an Adam-type optimizer, "
                        f"got {type(preconditioner).__name__}")
    if diag.numel() != op.dim:
        raise ValueError(f"preconditioner has {diag.numel()} entries but the model has {op.dim} trainable parameters")
    if not bool(torch.isfinite(diag).all()) or not bool((diag > 0).all()):
        raise ValueError("preconditioner entries must be finite and > 0")
    k = _v.integer("k", k, 1)
    if k >= op.dim:
        raise ValueError(f"k={k} must be < the number of parameters {op.dim}")
    tol = _v.positive("tol", tol)
    scale = (1.0 / diag.sqrt()).numpy()

    def mv(x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float64).reshape(-1) * scale
        return op.matvec(torch.from_numpy(x)).numpy() * scale

    lin = spla.LinearOperator((op.dim, op.dim), matvec=mv, rmatvec=mv, dtype=np.float64)
    start = np.random.default_rng(0).standard_normal(op.dim) if v0 is None else \
        np.asarray(v0.detach().double().numpy() if isinstance(v0, Tensor) else v0, dtype=np.float64).reshape(-1)
    with one_blas_thread():
        vals, vecs = spla.eigsh(lin, k=k, which="LA", tol=tol, v0=start)
    order = np.argsort(vals)[::-1]
    values = torch.as_tensor(vals[order].copy())
    if return_vectors:
        return values, torch.as_tensor(vecs[:, order].copy())
    return values


class PreconditionedSharpnessProbe:
    """A ``fit`` probe: Adam's preconditioned sharpness λ_max(P⁻¹H) (column ``precond_lambda_max``)
    and, with ``raw=True``, the plain λ_max(H) (column ``lambda_max``), on the first ``max_examples``
    training examples. P is read from ``optimizer``'s state at the moment of the call; before the
    first step (no second moment yet) and at a NaN/inf loss the values are NaN. Lanczos is
    warm-started from the previous eigenvector.

    >>> model = torch.nn.Linear(40, 10); opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    >>> probe = PreconditionedSharpnessProbe(torch.nn.functional.cross_entropy, opt, every=10)
    >>> probe.every
    10
    """

    def __init__(self, loss_fn: Callable, optimizer: torch.optim.Optimizer, every: int = 20,
                 max_examples: int | None = None, raw: bool = True, tol: float = 1e-3):
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        self.loss_fn, self.optimizer = loss_fn, optimizer
        self.every = _v.integer("every", every, 1)
        self.max_examples = None if max_examples is None else _v.integer("max_examples", max_examples, 1)
        self.raw, self.tol = bool(raw), _v.positive("tol", tol)
        self._v0: Tensor | None = None
        self._raw_v0: np.ndarray | None = None

    def __call__(self, model: nn.Module, dataset: Any, step: int) -> dict[str, float]:
        x, y = dataset.x_train, dataset.y_train
        if self.max_examples is not None:
            x, y = x[:self.max_examples], y[:self.max_examples]
        out = {"precond_lambda_max": math.nan}
        if self.raw:
            out["lambda_max"] = math.nan
        started = all("exp_avg_sq" in self.optimizer.state.get(p, {}) for p in model.parameters() if p.requires_grad)
        if not started:  # before the first step there is no preconditioner yet
            return out
        try:
            vals, vecs = preconditioned_sharpness(model, self.loss_fn, (x, y), self.optimizer, tol=self.tol,
                                                  v0=self._v0, return_vectors=True)
        except NonFiniteLossError:  # a diverged run: record NaN, let the training loop decide
            return out
        self._v0 = vecs[:, 0]
        out["precond_lambda_max"] = float(vals[0])
        if self.raw:
            from ..curvature import top_eigenvalues

            vals, vecs = top_eigenvalues(model, self.loss_fn, (x, y), k=1, tol=self.tol, v0=self._raw_v0,
                                         return_vectors=True)
            self._raw_v0 = vecs[:, 0].numpy()
            out["lambda_max"] = float(vals[0])
        return out
