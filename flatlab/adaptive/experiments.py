"""Chapter 06's experiments: λ_max on the training set, optimizers trained to the same loss and compared there,
and the warmup grid."""
from __future__ import annotations

import copy
from typing import Sequence

import pandas as pd
import torch
from torch import nn

from .. import _validate as _v
from .. import config
from ..data import Dataset
from ..optim import AdamCM
from ..train import fit, make_loss
from .preconditioned import adam_threshold, preconditioned_sharpness
from .schedules import linear_warmup, make_adaptive_optimizer


# ----------------------------------------------------------------------------------------------
# experiment helpers used by chapter 06 (short notebook cells call these)
# ----------------------------------------------------------------------------------------------
def lambda_max(model: nn.Module, dataset: Dataset, loss: str = "auto", max_examples: int | None = None,
               tol: float = 1e-3) -> float:
    """λ_max of the Hessian of the full-batch training loss (first ``max_examples`` examples).

    >>> from flatlab.data import gaussian_clouds; from flatlab.models import MLP
    >>> lambda_max(MLP(2, [8], 3, seed=0), gaussian_clouds()) > 0
    True
    """
    from ..curvature import top_eigenvalues

    x, y = dataset.train
    if max_examples is not None:
        x, y = x[:max_examples], y[:max_examples]
    return float(top_eigenvalues(model, make_loss(dataset, loss), (x, y), k=1, tol=tol)[0])


def train_to_loss(model: nn.Module, dataset: Dataset, configs: dict[str, tuple], *, target_loss: float = 0.05,
                  max_steps: int = 3000, batch_size: int | None = None, eval_every: int = 10, seed: int = 0,
                  loss: str = "auto", land: bool = True) -> tuple[pd.DataFrame, dict, dict]:
    """Train a copy of ``model`` with each optimizer of ``configs`` until the full-batch training loss
    reaches ``target_loss``, then measure λ_max there (sharpness compared at equal loss). With ``land``
    (the default) every run lands on the target loss (:func:`flatlab.train.fit`'s ``land``), so the
    losses are equal to 0.1 % rather than "at or below the target".

    ``configs`` maps a label to ``(name, lr)`` or ``(name, lr, kwargs)`` for
    :func:`make_adaptive_optimizer`. Returns (table, models, histories): the table has one row per
    label — optimizer, lr, steps, train_loss, test_acc, lambda_max, reached (the target) — and,
    for Adam-type optimizers, precond_lambda_max (λ_max(P⁻¹H)) and its threshold 38/η-style
    (:func:`adam_threshold`).

    >>> from flatlab.data import gaussian_clouds; from flatlab.models import MLP
    >>> table, models, hist = train_to_loss(MLP(2, [8], 3, seed=0), gaussian_clouds(),
    ...                                     {"GD": ("sgd", 0.5)}, target_loss=0.3)
    >>> list(table.columns)[:3]
    ['optimizer', 'lr', 'steps']
    """
    from ..train import fit

    if not isinstance(configs, dict) or not configs:
        raise ValueError("configs must be a non-empty dict {label: (optimizer name, lr[, kwargs])}")
    rows, models, histories = [], {}, {}
    loss_fn = make_loss(dataset, loss)
    for label, cfg in configs.items():
        if not isinstance(cfg, (tuple, list)) or len(cfg) not in (2, 3):
            raise ValueError(f"configs[{label!r}] must be (optimizer name, lr) or (name, lr, kwargs), got {cfg!r}")
        name, lr, kwargs = cfg[0], cfg[1], (cfg[2] if len(cfg) == 3 else {})
        m = copy.deepcopy(model)
        opt = make_adaptive_optimizer(m.parameters(), name, lr, **kwargs)
        h = fit(m, dataset, opt, max_steps, batch_size=batch_size, target_loss=target_loss, eval_every=eval_every,
                seed=seed, loss=loss, progress=False, land=land)
        row = {"optimizer": label, "lr": float(lr), "steps": int(h.final.step), "train_loss": float(h.final.train_loss),
               "test_acc": float(h.final.test_acc), "lambda_max": lambda_max(m, dataset, loss),
               "reached": bool(h.stopped_early)}
        if isinstance(opt, (torch.optim.Adam, AdamCM)):
            row["precond_lambda_max"] = float(preconditioned_sharpness(m, loss_fn, dataset.train, opt, tol=1e-3)[0])
            row["threshold"] = adam_threshold(lr, opt.param_groups[0]["betas"][0])
        rows.append(row)
        models[label], histories[label] = m, h
    return pd.DataFrame(rows), models, histories


def warmup_grid(model: nn.Module, dataset: Dataset, peak_lrs: Sequence[float], warmups: Sequence[int], steps: int, *,
                optimizer: str = "adam", radam: bool = True, eval_every: int = 5, seed: int = 0,
                loss: str = "auto", clip: float | None = None, progress: bool = True) -> dict:
    """Train a copy of ``model`` for every (peak η, warmup length) with linear warmup, and — with
    ``radam`` — ``torch.optim.RAdam`` at every peak η without warmup.

    Returns ``{(optimizer, peak_lr, warmup): History}`` (RAdam under ``("radam", peak_lr, 0)``); the
    chapter's warmup widget only selects among these runs. ``progress``: a bar over the runs.

    >>> from flatlab.data import gaussian_clouds; from flatlab.models import MLP
    >>> g = warmup_grid(MLP(2, [8], 3, seed=0), gaussian_clouds(), [0.1], [0, 5], 20)
    >>> sorted(g)
    [('adam', 0.1, 0), ('adam', 0.1, 5), ('radam', 0.1, 0)]
    """
    steps = _v.integer("steps", steps, 1)
    runs = [(optimizer, float(lr), _v.integer("warmup", w, 0)) for lr in peak_lrs for w in warmups]
    if radam:
        runs += [("radam", float(lr), 0) for lr in peak_lrs]
    out = {}
    for name, lr, w in config.progress(runs, "warmup runs", show=_v.boolean("progress", progress)):
        m = copy.deepcopy(model)
        opt = make_adaptive_optimizer(m.parameters(), name, lr)
        out[(name, lr, w)] = fit(m, dataset, opt, steps, schedule=linear_warmup(w), eval_every=eval_every,
                                 seed=seed, loss=loss, clip=clip, progress=False)
    return out
