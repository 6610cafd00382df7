"""The settings a job starts with, read once on the GUI thread (the worker never reads widgets)."""

from __future__ import annotations

import multiprocessing
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from guiclassifier.core.data import ImageData
    from guiclassifier.core.learner import Learner

LOADER_START = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
"""How the window starts image-loading processes: forking a multi-threaded Qt process directly is
not safe (a forked child inherits locks held by other threads), so forkserver where the platform
has one and spawn elsewhere (Windows); see core.data.loader_context."""


@dataclass(frozen=True)
class DataSettings:
    """How a dataset is read and batched."""

    size: int
    bs: int
    augment: str
    valid_pct: float
    seed: int
    resized_cache: bool
    max_zoom: float = 1.1
    num_workers: int | None = None  # None: core.data's default
    worker_start: str = LOADER_START

    def scan_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ImageData.from_folder."""
        return asdict(self)

    def apply(self, scanned: ImageData) -> ImageData:
        """The scanned dataset with these settings (size, batch size, augmentation need no rescan)."""
        from guiclassifier.core.data import ImageData

        return ImageData(scanned.report, size=self.size, bs=self.bs, augment=self.augment, max_zoom=self.max_zoom,
                         seed=self.seed, num_workers=self.num_workers, worker_start=self.worker_start,
                         resized_cache=self.resized_cache)


@dataclass(frozen=True)
class ModelKey:
    """Settings that need a new model when they change (the others are applied in place)."""

    arch: str
    weights: str  # "auto", "random" or a weights file
    device: str


@dataclass(frozen=True)
class RunSettings:
    """What a training job starts from: the data as set now, the chosen model settings, and the
    project's current model with the settings it was made with."""

    data: ImageData
    key: ModelKey
    current: Learner | None
    current_key: ModelKey | None
    precision: str = "auto"  # core.precision; applied in place, it needs no new model

    def learner(self, fresh: bool = False) -> Learner:
        """On the worker: the current learner with the current data settings, or a new one (always
        a new one with `fresh`: the pretrained weights)."""
        from guiclassifier.core.learner import Learner

        current = self.current
        if not fresh and current is not None and self.key == self.current_key \
                and tuple(self.data.classes) == current.classes:
            current.attach_data(self.data)
            if current.precision.asked != self.precision:
                current.set_precision(self.precision)
            return current
        weights = None if self.key.weights == "random" else self.key.weights
        return Learner.pretrained(self.key.arch, self.data, precompute=False, weights=weights,
                                  device=self.key.device, seed=self.data.seed, precision=self.precision)
