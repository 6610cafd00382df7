"""Exporting a model to a file that runs without guiclassifier: ONNX or a torch.export program.

The exported model takes a float32 batch (N, 3, size, size) of RGB values in [0, 1] and returns
class probabilities (N, n_classes); normalisation is inside it. The file itself carries its
classes, image size and preprocessing (core.export_metadata: ONNX metadata_props, a pt2 extra
file), so it is all a user needs; ``<file>.json`` beside it repeats them for convenience.

Nothing is written at `out` until the export has passed its parity check (core.parity): the
file, run in a separate process that never imports guiclassifier (guiclassifier/exported_runner.py),
gives the app's answers.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from guiclassifier.core.errors import ExportError
from guiclassifier.core.export_metadata import INPUT_NAME, export_metadata
from guiclassifier.core.model_card import write_model_card
from guiclassifier.core.parity import Parity, check_parity
from guiclassifier.exported_runner import METADATA_KEY

if TYPE_CHECKING:
    from guiclassifier.core.cancel import CancelToken
    from guiclassifier.core.learner import Learner

FORMATS = ("onnx", "pt2")


class _Probabilities(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=1)


def sidecar_path(out: Path) -> Path:
    return out.with_name(out.name + ".json")


@dataclass(frozen=True)
class Exported:
    model_file: Path
    description: Path  # the sidecar JSON: the same as inside the file
    parity: Parity


def export_model(learner: Learner, out: str | Path, fmt: str, check_images: Sequence[str] | None = None,
                 cancel: CancelToken | None = None) -> Exported:
    """Write the model as `fmt` to `out` (with its description inside, and in `out`.json) once it
    answers like the app on `check_images` (default: up to core.parity.SAMPLE validation images).
    A failed check raises ExportError and leaves `out` as it was."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=out.suffix or f".{fmt}", dir=out.parent)
    os.close(fd)
    staged = Path(name)
    try:
        meta = export_metadata(learner, fmt)
        _write(learner, staged, fmt, meta)
        parity = check_parity(learner, staged, check_images, cancel)
        os.replace(staged, out)
    finally:
        staged.unlink(missing_ok=True)
    side = sidecar_path(out)
    side.write_text(json.dumps(meta, indent=2) + "\n")
    plain = learner.evaluate(cancel=cancel) if learner.data is not None else None
    write_model_card(learner, out, plain if plain is not None and not plain.cancelled else None,
                     onnx_file=out.name if fmt == "onnx" else None)
    return Exported(out, side, parity)


def _write(learner: Learner, out: Path, fmt: str, meta: dict[str, Any]) -> None:
    """The model and its metadata as `fmt` at `out`."""
    # A CPU copy in eval mode: the learner's own model, mode and device are left untouched.
    # Contiguous (NCHW) weights: what a plain float batch, as the export takes, runs best with.
    model = _Probabilities(copy.deepcopy(learner.model).to("cpu", memory_format=torch.contiguous_format)).eval()
    example = torch.rand(2, 3, learner.size, learner.size)
    batch = torch.export.Dim("batch", min=1)
    try:
        if fmt == "pt2":
            program = torch.export.export(model, (example,), dynamic_shapes={"x": {0: batch}})
            torch.export.save(program, out, extra_files={f"{METADATA_KEY}.json": json.dumps(meta)})
        else:
            missing = [m for m in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]
            if missing:
                raise ExportError(f"ONNX export needs {' and '.join(missing)}, installed with guiclassifier but "
                                  "missing from this Python: pip install --force-reinstall guiclassifier")
            # Its progress lines are not for the user: verbose=False, and onnxscript before 0.5
            # prints its rewrite rules anyway.
            with contextlib.redirect_stdout(io.StringIO()):
                torch.onnx.export(model, (example,), str(out), input_names=[INPUT_NAME],
                                  output_names=["probabilities"], dynamic_shapes={"x": {0: batch}}, dynamo=True,
                                  external_data=False, verbose=False)
            _add_onnx_metadata(out, meta)
    except ExportError:
        raise
    except Exception as exc:  # exporters raise many kinds; the user needs the one line
        raise ExportError(f"export to {fmt} failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") \
            from exc


def _add_onnx_metadata(path: Path, meta: dict[str, Any]) -> None:
    import onnx

    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    for key, value in (("names", json.dumps(dict(enumerate(meta["classes"])))), ("imgsz", str(meta["image_size"]))):
        entry = proto.metadata_props.add()  # the names Ultralytics' exports use, for tools that read them
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))
