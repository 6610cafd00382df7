"""The books of one Learner.fit call: where it is, how it ended, and the events, messages, result
and history entry made from that.

The Learner does the steps that touch the model (core.learner); a FitRun keeps the score, so each
step stays short and a listener on the fit's events (core.checkpoint_writer) can read where the fit
is, as ignite's handlers read `engine.state`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guiclassifier.core.cancel import CancelToken
from guiclassifier.core.collapse import collapse_message, is_collapse
from guiclassifier.core.errors import TrainingError
from guiclassifier.core.events import (
    BatchEnded,
    Callback,
    CycleEnded,
    Emitter,
    EpochEnded,
    EpochStarted,
    Event,
    FileSkipped,
    FitEnded,
    FitStarted,
)
from guiclassifier.core.fit_records import EpochRecord, FitPlan, FitProgress, FitResult
from guiclassifier.core.overfit import BestCycle, CycleJudge, CycleRecord, stop_message
from guiclassifier.core.progress import EtaClock
from guiclassifier.core.rng import get_rng_state, set_rng_state
from guiclassifier.core.text import plural

if TYPE_CHECKING:
    import torch


@dataclass
class Smoother:
    """Debiased exponential moving average, as fastai shows the training loss."""

    beta: float = 0.98
    avg: float = 0.0
    n: int = 0

    def add(self, value: float) -> float:
        self.n += 1
        self.avg = self.beta * self.avg + (1 - self.beta) * value
        return self.avg / (1 - self.beta ** self.n)


@dataclass
class Running:
    """Sum and count, for epoch means."""

    total: float = 0.0
    n: int = 0

    def add(self, value: float, count: int) -> None:
        self.total += value * count
        self.n += count


class FitRun:
    """The state of one fit: plan, schedule, epochs done, the cycle judge, the last good weights
    and the outcome. `emit` sends to the caller's callbacks and to listeners added with `listen`."""

    def __init__(self, plan: FitPlan, callbacks: Callback | Sequence[Callback] | None,
                 cancel: CancelToken | None, chance: float | None, reached: float | None) -> None:
        self.plan = plan
        self.schedule = plan.schedule()
        self.total_epochs = self.schedule.total_epochs()
        self.judge = CycleJudge(self.schedule)
        self.skipped: dict[str, str] = {}  # path -> reason, for the closing message
        self.emit = Emitter(callbacks).also(self._note_skipped)
        self.cancel = cancel or CancelToken()
        self.chance = chance  # accuracy of always answering the commonest class; None: no collapse check
        self.reached = reached  # the best validation accuracy the model has had
        self.records: list[EpochRecord] = []
        self.last_good: dict[str, torch.Tensor] | None = None  # weights at the last good epoch end
        self.steps_per_epoch = 0
        self.start_epoch = 0
        self.epoch = 0  # the epoch under way
        self.step = 0  # batches done in the whole fit
        self.cancelled = self.diverged = self.out_of_memory = self.collapsed = False
        self.message = ""
        self.notes: list[str] = []  # added to the closing message (a listener's trouble, say)
        self.kept_cycle: int | None = None
        self.stopped_early = False
        self._fit_clock = EtaClock(1)
        self._clock = EtaClock(1)
        self._smoother = Smoother()
        self._epoch_loss = Running()
        self._epoch_started = 0.0

    def listen(self, callback: Callback) -> None:
        """Also send every event of this fit to `callback`, after the caller's callbacks."""
        self.emit = self.emit.also(callback)

    def _note_skipped(self, event: Event) -> None:
        if isinstance(event, FileSkipped):
            self.skipped.setdefault(event.path, event.reason)

    # ----- where the fit is -------------------------------------------------------------------

    @property
    def total_steps(self) -> int:
        return self.total_epochs * self.steps_per_epoch

    @property
    def failed(self) -> bool:
        return self.diverged or self.out_of_memory or self.collapsed

    @property
    def stopping(self) -> bool:
        """until_overfit, and the last cycle was worse than the best: no more epochs."""
        return self.plan.until_overfit and self.judge.last_was_worse

    def epochs(self) -> Iterator[int]:
        """The epochs still to train; ends early once the fit diverged, collapsed or is stopping."""
        for epoch in range(self.start_epoch, self.total_epochs):
            if self.diverged or self.collapsed or self.stopping:
                return
            yield epoch

    def lrs_now(self) -> tuple[float, ...]:
        """Every group's lr for the next batch, on the SGDR schedule."""
        mult = self.schedule.multiplier(self.step, self.steps_per_epoch)
        return tuple(lr * mult for lr in self.plan.lrs)

    def progress(self) -> FitProgress:
        """How far the fit got at the end of the epoch under way (what a checkpoint keeps)."""
        return FitProgress(self.epoch + 1, self.steps_per_epoch, tuple(self.records), get_rng_state(),
                           self.judge.state_payload())

    def checkpoint_due(self, every: int) -> bool:
        """Whether the epoch that just ended gets a checkpoint: every `every`-th, the last, and
        one that stops an until_overfit fit; never a collapsed one (its weights are undone)."""
        done = self.epoch + 1
        return not self.collapsed and (done % every == 0 or done == self.total_epochs or self.stopping)

    # ----- the steps' bookkeeping ---------------------------------------------------------------

    def start(self, steps_per_epoch: int, precompute: bool, trainable_groups: int) -> None:
        self.steps_per_epoch = steps_per_epoch
        self._clock = EtaClock(self.total_steps)
        plan = self.plan
        self.emit(FitStarted(self.total_epochs, steps_per_epoch, plan.lrs, plan.n_cycle, plan.cycle_len,
                             plan.cycle_mult, precompute, trainable_groups))

    def resume_from(self, progress: FitProgress) -> None:
        """Go on where a checkpointed fit was: its records, best cycle and random generators."""
        if progress.steps_per_epoch != self.steps_per_epoch:
            raise TrainingError("the dataset changed since the checkpoint was written "
                                f"({progress.steps_per_epoch} batches per epoch then, "
                                f"{self.steps_per_epoch} now): the run cannot go on where it was")
        self.start_epoch = progress.epochs_done
        self.step = self.start_epoch * self.steps_per_epoch
        self.records = list(progress.records)
        for r in self.records:
            self.judge.add(r.epoch + 1, r.valid_loss, r.accuracy)
        self.judge.load_state_payload(progress.best)
        # The generators as they were at that epoch's end: the same batch order follows.
        set_rng_state(progress.rng)

    def begin_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.emit(EpochStarted(epoch, self.total_epochs))
        self._epoch_started = time.perf_counter()
        self._epoch_loss = Running()

    def batch_done(self, batch: int, loss: float, n_images: int, lrs: tuple[float, ...]) -> None:
        self.step += 1
        self._epoch_loss.add(loss, n_images)
        self.emit(BatchEnded(self.epoch, batch, self.steps_per_epoch, self.step, self.total_steps, loss,
                             self._smoother.add(loss), lrs, n_images, self._clock.elapsed(),
                             self._clock.eta(self.step)))

    def epoch_loss(self) -> list[float]:
        """[sum of the training losses, images] of the epoch under way (to sum across processes)."""
        return [self._epoch_loss.total, float(self._epoch_loss.n)]

    def epoch_record(self, loss_sum: float, n_images: float, valid_loss: float, accuracy: float) -> EpochRecord:
        return EpochRecord(self.epoch, loss_sum / n_images if n_images else math.nan, valid_loss, accuracy,
                           time.perf_counter() - self._epoch_started, self.plan.lrs)

    def collapses(self, accuracy: float) -> bool:
        """Accuracy fell to chance after the model had been clearly better (core.collapse)."""
        return self.chance is not None and is_collapse(accuracy, self.reached, self.chance)

    def judge_epoch(self, record: EpochRecord) -> CycleRecord | None:
        """Note the epoch's result; the cycle it ended, if it ended one."""
        self.reached = max(self.reached or 0.0, record.accuracy)
        return self.judge.add(record.epoch + 1, record.valid_loss, record.accuracy)

    def keeps(self, cycle: CycleRecord | None) -> bool:
        """Whether the state at this cycle's end is to be kept (until_overfit: the best so far)."""
        return cycle is not None and self.plan.until_overfit and cycle.best

    def end_epoch(self, record: EpochRecord, cycle: CycleRecord | None) -> None:
        """Book the epoch and send EpochEnded (the checkpoint writer acts on it), then CycleEnded."""
        self.records.append(record)
        self.emit(EpochEnded(record.epoch, self.total_epochs, record.train_loss, record.valid_loss,
                             record.accuracy, record.seconds, self._clock.elapsed(), self._clock.eta(self.step)))
        if cycle is not None and (self.plan.cycle_len is not None or self.plan.until_overfit):  # epochs aren't cycles
            judge = self.judge
            self.emit(CycleEnded(cycle.cycle, len(judge.ends), record.epoch + 1, record.valid_loss, record.accuracy,
                                 judge.best_cycle if judge.best_cycle is not None else cycle.cycle, self.stopping))

    # ----- how it ended -----------------------------------------------------------------------

    def diverge(self, loss: float, what: str = "loss") -> None:
        self.diverged = True
        self.message = (f"Training diverged in epoch {self.epoch + 1} (the {what} became "
                        f"{'NaN' if math.isnan(loss) else 'infinite'}): the weights from "
                        f"{'the end of epoch ' + str(self.epoch) if self.epoch else 'before this fit'} "
                        "were kept. Try a learning rate about 10x lower.")

    def collapse(self, record: EpochRecord) -> None:
        """Called before the epoch is booked, so that no checkpoint keeps the collapsed weights."""
        self.collapsed = True
        self.message = collapse_message(record.epoch, record.accuracy, self.chance, record.valid_loss,
                                        self.records[-1].valid_loss if self.records else None)

    def stop_by_user(self) -> None:
        self.cancelled = True
        self.message = f"Stopped by the user after {len(self.records)} of {self.total_epochs} epochs."

    def run_out_of_memory(self, settings: str) -> None:
        """`settings`: what the user can make smaller, e.g. " (batch size 64, 224 px images on cuda)"."""
        self.out_of_memory = True
        kept = f"the end of epoch {self.epoch}" if self.records else "before this fit"
        self.message = (f"Out of memory in epoch {self.epoch + 1}{settings}: the stage was stopped and the weights "
                        f"from {kept} were kept. Try a smaller batch size or image size, or a smaller architecture.")

    def choose_cycle(self) -> BestCycle | None:
        """until_overfit: which cycle's weights the fit leaves. Returns the best cycle's state
        when the fit stopped after a worse one (the learner goes back to it)."""
        best = self.judge.state
        if not self.plan.until_overfit or self.cancelled or self.failed or best is None:
            return None
        self.kept_cycle, self.stopped_early = best.cycle, self.judge.last_was_worse
        if self.stopped_early:
            self.message = stop_message(self.judge.cycles[-1], best)
            return best
        self.message = (f"Trained {plural(len(self.records), 'epoch')}: every cycle improved on the one before, so "
                        f"the last (cycle {best.cycle + 1}) is kept. More cycles may help.")
        return None

    def result(self) -> FitResult:
        return FitResult(tuple(self.records), self.cancelled, self.diverged, self._closing_message(),
                         self.out_of_memory, tuple(self.judge.cycles), self.kept_cycle, self.stopped_early,
                         self.collapsed)

    def _closing_message(self) -> str:
        message = " ".join([self.message or f"Trained {plural(len(self.records), 'epoch')}.", *self.notes])
        if self.skipped:
            path, reason = next(iter(self.skipped.items()))
            message += (f" {plural(len(self.skipped), 'file')} could not be read during the run and were left out "
                        f"(e.g. {Path(path).name}: {reason}).")
        return message

    def history_entry(self, result: FitResult, precompute: bool, trainable: str) -> dict[str, Any]:
        """What Learner.history keeps of this fit."""
        plan = self.plan
        return {"kind": "fit", "lrs": list(plan.lrs), "n_cycle": plan.n_cycle, "cycle_len": plan.cycle_len,
                "cycle_mult": plan.cycle_mult, "precompute": precompute, "trainable": trainable,
                "cancelled": self.cancelled, "diverged": self.diverged, "out_of_memory": self.out_of_memory,
                "collapsed": self.collapsed, "until_overfit": plan.until_overfit, "kept_cycle": self.kept_cycle,
                "final_accuracy": result.final_accuracy, "cycles": [asdict(c) for c in self.judge.cycles],
                "epochs": [asdict(r) for r in self.records]}

    def end(self, result: FitResult) -> None:
        self.emit(FitEnded(len(self.records), self.cancelled, self.diverged, result.message,
                           self._fit_clock.elapsed(), self.kept_cycle))
