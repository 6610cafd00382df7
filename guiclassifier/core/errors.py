"""Errors whose message is written for the person using the app, not for a developer."""

from __future__ import annotations


class GuiClassifierError(Exception):
    """Base class: its message is complete and readable on its own."""


class DataError(GuiClassifierError):
    """The dataset folder cannot be used as it is (empty class, one class, no images...)."""


class ImageError(GuiClassifierError):
    """One image file cannot be read as a picture."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class WeightsError(GuiClassifierError):
    """Pretrained weights could not be found, read, or matched to the architecture."""


class ModelFileError(GuiClassifierError):
    """A model file is unreadable, foreign, or from an incompatible version."""


class TrainingError(GuiClassifierError):
    """A training call cannot run in the learner's current state."""


class ExportError(GuiClassifierError):
    """The model could not be exported (missing optional package, unsupported layer, an export
    that does not answer like the app...)."""
