"""Exporting a model to a file that runs without guiclassifier: ONNX or a torch.export program.

The exported model takes a float32 batch (N, 3, size, size) of RGB values in [0, 1] and returns
class probabilities (N, n_classes); normalisation is inside it. Beside the file goes
``<file>.json`` with the class names and the preprocessing to apply:
open as RGB, resize the shorter side to `size` (bilinear, antialiased), centre-crop to
size x size, scale to [0, 1], channels first.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from guiclassifier.core.errors import GuiClassifierError

if TYPE_CHECKING:
    from guiclassifier.core.learner import Learner

FORMATS = ("onnx", "pt2")


class ExportError(GuiClassifierError):
    """The model could not be exported (missing optional package, unsupported layer...)."""


class _Probabilities(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=1)


def sidecar_path(out: Path) -> Path:
    return out.with_name(out.name + ".json")


def export_model(learner: Learner, out: str | Path, fmt: str) -> tuple[Path, Path]:
    """Write the model as `fmt` to `out` and its description to `out`.json; returns both paths."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # A CPU copy in eval mode: the learner's own model, mode and device are left untouched.
    # Contiguous (NCHW) weights: what a plain float batch, as the export takes, runs best with.
    model = _Probabilities(copy.deepcopy(learner.model).to("cpu", memory_format=torch.contiguous_format)).eval()
    example = torch.rand(2, 3, learner.size, learner.size)
    batch = torch.export.Dim("batch", min=1)
    try:
        if fmt == "pt2":
            program = torch.export.export(model, (example,), dynamic_shapes={"x": {0: batch}})
            torch.export.save(program, out)
        else:
            missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
            if missing:
                raise ExportError("ONNX export needs the optional packages onnx and onnxscript: "
                                  "pip install 'guiclassifier[onnx]'")
            torch.onnx.export(model, (example,), str(out), input_names=["image"], output_names=["probabilities"],
                              dynamic_shapes={"x": {0: batch}}, dynamo=True, external_data=False,
                              verbose=False)  # its progress lines are not for the user
    except ExportError:
        raise
    except Exception as exc:  # exporters raise many kinds; the user needs the one line
        raise ExportError(f"export to {fmt} failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") \
            from exc
    side = sidecar_path(out)
    side.write_text(json.dumps({
        "format": fmt, "arch": learner.arch, "classes": list(learner.classes), "size": learner.size,
        "input": f"float32 (N, 3, {learner.size}, {learner.size}), RGB in [0, 1]",
        "output": "float32 (N, n_classes) probabilities, in the order of 'classes'",
        "preprocessing": ["open as RGB", f"resize the shorter side to {learner.size} (bilinear, antialiased)",
                          f"centre crop {learner.size}x{learner.size}", "scale to [0, 1], channels first"],
    }, indent=2) + "\n")
    return out, side
