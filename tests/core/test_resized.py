"""Shrunk copies of big photos: made once, read after, never stale, never in the way."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from guiclassifier.core import resized
from guiclassifier.core.errors import ImageError
from guiclassifier.core.resized import ImageReader, needed_side


def photo(path: Path, size: tuple[int, int], color: tuple[int, int, int], exif_orientation: int | None = None) -> Path:
    img = Image.new("RGB", size, color)
    img.paste((255, 255, 255), (0, 0, size[0] // 4, size[1] // 4))  # a white top-left corner
    exif = Image.Exif()
    if exif_orientation is not None:
        exif[0x0112] = exif_orientation
    img.save(path, "JPEG", quality=92, exif=exif)
    return path


def count_decodes(monkeypatch) -> list[str]:
    calls: list[str] = []
    original = resized.open_rgb_and_size

    def counting(path, draft_size=None):
        calls.append(str(path))
        return original(path, draft_size)

    monkeypatch.setattr(resized, "open_rgb_and_size", counting)
    return calls


def test_a_big_photo_is_decoded_once_then_read_from_its_copy(tmp_path: Path, monkeypatch) -> None:
    big = photo(tmp_path / "big.jpg", (600, 400), (200, 30, 30))
    reader = ImageReader(side=64, folder=str(tmp_path / "cache"))
    decodes = count_decodes(monkeypatch)
    first = reader(str(big))
    second = reader(str(big))
    assert decodes == [str(big)]  # the second read came from the copy
    assert first.size == (96, 64) and second.size == (96, 64)
    copy = reader.copy_path(str(big))
    assert copy is not None and copy.is_file() and copy.parent.parent.name == "64"
    assert np.abs(np.asarray(first, float) - np.asarray(second, float)).mean() < 3  # JPEG re-encoding only
    assert np.asarray(second)[5, 5].min() > 200  # still the original picture: white corner top-left


def test_small_images_are_read_as_they_are(tmp_path: Path) -> None:
    small = photo(tmp_path / "small.jpg", (90, 80), (30, 30, 200))  # under 1.5 x 64 on the shorter side
    reader = ImageReader(side=64, folder=str(tmp_path / "cache"))
    assert reader(str(small)).size == (90, 80)
    assert not (tmp_path / "cache").exists()


def test_an_edited_photo_gets_a_new_copy(tmp_path: Path) -> None:
    path = photo(tmp_path / "p.jpg", (600, 400), (200, 30, 30))
    reader = ImageReader(side=64, folder=str(tmp_path / "cache"))
    assert np.asarray(reader(str(path)))[-1, -1, 0] > 150  # red
    old_copy = reader.copy_path(str(path))
    photo(path, (600, 400), (30, 30, 200))
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))  # even on coarse clocks
    assert reader.copy_path(str(path)) != old_copy
    assert np.asarray(reader(str(path)))[-1, -1, 2] > 150  # blue: the edit, not the stale copy


def test_exif_rotation_is_applied_before_shrinking(tmp_path: Path) -> None:
    path = photo(tmp_path / "rotated.jpg", (600, 400), (30, 200, 30), exif_orientation=6)
    reader = ImageReader(side=64, folder=str(tmp_path / "cache"))
    assert reader(str(path)).size == (64, 96)  # upright: portrait
    assert reader(str(path)).size == (64, 96)  # and so is the copy


def test_a_damaged_copy_is_made_again(tmp_path: Path, monkeypatch) -> None:
    path = photo(tmp_path / "p.jpg", (600, 400), (200, 30, 30))
    reader = ImageReader(side=64, folder=str(tmp_path / "cache"))
    reader(str(path))
    copy = reader.copy_path(str(path))
    copy.write_bytes(copy.read_bytes()[:40])
    decodes = count_decodes(monkeypatch)
    assert reader(str(path)).size == (96, 64)
    assert decodes == [str(path)]
    assert Image.open(copy).size == (96, 64)


def test_a_cache_that_cannot_be_written_does_not_stop_reading(tmp_path: Path) -> None:
    path = photo(tmp_path / "p.jpg", (600, 400), (200, 30, 30))
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    reader = ImageReader(side=64, folder=str(blocker))
    assert reader(str(path)).size == (96, 64)
    assert reader(str(path)).size == (96, 64)


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    reader = ImageReader(side=64, folder=str(tmp_path / "cache"))
    with pytest.raises(ImageError, match="file not found"):
        reader(str(tmp_path / "gone.jpg"))


def test_without_a_folder_big_jpegs_are_only_decoded_at_reduced_scale(tmp_path: Path) -> None:
    path = photo(tmp_path / "p.jpg", (1600, 1200), (200, 30, 30))
    img = ImageReader(side=64)(str(path))
    assert min(img.size) >= 64 and img.size[0] <= 400  # JPEG draft: 1/8 scale, not the full 1600
    assert ImageReader(side=64).copy_path(str(path)) is None


def test_loaders_read_big_photos_through_copies_unless_turned_off(tmp_path: Path) -> None:
    from guiclassifier.core.data import ImageData
    from guiclassifier.core.resized import default_resized_dir

    for label, color in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(3):
            photo(tmp_path / "data" / label / f"{i}.jpg", (640, 480), color)
    data = ImageData.from_folder(tmp_path / "data", size=32, bs=4, num_workers=0, valid_pct=0.34)
    assert needed_side(32, data.max_zoom) == data.reader().side == 36
    plain = ImageData(data.report, size=32, bs=4, num_workers=0, resized_cache=False)
    with_copies = next(iter(data.loader(data.train_items, data.valid_tfm()))).x
    copies = sorted(default_resized_dir().rglob("*.jpg"))
    assert len(copies) == len(data.train_items)
    without = next(iter(plain.loader(plain.train_items, plain.valid_tfm()))).x
    assert with_copies.shape == without.shape == (4, 3, 32, 32)
    assert (with_copies - without).abs().mean() < 0.03
    assert sorted(default_resized_dir().rglob("*.jpg")) == copies  # the plain loader made none


def test_reading_a_copy_marks_it_used_and_a_trimmed_copy_is_made_again(tmp_path: Path, monkeypatch) -> None:
    from guiclassifier.core.cache_dirs import cache_root, clear_caches

    big = photo(tmp_path / "big.jpg", (600, 400), (200, 30, 30))
    reader = ImageReader(side=64, folder=str(cache_root() / "resized"))
    reader(str(big))
    copy = reader.copy_path(str(big))
    assert copy is not None
    os.utime(copy, (1, 1))
    reader(str(big))
    assert copy.stat().st_mtime > 1  # what the cache's limit goes by: last used now
    decodes = count_decodes(monkeypatch)
    assert clear_caches().removed == 1 and not copy.exists()
    assert reader(str(big)).size == (96, 64)  # from the original, and the copy is back
    assert decodes == [str(big)] and copy.is_file()
