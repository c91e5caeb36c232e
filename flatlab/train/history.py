"""What a training loop returns and how it is built: :class:`History` (one row per evaluation) and
:class:`Recorder`, the one builder of ``fit``, the vmapped sweep, PAPA and the grokking recipe — evaluation
rows, the divergence test and its row, the stop flags and the run's ``info``."""
from __future__ import annotations

import math

import pandas as pd

NAN = float("nan")


class History(pd.DataFrame):
    """One row per evaluation: step, train_loss, train_acc, test_loss, test_acc, lr, probes.

    Attributes: ``diverged`` (bool), ``diverged_step`` (int or None), ``stopped_early`` (the run
    reached ``target_loss``), ``info`` (a dict describing the run).
    """

    _metadata = ["diverged", "diverged_step", "stopped_early", "info"]

    @property
    def _constructor(self):
        return History

    @property
    def final(self) -> pd.Series:
        """The last evaluated row."""
        return self.iloc[-1]


class Recorder:
    """Builds one run's :class:`History`: ``add`` an evaluation row, ``diverges`` tests a step's loss,
    ``diverge`` appends the divergence row, ``stop`` marks an early stop, ``history`` returns the result.

    The divergence rule (``fit``'s): a non-finite loss, non-finite parameters, or — when
    ``divergence_factor`` is given — a loss above ``max(1e3, divergence_factor × the first row's train
    loss)``. ``divergence_factor=None`` keeps only the finiteness test (the grokking recipe's).

    >>> r = Recorder(divergence_factor=1e4)
    >>> _ = r.add(0, train_loss=2.0, test_loss=2.1)
    >>> r.diverges(1e3), r.diverges(3e4), r.diverges(float("nan"))
    (False, True, True)
    >>> r.diverge(5, float("nan"), lr=0.1)
    >>> h = r.history(lr=0.1)
    >>> list(h.step), h.diverged, h.diverged_step, float(h.train_loss.iloc[-1]), h.info
    ([0, 5], True, 5, inf, {'lr': 0.1})
    """

    def __init__(self, divergence_factor: float | None = 1e4):
        self.rows: list[dict] = []
        self.divergence_factor = divergence_factor
        self.diverged_step: int | None = None
        self.stopped_early = False
        self._limit: float | None = None

    def add(self, step: int, values: dict | None = None, **more) -> dict:
        """Append the row ``{"step": step, **values, **more}`` and return it (probes may add to it)."""
        row = {"step": step, **(values or {}), **more}
        self.rows.append(row)
        return row

    @property
    def last(self) -> dict:
        return self.rows[-1]

    @property
    def limit(self) -> float:
        """The loss above which a step counts as diverged (inf without a ``divergence_factor``)."""
        if self._limit is None:
            if self.divergence_factor is None:
                self._limit = math.inf
            else:
                first = self.rows[0]["train_loss"] if self.rows else 0.0
                self._limit = max(1e3, self.divergence_factor * max(first, 1e-12))
        return self._limit

    def diverges(self, loss: float, finite_params: bool = True) -> bool:
        """Whether a step whose training loss was ``loss`` (and whose parameters are finite or not) diverged."""
        return not math.isfinite(loss) or loss > self.limit or not finite_params

    def diverge(self, step: int, loss: float, **more) -> None:
        """Append the row of a diverged step (its loss, inf when not finite; NaN accuracies and test loss)."""
        self.diverged_step = step
        self.rows.append({"step": step, "train_loss": loss if math.isfinite(loss) else math.inf,
                          "train_acc": NAN, "test_loss": NAN, "test_acc": NAN, **more})

    def stop(self) -> None:
        """Mark the run as stopped early (it reached its target)."""
        self.stopped_early = True

    @property
    def diverged(self) -> bool:
        return self.diverged_step is not None

    def history(self, **info) -> History:
        """The :class:`History` of the rows so far, with ``diverged``, ``diverged_step``, ``stopped_early``
        and ``info``."""
        h = History(self.rows)
        h.diverged, h.diverged_step, h.stopped_early = self.diverged, self.diverged_step, self.stopped_early
        h.info = info
        return h

    def frame(self) -> pd.DataFrame:
        """A plain DataFrame of the rows with run-level ``diverged`` and ``stopped_early`` columns (a sweep's)."""
        df = pd.DataFrame(self.rows)
        df["diverged"], df["stopped_early"] = self.diverged, self.stopped_early
        return df
