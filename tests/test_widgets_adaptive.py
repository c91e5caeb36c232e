"""Chapter 06 widgets and figures, driven through .update and checked on the figure data."""
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from flatlab.adaptive import warmup_grid
from flatlab.models import MLP
from flatlab.widgets.adaptive import (averaging_figure, cm_start, critical_momenta_explorer, eos_figure,
                                      interpolation_figure, sharpness_bar_figure, warmup_explorer, warmup_figure)


@pytest.fixture(scope="module")
def grid():
    from flatlab.data import gaussian_clouds

    clouds = gaussian_clouds(n_train=120, n_test=200, n_classes=3, seed=0)
    return warmup_grid(MLP(2, [8], 3, seed=0), clouds, [0.01, 3.0], [0, 10], 20, eval_every=2)


def test_critical_momenta_explorer_updates_trajectories_and_status():
    ex = critical_momenta_explorer(steps=150)
    _ = ex.widget
    assert "Adam ends in the sharp minimum" in ex.status.value and "AdamCM ends in the flat minimum" in ex.status.value
    names = [t.name for t in ex.fig_widget.data]
    assert any(n.startswith("AdamCM η=0.1, buffer 5") for n in names)
    adam = [t for t in ex.figure.data if t.name.startswith("Adam η")][0]
    assert np.allclose([adam.x[0], adam.y[0]], cm_start(0.0))
    ex.update(angle=2.0)
    adam = [t for t in ex.fig_widget.data if t.name.startswith("Adam η")][0]
    assert np.allclose([adam.x[0], adam.y[0]], cm_start(2.0))
    fig = ex.update(buffer_size=0)  # no buffer: AdamCM is Adam, the two paths coincide
    paths = [t for t in fig.data if getattr(t, "mode", None) == "lines+markers"]
    assert len(paths) == 2 and np.array_equal(paths[0].x, paths[1].x)
    assert "AdamCM ends in the sharp minimum" in ex.status.value


def test_warmup_explorer_selects_precomputed_runs(grid):
    ex = warmup_explorer(grid)
    _ = ex.widget
    assert ex.controls["peak_lr"].value == 3.0 and ex.controls["warmup"].value == 10
    names = [t.name for t in ex.fig_widget.data if t.showlegend is not False]
    assert names == ["Adam, warmup 10 steps (peak η=3)", "Adam, no warmup (peak η=3)", "RAdam, no warmup (peak η=3)"]
    lr_curve = ex.fig_widget.data[1].y
    assert lr_curve[1] == pytest.approx(3.0 * 2 / 10)  # after 2 steps of a 10-step warmup (eval every 2)
    fig = ex.update(warmup=0, peak_lr=0.01)
    assert [t.name for t in fig.data if t.showlegend is not False] == [
        "Adam, warmup 0 steps (peak η=0.01)", "RAdam, no warmup (peak η=0.01)"]
    assert "final loss" in ex.status.value and "peak loss" in ex.status.value
    with pytest.raises(ValueError, match="no precomputed run"):
        warmup_figure(grid, 0.5, 10)


def test_eos_figure_draws_both_thresholds():
    h = pd.DataFrame({"step": [0, 10, 20], "precond_lambda_max": [np.nan, 30000.0, 38000.0],
                      "lambda_max": [np.nan, 10.0, 12.0]})
    fig = eos_figure(h, lr=1e-3)
    texts = [a.text for a in fig.layout.annotations]
    assert any("38,000" in t for t in texts) and any("2/η = 2,000 (GD)" in t for t in texts)
    assert fig.layout.yaxis.type == "log" and list(fig.data[0].y) == [30000.0, 38000.0]


def test_sharpness_bar_averaging_and_interpolation_figures():
    table = pd.DataFrame({"optimizer": ["SGD", "Adam"], "lr": [0.3, 0.003], "train_loss": [0.05, 0.049],
                          "test_acc": [0.48, 0.46], "lambda_max": [3.4, 6.5]})
    fig = sharpness_bar_figure(table)
    assert list(fig.data[0].x) == ["SGD (η=0.3)", "Adam (η=0.003)"] and list(fig.data[0].y) == [3.4, 6.5]
    assert "0.05" in fig.layout.title.text
    fig = averaging_figure({"SWA": ([2.0, 3.0], 2.2), "PAPA": ([1.0, 1.2], 1.1)})
    stars = [t for t in fig.data if t.marker.symbol == "star"]
    assert [t.y[0] for t in stars] == [2.2, 1.1] and isinstance(fig, go.Figure)
    means = [t for t in fig.data if t.name.endswith("members' mean")]
    assert means[0].y[0] == pytest.approx(2.5)
    fig = interpolation_figure(np.linspace(0, 1, 3), {"a↔b": np.array([0.1, 1.0, 0.1])})
    assert fig.data[0].name == "a↔b" and fig.layout.yaxis.type == "log"


def test_critical_momenta_explorer_runs_each_trajectory_once(monkeypatch):
    """Moving the buffer or decay slider reruns AdamCM only; returning to a setting reruns nothing — and the
    figure is the one a fresh computation draws."""
    import flatlab.adaptive as ad

    calls = []
    real = ad.landscape_run
    monkeypatch.setattr(ad, "landscape_run", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    ex = critical_momenta_explorer(steps=60)
    first = ex.update(lr=0.1, buffer_size=5, decay=0.7, angle=0.0)
    n = len(calls)
    ex.update(lr=0.1, buffer_size=3, decay=0.7, angle=0.0)
    assert calls[n:] == ["adamcm"]
    again = ex.update(lr=0.1, buffer_size=5, decay=0.7, angle=0.0)
    assert calls[n + 1:] == []
    fresh = critical_momenta_explorer(steps=60).update(lr=0.1, buffer_size=5, decay=0.7, angle=0.0)
    for a, b in zip(again.data, fresh.data):
        assert list(a.x) == list(b.x) and list(a.y) == list(b.y)
    assert first.layout.title.text == fresh.layout.title.text
