"""The activation cache of the frozen body (fastai's precompute=True), on disk and memory-mapped.

An entry is keyed by everything its numbers depend on: the body's weights (a digest of the
tensors), how images become pixels (the image size, reduced-scale decoding, shrunk copies: see
core.resized), the cache format (bumped when features are computed differently), and each
file's path, label, size and modification time. Change any of
them and the key changes, so a stale entry can never be served (fastai 0.7 keyed by file names
and served stale activations). Entries are written to a temporary folder and renamed into place,
so a cancelled run or a second process never leaves a half-written entry behind. A job holds
a lease on each entry it reads (core.cache_lease), so trimming the cache to its limit (done after
an entry is written; core.cache_dirs) never removes one in use.

A new entry copies the rows of files that an older entry of the same body and reading already holds
(same path, size and modification time), so moving, adding or fixing a few images recomputes only
those images.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from guiclassifier.core.cache_dirs import USED_MARK, cache_root, mark_used, trim_caches_quietly
from guiclassifier.core.cache_lease import Lease, hold
from guiclassifier.core.cancel import CancelToken
from guiclassifier.core.data import ImageData, Item
from guiclassifier.core.device import to_device
from guiclassifier.core.distributed import DistInfo, shard
from guiclassifier.core.events import (
    Emitter,
    FileSkipped,
    PrecomputeEnded,
    PrecomputeProgress,
    PrecomputeStarted,
)
from guiclassifier.core.models import Classifier
from guiclassifier.core.precision import FLOAT32, Precision
from guiclassifier.core.progress import EtaClock

CACHE_FORMAT = 2
"""2: features computed in the channels-last layout (they differ from 1's in the last bits, and
training from either diverges over epochs: a run must not depend on what an older version cached)."""
STAMPS_FILE = "stamps.json"


def default_cache_dir() -> Path:
    return cache_root() / "activations"


def body_digest(model: Classifier) -> str:
    """sha256 over the body's parameters and buffers: changes whenever the body's output can."""
    digest = hashlib.sha256()
    for module in (model.normalize, model.stem, model.trunk):
        for name, tensor in module.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def file_stamp(path: str) -> str:
    """What a file's features depend on besides the body: its path, size and modification time."""
    try:
        st = os.stat(path)
        return f"{path}\0{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        return f"{path}\0missing"


def reading(data: ImageData) -> str:
    """How `data` turns files into the body's input: part of every key."""
    return f"size={data.size};{data.reader().describe()}"


def cache_key(items: Sequence[Item], how: str, digest: str, stamps: Sequence[str]) -> str:
    """`how`: reading(data); `stamps`: file_stamp of each item."""
    h = hashlib.sha256(f"format={CACHE_FORMAT};{how};body={digest}\n".encode())
    for item, stamp in zip(items, stamps):
        h.update(f"{stamp}\0{item.label}\n".encode())
    return h.hexdigest()[:32]


def _reusable_rows(cache_dir: Path, digest: str, how: str, stamps: Sequence[str], opened: list[Activations]
                   ) -> dict[int, tuple[np.ndarray, int]]:
    """For each position of `stamps` that an older entry of the same body and reading computed:
    (that entry's features, its row). Entries that cannot be read are passed over; those read
    are added to `opened`, which holds their leases."""
    wanted = {stamp: i for i, stamp in enumerate(stamps) if not stamp.endswith("\0missing")}
    found: dict[int, tuple[np.ndarray, int]] = {}
    if not cache_dir.is_dir():
        return found
    for folder in cache_dir.iterdir():
        if len(found) == len(wanted):
            break
        if folder.name.startswith("."):  # an entry still being written
            continue
        try:
            meta = json.loads((folder / "meta.json").read_text())
            if meta.get("body") != digest or meta.get("how") != how or meta.get("format") != CACHE_FORMAT:
                continue
            old = json.loads((folder / STAMPS_FILE).read_text())
            entry = _open_entry(folder)
        except (OSError, ValueError):
            continue
        opened.append(entry)  # leased until the caller has copied the rows
        for row in entry.rows.tolist():
            i = wanted.get(old[row]) if row < len(old) else None
            if i is not None and i not in found:
                found[i] = (entry.features, row)
    return found


