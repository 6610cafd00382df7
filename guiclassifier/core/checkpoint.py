"""Checkpoints written during fit, so a stopped, crashed or killed run can go on where it was.

A checkpoint holds the model (as a model file would), the optimizer and loss-scaler state, the
fit's schedule and how far it got (epochs and batches done), the epochs' records, the random
generators' states and the learner's history (the Checkpoint record below is the layout). It is
written like a model file (temporary file, fsync, rename) at the end of every `every`-th epoch, by
a listener on the fit's events (core.checkpoint_writer); only the newest `keep` are kept. Reading
uses torch.load(weights_only=True), so a crafted file cannot run code.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs
import torch

from guiclassifier.core.errors import ModelFileError
from guiclassifier.core.fit_records import EpochRecord, FitPlan, FitProgress
from guiclassifier.core.modelfile import (
    ModelRecord,
    check_model_payload,
    load_payload,
    model_payload,
    model_record,
    save_atomically,
)

CHECKPOINT_DIR_ENV = "GUICLASSIFIER_CHECKPOINT_DIR"
FORMAT = "guiclassifier.checkpoint"
FORMAT_VERSION = 1
SUFFIX = ".ckpt"


@dataclass(frozen=True)
class CheckpointConfig:
    folder: Path
    every: int = 1  # epochs between checkpoints
    keep: int = 3  # newest checkpoints kept; older ones are deleted


@dataclass(frozen=True)
class TrainingState:
    """A learner's part of a checkpoint: its model, optimizer and loss-scaler state, and its data."""

    model: ModelRecord
    optimizer: dict[str, Any]
    scaler: dict[str, Any]
    precompute: bool
    data_path: str | None = None
    data_settings: dict[str, Any] | None = None  # ImageData.settings(): to open the same data again


@dataclass(frozen=True)
class Checkpoint:
    """What a checkpoint holds: a learner's state, its fit's plan and how far the fit got, and the
    caller's context (a recipe's place, for one)."""

    state: TrainingState
    plan: FitPlan
    progress: FitProgress
    context: dict[str, Any] | None = None

    def payload(self) -> dict[str, Any]:
        """The checkpoint file's dict, in types that weights_only loading accepts."""
        state, plan, progress = self.state, self.plan, self.progress
        return {
            "model": model_payload(state.model),
            "optimizer": state.optimizer,
            "scaler": state.scaler,
            "fit": {"lrs": list(plan.lrs), "n_cycle": plan.n_cycle, "cycle_len": plan.cycle_len,
                    "cycle_mult": plan.cycle_mult, "until_overfit": plan.until_overfit},
            "best": progress.best,
            "epochs_done": progress.epochs_done,
            "steps_per_epoch": progress.steps_per_epoch,
            "records": [{**asdict(r), "lrs": list(r.lrs)} for r in progress.records],
            "rng": rng_to_payload(progress.rng),
            "precompute": state.precompute,
            "data_path": state.data_path,
            "data_settings": state.data_settings,
            "context": self.context,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any], path: Path) -> Checkpoint:
        """From read_checkpoint's dict; the model is checked as a model file's is (`path` names
        the checkpoint in errors)."""
        model = model_record(check_model_payload(payload.get("model"), path), path)
        fit = payload["fit"]
        state = TrainingState(model, payload["optimizer"], payload.get("scaler") or {},
                              bool(payload.get("precompute", False)), payload.get("data_path"),
                              payload.get("data_settings"))
        plan = FitPlan(tuple(fit["lrs"]), fit["n_cycle"], fit["cycle_len"], fit["cycle_mult"],
                       bool(fit.get("until_overfit", False)))
        records = tuple(EpochRecord(**{**r, "lrs": tuple(r["lrs"])}) for r in payload["records"])
        progress = FitProgress(int(payload["epochs_done"]), payload["steps_per_epoch"], records,
                               rng_from_payload(payload["rng"]), payload.get("best"))
        return cls(state, plan, progress, payload.get("context"))


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
