"""Where the on-disk caches live (one folder, a subfolder per kind: activations, resized images),
how much they hold, and clearing them.

The user cache folder by default; GUICLASSIFIER_CACHE_DIR moves all of them (tests, shared disks).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import platformdirs

CACHE_DIR_ENV = "GUICLASSIFIER_CACHE_DIR"


def cache_root() -> Path:
    override = os.environ.get(CACHE_DIR_ENV)
    return Path(override) if override else Path(platformdirs.user_cache_dir("guiclassifier"))


CACHE_KINDS = {"activations": "activations of the frozen body (precompute)",
               "resized": "shrunk copies of big photos"}
"""Subfolders of cache_root(), and what each holds."""


@dataclass(frozen=True)
class CacheUsage:
    kind: str
    folder: Path
    entries: int
    size_bytes: int


def _size(path: Path) -> int:
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _finished_entries(folder: Path) -> list[Path]:
    """A cache folder's entries; names starting with "." are being written by a running job."""
    return [p for p in folder.iterdir() if not p.name.startswith(".")] if folder.is_dir() else []


def cache_usage(root: Path | None = None) -> list[CacheUsage]:
    """How much each cache holds, in entries and bytes."""
    root = root or cache_root()
    usage = []
    for kind in CACHE_KINDS:
        entries = _finished_entries(root / kind)
        usage.append(CacheUsage(kind, root / kind, len(entries), sum(_size(e) for e in entries)))
    return usage


def clear_caches(root: Path | None = None) -> int:
    """Remove every finished entry of every cache; returns the bytes freed. Entries a running job
    is writing are left; one it is reading stays readable until it closes it (on Linux and macOS),
    and one that cannot be removed now (in use on Windows) is left for next time."""
    freed = 0
    for usage in cache_usage(root):
        for entry in _finished_entries(usage.folder):
            size = _size(entry)
            try:
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
            except OSError:
                continue
            freed += size
    return freed
