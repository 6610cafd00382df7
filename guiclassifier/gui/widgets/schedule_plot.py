"""The SGDR learning-rate schedule, one curve per layer group, with a marker at the current batch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg

from guiclassifier.gui.widgets.plot_axes import DecadeAxis, cache_axes, plain_numbers

GROUP_COLOURS = ((148, 103, 189), (44, 160, 44), (31, 90, 180))
GROUP_NAMES = ("early layers", "later layers", "head")


class SchedulePlot(pg.PlotWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent, axisItems={"left": DecadeAxis(orientation="left")})
        self.setObjectName("schedulePlot")
        cache_axes(self.getPlotItem())
        plain_numbers(self.getPlotItem())
        self.setBackground(None)
        self.setLabel("bottom", "epoch")
        self.setLabel("left", "learning rate")
        self.showGrid(x=True, y=True, alpha=0.2)
        self.addLegend(offset=(-10, 10))
        self.curves: list[pg.PlotDataItem] = []
        self.marker = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((230, 120, 0), width=2))
        self.marker.setVisible(False)
        self.addItem(self.marker)
        self._steps_per_epoch = 1

    def set_schedule(self, group_lrs: Sequence[Sequence[float]], steps_per_epoch: int) -> None:
        """group_lrs[g][step]: the lr of group g at each batch. Identical groups draw one curve."""
        for curve in self.curves:
            self.removeItem(curve)
        self.curves = []
        self._steps_per_epoch = max(1, steps_per_epoch)
        distinct = [list(g) for g in group_lrs]
        if all(g == distinct[-1] for g in distinct):
            distinct = [distinct[-1]]
        # Groups 9x apart on a linear axis put the early one flat on zero: a log axis shows each.
        log = len(distinct) > 1
        self.setLogMode(y=log)
        self.setLabel("left", "learning rate (log scale)" if log else "learning rate")
        if log:  # SGDR anneals to 0 at a cycle's end, which a log axis cannot show
            floor = min(max(g) for g in distinct) * 1e-3
            distinct = [[max(lr, floor) for lr in g] for g in distinct]
        for i, lrs in enumerate(distinct):
            xs = np.arange(len(lrs)) / self._steps_per_epoch
            g = i if len(distinct) > 1 else len(GROUP_COLOURS) - 1
            name = GROUP_NAMES[g] if len(distinct) > 1 else "all layer groups"
            self.curves.append(self.plot(xs, lrs, pen=pg.mkPen(GROUP_COLOURS[g], width=2), name=name))
        self.marker.setVisible(False)

    def set_position(self, step: int) -> None:
        self.marker.setValue(step / self._steps_per_epoch)
        self.marker.setVisible(True)

    def curve_data(self) -> list[np.ndarray]:
        """The lrs drawn, per curve (in lr units, whatever the axis)."""
        return [np.asarray(c.yData) for c in self.curves]
