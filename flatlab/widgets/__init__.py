"""Widget factories: controls + a pure figure function, testable without a browser.

Only this package imports ipywidgets, so the rest of flatlab runs headless. A factory returns an
:class:`Interactive` (``.widget`` to display, ``.update(**values) -> Figure`` to drive it); every
figure function is also a plain function for readers without a kernel. One module per topic, and every
chapter reaches its widgets the same way, as ``flatlab.widgets.<topic>.<factory>`` (chapter 00's and 01's
factories are also importable from here directly):

=======  ==========================  ==========================================
chapter  module                      e.g.
=======  ==========================  ==========================================
00       ``widgets.landscape``       ``landscape_explorer``
01       ``widgets.sharpness``       ``rescaling_explorer``, ``slice_explorer``
02       ``widgets.sam``             ``sam_mfvi_explorer``
03       ``widgets.lr``              ``quadratic_explorer``
04       ``widgets.implicit``        ``diagonal_explorer``
05       ``widgets.grokking``        ``sweep_explorer``
06       ``widgets.adaptive``        ``warmup_explorer``
=======  ==========================  ==========================================
"""
from . import adaptive, grokking, implicit, landscape, lr, sam, sharpness
from .base import Interactive
from .landscape import landscape_explorer, landscape_gd_figure
from .sharpness import (rescaling_explorer, rescaling_figure, rescaling_table, slice_explorer, slice_figure,
                        slice_surfaces)

__all__ = ["adaptive", "grokking", "implicit", "landscape", "lr", "sam", "sharpness", "Interactive", "landscape_explorer", "landscape_gd_figure", "rescaling_explorer", "rescaling_figure",
           "rescaling_table", "slice_explorer", "slice_figure", "slice_surfaces"]
