"""Checking a model file's contents before they are trusted: every header field's type and range,
every tensor finite, and an integrity digest that a flipped byte cannot pass.

A model file is read without running code (core.modelfile); these checks make sure what was read
is also sane, so a damaged or crafted file is refused with one line naming what is wrong instead
of loading and answering "bag nan%".
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from guiclassifier.core.archs import N_GROUPS
from guiclassifier.core.augment import AUGMENTS
from guiclassifier.core.errors import ModelFileError
from guiclassifier.core.text import plural

DIGEST_KEY = "digest"
MIN_SIZE, MAX_SIZE = 16, 4096
MAX_CLASSES = 100_000
MAX_CLASS_NAME = 200


def payload_digest(payload: Mapping[str, Any]) -> str:
    """sha256 over every field but the digest itself: header values as canonical JSON, tensors
    by name, dtype, shape and bytes."""
    digest = hashlib.sha256()

    def feed(key: str, value: Any) -> None:
        digest.update(key.encode())
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(value, Mapping):
            for k in sorted(value, key=str):
                feed(f"{key}/{k}", value[k])
        else:
            digest.update(json.dumps(value, sort_keys=True, default=str).encode())

    for key in sorted(payload):
        if key != DIGEST_KEY:
            feed(key, payload[key])
    return digest.hexdigest()


def with_digest(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, DIGEST_KEY: payload_digest(payload)}


def _damaged(path: Path, what: str) -> ModelFileError:
    return ModelFileError(f"{path} is damaged: {what}.")


def check_digest(payload: Mapping[str, Any], path: Path) -> None:
    """Files saved with a digest must still match it (older files have none)."""
    stored = payload.get(DIGEST_KEY)
    if stored is None:
        return
    if not isinstance(stored, str) or stored != payload_digest(payload):
        raise _damaged(path, "its contents do not match the checksum saved with them (changed or corrupted "
                             "since it was saved)")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_header(payload: Mapping[str, Any], path: Path, archs: Mapping[str, Any]) -> None:
    """Type and range of every field a model is built from; the first problem found is named."""
    arch = payload.get("arch")
    if not isinstance(arch, str):
        raise _damaged(path, "its architecture name is not text")
    if arch not in archs:
        raise ModelFileError(f"{path} uses the architecture {arch[:60]!r}, unknown to this version.")
    classes = payload.get("classes")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise _damaged(path, "its class names are not a list of names")
    if not 2 <= len(classes) <= MAX_CLASSES:  # a classifier tells at least two apart
        raise _damaged(path, f"it has {plural(len(classes), 'class', 'classes')} (a classifier needs 2 to {MAX_CLASSES})")
    if any(not c.strip() or len(c) > MAX_CLASS_NAME for c in classes):
        raise _damaged(path, "a class name is empty or longer than 200 characters")
    if len(set(classes)) != len(classes):
        raise _damaged(path, "its class names repeat")
    size = payload.get("size")
    if not _is_int(size) or not MIN_SIZE <= size <= MAX_SIZE:
        raise _damaged(path, f"its image size must be a whole number of pixels from {MIN_SIZE} to {MAX_SIZE} "
                             f"(it is {str(size)[:40]})")
    if "augment" in payload and payload["augment"] not in AUGMENTS:
        raise _damaged(path, "its augmentation is not one of " + ", ".join(AUGMENTS))
    zoom = payload.get("max_zoom", 1.1)
    if not isinstance(zoom, (int, float)) or isinstance(zoom, bool) or not 1.0 <= zoom <= 4.0:
        raise _damaged(path, "its zoom is not a number from 1 to 4")
    frozen = payload.get("frozen_groups", 2)
    if not _is_int(frozen) or not 0 <= frozen < N_GROUPS:
        raise _damaged(path, f"its frozen layer groups are not a whole number from 0 to {N_GROUPS - 1}")
    if not isinstance(payload.get("bn_freeze", False), bool):
        raise _damaged(path, "its bn_freeze setting is not true or false")
    if not isinstance(payload.get("history_json", "[]"), str):
        raise _damaged(path, "its history is not text")
    state = payload.get("state_dict")
    if not isinstance(state, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                 for k, v in state.items()):
        raise _damaged(path, "its weights are not a set of named tensors")


def check_tensors(payload: Mapping[str, Any], path: Path) -> None:
    """Every weight finite, the normalisation's std positive, the familiarity reference sane."""
    for name, tensor in payload["state_dict"].items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise _damaged(path, f"its weights hold NaN or infinite values ({name})")
    std = payload["state_dict"].get("normalize.std")
    if std is not None and not bool((std > 0).all()):
        raise _damaged(path, "its normalisation divides by zero (a standard deviation is not positive)")
    samples, threshold = payload.get("reference_samples"), payload.get("reference_threshold")
    if samples is not None:
        if not isinstance(samples, torch.Tensor) or samples.ndim != 2 or not samples.is_floating_point() \
                or not bool(torch.isfinite(samples).all()):
            raise _damaged(path, "its familiarity reference (for 'unlike the training images') is not a "
                                 "table of finite numbers")
        if not isinstance(threshold, float) or not math.isfinite(threshold) or threshold <= 0:
            raise _damaged(path, "its familiarity threshold is not a positive number")
