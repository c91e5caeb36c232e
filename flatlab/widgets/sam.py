"""Chapter 02 (SAM versus MFVI): views of the 2-D trajectories of SGD, SAM, MFVI and MixSAM, and the chapter's
figures.

The runs are :mod:`flatlab.basins`' (flatlab's own optimizer classes on a 2-element parameter, re-exported
here so chapter 02's ``samw.basin_table`` and ``samw.PIT_STARTS`` keep working). Everything a widget shows is
computed from a small grid of slider values; results are cached, so a slider that returns to a value only
selects.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import ipywidgets as W
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from ..basins import METHODS_2D, PIT_STARTS, basin_table, landscape_run, make_2d_optimizer
from ..landscapes import Landscape, sharp_and_flat
from ..plots import PALETTE, color, landscape_figure
from ..train import Trajectory
from .base import Interactive, control_style, require_items, require_rows

def basin_figure(table: pd.DataFrame, title: str = "where each optimizer ends, started inside the sharp pit"):
    """Fraction of runs ending in the flat minimum, against ρ (SAM) or σ (MFVI); SGD as a reference line."""
    require_rows("table", table, ("method", "value", "basin"), "from basin_table")
    fig = go.Figure()
    sgd = table[table.method == "SGD"]
    for i, (method, rows) in enumerate(table[table.method != "SGD"].groupby("method", sort=False)):
        frac = rows.groupby("value").basin.apply(lambda b: float((b == "flat").mean()))
        axis_name = "ρ" if method == "SAM" else "σ"
        fig.add_scatter(x=frac.index, y=frac.values, mode="lines+markers", name=f"{method} (x = {axis_name})",
                        line=dict(color=color(i + 1)))
    if len(sgd):
        fig.add_hline(y=float((sgd.basin == "flat").mean()), line=dict(color=color(0), dash="dot"),
                      annotation_text=f"SGD: {float((sgd.basin == 'flat').mean()):.0%} flat", annotation_position="top left")
    fig.update_layout(title=title, xaxis_title="perturbation size (SAM: radius ρ; MFVI: standard deviation σ)",
                      yaxis_title="fraction of runs ending in the flat minimum")
    fig.update_xaxes(type="log")
    fig.update_yaxes(range=[-0.05, 1.05])
    return fig


def perturbation_figure(landscape: Landscape | None = None, w=(-0.75, 0.35), rho: float = 0.5, std: float = 0.3,
                        n_samples: int = 30, seed: int = 0, grid=None) -> go.Figure:
    """The shared picture: at a point w, SAM evaluates the gradient at w + ρ g/‖g‖ (on the ρ-circle),
    MFVI at random points w + σξ. Arrows show −∇L (scaled) at each evaluation point."""
    landscape = landscape or sharp_and_flat()
    w = torch.as_tensor(np.asarray(w, dtype=float), dtype=torch.float64)
    g = landscape.grad(w)
    e_sam = rho * g / g.norm()
    xi = torch.randn(n_samples, 2, generator=torch.Generator().manual_seed(int(seed)), dtype=torch.float64)
    samples = w + std * xi
    fig = landscape_figure(landscape, [], xlim=(-2.0, 1.0), ylim=(-1.0, 1.6), grid=grid,
                           title=f"both take the gradient at a perturbed point: SAM ρ={rho:g}, MFVI σ={std:g}")
    t = np.linspace(0, 2 * np.pi, 100)
    fig.add_scatter(x=w[0].item() + rho * np.cos(t), y=w[1].item() + rho * np.sin(t), mode="lines",
                    line=dict(color=color(1), dash="dot"), name=f"SAM's ball ‖ε‖ ≤ ρ = {rho:g}")
    fig.add_scatter(x=w[0].item() + std * np.cos(t), y=w[1].item() + std * np.sin(t), mode="lines",
                    line=dict(color=color(2), dash="dot"), name=f"MFVI's 1σ circle, σ = {std:g}")
    fig.add_scatter(x=samples[:, 0].numpy(), y=samples[:, 1].numpy(), mode="markers", marker=dict(color=color(2), size=6),
                    name="MFVI samples w + σξ")
    p = w + e_sam
    fig.add_scatter(x=[w[0].item(), p[0].item()], y=[w[1].item(), p[1].item()], mode="lines+markers",
                    line=dict(color=color(1), width=3), marker=dict(size=[8, 12], symbol=["circle", "diamond"]),
                    name="SAM's point w + ρ g/‖g‖")
    fig.add_scatter(x=[w[0].item()], y=[w[1].item()], mode="markers", marker=dict(color="black", size=10),
                    name="current mean w")
    pts = torch.cat([w[None], p[None], samples])
    gs = landscape.grad(pts)
    scale = 0.25 / gs.norm(dim=1).clamp_min(1e-9)
    ends = pts - scale[:, None] * gs
    xs, ys = [], []
    for a, b in zip(pts.numpy(), ends.numpy()):
        xs += [a[0], b[0], None]
        ys += [a[1], b[1], None]
    fig.add_scatter(x=xs, y=ys, mode="lines", line=dict(color="#555555", width=1), name="−∇L there (direction)")
    return fig


class _TrajectoryCache:
    """Cached 2-D runs keyed by their hyper-parameters (a slider that returns to a value only selects)."""

    def __init__(self, landscape: Landscape, start, lr: float, steps: int, seed: int):
        self.landscape, self.start, self.lr, self.steps, self.seed = landscape, tuple(start), lr, steps, seed
        self.get = lru_cache(maxsize=512)(self._run)

    def _run(self, method: str, rho: float = 0.0, std: float = 0.0, mix: float = 0.0) -> Trajectory:
        return landscape_run(self.landscape, self.start, method, self.lr, self.steps, rho=rho or 0.5,
                             std=std or 0.3, mix=mix, seed=self.seed)


def sam_mfvi_figure(rho: float = 0.5, std: float = 0.3, mix: float = 0.5, runs: _TrajectoryCache | None = None,
                    grid=None) -> tuple[go.Figure, str]:
    """Trajectories of SGD, SAM(ρ), MFVI(σ fixed) and MixSAM(ρ, σ, m) from one start; (figure, status)."""
    runs = runs or _TrajectoryCache(sharp_and_flat(), PIT_STARTS[0], 0.08, 150, 0)
    trajs = [runs.get("sgd"), runs.get("sam", rho=rho), runs.get("mfvi", std=std),
             runs.get("mixsam", rho=rho, std=std, mix=mix)]
    labels = [f"SGD η={runs.lr:g}", f"SAM ρ={rho:g}", f"MFVI σ={std:g} (fixed)", f"MixSAM m={mix:g}, ρ={rho:g}, σ={std:g}"]
    fig = landscape_figure(runs.landscape, trajs, labels=labels, grid=grid,
                           title=f"SGD, SAM and MFVI from ({runs.start[0]:g}, {runs.start[1]:g}), {runs.steps} steps of η={runs.lr:g}")
    t = np.linspace(0, 2 * np.pi, 60)
    for tr, radius, i, name in ((trajs[1], rho, 1, f"SAM's ρ-ball at its end (ρ={rho:g})"),
                                (trajs[2], std, 2, f"MFVI's 1σ circle at its end (σ={std:g})")):
        if not tr.diverged:
            fig.add_scatter(x=tr.end[0] + radius * np.cos(t), y=tr.end[1] + radius * np.sin(t), mode="lines",
                            line=dict(color=color(i), dash="dot", width=1), name=name, hoverinfo="skip")
    ends = [f"{lab.split(' ')[0]} → {'diverged' if tr.diverged else tr.basin}" for lab, tr in zip(labels, trajs)]
    return fig, " · ".join(ends)


def sam_mfvi_explorer(landscape: Landscape | None = None, start=PIT_STARTS[0], lr: float = 0.08, steps: int = 150,
                      rhos: Sequence[float] = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0),
                      stds: Sequence[float] = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5),
                      mixes: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0), seed: int = 0,
                      rho: float = 0.5, std: float = 0.3, mix: float = 0.5) -> Interactive:
    """Sliders for SAM's ρ, MFVI's σ and MixSAM's mixing coefficient m on the sharp-and-flat landscape.

    SAM's and MFVI's trajectories for every slider value are computed here; MixSAM's (which depends
    on all three knobs) when a combination is first selected — one 2-D run of ``steps`` steps, a few
    tens of milliseconds — and cached, so returning to a value only selects. ``seed`` fixes MFVI's and
    MixSAM's noise.
    """
    for name, values, what in (("rhos", rhos, "SAM radii ρ"), ("stds", stds, "MFVI standard deviations σ"),
                               ("mixes", mixes, "MixSAM mixing coefficients m")):
        require_items(name, values, f"the {what} to choose from")
    landscape = landscape or sharp_and_flat()
    grid = landscape.grid((-2.5, 3.5), (-2.5, 2.5), 121)
    runs = _TrajectoryCache(landscape, start, lr, steps, seed)
    # SAM depends on ρ only and MFVI on σ only: run them all now (a few hundred ms), so that a slider move
    # computes at most one new trajectory (MixSAM's, which depends on all three knobs)
    runs.get("sgd")
    for r in rhos:
        runs.get("sam", rho=float(r))
    for s in stds:
        runs.get("mfvi", std=float(s))
    style = control_style("330px")

    def slider(values, value, description):
        opts = [(f"{v:g}", float(v)) for v in values]
        return W.SelectionSlider(options=opts, value=min((float(v) for v in values), key=lambda v: abs(v - value)),
                                 description=description, **style)

    controls = {"rho": slider(rhos, rho, "SAM radius ρ"), "std": slider(stds, std, "MFVI std σ"),
                "mix": slider(mixes, mix, "MixSAM mix m")}
    return Interactive(controls, lambda rho, std, mix: sam_mfvi_figure(rho, std, mix, runs=runs, grid=grid),
                       title="SGD, SAM, MFVI and MixSAM on a sharp and a flat minimum")


# ----------------------------------------------------------------------------------------------
# figures for the MNIST-1D comparison
# ----------------------------------------------------------------------------------------------
def reliability_figure(calibrations: dict, title: str = "reliability diagram (test set)") -> go.Figure:
    """Accuracy against confidence per bin, one line per predictor; the diagonal is perfect calibration.

    ``calibrations`` maps a label to the dict returned by :func:`flatlab.optim.calibration`; the
    legend shows each ECE.
    """
    require_items("calibrations", calibrations, "a dict mapping a predictor to flatlab.optim.calibration's result")
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="grey", dash="dot"), name="perfect calibration")
    for i, (label, c) in enumerate(calibrations.items()):
        ok = np.asarray(c["bin_count"]) > 0
        fig.add_scatter(x=np.asarray(c["bin_confidence"])[ok], y=np.asarray(c["bin_accuracy"])[ok],
                        mode="lines+markers", name=f"{label}: ECE {c['ece']:.3f}", line=dict(color=color(i)),
                        marker=dict(size=4 + 10 * np.sqrt(np.asarray(c["bin_count"])[ok] / max(1, np.sum(c["bin_count"])))))
    fig.update_layout(title=title, xaxis_title="confidence (max predicted probability)",
                      yaxis_title="accuracy in the bin")
    fig.update_xaxes(range=[0, 1.02])
    fig.update_yaxes(range=[0, 1.02])
    return fig


def comparison_figure(table: pd.DataFrame, metrics=(("test_acc", "test accuracy"), ("lambda_max", "λ_max"),
                                                    ("ece", "ECE (point)")),
                      title: str = "optimizers compared at equal training loss") -> go.Figure:
    """One bar panel per metric, one bar per optimizer (``table`` indexed by optimizer label)."""
    from plotly.subplots import make_subplots

    require_rows("table", table, (), "one row per optimizer, indexed by its label")
    wanted = [m for m, _ in metrics]
    metrics = [(m, name) for m, name in metrics if m in table.columns]
    if not metrics:
        raise ValueError(f"table has none of the metric columns {wanted}: expected at least one of them "
                         f"(columns: {', '.join(map(str, table.columns))})")
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=[name for _, name in metrics])
    for j, (m, name) in enumerate(metrics, start=1):
        fig.add_bar(x=list(table.index), y=table[m], marker_color=[color(i) for i in range(len(table))],
                    showlegend=False, name=name, row=1, col=j)
        fig.update_yaxes(title_text=name, row=1, col=j)
    fig.update_layout(title=title)
    return fig


METHODS = METHODS_2D   # the name this module had for them

__all__ = ["METHODS", "METHODS_2D", "PIT_STARTS", "make_2d_optimizer", "landscape_run", "basin_table", "basin_figure",
           "perturbation_figure", "sam_mfvi_figure", "sam_mfvi_explorer", "reliability_figure",
           "comparison_figure", "PALETTE"]
