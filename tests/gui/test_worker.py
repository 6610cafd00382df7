"""The job runner: events arrive in order and in batches, results and errors come back, Stop works."""

from __future__ import annotations

import time

import pytest

from guiclassifier.core.errors import DataError
from guiclassifier.core.events import BatchEnded
from guiclassifier.gui.worker import JobRunner


@pytest.fixture
def runner():
    made = JobRunner()
    yield made
    made.shutdown(10_000)  # even when a test fails, no thread outlives it


def _batch(i: int) -> BatchEnded:
    return BatchEnded(0, i, 1000, i, 1000, 1.0, 1.0, (0.1,), 1, 0.0, None)


def test_every_event_arrives_in_order_and_batched(qtbot, runner) -> None:
    received: list[list] = []
    runner.events.connect(received.append)
    results: list = []
    runner.finished.connect(results.append)

    def job(emit, cancel):
        for i in range(500):
            emit(_batch(i))
            time.sleep(0.0005)
        return "done"

    assert runner.start(job) and runner.busy
    assert not runner.start(job)  # one job at a time
    qtbot.waitUntil(lambda: bool(results), timeout=10_000)
    assert results == ["done"] and not runner.busy
    flat = [e.batch for batch in received for e in batch]
    assert flat == list(range(500))
    assert len(received) < 100  # batched, not one signal per event


def test_errors_and_cancel(qtbot, runner) -> None:
    failed: list = []
    finished: list = []
    runner.failed.connect(failed.append)
    runner.finished.connect(finished.append)

    def bad(emit, cancel):
        raise DataError("The dataset folder /x does not exist.")

    runner.start(bad)
    qtbot.waitUntil(lambda: bool(failed), timeout=10_000)
    assert failed == ["The dataset folder /x does not exist."]

    def endless(emit, cancel):
        while True:
            cancel.raise_if_cancelled()
            time.sleep(0.01)

    runner.start(endless)
    qtbot.wait(100)
    runner.stop()
    qtbot.waitUntil(lambda: bool(finished), timeout=10_000)
    assert finished == [None] and not runner.busy


def test_shutdown_waits_for_the_thread(qtbot, runner) -> None:

    def endless(emit, cancel):
        while True:
            cancel.raise_if_cancelled()
            time.sleep(0.01)

    runner.start(endless)
    assert runner.shutdown(5_000) and not runner.busy


def test_a_failing_slot_does_not_leave_the_runner_busy(qtbot, runner) -> None:
    finished: list = []
    runner.finished.connect(finished.append)

    def broken_slot(batch) -> None:
        raise RuntimeError("bug in a widget")

    runner.events.connect(broken_slot)

    def job(emit, cancel):
        emit(_batch(0))
        return "done"

    runner.start(job)
    with qtbot.capture_exceptions() as caught:
        qtbot.waitUntil(lambda: bool(finished), timeout=10_000)
    assert finished == ["done"] and not runner.busy and caught


def test_short_thread_returns_and_raises_on_the_caller() -> None:
    import threading

    from guiclassifier.gui.worker import run_on_short_thread

    main = threading.current_thread()
    assert run_on_short_thread(lambda: threading.current_thread() is not main) is True
    with pytest.raises(ZeroDivisionError):
        run_on_short_thread(lambda: 1 / 0)


def test_augmentation_preview_leaves_the_training_generator_alone(tmp_path) -> None:
    import torch
    from PIL import Image

    from guiclassifier.core.augment import train_transform
    from guiclassifier.gui.widgets.data_view import preview_draws

    img = Image.new("RGB", (40, 30), (120, 60, 200))
    torch.manual_seed(5)
    before = torch.get_rng_state()
    draws = preview_draws(img, train_transform("side_on", 32, 1.1), 3)
    assert [d.shape for d in draws] == [(32, 32, 3)] * 3 and draws[0].dtype.name == "uint8"
    assert torch.equal(torch.get_rng_state(), before)


def test_garbage_is_collected_on_the_gui_thread_only_while_a_job_runs(qtbot, runner) -> None:
    """A collection on the worker finalized the GUI thread's Qt objects there and deadlocked
    (Qt's lock against the GIL). During a job automatic collection is off; the GUI thread
    collects the young generations itself; afterwards it is back on."""
    import gc
    import threading

    threads: set[int] = set()

    def seen(phase: str, info: dict) -> None:
        if phase == "start":
            threads.add(threading.get_ident())

    states: list[bool] = []
    done: list = []
    runner.finished.connect(done.append)

    def job(emit, cancel):
        for _ in range(30):
            states.append(gc.isenabled())
            [[] for _ in range(1000)]  # allocations that would trigger a collection
            time.sleep(0.05)
        return "ok"

    gc.callbacks.append(seen)
    try:
        runner.start(job)
        qtbot.waitUntil(lambda: bool(done), timeout=20_000)
    finally:
        gc.callbacks.remove(seen)
    assert states and not any(states)
    assert threads == {threading.get_ident()}  # this test's (the GUI) thread, at least once
    assert gc.isenabled()
