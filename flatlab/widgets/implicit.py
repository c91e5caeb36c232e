"""Chapter 04 (implicit bias): figure builders and widgets over precomputed results.

The sliders only *select* among results computed once by :func:`flatlab.implicit.diagonal_sweep` and
:func:`flatlab.implicit.factorization_sweep`, so every update is a table look-up plus a plotly figure.
Every figure function is also a plain function for readers without a kernel.

>>> from flatlab.widgets.implicit import diagonal_explorer   # doctest: +SKIP
"""
from __future__ import annotations

import math
from typing import Mapping

import ipywidgets as W
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..plots import PALETTE, color
from .base import Interactive, control_style, require_items, require_rows


def _fmt_alpha(a: float) -> str:
    return f"{a:.0e}".replace("e-0", "e-").replace("e+0", "e") if a < 0.01 or a >= 100 else f"{a:.3g}"


# ------------------------------------------------------------------------------------------------
# 1 · max margin
# ------------------------------------------------------------------------------------------------
def margin_figure(histories: Mapping[str, pd.DataFrame], title: str = "the direction of w converges to the max-margin SVM") -> go.Figure:
    """Angle between w_t and the SVM direction (degrees, log-log) and ‖w_t‖ against the step, one curve per run
    (``histories`` maps a legend label naming the optimizer and η to a :func:`train_logistic` history)."""
    require_items("histories", histories, "a dict mapping a run's label to its train_logistic history")
    for label, h in histories.items():
        if isinstance(h, pd.DataFrame) and len(h) == 0:
            raise ValueError(f"histories[{label!r}] is empty: expected a train_logistic history with at least one row")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("angle to the SVM direction", "‖w_t‖ grows without bound"))
    for i, (label, h) in enumerate(histories.items()):
        if "cos" not in h:
            raise ValueError(f"history {label!r} has no 'cos' column; train with reference=svm.w")
        rows = h[h.step > 0]
        angle = np.degrees(np.arccos(np.clip(rows.cos.to_numpy(), -1, 1)))
        fig.add_scatter(x=rows.step, y=np.maximum(angle, 1e-6), mode="lines+markers", name=label,
                        line=dict(color=color(i)), marker=dict(size=4), legendgroup=label, row=1, col=1)
        fig.add_scatter(x=rows.step, y=rows.norm, mode="lines", name=label, line=dict(color=color(i)),
                        legendgroup=label, showlegend=False, row=1, col=2)
    fig.add_hline(y=math.degrees(math.acos(0.99)), line=dict(color="grey", dash="dot"),
                  annotation_text="cos = 0.99", row=1, col=1)
    fig.update_xaxes(type="log", title_text="step t")
    fig.update_yaxes(type="log", title_text="angle (degrees)", row=1, col=1)
    fig.update_yaxes(type="log", title_text="‖w_t‖", row=1, col=2)
    fig.update_layout(title=title)
    return fig


# ------------------------------------------------------------------------------------------------
# 2 · diagonal linear networks
# ------------------------------------------------------------------------------------------------
def diagonal_figure(sweep, alpha: float) -> tuple[go.Figure, str]:
    """Left: the diagonal net's solution at the selected α against the sparse truth and the min-ℓ2 interpolant.
    Right: relative distance to the sparse truth (= min-ℓ1 here) and to the min-ℓ2 interpolant against α."""
    _check_diagonal(sweep)
    i = sweep.index(alpha)
    row = sweep.table.iloc[i]
    a = sweep.alphas[i]
    w = sweep.weights[i]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.55, 0.45],
                        subplot_titles=(f"solution at α = {_fmt_alpha(a)}", "which interpolant? (all fit the data)"))
    idx = np.arange(len(w))
    fig.add_scatter(x=idx, y=sweep.w_l2, mode="lines", name="min-ℓ2 interpolant (pinv)",
                    line=dict(color=PALETTE[1], width=1), row=1, col=1)
    fig.add_scatter(x=idx, y=sweep.w_star, mode="markers", name="sparse truth w*",
                    marker=dict(symbol="circle-open", size=11, color=PALETTE[3], line=dict(width=2)), row=1, col=1)
    fig.add_bar(x=idx, y=w, name=f"GD, diagonal net α = {_fmt_alpha(a)}", marker_color=PALETTE[0], row=1, col=1)
    t = sweep.table
    fig.add_scatter(x=t.alpha, y=t.error_truth, mode="lines+markers", name="‖w − w*‖/‖w*‖ (sparse truth)",
                    line=dict(color=PALETTE[3]), row=1, col=2)
    fig.add_scatter(x=t.alpha, y=t.error_l2, mode="lines+markers", name="‖w − w_ℓ2‖/‖w_ℓ2‖ (min-ℓ2)",
                    line=dict(color=PALETTE[1]), row=1, col=2)
    fig.add_scatter(x=[a, a], y=[row.error_truth, row.error_l2], mode="markers", name="selected α",
                    marker=dict(size=14, symbol="circle-open", color="black", line=dict(width=2)), row=1, col=2)
    fig.update_xaxes(title_text="coordinate i", row=1, col=1)
    fig.update_yaxes(title_text="w_i", row=1, col=1)
    fig.update_xaxes(type="log", title_text="init scale α", row=1, col=2)
    fig.update_yaxes(type="log", title_text="relative distance", row=1, col=2)
    regime = "rich (sparse)" if row.error_truth < row.error_l2 else "kernel (ridge-like)"
    fig.update_layout(title=f"diagonal linear net w = u⊙u − v⊙v: α = {_fmt_alpha(a)} → {regime} regime",
                      barmode="overlay", legend=dict(orientation="h", y=-0.2))
    status = "diverged" if row.diverged else (f"converged in {int(row.steps):,} steps" if row.converged
                                              else f"not converged after {int(row.steps):,} steps")
    text = (f"α = {_fmt_alpha(a)}: distance to the sparse truth {row.error_truth:.3g}, to the min-ℓ2 interpolant "
            f"{row.error_l2:.3g}; ‖w‖₁ = {row.l1_norm:.3g} (min-ℓ1: {np.abs(sweep.w_l1).sum():.3g}); {status}")
    return fig, text


