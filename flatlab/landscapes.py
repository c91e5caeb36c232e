"""Analytic 2-D loss surfaces for intuition.

A :class:`Landscape` is a *soft minimum* of quadratic basins,

    L(w) = −τ · log Σ_i exp(−q_i(w)/τ),   q_i(w) = c_i + ½ (w − m_i)ᵀ A_i (w − m_i),

so inside basin i (far from the others, relative to the temperature τ) the loss *is* the
quadratic q_i up to terms of order exp(−Δ/τ): the minimum sits at m_i and its Hessian is A_i.
That makes every curvature statement checkable by hand: GD with step η is stable in basin i iff
η < 2/λ_max(A_i). ``sharp_and_flat()`` builds a narrow, sharp pit inside a wide, flat bowl;
``narrow_valley()`` a single ill-conditioned quadratic.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import _validate as _v


@dataclass(frozen=True)
class Basin:
    """One quadratic basin: centre ``m``, Hessian ``A`` (symmetric positive definite), floor ``c``."""

    name: str
    centre: tuple[float, float]
    hessian: tuple[tuple[float, float], tuple[float, float]]
    floor: float = 0.0

    @property
    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of the basin's Hessian, ascending."""
        return np.linalg.eigvalsh(np.array(self.hessian, dtype=float))

    @property
    def lambda_max(self) -> float:
        return float(self.eigenvalues[-1])


def _rotated(l1: float, l2: float, angle: float) -> tuple[tuple[float, float], tuple[float, float]]:
    c, s = np.cos(angle), np.sin(angle)
    r = np.array([[c, -s], [s, c]])
    a = r @ np.diag([l1, l2]) @ r.T
    return ((float(a[0, 0]), float(a[0, 1])), (float(a[1, 0]), float(a[1, 1])))


