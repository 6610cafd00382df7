"""The main window: wiring between the settings, the stage buttons, the plots and the worker.

The window never trains on its own thread: every engine call is a job on the JobRunner. While a
job runs, the settings and the start buttons are disabled and only Stop is enabled; the learner is
touched by the worker alone until the job has finished.

The window shows before torch has loaded (gui.engine): its first job loads the engine, and engine
modules are imported where they are used, not at the top of this file.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QIcon,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from guiclassifier.core import events as ev
from guiclassifier.core.archs import DESCRIPTIONS, N_GROUPS, PREFERENCE
from guiclassifier.core.errors import DataError, GuiClassifierError
from guiclassifier.core.lr_finder import DEFAULT_SUGGESTION, explain
from guiclassifier.core.recipe import GROUP_RATIO, Recipe, lesson1
from guiclassifier.core.schedules import SGDR
from guiclassifier.core.text import plural
from guiclassifier.gui.engine import engine_loaded, load_engine
from guiclassifier.gui.widgets.data_view import DataView
from guiclassifier.gui.widgets.interpret_view import QUARANTINE, InterpretView
from guiclassifier.gui.widgets.loss_plot import LossPlot
from guiclassifier.gui.widgets.lr_plot import LRFindPlot
from guiclassifier.gui.widgets.metrics_table import MetricsTable, fit_label
from guiclassifier.gui.widgets.predict_view import PredictView
from guiclassifier.gui.widgets.schedule_plot import SchedulePlot
from guiclassifier.gui.worker import JobRunner

if TYPE_CHECKING:
    from guiclassifier.core.checkpoint import CheckpointConfig
    from guiclassifier.core.curate import FileMove
    from guiclassifier.core.data import ImageData
    from guiclassifier.core.learner import Learner

RESOURCES = Path(__file__).resolve().parent.parent.parent / "resources"
APP_NAME = "guiclassifier"
PLOT_REFRESH_MS = 400
PROGRESS_LABEL_WIDTH = 420
TORCH_JOBS = ("LR Find", "Training", "Recipe", "Resuming", "Predicting", "Analysing")
"""Jobs long enough to be worth sampling the CPU's load first (0.25 s; see core.threads)."""
LOADER_START = "forkserver"
"""How the window starts image-loading processes; see core.data.loader_context."""
ENGINE_JOB = "Loading PyTorch"
WEIGHTS_AUTO, WEIGHTS_RANDOM, WEIGHTS_FILE = "Automatic (ImageNet)", "Random (no pretraining)", "Choose a file..."


@dataclass(frozen=True)
class ModelKey:
    """Settings that need a new model when they change (the others are applied in place)."""

    arch: str
    weights: str
    device: str


def _icon() -> QIcon:
    path = RESOURCES / "icon.png"
    return QIcon(str(path)) if path.is_file() else QIcon()


