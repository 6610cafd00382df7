"""The window offers to resume a run that a stop, a crash or a kill left unfinished."""

from __future__ import annotations

import os
from pathlib import Path

from guiclassifier import ImageData, Learner
from guiclassifier.core.cancel import CancelToken
from guiclassifier.core.checkpoint import CheckpointConfig, checkpoint_paths, default_checkpoint_dir
from guiclassifier.core.events import EpochEnded
from tests.gui.conftest import wait_idle


def interrupted_run(dataset: Path) -> Path:
    """What a window run killed after its first of 3 epochs leaves behind."""
    folder = default_checkpoint_dir() / "window"
    data = ImageData.from_folder(dataset, size=32, bs=8, num_workers=0, seed=0)
    learner = Learner.pretrained("resnet18", data, weights=None, device="cpu")
    cancel = CancelToken()
    learner.fit(0.05, 3, callbacks=lambda e: isinstance(e, EpochEnded) and cancel.cancel(), cancel=cancel,
                checkpoints=CheckpointConfig(folder))
    assert len(checkpoint_paths(folder)) == 1
    return folder


def test_accepting_resumes_the_run_and_then_clears_it(make_window, dataset: Path, qtbot, monkeypatch) -> None:
    folder = interrupted_run(dataset)
    questions: list[str] = []
    from guiclassifier.gui.main_window import MainWindow

    monkeypatch.setattr(MainWindow, "confirm", lambda self, q: questions.append(q) or True)
    window = make_window(tiny=False)
    qtbot.waitUntil(lambda: bool(questions), timeout=5000)
    assert "interrupted after epoch 1 of 3" in questions[0] and str(dataset) in questions[0]
    qtbot.waitUntil(lambda: window.workspace.learner is not None and not window.runner.busy, timeout=120_000)
    assert window.last_error is None
    assert [r[1] for r in window.plots.metrics_table.rows()] == ["2", "3"]  # the two epochs left
    assert window.workspace.data is not None and Path(window.workspace.data.path) == dataset
    assert window.data_panel.bs_spin.value() == 8 and window.data_panel.size_spin.value() == 32
    assert checkpoint_paths(folder) == []  # finished: nothing left to resume


def test_declining_discards_the_checkpoint(make_window, dataset: Path, qtbot, monkeypatch) -> None:
    folder = interrupted_run(dataset)
    from guiclassifier.gui.main_window import MainWindow

    monkeypatch.setattr(MainWindow, "confirm", lambda self, q: False)
    window = make_window(tiny=False)
    qtbot.waitUntil(lambda: checkpoint_paths(folder) == [], timeout=5000)
    wait_idle(qtbot, window)
    assert window.workspace.learner is None


def test_no_checkpoint_no_question(make_window, qtbot, monkeypatch) -> None:
    from guiclassifier.gui.main_window import MainWindow

    asked: list[str] = []
    monkeypatch.setattr(MainWindow, "confirm", lambda self, q: asked.append(q) or True)
    make_window()
    qtbot.wait(100)
    assert asked == [] and not os.path.exists(default_checkpoint_dir() / "window")
