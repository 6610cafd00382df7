"""MODEL.md, a readable summary of a model written beside it: classes, data, how it was trained
(each stage's learning rates as used, every epoch), accuracy with and without TTA, the confusion
matrix, what it cannot be trusted on, and how to run its ONNX export with onnxruntime alone."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guiclassifier._version import __version__

if TYPE_CHECKING:
    from guiclassifier.core.learner import Evaluation, Learner

ONNX_SNIPPET = """```python
import json, sys
import numpy as np, onnxruntime
from PIL import Image, ImageOps

session = onnxruntime.InferenceSession("{onnx}")
meta = json.loads(session.get_modelmeta().custom_metadata_map["guiclassifier"])
size = meta["image_size"]
img = ImageOps.exif_transpose(Image.open(sys.argv[1])).convert("RGB")
w, h = img.size
img = img.resize((size, int(size * h / w)) if w <= h else (int(size * w / h), size), Image.Resampling.BILINEAR)
left, top = round((img.width - size) / 2), round((img.height - size) / 2)
x = np.asarray(img.crop((left, top, left + size, top + size)), np.float32).transpose(2, 0, 1)[None] / 255
probs = session.run(None, {{meta["input_name"]: x}})[0][0]
print(meta["classes"][probs.argmax()], f"{{probs.max():.1%}}")
```"""


def card_path(model_file: str | Path) -> Path:
    """`m.gcm` (or `m.onnx`) -> `m.MODEL.md` beside it."""
    model_file = Path(model_file)
    return model_file.with_name(f"{model_file.stem}.MODEL.md")


def write_model_card(learner: Learner, model_file: str | Path, plain: Evaluation | None = None,
                     tta: Evaluation | None = None, onnx_file: str | None = None) -> Path:
    """Write the card of `learner` (saved at `model_file`) beside it; the evaluations, when given,
    are its accuracy without and with TTA on the validation set."""
    path = card_path(model_file)
    path.write_text(model_card(learner, Path(model_file).name, plain, tta, onnx_file), encoding="utf-8")
    return path


def model_card(learner: Learner, name: str, plain: Evaluation | None, tta: Evaluation | None,
               onnx_file: str | None) -> str:
    classes = list(learner.classes)
    lines = [f"# {name}", "",
             f"An image classifier made with guiclassifier {__version__} on {time.strftime('%Y-%m-%d')}: "
             f"{learner.arch} ({learner.weights_source.describe()}), {learner.size} px images, "
             f"{len(classes)} classes: {', '.join(classes)}.", ""]
    lines += _data(learner) + _training(learner.history) + _accuracy(classes, plain, tta) + _limits(learner)
    lines += ["## Run it elsewhere", "",
              f"Export it (File > Export model, or `guiclassifier export {name} --format onnx --out "
              f"{onnx_file or Path(name).stem + '.onnx'}`); the ONNX file carries its classes and preprocessing. "
              "With numpy, Pillow and onnxruntime alone:", "",
              ONNX_SNIPPET.format(onnx=onnx_file or Path(name).stem + ".onnx"), ""]
    return "\n".join(lines)


def _data(learner: Learner) -> list[str]:
    data = learner.data
    if data is None:
        return ["## Data", "", "No dataset was open when this card was written.", ""]
    lines = ["## Data", "", f"`{data.path}`, validation split as scanned:", "", "| class | train | valid |",
             "| --- | ---: | ---: |"]
    for cls, (train, valid) in data.report.counts().items():
        lines.append(f"| {cls} | {train} | {valid} |")
    skipped = len(data.report.skipped)
    lines += ["", f"{skipped} file{'s' if skipped != 1 else ''} could not be read and were left out." if skipped
              else "Every file could be read.", ""]
    return lines


def _training(history: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> list[str]:
    lines = ["## Training", "", "| # | step | learning rates (per layer group) | epochs | what trained | accuracy |",
             "| ---: | --- | --- | ---: | --- | ---: |"]
    epochs: list[tuple[int, dict[str, Any]]] = []
    for i, entry in enumerate(history, 1):
        if entry.get("kind") == "lr_find":
            picked = ", ".join(f"{k} {v:.2e}" for k, v in (entry.get("suggestions") or {}).items())
            lines.append(f"| {i} | lr_find | suggested: {picked or '-'} | - | {entry.get('trainable', '')} | - |")
        elif entry.get("kind") == "fit":
            lrs = ", ".join(f"{lr:.2e}" for lr in entry.get("lrs", []))
            schedule = "constant" if entry.get("cycle_len") is None else \
                f"SGDR cycle_len {entry['cycle_len']}, cycle_mult {entry.get('cycle_mult', 1)}"
            accuracy = entry.get("final_accuracy")
            kept = entry.get("kept_cycle")
            lines.append(f"| {i} | fit ({schedule}{', precomputed' if entry.get('precompute') else ''}"
                         f"{f', kept cycle {kept + 1}' if kept is not None else ''}) | {lrs} | "
                         f"{len(entry.get('epochs', []))} | {entry.get('trainable', '')} | "
                         f"{'-' if accuracy is None else f'{accuracy:.1%}'} |")
            epochs += [(i, e) for e in entry.get("epochs", [])]
    if not history:
        lines.append("| - | not trained | - | - | - | - |")
    lines += ["", "Every epoch:", "", "| step | epoch | train loss | valid loss | accuracy | seconds |",
              "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {step} | {e['epoch'] + 1} | {e['train_loss']:.4f} | {e['valid_loss']:.4f} | {e['accuracy']:.1%} | "
              f"{e['seconds']:.1f} |" for step, e in epochs]
    return lines + [""]


def _accuracy(classes: list[str], plain: Evaluation | None, tta: Evaluation | None) -> list[str]:
    lines = ["## Accuracy", ""]
    if plain is None and tta is None:
        return lines + ["Not measured: no dataset was open.", ""]
    for label, ev in (("without TTA", plain), ("with TTA (4 augmented views averaged in)", tta)):
        if ev is not None:
            lines.append(f"- {ev.accuracy:.1%} {label}, on {ev.n} validation images (loss {ev.loss:.4f})")
    shown = tta or plain
    assert shown is not None
    lines += ["", f"Confusion matrix ({'with' if shown.tta else 'without'} TTA; rows: actual, columns: predicted):", "",
              "| actual \\ predicted | " + " | ".join(classes) + " |", "| --- |" + " ---: |" * len(classes)]
    lines += [f"| {cls} | " + " | ".join(str(n) for n in row) + " |" for cls, row in zip(classes, shown.confusion)]
    return lines + [""]


def _limits(learner: Learner) -> list[str]:
    threshold = learner.confidence_threshold
    lines = ["## Known limits", "",
             "- It only knows its classes: any picture gets one of them. "
             + ("Images unlike the training images are flagged in the app (the familiarity check kept in the "
                "model file)." if learner.reference is not None else
                "The familiarity check is built the first time the app predicts with it on its dataset."),
             "- " + (f"Below {threshold:.0%} confidence it answers 'not sure' (its threshold, saved in the model and "
                     "in exports)." if threshold > 0 else
                     "It answers every image, however unsure (no confidence threshold set: the Interpret tab's "
                     "'Answer only when sure' sets one)."),
             f"- Trained on {learner.size} px images: much smaller images are blown up and look blurred to it.", ""]
    return lines
