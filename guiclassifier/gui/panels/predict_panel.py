"""The Predict tab with its jobs: classify dropped or chosen files and folders, rows streaming in
as batches finish; export the rows as CSV."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog

from guiclassifier.core import events as ev
from guiclassifier.core.text import plural
from guiclassifier.gui.panels.heatmap_jobs import start_heatmaps
from guiclassifier.gui.widgets.predict_view import PredictView
from guiclassifier.workspace.jobs import Predicted, bind, predict_job

if TYPE_CHECKING:
    from guiclassifier.gui.panels.host import Host

PREDICT_JOB = "Predicting"
IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.gif *.tif *.tiff *.webp)"


class PredictPanel(PredictView):
    def __init__(self, host: Host) -> None:
        super().__init__()
        self.host = host
        self.filesChosen.connect(self.start_predict)
        self.files_button.clicked.connect(self.choose_files)
        self.folder_button.clicked.connect(self.choose_folder)
        self.export_button.clicked.connect(self.export_predictions)
        self.heatmapsRequested.connect(self.make_heatmaps)

    def set_busy(self, busy: bool) -> None:
        for w in (self.files_button, self.folder_button, self.tta_check, self.drop_zone, self.heatmap_controls):
            w.setEnabled(not busy)
        learner = self.host.workspace.learner
        if learner is not None:  # after every job and change: trained, opened, a threshold picked
            self.set_classes(learner.classes, learner.confidence_threshold)

    def choose_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Images to classify",
                                                self.host.settings.value("last_folder", ""), IMAGE_FILTER)
        if paths:
            self.start_predict(paths)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of images to classify",
                                                  self.host.settings.value("last_folder", ""))
        if folder:
            self.start_predict([folder])

    def start_predict(self, paths: list[str]) -> None:
        """Classify files and folders on the worker."""
        from guiclassifier.core.images import expand_image_paths
        from guiclassifier.core.predict import Prediction

        self.host.show_tab(self)
        learner = self.host.workspace.learner
        if learner is None:
            self.host.show_error("There is no model yet. Train one on a dataset, or open a saved model "
                                 "(File > Open model), then drop images here.")
            return
        if self.host.runner.busy:
            return
        files, missing = expand_image_paths(paths)
        self.set_classes(learner.classes, learner.confidence_threshold)
        for path, reason in missing:
            self.add_result(Prediction(str(path), None, reason, 0.0))
        if not files:
            self.host.set_status("No image files in what was dropped.")
            return
        self.host.start(PREDICT_JOB, bind(predict_job, learner, files, self.tta_check.isChecked()), self._predicted)

    def on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.FilePredicted) and self.host.job_name == PREDICT_JOB:
            from guiclassifier.core.predict import Prediction

            self.add_result(Prediction(event.path, event.probabilities, event.error, event.seconds, event.unfamiliar,
                                       event.threshold))

    def _predicted(self, predicted: Predicted) -> None:
        outcome = predicted.predictions
        skipped = sum(r.error is not None for r in outcome)
        flagged = sum(r.unfamiliar for r in outcome)
        stopped = f"Stopped after {len(outcome)} of {predicted.asked} files: " if outcome.cancelled else ""
        self.host.set_status(f"{stopped}Predicted {plural(len(outcome) - skipped, 'image')}"
                             + (f", {skipped} skipped" if skipped else "")
                             + (f", {flagged} unlike the training images" if flagged else "") + ".")
        if not outcome.cancelled:
            self.ask_for_heatmaps()

    def export_predictions(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export results", "predictions.csv", "CSV (*.csv)")
        if path:
            self.export_predictions_to(path)

    def export_predictions_to(self, path: str) -> None:
        from guiclassifier.core.predict import write_predictions_csv

        try:
            write_predictions_csv(path, self.classes, self.results())
        except OSError as exc:
            self.host.show_error(f"Could not write {path}: {exc.strerror}")
            return
        self.host.set_status(f"Wrote {plural(len(self.results()), 'result')} to {path}")

    def make_heatmaps(self, paths: list[str]) -> None:
        start_heatmaps(self.host, self.heatmap_controls, paths, self.set_heatmaps)
