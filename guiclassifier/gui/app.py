"""Starting the application: QApplication, the main window, the event loop."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from guiclassifier.workspace.engine import engine_loaded
from guiclassifier.gui.main_window import APP_NAME, LOADER_START, MainWindow


def configure_app(app: QApplication) -> None:
    """Names for QSettings, and plots that follow the desktop's light or dark palette."""
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    pg.setConfigOptions(antialias=True, background=None, foreground=app.palette().windowText().color())


def run_app(data_path: str | Path | None = None) -> int:
    app = QApplication.instance() or QApplication(sys.argv)
    configure_app(app)
    window = MainWindow(data_path)
    window.engine_ready.connect(after_start)
    window.show()
    if engine_loaded():  # ready before it could be connected
        QTimer.singleShot(0, after_start)
    return app.exec()


def after_start() -> None:
    """Once torch has loaded: start the loader server (so the first epoch does not wait for it)
    and move everything built so far (torch, Qt, the widgets) out of the garbage collector's
    sight. A full collection walked all of it and stalled the window for 200 ms mid-training."""
    from guiclassifier.core.data import start_loader_server

    start_loader_server(LOADER_START)
    gc.collect()
    gc.freeze()
