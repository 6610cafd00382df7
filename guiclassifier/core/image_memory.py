"""Decoded dataset images kept in memory between epochs, and when loading runs in-line.

benchmarks/README.md, section 15: on a 2-core CPU an unfrozen demo epoch took 5.9 s with one
loading process, 4.1 s loading in the training process and 3.5 s from batches already in memory.
The loading process ran on the cores PyTorch's threads were using, and each step waited for the
slower thread; every epoch also decoded every file again. So a dataset whose decoded images fit
the budget is read once, kept here, and loaded in the training process; a bigger one is loaded by
processes as before. Only the decoded pixels are kept: augmentation still draws afresh every
epoch. An image kept here is used as it was read until the dataset is opened again (a rescan).

Augmenting per batch (one affine grid_sample, as fastai v2 does) was tried too: 0.1-0.2 s an
epoch instead of PIL's 0.5-0.85 s, with the same per-image statistics, but head training ended
worse on 4 of 4 seeds and the cause was not found, so PIL's transforms stay (section 15)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image

MEMORY_BUDGET = 2 << 30
"""Bytes of decoded pixels a dataset may keep in memory (at most a quarter of the machine's RAM)."""
ASSUMED_ASPECT = 4 / 3
"""For the estimate before anything is decoded: a photo's longer side to its shorter one."""


def machine_memory() -> int | None:
    """Physical memory in bytes; None where the platform does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def memory_budget() -> int:
    ram = machine_memory()
    return MEMORY_BUDGET if ram is None else min(MEMORY_BUDGET, ram // 4)


def fits_in_memory(n_images: int, side: int, budget: int | None = None) -> bool:
    """Whether `n_images` decoded at a shorter side of `side` pixels (RGB, 4:3) fit the budget."""
    per_image = 3 * side * round(side * ASSUMED_ASPECT)
    return n_images * per_image <= (memory_budget() if budget is None else budget)


@dataclass
class ImageMemory:
    """Decoded images by path, up to `budget` bytes of pixels; past it, images are not kept."""

    budget: int = field(default_factory=memory_budget)
    _images: dict[str, Image.Image] = field(default_factory=dict, repr=False)
    _bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __len__(self) -> int:
        return len(self._images)

    @property
    def bytes(self) -> int:
        return self._bytes

    def get(self, path: str) -> Image.Image | None:
        with self._lock:
            return self._images.get(path)

    def keep(self, path: str, img: Image.Image) -> None:
        size = img.width * img.height * len(img.getbands())
        with self._lock:
            if path not in self._images and self._bytes + size <= self.budget:
                self._images[path] = img
                self._bytes += size


@dataclass(frozen=True)
class RememberingReader:
    """A reader (core.resized.ImageReader) whose results are kept in `memory` for next time."""

    read: Callable[[str], Image.Image]
    memory: ImageMemory

    def __call__(self, path: str) -> Image.Image:
        img = self.memory.get(path)
        if img is None:
            img = self.read(path)  # raises ImageError for a file that cannot be used: not kept
            self.memory.keep(path, img)
        return img
