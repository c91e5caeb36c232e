"""Phases of a run — confusion, memorization, grokking, comprehension (``PHASES``, :func:`classify_phase`) —
and :func:`phase_sweep`, the (cached) sweep over weight decay × train fraction."""
from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Sequence

import pandas as pd

from .cache import cached_grok
from .milestones import grokking_delay, steps_to
from .recipe import GrokConfig

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


def phase_sweep(weight_decays: Sequence[float], train_fractions: Sequence[float], base: GrokConfig | None = None,
                cache: bool = True, grok_delay: float = 5.0) -> tuple[pd.DataFrame, dict]:
    """Train ``base`` at every (weight decay, train fraction) and classify each run's phase.

    Each run stops at 95 % test accuracy (or ``base.steps``). Returns (table, histories): the table
    has one row per cell (weight_decay, train_fraction, phase, step_train, step_test, delay,
    final_test_acc, seconds); ``histories[(wd, fraction)]`` is that run's History.
    """
    base = base or GrokConfig()
    if not isinstance(base, GrokConfig):
        raise TypeError(f"base must be a GrokConfig, got {type(base).__name__}")
    base = replace(base, stop_at_test_acc=base.stop_at_test_acc or 0.95, stop_factor=1.0)
    if len(weight_decays) == 0 or len(train_fractions) == 0:
        raise ValueError("weight_decays and train_fractions must be non-empty")
    rows, histories = [], {}
    for wd in weight_decays:
        for frac in train_fractions:
            cfg = replace(base, weight_decay=float(wd), train_fraction=float(frac))
            t0 = time.perf_counter()
            h = cached_grok(cfg, cache)
            histories[(float(wd), float(frac))] = h
            rows.append({"weight_decay": float(wd), "train_fraction": float(frac),
                         "phase": classify_phase(h, grok_delay), "step_train": steps_to(h, "train_acc", 1.0),
                         "step_test": steps_to(h, "test_acc", 0.95), "delay": grokking_delay(h),
                         "final_test_acc": float(h["test_acc"].iloc[-1]), "seconds": time.perf_counter() - t0})
    return pd.DataFrame(rows), histories
