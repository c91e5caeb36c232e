"""Chapter 05 widgets and figures: drive them through .update and assert on the figure data."""
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch

from flatlab import grokking as gk
from flatlab.widgets.grokking import (accuracy_figure, collapse_figure, corrupted_figure, fourier_figure, ipr_figure,
                                      phase_diagram_figure, pruning_figure, sweep_explorer, sweep_figure,
                                      weight_norm_figure)


def _history(t_train, t_test, steps=400, **extra):
    s = np.arange(0, steps + 1, 10)
    train = np.clip(s / max(t_train, 1), 0, 1)
    test = np.where(s >= t_test, 0.97, 0.1) if t_test else np.full(len(s), 0.1)
    h = pd.DataFrame({"step": s, "train_acc": train, "test_acc": test, "train_loss": 1 / (1 + s),
                      "test_loss": 2 - test, "collapsed": np.linspace(0, 0.8, len(s)),
                      "max_logit": np.linspace(1, 900, len(s)), **{k: np.full(len(s), v) for k, v in extra.items()}})
    return h


@pytest.fixture(scope="module")
def sweep():
    histories = {(0.1, 0.3): _history(20, None), (0.1, 0.6): _history(20, None),
                 (1.0, 0.3): _history(20, 300), (1.0, 0.6): _history(30, 60)}
    rows = []
    for (wd, fr), h in histories.items():
        rows.append({"weight_decay": wd, "train_fraction": fr, "phase": gk.classify_phase(h),
                     "step_train": gk.steps_to(h, "train_acc", 1.0), "step_test": gk.steps_to(h, "test_acc", 0.95),
                     "delay": gk.grokking_delay(h), "final_test_acc": float(h.test_acc.iloc[-1])})
    return pd.DataFrame(rows), histories


def test_accuracy_figure_log_axis_and_marks():
    fig = accuracy_figure({"AdamW λ=1": _history(20, 300)})
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis.title.text.startswith("step")
    assert [t.name for t in fig.data] == ["AdamW λ=1 (train)", "AdamW λ=1 (test)", "100 % train at step 20",
                                          "95 % test at step 300"]
    assert min(fig.data[0].x) > 0  # step 0 is left out of the log axis
    assert list(fig.data[3].x) == [300, 300]  # markers are traces in data coordinates (log-axis safe)
    with pytest.raises(ValueError):
        accuracy_figure({})


def test_weight_norm_figure_marks_the_grokking_step():
    h = _history(20, 300, weight_norm=50.0)
    fig = weight_norm_figure({"λ=1": h})
    assert fig.data[0].name == "λ=1" and np.allclose(fig.data[0].y, 50.0)
    assert fig.data[1].name == "λ=1: 95 % test at step 300" and fig.layout.xaxis.type == "log"
    with pytest.raises(ValueError):
        weight_norm_figure({})


def test_phase_diagram_cells(sweep):
    table, _ = sweep
    assert set(table.phase) == {"memorization", "grokking", "comprehension"}
    fig = phase_diagram_figure(table)
    heat = fig.data[0]
    assert isinstance(heat, go.Heatmap) and list(heat.x) == ["0.3", "0.6"] and list(heat.y) == ["0.1", "1"]
    assert heat.text[0][0] == "memorization" and heat.text[1][0].startswith("grokking")
    assert "15× later" in heat.text[1][0]
    assert {t.name for t in fig.data[1:]} == {"memorization", "grokking", "comprehension"}
    with pytest.raises(ValueError, match="phase_sweep"):
        phase_diagram_figure(pd.DataFrame({"x": [1]}))


