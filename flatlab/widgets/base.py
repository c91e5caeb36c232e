"""Widget factories: controls + a pure figure function, testable without a browser.

A factory returns an :class:`Interactive`: ``.widget`` is the ipywidgets box to display (controls,
a status line, one plotly ``FigureWidget`` updated in place) and ``.update(**values)`` recomputes
the figure from the new control values and returns it — the controls' callbacks call exactly
that, so pytest can drive a widget by calling ``update``. Every figure function is also a plain
function (``landscape_gd_figure`` …) for readers without a kernel. Sliders use
``continuous_update=False`` and expensive inputs (landscape grids) are computed once.

Without a kernel (the HTML book) a widget cannot run, so when ``FLATLAB_OFFLINE_FIGURES=1`` (set by
``flatlab book``) a displayed widget also carries :meth:`Interactive.offline_figure`: one plotly figure
holding the figure for each value of its first control, switched by a plotly slider. JupyterLab shows
the live widget; the book's HTML export shows the slider figure.
"""
from __future__ import annotations

import json
import os
import time
from typing import Callable

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from .. import _validate as _v

OFFLINE_ENV = "FLATLAB_OFFLINE_FIGURES"


def control_style(width: str | None = None, continuous_update: bool | None = False) -> dict:
    """The keyword arguments every flatlab control shares: full-width descriptions, an optional fixed width,
    and (for sliders) an update only when the slider is released. ``continuous_update=None`` leaves it out
    (buttons and dropdowns have no such option)."""
    kw: dict = {"style": {"description_width": "initial"}}
    if width is not None:
        kw["layout"] = W.Layout(width=width)
    if continuous_update is not None:
        kw["continuous_update"] = continuous_update
    return kw


