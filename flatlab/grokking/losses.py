"""StableMax (Prieto et al., arXiv:2501.04697): the map s, StableMax and its log, the StableMax
cross-entropy, and :func:`loss_function`, the training loss by name (``LOSSES``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("softmax", "stablemax")


def _check_logits(x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"logits must be a torch tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"logits must be a floating-point tensor, got {x.dtype}")
    return x


def stablemax_s(x: torch.Tensor) -> torch.Tensor:
    """The StableMax map s(x) = x + 1 for x ≥ 0 and 1/(1 − x) for x < 0 (positive, grows linearly).

    >>> stablemax_s(torch.tensor([-1.0, 0.0, 2.0]))
    tensor([0.5000, 1.0000, 3.0000])
    """
    x = _check_logits(x)
    return torch.where(x >= 0, x + 1, 1 / (1 - torch.clamp(x, max=0)))


def log_stablemax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """log StableMax: log s(x_i) − log Σ_j s(x_j), with log s(x) = sign(x)·log(1 + |x|).

    >>> log_stablemax(torch.tensor([0.0, 1.0])).exp()
    tensor([0.3333, 0.6667])
    """
    x = _check_logits(x)
    log_s = torch.sign(x) * torch.log1p(x.abs())
    return log_s - torch.log(stablemax_s(x).sum(dim=dim, keepdim=True))


def stablemax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """StableMax(x)_i = s(x_i) / Σ_j s(x_j): softmax with exp replaced by the linear-growth s.

    >>> stablemax(torch.tensor([0.0, 1.0]))
    tensor([0.3333, 0.6667])
    """
    s = stablemax_s(x)
    return s / s.sum(dim=dim, keepdim=True)


def stablemax_cross_entropy(logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy with StableMax probabilities: −log StableMax(x)_y (mean over examples).

    Computed in float64 and returned in the logits' dtype, as in the authors' ``stablemax_cross_entropy``
    (Prieto et al. 2025): in float32, once the correct logit x_y is large the two terms of the
    correct-class gradient, 1/(1 + x_y) and 1/Σ_j s(x_j), round to the same number and the gradient is
    lost (for x_y = 1e8 and 58 other logits at 0, float32 gives a loss of exactly 0 and a correct-class
    gradient 8 % off; see tests/test_grokking.py).

    >>> round(float(stablemax_cross_entropy(torch.tensor([[0.0, 1.0]]), torch.tensor([1]))), 6)  # −log(2/3)
    0.405465
    """
    _check_logits(logits)
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (batch, classes), got {tuple(logits.shape)}")
    if not isinstance(y, torch.Tensor) or y.dtype not in (torch.long, torch.int64, torch.int32) or y.shape != logits.shape[:1]:
        raise ValueError(f"y must be integer class labels of shape ({logits.shape[0]},)")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction={reduction!r} is unknown; allowed values: mean, sum, none")
    losses = _StableMaxCrossEntropy.apply(logits, y.long()).to(logits.dtype)
    return losses.mean() if reduction == "mean" else losses.sum() if reduction == "sum" else losses


class _StableMaxCrossEntropy(torch.autograd.Function):
    """Per-example −log StableMax(x)_y in float64, with its gradient written out — half the time of autograd through
    :func:`log_stablemax`, the same float64 numbers (tests/test_grokking.py compares them). With S = Σ_j s(x_j):
    loss = log S − log s(x_y), and ∂loss/∂x_j = s'(x_j)/S − [j = y]/(1 + |x_y|), since d log s(x)/dx = 1/(1 + |x|) and
    s'(x) = 1 for x ≥ 0, s(x)² for x < 0."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = logits.detach().to(torch.float64)
        nonneg = x >= 0
        s = stablemax_s(x)
        total = s.sum(1)
        x_y = x.gather(1, y[:, None])[:, 0]
        ctx.save_for_backward(s, nonneg, total, x_y, y)
        ctx.dtype = logits.dtype
        return torch.log(total) - torch.sign(x_y) * torch.log1p(x_y.abs())

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        s, nonneg, total, x_y, y = ctx.saved_tensors
        d = torch.where(nonneg, 1.0, s * s) / total[:, None]
        d.scatter_add_(1, y[:, None], (-1 / (1 + x_y.abs()))[:, None])
        return (d * grad.to(torch.float64)[:, None]).to(ctx.dtype), None


def loss_function(name: str):
    """The training loss by name: ``"softmax"`` (cross-entropy) or ``"stablemax"``."""
    if name == "softmax":
        return F.cross_entropy
    if name == "stablemax":
        return stablemax_cross_entropy
    raise ValueError(f"loss={name!r} is unknown; allowed values: {', '.join(LOSSES)}")
