"""Adaptive optimizers, schedules and weight averaging: where Adam, warmup and averaging end up.

- :class:`AdamCM` — Adam whose first moment is augmented by a small buffer of *critical momenta*
  (past momenta kept by priority ‖g‖ with decay), so that it overshoots narrow basins.
- :func:`preconditioned_sharpness` — λ_max(P⁻¹H) with Adam's preconditioner P = diag(√v̂ + ε), and
  :func:`adam_threshold` — its stability threshold (2+2β₁)/((1−β₁)η) ≈ 38/η for β₁ = 0.9.
- :func:`linear_warmup` (``flatlab.train``'s, re-exported), :func:`frozen_start` (the Adam-2k control) and
  :func:`fit_scheduled` — ``flatlab.fit`` with an optimizer instance; ``fit`` takes the schedule and the
  gradient-norm clipping (``torch.nn.utils.clip_grad_norm_``) and returns a ``flatlab.train.History``.
  RAdam is ``torch.optim.RAdam``, reused as is. :func:`smoothness_path` — full-batch GD, clipped or not, with
  Zhang et al.'s estimate of the local smoothness at every step, and :func:`path_summary` of it.
- Weight averaging: :func:`swa` (``torch.optim.swa_utils.AveragedModel``, ``update_bn`` when the
  model has BatchNorm) and :func:`papa` — a population trained in parallel (stacked parameters,
  ``torch.func.vmap``) and pulled toward its average every few steps; :func:`average_models`.

References
----------
- Kingma & Ba 2015, "Adam: a method for stochastic optimization" (arXiv:1412.6980).
- Malviya et al. 2023, "Promoting exploration in memory-augmented Adam using critical momenta"
  (arXiv:2307.09638) — Adam+CM; McRae et al. 2022, critical gradients (arXiv:2106.10708).
- Cohen et al. 2022, "Adaptive gradient methods at the edge of stability" (arXiv:2207.14484).
- Kalra & Barkeshli 2024, "Why warmup the learning rate?" (arXiv:2406.09405); Liu et al. 2020,
  RAdam, "On the variance of the adaptive learning rate and beyond" (arXiv:1908.03265).
- Zhang, He, Sra & Jadbabaie 2020, "Why gradient clipping accelerates training" (arXiv:1905.11881).
- Izmailov et al. 2018, "Averaging weights leads to wider optima and better generalization" (SWA,
  arXiv:1803.05407); Jolicoeur-Martineau et al. 2023, "PopulAtion Parameter Averaging (PAPA)"
  (arXiv:2304.03094).
"""
from __future__ import annotations

from ..optim import AdamCM
from .averaging import PAPA_OPTIMIZERS, PAPAResult, SWAResult, average_models, papa, papa_pull_, swa
from .experiments import lambda_max, train_to_loss, warmup_grid
from .preconditioned import PreconditionedSharpnessProbe, adam_preconditioner, adam_threshold, preconditioned_sharpness
from .smoothness import path_summary, smoothness_path
from .schedules import (ADAPTIVE_OPTIMIZERS, fit_scheduled, frozen_start, landscape_run, linear_warmup,
                        make_adaptive_optimizer)


__all__ = [
    "AdamCM",
    "adam_preconditioner",
    "preconditioned_sharpness",
    "adam_threshold",
    "PreconditionedSharpnessProbe",
    "linear_warmup",
    "frozen_start",
    "fit_scheduled",
    "smoothness_path",
    "path_summary",
    "make_adaptive_optimizer",
    "ADAPTIVE_OPTIMIZERS",
    "landscape_run",
    "average_models",
    "swa",
    "SWAResult",
    "papa",
    "papa_pull_",
    "PAPAResult",
    "PAPA_OPTIMIZERS",
    "lambda_max",
    "train_to_loss",
    "warmup_grid",
]
