"""Where the on-disk caches live (one folder, a subfolder per kind: activations, resized images),
how much they hold, and keeping them under their limit (core.cache_limit) by removing the least
recently used entries.

An entry is an activation folder (core.precompute) or one shrunk photo (core.resized). Readers
mark an entry used (`mark_used`: its modification time); eviction removes the entries used
longest ago first, never one a job holds a lease on (core.cache_lease), and one process evicts
at a time. Names starting with "." are entries being written or deleted: they are not counted,
and are deleted once stale (left by a process that was killed).

The user cache folder by default; GUICLASSIFIER_CACHE_DIR moves all of them (tests, shared disks).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from guiclassifier.core.cache_lease import REMOVING_PREFIX, exclusive, remove_unless_in_use
from guiclassifier.core.cache_limit import cache_limit, chosen_limit

CACHE_DIR_ENV = "GUICLASSIFIER_CACHE_DIR"
STALE_AFTER_S = 2 * 24 * 3600
"""A dot-named temporary entry untouched this long was left by a process that was killed."""
TRIM_LOCK = ".trim.lock"
USED_MARK = {"activations": "meta.json"}
"""The file whose modification time says when an entry folder was last used."""

log = logging.getLogger(__name__)


def cache_root() -> Path:
    override = os.environ.get(CACHE_DIR_ENV)
    return Path(override) if override else Path(platformdirs.user_cache_dir("guiclassifier"))


CACHE_KINDS = {"activations": "activations of the frozen body (precompute)",
               "resized": "shrunk copies of big photos"}
"""Subfolders of cache_root(), and what each holds."""


@dataclass(frozen=True)
class CacheEntry:
    kind: str
    path: str  # not a Path: a cache can hold 100,000 entries, and making Paths took most of a scan
    size_bytes: int
    last_used: float  # seconds since the epoch

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


@dataclass(frozen=True)
class CacheUsage:
    kind: str
    folder: Path
    entries: int
    size_bytes: int


@dataclass(frozen=True)
class Removal:
    """What a trim or a clear did: `kept_in_use` entries were passed over because a job uses them."""

    freed_bytes: int = 0
    removed: int = 0
    kept_in_use: int = 0


def mark_used(path: Path) -> None:
    """Note that a cache entry (its mark file, or a single-file entry) was just used; a cache that
    cannot be written (read-only) is used all the same."""
    try:
        os.utime(path)
    except OSError:
        pass


def _tree_size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass  # removed meanwhile
    return total


Leftover = tuple[str, float]
"""A dot-named path in a cache (being written or deleted, or left by a killed process), its mtime."""


def _scan_entry_folders(kind: str, folder: Path, entries: list[CacheEntry], leftovers: list[Leftover]) -> None:
    """Each item of `folder` is an entry (activations: one folder per entry)."""
    for item in os.scandir(folder):
        try:
            st = item.stat(follow_symlinks=False)
            if item.name.startswith("."):
                leftovers.append((item.path, st.st_mtime))
            elif item.is_dir(follow_symlinks=False):
                mark = Path(item.path, USED_MARK[kind])
                used = mark.stat().st_mtime if mark.exists() else st.st_mtime
                entries.append(CacheEntry(kind, item.path, _tree_size(Path(item.path)), used))
            else:
                entries.append(CacheEntry(kind, item.path, st.st_size, st.st_mtime))
        except OSError:
            continue  # removed meanwhile


def _scan_entry_files(kind: str, folder: Path, entries: list[CacheEntry], leftovers: list[Leftover]) -> None:
    """Every file under `folder` is an entry (shrunk photos: <side>/<xx>/<digest>.jpg)."""
    for dirpath, dirs, files in os.walk(folder):
        leftovers.extend(_leftover(os.path.join(dirpath, d)) for d in dirs if d.startswith("."))
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if name.startswith("."):
                leftovers.append((path, st.st_mtime))
            else:
                entries.append(CacheEntry(kind, path, st.st_size, st.st_mtime))


def _leftover(path: str) -> Leftover:
    try:
        return path, os.lstat(path).st_mtime
    except OSError:
        return path, time.time()  # gone meanwhile: never stale


def _scan(root: Path) -> tuple[list[CacheEntry], list[Leftover]]:
    """Every finished entry of every cache, and the leftovers beside them: one walk."""
    entries: list[CacheEntry] = []
    leftovers: list[Leftover] = []
    for kind in CACHE_KINDS:
        folder = root / kind
        try:
            if folder.is_dir():
                scan = _scan_entry_folders if kind in USED_MARK else _scan_entry_files
                scan(kind, folder, entries, leftovers)
        except OSError:
            continue
    return entries, leftovers


def cache_entries(root: Path | None = None) -> list[CacheEntry]:
    """Every finished entry of every cache."""
    return _scan(root or cache_root())[0]


def cache_usage(root: Path | None = None) -> list[CacheUsage]:
    """How much each cache holds, in entries and bytes."""
    root = root or cache_root()
    entries = cache_entries(root)
    return [CacheUsage(kind, root / kind, sum(1 for e in entries if e.kind == kind),
                       sum(e.size_bytes for e in entries if e.kind == kind)) for kind in CACHE_KINDS]


@dataclass(frozen=True)
class CacheReport:
    """What the caches hold and may hold (`limit_automatic`: no limit chosen; see core.cache_limit)."""

    root: Path
    usage: tuple[CacheUsage, ...]
    total_bytes: int
    limit_bytes: int
    limit_automatic: bool


def cache_report(root: Path | None = None) -> CacheReport:
    root = root or cache_root()
    usage = tuple(cache_usage(root))
    total = sum(u.size_bytes for u in usage)
    return CacheReport(root, usage, total, cache_limit(root, total), chosen_limit(root) is None)


def _remove(entries: list[CacheEntry], enough: int | None) -> Removal:
    """Remove `entries` in order, skipping those in use, until `enough` bytes are freed (None: all)."""
    freed = removed = in_use = 0
    for entry in entries:
        if enough is not None and freed >= enough:
            break
        if remove_unless_in_use(Path(entry.path)):
            freed += entry.size_bytes
            removed += 1
        elif os.path.lexists(entry.path):
            in_use += 1
    return Removal(freed, removed, in_use)


def _remove_leftovers(leftovers: list[Leftover], now: float) -> None:
    """Entries half-deleted (any age) or half-written by a process that was killed (stale)."""
    for path, mtime in leftovers:
        if os.path.basename(path).startswith(REMOVING_PREFIX) or now - mtime > STALE_AFTER_S:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except OSError:
                    pass


def trim_caches(root: Path | None = None) -> Removal:
    """Bring the caches under their limit, least recently used entries first. Entries in use stay
    (the caches may then stay over the limit until they are released). Returns at once, removing
    nothing, while another process is trimming the same caches."""
    root = root or cache_root()
    if not root.is_dir():
        return Removal()
    with exclusive(root / TRIM_LOCK) as mine:
        if not mine:
            return Removal()
        entries, leftovers = _scan(root)
        _remove_leftovers(leftovers, time.time())
        total = sum(e.size_bytes for e in entries)
        over = total - cache_limit(root, total)
        if over <= 0:
            return Removal()
        removal = _remove(sorted(entries, key=lambda e: e.last_used), over)
    if removal.removed:
        log.info("cache over its limit: removed %d least recently used entries", removal.removed)
    return removal


def trim_caches_quietly() -> None:
    """trim_caches() of the default caches after a job wrote to them; trouble is logged, never raised:
    a cache that cannot be trimmed must not stop training."""
    try:
        trim_caches()
    except OSError as exc:
        log.warning("could not trim the cache: %s", exc)


def clear_caches(root: Path | None = None) -> Removal:
    """Remove every finished entry of every cache, except those a running job is using. Entries
    being written are left; one that cannot be removed now (a file open on Windows) stays for
    next time."""
    entries, leftovers = _scan(root or cache_root())
    _remove_leftovers(leftovers, time.time())
    return _remove(entries, None)
