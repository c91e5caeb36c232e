"""Chapter 06 (adaptive optimizers and averaging): figures and widgets.

Pure figure functions (``*_figure``) return a plotly Figure — and, where a widget drives them, a
one-line status text; the widgets (``warmup_explorer``, ``critical_momenta_explorer``) only select
among precomputed runs or recompute a cheap 2-D trajectory. Import as
``from flatlab.widgets.adaptive import …``.
"""
from __future__ import annotations

import math

import ipywidgets as W
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..landscapes import Landscape, sharp_and_flat
from ..plots import PALETTE, color, landscape_figure
from .base import Interactive, control_style, require_items, require_rows

__all__ = ["sharpness_bar_figure", "eos_figure", "warmup_figure", "warmup_explorer", "critical_momenta_figure",
           "critical_momenta_explorer", "averaging_figure", "interpolation_figure", "cm_start"]


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def sharpness_bar_figure(table: pd.DataFrame, title: str | None = None) -> go.Figure:
    """λ_max of each run of ``flatlab.adaptive.train_to_loss``'s table, test accuracy in the labels."""
    require_rows("table", table, ("optimizer", "lr", "lambda_max", "test_acc", "train_loss"),
                 "the table of flatlab.adaptive.train_to_loss")
    fig = go.Figure()
    labels = [f"{r.optimizer} (η={r.lr:g})" for r in table.itertuples()]
    fig.add_bar(x=labels, y=table.lambda_max, marker_color=[color(i) for i in range(len(table))],
                text=[f"λ_max={r.lambda_max:.3g}<br>test acc {r.test_acc:.1%}" for r in table.itertuples()],
                textposition="outside", name="λ_max at equal training loss")
    loss = float(table.train_loss.max())
    fig.update_layout(title=title or f"Sharpness where each optimizer reached training loss ≤ {loss:.2g}",
                      xaxis_title="optimizer (learning rate η)", yaxis_title="λ_max of the training-loss Hessian",
                      showlegend=False)
    fig.update_yaxes(range=[0, 1.25 * float(table.lambda_max.max())])
    return fig


def eos_figure(history: pd.DataFrame, lr: float, beta1: float = 0.9, title: str | None = None) -> go.Figure:
    """Adam's preconditioned sharpness λ_max(P⁻¹H) against its threshold (2+2β₁)/((1−β₁)η), and the raw
    λ_max(H) against GD's 2/η, on one log-scale axis."""
    from ..adaptive import adam_threshold

    require_rows("history", history, ("step", "precond_lambda_max"), "the history of a full-batch Adam run")
    thr = adam_threshold(lr, beta1)
    rows = history.dropna(subset=["precond_lambda_max"])
    fig = go.Figure()
    fig.add_scatter(x=rows.step, y=rows.precond_lambda_max, mode="lines+markers", name="λ_max(P⁻¹H), Adam",
                    line=dict(color=color(0)))
    fig.add_hline(y=thr, line=dict(color=color(0), dash="dash"),
                  annotation_text=f"(2+2β₁)/((1−β₁)η) = {_num(thr)}", annotation_position="top left")
    if "lambda_max" in rows:
        fig.add_scatter(x=rows.step, y=rows.lambda_max, mode="lines+markers", name="raw λ_max(H)",
                        line=dict(color=color(3)))
        fig.add_hline(y=2 / lr, line=dict(color=color(3), dash="dot"), annotation_text=f"2/η = {_num(2 / lr)} (GD)",
                      annotation_position="bottom left")
    fig.update_yaxes(type="log", title="sharpness (log scale)")
    fig.update_layout(title=title or f"Full-batch Adam (η={lr:g}, β₁={beta1:g}) rides its own edge of stability",
                      xaxis_title="step", legend=dict(orientation="h", y=-0.2))
    return fig


