"""Shared fixtures: tiny generated datasets, and caches isolated from the user's home."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Colour of each generated class: a model learns them in a few batches.
CLASS_COLOURS = {"cat": (200, 60, 40), "dog": (40, 80, 200), "fox": (60, 180, 60)}


def make_image(path: Path, colour: tuple[int, int, int], seed: int, size: int = 24) -> None:
    rng = np.random.default_rng(seed)
    noise = rng.integers(-40, 40, size=(size, size, 3))
    pixels = np.clip(np.array(colour)[None, None, :] + noise, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def make_dataset(root: Path, n_train: int = 12, n_valid: int = 4, classes: tuple[str, ...] = ("cat", "dog"),
                 layout: str = "fastai") -> Path:
    """Images in fast.ai layout (train/valid) or one folder of class folders."""
    seed = 0
    for name in classes:
        splits = {"train": n_train, "valid": n_valid} if layout == "fastai" else {"": n_train + n_valid}
        for split, n in splits.items():
            for i in range(n):
                seed += 1
                make_image(root / split / name / f"{name}_{i:03d}.png", CLASS_COLOURS[name], seed)
    return root


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own activation cache and an empty torch hub; downloads are off."""
    base = tmp_path_factory.mktemp("env")
    monkeypatch.setenv("GUICLASSIFIER_CACHE_DIR", str(base / "cache"))
    monkeypatch.setenv("GUICLASSIFIER_CHECKPOINT_DIR", str(base / "checkpoints"))
    monkeypatch.setenv("GUICLASSIFIER_RUNS_DIR", str(base / "runs"))
    monkeypatch.setenv("TORCH_HOME", str(base / "torch"))
    monkeypatch.setenv("GUICLASSIFIER_NO_DOWNLOAD", "1")
    monkeypatch.setenv("GUICLASSIFIER_THREADS", "0")  # PyTorch's own count: runs compare bit for bit
    import torch

    torch.hub.set_dir(str(base / "torch" / "hub"))


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "data")


@pytest.fixture
def dataset_factory(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(1000))

    def factory(**kwargs) -> Path:
        return make_dataset(tmp_path / f"data{next(counter)}", **kwargs)

    return factory


@pytest.fixture
def tiny_learner(dataset: Path):
    """A resnet18 from random weights on 32 px images: a few batches a second on a CPU."""
    from guiclassifier import ImageData, Learner

    data = ImageData.from_folder(dataset, size=32, bs=8, num_workers=0, seed=0)
    return Learner.pretrained("resnet18", data, weights=None, device="cpu")


os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


try:  # property-based tests: a few dozen cases each in `make test`, 10,000 in `make fuzz`
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("default", max_examples=25)
    _hypothesis_settings.register_profile("fuzz", max_examples=2_500)  # x 4 properties: 10,000 cases
    _hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
except ImportError:  # the test extra is not installed: those tests fail to import, nothing else
    pass
