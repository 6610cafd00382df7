"""The Disk cache dialog: what the activation and photo caches hold, their limit, and emptying them.

Measuring and deleting walk folders that can hold a hundred thousand files, so they run on a
thread of their own, one at a time, while the window stays usable (they are not jobs: the cache
can be looked at and trimmed while training runs; entries a job uses are never removed).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from guiclassifier.core.cache_dirs import CACHE_KINDS, CacheReport, Removal, cache_report, cache_root, clear_caches
from guiclassifier.core.cache_dirs import trim_caches
from guiclassifier.core.cache_limit import AUTOMATIC_LIMIT, choose_limit
from guiclassifier.core.text import byte_size, plural

GB = 10**9


class CacheDialog(QDialog):
    _finished = Signal(object, object)  # (what to call on the GUI thread, the result)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Disk cache")
        self.setObjectName("cacheDialog")
        self._busy = False
        self._finished.connect(lambda then, result: then(result), Qt.ConnectionType.QueuedConnection)
        layout = QVBoxLayout(self)
        intro = QLabel("guiclassifier keeps the frozen body's activations and shrunk copies of big photos, "
                       "so that later runs start faster. Both are made again when needed.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        contents = QGroupBox("What is kept")
        contents_layout = QVBoxLayout(contents)
        grid = QGridLayout()
        self.rows: dict[str, tuple[QLabel, QLabel]] = {}
        for r, (kind, what) in enumerate([*CACHE_KINDS.items(), ("total", "In all")]):
            count, size = QLabel(), QLabel()
            for col, label in ((0, QLabel(what[:1].upper() + what[1:])), (1, count), (2, size)):
                if col:
                    label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                grid.addWidget(label, r, col)
            self.rows[kind] = (count, size)
        contents_layout.addLayout(grid)
        folder_row = QHBoxLayout()
        self.folder_label = QLabel(str(cache_root()))
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.folder_label.setObjectName("cacheFolderLabel")
        folder_row.addWidget(self.folder_label, 1)
        open_button = QPushButton("Open folder")
        open_button.clicked.connect(self._open_folder)
        folder_row.addWidget(open_button)
        contents_layout.addLayout(folder_row)
        layout.addWidget(contents)

        self.automatic_radio = QRadioButton(f"Automatic: {AUTOMATIC_LIMIT}")
        self.automatic_radio.setObjectName("cacheAutomaticRadio")
        self.chosen_radio = QRadioButton("At most")
        self.chosen_radio.setObjectName("cacheChosenRadio")
        group = QButtonGroup(self)
        group.addButton(self.automatic_radio)
        group.addButton(self.chosen_radio)
        self.limit_spin = QDoubleSpinBox()
        self.limit_spin.setObjectName("cacheLimitSpin")
        self.limit_spin.setRange(0.0, 100_000.0)
        self.limit_spin.setDecimals(1)
        self.limit_spin.setSuffix(" GB")
        self.limit_spin.setValue(5.0)
        limit_row = QHBoxLayout()
        limit_row.addWidget(self.chosen_radio)
        limit_row.addWidget(self.limit_spin)
        limit_row.addStretch(1)
        limits = QGroupBox("Limit")
        limits_layout = QVBoxLayout(limits)
        limits_layout.addWidget(self.automatic_radio)
        limits_layout.addLayout(limit_row)
        rule = QLabel("Past the limit, the entries used longest ago are removed. "
                      "Entries a running job uses are never removed.")
        rule.setWordWrap(True)
        limits_layout.addWidget(rule)
        layout.addWidget(limits)
        self.automatic_radio.toggled.connect(lambda _: self._limit_edited())
        self.limit_spin.editingFinished.connect(self._limit_edited)

        self.message = QLabel()
        self.message.setObjectName("cacheMessage")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        buttons = QHBoxLayout()
        self.clear_button = QPushButton("Clear cache")
        self.clear_button.setObjectName("clearCacheButton")
        self.clear_button.clicked.connect(self.clear)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        buttons.addWidget(self.clear_button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout.addLayout(buttons)
        self.report: CacheReport | None = None
        self.setMinimumWidth(560)

    # ----- background work ------------------------------------------------------------------------

    def _in_background(self, doing: str, work: Callable[[], Any], then: Callable[[Any], None]) -> bool:
        if self._busy:
            return False
        self._busy = True
        self.clear_button.setEnabled(False)
        self.message.setText(doing)

        def run() -> None:
            try:
                result: Any = work()
            except OSError as exc:  # a disk error: said in the dialog, never a crash
                result = exc
            self._finished.emit(self._done(then), result)

        threading.Thread(target=run, name="cache", daemon=True).start()
        return True

    def _done(self, then: Callable[[Any], None]) -> Callable[[Any], None]:
        def finish(result: Any) -> None:
            self._busy = False
            self.clear_button.setEnabled(True)
            if isinstance(result, OSError):
                self.message.setText(f"The cache folder could not be read or changed: {result}")
                return
            then(result)

        return finish

    @property
    def busy(self) -> bool:
        return self._busy

    # ----- what the dialog does -------------------------------------------------------------------

    def refresh(self) -> bool:
        """Measure the caches again (on a thread); False while another step runs."""
        return self._in_background("Measuring...", cache_report, lambda report: self._show(report, ""))

    def clear(self) -> bool:
        def work() -> tuple[Removal, CacheReport]:
            return clear_caches(), cache_report()

        return self._in_background("Clearing...", work, lambda r: self._show(r[1], _removed("Cleared", r[0])))

    def _limit_edited(self) -> None:
        limit = None if self.automatic_radio.isChecked() else round(self.limit_spin.value() * GB)
        self.limit_spin.setEnabled(limit is not None)
        if self.report is None:
            return  # not measured yet: the fields are being filled in
        if (limit is None) if self.report.limit_automatic else (limit == self.report.limit_bytes):
            return  # unchanged

        def work() -> tuple[Removal, CacheReport]:
            choose_limit(cache_root(), limit)
            return trim_caches(), cache_report()

        if not self._in_background("Applying the limit...", work,
                                   lambda r: self._show(r[1], _removed("Limit applied", r[0]))):
            self._show(self.report, "Wait for the cache to finish, then change the limit.")

    def _show(self, report: CacheReport, message: str) -> None:
        self.report = report
        for usage in report.usage:
            count, size = self.rows[usage.kind]
            count.setText(plural(usage.entries, "entry", "entries"))
            size.setText(byte_size(usage.size_bytes))
        self.rows["total"][1].setText(f"<b>{byte_size(report.total_bytes)}</b> of {byte_size(report.limit_bytes)}")
        for widget in (self.automatic_radio, self.limit_spin):
            widget.blockSignals(True)
        self.automatic_radio.setChecked(report.limit_automatic)
        self.chosen_radio.setChecked(not report.limit_automatic)
        self.limit_spin.setValue(report.limit_bytes / GB)
        self.limit_spin.setEnabled(not report.limit_automatic)
        for widget in (self.automatic_radio, self.limit_spin):
            widget.blockSignals(False)
        self.folder_label.setText(str(report.root))
        self.message.setText(message)

    def _open_folder(self) -> None:
        root = cache_root()
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.message.setText(f"The cache folder cannot be made: {exc}")
            return
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(root)))

    def showEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        self.refresh()


def _removed(what: str, removal: Removal) -> str:
    kept = (f"; {plural(removal.kept_in_use, 'entry', 'entries')} in use by a running job "
            f"{'was' if removal.kept_in_use == 1 else 'were'} kept") if removal.kept_in_use else ""
    return f"{what}: {byte_size(removal.freed_bytes)} freed{kept}."
