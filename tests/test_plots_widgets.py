import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from flatlab import landscapes, plots, widgets
from flatlab.models import MLP
from flatlab.train import fit, trajectory


def test_template_is_registered_with_safe_palette():
    plots.register_template()
    assert list(pio.templates["flatlab"].layout.colorway) == plots.PALETTE
    # one template, not plotly_white merged with it again for every figure: the same look, without the merge
    assert pio.templates.default == "flatlab"
    merged = pio.templates.merge_templates("plotly_white", "flatlab")
    assert go.Figure().layout.template.to_plotly_json() == merged.to_plotly_json()
    assert go.Figure().layout.template.layout.font.size == 13


def test_a_redraw_in_place_keeps_or_replaces_the_template():
    from flatlab.widgets.base import _replace_in_place

    plots.register_template()
    fw = go.FigureWidget(go.Figure(go.Scatter(x=[0, 1], y=[1, 2]), layout=dict(title="a")))
    _replace_in_place(fw, go.Figure(go.Scatter(x=[0, 1], y=[3, 4]), layout=dict(title="b")))
    assert fw.layout.title.text == "b" and list(fw.data[0].y) == [3, 4]
    assert fw.layout.template.to_plotly_json() == go.Figure().layout.template.to_plotly_json()
    _replace_in_place(fw, go.Figure(go.Scatter(x=[0, 1], y=[3, 4]), layout=dict(template="plotly_dark")))
    assert fw.layout.template.layout.paper_bgcolor == pio.templates["plotly_dark"].layout.paper_bgcolor


def test_curves_mark_divergence(clouds):
    ok = fit(MLP(2, [8], 3, seed=0), clouds, "sgd", 30, lr=0.1, progress=False)
    bad = fit(MLP(2, [8], 3, seed=0), clouds, "sgd", 30, lr=500.0, progress=False)
    fig = plots.curves([ok, bad], "train_loss", labels=["η=0.1", "η=500"], log_y=True)
    names = [t.name for t in fig.data]
    assert names[0] == "η=0.1" and any("diverged at step" in n for n in names)
    assert fig.layout.xaxis.title.text == "step" and fig.layout.title.text
    fig2 = plots.training_curves([ok, bad], labels=["a", "b"])
    assert any("diverged" in (a.text or "") for a in fig2.layout.annotations)
    with pytest.raises(ValueError, match="metric='nope'"):
        plots.curves(ok, "nope")


def test_landscape_figure_labels_minima_and_end():
    land = landscapes.sharp_and_flat()
    t = trajectory(land, (-0.9, 0.4), lr=0.11)
    fig = plots.landscape_figure(land, [t], labels=["GD"])
    texts = [a.text for a in fig.layout.annotations]
    assert any("λ_max=20" in s for s in texts) and any("λ_max=0.5" in s for s in texts)
    assert fig.data[-1].name == "GD: ends in flat"
    assert fig.layout.xaxis.title.text == "w₁"


def test_sharpness_accuracy_figure_draws_one_curve_and_one_bar_per_run():
    curves = {"γ = 0.1": ([0, 100, 200], [0.5, 6.0, 8.0]), "SGD": ([0, 100], [0.5, 4.0])}
    fig = plots.sharpness_accuracy_figure(curves, {"γ = 0.1": 0.47, "SGD": 0.48}, {"γ = 0.1": 8.1, "SGD": 4.2})
    lines = [t for t in fig.data if t.type == "scatter"]
    bars = [t for t in fig.data if t.type == "bar"]
    assert [t.name for t in lines] == ["γ = 0.1", "SGD"] and list(lines[0].y) == [0.5, 6.0, 8.0]
    assert [list(b.x) for b in bars] == [["γ = 0.1"], ["SGD"]] and "λ_max 8.1" in bars[0].text[0]
    assert fig.layout.yaxis.type == "log" and fig.layout.xaxis.title.text == "step"
    with pytest.raises(ValueError, match="one entry per curve"):
        plots.sharpness_accuracy_figure(curves, {"SGD": 0.5})


def test_explorer_update_changes_figure_and_status():
    ex = widgets.landscape_explorer()
    box = ex.widget  # builds the FigureWidget
    before = np.array(ex.fig_widget.data[2].x)
    fig = ex.update(lr=0.15)
    after = np.array(ex.fig_widget.data[2].x)
    assert isinstance(fig, go.Figure) and not np.array_equal(before, after)
    assert "flat minimum" in ex.status.value and ex.controls["lr"].value == pytest.approx(0.15)
    ex.update(lr=0.05)
    assert "sharp minimum" in ex.status.value
    ex.update(lr=4.5)
    assert "diverged" in ex.status.value and "diverged" in ex.fig_widget.layout.title.text
    assert box.children[-1] is ex.fig_widget


def test_slider_callback_updates_figure_like_a_student_would():
    ex = widgets.landscape_explorer()
    _ = ex.widget
    ex.controls["start_x"].value = 2.0  # what moving the slider does
    ex.controls["start_y"].value = 1.0
    assert np.isclose(ex.fig_widget.data[2].x[0], 2.0) and np.isclose(ex.fig_widget.data[2].y[0], 1.0)