def format_duration(seconds: float) -> str:
    """'40 s', '3 min', '1 h 20 min': an expected duration, rounded as a person would say it."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def format_eta(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "--"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"{seconds // 3600}h{seconds % 3600 // 60:02d}"


def _with_threads_for_load(job):
    """The job, first giving PyTorch the cores other programs leave free (core.threads)."""

    def run(cb, cancel):
        from guiclassifier.core.threads import adapt_threads

        adapt_threads()
        return job(cb, cancel)

    return run


class MainWindow(QMainWindow):
    engine_ready = Signal()
    """torch and the engine are loaded: emitted once, after the first job (see gui.engine)."""

    def __init__(self, data_path: str | Path | None = None, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or QSettings(APP_NAME, APP_NAME)
        self.runner = JobRunner(self)
        self.report_data: ImageData | None = None
        self.learner: Learner | None = None
        self.model_key: ModelKey | None = None
        self.weights_file: str | None = None
        self.recipe: Recipe = lesson1()
        self.last_error: str | None = None
        self.last_status = ""
        self.dirty = False
        self.model_path: str | None = None  # the file the model was opened from or saved to
        self.moves: list[FileMove] = []  # made from the Interpret tab, newest last (for undo)
        self.checkpoints: CheckpointConfig | None = None  # set once the engine has loaded
        self._data_path = data_path  # opened once the engine has loaded
        self._job_name = ""
        self._stage_label = ""  # a recipe step or a resumed run: shown before what trains
        self._epoch_base = 0  # metrics-table rows before the running fit: epochs count across the project
        self._fit_name = ""
        self._fit_what = ""
        self._rates: dict[tuple[str, int, str], float] = {}  # (arch, size, what trains) -> images/s measured
        self._rate_clock: tuple[float, int] = (time.perf_counter(), 0)
        self._plots_dirty: set[str] = set()
        self._last_step = 0
        self._pending_progress: tuple[int, int, str] | None = None
        self._plot_timer = QTimer(self)
        self._plot_timer.setSingleShot(True)
        self._plot_timer.setInterval(PLOT_REFRESH_MS)
        self._plot_timer.timeout.connect(self._redraw_plots)
        self.setWindowIcon(_icon())
        self.setAcceptDrops(True)
        self._build()
        self._build_menus()
        self._never_grow()
        self._restore_settings()
        self.runner.events.connect(self._on_events)
        self.runner.finished.connect(self._on_finished)
        self.runner.failed.connect(self._on_failed)
        self.runner.busy_changed.connect(lambda _: self._update_enabled())
        self._update_schedule()
        self._update_enabled()
        self._update_title()
        if data_path is not None:
            self.data_path_edit.setText(str(data_path))  # scanned once the engine has loaded
        if engine_loaded():
            self._engine_loaded()
        else:
            self._start(ENGINE_JOB, lambda cb, cancel: ("engine", load_engine()))

    def _engine_loaded(self) -> None:
        """What needed torch: weights found here, CUDA devices, checkpoints; then the dataset."""
        import torch

        from guiclassifier.core.checkpoint import CheckpointConfig, default_checkpoint_dir, latest_checkpoint
        from guiclassifier.core.models import best_available_arch, has_local_weights

        for i in range(self.arch_combo.count()):
            if has_local_weights(self.arch_combo.itemData(i)):
                self.arch_combo.setItemText(i, f"{self.arch_combo.itemData(i)}  (weights here)")
        if self.settings.value("arch") is None and self.arch_combo.currentIndex() == 0:
            self.arch_combo.setCurrentIndex(self.arch_combo.findData(best_available_arch()))
        if torch.cuda.is_available():
            self.device_combo.addItem(f"CUDA ({torch.cuda.get_device_name()})", "cuda")
        self.checkpoints = CheckpointConfig(default_checkpoint_dir() / "window")
        self._set_default_size()
        data_path, self._data_path = self._data_path, None
        if latest_checkpoint(self.checkpoints.folder) is not None:
            # Asked once the window shows; the data path waits for the answer.
            QTimer.singleShot(0, lambda: self.offer_resume(data_path))
        elif data_path is not None:
            self.open_dataset(str(data_path))
        self._update_enabled()
        self.engine_ready.emit()

    # ----- layout -----------------------------------------------------------------------

    def _build(self) -> None:
        screen = self.screen().availableGeometry() if self.screen() is not None else None
        # First launch: 1280x820, or less on a small screen (the status bar must not end off-screen).
        self.resize(min(1280, int(screen.width() * 0.95)) if screen else 1280,
                    min(820, int(screen.height() * 0.92)) if screen else 820)
        side = QWidget()
        side_layout = QVBoxLayout(side)

        data_box = QGroupBox("Dataset")
        form = QFormLayout(data_box)
        row = QHBoxLayout()
        self.data_path_edit = QLineEdit()
        self.data_path_edit.setObjectName("dataPathEdit")
        self.data_path_edit.setPlaceholderText("folder with train/ and valid/, or class folders")
        self.data_path_edit.returnPressed.connect(lambda: self.open_dataset(self.data_path_edit.text()))
        browse = QPushButton("Browse...")
        browse.setObjectName("browseButton")
        browse.clicked.connect(self.choose_dataset)
        row.addWidget(self.data_path_edit, 1)
        row.addWidget(browse)
        form.addRow(row)
        self.valid_pct_spin = self._spin(form, "Validation %", 5, 50, 20, "validPctSpin",
                                         "Share of each class held out when there is no valid/ folder")
        self.size_spin = self._spin(form, "Image size", 16, 1024, 224, "sizeSpin",
                                    "Pixels (square). Until you change it: 224 on a GPU, 128 on a CPU, and "
                                    "about the images' own size when they are smaller")
        self._setting_size = False
        self.size_chosen = False  # by the user (kept between launches); until then it follows the data
        self.size_spin.valueChanged.connect(self._size_edited)
        self.bs_spin = self._spin(form, "Batch size", 1, 1024, 64, "batchSizeSpin")
        self.augment_combo = QComboBox()
        self.augment_combo.setObjectName("augmentCombo")
        for label, value in (("Side-on photos (flip)", "side_on"), ("Top-down (all 8 flips)", "top_down"),
                             ("None", "none")):
            self.augment_combo.addItem(label, value)
        form.addRow("Augmentation", self.augment_combo)
        self.seed_spin = self._spin(form, "Seed", 0, 2**31 - 1, 42, "seedSpin", "Same seed, same split and run")
        self.resized_check = QCheckBox("Keep shrunk copies of big photos")
        self.resized_check.setObjectName("resizedCheck")
        self.resized_check.setChecked(True)
        self.resized_check.setToolTip("Photos much bigger than the image size are decoded once and kept, "
                                      "shrunk, in the cache folder: later epochs read the small copies.")
        form.addRow(self.resized_check)
        for w in (self.size_spin, self.bs_spin, self.augment_combo):
            signal = w.currentIndexChanged if isinstance(w, QComboBox) else w.valueChanged
            signal.connect(self._data_settings_changed)
        self.valid_pct_spin.valueChanged.connect(lambda _: self._rescan_later())
        self.seed_spin.valueChanged.connect(lambda _: self._rescan_later())
        side_layout.addWidget(data_box)

        model_box = QGroupBox("Model")
        form = QFormLayout(model_box)
        self.arch_combo = QComboBox()
        self.arch_combo.setObjectName("archCombo")
        for name in PREFERENCE:  # marked "(weights here)" once the engine has loaded
            self.arch_combo.addItem(name, name)
            self.arch_combo.setItemData(self.arch_combo.count() - 1, DESCRIPTIONS[name], Qt.ItemDataRole.ToolTipRole)
        form.addRow("Architecture", self.arch_combo)
        self.weights_combo = QComboBox()
        self.weights_combo.setObjectName("weightsCombo")
        self.weights_combo.addItems([WEIGHTS_AUTO, WEIGHTS_RANDOM, WEIGHTS_FILE])
        self.weights_combo.activated.connect(self._weights_chosen)
        form.addRow("Weights", self.weights_combo)
        self.device_combo = QComboBox()
        self.device_combo.setObjectName("deviceCombo")
        self.device_combo.addItem("Automatic", "auto")
        self.device_combo.addItem("CPU", "cpu")  # and CUDA once the engine has loaded
        form.addRow("Device", self.device_combo)
        self.precompute_check = QCheckBox("Precompute activations (fast head training)")
        self.precompute_check.setObjectName("precomputeCheck")
        self.precompute_check.setChecked(True)
        self.precompute_check.setToolTip("Runs the frozen body once and trains the head on the cached "
                                         "output. Augmentation has no effect while it is on.")
        self.precompute_check.toggled.connect(self._precompute_toggled)
        self.precompute_check.toggled.connect(lambda _: self._update_schedule())
        form.addRow(self.precompute_check)
        self.frozen_label = QLabel("training: head only")
        self.frozen_label.setObjectName("frozenLabel")
        form.addRow(self.frozen_label)
        side_layout.addWidget(model_box)

        train_box = QGroupBox("Training")
        form = QFormLayout(train_box)
        self.lr_edit = QLineEdit("1e-2")
        self.lr_edit.setObjectName("lrEdit")
        self.lr_edit.setToolTip("Learning rate of the head: pick it on the lr_find curve")
        self.lr_edit.editingFinished.connect(self._lr_typed)
        form.addRow("Learning rate", self.lr_edit)
        self.ratio_spin = QDoubleSpinBox()
        self.ratio_spin.setObjectName("ratioSpin")
        self.ratio_spin.setRange(1.0, 100.0)
        self.ratio_spin.setValue(GROUP_RATIO)
        self.ratio_spin.setSuffix("x")
        self.ratio_spin.setToolTip("Each earlier layer group trains this many times slower (3x-10x)")
        self.ratio_spin.valueChanged.connect(lambda _: self._update_schedule())
        self.ratio_label = QLabel()
        self.ratio_label.setObjectName("ratioLabel")
        self.ratio_row_label = QLabel("Group ratio")
        form.addRow(self.ratio_row_label, self.ratio_spin)
        form.addRow(self.ratio_label)
        self.cycles_spin = self._spin(form, "Cycles (n_cycle)", 1, 100, 3, "cyclesSpin")
        self.cycle_len_spin = self._spin(form, "Cycle length", 0, 100, 1, "cycleLenSpin",
                                         "Epochs per cycle; 0 = no restarts, constant lr")
        self.cycle_len_spin.setSpecialValueText("constant lr")
        self.cycle_mult_spin = self._spin(form, "Cycle multiplier", 1, 10, 1, "cycleMultSpin",
                                          "Each cycle is this many times longer than the last")
        self.epochs_label = QLabel()
        self.epochs_label.setObjectName("epochsLabel")
        form.addRow("Total epochs", self.epochs_label)
        self.overfit_check = QCheckBox("Until it over-fits (keep the best cycle)")
        self.overfit_check.setObjectName("untilOverfitCheck")
        self.overfit_check.setToolTip("Stop after the first cycle whose validation loss is worse than the best "
                                      "cycle's, and go back to the best cycle's weights. The cycles above are "
                                      "then the most that run.")
        self.overfit_check.toggled.connect(lambda _: self._update_schedule())
        form.addRow(self.overfit_check)
        for spin in (self.cycles_spin, self.cycle_len_spin, self.cycle_mult_spin):
            spin.valueChanged.connect(lambda _: self._update_schedule())

        buttons = QWidget()
        grid = QVBoxLayout(buttons)
        grid.setContentsMargins(0, 0, 0, 0)
        row1, row2 = QHBoxLayout(), QHBoxLayout()
        self.lr_find_button = self._button("LR Find", "lrFindButton", self.start_lr_find, row1)
        self.train_button = self._button("Train", "trainButton", self.start_train, row1)
        self.stop_button = self._button("Stop", "stopButton", self.stop, row1)
        self.freeze_button = self._button("Freeze", "freezeButton", lambda: self.start_freeze(True), row2)
        self.unfreeze_button = self._button("Unfreeze", "unfreezeButton", lambda: self.start_freeze(False), row2)
        self.run_recipe_button = self._button("Run recipe", "runRecipeButton", self.start_recipe, row2)
        grid.addLayout(row1)
        grid.addLayout(row2)
        form.addRow(buttons)
        self.sweeps_spin = self._spin(form, "lr_find sweeps", 1, 5, 1, "sweepsSpin",
                                      "Repeat the sweep with other batch orders and show the spread")
        self.recipe_list = QListWidget()
        self.recipe_list.setObjectName("recipeSteps")
        self.recipe_list.setMinimumHeight(170)
        self.recipe_list.setWordWrap(True)
        form.addRow(QLabel("Recipe steps (lesson 1)"))
        form.addRow(self.recipe_list)
        self._fill_recipe_list()
        side_layout.addWidget(train_box)
        side_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(360)

        self.tabs = QTabWidget()
        self.tabs.setObjectName("mainTabs")
        self.data_view = DataView()
        self.lr_plot = LRFindPlot()
        self.lr_plot.lrChosen.connect(self._lr_chosen_on_plot)
        self.schedule_plot = SchedulePlot()
        training = QSplitter(Qt.Orientation.Vertical)
        self.loss_plot = LossPlot()
        self.metrics_table = MetricsTable()
        training.addWidget(self.loss_plot)
        training.addWidget(self.metrics_table)
        training.setSizes([520, 220])
        self.tabs.addTab(self.data_view, "Data")
        self.tabs.addTab(self.lr_plot, "Learning rate")
        self.tabs.addTab(self.schedule_plot, "Schedule")
        self.tabs.addTab(training, "Loss && metrics")
        self.predict_view = PredictView()
        self.predict_view.filesChosen.connect(self.start_predict)
        self.predict_view.files_button.clicked.connect(self.choose_files_to_predict)
        self.predict_view.folder_button.clicked.connect(self.choose_folder_to_predict)
        self.predict_view.export_button.clicked.connect(self.export_predictions)
        self.tabs.addTab(self.predict_view, "Predict")
        self.interpret_view = InterpretView()
        self.interpret_view.analyseRequested.connect(self.start_interpret)
        self.interpret_view.moveRequested.connect(self.move_file)
        self.interpret_view.undoRequested.connect(self.undo_last_move)
        self.tabs.addTab(self.interpret_view, "Interpret")

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.addWidget(scroll)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([380, 900])
        self.setCentralWidget(self.splitter)

        self.progress_bar = QProgressBar()
        self.progress_bar.setObjectName("progressBar")
        self.progress_bar.setMaximumWidth(260)
        self.progress_bar.setTextVisible(True)
        self.progress_label = QLabel()
        self.progress_label.setObjectName("progressLabel")
        self.device_label = QLabel()
        self.status_label = QLabel()
        self.status_label.setObjectName("statusLabel")
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.progress_label)
        self.statusBar().addPermanentWidget(self.progress_bar)
        self.statusBar().addPermanentWidget(self.device_label)

    def _never_grow(self) -> None:
        """Long texts wrap (or, in the status bar, are cut) instead of widening the window: a
        window that grows by itself overflows a small screen, and its size is saved."""
        for label in self.findChildren(QLabel):
            label.setWordWrap(label.parent() is not self.statusBar())  # the status bar keeps one line
        self.progress_label.setFixedWidth(PROGRESS_LABEL_WIDTH)  # long texts are elided, see _show_progress

    @staticmethod
    def _spin(form: QFormLayout, label: str, lo: int, hi: int, value: int, name: str, tip: str = "") -> QSpinBox:
        spin = QSpinBox()
        spin.setObjectName(name)
        spin.setRange(lo, hi)
        spin.setValue(value)
        spin.setToolTip(tip)
        form.addRow(label, spin)
        return spin

    @staticmethod
    def _button(text: str, name: str, slot, layout: QHBoxLayout) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.clicked.connect(slot)
        layout.addWidget(button)
        return button

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "Open dataset...", self.choose_dataset, QKeySequence.StandardKey.Open)
        self._action(file_menu, "Open model...", self.choose_model, "Ctrl+Shift+O")
        self.save_action = self._action(file_menu, "Save model...", self.save_model, QKeySequence.StandardKey.Save)
        file_menu.addSeparator()
        self._action(file_menu, "Save recipe...", self.save_recipe)
        self._action(file_menu, "Load recipe...", self.load_recipe)
        self.export_action = self._action(file_menu, "Export model...", self.export_model, "Ctrl+E")
        file_menu.addSeparator()
        self._action(file_menu, "Quit", self.close, QKeySequence.StandardKey.Quit)
        run_menu = self.menuBar().addMenu("&Run")
        self._action(run_menu, "LR Find", self.start_lr_find, "Ctrl+L")
        self._action(run_menu, "Train", self.start_train, "Ctrl+T")
        self._action(run_menu, "Run recipe", self.start_recipe, "Ctrl+R")
        self._action(run_menu, "Analyse mistakes", self.start_interpret, "Ctrl+I")
        self._action(run_menu, "Stop", self.stop, "Escape")

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    # ----- settings that persist -------------------------------------------------------------

    def _restore_settings(self) -> None:
        s = self.settings
        if s.value("geometry"):
            self.restoreGeometry(s.value("geometry"))
        if s.value("splitter"):
            self.splitter.restoreState(s.value("splitter"))
        for spin, key in ((self.size_spin, "size"), (self.bs_spin, "bs"), (self.seed_spin, "seed"),
                          (self.valid_pct_spin, "valid_pct")):
            if s.value(key) is not None:
                spin.setValue(int(s.value(key)))
        self.size_chosen = s.value("size") is not None  # saved only when the user chose it
        for check, key in ((self.resized_check, "resized_cache"), (self.overfit_check, "until_overfit")):
            if s.value(key) is not None:
                check.setChecked(str(s.value(key)).lower() == "true")
        for combo, key in ((self.augment_combo, "augment"), (self.arch_combo, "arch")):
            index = combo.findData(s.value(key))
            if index >= 0:
                combo.setCurrentIndex(index)

    def _save_settings(self) -> None:
        s = self.settings
        s.setValue("geometry", self.saveGeometry())
        s.setValue("splitter", self.splitter.saveState())
        if self.size_chosen:
            s.setValue("size", self.size_spin.value())
        s.setValue("bs", self.bs_spin.value())
        s.setValue("seed", self.seed_spin.value())
        s.setValue("valid_pct", self.valid_pct_spin.value())
        s.setValue("augment", self.augment_combo.currentData())
        s.setValue("arch", self.arch_combo.currentData())
        s.setValue("resized_cache", self.resized_check.isChecked())
        s.setValue("until_overfit", self.overfit_check.isChecked())
        s.sync()

    # ----- state ------------------------------------------------------------------------

    def _update_enabled(self) -> None:
        busy = self.runner.busy
        has_data = self.report_data is not None
        unfrozen = self.learner is not None and self.learner.frozen_groups == 0
        for w in (self.lr_find_button, self.train_button, self.run_recipe_button):
            w.setEnabled(has_data and not busy)
        self.unfreeze_button.setEnabled(has_data and not busy and not unfrozen)
        self.freeze_button.setEnabled(has_data and not busy and self.learner is not None
                                      and self.learner.frozen_groups < 2)
        self.stop_button.setEnabled(busy and self._job_name != ENGINE_JOB)  # an import cannot stop
        self.progress_bar.setVisible(busy)  # a full or empty bar when nothing runs says nothing true
        self.progress_label.setVisible(busy)  # and its room goes to the status message
        for w in (self.data_path_edit, self.size_spin, self.bs_spin, self.augment_combo, self.seed_spin,
                  self.valid_pct_spin, self.resized_check, self.arch_combo, self.weights_combo, self.device_combo,
                  self.data_view.redraw_button, self.lr_edit, self.cycles_spin, self.cycle_len_spin,
                  self.cycle_mult_spin, self.ratio_spin, self.sweeps_spin, self.overfit_check):
            w.setEnabled(not busy)
        self.precompute_check.setEnabled(not busy and not unfrozen)
        if unfrozen and self.precompute_check.isChecked():
            self.precompute_check.setChecked(False)  # the body trains: nothing can be cached
        for w in (self.predict_view.files_button, self.predict_view.folder_button, self.predict_view.tta_check,
                  self.predict_view.drop_zone):
            w.setEnabled(not busy)
        can_interpret = (has_data and self.learner is not None
                         and tuple(self.report_data.classes) == self.learner.classes)
        self.interpret_view.set_state(busy, can_interpret, bool(self.moves))
        self.save_action.setEnabled(not busy and self.learner is not None)
        self.export_action.setEnabled(not busy and self.learner is not None)
        self.ratio_spin.setVisible(unfrozen)
        self.ratio_label.setVisible(unfrozen)
        self.ratio_row_label.setVisible(unfrozen)
        trainable = self.learner.describe_trainable() if self.learner is not None else "head only"
        self.frozen_label.setText(f"training: {trainable}")
        if engine_loaded():
            from guiclassifier.core.device import describe_device, resolve_device

            device = self.learner.device if self.learner is not None else resolve_device(self.device_combo.currentData())
            self.device_label.setText(f"device: {describe_device(device)}")
        else:
            self.device_label.setText("device: (loading PyTorch)")

    def _update_title(self) -> None:
        parts = [APP_NAME]
        if self.report_data is not None:
            parts.append(Path(self.report_data.path).name)
        if self.learner is not None:
            name = Path(self.model_path).name if self.model_path else f"{self.learner.arch} (not saved)"
            parts.append(f"{name}{' *' if self.dirty else ''}")
        self.setWindowTitle(" - ".join(parts))

    def _set_status(self, text: str) -> None:
        self.last_status = text
        self.status_label.setText(text)  # a label, not showMessage: hovering a menu cleared those

    def _show_error(self, message: str) -> None:
        """A readable, non-blocking message box (and the status bar), never just a terminal line."""
        self.last_error = message
        self._set_status(message.splitlines()[0])
        box = QMessageBox(QMessageBox.Icon.Warning, APP_NAME, message, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    # ----- data -------------------------------------------------------------------------

    def choose_dataset(self) -> None:
        start = self.settings.value("last_folder", str(Path.home()))
        folder = QFileDialog.getExistingDirectory(self, "Choose a dataset folder", start)
        if folder:
            self.open_dataset(folder)

    def open_dataset(self, folder: str, rescan: bool = False) -> None:
        """Scan `folder` on the worker; the class table fills in when it is done. A rescan of the
        open dataset decodes only the files that changed."""
        folder = folder.strip()
        if not folder or self.runner.busy:
            return
        folder = str(Path(folder).expanduser().absolute())  # remembered as typed would break elsewhere
        self.data_path_edit.setText(folder)
        settings = self._data_kwargs()
        previous = self.report_data.report if rescan and self.report_data is not None else None
        if not rescan:
            self.moves = []  # undo is for the dataset the moves were made in
        from guiclassifier.core.data import ImageData
        from guiclassifier.core.image_size import typical_side

        def job(cb, cancel):
            data = ImageData.from_folder(folder, callbacks=cb, cancel=cancel, previous=previous, **settings)
            # A few image headers, read here rather than on the GUI thread: for the default size.
            return "data", data, typical_side([item.path for item in data.train_items])

        self._start("Rescanning" if rescan else "Scanning", job)

    def _rescan_later(self) -> None:
        if self.report_data is not None and not self.runner.busy:
            QTimer.singleShot(0, lambda: self.open_dataset(self.data_path_edit.text()))

    def _data_kwargs(self) -> dict[str, Any]:
        # Loading processes come from a forkserver: forking this multi-threaded Qt process
        # directly is not safe (a forked child inherits locks held by other threads).
        return {"num_workers": None, "worker_start": LOADER_START,  # None: core.data's default
                "size": self.size_spin.value(), "bs": self.bs_spin.value(),
                "augment": self.augment_combo.currentData(), "max_zoom": 1.1,
                "valid_pct": self.valid_pct_spin.value() / 100, "seed": self.seed_spin.value(),
                "resized_cache": self.resized_check.isChecked()}

    def _size_edited(self, _: int) -> None:
        if not self._setting_size:
            self.size_chosen = True

    def _set_default_size(self, typical: int | None = None) -> None:
        """The size a project starts with (core.image_size), unless the user chose one."""
        if self.size_chosen or not engine_loaded():
            return
        from guiclassifier.core.device import resolve_device
        from guiclassifier.core.image_size import default_image_size

        self._setting_size = True
        try:
            self.size_spin.setValue(default_image_size(resolve_device(self.device_combo.currentData()).type, typical))
        finally:
            self._setting_size = False

    def _data_settings_changed(self, *_: Any) -> None:
        kw = self._data_kwargs()
        self.data_view.set_augmentation(kw["augment"], kw["size"], kw["max_zoom"])
        self._update_schedule()

    def _current_data(self) -> ImageData | None:
        """The scanned dataset with the settings as they are now (no rescan needed for these)."""
        if self.report_data is None:
            return None
        from guiclassifier.core.data import ImageData

        kw = self._data_kwargs()
        return ImageData(self.report_data.report, size=kw["size"], bs=kw["bs"], augment=kw["augment"],
                         max_zoom=kw["max_zoom"], seed=kw["seed"], num_workers=kw["num_workers"],
                         worker_start=kw["worker_start"], resized_cache=kw["resized_cache"])

    # ----- model ------------------------------------------------------------------------

    def _weights_chosen(self, index: int) -> None:
        if self.weights_combo.itemText(index) == WEIGHTS_FILE:
            path, _ = QFileDialog.getOpenFileName(self, "Choose a weights file", "",
                                                  "PyTorch weights (*.pth *.pt);;All files (*)")
            if path:
                self.weights_file = path
                self.weights_combo.setItemText(2, f"File: {Path(path).name}")
            else:
                self.weights_combo.setCurrentIndex(0)

    def _model_key(self) -> ModelKey:
        choice = self.weights_combo.currentText()
        weights = "auto" if choice == WEIGHTS_AUTO else "random" if choice == WEIGHTS_RANDOM else \
            (self.weights_file or "auto")
        return ModelKey(self.arch_combo.currentData(), weights, self.device_combo.currentData())

    def _run_settings(self) -> tuple[ImageData | None, ModelKey, Learner | None, ModelKey | None]:
        """Read on the GUI thread when a job starts: the worker never touches widgets."""
        return self._current_data(), self._model_key(), self.learner, self.model_key

    @staticmethod
    def _learner_for_run(settings: tuple, fresh: bool = False) -> Learner:
        """Called on the worker: the current learner with the current data settings, or a new one
        (always a new one with `fresh`: the pretrained weights)."""
        from guiclassifier.core.learner import Learner

        data, key, current, current_key = settings
        if not fresh and current is not None and key == current_key and tuple(data.classes) == current.classes:
            current.attach_data(data)
            return current
        weights = None if key.weights == "random" else key.weights
        return Learner.pretrained(key.arch, data, precompute=False, weights=weights, device=key.device,
                                  seed=data.seed)

    def _precompute_toggled(self, on: bool) -> None:
        if self.learner is not None and not self.runner.busy and self.learner.frozen_groups > 0:
            self.learner.precompute = on

    # ----- learning rates and schedule ----------------------------------------------------

    def base_lr(self) -> float | None:
        try:
            lr = float(self.lr_edit.text())
        except ValueError:
            return None
        return lr if lr > 0 and math.isfinite(lr) else None

    def group_lrs(self) -> tuple[float, float, float]:
        lr = self.base_lr() or 1e-2
        unfrozen = self.learner is not None and self.learner.frozen_groups == 0
        ratio = self.ratio_spin.value() if unfrozen else 1.0
        return (lr / ratio ** 2, lr / ratio, lr)

    def _lr_typed(self) -> None:
        lr = self.base_lr()
        if lr is None:
            self._set_status(f"'{self.lr_edit.text()}' is not a learning rate: type a positive number like 1e-2")
            return
        self.lr_plot.set_chosen_lr(lr)
        self._set_status(f"Learning rate {lr:.2e} (typed).")
        self._update_schedule()

    def _lr_chosen_on_plot(self, lr: float) -> None:
        self.lr_edit.setText(f"{lr:.2e}")
        self._set_status(f"Learning rate {lr:.2e} (chosen on the curve).")
        self._update_schedule()

    def _schedule(self) -> SGDR:
        cycle_len = self.cycle_len_spin.value() or None
        return SGDR(self.cycles_spin.value(), cycle_len, self.cycle_mult_spin.value())

    def _steps_per_epoch(self) -> int:
        n = len(self.report_data.train_items) if self.report_data is not None else 6400
        return max(1, math.ceil(n / self.bs_spin.value()))

    def _update_schedule(self) -> None:
        schedule = self._schedule()
        steps = self._steps_per_epoch()
        mults = schedule.multipliers(steps)
        lrs = self.group_lrs()
        self.schedule_plot.set_schedule([[lr * m for m in mults] for lr in lrs], steps)
        text = (f"{schedule.total_epochs()}  ({' + '.join(map(str, schedule.cycle_epochs()))})"
                if schedule.cycle_len else str(schedule.total_epochs()))
        estimate = self._expected_seconds(schedule.total_epochs())
        if estimate is not None:
            text += f", about {format_duration(estimate)}"
        self.epochs_label.setText(f"at most {text}" if self.overfit_check.isChecked() else text)
        self.ratio_label.setText("lrs: " + " / ".join(f"{lr:.1e}" for lr in lrs))

    def _expected_seconds(self, epochs: int) -> float | None:
        """How long Train would take, from the speed measured on this project's last fit of the
        same kind (architecture, size, what trains); None until one ran."""
        if self.report_data is None:
            return None
        frozen = self.learner.frozen_groups if self.learner is not None else N_GROUPS - 1
        what = fit_label(frozen == N_GROUPS - 1 and self.precompute_check.isChecked(), N_GROUPS - frozen)
        rate = self._rates.get((self.arch_combo.currentData(), self.size_spin.value(), what))
        return epochs * len(self.report_data.train_items) / rate if rate else None

    # ----- recipe steps -----------------------------------------------------------------

    def _fill_recipe_list(self, done: int = 0, running: int | None = None) -> None:
        self.recipe_list.clear()
        for i, stage in enumerate(self.recipe.stages):
            mark = "done" if i < done else "running" if i == running else "next"
            prefix = {"done": "\u2713", "running": "\u25b6", "next": "\u2022"}[mark]
            item = QListWidgetItem(f"{prefix} {i + 1}. {stage.describe()}")
            item.setData(Qt.ItemDataRole.UserRole, mark)
            if mark == "running":
                font = item.font()
                font.setBold(True)
                item.setFont(font)
            self.recipe_list.addItem(item)

    def recipe_marks(self) -> list[str]:
        return [self.recipe_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.recipe_list.count())]

    # ----- starting and stopping jobs -----------------------------------------------------

    def _start(self, name: str, job) -> bool:
        if self.runner.busy:
            return False
        self._job_name = name  # before start(): busy_changed updates the buttons for this job
        if name in TORCH_JOBS:
            job = _with_threads_for_load(job)
        self.runner.start(job)
        self.last_error = None
        self.progress_bar.setRange(0, 0)
        self.progress_label.setText("")
        self._rate_clock = (time.perf_counter(), 0)
        self._set_status(f"{name}...")
        return True

    def start_lr_find(self) -> None:
        if self.report_data is None:
            return
        sweeps = self.sweeps_spin.value()
        precompute = self.precompute_check.isChecked()
        settings = self._run_settings()
        ratio = self.ratio_spin.value()
        self.tabs.setCurrentWidget(self.lr_plot)

        def job(cb, cancel):
            learner = self._learner_for_run(settings)
            if learner.frozen_groups == learner.n_groups - 1:
                learner.precompute = precompute
            # Unfrozen, the sweep keeps the groups' ratios, as training will.
            ratios = (1 / ratio ** 2, 1 / ratio, 1.0) if learner.frozen_groups == 0 else None
            results = [learner.lr_find(ratios=ratios, callbacks=cb, cancel=cancel)]
            for i in range(1, sweeps):  # other batch orders, for the spread band
                if cancel.cancelled:
                    break
                import torch

                with torch.random.fork_rng():
                    torch.manual_seed(1000 + i)
                    results.append(learner.lr_find(ratios=ratios, callbacks=None, cancel=cancel))
            return "lr_find", learner, results, settings[1]

        self._start("LR Find", job)

    def start_train(self) -> None:
        lr = self.base_lr()
        if self.report_data is None:
            return
        if lr is None:
            self._show_error(f"'{self.lr_edit.text()}' is not a learning rate. Type a positive number such "
                             "as 1e-2, or click on the lr_find curve.")
            return
        lrs = self.group_lrs()
        schedule = self._schedule()
        precompute = self.precompute_check.isChecked()
        until_overfit = self.overfit_check.isChecked()
        settings = self._run_settings()
        self.tabs.setCurrentIndex(3)
        checkpoints = self.checkpoints

        def job(cb, cancel):
            learner = self._learner_for_run(settings)
            if learner.frozen_groups == learner.n_groups - 1:
                learner.precompute = precompute
            return "fit", learner, learner.fit(lrs, schedule.n_cycle, schedule.cycle_len, schedule.cycle_mult,
                                               callbacks=cb, cancel=cancel, checkpoints=checkpoints,
                                               until_overfit=until_overfit), settings[1]

        self._start("Training", job)

    def start_freeze(self, freeze: bool) -> None:
        if self.report_data is None:
            return

        settings = self._run_settings()

        def job(cb, cancel):
            learner = self._learner_for_run(settings)
            learner.freeze() if freeze else learner.unfreeze()
            return "freeze", learner, None, settings[1]

        self._start("Freezing" if freeze else "Unfreezing", job)

    def start_recipe(self) -> None:
        if self.report_data is None or self.runner.busy:
            return
        fresh = True
        if self.learner is not None:
            answer = self.recipe_start_answer()
            if answer == "cancel" or answer == "pretrained" and not self.may_discard_model(
                    "starting again from the pretrained weights"):
                return
            fresh = answer == "pretrained"
        recipe = self.recipe
        settings = self._run_settings()
        self._fill_recipe_list(0, 0)
        self.tabs.setCurrentIndex(3)
        if fresh and self.learner is not None:
            self._clear_training_views()
        checkpoints = self.checkpoints

        def job(cb, cancel):
            from guiclassifier.core.recipe_runner import run_recipe

            learner = self._learner_for_run(settings, fresh)
            return "recipe", learner, run_recipe(learner, recipe, cb, cancel, checkpoints=checkpoints), settings[1]

        if self._start("Recipe", job):
            self._set_status("Recipe, from the pretrained weights..." if fresh else
                             "Recipe, continuing with the current model...")

    def recipe_start_answer(self) -> str:
        """'pretrained', 'continue' or 'cancel': where Run recipe starts when there is a model
        (tests replace this)."""
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
        """'save', 'discard' or 'cancel' for a model with unsaved changes (tests replace this)."""
        box = QMessageBox(QMessageBox.Icon.Question, APP_NAME,
                          f"The model has changes that are not saved. Save them before {doing}?",
                          QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                          | QMessageBox.StandardButton.Cancel, self)
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        answer = box.exec()
        return {QMessageBox.StandardButton.Save: "save",
                QMessageBox.StandardButton.Discard: "discard"}.get(QMessageBox.StandardButton(answer), "cancel")

    def may_discard_model(self, doing: str) -> bool:
        """True when the current model may be replaced: nothing unsaved, or the user saved it or
        chose to discard it."""
        if self.learner is None or not self.dirty:
            return True
        answer = self.unsaved_answer(doing)
        if answer == "save":
            return self.save_model()
        return answer == "discard"

    def _clear_training_views(self) -> None:
        """Another model: the loss plot and the metrics table were about the old one."""
        self.loss_plot.clear()
        self.metrics_table.setRowCount(0)

    def offer_resume(self, data_path: str | Path | None = None) -> None:
        """A run that was stopped, crashed or was killed left a checkpoint: offer to go on."""
        from guiclassifier.core.checkpoint import clear_checkpoints, latest_checkpoint, read_checkpoint

        path = latest_checkpoint(self.checkpoints.folder)
        try:
            payload = read_checkpoint(path) if path is not None else None
        except GuiClassifierError:
            payload = None  # damaged: nothing to offer
        data_settings = payload.get("data_settings") if payload else None
        if not payload or not payload.get("data_path") or not data_settings:
            clear_checkpoints(self.checkpoints.folder)
        else:
            fit = payload["fit"]
            total = SGDR(fit["n_cycle"], fit["cycle_len"], fit["cycle_mult"]).total_epochs()
            context = payload.get("context") if isinstance(payload.get("context"), dict) else {}
            recipe = context.get("recipe") if isinstance(context.get("recipe"), dict) else None
            if recipe is not None:  # a recipe stopped in a later step left its last fit's checkpoint
                steps = len(recipe.get("stages", [])) if isinstance(recipe.get("stages"), list) else "?"
                where = (f"The recipe {recipe.get('name', '')!s:.40} on {payload['data_path']} was interrupted: its "
                         f"step {int(context.get('stage', 0)) + 1} of {steps} had trained {payload['epochs_done']} "
                         f"of {total} epochs")
            else:
                where = (f"A training run on {payload['data_path']} was interrupted after epoch "
                         f"{payload['epochs_done']} of {total}")
            question = f"{where}. Resume it from there?\n\nNo discards it."
            if self.confirm(question):
                self._resume_run(path, payload)
                return
            clear_checkpoints(self.checkpoints.folder)
        if data_path is not None:
            self.open_dataset(str(data_path))

    def _resume_run(self, path: Path, payload: dict[str, Any]) -> None:
        from guiclassifier.core.data import ImageData
        from guiclassifier.core.learner import Learner
        from guiclassifier.core.recipe_runner import resume_recipe

        folder, checkpoints = payload["data_path"], self.checkpoints
        settings = {**self._data_kwargs(), **payload["data_settings"]}  # the run's own data settings
        device = self.device_combo.currentData()
        self.data_path_edit.setText(folder)
        self.size_spin.setValue(int(settings["size"]))
        self.bs_spin.setValue(int(settings["bs"]))
        self.seed_spin.setValue(int(settings["seed"]))
        self.valid_pct_spin.setValue(round(settings["valid_pct"] * 100))
        self.augment_combo.setCurrentIndex(self.augment_combo.findData(settings["augment"]))
        self.tabs.setCurrentIndex(3)
        self._stage_label = "resumed"

        def job(cb, cancel):
            data = ImageData.from_folder(folder, callbacks=cb, cancel=cancel, **settings)
            if (payload.get("context") or {}).get("recipe"):
                learner, result = resume_recipe(path, data, cb, cancel, checkpoints, device, payload)
            else:
                learner, result = Learner.resume(path, data, cb, cancel, checkpoints, device, payload)
            return "resumed", learner, (data, result), None

        self._start("Resuming", job)

    def start_interpret(self) -> None:
        """Predict the validation set on the worker and show the confusion matrix and top losses."""
        if self.learner is None or self.report_data is None or self.runner.busy:
            return
        if tuple(self.report_data.classes) != self.learner.classes:
            self._show_error("The open dataset's classes differ from the model's: open the dataset the "
                             "model was trained on to analyse its mistakes.")
            return
        settings = self._run_settings()
        tta = self.interpret_view.tta_check.isChecked()
        self.tabs.setCurrentWidget(self.interpret_view)

        def job(cb, cancel):
            from guiclassifier.core.interpret import interpret

            learner = self._learner_for_run(settings)
            return "interpret", learner, interpret(learner, tta, cb, cancel), settings[1]

        self._start("Analysing", job)

    def confirm(self, question: str) -> bool:
        """Ask before changing the user's files (tests replace this)."""
        answer = QMessageBox.question(self, APP_NAME, question)
        return answer == QMessageBox.StandardButton.Yes

    def move_file(self, path: str, target: str) -> None:
        """Move an image to another class folder (or to quarantine when `target` is QUARANTINE),
        after asking; then rescan, decoding only what changed."""
        if self.report_data is None or self.runner.busy:
            return
        root = self.report_data.path
        where = f"the quarantine folder {Path(root) / '_quarantine'}" if target == QUARANTINE else \
            f"the {target} folder"
        if not self.confirm(f"Move {Path(path).name} to {where}?\n\nUse Undo last move to put it back."):
            return
        from guiclassifier.core.curate import move_to_class, move_to_quarantine

        try:
            if target == QUARANTINE:
                move = move_to_quarantine(path, root)
            else:
                move = move_to_class(path, target, tuple(self.report_data.classes))
        except DataError as exc:
            self._show_error(str(exc))
            return
        self.moves.append(move)
        self.interpret_view.file_moved(move)
        self._set_status(f"Moved {move.describe()}")
        self.open_dataset(root, rescan=True)

    def undo_last_move(self) -> None:
        if not self.moves or self.report_data is None or self.runner.busy:
            return
        from guiclassifier.core.curate import undo_move

        move = self.moves[-1]
        try:
            undo_move(move)
        except DataError as exc:
            self._show_error(str(exc))
            return
        self.moves.pop()
        self.interpret_view.file_restored(move)
        self._set_status(f"Put {Path(move.source).name} back in {Path(move.source).parent}")
        self.open_dataset(self.report_data.path, rescan=True)

    def stop(self) -> None:
        if self.runner.busy:
            self.runner.stop()
            self._set_status(f"Stopping {self._job_name.lower()} after this batch...")

    # ----- results ----------------------------------------------------------------------

    def _on_events(self, batch: list) -> None:
        lr_points = False
        batches = False
        for event in batch:
            if isinstance(event, (ev.ScanProgress, ev.PrecomputeProgress, ev.PredictProgress)):
                label = {"ScanProgress": "Checking images", "PrecomputeProgress": "Precomputing",
                         "PredictProgress": "Predicting"}[type(event).__name__]
                if isinstance(event, ev.PrecomputeProgress) and self._job_name == "Predicting":
                    label = "Preparing the familiarity check (training images' features, once)"
                self._progress(event.done, event.total, event.eta, label)
            elif isinstance(event, ev.LRFindStarted):
                self.lr_plot.clear_curve()
                if self._job_name == "Recipe":  # show what runs: the sweep now, the training later
                    self.tabs.setCurrentWidget(self.lr_plot)
            elif isinstance(event, ev.LRFindPoint):
                self.lr_plot.add_point(event.lr, event.loss, event.smooth_loss)
                self._progress(event.iteration + 1, event.num_it, event.eta, "LR Find")
                lr_points = True
            elif isinstance(event, ev.LRFindEnded):
                self.lr_plot.set_suggestions(dict(event.suggestions))
                self.lr_plot.set_explanation(explain(dict(event.suggestions), dict(event.reasons),
                                                     stopped_reason=event.stopped_reason))
            elif isinstance(event, ev.FitStarted):
                self._fit_name = fit_label(event.precompute, event.trainable_groups, self._stage_label)
                if self._job_name == "Recipe":
                    self.tabs.setCurrentIndex(3)
                self._fit_what = fit_label(event.precompute, event.trainable_groups)
                self._rate_clock = (time.perf_counter(), 0)
                self._epoch_base = self.metrics_table.rowCount()
                self.loss_plot.start_stage(self._fit_name, event.total_epochs * event.batches_per_epoch)
                mults = SGDR(event.n_cycle, event.cycle_len, event.cycle_mult).multipliers(event.batches_per_epoch)
                self.schedule_plot.set_schedule([[lr * m for m in mults] for lr in event.lrs],
                                                event.batches_per_epoch)
            elif isinstance(event, ev.BatchEnded):
                self.loss_plot.add_batch(event.smooth_loss)
                self._last_step = event.step
                self._progress(event.step, event.total_steps, event.eta, "Training", event.n_images)
                batches = True
            elif isinstance(event, ev.EpochEnded):
                self.loss_plot.add_epoch(event.valid_loss, event.accuracy)
                self.metrics_table.add_epoch(self._fit_name, self._epoch_base + event.epoch + 1, event.train_loss,
                                             event.valid_loss, event.accuracy, event.epoch_time)
                batches = True
            elif isinstance(event, ev.FilePredicted) and self._job_name == "Predicting":
                from guiclassifier.core.predict import Prediction

                self.predict_view.add_result(Prediction(event.path, event.probabilities, event.error,
                                                        event.seconds, event.unfamiliar))
            elif isinstance(event, ev.CycleEnded):
                self.metrics_table.mark_cycle_end(event.cycle, event.best_cycle == event.cycle, event.stopping)
            elif isinstance(event, ev.FitEnded):
                self.loss_plot.end_stage()
                start, seen = self._rate_clock
                if seen and not event.cancelled:  # images/s including validation: for the next estimate
                    key = (self.arch_combo.currentData(), self.size_spin.value(), self._fit_what)
                    self._rates[key] = seen / max(1e-6, time.perf_counter() - start)
                if event.kept_cycle is not None:
                    self.metrics_table.mark_kept(event.kept_cycle)
                self._set_status(event.message)
            elif isinstance(event, ev.StageStarted):
                self._fill_recipe_list(event.index, event.index)
                self._stage_label = f"step {event.index + 1}"
            elif isinstance(event, ev.StageEnded):
                self._fill_recipe_list(event.index + (0 if event.cancelled else 1), None)
                summary = "" if event.summary == "done" else f": {event.summary}"
                self._set_status(f"Step {event.index + 1} ({event.description}){summary}")
        self._plots_dirty |= {"lr"} if lr_points else set()
        self._plots_dirty |= {"loss"} if batches else set()
        if self._plots_dirty and not self._plot_timer.isActive():
            self._plot_timer.start()

    def _redraw_plots(self) -> None:
        """Plots and progress redraw a few times a second at most: drawing competes with training
        for the CPU (see benchmarks/README.md, window overhead)."""
        if "lr" in self._plots_dirty:
            self.lr_plot.refresh()
        if "loss" in self._plots_dirty:
            self.loss_plot.refresh()
            self.schedule_plot.set_position(self._last_step)
        if "progress" in self._plots_dirty and self._pending_progress is not None:
            done, total, text = self._pending_progress
            self.progress_bar.setRange(0, max(1, total))
            self.progress_bar.setValue(min(done, total))
            self._show_progress(text)
        self._plots_dirty = set()

    def _show_progress(self, text: str) -> None:
        metrics = self.progress_label.fontMetrics()
        self.progress_label.setText(metrics.elidedText(text, Qt.TextElideMode.ElideMiddle, PROGRESS_LABEL_WIDTH - 8))
        self.progress_label.setToolTip(text)

    def _progress(self, done: int, total: int, eta: float | None, label: str, n_images: int = 0) -> None:
        """Record progress; it is shown with the next coalesced redraw."""
        text = f"{label}: {done}/{total}, ETA {format_eta(eta)}"
        if n_images:
            start, seen = self._rate_clock
            seen += n_images
            self._rate_clock = (start, seen)
            elapsed = time.perf_counter() - start
            if elapsed > 0.5:
                text += f", {seen / elapsed:.0f} images/s"
        self._pending_progress = (done, total, text)
        self._plots_dirty.add("progress")
        if not self._plot_timer.isActive():
            self._plot_timer.start()

    def _on_finished(self, result: Any) -> None:
        self._redraw_plots()  # the final points, without waiting for the timer
        self._plot_timer.stop()
        self._pending_progress = None
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(1)
        self.progress_label.setText("")
        if result is None:
            self._set_status(f"{self._job_name} stopped.")
        elif result[0] == "engine":
            self._set_status("Ready.")
            self._engine_loaded()
        elif result[0] == "data":
            self._data_loaded(result[1], result[2])
        else:
            from guiclassifier.core.checkpoint import clear_checkpoints
            from guiclassifier.core.learner import FitResult

            kind, learner, outcome, key = result
            if kind == "resumed":  # an interrupted fit or recipe, finished: shown like one
                data, outcome = outcome
                self.report_data = data
                self.data_view.set_report(data.report)
                self.arch_combo.setCurrentIndex(self.arch_combo.findData(learner.arch))
                key = self._model_key()
                kind = "fit" if isinstance(outcome, FitResult) else "recipe"
            if learner is not self.learner:
                self.model_path = None  # a new model: not the file the old one came from
                self.interpret_view.set_interpretation(None)
            self.learner, self.model_key = learner, key
            if kind == "open_model":
                self.dirty = False
                self._setting_size = True  # the model's own size, not the user's choice
                self.size_spin.setValue(learner.size)
                self._setting_size = False
                self._clear_training_views()
                self.metrics_table.show_history(learner.history)
                self.model_path = outcome
                self.arch_combo.setCurrentIndex(self.arch_combo.findData(learner.arch))
                self.model_key = self._model_key()
                self.precompute_check.setChecked(False)
                self._set_status(f"Opened {Path(outcome).name}: {learner.arch}, classes "
                                 f"{', '.join(learner.classes)}" + ("" if learner.data is not None else
                                                                    " (open a dataset with these classes to train)"))
            elif kind == "lr_find":
                self._lr_find_done(outcome)
            elif kind == "fit":
                self.dirty = True
                final = outcome.final_accuracy
                self._set_status(outcome.message + (f" Accuracy {final:.1%}." if final is not None else ""))
                if outcome.failed:
                    self._show_error(outcome.message)
            elif kind == "freeze":
                self.dirty = True
                self._set_status(f"Now training: {learner.describe_trainable()}.")
            elif kind == "recipe":
                self.dirty = True
                self._recipe_done(outcome)
            elif kind == "interpret":
                self.interpret_view.set_interpretation(outcome)
                self._set_status(self.interpret_view.summary.text())
            elif kind == "predict":
                skipped = sum(r.error is not None for r in outcome)
                flagged = sum(r.unfamiliar for r in outcome)
                self._set_status(f"Predicted {plural(len(outcome) - skipped, 'image')}"
                                 + (f", {skipped} skipped" if skipped else "")
                                 + (f", {flagged} unlike the training images" if flagged else "") + ".")
            self.predict_view.set_classes(learner.classes)
            if kind in ("fit", "recipe") and not outcome.cancelled:
                # Finished, or failed (diverged, collapsed): going on from there would fail again.
                clear_checkpoints(self.checkpoints.folder)
        self._stage_label = ""
        self._update_enabled()
        self._update_schedule()
        self._update_title()

    def _data_loaded(self, data: ImageData, typical: int | None = None) -> None:
        if self.learner is not None and tuple(data.classes) != self.learner.classes:
            if not self.may_discard_model(f"opening a dataset with other classes ({', '.join(data.classes)})"):
                self._show_loaded_path()
                self._set_status(f"Kept {self.report_data.path} and its model; {data.path} was not opened.")
                return
            self.learner = None  # a different problem: the next run starts a new model
            self.model_key = None
            self.model_path = None
            self.dirty = False
            self._clear_training_views()
        self.report_data = data
        self.settings.setValue("last_folder", str(data.path))  # a folder that failed is not remembered
        if self._job_name != "Rescanning":
            self._set_default_size(typical)
        self.data_view.set_report(data.report)
        self.data_view.set_augmentation(data.augment, self.size_spin.value(), data.max_zoom)
        skipped = f", {plural(len(data.report.skipped), 'file')} skipped" if data.report.skipped else ""
        counts = f"{len(data.train_items)} train and {len(data.valid_items)} valid images in {data.c} classes"
        if self._job_name == "Rescanning":  # after a move: stay where the user is working
            self._set_status(f"Dataset updated: {counts}{skipped} ({data.report.decoded} changed files checked).")
            return
        self.tabs.setCurrentWidget(self.data_view)
        self.interpret_view.set_interpretation(None)  # it was about another dataset
        self._set_status(f"Loaded {counts}{skipped}.")

    def _show_loaded_path(self) -> None:
        """The path field goes back to the dataset that is really loaded (the tabs and buttons
        are about that one)."""
        self.data_path_edit.setText(str(self.report_data.path) if self.report_data is not None else "")

    def _lr_find_done(self, results: list) -> None:
        first = results[0]
        if len(results) > 1:
            n = min(len(r.losses) for r in results)
            lows = [min(r.losses[i] for r in results) for i in range(n)]
            highs = [max(r.losses[i] for r in results) for i in range(n)]
            self.lr_plot.set_band((first.lrs[:n], lows, highs))
        suggested = first.suggested(DEFAULT_SUGGESTION)
        if first.cancelled:
            self._set_status("LR Find stopped; the model is as it was before.")
        elif suggested is not None:
            self.lr_edit.setText(f"{suggested:.2e}")
            self.lr_plot.set_chosen_lr(suggested)
            self._set_status(f"Suggested learning rate {suggested:.2e} ({DEFAULT_SUGGESTION} rule). "
                             "Click the curve to choose another.")
        else:
            self._set_status(f"LR Find: {first.stopped_reason}; no suggestion, choose on the curve.")

    def _recipe_done(self, result) -> None:
        trained = [r for r in result.ran if r.get("stage") == "Train" and r.get("lrs_used") is not None]
        if trained:  # the form shows what the recipe used last, not what was typed before it
            used = trained[-1]["lrs_used"]
            top = float(used[-1] if isinstance(used, list) else used)
            self.lr_edit.setText(f"{top:.2e}")
            self.lr_plot.set_chosen_lr(top)
        if result.cancelled:
            self._set_status(f"Recipe stopped after {result.completed} of {result.total} steps.")
        elif result.stopped_reason:
            self._show_error(result.stopped_reason)
        elif result.evaluation is not None:
            self._set_status(f"Recipe finished: validation accuracy {result.evaluation.accuracy:.1%}"
                             f"{' with TTA' if result.evaluation.tta else ''}.")

    def _on_failed(self, message: str) -> None:
        if self._job_name in ("Scanning", "Rescanning"):
            self._show_loaded_path()
            message += (f"\n\nStill using {self.report_data.path}." if self.report_data is not None else
                        "\n\nNo dataset is open.")
        self._redraw_plots()
        self._plot_timer.stop()
        self._pending_progress = None
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_label.setText("")
        self._stage_label = ""
        self._show_error(message)
        self._update_enabled()
        self._update_title()

    # ----- files ------------------------------------------------------------------------

    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a model", self.settings.value("last_model_dir", ""),
                                              "guiclassifier models (*.gcm);;All files (*)")
        if path:
            self.settings.setValue("last_model_dir", str(Path(path).parent))
            self.open_model(path)

    def open_model(self, path: str) -> None:
        if self.runner.busy or not self.may_discard_model("opening another model"):
            return
        data, key = self._current_data(), self._model_key()

        def job(cb, cancel):
            from guiclassifier.core.learner import Learner

            learner = Learner.load(path, device=key.device)
            if data is not None and tuple(data.classes) == learner.classes:
                learner.attach_data(data)
            return "open_model", learner, path, ModelKey(learner.arch, key.weights, key.device)

        self._start("Opening model", job)

    def save_model(self) -> bool:
        """Ask where, then save; False when the user cancelled or saving failed."""
        if self.learner is None or self.runner.busy:
            return False
        path, _ = QFileDialog.getSaveFileName(self, "Save the model", self.model_path or "model.gcm",
                                              "guiclassifier models (*.gcm)")
        return bool(path) and self.save_model_to(path)

    def save_model_to(self, path: str) -> bool:
        try:
            self.learner.save(path)
        except (GuiClassifierError, OSError) as exc:  # ModelFileError says what happened and what was kept
            self._show_error(str(exc))
            return False
        self.dirty = False
        self.model_path = path
        self._update_title()
        self._set_status(f"Saved {path}")
        return True

    def export_model(self) -> None:
        if self.learner is None:
            return
        path, chosen = QFileDialog.getSaveFileName(self, "Export the model", "model.onnx",
                                                   "ONNX (*.onnx);;torch.export program (*.pt2)")
        if not path:
            return
        from guiclassifier.core.export import export_model

        fmt = "pt2" if path.endswith(".pt2") or "pt2" in chosen else "onnx"
        try:
            out, side = export_model(self.learner, path, fmt)
        except Exception as exc:
            self._show_error(str(exc))
            return
        self._set_status(f"Exported {out} (classes and preprocessing in {side.name})")

    def save_recipe(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the recipe", "recipe.json", "Recipes (*.json)")
        if path:
            self.recipe.save(path)

    def load_recipe(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load a recipe", "", "Recipes (*.json)")
        if not path:
            return
        try:
            self.recipe = Recipe.load(path)
        except Exception as exc:
            self._show_error(str(exc))
            return
        self._fill_recipe_list()

    # ----- drag and drop, closing ---------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        predicting = self.tabs.currentWidget() is self.predict_view
        if urls and not self.runner.busy and (predicting or Path(urls[0].toLocalFile()).is_dir()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        """On the Predict tab, dropped files and folders are classified; elsewhere a dropped folder
        opens as the dataset."""
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            return
        if self.tabs.currentWidget() is self.predict_view:
            self.start_predict(paths)
        elif Path(paths[0]).is_dir():
            self.open_dataset(paths[0])
        else:
            self._set_status("Drop a dataset folder here, or image files on the Predict tab.")
            return
        event.acceptProposedAction()

    # ----- prediction -------------------------------------------------------------------

    def choose_files_to_predict(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Images to classify", self.settings.value("last_folder", ""),
                                                "Images (*.jpg *.jpeg *.png *.bmp *.gif *.tif *.tiff *.webp)")
        if paths:
            self.start_predict(paths)

    def choose_folder_to_predict(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of images to classify",
                                                  self.settings.value("last_folder", ""))
        if folder:
            self.start_predict([folder])

    def start_predict(self, paths: list[str]) -> None:
        """Classify files and folders on the worker; rows stream in as batches finish."""
        from guiclassifier.core.images import expand_image_paths
        from guiclassifier.core.predict import Prediction, predict_files, reference_from_training

        self.tabs.setCurrentWidget(self.predict_view)
        if self.learner is None:
            self._show_error("There is no model yet. Train one on a dataset, or open a saved model "
                             "(File > Open model), then drop images here.")
            return
        if self.runner.busy:
            return
        files, missing = expand_image_paths(paths)
        self.predict_view.set_classes(self.learner.classes)
        for path, reason in missing:
            self.predict_view.add_result(Prediction(str(path), None, reason, 0.0))
        if not files:
            self._set_status("No image files in what was dropped.")
            return
        learner, key, tta = self.learner, self.model_key, self.predict_view.tta_check.isChecked()

        def job(cb, cancel):
            if learner.reference is None and learner.data is not None:
                learner.reference = reference_from_training(learner, cb, cancel)
            return "predict", learner, predict_files(learner, files, tta, learner.reference, cb, cancel), key

        self._start("Predicting", job)

    def export_predictions(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export results", "predictions.csv", "CSV (*.csv)")
        if path:
            self.export_predictions_to(path)

    def export_predictions_to(self, path: str) -> None:
        from guiclassifier.core.predict import write_predictions_csv

        try:
            write_predictions_csv(path, self.predict_view.classes, self.predict_view.results())
        except OSError as exc:
            self._show_error(f"Could not write {path}: {exc.strerror}")
            return
        self._set_status(f"Wrote {plural(len(self.predict_view.results()), 'result')} to {path}")

    def confirm_stop_and_quit(self) -> bool:
        answer = QMessageBox.question(self, APP_NAME, f"{self._job_name} is running. Stop it and quit?")
        return answer == QMessageBox.StandardButton.Yes

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
