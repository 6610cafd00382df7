"""Augmentation presets (fastai 0.7's side-on and top-down) and the validation transform.

Every transform ends in a float tensor in [0, 1]; normalisation is the model's first layer, so the
same tensors serve every architecture and an exported model takes plain RGB.
All randomness comes from torch's global generator, so seeding torch reproduces a run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms import v2

AUGMENTS = ("side_on", "top_down", "none")
ROTATE_DEGREES = 10.0
LIGHTING = 0.05

Transform = Callable[[Image.Image], torch.Tensor]
BatchTransform = Callable[[Sequence[torch.Tensor]], torch.Tensor]
_GRAY = torch.tensor([0.299, 0.587, 0.114])  # ITU-R 601 luma, as torchvision's contrast uses
# The 8 flips and quarter-turns of a square, as maps of centred (x, y): as it is, the horizontal
# flip (side_on draws from these two), vertical flip, half turn, transpose, the quarter turns and
# the anti-transpose.
_DIHEDRAL = torch.tensor([[[1, 0], [0, 1]], [[-1, 0], [0, 1]], [[1, 0], [0, -1]], [[-1, 0], [0, -1]],
                          [[0, 1], [1, 0]], [[0, 1], [-1, 0]], [[0, -1], [1, 0]], [[0, -1], [-1, 0]]],
                         dtype=torch.float64)


def _to_tensor() -> list[Callable]:
    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]


def valid_transform(size: int) -> Transform:
    """Resize the shorter side to `size`, then take the centre square."""
    return v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size), *_to_tensor()])


def train_transform(augment: str, size: int, max_zoom: float = 1.0) -> Transform:
    """The training transform of a preset (`side_on`, `top_down` or `none`) for one image: the
    same draws as a batch of one (BatchAugment), for previews and TTA views."""
    if augment not in AUGMENTS:
        raise ValueError(f"unknown augmentation {augment!r}: choose one of {', '.join(AUGMENTS)}")
    if augment == "none":
        return valid_transform(size)
    return AugmentOne(BatchAugment(augment, size, max_zoom))


def to_uint8(img: Image.Image) -> torch.Tensor:
    """An RGB picture as a 3xHxW uint8 tensor (what BatchAugment takes)."""
    return torch.from_numpy(np.array(img, dtype=np.uint8, copy=True)).permute(2, 0, 1)


@dataclass(frozen=True)
class BatchAugment:
    """fastai 0.7's augmentation of a preset, drawn per image but computed per batch.

    For each image: the shorter side scaled to size * U(1, max_zoom) (RandomScale), a rotation of
    up to ROTATE_DEGREES about the image centre with black corners, a random size x size crop,
    a horizontal flip (side_on) or one of the 8 dihedral turns (top_down), then brightness and
    contrast within LIGHTING. The geometry is one affine map per image, sampled bilinearly by
    grid_sample for all images of a size at once (as fastai v2 does on the batch); per-image PIL
    transforms cost more than the training step's arithmetic left for them (benchmark 13)."""

    augment: str
    size: int
    max_zoom: float = 1.0

    def __call__(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """3xHxW uint8 images (any sizes) -> Bx3xSxS float in [0, 1]; draws from torch's global
        generator."""
        n, s = len(images), self.size
        top = max(s, round(s * self.max_zoom))
        scaled = torch.randint(s, top + 1, (n,)).double()  # shorter side after RandomScale
        angle = (torch.rand(n, dtype=torch.float64) * 2 - 1) * math.radians(ROTATE_DEGREES)
        place = torch.rand(n, 2, dtype=torch.float64)  # the crop's place in what is left over
        if self.augment == "top_down":
            turn = _DIHEDRAL[torch.randint(len(_DIHEDRAL), (n,))]
        else:
            turn = _DIHEDRAL[torch.where(torch.rand(n) < 0.5, 1, 0)]
        light = 1 + (torch.rand(n, 2) * 2 - 1) * LIGHTING  # brightness, contrast factors
        wh = torch.tensor([[img.shape[-1], img.shape[-2]] for img in images], dtype=torch.float64)
        k = scaled / wh.min(1).values  # source pixels -> scaled pixels
        # Where the crop's centre sits, from the scaled image's centre (0 where it is `s` wide).
        offset = (place - 0.5) * (wh * k[:, None] - s).clamp(min=0)
        cos, sin = angle.cos(), angle.sin()
        unrotate = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1)
        to_unit = 2 / (wh * k[:, None])  # scaled pixels -> grid_sample's [-1, 1] of the source
        theta = torch.cat([to_unit[:, :, None] * (unrotate @ turn) * (s / 2),
                           (to_unit * (unrotate @ offset[:, :, None])[:, :, 0])[:, :, None]], 2)
        out = torch.empty(n, 3, s, s)
        for shape in {tuple(img.shape) for img in images}:
            rows = [i for i, img in enumerate(images) if tuple(img.shape) == shape]
            src = torch.stack([images[i] for i in rows]).float().div_(255)
            grid = F.affine_grid(theta[rows].float(), [len(rows), 3, s, s], align_corners=False)
            out[rows] = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        out.mul_(light[:, 0].view(n, 1, 1, 1)).clamp_(0, 1)
        gray = (out * _GRAY.view(1, 3, 1, 1)).sum(1).mean((1, 2)).view(n, 1, 1, 1)
        return out.sub_(gray).mul_(light[:, 1].view(n, 1, 1, 1)).add_(gray).clamp_(0, 1)


@dataclass(frozen=True)
class AugmentOne:
    """A BatchAugment for one PIL image at a time."""

    batch: BatchAugment

    def __call__(self, img: Image.Image) -> torch.Tensor:
        return self.batch([to_uint8(img)])[0]
