"""Chapter 03 widgets: drive them through .update and check the figure data (no browser)."""
import numpy as np
import plotly.graph_objects as go
import pytest

import flatlab
from flatlab.sweep import Run, sweep
from flatlab.widgets.lr import (eos_explorer, heatmap_figure, lambda_curves_figure, noise_scale_label, quadratic_explorer,
                                quadratic_figure, quadratic_rate, quadratic_run, ratio_figure, sweep_explorer)


@pytest.fixture(scope="module")
def curves():
    """A tiny λ_max-along-training sweep: two learning rates, two seeds, λ_max every 5 steps."""
    ds = flatlab.data.mnist1d(n_train=128, n_test=64)
    loss = flatlab.make_loss(ds, "mse")

    def make_run(lr, seed):
        return Run(flatlab.MLP(40, [16], 10, activation="tanh", seed=seed), ds, steps=20, lr=lr, loss="mse",
                   eval_every=5, probes=[flatlab.CurvatureProbe(loss, every=5)])

    return sweep(make_run, {"lr": [0.1, 0.2]}, seeds=[0, 1], cache=False, progress=False)


@pytest.fixture(scope="module")
def grid():
    """A tiny η × B sweep with final λ_max and a diverged run (η = 50)."""
    ds = flatlab.data.mnist1d(n_train=128, n_test=64)
    loss = flatlab.make_loss(ds)

    def make_run(lr, batch_size, seed):
        return Run(flatlab.MLP(40, [16], 10, seed=seed), ds, steps=20, lr=lr, batch_size=batch_size, eval_every=10,
                   final_probes=[flatlab.CurvatureProbe(loss, every=1)])

    return sweep(make_run, {"lr": [0.05, 0.2, 50.0], "batch_size": [8, 32]}, seeds=[0, 1], cache=False, progress=False)


def test_quadratic_run_and_rate_match_the_threshold():
    lam = 10.0
    for factor, converges in ((0.99, True), (1.01, False)):
        lr = factor * 2 / lam
        _, loss = quadratic_run([lam], lr, steps=2000)
        assert (loss[-1] < loss[0]) == converges
        assert (quadratic_rate(lam, lr) < 1) == converges
    # heavy ball: stable up to (2 + 2β)/η
    beta = 0.5
    for factor, converges in ((0.99, True), (1.01, False)):
        lr = factor * (2 + 2 * beta) / lam
        _, loss = quadratic_run([lam], lr, beta, steps=3000)
        assert (loss[-1] < loss[0]) == converges
    with pytest.raises(ValueError, match="momentum=1.0"):
        quadratic_run([1.0], 0.1, momentum=1.0)
    with pytest.raises(ValueError, match="lams must be"):
        quadratic_run([-1.0], 0.1)


def test_quadratic_explorer_crosses_the_threshold():
    ex = quadratic_explorer(lams=(10.0, 1.0), lr=0.15)
    _ = ex.widget
    assert "converges" in ex.status.value and "2/η = 13.3" in ex.status.value
    fig = ex.update(lr=0.21)
    assert "diverges" in fig.layout.title.text and any(t.name == "diverged" for t in fig.data)
    assert "diverges" in ex.fig_widget.layout.title.text
    # momentum enlarges the stable range: η = 0.21 converges with β = 0.5 ((2+2β)/η = 14.3 > 10)
    fig = ex.update(momentum=0.5)
    assert "converges" in fig.layout.title.text and "(2+2β)/η = 14.29" in ex.status.value
    assert fig.data[1].name == "heavy ball η=0.21, β=0.5"
    fig2, text = quadratic_figure(0.05)
    assert fig2.layout.xaxis.title.text.startswith("w₁") and "GD η=0.05" in text


def test_lambda_curves_have_threshold_lines_and_peaks(curves):
    fig = lambda_curves_figure(curves, by="lr", seed=1, mark_peaks=True)
    lines = [t for t in fig.data if t.name and t.name.startswith("GD η = ") and "peak" not in t.name]
    assert [t.name for t in lines] == ["GD η = 0.1", "GD η = 0.2"]
    sub = curves[(curves.seed == 1) & (curves.lr == 0.2)]
    assert np.allclose(lines[1].y, sub.lambda_max.dropna())
    texts = [a.text for a in fig.layout.annotations]
    assert "2/η = 20 (η = 0.1)" in texts and "2/η = 10 (η = 0.2)" in texts
    ys = sorted(s.y0 for s in fig.layout.shapes)
    assert ys == pytest.approx([10.0, 20.0])
    assert any("peak at step" in (t.name or "") for t in fig.data)
    assert fig.layout.yaxis2.type == "log" and fig.layout.xaxis2.title.text == "step"
    with pytest.raises(ValueError, match="no column 'trace'"):
        lambda_curves_figure(curves, metric="trace")


def test_eos_explorer_selects_curves_and_seed(curves):
    ex = eos_explorer(curves)
    _ = ex.widget
    fig = ex.update(values=(0.2,))
    names = [t.name for t in fig.data if t.name and t.name.startswith("GD")]
    assert names == ["GD η = 0.2"] and "late median" in ex.status.value and "2/η = 10" in ex.status.value
    fig = ex.update(seed=1, threshold=False)
    assert len(fig.layout.shapes) == 0
    assert np.allclose(fig.data[0].y, curves[(curves.seed == 1) & (curves.lr == 0.2)].lambda_max.dropna())
    assert np.allclose(ex.fig_widget.data[0].y, fig.data[0].y)


def test_heatmap_marks_diverged_runs_and_outlines_equal_noise_scale(grid):
    fig, text = heatmap_figure(grid, "lambda_max", seed=0, ratio=0.2 / 32)
    heat = fig.data[0]
    assert list(heat.x) == ["8", "32"] and list(heat.y) == ["0.05", "0.2", "50"]
    assert np.isnan(np.asarray(heat.z, float)[2]).all() and "✗ diverged" in heat.text[2]
    last = grid.groupby("run").tail(1)
    expected = last[(last.seed == 0) & (last.lr == 0.05) & (last.batch_size == 8)].lambda_max.item()
    assert heat.z[0][0] == pytest.approx(expected)
    outline = fig.data[1]
    assert list(outline.x) == ["8", "32"] and list(outline.y) == ["0.05", "0.2"]
    assert "η/B = 1/160" in outline.name and "max/min" in text
    assert fig.layout.xaxis.title.text == "batch size B" and fig.layout.yaxis.title.text == "learning rate η"
    with pytest.raises(ValueError, match="metric='nope'"):
        heatmap_figure(grid, "nope")


def test_sweep_explorer_only_selects(grid):
    ex = sweep_explorer(grid)
    _ = ex.widget
    assert ex.controls["ratio"].value == pytest.approx(0.05 / 8)
    fig = ex.update(metric="test_acc", seed="mean")
    last = grid.groupby("run").tail(1)
    mean = last[(last.lr == 0.2) & (last.batch_size == 32)].test_acc.mean()
    assert fig.data[0].z[1][1] == pytest.approx(mean) and "test accuracy" in fig.layout.title.text
    fig = ex.update(ratio=None)
    assert len(fig.data) == 1 and isinstance(fig, go.Figure)


def test_ratio_figure_and_labels(grid):
    fig = ratio_figure(grid)
    assert [t.name for t in fig.data] == ["SGD, B = 8", "SGD, B = 32"]
    assert fig.layout.xaxis.type == "log" and len(fig.data[0].x) == 4  # diverged runs left out
    assert noise_scale_label(0.05, 32) == "η/B = 1/640" and noise_scale_label(0.3, 8) == "η/B = 3/80"
