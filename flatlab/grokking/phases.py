"""Phases of a run — confusion, memorization, grokking, comprehension (``PHASES``, :func:`classify_phase`) —
and :func:`phase_sweep`, the (cached) sweep over weight decay × train fraction."""
from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Sequence

import pandas as pd

from .. import _validate as _v
from ..config import cores
from .cache import _cache_path, cached_grok
from .milestones import grokking_delay, steps_to
from .recipe import GrokConfig, _runs_with_progress

PHASES = ("comprehension", "grokking", "memorization", "confusion")


def classify_phase(history: pd.DataFrame, grok_delay: float = 5.0, test_threshold: float = 0.95) -> str:
    """"confusion" (training set not fitted), "memorization" (fitted, test < threshold), "grokking"
    (test reached ≥ ``grok_delay`` × the fitting step) or "comprehension" (reached sooner)."""
    delay = grokking_delay(history, 1.0, test_threshold)
    if math.isnan(delay):
        return "confusion"
    if math.isinf(delay):
        return "memorization"
    return "grokking" if delay >= grok_delay else "comprehension"


def _timed_grok(config: GrokConfig, cache: bool) -> tuple[pd.DataFrame, float]:
    t0 = time.perf_counter()
    history = cached_grok(config, cache)
    return history, time.perf_counter() - t0


def phase_sweep(weight_decays: Sequence[float], train_fractions: Sequence[float], base: GrokConfig | None = None,
                cache: bool = True, grok_delay: float = 5.0, n_jobs: int | None = None) -> tuple[pd.DataFrame, dict]:
    """Train ``base`` at every (weight decay, train fraction) and classify each run's phase.

    Each run stops at 95 % test accuracy (or ``base.steps``). Returns (table, histories): the table
    has one row per cell (weight_decay, train_fraction, phase, step_train, step_test, delay,
    final_test_acc, seconds); ``histories[(wd, fraction)]`` is that run's History.

    The runs are independent and single-threaded (``GrokConfig.threads``), so ``n_jobs`` worker processes
    (joblib) train them side by side with the same results. ``None``: one per core this process may use
    (:func:`flatlab.config.cores`, so 1 where the harness or the test suite runs chapters side by side) when at
    least four runs are not cached yet (starting the workers costs about 3 s; the full budget's 16 runs took 22.4 s one after
    another and 13.4 s on two cores), else one. A progress bar counts the finished runs.
    """
    base = base or GrokConfig()
    if not isinstance(base, GrokConfig):
        raise TypeError(f"base must be a GrokConfig, got {type(base).__name__}")
    base = replace(base, stop_at_test_acc=base.stop_at_test_acc or 0.95, stop_factor=1.0)
    if len(weight_decays) == 0 or len(train_fractions) == 0:
        raise ValueError("weight_decays and train_fractions must be non-empty")
    n_jobs = _v.integer("n_jobs", n_jobs, 1, allow_none=True)
    cells = [(float(wd), float(frac)) for wd in weight_decays for frac in train_fractions]
    configs = [replace(base, weight_decay=wd, train_fraction=frac) for wd, frac in cells]
    if n_jobs is None:
        missing = sum(1 for c in configs if not cache or (path := _cache_path(c)) is None or not path.exists())
        n_jobs = min(cores(), missing) if missing >= 4 else 1
    results = _runs_with_progress(_timed_grok, [(c, cache) for c in configs], n_jobs, "phase sweep")
    rows, histories = [], {}
    for (wd, frac), (h, seconds) in zip(cells, results):
        histories[(wd, frac)] = h
        rows.append({"weight_decay": wd, "train_fraction": frac,
                     "phase": classify_phase(h, grok_delay), "step_train": steps_to(h, "train_acc", 1.0),
                     "step_test": steps_to(h, "test_acc", 0.95), "delay": grokking_delay(h),
                     "final_test_acc": float(h["test_acc"].iloc[-1]), "seconds": seconds})
    return pd.DataFrame(rows), histories
