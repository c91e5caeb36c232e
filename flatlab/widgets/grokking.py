"""Chapter 05 (grokking): figures and widgets. The sweep is computed once (``flatlab.grokking.phase_sweep``,
cached on disk); the sliders only select a precomputed run, so every update is instant.

Figure builders are plain functions returning plotly figures (usable without a kernel):
``accuracy_figure``, ``weight_norm_figure``, ``phase_diagram_figure``, ``sweep_figure``, ``fourier_figure``, ``collapse_figure``,
``corrupted_figure``, ``ipr_figure``, ``pruning_figure``. ``sweep_explorer`` wires two sliders to
``sweep_figure``.
"""
from __future__ import annotations

from typing import Mapping

import ipywidgets as W
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..grokking import PHASES, steps_to
from ..plots import PALETTE, color
from .base import Interactive, control_style, require_items, require_rows

PHASE_COLORS = {"comprehension": PALETTE[2], "grokking": PALETTE[0], "memorization": PALETTE[1],
                "confusion": "#999999"}


def _positive_steps(h: pd.DataFrame) -> pd.DataFrame:
    return h[h["step"] > 0]


def _step_marker(fig: go.Figure, step: int, text: str, c: str, y_range=(0.0, 1.03), **where) -> None:
    """A dotted vertical line at ``step`` drawn as a trace (shapes' annotations misplace on log axes)."""
    fig.add_scatter(x=[step, step], y=list(y_range), mode="lines", line=dict(color=c, dash="dot", width=1.5),
                    name=f"{text} at step {step}", hoverinfo="name", **where)


def _add_accuracy_traces(fig: go.Figure, h: pd.DataFrame, label: str, i: int, marks: bool, **where) -> None:
    rows = _positive_steps(h)
    for split, dash in (("train", "solid"), ("test", "dash")):
        fig.add_scatter(x=rows["step"], y=rows[f"{split}_acc"], mode="lines", name=f"{label} ({split})",
                        line=dict(color=color(i), dash=dash), legendgroup=label, **where)
    if marks:
        for column, thr, text in (("train_acc", 1.0, "100 % train"), ("test_acc", 0.95, "95 % test")):
            s = steps_to(h, column, thr)
            if s:
                _step_marker(fig, s, text, color(i), legendgroup=label, **where)


def accuracy_figure(histories: Mapping[str, pd.DataFrame], title: str = "grokking: train vs test accuracy",
                    marks: bool = True) -> go.Figure:
    """Train (solid) and test (dashed) accuracy against the step on a log axis, one colour per run; dotted
    lines mark the steps where train accuracy reaches 100 % and test accuracy 95 %."""
    if isinstance(histories, pd.DataFrame):
        histories = {"run": histories}
    if not histories:
        raise ValueError("histories must name at least one run")
    for label, h in histories.items():
        require_rows(f"histories[{label!r}]", h, ("step", "train_acc", "test_acc"), "a run's training history")
    fig = go.Figure()
    for i, (label, h) in enumerate(histories.items()):
        _add_accuracy_traces(fig, h, label, i, marks)
    fig.update_xaxes(type="log", title="step (log scale)")
    fig.update_yaxes(title="accuracy", range=[0, 1.03])
    fig.update_layout(title=title, legend=dict(orientation="h", y=-0.22), height=460)
    return fig


def weight_norm_figure(histories: Mapping[str, pd.DataFrame], title: str | None = None) -> go.Figure:
    """‖w‖₂ of all parameters against the step (log axis), with each run's 95 %-test step marked."""
    if not histories:
        raise ValueError("histories must name at least one run")
    for label, h in histories.items():
        require_rows(f"histories[{label!r}]", h, ("step", "weight_norm", "test_acc"), "a run's training history")
    fig = go.Figure()
    top = max(float(h["weight_norm"].max()) for h in histories.values())
    for i, (label, h) in enumerate(histories.items()):
        rows = _positive_steps(h)
        fig.add_scatter(x=rows["step"], y=rows["weight_norm"], mode="lines", name=label, line=dict(color=color(i)))
        s = steps_to(h, "test_acc", 0.95)
        if s:
            _step_marker(fig, s, f"{label}: 95 % test", color(i), y_range=(0.0, 1.05 * top))
    fig.update_xaxes(type="log", title="step (log scale)")
    fig.update_yaxes(title="‖w‖₂ (all parameters)", rangemode="tozero")
    fig.update_layout(title=title or "the weight norm falls while the network generalizes (Omnigrok)",
                      legend=dict(orientation="h", y=-0.22), height=430)
    return fig


