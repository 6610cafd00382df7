""""Until it over-fits": cycle ends judged by validation loss, the best cycle kept, resume intact,
a fit that stops when it collapses to chance, and the recipe's roll-back and retry then."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from guiclassifier import ImageData, Learner
from guiclassifier.core.cancel import CancelToken
from guiclassifier.core.checkpoint import CheckpointConfig, latest_checkpoint
from guiclassifier.core.events import CycleEnded, EpochEnded, EpochStarted, FitEnded
from guiclassifier.core.learner import EpochRecord, FitResult
from guiclassifier.core.overfit import CycleJudge, CycleRecord
from guiclassifier.core.recipe import Train
from guiclassifier.core.collapse import is_collapse, majority_share
from guiclassifier.core.recipe_runner import train_with_rollback
from guiclassifier.core.schedules import SGDR

# Validation loss at the end of each epoch (from 1): cycles of 1 + 2 + 4 epochs end at 1, 3, 7.
SCRIPTED = {1: 0.50, 2: 0.45, 3: 0.30, 4: 0.35, 5: 0.36, 6: 0.37, 7: 0.40, 8: 0.2}


def scripted_validation(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Learner._validate returns SCRIPTED losses by epoch (the real accuracy is kept), so
    validation gets worse after cycle 2 whatever the tiny model learns."""
    now = {"epoch": 0}
    real = Learner._validate

    def fake(self: Learner, emit, cancel) -> tuple[float, float]:
        _, accuracy = real(self, emit, cancel)
        return SCRIPTED[now["epoch"] + 1], accuracy

    monkeypatch.setattr(Learner, "_validate", fake)
    return now


def tracker(now: dict[str, int], events: list) -> callable:
    def cb(event) -> None:
        events.append(event)
        if isinstance(event, EpochStarted):
            now["epoch"] = event.epoch
    return cb


def new_learner(dataset: Path) -> Learner:
    data = ImageData.from_folder(dataset, size=32, bs=8, num_workers=0, seed=0)
    return Learner.pretrained("resnet18", data, weights=None, device="cpu")


def weights(learner: Learner) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in learner.model.state_dict().items()}


def test_cycle_judge_names_cycle_ends_and_the_best() -> None:
    judge = CycleJudge(SGDR(3, 1, 2))
    assert judge.ends == (1, 3, 7)
    assert judge.add(2, 0.1, 0.9) is None  # epoch 2 ends no cycle
    assert judge.add(1, 0.5, 0.8).best and judge.add(3, 0.3, 0.9).best
    assert not judge.add(7, float("nan"), 0.9).best and judge.last_was_worse and judge.best_cycle == 1


def test_until_overfit_stops_after_a_worse_cycle_and_keeps_the_best(dataset: Path, monkeypatch) -> None:
    now = scripted_validation(monkeypatch)
    learner = new_learner(dataset)
    events: list = []
    at_cycle_end: dict[int, dict[str, torch.Tensor]] = {}

    def cb(event) -> None:
        tracker(now, events)(event)
        if isinstance(event, CycleEnded):
            at_cycle_end[event.cycle] = weights(learner)

    result = learner.fit(0.05, 4, cycle_len=1, cycle_mult=2, callbacks=cb, until_overfit=True)
    assert result.epochs_done == 7  # cycles 1, 2 and 3 ran; cycle 4 (8 more epochs) did not
    assert result.stopped_early and result.kept_cycle == 1
    cycles = [e for e in events if isinstance(e, CycleEnded)]
    assert [(c.cycle, c.best_cycle, c.stopping) for c in cycles] == [(0, 0, False), (1, 1, False), (2, 1, True)]
    for name, tensor in weights(learner).items():
        assert torch.equal(tensor, at_cycle_end[1][name]), name
    assert not all(torch.equal(t, at_cycle_end[2][n]) for n, t in weights(learner).items())
    assert "cycle 3 was worse than cycle 2" in result.message and "kept cycle 2's weights" in result.message
    ended = [e for e in events if isinstance(e, FitEnded)][-1]
    assert ended.kept_cycle == 1 and ended.message == result.message
    assert learner.history[-1]["kept_cycle"] == 1
    assert result.final_accuracy == cycles[1].accuracy


def test_without_until_overfit_every_cycle_runs_and_the_last_stays(dataset: Path, monkeypatch) -> None:
    now = scripted_validation(monkeypatch)
    learner = new_learner(dataset)
    events: list = []
    result = learner.fit(0.05, 3, cycle_len=1, cycle_mult=2, callbacks=tracker(now, events))
    assert result.epochs_done == 7 and result.kept_cycle is None and not result.stopped_early
    assert [c.best for c in result.cycles] == [True, True, False]  # reported, not acted on


