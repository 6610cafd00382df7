"""Elapsed time and ETA for anything that advances in countable steps."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class EtaClock:
    """Measures elapsed time since creation and extrapolates the remaining time linearly."""

    total: int
    started: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def eta(self, done: int) -> float | None:
        """Seconds left after `done` of `total` steps, or None before the first step."""
        if done <= 0:
            return None
        return max(0.0, self.elapsed() / done * (self.total - done))
