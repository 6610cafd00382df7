"""Faults in the middle of a run: the stage stops with a message and the last good weights."""

from __future__ import annotations

import pytest
import torch

from guiclassifier import Learner
from guiclassifier.core.cancel import CancelToken
from guiclassifier.core.events import Emitter
from guiclassifier.core.recipe import Recipe, Train
from guiclassifier.core.recipe_runner import run_recipe


def fail_on_call(learner: Learner, monkeypatch: pytest.MonkeyPatch, n: int, exc: BaseException) -> None:
    """Make the learner's n-th training step (counting from 1) raise `exc`."""
    real = learner.train_step
    calls = [0]

    def step(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n:
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(learner, "train_step", step)


def weights(learner: Learner) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in learner.model.state_dict().items()}


@pytest.mark.parametrize("exc", [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    MemoryError(),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"),
])
def test_out_of_memory_stops_with_the_last_epochs_weights(tiny_learner: Learner, monkeypatch, exc) -> None:
    per_epoch = tiny_learner._n_train_batches(Emitter(None), CancelToken())
    tiny_learner.fit(0.05, 1)
    after_first = weights(tiny_learner)
    fail_on_call(tiny_learner, monkeypatch, per_epoch + 2, exc)  # in the second epoch of this fit
    result = tiny_learner.fit(0.05, 2)
    assert result.out_of_memory and result.failed and not result.diverged
    assert result.epochs_done == 1
    assert "Out of memory in epoch 2" in result.message and "smaller batch size" in result.message
    assert "batch size 8, 32 px" in result.message
    changed = weights(tiny_learner)
    assert any(not torch.equal(changed[k], after_first[k]) for k in after_first)  # epoch 1 of this fit kept
    monkeypatch.undo()
    assert tiny_learner.fit(0.05, 1).epochs_done == 1  # still usable


def test_out_of_memory_before_any_epoch_keeps_the_weights_from_before(tiny_learner: Learner, monkeypatch) -> None:
    before = weights(tiny_learner)
    fail_on_call(tiny_learner, monkeypatch, 2, MemoryError())
    result = tiny_learner.fit(0.05, 1)
    assert result.out_of_memory and "weights from before this fit were kept" in result.message
    assert all(torch.equal(v, before[k]) for k, v in weights(tiny_learner).items())


def test_other_errors_are_not_taken_for_out_of_memory(tiny_learner: Learner, monkeypatch) -> None:
    fail_on_call(tiny_learner, monkeypatch, 1, RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    with pytest.raises(RuntimeError, match="shapes"):
        tiny_learner.fit(0.05, 1)


def test_a_recipe_stops_at_the_stage_that_ran_out_of_memory(tiny_learner: Learner, monkeypatch) -> None:
    recipe = Recipe("two fits", (Train(n_cycle=1), Train(n_cycle=1)))
    fail_on_call(tiny_learner, monkeypatch, 1, MemoryError())
    result = run_recipe(tiny_learner, recipe)
    assert result.completed == 0 and "Out of memory" in result.stopped_reason


def test_files_that_vanish_or_break_mid_run_are_reported_and_the_run_goes_on(dataset, monkeypatch) -> None:
    from pathlib import Path

    from guiclassifier import ImageData
    from guiclassifier.core.events import BatchEnded, FileSkipped

    data = ImageData.from_folder(dataset, size=32, bs=8, num_workers=0, seed=0)
    learner = Learner.pretrained("resnet18", data, weights=None, device="cpu")
    train_victims: list[Path] = []
    valid_victim = Path(data.valid_items[0].path)
    events: list = []

    def break_files(event) -> None:
        events.append(event)
        if isinstance(event, BatchEnded) and event.step == 1:  # the first epoch is under way
            # Images already decoded stay in memory (core.image_memory): break two not read yet.
            unread = [Path(i.path) for i in data.train_items if data.memory.get(i.path) is None]
            train_victims.extend(unread[:2])
            train_victims[0].unlink()
            train_victims[1].write_bytes(train_victims[1].read_bytes()[:40])  # truncated
            valid_victim.unlink()

    result = learner.fit(0.05, 2, callbacks=break_files)
    assert result.epochs_done == 2 and not result.failed and len(train_victims) == 2
    skipped = {(Path(e.path), e.during) for e in events if isinstance(e, FileSkipped)}
    assert {(p, "training") for p in train_victims} <= skipped
    assert (valid_victim, "validation") in skipped
    assert sum(e.during == "training" for e in events if isinstance(e, FileSkipped)) == 4  # again in epoch 2
    assert {p for p, _ in skipped} <= {*train_victims, valid_victim}
    assert "3 files could not be read during the run and were left out" in result.message
    images = sum(e.n_images for e in events if isinstance(e, BatchEnded) and e.epoch == 1)
    assert images == len(data.train_items) - 2


def test_a_file_gone_before_precompute_is_left_out_of_the_cache(dataset) -> None:
    from pathlib import Path

    from guiclassifier import ImageData
    from guiclassifier.core.events import FileSkipped

    data = ImageData.from_folder(dataset, size=32, bs=8, num_workers=0, seed=0)
    learner = Learner.pretrained("resnet18", data, weights=None, device="cpu", precompute=True)
    victim = Path(data.train_items[3].path)
    victim.unlink()
    events: list = []
    result = learner.fit(0.05, 1, callbacks=events.append)
    assert result.epochs_done == 1
    assert [(Path(e.path), e.during) for e in events if isinstance(e, FileSkipped)] == [(victim, "precompute")]
    assert len(learner._activations["train"]) == len(data.train_items) - 1
