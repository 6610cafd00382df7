"""The open project, without Qt: the dataset, the model and what was done to them, and the rules
for what changes after each job. The window shows it; the worker never touches it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from guiclassifier.core.recipe import Recipe, lesson1
from guiclassifier.workspace.settings import ModelKey

if TYPE_CHECKING:
    from guiclassifier.core.checkpoint import CheckpointConfig
    from guiclassifier.core.curate import FileMove
    from guiclassifier.core.data import ImageData
    from guiclassifier.core.learner import Learner


def keeps_checkpoints(cancelled: bool) -> bool:
    """Whether a training run's checkpoints stay for a resume: only a stopped run's. A finished
    run has nothing left to do; a failed one (diverged, collapsed) would fail again."""
    return cancelled


class Workspace:
    """Dataset, model, model file, unsaved changes, moves made (for undo), recipe, checkpoints."""

    def __init__(self, recipe: Recipe | None = None) -> None:
        self.data: ImageData | None = None
        self.learner: Learner | None = None
        self.model_key: ModelKey | None = None  # the settings the learner was made with
        self.model_path: str | None = None  # the file the model was opened from or saved to
        self.dirty = False  # the model has changes that are not saved
        self.moves: list[FileMove] = []  # made from the Interpret tab, newest last (for undo)
        self.recipe: Recipe = recipe or lesson1()
        self.checkpoints: CheckpointConfig | None = None  # set once the engine has loaded

    # ----- questions ------------------------------------------------------------------------

    @property
    def unfrozen(self) -> bool:
        return self.learner is not None and self.learner.frozen_groups == 0

    def classes_match(self) -> bool:
        """The open dataset is the model's problem: same classes in the same order."""
        return (self.data is not None and self.learner is not None
                and tuple(self.data.classes) == self.learner.classes)

    def other_classes(self, data: ImageData) -> bool:
        """Opening `data` would leave the model without a dataset to train on."""
        return self.learner is not None and tuple(data.classes) != self.learner.classes

    def must_ask_before_replacing(self) -> bool:
        return self.learner is not None and self.dirty

    def title(self, app_name: str) -> str:
        parts = [app_name]
        if self.data is not None:
            parts.append(Path(self.data.path).name)
        if self.learner is not None:
            name = Path(self.model_path).name if self.model_path else f"{self.learner.arch} (not saved)"
            parts.append(f"{name}{' *' if self.dirty else ''}")
        return " - ".join(parts)

    # ----- after jobs -----------------------------------------------------------------------

    def adopt(self, learner: Learner, key: ModelKey | None) -> bool:
        """The job's learner becomes the project's; True when it is another model than before."""
        new = learner is not self.learner
        if new:
            self.model_path = None  # a new model: not the file the old one came from
        self.learner, self.model_key = learner, key
        return new

    def model_changed(self) -> None:
        """Trained, frozen or unfrozen: the model differs from its file."""
        self.dirty = True

    def model_opened(self, learner: Learner, key: ModelKey, path: str) -> None:
        self.adopt(learner, key)
        self.model_path, self.dirty = path, False

    def model_saved(self, path: str) -> None:
        self.model_path, self.dirty = path, False

    def forget_model(self) -> None:
        """A different problem: the next run starts a new model."""
        self.learner = self.model_key = self.model_path = None
        self.dirty = False

    def dataset_opened(self, data: ImageData, rescan: bool) -> bool:
        """`data` is the project's dataset now; a model for other classes is forgotten (the
        caller has asked the user first): True when that happened."""
        forgotten = self.other_classes(data)
        if forgotten:
            self.forget_model()
        if not rescan:
            self.moves = []  # undo is for the dataset the moves were made in
        self.data = data
        return forgotten

    def training_ended(self, cancelled: bool) -> None:
        """A fit or recipe ended: clear its checkpoints unless it was stopped (see keeps_checkpoints)."""
        if not keeps_checkpoints(cancelled) and self.checkpoints is not None:
            from guiclassifier.core.checkpoint import clear_checkpoints

            clear_checkpoints(self.checkpoints.folder)
