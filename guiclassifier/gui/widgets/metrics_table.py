"""Per-epoch results of every training stage of the open project."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
)

COLUMNS = ("stage", "epoch", "train loss", "valid loss", "accuracy", "time")


class MetricsTable(QTableWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setObjectName("metricsTable")
        self.setHorizontalHeaderLabels(COLUMNS)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)

    def add_epoch(self, stage: str, epoch: int, train_loss: float, valid_loss: float, accuracy: float,
                  seconds: float) -> None:
        row = self.rowCount()
        self.insertRow(row)
        values = (stage, str(epoch), f"{train_loss:.4f}", f"{valid_loss:.4f}", f"{accuracy:.1%}", f"{seconds:.1f} s")
        for col, text in enumerate(values):
            item = QTableWidgetItem(text)
            if col:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.setItem(row, col, item)
        self.scrollToBottom()

    def rows(self) -> list[list[str]]:
        return [[self.item(r, c).text() for c in range(self.columnCount())] for r in range(self.rowCount())]
