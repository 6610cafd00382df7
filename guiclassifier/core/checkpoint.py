"""Checkpoints written during fit, so a stopped, crashed or killed run can go on where it was.

A checkpoint holds the model (as a model file would), the optimizer and loss-scaler state, the
fit's schedule and how far it got (epochs and batches done), the epochs' records, the random
generators' states and the learner's history. It is written like a model file (temporary file,
fsync, rename) at the end of every `every`-th epoch; only the newest `keep` are kept. Reading
uses torch.load(weights_only=True), so a crafted file cannot run code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs
import torch

from guiclassifier.core.errors import ModelFileError
from guiclassifier.core.modelfile import load_payload, save_atomically

CHECKPOINT_DIR_ENV = "GUICLASSIFIER_CHECKPOINT_DIR"
FORMAT = "guiclassifier.checkpoint"
FORMAT_VERSION = 1
SUFFIX = ".ckpt"


@dataclass(frozen=True)
class CheckpointConfig:
    folder: Path
    every: int = 1  # epochs between checkpoints
    keep: int = 3  # newest checkpoints kept; older ones are deleted


def default_checkpoint_dir() -> Path:
    """Where the window keeps its checkpoints (the CLI puts them beside the model it writes)."""
    override = os.environ.get(CHECKPOINT_DIR_ENV)
    if override:
        return Path(override)
    return Path(platformdirs.user_data_dir("guiclassifier")) / "checkpoints"


def rng_to_payload(state: dict[str, Any]) -> dict[str, Any]:
    """get_rng_state() in types that weights_only loading accepts (no numpy arrays)."""
    name, keys, pos, has_gauss, cached = state["numpy"]
    out = {**state, "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                              float(cached)]}
    out["python"] = [state["python"][0], list(state["python"][1]), state["python"][2]]
    return out


def rng_from_payload(payload: dict[str, Any]) -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = payload["numpy"]
    version, internal, gauss = payload["python"]
    return {**payload, "numpy": (name, keys.numpy().astype(np.uint32), pos, has_gauss, cached),
            "python": (version, tuple(internal), gauss)}


def checkpoint_paths(folder: Path) -> list[Path]:
    """The checkpoints in `folder`, oldest first (names sort by time of writing)."""
    if not Path(folder).is_dir():
        return []
    return sorted(p for p in Path(folder).iterdir() if p.suffix == SUFFIX and not p.name.startswith("."))


def latest_checkpoint(folder: Path) -> Path | None:
    paths = checkpoint_paths(folder)
    return paths[-1] if paths else None


def write_checkpoint(config: CheckpointConfig, payload: dict[str, Any], name: str) -> Path:
    """Write one checkpoint atomically, then delete all but the newest `keep`."""
    path = save_atomically({"format": FORMAT, "format_version": FORMAT_VERSION, **payload},
                           Path(config.folder) / f"{name}{SUFFIX}", "a checkpoint")
    for old in checkpoint_paths(config.folder)[:-max(1, config.keep)]:
        old.unlink(missing_ok=True)
    return path


def read_checkpoint(path: Path) -> dict[str, Any]:
    payload = load_payload(Path(path))
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a guiclassifier checkpoint.")
    version = payload.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFileError(f"{path} is damaged: its format version is not a number.")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{path} was written by a newer guiclassifier; update the app to resume it.")
    return payload


def clear_checkpoints(folder: Path) -> None:
    """Delete the checkpoints in `folder` (a finished run needs none), and the folder if empty."""
    for path in checkpoint_paths(folder):
        path.unlink(missing_ok=True)
    try:
        Path(folder).rmdir()
    except OSError:
        pass  # not there, or holds other files: leave it
