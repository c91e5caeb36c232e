"""The loop backend, the reference: one :class:`Run` at a time through ``flatlab.train.fit`` (also what the
joblib and Ray workers run), with ``_WarmupSGD`` for runs with a linear warmup and the final probes."""
from __future__ import annotations

import copy
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..train import fit
from .run import Run



class _WarmupSGD(torch.optim.SGD):
    """PyTorch SGD whose learning rate follows ``Run.lr_at`` (the group's lr is the one just used)."""

    def __init__(self, params, run: Run):
        super().__init__(params, lr=run.lr_at(1), momentum=run.momentum, weight_decay=run.weight_decay)
        self._run, self._t = run, 0

    def step(self, closure=None):
        self._t += 1
        for group in self.param_groups:
            group["lr"] = self._run.lr_at(self._t)
        return super().step(closure)


def _final_values(run: Run, model: nn.Module, step: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for p in run.final_probes:
        out.update(p(model, run.dataset, step))
    return out


def _run_loop(run: Run, seed: int) -> pd.DataFrame:
    """Train one run with ``fit`` (on a copy of its model); a plain DataFrame with run-level columns."""
    model = copy.deepcopy(run.model)
    opt: Any = run.optimizer
    kwargs: dict[str, Any] = dict(lr=run.lr, momentum=run.momentum, weight_decay=run.weight_decay)
    if run.warmup:
        opt, kwargs = _WarmupSGD(model.parameters(), run), {}
    h = fit(model, run.dataset, opt, run.steps, batch_size=run.batch_size, loss=run.loss,
            eval_every=run.eval_every, probes=run.probes, target_loss=run.target_loss,
            seed=seed if run.seed is None else run.seed, progress=False, **kwargs)
    df = pd.DataFrame(h)
    for key, value in _final_values(run, model, int(df.step.iloc[-1])).items():
        df.loc[df.index[-1], key] = value
    df["diverged"], df["stopped_early"] = bool(h.diverged), bool(h.stopped_early)
    return df


def _run_in_worker(run: Run, seed: int) -> pd.DataFrame:
    torch.set_num_threads(1)  # one thread per worker process: the workers share the cores
    return _run_loop(run, seed)
