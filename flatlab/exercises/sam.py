"""Check functions for chapter 02's exercises (SAM versus MFVI), with their reference solutions.

``check_sam_perturbation(fn)``, ``check_reparameterized_sample(fn)`` and ``check_gaussian_kl(fn)`` run a
student's function on several cases and say *what* is wrong (the case, expected versus obtained, and a hint
naming the likely mistake). A stub that still raises ``NotImplementedError`` gets a friendly note.

References: Foret et al., arXiv:2010.01412 (SAM); Kingma & Welling, arXiv:1312.6114 and Blundell et
al., arXiv:1505.05424 (the reparameterization trick and the mean-field KL term).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .base import Array, Case, Hint, Number, Tensors, _np, close, default_compare, raw_shape, run_cases, show, spec

_WHY_TENSORS = "the chapter calls .numpy() on them"


# ----------------------------------------------------------------------------------------------
# exercise 1: SAM's perturbation
# ----------------------------------------------------------------------------------------------
def sam_perturbation_reference(grads: list[torch.Tensor], rho: float) -> list[torch.Tensor]:
    """SAM's first-order worst case ``ε = ρ g / ‖g‖``, the norm taken over all tensors together."""
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
    scale = rho / (float(norm) + 1e-12)
    return [g * scale for g in grads]


def _sam_cases():
    gen = torch.Generator().manual_seed(0)
    return [
        ([torch.tensor([3.0, 4.0])], 0.5),
        ([torch.tensor([3.0, 0.0]), torch.tensor([[4.0]])], 0.5),
        ([torch.randn(4, 3, generator=gen), torch.randn(3, generator=gen), torch.randn(2, 4, generator=gen)], 0.05),
        ([torch.zeros(3), torch.zeros(2, 2)], 0.1),
    ]


def _global_norm(grads) -> float:
    return float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads)))


def _flat(ts) -> np.ndarray:
    return np.concatenate([_np(t).reshape(-1) for t in ts])


def _sam_compare(case, out) -> str | None:
    if close(out.value, case.expected):
        return None
    grads, rho = case.args
    got = _flat(out.value)
    if not np.all(np.isfinite(got)):
        return f"got NaN/inf entries: {show(got)}"
    zero = _global_norm(grads) == 0
    return (f"expected ε = {show(_flat(case.expected))} (‖ε‖ = {0.0 if zero else rho:.4g} along g), "
            f"got {show(got)} (‖ε‖ = {np.linalg.norm(got):.4g})")


def _sam_variant(scale) -> callable:
    """The answer ``[g · scale(g, grads, rho) for g in grads]`` of one mistake."""
    return lambda grads, rho: [g.double() * scale(g.double(), grads, rho) for g in grads]


@spec("sam_perturbation")
def _sam_perturbation_spec() -> dict:
    n = lambda gs: _global_norm(gs) + 1e-12  # noqa: E731 - guarded like the reference, so ‖g‖ = 0 gives 0
    return dict(
        cases=[Case(c, f"grads of shapes {[tuple(g.shape) for g in c[0]]}, ρ={c[1]}") for c in _sam_cases()],
        reference=sam_perturbation_reference, params=("grads", "rho"), compare=_sam_compare,
        answer=Tensors(what="gradient", why=_WHY_TENSORS),
        in_place="return new tensors (rho * g / norm), leave grads as they are",
        hints=[
            Hint("guard against ‖g‖ = 0 (add a tiny constant to the norm)",
                 lambda c, o: _global_norm(c.args[0]) == 0 and o.value is not None and not np.all(np.isfinite(_flat(o.value)))),
            Hint.like("divide by ‖g‖: the perturbation has length ρ, whatever the gradient's size",
                      _sam_variant(lambda g, gs, rho: rho)),
            Hint.like("wrong sign: SAM moves *up* the loss, ε = +ρ g/‖g‖ (the worst case, not a descent step)",
                      _sam_variant(lambda g, gs, rho: -rho / n(gs))),
            Hint.like("divide by ‖g‖, not ‖g‖²", _sam_variant(lambda g, gs, rho: rho / n(gs) ** 2)),
            Hint.like("multiply by ρ: the unit direction g/‖g‖ must be scaled to the radius",
                      _sam_variant(lambda g, gs, rho: 1 / n(gs))),
            Hint.like("normalize by the norm of *all* gradients together, not each tensor's own norm",
                      _sam_variant(lambda g, gs, rho: rho / max(float(g.norm()), 1e-30))),
            Hint.like("the norm runs over *all* gradients together, not only the first tensor",
                      _sam_variant(lambda g, gs, rho: rho / (float(gs[0].double().norm()) + 1e-12))),
            Hint.like("use the Euclidean norm ‖g‖₂ = √Σg², not the sum of absolute values",
                      _sam_variant(lambda g, gs, rho: rho / (float(sum(t.double().abs().sum() for t in gs)) + 1e-12))),
        ])


