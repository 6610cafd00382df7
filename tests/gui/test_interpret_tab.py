"""The Interpret tab: confusion matrix, gallery sorted by loss, moving files and undo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt

from guiclassifier.core.images import open_rgb
from tests.conftest import CLASS_COLOURS, make_image
from tests.gui.conftest import train_briefly, wait_idle

MISLABELLED = "looks_like_a_dog.png"


@pytest.fixture
def analysed(make_window, dataset: Path, qtbot):
    """A trained window analysed on a validation set with one dog filed under cat."""
    make_image(dataset / "valid" / "cat" / MISLABELLED, CLASS_COLOURS["dog"], 777)
    window = make_window()
    window.open_dataset(str(dataset))
    wait_idle(qtbot, window)
    train_briefly(qtbot, window, lr="0.003")  # AdamW: a rate it learns the colours at
    window.interpret_panel.analyse_button.click()
    wait_idle(qtbot, window)
    assert window.last_error is None
    return window


def direct_probabilities(window, paths: tuple[str, ...]) -> np.ndarray:
    """Softmax of the model on each image, computed here without the prediction code."""
    learner = window.workspace.learner
    tfm = learner.data.valid_tfm()
    x = torch.stack([tfm(open_rgb(p)) for p in paths])
    learner.model.eval()
    with torch.no_grad():
        return torch.softmax(learner.model(x), 1).numpy()


def click_cell(qtbot, matrix, row: int, column: int) -> None:
    rect = matrix.visualItemRect(matrix.item(row, column))
    qtbot.mouseClick(matrix.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_clicking_a_cell_shows_exactly_its_images_most_wrong_first(analysed, qtbot) -> None:
    window, view = analysed, analysed.interpret_panel
    interp = view.interpretation
    assert len(interp.paths) == 9  # 4 + 1 cats, 4 dogs
    probs = direct_probabilities(window, interp.paths)
    assert np.allclose(interp.probs, probs, atol=1e-5)
    targets = np.array([0 if Path(p).parent.name == "cat" else 1 for p in interp.paths])
    losses = -np.log(probs[np.arange(len(targets)), targets])
    matrix = view.matrix
    assert matrix.objectName() == "confusionMatrix" and matrix.rowCount() == matrix.columnCount() == 2
    for a in range(2):
        for p in range(2):
            members = [i for i in range(len(targets)) if targets[i] == a and probs[i].argmax() == p]
            assert matrix.item(a, p).text() == str(len(members))
            if not members:
                continue
            click_cell(qtbot, matrix, a, p)
            expected = [interp.paths[i] for i in sorted(members, key=lambda i: -losses[i])]
            assert view.gallery_paths() == expected
            assert f"Actual {('cat', 'dog')[a]}, predicted {('cat', 'dog')[p]}" in view.gallery_title.text()
    # The mislabelled image is the model's worst mistake: first in the top losses.
    view.top_losses_button.click()
    assert Path(view.gallery_paths()[0]).name == MISLABELLED
    assert view.confused_list.item(0).text() == "cat \u2192 dog: 1"


def select(view, path: str) -> None:
    paths = view.gallery_paths()
    view.files.grid.setCurrentRow(paths.index(path))


def trigger(view, text: str) -> None:
    action = next(a for a in view.files.move_button.menu().actions() if a.text() == text)
    action.trigger()


def test_moving_a_file_from_the_gallery_and_undoing_it(analysed, dataset: Path, qtbot) -> None:
    window, view = analysed, analysed.interpret_panel
    questions: list[str] = []
    window.confirm = lambda q: questions.append(q) or True
    source = dataset / "valid" / "cat" / MISLABELLED
    view.top_losses_button.click()
    select(view, str(source))
    assert view.files.move_button.isEnabled()
    trigger(view, "Move to class dog")
    wait_idle(qtbot, window)
    target = dataset / "valid" / "dog" / MISLABELLED
    assert "Move looks_like_a_dog.png to the dog folder?" in questions[0]
    assert not source.exists() and target.is_file()
    report = window.workspace.data.report
    assert {i.path: report.classes[i.label] for i in report.valid}[str(target)] == "dog"
    assert report.counts() == {"cat": (12, 4), "dog": (12, 5)}
    assert report.decoded == 1  # the rescan decoded only the moved file
    assert str(source) not in view.gallery_paths()
    assert "1 file moved" in view.summary.text()
    assert view.files.undo_button.isEnabled()

    view.files.undo_button.click()
    wait_idle(qtbot, window)
    assert source.is_file() and not target.exists()
    assert window.workspace.data.report.counts() == {"cat": (12, 5), "dog": (12, 4)}
    assert str(source) in view.gallery_paths()
    assert not view.files.undo_button.isEnabled()


def test_quarantine_takes_a_file_out_of_the_dataset(analysed, dataset: Path, qtbot) -> None:
    window, view = analysed, analysed.interpret_panel
    window.confirm = lambda q: True
    victim = view.gallery_paths()[-1]
    select(view, victim)
    trigger(view, "Move to quarantine (out of the dataset)")
    wait_idle(qtbot, window)
    relative = Path(victim).relative_to(dataset)
    assert (dataset / "_quarantine" / relative).is_file() and not Path(victim).exists()
    report = window.workspace.data.report
    assert report.classes == ("cat", "dog")
    assert victim not in {i.path for i in (*report.train, *report.valid)}


def test_declined_or_impossible_moves_change_nothing(analysed, dataset: Path, qtbot) -> None:
    window, view = analysed, analysed.interpret_panel
    window.confirm = lambda q: False
    path = view.gallery_paths()[0]
    select(view, path)
    trigger(view, "Move to class dog")
    assert Path(path).is_file() and window.workspace.moves == [] and not window.runner.busy
    window.confirm = lambda q: True
    Path(path).unlink()  # deleted behind the app's back
    trigger(view, "Move to class dog")
    assert "no longer there" in window.last_error
    assert window.workspace.moves == []


def test_analysis_needs_a_model_of_the_open_dataset(make_window, dataset: Path, qtbot) -> None:
    window = make_window()
    assert not window.interpret_panel.analyse_button.isEnabled()
    window.open_dataset(str(dataset))
    wait_idle(qtbot, window)
    assert not window.interpret_panel.analyse_button.isEnabled()  # no model yet
    train_briefly(qtbot, window)
    assert window.interpret_panel.analyse_button.isEnabled()


def test_a_threshold_picked_on_the_curve_is_used_by_predict_and_saved(analysed, qtbot, tmp_path: Path) -> None:
    window, view = analysed, analysed.interpret_panel
    coverage = view.coverage
    confidences = np.sort(view.interpretation.probs.max(1))
    assert coverage.curve is not None and coverage.curve.n == len(confidences)
    assert not coverage.use_button.isEnabled()  # the slider starts at the model's threshold (none)
    percent = int(np.ceil(confidences[len(confidences) // 2] * 100))
    coverage.slider.setValue(percent)
    threshold = percent / 100
    kept = confidences >= threshold
    assert f"answers {kept.sum()} of {len(confidences)}" in coverage.words.text()
    coverage.use_button.click()
    assert window.workspace.learner.confidence_threshold == threshold and window.workspace.dirty
    window.predict_panel.start_predict(list(view.interpretation.paths))
    wait_idle(qtbot, window)
    results = window.predict_panel.results()
    texts = [window.predict_panel.table.item(row, 2).text() for row in range(len(results))]
    assert [t.startswith("not sure") for t in texts] == [r.confidence < threshold for r in results]
    assert any(r.not_sure for r in results) and not all(r.not_sure for r in results)
    assert f"below {percent}% confidence it says 'not sure'" in window.predict_panel.summary.text()
    assert window.model_files.save_model_to(str(tmp_path / "m.gcm"))
    from guiclassifier import Learner

    assert Learner.load(tmp_path / "m.gcm").confidence_threshold == threshold
    train_briefly(qtbot, window, lr="0.003", cycles=1)  # its confidences change: the threshold is cleared
    assert coverage.model_threshold == 0.0 and "not sure" not in window.predict_panel.summary.text()
    assert "answers everything" in coverage.words.text()
    window.open_model(str(tmp_path / "m.gcm"))  # and an opened model shows its own
    wait_idle(qtbot, window)
    assert coverage.model_threshold == threshold and coverage.slider.value() == percent
    assert f"below {percent}% confidence" in window.predict_panel.summary.text()


def test_heatmaps_overlay_the_gallery_and_the_predict_rows(analysed, qtbot) -> None:
    window, view = analysed, analysed.interpret_panel
    first = view.files.grid.item(0)
    plain = first.icon().pixmap(96, 96).toImage()
    view.heatmap_controls.check.setChecked(True)
    wait_idle(qtbot, window)
    assert window.last_error is None
    assert set(view.heatmap_controls.cams) == set(view.gallery_paths())
    size = window.workspace.learner.size
    assert all(cam.shape == (size, size) for cam in view.heatmap_controls.cams.values())
    qtbot.waitUntil(lambda: not view.files.thumb_timer.isActive())
    overlaid = view.files.grid.item(0).icon().pixmap(96, 96).toImage()
    assert overlaid != plain
    view.heatmap_controls.slider.setValue(90)
    qtbot.waitUntil(lambda: not view.files.thumb_timer.isActive())
    assert view.files.grid.item(0).icon().pixmap(96, 96).toImage() != overlaid
    predict = window.predict_panel
    predict.heatmap_controls.check.setChecked(True)
    predict.start_predict(list(view.interpretation.paths[:3]))
    wait_idle(qtbot, window)  # the prediction, then its heatmaps
    wait_idle(qtbot, window)
    assert set(predict.heatmap_controls.cams) == set(view.interpretation.paths[:3])


def test_a_file_moved_from_the_check_data_tab_leaves_the_gallery_too(analysed, dataset: Path, qtbot) -> None:
    window, view = analysed, analysed.interpret_panel
    window.confirm = lambda q: True
    source = str(dataset / "valid" / "cat" / MISLABELLED)
    assert source in view.gallery_paths()
    window.audit_panel.move_file(source, "")  # quarantine, as the Check data tab asks
    wait_idle(qtbot, window)
    assert source not in view.gallery_paths() and "1 file moved since this analysis" in view.summary.text()
    window.audit_panel.undo_last_move()
    wait_idle(qtbot, window)
    assert source in view.gallery_paths() and "moved since" not in view.summary.text()
