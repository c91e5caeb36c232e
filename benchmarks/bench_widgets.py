"""Widget update latency: from a control change to the new figure in the FigureWidget (goal ≤ 100 ms: benchmarks/goals.py).

Measures every widget the chapters display (each ``….widget`` at the end of a code cell in
notebooks/00_… to 06_…), built the way its chapter builds it at the small budget: the same flatlab
functions with the parameters of the chapter's parameter cell (``by_budget(small, …)``), sweeps
read from flatlab's disk cache where the chapter's functions cache (chapter 03's ``sweep``, chapter
05's ``phase_sweep``). Every input builds in seconds at the small budget, so none is shrunk.

For each widget, after ``_ = explorer.widget`` (the displayed FigureWidget exists, as in a kernel),
each control in turn is stepped through its values (``control_values``, at most 8 per control;
a multi-select through each single option and then all of them), ending on the value it started
from; each ``explorer.update(...)`` is timed, i.e. the figure function plus the in-place copy into
the FigureWidget. A first visit to a value is timed as such (widgets that cache runs, like
chapter 02's, pay their computation there).

Run: python benchmarks/bench_widgets.py  — one line per widget (median and worst update, number of
updates), then the number of widgets whose worst update exceeds the target.
"""
import copy
import statistics
import time

import ipywidgets as W
import numpy as np
import torch
import torch.nn.functional as F

import flatlab
from flatlab import widgets
from goals import GOALS, Goals
from flatlab.config import seed_everything
from flatlab.models import rescale_layers
from flatlab.widgets.base import control_values

BUDGET = "small"     # the budget whose input sizes are measured
SEED = 0
TARGET_MS = GOALS["widget update, worst (ms)"][1]
WORST: list[float] = []   # every widget's worst update, for the goal
MAX_VALUES = 8       # values stepped through per control


# ----------------------------------------------------------------------------------------------
# measuring
# ----------------------------------------------------------------------------------------------
def _values(control, max_values=MAX_VALUES) -> list:
    """The values to step ``control`` through, ending on its current value (so the next control is
    stepped with this one back at its default)."""
    if isinstance(control, W.SelectMultiple):  # control_values has no discrete list for a multi-select
        options = list(control._options_values)
        values = [(v,) for v in options] + [tuple(options)]
    else:
        values = control_values(control, max_values)
    if len(values) > max_values:  # a selection with many options: an even subset, both ends kept
        values = [values[i] for i in np.unique(np.linspace(0, len(values) - 1, max_values).round().astype(int))]
    current = control.value
    others = [v for v in values if v != current]
    return others + [current] if others else []


def measure(chapter: str, name: str, explorer) -> bool:
    """Time one update per value of every control of ``explorer``; print one line; True if over target."""
    _ = explorer.widget  # build the FigureWidget, as a displayed widget would
    times = []
    for control_name, control in explorer.controls.items():
        for value in _values(control):
            t0 = time.perf_counter()
            explorer.update(**{control_name: value})
            times.append(1e3 * (time.perf_counter() - t0))
    worst = max(times)
    WORST.append(worst)
    print(f"{chapter + ' ' + name:<28} median {statistics.median(times):6.1f} ms   worst {worst:6.1f} ms   "
          f"({len(times)} updates; target ≤ {TARGET_MS:.0f} ms)", flush=True)
    return worst > TARGET_MS


# ----------------------------------------------------------------------------------------------
# one function per chapter: build the widgets' inputs as the chapter does, measure each widget
# ----------------------------------------------------------------------------------------------
def chapter_00() -> list[bool]:
    land = flatlab.landscapes.sharp_and_flat()
    return [measure("00", "landscape explorer", widgets.landscape_explorer(land))]


def chapter_01() -> list[bool]:
    n_train, width, slice_n = 1000, 128, flatlab.by_budget(21, 41, BUDGET)
    ds = flatlab.data.mnist1d(n_train=n_train)
    loss_fn, train_xy = F.cross_entropy, ds.train

    def train(batch_size, seed, target=0.05):
        model = flatlab.MLP(40, [width, width], 10, seed=seed)
        flatlab.fit(model, ds, "sgd", 20_000, lr=0.05, momentum=0.9, batch_size=batch_size, target_loss=target,
                    eval_every=10, seed=seed, progress=False)
        return model

    small_batch, large_batch = train(32, SEED), train(n_train, SEED)
    minima = {"small batch": small_batch, "large batch": large_batch,
              "large batch, rescaled ×10": rescale_layers(large_batch, 10.0)}
    slice_xy = (ds.x_train[:500], ds.y_train[:500])
    surfaces = widgets.slice_surfaces(minima, loss_fn, slice_xy, span=1.0, n=slice_n, seed=SEED)
    model64 = copy.deepcopy(small_batch).double()
    table = widgets.rescaling_table(model64, loss_fn, (train_xy[0].double(), train_xy[1]),
                                    alphas=np.logspace(-1, 1, 9))
    return [measure("01", "slice explorer", widgets.slice_explorer(surfaces, zmax=5.0)),
            measure("01", "rescaling explorer", widgets.rescaling_explorer(table))]


def chapter_02() -> list[bool]:
    from flatlab.widgets import sam as samw

    land = flatlab.landscapes.sharp_and_flat()
    return [measure("02", "sam_mfvi explorer", samw.sam_mfvi_explorer(land, seed=SEED))]


