"""A cyclic batch size for a cyclic learning rate: two schedules with the same noise scale η/B at every point of
training, one cycling η at a fixed B, the other cycling B at a fixed η, and a control whose η/B is lower.

A step of B examples at rate η advances the SDE's clock t = Σ η by η, so phases of equal epochs at equal η/B are
equal SDE time (B examples per step, η/B per example): the two cyclic schedules reach every phase end at the same
t, in different numbers of steps. The control repeats the cyclic learning rate's η step for step with a k times
larger batch (k times the epochs): the same drift and clock, η/B lower by k.

Departures from Jastrzębski et al. (2017, arXiv:1711.04623), who trained a convolutional network on CIFAR-10
with a cyclic batch size at a fixed η against a cyclic η at a fixed B: a ReLU MLP on
:func:`noisy_clouds` (labels partly randomized, so that η/B visibly changes what is learned), cycles of four
two-epoch phases (η/B at 1, ½, ¼, ½ of its peak), plain SGD without momentum or weight decay, and the control
above.
"""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch

from .. import _validate as _v
from ..config import threads
from ..data import Dataset
from ..models import MLP
from ..train import evaluate, fit, make_optimizer
from .labels import _check_noisy, label_metrics

KINDS = ("lr", "batch")


def cyclic_schedule(kind: str, lr: float, batch_size: int, n_train: int, factors: Sequence[int] = (1, 2, 4, 2),
                    cycles: int = 4, epochs_per_phase: int = 2) -> pd.DataFrame:
    """The phases of a discrete cyclic schedule whose noise scale is η/B = lr / (batch_size · f) in a phase with
    factor f: ``kind="lr"`` keeps B = ``batch_size`` and uses η = lr / f, ``kind="batch"`` keeps η = ``lr`` and
    uses B = batch_size · f. A row per phase: ``phase``, ``epoch`` (at its end), ``lr``, ``batch_size``,
    ``steps`` (epochs_per_phase · n_train / B), ``noise`` (η/B).

    >>> clr = cyclic_schedule("lr", 0.2, 8, 512, cycles=1); cbs = cyclic_schedule("batch", 0.2, 8, 512, cycles=1)
    >>> clr.lr.tolist(), cbs.batch_size.tolist(), cbs.steps.tolist(), bool((clr.noise == cbs.noise).all())
    ([0.2, 0.1, 0.05, 0.1], [8, 16, 32, 16], [128, 64, 32, 64], True)
    """
    _v.choice("kind", kind, KINDS)
    lr = _v.positive("lr", lr)
    batch_size = _v.integer("batch_size", batch_size, 1)
    n_train = _v.integer("n_train", n_train, 1)
    if isinstance(factors, (str, bytes)) or not isinstance(factors, Sequence) or not factors:
        raise TypeError(f"factors must be a non-empty list of positive integers, got {factors!r}")
    factors = [_v.integer(f"factors[{i}]", f, 1) for i, f in enumerate(factors)]
    cycles = _v.integer("cycles", cycles, 1)
    epochs_per_phase = _v.integer("epochs_per_phase", epochs_per_phase, 1)
    rows = []
    for _ in range(cycles):
        for f in factors:
            eta, b = (lr / f, batch_size) if kind == "lr" else (lr, batch_size * f)
            if b > n_train or (epochs_per_phase * n_train) % b:
                raise ValueError(f"batch size {b} (batch_size={batch_size} × factor {f}) must divide "
                                 f"epochs_per_phase · n_train = {epochs_per_phase * n_train} and be at most "
                                 f"n_train={n_train}, so that every phase is a whole number of epochs")
            rows.append({"phase": len(rows), "epoch": (len(rows) + 1) * epochs_per_phase, "lr": eta,
                         "batch_size": b, "steps": epochs_per_phase * n_train // b, "noise": eta / b})
    return pd.DataFrame(rows)


def train_schedule(dataset: Dataset, schedule: pd.DataFrame, seed: int = 0, width: int = 128) -> pd.DataFrame:
    """Plain SGD through the phases of ``schedule`` (from :func:`cyclic_schedule`) with ``flatlab.fit``, one call
    per phase on the same model and optimizer; a row per phase end (and one for the start, ``phase`` 0) with
    ``phase``, ``epoch`` and ``steps`` so far, ``time`` = Σ η over the steps so far (the SDE's clock), ``lr``,
    ``batch_size``, ``noise``, the train loss on the (noisy) training labels and
    :func:`label_metrics`. The initial parameters come from ``seed`` (equal seeds, equal starts), the minibatch
    order of phase p from ``seed · 1000 + p``; torch's global random state is left as it was.
    """
    _check_noisy(dataset)
    _v.instance("schedule", schedule, pd.DataFrame, "a frame from cyclic_schedule")
    missing = {"phase", "epoch", "lr", "batch_size", "steps", "noise"} - set(schedule.columns)
    if missing or schedule.empty:
        raise ValueError(f"schedule must be a non-empty frame from cyclic_schedule; it lacks {sorted(missing)}")
    seed = _v.seed("seed", seed)
    width = _v.integer("width", width, 1)
    with torch.random.fork_rng(), threads(1):  # MLP(seed=…) and fit reseed the global generator: restore it
        return _train_schedule(dataset, schedule, seed, width)


def _train_schedule(dataset: Dataset, schedule: pd.DataFrame, seed: int, width: int) -> pd.DataFrame:
    model = MLP(dataset.input_shape[0], [width, width], dataset.n_classes, seed=seed)
    opt = make_optimizer(model.parameters(), "sgd", lr=float(schedule.lr.iloc[0]))
    rows = [{"phase": 0, "epoch": 0, "steps": 0, "time": 0.0, "lr": float("nan"), "batch_size": 0,
             "noise": float("nan"), "train_loss": evaluate(model, dataset)["train_loss"], **label_metrics(model, dataset)}]
    done, clock = 0, 0.0
    for p in schedule.itertuples():
        for g in opt.param_groups:
            g["lr"] = float(p.lr)
        h = fit(model, dataset, opt, steps=int(p.steps), batch_size=int(p.batch_size), eval_every=int(p.steps),
                seed=seed * 1000 + int(p.phase), progress=False)
        if h.diverged:
            raise RuntimeError(f"SGD diverged in phase {p.phase} (η = {p.lr:g}, B = {p.batch_size}): lower lr")
        done, clock = done + int(p.steps), clock + float(p.lr) * int(p.steps)
        rows.append({"phase": int(p.phase) + 1, "epoch": int(p.epoch), "steps": done, "time": clock,
                     "lr": float(p.lr), "batch_size": int(p.batch_size), "noise": float(p.noise),
                     "train_loss": float(h.final.train_loss), **label_metrics(model, dataset)})
    return pd.DataFrame(rows)


def compare_schedules(dataset: Dataset, lr: float = 0.2, batch_size: int = 8, control_factor: int = 4,
                      seed: int = 0, width: int = 128, epochs_per_phase: int = 2, **schedule_kw) -> pd.DataFrame:
    """Three runs from the same initial parameters, one tidy frame (column ``schedule``), whose phases all end at
    the same SDE times Σ η:

    * ``"cyclic lr"``: B = ``batch_size``, η cycling down from ``lr``;
    * ``"cyclic batch"``: η = ``lr``, B cycling up from ``batch_size`` — η/B equal to the first in every epoch,
      with fewer, larger steps;
    * the control ``"cyclic lr, B×k"``: the first schedule's η at every step, for as many steps, with a batch
      ``k = control_factor`` times larger — the same drift, η/B lower by k everywhere (k times the epochs).

    ``schedule_kw`` goes to :func:`cyclic_schedule` (``factors``, ``cycles``).
    """
    _check_noisy(dataset)
    control_factor = _v.integer("control_factor", control_factor, 2)
    epochs_per_phase = _v.integer("epochs_per_phase", epochs_per_phase, 1)
    n = dataset.n_train
    plans = {"cyclic lr": cyclic_schedule("lr", lr, batch_size, n, epochs_per_phase=epochs_per_phase, **schedule_kw),
             "cyclic batch": cyclic_schedule("batch", lr, batch_size, n, epochs_per_phase=epochs_per_phase,
                                             **schedule_kw),
             f"cyclic lr, B×{control_factor}": cyclic_schedule(
                 "lr", lr, control_factor * batch_size, n, epochs_per_phase=control_factor * epochs_per_phase,
                 **schedule_kw)}
    return pd.concat([train_schedule(dataset, plan, seed=seed, width=width).assign(schedule=name)
                      for name, plan in plans.items()], ignore_index=True)


def schedule_gap(df: pd.DataFrame, a: str, b: str, column: str) -> float:
    """Mean absolute difference of ``column`` between schedules ``a`` and ``b`` of :func:`compare_schedules`, over
    the phase ends after the start (equal SDE times Σ η in that frame).

    >>> df = pd.DataFrame({"schedule": ["x", "x", "y", "y"], "phase": [0, 1, 0, 1], "test_acc": [.2, .5, .2, .8]})
    >>> round(schedule_gap(df, "x", "y", "test_acc"), 6)
    0.3
    """
    _v.instance("df", df, pd.DataFrame, "a frame from compare_schedules")
    for name, value in (("a", a), ("b", b)):
        if value not in set(df.get("schedule", ())):
            raise ValueError(f"{name}={value!r} is not a schedule of df; allowed: {sorted(set(df.get('schedule', ())))}")
    if column not in df.columns:
        raise ValueError(f"column={column!r} is not a column of df")
    wide = df[df.phase > 0].pivot_table(index="phase", columns="schedule", values=column)
    return float((wide[a] - wide[b]).abs().mean())
