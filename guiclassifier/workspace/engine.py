"""Loading the engine (torch, torchvision and core's training modules) off the GUI thread.

Importing them takes 3-4 s here, longer than everything else the window needs. The window is
built without them and shows at once; its first job imports them on the worker thread. Modules
of the window import engine modules where they use them, never at the top of the file.
"""

from __future__ import annotations

import importlib
import threading

from guiclassifier.core.errors import GuiClassifierError

ENGINE_MODULES = (
    "guiclassifier.core.learner",
    "guiclassifier.core.recipe_runner",
    "guiclassifier.core.predict",
    "guiclassifier.core.interpret",
    "guiclassifier.core.curate",
    "guiclassifier.core.device",
)

_lock = threading.Lock()
_loaded = False


def load_engine() -> None:
    """Import the engine modules, once; any thread may call it, one at a time (two threads importing
    halves of torch at once could each wait for a module the other is importing)."""
    global _loaded
    with _lock:
        if not _loaded:
            try:
                for name in ENGINE_MODULES:
                    importlib.import_module(name)
            except (ImportError, OSError) as exc:  # a broken install, a missing system library
                raise GuiClassifierError(f"PyTorch could not be loaded ({exc}). The window cannot train or "
                                         "predict: reinstall it (delete .venv, then make run).") from exc
            _loaded = True


def engine_loaded() -> bool:
    return _loaded
