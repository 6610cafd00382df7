"""The image size a new project starts with, from the device and the images themselves."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from PIL import Image

GPU_SIZE = 224  # ImageNet's: what the pretrained weights saw
CPU_SIZE = 128  # a 224-px stage takes about 3x as long; on a laptop CPU that is the difference
MIN_SIZE = 64
SAMPLE = 20


def default_image_size(device_type: str, typical_side: int | None = None) -> int:
    """224 px on a GPU, 128 on a CPU, and not much above the images' own size (upscaling adds
    no detail, only time): their side rounded up to a multiple of 32, at least 64."""
    size = GPU_SIZE if device_type == "cuda" else CPU_SIZE
    if typical_side is not None and typical_side < size:
        size = max(MIN_SIZE, -(-typical_side // 32) * 32)
    return size


def typical_side(paths: Sequence[str], sample: int = SAMPLE) -> int | None:
    """Median shorter side of up to `sample` images spread over `paths` (headers only)."""
    if not paths:
        return None
    step = max(1, len(paths) // sample)
    sides = []
    for path in list(paths)[::step][:sample]:
        try:
            with Image.open(path) as img:
                sides.append(min(img.size))
        except (OSError, ValueError, Image.DecompressionBombError):
            continue  # the scan already reported it
    return int(statistics.median(sides)) if sides else None
