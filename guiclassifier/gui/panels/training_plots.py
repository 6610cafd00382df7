"""The training tabs: the lr_find curve, the SGDR schedule, and the loss plot with the metrics
table. They follow the engine's events; drawing waits for the window's coalesced redraw."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter

from guiclassifier.core import events as ev
from guiclassifier.core.lr_finder import explain
from guiclassifier.core.schedules import SGDR
from guiclassifier.gui.widgets.loss_plot import LossPlot
from guiclassifier.gui.widgets.lr_plot import LRFindPlot
from guiclassifier.gui.widgets.metrics_table import MetricsTable, fit_label
from guiclassifier.gui.widgets.schedule_plot import SchedulePlot

if TYPE_CHECKING:
    from guiclassifier.core.lr_finder import LRFindResult
    from guiclassifier.gui.panels.host import Host

RECIPE_JOB = "Recipe"


class TrainingPlots:
    """Owns the three tabs' widgets: `lr_plot`, `schedule_plot`, and `loss_tab` (loss plot over
    the metrics table)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.lr_plot = LRFindPlot()
        self.schedule_plot = SchedulePlot()
        self.loss_plot = LossPlot()
        self.metrics_table = MetricsTable()
        self.loss_tab = QSplitter(Qt.Orientation.Vertical)
        self.loss_tab.addWidget(self.loss_plot)
        self.loss_tab.addWidget(self.metrics_table)
        self.loss_tab.setSizes([520, 220])
        self.stage_label = ""  # a recipe step or a resumed run: shown before what trains
        self._fit_name = ""
        self._epoch_base = 0  # metrics-table rows before the running fit: epochs count across the project
        self._last_step = 0
        self._dirty: set[str] = set()

    def clear(self) -> None:
        """Another model: the loss plot and the metrics table were about the old one."""
        self.loss_plot.clear()
        self.metrics_table.setRowCount(0)

    def show_history(self, history: list) -> None:
        self.clear()
        self.metrics_table.show_history(history)

    @property
    def waiting(self) -> bool:
        """Something waits to be drawn."""
        return bool(self._dirty)

    def on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.LRFindStarted):
            self.lr_plot.clear_curve()
            if self.host.job_name == RECIPE_JOB:  # show what runs: the sweep now, the training later
                self.host.show_tab(self.lr_plot)
        elif isinstance(event, ev.LRFindPoint):
            self.lr_plot.add_point(event.lr, event.loss, event.smooth_loss)
            self._dirty.add("lr")
        elif isinstance(event, ev.LRFindEnded):
            self.lr_plot.set_suggestions(dict(event.suggestions))
            self.lr_plot.set_explanation(explain(dict(event.suggestions), dict(event.reasons),
                                                 stopped_reason=event.stopped_reason))
        elif isinstance(event, ev.StageStarted):
            self.stage_label = f"step {event.index + 1}"
        elif isinstance(event, ev.FitStarted):
            self._fit_started(event)
        elif isinstance(event, ev.BatchEnded):
            self.loss_plot.add_batch(event.smooth_loss)
            self._last_step = event.step
            self._dirty.add("loss")
        elif isinstance(event, ev.EpochEnded):
            self.loss_plot.add_epoch(event.valid_loss, event.accuracy)
            self.metrics_table.add_epoch(self._fit_name, self._epoch_base + event.epoch + 1, event.train_loss,
                                         event.valid_loss, event.accuracy, event.epoch_time)
            self._dirty.add("loss")
        elif isinstance(event, ev.CycleEnded):
            self.metrics_table.mark_cycle_end(event.cycle, event.best_cycle == event.cycle, event.stopping)
        elif isinstance(event, ev.FitEnded):
            self.loss_plot.end_stage()
            if event.kept_cycle is not None:
                self.metrics_table.mark_kept(event.kept_cycle)

    def _fit_started(self, event: ev.FitStarted) -> None:
        self._fit_name = fit_label(event.precompute, event.trainable_groups, self.stage_label)
        if self.host.job_name == RECIPE_JOB:
            self.host.show_tab(self.loss_tab)
        self._epoch_base = self.metrics_table.rowCount()
        self.loss_plot.start_stage(self._fit_name, event.total_epochs * event.batches_per_epoch)
        mults = SGDR(event.n_cycle, event.cycle_len, event.cycle_mult).multipliers(event.batches_per_epoch)
        self.schedule_plot.set_schedule([[lr * m for m in mults] for lr in event.lrs], event.batches_per_epoch)

    def redraw(self) -> None:
        if "lr" in self._dirty:
            self.lr_plot.refresh()
        if "loss" in self._dirty:
            self.loss_plot.refresh()
            self.schedule_plot.set_position(self._last_step)
        self._dirty = set()

    def job_ended(self) -> None:
        self.stage_label = ""

    def show_sweeps(self, sweeps: tuple[LRFindResult, ...]) -> None:
        """Several sweeps: the band between their lowest and highest loss at each lr."""
        if len(sweeps) > 1:
            first = sweeps[0]
            n = min(len(r.losses) for r in sweeps)
            lows = [min(r.losses[i] for r in sweeps) for i in range(n)]
            highs = [max(r.losses[i] for r in sweeps) for i in range(n)]
            self.lr_plot.set_band((first.lrs[:n], lows, highs))
