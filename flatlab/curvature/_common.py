"""Shared helpers of :mod:`flatlab.curvature`: the ``Data``/``LossFn`` types, ``NonFiniteLossError``,
argument checks, the forward loss on copied buffers, flat ↔ per-parameter vectors, Rademacher probes, and
``_Loss``, the loss at perturbed weights ``L(w + ε)`` that the sharpness measures and slices evaluate."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call



Data = tuple[Tensor, Tensor]
LossFn = Callable[[Tensor, Tensor], Tensor]


class NonFiniteLossError(ValueError):
    """The loss is NaN/inf at the parameters where curvature was asked for."""


def _trainable(model: Any, name: str = "model") -> tuple[list[str], list[Tensor]]:
    """Names and tensors of the parameters with ``requires_grad``, in ``model.parameters()`` order."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")
    names, params = [], []
    for n, p in model.named_parameters():
        if p.requires_grad:
            names.append(n)
            params.append(p)
    if not params:
        raise ValueError(f"{name} has no trainable parameters (none with requires_grad=True)")
    return names, params


def _check_data(data: Any) -> Data:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(f"data must be a tuple (x, y) of two tensors, got {type(data).__name__}"
                         + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else ""))
    x, y = data
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError(f"data must be a tuple (x, y) of torch tensors, got "
                        f"({type(x).__name__}, {type(y).__name__})")
    if x.dim() == 0 or y.dim() == 0:
        raise ValueError(f"data tensors need a batch dimension; got x {tuple(x.shape)}, "
                         f"y {tuple(y.shape)}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"data: x has {x.shape[0]} examples but y has {y.shape[0]} "
                         f"(x {tuple(x.shape)}, y {tuple(y.shape)})")
    return x, y


def _check_loss_fn(loss_fn: Any) -> None:
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(model(x), y), got {type(loss_fn).__name__}")


def _forward_loss(model: nn.Module, loss_fn: LossFn, data: Data,
                  named: dict[str, Tensor] | None = None, check_finite: bool = True) -> Tensor:
    """``loss_fn(model(x), y)`` with ``named`` tensors substituted; errors name the argument.

    The forward pass runs through ``functional_call`` on *copies* of the buffers, so a BatchNorm
    layer in train mode does not update the model's running statistics.
    """
    x, y = data
    subs = {n: b.clone() for n, b in model.named_buffers()}
    subs.update(named or {})
    try:
        out = functional_call(model, subs, (x,)) if subs else model(x)
    except (RuntimeError, ValueError, IndexError) as err:
        raise ValueError(f"data does not fit the model: forward failed on x of shape "
                         f"{tuple(x.shape)} (y {tuple(y.shape)}): {err}") from err
    try:
        loss = loss_fn(out, y)
    except (RuntimeError, ValueError, IndexError) as err:
        raise ValueError(f"data does not fit the loss: loss_fn failed on model output "
                         f"{tuple(out.shape)} and y {tuple(y.shape)}: {err}") from err
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        raise ValueError(f"loss_fn must return a scalar tensor, got "
                         f"{tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__}")
    loss = loss.reshape(())
    if check_finite and not bool(torch.isfinite(loss)):
        raise NonFiniteLossError(f"loss is {loss.item()} (NaN/inf) at these parameters; "
                                 f"curvature is undefined there")
    return loss


def _split(flat: Tensor, like: Sequence[Tensor]) -> list[Tensor]:
    out, i = [], 0
    for p in like:
        n = p.numel()
        out.append(flat[i:i + n].view_as(p))
        i += n
    return out


def _flat(tensors: Sequence[Tensor]) -> Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _as_vectors(name: str, d: Any, params: Sequence[Tensor]) -> list[Tensor]:
    """A direction given as a list like ``params`` or as a flat vector → list like ``params``."""
    dim = sum(p.numel() for p in params)
    if isinstance(d, Tensor) and d.dim() == 1 and d.numel() == dim and not (
            len(params) == 1 and params[0].dim() == 1):
        return [t.to(p.dtype) for t, p in zip(_split(d, params), params)]
    if isinstance(d, Tensor) and len(params) == 1 and d.shape == params[0].shape:
        return [d.to(params[0].dtype)]
    if not isinstance(d, (list, tuple)) or len(d) != len(params):
        raise ValueError(f"{name} must be a list of {len(params)} tensors shaped like the trainable "
                         f"parameters, or a flat tensor of size {dim}")
    out = []
    for i, (t, p) in enumerate(zip(d, params)):
        if not isinstance(t, Tensor) or t.shape != p.shape:
            raise ValueError(f"{name}[{i}] has shape "
                             f"{tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__}, "
                             f"expected {tuple(p.shape)}")
        out.append(t.detach().to(p.dtype))
    return out


def _alphas(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values if not isinstance(values, Tensor) else values.detach().cpu().numpy(),
                     dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be a non-empty 1-D sequence of finite numbers, got shape "
                         f"{arr.shape}")
    return arr


def _rademacher(dim: int, n: int, seed: int) -> list[Tensor]:
    """``n`` Rademacher (±1) vectors in float64 — the same sequence for every estimator."""
    g = torch.Generator().manual_seed(int(seed))
    return [torch.randint(0, 2, (dim,), generator=g, dtype=torch.float64) * 2 - 1 for _ in range(n)]


class _Loss:
    """Evaluate ``L(w + ε)`` through ``functional_call`` (parameters are never written)."""

    def __init__(self, model: nn.Module, loss_fn: LossFn, data: Data):
        self.model = model
        self.names, params = _trainable(model)
        _check_loss_fn(loss_fn)
        self.loss_fn = loss_fn
        self.data = _check_data(data)
        self.w = [p.detach() for p in params]

    def __call__(self, ws: Sequence[Tensor], check_finite: bool = True) -> Tensor:
        return _forward_loss(self.model, self.loss_fn, self.data, dict(zip(self.names, ws)),
                             check_finite=check_finite)

    def value(self, eps: Sequence[Tensor] | None = None, check_finite: bool = True) -> float:
        with torch.no_grad():
            ws = self.w if eps is None else [w + e for w, e in zip(self.w, eps)]
            return float(self(ws, check_finite))

    def value_and_grad(self, eps: Sequence[Tensor] | None = None,
                       check_finite: bool = True) -> tuple[float, list[Tensor]]:
        ws = [(w if eps is None else w + e).detach().requires_grad_(True)
              for w, e in zip(self.w, eps or [None] * len(self.w))]
        with torch.enable_grad():
            loss = self(ws, check_finite)
            gs = torch.autograd.grad(loss, ws, allow_unused=True)
        return float(loss.detach()), [torch.zeros_like(w) if g is None else g for g, w in zip(gs, ws)]
