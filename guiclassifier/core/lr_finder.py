"""The learning-rate range test (lr_find) and its suggestions.

The sweep raises the lr exponentially over training batches while tracking a debiased
exponential moving average of the loss, and stops early on NaN or when the smoothed loss exceeds
4x the best. Afterwards the learner is exactly as before: weights, BatchNorm buffers, optimizer
state and every random generator are restored, so a fit after lr_find equals a fit without it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from guiclassifier.core.cancel import Cancelled, CancelToken
from guiclassifier.core.events import Callback, Emitter, LRFindEnded, LRFindPoint, LRFindStarted
from guiclassifier.core.progress import EtaClock
from guiclassifier.core.schedules import lr_sweep

if TYPE_CHECKING:
    import torch  # only for annotations: recipes list their stages before torch has loaded

SMOOTHING_BETA = 0.98
DIVERGE_FACTOR = 4.0
MIN_BATCHES_BEFORE_DIVERGED = 4
"""A short sweep's first batches are mostly noise: one lucky low loss is no best to diverge from."""
SUGGESTION_NAMES = ("lesson", "valley", "steep", "minimum")
DEFAULT_SUGGESTION = "lesson"
LESSON_DIVISOR = 10.0
"""For a head on a frozen body the lesson rule picks the lr where the loss bottoms out divided by
this: the highest lr where the loss is still clearly improving. Chosen by measurement, see
benchmarks/README.md."""
WHOLE_NETWORK_LR = 1e-2
"""For the whole (unfrozen) network the lesson rule keeps the lesson's lr for the top layer group
(the seed: lr=np.array([lr/9, lr/3, lr]) with lr=1e-2), and the sweep only checks it: on every
benchmark set and seed this was the best of a grid or within one image of it, while the unfrozen
curve's own bottom pointed 13-200x lower (benchmarks/README.md, section 8)."""
DIVERGED_MARGIN = 2.0
"""A sweep that diverged below WHOLE_NETWORK_LR x this lowers the whole network's lr to the lr
where it diverged / this."""
MIN_POINTS = 10
"""A sweep stopped before this many batches has no curve to read: no suggestions."""
CLEAR_FALL = 0.1
"""A curve whose lowest point is not this share below its start never clearly improved."""
RISE_FACTOR, RISE_NOISE = 1.2, 0.02
"""A flat curve starts to rise where it passes RISE_FACTOR x its floor + RISE_NOISE (more than a
batch-to-batch wobble)."""
LAG_FREE_HALF_WIDTH = 0.6
"""Half-width, in decades of lr, of the centred average the lesson rule reads the curve through."""


@dataclass(frozen=True)
class LRFindResult:
    lrs: tuple[float, ...]
    losses: tuple[float, ...]  # smoothed
    raw_losses: tuple[float, ...]
    suggestions: dict[str, float] = field(default_factory=dict)
    stopped_reason: str = ""
    cancelled: bool = False
    reasons: dict[str, str] = field(default_factory=dict)  # suggestion name -> why, one line

    def suggested(self, name: str = DEFAULT_SUGGESTION) -> float | None:
        return self.suggestions.get(name)

    def explain(self, name: str = DEFAULT_SUGGESTION) -> str:
        """One line: which rule picked the lr and why, e.g. for the window's plot."""
        return explain(self.suggestions, self.reasons, name, self.stopped_reason)


def explain(suggestions: dict[str, float], reasons: dict[str, str], name: str = DEFAULT_SUGGESTION,
            stopped_reason: str = "") -> str:
    """'1.2e-02 by the lesson rule: why', or why there is no suggestion."""
    lr = suggestions.get(name)
    if lr is None:
        return f"no suggestion ({stopped_reason})" if stopped_reason else "no suggestion"
    return f"{lr:.2e} by the {name} rule: {reasons.get(name) or explain_rule(name)}"


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