def test_resumed_until_overfit_fit_matches_an_uninterrupted_one(dataset: Path, tmp_path: Path,
                                                                monkeypatch) -> None:
    now = scripted_validation(monkeypatch)
    fit = {"lrs": 0.05, "n_cycle": 4, "cycle_len": 1, "cycle_mult": 2, "until_overfit": True}
    whole = new_learner(dataset)
    expected = whole.fit(**fit, callbacks=tracker(now, []))

    config = CheckpointConfig(tmp_path / "ck", every=1, keep=2)
    token = CancelToken()
    events: list = []

    def stop_after_epoch_5(event) -> None:
        tracker(now, events)(event)
        if isinstance(event, EpochEnded) and event.epoch == 4:
            token.cancel()

    first = new_learner(dataset)
    assert first.fit(**fit, callbacks=stop_after_epoch_5, cancel=token, checkpoints=config).cancelled
    resumed, result = Learner.resume(latest_checkpoint(config.folder), first.data,
                                     callbacks=tracker(now, events), checkpoints=config)
    assert result.kept_cycle == expected.kept_cycle == 1 and result.stopped_early
    assert result.message == expected.message
    for name, tensor in weights(whole).items():
        assert torch.equal(tensor, weights(resumed)[name]), name
    assert resumed.optimizer().state_dict()["param_groups"][0]["lr"] == \
        whole.optimizer().state_dict()["param_groups"][0]["lr"]


def _result(accuracies: list[float], **kwargs) -> FitResult:
    return FitResult(tuple(EpochRecord(i, 0.5, 0.5, a, 1.0, (0.01,)) for i, a in enumerate(accuracies)), **kwargs)


def test_collapse_is_chance_accuracy_after_being_clearly_better() -> None:
    assert is_collapse(0.5, 0.9, chance=0.5)
    assert is_collapse(0.34, 0.9, chance=1 / 3)
    assert not is_collapse(0.52, 0.5, chance=0.5)  # never learned: not a collapse
    assert not is_collapse(0.5, None, chance=0.5)
    assert not is_collapse(0.85, 0.9, chance=0.5)
    assert majority_share([0] * 20 + [1] * 10) == pytest.approx(2 / 3)
    assert majority_share([0, 1] * 7) is None  # 14 images: one image moves accuracy by 7 points


def test_a_fit_that_collapses_stops_keeps_the_last_good_weights_and_says_so(dataset_factory,
                                                                           monkeypatch) -> None:
    data = ImageData.from_folder(dataset_factory(n_valid=16), size=32, bs=8, num_workers=0, seed=0)
    learner = Learner.pretrained("resnet18", data, weights=None, device="cpu")
    script = iter([(0.30, 0.90), (20.7, 0.50), (0.2, 0.95)])  # epoch 2 falls to chance (50%)
    monkeypatch.setattr(learner, "_validate", lambda emit, cancel: next(script))
    after_first: dict[str, torch.Tensor] = {}

    def on_event(event) -> None:
        if isinstance(event, EpochEnded) and event.epoch == 0:
            after_first.update({k: v.clone() for k, v in learner.model.state_dict().items()})

    result = learner.fit(0.05, 3, callbacks=on_event)
    assert result.collapsed and result.failed and len(result.epochs) == 2
    assert "collapsed in epoch 2" in result.message and "50.0%" in result.message
    assert "20.7" in result.message and "10x lower" in result.message
    assert result.final_accuracy == 0.90  # the kept weights' accuracy, not the collapsed epoch's
    for name, tensor in learner.model.state_dict().items():
        assert torch.equal(tensor, after_first[name]), name
    assert learner.history[-1]["collapsed"] and learner.history[-1]["final_accuracy"] == 0.90


