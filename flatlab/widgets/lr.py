"""Chapter 03 (learning rate and batch size): figures and widgets.

- :func:`quadratic_figure`, :func:`quadratic_explorer`: GD / heavy ball on ``L(w) = ½ Σ λ_i w_i²`` — converges
  iff λ_max < 2/η (heavy ball: (2+2β)/η); sliders for η and β. The runs are
  :func:`flatlab.train.quadratic_run` and the rates :func:`flatlab.curvature.quadratic_rate` (re-exported here).
- :func:`lambda_curves_figure`, :func:`eos_explorer`: λ_max along training with the labelled 2/η lines
  (edge of stability, Cohen et al. 2021, arXiv:2103.00065; the early-phase peak, Jastrzębski et al.
  2020, arXiv:2002.09572), from a sweep frame; the controls only select.
- :func:`heatmap_figure`, :func:`ratio_figure`, :func:`sweep_explorer`: an η × B sweep as heat maps of
  its final λ_max, trace, test accuracy …, and against the noise scale η/B (Jastrzębski et al. 2017,
  "Three factors influencing minima in SGD", arXiv:1711.04623), from a cached sweep.

Every figure function is a plain function returning ``(figure, status text)`` or a figure; the
explorers wire controls to them (``continuous_update=False``; nothing is trained on a slider move).
"""
from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import ipywidgets as W
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..curvature import quadratic_rate, stability_threshold
from ..plots import PALETTE, color
from ..train import quadratic_run
from .base import Interactive, control_style, require_items, require_rows

__all__ = ["quadratic_run", "quadratic_rate", "quadratic_figure", "quadratic_explorer", "lambda_curves_figure",
           "eos_explorer", "heatmap_figure", "ratio_figure", "sweep_explorer", "noise_scale_label"]

_STYLE = control_style("340px")
METRICS = {"lambda_max": "final λ_max", "trace": "final tr H", "test_acc": "test accuracy",
           "train_loss": "final train loss", "step": "steps trained"}


# ----------------------------------------------------------------------------------------------
# 1 · linear stability on a quadratic
# ----------------------------------------------------------------------------------------------
def quadratic_figure(lr: float = 0.15, momentum: float = 0.0, lams: Sequence[float] = (10.0, 1.0),
                     steps: int = 60, start: Sequence[float] = (1.0, 1.0)) -> tuple[go.Figure, str]:
    """Iterates on the contours of ``½(λ₁w₁² + λ₂w₂²)`` and the loss per step, with the verdict."""
    require_items("lams", lams, "the curvatures λᵢ > 0 of the quadratic, e.g. (10.0, 1.0)")
    lams = [float(v) for v in lams]
    lam_max = max(lams)
    kind = "gd" if momentum == 0 else "heavy_ball"
    limit = stability_threshold(lr, kind, momentum)  # the largest stable curvature for this η, β
    ws, losses = quadratic_run(lams, lr, momentum, steps, start)
    diverged = len(ws) < steps + 1 or losses[-1] > losses[0]
    rate = max(quadratic_rate(v, lr, momentum) for v in lams)
    name = f"GD η={lr:.3g}" if momentum == 0 else f"heavy ball η={lr:.3g}, β={momentum:.2g}"
    formula = "2/η" if momentum == 0 else "(2+2β)/η"
    fig = make_subplots(rows=1, cols=2, column_widths=[0.45, 0.55],
                        subplot_titles=("iterates on the loss contours", "loss per step"))
    span = 1.6 * max(1.0, float(np.abs(start).max()))
    g = np.linspace(-span, span, 81)
    z = 0.5 * (lams[0] * g[None, :] ** 2 + lams[1] * g[:, None] ** 2) if len(lams) == 2 else None
    if z is not None:
        fig.add_contour(x=g, y=g, z=z, colorscale="Greys", reversescale=True, showscale=False, ncontours=20,
                        name="loss", hoverinfo="skip", line=dict(width=0.5), row=1, col=1)
    shown = np.clip(ws, -span, span)
    fig.add_scatter(x=shown[:, 0], y=shown[:, 1] if ws.shape[1] > 1 else np.zeros(len(ws)), mode="lines+markers",
                    name=name, line=dict(color=PALETTE[0]), marker=dict(size=5), row=1, col=1)
    fig.add_scatter(x=np.arange(len(losses)), y=np.maximum(losses, 1e-30), mode="lines+markers", name=f"loss, {name}",
                    line=dict(color=PALETTE[0]), marker=dict(size=4), showlegend=False, row=1, col=2)
    if diverged:
        fig.add_scatter(x=[len(losses) - 1], y=[losses[-1]], mode="markers+text", text=["diverged"],
                        textposition="top left", marker=dict(symbol="x", size=12, color=PALETTE[3]),
                        name="diverged", row=1, col=2)
    fig.update_xaxes(title_text="w₁ (curvature λ₁ = %g)" % lams[0], range=[-span, span], row=1, col=1)
    fig.update_yaxes(title_text="w₂ (curvature λ₂ = %g)" % lams[1] if len(lams) > 1 else "", range=[-span, span],
                     row=1, col=1)
    fig.update_xaxes(title_text="step", row=1, col=2)
    fig.update_yaxes(title_text="loss L(w)", type="log", row=1, col=2)
    verdict = "diverges" if diverged else "converges"
    fig.update_layout(title=f"{name} on a quadratic with λ_max = {lam_max:g}: {verdict} "
                            f"({formula} = {limit:.3g} {'<' if lam_max > limit else '>'} λ_max = {lam_max:g})",
                      legend=dict(x=0.01, y=0.01, yanchor="bottom"))
    text = (f"{name}: largest stable curvature {formula} = {limit:.4g}, λ_max = {lam_max:g} → {verdict}; "
            f"slowest direction shrinks ×{rate:.3f} per step")
    return fig, text