class Landscape:
    """A smooth 2-D loss made of quadratic basins (see the module docstring).

    >>> land = sharp_and_flat()
    >>> abs(float(land(torch.tensor(land.basin("sharp").centre)))) < 1e-9   # the pit's floor is 0
    True
    """

    def __init__(self, basins: list[Basin], temperature: float = 0.05, name: str = "landscape"):
        if not basins:
            raise ValueError("basins must hold at least one Basin")
        temperature = _v.positive("temperature", temperature)
        for b in basins:
            if np.any(b.eigenvalues <= 0):
                raise ValueError(f"basin {b.name!r} must have a positive definite hessian")
        self.basins, self.temperature, self.name = list(basins), float(temperature), name
        self._m = torch.tensor([b.centre for b in basins], dtype=torch.float64)
        self._a = torch.tensor([b.hessian for b in basins], dtype=torch.float64)
        self._c = torch.tensor([b.floor for b in basins], dtype=torch.float64)
        self._basins_py = [(tuple(map(float, b.centre)), tuple(tuple(map(float, row)) for row in b.hessian), float(b.floor))
                           for b in basins]

    def basin(self, name: str) -> Basin:
        for b in self.basins:
            if b.name == name:
                return b
        raise ValueError(f"basin={name!r} is unknown; allowed values: {', '.join(b.name for b in self.basins)}")

    def quadratics(self, w: torch.Tensor) -> torch.Tensor:
        """q_i(w) for every basin, shape (..., n_basins)."""
        d = w.unsqueeze(-2) - self._m.to(w.dtype)  # (..., n, 2)
        quad = 0.5 * torch.einsum("...ni,nij,...nj->...n", d, self._a.to(w.dtype), d)
        return self._c.to(w.dtype) + quad

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        """The loss at points ``w`` of shape (..., 2)."""
        w = torch.as_tensor(w, dtype=torch.float64) if not torch.is_tensor(w) else w
        if w.shape[-1] != 2:
            raise ValueError(f"w must have a last dimension of size 2, got shape {tuple(w.shape)}")
        return -self.temperature * torch.logsumexp(-self.quadratics(w) / self.temperature, dim=-1)

    def grad(self, w: torch.Tensor) -> torch.Tensor:
        """∇L(w): the softmax-weighted average of the basins' gradients A_i (w − m_i)."""
        return self.value_and_grad(w)[1]

    def value_and_grad(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """L(w) and ∇L(w) in one pass over the basins (no autograd), for optimizer loops.

        One float64 point of shape (2,) — what a 2-D runner asks for at every step — goes through
        :meth:`point_value_and_grad` (Python floats: a dozen multiplications, where each torch call would cost more
        than its arithmetic); the result agrees with the batched torch path to rounding (tested).
        """
        if torch.is_tensor(w) and w.shape == (2,) and w.dtype == torch.float64 and not w.requires_grad:
            value, grad = self.point_value_and_grad(w.numpy())
            return torch.tensor(value, dtype=torch.float64), torch.from_numpy(grad)
        w = torch.as_tensor(w, dtype=torch.float64)
        q = self.quadratics(w) / self.temperature
        weights = torch.softmax(-q, dim=-1)  # (..., n)
        d = w.unsqueeze(-2) - self._m
        g = torch.einsum("nij,...nj->...ni", self._a, d)
        return -self.temperature * torch.logsumexp(-q, dim=-1), (weights.unsqueeze(-1) * g).sum(-2)

    def point_value_and_grad(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        """L(w) and ∇L(w) at one point ``w`` (a float64 array of shape (2,)), in plain Python floats.

        With ``q_i = (c_i + ½ dᵢᵀA_i dᵢ)/T`` and ``dᵢ = w − m_i``: ``L = −T log Σ_i exp(−q_i)`` (shifted by
        ``min q`` so that no term overflows) and ``∇L = Σ_i softmax(−q)_i A_i dᵢ``. A few basins of two
        coordinates are a handful of multiplications: NumPy's or torch's per-call cost would be most of it.

        >>> land = sharp_and_flat()
        >>> value, grad = land.point_value_and_grad(np.array([-1.0, 0.5]))   # the sharp pit's centre
        >>> abs(value) < 1e-9, bool(np.abs(grad).max() < 1e-6)
        (True, True)
        """
        x, y = float(w[0]), float(w[1])
        qs, gs = [], []
        for (mx, my), ((a, b), (c, d)), floor in self._basins_py:
            dx, dy = x - mx, y - my
            gx, gy = a * dx + b * dy, c * dx + d * dy        # A_i dᵢ
            qs.append((floor + 0.5 * (dx * gx + dy * gy)) / self.temperature)
            gs.append((gx, gy))
        low = min(qs)
        es = [math.exp(low - q) for q in qs]
        total = sum(es)   # plain sums, as torch's path adds (math.fsum would raise on a diverging run's huge terms)
        grad = np.array([sum(e * g[0] for e, g in zip(es, gs)) / total, sum(e * g[1] for e, g in zip(es, gs)) / total])
        return self.temperature * (low - math.log(total)), grad

    def hessian(self, w) -> torch.Tensor:
        """Exact Hessian at ``w`` (2×2) by automatic differentiation."""
        w = torch.as_tensor(w, dtype=torch.float64)
        return torch.autograd.functional.hessian(lambda v: self(v), w)

    def grid(self, xlim=(-3.0, 3.0), ylim=(-3.0, 3.0), n: int = 121):
        """Loss on an n×n grid: returns (xs, ys, Z) with Z[j, i] = L(xs[i], ys[j])."""
        n = _v.integer("n", n, 2)
        xs = np.linspace(*xlim, n)
        ys = np.linspace(*ylim, n)
        xx, yy = np.meshgrid(xs, ys)
        w = torch.tensor(np.stack([xx, yy], -1), dtype=torch.float64)
        with torch.no_grad():
            z = self(w).numpy()
        return xs, ys, z

    def which_basin(self, w) -> str:
        """Name of the basin whose quadratic is lowest at ``w`` (where GD ended)."""
        q = self.quadratics(torch.as_tensor(w, dtype=torch.float64))
        return self.basins[int(torch.argmin(q))].name

    def __repr__(self) -> str:
        parts = ", ".join(f"{b.name}: λ={np.round(b.eigenvalues, 3).tolist()}" for b in self.basins)
        return f"Landscape({self.name!r}; {parts})"


def sharp_and_flat(sharpness: float = 20.0, flatness: float = 0.5, temperature: float = 0.05) -> Landscape:
    """A sharp pit (Hessian eigenvalues ``sharpness`` and ``sharpness``/4) at (−1, 0.5) inside a
    wide flat bowl (eigenvalues ``flatness`` and ``flatness``/2) centred at (1.5, −0.5).

    The pit's floor (0) is below the bowl's value there, so both are minima; the bowl's floor
    is lower still (−0.5). GD with η < 2/``sharpness`` stays in the pit started there; with
    2/``sharpness`` < η < 2/``flatness`` it is thrown out and settles in the bowl.
    """
    sharpness, flatness = _v.positive("sharpness", sharpness), _v.positive("flatness", flatness)
    if sharpness <= 4 * flatness:
        raise ValueError(f"sharpness={sharpness} must exceed 4×flatness={4 * flatness} for a sharp pit")
    return Landscape([
        Basin("sharp", (-1.0, 0.5), _rotated(sharpness, sharpness / 4, 0.3), 0.0),
        Basin("flat", (1.5, -0.5), _rotated(flatness, flatness / 2, -0.2), -0.5),
    ], temperature=temperature, name="sharp and flat")


def narrow_valley(steep: float = 10.0, shallow: float = 0.1, angle: float = 0.5) -> Landscape:
    """A single rotated quadratic with eigenvalues ``steep`` ≫ ``shallow``: GD zig-zags across the
    valley at the rate set by ``steep`` while it crawls along it at the rate set by ``shallow``."""
    steep, shallow, angle = _v.positive("steep", steep), _v.positive("shallow", shallow), _v.number("angle", angle)
    return Landscape([Basin("valley", (0.0, 0.0), _rotated(steep, shallow, angle), 0.0)], name="narrow valley")
