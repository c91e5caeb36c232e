"""The precomputed sweeps behind chapter 04's widgets (the sliders only select among these): diagonal nets over
init scales (:class:`DiagonalSweep`) and deep factorizations over depths × init scales (:class:`FactorizationSweep`)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from .. import _validate as _v
from .. import config
from ..data import Dataset
from ._common import DTYPE, _completion_data
from .diagonal import relative_error, train_diagonal
from .factorization import train_factorization
from .references import min_l1_interpolant, min_l2_interpolant


@dataclass
class DiagonalSweep:
    """Diagonal-net solutions for a grid of init scales with their references: ``weights[i]`` is w for
    ``alphas[i]``; ``table`` has one row per α with the errors to the truth, the min-ℓ1 and the min-ℓ2 interpolant."""
    alphas: list
    weights: np.ndarray
    w_star: np.ndarray
    w_l1: np.ndarray
    w_l2: np.ndarray
    table: pd.DataFrame

    def index(self, alpha: float) -> int:
        """Index of the grid value nearest to ``alpha`` (in log scale)."""
        return int(np.argmin(np.abs(np.log(np.asarray(self.alphas)) - math.log(_v.positive("alpha", alpha)))))


def diagonal_sweep(dataset: Dataset, alphas: Sequence[float], steps: int = 100_000, tol: float = 1e-8,
                   batch_size: int | None = None, seed: int = 0) -> DiagonalSweep:
    """Train diagonal nets for every α on a sparse-regression data set (train split) and compare each solution
    with the sparse truth ``meta["w_star"]``, the min-ℓ1 and the min-ℓ2 interpolant (relative errors).

    >>> sweep = diagonal_sweep(flatlab.data.sparse_regression(n_train=20, dim=40, k=2), [0.01, 1.0])  # doctest: +SKIP
    """
    if not isinstance(dataset, Dataset) or "w_star" not in dataset.meta or dataset.task != "regression":
        raise TypeError("dataset must be a sparse-regression Dataset from flatlab.data.sparse_regression")
    x, y = dataset.x_train.to(DTYPE), dataset.y_train.to(DTYPE)
    w_star = dataset.meta["w_star"].to(DTYPE).numpy()
    w_l1, w_l2 = min_l1_interpolant(x, y).numpy(), min_l2_interpolant(x, y).numpy()
    runs = train_diagonal(x, y, alphas, steps=steps, tol=tol, batch_size=batch_size, seed=seed)
    weights = np.stack([runs.solutions[i] for i in range(len(runs.summary))])
    table = runs.summary.copy()
    table["error_truth"] = [relative_error(w, w_star) if np.isfinite(w).all() else np.nan for w in weights]
    table["error_l1"] = [relative_error(w, w_l1) if np.isfinite(w).all() else np.nan for w in weights]
    table["error_l2"] = [relative_error(w, w_l2) if np.isfinite(w).all() else np.nan for w in weights]
    table["l1_norm"] = np.abs(weights).sum(1)
    return DiagonalSweep(alphas=[float(a) for a in runs.summary.alpha], weights=weights, w_star=w_star, w_l1=w_l1,
                         w_l2=w_l2, table=table)


@dataclass
class FactorizationSweep:
    """Deep-factorization runs over a grid of depths × init scales: ``summary`` (one row per run), ``history``
    (singular values, errors and effective rank over the steps) and ``matrices[(depth, init_scale)]``."""
    summary: pd.DataFrame
    history: pd.DataFrame
    matrices: dict
    target_singular_values: np.ndarray

    def run(self, depth: int, init_scale: float) -> tuple[pd.Series, pd.DataFrame]:
        """The summary row and the history of the run nearest to (depth, init_scale)."""
        rows = self.summary[self.summary.depth == depth]
        if rows.empty:
            raise ValueError(f"depth={depth!r} was not computed; available: {sorted(self.summary.depth.unique())}")
        i = (np.log(rows.init_scale) - math.log(_v.positive("init_scale", init_scale))).abs().idxmin()
        row = self.summary.loc[i]
        hist = self.history[(self.history.depth == row.depth) & (self.history.init_scale == row.init_scale)]
        return row, hist.reset_index(drop=True)


def factorization_sweep(dataset: Dataset, depths: Sequence[int] = (1, 2, 3), init_scales: Sequence[float] = (1e-1, 1e-2, 1e-3),
                        steps: int = 20_000, tol: float = 1e-6, lr_scale: float = 1.0, seed: int = 0,
                        record_every: int | None = None, progress: bool = True) -> FactorizationSweep:
    """:func:`train_factorization` for every depth (all init scales of one depth in one batched run).
    ``progress``: a bar over the depths.

    >>> sweep = factorization_sweep(flatlab.data.low_rank_matrix(n=10, rank=1), (1, 2), (1e-2,), 500)  # doctest: +SKIP
    """
    m, _ = _completion_data(dataset)
    if not depths:
        raise ValueError("depths must hold at least one depth")
    summaries, histories, matrices = [], [], {}
    for depth in config.progress(depths, "depths", show=_v.boolean("progress", progress)):
        runs = train_factorization(dataset, depth=_v.integer("depths", depth, 1), init_scales=list(init_scales), steps=steps,
                                   tol=tol, lr_scale=lr_scale, seed=seed, record_every=record_every)
        summaries.append(runs.summary)
        histories.append(runs.history)
        for i, s in enumerate(runs.summary.init_scale):
            matrices[(int(depth), float(s))] = runs.solutions[i]
    rank = int(dataset.meta.get("rank", 0)) or None
    target = torch.linalg.svdvals(m).numpy()[:rank]
    return FactorizationSweep(summary=pd.concat(summaries, ignore_index=True),
                              history=pd.concat(histories, ignore_index=True), matrices=matrices,
                              target_singular_values=target)
