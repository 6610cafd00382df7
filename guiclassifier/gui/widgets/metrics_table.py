"""Per-epoch results of every training stage of the open project."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
)

from guiclassifier.core.archs import N_GROUPS

TRAINABLE_GROUPS = {"all layers": 3, "upper body and head": 2, "head only": 1}  # history's Learner.describe_trainable


def fit_label(precompute: bool, trainable_groups: int, prefix: str = "") -> str:
    """What a fit trains and how: 'head, cached', 'head, augmented', 'all layers'; `prefix`
    names a recipe step or a resumed run."""
    if precompute:
        what = "head, cached"
    elif trainable_groups == 1:
        what = "head, augmented"
    elif trainable_groups >= N_GROUPS:
        what = "all layers"
    else:
        what = "upper body and head"
    return f"{prefix}: {what}" if prefix else what


COLUMNS = ("stage", "epoch", "train loss", "valid loss", "accuracy", "time", "cycle end")
CYCLE = COLUMNS.index("cycle end")
KEPT_BRUSH = QBrush(QColor(204, 230, 204))


class MetricsTable(QTableWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setObjectName("metricsTable")
        self.setHorizontalHeaderLabels(COLUMNS)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        for column in (0, CYCLE):  # names and notes: as wide as their text, never cut or wrapped
            self.horizontalHeader().setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.setWordWrap(False)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)

    def add_epoch(self, stage: str, epoch: int, train_loss: float, valid_loss: float, accuracy: float,
                  seconds: float) -> None:
        row = self.rowCount()
        self.insertRow(row)
        values = (stage, str(epoch), f"{train_loss:.4f}", f"{valid_loss:.4f}", f"{accuracy:.1%}", f"{seconds:.1f} s",
                  "")
        for col, text in enumerate(values):
            item = QTableWidgetItem(text)
            if col:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.setItem(row, col, item)
        self.scrollToBottom()

    def mark_cycle_end(self, cycle: int, best: bool, stopping: bool) -> None:
        """The last row ended an SGDR cycle (from 0): say so, and whether it is the best so far."""
        row = self.rowCount() - 1
        if row >= 0:
            note = "best so far" if best else ("worse: stop" if stopping else "not better")
            self.item(row, CYCLE).setText(f"cycle {cycle + 1}: {note}")
            self.item(row, CYCLE).setData(Qt.ItemDataRole.UserRole, cycle)

    def mark_kept(self, cycle: int) -> None:
        """The current stage kept cycle `cycle`'s weights: mark its row, bold and shaded."""
        row = self.rowCount() - 1
        stage = self.item(row, 0).text() if row >= 0 else ""
        while row >= 0 and self.item(row, 0).text() == stage:
            if self.item(row, CYCLE).data(Qt.ItemDataRole.UserRole) == cycle:
                self.item(row, CYCLE).setText(f"cycle {cycle + 1}: kept \u2713")
                for col in range(self.columnCount()):
                    item = self.item(row, col)
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                    item.setBackground(KEPT_BRUSH)
                return
            row -= 1

    def kept_rows(self) -> list[int]:
        return [r for r in range(self.rowCount()) if self.item(r, CYCLE).text().endswith("kept \u2713")]

    def show_history(self, history: list[dict]) -> None:
        """The epochs of a model's saved history (an opened model file), numbered across it."""
        for entry in history:
            if entry.get("kind") != "fit":
                continue
            label = fit_label(bool(entry.get("precompute")), TRAINABLE_GROUPS.get(entry.get("trainable", ""), 1))
            for epoch in entry.get("epochs", []):
                self.add_epoch(label, self.rowCount() + 1, epoch["train_loss"], epoch["valid_loss"],
                               epoch["accuracy"], epoch.get("seconds", 0.0))

    def rows(self) -> list[list[str]]:
        return [[self.item(r, c).text() for c in range(self.columnCount())] for r in range(self.rowCount())]