def check_sam_perturbation(fn: Callable) -> bool:
    """Check ``fn(grads, rho) -> list of tensors`` returns SAM's ε = ρ g/‖g‖ (global norm)."""
    return run_cases("sam_perturbation", fn, **_sam_perturbation_spec())


# ----------------------------------------------------------------------------------------------
# exercise 2: the reparameterized sample
# ----------------------------------------------------------------------------------------------
def reparameterized_sample_reference(mean: torch.Tensor, log_std: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """``w = μ + exp(s) ⊙ ξ``: a sample of N(μ, σ²), σ = exp(s), differentiable in μ and s."""
    return mean + torch.exp(log_std) * noise


def _reparam_compare(case, out) -> str | None:
    problem = default_compare(case, out)
    if problem:
        return f"expected w = {show(case.expected)}, got {show(out.value)}"
    mean, log_std, noise = out.args
    got = out.raw
    if not got.requires_grad:
        return ("the sample carries no gradient — build it as μ + σ·ξ from the tensors you are given (no .detach(), "
                "no torch.normal), so that ∇ reaches μ and σ: that is the trick")
    g_mean, g_log_std = torch.autograd.grad(got.sum(), [mean, log_std], allow_unused=True)
    if g_mean is None or g_log_std is None:
        which = "μ" if g_mean is None else "log σ"
        return f"no gradient reaches {which} — the sample must be a differentiable function of μ and log σ"
    if not close(g_log_std, torch.exp(log_std.detach()) * noise) or not close(g_mean, torch.ones_like(mean)):
        return "wrong gradients: ∂w/∂μ should be 1 and ∂w/∂s = exp(s)·ξ"
    return None


@spec("reparameterized_sample")
def _reparameterized_sample_spec() -> dict:
    gen = torch.Generator().manual_seed(1)
    raw = [(torch.tensor([0.0, 1.0, -2.0]), torch.tensor([0.0, -1.0, 0.5]), torch.tensor([1.0, -0.5, 2.0])),
           (torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen) - 2, torch.randn(4, 3, generator=gen))]
    cases = [Case((m.requires_grad_(True), s.requires_grad_(True), xi), f"μ of shape {tuple(m.shape)}") for m, s, xi in raw]
    return dict(
        cases=cases, reference=lambda m, s, xi: reparameterized_sample_reference(m, s, xi).detach(),
        params=("mean", "log_std", "noise"), compare=_reparam_compare,
        answer=Array(kinds=("torch",), why="the chapter backpropagates through it"),
        in_place="compute σ·ξ into a new tensor (torch.exp(log_std) * noise), leave the noise as it is",
        repeat="use the noise you are given, do not draw your own",
        hints=[
            Hint("do not draw noise of your own: use the noise you are given (w = μ + σ·ξ)", lambda c, o: o.varies),
            Hint.like("σ = exp(log_std): exponentiate the log standard deviation", lambda m, s, xi: m + s * xi),
            Hint.like("scale the noise by σ = exp(log_std), not σ²: exp(2·log_std) is the variance",
                      lambda m, s, xi: m + torch.exp(2 * s) * xi),
            Hint.like("log_std is log σ, not log σ²: use exp(log_std), not exp(log_std / 2)",
                      lambda m, s, xi: m + torch.exp(0.5 * s) * xi),
            Hint.like("multiply σ by the noise ξ you are given", lambda m, s, xi: m + torch.exp(s)),
            Hint.like("add the mean μ", lambda m, s, xi: torch.exp(s) * xi),
            Hint.like("w = μ + σ·ξ: add the scaled noise, do not subtract it", lambda m, s, xi: m - torch.exp(s) * xi),
        ])


def check_reparameterized_sample(fn: Callable) -> bool:
    """Check ``fn(mean, log_std, noise) -> w`` is μ + exp(s)ξ *and* passes gradients to μ and s."""
    return run_cases("reparameterized_sample", fn, **_reparameterized_sample_spec())


