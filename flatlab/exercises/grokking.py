"""Chapter 05 (grokking) exercises: StableMax, ⊥Grad and the inverse participation ratio.

Each ``check_*`` runs the student's function on several cases and prints what is wrong (case, expected
vs got, a hint naming the likely mistake); each has a ``*_reference`` solution.

References: Prieto et al., arXiv:2501.04697 (StableMax, ⊥Grad); Doshi et al., arXiv:2310.13061 (IPR).
"""
from __future__ import annotations

from typing import Callable

import torch

from .base import NOT_IMPLEMENTED, call, not_implemented, report


def _as_tensor(value) -> torch.Tensor | None:
    try:
        return torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return None


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


def check_stablemax(fn: Callable) -> bool:
    """Check ``fn(x) -> probabilities`` (StableMax over the last axis of a float tensor)."""
    cases = _stablemax_cases()
    failures = []
    for x in cases:
        got, err = call(fn, x.clone())
        if err == NOT_IMPLEMENTED:
            return not_implemented("stablemax")
        case = f"x={[round(v, 3) for v in x.reshape(-1)[:6].tolist()]}{' …' if x.numel() > 6 else ''}"
        if err:
            failures.append(f"{case}: {err}")
            continue
        got = _as_tensor(got)
        expected = stablemax_reference(x.double())
        if got is None or got.shape != expected.shape:
            failures.append(f"{case}: expected a tensor of shape {tuple(expected.shape)}, got "
                            f"{None if got is None else tuple(got.shape)}")
            continue
        if torch.allclose(got, expected, rtol=1e-5, atol=1e-7):
            continue
        hint = ""
        if torch.allclose(got, torch.softmax(x.double(), -1), rtol=1e-5, atol=1e-7) or not torch.isfinite(got).all():
            hint = " — that is softmax (exp); StableMax replaces exp by s(x) = x+1 (x ≥ 0), 1/(1−x) (x < 0)"
        elif (x < 0).any() and torch.allclose(got, _normalized(x.double() + 1), rtol=1e-5, atol=1e-7):
            hint = " — for x < 0 use s(x) = 1/(1 − x), not x + 1 (which turns negative)"
        elif (x < 0).any() and torch.allclose(got, _normalized(torch.where(x >= 0, x + 1, 1 / (1 + x)).double()),
                                             rtol=1e-5, atol=1e-7):
            hint = " — sign slip: for x < 0 it is 1/(1 − x) (→ 0 as x → −∞), not 1/(1 + x)"
        elif torch.allclose(got, _raw_s(x.double()), rtol=1e-5, atol=1e-7):
            hint = " — divide s(x_i) by Σ_j s(x_j) so the probabilities sum to 1"
        elif x.dim() == 2 and torch.allclose(got, _raw_s(x.double()) / _raw_s(x.double()).sum(0, keepdim=True),
                                             rtol=1e-5, atol=1e-7):
            hint = " — normalize over the last axis (classes), not over the batch"
        elif not torch.allclose(got.sum(-1), torch.ones(got.shape[:-1], dtype=got.dtype), atol=1e-5):
            hint = " — the probabilities do not sum to 1 over the last axis"
        failures.append(f"{case}: expected {_short(expected)}, got {_short(got)}{hint}")
    return report("stablemax", failures, len(cases))


def _raw_s(x):
    return torch.where(x >= 0, x + 1, 1 / (1 - torch.clamp(x, max=0)))


def _normalized(s):
    return s / s.sum(-1, keepdim=True)


def _short(t: torch.Tensor) -> str:
    flat = t.reshape(-1)
    return str([round(v, 4) for v in flat[:4].tolist()]) + (" …" if flat.numel() > 4 else "")


