"""The Interpret tab: the validation set's confusion matrix, a gallery of the images the model is
most wrong about (or of one clicked cell), the most-confused pairs, and actions to fix the data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTabWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from guiclassifier.core.coverage import coverage_curve
from guiclassifier.core.text import plural
from guiclassifier.gui.widgets.coverage_view import CoverageView
from guiclassifier.gui.widgets.file_gallery import THUMB, FileGallery, GalleryImage
from guiclassifier.gui.widgets.heatmap_controls import HeatmapControls

if TYPE_CHECKING:  # torch: imported where used (see workspace.engine)
    from guiclassifier.core.curate import FileMove
    from guiclassifier.core.gradcam import Heatmap
    from guiclassifier.core.interpret import Interpretation

TOP_LOSSES = 60
GALLERY_LIMIT = 300
NOTHING_YET = "Train a model (or open one with a dataset), then analyse its mistakes here."
READY = "Click Analyse validation set to see which images the model gets wrong."
RIGHT = QColor(40, 160, 90)
WRONG = QColor(220, 60, 50)


class InterpretView(QWidget):
    analyseRequested = Signal()
    moveRequested = Signal(str, str)  # path, class name or QUARANTINE
    undoRequested = Signal()
    thresholdChosen = Signal(float)
    heatmapsRequested = Signal(list)  # the paths shown, when heatmaps are on

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("interpretView")
        self.interpretation: Interpretation | None = None
        self.cell: tuple[int, int] | None = None  # shown in the gallery; None = top losses
        self.moved: set[str] = set()
        self.busy = False

        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.analyse_button = QPushButton("Analyse validation set")
        self.analyse_button.setObjectName("interpretButton")
        self.analyse_button.setToolTip("Predict every validation image and show what the model gets wrong")
        self.analyse_button.clicked.connect(self.analyseRequested)
        self.tta_check = QCheckBox("With test-time augmentation")
        self.tta_check.setObjectName("interpretTtaCheck")
        row.addWidget(self.analyse_button)
        row.addWidget(self.tta_check)
        row.addStretch(1)
        layout.addLayout(row)
        self.summary = QLabel(NOTHING_YET)
        self.summary.setObjectName("interpretSummary")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)

        split = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        matrix_help = QLabel("Confusion matrix: rows are the actual class, columns the prediction. "
                             "Click a cell to see its images.")
        matrix_help.setWordWrap(True)  # a fixed line would set the window's least width
        left_layout.addWidget(matrix_help)
        self.matrix = QTableWidget(0, 0)
        self.matrix.setObjectName("confusionMatrix")
        self.matrix.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.matrix.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.matrix.cellClicked.connect(self.show_cell)
        left_split = QSplitter(Qt.Orientation.Vertical)
        left_split.addWidget(self.matrix)
        self.lower_tabs = QTabWidget()
        self.confused_list = QListWidget()
        self.confused_list.setObjectName("mostConfusedList")
        self.confused_list.itemClicked.connect(self._confused_clicked)
        self.lower_tabs.addTab(self.confused_list, "Most confused")
        self.lower_tabs.setTabToolTip(0, "Pairs of classes the model mixes up: actual \u2192 predicted, most first")
        self.coverage = CoverageView()
        self.coverage.thresholdChosen.connect(self.thresholdChosen)
        self.lower_tabs.addTab(self.coverage, "Answer only when sure")
        self.lower_tabs.setTabToolTip(1, "Accuracy against the share of images answered, and the confidence "
                                         "below which Predict says 'not sure'")
        left_split.addWidget(self.lower_tabs)
        left_split.setSizes([300, 300])
        left_layout.addWidget(left_split, 1)
        split.addWidget(left)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        title_row = QHBoxLayout()
        self.gallery_title = QLabel("Top losses")
        self.gallery_title.setObjectName("galleryTitle")
        self.gallery_title.setWordWrap(True)
        self.top_losses_button = QPushButton("Show top losses")
        self.top_losses_button.setObjectName("topLossesButton")
        self.top_losses_button.clicked.connect(self.show_top_losses)
        title_row.addWidget(self.gallery_title, 1)
        title_row.addWidget(self.top_losses_button)
        right_layout.addLayout(title_row)
        # A row of its own: with the opacity slider and legend shown, a shared row would squeeze
        # the confusion matrix's column.
        self.heatmap_controls = HeatmapControls()
        self.heatmap_controls.toggled.connect(self._heatmaps_toggled)
        self.heatmap_controls.opacityChanged.connect(lambda _: self._redraw_icons())
        heat_row = QHBoxLayout()
        heat_row.addWidget(self.heatmap_controls)
        heat_row.addStretch(1)
        right_layout.addLayout(heat_row)
        self.files = FileGallery("loss", caption_lines=3)
        self.files.icon_for = self._icon
        self.files.moveRequested.connect(self.moveRequested)
        self.files.undoRequested.connect(self.undoRequested)
        right_layout.addWidget(self.files, 1)
        split.addWidget(right)
        split.setSizes([460, 540])
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setChildrenCollapsible(False)
        layout.addWidget(split, 1)

    # ----- showing an interpretation ------------------------------------------------------

    def set_interpretation(self, interpretation: Interpretation | None, threshold: float = 0.0) -> None:
        """Show an analysis; `threshold` is the model's confidence threshold."""
        self.interpretation = interpretation
        self.moved = set()
        self.heatmap_controls.forget()
        self.coverage.set_curve(None if interpretation is None else
                                coverage_curve(interpretation.probs, interpretation.targets), threshold)
        self._fill_matrix()
        self._fill_confused()
        self.files.set_classes(interpretation.classes if interpretation is not None else ())
        if interpretation is None:
            self.files.show_images([])
            self.gallery_title.setText("Top losses")
            self.summary.setText(NOTHING_YET)
            return
        correct = int(np.trace(interpretation.confusion))
        n = len(interpretation.targets)
        skipped = f" {len(interpretation.skipped)} could not be read." if interpretation.skipped else ""
        self.summary.setText(f"{n} validation images: {correct} right ({correct / max(1, n):.1%}), "
                             f"{n - correct} wrong.{skipped}")
        self.show_top_losses()

    def _fill_matrix(self) -> None:
        interp = self.interpretation
        classes = interp.classes if interp is not None else ()
        self.matrix.clear()
        self.matrix.setRowCount(len(classes))
        self.matrix.setColumnCount(len(classes))
        self.matrix.setHorizontalHeaderLabels(list(classes))
        self.matrix.setVerticalHeaderLabels(list(classes))
        if interp is None:
            return
        m = interp.confusion
        for a in range(len(classes)):
            total = max(1, int(m[a].sum()))
            for p in range(len(classes)):
                item = QTableWidgetItem(str(int(m[a, p])))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                colour = QColor(RIGHT if a == p else WRONG)
                # Translucent tints read on light and dark themes alike.
                colour.setAlpha(round(30 + 200 * m[a, p] / total) if m[a, p] else 0)
                item.setBackground(colour)
                item.setToolTip(f"actual {classes[a]}, predicted {classes[p]}: {int(m[a, p])} images "
                                f"({m[a, p] / total:.0%} of {classes[a]})")
                self.matrix.setItem(a, p, item)
        header = self.matrix.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.matrix.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)

    def _fill_confused(self) -> None:
        self.confused_list.clear()
        if self.interpretation is None:
            return
        index = {name: i for i, name in enumerate(self.interpretation.classes)}
        for actual, predicted, count in self.interpretation.most_confused():
            item = QListWidgetItem(f"{actual} \u2192 {predicted}: {count}")
            item.setData(Qt.ItemDataRole.UserRole, (index[actual], index[predicted]))
            self.confused_list.addItem(item)
        if self.confused_list.count() == 0:
            self.confused_list.addItem("No mistakes on the validation set.")

    def _confused_clicked(self, item: QListWidgetItem) -> None:
        cell = item.data(Qt.ItemDataRole.UserRole)
        if cell is not None:
            self.matrix.setCurrentCell(*cell)
            self.show_cell(*cell)

    def show_cell(self, actual: int, predicted: int) -> None:
        interp = self.interpretation
        if interp is None:
            return
        self.cell = (actual, predicted)
        indices = interp.cell(actual, predicted)
        what = f"Actual {interp.classes[actual]}, predicted {interp.classes[predicted]}"
        self._fill_gallery(indices, f"{what}: {plural(len(indices), 'image')}, most wrong first")

    def show_top_losses(self) -> None:
        interp = self.interpretation
        if interp is None:
            return
        self.cell = None
        self.matrix.clearSelection()
        indices = interp.top_losses(TOP_LOSSES)
        wrong = sum(1 for i in indices if interp.preds[i] != interp.targets[i])
        self._fill_gallery(indices, f"Top losses: the {plural(len(indices), 'image')} with the highest loss "
                                    f"({wrong} of them wrong), highest first")

    def _fill_gallery(self, indices: list[int], title: str) -> None:
        interp = self.interpretation
        assert interp is not None
        shown = [i for i in indices if interp.paths[i] not in self.moved]
        more = f" (showing the first {GALLERY_LIMIT})" if len(shown) > GALLERY_LIMIT else ""
        self.gallery_title.setText(title + more)
        losses, preds = interp.losses, interp.preds
        images = []
        for i in shown[:GALLERY_LIMIT]:
            actual, pred = interp.classes[interp.targets[i]], interp.classes[preds[i]]
            images.append(GalleryImage(
                interp.paths[i], f"{Path(interp.paths[i]).name}\n{actual} \u2192 {pred} "
                                 f"{interp.probs[i, preds[i]]:.0%}\nloss {losses[i]:.2f}",
                f"{interp.paths[i]}\nactual {actual}, predicted {pred} ({interp.probs[i, preds[i]]:.1%}); "
                f"p({actual}) = {interp.probs[i, interp.targets[i]]:.1%}, loss {losses[i]:.3f}", actual))
        self.files.show_images(images)
        self._ask_for_heatmaps()

    def _icon(self, path: str) -> QIcon | None:
        return self.heatmap_controls.icon(path, THUMB)

    # ----- heatmaps ----------------------------------------------------------------------------

    def _heatmaps_toggled(self, on: bool) -> None:
        self._redraw_icons()
        if on:
            self._ask_for_heatmaps()

    def _ask_for_heatmaps(self) -> None:
        """Ask (heatmapsRequested) for the maps of the gallery's images; the panel makes those missing."""
        if self.heatmap_controls.on and not self.busy and self.gallery_paths():
            self.heatmapsRequested.emit(self.gallery_paths())

    def set_heatmaps(self, heatmaps: Sequence[Heatmap]) -> None:
        """Maps made for this interpretation's model; shown when Heatmaps is on."""
        self.heatmap_controls.remember(heatmaps)
        self._redraw_icons()

    def _redraw_icons(self) -> None:
        self.files.redraw_icons()

    def gallery_paths(self) -> list[str]:
        """The paths shown in the gallery, in order."""
        return self.files.paths()

    # ----- acting on a file ------------------------------------------------------------------

    def file_moved(self, move: FileMove) -> None:
        """Take a moved file out of the gallery; the matrix stays as analysed until the next run."""
        self.set_moved(self.moved | {move.source})

    def file_restored(self, move: FileMove) -> None:
        """An undone move: the file is back where the analysis saw it."""
        self.set_moved(self.moved - {move.source})

    def set_moved(self, paths: set[str]) -> None:
        """The analysed files moved since (from this tab or another) leave the gallery."""
        if self.interpretation is None:
            return
        paths = set(paths) & set(self.interpretation.paths)
        if paths != self.moved:
            self.moved = paths
            self._refill_gallery()

    def _refill_gallery(self) -> None:
        """The gallery (and its count) without the files moved since the analysis."""
        if self.cell is not None:
            self.show_cell(*self.cell)
        else:
            self.show_top_losses()
        self._say_changed()

    def _say_changed(self) -> None:
        text = self.summary.text().split("  [")[0]
        if self.moved:
            text += f"  [{plural(len(self.moved), 'file')} moved since this analysis: analyse again to update the matrix]"
        self.summary.setText(text)

    def set_state(self, busy: bool, can_analyse: bool, can_undo: bool) -> None:
        """Files are not moved while a job runs: a rescan or a training run reads them."""
        self.busy = busy
        self.analyse_button.setEnabled(can_analyse and not busy)
        self.top_losses_button.setEnabled(self.interpretation is not None)
        if self.interpretation is None:
            self.summary.setText(READY if can_analyse else NOTHING_YET)
        self.tta_check.setEnabled(not busy)
        self.heatmap_controls.setEnabled(not busy)
        self.files.set_state(busy, can_undo)