def smoothness_figure(paths: dict[str, pd.DataFrame], title: str | None = None) -> go.Figure:
    """The curvature met along each path against the gradient norm there, log–log, one colour per path: λ_max at
    the iterates where it was measured (filled) and the midpoint estimate L̂ of every step (open, fainter)."""
    require_items("paths", paths, "{label: flatlab.adaptive.smoothness_path(...)}")
    fig = go.Figure()
    for i, (label, df) in enumerate(paths.items()):
        require_rows(f"paths[{label!r}]", df, ("step", "grad_norm", "smoothness"),
                     "the rows of flatlab.adaptive.smoothness_path")
        fig.add_scatter(x=df.grad_norm, y=df.smoothness, mode="markers", name=f"{label}: midpoint estimate L̂",
                        marker=dict(color=color(i), symbol="circle-open", size=6), opacity=0.45,
                        customdata=df.step, hovertemplate="step %{customdata}<br>‖g‖ %{x:.3g}<br>L̂ %{y:.3g}<extra></extra>")
        measured = df.dropna(subset=["lambda_max"]) if "lambda_max" in df else df.iloc[:0]
        if len(measured):
            fig.add_scatter(x=measured.grad_norm, y=measured.lambda_max, mode="markers",
                            name=f"{label}: λ_max at the iterate", marker=dict(color=color(i), size=9),
                            customdata=measured.step,
                            hovertemplate="step %{customdata}<br>‖g‖ %{x:.3g}<br>λ_max %{y:.3g}<extra></extra>")
    fig.update_xaxes(type="log", title="gradient norm ‖∇L‖ at the iterate (log)")
    fig.update_yaxes(type="log", title="curvature: λ_max, or the midpoint estimate L̂ (log)")
    fig.update_layout(title=title or "The curvature met along each path against the gradient norm, one point per step",
                      legend=dict(orientation="h", y=-0.25))
    return fig


def _check_grid(grid) -> None:
    what = "the runs of flatlab.adaptive.warmup_grid, keyed (optimizer, peak η, warmup)"
    require_items("grid", grid, what)
    if not any(k[0] != "radam" for k in grid):
        raise ValueError(f"grid has only RAdam runs: expected {what}, with Adam's")


def _runs(grid: dict) -> tuple[list[float], list[int]]:
    lrs = sorted({k[1] for k in grid if k[0] != "radam"})
    warmups = sorted({k[2] for k in grid if k[0] != "radam"})
    return lrs, warmups


def warmup_figure(grid: dict, peak_lr: float, warmup: int) -> tuple[go.Figure, str]:
    """Training loss (log) and learning rate of Adam with linear ``warmup`` to ``peak_lr``, beside Adam
    without warmup and RAdam at the same peak η — all from ``flatlab.adaptive.warmup_grid``'s runs."""
    _check_grid(grid)
    name = next(k[0] for k in grid if k[0] != "radam")
    key = (name, float(peak_lr), int(warmup))
    if key not in grid:
        lrs, warmups = _runs(grid)
        raise ValueError(f"no precomputed run for peak_lr={peak_lr}, warmup={warmup}; available η {lrs}, "
                         f"warmups {warmups}")
    runs = [(f"Adam, warmup {warmup} steps", grid[key], 0)]
    if warmup != 0 and (name, float(peak_lr), 0) in grid:
        runs.append(("Adam, no warmup", grid[(name, float(peak_lr), 0)], 3))
    if ("radam", float(peak_lr), 0) in grid:
        runs.append(("RAdam, no warmup", grid[("radam", float(peak_lr), 0)], 2))
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss", "learning rate η_t"))
    parts = []
    for label, h, c in runs:
        fig.add_scatter(x=h.step, y=h.train_loss.clip(lower=1e-6), mode="lines", name=f"{label} (peak η={peak_lr:g})",
                        line=dict(color=color(c)), legendgroup=label, row=1, col=1)
        fig.add_scatter(x=h.step, y=h.lr, mode="lines", showlegend=False, line=dict(color=color(c)),
                        legendgroup=label, row=1, col=2)
        end = "diverged" if getattr(h, "diverged", False) else f"final loss {h.train_loss.iloc[-1]:.3g}"
        parts.append(f"{label}: peak loss {h.train_loss.max():.3g}, {end}")
    fig.update_yaxes(type="log", title_text="loss (log scale)", row=1, col=1)
    fig.update_yaxes(title_text="η_t", row=1, col=2)
    fig.update_xaxes(title_text="step")
    fig.update_layout(title=f"Linear warmup to peak η = {peak_lr:g} over {warmup} steps",
                      legend=dict(orientation="h", y=-0.2))
    return fig, " · ".join(parts)


