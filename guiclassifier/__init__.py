"""guiclassifier: train an image classifier by pointing and clicking (fast.ai lesson-1 recipe).

The engine is importable without Qt::

    from guiclassifier import ImageData, Learner
"""

from __future__ import annotations

from typing import Any

from guiclassifier._version import __version__
__all__ = ["ImageData", "Learner", "__version__"]


def __getattr__(name: str) -> Any:
    # Importing the package must not import torch (3-4 s): the window shows before it loads.
    if name in ("ImageData", "Learner"):
        from guiclassifier import core

        return getattr(core, name)
    raise AttributeError(f"module 'guiclassifier' has no attribute {name!r}")
