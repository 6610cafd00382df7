"""The training engine: synchronous, callback events, cooperative cancellation. No Qt here."""

from __future__ import annotations

from typing import Any

from guiclassifier.core.cancel import CancelToken, Cancelled
from guiclassifier.core.errors import (
    DataError,
    GuiClassifierError,
    ImageError,
    ModelFileError,
    WeightsError,
)

__all__ = [
    "CancelToken",
    "Cancelled",
    "DataError",
    "GuiClassifierError",
    "ImageData",
    "ImageError",
    "Learner",
    "ModelFileError",
    "WeightsError",
]


def __getattr__(name: str) -> Any:
    # ImageData and Learner import torch: only when asked for (see guiclassifier/__init__.py).
    if name == "ImageData":
        from guiclassifier.core.data import ImageData

        return ImageData
    if name == "Learner":
        from guiclassifier.core.learner import Learner

        return Learner
    raise AttributeError(f"module 'guiclassifier.core' has no attribute {name!r}")
