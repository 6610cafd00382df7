"""Learning-rate schedules as pure functions of the step: SGDR and the lr_find sweep.

SGDR (fastai 0.7 `fit(lrs, n_cycle, cycle_len, cycle_mult)`): each cycle anneals with a cosine
from the base lr to 0 over `cycle_len` epochs, and each restart makes the next cycle `cycle_mult`
times longer. Without `cycle_len` the lr stays constant for `n_cycle` epochs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SGDR:
    n_cycle: int
    cycle_len: int | None = None
    cycle_mult: int = 1

    def __post_init__(self) -> None:
        if self.n_cycle < 1:
            raise ValueError(f"n_cycle must be at least 1 (got {self.n_cycle})")
        if self.cycle_len is not None and self.cycle_len < 1:
            raise ValueError(f"cycle_len must be at least 1 (got {self.cycle_len})")
        if self.cycle_mult < 1:
            raise ValueError(f"cycle_mult must be at least 1 (got {self.cycle_mult})")

    def cycle_epochs(self) -> list[int]:
        """Epochs of each cycle, e.g. [1, 2, 4] for 3 cycles, cycle_len=1, cycle_mult=2."""
        if self.cycle_len is None:
            return [1] * self.n_cycle
        return [self.cycle_len * self.cycle_mult ** i for i in range(self.n_cycle)]

    def total_epochs(self) -> int:
        return sum(self.cycle_epochs())

    def multiplier(self, step: int, steps_per_epoch: int) -> float:
        """The factor applied to every group's base lr at global batch `step` (from 0)."""
        if self.cycle_len is None:
            return 1.0
        position = step
        for epochs in self.cycle_epochs():
            length = epochs * steps_per_epoch
            if position < length:
                return 0.5 * (1.0 + math.cos(math.pi * position / length))
            position -= length
        return 0.0

    def multipliers(self, steps_per_epoch: int) -> list[float]:
        """The multiplier for every batch of the whole fit (for plotting the schedule)."""
        total = self.total_epochs() * steps_per_epoch
        return [self.multiplier(s, steps_per_epoch) for s in range(total)]


def lr_sweep(start_lr: float, end_lr: float, num_it: int) -> list[float]:
    """Exponentially spaced lrs from start_lr to end_lr inclusive (lr_find's range test)."""
    if not 0 < start_lr < end_lr:
        raise ValueError(f"need 0 < start_lr < end_lr (got {start_lr}, {end_lr})")
    if num_it < 2:
        raise ValueError(f"num_it must be at least 2 (got {num_it})")
    ratio = end_lr / start_lr
    return [start_lr * ratio ** (i / (num_it - 1)) for i in range(num_it)]


def group_lrs(lrs: float | Sequence[float], n_groups: int) -> tuple[float, ...]:
    """One lr per layer group: a single number applies to all groups; a list must match."""
    if isinstance(lrs, (int, float)):
        values = (float(lrs),) * n_groups
    else:
        values = tuple(float(x) for x in lrs)
        if len(values) == 1:
            values = values * n_groups
        if len(values) != n_groups:
            raise ValueError(f"give one learning rate or {n_groups} (one per layer group), not {len(values)}")
    for value in values:
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"learning rates must be positive numbers (got {value})")
    return values
