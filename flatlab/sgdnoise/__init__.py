"""Noise and memorization (chapter 03, section 3b): the SGD noise scale η/B against randomized labels, and a
cyclic batch size in place of a cyclic learning rate.

Jastrzębski et al. (2017, "Three factors influencing minima in SGD", arXiv:1711.04623) argue from the SDE
approximation of SGD that the ratio η/B sets the noise and with it the minima SGD reaches. Two of their
experiments, shrunk to a CPU: with part of the training labels randomized, a larger η/B memorizes fewer of
them and generalizes better; and a cyclic learning-rate schedule can be exchanged for a cyclic batch-size
schedule with the same η/B, giving similar training and test curves.

Layout: ``labels``: :func:`noisy_labels`, :func:`label_metrics`, :class:`MemorizationProbe`; ``memorization``:
:func:`noisy_clouds`, :func:`memorization_sweep` (on ``flatlab.sweep``), :func:`memorization_table`; ``cyclic``:
:func:`cyclic_schedule`, :func:`train_schedule` (on ``flatlab.fit``), :func:`compare_schedules`,
:func:`schedule_gap`. The departures from the paper are stated in ``memorization`` and ``cyclic``.
"""
from __future__ import annotations

from .cyclic import KINDS, compare_schedules, cyclic_schedule, schedule_gap, train_schedule
from .labels import MemorizationProbe, label_metrics, noisy_labels
from .memorization import N_TRAIN, memorization_sweep, memorization_table, noisy_clouds

__all__ = ["noisy_labels", "label_metrics", "MemorizationProbe", "noisy_clouds", "memorization_sweep",
           "memorization_table", "cyclic_schedule", "train_schedule", "compare_schedules", "schedule_gap",
           "KINDS", "N_TRAIN"]
