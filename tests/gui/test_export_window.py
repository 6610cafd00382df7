"""File > Export model: the file is written once it answers like the app, and the status says so."""

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
