"""Marking a cache entry as in use, so that eviction and clearing pass it over, and removing
entries nobody uses without racing another process.

A job reading an entry folder holds a lease on it: a shared lock (flock) on the entry's lease
file, kept until the lease is closed or garbage-collected, or the process ends (the system
releases it even after a crash). Removal takes that lock exclusively without waiting, so it
fails while anyone holds a lease; then it renames the entry to a dot-name, out of sight of
readers and of other removers (only one rename of a folder can succeed), and deletes it there.

On Windows, which has no shared locks, the lease is the open lease file itself: Windows refuses
to rename a folder that holds an open file, so the removal's rename fails and the entry stays.
(That path has not been run on Windows; there was no machine to run it on.)
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

LEASE_FILE = "lease"
REMOVING_PREFIX = ".removing-"
"""Entries being deleted: out of readers' sight, and deleted by whoever finds them later."""


class Lease:
    """An entry in use while this is open; `close()` (or garbage collection) ends it."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.close()


def _open_lease_file(folder: Path) -> int:
    try:
        return os.open(folder / LEASE_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError:  # a read-only cache (a shared disk): a lock needs only reading
        return os.open(folder / LEASE_FILE, os.O_RDONLY)


def hold(folder: Path) -> Lease:
    """A lease on the entry `folder`. Where none can be taken (a read-only cache without a lease
    file) the lease is empty: nobody can remove that entry anyway. The caller checks afterwards
    that the entry is still there (a removal may have renamed it just before)."""
    try:
        fd = _open_lease_file(folder)
    except OSError:
        return Lease(None)
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while a removal renames the entry
        except OSError:
            pass
    return Lease(fd)


def remove_unless_in_use(entry: Path) -> bool:
    """Delete a cache entry (a folder, or a single file) unless a lease is held on it. False when
    it is in use, already gone (another process removed it) or cannot be removed now."""
    if not entry.is_dir() or entry.is_symlink():
        try:
            entry.unlink()  # a file: readers open it and read it whole (copies of photos)
            return True
        except OSError:
            return False
    doomed = entry.with_name(f"{REMOVING_PREFIX}{entry.name}-{uuid.uuid4().hex[:8]}")
    if fcntl is None:
        try:
            os.rename(entry, doomed)  # refused while a lease (an open file) is held: see above
        except OSError:
            return False
    else:
        try:
            fd = _open_lease_file(entry)  # the same file holders lock, so the two exclude each other
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(entry, doomed)
        except OSError:  # a lease is held, or another process renamed it first
            return False
        finally:
            os.close(fd)
    # A holder or another remover that looked the entry up just before the rename may still create
    # its lease file in the renamed folder, after a deletion has listed it: delete again.
    for _ in range(3):
        shutil.rmtree(doomed, ignore_errors=True)
        if not os.path.lexists(doomed):
            break
    # Whatever is still left is deleted by a later trim (REMOVING_PREFIX).
    return True


@contextmanager
def exclusive(lock_file: Path) -> Iterator[bool]:
    """Try to take `lock_file`'s lock without waiting: True inside the block when this process has
    it, False when another process holds it (or it cannot be taken)."""
    try:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield False
        return
    try:
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            got = True
        except OSError:
            got = False
        yield got
    finally:
        os.close(fd)  # releases the lock
