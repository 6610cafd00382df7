"""The Qt window: a thin layer over the engine (widgets plus a worker thread).

Importing this package loads no Qt: `qt_libraries` must check the system's libraries first."""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "MainWindow":
        from guiclassifier.gui.main_window import MainWindow

        return MainWindow
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["MainWindow"]
