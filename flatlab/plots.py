"""Plotly figure builders and the flatlab template (colour-blind-safe Okabe–Ito palette).

Every builder returns a ``plotly.graph_objects.Figure`` with a title, labelled axes and a legend
that names what is drawn; runs that diverged are marked with a ✗ and a "diverged" label.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

# Okabe & Ito (2008), safe for the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
TEMPLATE_NAME = "flatlab"


def register_template() -> go.layout.Template:
    """Register the ``flatlab`` plotly template and make it the default (``plotly_white`` + palette).

    The template is ``plotly_white`` with flatlab's changes written into it, and the default names it alone:
    a default of two names (``"plotly_white+flatlab"``) would make plotly merge the two templates again for
    every new figure, about 10 ms each — a widget's whole budget for a redraw is 100 ms."""
    template = go.layout.Template(pio.templates["plotly_white"])
    template.layout.colorway = PALETTE
    template.layout.font.size = 13   # plotly_white's font colour is kept
    template.layout.title = dict(x=0.02, xanchor="left")
    template.layout.margin = dict(l=60, r=20, t=60, b=50)
    template.layout.legend = dict(bgcolor="rgba(255,255,255,0.7)")
    pio.templates[TEMPLATE_NAME] = template
    pio.templates.default = TEMPLATE_NAME
    return template


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def curves(histories, metric: str = "train_loss", labels: Sequence[str] | None = None, title: str | None = None,
           log_y: bool = False, y_title: str | None = None) -> go.Figure:
    """Curves of one ``metric`` (a History column) against the step for one or several runs."""
    if not isinstance(histories, (list, tuple)):
        histories = [histories]
    labels = list(labels) if labels is not None else [f"run {i}" for i in range(len(histories))]
    if len(labels) != len(histories):
        raise ValueError(f"labels has {len(labels)} entries for {len(histories)} histories")
    fig = go.Figure()
    for i, (h, label) in enumerate(zip(histories, labels)):
        if metric not in h.columns:
            raise ValueError(f"metric={metric!r} is not recorded; available: {', '.join(map(str, h.columns))}")
        rows = h.dropna(subset=[metric])
        fig.add_scatter(x=rows["step"], y=rows[metric], mode="lines", name=label, line=dict(color=color(i)))
        if getattr(h, "diverged", False):
            last = h.iloc[-2] if len(h) > 1 else h.iloc[-1]
            y = last[metric] if np.isfinite(last[metric]) else None
            fig.add_scatter(x=[h.diverged_step], y=[y], mode="markers+text", text=["diverged"],
                            textposition="top center", marker=dict(symbol="x", size=12, color=color(i)),
                            name=f"{label}: diverged at step {h.diverged_step}")
    fig.update_layout(title=title or metric.replace("_", " "), xaxis_title="step",
                      yaxis_title=y_title or metric.replace("_", " "))
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def training_curves(histories, labels: Sequence[str] | None = None, title: str = "training") -> go.Figure:
    """Loss (log scale) and accuracy side by side, train solid and test dashed."""
    from plotly.subplots import make_subplots

    if not isinstance(histories, (list, tuple)):
        histories = [histories]
    labels = list(labels) if labels is not None else [f"run {i}" for i in range(len(histories))]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    for i, (h, label) in enumerate(zip(histories, labels)):
        for split, dash in (("train", "solid"), ("test", "dash")):
            for col, metric in ((1, f"{split}_loss"), (2, f"{split}_acc")):
                rows = h.dropna(subset=[metric])
                fig.add_scatter(x=rows["step"], y=rows[metric], mode="lines", name=f"{label} ({split})",
                                line=dict(color=color(i), dash=dash), legendgroup=f"{label}{split}",
                                showlegend=col == 1, row=1, col=col)
        if getattr(h, "diverged", False):
            fig.add_vline(x=h.diverged_step, line=dict(color=color(i), dash="dot"),
                          annotation_text=f"{label} diverged", row=1, col=1)
    fig.update_yaxes(type="log", title_text="loss", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", range=[0, 1.02], row=1, col=2)
    fig.update_xaxes(title_text="step")
    fig.update_layout(title=title)
    return fig


def landscape_figure(landscape, trajectories=(), labels: Sequence[str] | None = None, xlim=(-2.5, 3.5),
                     ylim=(-2.5, 2.5), n: int = 121, title: str | None = None, grid=None) -> go.Figure:
    """Contours of a 2-D landscape, its minima (labelled with λ_max) and optimizer trajectories.

    ``grid`` may pass a precomputed ``landscape.grid(...)`` result so widgets redraw quickly.
    """
    xs, ys, z = grid if grid is not None else landscape.grid(xlim, ylim, n)
    fig = go.Figure()
    fig.add_contour(x=xs, y=ys, z=z, colorscale="Greys", reversescale=True, ncontours=30, showscale=True,
                    colorbar=dict(title="loss"), name="loss", hoverinfo="x+y+z", line=dict(width=0.5))
    fig.add_scatter(x=[b.centre[0] for b in landscape.basins], y=[b.centre[1] for b in landscape.basins],
                    mode="markers", marker=dict(symbol="star", size=14, color="white", line=dict(color="black", width=1)),
                    text=[f"{b.name}: λ_max={b.lambda_max:.3g}" for b in landscape.basins], name="minima")
    for b in landscape.basins:
        fig.add_annotation(x=b.centre[0], y=b.centre[1], text=f"{b.name}: λ_max={b.lambda_max:.3g}", showarrow=True,
                           arrowhead=0, ax=0, ay=28, bgcolor="rgba(255,255,255,0.85)", font=dict(size=12))
    labels = list(labels) if labels is not None else [f"η={t.lr:.3g}" for t in trajectories]
    for i, (t, label) in enumerate(zip(trajectories, labels)):
        c = color(i + 1)  # orange first: it stands out on the grey contours
        fig.add_scatter(x=t.points[:, 0], y=t.points[:, 1], mode="lines+markers", name=label,
                        line=dict(color=c, width=1.5), marker=dict(size=4, color=c))
        end = t.points[-1]
        end_text = f"diverged at step {t.diverged_step}" if t.diverged else f"ends in {t.basin}"
        fig.add_scatter(x=[end[0]], y=[end[1]], mode="markers", name=f"{label}: {end_text}",
                        marker=dict(symbol="x" if t.diverged else "circle-open", size=13, color=c, line=dict(width=2)))
    aspect = (xlim[1] - xlim[0]) / (ylim[1] - ylim[0])
    fig.update_layout(title=title or f"gradient descent on the {landscape.name} landscape", xaxis_title="w₁",
                      yaxis_title="w₂", legend=dict(orientation="h", x=0, y=-0.15, yanchor="top"),
                      height=620, width=int(130 + aspect * 450), margin=dict(b=110))
    # equal scales on both axes; the plot area shrinks (constrain="domain") rather than the range growing
    fig.update_xaxes(range=list(xlim), constrain="domain")
    fig.update_yaxes(range=list(ylim), scaleanchor="x", scaleratio=1, constrain="domain")
    return fig


def spectrum_figure(grid: np.ndarray, density: np.ndarray, top: Sequence[float] = (), title: str | None = None,
                    label: str = "SLQ density") -> go.Figure:
    """Hessian eigenvalue density (log scale) with the top eigenvalues marked as labelled lines."""
    fig = go.Figure()
    fig.add_scatter(x=grid, y=np.maximum(density, 1e-12), mode="lines", name=label, line=dict(color=color(0)))
    for i, lam in enumerate(top):
        fig.add_vline(x=float(lam), line=dict(color=color(3), dash="dot"),
                      annotation_text=f"λ_{i + 1}={float(lam):.3g}" if i < 3 else None,
                      annotation_position="top" if i % 2 == 0 else "bottom")
    fig.update_layout(title=title or "Hessian spectrum: a bulk near zero and a few outliers",
                      xaxis_title="eigenvalue λ", yaxis_title="density (log scale)")
    fig.update_yaxes(type="log", range=[-6, None])
    return fig


def line_figure(alphas: np.ndarray, curves_: dict[str, np.ndarray], title: str = "loss along a direction",
                x_title: str = "step along the direction α") -> go.Figure:
    """1-D loss slices ℓ(α) = L(w + α d), one curve per label."""
    fig = go.Figure()
    for i, (label, losses) in enumerate(curves_.items()):
        fig.add_scatter(x=alphas, y=losses, mode="lines", name=label, line=dict(color=color(i)))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title="training loss")
    return fig


