"""What the dataset holds: classes with counts, skipped files, sample thumbnails, and what the
chosen augmentation does to one image."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from guiclassifier.core.errors import ImageError
from guiclassifier.core.images import open_rgb
from guiclassifier.core.text import plural
from guiclassifier.gui.widgets.images import pil_to_pixmap, thumbnail_icon
from guiclassifier.gui.worker import run_on_short_thread

if TYPE_CHECKING:  # torch: imported where used (see workspace.engine)
    from guiclassifier.core.augment import Transform
    from guiclassifier.core.data import ScanReport

THUMB = 72
THUMBS_PER_CLASS = 8
PREVIEW_DRAWS = 6


class SkippedDialog(QDialog):
    def __init__(self, report: ScanReport, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"{plural(len(report.skipped), 'file')} skipped")
        layout = QVBoxLayout(self)
        table = QTableWidget(len(report.skipped), 2)
        table.setObjectName("skippedTable")
        table.setHorizontalHeaderLabels(["file", "reason"])
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        for row, s in enumerate(report.skipped):
            table.setItem(row, 0, QTableWidgetItem(s.path))
            table.setItem(row, 1, QTableWidgetItem(s.reason))
        layout.addWidget(table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(760, 380)


def preview_draws(img: Image.Image, transform: Transform, n: int) -> list[np.ndarray]:
    """`n` random augmentations of `img` as HxWx3 uint8 arrays. Torch's global generator is left
    as it was: looking at previews must not change what the next training run draws."""
    import torch

    with torch.random.fork_rng():
        return [(transform(img).clamp(0, 1) * 255).byte().permute(1, 2, 0).numpy() for _ in range(n)]


class DataView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dataView")
        self.report: ScanReport | None = None
        layout = QVBoxLayout(self)
        self.summary = QLabel("Choose a dataset folder, or drop one here.")
        self.summary.setObjectName("dataSummary")
        self.summary.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        self.skipped_button = QPushButton()
        self.skipped_button.setObjectName("skippedButton")
        self.skipped_button.setVisible(False)
        self.skipped_button.clicked.connect(self.show_skipped)
        top.addWidget(self.skipped_button)
        self.check_button = QPushButton("Check data")
        self.check_button.setObjectName("checkDataButton")
        self.check_button.setToolTip("Look for copies, train/valid leaks, wrong labels and odd classes or images "
                                     "(no training needed); the Check data tab shows what it finds")
        self.check_button.setEnabled(False)
        top.addWidget(self.check_button)
        layout.addLayout(top)

        self.class_table = QTableWidget(0, 3)
        self.class_table.setObjectName("classTable")
        self.class_table.setHorizontalHeaderLabels(["class", "train", "valid"])
        self.class_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.class_table.verticalHeader().setVisible(False)
        self.class_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.class_table.setMaximumHeight(170)
        layout.addWidget(self.class_table)

        layout.addWidget(QLabel("Samples"))
        self.thumbs = QListWidget()
        self.thumbs.setObjectName("thumbnails")
        self.thumbs.setViewMode(QListWidget.ViewMode.IconMode)
        self.thumbs.setIconSize(QSize(THUMB, THUMB))
        self.thumbs.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.thumbs.setMovement(QListWidget.Movement.Static)
        layout.addWidget(self.thumbs, 2)

        row = QHBoxLayout()
        row.addWidget(QLabel("Augmentation preview (random draws of one training image)"))
        self.redraw_button = QPushButton("Draw again")
        self.redraw_button.clicked.connect(self.refresh_preview)
        row.addStretch(1)
        row.addWidget(self.redraw_button)
        layout.addLayout(row)
        self.preview = QListWidget()
        self.preview.setObjectName("augmentPreview")
        self.preview.setViewMode(QListWidget.ViewMode.IconMode)
        self.preview.setIconSize(QSize(96, 96))
        self.preview.setFlow(QListWidget.Flow.LeftToRight)
        self.preview.setMaximumHeight(130)
        layout.addWidget(self.preview)
        self._augment = ("side_on", 224, 1.1)

    def set_report(self, report: ScanReport | None) -> None:
        self.report = report
        self.class_table.setRowCount(0)
        self.thumbs.clear()
        if report is None:
            self.summary.setText("Choose a dataset folder, or drop one here.")
            self.skipped_button.setVisible(False)
            self.preview.clear()
            return
        layout = "fast.ai layout (train/valid)" if report.layout == "fastai" else "class folders, split"
        notes = "".join(f"<br>{n}" for n in report.notes)
        self.summary.setText(f"<b>{Path(report.root).name}</b>: {len(report.classes)} classes, "
                             f"{len(report.train)} train / {len(report.valid)} valid images ({layout}){notes}")
        for name, (n_train, n_valid) in report.counts().items():
            r = self.class_table.rowCount()
            self.class_table.insertRow(r)
            for c, text in enumerate((name, str(n_train), str(n_valid))):
                item = QTableWidgetItem(text)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.class_table.setItem(r, c, item)
        self.skipped_button.setText(f"{plural(len(report.skipped), 'file')} skipped...")
        self.skipped_button.setVisible(bool(report.skipped))
        for label, name in enumerate(report.classes):
            for item in [i for i in report.train if i.label == label][:THUMBS_PER_CLASS]:
                icon = thumbnail_icon(item.path, THUMB)
                if icon is None:
                    continue
                entry = QListWidgetItem(icon, name)
                entry.setToolTip(item.path)
                self.thumbs.addItem(entry)
        self.refresh_preview()

    def set_augmentation(self, augment: str, size: int, max_zoom: float) -> None:
        if (augment, size, max_zoom) != self._augment:
            self._augment = (augment, size, max_zoom)
            self.refresh_preview()

    def refresh_preview(self) -> None:
        self.preview.clear()
        if self.report is None or not self.report.train:
            return
        try:
            img = open_rgb(self.report.train[0].path)
        except ImageError:
            return
        from guiclassifier.core.augment import train_transform

        transform = train_transform(*self._augment)
        for pixels in run_on_short_thread(lambda: preview_draws(img, transform, PREVIEW_DRAWS)):
            self.preview.addItem(QListWidgetItem(QIcon(pil_to_pixmap(Image.fromarray(pixels))), ""))

    def show_skipped(self) -> None:
        if self.report is not None:
            SkippedDialog(self.report, self).exec()
