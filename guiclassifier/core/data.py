"""Dataset folders: scanning and checking the files, the train/valid split, loaders.

Two layouts are accepted:
- fast.ai: ``ROOT/train/<class>/*``, ``ROOT/valid/<class>/*`` (``val`` works too), optional flat
  ``ROOT/test/*``; without a valid folder the train folder is split by `valid_pct`;
- one folder of class folders, ``ROOT/<class>/*``, split seeded and stratified by `valid_pct`.
Classes are the sorted folder names; hidden folders and ``_quarantine`` (where the Interpret tab
moves images out of the dataset, see core.curate) are not classes. Files that cannot be used are
listed in the scan report with the reason, never fatal; a dataset that cannot train at all raises
DataError naming the folder. A rescan given the previous report decodes only new or changed files.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
import random
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from guiclassifier.core.augment import (
    AUGMENTS,
    Transform,
    train_transform,
    valid_transform,
)
from guiclassifier.core.cancel import CancelToken
from guiclassifier.core.errors import DataError, ImageError
from guiclassifier.core.events import Callback, Emitter, ScanProgress
from guiclassifier.core.image_memory import ImageMemory, RememberingReader, fits_in_memory
from guiclassifier.core.images import open_rgb
from guiclassifier.core.main_script import processes_would_rerun_script
from guiclassifier.core.progress import EtaClock
from guiclassifier.core.resized import ImageReader, default_resized_dir, needed_side
from guiclassifier.core.text import plural

VALID_DIR_NAMES = ("valid", "val")
QUARANTINE_DIR = "_quarantine"
SCAN_DRAFT_SIZE = 64
"""Scanning decodes each file to prove it is readable; JPEGs are decoded at reduced size."""


@dataclass(frozen=True)
class Item:
    path: str
    label: int


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass(frozen=True)
class ScanReport:
    """What a dataset folder holds: classes, the usable files of each split, and what was skipped."""

    root: str
    layout: str  # "fastai" or "class_folders"
    classes: tuple[str, ...]
    train: tuple[Item, ...]
    valid: tuple[Item, ...]
    test: tuple[str, ...] = ()
    skipped: tuple[SkippedFile, ...] = ()
    notes: tuple[str, ...] = ()
    scanned_at: float = 0.0  # time.time() when the scan began: files older than this were checked
    decoded: int = 0  # files decoded by this scan (a rescan trusts unchanged files it knew)
    valid_pct: float = 0.2  # the split's share, used when there is no valid/ folder

    def counts(self) -> dict[str, tuple[int, int]]:
        """Class name -> (train count, valid count)."""
        result = {name: [0, 0] for name in self.classes}
        for split, items in enumerate((self.train, self.valid)):
            for item in items:
                result[self.classes[item.label]][split] += 1
        return {name: (t, v) for name, (t, v) in result.items()}


def _list_files(folder: Path, skipped: list[SkippedFile]) -> list[Path]:
    """Every regular file under `folder`, sorted; folder symlinks are reported, not followed."""
    found: list[Path] = []

    def on_error(exc: OSError) -> None:
        skipped.append(SkippedFile(str(exc.filename or folder), f"folder cannot be read ({exc.strerror})"))

    for dirpath, dirnames, filenames in os.walk(folder, onerror=on_error, followlinks=False):
        base = Path(dirpath)
        for name in list(dirnames):
            if (base / name).is_symlink():
                skipped.append(SkippedFile(str(base / name), "link to a folder, not followed"))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not (base / d).is_symlink())
        for name in filenames:
            path = base / name
            if name.startswith("."):
                skipped.append(SkippedFile(str(path), "hidden file"))
            elif not path.is_file():
                skipped.append(SkippedFile(str(path), "not a regular file (broken link?)"))
            else:
                found.append(path)
    return sorted(found)


class _ImageChecker:
    """Decodes files on threads to prove they are readable, reporting progress over the whole scan."""

    CHUNK = 64

    def __init__(self, total: int, emit: Emitter, cancel: CancelToken,
                 trusted: frozenset[str] = frozenset(), trusted_before: float = 0.0) -> None:
        self.clock = EtaClock(total)
        self.emit = emit
        self.cancel = cancel
        self.trusted = trusted
        self.trusted_before = trusted_before
        self.done = 0
        self.decoded = 0

    def _known_good(self, path: Path) -> bool:
        """Readable at the previous scan and not changed since (ctime: a file replaced or moved in
        gets a new one even when its modification time is old)."""
        if str(path) not in self.trusted:
            return False
        try:
            return path.stat().st_ctime < self.trusted_before
        except OSError:
            return False

    @staticmethod
    def _reason(path: Path) -> str | None:
        try:
            open_rgb(path, draft_size=SCAN_DRAFT_SIZE)
            return None
        except ImageError as exc:
            return exc.reason

    def __call__(self, paths: Sequence[Path]) -> list[str | None]:
        """For each path, None if it decodes as an image, else the reason it does not."""
        reasons: list[str | None] = []
        # Pillow releases the GIL while decoding, so threads overlap the work.
        with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) + 1)) as pool:
            for start in range(0, len(paths), self.CHUNK):
                self.cancel.raise_if_cancelled()
                chunk = paths[start:start + self.CHUNK]
                known = [self._known_good(p) for p in chunk]
                decoded = iter(pool.map(self._reason, [p for p, k in zip(chunk, known) if not k]))
                reasons.extend(None if k else next(decoded) for k in known)
                self.decoded += known.count(False)
                self.done += len(chunk)
                self.emit(ScanProgress(self.done, self.clock.total, self.clock.elapsed(), self.clock.eta(self.done)))
        return reasons


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and p.name != QUARANTINE_DIR)


def _scan_class_folders(folder: Path, classes: Sequence[str], listed: dict[Path, list[Path]],
                        check: _ImageChecker, skipped: list[SkippedFile]) -> list[Item]:
    """Usable items of every class folder under `folder`; an empty class folder is an error."""
    items: list[Item] = []
    for label, name in enumerate(classes):
        class_dir = folder / name
        if not class_dir.is_dir():
            continue
        files = listed[class_dir]
        reasons = check(files)
        good = [Item(str(p), label) for p, r in zip(files, reasons) if r is None]
        bad = [SkippedFile(str(p), r) for p, r in zip(files, reasons) if r is not None]
        skipped.extend(bad)
        if not good:
            detail = f" ({plural(len(bad), 'file')} could not be read)" if bad else ""
            raise DataError(f"The class folder {class_dir} has no usable images{detail}. "
                            "Add images to it or remove the folder.")
        items.extend(good)
    return items


def split_items(items: Sequence[Item], valid_pct: float, seed: int) -> tuple[list[Item], list[Item]]:
    """Stratified, seeded split: about `valid_pct` of each class goes to valid (at least one of a
    class with two or more images, never the last one)."""
    if not 0.0 < valid_pct < 1.0:
        raise DataError(f"valid_pct must be between 0 and 1 (got {valid_pct})")
    rng = random.Random(seed)
    train: list[Item] = []
    valid: list[Item] = []
    for label in sorted({i.label for i in items}):
        of_class = sorted((i for i in items if i.label == label), key=lambda i: i.path)
        rng.shuffle(of_class)
        n_valid = min(len(of_class) - 1, max(1, round(len(of_class) * valid_pct))) if len(of_class) > 1 else 0
        valid.extend(of_class[:n_valid])
        train.extend(of_class[n_valid:])
    return train, valid


def scan_folder(root: str | Path, valid_pct: float = 0.2, seed: int = 42,
                callbacks: Callback | Sequence[Callback] | None = None, cancel: CancelToken | None = None,
                previous: ScanReport | None = None) -> ScanReport:
    """Read a dataset folder into a ScanReport; raise DataError when it cannot be trained on.
    Every file is decoded once to prove it is readable (ScanProgress events report on that),
    except files that `previous` found readable and that have not been modified since."""
    started = time.time()
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"The dataset folder {root} does not exist.")
    if not root.is_dir():
        raise DataError(f"{root} is a file; choose the folder that holds the class folders.")
    skipped: list[SkippedFile] = []
    notes: list[str] = []
    train_dir = root / "train"
    layout = "fastai" if train_dir.is_dir() else "class_folders"
    source = train_dir if layout == "fastai" else root
    classes = tuple(p.name for p in _class_dirs(source))
    if not classes:
        raise DataError(f"No class folders in {source}. Put each class's images in its own folder, "
                        f"e.g. {source / 'cats'} and {source / 'dogs'}.")
    if len(classes) == 1:
        raise DataError(f"Only one class ({classes[0]}) in {source}: a classifier needs at least two "
                        "class folders.")

    valid_dir = next((root / n for n in VALID_DIR_NAMES if (root / n).is_dir()), None) \
        if layout == "fastai" else None
    if layout == "class_folders":
        for stray in (p for p in source.iterdir() if p.is_file()):
            skipped.append(SkippedFile(str(stray), "not inside a class folder"))
    # List everything first (cheap) so that progress of the decoding pass has a total.
    folders = [source / c for c in classes]
    folders += [valid_dir / c for c in classes] if valid_dir is not None else []
    folders += [root / "test"] if layout == "fastai" else []
    listed = {f: _list_files(f, skipped) for f in folders if f.is_dir()}
    trusted = frozenset(i.path for i in (*previous.train, *previous.valid)) | frozenset(previous.test) \
        if previous is not None and previous.root == str(root) else frozenset()
    check = _ImageChecker(sum(map(len, listed.values())), Emitter(callbacks), cancel or CancelToken(),
                          trusted, previous.scanned_at if previous is not None else 0.0)
    train_items = _scan_class_folders(source, classes, listed, check, skipped)
    if valid_dir is not None:
        unknown = [p.name for p in _class_dirs(valid_dir) if p.name not in classes]
        if unknown:
            raise DataError(f"{valid_dir} has class folders that {train_dir} lacks: {', '.join(unknown)}.")
        valid_items = _scan_class_folders(valid_dir, classes, listed, check, skipped)
        missing = [c for c in classes if not (valid_dir / c).is_dir()]
        if missing:
            notes.append(f"no validation images for: {', '.join(missing)}")
        if not valid_items:
            raise DataError(f"The validation folder {valid_dir} has no class folders with images.")
    else:
        train_items, valid_items = split_items(train_items, valid_pct, seed)
        notes.append(f"validation set: {round(valid_pct * 100)}% of each class, split with seed {seed}")

    test: list[str] = []
    if root / "test" in listed:
        files = listed[root / "test"]
        for path, reason in zip(files, check(files)):
            if reason is None:
                test.append(str(path))
            else:
                skipped.append(SkippedFile(str(path), reason))
    return ScanReport(str(root), layout, classes, tuple(train_items), tuple(valid_items), tuple(test),
                      tuple(skipped), tuple(notes), started, check.decoded, valid_pct)


@dataclass(frozen=True)
class Batch:
    """A collated batch; `failed` lists files that could not be read this time (skipped)."""

    x: torch.Tensor | None
    y: torch.Tensor | None
    failed: tuple[SkippedFile, ...] = field(default=())

    def __len__(self) -> int:
        return 0 if self.y is None else len(self.y)


class ImageDataset(Dataset):
    """(path, label) items decoded to RGB and transformed; a file that fails is reported, not fatal."""

    def __init__(self, items: Sequence[Item], transform: Transform,
                 reader: Callable[[str], Image.Image] = open_rgb) -> None:
        self.items = list(items)
        self.transform = transform
        self.reader = reader

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | SkippedFile:
        item = self.items[index]
        try:
            return self.transform(self.reader(item.path)), item.label
        except ImageError as exc:
            return SkippedFile(item.path, exc.reason)


def collate(samples: list[tuple[torch.Tensor, int] | SkippedFile]) -> Batch:
    good = [s for s in samples if not isinstance(s, SkippedFile)]
    failed = tuple(s for s in samples if isinstance(s, SkippedFile))
    if not good:
        return Batch(None, None, failed)
    return Batch(torch.stack([x for x, _ in good]), torch.tensor([y for _, y in good]), failed)


WORKER_STARTS = ("fork", "forkserver", "spawn")
_FORKSERVER_PRELOAD = ["guiclassifier.core.data"]  # imports torch, torchvision, PIL


def loader_context(worker_start: str | None) -> multiprocessing.context.BaseContext | None:
    """The multiprocessing context that starts loading processes; None is the platform default.

    "forkserver" is for multi-threaded hosts such as the window: a fork copies locks that other
    threads hold at that moment, whereas forkserver children are forked from a clean,
    single-threaded server that has torch already imported, so they start in milliseconds."""
    if worker_start is None:
        return None
    if worker_start not in WORKER_STARTS:
        raise DataError(f"unknown way to start loading processes {worker_start!r}: "
                        f"choose one of {', '.join(WORKER_STARTS)}")
    context = multiprocessing.get_context(worker_start)
    if worker_start == "forkserver":
        context.set_forkserver_preload(_FORKSERVER_PRELOAD)  # only read when the server starts
    return context


def start_loader_server(worker_start: str | None) -> None:
    """Start the forkserver now (it imports torch, about 2 s of one core) so that the first epoch
    does not wait for it; other start methods need nothing."""
    loader_context(worker_start)
    if worker_start == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()  # returns once the server is launched, not when it is ready


def make_loader(items: Sequence[Item], transform: Transform, bs: int, shuffle: bool = False,
                num_workers: int = 0, pin_memory: bool = False, for_training: bool | None = None,
                generator: torch.Generator | None = None, worker_start: str | None = None,
                reader: Callable[[str], Image.Image] = open_rgb) -> DataLoader:
    """A DataLoader yielding Batch objects. Shuffling draws from torch's global generator.

    `for_training` (default: same as shuffle) drops a final batch of one image, which breaks
    BatchNorm in training mode. Unshuffled loaders get a private generator unless one is given:
    validation, precompute and prediction must not draw from the global generator, or merely
    evaluating would change what the next training run does. `worker_start` picks how loading
    processes start (see loader_context); `reader` opens the files (ImageData's: core.resized.ImageReader)."""
    for_training = shuffle if for_training is None else for_training
    if num_workers > 0 and processes_would_rerun_script(worker_start):
        num_workers = 0
    return DataLoader(
        ImageDataset(items, transform, reader), batch_size=bs, shuffle=shuffle,
        drop_last=for_training and len(items) % bs == 1 and len(items) > 1,
        num_workers=num_workers, pin_memory=pin_memory, collate_fn=collate,
        multiprocessing_context=loader_context(worker_start) if num_workers > 0 else None,
        worker_init_fn=ignore_interrupts if num_workers > 0 else None,
        generator=generator if generator is not None or shuffle else torch.Generator().manual_seed(0))


def ignore_interrupts(_worker_id: int) -> None:
    """In a loading process: Ctrl-C is the main process's to handle. A forked worker inherits
    the CLI's handler, so one Ctrl-C printed "stopping after this batch" once per process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def default_num_workers() -> int:
    """Loader processes: leave one core for the training loop itself."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))


class ImageData:
    """A scanned dataset plus how to feed it: image size, batch size, augmentation, workers, and
    whether big photos are read from shrunk copies (`resized_cache`, see core.resized).

    `num_workers` None (the default) loads in the training process, keeping the decoded images in
    memory between epochs, when they fit (core.image_memory); otherwise default_num_workers()
    loading processes decode them every epoch. A number is used as given: 0 loads in-line (with
    the memory), more always uses that many processes."""

    def __init__(self, report: ScanReport, size: int = 224, bs: int = 64, augment: str = "side_on",
                 max_zoom: float = 1.1, seed: int = 42, num_workers: int | None = None,
                 worker_start: str | None = None, resized_cache: bool = True) -> None:
        if augment not in AUGMENTS:
            raise DataError(f"unknown augmentation {augment!r}: choose one of {', '.join(AUGMENTS)}")
        if size < 16:
            raise DataError(f"image size {size} is too small: use 16 pixels or more")
        if bs < 1:
            raise DataError(f"batch size must be at least 1 (got {bs})")
        if max_zoom < 1.0:
            raise DataError(f"max_zoom must be 1.0 or more (got {max_zoom})")
        self.report = report
        self.size = size
        self.bs = bs
        self.augment = augment
        self.max_zoom = max_zoom
        self.seed = seed
        if num_workers is None:
            fits = fits_in_memory(len(report.train) + len(report.valid), needed_side(size, max_zoom))
            num_workers = 0 if fits else default_num_workers()
        self.num_workers = num_workers
        self.memory = ImageMemory()
        loader_context(worker_start)  # refuse an unknown start method now, not at the first epoch
        self.worker_start = worker_start
        self.resized_cache = resized_cache

    @classmethod
    def from_folder(cls, path: str | Path, size: int = 224, bs: int = 64, augment: str = "side_on",
                    max_zoom: float = 1.1, valid_pct: float = 0.2, seed: int = 42,
                    num_workers: int | None = None, callbacks: Callback | Sequence[Callback] | None = None,
                    cancel: CancelToken | None = None, worker_start: str | None = None,
                    previous: ScanReport | None = None, resized_cache: bool = True) -> ImageData:
        """Scan `path` (either layout) and build the dataset; see the module docstring."""
        return cls(scan_folder(path, valid_pct, seed, callbacks, cancel, previous), size=size, bs=bs,
                   augment=augment, max_zoom=max_zoom, seed=seed, num_workers=num_workers,
                   worker_start=worker_start, resized_cache=resized_cache)

    @property
    def path(self) -> str:
        return self.report.root

    def settings(self) -> dict[str, Any]:
        """The from_folder arguments, beside the path, that open this dataset the same way again."""
        return {"size": self.size, "bs": self.bs, "augment": self.augment, "max_zoom": self.max_zoom,
                "seed": self.seed, "valid_pct": self.report.valid_pct, "resized_cache": self.resized_cache}

    @property
    def classes(self) -> tuple[str, ...]:
        return self.report.classes

    @property
    def c(self) -> int:
        """Number of classes (fastai's name)."""
        return len(self.report.classes)

    @property
    def train_items(self) -> tuple[Item, ...]:
        return self.report.train

    @property
    def valid_items(self) -> tuple[Item, ...]:
        return self.report.valid

    def train_tfm(self) -> Transform:
        return train_transform(self.augment, self.size, self.max_zoom)

    def valid_tfm(self) -> Transform:
        return valid_transform(self.size)

    def reader(self) -> ImageReader:
        """How the loaders open files at this size (and zoom)."""
        folder = str(default_resized_dir()) if self.resized_cache else None
        return ImageReader(needed_side(self.size, self.max_zoom), folder)

    def loader(self, items: Sequence[Item], transform: Transform, shuffle: bool = False,
               pin_memory: bool = False, bs: int | None = None, for_training: bool | None = None,
               generator: torch.Generator | None = None) -> DataLoader:
        """A DataLoader of this dataset's settings yielding Batch objects (see make_loader). Loading
        in-line, decoded images are kept for the next epoch (core.image_memory)."""
        read = self.reader() if self.num_workers > 0 else RememberingReader(self.reader(), self.memory)
        return make_loader(items, transform, bs or self.bs, shuffle, self.num_workers, pin_memory,
                           for_training, generator, self.worker_start, read)

    def train_loader(self, augment: bool = True, pin_memory: bool = False, order: Sequence[Item] | None = None,
                     generator: torch.Generator | None = None) -> DataLoader:
        """One epoch of training batches (augmented with `augment`): shuffled, or in `order` (a
        process's shard under torchrun) with `generator` seeding its loading processes."""
        transform = self.train_tfm() if augment else self.valid_tfm()
        items = self.train_items if order is None else order
        return self.loader(items, transform, shuffle=order is None, pin_memory=pin_memory, for_training=True,
                           generator=generator)

    def valid_loader(self, pin_memory: bool = False) -> DataLoader:
        return self.loader(self.valid_items, self.valid_tfm(), pin_memory=pin_memory)

