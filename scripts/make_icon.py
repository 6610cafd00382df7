"""Draw resources/icon.png: an lr_find-style curve with the chosen point, on a rounded square."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 256
OUT = Path(__file__).resolve().parent.parent / "resources" / "icon.png"


def main() -> None:
    scale = 4  # draw large, then downsample for smooth edges
    s = SIZE * scale
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((8 * scale, 8 * scale, s - 8 * scale, s - 8 * scale), radius=48 * scale,
                           fill=(31, 90, 180, 255))
    points = []
    for i in range(101):
        t = i / 100
        loss = 0.75 - 0.45 / (1 + math.exp(-(t - 0.45) * 14)) + (max(0.0, t - 0.78) ** 2) * 9
        points.append(((40 + 176 * t) * scale, (230 - 200 * loss) * scale))
    draw.line(points, fill=(255, 255, 255, 255), width=14 * scale, joint="curve")
    x, y = points[48]
    r = 17 * scale
    draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 150, 30, 255), outline=(255, 255, 255, 255),
                 width=5 * scale)
    img.resize((SIZE, SIZE), Image.Resampling.LANCZOS).save(OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