def test_sweep_explorer_updates_figure_and_status(sweep):
    table, histories = sweep
    ex = sweep_explorer(table, histories, reference=(1.0, 0.3))
    _ = ex.widget
    assert "grokking" in ex.status.value and "95 % test at step 300" in ex.status.value
    fig = ex.update(weight_decay=0.1)
    assert "memorization" in ex.status.value and "memorization" in fig.layout.title.text
    selected = [t for t in fig.data if t.name == "selected"][0]
    assert selected.x == ("0.3",) and selected.y == ("0.1",)
    # the reference run is drawn in grey next to the selected one
    assert any("reference" in (t.name or "") for t in fig.data)
    test = [t for t in fig.data if (t.name or "").endswith("(test)")][0]
    assert np.allclose(test.y, histories[(0.1, 0.3)].test_acc[1:])
    ex.controls["train_fraction"].value = 0.6  # what moving the slider does
    assert "λ = 0.1, fraction 0.6" in ex.status.value
    ex.update(weight_decay=1.0, train_fraction=0.6)
    assert "comprehension" in ex.status.value and ex.fig_widget.layout.title.text.startswith("comprehension")
    with pytest.raises(ValueError, match="was not swept"):
        sweep_figure(table, histories, 3.0, 0.3)


def test_sweep_explorer_on_a_real_tiny_sweep(tmp_path, monkeypatch):
    monkeypatch.setenv("FLATLAB_CACHE", str(tmp_path))
    table, histories = gk.phase_sweep([0.5, 1.0], [0.5, 0.7], gk.GrokConfig(p=11, steps=40, eval_every=10),
                                      cache=False)
    ex = sweep_explorer(table, histories)
    fig = ex.update(weight_decay=1.0, train_fraction=0.7)
    train = [t for t in fig.data if (t.name or "").endswith("(train)")][0]
    assert np.allclose(train.y, histories[(1.0, 0.7)].train_acc[1:])


def test_fourier_figure_bars_and_topk_legend():
    p = 59
    a = torch.arange(p, dtype=torch.float64)[:, None]
    clean = gk.fourier_energy(torch.cos(2 * torch.pi * 4 * a / p + torch.arange(8)[None]))
    noise = gk.fourier_energy(torch.randn(p, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    fig = fourier_figure({"after grokking": clean, "at init": noise}, k=10)
    assert len(fig.data) == 2 and len(fig.data[0].x) == p // 2
    assert fig.data[0].name == "after grokking: top 10 hold 100%"
    assert int(np.argmax(fig.data[0].y)) + 1 == 4 and abs(sum(fig.data[1].y) - 1) < 1e-9
    assert fig.layout.xaxis.title.text.startswith("frequency")


def test_collapse_and_corrupted_figures():
    h = _history(20, None, corrupted_fit=1.0, corrupted_true=0.0)
    fig = collapse_figure({"softmax, float32": h})
    assert fig.data[0].name.endswith("loss exactly 0") and np.allclose(fig.data[0].y, h.collapsed[1:])
    assert fig.layout.yaxis2.type == "log"
    fig2 = corrupted_figure({"λ=1": h})
    assert [t.name for t in fig2.data][:2] == ["λ=1: corrupted: memorized wrong label", "λ=1: corrupted: true label"]
    with pytest.raises(ValueError, match="no corrupted labels"):
        corrupted_figure({"clean": _history(20, 300)})


def test_ipr_and_pruning_figures():
    fig = ipr_figure({"λ=1": np.array([0.05, 0.1, 0.9, 0.95])}, threshold=0.5, n_frequencies=29)
    assert fig.data[0].name == "λ=1 (4 neurons)"
    assert any("split 0.50" == a.text for a in fig.layout.annotations)
    report = {"n_low_ipr": 30, "test_acc_before": 0.93, "test_acc_low_ipr_pruned": 0.9, "test_acc_random_pruned": 0.4,
              "corrupted_fit_before": 1.0, "corrupted_fit_low_ipr_pruned": 0.6, "corrupted_fit_random_pruned": 0.7,
              "corrupted_true_before": 0.0, "corrupted_true_low_ipr_pruned": 0.3, "corrupted_true_random_pruned": 0.0}
    fig2 = pruning_figure(report)
    assert [t.name for t in fig2.data] == ["trained network", "30 low-IPR neurons pruned",
                                           "30 random neurons pruned (mean)"]
    assert fig2.data[2].y[0] == 0.4
    with pytest.raises(ValueError, match="pruning_report"):
        pruning_figure({})
