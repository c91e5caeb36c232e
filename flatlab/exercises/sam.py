"""Check functions for chapter 02's exercises (SAM versus MFVI), with their reference solutions.

``check_sam_perturbation(fn)``, ``check_reparameterized_sample(fn)`` and ``check_gaussian_kl(fn)`` run a
student's function on several cases and say *what* is wrong (the case, expected versus obtained, and a hint
naming the likely mistake). A stub that still raises ``NotImplementedError`` gets a friendly note.

References: Foret et al., arXiv:2010.01412 (SAM); Kingma & Welling, arXiv:1312.6114 and Blundell et
al., arXiv:1505.05424 (the reparameterization trick and the mean-field KL term).
"""
from __future__ import annotations

from typing import Callable

import torch

from .base import NOT_IMPLEMENTED, not_implemented
from .base import call as _call, report as _report


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


def _sam_hint(grads, rho, got) -> str:
    flat = torch.cat([g.reshape(-1) for g in grads])
    norm = float(flat.norm())
    got_flat = torch.cat([torch.as_tensor(t).reshape(-1) for t in got]).double()
    exp_flat = flat.double() * rho / norm
    candidates = [
        (flat.double() * rho, " — divide by ‖g‖: the perturbation has length ρ, whatever the gradient's size"),
        (-exp_flat, " — wrong sign: SAM moves *up* the loss, ε = +ρ g/‖g‖ (the worst case, not a descent step)"),
        (flat.double() * rho / norm ** 2, " — divide by ‖g‖, not ‖g‖²"),
        (flat.double() / norm, " — multiply by ρ: the unit direction g/‖g‖ must be scaled to the radius"),
        (torch.cat([(g.double() * rho / max(float(g.norm()), 1e-30)).reshape(-1) for g in grads]),
         " — normalize by the norm of *all* gradients together, not each tensor's own norm"),
    ]
    for cand, hint in candidates:
        if got_flat.shape == cand.shape and torch.allclose(got_flat, cand, rtol=1e-4, atol=1e-7):
            return hint
    return ""


def check_sam_perturbation(fn: Callable) -> bool:
    """Check ``fn(grads, rho) -> list of tensors`` returns SAM's ε = ρ g/‖g‖ (global norm)."""
    cases = _sam_cases()
    failures = []
    for grads, rho in cases:
        inputs = [g.clone() for g in grads]
        got, err = _call(fn, inputs, rho)
        if err == NOT_IMPLEMENTED:
            return not_implemented("sam_perturbation")
        case = f"grads of shapes {[tuple(g.shape) for g in grads]}, ρ={rho}"
        if err:
            failures.append(f"{case}: {err}")
            continue
        if not all(torch.equal(a, b) for a, b in zip(inputs, grads)):
            failures.append(f"{case}: the gradients were modified in place — return new tensors, leave grads as they are")
            continue
        if torch.is_tensor(got) or not isinstance(got, (list, tuple)) or len(got) != len(grads):
            failures.append(f"{case}: return a list with one tensor per gradient ({len(grads)}), "
                            f"got {type(got).__name__}" + (f" of length {len(got)}" if isinstance(got, (list, tuple)) else ""))
            continue
        if any(not torch.is_tensor(t) or t.shape != g.shape for t, g in zip(got, grads)):
            failures.append(f"{case}: each ε must have its gradient's shape {[tuple(g.shape) for g in grads]}")
            continue
        expected = sam_perturbation_reference(grads, rho)
        zero = all(not g.any() for g in grads)
        if not all(torch.isfinite(t).all() for t in got):
            hint = " — guard against ‖g‖ = 0 (add a tiny constant to the norm)" if zero else ""
            failures.append(f"{case}: got NaN/inf{hint}")
        elif not all(torch.allclose(t.double(), e.double(), rtol=1e-4, atol=1e-7) for t, e in zip(got, expected)):
            got_norm = float(torch.sqrt(sum((t.double() ** 2).sum() for t in got)))
            failures.append(f"{case}: expected ‖ε‖ = {0.0 if zero else rho:.4g} along g, got ‖ε‖ = {got_norm:.4g}"
                            + ("" if zero else _sam_hint(grads, rho, got)))
    return _report("sam_perturbation", failures, len(cases))


