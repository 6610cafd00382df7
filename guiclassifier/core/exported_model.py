"""Predicting with an exported model file (.onnx, .pt2) as `guiclassifier predict` does with a .gcm:
through guiclassifier/exported_runner.py, so the app reads such a file exactly as a user's program
would, from its own metadata. No TTA, heatmaps or familiarity check: those need the full model."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from guiclassifier.core.cancel import CancelToken
from guiclassifier.core.errors import ModelFileError
from guiclassifier.core.events import Callback, Emitter, PredictProgress
from guiclassifier.core.predict import Prediction, Predictions
from guiclassifier.core.progress import EtaClock

SUFFIXES = (".onnx", ".pt2")


def is_exported(path: str | Path) -> bool:
    return Path(path).suffix.lower() in SUFFIXES


def predict_exported(model: str | Path, paths: Sequence[str | Path], callbacks: Callback | Sequence[Callback] | None = None,
                     cancel: CancelToken | None = None) -> tuple[tuple[str, ...], Predictions]:
    """(classes, a Prediction per path in order); unreadable files get the reason."""
    import guiclassifier.exported_runner as runner

    emit, cancel = Emitter(callbacks), cancel or CancelToken()
    try:
        meta, run = runner.load(model)
    except SystemExit as exc:  # the runner's own words for a file without metadata
        raise ModelFileError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - onnxruntime and torch raise many kinds for a foreign file
        raise ModelFileError(f"{model} cannot be run as an exported model ({str(exc).splitlines()[0]})") from None
    threshold = float(meta.get("confidence_threshold") or 0.0)
    clock = EtaClock(len(paths))
    results: list[Prediction] = []
    for start in range(0, len(paths), runner.BATCH):
        if cancel.cancelled:
            return tuple(meta["classes"]), Predictions(tuple(results), cancelled=True)
        began = time.perf_counter()
        chunk = [str(p) for p in paths[start:start + runner.BATCH]]
        arrays, errors = [], {}
        for j, path in enumerate(chunk):
            try:
                arrays.append(runner.preprocess(path, meta))
            except Exception as exc:  # noqa: BLE001 - Pillow raises anything on odd files
                errors[j] = f"cannot be read ({type(exc).__name__}: {exc})"
        probs = run(np.stack(arrays).astype(np.float32)) if arrays else np.zeros((0, len(meta["classes"])))
        per_file = (time.perf_counter() - began) / max(1, len(chunk))
        row = 0
        for j, path in enumerate(chunk):
            if j in errors:
                results.append(Prediction(path, None, errors[j], per_file))
            else:
                results.append(Prediction(path, tuple(float(v) for v in probs[row]), None, per_file,
                                          threshold=threshold))
                row += 1
        emit(PredictProgress(len(results), len(paths), clock.elapsed(), clock.eta(len(results))))
    return tuple(meta["classes"]), Predictions(tuple(results))
