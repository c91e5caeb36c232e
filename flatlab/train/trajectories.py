"""Optimizers on 2-D landscapes: ``optimizer_trajectory`` steps any torch optimizer on an analytic loss,
``trajectory`` is gradient descent (with heavy-ball momentum) from a start point."""
from __future__ import annotations

import math

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .. import _validate as _v
from ..landscapes import Landscape


@dataclass
class Trajectory:
    """Iterates of an optimizer on a 2-D landscape."""

    points: np.ndarray  # (T+1, 2)
    losses: np.ndarray  # (T+1,)
    lr: float
    momentum: float
    diverged: bool
    diverged_step: int | None
    basin: str | None  # the basin the last iterate lies in (None if diverged)

    @property
    def end(self) -> np.ndarray:
        return self.points[-1]


def optimizer_trajectory(landscape: Landscape, w: nn.Parameter, optimizer: torch.optim.Optimizer, steps: int,
                         lr: float, momentum: float = 0.0, bound: float = 1e3) -> Trajectory:
    """Step a torch ``optimizer`` of the 2-D parameter ``w`` on ``landscape`` for ``steps`` steps.

    Every step calls ``optimizer.step(closure)``, where the closure puts the analytic gradient
    ∇L(w) into ``w.grad`` (no autograd graph) and returns L(w), so two-pass optimizers (SAM) work
    too. Leaving |w| ≤ ``bound`` or a non-finite iterate counts as divergence.

    >>> from flatlab.landscapes import sharp_and_flat
    >>> w = nn.Parameter(torch.tensor([-0.95, 0.5], dtype=torch.float64))
    >>> optimizer_trajectory(sharp_and_flat(), w, torch.optim.SGD([w], lr=0.11), 300, lr=0.11).basin
    'flat'
    """
    _v.instance("landscape", landscape, Landscape, "a flatlab.landscapes.Landscape")
    _v.instance("w", w, torch.Tensor, "a 2-element torch tensor (an nn.Parameter)")
    if w.shape != (2,):
        raise ValueError(f"w must be a point (x, y) of shape (2,), got shape {tuple(w.shape)}")
    _v.instance("optimizer", optimizer, torch.optim.Optimizer, "a torch.optim.Optimizer over [w]")
    steps = _v.integer("steps", steps, 0)
    _v.positive("lr", lr)
    _v.number("momentum", momentum, 0, 1, high_open=True)
    bound = _v.positive("bound", bound)

    def closure():
        loss, w.grad = landscape.value_and_grad(w.detach())
        return loss

    points, diverged_step = [w.detach().clone()], None
    for t in range(1, steps + 1):
        optimizer.step(closure)
        size = float(w.detach().abs().max())   # NaN or inf when the iterate is not finite: one reduction
        if not math.isfinite(size) or size > bound:
            diverged_step = t
            break
        points.append(w.detach().clone())
    pts = torch.stack(points)
    with torch.no_grad():
        losses = landscape(pts).numpy()
    return Trajectory(pts.numpy(), losses, float(lr), float(momentum), diverged_step is not None, diverged_step,
                      None if diverged_step else landscape.which_basin(pts[-1]))


def _start_point(start) -> torch.Tensor:
    try:
        w = torch.as_tensor(np.asarray(start, dtype=float), dtype=torch.float64)
    except (TypeError, ValueError):
        raise TypeError(f"start must be a point (x, y) of two numbers, got {type(start).__name__} {start!r}") from None
    if w.shape != (2,):
        raise ValueError(f"start must be a point (x, y), got shape {tuple(w.shape)}")
    if not bool(torch.isfinite(w).all()):
        raise ValueError(f"start={tuple(w.tolist())} must be a finite point (x, y)")
    return w


def trajectory(landscape: Landscape, start, lr: float, steps: int = 300, momentum: float = 0.0,
               noise: float = 0.0, seed: int = 0, bound: float = 1e3) -> Trajectory:
    """Heavy-ball GD w ← w − η ∇L(w) + β (w − w_prev) (+ Gaussian gradient noise of std ``noise``).

    Leaving the box |w| ≤ ``bound`` or a non-finite iterate counts as divergence.

    >>> from flatlab.landscapes import sharp_and_flat
    >>> land = sharp_and_flat()
    >>> trajectory(land, (-0.95, 0.5), lr=0.09).basin, trajectory(land, (-0.95, 0.5), lr=0.11).basin
    ('sharp', 'flat')
    """
    _v.instance("landscape", landscape, Landscape, "a flatlab.landscapes.Landscape")
    lr = _v.positive("lr", lr)
    steps = _v.integer("steps", steps, 1)
    momentum = _v.number("momentum", momentum, 0, 1, high_open=True)
    noise = _v.non_negative("noise", noise)
    seed = _v.seed("seed", seed)
    bound = _v.positive("bound", bound)
    w = _start_point(start)
    gen = torch.Generator().manual_seed(seed)
    points, prev = [w.clone()], w.clone()
    diverged_step = None
    for t in range(1, steps + 1):
        g = landscape.grad(w)
        if noise:
            g = g + noise * torch.randn(2, generator=gen, dtype=torch.float64)
        w, prev = w - lr * g + momentum * (w - prev), w
        if not torch.isfinite(w).all() or w.abs().max() > bound:
            diverged_step = t
            break
        points.append(w.clone())
    pts = torch.stack(points)
    with torch.no_grad():
        losses = landscape(pts).numpy()
    return Trajectory(pts.numpy(), losses, float(lr), float(momentum), diverged_step is not None, diverged_step,
                      None if diverged_step else landscape.which_basin(pts[-1]))