def chapter_03() -> list[bool]:
    from flatlab.sweep import Run, sweep
    from flatlab.widgets.lr import eos_explorer, quadratic_explorer, sweep_explorer

    eos_lrs, eos_steps, eos_every = [0.1, 0.15, 0.2], flatlab.by_budget(900, 1500, BUDGET), flatlab.by_budget(50, 25, BUDGET)
    grid_lrs, grid_batches = [0.05, 0.1, 0.2, 0.4], [32, 128, 512]
    grid_target, grid_seeds = flatlab.by_budget(0.2, 0.1, BUDGET), flatlab.by_budget(1, 2, BUDGET)

    eos_data = flatlab.data.mnist1d(n_train=500)
    mse = flatlab.make_loss(eos_data, "mse")

    def eos_run(lr, seed):
        model = flatlab.MLP(40, [200, 200], 10, activation="tanh", seed=seed)
        return Run(model, eos_data, steps=eos_steps, lr=lr, loss="mse", eval_every=10,
                   probes=[flatlab.CurvatureProbe(mse, every=eos_every)])

    eos = sweep(eos_run, {"lr": eos_lrs}, seeds=[SEED], progress=False)

    grid_data = flatlab.data.mnist1d(n_train=1000)
    ce = flatlab.make_loss(grid_data)

    def grid_run(lr, batch_size, seed):
        model = flatlab.MLP(40, [128, 128], 10, seed=seed)
        final = flatlab.CurvatureProbe(ce, every=1, trace=True, n_trace_samples=10, seed=seed)
        return Run(model, grid_data, steps=4000, lr=lr, batch_size=batch_size, eval_every=25,
                   target_loss=grid_target, final_probes=[final])

    grid = sweep(grid_run, {"lr": grid_lrs, "batch_size": grid_batches}, seeds=range(SEED, SEED + grid_seeds),
                 progress=False)
    return [measure("03", "quadratic explorer", quadratic_explorer(lams=[10.0, 1.0], lr=0.19)),
            measure("03", "eos explorer", eos_explorer(eos, title="Edge of stability: λ_max of full-batch GD")),
            measure("03", "sweep explorer", sweep_explorer(grid))]


def chapter_04() -> list[bool]:
    from flatlab import implicit
    from flatlab.widgets.implicit import diagonal_explorer, factorization_explorer

    alphas = flatlab.by_budget([1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0], [1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0], BUDGET)
    diag_steps = flatlab.by_budget(40_000, 150_000, BUDGET)
    depths = flatlab.by_budget((1, 2, 3), (1, 2, 3, 4), BUDGET)
    inits = flatlab.by_budget((1e-1, 1e-2, 1e-3), (1e-1, 3e-2, 1e-2, 3e-3, 1e-3), BUDGET)
    fact_steps = flatlab.by_budget(15_000, 30_000, BUDGET)

    sparse = flatlab.data.sparse_regression(n_train=40, dim=100, k=3, seed=SEED)
    diag = implicit.diagonal_sweep(sparse, alphas, steps=diag_steps, seed=SEED)
    matrix = flatlab.data.low_rank_matrix(n=30, rank=3, observed_fraction=0.4, seed=SEED)
    fact = implicit.factorization_sweep(matrix, depths, inits, steps=fact_steps, seed=SEED)
    return [measure("04", "diagonal explorer", diagonal_explorer(diag)),
            measure("04", "factorization explorer", factorization_explorer(fact))]


def chapter_05() -> list[bool]:
    from flatlab import grokking as gk
    from flatlab.grokking import GrokConfig
    from flatlab.widgets import grokking as gw

    p, train_fraction = 59, 0.4
    sweep_wd = flatlab.by_budget([0.1, 1.0], [0.1, 0.3, 1.0, 3.0], BUDGET)
    sweep_fraction = flatlab.by_budget([0.25, 0.4, 0.6], [0.25, 0.4, 0.6, 0.8], BUDGET)
    sweep_steps = flatlab.by_budget(600, 1200, BUDGET)

    table, histories = gk.phase_sweep(sweep_wd, sweep_fraction, GrokConfig(p=p, seed=SEED, steps=sweep_steps))
    return [measure("05", "sweep explorer", gw.sweep_explorer(table, histories, reference=(1.0, train_fraction)))]


def chapter_06() -> list[bool]:
    from flatlab import adaptive
    from flatlab.widgets.adaptive import critical_momenta_explorer, warmup_explorer

    warmup_lrs = flatlab.by_budget([0.03, 0.1, 0.3], [0.01, 0.03, 0.1, 0.3], BUDGET)
    warmups = flatlab.by_budget([0, 100], [0, 25, 50, 100], BUDGET)
    warmup_steps = 150

    ds = flatlab.data.mnist1d(n_train=1000)
    base = flatlab.MLP(40, [128, 128], 10, seed=SEED)
    grid = adaptive.warmup_grid(base, ds, warmup_lrs, warmups, warmup_steps, seed=SEED)
    land = flatlab.landscapes.sharp_and_flat()
    return [measure("06", "warmup explorer", warmup_explorer(grid)),
            measure("06", "critical momenta explorer", critical_momenta_explorer(land, steps=200))]


CHAPTERS = (chapter_00, chapter_01, chapter_02, chapter_03, chapter_04, chapter_05, chapter_06)


def main():
    torch.set_num_threads(2)
    over = []
    for chapter in CHAPTERS:
        seed_everything(SEED)  # as each chapter's setup_notebook does
        over += chapter()
    print(f"{sum(over)} of {len(over)} widgets over target (worst update > {TARGET_MS:.0f} ms)")
    goals = Goals()
    goals.check("widget update, worst (ms)", max(WORST), label="widget update, worst over all widgets (ms)")
    return goals.finish()


if __name__ == "__main__":
    raise SystemExit(main())
