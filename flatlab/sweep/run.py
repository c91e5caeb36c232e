"""One run of a sweep: the :class:`Run` configuration (model, data set, SGD settings, warmup, probes,
final probes) with its validation and learning-rate schedule, and ``RUN_OPTIMIZERS``."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from .. import _validate as _v
from ..data import Dataset
from ..train import LOSSES, _check_model_fits, check_dataset, linear_warmup, make_loss



RUN_OPTIMIZERS = ("sgd", "adam", "adamw")


@dataclass
class Run:
    """One training run of a sweep: the arguments of ``flatlab.fit`` plus a warmup and final probes.

    SGD (PyTorch's, with ``momentum`` and ``weight_decay``) for ``steps`` steps on minibatches of
    ``batch_size`` (None: full batch) drawn like ``fit`` draws them from ``seed`` (None: the sweep's
    seed); the learning rate at step t is ``lr · min(1, t / warmup)`` (``warmup=0``: constant).
    ``probes`` are called during training as in ``fit``; ``final_probes`` once on the trained model,
    their values land on the run's last row (e.g. λ_max where a run stopped at ``target_loss``).
    The vmap backend needs ``optimizer="sgd"``; ``"adam"``/``"adamw"`` run on the other backends.

    >>> from flatlab.models import MLP; from flatlab.data import gaussian_clouds
    >>> run = Run(MLP(2, [8], 3, seed=0), gaussian_clouds(), steps=100, lr=0.1, batch_size=32)
    >>> run.lr_at(1), Run(run.model, run.dataset, 100, lr=0.1, warmup=10).lr_at(5)
    (0.1, 0.05)
    """

    model: nn.Module
    dataset: Dataset
    steps: int
    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int | None = None
    loss: str = "auto"
    eval_every: int | None = None
    target_loss: float | None = None
    probes: Sequence[Any] = ()
    final_probes: Sequence[Any] = ()
    warmup: int = 0
    seed: int | None = None
    optimizer: str = "sgd"

    def __post_init__(self):
        _v.instance("model", self.model, nn.Module, "a torch.nn.Module")
        _v.instance("dataset", self.dataset, Dataset, "a flatlab.data.Dataset")
        self.steps = _v.integer("steps", self.steps, 1)
        self.lr = _v.positive("lr", self.lr)
        self.momentum = _v.number("momentum", self.momentum, 0, 1, high_open=True)
        self.weight_decay = _v.non_negative("weight_decay", self.weight_decay)
        self.batch_size = _v.integer("batch_size", self.batch_size, 1, allow_none=True)
        check_dataset(self.dataset)
        if self.batch_size is not None and self.batch_size > self.dataset.n_train:
            raise ValueError(f"batch_size={self.batch_size} must be at most the training-set size "
                             f"{self.dataset.n_train} (or None for full batch)")
        _v.choice("loss", self.loss, LOSSES)
        self.eval_every = _v.integer("eval_every", self.eval_every, 1, allow_none=True)
        self.target_loss = _v.non_negative("target_loss", self.target_loss, allow_none=True)
        self.warmup = _v.integer("warmup", self.warmup, 0)
        self.seed = _v.seed("seed", self.seed, allow_none=True)
        _v.choice("optimizer", self.optimizer, RUN_OPTIMIZERS)
        if self.warmup and self.optimizer != "sgd":
            raise ValueError(f"warmup={self.warmup} is only supported with optimizer='sgd'")
        for name in ("probes", "final_probes"):
            probes = list(getattr(self, name))
            for p in probes:
                if not callable(p) or (name == "probes" and (not isinstance(getattr(p, "every", None), int)
                                                              or p.every < 1)):
                    raise TypeError(f"each of {name} must be callable as probe(model, dataset, step)"
                                    + (" with an integer .every >= 1" if name == "probes" else ""))
            setattr(self, name, probes)
        _check_model_fits(self.model, self.dataset, make_loss(self.dataset, self.loss))

    @property
    def every(self) -> int:
        """Evaluation period (``fit``'s default: steps // 50)."""
        return self.eval_every or max(1, self.steps // 50)

    def lr_at(self, step: int) -> float:
        """Learning rate of step ``step`` (1-based): ``lr · min(1, step / warmup)``, ``flatlab.train.linear_warmup``'s
        multiplier after ``step − 1`` completed steps."""
        return self.lr if not self.warmup else self.lr * linear_warmup(self.warmup)(step - 1)
