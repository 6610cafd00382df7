"""The training engine: synchronous, callback events, cooperative cancellation. No Qt here."""

from guiclassifier.core.cancel import CancelToken, Cancelled
from guiclassifier.core.data import ImageData
from guiclassifier.core.errors import (
    DataError,
    GuiClassifierError,
    ImageError,
    ModelFileError,
    WeightsError,
)
from guiclassifier.core.learner import Learner

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
