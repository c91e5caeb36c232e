"""Chapter 02's 2-D experiments: each flatlab optimizer (SGD, SAM, ASAM, MFVI, MixSAM, variational SAM) on an
analytic landscape, and where it ends from starts inside the sharp pit.

The runs use flatlab's own optimizer classes (:mod:`flatlab.optim`) on a 2-element parameter tensor, with the
landscape's exact gradient in the closure — the same code that trains the MLP — through
:func:`flatlab.train.optimizer_trajectory`. ``flatlab.widgets.sam`` draws them.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

from . import _validate as _v
from .landscapes import Landscape, sharp_and_flat
from .optim import make_optimizer
from .train import Trajectory
from .train import landscape_run as train_landscape_run

METHODS_2D = ("sgd", "sam", "asam", "mfvi", "mixsam", "vsam")
#: start points inside the sharp pit of ``sharp_and_flat()`` (its centre is (−1, 0.5))
PIT_STARTS = ((-0.9, 0.4), (-1.2, 0.6), (-0.8, 0.3), (-1.1, 0.7), (-1.0, 0.5), (-0.7, 0.6))


def make_2d_optimizer(method: str, w: torch.Tensor, lr: float, rho: float = 0.5, std: float = 0.3, mix: float = 0.5,
                      learn_std: bool = False, dataset_size: int = 1, prior_precision: float = 1e-6,
                      generator: torch.Generator | None = None) -> torch.optim.Optimizer:
    """The flatlab optimizer for ``method`` on one 2-D parameter, every base update plain SGD with step ``lr``.

    ``"sgd"`` (torch's), ``"sam"``, ``"asam"``, ``"mfvi"``, ``"mixsam"``, ``"vsam"``. The variational
    ones hold σ fixed at ``std`` unless ``learn_std`` (then ``std`` is σ's initial value and the
    KL term uses ``dataset_size`` and ``prior_precision``; the default prior is so broad that
    its weight decay is negligible).
    """
    if method not in METHODS_2D:
        raise ValueError(f"method={method!r} is unknown; allowed values: {', '.join(METHODS_2D)}")
    var = dict(base_optimizer="sgd", dataset_size=dataset_size, prior_precision=prior_precision,
               init_std=std, learn_std=learn_std, generator=generator)
    kwargs = {"sgd": {}, "sam": dict(rho=rho), "asam": dict(rho=rho), "mfvi": var, "mixsam": dict(rho=rho, mix=mix, **var),
              "vsam": dict(rho=rho, **var)}[method]
    return make_optimizer([w], method, lr, **kwargs)


def landscape_run(landscape: Landscape, start: Sequence[float], method: str = "sgd", lr: float = 0.08,
                  steps: int = 150, rho: float = 0.5, std: float = 0.3, mix: float = 0.5, seed: int = 0,
                  learn_std: bool = False, dataset_size: int = 1, prior_precision: float = 1e-6,
                  bound: float = 1e3) -> Trajectory:
    """Run one flatlab optimizer on a 2-D landscape from ``start``; returns a :class:`flatlab.train.Trajectory`
    of its means μ_t (the points where it *is*, not where it evaluates gradients).

    >>> land = sharp_and_flat()
    >>> landscape_run(land, (-0.9, 0.4), "sgd").basin, landscape_run(land, (-0.9, 0.4), "sam", rho=0.5).basin
    ('sharp', 'flat')
    """
    steps = _v.integer("steps", steps, 1)
    _v.choice("method", method, METHODS_2D)
    gen = torch.Generator().manual_seed(_v.seed("seed", seed))

    def build(params, lr):
        return make_2d_optimizer(method, params[0], lr, rho, std, mix, learn_std, dataset_size, prior_precision, gen)

    return train_landscape_run(landscape, start, build, lr, steps, bound, momentum=0.0)


def basin_table(landscape: Landscape | None = None, starts: Sequence[Sequence[float]] = PIT_STARTS,
                rhos: Sequence[float] = (0.1, 0.2, 0.3, 0.5, 1.0), stds: Sequence[float] = (0.05, 0.1, 0.2, 0.5),
                seeds: Sequence[int] = (0, 1), lr: float = 0.08, steps: int = 150, learned_std: bool = True,
                dataset_size: int = 10, prior_precision: float = 1.0) -> pd.DataFrame:
    """Where SGD, SAM (each ρ) and MFVI (each σ, fixed; and σ learned from each initial σ) end, from each start.

    One row per run: method, parameter value, start, seed, basin. Deterministic methods run once
    per start; MFVI once per seed. The learned-σ runs use ``dataset_size`` and ``prior_precision``
    (prior N(0, 1/λ₀)) in the KL term.
    """
    _v.items("starts", starts, "at least one start point (w₁, w₂)")
    landscape = landscape or sharp_and_flat()
    rows = []
    for start in starts:
        s = tuple(float(v) for v in start)
        rows.append(dict(method="SGD", value=np.nan, start=s, seed=0,
                         basin=landscape_run(landscape, s, "sgd", lr, steps).basin))
        for rho in rhos:
            rows.append(dict(method="SAM", value=rho, start=s, seed=0,
                             basin=landscape_run(landscape, s, "sam", lr, steps, rho=rho).basin))
        for seed in seeds:
            for std in stds:
                rows.append(dict(method="MFVI, σ fixed", value=std, start=s, seed=seed,
                                 basin=landscape_run(landscape, s, "mfvi", lr, steps, std=std, seed=seed).basin))
                if learned_std:
                    rows.append(dict(method="MFVI, σ learned", value=std, start=s, seed=seed,
                                     basin=landscape_run(landscape, s, "mfvi", lr, steps, std=std, seed=seed,
                                                         learn_std=True, dataset_size=dataset_size,
                                                         prior_precision=prior_precision).basin))
    return pd.DataFrame(rows)
