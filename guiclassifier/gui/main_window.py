"""The main window: the shell around the panels (tabs, splitter, menus, status bar, dialogs, closing)
and the one place jobs start and end.

The window never trains on its own thread: every engine call is a job on the JobRunner, started
by a panel through `start` and ended by the panel's `on_done`. While a job runs, the settings and
the start buttons are disabled and only Stop is enabled; the learner is touched by the worker
alone until the job has finished. The project's state lives in a Qt-free `Workspace`.

The window shows before torch has loaded (workspace.engine): its first job loads the engine, and
engine modules are imported where they are used, not at the top of a window module.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QIcon, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QMenu, QMessageBox, QScrollArea, QSplitter, QTabWidget
from PySide6.QtWidgets import QVBoxLayout, QWidget

from guiclassifier.bundled import demo_path, icon_path
from guiclassifier.core import events as ev
from guiclassifier.gui.model_files import ModelFiles
from guiclassifier.gui.panels.audit_panel import AUDIT_JOB, AuditPanel
from guiclassifier.gui.panels.cache_panel import CacheDialog
from guiclassifier.gui.panels.data_panel import DataPanel
from guiclassifier.gui.panels.heatmap_jobs import HEATMAP_JOB
from guiclassifier.gui.panels.interpret_panel import InterpretPanel
from guiclassifier.gui.panels.model_panel import ModelPanel
from guiclassifier.gui.panels.predict_panel import PREDICT_JOB, PredictPanel
from guiclassifier.gui.panels.run_log import RunLog
from guiclassifier.gui.panels.training_panel import TrainingPanel
from guiclassifier.gui.panels.training_plots import TrainingPlots
from guiclassifier.gui.resume import Resumer
from guiclassifier.gui.status_area import StatusArea
from guiclassifier.gui.worker import JobRunner
from guiclassifier.workspace import ModelKey, RunSettings, Workspace
from guiclassifier.workspace.engine import engine_loaded
from guiclassifier.workspace.jobs import EngineLoaded, load_engine_job
from guiclassifier.workspace.settings import LOADER_START

if TYPE_CHECKING:
    from guiclassifier.core.learner import Learner

APP_NAME = "guiclassifier"
PLOT_REFRESH_MS = 400
TORCH_JOBS = ("LR Find", "Training", "Recipe", "Resuming", PREDICT_JOB, "Analysing", AUDIT_JOB, HEATMAP_JOB)
"""Jobs long enough to be worth sampling the CPU's load first (0.25 s; see core.threads)."""
ENGINE_JOB = "Loading PyTorch"
PROGRESS_LABELS = {ev.ScanProgress: "Checking images", ev.PrecomputeProgress: "Precomputing",
                   ev.PredictProgress: "Predicting"}
__all__ = ["APP_NAME", "LOADER_START", "MainWindow"]


def _icon() -> QIcon:
    path = icon_path()
    return QIcon(str(path)) if path is not None else QIcon()


def _with_threads_for_load(job: Callable[..., Any]) -> Callable[..., Any]:
    """The job, first giving PyTorch the cores other programs leave free (core.threads)."""

    def run(cb, cancel):
        from guiclassifier.core.threads import adapt_threads

        adapt_threads()
        return job(cb, cancel)

    return run


