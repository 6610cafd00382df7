"""File > Export model: the file is written once it answers like the app, and the status says so;
File > Training logs: every epoch trained in the window is in a CSV."""

from __future__ import annotations

from pathlib import Path

from tests.gui.conftest import wait_idle


def test_export_from_the_window_reports_its_parity(trained, tmp_path: Path, qtbot, monkeypatch) -> None:
    from guiclassifier.gui import model_files

    out = tmp_path / "m.onnx"
    monkeypatch.setattr(model_files.QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), "ONNX (*.onnx)"))
    trained.model_files.export_model()
    wait_idle(qtbot, trained)
    assert trained.last_error is None, trained.last_error
    assert out.is_file()
    assert "ONNX export: 8/8 same answers" in trained.last_status and "to the app's" in trained.last_status


def test_training_in_the_window_writes_an_epoch_log(trained, qtbot, monkeypatch) -> None:
    import csv
    import os

    from guiclassifier.gui.panels import run_log

    folders = list(Path(os.environ["GUICLASSIFIER_RUNS_DIR"]).iterdir())
    assert len(folders) == 1  # one run folder for the window session
    rows = list(csv.DictReader(open(folders[0] / "epochs.csv")))
    table = trained.plots.metrics_table
    assert len(rows) == table.rowCount() > 0
    for r, row in enumerate(rows):
        assert f"{float(row['train_loss']):.4f}" == table.item(r, 2).text()
        assert f"{float(row['valid_loss']):.4f}" == table.item(r, 3).text()
    opened = []
    monkeypatch.setattr(run_log.QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    from PySide6.QtGui import QAction

    next(a for a in trained.findChildren(QAction) if a.text() == "Training logs").trigger()  # File menu
    assert opened == [str(folders[0])]


def test_tensorboard_logs_from_the_window_when_ticked(loaded, qtbot) -> None:
    import os

    import pytest

    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from tests.gui.conftest import train_briefly

    action = loaded.run_log.tensorboard_action
    assert action.isEnabled() and not action.isChecked()
    action.setChecked(True)
    assert loaded.settings.value("tensorboard_logs", type=bool)  # remembered for the next launch
    train_briefly(qtbot, loaded, cycles=2)
    folder = next(Path(os.environ["GUICLASSIFIER_RUNS_DIR"]).iterdir()) / "tensorboard"
    events = EventAccumulator(str(folder))
    events.Reload()
    assert len(events.Scalars("accuracy/valid")) == loaded.plots.metrics_table.rowCount() == 2
