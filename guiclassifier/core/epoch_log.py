"""Per-epoch logs of training: a CSV (fastai's CSVLogger, Ultralytics' results.csv), one row per
finished epoch, written as it ends, so a stopped or crashed run keeps the rows until then (a file
that exists already is appended to: a resumed run goes on in it); and, with the optional
`tensorboard` package, TensorBoard event files of the same figures."""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import IO

import platformdirs

from guiclassifier.core.errors import TrainingError
from guiclassifier.core.events import EpochEnded, Event, FitStarted, StageStarted

RUNS_DIR_ENV = "GUICLASSIFIER_RUNS_DIR"
COLUMNS = ("epoch", "stage", "stage_epoch", "train_loss", "valid_loss", "accuracy", "lr", "precompute",
           "trainable_groups", "seconds")


class EpochCsvLog:
    """A callback for any training call; `close()` when done."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existing = self.path.read_text(encoding="utf-8").splitlines() if self.path.is_file() else []
        self.epochs = max(0, len(existing) - 1)  # the rows already there (a resumed run)
        self._file: IO[str] = open(self.path, "a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        if not existing:
            self._writer.writerow(COLUMNS)
            self._file.flush()
        self._stage = ""
        self._fit: FitStarted | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, StageStarted):
            self._stage = event.description
        elif isinstance(event, FitStarted):
            self._fit = event
        elif isinstance(event, EpochEnded):
            self.epochs += 1
            fit = self._fit
            self._writer.writerow([
                self.epochs, self._stage, event.epoch + 1, f"{event.train_loss:.6f}", f"{event.valid_loss:.6f}",
                f"{event.accuracy:.6f}", f"{max(fit.lrs):.6g}" if fit else "", fit.precompute if fit else "",
                fit.trainable_groups if fit else "", f"{event.epoch_time:.3f}"])
            self._file.flush()

    def close(self) -> None:
        self._file.close()


class TensorBoardLog:
    """A callback writing each finished epoch's losses, accuracy and lr as TensorBoard scalars
    (step: the epoch, counted over the run); `close()` when done."""

    def __init__(self, folder: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise TrainingError("TensorBoard logs need the optional tensorboard package: "
                                "pip install 'guiclassifier[tensorboard]'") from None
        self.folder = Path(folder)
        self._writer = SummaryWriter(str(self.folder))
        self.epochs = 0
        self._fit: FitStarted | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, FitStarted):
            self._fit = event
        elif isinstance(event, EpochEnded):
            self.epochs += 1
            for tag, value in (("loss/train", event.train_loss), ("loss/valid", event.valid_loss),
                               ("accuracy/valid", event.accuracy)):
                self._writer.add_scalar(tag, value, self.epochs)
            if self._fit is not None:
                self._writer.add_scalar("lr/head", max(self._fit.lrs), self.epochs)
            self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def epoch_log_path(model_file: str | Path) -> Path:
    """Where a model's training log goes: beside it, `m.gcm` -> `m.epochs.csv`."""
    model_file = Path(model_file)
    return model_file.with_name(f"{model_file.stem}.epochs.csv")


def runs_dir() -> Path:
    """Where the window keeps a folder per session's training runs (the CLI writes beside the model)."""
    override = os.environ.get(RUNS_DIR_ENV)
    return Path(override) if override else Path(platformdirs.user_data_dir("guiclassifier")) / "runs"


def new_run_folder() -> Path:
    """A fresh folder for one window session's training log, named by when it started."""
    base = runs_dir() / time.strftime("%Y-%m-%d_%H-%M-%S")
    folder, n = base, 2
    while folder.exists():
        folder, n = base.with_name(f"{base.name}-{n}"), n + 1
    folder.mkdir(parents=True)
    return folder
