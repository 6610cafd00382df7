"""pytest-qt tests driving the real MainWindow."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDropEvent

from guiclassifier.core.recipe import lesson1
from tests.gui.conftest import train_briefly, wait_idle


def test_buttons_follow_the_state(make_window, dataset, qtbot) -> None:
    window = make_window()
    assert window.windowTitle().startswith("guiclassifier")
    assert not window.training_panel.lr_find_button.isEnabled() and not window.training_panel.stop_button.isEnabled()
    window.open_dataset(str(dataset))
    wait_idle(qtbot, window)
    assert window.training_panel.lr_find_button.isEnabled() and window.training_panel.train_button.isEnabled()
    assert window.training_panel.unfreeze_button.isEnabled() and not window.training_panel.freeze_button.isEnabled()
    window.training_panel.cycles_spin.setValue(50)
    window.training_panel.train_button.click()
    assert window.runner.busy
    assert window.training_panel.stop_button.isEnabled() and not window.training_panel.lr_find_button.isEnabled()
    assert not window.training_panel.train_button.isEnabled() and not window.data_panel.data_path_edit.isEnabled()
    window.training_panel.stop_button.click()
    wait_idle(qtbot, window)
    assert window.training_panel.lr_find_button.isEnabled() and not window.training_panel.stop_button.isEnabled()


def test_loading_a_folder_fills_the_class_table(loaded) -> None:
    table = loaded.data_panel.view.class_table
    rows = [[table.item(r, c).text() for c in range(3)] for r in range(table.rowCount())]
    assert rows == [["cat", "12", "4"], ["dog", "12", "4"]]
    assert loaded.data_panel.view.thumbs.count() == 16
    assert loaded.data_panel.view.preview.count() == 6
    assert "Loaded 24 train" in loaded.last_status


def test_broken_files_show_as_skipped(make_window, dataset, qtbot) -> None:
    (dataset / "train" / "cat" / "bad.jpg").write_bytes(b"nope")
    window = make_window()
    window.open_dataset(str(dataset))
    wait_idle(qtbot, window)
    button = window.data_panel.view.skipped_button
    assert button.isVisibleTo(window) and button.text().startswith("1 file skipped")


def test_bad_folder_is_a_message_not_a_crash(make_window, tmp_path, qtbot) -> None:
    window = make_window()
    window.open_dataset(str(tmp_path / "missing"))
    wait_idle(qtbot, window)
    assert "does not exist" in window.last_error
    assert window.workspace.data is None and not window.training_panel.lr_find_button.isEnabled()


def test_lr_find_draws_the_curve_and_clicking_picks_an_lr(loaded, qtbot) -> None:
    loaded.training_panel.lr_find_button.click()
    wait_idle(qtbot, loaded)
    lrs, losses = loaded.plots.lr_plot.curve_data()
    assert len(lrs) > 10 and len(lrs) == len(losses)
    assert lrs[0] == pytest.approx(1e-7)
    assert loaded.plots.lr_plot._markers  # suggestion markers are drawn
    suggested = float(loaded.training_panel.lr_edit.text())
    assert loaded.plots.lr_plot.chosen_lr() == pytest.approx(suggested, rel=1e-2)
    # One line above the plot says which rule picked the lr and why.
    assert loaded.plots.lr_plot.explanation().startswith(f"{suggested:.2e} by the lesson rule: 10x below where the raw loss")

    plot = loaded.plots.lr_plot
    plot.resize(800, 500)
    qtbot.wait(50)
    vb = plot.getPlotItem().vb
    target = 1e-3
    y = float(losses[len(losses) // 2])
    where = plot.mapFromScene(vb.mapViewToScene(QPointF(math.log10(target), y)))
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=where)
    assert float(loaded.training_panel.lr_edit.text()) == pytest.approx(target, rel=0.1)
    assert loaded.plots.lr_plot.chosen_lr() == pytest.approx(target, rel=0.1)


def test_typing_an_lr_moves_the_line(loaded, qtbot) -> None:
    loaded.training_panel.lr_edit.setText("3e-4")
    loaded.training_panel.lr_edit.editingFinished.emit()
    assert loaded.plots.lr_plot.chosen_lr() == pytest.approx(3e-4)
    assert loaded.plots.lr_plot.chosen_label.toPlainText() == "chosen lr 3.0e-04"
    loaded.training_panel.lr_edit.setText("fast")
    loaded.training_panel.lr_edit.editingFinished.emit()
    assert "not a learning rate" in loaded.last_status


def test_schedule_redraws_when_parameters_change(loaded) -> None:
    steps = loaded.training_panel.steps_per_epoch()
    assert steps == 3
    loaded.training_panel.cycles_spin.setValue(3)
    loaded.training_panel.cycle_len_spin.setValue(1)
    loaded.training_panel.cycle_mult_spin.setValue(1)
    assert len(loaded.plots.schedule_plot.curve_data()[0]) == 3 * steps
    loaded.training_panel.cycle_mult_spin.setValue(2)
    curve = loaded.plots.schedule_plot.curve_data()[0]
    assert len(curve) == 7 * steps
    assert loaded.training_panel.epochs_label.text().startswith("7")
    assert curve[0] == pytest.approx(float(loaded.training_panel.lr_edit.text()))


def test_training_fills_the_metrics_table_and_plots(loaded, qtbot) -> None:
    train_briefly(qtbot, loaded, lr="0.02", cycles=2, cycle_len=1)
    rows = loaded.plots.metrics_table.rows()
    assert [r[1] for r in rows] == ["1", "2"] and all(r[0] == "head, cached" for r in rows)
    assert loaded.plots.loss_plot.batches == 6
    assert len(loaded.plots.loss_plot.valid_curve.getData()[0]) == 2
    assert "Trained 2 epochs" in loaded.last_status and loaded.windowTitle().endswith("*")
    assert ", about " in loaded.training_panel.epochs_label.text()  # measured: the next head stage's expected time

    loaded.training_panel.unfreeze_button.click()
    wait_idle(qtbot, loaded)
    assert loaded.model_panel.frozen_label.text() == "training: all layers"
    assert loaded.training_panel.ratio_spin.isVisibleTo(loaded) and not loaded.model_panel.precompute_check.isEnabled()
    assert not loaded.model_panel.precompute_check.isChecked()  # nothing is cached once the body trains
    assert len(loaded.plots.schedule_plot.curve_data()) == 3  # one curve per layer group
    loaded.training_panel.cycles_spin.setValue(1)
    loaded.training_panel.train_button.click()
    wait_idle(qtbot, loaded)
    # Named by what trains and how; epochs counted across the project.
    assert [r[:2] for r in loaded.plots.metrics_table.rows()] == [["head, cached", "1"], ["head, cached", "2"],
                                                            ["all layers", "3"]]


def test_stop_takes_effect_within_a_batch(loaded, qtbot) -> None:
    loaded.model_panel.precompute_check.setChecked(False)
    loaded.training_panel.cycles_spin.setValue(40)
    loaded.training_panel.train_button.click()
    qtbot.waitUntil(lambda: loaded.plots.loss_plot.batches > 0, timeout=60_000)
    loaded.training_panel.stop_button.click()
    start = time.perf_counter()
    wait_idle(qtbot, loaded)
    assert time.perf_counter() - start < 10
    assert "Stopped by the user" in loaded.last_status
    assert len(loaded.plots.metrics_table.rows()) < 40
    loaded.training_panel.cycles_spin.setValue(1)
    loaded.training_panel.train_button.click()  # the model is still usable
    wait_idle(qtbot, loaded)
    assert loaded.last_error is None


def start_long_run(make_window, dataset, qtbot):
    """A window training for 40 epochs through the body: long enough to close or stop mid-run."""
    window = make_window()
    window.open_dataset(str(dataset))
    wait_idle(qtbot, window)
    window.model_panel.precompute_check.setChecked(False)
    window.training_panel.cycles_spin.setValue(40)
    window.training_panel.train_button.click()
    return window


def test_closing_mid_run_stops_the_worker_cleanly(make_window, dataset, qtbot, monkeypatch) -> None:
    window = start_long_run(make_window, dataset, qtbot)
    qtbot.waitUntil(lambda: window.plots.loss_plot.batches > 0, timeout=60_000)
    asked = []
    monkeypatch.setattr(window, "confirm_stop_and_quit", lambda: asked.append(1) or True)
    assert window.close()
    assert asked and not window.runner.busy and window.runner._thread is None


def test_quitting_mid_run_then_keeping_the_window_shows_the_stopped_run(make_window, dataset, qtbot,
                                                                       monkeypatch) -> None:
    """Stop and quit, then Cancel at "Save changes?": the window stays, saying what the stop did,
    with the epochs trained so far counted as unsaved work."""
    window = start_long_run(make_window, dataset, qtbot)
    qtbot.waitUntil(lambda: window.plots.metrics_table.rowCount() > 0, timeout=60_000)
    monkeypatch.setattr(window, "confirm_stop_and_quit", lambda: True)
    monkeypatch.setattr(window, "unsaved_answer", lambda doing: "cancel")
    assert not window.close()
    assert not window.runner.busy and window.workspace.dirty
    assert window.last_status.startswith("Stopped by the user after"), window.last_status
    assert window.training_panel.train_button.isEnabled()


def test_closing_can_be_declined(make_window, dataset, qtbot, monkeypatch) -> None:
    window = start_long_run(make_window, dataset, qtbot)
    monkeypatch.setattr(window, "confirm_stop_and_quit", lambda: False)
    assert not window.close()
    assert window.runner.busy
    window.stop()
    wait_idle(qtbot, window)


def test_event_loop_keeps_turning_while_training(loaded, qtbot) -> None:
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(10)
    loaded.model_panel.precompute_check.setChecked(False)
    loaded.training_panel.cycles_spin.setValue(3)
    loaded.training_panel.train_button.click()
    wait_idle(qtbot, loaded)
    timer.stop()
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert len(ticks) > 20 and max(gaps) < 1.0


def test_worker_errors_become_messages(loaded, qtbot, tmp_path) -> None:
    bad = tmp_path / "weights.pth"
    bad.write_text("not weights")
    loaded.model_panel.weights_file = str(bad)
    loaded.model_panel.weights_combo.setCurrentIndex(2)
    loaded.training_panel.lr_find_button.click()
    wait_idle(qtbot, loaded)
    assert "not a readable PyTorch weights file" in loaded.last_error
    assert loaded.training_panel.lr_find_button.isEnabled()


def test_recipe_marks_its_steps(loaded, qtbot) -> None:
    loaded.workspace.recipe = lesson1().scaled(0.1)
    loaded.training_panel.run_recipe_button.click()
    qtbot.waitUntil(lambda: "running" in loaded.training_panel.recipe_marks(), timeout=30_000)
    wait_idle(qtbot, loaded, timeout=300_000)
    assert loaded.training_panel.recipe_marks() == ["done"] * 9
    assert "Recipe finished" in loaded.last_status
    assert loaded.model_panel.frozen_label.text() == "training: all layers"


def test_settings_persist(make_window, tmp_path, qtbot) -> None:
    window = make_window(tmp_path / "persist.ini")
    window.data_panel.size_spin.setValue(48)
    window.data_panel.augment_combo.setCurrentIndex(window.data_panel.augment_combo.findData("top_down"))
    window.data_panel.resized_check.setChecked(False)
    window.close()
    again = make_window(tmp_path / "persist.ini", tiny=False)
    assert again.data_panel.size_spin.value() == 48 and again.data_panel.augment_combo.currentData() == "top_down"
    assert not again.data_panel.resized_check.isChecked()


def test_the_shrunk_copies_setting_reaches_the_loaders(loaded) -> None:
    assert loaded.data_panel.current_data().resized_cache
    loaded.data_panel.resized_check.setChecked(False)
    data = loaded.data_panel.current_data()
    assert not data.resized_cache and data.reader().folder is None


def test_dropping_a_folder_opens_it(make_window, dataset, qtbot) -> None:
    window = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(dataset))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    wait_idle(qtbot, window)
    assert window.workspace.data is not None and Path(window.workspace.data.path) == dataset


def test_save_and_open_model(loaded, qtbot, tmp_path) -> None:
    loaded.training_panel.cycles_spin.setValue(1)
    loaded.training_panel.train_button.click()
    wait_idle(qtbot, loaded)
    assert loaded.windowTitle().endswith("resnet18 (not saved) *")
    assert loaded.model_files.save_model_to(str(tmp_path / "m.gcm"))
    assert loaded.windowTitle().endswith(" - m.gcm")
    loaded.training_panel.train_button.click()
    wait_idle(qtbot, loaded)
    assert loaded.windowTitle().endswith(" - m.gcm *")  # same model, changed since saved
    loaded.open_model(str(tmp_path / "m.gcm"))
    wait_idle(qtbot, loaded)
    assert "Opened m.gcm" in loaded.last_status and loaded.workspace.learner.data is not None
    assert loaded.windowTitle().endswith(" - m.gcm")
    (tmp_path / "junk.gcm").write_text("junk")
    loaded.open_model(str(tmp_path / "junk.gcm"))
    wait_idle(qtbot, loaded)
    assert "not a guiclassifier model" in loaded.last_error


def test_repeated_sweeps_draw_a_spread_band(loaded, qtbot) -> None:
    loaded.training_panel.sweeps_spin.setValue(2)
    loaded.training_panel.lr_find_button.click()
    wait_idle(qtbot, loaded)
    low, high = loaded.plots.lr_plot.band.curves
    lows, highs = low.getData()[1], high.getData()[1]
    assert len(lows) > 10 and all(h >= lo for lo, h in zip(lows, highs))
    assert any(h > lo for lo, h in zip(lows, highs))  # other batch orders give other losses


def test_widgets_have_their_stable_object_names(make_window) -> None:
    from PySide6.QtWidgets import QWidget

    window = make_window()
    names = ["dataPathEdit", "lrFindButton", "trainButton", "freezeButton", "unfreezeButton", "stopButton",
             "runRecipeButton", "lrEdit", "lrFindPlot", "schedulePlot", "lossPlot", "metricsTable", "archCombo",
             "precomputeCheck", "resizedCheck", "progressBar"]
    missing = [n for n in names if window.findChild(QWidget, n) is None]
    assert missing == []
    offline = [window.model_panel.arch_combo.itemText(i) for i in range(window.model_panel.arch_combo.count())
               if "weights here" in window.model_panel.arch_combo.itemText(i)]
    assert offline == ["mobilenet_v2  (weights here)"]  # only the offline package is on this machine


def test_until_overfit_marks_each_cycle_and_the_kept_one(loaded, qtbot, monkeypatch) -> None:
    from guiclassifier.core.learner import Learner

    losses = iter([0.5, 0.3, 0.4, 0.2])  # cycle 3 is worse than cycle 2
    real = Learner._validate
    monkeypatch.setattr(Learner, "_validate", lambda self, emit, cancel: (next(losses), real(self, emit, cancel)[1]))
    loaded.training_panel.overfit_check.setChecked(True)
    assert loaded.training_panel.epochs_label.text().startswith("at most")
    train_briefly(qtbot, loaded, lr="0.02", cycles=4, cycle_len=1)
    rows = loaded.plots.metrics_table.rows()
    assert [r[-1] for r in rows] == ["cycle 1: best so far", "cycle 2: kept \u2713", "cycle 3: worse: stop"]
    assert loaded.plots.metrics_table.kept_rows() == [1]
    assert "kept cycle 2's weights" in loaded.last_status
    assert loaded.workspace.learner.history[-1]["kept_cycle"] == 1


def test_expected_errors_print_no_traceback_unless_debugging(make_window, qtbot, tmp_path, capfd, caplog) -> None:
    import logging

    window = make_window()
    empty = tmp_path / "empty"
    empty.mkdir()
    window.open_dataset(str(empty))
    wait_idle(qtbot, window)
    assert window.last_error and "Traceback" not in capfd.readouterr().err
    with caplog.at_level(logging.DEBUG, logger="guiclassifier"):  # what `guiclassifier --debug` shows
        window.open_dataset(str(empty))
        wait_idle(qtbot, window)
    assert any(r.exc_info for r in caplog.records)


def test_long_texts_never_make_the_window_grow(make_window, qtbot) -> None:
    from PySide6.QtWidgets import QLabel

    window = make_window()
    window.resize(1280, 820)
    window.show()
    qtbot.waitExposed(window)
    long_text = "a long line of text that goes on and on " * 15
    for label in window.findChildren(QLabel):
        if label.pixmap().isNull():
            label.setText(long_text)
    window.interpret_panel.summary.setText(long_text)
    window.status.progress_label.setText(long_text)
    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)
        qtbot.wait(20)
    assert window.width() == 1280 and window.minimumSizeHint().width() < 1366


def test_texts_say_what_really_happened(loaded, qtbot, dataset) -> None:
    trained = loaded
    trained.model_panel.precompute_check.setChecked(False)  # so the familiarity check has features to compute
    train_briefly(qtbot, trained, cycles=1)
    trained.plots.lr_plot.lrChosen.emit(3e-3)
    assert trained.last_status == "Learning rate 3.00e-03 (chosen on the curve)."
    labels: list[str] = []
    real = trained.status.progress
    trained.status.progress = lambda done, total, eta, label, n=0: labels.append(label) or real(done, total, eta, label, n)
    image = next((dataset / "valid" / "cat").iterdir())
    trained.predict_panel.start_predict([str(image)])
    wait_idle(qtbot, trained)
    assert trained.last_status == "Predicted 1 image."
    assert not any(label == "Precomputing" for label in labels)  # Precompute is not what runs here
    assert any("familiarity check" in label for label in labels)


def test_image_size_follows_device_and_data_until_the_user_chooses(make_window, qtbot, dataset, tmp_path) -> None:
    window = make_window(tmp_path / "fresh.ini", tiny=False)
    assert not window.data_panel.size_chosen and window.data_panel.size_spin.value() == 128  # a CPU here
    window.open_dataset(str(dataset))
    wait_idle(qtbot, window)
    assert window.data_panel.size_spin.value() == 64  # the test images are 24 px: no use blowing them up to 128
    window.data_panel.size_spin.setValue(96)
    window.close()
    again = make_window(tmp_path / "fresh.ini", tiny=False)
    again.open_dataset(str(dataset))
    wait_idle(qtbot, again)
    assert again.data_panel.size_chosen and again.data_panel.size_spin.value() == 96


def test_plots_show_plain_numbers_and_every_group(loaded, qtbot) -> None:
    for plot in (loaded.plots.lr_plot.getPlotItem(), loaded.plots.loss_plot.loss.getPlotItem(),
                 loaded.plots.loss_plot.accuracy.getPlotItem(), loaded.plots.schedule_plot.getPlotItem()):
        assert not plot.getAxis("left").autoSIPrefix and not plot.getAxis("bottom").autoSIPrefix
    assert loaded.plots.loss_plot.loss.getViewBox().viewRange()[1] == [0, 1]  # no data yet: a sensible empty range
    schedule = loaded.plots.schedule_plot
    schedule.set_schedule([[0.01 / 9] * 4, [0.01 / 3] * 4, [0.01] * 4], 2)
    assert schedule.getPlotItem().getAxis("left").logMode  # the early group is not flat on zero
    schedule.set_schedule([[0.01] * 4] * 3, 2)
    assert not schedule.getPlotItem().getAxis("left").logMode
    loaded.plots.loss_plot.add_batch(0.5)
    loaded.plots.loss_plot.add_epoch(0.4, 0.925)
    loaded.plots.loss_plot.refresh()
    assert list(loaded.plots.loss_plot.accuracy_curve.getData()[1]) == [92.5]  # percent, like the table


def test_suggestions_are_named_in_the_legend_and_messages_survive_menus(loaded) -> None:
    plot = loaded.plots.lr_plot
    plot.set_suggestions({"lesson": 1.0e-3, "valley": 1.1e-3})  # close together: labels used to collide
    names = [label.text for _, label in plot.getPlotItem().legend.items]
    assert "lesson 1.0e-03" in names and "valley 1.1e-03" in names
    assert all(getattr(m, "label", None) is None for m in plot._markers)
    plot.set_suggestions({})
    assert not any(n.startswith(("lesson", "valley")) for n in
                   (label.text for _, label in plot.getPlotItem().legend.items))
    loaded.set_status("Something the user must read.")
    loaded.statusBar().showMessage("")  # what hovering a menu item does
    loaded.statusBar().clearMessage()
    assert loaded.status.status_label.text() == "Something the user must read."


def test_the_status_bar_stays_one_line_high(make_window, qtbot) -> None:
    window = make_window()
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    window.set_status("A long message that goes on " * 10)
    qtbot.wait(50)
    assert window.statusBar().height() < 60 and window.centralWidget().height() > 600
