"""The window's training log: each window session's epochs as a CSV (core.epoch_log) in a run
folder of its own, started at the session's first training, and TensorBoard event files there too
when File > Also write TensorBoard logs is ticked (remembered); File > Training logs opens the folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import importlib.util

from PySide6.QtCore import QObject, QSettings, QUrl
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import QMenu

from guiclassifier.core import events as ev

if TYPE_CHECKING:
    from guiclassifier.core.epoch_log import EpochCsvLog, TensorBoardLog

LOG_NAME = "epochs.csv"
TENSORBOARD_FOLDER = "tensorboard"
TENSORBOARD_SETTING = "tensorboard_logs"


class RunLog:
    def __init__(self) -> None:
        self.log: EpochCsvLog | None = None
        self.board: TensorBoardLog | None = None
        self.tensorboard = False
        self.tensorboard_action: QAction | None = None

    def install(self, menu: QMenu, parent: QObject, settings: QSettings) -> None:
        """Its File menu entries: open the logs' folder, and the TensorBoard switch."""
        opener = QAction("Training logs", parent)
        opener.setToolTip("Open the folder with each session's per-epoch CSV (and TensorBoard files)")
        opener.triggered.connect(lambda _=False: self.open_folder())
        menu.addAction(opener)
        action = QAction("Also write TensorBoard logs", parent)
        action.setCheckable(True)
        available = importlib.util.find_spec("tensorboard") is not None
        action.setEnabled(available)
        action.setToolTip("TensorBoard event files of every epoch in the session's log folder" if available else
                          "Needs the optional tensorboard package: pip install 'guiclassifier[tensorboard]'")
        action.setChecked(available and settings.value(TENSORBOARD_SETTING, False, type=bool))
        self.tensorboard = action.isChecked()

        def toggled(on: bool) -> None:
            self.tensorboard = on
            settings.setValue(TENSORBOARD_SETTING, on)

        action.toggled.connect(toggled)
        menu.addAction(action)
        self.tensorboard_action = action

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
        if self.log is not None and self.board is None and self.tensorboard and isinstance(event, ev.FitStarted):
            from guiclassifier.core.epoch_log import TensorBoardLog
            from guiclassifier.core.errors import TrainingError

            try:  # ticked during the session: from this fit on
                self.board = TensorBoardLog(self.log.path.parent / TENSORBOARD_FOLDER)
            except (OSError, TrainingError):
                self.tensorboard = False
        for logger in (self.log, self.board):
            if logger is not None:
                try:
                    logger(event)
                except OSError:
                    pass

    def open_folder(self) -> None:
        from guiclassifier.core.epoch_log import runs_dir

        folder = self.path.parent if self.path is not None else runs_dir()
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def close(self) -> None:
        for logger in (self.log, self.board):
            if logger is not None:
                logger.close()
        self.log = self.board = None
