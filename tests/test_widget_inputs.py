"""Every widget factory given empty input — an empty dict or list of runs, values or curves, a DataFrame
without rows (or without columns) — raises a ValueError that names the parameter and says what it expects,
not an IndexError, a StopIteration or ``min() arg is an empty sequence`` from deep inside."""
import numpy as np
import pandas as pd
import pytest

from flatlab.implicit import DiagonalSweep, FactorizationSweep
from flatlab.widgets import adaptive as A
from flatlab.widgets import grokking as G
from flatlab.widgets import implicit as I
from flatlab.widgets import lr as L
from flatlab.widgets import sam as S
from flatlab.widgets import sharpness as H


def rows0(*columns):
    """A DataFrame with ``columns`` and no rows."""
    return pd.DataFrame(columns=list(columns))


NONE = pd.DataFrame()
PHASE = ("weight_decay", "train_fraction", "phase", "step_test", "delay")
EMPTY_DIAGONAL = DiagonalSweep([], np.zeros((0, 3)), np.zeros(3), np.zeros(3), np.zeros(3),
                               rows0("alpha", "error_truth", "error_l2"))
EMPTY_FACTORIZATION = FactorizationSweep(rows0("depth", "init_scale"), NONE, {}, np.zeros(0))
HIST = pd.DataFrame({"step": [0, 1], "sv1": [0.0, 1.0], "sv2": [0.0, 1.0], "sv3": [0.0, 1.0]})

