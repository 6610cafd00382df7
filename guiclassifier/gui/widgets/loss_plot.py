"""Training history of the open project: smoothed train loss per batch, valid loss and accuracy per
epoch, with the boundaries between stages marked."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

from guiclassifier.gui.widgets.plot_axes import cache_axes, plain_numbers


class LossPlot(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("lossPlot")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.loss = pg.PlotWidget(background=None)
        self.loss.setLabel("left", "loss")
        self.loss.setLabel("bottom", "batches")
        self.loss.showGrid(x=True, y=True, alpha=0.2)
        self.loss.addLegend(offset=(-10, 10))
        self.train_curve = self.loss.plot([], [], pen=pg.mkPen((31, 90, 180), width=2), name="train (smoothed)")
        self.valid_curve = self.loss.plot([], [], pen=pg.mkPen((214, 39, 40), width=2), symbol="o",
                                          symbolSize=6, symbolBrush=(214, 39, 40), name="valid")
        self.accuracy = pg.PlotWidget(background=None)
        self.accuracy.setLabel("left", "accuracy (%)")  # as the metrics table shows it
        self.accuracy.setLabel("bottom", "batches")
        self.accuracy.setYRange(0, 100)
        self.accuracy.showGrid(x=True, y=True, alpha=0.2)
        self.accuracy.setXLink(self.loss)
        self.accuracy_curve = self.accuracy.plot([], [], pen=pg.mkPen((44, 160, 44), width=2), symbol="o",
                                                 symbolSize=6, symbolBrush=(44, 160, 44))
        for plot in (self.loss, self.accuracy):
            cache_axes(plot.getPlotItem())
            plain_numbers(plot.getPlotItem())
        layout.addWidget(self.loss, 3)
        layout.addWidget(self.accuracy, 2)
        self.clear()

    def clear(self) -> None:
        self._train: tuple[list[float], list[float]] = ([], [])
        self._valid: tuple[list[float], list[float]] = ([], [])
        self._acc: tuple[list[float], list[float]] = ([], [])
        self._offset = 0
        self.loss.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)  # not pyqtgraph's -0.5..0.5 of nothing
        for item in getattr(self, "_boundaries", []):
            self.loss.removeItem(item)
        self._boundaries: list[pg.InfiniteLine] = []
        self.refresh()

    @property
    def batches(self) -> int:
        """Batches trained in the project so far (the x position of the next point)."""
        return self._offset

    def start_stage(self, label: str, planned_batches: int | None = None) -> None:
        """Mark where a stage begins; with its planned length, the batch axis spans the whole
        stage from the start (the user sees how far it goes, and the axis is not redrawn per batch)."""
        if planned_batches:
            self.loss.getPlotItem().enableAutoRange(x=False)
            self.loss.setXRange(0, self._offset + planned_batches, padding=0.02)
        line = pg.InfiniteLine(pos=self._offset, angle=90, movable=False,
                               pen=pg.mkPen((150, 150, 150), width=1, style=pg.QtCore.Qt.PenStyle.DotLine),
                               label=label, labelOpts={"position": 0.5, "rotateAxis": (1, 0),
                                                       "color": (110, 110, 110)})
        self.loss.addItem(line)
        self._boundaries.append(line)

    def end_stage(self) -> None:
        """Fit the batch axis to what was trained (a stopped stage ends early)."""
        self.loss.getPlotItem().enableAutoRange(x=True)

    def add_batch(self, smooth_loss: float) -> None:
        self._offset += 1
        self._train[0].append(self._offset)
        self._train[1].append(smooth_loss)

    def add_epoch(self, valid_loss: float, accuracy: float) -> None:
        self._valid[0].append(self._offset)
        self._valid[1].append(valid_loss)
        self._acc[0].append(self._offset)
        self._acc[1].append(accuracy * 100)

    def refresh(self) -> None:
        if self._train[0]:
            self.loss.enableAutoRange(y=True)
        # Losses are finite here (a NaN ends the fit before it is reported), so skip the check.
        self.train_curve.setData(*self._train, skipFiniteCheck=True)
        self.valid_curve.setData(*self._valid, skipFiniteCheck=True)
        self.accuracy_curve.setData(*self._acc, skipFiniteCheck=True)