def _cell_text(row) -> str:
    if row["phase"] in ("grokking", "comprehension"):
        return f"{row['phase']}<br>95 % @ {int(row['step_test'])}<br>({row['delay']:.0f}× later)"
    return row["phase"]


def _phase_heatmap(table: pd.DataFrame):
    wds = sorted(table.weight_decay.unique())
    fracs = sorted(table.train_fraction.unique())
    code = {p: i for i, p in enumerate(PHASES)}
    z = np.full((len(wds), len(fracs)), np.nan)
    text = [["" for _ in fracs] for _ in wds]
    for _, row in table.iterrows():
        i, j = wds.index(row.weight_decay), fracs.index(row.train_fraction)
        z[i, j] = code[row.phase]
        text[i][j] = _cell_text(row)
    n = len(PHASES)
    scale = []
    for k, p in enumerate(PHASES):
        scale += [[k / n, PHASE_COLORS[p]], [(k + 1) / n, PHASE_COLORS[p]]]
    xs = [f"{f:g}" for f in fracs]
    ys = [f"{w:g}" for w in wds]
    heat = go.Heatmap(x=xs, y=ys, z=z, text=text, texttemplate="%{text}", colorscale=scale, zmin=-0.5,
                      zmax=n - 0.5, showscale=False, hovertemplate="fraction %{x}, wd %{y}: %{text}<extra></extra>",
                      xgap=2, ygap=2, name="phase")
    legend = [go.Scatter(x=[None], y=[None], mode="markers", marker=dict(size=12, color=PHASE_COLORS[p], symbol="square"),
                         name=p, legendgroup="phases") for p in PHASES if p in set(table.phase)]
    return heat, legend, xs, ys


def phase_diagram_figure(table: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Train fraction × weight decay, each cell coloured by its phase (memorization / grokking /
    comprehension / confusion) with the step of 95 % test accuracy and the delay over fitting."""
    _check_table(table)
    heat, legend, _, _ = _phase_heatmap(table)
    fig = go.Figure([heat, *legend])
    fig.update_xaxes(title="train fraction (share of all p² pairs)", type="category")
    fig.update_yaxes(title="weight decay λ (AdamW)", type="category")
    fig.update_layout(title=title or "phase diagram: where the network memorizes, groks or comprehends",
                      legend=dict(orientation="h", y=-0.2))
    return fig


def _check_table(table) -> None:
    need = {"weight_decay", "train_fraction", "phase", "step_test", "delay"}
    if not isinstance(table, pd.DataFrame) or not need <= set(table.columns):
        raise ValueError(f"table must be a DataFrame from flatlab.grokking.phase_sweep with columns {sorted(need)}")
    if table.empty:
        raise ValueError("table is empty: expected the rows of flatlab.grokking.phase_sweep, one per run")


def sweep_figure(table: pd.DataFrame, histories: Mapping, weight_decay: float, train_fraction: float,
                 reference: tuple[float, float] | None = None) -> tuple[go.Figure, str]:
    """Left: the phase diagram with the selected cell outlined. Right: that run's accuracy curves (and the
    ``reference`` cell's, thin and grey, for comparison). Returns (figure, status line)."""
    _check_table(table)
    require_items("histories", histories, "the histories of flatlab.grokking.phase_sweep, keyed (weight_decay, train_fraction)")
    key = (float(weight_decay), float(train_fraction))
    if key not in histories:
        raise ValueError(f"(weight_decay, train_fraction)={key} was not swept; available: {sorted(histories)}")
    h = histories[key]
    row = table[(table.weight_decay == key[0]) & (table.train_fraction == key[1])].iloc[0]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.42, 0.58], horizontal_spacing=0.12,
                        subplot_titles=("phase diagram (sweep)", f"λ = {key[0]:g}, train fraction {key[1]:g}"))
    heat, legend, xs, ys = _phase_heatmap(table)
    fig.add_trace(heat, row=1, col=1)
    for t in legend:
        fig.add_trace(t, row=1, col=1)
    fig.add_scatter(x=[f"{key[1]:g}"], y=[f"{key[0]:g}"], mode="markers", name="selected",
                    marker=dict(symbol="square-open", size=46, color="black", line=dict(width=3)),
                    showlegend=False, row=1, col=1)
    if reference is not None and tuple(map(float, reference)) in histories and tuple(map(float, reference)) != key:
        ref = _positive_steps(histories[tuple(map(float, reference))])
        fig.add_scatter(x=ref["step"], y=ref["test_acc"], mode="lines", line=dict(color="#999999", width=1),
                        name=f"test, λ={reference[0]:g}, fraction {reference[1]:g} (reference)", row=1, col=2)
    _add_accuracy_traces(fig, h, f"AdamW λ={key[0]:g}, fraction {key[1]:g}", 0, True, row=1, col=2)
    fig.update_xaxes(type="category", title_text="train fraction", row=1, col=1)
    fig.update_yaxes(type="category", title_text="weight decay λ", row=1, col=1)
    fig.update_xaxes(type="log", title_text="step (log scale)", row=1, col=2)
    fig.update_yaxes(range=[0, 1.03], title_text="accuracy", row=1, col=2)
    fig.update_layout(title=f"{row.phase}: weight decay λ = {key[0]:g}, train fraction = {key[1]:g}",
                      legend=dict(orientation="h", y=-0.25), height=480)
    st, sv = row.step_train, row.step_test
    fit_txt = "training set never fitted" if pd.isna(st) else f"100 % train at step {int(st)}"
    test_txt = (f"95 % test at step {int(sv)} ({row.delay:.1f}× later)" if not pd.isna(sv)
                else f"test accuracy {row.final_test_acc:.1%} after {int(h.step.iloc[-1])} steps")
    return fig, f"λ = {key[0]:g}, fraction {key[1]:g}: {row.phase} — {fit_txt}, {test_txt}"


