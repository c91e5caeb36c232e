"""The 2-D runners, in one place: ``optimizer_trajectory`` steps any torch optimizer on an analytic landscape
(the engine of them all); ``trajectory`` is heavy-ball GD (:class:`HeavyBall`) from a start point;
``landscape_run`` builds an optimizer by name (or with a factory) and runs it; ``quadratic_run`` is heavy ball on
a diagonal quadratic in any dimension, in closed form."""
from __future__ import annotations

import math

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .. import _validate as _v
from .. import optim
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
                         lr: float, momentum: float = 0.0, bound: float = 1e3, noise: float = 0.0,
                         generator: torch.Generator | None = None) -> Trajectory:
    """Step a torch ``optimizer`` of the 2-D parameter ``w`` on ``landscape`` for ``steps`` steps.

    Every step calls ``optimizer.step(closure)``, where the closure puts the analytic gradient
    ∇L(w) into ``w.grad`` (no autograd graph) and returns L(w), so two-pass optimizers (SAM) work
    too; with ``noise`` > 0 the closure adds Gaussian noise of that standard deviation to the gradient
    (drawn from ``generator``). Leaving |w| ≤ ``bound`` or a non-finite iterate counts as divergence.
    ``lr`` and ``momentum`` are recorded in the result (the optimizer holds the ones it uses).

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
    noise = _v.non_negative("noise", noise)

    def closure():
        loss, g = landscape.value_and_grad(w.detach())
        w.grad = g + noise * torch.randn(2, generator=generator, dtype=torch.float64) if noise else g
        return loss

    points, diverged_step = [w.detach().clone()], None
    for t in range(1, steps + 1):
        optimizer.step(closure)
        size = float(w.detach().abs().max())   # NaN or inf when the iterate is not finite: one reduction
        if not math.isfinite(size) or size > bound:
            diverged_step = t
            break
        points.append(w.detach().clone())
    return _finish(landscape, torch.stack(points), diverged_step, lr, momentum)


def _finish(landscape: Landscape, pts: torch.Tensor, diverged_step: int | None, lr: float,
            momentum: float) -> Trajectory:
    """The :class:`Trajectory` of the iterates ``pts`` (T+1, 2): their losses, and the basin of the last."""
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
    return w.clone()   # torch.as_tensor shares a numpy start's memory: optimizers step in place


class HeavyBall(torch.optim.Optimizer):
    """Polyak's heavy ball on the iterates: w ← w − η ∇L(w) + β (w − w_prev) (β = 0: plain GD).

    torch's SGD with momentum β (dampening 0) is the same method written on a velocity; this form is the
    one chapters 00 and 03 write on the board, and it is what :func:`trajectory` steps.

    >>> w = nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64)); opt = HeavyBall([w], lr=0.1, momentum=0.5)
    >>> for _ in range(2):
    ...     w.grad = 2 * w.detach(); _ = opt.step()
    >>> w.detach().tolist()   # 1 → 0.8 → 0.8 − 0.16 + 0.5·(0.8 − 1) = 0.54
    [0.54, 0.54]
    """

    def __init__(self, params, lr: float, momentum: float = 0.0):
        lr = _v.positive("lr", lr)
        momentum = _v.number("momentum", momentum, 0, 1, high_open=True)
        super().__init__(params, dict(lr=lr, momentum=momentum))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, momentum = group["lr"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                prev = state["prev"] if "prev" in state else p.detach().clone()
                new = p - lr * p.grad + momentum * (p - prev)
                state["prev"] = p.detach().clone()
                p.copy_(new)
        return loss


def trajectory(landscape: Landscape, start, lr: float, steps: int = 300, momentum: float = 0.0,
               noise: float = 0.0, seed: int = 0, bound: float = 1e3) -> Trajectory:
    """Heavy-ball GD w ← w − η ∇L(w) + β (w − w_prev) (+ Gaussian gradient noise of std ``noise``): the iterates of
    :class:`HeavyBall` through :func:`optimizer_trajectory`, bit for bit, stepped in NumPy.

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
    # HeavyBall through optimizer_trajectory, with the same arithmetic in NumPy: a torch call per operation on
    # a 2-vector costs more than the operation, and the widgets of chapters 00 and 03 redraw 300 steps per
    # slider move (tests/test_landscapes.py checks the two agree bit for bit)
    generator = torch.Generator().manual_seed(seed)
    w = _start_point(start).numpy()
    prev, points, diverged_step = w, [w], None
    with np.errstate(all="ignore"):   # a diverging run overflows to inf/NaN, as torch's arithmetic does, silently
        for t in range(1, steps + 1):
            g = landscape.point_value_and_grad(w)[1]
            if noise:
                g = g + noise * torch.randn(2, generator=generator, dtype=torch.float64).numpy()
            w, prev = w - lr * g + momentum * (w - prev), w
            size = float(np.abs(w).max())
            if not math.isfinite(size) or size > bound:
                diverged_step = t
                break
            points.append(w)
    return _finish(landscape, torch.from_numpy(np.stack(points)), diverged_step, lr, momentum)


