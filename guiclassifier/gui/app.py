"""Starting the application: QApplication, the main window, the event loop."""

from __future__ import annotations

import sys
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtWidgets import QApplication

from guiclassifier.gui.main_window import APP_NAME, MainWindow


def run_app(data_path: str | Path | None = None) -> int:
    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    pg.setConfigOptions(antialias=True, background=None, foreground=app.palette().windowText().color())
    window = MainWindow(data_path)
    window.show()
    return app.exec()
