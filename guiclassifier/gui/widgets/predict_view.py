"""The Predict tab: a drop zone, one row per image with its thumbnail, the top classes as bars,
the time it took, and a warning when the model should not be trusted on it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from guiclassifier.gui.widgets.heatmap_controls import HeatmapControls

if TYPE_CHECKING:  # torch: imported where used (see workspace.engine)
    from guiclassifier.core.gradcam import Heatmap
    from guiclassifier.core.predict import Prediction

THUMB = 56
MAX_BARS = 4
COLUMNS = ("image", "file", "prediction", "probabilities", "time/image", "note")


def _bars(classes: tuple[str, ...], probabilities: tuple[float, ...]) -> QWidget:
    """The top classes (all of them when there are few) as labelled bars."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(2, 2, 2, 2)
    layout.setSpacing(1)
    order = sorted(range(len(classes)), key=lambda i: -probabilities[i])[:MAX_BARS]
    for i in order:
        bar = QProgressBar()
        bar.setRange(0, 1000)
        bar.setValue(round(probabilities[i] * 1000))
        bar.setFormat(f"{classes[i]} {probabilities[i]:.1%}")
        bar.setMaximumHeight(14)
        layout.addWidget(bar)
    return box


class DropZone(QFrame):
    """Accepts image files and folders; says so in words."""

    dropped = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("predictDropZone")
        self.setAcceptDrops(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumHeight(70)
        layout = QVBoxLayout(self)
        self.label = QLabel("Drop images or folders here to classify them")
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.label)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.dropped.emit(paths)


class PredictView(QWidget):
    filesChosen = Signal(list)  # paths to predict (files and folders)
    heatmapsRequested = Signal(list)  # the rows' paths, when heatmaps are on

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("predictView")
        self.classes: tuple[str, ...] = ()
        self._results: list[Prediction] = []
        layout = QVBoxLayout(self)
        self.drop_zone = DropZone()
        self.drop_zone.dropped.connect(self.filesChosen)
        layout.addWidget(self.drop_zone)
        row = QHBoxLayout()
        self.files_button = QPushButton("Predict files...")
        self.files_button.setObjectName("predictFilesButton")
        self.folder_button = QPushButton("Predict folder...")
        self.folder_button.setObjectName("predictFolderButton")
        self.tta_check = QCheckBox("Test-time augmentation (slower, steadier)")
        self.tta_check.setObjectName("ttaCheck")
        self.export_button = QPushButton("Export results...")
        self.export_button.setObjectName("exportResultsButton")
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear)
        self.heatmap_controls = HeatmapControls()
        self.heatmap_controls.toggled.connect(self._heatmaps_toggled)
        self.heatmap_controls.opacityChanged.connect(lambda _: self._redraw_icons())
        for w in (self.files_button, self.folder_button, self.tta_check):
            row.addWidget(w)
        row.addStretch(1)
        row.addWidget(self.export_button)
        row.addWidget(self.clear_button)
        layout.addLayout(row)
        heat_row = QHBoxLayout()  # its own row: with the slider and legend shown, one row is too wide
        heat_row.addWidget(self.heatmap_controls)
        heat_row.addStretch(1)
        layout.addLayout(heat_row)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("predictTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeaderItem(4).setToolTip(
            "Images are classified in batches: this is the batch's time divided by its images")
        self.table.setIconSize(QSize(THUMB, THUMB))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(0, THUMB + 12)
        self.table.setColumnWidth(2, 130)
        self.table.setColumnWidth(5, 240)
        layout.addWidget(self.table, 1)
        self.summary = QLabel("No model yet: train one or open one (File > Open model).")
        self.summary.setObjectName("predictSummary")
        layout.addWidget(self.summary)
        self.export_button.setEnabled(False)

    def set_classes(self, classes: tuple[str, ...] | None, threshold: float = 0.0) -> None:
        """The model's classes and confidence threshold (0: it answers everything)."""
        self.classes = tuple(classes or ())
        rule = (f"; below {threshold:.0%} confidence it says 'not sure' (set on the Interpret tab)" if threshold > 0
                else "")
        self.summary.setText(f"Model classes: {', '.join(self.classes)}{rule}" if self.classes else
                             "No model yet: train one or open one (File > Open model).")

    def clear(self) -> None:
        self._results = []
        self.heatmap_controls.forget()
        self.table.setRowCount(0)
        self.export_button.setEnabled(False)

    def results(self) -> list[Prediction]:
        return list(self._results)

    def add_result(self, result: Prediction) -> None:
        self._results.append(result)
        row = self.table.rowCount()
        self.table.insertRow(row)
        self.table.setRowHeight(row, THUMB + 8)
        icon_item = QTableWidgetItem()
        icon = self._icon(result.path) if result.error is None else None
        if icon is not None:  # None: deleted since; the prediction stands without a thumbnail
            icon_item.setIcon(icon)
        self.table.setItem(row, 0, icon_item)
        name = QTableWidgetItem(Path(result.path).name)
        name.setToolTip(result.path)
        self.table.setItem(row, 1, name)
        if result.probabilities is None:
            self.table.setItem(row, 2, QTableWidgetItem("skipped"))
            self.table.setItem(row, 5, QTableWidgetItem(result.error or ""))
        else:
            answer = f"not sure ({self.classes[result.best]}?)" if result.not_sure else self.classes[result.best]
            best = QTableWidgetItem(f"{answer}  {result.confidence:.0%}")
            if result.not_sure:
                best.setToolTip(f"Best guess {self.classes[result.best]} at {result.confidence:.0%}, below the "
                                f"model's {result.threshold:.0%} threshold (set on the Interpret tab)")
            font = best.font()
            font.setBold(True)
            best.setFont(font)
            self.table.setItem(row, 2, best)
            self.table.setCellWidget(row, 3, _bars(self.classes, result.probabilities))
            note = QTableWidgetItem(result.warning())
            if result.unfamiliar:
                note.setForeground(Qt.GlobalColor.red)
            self.table.setItem(row, 5, note)
        if result.error is None:
            self.table.setItem(row, 4, QTableWidgetItem(f"{result.seconds * 1000:.0f} ms"))
        self.export_button.setEnabled(True)
        self.table.scrollToItem(name)  # new rows come in below what is shown

    # ----- heatmaps ------------------------------------------------------------------------------

    def _icon(self, path: str) -> QIcon | None:
        return self.heatmap_controls.icon(path, THUMB)

    def _heatmaps_toggled(self, on: bool) -> None:
        self._redraw_icons()
        if on:
            self.ask_for_heatmaps()

    def ask_for_heatmaps(self) -> None:
        """Ask (heatmapsRequested) for the maps of the rows, when Heatmaps is on; the panel makes those missing."""
        paths = [r.path for r in self._results if r.error is None]
        if self.heatmap_controls.on and paths:
            self.heatmapsRequested.emit(paths)

    def set_heatmaps(self, heatmaps: Sequence[Heatmap]) -> None:
        self.heatmap_controls.remember(heatmaps)
        self._redraw_icons()

    def _redraw_icons(self) -> None:
        for row, result in enumerate(self._results):
            item = self.table.item(row, 0)
            if item is not None and result.error is None:
                icon = self._icon(result.path)
                item.setIcon(icon if icon is not None else QIcon())
