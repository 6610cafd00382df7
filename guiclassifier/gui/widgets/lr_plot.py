"""Loss against learning rate (log axis), drawn point by point during an lr_find sweep."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal

from guiclassifier.gui.widgets.plot_axes import DecadeAxis, cache_axes, plain_numbers

RAW_PEN = pg.mkPen((120, 150, 200, 110), width=1)
SMOOTH_PEN = pg.mkPen((31, 90, 180), width=3)
CHOSEN_PEN = pg.mkPen((230, 120, 0), width=2)
MARKER_COLOURS = {"lesson": (0, 114, 178), "valley": (214, 39, 40), "steep": (44, 160, 44),
                  "minimum": (148, 103, 189)}


class LRFindPlot(pg.PlotWidget):
    """Raw loss faint, smoothed loss bold, suggestions marked, and a draggable chosen-lr line.
    Clicking on the plot moves the line there; `lrChosen` carries the lr either way."""

    lrChosen = Signal(float)

    def __init__(self, parent=None) -> None:
        super().__init__(parent, axisItems={"bottom": DecadeAxis(orientation="bottom")})
        self.setObjectName("lrFindPlot")
        cache_axes(self.getPlotItem())
        plain_numbers(self.getPlotItem())
        self.setBackground(None)
        self.setLogMode(x=True, y=False)
        self.setXRange(-7, 1, padding=0)  # the default sweep, in log10 units, until there is a curve
        self.setYRange(0, 1, padding=0)
        self.setLabel("bottom", "learning rate")
        self.setLabel("left", "loss")
        self.showGrid(x=True, y=True, alpha=0.2)
        self.addLegend(offset=(-10, 10))
        self.band = pg.FillBetweenItem(pg.PlotDataItem(), pg.PlotDataItem(), brush=(31, 90, 180, 45))
        self.addItem(self.band)
        self.raw_curve = self.plot([], [], pen=RAW_PEN, name="loss (raw)")
        self.smooth_curve = self.plot([], [], pen=SMOOTH_PEN, name="loss (smoothed)")
        self.chosen_line = pg.InfiniteLine(angle=90, movable=True, pen=CHOSEN_PEN)
        # The line lives in log10 coordinates, so its label is written here rather than formatted.
        self.chosen_label = pg.InfLineLabel(self.chosen_line, "", position=0.94, color=(230, 120, 0))
        self.chosen_line.setVisible(False)
        self.chosen_line.sigPositionChanged.connect(self._relabel)
        self.chosen_line.sigPositionChangeFinished.connect(self._line_moved)
        self.addItem(self.chosen_line)
        self._markers: list[pg.InfiniteLine] = []
        self._entries: list[pg.PlotDataItem] = []
        self._lrs: list[float] = []
        self._raw: list[float] = []
        self._smooth: list[float] = []
        self.scene().sigMouseClicked.connect(self._clicked)

    # -- data in ---------------------------------------------------------------------------

    def clear_curve(self) -> None:
        self._lrs, self._raw, self._smooth = [], [], []
        self.raw_curve.setData([], [])
        self.smooth_curve.setData([], [])
        self.set_band(None)
        self.set_suggestions({})
        self.set_explanation("")

    def add_point(self, lr: float, raw: float, smooth: float) -> None:
        self._lrs.append(lr)
        self._raw.append(raw)
        self._smooth.append(smooth)

    def refresh(self) -> None:
        """Redraw after add_point calls (the caller batches them)."""
        xs = np.asarray(self._lrs)
        if len(xs):
            self.enableAutoRange(x=True)
        self.raw_curve.setData(xs, _clip(self._raw))
        self.smooth_curve.setData(xs, _clip(self._smooth))
        if len(self._smooth) > 1:
            finite = [y for y in self._smooth if math.isfinite(y)]
            raw = [y for y in self._raw if math.isfinite(y)]
            if finite:
                # The raw loss dips below the smoothed curve where it bottoms out, which is what
                # the lesson rule reads: keep most of it in view (not its rare outliers).
                lo, first = min(min(finite), float(np.percentile(raw, 5)) if raw else math.inf), finite[0]
                top = max(max(finite[: max(2, len(finite) * 9 // 10)]), first)
                self.setYRange(lo - 0.05 * (top - lo), top + 0.1 * (top - lo) + 1e-6, padding=0)

    def set_curve(self, lrs: Sequence[float], raw: Sequence[float], smooth: Sequence[float]) -> None:
        self._lrs, self._raw, self._smooth = list(lrs), list(raw), list(smooth)
        self.refresh()

    def set_band(self, band: tuple[Sequence[float], Sequence[float], Sequence[float]] | None) -> None:
        """(lrs, low, high) of several sweeps: how far the curve can be trusted."""
        if band is None:
            self.band.setCurves(pg.PlotDataItem(), pg.PlotDataItem())
            return
        lrs, low, high = (np.asarray(v, dtype=float) for v in band)
        logx = np.log10(lrs)  # FillBetweenItem's curves live in view (log) coordinates
        self.band.setCurves(pg.PlotDataItem(logx, low), pg.PlotDataItem(logx, high))

    def set_suggestions(self, suggestions: dict[str, float]) -> None:
        """A dashed line per suggestion, named in the legend: labels on the lines collided
        whenever two suggestions were close (and covered the curve)."""
        for marker in self._markers:
            self.removeItem(marker)
        for entry in self._entries:
            self.getPlotItem().legend.removeItem(entry)
            self.removeItem(entry)
        self._markers, self._entries = [], []
        for name, lr in suggestions.items():
            pen = pg.mkPen(MARKER_COLOURS.get(name, (90, 90, 90)), width=2, style=Qt.PenStyle.DashLine)
            marker = pg.InfiniteLine(pos=math.log10(lr), angle=90, movable=False, pen=pen)
            marker.setToolTip(f"{name} {lr:.2e}")
            self.addItem(marker)
            self._markers.append(marker)
            entry = self.plot([], [], pen=pen, name=f"{name} {lr:.1e}")  # a legend line only
            self._entries.append(entry)

    def set_explanation(self, text: str) -> None:
        """One line above the plot: which rule picked the lr and why."""
        self.setTitle(text or None, size="10pt", color=pg.getConfigOption("foreground"))  # light or dark
        self._explanation = text

    def explanation(self) -> str:
        return getattr(self, "_explanation", "")

    def set_chosen_lr(self, lr: float) -> None:
        """Move the chosen-lr line without emitting lrChosen (typing in the field calls this)."""
        if lr > 0 and math.isfinite(lr):
            self.chosen_line.blockSignals(True)
            self.chosen_line.setValue(math.log10(lr))
            self.chosen_line.setVisible(True)
            self.chosen_line.blockSignals(False)
            self._relabel()

    # -- data out --------------------------------------------------------------------------

    def curve_data(self) -> tuple[np.ndarray, np.ndarray]:
        """The smoothed curve as drawn (lrs, losses)."""
        xs, ys = self.smooth_curve.getData()
        return (np.array([]), np.array([])) if xs is None else (10 ** np.asarray(xs), np.asarray(ys))

    def chosen_lr(self) -> float | None:
        return 10 ** self.chosen_line.value() if self.chosen_line.isVisible() else None

    def _relabel(self) -> None:
        self.chosen_label.setText(f"chosen lr {10 ** self.chosen_line.value():.1e}")

    def _line_moved(self) -> None:
        self.lrChosen.emit(float(10 ** self.chosen_line.value()))

    def _clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or not self._lrs:
            return
        point = self.getPlotItem().vb.mapSceneToView(event.scenePos())
        lr = float(10 ** point.x())
        self.set_chosen_lr(lr)
        self.lrChosen.emit(lr)


def _clip(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    return np.where(np.isfinite(arr), arr, np.nan)
