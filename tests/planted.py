"""A dataset with planted problems, for the audit's tests and benchmark: copies of validation images
in train under other names and formats (leaks), near copies of training images (resized,
re-encoded, cropped a few percent, brightened), and 5% of one class's training images moved to
another class (label errors). Built from any fast.ai-layout dataset (train/ and valid/)."""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageEnhance


@dataclass(frozen=True)
class Planted:
    root: Path
    groups: tuple[frozenset[str], ...]  # each planted set of copies (original included)
    exact: tuple[bool, ...]  # per group: same pixels
    leaks: tuple[frozenset[str], ...]  # groups that cross train/valid
    label_errors: tuple[str, ...]  # moved files, at their new paths


def _variant(img: Image.Image, how: str) -> Image.Image:
    w, h = img.size
    if how == "resized":
        return img.resize((round(w * 1.5), round(h * 1.5)), Image.Resampling.BICUBIC)
    if how == "cropped":
        dx, dy = max(1, round(w * 0.04)), max(1, round(h * 0.04))
        return img.crop((dx, dy, w - dx, h - dy))
    if how == "brightened":
        return ImageEnhance.Brightness(img).enhance(1.15)
    return img  # re-encoded: the format does it


NEAR = (("resized", "png"), ("cropped", "png"), ("brightened", "png"), ("reencoded", "jpg"))
EXACT_FORMATS = ("bmp", "tiff", "webp")  # lossless: the same pixels in another format


def plant(source: Path, root: Path, n_leaks: int, n_near: int, error_share: float = 0.05,
          seed: int = 0) -> Planted:
    """Copy `source` to `root` and plant `n_leaks` valid->train copies (half exact, half near),
    `n_near` near copies inside train, and move `error_share` of the first class's training images
    to the second class."""
    rng = random.Random(seed)
    shutil.copytree(source, root)
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    groups: list[frozenset[str]] = []
    exact: list[bool] = []
    leaks: list[frozenset[str]] = []
    valid = sorted((root / "valid").glob("*/*"))
    for i, original in enumerate(rng.sample(valid, n_leaks)):
        img = Image.open(original).convert("RGB")
        if i % 2 == 0:
            fmt, same = EXACT_FORMATS[i // 2 % len(EXACT_FORMATS)], True
            kwargs = {"lossless": True} if fmt == "webp" else {}
        else:
            how, fmt = NEAR[i // 2 % len(NEAR)]
            img, same, kwargs = _variant(img, how), False, ({"quality": 85} if fmt == "jpg" else {})
        copy = root / "train" / original.parent.name / f"leak_{i:04d}.{fmt}"
        img.save(copy, **kwargs)
        group = frozenset({str(original), str(copy)})
        groups.append(group)
        exact.append(same)
        leaks.append(group)
    planted_from = {Path(p) for g in groups for p in g}
    train = [p for p in sorted((root / "train").glob("*/*")) if p not in planted_from]
    for i, original in enumerate(rng.sample(train, n_near)):
        how, fmt = NEAR[i % len(NEAR)]
        copy = original.parent / f"near_{i:04d}.{fmt}"
        _variant(Image.open(original).convert("RGB"), how).save(copy, **({"quality": 85} if fmt == "jpg" else {}))
        groups.append(frozenset({str(original), str(copy)}))
        exact.append(False)
    in_groups = {p for g in groups for p in g}
    first = [p for p in sorted((root / "train" / classes[0]).iterdir()) if str(p) not in in_groups]
    moved = []
    for path in rng.sample(first, max(1, round(len(first) * error_share))):
        target = root / "train" / classes[1] / f"moved_{path.name}"
        path.rename(target)
        moved.append(str(target))
    return Planted(root, tuple(groups), tuple(exact), tuple(leaks), tuple(moved))
