"""Chapter 00: gradient descent on a 2-D landscape with a sharp and a flat minimum."""
from __future__ import annotations

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from ..landscapes import Landscape, sharp_and_flat
from ..plots import landscape_figure
from ..train import trajectory
from .base import Interactive, control_style


def landscape_gd_figure(lr: float = 0.09, start_x: float = -0.9, start_y: float = 0.4, steps: int = 300,
                        momentum: float = 0.0, landscape: Landscape | None = None, grid=None) -> tuple[go.Figure, str]:
    """GD from (start_x, start_y) with step ``lr`` on a landscape; returns (figure, one-line verdict)."""
    landscape = landscape or sharp_and_flat()
    traj = trajectory(landscape, (start_x, start_y), lr=lr, steps=steps, momentum=momentum)
    sharp = max(landscape.basins, key=lambda b: b.lambda_max)
    threshold = 2 / sharp.lambda_max
    where = f"diverged at step {traj.diverged_step}" if traj.diverged else f"ends in the {traj.basin} minimum"
    verdict = (f"η = {lr:.3g} {'>' if lr > threshold else '<'} 2/λ_max({sharp.name}) = {threshold:.3g}: {where}"
               f" (loss {traj.losses[-1]:.3g})")
    fig = landscape_figure(landscape, [traj], labels=[f"GD η={lr:.3g}"], grid=grid,
                           title=f"GD on a sharp and a flat minimum — {where}")
    return fig, verdict


def landscape_explorer(landscape: Landscape | None = None, lr: float = 0.09, start=(-0.9, 0.4),
                       steps: int = 300) -> Interactive:
    """Sliders for the learning rate and the start point of GD on a 2-D landscape."""
    landscape = landscape or sharp_and_flat()
    grid = landscape.grid((-2.5, 3.5), (-2.5, 2.5), 121)  # computed once, reused by every update
    style = control_style("320px")
    controls = {
        # log scale: small η (stays in the sharp pit), 2/λ_sharp < η < 2/λ_flat (escapes), η > 2/λ_flat (diverges)
        "lr": W.FloatLogSlider(value=lr, base=10, min=-2, max=np.log10(5.0), step=0.01, readout_format=".3f",
                               description="learning rate η", **style),
        "start_x": W.FloatSlider(value=start[0], min=-2.4, max=3.4, step=0.05, description="start w₁", **style),
        "start_y": W.FloatSlider(value=start[1], min=-2.4, max=2.4, step=0.05, description="start w₂", **style),
    }

    def figure_fn(lr, start_x, start_y):
        return landscape_gd_figure(lr, start_x, start_y, steps=steps, landscape=landscape, grid=grid)

    return Interactive(controls, figure_fn, title="Gradient descent on a sharp and a flat minimum")


