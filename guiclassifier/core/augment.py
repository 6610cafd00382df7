"""Augmentation presets (fastai 0.7's side-on and top-down) and the validation transform.

Every transform ends in a float tensor in [0, 1]; normalisation is the model's first layer, so the
same tensors serve every architecture and an exported model takes plain RGB.
All randomness comes from torch's global generator, so seeding torch reproduces a run.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from PIL import Image
from torchvision.transforms import v2

AUGMENTS = ("side_on", "top_down", "none")
ROTATE_DEGREES = 10.0
LIGHTING = 0.05

Transform = Callable[[Image.Image], torch.Tensor]

_DIHEDRAL = (None, Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM,
             Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270,
             Image.Transpose.TRANSPOSE, Image.Transpose.TRANSVERSE)


class RandomDihedral:
    """One of the 8 flips/quarter-turns of a square, for photos taken from above."""

    def __call__(self, img: Image.Image) -> Image.Image:
        op = _DIHEDRAL[int(torch.randint(len(_DIHEDRAL), ()).item())]
        return img if op is None else img.transpose(op)


def _to_tensor() -> list[Callable]:
    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]


def valid_transform(size: int) -> Transform:
    """Resize the shorter side to `size`, then take the centre square."""
    return v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size), *_to_tensor()])


def train_transform(augment: str, size: int, max_zoom: float = 1.0) -> Transform:
    """The training transform of a preset: `side_on`, `top_down` or `none`."""
    if augment not in AUGMENTS:
        raise ValueError(f"unknown augmentation {augment!r}: choose one of {', '.join(AUGMENTS)}")
    if augment == "none":
        return valid_transform(size)
    # fastai 0.7's RandomScale + RandomCrop: shorter side scaled to size * U(1, max_zoom).
    top = max(size, round(size * max_zoom))
    steps: list[Callable] = [
        v2.RandomShortestSize(min_size=list(range(size, top + 1)), antialias=True),
        v2.RandomRotation(ROTATE_DEGREES),
        v2.RandomCrop(size),
        v2.RandomHorizontalFlip() if augment == "side_on" else RandomDihedral(),
        v2.ColorJitter(brightness=LIGHTING, contrast=LIGHTING),
    ]
    return v2.Compose([*steps, *_to_tensor()])