def quadratic_explorer(lams: Sequence[float] = (10.0, 1.0), lr: float = 0.15, momentum: float = 0.0,
                       steps: int = 60) -> Interactive:
    """Sliders for η (log scale) and β: watch GD cross its threshold 2/λ_max (heavy ball: (2+2β)/λ_max)."""
    require_items("lams", lams, "the curvatures λᵢ > 0 of the quadratic, e.g. (10.0, 1.0)")
    controls = {
        "lr": W.FloatLogSlider(value=lr, base=10, min=-2, max=0, step=0.005, readout_format=".3f",
                               description="learning rate η", **_STYLE),
        "momentum": W.FloatSlider(value=momentum, min=0.0, max=0.95, step=0.05, description="momentum β", **_STYLE),
    }
    return Interactive(controls, lambda lr, momentum: quadratic_figure(lr, momentum, lams, steps),
                       title="Linear stability: GD on a quadratic")


# ----------------------------------------------------------------------------------------------
# 2, 4 · λ_max along training, with 2/η
# ----------------------------------------------------------------------------------------------
def _label(by: str, value) -> str:
    names = {"lr": "η", "batch_size": "B", "warmup": "warmup"}
    return f"{names.get(by, by)} = {value:g}" if isinstance(value, (int, float, np.number)) else f"{by} = {value}"