def _check_diagonal(sweep) -> None:
    require_items("sweep.alphas", getattr(sweep, "alphas", ()),
                  "a DiagonalSweep from flatlab.implicit.diagonal_sweep with at least one init scale α")
    require_rows("sweep.table", sweep.table, ("alpha", "error_truth", "error_l2"), "from flatlab.implicit.diagonal_sweep")


def diagonal_explorer(sweep) -> Interactive:
    """A slider over the precomputed init scales α of a :class:`flatlab.implicit.DiagonalSweep`."""
    _check_diagonal(sweep)
    options = [(_fmt_alpha(a), float(a)) for a in sweep.alphas]
    mid = sweep.alphas[len(sweep.alphas) // 2]
    slider = W.SelectionSlider(options=options, value=float(mid), description="init scale α",
                               **control_style("480px"))
    return Interactive({"alpha": slider}, lambda alpha: diagonal_figure(sweep, alpha),
                       title="Kernel vs rich regime: move the init scale α")


# ------------------------------------------------------------------------------------------------
# 3 · deep matrix factorization
# ------------------------------------------------------------------------------------------------
def factorization_figure(sweep, depth: int, init_scale: float, n_show: int = 5) -> tuple[go.Figure, str]:
    """Left: the top singular values of W_L⋯W_1 during training for the selected (depth, init scale), the
    target's singular values as a labelled line. Right: held-out error against init scale, one curve per depth."""
    _check_factorization(sweep)
    row, hist = sweep.run(depth, init_scale)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.55, 0.45],
                        subplot_titles=(f"singular values, depth {int(row.depth)}, init {_fmt_alpha(row.init_scale)}",
                                        "held-out error after training"))
    for k in range(1, n_show + 1):
        col = f"sv{k}"
        if col in hist:
            fig.add_scatter(x=hist.step, y=hist[col], mode="lines", name=f"σ_{k}(W)", line=dict(color=color(k - 1)),
                            row=1, col=1)
    target = float(sweep.target_singular_values[0]) if len(sweep.target_singular_values) else None
    if target is not None:
        fig.add_hline(y=target, line=dict(color="grey", dash="dot"), annotation_text="target σ", row=1, col=1)
    s = sweep.summary
    for j, d in enumerate(sorted(s.depth.unique())):
        rows = s[s.depth == d].sort_values("init_scale")
        fig.add_scatter(x=rows.init_scale, y=rows.test_error, mode="lines+markers", name=f"GD, depth {d}",
                        line=dict(color=color(j), dash="dash"), marker=dict(symbol="diamond"), row=1, col=2)
    fig.add_scatter(x=[row.init_scale], y=[row.test_error], mode="markers", name="selected run",
                    marker=dict(size=15, symbol="circle-open", color="black", line=dict(width=2)), row=1, col=2)
    fig.update_xaxes(title_text="step", row=1, col=1)
    fig.update_yaxes(type="log", title_text="singular value", row=1, col=1)
    fig.update_xaxes(type="log", title_text="init scale (std of each factor's entries)", row=1, col=2)
    fig.update_yaxes(type="log", title_text="‖P_Ω⊥(W − M)‖ / ‖P_Ω⊥ M‖", row=1, col=2)
    fig.update_layout(title=f"deep matrix factorization: depth {int(row.depth)}, init {_fmt_alpha(row.init_scale)} → "
                            f"effective rank {row.effective_rank:.2f}", legend=dict(orientation="h", y=-0.2))
    state = "diverged" if row.diverged else ("fits the observed entries" if row.converged
                                              else f"has not fit the observed entries after {int(row.steps):,} steps")
    text = (f"depth {int(row.depth)}, init {_fmt_alpha(row.init_scale)}: held-out error {row.test_error:.3g}, "
            f"effective rank {row.effective_rank:.2f}, train error {row.train_error:.1e} — {state}")
    return fig, text


