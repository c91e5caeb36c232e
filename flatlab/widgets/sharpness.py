"""Chapter 01: the rescaling paradox and 2-D loss slices (precomputed; the controls only select)."""
from __future__ import annotations

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from ..plots import PALETTE, surface_figure
from .base import Interactive, control_style, require_items, require_rows


def rescaling_table(model, loss_fn, data, alphas=(0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0), rho: float = 0.05,
                    layer: int = 0):
    """For each α: λ_max, worst-case and adaptive sharpness of ``rescale_layers(model, α, layer)``, and how
    far its outputs are from the original's. Returns a pandas DataFrame (one row per α).

    Two adaptive sharpnesses: ``adaptive`` with Kwon et al.'s operator ``T = |w| + 0.01`` on weights and
    ``T = 1`` on biases (the paper's), and ``adaptive_exact`` with ``T = |w|`` on every parameter — the
    one the rescaling leaves exactly unchanged."""
    import pandas as pd

    from ..curvature import adaptive_sharpness, top_eigenvalues, worst_case_sharpness

    require_items("alphas", alphas, "the rescaling factors α, e.g. (0.1, 1.0, 10.0)")
    from ..models import rescale_layers

    x = data[0]
    with np.errstate(all="ignore"):
        reference = model(x).detach()
    rows = []
    for alpha in alphas:
        r = rescale_layers(model, float(alpha), layer)
        rows.append({
            "alpha": float(alpha),
            "lambda_max": float(top_eigenvalues(r, loss_fn, data, k=1, tol=1e-4)[0]),
            "worst_case": worst_case_sharpness(r, loss_fn, data, rho=rho),
            "adaptive": adaptive_sharpness(r, loss_fn, data, rho=rho),
            "adaptive_exact": adaptive_sharpness(r, loss_fn, data, rho=rho, eta=0.0, weights_only=False),
            "max_output_change": float((r(x).detach() - reference).abs().max()),
        })
    return pd.DataFrame(rows)


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


def slice_surfaces(models: dict, loss_fn, data, span: float = 1.0, n: int = 41, seed: int = 0) -> dict:
    """Precompute 2-D loss slices for each model and both kinds of direction (filter-normalized or plain).

    Returns {(model name, normalized): (alphas, betas, surface)} on an n×n grid; coarser
    resolutions are sub-grids of it, so a widget never recomputes."""
    from ..curvature import loss_surface, random_direction

    require_items("models", models, "a dict mapping a name to a trained model")
    alphas = np.linspace(-span, span, n)
    out = {}
    for name, model in models.items():
        for normalized in (True, False):
            d1 = random_direction(model, filter_normalize=normalized, seed=seed)
            d2 = random_direction(model, filter_normalize=normalized, seed=seed + 1)
            if not normalized:  # plain directions of the same total length as the filter-normalized ones
                ref1 = random_direction(model, True, seed)
                s = float(sum((r**2).sum() for r in ref1) ** 0.5 / sum((d**2).sum() for d in d1) ** 0.5)
                d1, d2 = [d * s for d in d1], [d * s for d in d2]
            out[(name, normalized)] = (alphas, alphas, loss_surface(model, loss_fn, data, d1, d2, alphas, alphas))
    return out


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
