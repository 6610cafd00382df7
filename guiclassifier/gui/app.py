"""Starting the application: QApplication, the main window, the event loop."""

from __future__ import annotations

import sys
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtWidgets import QApplication

from guiclassifier.gui.main_window import APP_NAME, MainWindow


def configure_app(app: QApplication) -> None:
    """Names for QSettings, and plots that follow the desktop's light or dark palette."""
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    pg.setConfigOptions(antialias=True, background=None, foreground=app.palette().windowText().color())


def run_app(data_path: str | Path | None = None) -> int:
    app = QApplication.instance() or QApplication(sys.argv)
    configure_app(app)
    window = MainWindow(data_path)
    window.show()
    return app.exec()
