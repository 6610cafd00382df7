"""Checkpoints during fit, and resuming after a stop or a kill -9 on the same schedule."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import torch

from guiclassifier import ImageData, Learner
from guiclassifier.core.cancel import CancelToken
from guiclassifier.core.checkpoint import CheckpointConfig, checkpoint_paths, latest_checkpoint
from guiclassifier.core.events import BatchEnded, EpochEnded

FIT = {"lrs": 0.05, "n_cycle": 2, "cycle_len": 1, "cycle_mult": 2}  # 3 epochs: 1 + 2


def new_learner(dataset: Path) -> Learner:
    data = ImageData.from_folder(dataset, size=32, bs=8, num_workers=0, seed=0)
    return Learner.pretrained("resnet18", data, weights=None, device="cpu")


def lrs_per_batch(events: list) -> list[tuple[int, tuple[float, ...]]]:
    return [(e.step, e.lrs) for e in events if isinstance(e, BatchEnded)]


def uninterrupted(dataset: Path) -> tuple[Learner, list]:
    events: list = []
    learner = new_learner(dataset)
    learner.fit(**FIT, callbacks=events.append)
    return learner, events


def test_checkpoints_are_written_and_pruned(dataset: Path, tmp_path: Path) -> None:
    config = CheckpointConfig(tmp_path / "ck", every=1, keep=2)
    new_learner(dataset).fit(**FIT, checkpoints=config)
    paths = checkpoint_paths(config.folder)
    assert [p.name.rsplit("-", 1)[1] for p in paths] == ["epoch0002.ckpt", "epoch0003.ckpt"]
    assert not [p for p in config.folder.iterdir() if p.name.startswith(".")]  # no temporary files


def test_resume_after_stop_follows_the_same_schedule(dataset: Path, tmp_path: Path) -> None:
    full, full_events = uninterrupted(dataset)
    config = CheckpointConfig(tmp_path / "ck")
    cancel = CancelToken()
    first: list = []

    def stop_after_first_epoch(event) -> None:
        first.append(event)
        if isinstance(event, EpochEnded) and event.epoch == 0:
            cancel.cancel()

    result = new_learner(dataset).fit(**FIT, callbacks=stop_after_first_epoch, cancel=cancel, checkpoints=config)
    assert result.cancelled and result.epochs_done == 1
    rest: list = []
    learner, resumed = Learner.resume(latest_checkpoint(config.folder), new_learner(dataset).data,
                                      callbacks=rest.append, device="cpu")
    assert resumed.epochs_done == 3 and [r.epoch for r in resumed.epochs] == [0, 1, 2]
    assert lrs_per_batch(first) + lrs_per_batch(rest) == lrs_per_batch(full_events)
    for name, tensor in full.model.state_dict().items():
        assert torch.allclose(tensor.float(), learner.model.state_dict()[name].float(), atol=1e-5), name


TRAIN_SCRIPT = """
import sys, time
from guiclassifier import ImageData, Learner
from guiclassifier.core.checkpoint import CheckpointConfig
from guiclassifier.core.events import BatchEnded
data = ImageData.from_folder(sys.argv[1], size=32, bs=8, num_workers=0, seed=0)
learner = Learner.pretrained("resnet18", data, weights=None, device="cpu")
def slow(event):
    if isinstance(event, BatchEnded):
        print(event.step, flush=True)
        time.sleep(0.3)  # time for the test to kill it mid-epoch
learner.fit(0.05, 2, 1, 2, callbacks=slow, checkpoints=CheckpointConfig(sys.argv[2]))
"""


def test_resume_after_kill_9_mid_epoch(dataset: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    proc = subprocess.Popen([sys.executable, "-c", TRAIN_SCRIPT, str(dataset), str(folder)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    steps_seen: list[int] = []
    try:
        # Each step is printed as it ends: kill once one of the second epoch has (not after a
        # fixed wait, which a busy machine outlasts).
        for line in proc.stdout:
            steps_seen.append(int(line))
            if steps_seen[-1] > 3:
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    assert max(steps_seen) > 3 and latest_checkpoint(folder) is not None  # killed inside epoch 2
    full, full_events = uninterrupted(dataset)
    rest: list = []
    learner, resumed = Learner.resume(latest_checkpoint(folder), new_learner(dataset).data,
                                      callbacks=rest.append, device="cpu")
    assert resumed.epochs_done == 3
    assert lrs_per_batch(rest) == lrs_per_batch(full_events)[3:]  # epoch 1 had 3 batches
    assert [round(r.valid_loss, 4) for r in resumed.epochs] == [round(e.valid_loss, 4) for e in
                                                                 (ev for ev in full_events if isinstance(ev, EpochEnded))]


def test_a_full_disk_while_checkpointing_does_not_stop_training(dataset: Path, tmp_path: Path,
                                                                 monkeypatch) -> None:
    import errno

    config = CheckpointConfig(tmp_path / "ck", keep=5)
    learner = new_learner(dataset)
    learner.fit(0.05, 1, checkpoints=config)  # one good checkpoint first
    good = checkpoint_paths(config.folder)

    def full_disk(fd: int) -> None:  # where a full disk shows when data is forced out
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    result = learner.fit(0.05, 2, checkpoints=config)
    assert result.epochs_done == 2 and not result.failed
    assert "Checkpoints could not be written" in result.message and "the disk is full" in result.message
    assert checkpoint_paths(config.folder) == good  # the earlier checkpoint is intact
    assert not [p for p in config.folder.iterdir() if p.name.startswith(".")]  # no temporary files
