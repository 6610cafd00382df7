"""What a panel may ask of the window around it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QWidget

    from guiclassifier.core.learner import Learner
    from guiclassifier.gui.status_area import StatusArea
    from guiclassifier.gui.worker import JobRunner
    from guiclassifier.workspace import ModelKey, RunSettings, Workspace


class Host(Protocol):
    workspace: Workspace
    runner: JobRunner
    status: StatusArea
    settings: QSettings

    @property
    def job_name(self) -> str: ...

    def start(self, name: str, job: Callable[..., Any], on_done: Callable[[Any], None]) -> bool:
        """Run `job(callback, cancel)` on the worker; `on_done(result)` on the GUI thread after."""

    def run_settings(self) -> RunSettings | None:
        """The data, model settings and current model a training job starts from (None: no data)."""

    def device_type(self) -> str:
        """"cpu", "cuda" or "mps": where the chosen device setting trains (needs the engine)."""

    def adopt(self, learner: Learner, key: ModelKey | None) -> None:
        """A job's learner becomes the project's model."""

    def stop(self) -> None: ...

    def set_status(self, text: str) -> None: ...

    def show_error(self, message: str) -> None: ...

    def confirm(self, question: str) -> bool: ...

    def may_discard_model(self, doing: str) -> bool: ...

    def recipe_start_answer(self) -> str:
        """'pretrained', 'continue' or 'cancel'."""

    def show_tab(self, widget: QWidget) -> None: ...

    def refresh(self) -> None:
        """Buttons, title and schedule follow the workspace (after a change outside a job)."""
