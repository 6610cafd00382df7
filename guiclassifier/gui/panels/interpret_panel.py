"""The Interpret tab with its jobs: analyse the validation set's mistakes, and move mislabelled
files to another class or to quarantine, with undo."""

from __future__ import annotations

from typing import TYPE_CHECKING

from guiclassifier.gui.panels import file_moves
from guiclassifier.gui.panels.heatmap_jobs import start_heatmaps
from guiclassifier.gui.widgets.interpret_view import InterpretView
from guiclassifier.workspace.jobs import Interpreted, bind, interpret_job

if TYPE_CHECKING:
    from guiclassifier.gui.panels.data_panel import DataPanel
    from guiclassifier.gui.panels.host import Host


class InterpretPanel(InterpretView):
    def __init__(self, host: Host, data_panel: DataPanel) -> None:
        super().__init__()
        self.host, self.data_panel = host, data_panel
        self.analyseRequested.connect(self.start_interpret)
        self.moveRequested.connect(self.move_file)
        self.undoRequested.connect(self.undo_last_move)
        self.thresholdChosen.connect(self.use_threshold)
        self.heatmapsRequested.connect(self.make_heatmaps)
        data_panel.datasetOpened.connect(self._dataset_opened)

    def set_busy(self, busy: bool) -> None:
        workspace = self.host.workspace
        self.set_state(busy, workspace.classes_match(), bool(workspace.moves))
        # The model's threshold as it is now: opened with one, or cleared by training.
        threshold = workspace.learner.confidence_threshold if workspace.learner is not None else 0.0
        if threshold != self.coverage.model_threshold:
            self.coverage.set_model_threshold(threshold)
            self.coverage.slider.setValue(round(threshold * 100))

    def start_interpret(self) -> None:
        """Predict the validation set on the worker and show the confusion matrix and top losses."""
        workspace = self.host.workspace
        if workspace.learner is None or workspace.data is None or self.host.runner.busy:
            return
        if not workspace.classes_match():
            self.host.show_error("The open dataset's classes differ from the model's: open the dataset the "
                                 "model was trained on to analyse its mistakes.")
            return
        self.host.show_tab(self)
        self.host.start("Analysing", bind(interpret_job, self.host.run_settings(), self.tta_check.isChecked()),
                        self._interpreted)

    def _interpreted(self, done: Interpreted) -> None:
        self.host.adopt(done.learner, done.key)
        self.set_interpretation(done.interpretation, done.learner.confidence_threshold)
        if done.interpretation.cancelled:
            self.host.set_status(f"Analysis stopped: the tab shows the {len(done.interpretation.paths)} validation "
                                 "images analysed until then.")
        else:
            self.host.set_status(self.summary.text())

    def _dataset_opened(self, rescan: bool) -> None:
        """After a rescan, files moved from any tab (the Check data tab too) leave the gallery."""
        if rescan:
            self.set_moved({move.source for move in self.host.workspace.moves})

    def move_file(self, path: str, target: str) -> None:
        """Move an image to another class folder or to quarantine, after asking (panels.file_moves)."""
        file_moves.move_file(self.host, self.data_panel, path, target, self.file_moved)

    def undo_last_move(self) -> None:
        file_moves.undo_last_move(self.host, self.data_panel, self.file_restored)

    def use_threshold(self, threshold: float) -> None:
        """Make `threshold` the model's: Predict says "not sure" below it; saved with the model."""
        learner = self.host.workspace.learner
        if learner is None or self.host.runner.busy:
            return
        learner.confidence_threshold = threshold
        self.host.workspace.model_changed()
        self.coverage.set_model_threshold(threshold)
        self.host.refresh()
        said = "answers everything" if threshold <= 0 else f"says 'not sure' below {threshold:.0%} confidence"
        self.host.set_status(f"Predict now {said}. Save the model (File > Save model) to keep it in the model file.")

    def make_heatmaps(self, paths: list[str]) -> None:
        start_heatmaps(self.host, self.heatmap_controls, paths, self.set_heatmaps)