def surface_figure(alphas: np.ndarray, betas: np.ndarray, surface: np.ndarray, title: str = "loss on a 2-D slice",
                   zmax: float | None = None) -> go.Figure:
    """Contours of a 2-D slice ``surface[i, j] = L(w + α_i d₁ + β_j d₂)``; the minimum at the origin."""
    fig = go.Figure()
    fig.add_contour(x=alphas, y=betas, z=np.asarray(surface).T, colorscale="Viridis", ncontours=25,
                    zmin=float(np.nanmin(surface)), zmax=zmax, colorbar=dict(title="loss"), name="loss")
    fig.add_scatter(x=[0], y=[0], mode="markers", marker=dict(symbol="x", size=12, color="white"),
                    name="trained weights w")
    fig.update_layout(title=title, xaxis_title="α (direction d₁)", yaxis_title="β (direction d₂)")
    fig.update_yaxes(scaleanchor="x")
    return fig


def sharpness_accuracy_figure(curves_: dict[str, tuple[Sequence[float], Sequence[float]]], accuracy: dict[str, float],
                              final_lambda: dict[str, float] | None = None,
                              title: str = "sharpness over training and the test accuracy it ends with",
                              y_title: str = "λ_max", accuracy_title: str = "final test accuracy") -> go.Figure:
    """λ_max against the step for several runs (left, log scale) and each run's final test accuracy (right, bars).

    ``curves_`` maps a label to ``(steps, lambda_max values)``; ``accuracy`` maps the same labels to a test
    accuracy; ``final_lambda`` (optional) labels each bar with the run's final λ_max.
    """
    from plotly.subplots import make_subplots

    if set(accuracy) != set(curves_):
        raise ValueError(f"accuracy must have one entry per curve: curves {sorted(curves_)}, accuracy {sorted(accuracy)}")
    fig = make_subplots(rows=1, cols=2, column_widths=[0.65, 0.35],
                        subplot_titles=("λ_max over training", accuracy_title))
    for i, (label, (steps, values)) in enumerate(curves_.items()):
        fig.add_scatter(x=list(steps), y=list(values), mode="lines+markers", name=label, legendgroup=label,
                        line=dict(color=color(i)), row=1, col=1)
        text = f"{accuracy[label]:.3f}" + (f"<br>λ_max {final_lambda[label]:.3g}" if final_lambda else "")
        fig.add_bar(x=[label], y=[accuracy[label]], marker_color=color(i), name=label, legendgroup=label,
                    showlegend=False, text=[text], textposition="outside", row=1, col=2)
    fig.update_yaxes(type="log", title_text=y_title, row=1, col=1)
    fig.update_xaxes(title_text="step", row=1, col=1)
    fig.update_yaxes(title_text=accuracy_title, range=[0, 1.05], row=1, col=2)
    fig.update_layout(title=title)
    return fig
