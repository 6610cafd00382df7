"""Plot axes: plain numbers, and cheaper repaints (rendered once into a pixmap, redrawn only when
they change)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QGraphicsItem


def cache_axes(plot: pg.PlotItem) -> None:
    """Replaying an axis' tick labels and grid was most of the cost of a live plot's repaint
    (benchmarks/README.md, window overhead); cached, an axis is re-rendered only when its range
    or the plot's size changes."""
    for name in ("left", "bottom", "right", "top"):
        plot.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


def plain_numbers(plot: pg.PlotItem) -> None:
    """Tick labels show the values themselves: pyqtgraph's SI scaling turned a loss of 0.15 into
    "loss (x0.001)" with ticks of 150, which nobody reads right."""
    for name in ("left", "bottom", "right", "top"):
        plot.getAxis(name).enableAutoSIPrefix(False)
