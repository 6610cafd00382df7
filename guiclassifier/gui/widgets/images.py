"""Converting images for display: PIL and tensors to QPixmap."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from PySide6.QtGui import QImage, QPixmap


def pil_to_pixmap(img: Image.Image) -> QPixmap:
    arr = np.ascontiguousarray(np.asarray(img.convert("RGB")))
    h, w, _ = arr.shape
    return QPixmap.fromImage(QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy())


def tensor_to_pixmap(t: torch.Tensor) -> QPixmap:
    """A (3, H, W) tensor of values in [0, 1]."""
    arr = (t.clamp(0, 1) * 255).byte().permute(1, 2, 0).numpy()
    return pil_to_pixmap(Image.fromarray(arr))
