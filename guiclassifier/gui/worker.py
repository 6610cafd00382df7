"""Running one engine call at a time on a QThread and turning its events into Qt signals.

The engine is synchronous; a job is a function `job(callback, cancel_token)` that calls it. The
job runs in a QThread and puts every event, then its result, in a thread-safe queue. A timer on
the GUI thread drains the queue every DRAIN_MS and emits the events as one list, so a fast
training loop never floods the event loop, no event is lost, and nothing depends on delivering
signals across threads. Stop sets the CancelToken directly: it takes effect within one batch.
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from PySide6.QtCore import QObject, QThread, QTimer, Signal

from guiclassifier.core.cancel import Cancelled, CancelToken
from guiclassifier.core.errors import GuiClassifierError
from guiclassifier.core.events import Event

DRAIN_MS = 50
COLLECT_EVERY = 20  # drains (about 1 s) between young-generation collections while a job runs
log = logging.getLogger(__name__)
Job = Callable[[Callable[[Event], None], CancelToken], Any]
T = TypeVar("T")


def run_on_short_thread(fn: Callable[[], T]) -> T:
    """Run a little torch work for the GUI (an augmentation preview) on a thread that ends with it.

    Tensor work on the GUI thread would give it an OpenMP thread pool for the life of the app.
    With more pooled threads than cores, OpenMP stops letting idle threads spin, and training on
    the worker thread ran 10-20% slower (benchmarks/README.md, window overhead). A short-lived
    thread's pool ends with the thread. The GUI waits for it, as it would for the work itself."""
    out: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # re-raised on the GUI thread below
            errors.append(exc)

    thread = threading.Thread(target=target, name="guiclassifier-short")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return out[0]


def readable_error(exc: BaseException) -> str:
    """A message for a dialog: ours are already written for people; others get a hint."""
    if isinstance(exc, GuiClassifierError):
        return str(exc)
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return ("Out of memory. Try a smaller batch size or image size, or a smaller architecture. "
                "The model keeps its last good weights.")
    return f"Unexpected error ({type(exc).__name__}): {exc}"


@dataclass(frozen=True)
class _Finished:
    result: Any


@dataclass(frozen=True)
class _Failed:
    message: str


class _JobThread(QThread):
    def __init__(self, job: Job, token: CancelToken, out: queue.SimpleQueue) -> None:
        super().__init__()
        self.setObjectName("guiclassifier-worker")
        self._job = job
        self._token = token
        self._out = out

    def run(self) -> None:
        try:
            result = self._job(self._out.put, self._token)
        except Cancelled:
            self._out.put(_Finished(None))
        except BaseException as exc:  # every failure must reach the user as a message
            if isinstance(exc, GuiClassifierError):  # expected (an empty folder...): the message says it all
                log.debug("a job ended with a message for the user", exc_info=True)
            else:  # a bug: its traceback belongs in the terminal and in reports
                log.error("a job failed unexpectedly", exc_info=True)
            self._out.put(_Failed(readable_error(exc)))
        else:
            self._out.put(_Finished(result))


class JobRunner(QObject):
    """Runs one job at a time. `start` runs a job; `stop` asks it to end within one batch. A job's
    own `on_done` (its result, or None when it was stopped) and `on_failed` (the message) are
    called before the general `finished` and `failed` signals."""

    events = Signal(list)
    finished = Signal(object)
    failed = Signal(str)
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: _JobThread | None = None
        self._token = CancelToken()
        self._timer = QTimer(self)
        self._timer.setInterval(DRAIN_MS)
        self._timer.timeout.connect(self._drain)
        self._gc_was_enabled = True
        self._drains = 0
        self._on_done: Callable[[Any], None] | None = None
        self._on_failed: Callable[[str], None] | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None

    def start(self, job: Job, on_done: Callable[[Any], None] | None = None,
              on_failed: Callable[[str], None] | None = None) -> bool:
        """Run `job` on a worker thread; refused (False) while another job runs."""
        if self._thread is not None:
            return False
        self._on_done, self._on_failed = on_done, on_failed
        self._token = CancelToken()
        self._thread = _JobThread(job, self._token, self._queue)
        # No garbage collection on the worker: a collection there can finalize Qt objects of the
        # GUI thread, and Qt's destructor waiting for the GIL while the GUI thread (holding it)
        # waits for Qt's lock froze a test run for good. The GUI thread collects instead (_drain).
        self._gc_was_enabled = gc.isenabled()
        gc.disable()
        self._drains = 0
        self._thread.start()
        self._timer.start()
        self.busy_changed.emit(True)
        return True

    def stop(self) -> None:
        self._token.cancel()

    def _drain(self) -> None:
        self._drains += 1
        if self._drains % COLLECT_EVERY == 0:
            gc.collect(0 if self._drains % (10 * COLLECT_EVERY) else 1)  # on the GUI thread
        batch: list[Event] = []
        end: _Finished | _Failed | None = None
        while end is None:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, (_Finished, _Failed)):
                end = item
            else:
                batch.append(item)
        try:
            if batch:
                self.events.emit(batch)
        finally:
            # Even if a slot raised while handling the events, the job's end must be delivered,
            # or the window would wait for it forever.
            if end is not None:
                self._end(end)

    def _end(self, end: _Finished | _Failed) -> None:
        self._timer.stop()
        if self._thread is not None:
            self._thread.wait()  # run() has returned: this is immediate
            self._thread = None
        self._restore_gc()
        on_done, on_failed, self._on_done, self._on_failed = self._on_done, self._on_failed, None, None
        self.busy_changed.emit(False)
        try:
            if isinstance(end, _Finished) and on_done is not None:
                on_done(end.result)
            elif isinstance(end, _Failed) and on_failed is not None:
                on_failed(end.message)
        finally:
            if isinstance(end, _Finished):
                self.finished.emit(end.result)
            else:
                self.failed.emit(end.message)

    def _restore_gc(self) -> None:
        if self._gc_was_enabled:
            gc.enable()

    def shutdown(self, timeout_ms: int = 60_000) -> bool:
        """Cancel any job and wait for its thread; True when no thread is left (never terminate()).
        The job's last events and its end are delivered as usual, so the window is left in the
        state the stopped job put it in (a stopped fit: trained epochs kept, checkpoint kept)."""
        if self._thread is None:
            return True
        self.stop()
        if not self._thread.wait(timeout_ms):
            return False
        while self._thread is not None:  # run() has returned: its end is in the queue
            self._drain()
        return True