def sweep_explorer(table: pd.DataFrame, histories: Mapping, reference: tuple[float, float] | None = None) -> Interactive:
    """Sliders for weight decay and train fraction over a precomputed sweep (each update only selects)."""
    _check_table(table)
    require_items("histories", histories, "the histories of flatlab.grokking.phase_sweep, keyed (weight_decay, train_fraction)")
    wds = sorted(float(w) for w in table.weight_decay.unique())
    fracs = sorted(float(f) for f in table.train_fraction.unique())
    ref = tuple(map(float, reference)) if reference is not None else None
    start = ref if ref in histories else (wds[len(wds) // 2], fracs[len(fracs) // 2])
    style = control_style("360px")
    controls = {
        "weight_decay": W.SelectionSlider(options=[(f"{w:g}", w) for w in wds], value=start[0],
                                          description="weight decay λ", **style),
        "train_fraction": W.SelectionSlider(options=[(f"{f:g}", f) for f in fracs], value=start[1],
                                            description="train fraction", **style),
    }
    return Interactive(controls, lambda weight_decay, train_fraction: sweep_figure(
        table, histories, weight_decay, train_fraction, ref), title="Weight decay × data: memorize, grok or comprehend")


def fourier_figure(spectra: Mapping[str, "np.ndarray"], k: int = 10, title: str | None = None) -> go.Figure:
    """Share of the embedding's non-DC Fourier energy at each frequency k = 1 … ⌊p/2⌋, one bar series per
    snapshot; the legend gives the share held by the top ``k`` frequencies."""
    if not spectra:
        raise ValueError("spectra must name at least one spectrum")
    for label, energy in spectra.items():
        n = np.atleast_1d(np.asarray(energy, dtype=float)).size
        if n < 2:
            raise ValueError(f"spectra[{label!r}] has {n} entries: expected the energy at frequencies "
                             "0 (DC) … ⌊p/2⌋, at least two")
    fig = go.Figure()
    for i, (label, energy) in enumerate(spectra.items()):
        e = np.asarray(energy, dtype=float)[1:]
        share = e / e.sum()
        frac = _topk(e, k)
        fig.add_bar(x=np.arange(1, len(e) + 1), y=share, name=f"{label}: top {k} hold {frac:.0%}",
                    marker_color=color(i))
    fig.add_hline(y=1 / (len(share)), line=dict(color="grey", dash="dot"), annotation_text="uniform (random)")
    fig.update_layout(title=title or "Fourier spectrum of the embeddings over the residues a", barmode="group",
                      xaxis_title="frequency k (cos/sin(2πka/p))", yaxis_title="share of non-DC energy",
                      legend=dict(x=0.99, xanchor="right", y=0.99))
    return fig


def _topk(e: np.ndarray, k: int) -> float:
    return float(np.sort(e)[::-1][:k].sum() / e.sum())


def collapse_figure(histories: Mapping[str, pd.DataFrame], title: str | None = None) -> go.Figure:
    """Left: fraction of training examples whose float loss is exactly 0 (softmax collapse) and test accuracy.
    Right: the largest |logit| (log scale)."""
    if not histories:
        raise ValueError("histories must name at least one run")
    for label, h in histories.items():
        require_rows(f"histories[{label!r}]", h, ("step", "collapsed", "test_acc", "max_logit"), "a run's training history")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("softmax collapse and test accuracy", "largest |logit|"))
    for i, (label, h) in enumerate(histories.items()):
        rows = _positive_steps(h)
        fig.add_scatter(x=rows.step, y=rows.collapsed, mode="lines", line=dict(color=color(i)),
                        name=f"{label}: share with loss exactly 0", legendgroup=label, row=1, col=1)
        fig.add_scatter(x=rows.step, y=rows.test_acc, mode="lines", line=dict(color=color(i), dash="dash"),
                        name=f"{label}: test accuracy", legendgroup=label, row=1, col=1)
        fig.add_scatter(x=rows.step, y=rows.max_logit, mode="lines", line=dict(color=color(i)), showlegend=False,
                        legendgroup=label, row=1, col=2)
    fig.add_hline(y=0.5, line=dict(color="grey", dash="dot"), annotation_text="50 %", row=1, col=1)
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="fraction", range=[0, 1.03], row=1, col=1)
    fig.update_yaxes(title_text="max |logit|", type="log", row=1, col=2)
    fig.update_layout(title=title or "without weight decay the logits grow until float32 softmax collapses",
                      legend=dict(orientation="h", y=-0.25), height=430)
    return fig


