"""Work is never lost or changed without asking: unsaved models, failed scans, Run recipe (issue 13)."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.gui.conftest import train_briefly, wait_idle


def _answers(window, answer: str) -> list[str]:
    asked: list[str] = []
    window.unsaved_answer = lambda doing: asked.append(doing) or answer
    return asked


def test_quitting_with_an_unsaved_model_asks_and_cancel_keeps_the_window(trained, tmp_path: Path) -> None:
    asked = _answers(trained, "cancel")
    assert trained.windowTitle().endswith("(not saved) *")
    assert not trained.close()
    assert asked == ["quitting"] and trained.workspace.learner is not None

    saved = tmp_path / "kept.gcm"
    trained.unsaved_answer = lambda doing: "save"
    trained.model_files.save_model = lambda: trained.model_files.save_model_to(str(saved))  # the file dialog, answered
    assert trained.close() and saved.is_file()


def test_quitting_a_saved_model_asks_nothing(trained, tmp_path: Path) -> None:
    asked = _answers(trained, "cancel")
    assert trained.model_files.save_model_to(str(tmp_path / "m.gcm"))
    assert trained.close() and asked == []


def test_opening_a_model_over_unsaved_work_asks_first(trained, qtbot, tmp_path: Path) -> None:
    assert trained.model_files.save_model_to(str(tmp_path / "m.gcm"))
    train_briefly(qtbot, trained, cycles=1)  # changed since saved
    rows_before = len(trained.plots.metrics_table.rows())
    model = trained.workspace.learner
    asked = _answers(trained, "cancel")
    trained.open_model(str(tmp_path / "m.gcm"))
    wait_idle(qtbot, trained)
    assert asked == ["opening another model"] and trained.workspace.learner is model and trained.workspace.dirty

    _answers(trained, "discard")
    trained.open_model(str(tmp_path / "m.gcm"))
    wait_idle(qtbot, trained)
    assert trained.workspace.learner is not model and not trained.workspace.dirty
    # The Loss & metrics tab shows the opened model's own history, not the previous model's.
    rows = trained.plots.metrics_table.rows()
    assert len(rows) == 2 < rows_before and [r[1] for r in rows] == ["1", "2"]
    assert trained.plots.loss_plot.batches == 0


def test_a_dataset_with_other_classes_asks_before_dropping_the_model(trained, qtbot, dataset_factory) -> None:
    first = trained.workspace.data.path
    other = dataset_factory(classes=("cat", "dog", "fox"))
    asked = _answers(trained, "cancel")
    trained.open_dataset(str(other))
    wait_idle(qtbot, trained)
    assert len(asked) == 1 and "other classes" in asked[0]
    assert trained.workspace.learner is not None and trained.workspace.data.path == first
    assert trained.data_panel.data_path_edit.text() == str(first)

    _answers(trained, "discard")
    trained.open_dataset(str(other))
    wait_idle(qtbot, trained)
    assert trained.workspace.learner is None and tuple(trained.workspace.data.classes) == ("cat", "dog", "fox")
    assert trained.plots.metrics_table.rows() == []


def test_a_failed_scan_says_which_dataset_is_still_in_use(loaded, qtbot, tmp_path: Path) -> None:
    first = loaded.workspace.data.path
    empty = tmp_path / "nothing here"
    empty.mkdir()
    loaded.data_panel.data_path_edit.setText(str(empty))
    loaded.data_panel.data_path_edit.returnPressed.emit()
    wait_idle(qtbot, loaded)
    assert loaded.last_error and f"Still using {first}" in loaded.last_error
    assert loaded.data_panel.data_path_edit.text() == str(first) and loaded.workspace.data.path == first
    assert loaded.training_panel.train_button.isEnabled()  # for the dataset the field names


def test_a_typed_relative_path_is_kept_as_an_absolute_one(make_window, dataset: Path, qtbot,
                                                          monkeypatch) -> None:
    window = make_window()
    monkeypatch.chdir(dataset.parent)
    window.open_dataset(dataset.name)
    wait_idle(qtbot, window)
    assert window.data_panel.data_path_edit.text() == str(dataset)
    assert window.settings.value("last_folder") == str(dataset)


def test_run_recipe_asks_where_to_start_and_says_which(trained, qtbot) -> None:
    from guiclassifier.core.recipe import Evaluate, Recipe, Train

    trained.workspace.recipe = Recipe("short", (Train(0.05, n_cycle=1), Evaluate(False)))
    model = trained.workspace.learner
    trained.recipe_start_answer = lambda: "cancel"
    trained.training_panel.run_recipe_button.click()
    assert not trained.runner.busy and trained.workspace.learner is model

    trained.recipe_start_answer = lambda: "continue"
    before = {k: v.clone() for k, v in model.model.state_dict().items()}
    trained.training_panel.run_recipe_button.click()
    assert "continuing with the current model" in trained.last_status
    wait_idle(qtbot, trained)
    assert trained.workspace.learner is model
    assert any(not torch.equal(v, before[k]) for k, v in model.model.state_dict().items())

    asked = _answers(trained, "discard")
    trained.recipe_start_answer = lambda: "pretrained"
    trained.training_panel.run_recipe_button.click()
    assert "from the pretrained weights" in trained.last_status
    wait_idle(qtbot, trained)
    assert asked == ["starting again from the pretrained weights"] and trained.workspace.learner is not model