class MainWindow(QMainWindow):
    engine_ready = Signal()
    """torch and the engine are loaded: emitted once, after the first job (see workspace.engine)."""

    def __init__(self, data_path: str | Path | None = None, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or QSettings(APP_NAME, APP_NAME)
        self.runner = JobRunner(self)
        self.workspace = Workspace()
        self.last_error: str | None = None
        self._job_name = ""
        self._on_done: Callable[[Any], None] | None = None
        self._data_path = data_path  # opened once the engine has loaded
        self.cache_dialog: CacheDialog | None = None
        self._plot_timer = QTimer(self)
        self._plot_timer.setSingleShot(True)
        self._plot_timer.setInterval(PLOT_REFRESH_MS)
        self._plot_timer.timeout.connect(self._redraw)
        self.setWindowIcon(_icon())
        self.setAcceptDrops(True)
        self._build()
        self.model_files = ModelFiles(self)
        self.resumer = Resumer(self)
        self._build_menus()
        self._never_grow()
        self._restore_settings()
        self.runner.events.connect(self._on_events)
        self.runner.busy_changed.connect(lambda _: self._update_enabled())
        self.refresh()
        if data_path is not None:
            self.data_panel.data_path_edit.setText(str(data_path))  # scanned once the engine has loaded
        if engine_loaded():
            self._engine_loaded()
        else:
            self.start(ENGINE_JOB, load_engine_job, lambda _: self._engine_loaded())

    # ----- layout -------------------------------------------------------------------------------

    def _build(self) -> None:
        screen = self.screen().availableGeometry() if self.screen() is not None else None
        # First launch: 1280x820, or less on a small screen (the status bar must not end off-screen).
        self.resize(min(1280, int(screen.width() * 0.95)) if screen else 1280,
                    min(820, int(screen.height() * 0.92)) if screen else 820)
        self.status = StatusArea(self.statusBar())
        self.data_panel = DataPanel(self)
        self.model_panel = ModelPanel(self)
        self.plots = TrainingPlots(self)
        self.training_panel = TrainingPanel(self, self.plots, self.data_panel, self.model_panel)
        self.predict_panel = PredictPanel(self)
        self.run_log = RunLog()
        self.interpret_panel = InterpretPanel(self, self.data_panel)
        self.audit_panel = AuditPanel(self, self.data_panel)
        self.data_panel.settingsChanged.connect(self.training_panel.update_schedule)
        self.data_panel.datasetOpened.connect(lambda rescan: rescan or self.interpret_panel.set_interpretation(None))
        self.data_panel.modelDropped.connect(self.plots.clear)
        self.data_panel.modelDropped.connect(self.run_log.close)  # another model: another run folder
        self.model_panel.precompute_check.toggled.connect(lambda _: self.training_panel.update_schedule())
        side = QWidget()
        side_layout = QVBoxLayout(side)
        for panel in (self.data_panel, self.model_panel, self.training_panel):
            side_layout.addWidget(panel)
        side_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(360)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("mainTabs")
        for widget, title in ((self.data_panel.view, "Data"), (self.plots.lr_plot, "Learning rate"),
                              (self.plots.schedule_plot, "Schedule"), (self.plots.loss_tab, "Loss && metrics"),
                              (self.predict_panel, "Predict"), (self.interpret_panel, "Interpret"),
                              (self.audit_panel, "Check data")):
            self.tabs.addTab(widget, title)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.addWidget(scroll)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([380, 900])
        self.setCentralWidget(self.splitter)

    def _never_grow(self) -> None:
        """Long texts wrap (or, in the status bar, are cut) instead of widening the window: a
        window that grows by itself overflows a small screen, and its size is saved."""
        for label in self.findChildren(QLabel):
            label.setWordWrap(label.parent() is not self.statusBar())  # the status bar keeps one line

    def _build_menus(self) -> None:
        files = self.model_files
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "Open dataset...", self.data_panel.choose_dataset, QKeySequence.StandardKey.Open)
        demo = demo_path()
        if demo is not None:  # 600 small photos of clothes in 4 classes: something to try the app on
            self._action(file_menu, "Open the demo dataset", lambda: self.open_dataset(str(demo)))
        self._action(file_menu, "Open model...", files.choose_model, "Ctrl+Shift+O")
        self.save_action = self._action(file_menu, "Save model...", files.save_model, QKeySequence.StandardKey.Save)
        file_menu.addSeparator()
        self._action(file_menu, "Save recipe...", files.save_recipe)
        self._action(file_menu, "Load recipe...", files.load_recipe)
        self.export_action = self._action(file_menu, "Export model...", files.export_model, "Ctrl+E")
        file_menu.addSeparator()
        self.run_log.install(file_menu, self, self.settings)
        self._action(file_menu, "Disk cache...", self.show_cache_dialog)
        self._action(file_menu, "Quit", self.close, QKeySequence.StandardKey.Quit)
        run_menu = self.menuBar().addMenu("&Run")
        training = self.training_panel
        self._action(run_menu, "LR Find", training.start_lr_find, "Ctrl+L")
        self._action(run_menu, "Train", training.start_train, "Ctrl+T")
        self._action(run_menu, "Run recipe", training.start_recipe, "Ctrl+R")
        self._action(run_menu, "Analyse mistakes", self.interpret_panel.start_interpret, "Ctrl+I")
        self._action(run_menu, "Check data", self.audit_panel.start_audit)
        self._action(run_menu, "Stop", self.stop, "Escape")

    def show_cache_dialog(self) -> CacheDialog:
        """What the caches hold, their limit, Clear cache (panels.cache_panel): one dialog, kept."""
        if self.cache_dialog is None:
            self.cache_dialog = CacheDialog(self)
        self.cache_dialog.show()
        self.cache_dialog.raise_()
        return self.cache_dialog

    def _action(self, menu: QMenu, text: str, slot: Callable[[], Any], shortcut: Any = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda _=False: slot())
        menu.addAction(action)
        return action

    def _restore_settings(self) -> None:
        s = self.settings
        if s.value("geometry"):
            self.restoreGeometry(s.value("geometry"))
        if s.value("splitter"):
            self.splitter.restoreState(s.value("splitter"))
        for panel in (self.data_panel, self.model_panel, self.training_panel):
            panel.restore(s)

    def _save_settings(self) -> None:
        s = self.settings
        s.setValue("geometry", self.saveGeometry())
        s.setValue("splitter", self.splitter.saveState())
        for panel in (self.data_panel, self.model_panel, self.training_panel):
            panel.save(s)
        s.sync()

    def _engine_loaded(self) -> None:
        """What needed torch: weights found here, CUDA devices, checkpoints; then the dataset."""
        from guiclassifier.core.checkpoint import CheckpointConfig, default_checkpoint_dir, latest_checkpoint

        self.set_status("Ready.")
        self.model_panel.engine_loaded(first_launch=self.settings.value("arch") is None)
        self.workspace.checkpoints = CheckpointConfig(default_checkpoint_dir() / "window")
        self.data_panel.set_default_size(self.device_type())
        data_path, self._data_path = self._data_path, None
        if latest_checkpoint(self.workspace.checkpoints.folder) is not None:
            # Asked once the window shows; the data path waits for the answer.
            QTimer.singleShot(0, lambda: self.resumer.offer(data_path))
        elif data_path is not None:
            self.open_dataset(str(data_path))
        self._update_enabled()
        self.engine_ready.emit()

    # ----- what panels ask of the window (panels.host.Host) ---------------------------------------

    @property
    def job_name(self) -> str:
        return self._job_name

    def start(self, name: str, job: Callable[..., Any], on_done: Callable[[Any], None]) -> bool:
        if self.runner.busy:
            return False
        self._job_name = name  # before start(): busy_changed updates the buttons for this job
        self._on_done = on_done
        self.last_error = None
        self.runner.start(_with_threads_for_load(job) if name in TORCH_JOBS else job,
                          on_done=self._job_done, on_failed=self._job_failed)
        self.status.job_started()
        self.set_status(f"{name}...")
        return True

    def run_settings(self) -> RunSettings | None:
        data = self.data_panel.current_data()
        if data is None:
            return None
        return RunSettings(data, self.model_panel.model_key(), self.workspace.learner, self.workspace.model_key,
                           self.model_panel.precision())

    def adopt(self, learner: Learner, key: ModelKey | None) -> None:
        """A job's learner becomes the project's model."""
        if self.workspace.adopt(learner, key):
            self.interpret_panel.set_interpretation(None)
        self.predict_panel.set_classes(learner.classes, learner.confidence_threshold)

    def device_type(self) -> str:
        from guiclassifier.core.device import resolve_device

        learner = self.workspace.learner
        return learner.device.type if learner is not None else resolve_device(self.model_panel.model_key().device).type

    def show_tab(self, widget: QWidget) -> None:
        self.tabs.setCurrentWidget(widget)

    def set_status(self, text: str) -> None:
        self.status.set_status(text)

    @property
    def last_status(self) -> str:
        return self.status.last_status

    def show_error(self, message: str) -> None:
        """A readable, non-blocking message box (and the status bar), never just a terminal line."""
        self.last_error = message
        self.set_status(message.splitlines()[0])
        box = QMessageBox(QMessageBox.Icon.Warning, APP_NAME, message, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def refresh(self) -> None:
        self._update_enabled()
        self.training_panel.update_schedule()
        self.setWindowTitle(self.workspace.title(APP_NAME))

    def stop(self) -> None:
        if self.runner.busy:
            self.runner.stop()
            self.set_status(f"Stopping {self._job_name.lower()} after this batch...")

    # ----- questions (tests replace these) ----------------------------------------------------------

    def confirm(self, question: str) -> bool:
        """Ask before changing the user's files."""
        return QMessageBox.question(self, APP_NAME, question) == QMessageBox.StandardButton.Yes

    def recipe_start_answer(self) -> str:
        """'pretrained', 'continue' or 'cancel': where Run recipe starts when there is a model."""
        box = QMessageBox(QMessageBox.Icon.Question, APP_NAME,
                          "Run the recipe from the pretrained weights, or continue with the current model "
                          "(its training so far is kept and built on)?", parent=self)
        pretrained = box.addButton("Start from the pretrained weights", QMessageBox.ButtonRole.AcceptRole)
        current = box.addButton("Continue with the current model", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(pretrained)
        box.exec()
        return {pretrained: "pretrained", current: "continue"}.get(box.clickedButton(), "cancel")

    def unsaved_answer(self, doing: str) -> str:
        """'save', 'discard' or 'cancel' for a model with unsaved changes."""
        buttons = QMessageBox.StandardButton
        box = QMessageBox(QMessageBox.Icon.Question, APP_NAME,
                          f"The model has changes that are not saved. Save them before {doing}?",
                          buttons.Save | buttons.Discard | buttons.Cancel, self)
        box.setDefaultButton(buttons.Save)
        answer = buttons(box.exec())
        return {buttons.Save: "save", buttons.Discard: "discard"}.get(answer, "cancel")

    def confirm_stop_and_quit(self) -> bool:
        answer = QMessageBox.question(self, APP_NAME, f"{self._job_name} is running. Stop it and quit?")
        return answer == QMessageBox.StandardButton.Yes

    def may_discard_model(self, doing: str) -> bool:
        """True when the current model may be replaced: nothing unsaved, or the user saved it or
        chose to discard it."""
        if not self.workspace.must_ask_before_replacing():
            return True
        answer = self.unsaved_answer(doing)
        return self.model_files.save_model() if answer == "save" else answer == "discard"

    # ----- the user's entry points that tests and the menus share -----------------------------------

    def open_dataset(self, folder: str, rescan: bool = False) -> None:
        self.data_panel.open_dataset(folder, rescan)

    def open_model(self, path: str) -> None:
        self.model_files.open_model(path)

    def offer_resume(self, data_path: str | Path | None = None) -> None:
        self.resumer.offer(data_path)

    # ----- jobs' events and ends --------------------------------------------------------------

    def _on_events(self, batch: list[ev.Event]) -> None:
        for event in batch:  # in order, each through every panel: a fit's rate spans its own events
            label = PROGRESS_LABELS.get(type(event))
            if label is not None:
                if isinstance(event, ev.PrecomputeProgress) and self._job_name == PREDICT_JOB:
                    label = "Preparing the familiarity check (training images' features, once)"
                elif self._job_name == HEATMAP_JOB:
                    label = HEATMAP_JOB
                self.status.progress(event.done, event.total, event.eta, label)
            elif isinstance(event, ev.AuditProgress):
                self.status.progress(event.done, event.total, event.eta, event.step)
            elif isinstance(event, ev.LRFindPoint):
                self.status.progress(event.iteration + 1, event.num_it, event.eta, "LR Find")
            elif isinstance(event, ev.BatchEnded):
                self.status.progress(event.step, event.total_steps, event.eta, "Training", event.n_images)
            self.training_panel.on_event(event)
            self.plots.on_event(event)
            self.predict_panel.on_event(event)
            self.run_log.on_event(event)
        if (self.plots.waiting or self.status.pending) and not self._plot_timer.isActive():
            self._plot_timer.start()

    def _redraw(self) -> None:
        """Plots and progress redraw a few times a second at most: drawing competes with training
        for the CPU (see benchmarks/README.md, window overhead)."""
        self.plots.redraw()
        self.status.draw_progress()

    def _job_ended(self) -> None:
        self._redraw()  # the final points, without waiting for the timer
        self._plot_timer.stop()

    def _job_done(self, result: Any) -> None:
        self._job_ended()
        self.status.job_ended(completed=True)
        on_done, self._on_done = self._on_done, None
        if result is None:
            self.set_status(f"{self._job_name} stopped.")
        elif on_done is not None:
            on_done(result)
        self.plots.job_ended()
        self.refresh()

    def _job_failed(self, message: str) -> None:
        if self._job_name in ("Scanning", "Rescanning"):
            self.data_panel.show_loaded_path()
            data = self.workspace.data
            message += f"\n\nStill using {data.path}." if data is not None else "\n\nNo dataset is open."
        self._job_ended()
        self.status.job_ended(completed=False)
        self._on_done = None
        self.plots.job_ended()
        self.show_error(message)
        self.refresh()

    def _update_enabled(self) -> None:
        busy, workspace = self.runner.busy, self.workspace
        self.status.set_busy(busy)
        self.data_panel.set_busy(busy)
        self.model_panel.set_busy(busy)
        self.training_panel.set_busy(busy, can_stop=self._job_name != ENGINE_JOB)  # an import cannot stop
        self.predict_panel.set_busy(busy)
        self.interpret_panel.set_busy(busy)
        self.audit_panel.set_busy(busy)
        self.save_action.setEnabled(not busy and workspace.learner is not None)
        self.export_action.setEnabled(not busy and workspace.learner is not None)
        if engine_loaded():
            from guiclassifier.core.device import describe_device, resolve_device

            device = workspace.learner.device if workspace.learner is not None else \
                resolve_device(self.model_panel.model_key().device)
            text = f"device: {describe_device(device)}"
            if workspace.learner is not None:
                text += f", {workspace.learner.precision.describe()}"
            self.status.device_label.setText(text)
        else:
            self.status.device_label.setText("device: (loading PyTorch)")

    # ----- drag and drop, closing -------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        predicting = self.tabs.currentWidget() is self.predict_panel
        if urls and not self.runner.busy and (predicting or Path(urls[0].toLocalFile()).is_dir()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        """On the Predict tab, dropped files and folders are classified; elsewhere a dropped folder
        opens as the dataset."""
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            return
        if self.tabs.currentWidget() is self.predict_panel:
            self.predict_panel.start_predict(paths)
        elif Path(paths[0]).is_dir():
            self.open_dataset(paths[0])
        else:
            self.set_status("Drop a dataset folder here, or image files on the Predict tab.")
            return
        event.acceptProposedAction()

    def closeEvent(self, event: QCloseEvent) -> None:
        # Loading PyTorch cannot be stopped and ends in seconds: no question for that one.
        if self.runner.busy and self._job_name != ENGINE_JOB and not self.confirm_stop_and_quit():
            event.ignore()
            return
        self.runner.shutdown()  # a stopped fit leaves its checkpoint; the model is then as last shown
        if not self.may_discard_model("quitting"):
            self._update_enabled()
            event.ignore()
            return
        self._save_settings()
        event.accept()
