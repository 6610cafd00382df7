"""The real MainWindow on tiny generated data, offscreen, with settings in a temporary file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def make_window(qtbot, tmp_path: Path):
    from PySide6.QtCore import QSettings

    from guiclassifier.gui import MainWindow
    from guiclassifier.workspace.engine import load_engine

    load_engine()  # as it is a few seconds after start-up (tests/gui/test_startup.py covers before)
    windows = []

    def factory(settings_file: Path | None = None, tiny: bool = True) -> MainWindow:
        settings = QSettings(str(settings_file or tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(None, settings)
        # A test that fails mid-run leaves a job running; closing must not wait on a dialog.
        window.confirm_stop_and_quit = lambda: True
        window.unsaved_answer = lambda doing: "discard"  # tests that check the question set their own
        window.recipe_start_answer = lambda: "pretrained"
        qtbot.addWidget(window)
        if tiny:
            window.model_panel.arch_combo.setCurrentIndex(window.model_panel.arch_combo.findData("resnet18"))
            window.model_panel.weights_combo.setCurrentIndex(1)  # random: no weights needed
            window.data_panel.size_spin.setValue(32)
            window.data_panel.bs_spin.setValue(8)
            window.model_panel.device_combo.setCurrentIndex(window.model_panel.device_combo.findData("cpu"))
        windows.append(window)
        return window

    yield factory
    for window in windows:
        if window.runner.busy:
            window.runner.stop()
        window.runner.shutdown()


def wait_idle(qtbot, window, timeout: int = 120_000) -> None:
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=timeout)


@pytest.fixture
def loaded(make_window, dataset, qtbot):
    window = make_window()
    window.open_dataset(str(dataset))
    wait_idle(qtbot, window)
    return window


def train_briefly(qtbot, window, lr: str = "0.05", cycles: int = 2, cycle_len: int = 0) -> None:
    """A short stage from the Train button: by default two epochs at a constant lr."""
    window.training_panel.lr_edit.setText(lr)
    window.training_panel.cycles_spin.setValue(cycles)
    window.training_panel.cycle_len_spin.setValue(cycle_len)
    window.training_panel.train_button.click()
    wait_idle(qtbot, window)


@pytest.fixture
def trained(loaded, qtbot):
    train_briefly(qtbot, loaded)
    return loaded
