"""One registry of optimizers by name: :func:`make_optimizer` builds every optimizer flatlab's chapters use, so
``fit``, the adaptive-optimizer experiments, the 2-D widgets and the grokking recipe all name them the same way.

>>> from torch import nn
>>> type(make_optimizer(nn.Linear(2, 1).parameters(), "sam", 0.1, rho=0.05)).__name__
'SAM'
>>> make_optimizer(nn.Linear(2, 1).parameters(), "momentum", 0.1).param_groups[0]["momentum"]
0.9
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from .. import _validate as _v
from .adamcm import AdamCM
from .nudged import NudgedSGD
from .orthograd import OrthoGrad
from .sam import SAM
from .variational import MFVI
from .variational_sam import MixSAM, VariationalSAM


def _sgd(params, lr, **kwargs):
    return torch.optim.SGD(params, lr=lr, **kwargs)


def _momentum(params, lr, momentum=0.9, **kwargs):
    return torch.optim.SGD(params, lr=lr, momentum=momentum, **kwargs)


def _sam(params, lr, base_optimizer="sgd", **kwargs):
    return SAM(params, base_optimizer, lr=lr, **kwargs)


def _asam(params, lr, base_optimizer="sgd", **kwargs):
    return SAM(params, base_optimizer, adaptive=True, lr=lr, **kwargs)


def _orthograd(params, lr, base_optimizer=torch.optim.AdamW, **kwargs):
    return OrthoGrad(params, base_optimizer, lr=lr, **kwargs)


#: name → ``builder(params, lr=…, **kwargs)``; the keyword arguments are the optimizer's own.
REGISTRY: dict[str, Callable[..., Optimizer]] = {
    "sgd": _sgd,                        # torch.optim.SGD (momentum 0 unless given)
    "momentum": _momentum,              # torch.optim.SGD with heavy-ball momentum 0.9 unless given
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "radam": torch.optim.RAdam,
    "adamcm": AdamCM,                   # Adam with critical momenta
    "sam": _sam,                        # SAM over a base optimizer ("sgd" unless given)
    "asam": _asam,                      # ASAM: SAM with adaptive=True
    "mfvi": MFVI,                       # needs dataset_size=
    "mixsam": MixSAM,                   # needs dataset_size=
    "vsam": VariationalSAM,             # needs dataset_size=
    "nudged": NudgedSGD,                # needs eigenvectors=
    "orthograd": _orthograd,            # ⊥Grad over a base optimizer class (AdamW unless given)
}


def make_optimizer(params: Iterable, name: str, lr: float, **kwargs: Any) -> Optimizer:
    """The optimizer ``name`` (a key of :data:`REGISTRY`) over ``params`` with learning rate ``lr``; every other
    keyword argument goes to the optimizer, which checks it."""
    _v.choice("optimizer", name, REGISTRY)
    lr = _v.positive("lr", lr)
    return REGISTRY[name](params, lr=lr, **kwargs)
