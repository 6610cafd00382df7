"""Run an exported model (.onnx or .pt2) on image files using only what the file itself says: its
classes, image size and preprocessing are in its metadata (guiclassifier.core.export_metadata).

This file imports nothing of guiclassifier: it is what a user's own program would do, and the
export's parity check runs it in a separate process to prove the file answers like the app.
Needs numpy and Pillow, plus onnxruntime (.onnx) or torch (.pt2): nothing else.

    python exported_runner.py MODEL IMAGE...   ->   JSON {"classes": [...], "probabilities": [[...]...]}
    python exported_runner.py MODEL @LIST      (LIST: a text file of image paths, one a line)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

METADATA_KEY = "guiclassifier"  # the ONNX metadata_props key, and the pt2 extra file's name (+ .json)
BATCH = 32


def read_metadata(model: str | Path) -> dict:
    """The JSON description stored inside the exported file."""
    return load(model)[0]


def _to_rgb(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        if img.mode.startswith("I;16") or (img.mode == "I" and lo >= 0 and hi <= 65535):
            lo, hi = 0.0, 65535.0 if hi > 255 else 255.0
        scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) / (hi - lo) * 255.0
        img = Image.fromarray(np.nan_to_num(scaled).clip(0, 255).astype(np.uint8), mode="L")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        out = Image.new("RGB", rgba.size, background)
        out.paste(rgba, mask=rgba.getchannel("A"))
        return out
    return img.convert("RGB")


def preprocess(path: str | Path, meta: dict) -> np.ndarray:
    """(3, size, size) float32 in [0, 1], exactly as the metadata's preprocessing says."""
    pre = meta["preprocessing"]
    size = int(meta["image_size"])
    with Image.open(path) as img:
        if img.format == "JPEG" and pre.get("jpeg_draft_side"):
            img.draft("RGB", (pre["jpeg_draft_side"], pre["jpeg_draft_side"]))
        img.load()
        img = _to_rgb(ImageOps.exif_transpose(img), tuple(pre["transparent_background"]))
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)  # the shorter side to `size`, as torchvision does
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = int(round((new_w - size) / 2.0)), int(round((new_h - size) / 2.0))
    img = img.crop((left, top, left + size, top + size))
    return (np.asarray(img, dtype=np.float32) / 255.0).transpose(2, 0, 1)


def load(model: str | Path) -> tuple[dict, Callable[[np.ndarray], np.ndarray]]:
    """The model's metadata, and a function from a preprocessed batch to its probabilities (the
    file is opened once for both)."""
    model = Path(model)
    missing = f"{model} has no {METADATA_KEY!r} metadata: export it again with guiclassifier"
    if model.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        props = session.get_modelmeta().custom_metadata_map  # the file's metadata_props
        if METADATA_KEY not in props:
            raise SystemExit(missing)
        meta = json.loads(props[METADATA_KEY])
        return meta, lambda x: np.asarray(session.run(None, {meta["input_name"]: x})[0], dtype=np.float64)
    import torch

    extra = {f"{METADATA_KEY}.json": ""}
    module = torch.export.load(str(model), extra_files=extra).module()
    if not extra[f"{METADATA_KEY}.json"]:
        raise SystemExit(missing)

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(x)).numpy().astype(np.float64)

    return json.loads(extra[f"{METADATA_KEY}.json"]), run


def predict(model: str | Path, images: list[str]) -> tuple[list[str], np.ndarray]:
    """(classes, probabilities (n, classes)) of the images, with the model's own metadata."""
    meta, run = load(model)
    batches = [run(np.stack([preprocess(p, meta) for p in images[i:i + BATCH]]).astype(np.float32))
               for i in range(0, len(images), BATCH)]  # batches: hundreds of images fit in little memory
    return list(meta["classes"]), np.concatenate(batches) if batches else np.zeros((0, len(meta["classes"])))


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    images = argv[1:]
    if len(images) == 1 and images[0].startswith("@"):  # a file listing the images, one a line
        images = Path(images[0][1:]).read_text(encoding="utf-8").splitlines()
    classes, probs = predict(argv[0], images)
    print(json.dumps({"classes": classes, "probabilities": probs.tolist(),
                      "imported_guiclassifier": any(m.startswith("guiclassifier") for m in sys.modules)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
