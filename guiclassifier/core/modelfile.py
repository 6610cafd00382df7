"""The .gcm model file: weights plus everything needed to use them, readable without running code.

It is a ``torch.save`` of a dict of plain values and tensors, read back with
``torch.load(weights_only=True)``, which refuses pickled objects, so a crafted file cannot execute
anything. Writes go to a temporary file that is fsynced and renamed over the target: a crash or a
full disk never leaves a half-written model where the previous one was.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from guiclassifier._version import __version__
from guiclassifier.core.errors import ModelFileError
from guiclassifier.core.model_checks import check_digest, check_header, check_tensors, with_digest
from guiclassifier.core.models import ARCHS, Classifier, build_classifier
from guiclassifier.core.reference import FeatureReference
from guiclassifier.core.weights import WeightsSource

FORMAT = "guiclassifier.model"
FORMAT_VERSION = 1
SUFFIX = ".gcm"


@dataclass(frozen=True)
class ModelRecord:
    """What a model file holds: a model and what is needed to use it and train it on. A Learner
    makes one to be saved (Learner.model_record) and is built from one (Learner.from_record)."""

    model: Classifier  # weights loaded, layer groups frozen as saved
    arch: str
    classes: tuple[str, ...]
    size: int
    augment: str
    max_zoom: float
    weights_source: WeightsSource
    # How it was trained, as Learner keyword arguments (opt, momentum, wd, bn_freeze, train_bn):
    # a reopened or resumed model trains on the same way.
    settings: Mapping[str, Any] = field(default_factory=dict)
    history: tuple[dict[str, Any], ...] = ()
    reference: FeatureReference | None = None
    confidence_threshold: float = 0.0  # answers below it are "not sure" (core.coverage)


def model_payload(record: ModelRecord) -> dict[str, Any]:
    """What a model file holds (also the model part of a checkpoint)."""
    model, settings = record.model, record.settings
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "app_version": __version__,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "arch": record.arch,
        "classes": list(record.classes),
        "size": record.size,
        "augment": record.augment,
        "max_zoom": record.max_zoom,
        "mean": model.normalize.mean.flatten().tolist(),
        "std": model.normalize.std.flatten().tolist(),
        "frozen_groups": model.frozen_groups,
        "bn_freeze": model.bn_freeze,
        "training": {**{k: settings[k] for k in ("opt", "momentum", "wd") if k in settings},
                     "train_bn": model.train_bn},
        "weights_source": record.weights_source.describe(),
        # JSON text keeps the history free of types that weights_only loading would refuse.
        "history_json": json.dumps(list(record.history)),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    if record.confidence_threshold > 0:
        payload["confidence_threshold"] = float(record.confidence_threshold)
    if record.reference is not None:
        payload["reference_samples"] = record.reference.samples
        payload["reference_threshold"] = record.reference.threshold
    return with_digest(payload)


def _training_settings(payload: dict[str, Any]) -> dict[str, Any]:
    """The optimizer and BatchNorm settings a model was trained with; files from before they
    were stored get the defaults."""
    raw = payload.get("training")
    if not isinstance(raw, dict):
        return {"opt": "sgd", "wd": 1e-4, "train_bn": False}  # how every model was trained before this was stored
    settings: dict[str, Any] = {}
    if raw.get("opt") in ("sgd", "adamw"):
        settings["opt"] = raw["opt"]
    for key in ("momentum", "wd"):
        value = raw.get(key)
        if isinstance(value, float) and math.isfinite(value) and value >= 0:
            settings[key] = value
    if isinstance(raw.get("train_bn"), bool):
        settings["train_bn"] = raw["train_bn"]
    return settings


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it; set straight back (at import, before any thread)
    os.umask(mask)
    return mask


UMASK = _read_umask()


def save_atomically(payload: dict[str, Any], path: Path, what: str = "the model") -> Path:
    """torch.save to a temporary file beside `path`, fsync, rename over `path`. On failure the
    temporary file is removed and any earlier file at `path` is unchanged."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, 0o666 & ~UMASK)  # mkstemp makes it 0600; saved files follow the umask
        os.replace(tmp_name, path)
    except OSError as exc:
        Path(tmp_name).unlink(missing_ok=True)
        reason = "the disk is full" if getattr(exc, "errno", None) == 28 else str(exc)
        raise ModelFileError(f"Could not save {what} to {path}: {reason}. "
                             "Any earlier file there is unchanged.") from None
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def write_model_file(record: ModelRecord, path: Path) -> Path:
    """Atomically write the model to `path`."""
    return save_atomically(model_payload(record), path)