# ----------------------------------------------------------------------------- ⊥Grad
def orthogonal_gradient_reference(grad: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """⊥Grad of one parameter: g⊥ = g − (⟨g,w⟩/⟨w,w⟩) w, rescaled to the norm of g."""
    g, w = grad.reshape(-1), weight.reshape(-1)
    g_perp = g - (g @ w) / (w @ w) * w
    return (g_perp * g.norm() / g_perp.norm()).reshape(grad.shape)


def check_orthogonal_gradient(fn: Callable) -> bool:
    """Check ``fn(grad, weight) -> gradient`` removes the component along the weight and keeps ‖grad‖."""
    g0 = torch.Generator().manual_seed(7)
    cases = [(torch.tensor([1.0, 1.0]), torch.tensor([2.0, 0.0])), (torch.tensor([3.0, -1.0, 2.0]), torch.tensor([1.0, 1.0, 1.0]))]
    cases += [(torch.randn(s, generator=g0, dtype=torch.float64), torch.randn(s, generator=g0, dtype=torch.float64))
              for s in [(4, 3), (2, 3, 5)]]
    failures = []
    for g, w in cases:
        got, err = call(fn, g.clone(), w.clone())
        if err == NOT_IMPLEMENTED:
            return not_implemented("orthogonal_gradient")
        case = f"grad shape {tuple(g.shape)}" if g.numel() > 3 else f"grad={g.tolist()}, weight={w.tolist()}"
        if err:
            failures.append(f"{case}: {err}")
            continue
        got = _as_tensor(got)
        gd, wd = g.double(), w.double()
        expected = orthogonal_gradient_reference(gd, wd)
        if got is None or got.shape != g.shape:
            failures.append(f"{case}: return a tensor shaped like grad {tuple(g.shape)}, got "
                            f"{None if got is None else tuple(got.shape)}")
            continue
        if torch.allclose(got, expected, rtol=1e-5, atol=1e-7):
            continue
        parallel = (gd * wd).sum() / (wd * wd).sum() * wd
        cos_w = float((got * wd).sum() / (got.norm() * wd.norm() + 1e-300))
        hint = ""
        if torch.allclose(got, gd - parallel, rtol=1e-5, atol=1e-7):
            hint = " — the direction is right; now rescale g⊥ to the norm of the original gradient, ‖g‖"
        elif torch.allclose(got, parallel, rtol=1e-5, atol=1e-7) or abs(cos_w) > 0.999:
            hint = " — you returned the component *along* w; ⊥Grad keeps what is orthogonal to w"
        elif torch.allclose(got / got.norm(), (gd + parallel) / (gd + parallel).norm(), rtol=1e-5, atol=1e-7):
            hint = " — subtract the projection (g − …), do not add it"
        elif torch.allclose(got / got.norm(), (gd - (gd * wd).sum() / wd.norm() * wd).div(
                (gd - (gd * wd).sum() / wd.norm() * wd).norm()), rtol=1e-5, atol=1e-7):
            hint = " — divide ⟨g,w⟩ by ⟨w,w⟩ = ‖w‖², not by ‖w‖"
        elif abs(cos_w) > 1e-6:
            hint = f" — the result is not orthogonal to w (cosine {cos_w:.3g})"
        elif abs(float(got.norm() - gd.norm())) > 1e-5 * float(gd.norm()):
            hint = f" — orthogonal, but its norm is {float(got.norm()):.4g}, not ‖g‖ = {float(gd.norm()):.4g}"
        failures.append(f"{case}: expected {_short(expected)}, got {_short(got)}{hint}")
    return report("orthogonal_gradient", failures, len(cases))


# ----------------------------------------------------------------------------- IPR
def ipr_reference(power: torch.Tensor) -> torch.Tensor:
    """Inverse participation ratio over the last axis of a non-negative power spectrum: Σ P² / (Σ P)²."""
    return (power**2).sum(-1) / power.sum(-1) ** 2


def check_ipr(fn: Callable) -> bool:
    """Check ``fn(power) -> IPR`` over the last axis (one value per row of a 2-D input)."""
    g = torch.Generator().manual_seed(3)
    cases = [torch.tensor([0.0, 4.0, 0.0, 0.0]), torch.ones(5), torch.tensor([1.0, 3.0]),
             torch.rand(3, 29, generator=g, dtype=torch.float64), torch.tensor([[2.0, 0.0, 0.0], [1.0, 1.0, 1.0]])]
    failures = []
    for p in cases:
        got, err = call(fn, p.clone())
        if err == NOT_IMPLEMENTED:
            return not_implemented("ipr")
        case = f"power={[round(v, 3) for v in p.reshape(-1)[:5].tolist()]}{' …' if p.numel() > 5 else ''} (shape {tuple(p.shape)})"
        if err:
            failures.append(f"{case}: {err}")
            continue
        got = _as_tensor(got)
        pd_ = p.double()
        expected = ipr_reference(pd_)
        if got is None or got.shape != expected.shape:
            failures.append(f"{case}: expected shape {tuple(expected.shape)} (one IPR per row, over the last axis), "
                            f"got {None if got is None else tuple(got.shape)}")
            continue
        if torch.allclose(got, expected, rtol=1e-6, atol=1e-9):
            continue
        hint = ""
        if torch.allclose(got, 1 / expected, rtol=1e-6):
            hint = " — that is the participation ratio (Σ P)²/Σ P²; the IPR is its inverse"
        elif torch.allclose(got, (pd_**2).sum(-1), rtol=1e-6):
            hint = " — normalize: divide Σ P² by (Σ P)² so that one frequency gives 1 and n equal ones 1/n"
        elif torch.allclose(got, (pd_**4).sum(-1) / ((pd_**2).sum(-1)) ** 2, rtol=1e-6):
            hint = " — the input is already a power |F|²; do not square it again"
        elif torch.allclose(got, (pd_**2).sum(-1) / (pd_**2).sum(-1).sqrt(), rtol=1e-6):
            hint = " — divide by (Σ P)², the square of the total, not by ‖P‖"
        failures.append(f"{case}: expected {_short(expected)}, got {_short(got)}{hint}")
    return report("ipr", failures, len(cases))


__all__ = ["check_stablemax", "stablemax_reference", "check_orthogonal_gradient", "orthogonal_gradient_reference",
           "check_ipr", "ipr_reference"]
