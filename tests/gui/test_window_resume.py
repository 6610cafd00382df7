"""Resume through the window's own path gives the run an uninterrupted window would have given:
the same per-epoch losses and the same final weights, for every kind of stage (issue 13)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import QTimer

from guiclassifier.core.checkpoint import checkpoint_paths, default_checkpoint_dir
from guiclassifier.core.events import EpochEnded, FitStarted
from guiclassifier.core.recipe import Evaluate, Recipe, SetPrecompute, Train, Unfreeze
from tests.gui.conftest import wait_idle

Steps = Callable[[object, object, Path], None]


def _train(qtbot, window, lr: str, cycles: int, cycle_len: int, mult: int) -> None:
    window.training_panel.lr_edit.setText(lr)
    window.training_panel.cycles_spin.setValue(cycles)
    window.training_panel.cycle_len_spin.setValue(cycle_len)
    window.training_panel.cycle_mult_spin.setValue(mult)
    window.training_panel.train_button.click()
    wait_idle(qtbot, window)


def _open(qtbot, window, dataset: Path) -> None:
    window.open_dataset(str(dataset))
    wait_idle(qtbot, window)


def head_with_precompute(qtbot, window, dataset: Path) -> None:
    _open(qtbot, window, dataset)
    window.model_panel.precompute_check.setChecked(True)
    _train(qtbot, window, "0.05", 3, 1, 2)  # fit 1: 1 + 2 + 4 epochs from cached activations


def unfrozen_with_group_ratios(qtbot, window, dataset: Path) -> None:
    _open(qtbot, window, dataset)
    window.model_panel.precompute_check.setChecked(True)
    _train(qtbot, window, "0.05", 1, 0, 1)  # fit 1: the head
    window.training_panel.unfreeze_button.click()
    wait_idle(qtbot, window)
    window.training_panel.ratio_spin.setValue(3.0)
    _train(qtbot, window, "0.01", 2, 1, 2)  # fit 2: every group, lr/9, lr/3, lr; 1 + 2 epochs


RECIPE = Recipe("resume-test", (SetPrecompute(True), Train(0.05, n_cycle=1), SetPrecompute(False),
                                Train(0.05, n_cycle=2, cycle_len=1), Unfreeze(),
                                Train((0.01 / 9, 0.01 / 3, 0.01), n_cycle=2, cycle_len=1, cycle_mult=2),
                                Evaluate(False)))


def inside_a_recipe(qtbot, window, dataset: Path) -> None:
    _open(qtbot, window, dataset)
    window.workspace.recipe = RECIPE
    window.training_panel.run_recipe_button.click()
    wait_idle(qtbot, window)


def _slow_steps(monkeypatch) -> None:
    """Tiny epochs end in a blink: slow the batches so the window closes mid-run, as a user's would."""
    from guiclassifier.core.learner import Learner

    original = Learner.train_step

    def slow(self, x, y, lrs):
        time.sleep(0.03)
        return original(self, x, y, lrs)

    monkeypatch.setattr(Learner, "train_step", slow)


def _record(window) -> list[list[EpochEnded]]:
    fits: list[list[EpochEnded]] = []

    def on_events(batch: list) -> None:
        for event in batch:
            if isinstance(event, FitStarted):
                fits.append([])
            elif isinstance(event, EpochEnded) and fits:
                fits[-1].append(event)

    window.runner.events.connect(on_events)
    return fits


def _weights(window) -> dict[str, torch.Tensor]:
    return {k: v.detach().float().clone() for k, v in window.workspace.learner.model.state_dict().items()}


@pytest.mark.parametrize("steps, fit_index", [(head_with_precompute, 0), (unfrozen_with_group_ratios, 1),
                                              (inside_a_recipe, 2)],
                         ids=["head-precomputed", "unfrozen", "recipe"])
def test_resume_in_the_window_matches_an_uninterrupted_run(make_window, dataset: Path, qtbot, monkeypatch,
                                                           tmp_path: Path, steps: Steps, fit_index: int) -> None:
    from guiclassifier.gui.main_window import MainWindow

    _slow_steps(monkeypatch)
    whole = make_window(tmp_path / "whole.ini")
    whole_fits = _record(whole)
    steps(qtbot, whole, dataset)
    assert whole.last_error is None
    expected_epochs = [(e.epoch, e.train_loss, e.valid_loss) for e in whole_fits[fit_index]]
    expected = _weights(whole)
    whole.close()

    cut = make_window(tmp_path / "cut.ini")
    cut_fits = _record(cut)
    closing: list[bool] = []

    def close_after_first_epoch(_batch: list) -> None:
        if len(cut_fits) > fit_index and cut_fits[fit_index] and not closing:
            closing.append(True)
            QTimer.singleShot(0, cut.close)  # the user closes the window mid-stage

    cut.runner.events.connect(close_after_first_epoch)
    steps(qtbot, cut, dataset)
    qtbot.waitUntil(lambda: bool(closing) and not cut.isVisible() and not cut.runner.busy, timeout=60_000)
    assert checkpoint_paths(default_checkpoint_dir() / "window"), "closing mid-stage left nothing to resume"
    done = len(cut_fits[fit_index])
    assert 1 <= done < len(expected_epochs)

    monkeypatch.setattr(MainWindow, "confirm", lambda self, q: True)
    again = make_window(tmp_path / "again.ini")
    again_fits = _record(again)
    qtbot.waitUntil(lambda: again.workspace.learner is not None and not again.runner.busy, timeout=120_000)
    assert again.last_error is None
    resumed = [(e.epoch, e.train_loss, e.valid_loss) for e in again_fits[0]]
    assert [e[0] for e in resumed] == [e[0] for e in expected_epochs[done:]]
    for got, want in zip(resumed, expected_epochs[done:]):
        assert got[1:] == pytest.approx(want[1:], rel=1e-4, abs=1e-5), (got, want)
    for name, tensor in _weights(again).items():
        assert torch.allclose(tensor, expected[name], atol=1e-5), name
    assert checkpoint_paths(default_checkpoint_dir() / "window") == []
