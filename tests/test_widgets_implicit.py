"""Chapter 04 widgets: drive them through .update and check the figure data (no browser)."""
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

import flatlab
from flatlab import implicit as I
from flatlab.widgets.implicit import (diagonal_explorer, diagonal_figure, factorization_explorer, factorization_figure,
                                      incremental_figure, margin_figure, ngd_figure)


@pytest.fixture(scope="module")
def diag_sweep():
    ds = flatlab.data.sparse_regression(n_train=20, dim=40, k=2, seed=0)
    return I.diagonal_sweep(ds, [1e-2, 1e-1, 1.0, 5.0], steps=20_000)


@pytest.fixture(scope="module")
def fact_sweep():
    ds = flatlab.data.low_rank_matrix(n=10, rank=2, observed_fraction=0.6, seed=0)
    return I.factorization_sweep(ds, depths=(1, 2, 3), init_scales=(1e-1, 1e-2), steps=3000, record_every=50)


def test_diagonal_explorer_moves_from_sparse_to_min_l2(diag_sweep):
    ex = diagonal_explorer(diag_sweep)
    _ = ex.widget
    fig = ex.update(alpha=1e-2)
    bars = [t for t in fig.data if t.type == "bar"]
    assert len(bars) == 1 and np.allclose(bars[0].y, diag_sweep.weights[0])
    assert "rich (sparse)" in fig.layout.title.text and "α = 0.01" in ex.status.value
    fig = ex.update(alpha=5.0)
    assert np.allclose([t for t in fig.data if t.type == "bar"][0].y, diag_sweep.weights[3])
    assert "kernel" in fig.layout.title.text
    # the figure widget on screen was updated in place
    assert np.allclose([t for t in ex.fig_widget.data if t.type == "bar"][0].y, diag_sweep.weights[3])
    selected = [t for t in fig.data if t.name == "selected α"][0]
    assert list(selected.x) == [5.0, 5.0] and selected.y[1] == pytest.approx(diag_sweep.table.error_l2.iloc[3])


def test_diagonal_figure_has_labelled_axes_and_references(diag_sweep):
    fig, text = diagonal_figure(diag_sweep, 0.1)
    names = [t.name for t in fig.data]
    assert "sparse truth w*" in names and "min-ℓ2 interpolant (pinv)" in names
    assert fig.layout.xaxis2.type == "log" and fig.layout.xaxis2.title.text == "init scale α"
    assert "distance to the sparse truth" in text


def test_factorization_explorer_selects_depth_and_init(fact_sweep):
    ex = factorization_explorer(fact_sweep)
    _ = ex.widget
    fig = ex.update(depth=1, init_scale=1e-2)
    row1, hist1 = fact_sweep.run(1, 1e-2)
    sv1 = [t for t in fig.data if t.name == "σ_1(W)"][0]
    assert np.allclose(sv1.y, hist1.sv1) and "depth 1" in ex.status.value
    fig = ex.update(depth=3)
    row3, hist3 = fact_sweep.run(3, 1e-2)
    assert np.allclose([t for t in fig.data if t.name == "σ_1(W)"][0].y, hist3.sv1)
    assert f"{row3.effective_rank:.2f}" in fig.layout.title.text
    sel = [t for t in fig.data if t.name == "selected run"][0]
    assert sel.y[0] == pytest.approx(row3.test_error)
    assert {t.name for t in fig.data} >= {"GD, depth 1", "GD, depth 2", "GD, depth 3"}
    with pytest.raises(ValueError, match="unknown control"):
        ex.update(width=3)


def test_factorization_slider_callback_like_a_student(fact_sweep):
    ex = factorization_explorer(fact_sweep)
    _ = ex.widget
    ex.controls["depth"].value = 2
    _, hist = fact_sweep.run(2, ex.controls["init_scale"].value)
    assert np.allclose([t for t in ex.fig_widget.data if t.name == "σ_1(W)"][0].y, hist.sv1)


def test_factorization_figure_marks_target(fact_sweep):
    fig, text = factorization_figure(fact_sweep, 2, 0.1)
    assert any("target σ" in (a.text or "") for a in fig.layout.annotations)
    assert "held-out error" in text and fig.layout.yaxis.type == "log"


def test_margin_figure_plots_angles(monkeypatch):
    h = pd.DataFrame({"step": [0, 1, 10, 100], "cos": [np.nan, 0.5, 0.9, 0.99], "norm": [0, 1, 2, 3]})
    fig = margin_figure({"GD, η = 1": h})
    angle = fig.data[0].y
    assert np.allclose(angle, np.degrees(np.arccos([0.5, 0.9, 0.99])))
    assert fig.data[0].name == "GD, η = 1" and fig.layout.xaxis.type == "log"
    with pytest.raises(ValueError, match="cos"):
        margin_figure({"x": h.drop(columns="cos")})


def test_incremental_and_ngd_figures():
    h = pd.DataFrame({"step": [0, 1, 2], "sv1": [0, 1, 2], "sv2": [0, 0, 1], "sv3": [0, 0, 0.5]})
    fig = incremental_figure({"depth 3": h, "depth 2": h}, targets=[2, 1, 0.5], half={"depth 3": [1, 2, 2]})
    assert isinstance(fig, go.Figure) and len(fig.data) == 6
    res = pd.DataFrame({"label": ["GD depth 3", "NGD depth 3"], "test_error": [0.01, 1.0], "effective_rank": [3.0, 18.0]})
    fig = ngd_figure(res)
    assert list(fig.data[0].y) == [0.01, 1.0] and list(fig.data[1].x) == ["GD depth 3", "NGD depth 3"]
    with pytest.raises(ValueError, match="effective_rank"):
        ngd_figure(res.drop(columns="effective_rank"))
