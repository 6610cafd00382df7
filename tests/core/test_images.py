"""Every image is opened as 8-bit RGB whatever it is on disk; broken files give a reason."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from guiclassifier.core import images
from guiclassifier.core.errors import ImageError
from guiclassifier.core.images import open_rgb


def save(img: Image.Image, path: Path, **kwargs) -> Path:
    img.save(path, **kwargs)
    return path


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "1", "I", "F", "CMYK"])
def test_modes_become_rgb(tmp_path: Path, mode: str) -> None:
    fmt = {"CMYK": "JPEG", "F": "TIFF", "I": "TIFF"}.get(mode, "PNG")
    path = save(Image.new(mode, (10, 6)), tmp_path / f"img.{fmt.lower()}", format=fmt)
    img = open_rgb(path)
    assert img.mode == "RGB" and img.size == (10, 6)


def test_16bit_grayscale_uses_full_range(tmp_path: Path) -> None:
    arr = np.array([[0, 65535]], dtype=np.uint16).repeat(4, 0)
    path = save(Image.fromarray(arr), tmp_path / "deep.png")
    assert Image.open(path).mode.startswith("I")
    pixels = np.asarray(open_rgb(path))
    assert pixels[0, 0, 0] == 0 and pixels[0, 1, 0] == 255


def test_transparent_pixels_are_white(tmp_path: Path) -> None:
    path = save(Image.new("RGBA", (4, 4), (255, 0, 0, 0)), tmp_path / "clear.png")
    assert np.asarray(open_rgb(path))[0, 0].tolist() == [255, 255, 255]


def test_palette_with_transparency(tmp_path: Path) -> None:
    img = Image.new("P", (4, 4), 0)
    img.putpalette([0, 0, 0, 10, 200, 10] + [0] * 762)
    img.putpixel((1, 1), 1)
    path = save(img, tmp_path / "pal.png", transparency=0)
    rgb = np.asarray(open_rgb(path))
    assert rgb[0, 0].tolist() == [255, 255, 255] and rgb[1, 1].tolist() == [10, 200, 10]


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = save(Image.new("RGB", (40, 20)), tmp_path / "rot.jpg", exif=exif)
    assert open_rgb(path).size == (20, 40)


def test_broken_files_raise_with_reason(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buf, format="PNG")
    (tmp_path / "cut.png").write_bytes(buf.getvalue()[:60])
    reasons = {}
    for name in ("empty.jpg", "text.jpg", "cut.png", "missing.png"):
        with pytest.raises(ImageError) as info:
            open_rgb(tmp_path / name)
        reasons[name] = info.value.reason
    assert "empty" in reasons["empty.jpg"]
    assert "not an image" in reasons["text.jpg"]
    assert "truncated" in reasons["cut.png"] or "decoded" in reasons["cut.png"]
    assert "not found" in reasons["missing.png"]


def test_huge_images_are_refused_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(Image.new("L", (200, 200)), tmp_path / "big.png")
    monkeypatch.setattr(images, "MAX_PIXELS", 100 * 100)
    with pytest.raises(ImageError, match="too large"):
        open_rgb(path)


def test_any_exception_from_a_decoder_is_an_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pillow 10.0 raised AttributeError from exif_transpose on multi-page TIFFs: the scan crashed.
    from PIL import ImageOps

    path = tmp_path / "odd.png"
    Image.new("RGB", (8, 8)).save(path)

    def broken(img):
        raise AttributeError("'NoneType' object has no attribute 'read'")

    monkeypatch.setattr(ImageOps, "exif_transpose", broken)
    with pytest.raises(ImageError, match="cannot be decoded \\(AttributeError: 'NoneType'"):
        open_rgb(path)
