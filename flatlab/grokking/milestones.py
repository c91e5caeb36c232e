"""Read a training history: :func:`steps_to` (the first step a column reaches a threshold) and
:func:`grokking_delay` (steps to generalize ÷ steps to fit)."""
from __future__ import annotations

import pandas as pd


def steps_to(history: pd.DataFrame, column: str = "test_acc", threshold: float = 0.95) -> int | None:
    """The first evaluated step where ``history[column] ≥ threshold`` (None if never).

    >>> steps_to(pd.DataFrame({"step": [0, 10, 20], "test_acc": [0.0, 0.5, 0.97]}))
    20
    """
    if column not in history.columns:
        raise ValueError(f"column={column!r} is not recorded; available: {', '.join(map(str, history.columns))}")
    hit = history[history[column] >= threshold]
    return None if hit.empty else int(hit["step"].iloc[0])


def grokking_delay(history: pd.DataFrame, train_threshold: float = 1.0, test_threshold: float = 0.95) -> float:
    """Steps to ``test_threshold`` test accuracy ÷ steps to ``train_threshold`` train accuracy (inf if the
    test threshold is never reached, NaN if the training set is never fitted)."""
    t_train = steps_to(history, "train_acc", train_threshold)
    t_test = steps_to(history, "test_acc", test_threshold)
    if t_train is None:
        return float("nan")
    return float("inf") if t_test is None else t_test / max(t_train, 1)
