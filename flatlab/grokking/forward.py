"""The model's side of training: :func:`logits` and :func:`hidden_units` (a ModularMLP through its fast table form), the
naive-loss-minimization cosine :func:`nlm_cosine` and :func:`weight_norm` (Omnigrok)."""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..models import ModularMLP


def hidden_units(model: ModularMLP, x: torch.Tensor, dropout: float = 0.0, training: bool = False) -> torch.Tensor:
    """What a ``ModularMLP``'s readout sees on pairs ``x``, shape (len(x), hidden), through the fast table form
    W·[E_a(a); E_b(b)] + c = T_a[a] + T_b[b] with T_a = E_a W_aᵀ, T_b = E_b W_bᵀ + c: the ReLU units, then the
    BatchNorm (``batchnorm=True``; batch statistics when ``training``, updating the running ones, else the running
    ones, whatever the module's mode), then ``dropout`` when ``training``."""
    d = model.embed_a.weight.shape[1]
    w = model.hidden.weight
    table_a = model.embed_a.weight @ w[:, :d].T
    table_b = torch.addmm(model.hidden.bias, model.embed_b.weight, w[:, d:].T)
    h = torch.relu(F.embedding(x[:, 0], table_a) + F.embedding(x[:, 1], table_b))
    if model.norm is not None:
        n = model.norm
        h = F.batch_norm(h, n.running_mean, n.running_var, n.weight, n.bias, training, n.momentum, n.eps)
    if dropout and training:  # F.dropout's law (keep with probability 1 − p, scale by 1/(1 − p)); rand is 3× faster
        h = h * ((torch.rand_like(h) >= dropout).to(h.dtype) / (1 - dropout))
    return h


def logits(model: nn.Module, x: torch.Tensor, dropout: float = 0.0, training: bool = False) -> torch.Tensor:
    """The model's logits on pairs ``x``; for a ``ModularMLP`` its readout of :func:`hidden_units` (the fast table
    form: same function, same gradients, fewer flops; ``dropout`` and a BatchNorm as described there).

    >>> m = ModularMLP(p=7, embed_dim=4, hidden=8, seed=0)
    >>> x = torch.tensor([[1, 2], [6, 0]])
    >>> torch.allclose(logits(m, x), m(x), atol=1e-6)
    True
    """
    if isinstance(model, ModularMLP):
        return model.out(hidden_units(model, x, dropout, training))
    return model(x)


def nlm_cosine(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable) -> float:
    """Cosine between the descent direction −∇L and the weights θ, over all parameters together.

    The *naive loss minimization* direction of Prieto et al. (2025) scales the logits without changing any
    prediction; for a positively homogeneous network it is exactly θ (``f(cθ) = cᵏ f(θ)``), and through the
    weights "along their current direction" it is how an unregularized network lowers its loss once every
    training example is classified. The ModularMLP has biases, so θ scales its logits only approximately.
    A cosine near 1 means the step mostly grows the weights; NaN when the gradient is exactly zero (every
    example collapsed). ``.grad`` is not touched.

    >>> m = ModularMLP(p=7, embed_dim=4, hidden=8, seed=0)
    >>> -1 <= nlm_cosine(m, torch.tensor([[1, 2], [3, 4]]), torch.tensor([3, 0]), F.cross_entropy) <= 1
    True
    """
    params = [p for p in model.parameters() if p.requires_grad]
    with torch.enable_grad():
        loss = loss_fn(logits(model, x), y)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
    g = torch.cat([(torch.zeros_like(p) if gi is None else gi).reshape(-1).double() for gi, p in zip(grads, params)])
    w = torch.cat([p.detach().reshape(-1).double() for p in params])
    denom = float(g.norm() * w.norm())
    return float(-(g @ w) / denom) if denom > 0 else float("nan")


def weight_norm(model: nn.Module) -> float:
    """‖w‖₂ over all parameters (Omnigrok: grokking happens as weight decay shrinks it)."""
    with torch.no_grad():
        return math.sqrt(sum(float(torch.dot(p.reshape(-1), p.reshape(-1))) for p in model.parameters()))
