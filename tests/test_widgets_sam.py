"""Chapter 02's widgets and figures, driven through .update and checked on the figure data."""
import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from flatlab.landscapes import sharp_and_flat
from flatlab.optim import MFVI, SAM, MixSAM, VariationalSAM, calibration
from flatlab.widgets import sam as samw

LAND = sharp_and_flat()


def test_make_2d_optimizer_uses_flatlab_classes():
    w = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    kinds = {m: type(samw.make_2d_optimizer(m, w, 0.1)) for m in samw.METHODS}
    assert kinds == {"sgd": torch.optim.SGD, "sam": SAM, "asam": SAM, "mfvi": MFVI, "mixsam": MixSAM,
                     "vsam": VariationalSAM}
    with pytest.raises(ValueError, match="method='adam' is unknown"):
        samw.make_2d_optimizer("adam", w, 0.1)


def test_small_step_sgd_stays_sharp_while_sam_and_mfvi_escape():
    start = samw.PIT_STARTS[0]
    sgd = samw.landscape_run(LAND, start, "sgd", lr=0.08)
    assert sgd.basin == "sharp" and sgd.points.shape == (151, 2) and np.allclose(sgd.points[0], start)
    assert samw.landscape_run(LAND, start, "sam", lr=0.08, rho=0.5).basin == "flat"
    assert samw.landscape_run(LAND, start, "sam", lr=0.08, rho=0.1).basin == "sharp"
    assert samw.landscape_run(LAND, start, "mfvi", lr=0.08, std=0.3, seed=1).basin == "flat"
    big = samw.landscape_run(LAND, start, "sgd", lr=5.0, steps=300)
    assert big.diverged and big.basin is None


def test_landscape_run_is_deterministic_and_validates():
    a = samw.landscape_run(LAND, (-1.1, 0.7), "mixsam", rho=0.3, std=0.2, mix=0.5, seed=3)
    b = samw.landscape_run(LAND, (-1.1, 0.7), "mixsam", rho=0.3, std=0.2, mix=0.5, seed=3)
    assert np.array_equal(a.points, b.points)
    with pytest.raises(ValueError, match="start"):
        samw.landscape_run(LAND, (0.0, 0.0, 0.0), "sgd")
    with pytest.raises(ValueError, match="steps"):
        samw.landscape_run(LAND, (0.0, 0.0), "sgd", steps=0)


def test_basin_table_and_figure():
    table = samw.basin_table(LAND, starts=samw.PIT_STARTS[:2], rhos=(0.1, 1.0), stds=(0.3,), seeds=(0,))
    assert set(table.method) == {"SGD", "SAM", "MFVI, σ fixed", "MFVI, σ learned"}
    assert (table.query("method == 'SGD'").basin == "sharp").all()
    assert (table.query("method == 'SAM' and value == 1.0").basin == "flat").all()
    fig = samw.basin_figure(table)
    names = [t.name for t in fig.data]
    assert any(n.startswith("SAM") for n in names) and any(n.startswith("MFVI, σ fixed") for n in names)
    assert any("SGD" in (a.text or "") for a in fig.layout.annotations)
    sam_trace = next(t for t in fig.data if t.name.startswith("SAM"))
    assert list(sam_trace.y) == [0.0, 1.0]


def test_perturbation_figure_puts_sam_on_the_rho_circle():
    fig = samw.perturbation_figure(LAND, w=(-0.75, 0.35), rho=0.4, std=0.2, n_samples=10, seed=0)
    sam_trace = next(t for t in fig.data if t.name.startswith("SAM's point"))
    (x0, x1), (y0, y1) = sam_trace.x, sam_trace.y
    assert np.hypot(x1 - x0, y1 - y0) == pytest.approx(0.4)
    samples = next(t for t in fig.data if t.name.startswith("MFVI samples"))
    assert len(samples.x) == 10 and "ρ=0.4" in fig.layout.title.text


def test_explorer_updates_figure_and_status():
    ex = samw.sam_mfvi_explorer(LAND, rhos=(0.1, 0.5, 1.0), stds=(0.05, 0.3), mixes=(0.0, 0.5, 1.0), rho=0.5,
                                std=0.3, mix=0.5)
    box = ex.widget
    assert box.children[-1] is ex.fig_widget
    assert "SAM → flat" in ex.status.value and "SGD → sharp" in ex.status.value
    fig = ex.update(rho=0.1)
    assert isinstance(fig, go.Figure) and "SAM → sharp" in ex.status.value
    names = [t.name for t in ex.fig_widget.data]
    assert "SAM ρ=0.1" in names and any(n.startswith("MixSAM m=0.5") for n in names)
    ex.update(rho=1.0)
    assert "SAM → flat" in ex.status.value and "SAM ρ=1" in [t.name for t in ex.figure.data]


def test_explorer_mix_endpoints_follow_mfvi_and_sam():
    ex = samw.sam_mfvi_explorer(LAND, rhos=(0.5,), stds=(0.3,), mixes=(0.0, 1.0), rho=0.5, std=0.3, mix=1.0)

    def trace(fig, prefix):
        t = next(t for t in fig.data if t.name.startswith(prefix) and ":" not in t.name)
        return np.column_stack([t.x, t.y])

    fig = ex.figure
    assert np.array_equal(trace(fig, "MixSAM"), trace(fig, "MFVI"))  # m = 1 is MFVI, same noise
    fig = ex.update(mix=0.0)
    # m = 0 is SAM up to the prior's negligible weight decay (λ₀/N = 1e-6)
    assert np.allclose(trace(fig, "MixSAM"), trace(fig, "SAM"), atol=1e-4)
    with pytest.raises(ValueError, match="unknown control"):
        ex.update(temperature=1.0)


def test_reliability_and_comparison_figures():
    import pandas as pd

    p = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    y = torch.tensor([0, 1, 0, 1])
    fig = samw.reliability_figure({"model A": calibration(p, y, n_bins=5)})
    assert fig.data[0].name == "perfect calibration" and fig.data[1].name == "model A: ECE 0.350"
    assert fig.layout.xaxis.title.text.startswith("confidence")
    table = pd.DataFrame({"test_acc": [0.5, 0.6], "lambda_max": [3.0, 1.5], "ece": [0.3, 0.2]}, index=["SGD", "SAM"])
    fig = samw.comparison_figure(table)
    assert len(fig.data) == 3 and list(fig.data[1].y) == [3.0, 1.5] and list(fig.data[0].x) == ["SGD", "SAM"]
