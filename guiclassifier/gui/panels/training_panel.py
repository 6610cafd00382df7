"""The Training box: learning rate, group ratio, SGDR schedule, the stage buttons and the recipe's
steps. It starts LR Find, Train, Freeze/Unfreeze and Run recipe, and shows what they return."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from guiclassifier.core import events as ev
from guiclassifier.core.archs import N_GROUPS
from guiclassifier.core.lr_finder import DEFAULT_SUGGESTION
from guiclassifier.core.recipe import GROUP_RATIO
from guiclassifier.core.schedules import SGDR
from guiclassifier.gui.status_area import format_duration
from guiclassifier.gui.widgets.forms import button, spin_row
from guiclassifier.gui.widgets.metrics_table import fit_label
from guiclassifier.workspace.jobs import LRFound, RecipeRan, Refrozen, Trained, bind, freeze_job, lr_find_job
from guiclassifier.workspace.jobs import recipe_job, train_job

if TYPE_CHECKING:
    from guiclassifier.core.learner import FitResult
    from guiclassifier.core.recipe_runner import RecipeResult
    from guiclassifier.gui.panels.data_panel import DataPanel
    from guiclassifier.gui.panels.host import Host
    from guiclassifier.gui.panels.model_panel import ModelPanel
    from guiclassifier.gui.panels.training_plots import TrainingPlots

MARKS = {"done": "\u2713", "running": "\u25b6", "next": "\u2022"}


class TrainingPanel(QGroupBox):
    def __init__(self, host: Host, plots: TrainingPlots, data: DataPanel, model: ModelPanel) -> None:
        super().__init__("Training")
        self.host, self.plots, self.data_panel, self.model_panel = host, plots, data, model
        self._rates: dict[tuple[str, int, str], float] = {}  # (arch, size, what trains) -> images/s measured
        self._fit_what = ""
        form = QFormLayout(self)
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
        self.ratio_spin.valueChanged.connect(lambda _: self.update_schedule())
        self.ratio_label = QLabel()
        self.ratio_label.setObjectName("ratioLabel")
        self.ratio_row_label = QLabel("Group ratio")
        form.addRow(self.ratio_row_label, self.ratio_spin)
        form.addRow(self.ratio_label)
        self.cycles_spin = spin_row(form, "Cycles (n_cycle)", 1, 100, 3, "cyclesSpin")
        self.cycle_len_spin = spin_row(form, "Cycle length", 0, 100, 1, "cycleLenSpin",
                                       "Epochs per cycle; 0 = no restarts, constant lr")
        self.cycle_len_spin.setSpecialValueText("constant lr")
        self.cycle_mult_spin = spin_row(form, "Cycle multiplier", 1, 10, 1, "cycleMultSpin",
                                        "Each cycle is this many times longer than the last")
        self.epochs_label = QLabel()
        self.epochs_label.setObjectName("epochsLabel")
        form.addRow("Total epochs", self.epochs_label)
        self.overfit_check = QCheckBox("Until it over-fits (keep the best cycle)")
        self.overfit_check.setObjectName("untilOverfitCheck")
        self.overfit_check.setToolTip("Stop after the first cycle whose validation loss is worse than the best "
                                      "cycle's, and go back to the best cycle's weights. The cycles above are "
                                      "then the most that run.")
        self.overfit_check.toggled.connect(lambda _: self.update_schedule())
        form.addRow(self.overfit_check)
        for spin in (self.cycles_spin, self.cycle_len_spin, self.cycle_mult_spin):
            spin.valueChanged.connect(lambda _: self.update_schedule())
        buttons = QWidget()
        rows = QVBoxLayout(buttons)
        rows.setContentsMargins(0, 0, 0, 0)
        row1, row2 = QHBoxLayout(), QHBoxLayout()
        self.lr_find_button = button("LR Find", "lrFindButton", self.start_lr_find, row1)
        self.train_button = button("Train", "trainButton", self.start_train, row1)
        self.stop_button = button("Stop", "stopButton", host.stop, row1)
        self.freeze_button = button("Freeze", "freezeButton", lambda: self.start_freeze(True), row2)
        self.unfreeze_button = button("Unfreeze", "unfreezeButton", lambda: self.start_freeze(False), row2)
        self.run_recipe_button = button("Run recipe", "runRecipeButton", self.start_recipe, row2)
        rows.addLayout(row1)
        rows.addLayout(row2)
        form.addRow(buttons)
        self.sweeps_spin = spin_row(form, "lr_find sweeps", 1, 5, 1, "sweepsSpin",
                                    "Repeat the sweep with other batch orders and show the spread")
        self.recipe_list = QListWidget()
        self.recipe_list.setObjectName("recipeSteps")
        self.recipe_list.setMinimumHeight(170)
        self.recipe_list.setWordWrap(True)
        form.addRow(QLabel("Recipe steps (lesson 1)"))
        form.addRow(self.recipe_list)
        self.fill_recipe_list()
        self.plots.lr_plot.lrChosen.connect(self._lr_chosen_on_plot)

    # ----- state ------------------------------------------------------------------------------

    def set_busy(self, busy: bool, can_stop: bool) -> None:
        workspace = self.host.workspace
        has_data, learner, unfrozen = workspace.data is not None, workspace.learner, workspace.unfrozen
        for w in (self.lr_find_button, self.train_button, self.run_recipe_button):
            w.setEnabled(has_data and not busy)
        self.unfreeze_button.setEnabled(has_data and not busy and not unfrozen)
        self.freeze_button.setEnabled(has_data and not busy and learner is not None and learner.frozen_groups < 2)
        self.stop_button.setEnabled(busy and can_stop)
        for w in (self.lr_edit, self.cycles_spin, self.cycle_len_spin, self.cycle_mult_spin, self.ratio_spin,
                  self.sweeps_spin, self.overfit_check):
            w.setEnabled(not busy)
        for w in (self.ratio_spin, self.ratio_label, self.ratio_row_label):
            w.setVisible(unfrozen)

    def restore(self, s: QSettings) -> None:
        if s.value("until_overfit") is not None:
            self.overfit_check.setChecked(str(s.value("until_overfit")).lower() == "true")

    def save(self, s: QSettings) -> None:
        s.setValue("until_overfit", self.overfit_check.isChecked())

    # ----- learning rates and schedule ----------------------------------------------------------

    def base_lr(self) -> float | None:
        try:
            lr = float(self.lr_edit.text())
        except ValueError:
            return None
        return lr if lr > 0 and math.isfinite(lr) else None

    def group_lrs(self) -> tuple[float, float, float]:
        lr = self.base_lr() or 1e-2
        ratio = self.ratio_spin.value() if self.host.workspace.unfrozen else 1.0
        return (lr / ratio ** 2, lr / ratio, lr)

    def show_lr(self, lr: float) -> None:
        self.lr_edit.setText(f"{lr:.2e}")
        self.plots.lr_plot.set_chosen_lr(lr)

    def _lr_typed(self) -> None:
        lr = self.base_lr()
        if lr is None:
            self.host.set_status(f"'{self.lr_edit.text()}' is not a learning rate: type a positive number like 1e-2")
            return
        self.plots.lr_plot.set_chosen_lr(lr)
        self.host.set_status(f"Learning rate {lr:.2e} (typed).")
        self.update_schedule()

    def _lr_chosen_on_plot(self, lr: float) -> None:
        self.lr_edit.setText(f"{lr:.2e}")
        self.host.set_status(f"Learning rate {lr:.2e} (chosen on the curve).")
        self.update_schedule()

    def schedule(self) -> SGDR:
        return SGDR(self.cycles_spin.value(), self.cycle_len_spin.value() or None, self.cycle_mult_spin.value())

    def steps_per_epoch(self) -> int:
        data = self.host.workspace.data
        return max(1, math.ceil((len(data.train_items) if data is not None else 6400) / self.data_panel.bs_spin.value()))

    def update_schedule(self) -> None:
        schedule = self.schedule()
        steps = self.steps_per_epoch()
        lrs = self.group_lrs()
        mults = schedule.multipliers(steps)
        self.plots.schedule_plot.set_schedule([[lr * m for m in mults] for lr in lrs], steps)
        text = (f"{schedule.total_epochs()}  ({' + '.join(map(str, schedule.cycle_epochs()))})"
                if schedule.cycle_len else str(schedule.total_epochs()))
        estimate = self._expected_seconds(schedule.total_epochs())
        if estimate is not None:
            text += f", about {format_duration(estimate)}"
        self.epochs_label.setText(f"at most {text}" if self.overfit_check.isChecked() else text)
        self.ratio_label.setText("lrs: " + " / ".join(f"{lr:.1e}" for lr in lrs))

    def _rate_key(self, what: str) -> tuple[str, int, str]:
        return self.model_panel.arch_combo.currentData(), self.data_panel.size_spin.value(), what

    def _expected_seconds(self, epochs: int) -> float | None:
        """How long Train would take, from the speed measured on this project's last fit of the
        same kind (architecture, size, what trains); None until one ran."""
        workspace = self.host.workspace
        if workspace.data is None:
            return None
        frozen = workspace.learner.frozen_groups if workspace.learner is not None else N_GROUPS - 1
        cached = frozen == N_GROUPS - 1 and self.model_panel.precompute_check.isChecked()
        rate = self._rates.get(self._rate_key(fit_label(cached, N_GROUPS - frozen)))
        return epochs * len(workspace.data.train_items) / rate if rate else None

    # ----- recipe steps ---------------------------------------------------------------------------

    def fill_recipe_list(self, done: int = 0, running: int | None = None) -> None:
        self.recipe_list.clear()
        for i, stage in enumerate(self.host.workspace.recipe.stages):
            mark = "done" if i < done else "running" if i == running else "next"
            item = QListWidgetItem(f"{MARKS[mark]} {i + 1}. {stage.describe()}")
            item.setData(Qt.ItemDataRole.UserRole, mark)
            if mark == "running":
                font = item.font()
                font.setBold(True)
                item.setFont(font)
            self.recipe_list.addItem(item)

    def recipe_marks(self) -> list[str]:
        return [self.recipe_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.recipe_list.count())]

    def on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.FitStarted):
            self._fit_what = fit_label(event.precompute, event.trainable_groups)
            self.host.status.restart_rate()
        elif isinstance(event, ev.FitEnded):
            rate = self.host.status.images_per_second()
            if rate is not None and not event.cancelled:  # images/s including validation: for estimates
                self._rates[self._rate_key(self._fit_what)] = rate
            self.host.set_status(event.message)
        elif isinstance(event, ev.StageStarted):
            self.fill_recipe_list(event.index, event.index)
            self.host.set_status(f"Step {event.index + 1} of {event.total}: {event.description}...")
        elif isinstance(event, ev.StageEnded):
            self.fill_recipe_list(event.index + (0 if event.cancelled else 1), None)
            if event.summary != "done":  # what a step found (an lr) stays until the next one says more
                self.host.set_status(f"Step {event.index + 1} of {event.total}, {event.description}: {event.summary}")

    # ----- jobs -----------------------------------------------------------------------------------

    def start_lr_find(self) -> None:
        run = self.host.run_settings()
        if run is None:
            return
        self.host.show_tab(self.plots.lr_plot)
        self.host.start("LR Find", bind(lr_find_job, run, self.model_panel.precompute_check.isChecked(),
                                        self.ratio_spin.value(), self.sweeps_spin.value()), self._lr_found)

    def start_train(self) -> None:
        run = self.host.run_settings()
        if run is None:
            return
        if self.base_lr() is None:
            self.host.show_error(f"'{self.lr_edit.text()}' is not a learning rate. Type a positive number such "
                                 "as 1e-2, or click on the lr_find curve.")
            return
        schedule = self.schedule()
        self.host.show_tab(self.plots.loss_tab)
        self.host.start("Training", bind(train_job, run, self.group_lrs(), schedule.n_cycle, schedule.cycle_len,
                                         schedule.cycle_mult, self.model_panel.precompute_check.isChecked(),
                                         self.overfit_check.isChecked(), self.host.workspace.checkpoints),
                        self._trained)

    def start_freeze(self, freeze: bool) -> None:
        run = self.host.run_settings()
        if run is not None:
            self.host.start("Freezing" if freeze else "Unfreezing", bind(freeze_job, run, freeze), self._refrozen)

    def start_recipe(self) -> None:
        workspace = self.host.workspace
        if workspace.data is None or self.host.runner.busy:
            return
        fresh = True
        if workspace.learner is not None:
            answer = self.host.recipe_start_answer()
            if answer == "cancel" or answer == "pretrained" and not self.host.may_discard_model(
                    "starting again from the pretrained weights"):
                return
            fresh = answer == "pretrained"
        run = self.host.run_settings()
        self.fill_recipe_list(0, 0)
        self.host.show_tab(self.plots.loss_tab)
        if fresh and workspace.learner is not None:
            self.plots.clear()
        if self.host.start("Recipe", bind(recipe_job, run, workspace.recipe, fresh, workspace.checkpoints),
                           self._recipe_ran):
            self.host.set_status("Recipe, from the pretrained weights..." if fresh else
                                 "Recipe, continuing with the current model...")

    def _lr_found(self, found: LRFound) -> None:
        self.host.adopt(found.learner, found.key)
        self.plots.show_sweeps(found.sweeps)
        first = found.sweeps[0]
        suggested = first.suggested(DEFAULT_SUGGESTION)
        if first.cancelled:
            self.host.set_status("LR Find stopped; the model is as it was before.")
        elif suggested is not None:
            self.show_lr(suggested)
            self.host.set_status(f"Suggested learning rate {suggested:.2e} ({DEFAULT_SUGGESTION} rule). "
                                 "Click the curve to choose another.")
        else:
            self.host.set_status(f"LR Find: {first.stopped_reason}; no suggestion, choose on the curve.")

    def _trained(self, trained: Trained) -> None:
        self.host.adopt(trained.learner, trained.key)
        self.show_fit_result(trained.result)

    def show_fit_result(self, result: FitResult) -> None:
        self.host.workspace.model_changed()
        final = result.final_accuracy
        self.host.set_status(result.message + (f" Accuracy {final:.1%}." if final is not None else ""))
        if result.failed:
            self.host.show_error(result.message)
        self.host.workspace.training_ended(result.cancelled)

    def _refrozen(self, refrozen: Refrozen) -> None:
        self.host.adopt(refrozen.learner, refrozen.key)
        self.host.workspace.model_changed()
        self.host.set_status(f"Now training: {refrozen.learner.describe_trainable()}.")

    def _recipe_ran(self, ran: RecipeRan) -> None:
        self.host.adopt(ran.learner, ran.key)
        self.show_recipe_result(ran.result)

    def show_recipe_result(self, result: RecipeResult) -> None:
        self.host.workspace.model_changed()
        trained = [r for r in result.ran if r.get("stage") == "Train" and r.get("lrs_used") is not None]
        if trained:  # the form shows what the recipe used last, not what was typed before it
            used = trained[-1]["lrs_used"]
            self.show_lr(float(used[-1] if isinstance(used, list) else used))
        if result.cancelled:
            self.host.set_status(f"Recipe stopped after {result.completed} of {result.total} steps.")
        elif result.stopped_reason:
            self.host.show_error(result.stopped_reason)
        elif result.evaluation is not None:
            self.host.set_status(f"Recipe finished: validation accuracy {result.evaluation.accuracy:.1%}"
                                 f"{' with TTA' if result.evaluation.tta else ''}.")
        self.host.workspace.training_ended(result.cancelled)