def landscape_run(landscape: Landscape, start, optimizer: str | Callable[..., torch.optim.Optimizer] = "sgd",
                  lr: float = 0.05, steps: int = 300, bound: float = 1e3, momentum: float | None = None,
                  **kwargs) -> Trajectory:
    """Run an optimizer on a 2-D landscape from ``start``: a 2-element ``nn.Parameter`` w, loss ``landscape(w)``.

    ``optimizer``: a name of :func:`flatlab.optim.make_optimizer` (``kwargs`` go to it), or a factory
    ``optimizer([w], lr, **kwargs)`` returning a torch optimizer (a chapter's subset of the names).
    ``momentum`` is only recorded in the trajectory (default: ``kwargs["momentum"]``, or β₁ of ``betas``).

    >>> from flatlab.landscapes import sharp_and_flat
    >>> landscape_run(sharp_and_flat(), (-0.95, 0.5), "sgd", lr=0.11).basin
    'flat'
    """
    steps = _v.integer("steps", steps, 1)
    w = nn.Parameter(_start_point(start).clone())
    if isinstance(optimizer, str):
        opt = optim.make_optimizer([w], optimizer, lr, **kwargs)
    else:
        _v.function("optimizer", optimizer, "a registry name or optimizer([w], lr, **kwargs) -> torch optimizer")
        opt = optimizer([w], lr, **kwargs)
    if momentum is None:
        momentum = kwargs["betas"][0] if "betas" in kwargs else kwargs.get("momentum", 0.0)
    return optimizer_trajectory(landscape, w, opt, steps, lr, momentum=momentum, bound=bound)


def quadratic_run(lams: Sequence[float], lr: float, momentum: float = 0.0, steps: int = 60,
                  start: Sequence[float] | None = None, bound: float = 1e6) -> tuple[np.ndarray, np.ndarray]:
    """Heavy-ball GD on ``L(w) = ½ Σ λ_i w_i²``: ``w⁺ = w − η λ⊙w + β (w − w⁻)``; returns (iterates, losses).

    :class:`HeavyBall`'s update in closed form, in numpy and any dimension: chapter 03's stability widget and
    exercises run thousands of steps per slider move, which a torch optimizer step per iterate makes ~10×
    slower. Stops early (fewer rows) once ``|w|`` exceeds ``bound`` (divergence), keeping that iterate.

    >>> w, loss = quadratic_run([10.0, 1.0], lr=0.15, steps=20)
    >>> w.shape, bool(loss[-1] < loss[0])
    ((21, 2), True)
    """
    lams = np.asarray(lams, dtype=float)
    if lams.ndim != 1 or lams.size == 0 or np.any(lams <= 0):
        raise ValueError(f"lams must be a non-empty list of positive curvatures, got {lams.tolist()}")
    if not lr > 0:
        raise ValueError(f"lr={lr!r} must be > 0")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum={momentum!r} must be in [0, 1)")
    w = np.ones_like(lams) if start is None else np.asarray(start, dtype=float).copy()
    if w.shape != lams.shape:
        raise ValueError(f"start has shape {w.shape}, expected {lams.shape}")
    prev, out = w.copy(), [w.copy()]
    for _ in range(int(steps)):
        w, prev = w - lr * lams * w + momentum * (w - prev), w
        out.append(w.copy())
        if not np.all(np.isfinite(w)) or np.abs(w).max() > bound:
            break
    ws = np.array(out)
    return ws, 0.5 * (lams * ws**2).sum(1)