class Interactive:
    """Controls wired to a pure ``figure_fn(**values) -> (Figure, status text)``."""

    def __init__(self, controls: dict[str, W.ValueWidget], figure_fn: Callable[..., tuple[go.Figure, str]],
                 title: str = ""):
        self.controls = controls
        self.figure_fn = figure_fn
        self.status = W.HTML(value="")
        self.last_update_ms = float("nan")
        fig, text = figure_fn(**self.values)
        self.figure = fig
        self._fig_widget = None
        self._set_status(text)
        for control in controls.values():
            control.observe(self._on_change, names="value")
        self._title = W.HTML(f"<b>{title}</b>") if title else None

    @property
    def values(self) -> dict:
        return {name: c.value for name, c in self.controls.items()}

    @property
    def fig_widget(self) -> go.FigureWidget:
        if self._fig_widget is None:
            self._fig_widget = go.FigureWidget(self.figure)
        return self._fig_widget

    @property
    def widget(self) -> W.Box:
        """The box to display: title, controls, status line, figure."""
        parts = [self._title] if self._title else []
        parts += [W.HBox(list(self.controls.values()), layout=W.Layout(flex_flow="row wrap")), self.status,
                  self.fig_widget]
        box = _Box(parts)
        box.interactive = self
        return box

    def offline_figure(self, control: str | None = None, values: list | None = None,
                       max_values: int = 12) -> go.Figure:
        """One figure for readers without a kernel: the figure at each value of ``control`` (default:
        the first control with several values; the others keep their current values), switched by a
        plotly slider. Starts at the control's current value."""
        if control is None:
            control = next((n for n, c in self.controls.items() if len(control_values(c, max_values)) > 1), None)
            if control is None:
                return self.figure
        if control not in self.controls:
            raise ValueError(f"control={control!r} is not one of {', '.join(self.controls)}")
        values = list(values) if values is not None else control_values(self.controls[control], max_values)
        if not values:
            raise ValueError(f"control={control!r} has no discrete values to step through; pass values=[…]")
        current = self.values
        panels = [self.figure_fn(**{**current, control: v}) for v in values]
        active = min(range(len(values)), key=lambda i: _distance(values[i], current[control]))
        out = go.Figure(layout=panels[active][0].layout)
        # a trace equal in every panel (a landscape's contours, a reference line) is stored once
        keys = [[json.dumps(t.to_plotly_json(), sort_keys=True, default=str) for t in fig.data] for fig, _ in panels]
        shared = set(keys[0]).intersection(*keys[1:])
        owner, seen = [], set()
        for i, (fig, _) in enumerate(panels):
            for trace, key in zip(fig.data, keys[i]):
                own = True if trace.visible is None else trace.visible
                if key in shared:
                    if key in seen:
                        continue
                    seen.add(key)
                    owner.append((None, own))
                else:
                    owner.append((i, own))
                out.add_trace(trace.update(visible=own if owner[-1][0] in (None, active) else False))
        steps = []
        for i, (value, (fig, text)) in enumerate(zip(values, panels)):
            title = fig.layout.title.text or ""
            steps.append(dict(
                label=_label(value), method="update",
                args=[{"visible": [own if j in (None, i) else False for j, own in owner]},
                      {"title.text": f"{title}<br><sup>{text}</sup>" if text else title,
                       "annotations": [a.to_plotly_json() for a in fig.layout.annotations],
                       "shapes": [sh.to_plotly_json() for sh in fig.layout.shapes]}]))
        out.update_layout(title_text=steps[active]["args"][1]["title.text"])
        _add_slider_strip(out, dict(active=active, steps=steps, currentvalue=dict(prefix=f"{control} = ")))
        return out

    def _set_status(self, text: str) -> None:
        self.status.value = f"<span style='font-family:monospace'>{text}</span>"

    def _on_change(self, change) -> None:
        self.update()

    def update(self, **values) -> go.Figure:
        """Set the given control values (unnamed ones keep theirs), redraw, return the new figure."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise ValueError(f"unknown control(s) {sorted(unknown)}; allowed: {', '.join(self.controls)}")
        for name, value in values.items():
            c = self.controls[name]
            if c.value != value:
                # detach the callback while the value is set *and* while held notifications are
                # flushed (on leaving the ``with``), so one update() computes the figure once
                c.unobserve(self._on_change, names="value")
                try:
                    with c.hold_trait_notifications():
                        c.value = value
                finally:
                    c.observe(self._on_change, names="value")
        self._set_status("computing…")
        t0 = time.perf_counter()
        fig, text = self.figure_fn(**self.values)
        self.figure = fig
        if self._fig_widget is not None:
            _replace_in_place(self._fig_widget, fig)
        self.last_update_ms = 1e3 * (time.perf_counter() - t0)
        self._set_status(f"{text} &nbsp;·&nbsp; updated in {self.last_update_ms:.0f} ms")
        return fig

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


SLIDER_STRIP_PX = 150
DEFAULT_HEIGHT_PX = 525  # plotly's notebook renderer draws a figure without a height this tall


def _margin(fig: go.Figure, side: str, default: int) -> float:
    value = getattr(fig.layout.margin, side)
    if value is None:
        value = getattr(fig.layout.template.layout.margin, side) if fig.layout.template else None
    return float(default if value is None else value)


def _add_slider_strip(fig: go.Figure, slider: dict) -> None:
    """Put ``slider`` in a strip of its own between the title and the plot area.

    The figure grows by ``SLIDER_STRIP_PX`` and its top margin by the same amount, so the plot area and
    everything laid out around it (a legend below the plot however many rows it wraps to, axis titles,
    tick labels, a colour bar) keep their pixel positions, and the title stays where it was at the top.
    Below the plot a slider cannot be placed safely: a horizontal legend there wraps to as many rows as
    the figure's width demands, which only the browser knows (chapter 02's explorer drew its slider across
    a ten-row legend)."""
    height = float(fig.layout.height or DEFAULT_HEIGHT_PX)
    top, bottom = _margin(fig, "t", 100), _margin(fig, "b", 80)
    plot_height = max(height - top - bottom, 1.0)
    new_height = height + SLIDER_STRIP_PX
    slider = dict(slider, x=0, len=1, xanchor="left", y=1 + (SLIDER_STRIP_PX - 4) / plot_height, yanchor="top",
                  pad=dict(t=0, b=0))
    fig.update_layout(sliders=[slider], height=new_height, margin=dict(t=top + SLIDER_STRIP_PX),
                      title=dict(yref="container", y=1 - (top / 2) / new_height, yanchor="middle"))


class _Box(W.VBox):
    """The displayed widget; in the book (``FLATLAB_OFFLINE_FIGURES=1``) it also carries the
    kernel-free slider figure as ``text/html`` beside the widget view."""

    interactive: Interactive | None = None

    def _repr_mimebundle_(self, **kwargs):
        data = super()._repr_mimebundle_(**kwargs)
        if os.environ.get(OFFLINE_ENV) == "1" and self.interactive is not None and data:
            import plotly.io as pio

            fig = self.interactive.offline_figure()
            data["text/html"] = pio.renderers["notebook"].to_mimebundle(fig.to_dict())["text/html"]
        return data


require_rows = _v.rows     # ValueError naming the parameter unless a DataFrame with those columns and ≥ 1 row
require_items = _v.items   # ValueError("<name> is empty: expected <what>") unless there is at least one item


def control_values(control: W.ValueWidget, max_values: int = 12) -> list:
    """The values a reader without a kernel can step through: a selection's options, a slider's
    range (at most ``max_values`` points, on its step grid, always with the current value)."""
    if isinstance(control, (W.Dropdown, W.ToggleButtons, W.RadioButtons, W.SelectionSlider, W.Select)):
        return list(control._options_values)
    if isinstance(control, (W.Checkbox, W.ToggleButton)):
        return [False, True]
    if isinstance(control, W.FloatLogSlider):
        exps = np.linspace(control.min, control.max, max_values)
        values = [float(control.base ** e) for e in exps]
    elif isinstance(control, (W.IntSlider, W.FloatSlider)):
        grid = np.linspace(control.min, control.max, max_values)
        if control.step:
            grid = control.min + np.round((grid - control.min) / control.step) * control.step
        values = [int(round(v)) if isinstance(control, W.IntSlider) else round(float(v), 10) for v in grid]
    else:
        return []
    values = sorted(set(values) | {control.value})
    return values


def _distance(a, b) -> float:
    try:
        return abs(float(a) - float(b))
    except (TypeError, ValueError):
        return 0.0 if a == b else 1.0


def _label(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _replace_in_place(fw: go.FigureWidget, fig: go.Figure) -> None:
    """Copy ``fig`` into the displayed FigureWidget without re-creating it."""
    with fw.batch_update():
        if len(fw.data) == len(fig.data) and all(a.type == b.type for a, b in zip(fw.data, fig.data)):
            for old, new in zip(fw.data, fig.data):
                old.update(new.to_plotly_json(), overwrite=True)
        else:
            fw.data = ()
            fw.add_traces(list(fig.data))
        fw.layout.annotations, fw.layout.shapes = (), ()
        layout = fig.layout.to_plotly_json()
        if "template" in layout and fw.layout.template.to_plotly_json() == layout["template"]:
            del layout["template"]  # the same template again: re-validating it would cost ~10 ms of a redraw
        fw.layout.update(layout, overwrite=True)
