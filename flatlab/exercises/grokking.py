"""Chapter 05 (grokking) exercises: StableMax, ⊥Grad and the inverse participation ratio.

Each ``check_*`` runs the student's function on several cases and prints what is wrong (case, expected
vs got, a hint naming the likely mistake); each has a ``*_reference`` solution.

References: Prieto et al., arXiv:2501.04697 (StableMax, ⊥Grad); Doshi et al., arXiv:2310.13061 (IPR).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .base import Array, Case, Hint, _np, close, raw_shape, run_cases, spec


# ----------------------------------------------------------------------------- StableMax
def stablemax_reference(x: torch.Tensor) -> torch.Tensor:
    """StableMax over the last axis: s(x_i)/Σ_j s(x_j), s(x) = x + 1 (x ≥ 0), 1/(1 − x) (x < 0)."""
    s = torch.where(x >= 0, x + 1, 1 / (1 - torch.clamp(x, max=0)))
    return s / s.sum(dim=-1, keepdim=True)


def _stablemax_cases() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    return [torch.tensor([0.0, 1.0, 2.0]), torch.tensor([-1.0, 0.0, 2.0]), torch.tensor([-3.0, -1.0, -0.5]),
            torch.tensor([[-2.0, 0.5, 1.0, -0.25], [3.0, -3.0, 0.0, 1.0]]),
            torch.tensor([1e4, 0.0, -1e4]), 4 * torch.randn(5, 7, generator=g)]


def _raw_s(x):
    return torch.where(x >= 0, x + 1, 1 / (1 - torch.clamp(x, max=0)))


def _normalized(s):
    return s / s.sum(-1, keepdim=True)


def _short(t) -> str:
    flat = _np(t).reshape(-1)
    return str([round(float(v), 4) for v in flat[:4]]) + (" …" if flat.size > 4 else "")


def _label(t: torch.Tensor, n: int) -> str:
    return f"{[round(v, 3) for v in t.reshape(-1)[:n].tolist()]}{' …' if t.numel() > n else ''}"


def _compare(case, out) -> str | None:
    return None if close(out.value, case.expected) else f"expected {_short(case.expected)}, got {_short(out.value)}"


@spec("stablemax")
def _stablemax_spec() -> dict:
    d = lambda x: x.double()  # noqa: E731
    return dict(
        cases=[Case((x,), f"x={_label(x, 6)}") for x in _stablemax_cases()],
        reference=lambda x: stablemax_reference(x.double()), answer=Array(kinds=("torch", "numpy")),
        compare=_compare, params=("x",),
        in_place="compute s(x) into a new tensor (torch.where(…)), leave x as it is",
        hints=[
            Hint.like("that is softmax (exp); StableMax replaces exp by s(x) = x+1 (x ≥ 0), 1/(1−x) (x < 0)",
                      lambda x: torch.softmax(d(x), -1)),
            Hint.like("that is softmax written with exp, which even overflows to NaN at x = 1e4; StableMax replaces "
                      "exp by s(x) = x+1 (x ≥ 0), 1/(1−x) (x < 0)", lambda x: _normalized(torch.exp(d(x)))),
            Hint.like("for x < 0 use s(x) = 1/(1 − x), not x + 1 (which turns negative)",
                      lambda x: _normalized(d(x) + 1)),
            Hint.like("sign slip: for x < 0 it is 1/(1 − x) (→ 0 as x → −∞), not 1/(1 + x) (infinite at x = −1)",
                      lambda x: _normalized(torch.where(x >= 0, d(x) + 1, 1 / (1 + d(x))))),
            Hint.like("divide s(x_i) by Σ_j s(x_j) so the probabilities sum to 1", lambda x: _raw_s(d(x))),
            Hint.like("normalize over the last axis (classes), not over the batch",
                      lambda x: _raw_s(d(x)) / _raw_s(d(x)).sum(0, keepdim=True)),
            Hint.like("normalize each row over the last axis: s.sum(-1, keepdim=True), not the sum of all entries",
                      lambda x: _raw_s(d(x)) / _raw_s(d(x)).sum()),
            Hint.like("return the probabilities, not their logarithm", lambda x: torch.log(stablemax_reference(d(x)))),
            Hint("the probabilities do not sum to 1 over the last axis",
                 lambda c, o: not np.allclose(np.sum(o.value, -1), 1, atol=1e-5)),
        ])


def check_stablemax(fn: Callable) -> bool:
    """Check ``fn(x) -> probabilities`` (StableMax over the last axis of a float tensor)."""
    return run_cases("stablemax", fn, **_stablemax_spec())


# ----------------------------------------------------------------------------- ⊥Grad
def orthogonal_gradient_reference(grad: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """⊥Grad of one parameter: g⊥ = g − (⟨g,w⟩/⟨w,w⟩) w, rescaled to the norm of g."""
    g, w = grad.reshape(-1), weight.reshape(-1)
    g_perp = g - (g @ w) / (w @ w) * w
    return (g_perp * g.norm() / g_perp.norm()).reshape(grad.shape)


def _unit(t):
    return t / t.norm()


def _cosine(o, w) -> float:
    v, w = o.value.reshape(-1), _np(w).reshape(-1)
    return float(v @ w / (np.linalg.norm(v) * np.linalg.norm(w) + 1e-300))


@spec("orthogonal_gradient")
def _orthogonal_gradient_spec() -> dict:
    g0 = torch.Generator().manual_seed(7)
    cases = [(torch.tensor([1.0, 1.0]), torch.tensor([2.0, 0.0])), (torch.tensor([3.0, -1.0, 2.0]), torch.tensor([1.0, 1.0, 1.0]))]
    cases += [(torch.randn(s, generator=g0, dtype=torch.float64), torch.randn(s, generator=g0, dtype=torch.float64))
              for s in [(4, 3), (2, 3, 5)]]
    proj = lambda g, w: (g * w).sum() / (w * w).sum() * w  # noqa: E731
    return dict(
        cases=[Case((g, w), f"grad shape {tuple(g.shape)}" if g.numel() > 3 else f"grad={g.tolist()}, weight={w.tolist()}")
               for g, w in cases],
        reference=lambda g, w: orthogonal_gradient_reference(g.double(), w.double()),
        answer=Array(kinds=("torch", "numpy")), compare=_compare, params=("grad", "weight"),
        in_place="compute g − (⟨g,w⟩/⟨w,w⟩)·w into a new tensor, leave grad as it is",
        hints=[
            Hint("return a tensor shaped like grad: reshape the flat result back with .reshape(grad.shape)",
                 lambda c, o: raw_shape(o) is not None and int(np.prod(raw_shape(o))) == c.args[0].numel()
                 and raw_shape(o) != tuple(c.args[0].shape)),
            Hint.like("the direction is right; now rescale g⊥ to the norm of the original gradient, ‖g‖",
                      lambda g, w: g.double() - proj(g.double(), w.double())),
            Hint.like("rescale g⊥ to the norm of the gradient ‖g‖, not of the weight ‖w‖",
                      lambda g, w: _unit(g.double() - proj(g.double(), w.double())) * w.double().norm()),
            Hint.like("you returned the component *along* w; ⊥Grad keeps what is orthogonal to w",
                      lambda g, w: proj(g.double(), w.double())),
            Hint.like("subtract the projection (g − …), do not add it",
                      lambda g, w: _unit(g.double() + proj(g.double(), w.double())) * g.double().norm()),
            Hint.like("divide ⟨g,w⟩ by ⟨w,w⟩ = ‖w‖², not by ‖w‖",
                      lambda g, w: _unit(g.double() - (g.double() * w.double()).sum() / w.double().norm() * w.double())
                      * g.double().norm()),
            Hint.like("project the whole parameter at once (flattened), not row by row",
                      lambda g, w: _unit(g.double() - (g.double() * w.double()).sum(-1, keepdim=True)
                                         / (w.double() ** 2).sum(-1, keepdim=True) * w.double()) * g.double().norm()),
            Hint("you returned a vector along w; ⊥Grad keeps what is orthogonal to w",
                 lambda c, o: abs(_cosine(o, c.args[1])) > 0.999),
            Hint("the result is not orthogonal to w: remove the whole component (⟨g,w⟩/⟨w,w⟩)·w",
                 lambda c, o: abs(_cosine(o, c.args[1])) > 1e-5),
            Hint("orthogonal to w, but its norm is not ‖g‖: rescale g⊥ by ‖g‖/‖g⊥‖",
                 lambda c, o: abs(np.linalg.norm(o.value) - float(c.args[0].double().norm())) > 1e-5 * float(c.args[0].double().norm())),
        ])


def check_orthogonal_gradient(fn: Callable) -> bool:
    """Check ``fn(grad, weight) -> gradient`` removes the component along the weight and keeps ‖grad‖."""
    return run_cases("orthogonal_gradient", fn, **_orthogonal_gradient_spec())


# ----------------------------------------------------------------------------- IPR
def ipr_reference(power: torch.Tensor) -> torch.Tensor:
    """Inverse participation ratio over the last axis of a non-negative power spectrum: Σ P² / (Σ P)²."""
    return (power**2).sum(-1) / power.sum(-1) ** 2


@spec("ipr")
def _ipr_spec() -> dict:
    g = torch.Generator().manual_seed(3)
    cases = [torch.tensor([0.0, 4.0, 0.0, 0.0]), torch.ones(5), torch.tensor([1.0, 3.0]),
             torch.rand(3, 29, generator=g, dtype=torch.float64), torch.tensor([[2.0, 0.0, 0.0], [1.0, 1.0, 1.0]])]
    d = lambda p: p.double()  # noqa: E731
    return dict(
        cases=[Case((p,), f"power={_label(p, 5)} (shape {tuple(p.shape)})") for p in cases],
        reference=lambda p: ipr_reference(p.double()), compare=_compare, params=("power",),
        answer=Array(kinds=("torch",), why="the chapter calls .numpy() on it"),
        in_place="compute the ratio into a new tensor, leave the spectrum as it is",
        hints=[
            Hint("compute one IPR per row: sum over the last axis (dim=-1), not over all entries or the rows",
                 lambda c, o: c.args[0].dim() > 1 and raw_shape(o) not in (None, tuple(c.expected.shape))),
            Hint.like("that is the participation ratio (Σ P)²/Σ P²; the IPR is its inverse",
                      lambda p: d(p).sum(-1) ** 2 / (d(p) ** 2).sum(-1)),
            Hint.like("normalize: divide Σ P² by (Σ P)² so that one frequency gives 1 and n equal ones 1/n",
                      lambda p: (d(p) ** 2).sum(-1)),
            Hint.like("the input is already a power |F|²; do not square it again",
                      lambda p: (d(p) ** 4).sum(-1) / ((d(p) ** 2).sum(-1)) ** 2),
            Hint.like("divide by (Σ P)², the square of the total, not by ‖P‖",
                      lambda p: (d(p) ** 2).sum(-1) / (d(p) ** 2).sum(-1).sqrt()),
            Hint.like("divide by the *square* of the total (Σ P)², not by Σ P", lambda p: (d(p) ** 2).sum(-1) / d(p).sum(-1)),
        ])


def check_ipr(fn: Callable) -> bool:
    """Check ``fn(power) -> IPR`` over the last axis (one value per row of a 2-D input)."""
    return run_cases("ipr", fn, **_ipr_spec())


__all__ = ["check_stablemax", "stablemax_reference", "check_orthogonal_gradient", "orthogonal_gradient_reference",
           "check_ipr", "ipr_reference"]
