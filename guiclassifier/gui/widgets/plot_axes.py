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


def short_number(x: float) -> str:
    """0.01 to 100 as plain numbers, the rest as 2e-5 or 1e3: one format for a log axis."""
    if 0.01 <= abs(x) <= 100:
        return f"{x:.2g}"
    return f"{x:.0e}".replace("e-0", "e-").replace("e+0", "e").replace("e+", "e")


def decade_text(exponent: int) -> str:
    return short_number(10.0 ** exponent)


class DecadeAxis(pg.AxisItem):
    """A log axis that names the decades only, in one format. pyqtgraph's own named every minor
    tick, mixing "0.0009" with "9·10⁻⁵", and the labels ran into each other near each decade."""

    def logTickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        decades = [abs(v - round(v)) < 1e-6 for v in values]
        if not any(decades):  # a range inside one decade: name every tick, the same way
            return [short_number(10.0 ** v) for v in values]
        return [decade_text(round(v)) if decade else "" for v, decade in zip(values, decades)]
