"""flatlab's optimizers, one module per family, and :func:`make_optimizer`, the one registry that builds any of
them by name.

- ``sam``: SAM and ASAM; ``variational``: the Gaussian KL, :class:`VariationalOptimizer` and MFVI;
  ``variational_sam``: MixSAM and variational SAM; ``nudged``: Nudged-SGD; ``adamcm``: Adam with critical
  momenta; ``orthograd``: ⊥Grad; ``calibration``: ECE and the isotropic-noise control; ``registry``: names →
  optimizers; ``_common``: the checks and helpers they share.

Most of them take the gradient at a perturbed mean (SAM, ASAM, MFVI, MixSAM, variational SAM);
Nudged-SGD rescales the step along the sharpest Hessian directions.

All of them compute, each step, a gradient at ``w + ε`` where ``w`` is the current mean and ``ε``
a perturbation — the shared picture of Ujváry et al. (2022):

=================  =========================================================  ==================
optimizer          perturbation ε                                             learns
=================  =========================================================  ==================
SAM                ρ g/‖g‖  (worst case in the ρ-ball, to first order)       w
ASAM               ρ T²g/‖Tg‖, T = |w|+η (worst case, |w|-scaled ball)       w
MFVI               σ ⊙ ξ,  ξ ~ N(0, I)  (reparameterization trick)            μ = w and σ
MixSAM             (1 − m)·ρ g/‖g‖ + m·σ ⊙ ξ                                  μ and σ
VariationalSAM     ρ σ² ⊙ g/‖σ ⊙ g‖  (worst case in the σ-scaled ball)       μ and σ
=================  =========================================================  ==================

with ``g = ∇L_B(w)`` the minibatch gradient at the mean. Every class follows ``torch.optim``
conventions (``param_groups``, ``state_dict``/``load_state_dict``, ``zero_grad``, learning-rate
schedulers) and is a thin :class:`torch.optim.Optimizer` over plain update functions
(:func:`sam_perturbation`, :func:`kl_gradients`) and a *base optimizer* (``torch.optim.SGD``,
``Adam`` …) that turns the final gradient into the update.

The closure contract
--------------------
``step(closure)`` is the only way to run these optimizers inside ``flatlab.train.fit`` (which calls
``optimizer.step(closure)`` once per step). ``closure()`` must

1. clear the gradients (``optimizer.zero_grad()``),
2. compute the loss on the *same minibatch* every time it is called and ``backward()`` it,
3. return the loss.

SAM, MixSAM (m < 1) and variational SAM call it twice per step (at ``w`` and at ``w + ε``), MFVI
``mc_samples`` times. A missing closure raises ``ValueError``. For BatchNorm, pass ``model=`` to
the constructor: every pass after the first then runs inside :func:`frozen_bn_stats`, so the
running statistics are updated once per step, by the pass at the unperturbed point (or, for
MFVI, the first sample). SAM also exposes ``first_step()`` / ``second_step()`` (the
davda54/sam API) for gradient accumulation and custom loops.

:class:`NudgedSGD` is a one-pass optimizer: plain SGD whose step along the top-k Hessian eigenvectors is
scaled by γ. Its closure is optional, as for ``torch.optim.SGD``; the eigenvectors come from the callable it
is given (``flatlab.curvature.SharpestDirections``: Lanczos on a fixed batch — passed in, since this
module and ``curvature`` are the same layer).

References
----------
- Foret, Kleiner, Mobahi & Neyshabur 2021, "Sharpness-aware minimization for efficiently
  improving generalization" (arXiv:2010.01412).
- Kwon, Kim, Park & Choi 2021, "ASAM: adaptive sharpness-aware minimization for scale-invariant
  learning of deep neural networks" (arXiv:2102.11600).
- Blundell, Cornebise, Kavukcuoglu & Wierstra 2015, "Weight uncertainty in neural networks"
  (arXiv:1505.05424) — mean-field VI with the reparameterization trick (Kingma & Welling 2014,
  arXiv:1312.6114).
- Ujváry, Telek, Kerekes, Mészáros & Huszár 2022, "Rethinking sharpness-aware minimization as
  variational inference" (arXiv:2210.10452) — MixSAM and variational SAM. The paper motivates
  interpolating between SAM and MFVI and using SAM-like perturbations in place of the
  reparameterization trick; the exact formulas below are flatlab's (documented on each class).
- Möllenhoff & Khan 2023, "SAM as an optimal relaxation of Bayes" (arXiv:2210.01620) — bSAM,
  not implemented here.
- Jastrzębski, Kenton, Ballas, Fischer, Bengio & Storkey 2019, "On the relation between the sharpest
  directions of DNN loss and the SGD step length" (ICLR 2019, arXiv:1807.05031) — Nudged-SGD
  (:class:`NudgedSGD`; its departures from the paper are listed on the class).
- Guo, Pleiss, Sun & Weinberger 2017, "On calibration of modern neural networks"
  (arXiv:1706.04599) — expected calibration error.
"""
from __future__ import annotations

from ._common import ASAM_ETA, BASE_OPTIMIZERS, STD_PARAMETERIZATIONS, frozen_bn_stats
from .adamcm import AdamCM
from .calibration import calibration, noise_predictive
from .nudged import NudgedSGD, nudge
from .orthograd import OrthoGrad, orthogonal_gradient, orthogonalize_gradients_
from .registry import REGISTRY, make_optimizer
from .sam import SAM, asam_param_groups, sam_perturbation
from .variational import MFVI, VariationalOptimizer, gaussian_kl, kl_gradients
from .variational_sam import MixSAM, VariationalSAM

__all__ = [
    "SAM",
    "NudgedSGD",
    "nudge",
    "MFVI",
    "MixSAM",
    "VariationalSAM",
    "VariationalOptimizer",
    "AdamCM",
    "OrthoGrad",
    "orthogonal_gradient",
    "orthogonalize_gradients_",
    "frozen_bn_stats",
    "sam_perturbation",
    "asam_param_groups",
    "ASAM_ETA",
    "kl_gradients",
    "gaussian_kl",
    "calibration",
    "noise_predictive",
    "make_optimizer",
    "REGISTRY",
    "BASE_OPTIMIZERS",
    "STD_PARAMETERIZATIONS",
]
