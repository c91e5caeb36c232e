"""Widget factories: controls + a pure figure function, testable without a browser.

Only this package imports ipywidgets, so the rest of flatlab runs headless. A factory returns an
:class:`Interactive` (``.widget`` to display, ``.update(**values) -> Figure`` to drive it); every
figure function is also a plain function for readers without a kernel. One module per topic.
"""
from .base import Interactive
from .landscape import landscape_explorer, landscape_gd_figure
from .sharpness import (rescaling_explorer, rescaling_figure, rescaling_table, slice_explorer, slice_figure,
                        slice_surfaces)

__all__ = ["Interactive", "landscape_explorer", "landscape_gd_figure", "rescaling_explorer", "rescaling_figure",
           "rescaling_table", "slice_explorer", "slice_figure", "slice_surfaces"]