def nlm_figure(histories: Mapping[str, pd.DataFrame], title: str | None = None) -> go.Figure:
    """cos(−∇L, θ) — how much of the raw gradient points along the weights (the naive loss minimization
    direction) — against the step, one line per run, with a dotted mark where each run fitted the training set."""
    if not histories:
        raise ValueError("histories must name at least one run")
    for label, h in histories.items():
        require_rows(f"histories[{label!r}]", h, ("step", "nlm_cos", "train_acc"),
                     "a run's training history with track_nlm=True")
    fig = go.Figure()
    for i, (label, h) in enumerate(histories.items()):
        rows = _positive_steps(h)
        fig.add_scatter(x=rows.step, y=rows.nlm_cos, mode="lines", line=dict(color=color(i)), name=label)
        fitted = rows[rows.train_acc >= 1.0]
        if len(fitted):
            fig.add_vline(x=float(fitted.step.iloc[0]), line=dict(color=color(i), dash="dot", width=1))
    fig.update_xaxes(title_text="step (dotted: 100 % training accuracy)", type="log")
    fig.update_yaxes(title_text="cos(−∇L, θ)", range=[-0.1, 1.0])
    fig.update_layout(title=title or "after the training set is fitted, the gradient points along the weights",
                      legend=dict(orientation="h", y=-0.25), height=400)
    return fig


def corrupted_figure(histories: Mapping[str, pd.DataFrame], title: str | None = None) -> go.Figure:
    """On the corrupted training examples: share predicted with their (wrong) training label — memorized —
    and with their true label; plus test accuracy."""
    if not histories:
        raise ValueError("histories must name at least one run")
    fig = go.Figure()
    for i, (label, h) in enumerate(histories.items()):
        if "corrupted_fit" not in h.columns:
            raise ValueError(f"run {label!r} has no corrupted labels (label_noise = 0)")
        require_rows(f"histories[{label!r}]", h, ("step", "corrupted_true", "test_acc"), "a run's training history")
        rows = _positive_steps(h)
        for col, dash, what in (("corrupted_fit", "solid", "corrupted: memorized wrong label"),
                                ("corrupted_true", "dash", "corrupted: true label"),
                                ("test_acc", "dot", "test accuracy")):
            fig.add_scatter(x=rows.step, y=rows[col], mode="lines", line=dict(color=color(i), dash=dash),
                            name=f"{label}: {what}", legendgroup=label)
    fig.update_xaxes(type="log", title="step (log scale)")
    fig.update_yaxes(title="fraction", range=[0, 1.03])
    fig.update_layout(title=title or "corrupted labels: memorize them, or predict the true rule?",
                      legend=dict(orientation="h", y=-0.25), height=450)
    return fig