def test_a_collapsed_stage_is_rolled_back_and_retried_at_a_tenth(dataset_factory, monkeypatch) -> None:
    data = ImageData.from_folder(dataset_factory(n_valid=16), size=32, bs=8, num_workers=0, seed=0)
    tiny_learner = Learner.pretrained("resnet18", data, weights=None, device="cpu")
    tiny_learner.history.append({"kind": "fit", "epochs": [{"accuracy": 0.95}], "final_accuracy": 0.95})
    before = copy.deepcopy(tiny_learner.model.state_dict())
    calls: list = []

    def fake_fit(lrs, *args, **kwargs) -> FitResult:
        calls.append((lrs, {k: v.clone() for k, v in tiny_learner.model.state_dict().items()}))
        with torch.no_grad():  # what a broken stage leaves behind
            for p in tiny_learner.model.parameters():
                p.add_(1.0)
        return _result([0.5], collapsed=True) if len(calls) == 1 else _result([0.9])

    monkeypatch.setattr(tiny_learner, "fit", fake_fit)
    result, used = train_with_rollback(tiny_learner, Train(0.3, 1), 0.3, None, None, None, None)
    assert [c[0] for c in calls] == [0.3, pytest.approx(0.03)] and used == pytest.approx(0.03)
    for name, tensor in calls[1][1].items():  # the retry started from the weights before the stage
        assert torch.equal(tensor, before[name]), name
    assert "collapsed at lr 3.00e-01 (50.0% accuracy)" in result.message and "a tenth" in result.message

    calls.clear()
    monkeypatch.setattr(tiny_learner, "fit",
                        lambda lrs, *a, **k: calls.append(lrs) or _result([0.5], collapsed=True))
    tiny_learner.model.load_state_dict(before)
    result, _ = train_with_rollback(tiny_learner, Train(0.3, 1), (0.1, 0.2, 0.3), None, None, None, None)
    assert len(calls) == 2 and "weights from before this stage were kept" in result.message
    assert not result.failed  # handled: the recipe goes on


def test_no_collapse_is_declared_on_a_handful_of_validation_images(tiny_learner: Learner, monkeypatch) -> None:
    script = iter([(0.3, 0.9), (0.9, 0.5), (0.4, 0.75)])  # 8 validation images: 50% may be bad luck
    monkeypatch.setattr(tiny_learner, "_validate", lambda emit, cancel: next(script))
    result = tiny_learner.fit(0.05, 3)
    assert not result.collapsed and len(result.epochs) == 3


def test_a_stage_trained_until_it_overfits_that_ends_worse_than_it_began_is_rolled_back(
        tiny_learner: Learner, monkeypatch) -> None:
    """fm-shirt-vs-tshirt, seed 0: at 1e-2 the unfrozen stage's first cycle end (validation loss
    0.60) was its best, worse than the head it started from; it kept that and scored 79.5%."""
    before = copy.deepcopy(tiny_learner.model.state_dict())
    start = tiny_learner.evaluate().loss
    kept_losses = iter([start + 0.3, start - 0.01])  # the first try ends worse, the retry better
    calls: list = []

    def fake_fit(lrs, *args, **kwargs) -> FitResult:
        calls.append((lrs, {k: v.clone() for k, v in tiny_learner.model.state_dict().items()}))
        with torch.no_grad():
            for p in tiny_learner.model.parameters():
                p.add_(1.0)
        loss = next(kept_losses)
        epochs = (EpochRecord(0, 0.5, loss, 0.8, 1.0, (0.01,)),)
        return FitResult(epochs, cycles=(CycleRecord(0, 1, loss, 0.8, True),), kept_cycle=0)

    monkeypatch.setattr(tiny_learner, "fit", fake_fit)
    stage = Train(0.01, 2, cycle_len=1, cycle_mult=2, until_overfit=True)
    result, used = train_with_rollback(tiny_learner, stage, (0.001, 0.003, 0.01), None, None, None, None)
    assert [c[0] for c in calls] == [(0.001, 0.003, 0.01), pytest.approx((1e-4, 3e-4, 1e-3))]
    assert used == pytest.approx((1e-4, 3e-4, 1e-3))
    for name, tensor in calls[1][1].items():  # the retry started from the weights before the stage
        assert torch.equal(tensor, before[name]), name
    assert "worse than where it began" in result.message and f"against {start:.4f}" in result.message

    calls.clear()
    kept_losses = iter([start + 0.3, start + 0.2])  # the retry too: the stage's weights are undone
    tiny_learner.model.load_state_dict(before)
    result, _ = train_with_rollback(tiny_learner, stage, 0.01, None, None, None, None)
    assert len(calls) == 2 and "ended worse than it began too" in result.message
    assert "weights from before this stage were kept" in result.message and not result.failed
    for name, tensor in tiny_learner.model.state_dict().items():
        assert torch.equal(tensor, before[name]), name

    calls.clear()  # a stage not trained until it over-fits is judged by nothing but collapse
    kept_losses = iter([start + 0.3])
    train_with_rollback(tiny_learner, Train(0.01, 1), 0.01, None, None, None, None)
    assert len(calls) == 1
