"""The image size a project starts with."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from guiclassifier.core.image_size import default_image_size, typical_side


def test_default_size_follows_the_device_and_small_images() -> None:
    assert default_image_size("cuda") == 224 and default_image_size("cpu") == 128
    assert default_image_size("cpu", 28) == 64  # Fashion-MNIST: upscaling 28 px to 128 adds nothing
    assert default_image_size("cpu", 100) == 128 and default_image_size("cuda", 100) == 128
    assert default_image_size("cpu", 500) == 128


def test_typical_side_reads_headers_and_skips_broken_files(tmp_path: Path) -> None:
    paths = []
    for i, size in enumerate([(40, 30), (50, 60), (80, 90)]):
        Image.new("RGB", size).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    (tmp_path / "bad.png").write_bytes(b"nope")
    assert typical_side(paths + [str(tmp_path / "bad.png")]) == 50
    assert typical_side([]) is None
