"""The Qt window: a thin layer over the engine (widgets plus a worker thread)."""

from guiclassifier.gui.main_window import MainWindow

__all__ = ["MainWindow"]