def lambda_curves_figure(df: pd.DataFrame, by: str = "lr", seed: int | None = None, values: Sequence | None = None,
                         metric: str = "lambda_max", threshold: bool = True, loss: bool = True,
                         mark_peaks: bool = False, optimizer: str = "GD", title: str | None = None) -> go.Figure:
    """λ_max (``metric``) against the step, one curve per value of ``by``, with dashed ``2/η`` lines.

    ``df`` is a sweep frame (columns ``by``, ``seed``, ``step``, ``metric``, ``train_loss``; the limit is drawn
    from ``lr`` when it is a column, else as a curve 2/η_t from ``lr_t``); ``seed`` picks one seed (default: the first), ``values`` a subset of ``by``'s values.
    ``loss`` adds the training loss below (log scale); ``mark_peaks`` marks each curve's maximum.
    """
    for col in (by, "step", metric):
        if col not in df.columns:
            raise ValueError(f"df has no column {col!r}; columns: {', '.join(map(str, df.columns))}")
    require_rows("df", df, (by, "step", metric), "a sweep frame")
    seed = df.seed.iloc[0] if seed is None and "seed" in df.columns else seed
    sub = df[df.seed == seed] if "seed" in df.columns else df
    values = sorted(sub[by].unique()) if values is None else list(values)
    fig = make_subplots(rows=2 if loss else 1, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        row_heights=[0.65, 0.35] if loss else [1.0])
    for i, v in enumerate(values):
        g = sub[sub[by] == v]
        c = color(i)
        name = f"{optimizer} {_label(by, v)}"
        if "batch_size" in g.columns and by != "batch_size" and g.batch_size.notna().any():
            name += f", B = {int(g.batch_size.iloc[0])}"
        rows = g.dropna(subset=[metric])
        fig.add_scatter(x=rows.step, y=rows[metric], mode="lines+markers", marker=dict(size=4), name=name,
                        line=dict(color=c), legendgroup=str(v), row=1, col=1)
        if threshold and "lr" in g.columns:
            lr = float(g.lr.iloc[0])
            fig.add_hline(y=2 / lr, line=dict(color=c, dash="dash", width=1.5), row=1, col=1,
                          annotation_text=f"2/η = {2 / lr:.3g} (η = {lr:g})", annotation_position="top left",
                          annotation_font_color=c)
        elif threshold and "lr_t" in g.columns:  # a schedule (warmup): the limit moves with η_t
            lrows = g.dropna(subset=["lr_t"])
            fig.add_scatter(x=lrows.step, y=2 / lrows.lr_t, mode="lines", line=dict(color=c, dash="dash", width=1.5),
                            name=f"2/η_t, {name}", legendgroup=str(v), row=1, col=1)
        if mark_peaks and len(rows):
            k = rows[metric].idxmax()
            fig.add_scatter(x=[rows.step[k]], y=[rows[metric][k]], mode="markers+text", text=[f"peak {rows[metric][k]:.3g}"],
                            textposition="top center", marker=dict(symbol="star", size=12, color=c),
                            name=f"{name}: peak at step {int(rows.step[k])}", legendgroup=str(v), row=1, col=1)
        if loss and "train_loss" in g.columns:
            lrows = g.dropna(subset=["train_loss"])
            fig.add_scatter(x=lrows.step, y=lrows.train_loss, mode="lines", line=dict(color=c), name=f"loss, {name}",
                            legendgroup=str(v), showlegend=False, row=2, col=1)
    ylabel = {"lambda_max": "λ_max (top Hessian eigenvalue)", "trace": "tr H"}.get(metric, metric)
    fig.update_yaxes(title_text=ylabel, row=1, col=1)
    if threshold and "lr" not in sub.columns and "lr_t" in sub.columns:  # 2/η_t is huge early in a warmup
        top = sub[sub[by].isin(values)][metric].max()
        fig.update_yaxes(range=[0, 1.5 * float(top)], row=1, col=1)
    if loss:
        fig.update_yaxes(title_text="train loss", type="log", row=2, col=1)
        fig.update_xaxes(title_text="step", row=2, col=1)
    else:
        fig.update_xaxes(title_text="step", row=1, col=1)
    fig.update_layout(title=title or f"{ylabel} along training (seed {seed}); dashed: the stability limit 2/η",
                      height=560 if loss else 420)
    return fig


