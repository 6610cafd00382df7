"""The Model box: architecture, weights, device, precision, precompute, and what trains now."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox, QLabel

from guiclassifier.core.archs import DESCRIPTIONS, PREFERENCE
from guiclassifier.core.precision import PRECISION_LABELS, PRECISIONS
from guiclassifier.workspace import ModelKey

if TYPE_CHECKING:
    from guiclassifier.gui.panels.host import Host

WEIGHTS_AUTO, WEIGHTS_RANDOM, WEIGHTS_FILE = "Automatic (ImageNet)", "Random (no pretraining)", "Choose a file..."


class ModelPanel(QGroupBox):
    def __init__(self, host: Host) -> None:
        super().__init__("Model")
        self.host = host
        self.weights_file: str | None = None
        form = QFormLayout(self)
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
        self.precision_combo = QComboBox()
        self.precision_combo.setObjectName("precisionCombo")
        for name in PRECISIONS:
            self.precision_combo.addItem(PRECISION_LABELS[name], name)
        self.precision_combo.setToolTip(
            "The arithmetic of training and prediction. Automatic: float16 mixed precision on a CUDA GPU, "
            "float32 elsewhere. bfloat16 can pay on recent GPUs and CPUs with AMX (on the AVX512-BF16 CPU "
            "measured it made training slower); float16 is for GPUs.")
        self.precision_combo.activated.connect(self._precision_chosen)
        form.addRow("Precision", self.precision_combo)
        self._precision_kept = "auto"  # what a refused choice goes back to
        self.precompute_check = QCheckBox("Precompute activations (fast head training)")
        self.precompute_check.setObjectName("precomputeCheck")
        self.precompute_check.setChecked(True)
        self.precompute_check.setToolTip("Runs the frozen body once and trains the head on the cached "
                                         "output. Augmentation has no effect while it is on.")
        self.precompute_check.toggled.connect(self._precompute_toggled)
        form.addRow(self.precompute_check)
        self.frozen_label = QLabel("training: head only")
        self.frozen_label.setObjectName("frozenLabel")
        form.addRow(self.frozen_label)

    def engine_loaded(self, first_launch: bool) -> None:
        """Mark the architectures whose weights are here, pick the best one on a first launch,
        offer CUDA if there is one."""
        import torch

        from guiclassifier.core.models import best_available_arch, has_local_weights

        for i in range(self.arch_combo.count()):
            if has_local_weights(self.arch_combo.itemData(i)):
                self.arch_combo.setItemText(i, f"{self.arch_combo.itemData(i)}  (weights here)")
        if first_launch and self.arch_combo.currentIndex() == 0:
            self.arch_combo.setCurrentIndex(self.arch_combo.findData(best_available_arch()))
        if torch.cuda.is_available():
            self.device_combo.addItem(f"CUDA ({torch.cuda.get_device_name()})", "cuda")

    def model_key(self) -> ModelKey:
        choice = self.weights_combo.currentText()
        weights = "auto" if choice == WEIGHTS_AUTO else "random" if choice == WEIGHTS_RANDOM else \
            (self.weights_file or "auto")
        return ModelKey(self.arch_combo.currentData(), weights, self.device_combo.currentData())

    def precision(self) -> str:
        """The chosen precision's name (core.precision)."""
        return str(self.precision_combo.currentData())

    def show_arch(self, arch: str) -> None:
        self.arch_combo.setCurrentIndex(self.arch_combo.findData(arch))

    def set_busy(self, busy: bool) -> None:
        unfrozen = self.host.workspace.unfrozen
        for w in (self.arch_combo, self.weights_combo, self.device_combo, self.precision_combo):
            w.setEnabled(not busy)
        self.precompute_check.setEnabled(not busy and not unfrozen)
        if unfrozen and self.precompute_check.isChecked():
            self.precompute_check.setChecked(False)  # the body trains: nothing can be cached
        learner = self.host.workspace.learner
        self.frozen_label.setText(f"training: {learner.describe_trainable() if learner is not None else 'head only'}")

    def restore(self, s: QSettings) -> None:
        index = self.arch_combo.findData(s.value("arch"))
        if index >= 0:
            self.arch_combo.setCurrentIndex(index)
        index = self.precision_combo.findData(s.value("precision"))
        if index >= 0:  # checked against the device at the first job (a GPU may have gone)
            self.precision_combo.setCurrentIndex(index)
            self._precision_kept = self.precision()

    def save(self, s: QSettings) -> None:
        s.setValue("arch", self.arch_combo.currentData())
        s.setValue("precision", self.precision_combo.currentData())

    def _weights_chosen(self, index: int) -> None:
        if self.weights_combo.itemText(index) == WEIGHTS_FILE:
            path, _ = QFileDialog.getOpenFileName(self, "Choose a weights file", "",
                                                  "PyTorch weights (*.pth *.pt);;All files (*)")
            if path:
                self.weights_file = path
                self.weights_combo.setItemText(2, f"File: {Path(path).name}")
            else:
                self.weights_combo.setCurrentIndex(0)

    def _precision_chosen(self, index: int) -> None:
        """Check the choice against the device now, not at the next job; the model keeps its weights."""
        import torch

        from guiclassifier.core.errors import GuiClassifierError
        from guiclassifier.core.precision import resolve_precision

        name = self.precision_combo.itemData(index)
        learner = self.host.workspace.learner
        try:
            if learner is not None and not self.host.runner.busy:
                learner.set_precision(name)
            else:
                resolve_precision(name, torch.device(self.host.device_type()))
        except GuiClassifierError as exc:
            self.precision_combo.setCurrentIndex(self.precision_combo.findData(self._precision_kept))
            self.host.show_error(f"Precision: {exc}")
            return
        self._precision_kept = name

    def _precompute_toggled(self, on: bool) -> None:
        learner = self.host.workspace.learner
        if learner is not None and not self.host.runner.busy and learner.frozen_groups > 0:
            learner.precompute = on
