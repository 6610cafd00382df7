"""Offering to resume a run that was stopped, crashed or was killed, and resuming it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from guiclassifier.core.errors import GuiClassifierError
from guiclassifier.core.schedules import SGDR
from guiclassifier.workspace.jobs import Resumed, bind, resume_job

if TYPE_CHECKING:
    from guiclassifier.gui.main_window import MainWindow


def interrupted_run(payload: dict[str, Any]) -> str:
    """What the checkpoint's run was and how far it got, in words."""
    fit = payload["fit"]
    total = SGDR(fit["n_cycle"], fit["cycle_len"], fit["cycle_mult"]).total_epochs()
    context = payload.get("context") if isinstance(payload.get("context"), dict) else {}
    recipe = context.get("recipe") if isinstance(context.get("recipe"), dict) else None
    if recipe is not None:  # a recipe stopped in a later step left its last fit's checkpoint
        steps = len(recipe.get("stages", [])) if isinstance(recipe.get("stages"), list) else "?"
        return (f"The recipe {recipe.get('name', '')!s:.40} on {payload['data_path']} was interrupted: its "
                f"step {int(context.get('stage', 0)) + 1} of {steps} had trained {payload['epochs_done']} "
                f"of {total} epochs")
    return f"A training run on {payload['data_path']} was interrupted after epoch {payload['epochs_done']} of {total}"


class Resumer:
    def __init__(self, window: MainWindow) -> None:
        self.window = window

    def offer(self, data_path: str | Path | None = None) -> None:
        """Ask whether to go on with the checkpoint's run; otherwise clear it and open `data_path`."""
        from guiclassifier.core.checkpoint import clear_checkpoints, latest_checkpoint, read_checkpoint

        folder = self.window.workspace.checkpoints.folder
        path = latest_checkpoint(folder)
        try:
            payload = read_checkpoint(path) if path is not None else None
        except GuiClassifierError:
            payload = None  # damaged: nothing to offer
        if payload and payload.get("data_path") and payload.get("data_settings"):
            if self.window.confirm(f"{interrupted_run(payload)}. Resume it from there?\n\nNo discards it."):
                self.resume(path, payload)
                return
        clear_checkpoints(folder)
        if data_path is not None:
            self.window.open_dataset(str(data_path))

    def resume(self, path: Path, payload: dict[str, Any]) -> None:
        window = self.window
        folder = payload["data_path"]
        settings = {**window.data_panel.settings().scan_kwargs(), **payload["data_settings"]}  # the run's own
        window.data_panel.show_run_settings(folder, settings)
        window.show_tab(window.plots.loss_tab)
        window.plots.stage_label = "resumed"
        window.start("Resuming", bind(resume_job, path, payload, folder, settings,
                                      window.model_panel.model_key().device, window.model_panel.precision(),
                                      window.workspace.checkpoints),
                     self._resumed)

    def _resumed(self, resumed: Resumed) -> None:
        from guiclassifier.core.learner import FitResult

        window = self.window
        window.workspace.data = resumed.data
        window.data_panel.view.set_report(resumed.data.report)
        window.model_panel.show_arch(resumed.learner.arch)
        window.adopt(resumed.learner, window.model_panel.model_key())
        if isinstance(resumed.result, FitResult):
            window.training_panel.show_fit_result(resumed.result)
        else:
            window.training_panel.show_recipe_result(resumed.result)
