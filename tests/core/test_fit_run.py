"""The books of one fit (core.fit_run) and the checkpoint writer that listens to its events."""

from __future__ import annotations

from pathlib import Path

from guiclassifier import Learner
from guiclassifier.core.checkpoint import Checkpoint, CheckpointConfig, checkpoint_paths, read_checkpoint
from guiclassifier.core.checkpoint_writer import CheckpointWriter
from guiclassifier.core.events import EpochEnded
from guiclassifier.core.fit_records import FitPlan
from guiclassifier.core.fit_run import FitRun

LRS = (0.01, 0.01, 0.01)


def new_run(plan: FitPlan, events: list | None = None) -> FitRun:
    run = FitRun(plan, events.append if events is not None else None, None, chance=None, reached=None)
    run.start(steps_per_epoch=3, precompute=False, trainable_groups=1)
    return run


def end_epoch(run: FitRun, epoch: int, valid_loss: float) -> None:
    run.begin_epoch(epoch)
    record = run.epoch_record(1.0, 1, valid_loss, 0.5)
    run.end_epoch(record, run.judge_epoch(record))


def test_checkpoints_are_due_every_nth_epoch_at_the_last_and_never_after_a_collapse() -> None:
    run = new_run(FitPlan(LRS, 5))
    due = []
    for epoch in run.epochs():
        end_epoch(run, epoch, 0.5)
        due.append(run.checkpoint_due(every=2))
    assert due == [False, True, False, True, True]
    run.collapsed = True
    assert not run.checkpoint_due(every=1)


def test_the_epochs_end_after_a_divergence_or_a_worse_cycle() -> None:
    run = new_run(FitPlan(LRS, 3))
    seen = []
    for epoch in run.epochs():
        seen.append(epoch)
        run.begin_epoch(epoch)
        if epoch == 1:
            run.diverge(float("nan"))
    assert seen == [0, 1] and run.result().diverged
    assert run.result().message.startswith("Training diverged in epoch 2 (the loss became NaN)")

    run = new_run(FitPlan(LRS, 3, cycle_len=1, until_overfit=True))
    losses = iter([0.5, 0.6, 0.4])
    for epoch in run.epochs():
        end_epoch(run, epoch, next(losses))
    assert len(run.records) == 2 and run.stopping  # cycle 2 was worse: cycle 3 never ran


def test_the_writer_listens_for_epoch_ended(tiny_learner: Learner, tmp_path: Path) -> None:
    events: list = []
    run = new_run(FitPlan(LRS, 3), events)
    run.listen(CheckpointWriter(CheckpointConfig(tmp_path, every=2), run, tiny_learner.training_state, {"a": 1}))
    for epoch in run.epochs():
        end_epoch(run, epoch, 0.5)
    assert [e.epoch for e in events if isinstance(e, EpochEnded)] == [0, 1, 2]
    paths = checkpoint_paths(tmp_path)
    assert [p.name.rsplit("-", 1)[1] for p in paths] == ["epoch0002.ckpt", "epoch0003.ckpt"]
    checkpoint = Checkpoint.from_payload(read_checkpoint(paths[-1]), paths[-1])
    assert checkpoint.plan == run.plan and checkpoint.context == {"a": 1}
    assert checkpoint.progress.epochs_done == 3 and checkpoint.progress.records == tuple(run.records)
    assert checkpoint.state.model.classes == tiny_learner.classes


def test_a_fit_writes_checkpoints_that_read_back_as_its_plan_and_progress(tiny_learner: Learner,
                                                                          tmp_path: Path) -> None:
    config = CheckpointConfig(tmp_path / "ck")
    result = tiny_learner.fit(0.05, 2, cycle_len=1, checkpoints=config, checkpoint_context={"stage": 3})
    path = checkpoint_paths(config.folder)[-1]
    checkpoint = Checkpoint.from_payload(read_checkpoint(path), path)
    assert checkpoint.plan == FitPlan((0.05, 0.05, 0.05), 2, 1)
    assert checkpoint.progress.records == result.epochs and checkpoint.progress.steps_per_epoch == 3
    assert checkpoint.context == {"stage": 3} and checkpoint.state.data_path == tiny_learner.data.path
    assert checkpoint.state.data_settings == tiny_learner.data.settings()
