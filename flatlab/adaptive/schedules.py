"""The frozen-start control (Adam-2k), the chapter's optimizers by name, ``fit_scheduled`` (``fit`` with an
optimizer instance) and adaptive optimizers on a 2-D landscape; :func:`linear_warmup` is ``flatlab.train``'s."""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

from .. import _validate as _v
from ..data import Dataset
from ..optim import make_optimizer
from ..train import History, fit, linear_warmup  # noqa: F401  (re-exported: chapter 06 calls adaptive.linear_warmup)
from ..train import landscape_run as train_landscape_run


ADAPTIVE_OPTIMIZERS = ("sgd", "momentum", "adam", "adamcm", "radam")


# ----------------------------------------------------------------------------------------------
# schedules, clipping and a training loop that uses them
# ----------------------------------------------------------------------------------------------
def frozen_start(frozen_steps: int) -> Callable[[int], float]:
    """Learning-rate multiplier 0 for the first ``frozen_steps`` steps, then 1: the optimizer updates its moment
    estimates on the gradients while the weights stay where they are — the "Adam-2k" control of Liu et al.
    (2020, arXiv:1908.03265), who spend 2,000 iterations estimating Adam's v before moving. Departure: torch's Adam
    updates its first moment m during those steps too (Liu et al. keep m fixed); on a full batch the gradients
    of frozen weights are all the same g, so the first real step is η·m̂/√v̂ = η·sign(g) either way.

    >>> f = frozen_start(2); [f(s) for s in range(4)]
    [0.0, 0.0, 1.0, 1.0]
    """
    frozen_steps = _v.integer("frozen_steps", frozen_steps, 0)

    def factor(s: int) -> float:
        return 0.0 if s < frozen_steps else 1.0

    factor.frozen_steps = frozen_steps  # type: ignore[attr-defined]
    return factor


def make_adaptive_optimizer(params: Iterable, name: str, lr: float, **kwargs) -> torch.optim.Optimizer:
    """``"sgd"``, ``"momentum"`` (SGD, β=0.9), ``"adam"``, ``"adamcm"`` (:class:`AdamCM`) or ``"radam"``
    (``torch.optim.RAdam``) with learning rate ``lr``; extra keyword arguments go to the optimizer. The chapter's
    subset of :func:`flatlab.optim.make_optimizer`, which builds them.

    >>> make_adaptive_optimizer(torch.nn.Linear(2, 1).parameters(), "radam", 1e-3).__class__.__name__
    'RAdam'
    """
    _v.choice("name", name, ADAPTIVE_OPTIMIZERS)
    return make_optimizer(params, name, lr, **kwargs)


def fit_scheduled(model: nn.Module, dataset: Dataset, optimizer: torch.optim.Optimizer, steps: int, *,
                  schedule: Callable[[int], float] | None = None, clip: float | None = None, loss: str = "auto",
                  batch_size: int | None = None, eval_every: int | None = None, probes: Iterable = (),
                  target_loss: float | None = None, seed: int = 0, divergence_factor: float = 1e4,
                  callback: Callable[[nn.Module, int], None] | None = None) -> History:
    """:func:`flatlab.fit` with an optimizer instance and no progress bar — the name scripts written for chapter 06
    call; ``fit`` itself takes ``schedule`` (e.g. :func:`linear_warmup`), ``clip`` and ``callback``.

    >>> from flatlab.data import gaussian_clouds; from flatlab.models import MLP
    >>> m = MLP(2, [16], 3, seed=0); opt = torch.optim.Adam(m.parameters(), lr=0.05)
    >>> h = fit_scheduled(m, gaussian_clouds(), opt, 60, schedule=linear_warmup(20), clip=1.0)
    >>> bool(h.final.train_acc > 0.8), h.diverged
    (True, False)
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer instance, got {type(optimizer).__name__}")
    return fit(model, dataset, optimizer, steps, batch_size=batch_size, loss=loss, eval_every=eval_every,
               probes=probes, target_loss=target_loss, seed=seed, progress=False,
               divergence_factor=divergence_factor, schedule=schedule, clip=clip, callback=callback)


# ----------------------------------------------------------------------------------------------
# optimizers on a 2-D landscape
# ----------------------------------------------------------------------------------------------
def landscape_run(landscape, start, optimizer: str = "adam", lr: float = 0.05, steps: int = 300,
                  bound: float = 1e3, **kwargs):
    """Run a torch optimizer on a 2-D landscape: a 2-element ``nn.Parameter`` w, loss ``landscape(w)``.

    ``optimizer`` is a name of :func:`make_adaptive_optimizer` (extra keyword arguments go to it);
    :func:`flatlab.train.landscape_run` runs it. Returns a ``flatlab.train.Trajectory`` (points, losses,
    basin of the last iterate), so ``flatlab.plots.landscape_figure`` draws it; leaving |w| ≤ ``bound``
    counts as divergence.

    >>> from flatlab.landscapes import sharp_and_flat
    >>> landscape_run(sharp_and_flat(), (-1.2, 0.8), "adam", lr=0.02, steps=200).basin
    'sharp'
    """
    _v.choice("optimizer", optimizer, ADAPTIVE_OPTIMIZERS)
    momentum = (kwargs.get("betas", (0.9, 0.999))[0] if optimizer in ("adam", "adamcm", "radam")
                else kwargs.get("momentum", 0.9 if optimizer == "momentum" else 0.0))

    def build(params, lr, **kw):
        return make_adaptive_optimizer(params, optimizer, lr, **kw)

    return train_landscape_run(landscape, start, build, lr, steps, bound, momentum=momentum, **kwargs)