# (id, call, the parameter the message must name)
CASES = [
    # chapter 01
    ("rescaling_table: no α", lambda: H.rescaling_table(None, None, None, alphas=()), "alphas"),
    ("rescaling_figure: no frame", lambda: H.rescaling_figure(NONE), "table"),
    ("rescaling_figure: no rows", lambda: H.rescaling_figure(
        rows0("alpha", "lambda_max", "worst_case", "adaptive", "adaptive_exact", "max_output_change")), "table"),
    ("rescaling_explorer: no rows", lambda: H.rescaling_explorer(
        rows0("alpha", "lambda_max", "worst_case", "adaptive", "adaptive_exact", "max_output_change")), "table"),
    ("slice_surfaces: no models", lambda: H.slice_surfaces({}, None, None), "models"),
    ("slice_figure: no surfaces", lambda: H.slice_figure({}, "a"), "surfaces"),
    ("slice_explorer: no surfaces", lambda: H.slice_explorer({}), "surfaces"),
    # chapter 02
    ("basin_table: no starts", lambda: S.basin_table(starts=[]), "starts"),
    ("basin_figure: no frame", lambda: S.basin_figure(NONE), "table"),
    ("basin_figure: no rows", lambda: S.basin_figure(rows0("method", "value", "start", "seed", "basin")), "table"),
    ("sam_mfvi_explorer: no ρ", lambda: S.sam_mfvi_explorer(rhos=[]), "rhos"),
    ("sam_mfvi_explorer: no σ", lambda: S.sam_mfvi_explorer(stds=()), "stds"),
    ("sam_mfvi_explorer: no mix", lambda: S.sam_mfvi_explorer(mixes=[]), "mixes"),
    ("reliability_figure: no predictors", lambda: S.reliability_figure({}), "calibrations"),
    ("comparison_figure: no rows", lambda: S.comparison_figure(rows0("test_acc", "lambda_max", "ece")), "table"),
    ("comparison_figure: no metric", lambda: S.comparison_figure(pd.DataFrame({"x": [1.0]})), "table"),
    # chapter 03
    ("quadratic_run: no curvatures", lambda: L.quadratic_run([], 0.1), "lams"),
    ("quadratic_figure: no curvatures", lambda: L.quadratic_figure(lams=()), "lams"),
    ("quadratic_explorer: no curvatures", lambda: L.quadratic_explorer(lams=[]), "lams"),
    ("lambda_curves_figure: no rows", lambda: L.lambda_curves_figure(rows0("lr", "seed", "step", "lambda_max")), "df"),
    ("eos_explorer: no frame", lambda: L.eos_explorer(NONE), "df"),
    ("eos_explorer: no rows", lambda: L.eos_explorer(rows0("lr", "seed", "step", "lambda_max")), "df"),
    ("heatmap_figure: no frame", lambda: L.heatmap_figure(NONE), "df"),
    ("heatmap_figure: no rows", lambda: L.heatmap_figure(rows0("run", "lr", "batch_size", "seed", "lambda_max")), "df"),
    ("ratio_figure: no rows", lambda: L.ratio_figure(rows0("run", "lr", "batch_size", "seed", "lambda_max")), "df"),
    ("sweep_explorer (η × B): no frame", lambda: L.sweep_explorer(NONE), "df"),
    ("sweep_explorer (η × B): no rows", lambda: L.sweep_explorer(rows0("run", "lr", "batch_size", "seed", "lambda_max")),
     "df"),
    # chapter 04
    ("margin_figure: no runs", lambda: I.margin_figure({}), "histories"),
    ("margin_figure: an empty run", lambda: I.margin_figure({"GD": rows0("step", "cos", "norm")}), "histories['GD']"),
    ("diagonal_figure: no α", lambda: I.diagonal_figure(EMPTY_DIAGONAL, 1.0), "sweep.alphas"),
    ("diagonal_explorer: no α", lambda: I.diagonal_explorer(EMPTY_DIAGONAL), "sweep.alphas"),
    ("factorization_figure: no runs", lambda: I.factorization_figure(EMPTY_FACTORIZATION, 2, 0.01), "sweep.summary"),
    ("factorization_explorer: no runs", lambda: I.factorization_explorer(EMPTY_FACTORIZATION), "sweep.summary"),
    ("incremental_figure: no runs", lambda: I.incremental_figure({}, [1.0, 0.5, 0.2]), "histories"),
    ("incremental_figure: no targets", lambda: I.incremental_figure({"a": HIST}, []), "targets"),
    ("incremental_figure: an empty run", lambda: I.incremental_figure({"a": HIST.iloc[:0]}, [1.0, 0.5, 0.2]),
     "histories['a']"),
    ("ngd_figure: no rows", lambda: I.ngd_figure(rows0("label", "test_error", "effective_rank")), "results"),
    # chapter 05
    ("accuracy_figure: no runs", lambda: G.accuracy_figure({}), "histories"),
    ("accuracy_figure: an empty run", lambda: G.accuracy_figure({"a": NONE}), "histories['a']"),
    ("weight_norm_figure: an empty run", lambda: G.weight_norm_figure({"a": rows0("step", "weight_norm", "test_acc")}),
     "histories['a']"),
    ("phase_diagram_figure: no rows", lambda: G.phase_diagram_figure(rows0(*PHASE)), "table"),
    ("sweep_figure: no rows", lambda: G.sweep_figure(rows0(*PHASE), {}, 0.1, 0.5), "table"),
    ("sweep_figure: no histories", lambda: G.sweep_figure(
        pd.DataFrame([[0.1, 0.5, "grokking", 10.0, 2.0]], columns=PHASE), {}, 0.1, 0.5), "histories"),
    ("sweep_explorer (grokking): no rows", lambda: G.sweep_explorer(rows0(*PHASE), {}), "table"),
    ("sweep_explorer (grokking): no histories", lambda: G.sweep_explorer(
        pd.DataFrame([[0.1, 0.5, "grokking", 10.0, 2.0]], columns=PHASE), {}), "histories"),
    ("fourier_figure: no spectra", lambda: G.fourier_figure({}), "spectra"),
    ("fourier_figure: an empty spectrum", lambda: G.fourier_figure({"a": []}), "spectra['a']"),
    ("collapse_figure: no runs", lambda: G.collapse_figure({}), "histories"),
    ("nlm_figure: no runs", lambda: G.nlm_figure({}), "histories"),
    ("nlm_figure: an empty run", lambda: G.nlm_figure({"a": rows0("step", "nlm_cos", "train_acc")}), "histories"),
    ("collapse_figure: an empty run", lambda: G.collapse_figure({"a": rows0("step", "collapsed", "test_acc", "max_logit")}),
     "histories['a']"),
    ("corrupted_figure: no runs", lambda: G.corrupted_figure({}), "histories"),
    ("corrupted_figure: an empty run", lambda: G.corrupted_figure(
        {"a": rows0("step", "corrupted_fit", "corrupted_true", "test_acc")}), "histories['a']"),
    ("ipr_figure: no runs", lambda: G.ipr_figure({}), "iprs"),
    ("ipr_figure: no neurons", lambda: G.ipr_figure({"a": np.zeros(0)}), "iprs['a']"),
    ("pruning_figure: empty report", lambda: G.pruning_figure({}), "report"),
    # chapter 06
    ("sharpness_bar_figure: no frame", lambda: A.sharpness_bar_figure(NONE), "table"),
    ("sharpness_bar_figure: no rows", lambda: A.sharpness_bar_figure(
        rows0("optimizer", "lr", "lambda_max", "test_acc", "train_loss")), "table"),
    ("eos_figure: no rows", lambda: A.eos_figure(rows0("step", "precond_lambda_max", "lambda_max"), 0.01), "history"),
    ("warmup_figure: no runs", lambda: A.warmup_figure({}, 0.1, 10), "grid"),
    ("warmup_figure: RAdam only", lambda: A.warmup_figure({("radam", 0.1, 0): NONE}, 0.1, 0), "grid"),
    ("warmup_explorer: no runs", lambda: A.warmup_explorer({}), "grid"),
    ("averaging_figure: no methods", lambda: A.averaging_figure({}), "results"),
    ("averaging_figure: no members", lambda: A.averaging_figure({"SWA": ([], 1.0)}), "results['SWA']"),
    ("interpolation_figure: no α", lambda: A.interpolation_figure([], {"a–b": []}), "alphas"),
    ("interpolation_figure: no curves", lambda: A.interpolation_figure(np.linspace(0, 1, 5), {}), "curves"),
]


@pytest.mark.parametrize("call, parameter", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_empty_input_is_rejected_with_a_named_value_error(call, parameter):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert message.startswith(parameter) or f"{parameter} " in message, message
    assert any(word in message for word in ("expected", "must", "needs", "at least one")), message


def test_every_public_factory_with_data_input_is_in_the_table():
    """A new figure or explorer over runs, tables or values needs a row here."""
    import inspect

    covered = {c[0].split(":")[0].split(" (")[0] for c in CASES}
    # their `grid` is an optional precomputed landscape grid (None: computed), not a collection of runs
    covered |= {"critical_momenta_figure", "perturbation_figure", "sam_mfvi_figure"}
    data_params = {"table", "history", "histories", "grid", "results", "alphas", "curves", "spectra", "iprs", "report",
                   "sweep", "df", "lams", "starts", "rhos", "calibrations", "surfaces", "models"}
    missing = []
    for module in (A, G, I, L, S, H):
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ != module.__name__ or name.startswith("_"):
                continue
            if data_params & set(inspect.signature(fn).parameters) and name not in covered:
                missing.append(f"{module.__name__}.{name}")
    assert not missing, missing