def ipr_figure(iprs: Mapping[str, "np.ndarray"], threshold: float | None = None, n_frequencies: int | None = None,
               title: str | None = None) -> go.Figure:
    """Histogram of the neurons' inverse participation ratios per run; a line at the split threshold and,
    if given, at 1/n (a flat spectrum over n frequencies)."""
    if not iprs:
        raise ValueError("iprs must name at least one run")
    for label, values in iprs.items():
        require_items(f"iprs[{label!r}]", np.atleast_1d(np.asarray(values, dtype=float)), "one IPR per neuron")
    fig = go.Figure()
    for i, (label, values) in enumerate(iprs.items()):
        v = np.asarray(values, dtype=float)
        fig.add_histogram(x=v, name=f"{label} ({len(v)} neurons)", marker_color=color(i), opacity=0.65,
                          xbins=dict(start=0, end=1.0, size=0.025))
    if threshold is not None:
        fig.add_vline(x=threshold, line=dict(color="black", dash="dash"), annotation_text=f"split {threshold:.2f}")
    if n_frequencies:
        fig.add_vline(x=1 / n_frequencies, line=dict(color="grey", dash="dot"),
                      annotation_text=f"flat: 1/{n_frequencies}", annotation_position="top left")
    fig.update_layout(title=title or "IPR of each hidden neuron's Fourier spectrum", barmode="overlay",
                      xaxis_title="IPR = Σ P_k² / (Σ P_k)²  (1: one frequency)", yaxis_title="neurons")
    return fig


def gain_figure(points: Mapping[str, tuple], title: str | None = None) -> go.Figure:
    """One panel per entry ``label: (ipr, gain, gain_name)``: each hidden neuron's gain against its IPR."""
    require_items("points", points, "{label: (ipr per neuron, gain per neuron, name of the gain)}")
    fig = make_subplots(rows=1, cols=len(points), subplot_titles=list(points), shared_yaxes=False)
    for i, (label, entry) in enumerate(points.items()):
        if not (isinstance(entry, tuple) and len(entry) == 3):
            raise ValueError(f"points[{label!r}] must be (ipr, gain, gain_name), got {type(entry).__name__}")
        ipr, gain, name = entry
        ipr, gain = np.asarray(ipr, dtype=float).reshape(-1), np.asarray(gain, dtype=float).reshape(-1)
        require_items(f"points[{label!r}] ipr", ipr, "one IPR per neuron")
        if ipr.shape != gain.shape:
            raise ValueError(f"points[{label!r}]: {len(ipr)} IPRs but {len(gain)} gains (one each per neuron)")
        fig.add_scatter(x=ipr, y=gain, mode="markers", marker=dict(color=color(i), size=6, opacity=0.7),
                        name=label, showlegend=False, row=1, col=i + 1,
                        hovertemplate="IPR %{x:.2f}<br>" + name + " %{y:.3g}<extra></extra>")
        fig.update_xaxes(title_text="IPR of the neuron", range=[0, 1], row=1, col=i + 1)
        fig.update_yaxes(title_text=name, row=1, col=i + 1)
    fig.update_layout(title=title or "Does a neuron's gain follow its IPR? (one point per hidden neuron)")
    return fig


def pruning_figure(report: Mapping[str, float], title: str | None = None) -> go.Figure:
    """Accuracies before pruning, after pruning the low-IPR neurons, and after pruning as many random ones."""
    keys = [k for k in ("test_acc", "corrupted_fit", "corrupted_true") if f"{k}_before" in report]
    if not keys:
        raise ValueError("report must come from flatlab.grokking.pruning_report")
    names = {"test_acc": "test accuracy", "corrupted_fit": "corrupted: memorized label",
             "corrupted_true": "corrupted: true label"}
    fig = go.Figure()
    n = int(report.get("n_low_ipr", 0))
    for i, (suffix, label) in enumerate((("before", "trained network"),
                                         ("low_ipr_pruned", f"{n} low-IPR neurons pruned"),
                                         ("random_pruned", f"{n} random neurons pruned (mean)"))):
        fig.add_bar(x=[names[k] for k in keys], y=[report[f"{k}_{suffix}"] for k in keys], name=label,
                    marker_color=color(i), text=[f"{report[f'{k}_{suffix}']:.2f}" for k in keys], textposition="outside")
    fig.update_layout(title=title or "pruning the memorizing (low-IPR) neurons vs random neurons", barmode="group",
                      yaxis=dict(title="accuracy", range=[0, 1.1]))
    return fig
