""""Until it over-fits": judge each SGDR cycle at its end and keep the best one's weights.

A cycle ends where SGDR's lr has annealed to ~0, the natural snapshot (fastai 0.7 saved them with
`cycle_save_name`). A fit watched this way goes on while the validation loss at a cycle end
improves, stops after the first cycle that is not better than the best so far, and goes back to
the best cycle end's weights.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from guiclassifier.core.schedules import SGDR


@dataclass(frozen=True)
class CycleRecord:
    cycle: int  # from 0
    epochs_done: int  # epochs of the fit completed at this cycle's end
    valid_loss: float
    accuracy: float
    best: bool  # the best cycle so far when it ended


def cycle_ends(schedule: SGDR) -> tuple[int, ...]:
    """Epoch counts at which cycles end, e.g. (1, 3, 7) for 3 cycles of 1 epoch, cycle_mult 2."""
    ends, total = [], 0
    for epochs in schedule.cycle_epochs():
        total += epochs
        ends.append(total)
    return tuple(ends)


@dataclass
class BestCycle:
    """The best cycle end so far: its number, validation loss and learner state."""

    cycle: int
    valid_loss: float
    accuracy: float
    model: dict[str, Any]
    optimizer: dict[str, Any] | None


class CycleJudge:
    """Records each cycle's result and which is best; the caller stores the best one's state."""

    def __init__(self, schedule: SGDR) -> None:
        self.ends = cycle_ends(schedule)
        self.cycles: list[CycleRecord] = []
        self.best_cycle: int | None = None
        self.best_loss = math.inf
        self.state: BestCycle | None = None  # the best cycle end's learner state, when kept

    def cycle_at(self, epochs_done: int) -> int | None:
        """The cycle that ends after `epochs_done` epochs, if one does."""
        return self.ends.index(epochs_done) if epochs_done in self.ends else None

    def add(self, epochs_done: int, valid_loss: float, accuracy: float) -> CycleRecord | None:
        """The result at the end of an epoch; a CycleRecord if that epoch ended a cycle."""
        cycle = self.cycle_at(epochs_done)
        if cycle is None:
            return None
        improved = math.isfinite(valid_loss) and valid_loss < self.best_loss
        if improved:
            self.best_cycle, self.best_loss = cycle, valid_loss
        record = CycleRecord(cycle, epochs_done, valid_loss, accuracy, improved)
        self.cycles.append(record)
        return record

    @property
    def last_was_worse(self) -> bool:
        return bool(self.cycles) and not self.cycles[-1].best

    def keep(self, record: CycleRecord, model: dict[str, Any], optimizer: dict[str, Any] | None) -> None:
        self.state = BestCycle(record.cycle, record.valid_loss, record.accuracy, model,
                               copy.deepcopy(optimizer))

    def state_payload(self) -> dict[str, Any] | None:
        """The kept state for a checkpoint (weights_only-loadable types)."""
        if self.state is None:
            return None
        s = self.state
        return {"cycle": s.cycle, "valid_loss": s.valid_loss, "accuracy": s.accuracy, "model": s.model,
                "optimizer": s.optimizer}

    def load_state_payload(self, payload: dict[str, Any] | None) -> None:
        if payload:
            self.state = BestCycle(int(payload["cycle"]), float(payload["valid_loss"]),
                                   float(payload["accuracy"]), payload["model"], payload.get("optimizer"))


def stop_message(worse: CycleRecord, best: BestCycle) -> str:
    return (f"Stopped: cycle {worse.cycle + 1} was worse than cycle {best.cycle + 1} (validation loss "
            f"{worse.valid_loss:.4f} vs {best.valid_loss:.4f}); kept cycle {best.cycle + 1}'s weights "
            f"(accuracy {best.accuracy:.1%}).")