@dataclass(frozen=True)
class Activations:
    """Cached pooled features of one split; `rows` are the usable rows (files read fine)."""

    features: np.ndarray  # (n_items, n_features) float32, memory-mapped
    labels: np.ndarray  # (n_items,) int64
    rows: np.ndarray  # indices of rows whose image could be read
    path: Path
    lease: Lease | None = field(default=None, compare=False, repr=False)  # the entry is in use while held

    def __len__(self) -> int:
        return len(self.rows)

    def batches(self, bs: int, shuffle: bool, info: DistInfo | None = None
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(features, labels) batches; shuffling draws from torch's global generator. With
        `info`, this process's shard of the (identically shuffled) epoch."""
        order = torch.randperm(len(self.rows)).numpy() if shuffle else np.arange(len(self.rows))
        order = np.asarray(shard(order, info), dtype=np.int64)
        n = len(order)
        stop = n - 1 if shuffle and n % bs == 1 and n > 1 else n  # no batch of one for BatchNorm
        for start in range(0, stop, bs):
            # Sorted row order reads the memory map sequentially; the batch order is irrelevant.
            rows = self.rows[np.sort(order[start:start + bs])]
            yield torch.from_numpy(np.ascontiguousarray(self.features[rows])), torch.from_numpy(self.labels[rows])

    def n_batches(self, bs: int, shuffle: bool, info: DistInfo | None = None) -> int:
        n = len(shard(range(len(self.rows)), info))
        stop = n - 1 if shuffle and n % bs == 1 and n > 1 else n
        return (stop + bs - 1) // bs


def _open_entry(folder: Path) -> Activations:
    """The entry in `folder`, leased and marked used; FileNotFoundError when it is gone (removed by a
    trim the moment before its lease was taken)."""
    lease = hold(folder)
    mark = folder / USED_MARK["activations"]
    if not mark.is_file():
        lease.close()
        raise FileNotFoundError(mark)
    mark_used(mark)
    return Activations(np.load(folder / "features.npy", mmap_mode="r"), np.load(folder / "labels.npy"),
                       np.load(folder / "rows.npy"), folder, lease)


def activations(model: Classifier, data: ImageData, split: str, items: Sequence[Item], device: torch.device,
                emit: Emitter, cancel: CancelToken, cache_dir: Path | None = None,
                digest: str | None = None, precision: Precision = FLOAT32) -> Activations:
    """The body's pooled activations for `items` (validation transforms), from cache or computed."""
    cache_dir = cache_dir or default_cache_dir()
    digest = digest or body_digest(model)
    stamps = [file_stamp(i.path) for i in items]
    how = reading(data) + (f";precision={precision.name}" if precision.mixed else "")
    key = cache_key(items, how, digest, stamps)
    folder = cache_dir / key
    emit(PrecomputeStarted(split, len(items)))
    clock = EtaClock(len(items))
    if (folder / "meta.json").is_file():
        try:
            entry = _open_entry(folder)
            emit(PrecomputeEnded(split, len(items), True, clock.elapsed()))
            return entry
        except (OSError, ValueError):
            shutil.rmtree(folder, ignore_errors=True)  # damaged entry: rebuild it below

    cache_dir.mkdir(parents=True, exist_ok=True)
    older: list[Activations] = []
    reused = _reusable_rows(cache_dir, digest, how, stamps, older)
    todo = [i for i in range(len(items)) if i not in reused]
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache_dir))
    try:
        feats = np.lib.format.open_memmap(tmp / "features.npy", mode="w+", dtype=np.float32,
                                          shape=(len(items), model.n_features))
        labels = np.array([i.label for i in items], dtype=np.int64)
        ok = np.zeros(len(items), dtype=bool)
        for i, (old_features, row) in reused.items():
            feats[i] = old_features[row]
            ok[i] = True
        if reused:
            emit(PrecomputeProgress(split, len(reused), len(items), clock.elapsed(), None))
        _compute_rows(model, data, [items[i] for i in todo], todo, feats, ok, device, precision,
                      lambda done: emit(PrecomputeProgress(split, len(reused) + done, len(items), clock.elapsed(),
                                                           clock.eta(len(reused) + done))), emit, cancel)
        feats.flush()
        del feats
        np.save(tmp / "labels.npy", labels)
        np.save(tmp / "rows.npy", np.flatnonzero(ok))
        (tmp / STAMPS_FILE).write_text(json.dumps(stamps))
        (tmp / "meta.json").write_text(json.dumps({"split": split, "n": len(items), "how": how,
                                                   "body": digest, "format": CACHE_FORMAT}))
        try:
            os.replace(tmp, folder)
        except OSError:
            # Another process finished the same entry first; its copy is as good as ours.
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    entry = _open_entry(folder)  # leased before the trim below, which then passes over it
    older.clear()
    if cache_dir == default_cache_dir():  # never trim folders that are not the app's own
        trim_caches_quietly()
    emit(PrecomputeEnded(split, len(items), False, clock.elapsed(), len(todo)))
    return entry


def _compute_rows(model: Classifier, data: ImageData, items: Sequence[Item], rows: Sequence[int],
                  feats: np.ndarray, ok: np.ndarray, device: torch.device, precision: Precision,
                  progress: Callable[[int], None], emit: Emitter, cancel: CancelToken) -> None:
    """Run `items` through the body into rows `rows` of `feats`; unreadable files are reported
    and stay not ok (left out of the cached split)."""
    if not items:
        return
    loader = data.loader(items, data.valid_tfm(), shuffle=False, pin_memory=device.type == "cuda")
    was_training = model.training
    model.eval()
    done = 0
    try:
        with torch.no_grad(), precision.autocast(device):
            for batch in loader:
                cancel.raise_if_cancelled()
                n = len(batch) + len(batch.failed)
                for skip in batch.failed:
                    emit(FileSkipped(skip.path, skip.reason, "precompute"))
                if batch.x is not None:
                    failed = {f.path for f in batch.failed}
                    good = [rows[done + i] for i, it in enumerate(items[done:done + n]) if it.path not in failed]
                    feats[good] = model.features(to_device(batch.x, device)).float().cpu().numpy()
                    ok[good] = True
                done += n
                progress(done)
    finally:
        model.train(was_training)
