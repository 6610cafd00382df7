"""The Check data tab: the data audit run from the window before any training, its findings listed
by kind and clickable, files moved and put back through it, and Stop."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from guiclassifier.core import audit as audit_module
from guiclassifier.core.events import AuditProgress
from guiclassifier.gui.widgets.audit_view import MEANING_ROLE
from tests.gui.conftest import train_briefly, wait_idle

STEPS = ("Reading images", "Comparing images", "Checking labels")


@pytest.fixture
def leaky(dataset: Path) -> tuple[Path, Path, Path]:
    """The tiny dataset with one validation image copied into train under another name."""
    original = dataset / "valid" / "cat" / "cat_000.png"
    copy = dataset / "train" / "cat" / "renamed_copy.png"
    shutil.copy(original, copy)
    return dataset, original, copy


def open_and_check(qtbot, window, folder: Path) -> None:
    window.open_dataset(str(folder))
    wait_idle(qtbot, window)
    assert window.data_panel.view.check_button.isEnabled()
    window.data_panel.view.check_button.click()  # from the Data tab, as a user starts it
    wait_idle(qtbot, window)
    assert window.last_error is None, window.last_error


def finding_item(view, kind_title: str, row: int = 0):
    top = next(view.tree.topLevelItem(i) for i in range(view.tree.topLevelItemCount())
               if view.tree.topLevelItem(i).text(0).startswith(kind_title))
    return top.child(row)


def click_tree_item(qtbot, view, item) -> None:
    view.tree.scrollToItem(item)
    rect = view.tree.visualItemRect(item)
    qtbot.mouseClick(view.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def select_file(view, path: Path) -> None:
    view.files.grid.setCurrentRow(view.gallery_paths().index(str(path)))


def trigger(view, text: str) -> None:
    next(a for a in view.files.move_button.menu().actions() if a.text() == text).trigger()


@pytest.fixture
def checked(make_window, leaky, qtbot):
    """A window that opened the leaky dataset and checked it before any training, with every
    progress line the status bar was given."""
    window = make_window()
    shown: list[str] = []
    progress = window.status.progress
    window.status.progress = lambda done, total, eta, label, n=0: shown.append(label) or progress(
        done, total, eta, label, n)
    open_and_check(qtbot, window, leaky[0])
    return window, leaky, shown


def test_the_check_runs_before_training_and_lists_a_planted_copy(checked) -> None:
    window, (dataset, original, copy), shown = checked
    view = window.audit_panel
    assert window.tabs.currentWidget() is view  # the Data tab's button opened the tab
    assert window.workspace.learner is None  # an untrained model does not become the project's
    report = view.result.report
    assert not report.cancelled and report.n_images == 2 * 16 + 1
    leak = next(f for f in report.findings if f.kind == "leak")
    assert set(leak.files) == {str(original), str(copy)}
    assert set(leak.splits) == {"train", "valid"}
    tops = [view.tree.topLevelItem(i).text(0) for i in range(view.tree.topLevelItemCount())]
    assert tops[0] == "Train/valid leaks (1)"
    meaning = view.tree.topLevelItem(0).data(0, MEANING_ROLE)
    assert meaning.startswith("the same picture in train and valid")
    assert any(t.startswith("Small classes (2)") for t in tops)  # 12-13 training images a class
    assert "33 images checked" in view.summary.text() and "Stopped" not in view.summary.text()
    assert window.last_status.startswith("Checked 33 images")
    # The status bar's progress named each step of the audit, in order.
    steps = [label for label in shown if label in STEPS]
    assert [s for i, s in enumerate(steps) if i == 0 or steps[i - 1] != s] == list(STEPS)
    assert window.data_panel.view.check_button.isEnabled() and view.check_button.isEnabled()


def test_clicking_a_finding_shows_its_images_with_class_and_split(checked, qtbot) -> None:
    window, (dataset, original, copy), _ = checked
    view = window.audit_panel
    click_tree_item(qtbot, view, finding_item(view, "Train/valid leaks"))
    assert sorted(view.gallery_paths()) == sorted([str(original), str(copy)])
    texts = {view.files.grid.item(i).data(Qt.ItemDataRole.UserRole): view.files.grid.item(i).text()
             for i in range(view.files.grid.count())}
    assert texts[str(copy)] == "renamed_copy.png\ncat \u00b7 train"
    assert texts[str(original)] == "cat_000.png\ncat \u00b7 valid"
    assert "Train/valid leaks" in view.gallery_title.text()
    qtbot.waitUntil(lambda: all(not view.files.grid.item(i).icon().isNull() for i in range(view.files.grid.count())))
    # A finding about whole classes has no images: the gallery says so instead.
    click_tree_item(qtbot, view, finding_item(view, "Small classes"))
    assert view.gallery_paths() == [] and "whole classes" in view.gallery_title.text()


def test_moving_a_file_from_the_check_and_undoing_it(checked, qtbot) -> None:
    window, (dataset, original, copy), _ = checked
    view = window.audit_panel
    questions: list[str] = []
    window.confirm = lambda q: questions.append(q) or True
    click_tree_item(qtbot, view, finding_item(view, "Train/valid leaks"))
    select_file(view, copy)
    assert view.files.move_button.isEnabled()
    trigger(view, "Move to quarantine (out of the dataset)")
    wait_idle(qtbot, window)
    quarantined = dataset / "_quarantine" / "train" / "cat" / copy.name
    assert "Move renamed_copy.png to the quarantine folder" in questions[0]
    assert quarantined.is_file() and not copy.exists()
    assert str(copy) not in {i.path for i in window.workspace.data.train_items}  # rescanned
    assert view.gallery_paths() == [str(original)]
    assert "analyse again to update" in view.summary.text()
    assert finding_item(view, "Train/valid leaks").text(0).endswith("[1 of 2 moved]")
    assert view.files.undo_button.isEnabled()

    view.files.undo_button.click()
    wait_idle(qtbot, window)
    assert copy.is_file() and not quarantined.exists()
    assert sorted(view.gallery_paths()) == sorted([str(original), str(copy)])
    assert "analyse again" not in view.summary.text()
    assert not view.files.undo_button.isEnabled()

    # To another class: the same move code as the Interpret tab (panels.file_moves).
    select_file(view, original)
    trigger(view, "Move to class dog")
    wait_idle(qtbot, window)
    assert (dataset / "valid" / "dog" / original.name).is_file() and not original.exists()
    assert window.workspace.data.report.counts()["dog"] == (12, 5)
    assert view.gallery_paths() == [str(copy)]


def test_stop_mid_check_says_so_and_leaves_the_window_usable(make_window, leaky, qtbot, monkeypatch) -> None:
    """The label step waits (on the worker) until Stop is pressed, so the stop lands mid-check."""
    label_step = audit_module.out_of_fold_probabilities
    held = threading.Event()

    def held_until_stopped(features, labels, n_classes, cancel):
        if not held.is_set():
            held.set()
            while not cancel.cancelled:
                threading.Event().wait(0.01)
        return label_step(features, labels, n_classes, cancel)

    monkeypatch.setattr(audit_module, "out_of_fold_probabilities", held_until_stopped)
    window = make_window()
    window.open_dataset(str(leaky[0]))
    wait_idle(qtbot, window)
    steps: list[str] = []
    window.runner.events.connect(lambda batch: steps.extend(e.step for e in batch if isinstance(e, AuditProgress)))
    window.audit_panel.check_button.click()
    qtbot.waitUntil(lambda: "Checking labels" in steps, timeout=60_000)
    assert window.runner.busy and not window.audit_panel.check_button.isEnabled()
    window.training_panel.stop_button.click()
    wait_idle(qtbot, window)
    view = window.audit_panel
    assert view.result.report.cancelled
    assert view.summary.text().startswith("Stopped after ") and "before checking labels: " in view.summary.text()
    assert window.last_status.startswith("Check stopped")
    kinds = {f.kind for f in view.result.report.findings}
    assert "leak" in kinds and "label_error" not in kinds  # copies were compared before the stop
    # Usable: the check runs again to the end.
    assert view.check_button.isEnabled() and window.data_panel.view.check_button.isEnabled()
    view.check_button.click()
    wait_idle(qtbot, window)
    assert not view.result.report.cancelled and "Stopped" not in view.summary.text()


def test_no_dataset_one_class_and_unreadable_files(make_window, dataset_factory, tmp_path: Path, qtbot) -> None:
    window = make_window()
    assert not window.data_panel.view.check_button.isEnabled()
    window.audit_panel.start_audit()  # from the Run menu with nothing open
    assert "Open a dataset first" in window.last_error and not window.runner.busy
    window.last_error = None

    one_class = dataset_factory(classes=("cat",))
    window.open_dataset(str(one_class))
    wait_idle(qtbot, window)
    assert "Only one class" in window.last_error and window.workspace.data is None
    assert not window.data_panel.view.check_button.isEnabled()
    window.last_error = None

    root = dataset_factory()
    (root / "train" / "cat" / "broken.png").write_bytes(b"not an image")  # the scan skips it
    window.open_dataset(str(root))
    wait_idle(qtbot, window)
    assert window.workspace.data.report.skipped
    (root / "train" / "dog" / "dog_003.png").write_bytes(b"damaged after the scan")
    window.data_panel.view.check_button.click()  # the check reads the folder as it is now
    wait_idle(qtbot, window)
    assert window.last_error is None, window.last_error
    summary = window.audit_panel.summary.text()
    assert "Could not be read, so not checked: 2 files (2 skipped by the scan, listed on the Data tab)" in summary
    assert len(window.workspace.data.report.skipped) == 2  # and the Data tab follows
    assert "weights are random" in summary  # the tiny window's model: the check says what that costs


def test_after_training_the_check_uses_the_model_and_leaves_it_as_it_was(make_window, leaky, qtbot) -> None:
    window = make_window()
    window.open_dataset(str(leaky[0]))
    wait_idle(qtbot, window)
    train_briefly(qtbot, window, cycles=1)
    learner, dirty, history = window.workspace.learner, window.workspace.dirty, len(window.workspace.learner.history)
    window.audit_panel.check_button.click()
    wait_idle(qtbot, window)
    assert window.last_error is None, window.last_error
    assert window.workspace.learner is learner and window.workspace.dirty == dirty
    assert len(learner.history) == history  # nothing was trained
    assert "Compared with the current model's features (resnet18)" in window.audit_panel.summary.text()
    assert "weights are random" not in window.audit_panel.summary.text()  # trained: its features are learnt
    assert any(f.kind == "leak" for f in window.audit_panel.result.report.findings)


def test_files_added_outside_the_app_are_checked_and_the_data_tab_follows(make_window, dataset_factory,
                                                                          qtbot) -> None:
    root = dataset_factory()
    window = make_window()
    window.open_dataset(str(root))
    wait_idle(qtbot, window)
    before = len(window.workspace.data.train_items)
    original = root / "valid" / "dog" / "dog_000.png"
    copy = root / "train" / "dog" / "added_later.png"
    shutil.copy(original, copy)  # a leak made in the file manager while the window is open
    window.data_panel.view.check_button.click()
    wait_idle(qtbot, window)
    assert window.last_error is None, window.last_error
    leaks = window.audit_panel.result.report.of_kind("leak")
    assert any({str(original), str(copy)} <= set(f.files) for f in leaks)
    assert len(window.workspace.data.train_items) == before + 1
