"""A PNG of an lr_find curve (loss against lr on a log axis, suggestions marked), drawn with Pillow
so the command line needs no display or Qt libraries."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from guiclassifier.core.lr_finder import LRFindResult

WIDTH, HEIGHT = 800, 500
MARGIN = (70, 30, 30, 60)  # left, top, right, bottom
RAW_COLOUR = (170, 190, 220)
SMOOTH_COLOUR = (31, 90, 180)
MARK_COLOURS = {"lesson": (0, 114, 178), "valley": (214, 39, 40), "steep": (44, 160, 44),
                "minimum": (148, 103, 189)}


def save_lr_plot(result: LRFindResult, path: str | Path, title: str = "lr_find") -> Path:
    if len(result.lrs) < 2:
        raise ValueError("the lr_find curve has fewer than two points: nothing to plot")
    img = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    left, top, right, bottom = MARGIN[0], MARGIN[1], WIDTH - MARGIN[2], HEIGHT - MARGIN[3]
    xs = [math.log10(lr) for lr in result.lrs]
    finite = [y for y in (*result.losses, *result.raw_losses) if math.isfinite(y)]
    # Clip the top so the final blow-up does not flatten the interesting part of the curve.
    lo = min(finite)
    hi = min(max(finite), lo + 3 * (result.losses[0] - lo) + 1e-6) if math.isfinite(result.losses[0]) else max(finite)
    x0, x1 = xs[0], xs[-1]

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (right - left)

    def py(y: float) -> float:
        y = min(max(y, lo), hi)
        return bottom - (y - lo) / (hi - lo or 1.0) * (bottom - top)

    draw.rectangle((left, top, right, bottom), outline=(120, 120, 120))
    for decade in range(math.ceil(x0), math.floor(x1) + 1):
        x = px(decade)
        draw.line((x, top, x, bottom), fill=(232, 232, 232))
        draw.text((x - 12, bottom + 6), f"1e{decade}", fill="black", font=font)
    for i in range(5):
        y = lo + (hi - lo) * i / 4
        draw.text((8, py(y) - 6), f"{y:.3f}", fill="black", font=font)
    for series, colour, width in ((result.raw_losses, RAW_COLOUR, 1), (result.losses, SMOOTH_COLOUR, 3)):
        points = [(px(x), py(y)) for x, y in zip(xs, series) if math.isfinite(y)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=width)
    for n, (name, lr) in enumerate(result.suggestions.items()):
        x = px(math.log10(lr))
        colour = MARK_COLOURS.get(name, (0, 0, 0))
        draw.line((x, top, x, bottom), fill=colour, width=1)
        draw.text((x + 4, top + 4 + 14 * n), f"{name} {lr:.1e}", fill=colour, font=font)
    draw.text((left, 8), f"{title}: loss (smoothed, raw faint) against learning rate", fill="black", font=font)
    draw.text(((left + right) // 2 - 40, HEIGHT - 22), "learning rate (log)", fill="black", font=font)
    path = Path(path)
    img.save(path)
    return path