# ----------------------------------------------------------------------------------------------
# exercise 2: the reparameterized sample
# ----------------------------------------------------------------------------------------------
def reparameterized_sample_reference(mean: torch.Tensor, log_std: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """``w = μ + exp(s) ⊙ ξ``: a sample of N(μ, σ²), σ = exp(s), differentiable in μ and s."""
    return mean + torch.exp(log_std) * noise


def _reparam_hint(mean, log_std, noise, got) -> str:
    candidates = [
        (mean + log_std * noise, " — σ = exp(log_std): exponentiate the log standard deviation"),
        (mean + torch.exp(2 * log_std) * noise, " — exp(log_std) is σ, not σ²: scale the noise by σ"),
        (mean + torch.exp(0.5 * log_std) * noise, " — log_std is log σ, not log σ²: use exp(log_std), not exp(log_std / 2)"),
        (mean + torch.exp(log_std), " — multiply σ by the noise ξ you are given"),
        (torch.exp(log_std) * noise, " — add the mean μ"),
    ]
    for cand, hint in candidates:
        if torch.allclose(got.detach().double(), cand.detach().double(), rtol=1e-5, atol=1e-7):
            return hint
    return " — use the noise you are given (do not draw your own)"


def check_reparameterized_sample(fn: Callable) -> bool:
    """Check ``fn(mean, log_std, noise) -> w`` is μ + exp(s)ξ *and* passes gradients to μ and s."""
    gen = torch.Generator().manual_seed(1)
    cases = [(torch.tensor([0.0, 1.0, -2.0]), torch.tensor([0.0, -1.0, 0.5]), torch.tensor([1.0, -0.5, 2.0])),
             (torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen) - 2, torch.randn(4, 3, generator=gen))]
    failures = []
    for mean0, log_std0, noise in cases:
        mean, log_std = mean0.clone().requires_grad_(True), log_std0.clone().requires_grad_(True)
        got, err = _call(fn, mean, log_std, noise.clone())
        if err == NOT_IMPLEMENTED:
            return not_implemented("reparameterized_sample")
        case = f"μ of shape {tuple(mean0.shape)}"
        if err:
            failures.append(f"{case}: {err}")
            continue
        if not torch.is_tensor(got) or got.shape != mean0.shape:
            failures.append(f"{case}: return one tensor shaped like μ {tuple(mean0.shape)}, got "
                            f"{tuple(got.shape) if torch.is_tensor(got) else type(got).__name__}")
            continue
        expected = reparameterized_sample_reference(mean0, log_std0, noise)
        if not torch.allclose(got.detach(), expected, rtol=1e-5, atol=1e-6):
            failures.append(f"{case}: expected w = {expected.flatten()[:3].numpy().round(4).tolist()}…, got "
                            f"{got.detach().flatten()[:3].numpy().round(4).tolist()}…"
                            + _reparam_hint(mean0, log_std0, noise, got))
            continue
        if not got.requires_grad:
            failures.append(f"{case}: the sample carries no gradient — build it as μ + σ·ξ from the tensors you "
                            "are given (no .detach(), no torch.normal), so ∇ reaches μ and σ: that is the trick")
            continue
        g_mean, g_log_std = torch.autograd.grad(got.sum(), [mean, log_std], allow_unused=True)
        if g_mean is None or g_log_std is None:
            which = "μ" if g_mean is None else "log σ"
            failures.append(f"{case}: no gradient reaches {which} — the sample must be a differentiable function of μ and log σ")
        elif not torch.allclose(g_log_std, torch.exp(log_std0) * noise, rtol=1e-5, atol=1e-6) or \
                not torch.allclose(g_mean, torch.ones_like(mean0)):
            failures.append(f"{case}: wrong gradients: ∂w/∂μ should be 1 and ∂w/∂s = exp(s)·ξ")
    return _report("reparameterized_sample", failures, len(cases))


# ----------------------------------------------------------------------------------------------
# exercise 3: the KL term of the variational objective
# ----------------------------------------------------------------------------------------------
def gaussian_kl_reference(mean: torch.Tensor, std: torch.Tensor, prior_precision: float) -> torch.Tensor:
    """``KL(N(μ, diag σ²) ‖ N(0, λ₀⁻¹ I)) = ½ Σᵢ [λ₀(σᵢ² + μᵢ²) − 1 − log(λ₀σᵢ²)]``, summed over all elements."""
    var = std.double() ** 2
    return 0.5 * (prior_precision * (var + mean.double() ** 2) - 1.0 - torch.log(prior_precision * var)).sum()


