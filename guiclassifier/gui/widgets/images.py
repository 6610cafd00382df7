"""Converting images for display: PIL images to QPixmap, files to thumbnails."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon, QImage, QPixmap

from guiclassifier.core.errors import ImageError
from guiclassifier.core.images import open_rgb


def pil_to_pixmap(img: Image.Image) -> QPixmap:
    arr = np.ascontiguousarray(np.asarray(img.convert("RGB")))
    h, w, _ = arr.shape
    return QPixmap.fromImage(QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy())


def thumbnail_icon(path: str, size: int) -> QIcon | None:
    """An icon of the image at `path` fitting `size` pixels (small images are enlarged, so a
    28-pixel image is still visible); None when the file cannot be read (any more)."""
    try:
        img = open_rgb(path, draft_size=size * 2)
    except ImageError:
        return None
    img.thumbnail((size * 2, size * 2))  # device pixel ratio 2 still looks sharp
    pixmap = pil_to_pixmap(img)
    if max(img.size) < size * 2:
        pixmap = pixmap.scaled(size * 2, size * 2, Qt.AspectRatioMode.KeepAspectRatio,
                               Qt.TransformationMode.SmoothTransformation)
    return QIcon(pixmap)


def heatmap_icon(path: str, cam: np.ndarray, opacity: float, size: int) -> QIcon | None:
    """An icon of the centre square the model saw with its heatmap over it (core.heatmap_image);
    None when the file cannot be read (any more)."""
    from guiclassifier.core.heatmap_image import overlay

    try:
        img = open_rgb(path, draft_size=size * 2)
    except ImageError:
        return None
    return QIcon(pil_to_pixmap(overlay(img, cam, opacity, side=size * 2)))