def warmup_explorer(grid: dict) -> Interactive:
    """Sliders for the warmup length and the peak η over the runs of ``flatlab.adaptive.warmup_grid``."""
    _check_grid(grid)
    lrs, warmups = _runs(grid)
    style = control_style("380px")
    controls = {
        "warmup": W.SelectionSlider(options=warmups, value=warmups[-1], description="warmup steps", **style),
        "peak_lr": W.SelectionSlider(options=[(f"{v:g}", v) for v in lrs], value=lrs[-1], description="peak η",
                                     **style),
    }
    return Interactive(controls, lambda warmup, peak_lr: warmup_figure(grid, peak_lr, warmup),
                       title="Warmup: how long to ramp the learning rate up to its peak")


def cm_start(angle: float, radius: float = 0.2, landscape: Landscape | None = None) -> np.ndarray:
    """The start point on a circle of ``radius`` around the landscape's sharpest minimum."""
    landscape = landscape or sharp_and_flat()
    sharp = max(landscape.basins, key=lambda b: b.lambda_max)
    return np.asarray(sharp.centre) + radius * np.array([math.cos(angle), math.sin(angle)])


def _cm_runs(landscape: Landscape, lr: float, buffer_size: int, decay: float, angle: float, steps: int,
             memo: dict | None = None):
    """Adam's and AdamCM's trajectories from the start at ``angle``; with ``memo`` each is computed once per
    setting (Adam's does not depend on the buffer or the decay, so moving those sliders runs AdamCM only)."""
    from ..adaptive import landscape_run

    memo = {} if memo is None else memo
    if len(memo) > 512:   # a long session of slider moves: start over rather than grow without bound
        memo.clear()
    start = cm_start(angle, landscape=landscape)
    key = (float(lr), float(angle), int(steps))
    if ("adam", key) not in memo:
        memo[("adam", key)] = landscape_run(landscape, start, "adam", lr=lr, steps=steps)
    cm_key = ("adamcm", key, int(buffer_size), float(decay))
    if cm_key not in memo:
        memo[cm_key] = landscape_run(landscape, start, "adamcm", lr=lr, steps=steps, buffer_size=int(buffer_size),
                                     decay=decay)
    return memo[("adam", key)], memo[cm_key]


def critical_momenta_figure(lr: float = 0.1, buffer_size: int = 5, decay: float = 0.7, angle: float = 0.0,
                            steps: int = 200, landscape: Landscape | None = None, grid=None,
                            memo: dict | None = None) -> tuple[go.Figure, str]:
    """Adam and AdamCM (same η, β) from a point 0.2 away from the sharp minimum of a 2-D landscape."""
    landscape = landscape or sharp_and_flat()
    adam, cm = _cm_runs(landscape, lr, buffer_size, decay, angle, steps, memo)
    labels = [f"Adam η={lr:.3g}", f"AdamCM η={lr:.3g}, buffer {int(buffer_size)}, decay λ={decay:.2g}"]
    fig = landscape_figure(landscape, [adam, cm], labels=labels, grid=grid,
                           title="Adam vs Adam with critical momenta, started in the sharp minimum")

    def where(t):
        return f"diverged at step {t.diverged_step}" if t.diverged else f"ends in the {t.basin} minimum"

    return fig, f"Adam {where(adam)} · AdamCM {where(cm)}"


