"""Records of a fit: what was asked for (FitPlan), how far it got (FitProgress, what a checkpoint
keeps), each epoch's numbers (EpochRecord) and how it ended (FitResult)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from guiclassifier.core.overfit import CycleRecord
from guiclassifier.core.schedules import SGDR


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    valid_loss: float
    accuracy: float
    seconds: float
    lrs: tuple[float, ...]


@dataclass(frozen=True)
class FitPlan:
    """What Learner.fit was asked for: a base lr per layer group and the SGDR schedule."""

    lrs: tuple[float, ...]
    n_cycle: int
    cycle_len: int | None = None
    cycle_mult: int = 1
    until_overfit: bool = False  # n_cycle is the most; stop after the first worse cycle

    def schedule(self) -> SGDR:
        return SGDR(self.n_cycle, self.cycle_len, self.cycle_mult)


@dataclass(frozen=True)
class FitProgress:
    """How far a fit got, as a checkpoint keeps it: the next fit goes on from here."""

    epochs_done: int
    steps_per_epoch: int
    records: tuple[EpochRecord, ...]
    rng: dict[str, Any]  # every random generator's state (core.rng) at the end of the last epoch
    best: dict[str, Any] | None = None  # until_overfit: the best cycle end so far (CycleJudge.state_payload)


@dataclass(frozen=True)
class FitResult:
    epochs: tuple[EpochRecord, ...]
    cancelled: bool = False
    diverged: bool = False
    message: str = ""
    out_of_memory: bool = False
    cycles: tuple[CycleRecord, ...] = ()
    kept_cycle: int | None = None  # until_overfit: the cycle whose weights the model now has
    stopped_early: bool = False  # until_overfit: a cycle was worse than the best one
    collapsed: bool = False  # accuracy fell to chance: stopped, the last good weights kept

    @property
    def epochs_done(self) -> int:
        return len(self.epochs)

    @property
    def final_accuracy(self) -> float | None:
        """Validation accuracy of the weights the fit left (the kept cycle's, if one was kept)."""
        if self.kept_cycle is not None:
            return next(c.accuracy for c in self.cycles if c.cycle == self.kept_cycle)
        kept = self.epochs[:-1] if self.collapsed else self.epochs  # the collapsed epoch was undone
        return kept[-1].accuracy if kept else None

    @property
    def failed(self) -> bool:
        """Stopped by a fault (diverged, collapsed, out of memory); `message` says what was kept."""
        return self.diverged or self.out_of_memory or self.collapsed

