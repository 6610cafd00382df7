"""Fixing a dataset from what the model gets wrong: move an image to another class folder, or out
of the dataset into its quarantine folder, and undo the last move.

A file's class folder is its parent folder, in either layout, so a move to another class keeps
the file in its split (``valid/cat/x.jpg`` -> ``valid/dog/x.jpg``). The quarantine folder is
``ROOT/_quarantine``, which scanning ignores; a quarantined file keeps its path below the root
there (``ROOT/_quarantine/valid/cat/x.jpg``), so a person can see where it came from.
Moves never overwrite: a name already taken gets " (2)", " (3)"... before its extension.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from guiclassifier.core.data import QUARANTINE_DIR
from guiclassifier.core.errors import DataError


@dataclass(frozen=True)
class FileMove:
    """One file moved from `source` (the path as the caller gave it) to `destination`."""

    source: str
    destination: str

    def describe(self) -> str:
        return f"{Path(self.source).name}: {Path(self.source).parent} -> {Path(self.destination).parent}"


def free_path(path: Path) -> Path:
    """`path`, or the first "name (k).ext" beside it that does not exist yet."""
    if not path.exists():
        return path
    k = 2
    while True:
        candidate = path.with_name(f"{path.stem} ({k}){path.suffix}")
        if not candidate.exists():
            return candidate
        k += 1


def _move(source: Path, destination: Path) -> FileMove:
    if not source.is_file():
        raise DataError(f"{source} is no longer there (moved or deleted outside the app).")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination = free_path(destination)
        shutil.move(str(source), str(destination))  # a rename when on the same disk
    except OSError as exc:
        raise DataError(f"Could not move {source.name} to {destination.parent}: "
                        f"{exc.strerror or exc}. The file was left where it was.") from exc
    return FileMove(str(source), str(destination))


def move_to_class(path: str | Path, class_name: str, classes: tuple[str, ...]) -> FileMove:
    """Move an image into the sibling folder of another known class."""
    source = Path(path)
    if class_name not in classes:
        raise DataError(f"{class_name!r} is not one of the classes ({', '.join(classes)}).")
    if source.parent.name == class_name:
        raise DataError(f"{source.name} is already in the {class_name} folder.")
    return _move(source, source.parent.parent / class_name / source.name)


def move_to_quarantine(path: str | Path, root: str | Path) -> FileMove:
    """Move an image out of the dataset into ROOT/_quarantine, keeping its path below the root."""
    source = Path(path)
    root = Path(root)
    try:
        relative = source.absolute().relative_to(root.absolute())
    except ValueError:
        raise DataError(f"{source} is not inside the dataset folder {root}.") from None
    return _move(source, root / QUARANTINE_DIR / relative)


def undo_move(move: FileMove) -> FileMove:
    """Put a moved file back where it was; refuses if something else took its place meanwhile."""
    source, destination = Path(move.destination), Path(move.source)
    if destination.exists():
        raise DataError(f"Cannot undo: {destination} exists again. Nothing was moved.")
    done = _move(source, destination)
    _remove_empty_quarantine(source.parent)
    return done


def _remove_empty_quarantine(folder: Path) -> None:
    """Tidy up folders an undo emptied inside the quarantine, never anything outside it."""
    while QUARANTINE_DIR in folder.parts and folder.name != "":
        try:
            os.rmdir(folder)
        except OSError:
            return
        if folder.name == QUARANTINE_DIR:
            return
        folder = folder.parent
