"""The learning-rate range test (lr_find) and its suggestions.

The sweep raises the lr exponentially over training batches while tracking a debiased
exponential moving average of the loss, and stops early on NaN or when the smoothed loss exceeds
4x the best. Afterwards the learner is exactly as before: weights, BatchNorm buffers, optimizer
state and every random generator are restored, so a fit after lr_find equals a fit without it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from guiclassifier.core.cancel import Cancelled, CancelToken
from guiclassifier.core.events import Emitter, LRFindEnded, LRFindPoint, LRFindStarted
from guiclassifier.core.progress import EtaClock
from guiclassifier.core.schedules import lr_sweep

if TYPE_CHECKING:
    from guiclassifier.core.learner import Learner

SMOOTHING_BETA = 0.98
DIVERGE_FACTOR = 4.0
SUGGESTION_NAMES = ("valley", "steep", "minimum")


@dataclass(frozen=True)
class LRFindResult:
    lrs: tuple[float, ...]
    losses: tuple[float, ...]  # smoothed
    raw_losses: tuple[float, ...]
    suggestions: dict[str, float] = field(default_factory=dict)
    stopped_reason: str = ""
    cancelled: bool = False

    def suggested(self, name: str = "valley") -> float | None:
        return self.suggestions.get(name)


def _longest_descent(losses: Sequence[float]) -> tuple[int, int]:
    """(start, end) indices spanning the longest strictly decreasing subsequence of the curve."""
    n = len(losses)
    length = [1] * n
    best_end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and length[j] + 1 > length[i]:
                length[i] = length[j] + 1
        if length[i] > length[best_end]:
            best_end = i
    return best_end - length[best_end] + 1, best_end


def suggest(lrs: Sequence[float], losses: Sequence[float], num_it: int) -> dict[str, float]:
    """fastai v2's suggestions on the curve trimmed to [num_it//10 : -5] (whole curve if short).

    valley: half-way through the first two thirds of the longest descending stretch of the curve;
    steep: steepest fall of loss against log(lr); minimum: the lr of lowest loss, divided by 10.
    """
    lo, hi = num_it // 10, len(lrs) - 5
    if hi - lo < 5:
        lo, hi = 0, len(lrs)
    xs = np.asarray(lrs[lo:hi], dtype=np.float64)
    ys = np.asarray(losses[lo:hi], dtype=np.float64)
    finite = np.isfinite(ys)
    xs, ys = xs[finite], ys[finite]
    if len(xs) < 3:
        return {}
    start, end = _longest_descent(ys.tolist())
    third = (end - start) / 3
    valley = xs[start + int(third) + int(third / 2)]
    slopes = np.diff(ys) / np.diff(np.log(xs))
    steep = xs[int(np.argmin(slopes))]
    minimum = xs[int(np.argmin(ys))] / 10
    return {"valley": float(valley), "steep": float(steep), "minimum": float(minimum)}


def run_lr_find(learner: Learner, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100,
                ratios: Sequence[float] | None = None, callbacks=None,
                cancel: CancelToken | None = None) -> LRFindResult:
    """Sweep the lr over `num_it` training batches; `ratios` keep differential lrs in proportion
    (the reported lr is the last group's)."""
    emit = Emitter(callbacks)
    cancel = cancel or CancelToken()
    sweep = lr_sweep(start_lr, end_lr, num_it)
    n_groups = learner.n_groups
    ratios = tuple(ratios) if ratios is not None else (1.0,) * n_groups
    if len(ratios) != n_groups:
        raise ValueError(f"give {n_groups} ratios, one per layer group")
    scale = ratios[-1]
    emit(LRFindStarted(start_lr, end_lr, num_it))
    snapshot = learner.snapshot()
    lrs: list[float] = []
    raw: list[float] = []
    smooth: list[float] = []
    avg, best = 0.0, math.inf
    reason, cancelled = f"finished all {num_it} iterations", False
    clock = EtaClock(num_it)
    try:
        batches = learner.training_batches(cycle=True)
        for i, lr in enumerate(sweep):
            cancel.raise_if_cancelled()
            x, y = next(batches)
            loss = learner.train_step(x, y, tuple(lr * r / scale for r in ratios))
            avg = SMOOTHING_BETA * avg + (1 - SMOOTHING_BETA) * loss
            smoothed = avg / (1 - SMOOTHING_BETA ** (i + 1))
            lrs.append(lr)
            raw.append(loss)
            smooth.append(smoothed)
            emit(LRFindPoint(i, num_it, lr, loss, smoothed, clock.elapsed(), clock.eta(i + 1)))
            if not math.isfinite(smoothed):
                reason = f"stopped at iteration {i + 1}: the loss became NaN or infinite"
                break
            if i >= min(10, num_it // 10) and smoothed > DIVERGE_FACTOR * best:
                reason = f"stopped at iteration {i + 1}: the loss exceeded {DIVERGE_FACTOR:g}x its best"
                break
            best = min(best, smoothed)
    except Cancelled:
        reason, cancelled = "cancelled", True
    finally:
        learner.restore(snapshot)
    suggestions = suggest(lrs, smooth, num_it)
    emit(LRFindEnded(len(lrs), reason, cancelled, tuple(suggestions.items())))
    return LRFindResult(tuple(lrs), tuple(smooth), tuple(raw), suggestions, reason, cancelled)