def load_payload(path: Path) -> Any:
    """torch.load with weights_only (no code runs), errors in words."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelFileError(f"The model file {path} does not exist.") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path} is a folder, not a model file.") from None
    except Exception as exc:  # unpickling refusals, zip errors, truncation: all "not ours"
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            detail = "it contains Python objects that could run code, which is refused"
        raise ModelFileError(f"{path} is not a guiclassifier model file or is damaged ({detail}).") from None


def read_header(path: Path) -> dict[str, Any]:
    """The file's dict, checked to be one of ours (no code runs while reading)."""
    return check_model_payload(load_payload(path), path)


def check_model_payload(payload: Any, path: Path) -> dict[str, Any]:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{path} is a PyTorch file but not a guiclassifier model "
                             "(to start from a torchvision weights file, choose it as the weights source).")
    version = payload.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFileError(f"{path} is damaged: its format version is not a number.")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{path} was saved by a newer guiclassifier "
                             f"({payload.get('app_version', '?')}); update the app to open it.")
    missing = [k for k in ("arch", "classes", "size", "state_dict") if k not in payload]
    if missing:
        raise ModelFileError(f"{path} is damaged: it lacks {', '.join(missing)}.")
    check_digest(payload, path)
    check_header(payload, path, ARCHS)
    check_tensors(payload, path)
    return payload


def read_model_file(path: Path) -> ModelRecord:
    """The model in a model file (checked; no code runs while reading)."""
    return model_record(read_header(path), path)


def model_record(payload: dict[str, Any], path: Path) -> ModelRecord:
    """The model of a checked payload (see check_model_payload); `path` names it in errors."""
    classes = tuple(str(c) for c in payload["classes"])
    model, _ = build_classifier(payload["arch"], len(classes), weights=None)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ModelFileError(f"{path} is damaged: its weights do not fit {payload['arch']} "
                             f"({str(exc).splitlines()[0]}).") from None
    model.freeze_to(int(payload.get("frozen_groups", 2)))
    try:
        history = json.loads(payload.get("history_json", "[]"))
    except (ValueError, RecursionError):
        history = []
    if not isinstance(history, list):
        history = []  # only shown, never needed to use the model
    return ModelRecord(model, payload["arch"], classes, int(payload["size"]), payload.get("augment", "side_on"),
                       float(payload.get("max_zoom", 1.1)), WeightsSource("file", Path(path).name, str(path)),
                       {"bn_freeze": bool(payload.get("bn_freeze", False)), **_training_settings(payload)},
                       tuple(history), _reference(payload, model.n_features), _threshold(payload))


def _threshold(payload: dict[str, Any]) -> float:
    """The stored confidence threshold; a missing or malformed one answers everything."""
    value = payload.get("confidence_threshold", 0.0)
    return float(value) if isinstance(value, float) and 0.0 <= value < 1.0 else 0.0


def _reference(payload: dict[str, Any], n_features: int) -> FeatureReference | None:
    """The stored familiarity reference; a missing or malformed one only means no familiarity
    warnings until it is rebuilt."""
    samples, threshold = payload.get("reference_samples"), payload.get("reference_threshold")
    if isinstance(samples, torch.Tensor) and samples.ndim == 2 and samples.shape[1] == n_features \
            and isinstance(threshold, float) and math.isfinite(threshold):
        return FeatureReference(samples.half(), threshold)
    return None
