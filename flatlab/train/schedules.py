"""Learning-rate schedules: :func:`linear_warmup`, the one warmup of ``fit`` (``schedule=``), the sweeps'
``Run(warmup=…)`` and chapter 06."""
from __future__ import annotations

from typing import Callable

from .. import _validate as _v


def linear_warmup(warmup_steps: int) -> Callable[[int], float]:
    """Learning-rate multiplier of linear warmup: f(s) = min(1, (s+1)/T) after s completed steps.

    Use with ``torch.optim.lr_scheduler.LambdaLR(opt, linear_warmup(T))`` or
    :func:`flatlab.fit` (``schedule=``); a sweep's ``Run(warmup=T)`` uses it too; ``warmup_steps=0`` is the constant schedule 1.

    >>> f = linear_warmup(4); [f(s) for s in range(6)]
    [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    """
    warmup_steps = _v.integer("warmup_steps", warmup_steps, 0)

    def factor(s: int) -> float:
        return 1.0 if warmup_steps == 0 else min(1.0, (s + 1) / warmup_steps)

    factor.warmup_steps = warmup_steps  # type: ignore[attr-defined]
    return factor
