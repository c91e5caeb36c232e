"""Noise against memorization: SGD runs that differ only in their batch size — equal learning rate, equal number
of steps, hence equal drift in the SDE picture and a noise scale η/B that differs — on data with randomized
labels, and how much of the randomness each run memorizes.

Departures from Jastrzębski et al. (2017, arXiv:1711.04623), who trained image classifiers with part of the
labels randomized: here a ReLU MLP 6-128-128-4 on 512 examples of four overlapping 6-D
Gaussian clouds (30 % of the training labels randomized), so that a sweep runs in seconds on a CPU; η/B is
varied through B at a fixed η and a fixed number of steps (not epochs), so that the runs share the drift and
differ in their noise only.
"""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch

from .. import _validate as _v
from ..config import threads
from ..data import Dataset, gaussian_clouds
from ..models import MLP
from ..sweep import Run, finals, sweep
from .labels import MemorizationProbe, noisy_labels

N_TRAIN = 512   # a power of two: every batch size used here divides it, so epochs are whole numbers of steps


def noisy_clouds(label_noise: float = 0.3, seed: int = 0, n_test: int = 2000) -> Dataset:
    """Four 6-D Gaussian clouds (spread 0.8, centres at radius 3), 512 training examples, ``label_noise`` of
    their labels randomized (:func:`noisy_labels`); the clouds and the corruption both drawn from ``seed``.

    The clouds overlap (a clean fit reaches about 90 % test accuracy), and in 6-D the corrupted examples lie
    among examples of other classes: fitting them needs a spiky, memorizing function.

    >>> ds = noisy_clouds(0.25, seed=1)
    >>> ds.n_train, int(ds.meta["corrupted"].sum()), ds.n_classes
    (512, 128, 4)
    """
    label_noise = _v.number("label_noise", label_noise, 0, 1, high_open=True)
    seed = _v.seed("seed", seed)
    n_test = _v.integer("n_test", n_test, 1)
    base = gaussian_clouds(n_train=N_TRAIN, n_test=n_test, n_classes=4, dim=6, spread=0.8, seed=seed)
    return noisy_labels(base, label_noise, seed=seed + 1)


def memorization_sweep(dataset: Dataset, batch_sizes: Sequence[int] = (8, 32, 128), lr: float = 0.2,
                       steps: int = 2000, seeds: Sequence[int] = (0,), width: int = 128, eval_every: int | None = None,
                       cache: bool = True) -> pd.DataFrame:
    """Train an MLP (2 hidden ReLU layers of ``width``) with plain SGD at learning rate ``lr`` for ``steps``
    steps at each batch size; one tidy frame (``flatlab.sweep``'s vmap backend, cached), a row per run ×
    evaluation, with ``noise`` = η/B and the :class:`MemorizationProbe` columns at every evaluation.

    Every run of one seed starts from the same initial parameters; torch's global random state is left as it was.

    >>> df = memorization_sweep(noisy_clouds(), batch_sizes=[16, 64], steps=20, cache=False)
    >>> sorted(df.batch_size.unique().tolist()), {"memorized", "clean_train_loss", "noise"} <= set(df.columns)
    ([16, 64], True)
    """
    _v.instance("dataset", dataset, Dataset, "a flatlab.data.Dataset (from noisy_labels or noisy_clouds)")
    if "corrupted" not in dataset.meta:
        raise ValueError("dataset has no record of its corrupted labels: build it with noisy_labels or noisy_clouds")
    if isinstance(batch_sizes, (str, bytes)) or not isinstance(batch_sizes, Sequence) or not batch_sizes:
        raise TypeError(f"batch_sizes must be a non-empty list of integers, got {batch_sizes!r}")
    batch_sizes = [_v.integer(f"batch_sizes[{i}]", b, 1) for i, b in enumerate(batch_sizes)]
    if max(batch_sizes) > dataset.n_train:
        raise ValueError(f"batch_sizes={batch_sizes} must be at most the training-set size {dataset.n_train}")
    lr = _v.positive("lr", lr)
    steps = _v.integer("steps", steps, 1)
    width = _v.integer("width", width, 1)
    every = _v.integer("eval_every", eval_every, 1, allow_none=True) or max(1, steps // 10)
    cache = _v.boolean("cache", cache)
    dim, k = dataset.input_shape[0], dataset.n_classes

    def make(batch_size, seed):
        return Run(MLP(dim, [width, width], k, seed=seed), dataset, steps=steps, lr=lr, batch_size=batch_size,
                   eval_every=every, probes=[MemorizationProbe(every)], seed=seed)

    # models and sweep seed torch's global generator; restore it, so that adding this experiment to a chapter
    # leaves the random draws of its later cells as they were (and a cached and a computed sweep agree on them)
    with torch.random.fork_rng(), threads(1):
        df = sweep(make, {"batch_size": batch_sizes}, seeds=list(seeds), cache=cache, progress=False)
    df.insert(1, "noise", lr / df.batch_size)
    return df


def memorization_table(df: pd.DataFrame, late: float = 0.25) -> pd.DataFrame:
    """One row per run of :func:`memorization_sweep`: the final values, and ``test_late``, the test accuracy
    averaged over the evaluations in the last ``late`` fraction of training (one SGD iterate's test accuracy
    jitters from step to step; the average over a window of steps is what the noise scale sets).

    >>> df = memorization_sweep(noisy_clouds(), batch_sizes=[16, 64], steps=20, cache=False)
    >>> memorization_table(df).columns.tolist()[:4]
    ['batch_size', 'seed', 'noise', 'memorized']
    """
    _v.instance("df", df, pd.DataFrame, "a frame from memorization_sweep")
    late = _v.number("late", late, 0, 1, low_open=True)
    missing = {"run", "step", "batch_size", "seed", "noise", "memorized", "test_acc"} - set(df.columns)
    if missing:
        raise ValueError(f"df must be a frame from memorization_sweep; it lacks {sorted(missing)}")
    last = finals(df)
    window = df[df.step >= df.groupby("run").step.transform("max") * (1 - late)]
    last["test_late"] = last.run.map(window.groupby("run").test_acc.mean())
    cols = ["batch_size", "seed", "noise", "memorized", "clean_train_acc", "clean_train_loss", "train_loss",
            "test_acc", "test_late"]
    return last[cols].sort_values(["seed", "batch_size"]).reset_index(drop=True)
