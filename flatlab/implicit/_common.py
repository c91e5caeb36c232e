"""What the implicit-bias modules share: the float64 ``DTYPE``, the tensor checks (``_matrix``, ``_xy``,
``_completion_data``), the one-thread wrapper for tiny-tensor loops (``_single_threaded``, on ``config.threads``),
log-spaced record steps and :class:`Runs`, the result of a batch of runs."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ..config import threads
from ..data import Dataset

DTYPE = torch.float64


def _matrix(name: str, value, ndim: int = 2) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor or numpy array, got {type(value).__name__}")
    if value.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {tuple(value.shape)}")
    value = value.detach().to(DTYPE)
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} holds NaN or inf entries")
    return value


def _xy(x, y) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _matrix("x", x, 2), _matrix("y", y, 1)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} rows but y has {len(y)} entries")
    return x, y


def _single_threaded(fn):
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with threads(1):   # tiny-tensor loops: one intra-op thread (config.threads says why)
            return fn(*args, **kwargs)
    return wrapper


def _log_steps(steps: int, n_records: int) -> np.ndarray:
    """Roughly log-spaced record steps 0, 1, 2, …, steps (all distinct)."""
    return np.unique(np.concatenate([[0], np.logspace(0, math.log10(max(steps, 1)), n_records).round(), [steps]]).astype(int))


def _completion_data(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(dataset, Dataset) or "matrix" not in dataset.meta or "mask" not in dataset.meta:
        raise TypeError("dataset must be a matrix-completion Dataset from flatlab.data.low_rank_matrix")
    return dataset.meta["matrix"].to(DTYPE), dataset.meta["mask"].bool()


@dataclass
class Runs:
    """A batch of runs: ``summary`` (one row per run), ``history`` (one row per run and record) and
    ``solutions`` (run index → final solution as a numpy array)."""
    summary: pd.DataFrame
    history: pd.DataFrame
    solutions: dict = field(default_factory=dict)
    factors: dict = field(default_factory=dict)   # diagonal nets: run index → (u⊙u, v⊙v) at the end

    @property
    def diverged(self) -> bool:
        return bool(self.summary["diverged"].any())
