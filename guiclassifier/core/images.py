"""Opening any image file as an 8-bit RGB picture, or saying in words why it cannot be."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from guiclassifier.core.errors import ImageError

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"})
MAX_PIXELS = 50_000_000
"""Images with more pixels are refused before decoding (decompression bombs)."""
BACKGROUND = (255, 255, 255)
"""Transparent pixels are shown over white, as image viewers do."""


def is_image_name(path: Path) -> bool:
    """True for names that look like image files (hidden files such as .DS_Store are not)."""
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES


def expand_image_paths(paths: list[str | Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Files as given, plus the image files inside folders (sorted, links to folders not followed);
    and the paths that do not exist, with the reason."""
    files: list[Path] = []
    missing: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                files.extend(Path(dirpath) / f for f in sorted(filenames) if is_image_name(Path(f)))
        elif path.exists():
            files.append(path)
        else:
            missing.append((path, "file not found"))
    return files, missing


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and float single-channel images, scaled to their full range as 8-bit grayscale."""
    arr = np.asarray(img, dtype=np.float64)
    lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
    if img.mode.startswith("I;16") or (img.mode == "I" and lo >= 0 and hi <= 65535):
        lo, hi = 0.0, 65535.0 if hi > 255 else 255.0
    scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) / (hi - lo) * 255.0
    return Image.fromarray(np.nan_to_num(scaled).clip(0, 255).astype(np.uint8), mode="L")


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode (L, LA, P with transparency, RGBA, CMYK, I;16, F, 1...) as RGB."""
    if img.mode == "RGB":
        return img
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        img = _to_8bit(img)
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, BACKGROUND)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def open_rgb(path: str | Path, draft_size: int | None = None) -> Image.Image:
    """Decode a file as an upright (EXIF-rotated) RGB image; raise ImageError with the reason.

    `draft_size` lets JPEG decoding skip detail finer than needed for that size (much faster for
    big photos); the result is still at least that size on its shorter side when the file is.
    """
    return open_rgb_and_size(path, draft_size)[0]


def open_rgb_and_size(path: str | Path, draft_size: int | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """open_rgb, and the size stored in the file (which a draft decode does not return)."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageError(str(path), "empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w * h > MAX_PIXELS:
                    raise ImageError(str(path), f"image too large to open safely ({w}x{h} pixels)")
                if draft_size is not None and img.format == "JPEG":
                    img.draft("RGB", (draft_size, draft_size))
                img.load()
                img = ImageOps.exif_transpose(img)
                return to_rgb(img), (w, h)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(str(path), "not an image file, or a format Pillow cannot read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(str(path), "image too large to open safely") from None
    except FileNotFoundError:
        raise ImageError(str(path), "file not found (moved or deleted?)") from None
    except PermissionError:
        raise ImageError(str(path), "permission denied") from None
    except OSError as exc:
        text = str(exc)
        if "truncated" in text or "broken data stream" in text:
            raise ImageError(str(path), "truncated or damaged image data") from None
        raise ImageError(str(path), f"cannot be decoded ({text})") from None
    except (ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise ImageError(str(path), f"cannot be decoded ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise anything on odd files (10.0: AttributeError)
        raise ImageError(str(path), f"cannot be decoded ({type(exc).__name__}: {exc})") from None