def eos_explorer(df: pd.DataFrame, by: str = "lr", metric: str = "lambda_max", optimizer: str = "GD",
                 mark_peaks: bool = False, title: str = "λ_max along training") -> Interactive:
    """Choose which curves (values of ``by``) and which seed of a λ_max-along-training sweep to show."""
    require_rows("df", df, (by, "step", metric), "a sweep frame")
    values = sorted(df[by].unique())
    seeds = sorted(df.seed.unique()) if "seed" in df.columns else [None]
    controls = {
        "values": W.SelectMultiple(options=[(_label(by, v), v) for v in values], value=tuple(values),
                                   description="curves", rows=min(6, len(values)), style=_STYLE["style"]),
        "seed": W.Dropdown(options=seeds, value=seeds[0], description="seed", style=_STYLE["style"]),
        "threshold": W.Checkbox(value=True, description="show 2/η"),
    }

    def figure_fn(values, seed, threshold):
        chosen = list(values) or [values_all[0]]
        fig = lambda_curves_figure(df, by, seed, chosen, metric, threshold, True, mark_peaks, optimizer)
        parts = []
        for v in chosen:
            g = df[(df[by] == v) & ((df.seed == seed) if seed is not None else True)].dropna(subset=[metric])
            late = g[g.step >= g.step.max() * 2 / 3][metric]
            txt = f"{_label(by, v)}: peak {g[metric].max():.3g}, late median {late.median():.3g}"
            if "lr" in g.columns:
                txt += f" (2/η = {2 / float(g.lr.iloc[0]):.3g})"
            parts.append(txt)
        return fig, " · ".join(parts)

    values_all = values
    return Interactive(controls, figure_fn, title=title)


# ----------------------------------------------------------------------------------------------
# 3 · the η × B grid
# ----------------------------------------------------------------------------------------------
def noise_scale_label(lr: float, batch_size: int) -> str:
    """η/B as a short fraction label, e.g. ``η/B = 1/640``.

    >>> noise_scale_label(0.05, 32)
    'η/B = 1/640'
    """
    frac = Fraction(lr / batch_size).limit_denominator(10**7)
    return f"η/B = {frac.numerator}/{frac.denominator}" if frac.numerator != 1 else f"η/B = 1/{frac.denominator}"


def _finals(df: pd.DataFrame) -> pd.DataFrame:
    return df.groupby("run", sort=True).tail(1) if "run" in df.columns else df


def _grid_table(df: pd.DataFrame, metric: str, seed) -> pd.DataFrame:
    last = _finals(df)
    if metric not in last.columns:
        raise ValueError(f"metric={metric!r} is not in the sweep; available: "
                         f"{', '.join(m for m in METRICS if m in last.columns)}")
    last = last.assign(value=last[metric].where(~last.diverged.astype(bool)) if "diverged" in last else last[metric])
    if seed not in (None, "mean"):
        last = last[last.seed == seed]
    return last.pivot_table(index="lr", columns="batch_size", values="value", aggfunc="mean", dropna=False)


def heatmap_figure(df: pd.DataFrame, metric: str = "lambda_max", seed="mean", ratio: float | None = None,
                   optimizer: str = "SGD") -> tuple[go.Figure, str]:
    """Heat map of a final metric over the η × B grid of a sweep frame; outlines the cells with η/B = ``ratio``.

    ``seed``: one seed or ``"mean"`` (over seeds). Diverged runs are blank and marked ✗.
    """
    require_rows("df", df, ("lr", "batch_size"), "an η × B sweep frame")
    table = _grid_table(df, metric, seed)
    lrs, bss = list(table.index), list(table.columns)
    z = table.to_numpy(float)
    text = [[("✗ diverged" if not np.isfinite(v) else f"{v:.3g}") for v in row] for row in z]
    fig = go.Figure(go.Heatmap(z=z, x=[str(int(b)) for b in bss], y=[f"{lr:g}" for lr in lrs], text=text,
                               texttemplate="%{text}", colorscale="Viridis", colorbar=dict(title=METRICS.get(metric, metric)),
                               hovertemplate="η=%{y}, B=%{x}: %{text}<extra></extra>", name=METRICS.get(metric, metric)))
    status = f"{METRICS.get(metric, metric)}, {'mean over seeds' if seed in (None, 'mean') else f'seed {seed}'}"
    if ratio is not None:
        cells = [(i, j) for i, lr in enumerate(lrs) for j, b in enumerate(bss) if np.isclose(lr / b, ratio, rtol=1e-6)]
        fig.add_scatter(x=[str(int(bss[j])) for _, j in cells], y=[f"{lrs[i]:g}" for i, _ in cells], mode="markers",
                        marker=dict(symbol="square-open", size=46, color=PALETTE[3], line=dict(width=3)),
                        name=f"equal noise scale {noise_scale_label(lrs[cells[0][0]], bss[cells[0][1]])}"
                        if cells else "equal noise scale")
        vals = [z[i, j] for i, j in cells if np.isfinite(z[i, j])]
        if vals:
            spread = max(vals) / min(vals) if min(vals) > 0 else float("nan")
            status += (f" · {noise_scale_label(lrs[cells[0][0]], bss[cells[0][1]])}: "
                       + ", ".join(f"{v:.3g}" for v in vals) + f" (max/min ×{spread:.2f})")
    fig.update_layout(title=f"{optimizer}: {METRICS.get(metric, metric)} over learning rate η × batch size B",
                      xaxis_title="batch size B", yaxis_title="learning rate η", legend=dict(orientation="h", y=-0.2))
    return fig, status


