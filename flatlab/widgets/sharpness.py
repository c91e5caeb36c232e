"""Chapter 01: views of the rescaling paradox and of 2-D loss slices. The tables and slices are computed by
:func:`flatlab.curvature.rescaling_table` and :func:`flatlab.curvature.slice_surfaces` (re-exported here); the
controls only select."""
from __future__ import annotations

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from ..curvature import rescaling_table as rescaling_table, slice_surfaces as slice_surfaces
from ..plots import PALETTE, surface_figure
from .base import Interactive, control_style, require_items, require_rows


def rescaling_figure(table, alpha: float = 1.0) -> tuple[go.Figure, str]:
    """Sharpness measures of the rescaled networks relative to α = 1, with the selected α marked."""
    _check_rescaling(table)
    base = table.iloc[(table.alpha - 1.0).abs().argmin()]
    row = table.iloc[(table.alpha - alpha).abs().argmin()]
    fig = go.Figure()
    for i, (col, label) in enumerate((("lambda_max", "λ_max (Lanczos)"), ("worst_case", "worst-case sharpness"),
                                      ("adaptive", "adaptive, ASAM's T = |w| + η on weights"),
                                      ("adaptive_exact", "adaptive, T = |w| on every parameter"))):
        ratio = table[col] / base[col]
        fig.add_scatter(x=table.alpha, y=ratio, mode="lines+markers", name=label,
                        line=dict(color=PALETTE[i]), marker=dict(size=6))
        fig.add_scatter(x=[row.alpha], y=[row[col] / base[col]], mode="markers", showlegend=False,
                        marker=dict(size=14, color=PALETTE[i], symbol="circle-open", line=dict(width=3)))
    fig.add_hline(y=1.0, line=dict(color="grey", dash="dot"), annotation_text="unchanged")
    fig.update_xaxes(type="log", title="rescaling factor α (layer × α, next layer × 1/α)")
    fig.update_yaxes(type="log", title="value relative to α = 1")
    fig.update_layout(title=f"same function, different sharpness — α = {row.alpha:.3g}")
    text = (f"α = {row.alpha:.3g}: outputs change by {row.max_output_change:.1e}; λ_max = {row.lambda_max:.4g} "
            f"(×{row.lambda_max / base.lambda_max:.3g}); adaptive sharpness ×{row.adaptive / base.adaptive:.3g} with "
            f"ASAM's operator, ×{row.adaptive_exact / base.adaptive_exact:.4f} with T = |w|")
    return fig, text


def _check_rescaling(table) -> None:
    require_rows("table", table, ("alpha", "lambda_max", "worst_case", "adaptive", "adaptive_exact",
                                  "max_output_change"),
                 "from rescaling_table")


def rescaling_explorer(table) -> Interactive:
    """A slider over the precomputed α values of :func:`rescaling_table` (each update only selects)."""
    _check_rescaling(table)
    values = [float(a) for a in table.alpha]
    slider = W.SelectionSlider(options=[(f"{a:.3g}", a) for a in values], value=min(values, key=lambda a: abs(a - 1)),
                               description="rescaling α", **control_style("420px"))
    return Interactive({"alpha": slider}, lambda alpha: rescaling_figure(table, alpha),
                       title="The rescaling paradox (Dinh et al. 2017)")


def _check_surfaces(surfaces) -> None:
    require_items("surfaces", surfaces, "the slices of slice_surfaces, keyed (model name, normalized)")


def slice_figure(surfaces: dict, model: str, normalized: bool = True, resolution: int = 41,
                 zmax: float | None = None) -> tuple[go.Figure, str]:
    _check_surfaces(surfaces)
    if (model, normalized) not in surfaces:
        raise ValueError(f"(model, normalized)={(model, normalized)!r} is not in surfaces; available: {sorted(surfaces)}")
    alphas, betas, s = surfaces[(model, normalized)]
    stride = max(1, (len(alphas) - 1) // (resolution - 1))
    a, b, z = alphas[::stride], betas[::stride], s[::stride, ::stride]
    kind = "filter-normalized" if normalized else "plain (same length)"
    fig = surface_figure(a, b, z, zmax=zmax, title=f"{model}: loss on a 2-D slice, {kind} directions")
    centre = z[len(a) // 2, len(b) // 2]
    text = f"{model}, {kind}, {len(a)}×{len(b)} grid: loss at w = {centre:.3g}, mean loss on the slice {np.mean(z):.3g}"
    return fig, text


def slice_explorer(surfaces: dict, zmax: float | None = None) -> Interactive:
    """Choose the minimum, the kind of direction and the resolution of a precomputed 2-D slice."""
    _check_surfaces(surfaces)
    names = sorted({k[0] for k in surfaces}, key=list(dict.fromkeys(k[0] for k in surfaces)).index)
    n = len(next(iter(surfaces.values()))[0])
    resolutions = [r for r in (11, 21, 41, 81) if r <= n and (n - 1) % (r - 1) == 0]
    style = control_style(continuous_update=None)
    controls = {
        "model": W.Dropdown(options=names, value=names[0], description="minimum", **style),
        "normalized": W.ToggleButtons(options=[("filter-normalized", True), ("plain", False)], value=True,
                                      description="directions", **style),
        "resolution": W.Dropdown(options=resolutions, value=resolutions[-1], description="resolution", **style),
    }
    return Interactive(controls, lambda model, normalized, resolution: slice_figure(surfaces, model, normalized,
                                                                                   resolution, zmax),
                       title="2-D loss slices around a minimum")
