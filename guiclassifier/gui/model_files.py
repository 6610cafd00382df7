"""The File menu's model and recipe files: open, save and export a model; save and load a recipe."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog

from guiclassifier.core.errors import GuiClassifierError
from guiclassifier.core.recipe import Recipe
from guiclassifier.workspace.jobs import ModelOpened, bind, export_job, open_model_job

if TYPE_CHECKING:
    from guiclassifier.core.export import Exported
    from guiclassifier.gui.main_window import MainWindow

MODEL_FILTER = "guiclassifier models (*.gcm)"


class ModelFiles:
    def __init__(self, window: MainWindow) -> None:
        self.window = window

    def _suggested(self, name: str) -> str:
        """Where a save dialog starts: beside the model's file, else in the last folder used for
        models, else the home folder (never the folder the app happened to start in)."""
        model_path = self.window.workspace.model_path
        folder = Path(model_path).parent if model_path else \
            Path(self.window.settings.value("last_model_dir", str(Path.home())))
        return str(folder / name)

    def _remember_folder(self, path: str) -> None:
        self.window.settings.setValue("last_model_dir", str(Path(path).parent))

    def choose_model(self) -> None:
        settings = self.window.settings
        path, _ = QFileDialog.getOpenFileName(self.window, "Open a model",
                                              settings.value("last_model_dir", str(Path.home())),
                                              f"{MODEL_FILTER};;All files (*)")
        if path:
            self._remember_folder(path)
            self.open_model(path)

    def open_model(self, path: str) -> None:
        window = self.window
        if window.runner.busy or not window.may_discard_model("opening another model"):
            return
        window.start("Opening model", bind(open_model_job, path, window.data_panel.current_data(),
                                           window.model_panel.model_key(), window.model_panel.precision()),
                     self._opened)

    def _opened(self, opened: ModelOpened) -> None:
        window, learner = self.window, opened.learner
        window.adopt(learner, opened.key)
        window.workspace.model_opened(learner, opened.key, opened.path)
        window.data_panel.show_model_size(learner.size)
        window.plots.show_history(learner.history)
        window.model_panel.show_arch(learner.arch)
        window.workspace.model_key = window.model_panel.model_key()
        window.model_panel.precompute_check.setChecked(False)
        window.set_status(f"Opened {Path(opened.path).name}: {learner.arch}, classes {', '.join(learner.classes)}"
                          + ("" if learner.data is not None else " (open a dataset with these classes to train)"))

    def save_model(self) -> bool:
        """Ask where, then save; False when the user cancelled or saving failed."""
        workspace = self.window.workspace
        if workspace.learner is None or self.window.runner.busy:
            return False
        path, _ = QFileDialog.getSaveFileName(self.window, "Save the model",
                                              workspace.model_path or self._suggested("model.gcm"), MODEL_FILTER)
        if path:
            self._remember_folder(path)
        return bool(path) and self.save_model_to(path)

    def save_model_to(self, path: str) -> bool:
        try:
            self.window.workspace.learner.save(path)
        except (GuiClassifierError, OSError) as exc:  # ModelFileError says what happened and what was kept
            self.window.show_error(str(exc))
            return False
        self.window.workspace.model_saved(path)
        self.window.refresh()
        self.window.set_status(f"Saved {path}")
        return True

    def export_model(self) -> None:
        """Ask where, then export on the worker (an ONNX export takes seconds)."""
        learner = self.window.workspace.learner
        if learner is None or self.window.runner.busy:
            return
        stem = Path(self.window.workspace.model_path or "model.gcm").stem
        path, chosen = QFileDialog.getSaveFileName(self.window, "Export the model", self._suggested(f"{stem}.onnx"),
                                                   "ONNX (*.onnx);;torch.export program (*.pt2)")
        if not path:
            return
        fmt = "pt2" if path.endswith(".pt2") or "pt2" in chosen else "onnx"
        self.window.start("Exporting", bind(export_job, learner, path, fmt), self._exported)

    def _exported(self, exported: Exported) -> None:
        fmt = exported.model_file.suffix.lstrip(".")
        self.window.set_status(f"Exported {exported.model_file}: it carries its classes and preprocessing. "
                               f"{exported.parity.describe(fmt)} to the app's.")

    def save_recipe(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.window, "Save the recipe", self._suggested("recipe.json"),
                                              "Recipes (*.json)")
        if not path:
            return
        try:
            self.window.workspace.recipe.save(path)
        except OSError as exc:
            self.window.show_error(f"Could not write {path}: {exc.strerror}")
            return
        self.window.set_status(f"Saved the recipe to {path}")

    def load_recipe(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Load a recipe", self._suggested(""), "Recipes (*.json)")
        if not path:
            return
        try:
            self.window.workspace.recipe = Recipe.load(path)
        except Exception as exc:  # any damage: the message, and the recipe as it was
            self.window.show_error(str(exc))
            return
        self.window.training_panel.fill_recipe_list()
        self.window.set_status(f"Loaded the recipe {self.window.workspace.recipe.name} from {path}")
