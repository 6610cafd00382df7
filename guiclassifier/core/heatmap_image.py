"""Heatmaps drawn over images, in viridis (readable with the common colour-vision deficiencies and in
greyscale), with a legend; used by `predict --heatmap` and the window alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from guiclassifier.core.images import open_rgb

# matplotlib's viridis at 0, 1/16, ..., 1 (its published table), interpolated linearly between.
VIRIDIS_ANCHORS = np.array([
    (68, 1, 84), (72, 24, 106), (71, 45, 123), (66, 64, 134), (59, 82, 139), (51, 99, 141),
    (44, 114, 142), (38, 130, 142), (33, 145, 140), (31, 159, 136), (39, 173, 129), (61, 188, 116),
    (92, 200, 99), (129, 211, 77), (170, 220, 50), (213, 226, 26), (253, 231, 37)], dtype=np.float64)
DEFAULT_OPACITY = 0.5
DEFAULT_SIDE = 256
LEGEND_HEIGHT = 34


def viridis(values: np.ndarray) -> np.ndarray:
    """uint8 RGB (..., 3) of values in [0, 1]."""
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0) * (len(VIRIDIS_ANCHORS) - 1)
    low = np.floor(v).astype(int).clip(0, len(VIRIDIS_ANCHORS) - 2)
    t = (v - low)[..., None]
    rgb = VIRIDIS_ANCHORS[low] * (1 - t) + VIRIDIS_ANCHORS[low + 1] * t
    return rgb.round().astype(np.uint8)


def model_view(image: Image.Image, side: int) -> Image.Image:
    """The centre square the model sees (core.augment.valid_transform), at `side` pixels."""
    return ImageOps.fit(image.convert("RGB"), (side, side), Image.Resampling.BICUBIC)


def overlay(image: Image.Image, cam: np.ndarray, opacity: float = DEFAULT_OPACITY,
            side: int = DEFAULT_SIDE) -> Image.Image:
    """`image`'s model view with the map blended over it at `opacity` (0: image only, 1: map only)."""
    view = model_view(image, side)
    heat = Image.fromarray(viridis(cam)).resize((side, side), Image.Resampling.BILINEAR)
    return Image.blend(view, heat, float(np.clip(opacity, 0.0, 1.0)))


def with_legend(image: Image.Image, caption: str) -> Image.Image:
    """`image` above a colour bar from less to more attention, and a caption."""
    w, h = image.size
    out = Image.new("RGB", (w, h + LEGEND_HEIGHT), (255, 255, 255))
    out.paste(image, (0, 0))
    draw = ImageDraw.Draw(out)
    bar_left, bar_right = 40, w - 40
    bar = viridis(np.linspace(0, 1, max(1, bar_right - bar_left)))[None].repeat(8, 0)
    out.paste(Image.fromarray(bar), (bar_left, h + 4))
    draw.text((4, h + 2), "less", fill=(0, 0, 0))
    draw.text((bar_right + 4, h + 2), "more", fill=(0, 0, 0))
    draw.text((4, h + 16), caption[: max(10, w // 6)], fill=(0, 0, 0))
    return out


def write_heatmap_png(source: str | Path, cam: np.ndarray, out: Path, caption: str,
                      opacity: float = DEFAULT_OPACITY) -> Path:
    """The overlay of `source` with a legend, written to `out` (a PNG)."""
    image = with_legend(overlay(open_rgb(str(source)), cam, opacity), caption)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, format="PNG")
    return out