def test_update_computes_the_figure_once_per_call():
    import ipywidgets as W

    calls = []

    def figure_fn(a, b):
        calls.append((a, b))
        return go.Figure(go.Scatter(x=[a], y=[b])), f"a={a}"

    ex = widgets.Interactive({"a": W.FloatSlider(value=1.0), "b": W.FloatSlider(value=2.0)}, figure_fn)
    calls.clear()
    ex.update(a=3.0, b=4.0)                 # two controls set programmatically: one recomputation
    assert calls == [(3.0, 4.0)]
    ex.controls["a"].value = 5.0            # a student's move: the callback recomputes once
    assert calls == [(3.0, 4.0), (5.0, 4.0)]


def test_update_rejects_unknown_control():
    with pytest.raises(ValueError, match="unknown control"):
        widgets.landscape_explorer().update(momentum=0.5)


def test_plain_function_without_widget():
    fig, verdict = widgets.landscape_gd_figure(lr=0.12)
    assert "η = 0.12 > 2/λ_max(sharp) = 0.1" in verdict and "flat" in verdict


@pytest.fixture(scope="module")
def tiny_relu():
    import torch

    from flatlab.data import gaussian_clouds

    ds = gaussian_clouds(n_train=60, seed=0)
    model = MLP(2, [8, 8], 3, seed=0).double()
    return model, torch.nn.functional.cross_entropy, (ds.x_train.double(), ds.y_train)


def test_rescaling_explorer_selects_precomputed_values(tiny_relu):
    table = widgets.rescaling_table(*tiny_relu, alphas=[0.1, 1.0, 10.0])
    assert table.max_output_change.max() < 1e-10
    assert table.lambda_max.iloc[2] > 10 * table.lambda_max.iloc[1]
    exact = table.adaptive_exact / table.adaptive_exact.iloc[1]
    np.testing.assert_allclose(exact, 1.0, rtol=1e-8)                  # T = |w|: exactly invariant
    assert abs(table.adaptive.iloc[0] / table.adaptive.iloc[1] - 1) > 0.01  # ASAM's T = |w| + η: not
    ex = widgets.rescaling_explorer(table)
    _ = ex.widget
    fig = ex.update(alpha=10.0)
    assert "α = 10" in fig.layout.title.text and "×" in ex.status.value
    markers = [t for t in ex.fig_widget.data if t.showlegend is False]
    assert markers[0].x[0] == 10.0 and markers[0].y[0] > 10  # λ_max ratio at the marker


def test_slice_explorer_switches_surfaces(tiny_relu):
    from flatlab.models import rescale_layers

    model, loss_fn, data = tiny_relu
    surfaces = widgets.slice_surfaces({"a": model, "a ×10": rescale_layers(model, 10.0)}, loss_fn, data, n=21)
    ex = widgets.slice_explorer(surfaces)
    _ = ex.widget
    z_norm = np.array(ex.fig_widget.data[0].z)
    ex.update(model="a ×10")
    np.testing.assert_allclose(np.array(ex.fig_widget.data[0].z), z_norm, atol=1e-8)  # filter normalization: same
    ex.update(normalized=False)
    assert not np.allclose(np.array(ex.fig_widget.data[0].z), z_norm)
    ex.update(resolution=11)
    assert np.array(ex.fig_widget.data[0].z).shape == (11, 11) and "11×11" in ex.status.value


def test_offline_figure_steps_through_the_first_control_without_a_kernel(monkeypatch):
    import ipywidgets as W

    def figure_fn(lr, kind):
        background = go.Scatter(x=[0, 1], y=[0, 1], name="reference")        # equal in every panel
        return go.Figure([background, go.Scatter(x=[0, 1], y=[lr, 2 * lr], name=kind)],
                         layout=dict(title=dict(text=f"lr={lr}"))), f"status {lr}"

    ex = widgets.Interactive({"lr": W.FloatSlider(value=0.3, min=0.0, max=1.0, step=0.1),
                              "kind": W.Dropdown(options=["a", "b"], value="a")}, figure_fn)
    fig = ex.offline_figure(max_values=6)
    steps = fig.layout.sliders[0].steps
    values = [0.0, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0]                        # the grid plus the current value
    assert [s.label for s in steps] == [f"{v:.3g}" for v in values]
    assert len(fig.data) == 1 + len(values)                               # the shared trace is stored once
    active = fig.layout.sliders[0].active
    assert values[active] == 0.3 and "lr=0.3" in fig.layout.title.text and "status 0.3" in fig.layout.title.text
    visible = [t.visible for t in fig.data]
    assert visible[0] is True and sum(v is True for v in visible) == 2
    for i, s in enumerate(steps):                                         # each step shows its own panel
        shown = [j for j, v in enumerate(s.args[0]["visible"]) if v]
        assert shown == [0, 1 + i] and list(fig.data[1 + i].y) == [values[i], 2 * values[i]]
    by_kind = ex.offline_figure("kind")
    assert [s.label for s in by_kind.layout.sliders[0].steps] == ["a", "b"]
    with pytest.raises(ValueError, match="control='nope'"):
        ex.offline_figure("nope")
    # in the book the displayed widget carries this figure as HTML beside the widget view
    bundle = ex.widget._repr_mimebundle_()
    assert "text/html" not in bundle
    monkeypatch.setenv("FLATLAB_OFFLINE_FIGURES", "1")
    bundle = ex.widget._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "Plotly.newPlot" in bundle["text/html"]
    assert '"sliders"' in bundle["text/html"]