def _kl_hint(mean, std, lam, got: float) -> str:
    m, v = mean.double(), std.double() ** 2
    log = torch.log
    candidates = [
        (((lam * (v + m ** 2) - 1 - log(lam * v)).sum()), "missing the factor ½ in front of the sum"),
        ((0.5 * (lam * (std.double() + m ** 2) - 1 - log(lam * std.double())).sum()),
         "the KL needs the variance σ², not σ: square the standard deviation"),
        ((0.5 * (lam * (v + m ** 2) - 1 - log(lam * std.double())).sum()),
         "the log term is log(λ₀σ²) = log λ₀ + 2 log σ: square σ inside the log too"),
        ((0.5 * (lam * (v + m ** 2) - log(lam * v)).sum()),
         "subtract 1 per element: the ‘−1’ makes the KL zero when q equals the prior"),
        ((0.5 * (lam * v - 1 - log(lam * v)).sum()), "the mean contributes λ₀μ² — q's mean is not the prior's 0"),
        ((0.5 * ((v + m ** 2) / lam - 1 + log(lam / v)).sum()),
         "λ₀ is the prior's *precision*: its variance is 1/λ₀, so the KL has λ₀(σ² + μ²), not (σ² + μ²)/λ₀"),
        ((0.5 * ((1 / lam + m ** 2) / v - 1 + log(lam * v)).sum()),
         "that is the reverse divergence KL(p ‖ q): MFVI penalizes KL(q ‖ p), q first"),
        ((0.5 * (lam * (v + m ** 2) - 1 - log(lam * v)).mean()),
         "sum over the elements, do not average: the KL of independent coordinates adds up"),
    ]
    for value, hint in candidates:
        if torch.isclose(torch.as_tensor(float(value), dtype=torch.float64), torch.tensor(got, dtype=torch.float64),
                         rtol=1e-5, atol=1e-8):
            return " — " + hint
    return ""


def check_gaussian_kl(fn: Callable) -> bool:
    """Check ``fn(mean, std, prior_precision) -> number`` is KL(N(μ, σ²) ‖ N(0, 1/λ₀)) summed over elements."""
    gen = torch.Generator().manual_seed(2)
    cases = [
        (torch.zeros(3), torch.ones(3), 1.0),
        (torch.tensor([1.0, -2.0]), torch.tensor([0.5, 2.0]), 1.0),
        (torch.tensor([0.3, 0.0, -1.5]), torch.tensor([0.1, 1.0, 0.7]), 4.0),
        (torch.randn(4, 3, generator=gen), torch.rand(4, 3, generator=gen) + 0.05, 0.25),
        (torch.randn(6, generator=gen, dtype=torch.float64), torch.full((6,), 0.02, dtype=torch.float64), 10.0),
    ]
    failures = []
    for mean, std, lam in cases:
        got, err = _call(fn, mean.clone(), std.clone(), lam)
        if err == NOT_IMPLEMENTED:
            return not_implemented("gaussian_kl")
        case = f"μ of shape {tuple(mean.shape)}, λ₀={lam:g}"
        if err:
            failures.append(f"{case}: {err}")
            continue
        if torch.is_tensor(got) and got.numel() != 1:
            failures.append(f"{case}: return one number, got a tensor of shape {tuple(got.shape)} — sum the "
                            "per-element terms over all elements")
            continue
        try:
            got = float(got.detach()) if torch.is_tensor(got) else float(got)
        except (TypeError, ValueError):
            failures.append(f"{case}: return a number, got {type(got).__name__}")
            continue
        expected = float(gaussian_kl_reference(mean, std, lam))
        if abs(got - expected) <= 1e-5 * abs(expected) + 1e-8:
            continue
        failures.append(f"{case}: expected KL = {expected:.6g}, got {got:.6g}" + _kl_hint(mean, std, lam, got))
    return _report("gaussian_kl", failures, len(cases))


__all__ = ["sam_perturbation_reference", "check_sam_perturbation", "reparameterized_sample_reference",
           "check_reparameterized_sample", "gaussian_kl_reference", "check_gaussian_kl"]