def _check_factorization(sweep) -> None:
    require_rows("sweep.summary", getattr(sweep, "summary", None), ("depth", "init_scale"),
                 "from flatlab.implicit.factorization_sweep")


def factorization_explorer(sweep) -> Interactive:
    """Depth and init-scale sliders over a precomputed :class:`flatlab.implicit.FactorizationSweep`."""
    _check_factorization(sweep)
    depths = sorted(int(d) for d in sweep.summary.depth.unique())
    inits = sorted(float(a) for a in sweep.summary.init_scale.unique())
    style = control_style()
    controls = {
        "depth": W.SelectionSlider(options=depths, value=depths[-1] if len(depths) < 4 else 3, description="depth L",
                                   layout=W.Layout(width="300px"), **style),
        "init_scale": W.SelectionSlider(options=[(_fmt_alpha(a), a) for a in inits], value=inits[len(inits) // 2],
                                        description="init scale", layout=W.Layout(width="360px"), **style),
    }
    return Interactive(controls, lambda depth, init_scale: factorization_figure(sweep, depth, init_scale),
                       title="Depth and low rank: move the depth and the init scale")


def incremental_figure(histories: Mapping[str, pd.DataFrame], targets, k: int = 3,
                       half: Mapping[str, list] | None = None) -> go.Figure:
    """Top-k singular values over the steps for each run (one panel per run) with the target values and the
    half-way times marked — incremental learning shows as one singular value rising after another."""
    require_items("histories", histories, "a dict mapping a run's label to its history of singular values")
    if len(np.atleast_1d(targets)) < k:
        raise ValueError(f"targets has {len(np.atleast_1d(targets))} values: expected the target's top k={k} "
                         "singular values")
    for label, h in histories.items():
        require_rows(f"histories[{label!r}]", h, ("step", *(f"sv{j}" for j in range(1, k + 1))),
                     "a factorization run's history")
    fig = make_subplots(rows=1, cols=len(histories), subplot_titles=list(histories), shared_yaxes=True)
    for c, (label, h) in enumerate(histories.items(), start=1):
        for j in range(1, k + 1):
            fig.add_scatter(x=h.step, y=h[f"sv{j}"], mode="lines", name=f"σ_{j}", line=dict(color=color(j - 1)),
                            legendgroup=f"sv{j}", showlegend=c == 1, row=1, col=c)
            fig.add_hline(y=float(targets[j - 1]), line=dict(color=color(j - 1), dash="dot", width=1), row=1, col=c,
                          annotation_text=f"target σ_{j}" if c == 1 else None)
            if half and label in half and np.isfinite(half[label][j - 1]):
                fig.add_vline(x=half[label][j - 1], line=dict(color=color(j - 1), dash="dash", width=1), row=1, col=c)
        fig.update_xaxes(title_text="step", row=1, col=c)
    fig.update_yaxes(title_text="singular value of W", row=1, col=1)
    fig.update_layout(title="incremental learning: singular values are learned one at a time (dashed: half-way times)")
    return fig


# ------------------------------------------------------------------------------------------------
# 4 · natural gradient
# ------------------------------------------------------------------------------------------------
def ngd_figure(results: pd.DataFrame) -> go.Figure:
    """Held-out error and effective rank of each method (one bar per row of ``results``, with columns
    ``label``, ``test_error``, ``effective_rank``)."""
    for col in ("label", "test_error", "effective_rank"):
        if col not in results:
            raise ValueError(f"results needs a column {col!r}")
    require_rows("results", results, ("label", "test_error", "effective_rank"))
    fig = make_subplots(rows=1, cols=2, subplot_titles=("held-out error (log)", "effective rank of W"))
    colors = [color(i) for i in range(len(results))]
    fig.add_bar(x=results.label, y=results.test_error, marker_color=colors, showlegend=False, row=1, col=1,
                text=[f"{v:.2g}" for v in results.test_error], textposition="outside")
    fig.add_bar(x=results.label, y=results.effective_rank, marker_color=colors, showlegend=False, row=1, col=2,
                text=[f"{v:.1f}" for v in results.effective_rank], textposition="outside")
    fig.update_yaxes(type="log", title_text="‖P_Ω⊥(W − M)‖ / ‖P_Ω⊥ M‖", row=1, col=1)
    fig.update_yaxes(title_text="exp(entropy of σ/‖σ‖₁)", row=1, col=2)
    fig.update_layout(title="GD on a deep factorization vs natural gradient descent (same model, same init)")
    return fig