def ratio_figure(df: pd.DataFrame, metric: str = "lambda_max", optimizer: str = "SGD") -> go.Figure:
    """Final ``metric`` of every run against the noise scale η/B (log–log), coloured by batch size."""
    require_rows("df", df, ("lr", "batch_size", "seed", metric), "an η × B sweep frame")
    last = _finals(df)
    last = last[~last.diverged.astype(bool)] if "diverged" in last else last
    fig = go.Figure()
    for i, (b, g) in enumerate(last.groupby("batch_size")):
        fig.add_scatter(x=g.lr / b, y=g[metric], mode="markers", name=f"{optimizer}, B = {int(b)}",
                        marker=dict(size=10, color=color(i), symbol=i),
                        text=[f"η={lr:g}, seed {s}" for lr, s in zip(g.lr, g.seed)],
                        hovertemplate="%{text}: %{y:.3g}<extra></extra>")
    fig.update_xaxes(type="log", title="noise scale η/B")
    fig.update_yaxes(type="log", title=METRICS.get(metric, metric))
    fig.update_layout(title=f"{METRICS.get(metric, metric)} against the SGD noise scale η/B (every run, every seed)")
    return fig


def sweep_explorer(df: pd.DataFrame, optimizer: str = "SGD") -> Interactive:
    """Heat maps of a cached η × B sweep: choose the metric, the seed and an η/B to outline (only selects)."""
    require_rows("df", df, ("lr", "batch_size", "seed"), "an η × B sweep frame")
    if not any(m in df.columns for m in METRICS):
        raise ValueError(f"df has none of the metrics {', '.join(METRICS)}: expected an η × B sweep")
    last = _finals(df)
    metrics = [(label, m) for m, label in METRICS.items() if m in last.columns]
    seeds = [("mean over seeds", "mean")] + [(f"seed {s}", s) for s in sorted(last.seed.unique())]
    ratios = (last.lr / last.batch_size).round(12)
    repeated = sorted(r for r, k in ratios.value_counts().items() if k > last.seed.nunique())
    ratio_opts = [("none", None)] + [(noise_scale_label(r * 1.0, 1).replace("η/B = ", ""), r) for r in repeated]
    controls = {
        "metric": W.Dropdown(options=metrics, value=metrics[0][1], description="colour", style=_STYLE["style"]),
        "seed": W.Dropdown(options=seeds, value="mean", description="seed", style=_STYLE["style"]),
        "ratio": W.Dropdown(options=ratio_opts, value=repeated[0] if repeated else None,
                            description="outline η/B =", style=_STYLE["style"]),
    }
    return Interactive(controls, lambda metric, seed, ratio: heatmap_figure(df, metric, seed, ratio, optimizer),
                       title="The η × B grid (Three Factors)")
