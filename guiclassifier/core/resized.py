"""Reading dataset images at the size training needs, with shrunk copies of big photos on disk.

A 12-megapixel photo takes tens of milliseconds to decode, every epoch, to end up as 224 pixels.
fastai 0.7 had users resize a dataset into `tmp/` once (`data.resize`); here the loader does it
on first use: a photo whose shorter side is more than SHRINK_ABOVE times what training needs is
decoded once (JPEGs at reduced scale), shrunk, and kept as a small JPEG that later epochs read.

A copy is named by a hash of the file's path, size, modification time and the side it was
shrunk to, so an edited or replaced photo gets a new copy and never a stale one. Copies are
written to a temporary name and renamed into place (loading processes may race for one); when
the cache cannot be written (disk full, read-only) training goes on from the originals. Each
copy is an entry of the cache's least-recently-used limit (core.cache_dirs; trimmed when a fit ends).
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from guiclassifier.core.cache_dirs import cache_root, mark_used
from guiclassifier.core.errors import ImageError
from guiclassifier.core.images import open_rgb, open_rgb_and_size

SHRINK_ABOVE = 1.5
"""Photos at most this much bigger than needed are read as they are: a copy would save little."""
COPY_QUALITY = 95
COPY_FORMAT = 1  # part of each copy's name: bump when copies are made differently


def default_resized_dir() -> Path:
    return cache_root() / "resized"


def needed_side(size: int, max_zoom: float) -> int:
    """The shorter side an image needs for training at `size`, zoomed in up to `max_zoom`."""
    return math.ceil(size * max(1.0, max_zoom))


@dataclass(frozen=True)
class ImageReader:
    """Opens dataset files for training at a shorter side of `side` pixels (picklable, for loading
    processes). JPEGs are decoded at reduced scale; with a `folder`, big photos are read from
    shrunk copies kept there."""

    side: int
    folder: str | None = None

    def __call__(self, path: str) -> Image.Image:
        copy = self.copy_path(path)
        if copy is not None:
            try:
                img = open_rgb(copy)
                mark_used(copy)  # the cache's limit removes copies used longest ago first
                return img
            except ImageError:
                pass  # no copy yet (or a damaged one, or one a trim removed): made below
        img, (w, h) = open_rgb_and_size(path, draft_size=self.side)
        if copy is not None and min(w, h) > self.side * SHRINK_ABOVE:
            img = shrink(img, self.side)
            _store(img, copy)
        return img

    def describe(self) -> str:
        """What the pixels read depend on (for the keys of caches built from them); not where the
        copies are kept."""
        return f"side={self.side};copies={'yes' if self.folder is not None else 'no'};v{COPY_FORMAT}"

    def copy_path(self, path: str) -> Path | None:
        """Where the shrunk copy of `path` is or would be; None without a folder, or when the file
        cannot be seen (opening it then says why)."""
        if self.folder is None:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        key = f"{COPY_FORMAT}\0{os.path.abspath(path)}\0{st.st_size}\0{st.st_mtime_ns}\0{self.side}"
        digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32]
        return Path(self.folder) / str(self.side) / digest[:2] / f"{digest}.jpg"


def shrink(img: Image.Image, side: int) -> Image.Image:
    """`img` scaled so that its shorter side is `side` (never enlarged)."""
    w, h = img.size
    scale = side / min(w, h)
    if scale >= 1.0:
        return img
    return img.resize((max(side, round(w * scale)), max(side, round(h * scale))), Image.Resampling.LANCZOS)


def _store(img: Image.Image, copy: Path) -> None:
    """Write the copy atomically; a cache that cannot be written is not an error."""
    try:
        copy.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{copy.stem}.", suffix=".tmp", dir=copy.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                img.save(f, "JPEG", quality=COPY_QUALITY)
            os.replace(tmp, copy)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass
