"""Running one engine call at a time on a QThread and turning its events into Qt signals.

The engine is synchronous; a job is a function `job(callback, cancel_token)` that calls it. Events
are collected and sent to the GUI thread in batches at most every THROTTLE_S seconds (plus at once
for stage-level events), so a fast training loop never floods the event loop and no event is lost.
Stop sets the CancelToken directly: a queued signal would wait behind the busy loop.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from guiclassifier.core.cancel import Cancelled, CancelToken
from guiclassifier.core.errors import GuiClassifierError
from guiclassifier.core.events import (
    BatchEnded,
    Event,
    LRFindPoint,
    PrecomputeProgress,
    PredictProgress,
    ScanProgress,
)

THROTTLE_S = 0.05
FREQUENT = (BatchEnded, LRFindPoint, PrecomputeProgress, PredictProgress, ScanProgress)
Job = Callable[[Callable[[Event], None], CancelToken], Any]


def readable_error(exc: BaseException) -> str:
    """A message for a dialog: ours are already written for people; others get a hint."""
    if isinstance(exc, GuiClassifierError):
        return str(exc)
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return ("Out of memory. Try a smaller batch size or image size, or a smaller architecture. "
                "The model keeps its last good weights.")
    return f"Unexpected error ({type(exc).__name__}): {exc}"


class _Worker(QObject):
    events = Signal(list)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.job: Job | None = None
        self.token = CancelToken()
        self._pending: list[Event] = []
        self._last_flush = 0.0

    def _on_event(self, event: Event) -> None:
        self._pending.append(event)
        now = time.monotonic()
        if not isinstance(event, FREQUENT) or now - self._last_flush >= THROTTLE_S:
            self._flush(now)

    def _flush(self, now: float | None = None) -> None:
        if self._pending:
            self.events.emit(self._pending)
            self._pending = []
        self._last_flush = now if now is not None else time.monotonic()

    @Slot()
    def run(self) -> None:
        job, self.job = self.job, None
        try:
            result = job(self._on_event, self.token) if job is not None else None
        except Cancelled:
            self._flush()
            self.finished.emit(None)
        except BaseException as exc:  # every failure must reach the user as a message
            traceback.print_exc()
            self._flush()
            self.failed.emit(readable_error(exc))
        else:
            self._flush()
            self.finished.emit(result)


class JobRunner(QObject):
    """Owns the worker thread. `start` runs a job; `stop` asks it to end within one batch."""

    events = Signal(list)
    finished = Signal(object)
    failed = Signal(str)
    busy_changed = Signal(bool)
    _request = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QThread(self)
        self._thread.setObjectName("guiclassifier-worker")
        self._worker = _Worker()
        self._worker.moveToThread(self._thread)
        # Qt's pattern: the worker is deleted in its own thread once that thread has finished.
        self._thread.finished.connect(self._worker.deleteLater)
        self._request.connect(self._worker.run)
        self._worker.events.connect(self.events)
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        self._busy = False
        self._thread.start()

    @property
    def busy(self) -> bool:
        return self._busy

    def start(self, job: Job) -> bool:
        """Run `job` on the worker; refused (False) while another job runs."""
        if self._busy:
            return False
        self._busy = True
        self._worker.token = CancelToken()
        self._worker.job = job
        self.busy_changed.emit(True)
        self._request.emit()
        return True

    def stop(self) -> None:
        if self._busy:
            self._worker.token.cancel()

    def _on_finished(self, result: object) -> None:
        self._busy = False
        self.busy_changed.emit(False)
        self.finished.emit(result)

    def _on_failed(self, message: str) -> None:
        self._busy = False
        self.busy_changed.emit(False)
        self.failed.emit(message)

    def shutdown(self, timeout_ms: int = 60_000) -> bool:
        """Cancel any job and end the thread; True when it ended (never terminate())."""
        if self._thread.isFinished():
            return True
        self.stop()
        self._thread.quit()
        return self._thread.wait(timeout_ms)
