"""The Dataset box and the Data tab: where the images are, how they are read, and what a scan found."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSettings, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
)

from guiclassifier.core.text import plural
from guiclassifier.gui.widgets.data_view import DataView
from guiclassifier.gui.widgets.forms import spin_row
from guiclassifier.workspace import DataSettings
from guiclassifier.workspace.engine import engine_loaded
from guiclassifier.workspace.jobs import Scanned, bind, scan_job

if TYPE_CHECKING:
    from guiclassifier.core.data import ImageData
    from guiclassifier.gui.panels.host import Host

AUGMENTS = (("Side-on photos (flip)", "side_on"), ("Top-down (all 8 flips)", "top_down"), ("None", "none"))


class DataPanel(QGroupBox):
    settingsChanged = Signal()
    """Size, batch size or augmentation changed: applied to the next run without a rescan."""
    datasetOpened = Signal(bool)
    """A scan finished and its dataset is the project's; True for a rescan of the same folder."""
    modelDropped = Signal()
    """The new dataset has other classes: the model the views showed is gone."""

    def __init__(self, host: Host) -> None:
        super().__init__("Dataset")
        self.host = host
        self.view = DataView()  # the Data tab
        form = QFormLayout(self)
        row = QHBoxLayout()
        self.data_path_edit = QLineEdit()
        self.data_path_edit.setObjectName("dataPathEdit")
        self.data_path_edit.setPlaceholderText("folder with train/ and valid/, or class folders")
        self.data_path_edit.returnPressed.connect(lambda: self.open_dataset(self.data_path_edit.text()))
        browse = self.browse_button = QPushButton("Browse...")
        browse.setObjectName("browseButton")
        browse.clicked.connect(self.choose_dataset)
        row.addWidget(self.data_path_edit, 1)
        row.addWidget(browse)
        form.addRow(row)
        self.valid_pct_spin = spin_row(form, "Validation %", 5, 50, 20, "validPctSpin",
                                       "Share of each class held out when there is no valid/ folder")
        self.size_spin = spin_row(form, "Image size", 16, 1024, 224, "sizeSpin",
                                  "Pixels (square). Until you change it: 224 on a GPU, 128 on a CPU, and "
                                  "about the images' own size when they are smaller")
        self._setting_size = False
        self.size_chosen = False  # by the user (kept between launches); until then it follows the data
        self.size_spin.valueChanged.connect(self._size_edited)
        self.bs_spin = spin_row(form, "Batch size", 1, 1024, 64, "batchSizeSpin")
        self.augment_combo = QComboBox()
        self.augment_combo.setObjectName("augmentCombo")
        for label, value in AUGMENTS:
            self.augment_combo.addItem(label, value)
        form.addRow("Augmentation", self.augment_combo)
        self.seed_spin = spin_row(form, "Seed", 0, 2**31 - 1, 42, "seedSpin", "Same seed, same split and run")
        self.resized_check = QCheckBox("Keep shrunk copies of big photos")
        self.resized_check.setObjectName("resizedCheck")
        self.resized_check.setChecked(True)
        self.resized_check.setToolTip("Photos much bigger than the image size are decoded once and kept, "
                                      "shrunk, in the cache folder: later epochs read the small copies.")
        form.addRow(self.resized_check)
        self.size_spin.valueChanged.connect(self._changed)
        self.bs_spin.valueChanged.connect(self._changed)
        self.augment_combo.currentIndexChanged.connect(self._changed)
        self.valid_pct_spin.valueChanged.connect(lambda _: self._rescan_later())
        self.seed_spin.valueChanged.connect(lambda _: self._rescan_later())
        self.inputs = (self.data_path_edit, self.browse_button, self.size_spin, self.bs_spin, self.augment_combo, self.seed_spin,
                       self.valid_pct_spin, self.resized_check, self.view.redraw_button)

    # ----- settings ---------------------------------------------------------------------------

    def settings(self) -> DataSettings:
        return DataSettings(size=self.size_spin.value(), bs=self.bs_spin.value(),
                            augment=self.augment_combo.currentData(), valid_pct=self.valid_pct_spin.value() / 100,
                            seed=self.seed_spin.value(), resized_cache=self.resized_check.isChecked())

    def current_data(self) -> ImageData | None:
        """The scanned dataset with the settings as they are now (no rescan needed for these)."""
        data = self.host.workspace.data
        return self.settings().apply(data) if data is not None else None

    def set_busy(self, busy: bool) -> None:
        for w in self.inputs:
            w.setEnabled(not busy)
        self.view.check_button.setEnabled(not busy and self.host.workspace.data is not None)

    def restore(self, s: QSettings) -> None:
        for spin, key in ((self.size_spin, "size"), (self.bs_spin, "bs"), (self.seed_spin, "seed"),
                          (self.valid_pct_spin, "valid_pct")):
            if s.value(key) is not None:
                spin.setValue(int(s.value(key)))
        self.size_chosen = s.value("size") is not None  # saved only when the user chose it
        if s.value("resized_cache") is not None:
            self.resized_check.setChecked(str(s.value("resized_cache")).lower() == "true")
        index = self.augment_combo.findData(s.value("augment"))
        if index >= 0:
            self.augment_combo.setCurrentIndex(index)

    def save(self, s: QSettings) -> None:
        if self.size_chosen:
            s.setValue("size", self.size_spin.value())
        s.setValue("bs", self.bs_spin.value())
        s.setValue("seed", self.seed_spin.value())
        s.setValue("valid_pct", self.valid_pct_spin.value())
        s.setValue("augment", self.augment_combo.currentData())
        s.setValue("resized_cache", self.resized_check.isChecked())

    def show_run_settings(self, folder: str, settings: dict[str, Any]) -> None:
        """A resumed run's own data settings, shown as they will be used."""
        self.data_path_edit.setText(folder)
        self.size_spin.setValue(int(settings["size"]))
        self.bs_spin.setValue(int(settings["bs"]))
        self.seed_spin.setValue(int(settings["seed"]))
        self.valid_pct_spin.setValue(round(settings["valid_pct"] * 100))
        self.augment_combo.setCurrentIndex(self.augment_combo.findData(settings["augment"]))

    def show_model_size(self, size: int) -> None:
        """An opened model's own size, not the user's choice."""
        self._setting_size = True
        self.size_spin.setValue(size)
        self._setting_size = False

    def set_default_size(self, device_type: str, typical: int | None = None) -> None:
        """The size a project starts with (core.image_size), unless the user chose one."""
        if self.size_chosen or not engine_loaded():
            return
        from guiclassifier.core.image_size import default_image_size

        self._setting_size = True
        try:
            self.size_spin.setValue(default_image_size(device_type, typical))
        finally:
            self._setting_size = False

    def _size_edited(self, _: int) -> None:
        if not self._setting_size:
            self.size_chosen = True

    def _changed(self, *_: Any) -> None:
        s = self.settings()
        self.view.set_augmentation(s.augment, s.size, s.max_zoom)
        self.settingsChanged.emit()

    def show_loaded_path(self) -> None:
        """The path field goes back to the dataset that is really loaded (the tabs and buttons
        are about that one)."""
        data = self.host.workspace.data
        self.data_path_edit.setText(str(data.path) if data is not None else "")

    # ----- scanning ---------------------------------------------------------------------------

    def choose_dataset(self) -> None:
        start = self.host.settings.value("last_folder", str(Path.home()))
        folder = QFileDialog.getExistingDirectory(self, "Choose a dataset folder", start)
        if folder:
            self.open_dataset(folder)

    def open_dataset(self, folder: str, rescan: bool = False) -> None:
        """Scan `folder` on the worker; the class table fills in when it is done. A rescan of the
        open dataset decodes only the files that changed."""
        folder = folder.strip()
        if not folder or self.host.runner.busy:
            return
        folder = str(Path(folder).expanduser().absolute())  # remembered as typed would break elsewhere
        self.data_path_edit.setText(folder)
        data = self.host.workspace.data
        previous = data.report if rescan and data is not None else None
        self.host.start("Rescanning" if rescan else "Scanning", bind(scan_job, folder, self.settings(), previous),
                        self.show_scanned)

    def _rescan_later(self) -> None:
        if self.host.workspace.data is not None and not self.host.runner.busy:
            QTimer.singleShot(0, lambda: self.open_dataset(self.data_path_edit.text()))

    def show_scanned(self, scanned: Scanned) -> None:
        """A finished scan becomes the open dataset (a data check that found changed files too)."""
        data, workspace = scanned.data, self.host.workspace
        if workspace.other_classes(data) and not self.host.may_discard_model(
                f"opening a dataset with other classes ({', '.join(data.classes)})"):
            self.show_loaded_path()
            self.host.set_status(f"Kept {workspace.data.path} and its model; {data.path} was not opened.")
            return
        if workspace.dataset_opened(data, scanned.rescan):
            self.modelDropped.emit()
        self.host.settings.setValue("last_folder", str(data.path))  # a folder that failed is not remembered
        if not scanned.rescan:
            self.set_default_size(self.host.device_type(), scanned.typical_side)
        self.view.set_report(data.report)
        self.view.set_augmentation(data.augment, self.size_spin.value(), data.max_zoom)
        skipped = f", {plural(len(data.report.skipped), 'file')} skipped" if data.report.skipped else ""
        counts = f"{len(data.train_items)} train and {len(data.valid_items)} valid images in {data.c} classes"
        self.datasetOpened.emit(scanned.rescan)
        if scanned.rescan:  # after a move: stay where the user is working
            self.host.set_status(f"Dataset updated: {counts}{skipped} ({plural(data.report.decoded, 'changed file')} checked).")
            return
        self.host.show_tab(self.view)
        self.host.set_status(f"Loaded {counts}{skipped}.")
