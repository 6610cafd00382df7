"""The window's training log: each window session's epochs as a CSV (core.epoch_log) in a run
folder of its own, started at the session's first training; File > Training logs opens the folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices

from guiclassifier.core import events as ev

if TYPE_CHECKING:
    from guiclassifier.core.epoch_log import EpochCsvLog

LOG_NAME = "epochs.csv"


class RunLog:
    def __init__(self) -> None:
        self.log: EpochCsvLog | None = None

    @property
    def path(self) -> Path | None:
        return self.log.path if self.log is not None else None

    def on_event(self, event: ev.Event) -> None:
        if self.log is None and isinstance(event, (ev.StageStarted, ev.FitStarted)):
            from guiclassifier.core.epoch_log import EpochCsvLog, new_run_folder

            try:
                self.log = EpochCsvLog(new_run_folder() / LOG_NAME)
            except OSError:
                return  # a log that cannot be written never stops training
        if self.log is not None:
            try:
                self.log(event)
            except OSError:
                pass

    def open_folder(self) -> None:
        from guiclassifier.core.epoch_log import runs_dir

        folder = self.path.parent if self.path is not None else runs_dir()
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None
