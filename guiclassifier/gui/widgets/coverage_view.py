"""Accuracy against coverage on the Interpret tab: how often the model is right when it answers only
above a confidence threshold, how many images it then answers, and the threshold Predict uses."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from guiclassifier.gui.widgets.plot_axes import cache_axes, plain_numbers

if TYPE_CHECKING:  # torch: imported where used (see workspace.engine)
    from guiclassifier.core.coverage import CoverageCurve

CURVE_PEN = pg.mkPen((31, 90, 180), width=2)
CHOSEN_BRUSH = pg.mkBrush(230, 120, 0)
SAVED_PEN = pg.mkPen((120, 120, 120), width=1, style=Qt.PenStyle.DashLine)
STEPS = 100  # the slider moves in whole percents


class CoverageView(QWidget):
    """The curve, a threshold slider with what it gives in words, and a button that makes it the
    model's (`thresholdChosen`)."""

    thresholdChosen = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("coverageView")
        self.curve: CoverageCurve | None = None
        self.model_threshold = 0.0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.plot = pg.PlotWidget()
        self.plot.setObjectName("coveragePlot")
        cache_axes(self.plot.getPlotItem())
        plain_numbers(self.plot.getPlotItem())
        self.plot.setBackground(None)
        self.plot.setLabel("bottom", "share of images answered (%)")
        self.plot.setLabel("left", "right among answered (%)")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setMouseEnabled(False, False)
        self.plot.setMinimumHeight(140)
        self.line = self.plot.plot([], [], pen=CURVE_PEN)
        self.chosen = pg.ScatterPlotItem(size=10, brush=CHOSEN_BRUSH, pen=None)
        self.plot.addItem(self.chosen)
        self.saved_line = pg.InfiniteLine(angle=90, pen=SAVED_PEN)
        self.saved_line.setVisible(False)
        self.plot.addItem(self.saved_line)
        layout.addWidget(self.plot, 1)
        row = QHBoxLayout()
        row.addWidget(QLabel("Answer only above"))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("thresholdSlider")
        self.slider.setRange(0, STEPS - 1)
        self.slider.valueChanged.connect(self._moved)
        row.addWidget(self.slider, 1)
        self.value_label = QLabel("0%")
        self.value_label.setMinimumWidth(36)
        row.addWidget(self.value_label)
        self.use_button = QPushButton("Use for predictions")
        self.use_button.setObjectName("useThresholdButton")
        self.use_button.setToolTip("Predict then says 'not sure' below this confidence; kept in the model file "
                                   "when you save the model")
        self.use_button.clicked.connect(lambda: self.thresholdChosen.emit(self.threshold))
        layout.addLayout(row)
        below = QHBoxLayout()
        self.words = QLabel()
        self.words.setObjectName("coverageWords")
        self.words.setWordWrap(True)
        below.addWidget(self.words, 1)
        below.addWidget(self.use_button, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(below)
        self.set_curve(None, 0.0)

    @property
    def threshold(self) -> float:
        return self.slider.value() / STEPS

    def set_curve(self, curve: CoverageCurve | None, model_threshold: float) -> None:
        """Show `curve` (None: nothing analysed yet) with the slider at the model's threshold."""
        self.curve = curve
        if curve is None or curve.n == 0:
            self.line.setData([], [])
            self.chosen.setData([], [])
        else:
            self.line.setData(100 * curve.coverage, 100 * curve.accuracy)
            low = float(min(curve.accuracy.min(), 0.9))
            self.plot.setXRange(0, 100, padding=0.02)
            self.plot.setYRange(100 * low, 100, padding=0.05)
        self.set_model_threshold(model_threshold)
        self.slider.setValue(round(model_threshold * STEPS))
        self._moved()

    def set_model_threshold(self, threshold: float) -> None:
        self.model_threshold = threshold
        self._show_saved()
        self._moved()

    def _show_saved(self) -> None:
        if self.curve is not None and self.curve.n and self.model_threshold > 0:
            self.saved_line.setPos(100 * self.curve.at(self.model_threshold).coverage)
            self.saved_line.setVisible(True)
        else:
            self.saved_line.setVisible(False)

    def _moved(self, *_: object) -> None:
        t = self.threshold
        self.value_label.setText(f"{t:.0%}")
        model = ("The model answers everything (no threshold)." if self.model_threshold <= 0 else
                 f"The model's threshold: {self.model_threshold:.0%} (dashed line).")
        if self.curve is None or self.curve.n == 0:
            self.words.setText("Analyse the validation set to see how accuracy rises when the model answers "
                               "only when it is sure. " + model)
            self.use_button.setEnabled(False)
            return
        point = self.curve.at(t)
        self.chosen.setData([100 * point.coverage], [100 * point.accuracy])
        right = f"{point.accuracy:.1%} of them right" if point.answered else "none answered"
        rest = "; the rest 'not sure'" if point.answered < self.curve.n else ""
        self.words.setText(f"At {t:.0%} confidence: answers {point.answered} of {self.curve.n} validation images "
                           f"({point.coverage:.0%}), {right}{rest}. {model}")
        self.use_button.setEnabled(abs(t - self.model_threshold) > 1e-9)