# ----------------------------------------------------------------------------------------------
# exercise 3: the KL term of the variational objective
# ----------------------------------------------------------------------------------------------
def gaussian_kl_reference(mean: torch.Tensor, std: torch.Tensor, prior_precision: float) -> torch.Tensor:
    """``KL(N(μ, diag σ²) ‖ N(0, λ₀⁻¹ I)) = ½ Σᵢ [λ₀(σᵢ² + μᵢ²) − 1 − log(λ₀σᵢ²)]``, summed over all elements."""
    var = std.double() ** 2
    return 0.5 * (prior_precision * (var + mean.double() ** 2) - 1.0 - torch.log(prior_precision * var)).sum()


def _kl(f) -> callable:
    """A candidate KL from ``f(m, σ, v, λ)`` per element, in float64."""
    return lambda mean, std, lam: f(mean.double(), std.double(), std.double() ** 2, lam)


@spec("gaussian_kl")
def _gaussian_kl_spec() -> dict:
    gen = torch.Generator().manual_seed(2)
    cases = [
        (torch.zeros(3), torch.ones(3), 1.0),
        (torch.tensor([1.0, -2.0]), torch.tensor([0.5, 2.0]), 1.0),
        (torch.tensor([0.3, 0.0, -1.5]), torch.tensor([0.1, 1.0, 0.7]), 4.0),
        (torch.randn(4, 3, generator=gen), torch.rand(4, 3, generator=gen) + 0.05, 0.25),
        (torch.randn(6, generator=gen, dtype=torch.float64), torch.full((6,), 0.02, dtype=torch.float64), 10.0),
    ]
    log = torch.log
    return dict(
        cases=[Case(c, f"μ of shape {tuple(c[0].shape)}, λ₀={c[2]:g}") for c in cases],
        reference=lambda m, s, lam: float(gaussian_kl_reference(m, s, lam)), params=("mean", "std", "prior_precision"),
        answer=Number(), compare=lambda c, o: None if close(o.value, c.expected) else
        f"expected KL = {c.expected:.6g}, got {o.value:.6g}",
        hints=[
            Hint("return one number: sum the per-element terms over all elements",
                 lambda c, o: raw_shape(o) == tuple(c.args[0].shape)),
            Hint.like("missing the factor ½ in front of the sum",
                      _kl(lambda m, s, v, lam: (lam * (v + m ** 2) - 1 - log(lam * v)).sum())),
            Hint.like("the KL needs the variance σ², not σ: square the standard deviation",
                      _kl(lambda m, s, v, lam: 0.5 * (lam * (s + m ** 2) - 1 - log(lam * s)).sum())),
            Hint.like("the log term is log(λ₀σ²) = log λ₀ + 2 log σ: square σ inside the log too",
                      _kl(lambda m, s, v, lam: 0.5 * (lam * (v + m ** 2) - 1 - log(lam * s)).sum())),
            Hint.like("subtract 1 per element: the ‘−1’ makes the KL zero when q equals the prior",
                      _kl(lambda m, s, v, lam: 0.5 * (lam * (v + m ** 2) - log(lam * v)).sum())),
            Hint.like("the mean contributes λ₀μ² — q's mean is not the prior's 0",
                      _kl(lambda m, s, v, lam: 0.5 * (lam * v - 1 - log(lam * v)).sum())),
            Hint.like("λ₀ is the prior's *precision*: its variance is 1/λ₀, so the KL has λ₀(σ² + μ²), not (σ² + μ²)/λ₀",
                      _kl(lambda m, s, v, lam: 0.5 * ((v + m ** 2) / lam - 1 + log(lam / v)).sum())),
            Hint.like("that is the reverse divergence KL(p ‖ q): MFVI penalizes KL(q ‖ p), q first",
                      _kl(lambda m, s, v, lam: 0.5 * ((1 / lam + m ** 2) / v - 1 + log(lam * v)).sum())),
            Hint.like("sum over the elements, do not average: the KL of independent coordinates adds up",
                      _kl(lambda m, s, v, lam: 0.5 * (lam * (v + m ** 2) - 1 - log(lam * v)).mean())),
            Hint.like("the log term enters with a minus sign: ½[λ₀(σ² + μ²) − 1 − log(λ₀σ²)]",
                      _kl(lambda m, s, v, lam: 0.5 * (lam * (v + m ** 2) - 1 + log(lam * v)).sum())),
        ])


def check_gaussian_kl(fn: Callable) -> bool:
    """Check ``fn(mean, std, prior_precision) -> number`` is KL(N(μ, σ²) ‖ N(0, 1/λ₀)) summed over elements."""
    return run_cases("gaussian_kl", fn, **_gaussian_kl_spec())


__all__ = ["sam_perturbation_reference", "check_sam_perturbation", "reparameterized_sample_reference",
           "check_reparameterized_sample", "gaussian_kl_reference", "check_gaussian_kl"]
