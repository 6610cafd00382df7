"""Events the engine sends to callbacks. Frozen, plain numbers only: safe to pass between threads."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """Base class of every engine event."""


@dataclass(frozen=True)
class ScanProgress(Event):
    done: int
    total: int
    elapsed: float
    eta: float | None


@dataclass(frozen=True)
class PrecomputeStarted(Event):
    split: str
    total: int


@dataclass(frozen=True)
class PrecomputeProgress(Event):
    split: str
    done: int
    total: int
    elapsed: float
    eta: float | None


@dataclass(frozen=True)
class PrecomputeEnded(Event):
    split: str
    total: int
    from_cache: bool
    elapsed: float
    computed: int = 0  # images that went through the body; the others came from the cache


@dataclass(frozen=True)
class AuditProgress(Event):
    """A step of the data audit (core.audit): "Reading images", "Comparing images", "Checking labels"."""

    step: str
    done: int
    total: int
    elapsed: float
    eta: float | None


@dataclass(frozen=True)
class FitStarted(Event):
    total_epochs: int
    batches_per_epoch: int
    lrs: tuple[float, ...]
    n_cycle: int
    cycle_len: int | None
    cycle_mult: int
    precompute: bool
    trainable_groups: int


@dataclass(frozen=True)
class EpochStarted(Event):
    epoch: int
    total_epochs: int


@dataclass(frozen=True)
class BatchEnded(Event):
    epoch: int
    batch: int
    batches_per_epoch: int
    step: int
    total_steps: int
    loss: float
    smooth_loss: float
    lrs: tuple[float, ...]
    n_images: int
    elapsed: float
    eta: float | None


@dataclass(frozen=True)
class EpochEnded(Event):
    epoch: int
    total_epochs: int
    train_loss: float
    valid_loss: float
    accuracy: float
    epoch_time: float
    elapsed: float
    eta: float | None


@dataclass(frozen=True)
class CycleEnded(Event):
    """An SGDR cycle ended (lr annealed to ~0): its validation result, and whether it is the
    best so far. With until_overfit, `stopping` says the fit ends here (this cycle was worse)."""

    cycle: int  # from 0
    n_cycles: int  # planned (the most, with until_overfit)
    epochs_done: int
    valid_loss: float
    accuracy: float
    best_cycle: int
    stopping: bool


@dataclass(frozen=True)
class FitEnded(Event):
    epochs_done: int
    cancelled: bool
    diverged: bool
    message: str
    elapsed: float
    kept_cycle: int | None = None  # with until_overfit: the cycle whose weights were kept (from 0)


@dataclass(frozen=True)
class LRFindStarted(Event):
    start_lr: float
    end_lr: float
    num_it: int


@dataclass(frozen=True)
class LRFindPoint(Event):
    iteration: int
    num_it: int
    lr: float
    loss: float
    smooth_loss: float
    elapsed: float
    eta: float | None


@dataclass(frozen=True)
class LRFindEnded(Event):
    points: int
    stopped_reason: str
    cancelled: bool
    suggestions: tuple[tuple[str, float], ...]
    reasons: tuple[tuple[str, str], ...] = ()  # why each suggestion, one line


@dataclass(frozen=True)
class FileSkipped(Event):
    """A file that could not be read in the middle of work (deleted, truncated since the scan);
    the work went on without it."""

    path: str
    reason: str
    during: str  # "training", "validation" or "precompute"


@dataclass(frozen=True)
class PredictProgress(Event):
    done: int
    total: int
    elapsed: float
    eta: float | None


@dataclass(frozen=True)
class FilePredicted(Event):
    """One file's result from predict_files: probabilities, or the reason it was skipped."""

    index: int
    path: str
    probabilities: tuple[float, ...] | None
    error: str | None
    seconds: float
    unfamiliar: bool
    threshold: float = 0.0  # the model's confidence threshold: below it, "not sure"


@dataclass(frozen=True)
class StageStarted(Event):
    """A recipe stage begins (index counts from 0)."""

    index: int
    total: int
    description: str


@dataclass(frozen=True)
class StageEnded(Event):
    index: int
    total: int
    description: str
    summary: str
    cancelled: bool


Callback = Callable[[Event], None]


class Emitter:
    """Calls each callback with each event; the engine holds one per long call."""

    def __init__(self, callbacks: Callback | Iterable[Callback] | None) -> None:
        if callbacks is None:
            self._callbacks: tuple[Callback, ...] = ()
        elif callable(callbacks):
            self._callbacks = (callbacks,)
        else:
            self._callbacks = tuple(callbacks)

    def __call__(self, event: Event) -> None:
        for callback in self._callbacks:
            callback(event)

    def also(self, callback: Callback) -> Emitter:
        """This emitter plus one more callback."""
        return Emitter((*self._callbacks, callback))
