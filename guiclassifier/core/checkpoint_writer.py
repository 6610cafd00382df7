"""Checkpoints as a listener on a fit's events (ignite's Checkpoint handler), not a step of the loop.

Learner.fit(checkpoints=...) attaches a CheckpointWriter to its FitRun; at each EpochEnded the
writer asks the run whether a checkpoint is due and writes one (core.checkpoint) from the
learner's state and the run's progress.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from guiclassifier.core.checkpoint import Checkpoint, CheckpointConfig, TrainingState, write_checkpoint
from guiclassifier.core.errors import ModelFileError
from guiclassifier.core.events import EpochEnded, Event
from guiclassifier.core.fit_run import FitRun


class CheckpointWriter:
    """Writes a checkpoint when `run` says one is due. `state` gives the learner's part (read
    at writing time); `context` is stored with each checkpoint (a recipe's place, for one)."""

    def __init__(self, config: CheckpointConfig, run: FitRun, state: Callable[[], TrainingState],
                 context: dict[str, Any] | None = None) -> None:
        self.config = config
        self.run = run
        self.state = state
        self.context = context
        self.error = ""  # why the first write that failed failed

    def __call__(self, event: Event) -> None:
        if not isinstance(event, EpochEnded) or not self.run.checkpoint_due(self.config.every):
            return
        checkpoint = Checkpoint(self.state(), self.run.plan, self.run.progress(), self.context)
        try:
            write_checkpoint(self.config, checkpoint.payload(),
                             f"checkpoint-{time.time_ns()}-epoch{checkpoint.progress.epochs_done:04d}")
        except ModelFileError as exc:  # a full disk must not end the training itself
            if not self.error:
                self.error = str(exc)
                self.run.notes.append(f"Checkpoints could not be written, so this run cannot be resumed: {exc}")
