"""Dropping files on the Predict tab: rows, probabilities, skipped files, CSV export."""

from __future__ import annotations

import csv
from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from tests.gui.conftest import wait_idle


def drop(target, paths: list[Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    target.dropEvent(QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier))


def test_dropping_files_and_folders_predicts_them(trained, dataset: Path, tmp_path: Path, qtbot) -> None:
    window = trained
    window.tabs.setCurrentWidget(window.predict_panel)
    (tmp_path / "readme.txt").write_text("not an image")
    good = dataset / "valid" / "cat" / "cat_000.png"
    (tmp_path / "broken.png").write_bytes(good.read_bytes()[:50])
    drop(window, [good, dataset / "valid" / "dog", tmp_path / "readme.txt", tmp_path / "broken.png"])
    wait_idle(qtbot, window)
    results = window.predict_panel.results()
    names = [Path(r.path).name for r in results]
    assert names == ["cat_000.png", *[f"dog_{i:03d}.png" for i in range(4)], "readme.txt", "broken.png"]
    predicted = [r for r in results if r.error is None]
    assert len(predicted) == 5
    assert all(abs(sum(r.probabilities) - 1) < 1e-4 for r in predicted)
    reasons = {Path(r.path).name: r.error for r in results if r.error}
    assert "not an image" in reasons["readme.txt"] and reasons["broken.png"]
    table = window.predict_panel.table
    assert table.rowCount() == 7 and table.item(5, 2).text() == "skipped"
    assert table.cellWidget(0, 3) is not None  # probability bars
    assert "Predicted 5 images, 2 skipped" in window.last_status

    window.predict_panel.export_predictions_to(str(tmp_path / "out.csv"))
    rows = list(csv.reader(open(tmp_path / "out.csv", encoding="utf-8")))
    assert rows[0] == ["path", "predicted", "cat", "dog", "warning"]
    assert len(rows) == 8 and rows[6][-1].startswith("skipped:")
    assert abs(float(rows[1][2]) + float(rows[1][3]) - 1) < 1e-4


def test_drop_zone_and_tta(trained, dataset: Path, qtbot) -> None:
    view = trained.predict_panel
    assert view.drop_zone.objectName() == "predictDropZone" and view.tta_check.objectName() == "ttaCheck"
    view.tta_check.setChecked(True)
    drop(view.drop_zone, [dataset / "valid" / "cat"])
    wait_idle(qtbot, trained)
    tta = [r.probabilities for r in view.results()]
    paths = [r.path for r in view.results()]
    import numpy as np

    assert np.allclose(tta, trained.workspace.learner.predict(paths, tta=True), atol=1e-5)


def test_without_a_model_the_user_is_told(make_window, dataset: Path, qtbot) -> None:
    window = make_window()
    window.tabs.setCurrentWidget(window.predict_panel)
    drop(window, [dataset / "valid" / "cat" / "cat_000.png"])
    assert "no model yet" in window.last_error.lower()
    assert not window.runner.busy


def test_folder_dropped_elsewhere_opens_a_dataset(make_window, dataset: Path, qtbot) -> None:
    window = make_window()
    window.tabs.setCurrentIndex(0)
    drop(window, [dataset])
    wait_idle(qtbot, window)
    assert window.workspace.data is not None


def test_prediction_only_mode_with_an_opened_model(trained, make_window, dataset: Path, tmp_path: Path,
                                                   qtbot) -> None:
    assert trained.model_files.save_model_to(str(tmp_path / "m.gcm"))
    fresh = make_window()
    fresh.open_model(str(tmp_path / "m.gcm"))
    wait_idle(qtbot, fresh)
    assert fresh.workspace.learner is not None and fresh.workspace.learner.data is None
    fresh.predict_panel.start_predict([str(dataset / "valid" / "dog")])
    wait_idle(qtbot, fresh)
    assert len(fresh.predict_panel.results()) == 4 and fresh.last_error is None
