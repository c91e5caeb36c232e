"""MixSAM and variational SAM: variational optimizers whose perturbation takes SAM's step (after Ujváry et al.
2022, arXiv:2210.10452; the exact formulas are flatlab's, documented on each class)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from .. import _validate as _v
from .sam import global_norm
from .variational import VariationalOptimizer


class MixSAM(VariationalOptimizer):
    r"""A mixture of SAM's worst-case perturbation and MFVI's random one (learns μ and σ).

    The perturbation, with m = ``mix`` ∈ [0, 1], g = ∇L_B(μ) and ξ ~ N(0, I)::

        ε = (1 − m) · ρ g / ‖g‖  +  m · σ ⊙ ξ            (ρ g/‖g‖ exactly as in SAM)
        ∇_μ = ∇L_B(μ + ε) + λ₀ μ / N
        ∇_σ = m · ∇L_B(μ + ε) ⊙ ξ + (λ₀ σ − 1/σ) / N    (∂ε/∂σ = m ξ; the SAM part is held fixed)

    Endpoints, exactly (bit for bit, tested): ``mix=1`` *is* :class:`MFVI` (same noise, same
    updates; no pass at the mean is made); ``mix=0`` *is* :class:`SAM` with the same base
    optimizer and coupled weight decay λ₀/N (``SAM(…, weight_decay=prior_precision/dataset_size)``,
    for SGD/Adam), its σ then learning from the KL term only. In between, each step costs one pass
    at μ plus ``mc_samples`` perturbed passes.

    This is flatlab's formulation of the interpolation that Ujváry et al. (2022) motivate; the
    paper's own variants may differ in detail.
    """

    _passes = "at μ (for SAM's direction) and at μ + ε"

    def __init__(self, params: Iterable, lr: float = 1e-3, *, dataset_size: int, rho: float = 0.05, mix: float = 0.5,
                 **kwargs: Any):
        self._rho = _v.non_negative("rho", rho)
        self._mix = _v.number("mix", mix, 0, 1)
        super().__init__(params, lr, dataset_size=dataset_size, **kwargs)

    def _extra_defaults(self) -> dict:
        return {"rho": self._rho, "mix": self._mix}

    def _check_group(self, group: dict) -> None:
        _v.non_negative("rho", group["rho"])
        _v.number("mix", group["mix"], 0, 1)

    def _needs_mean_gradient(self) -> bool:
        return any(g["mix"] < 1.0 for g in self.param_groups)

    def _perturb(self, sigmas, mean_grads, groups):
        mixes = [g["mix"] for g in groups]
        if all(m == 1.0 for m in mixes):  # exactly MFVI
            xi = self._noise()
            return [torch.mul(s, x, out=b["eps"]) for s, x, b in zip(sigmas, xi, self._buckets)], xi
        # ‖g‖ over every tensor, as SAM computes it (mean_grads are the buckets' "mg" buffers)
        norm = global_norm([v for b in self._buckets for v in b.views["mg"]])
        e_sam = [torch.mul(g, grp["rho"] / (norm + 1e-12), out=b["eps"])  # ρ g/‖g‖
                 for g, grp, b in zip(mean_grads, groups, self._buckets)]
        if all(m == 0.0 for m in mixes):  # exactly SAM
            return e_sam, None
        xi = self._noise()
        dws = []
        for e, s, x, m, b in zip(e_sam, sigmas, xi, mixes, self._buckets):
            e.mul_(1.0 - m).add_(torch.mul(s, x, out=b["work"]).mul_(m))  # (1 − m) ρ g/‖g‖ + m σ ⊙ ξ
            dws.append(torch.mul(x, m, out=b["delta"]))                  # ∂ε/∂σ = m ξ
        return e_sam, dws


class VariationalSAM(VariationalOptimizer):
    r"""SAM as a drop-in for the reparameterization trick: MFVI's μ and σ, SAM's worst-case ε.

    Instead of a random sample ε = σ ⊙ ξ, take the worst case of the linearized loss over the
    σ-scaled ball ``{σ ⊙ δ : ‖δ‖ ≤ ρ}`` (ρ counts standard deviations)::

        g = ∇L_B(μ);   δ = ρ σ ⊙ g / ‖σ ⊙ g‖;   ε = σ ⊙ δ = ρ σ² ⊙ g / ‖σ ⊙ g‖
        ∇_μ = ∇L_B(μ + ε) + λ₀ μ / N
        ∇_σ = ∇L_B(μ + ε) ⊙ δ + (λ₀ σ − 1/σ) / N        (δ held fixed, as SAM holds ε fixed)

    Two passes per step (``mc_samples`` must be 1: the perturbation is deterministic). flatlab's
    reading of the algorithm Ujváry et al. (2022) propose; with σ equal in every coordinate it
    is SAM with radius ρσ plus the prior's weight decay.
    """

    _passes = "at μ (for the worst-case direction) and at μ + ε"

    def __init__(self, params: Iterable, lr: float = 1e-3, *, dataset_size: int, rho: float = 1.0, **kwargs: Any):
        self._rho = _v.non_negative("rho", rho)
        super().__init__(params, lr, dataset_size=dataset_size, **kwargs)

    def _extra_defaults(self) -> dict:
        return {"rho": self._rho}

    def _check_group(self, group: dict) -> None:
        _v.non_negative("rho", group["rho"])
        if group["mc_samples"] != 1:
            raise ValueError(f"mc_samples={group['mc_samples']!r} must be 1 for VariationalSAM "
                             "(its perturbation is deterministic)")

    def _needs_mean_gradient(self) -> bool:
        return True

    def _perturb(self, sigmas, mean_grads, groups):
        deltas = [torch.mul(s, g, out=b["delta"]) for s, g, b in zip(sigmas, mean_grads, self._buckets)]  # σ ⊙ g
        norm = global_norm([v for b in self._buckets for v in b.views["delta"]])
        for d, grp in zip(deltas, groups):
            d.mul_(grp["rho"] / (norm + 1e-12))                        # δ = ρ σ ⊙ g / ‖σ ⊙ g‖
        return [torch.mul(s, d, out=b["eps"]) for s, d, b in zip(sigmas, deltas, self._buckets)], deltas
