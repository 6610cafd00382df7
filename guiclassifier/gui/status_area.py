"""The status bar: the last message, and while a job runs its progress (bar, text with ETA and
images/s) and the device. Progress is recorded as events arrive and drawn with the window's
coalesced redraw, a few times a second at most."""

from __future__ import annotations

import math
import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QProgressBar, QSizePolicy, QStatusBar

PROGRESS_LABEL_WIDTH = 420


def format_duration(seconds: float) -> str:
    """'40 s', '3 min', '1 h 20 min': an expected duration, rounded as a person would say it."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def format_eta(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "--"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"{seconds // 3600}h{seconds % 3600 // 60:02d}"


class StatusArea:
    """Owns the status bar's widgets; `pending` says whether progress waits to be drawn."""

    def __init__(self, bar: QStatusBar) -> None:
        self.progress_bar = QProgressBar()
        self.progress_bar.setObjectName("progressBar")
        self.progress_bar.setMaximumWidth(260)
        self.progress_bar.setTextVisible(True)
        self.progress_label = QLabel()
        self.progress_label.setObjectName("progressLabel")
        self.progress_label.setFixedWidth(PROGRESS_LABEL_WIDTH)  # long texts are elided, see draw_progress
        self.device_label = QLabel()
        self.status_label = QLabel()
        self.status_label.setObjectName("statusLabel")
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        bar.addWidget(self.status_label, 1)
        bar.addPermanentWidget(self.progress_label)
        bar.addPermanentWidget(self.progress_bar)
        bar.addPermanentWidget(self.device_label)
        self.last_status = ""
        self._pending: tuple[int, int, str] | None = None
        self._rate_clock = (time.perf_counter(), 0)

    def set_status(self, text: str) -> None:
        self.last_status = text
        self.status_label.setText(text)  # a label, not showMessage: hovering a menu cleared those

    def set_busy(self, busy: bool) -> None:
        self.progress_bar.setVisible(busy)  # a full or empty bar when nothing runs says nothing true
        self.progress_label.setVisible(busy)  # and its room goes to the status message

    def job_started(self) -> None:
        self.progress_bar.setRange(0, 0)
        self.progress_label.setText("")
        self.restart_rate()

    def job_ended(self, completed: bool) -> None:
        self._pending = None
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(1 if completed else 0)
        self.progress_label.setText("")

    def restart_rate(self) -> None:
        self._rate_clock = (time.perf_counter(), 0)

    def images_per_second(self) -> float | None:
        """Images seen since restart_rate per second (validation time included), None if none."""
        start, seen = self._rate_clock
        return seen / max(1e-6, time.perf_counter() - start) if seen else None

    def progress(self, done: int, total: int, eta: float | None, label: str, n_images: int = 0) -> None:
        """Record progress; draw_progress shows it."""
        text = f"{label}: {done}/{total}, ETA {format_eta(eta)}"
        if n_images:
            start, seen = self._rate_clock
            seen += n_images
            self._rate_clock = (start, seen)
            elapsed = time.perf_counter() - start
            if elapsed > 0.5:
                text += f", {seen / elapsed:.0f} images/s"
        self._pending = (done, total, text)

    @property
    def pending(self) -> bool:
        return self._pending is not None

    def draw_progress(self) -> None:
        if self._pending is None:
            return
        done, total, text = self._pending
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(min(done, total))
        metrics = self.progress_label.fontMetrics()
        self.progress_label.setText(metrics.elidedText(text, Qt.TextElideMode.ElideMiddle, PROGRESS_LABEL_WIDTH - 8))
        self.progress_label.setToolTip(text)
