"""The performance goals every benchmark checks, in one table, and the exit status that makes `make bench` the check.

Each benchmark measures ratios in one run (threads pinned, the peers measured beside flatlab), reports every
figure beside its goal with ✓ or ✗, and exits non-zero when a goal is missed — so a regression fails
`make bench` instead of scrolling past. Absolute times are printed for reading, never checked.
"""
from __future__ import annotations

import sys

# name: (comparison, target). "max": the figure must be ≤ target; "min": ≥ target.
GOALS: dict[str, tuple[str, float]] = {
    # optimizers: one step, as a multiple of plain SGD's (two passes are SAM's floor)
    "SAM / SGD step": ("max", 2.05),
    "ASAM / SGD step": ("max", 2.05),
    "MFVI (1 sample) / SGD step": ("max", 1.5),
    "VariationalSAM / SGD step": ("max", 2.3),
    "MixSAM / SGD step": ("max", 2.6),
    # curvature: top-5 eigenvalues against PyHessian at equal accuracy
    "top-5 eigenvalues: speed-up over PyHessian": ("min", 15.0),
    # sweeps: 32 models trained together against one after another
    "32-model sweep: vmap over the loop": ("min", 12.0),
    # grokking: median wall time to 95 % test accuracy
    "grokking to 95 % test (median s)": ("max", 1.0),
    # widgets: the worst single update of any control
    "widget update, worst (ms)": ("max", 100.0),
}


class Goals:
    """Collect figures against :data:`GOALS`; ``finish()`` prints the verdict and returns the exit status."""

    def __init__(self) -> None:
        self.missed: list[str] = []

    def check(self, name: str, value: float, label: str | None = None) -> bool:
        if name not in GOALS:
            raise KeyError(f"no goal named {name!r}; goals: {', '.join(GOALS)}")
        kind, target = GOALS[name]
        ok = value <= target if kind == "max" else value >= target
        sign = "≤" if kind == "max" else "≥"
        print(f"  goal  {label or name:<46} {value:9.3g}   {sign} {target:g}   {'✓' if ok else '✗ missed'}", flush=True)
        if not ok:
            self.missed.append(f"{label or name} = {value:.3g} (goal {sign} {target:g})")
        return ok

    def finish(self) -> int:
        if self.missed:
            print(f"{len(self.missed)} goal(s) missed: " + "; ".join(self.missed), file=sys.stderr)
            return 1
        return 0
