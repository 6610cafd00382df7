"""Folders the app cannot read, and recipe files that try to be more than data."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from guiclassifier import ImageData, Learner
from guiclassifier.core.data import scan_folder
from guiclassifier.core.recipe import Recipe, RecipeError
from tests.conftest import make_image


def test_an_unreadable_folder_is_reported_and_the_rest_is_used(dataset: Path, monkeypatch) -> None:
    locked = dataset / "train" / "cat" / "locked"
    for i in range(3):
        make_image(locked / f"x{i}.png", (0, 0, 0), i)
    real_scandir = os.scandir

    def scandir(path=".", *args, **kwargs):
        # (pytest's clean-up of tmp_path scans by file descriptor, with this still in place)
        if not isinstance(path, int) and Path(os.fsdecode(path)) == locked:  # what an unreadable folder raises
            raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))
        return real_scandir(path, *args, **kwargs)

    monkeypatch.setattr(os, "scandir", scandir)
    report = scan_folder(dataset)
    assert report.counts() == {"cat": (12, 4), "dog": (12, 4)}
    assert [(s.path, s.reason) for s in report.skipped] == \
        [(str(locked), "folder cannot be read (Permission denied)")]


@pytest.mark.parametrize("text, problem", [
    ('{"name": "x", "stages": [{"stage": "__import__(\'os\').system(\'touch PWNED\')"}]}', "is not one of"),
    ("!!python/object/apply:os.system ['touch PWNED']", "not valid JSON"),
    ('{"name": "x", "stages": "rm -rf /"}', "must be a non-empty list"),
])
def test_recipe_files_are_data_only(tmp_path: Path, monkeypatch, text: str, problem: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.json").write_text(text)
    with pytest.raises(RecipeError, match=problem):
        Recipe.load(tmp_path / "r.json")
    assert not (tmp_path / "PWNED").exists()


def bomb_png(path: Path, side: int = 60_000) -> None:
    """A valid 1-bit PNG header claiming side x side pixels: a few bytes that would decode to
    hundreds of megabytes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def test_a_dataset_of_every_odd_file_kind_scans_and_trains(dataset: Path) -> None:

    cat = dataset / "train" / "cat"
    png = (cat / "cat_000.png").read_bytes()
    bomb_png(cat / "bomb.png")
    (cat / "empty.jpg").write_bytes(b"")
    (cat / "letter.png").write_text("not a picture at all")
    (cat / "half.png").write_bytes(png[: len(png) // 2])
    (cat / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    os.symlink(dataset / "train", cat / "loop")
    os.symlink(cat / "gone.png", cat / "dangling.png")
    make_image(cat / "-é chat 1.png", (200, 60, 40), 5)
    report = scan_folder(dataset)
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(reasons) == {"bomb.png", "empty.jpg", "letter.png", "half.png", ".DS_Store", "loop",
                            "dangling.png"}
    assert "too large" in reasons["bomb.png"] and "link to a folder" in reasons["loop"]
    assert report.counts() == {"cat": (13, 4), "dog": (12, 4)}  # the accented file is used
    data = ImageData(report, size=32, bs=8, num_workers=0)
    result = Learner.pretrained("resnet18", data, weights=None, device="cpu").fit(0.05, 1)
    assert result.epochs_done == 1 and not result.failed


def test_extreme_shapes_animations_and_many_pages_train_without_stalling(dataset: Path) -> None:
    """1x1, 60000x1 and 1x60000 px images, an animated GIF and a 1000-page TIFF in a class folder:
    reported once as 'appeared to stall in the first augmented epoch' on a loaded machine. They
    train (through loading processes, with augmentation) like any other image."""
    from PIL import Image

    cat = dataset / "train" / "cat"
    Image.new("RGB", (1, 1), (200, 60, 40)).save(cat / "one.png")
    Image.new("RGB", (60000, 1), (200, 60, 40)).save(cat / "wide.png")
    Image.new("RGB", (1, 60000), (200, 60, 40)).save(cat / "tall.png")
    frames = [Image.new("RGB", (40, 40), (i * 20, 60, 40)) for i in range(10)]
    frames[0].save(cat / "anim.gif", save_all=True, append_images=frames[1:])
    pages = [Image.new("RGB", (20, 20), (200, 60, 40)) for _ in range(1000)]
    pages[0].save(cat / "pages.tif", save_all=True, append_images=pages[1:])
    data = ImageData.from_folder(dataset, size=32, bs=8, num_workers=1, seed=0)
    assert {"one.png", "wide.png", "tall.png", "anim.gif", "pages.tif"} <= {Path(i.path).name for i in data.train_items}
    result = Learner.pretrained("resnet18", data, weights=None, device="cpu").fit(0.05, 1)
    assert len(result.epochs) == 1 and not result.failed