RULES = {
    "lesson": "the highest lr where the loss is still clearly improving",
    "valley": "the middle of the longest stretch where the loss falls (fastai v2)",
    "steep": "where the loss falls fastest",
    "minimum": "a tenth of the lr of the lowest loss",
}


def explain_rule(name: str) -> str:
    return RULES.get(name, name)


def lag_free(lrs: Sequence[float], raw: Sequence[float], half_width: float = LAG_FREE_HALF_WIDTH) -> np.ndarray:
    """The raw losses averaged over +-`half_width` decades of lr around each point. The shown
    curve's moving average (beta 0.98) trails the raw loss by about 50 iterations, several decades
    of a 100-iteration sweep: its minimum sits far right of where the loss really bottoms out."""
    xs = np.log10(np.asarray(lrs, dtype=np.float64))
    ys = np.asarray(raw, dtype=np.float64)
    out = np.full(len(ys), np.nan)
    for i, x in enumerate(xs):
        window = ys[np.abs(xs - x) <= half_width]
        window = window[np.isfinite(window)]
        if len(window):
            out[i] = window.mean()
    return out


def lesson_lr(lrs: Sequence[float], raw: Sequence[float],
              divisor: float = LESSON_DIVISOR) -> tuple[float, str] | None:
    """The lesson's pick, "the highest lr where the loss is still clearly improving": the lr where
    the lag-free curve bottoms out, divided by `divisor`; with a one-line reason."""
    curve = lag_free(lrs, raw)
    if len(curve) < 3 or not np.isfinite(curve).any():
        return None
    lowest = int(np.nanargmin(curve))
    start = float(np.nanmean(curve[: max(1, len(curve) // 10)]))
    if curve[lowest] > (1 - CLEAR_FALL) * start:
        # Never clearly improving (an already trained network): where the flat curve's noise
        # bottoms out says nothing (it picked the sweep's first lr once); stay well below the rise.
        limit = RISE_FACTOR * float(curve[lowest]) + RISE_NOISE
        rise = next((i for i in range(lowest, len(curve)) if curve[i] > limit), None)
        if rise is None:
            return None  # flat to the end: nothing to read
        at = float(lrs[rise])
        return at / 10, f"the loss never clearly fell: 10x below where it starts to rise ({at:.1e})"
    at = float(lrs[lowest])
    return at / divisor, (f"{divisor:g}x below where the raw loss bottoms out ({at:.1e}), "
                          "so still clearly improving")


def whole_network_lr(lrs: Sequence[float], diverged: bool) -> tuple[float, str]:
    """The lesson rule for an unfrozen network: WHOLE_NETWORK_LR unless the sweep diverged near or
    below it (then DIVERGED_MARGIN below where it did), or ended below it; with a one-line reason."""
    end = float(lrs[-1])
    if diverged and end < WHOLE_NETWORK_LR * DIVERGED_MARGIN:
        return end / DIVERGED_MARGIN, (f"the lesson's {WHOLE_NETWORK_LR:.0e} for the whole network, lowered to "
                                       f"{DIVERGED_MARGIN:g}x below where this sweep diverged ({end:.1e})")
    if not diverged and end < WHOLE_NETWORK_LR:
        return end, (f"the lesson's {WHOLE_NETWORK_LR:.0e} for the whole network is past this sweep's end: "
                     "its end")
    where = f"it diverged only at {end:.1e}" if diverged else f"the loss held up to {end:.1e}"
    return WHOLE_NETWORK_LR, f"the lesson's lr for the whole network, checked by this sweep ({where})"


def suggest_with_reasons(lrs: Sequence[float], losses: Sequence[float], num_it: int,
                         raw: Sequence[float] | None = None, whole_network: bool = False, diverged: bool = False
                         ) -> tuple[dict[str, float], dict[str, str]]:
    """Every rule's lr, and why. fastai v2's rules read the smoothed `losses` trimmed to
    [num_it//10 : -5] (the whole curve if short); the lesson rule reads the `raw` losses
    (see lesson_lr), when given, or for a `whole_network` only where the sweep ended and whether
    it `diverged` there (see whole_network_lr).

    valley (fastai v2): half-way through the first two thirds of the
    longest descending stretch of the curve; steep: steepest fall of loss against log(lr);
    minimum: the lr of lowest loss, divided by 10.
    """
    if len(lrs) < MIN_POINTS:
        return {}, {}
    lo, hi = num_it // 10, len(lrs) - 5
    if hi - lo < 5:
        lo, hi = 0, len(lrs)
    xs = np.asarray(lrs[lo:hi], dtype=np.float64)
    ys = np.asarray(losses[lo:hi], dtype=np.float64)
    finite = np.isfinite(ys)
    xs, ys = xs[finite], ys[finite]
    if len(xs) < 3:
        return {}, {}
    start, end = _longest_descent(ys.tolist())
    third = (end - start) / 3
    valley = xs[start + int(third) + int(third / 2)]
    slopes = np.diff(ys) / np.diff(np.log(xs))
    steep = xs[int(np.argmin(slopes))]
    minimum = xs[int(np.argmin(ys))] / 10
    suggestions = {"valley": float(valley), "steep": float(steep), "minimum": float(minimum)}
    reasons = {name: explain_rule(name) for name in suggestions}
    lesson = whole_network_lr(lrs, diverged) if whole_network else \
        lesson_lr(lrs, raw) if raw is not None else None
    if lesson is not None:
        suggestions, reasons = {"lesson": lesson[0], **suggestions}, {"lesson": lesson[1], **reasons}
    # Only lrs the sweep tried: nothing is known about the loss below its start.
    inside = {name: lr for name, lr in suggestions.items() if lrs[0] <= lr <= lrs[-1]}
    return inside, {name: reasons[name] for name in inside}


def suggest(lrs: Sequence[float], losses: Sequence[float], num_it: int,
            raw: Sequence[float] | None = None) -> dict[str, float]:
    """Every rule's lr (see suggest_with_reasons)."""
    return suggest_with_reasons(lrs, losses, num_it, raw)[0]


class Sweepable(Protocol):
    """What the sweep needs of a Learner (core.learner, whose lr_find runs it)."""

    @property
    def n_groups(self) -> int: ...

    @property
    def frozen_groups(self) -> int: ...

    def snapshot(self) -> Any: ...

    def restore(self, snap: Any) -> None: ...

    def training_batches(self, cycle: bool = False, emit: Emitter | None = None, cancel: CancelToken | None = None
                         ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...

    def train_step(self, x: torch.Tensor, y: torch.Tensor, lrs: Sequence[float]) -> float: ...


def run_lr_find(learner: Sweepable, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100,
                ratios: Sequence[float] | None = None, callbacks: Callback | Sequence[Callback] | None = None,
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
    reason, cancelled, diverged = f"finished all {num_it} iterations", False, False
    clock = EtaClock(num_it)
    try:
        # Precomputing the activations happens here, on the first batch: its progress is shown.
        batches = learner.training_batches(cycle=True, emit=emit, cancel=cancel)
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
                reason, diverged = f"stopped at iteration {i + 1}: the loss became NaN or infinite", True
                break
            if i >= min(10, max(MIN_BATCHES_BEFORE_DIVERGED, num_it // 10)) and smoothed > DIVERGE_FACTOR * best:
                reason, diverged = f"stopped at iteration {i + 1}: the loss exceeded {DIVERGE_FACTOR:g}x its best", True
                break
            best = min(best, smoothed)
    except Cancelled:
        reason, cancelled = "cancelled", True
    finally:
        learner.restore(snapshot)
    suggestions, reasons = suggest_with_reasons(lrs, smooth, num_it, raw, learner.frozen_groups == 0, diverged)
    emit(LRFindEnded(len(lrs), reason, cancelled, tuple(suggestions.items()), tuple(reasons.items())))
    return LRFindResult(tuple(lrs), tuple(smooth), tuple(raw), suggestions, reason, cancelled, reasons)
