"""What an exported model carries inside its file, so it can be used without the app or a sidecar:
its classes, the image size and the exact preprocessing (guiclassifier/exported_runner.py follows
it), the normalisation folded into it, the architecture, the app's version and how it was trained."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from guiclassifier._version import __version__
from guiclassifier.core.images import BACKGROUND
from guiclassifier.core.resized import needed_side

if TYPE_CHECKING:
    from guiclassifier.core.learner import Learner

INPUT_NAME = "image"
FORMAT_VERSION = 1


def export_metadata(learner: Learner, fmt: str) -> dict[str, Any]:
    """The description stored in an export of `learner` as `fmt` (JSON-ready)."""
    model = learner.model
    fits = [h for h in learner.history if h.get("kind") == "fit"]
    return {
        "format": "guiclassifier.export", "format_version": FORMAT_VERSION, "file_format": fmt,
        "guiclassifier_version": __version__, "arch": learner.arch, "classes": list(learner.classes),
        "image_size": learner.size, "input_name": INPUT_NAME,
        "input": f"float32 (N, 3, {learner.size}, {learner.size}), RGB in [0, 1], channels first",
        "output": "float32 (N, n_classes) probabilities, in the order of 'classes'",
        "preprocessing": {
            "decode": "RGB, EXIF orientation applied; 16-bit and float images scaled to 8-bit grey",
            "transparent_background": list(BACKGROUND),
            # The app decodes JPEGs at reduced scale (Pillow's draft mode) down to this shorter side.
            "jpeg_draft_side": needed_side(learner.size, learner.max_zoom),
            "resize_shorter_side": learner.size, "resample": "bilinear (Pillow)",
            "centre_crop": learner.size, "scale": "1/255",
            "steps": ["open as RGB", f"resize the shorter side to {learner.size} (bilinear, antialiased)",
                      f"centre crop {learner.size}x{learner.size}", "scale to [0, 1], channels first"],
        },
        "normalisation_inside": {"mean": model.normalize.mean.flatten().tolist(),
                                 "std": model.normalize.std.flatten().tolist()},
        "confidence_threshold": learner.confidence_threshold,
        "training": {"fits": len(fits), "epochs": sum(len(h.get("epochs", [])) for h in fits),
                     "final_accuracy": fits[-1].get("final_accuracy") if fits else None},
    }