def critical_momenta_explorer(landscape: Landscape | None = None, steps: int = 200, lr: float = 0.1) -> Interactive:
    """Sliders for η, the buffer size, the priority decay and the start angle (each update runs two
    cheap 2-D trajectories on a grid computed once)."""
    landscape = landscape or sharp_and_flat()
    grid = landscape.grid((-2.5, 3.5), (-2.5, 2.5), 121)
    style = control_style("320px")
    controls = {
        "lr": W.FloatLogSlider(value=lr, base=10, min=-2, max=-0.5, step=0.05, readout_format=".3f",
                               description="learning rate η", **style),
        "buffer_size": W.IntSlider(value=5, min=0, max=10, description="buffer size C", **style),
        "decay": W.FloatSlider(value=0.7, min=0.0, max=1.0, step=0.05, description="priority decay λ", **style),
        "angle": W.FloatSlider(value=0.0, min=0.0, max=round(2 * math.pi, 2), step=0.1, description="start angle",
                               **style),
    }

    memo: dict = {}   # trajectories already run, by setting: moving back to a setting costs only the drawing

    def figure_fn(lr, buffer_size, decay, angle):
        return critical_momenta_figure(lr, buffer_size, decay, angle, steps=steps, landscape=landscape, grid=grid,
                                       memo=memo)

    return Interactive(controls, figure_fn, title="Critical momenta on a sharp and a flat minimum")


def averaging_figure(results: dict[str, tuple[list[float], float]], title: str | None = None) -> go.Figure:
    """λ_max of the members (dots) and of their average (star) for each averaging method.

    ``results`` maps a method label to (members' λ_max values, the average's λ_max)."""
    require_items("results", results, "a dict mapping an averaging method to (members' λ_max values, the average's λ_max)")
    for label, (members, _) in results.items():
        require_items(f"results[{label!r}]'s members", members, "the λ_max of each averaged run")
    fig = go.Figure()
    for i, (label, (members, avg)) in enumerate(results.items()):
        fig.add_scatter(x=[label] * len(members), y=list(members), mode="markers", name=f"{label}: members",
                        marker=dict(size=10, color=color(i), opacity=0.6))
        fig.add_scatter(x=[label], y=[float(np.mean(members))], mode="markers", name=f"{label}: members' mean",
                        marker=dict(size=14, symbol="line-ew", line=dict(width=3, color=color(i))))
        fig.add_scatter(x=[label], y=[avg], mode="markers", name=f"{label}: average",
                        marker=dict(size=18, symbol="star", color=color(i), line=dict(width=1, color="black")))
    fig.update_layout(title=title or "Sharpness of the averaged weights and of the runs they average",
                      xaxis_title="averaging method", yaxis_title="λ_max of the training-loss Hessian",
                      legend=dict(orientation="h", y=-0.2))
    return fig


def interpolation_figure(alphas, curves: dict[str, np.ndarray], title: str | None = None) -> go.Figure:
    """Training loss along the segment θ(α) = (1−α) θ_a + α θ_b for each labelled pair of runs."""
    require_items("alphas", alphas, "the interpolation coefficients α")
    require_items("curves", curves, "a dict mapping a pair of runs to the losses along their segment")
    fig = go.Figure()
    for i, (label, losses) in enumerate(curves.items()):
        fig.add_scatter(x=np.asarray(alphas), y=np.asarray(losses), mode="lines+markers", name=label,
                        line=dict(color=PALETTE[i % len(PALETTE)]))
    fig.add_vline(x=0.5, line=dict(color="grey", dash="dot"), annotation_text="the average")
    fig.update_yaxes(type="log", title="training loss (log scale)")
    fig.update_layout(title=title or "Loss on the line between two runs: a barrier or none",
                      xaxis_title="α  (θ = (1−α) θ_a + α θ_b)", legend=dict(orientation="h", y=-0.2))
    return fig
