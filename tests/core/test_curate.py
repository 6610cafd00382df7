"""Moving images between class folders and into quarantine, undo, and the rescan after it."""

from __future__ import annotations

from pathlib import Path

import pytest

from guiclassifier.core.curate import (
    QUARANTINE_DIR,
    FileMove,
    move_to_class,
    move_to_quarantine,
    undo_move,
)
from guiclassifier.core.data import scan_folder
from guiclassifier.core.errors import DataError
from tests.conftest import make_dataset


def labels(report) -> dict[str, str]:
    """"split/file name" -> class name, over both splits."""
    return {f"{Path(i.path).parent.parent.name}/{Path(i.path).name}": report.classes[i.label]
            for i in (*report.train, *report.valid)}


def test_move_to_another_class_stays_in_its_split(dataset: Path) -> None:
    source = dataset / "valid" / "cat" / "cat_001.png"
    content = source.read_bytes()
    move = move_to_class(source, "dog", ("cat", "dog"))
    target = dataset / "valid" / "dog" / "cat_001.png"
    assert move == FileMove(str(source), str(target))
    assert not source.exists() and target.read_bytes() == content
    report = scan_folder(dataset)
    assert labels(report)["valid/cat_001.png"] == "dog"
    assert report.counts() == {"cat": (12, 3), "dog": (12, 5)}


def test_a_taken_name_is_never_overwritten(dataset: Path) -> None:
    (dataset / "valid" / "dog" / "cat_001.png").write_bytes(b"someone else's file")
    move = move_to_class(dataset / "valid" / "cat" / "cat_001.png", "dog", ("cat", "dog"))
    assert Path(move.destination).name == "cat_001 (2).png"
    assert (dataset / "valid" / "dog" / "cat_001.png").read_bytes() == b"someone else's file"


@pytest.mark.parametrize("layout", ["fastai", "class_folders"])
def test_quarantined_files_leave_the_dataset(tmp_path: Path, layout: str) -> None:
    root = make_dataset(tmp_path / "data", layout=layout)
    source = next((root / ("valid/cat" if layout == "fastai" else "cat")).iterdir())
    relative = source.relative_to(root)
    move = move_to_quarantine(source, root)
    assert Path(move.destination) == root / QUARANTINE_DIR / relative
    report = scan_folder(root)
    assert report.classes == ("cat", "dog")  # the quarantine folder is not a class
    assert str(source) not in {i.path for i in (*report.train, *report.valid)}
    assert len(report.train) + len(report.valid) == 31
    assert not any(QUARANTINE_DIR in s.path for s in report.skipped)


def test_undo_puts_the_file_back_and_tidies_the_quarantine(dataset: Path) -> None:
    source = dataset / "train" / "dog" / "dog_003.png"
    undo_move(move_to_quarantine(source, dataset))
    assert source.is_file()
    assert not (dataset / QUARANTINE_DIR).exists()
    move = move_to_class(source, "cat", ("cat", "dog"))
    undo_move(move)
    assert source.is_file() and not Path(move.destination).exists()


def test_undo_refuses_when_the_old_place_is_taken(dataset: Path) -> None:
    source = dataset / "valid" / "cat" / "cat_002.png"
    move = move_to_class(source, "dog", ("cat", "dog"))
    source.write_bytes(b"new file")
    with pytest.raises(DataError, match="Cannot undo"):
        undo_move(move)
    assert Path(move.destination).is_file() and source.read_bytes() == b"new file"


def test_bad_moves_are_refused_in_words(dataset: Path) -> None:
    with pytest.raises(DataError, match="no longer there"):
        move_to_class(dataset / "valid" / "cat" / "gone.png", "dog", ("cat", "dog"))
    with pytest.raises(DataError, match="not one of the classes"):
        move_to_class(dataset / "valid" / "cat" / "cat_000.png", "fox", ("cat", "dog"))
    with pytest.raises(DataError, match="already in the cat folder"):
        move_to_class(dataset / "valid" / "cat" / "cat_000.png", "cat", ("cat", "dog"))
    with pytest.raises(DataError, match="not inside the dataset"):
        move_to_quarantine(dataset / "valid" / "cat" / "cat_000.png", dataset / "train")


def test_rescan_decodes_only_new_and_changed_files(dataset: Path) -> None:
    first = scan_folder(dataset)
    assert first.decoded == 32
    move_to_class(dataset / "valid" / "cat" / "cat_001.png", "dog", ("cat", "dog"))
    (dataset / "train" / "dog" / "dog_005.png").write_bytes(b"now broken")
    second = scan_folder(dataset, previous=first)
    assert second.decoded == 2  # the moved file and the rewritten one
    assert [Path(s.path).name for s in second.skipped] == ["dog_005.png"]
    assert labels(second)["valid/cat_001.png"] == "dog"
    assert second.train == scan_folder(dataset).train and second.valid == scan_folder(dataset).valid
