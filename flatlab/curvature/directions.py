"""Directions, lines and surfaces through weight space: filter-normalized :func:`random_direction`,
:func:`loss_line`, :func:`loss_surface` and the linear :func:`interpolate` between two models."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .. import _validate as _v
from .. import config
from ._common import Data, LossFn, _alphas, _as_vectors, _check_data, _check_loss_fn, _forward_loss, _Loss, _trainable



def random_direction(model: nn.Module, filter_normalize: bool = True, seed: int = 0) -> list[Tensor]:
    """A Gaussian direction ``d`` shaped like the trainable parameters; filter-normalized by default.

    Filter normalization (Li et al. 2018): for every weight with ≥ 2 dimensions, each filter /
    output unit ``i`` (a row of a Linear weight, an output channel of a conv kernel) is rescaled,
    ``d_i ← d_i ‖w_i‖ / ‖d_i‖``, so a slice ``w + α d`` moves every unit by the same *relative*
    amount and is blind to the scale symmetries of ReLU networks. Biases and other 1-D parameters
    (BatchNorm) get ``d = 0`` — the paper's choice (its code's ``ignore='biasbn'``). With
    ``filter_normalize=False`` the direction is plain ``N(0, I)`` (biases included).

    >>> model = torch.nn.Linear(3, 2)
    >>> d = random_direction(model)
    >>> torch.allclose(d[0].norm(dim=1), model.weight.detach().norm(dim=1)), bool(d[1].any())
    (True, False)
    """
    _, params = _trainable(model)
    g = torch.Generator().manual_seed(_v.seed("seed", seed))
    out = []
    for p in params:
        d = torch.randn(p.shape, generator=g, dtype=torch.float64)
        if filter_normalize:
            if p.dim() <= 1:
                d = torch.zeros_like(d)
            else:
                w = p.detach().double().reshape(p.shape[0], -1)
                dr = d.reshape(p.shape[0], -1)
                dn = dr.norm(dim=1, keepdim=True)
                dr = dr * (w.norm(dim=1, keepdim=True) / torch.where(dn > 0, dn, torch.ones_like(dn)))
                d = dr.reshape(p.shape)
        out.append(d.to(p.dtype))
    return out


def loss_line(model: nn.Module, loss_fn: LossFn, data: Data, direction: Sequence[Tensor] | Tensor,
              alphas: Sequence[float] | np.ndarray | Tensor) -> np.ndarray:
    """Losses along a line, ``ℓ(α) = L(w + α d)`` for each α in ``alphas``.

    ``direction`` is a list shaped like the trainable parameters (see :func:`random_direction`)
    or a flat vector. Non-finite losses are returned as they are (NaN/inf), not raised.

    >>> model = torch.nn.Linear(3, 1)
    >>> data = (torch.randn(8, 3), torch.randn(8, 1))
    >>> loss_line(model, torch.nn.functional.mse_loss, data, random_direction(model), [-1, 0, 1]).shape
    (3,)
    """
    L = _Loss(model, loss_fn, data)
    d = _as_vectors("direction", direction, L.w)
    alphas = _alphas("alphas", alphas)
    return np.array([L.value([a * di for di in d], check_finite=False) for a in alphas.tolist()])


def loss_surface(model: nn.Module, loss_fn: LossFn, data: Data, d1: Sequence[Tensor] | Tensor,
                 d2: Sequence[Tensor] | Tensor, alphas: Sequence[float] | np.ndarray | Tensor,
                 betas: Sequence[float] | np.ndarray | Tensor) -> np.ndarray:
    """Losses on a plane, ``S[i, j] = L(w + α_i d1 + β_j d2)``, shape ``(len(alphas), len(betas))``.

    Rows index ``alphas`` (for a plotly contour with α on the x-axis pass ``z=S.T``).

    >>> model = torch.nn.Linear(3, 1)
    >>> data = (torch.randn(8, 3), torch.randn(8, 1))
    >>> d1, d2 = random_direction(model, seed=1), random_direction(model, seed=2)
    >>> loss_surface(model, torch.nn.functional.mse_loss, data, d1, d2, [-1, 0, 1], [0, 1]).shape
    (3, 2)
    """
    L = _Loss(model, loss_fn, data)
    u = _as_vectors("d1", d1, L.w)
    v = _as_vectors("d2", d2, L.w)
    alphas = _alphas("alphas", alphas)
    betas = _alphas("betas", betas)
    out = np.empty((alphas.size, betas.size))
    for i, a in enumerate(alphas.tolist()):
        for j, b in enumerate(betas.tolist()):
            out[i, j] = L.value([a * ui + b * vi for ui, vi in zip(u, v)], check_finite=False)
    return out


def interpolate(model_a: nn.Module, model_b: nn.Module, loss_fn: LossFn, data: Data,
                alphas: Sequence[float] | np.ndarray | Tensor) -> np.ndarray:
    """Losses on the segment between two models, ``ℓ(α) = L((1−α) w_a + α w_b)``.

    Both models must have the same parameter names and shapes; the network of ``model_a`` is
    evaluated. Floating-point buffers (e.g. BatchNorm statistics) are interpolated too; α outside
    [0, 1] extrapolates. Neither model is modified.

    >>> a, b = torch.nn.Linear(3, 1), torch.nn.Linear(3, 1)
    >>> data = (torch.randn(8, 3), torch.randn(8, 1))
    >>> interpolate(a, b, torch.nn.functional.mse_loss, data, [0.0, 0.5, 1.0]).shape
    (3,)
    """
    _trainable(model_a, "model_a")
    _trainable(model_b, "model_b")
    _check_loss_fn(loss_fn)
    data = _check_data(data)
    alphas = _alphas("alphas", alphas)
    sa = {k: v.detach() for k, v in list(model_a.named_parameters()) + list(model_a.named_buffers())}
    sb = {k: v.detach() for k, v in list(model_b.named_parameters()) + list(model_b.named_buffers())}
    if sa.keys() != sb.keys() or any(sa[k].shape != sb[k].shape for k in sa):
        bad = sorted(set(sa) ^ set(sb)) or [k for k in sa if sa[k].shape != sb[k].shape]
        raise ValueError(f"model_b does not match model_a (parameters/buffers differ: {bad[:5]})")
    keys = [k for k in sa if sa[k].is_floating_point()]
    out = []
    with torch.no_grad():
        for a in alphas.tolist():
            named = {k: (1 - a) * sa[k] + a * sb[k].to(sa[k].dtype) for k in keys}
            out.append(float(_forward_loss(model_a, loss_fn, data, named, check_finite=False)))
    return np.asarray(out)


def slice_surfaces(models: dict, loss_fn, data, span: float = 1.0, n: int = 41, seed: int = 0,
                   progress: bool = True) -> dict:
    """Precompute 2-D loss slices for each model and both kinds of direction (filter-normalized or plain).

    Returns {(model name, normalized): (alphas, betas, surface)} on an n×n grid; coarser
    resolutions are sub-grids of it, so a widget never recomputes. ``progress``: a bar over the surfaces."""
    _v.items("models", models, "a dict mapping a name to a trained model")
    alphas = np.linspace(-span, span, n)
    out = {}
    pairs = [(name, model, normalized) for name, model in models.items() for normalized in (True, False)]
    for name, model, normalized in config.progress(pairs, "loss surfaces", show=_v.boolean("progress", progress)):
        d1 = random_direction(model, filter_normalize=normalized, seed=seed)
        d2 = random_direction(model, filter_normalize=normalized, seed=seed + 1)
        if not normalized:  # plain directions of the same total length as the filter-normalized ones
            ref1 = random_direction(model, True, seed)
            s = float(sum((r**2).sum() for r in ref1) ** 0.5 / sum((d**2).sum() for d in d1) ** 0.5)
            d1, d2 = [d * s for d in d1], [d * s for d in d2]
        out[(name, normalized)] = (alphas, alphas, loss_surface(model, loss_fn, data, d1, d2, alphas, alphas))
    return out
