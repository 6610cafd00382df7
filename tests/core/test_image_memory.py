"""The decoded images kept in memory between epochs (core.image_memory), and when loading runs in-line."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from guiclassifier.core.data import ImageData, default_num_workers
from guiclassifier.core.image_memory import ImageMemory, RememberingReader, fits_in_memory


def test_decoded_images_are_kept_between_epochs_in_line(dataset: Path) -> None:
    data = ImageData.from_folder(dataset, size=16, bs=8, num_workers=None, seed=0)
    assert data.num_workers == 0  # 32 small images fit in memory: loaded in the training process
    first = sum(len(b) for b in data.train_loader())
    for item in data.train_items:
        Path(item.path).unlink()  # the second epoch must not need the files
    batches = list(data.train_loader())
    assert sum(len(b) for b in batches) == first == len(data.train_items)
    assert not any(b.failed for b in batches)
    assert len(data.memory) == len(data.train_items)


def test_memory_keeps_nothing_past_its_budget() -> None:
    calls: list[str] = []

    def read(path: str) -> Image.Image:
        calls.append(path)
        return Image.new("RGB", (10, 10))

    memory = ImageMemory(budget=3 * 10 * 10 * 2)  # room for two
    remember = RememberingReader(read, memory)
    for path in ("a", "b", "c", "a", "b", "c"):
        remember(path)
    assert calls == ["a", "b", "c", "c"] and len(memory) == 2 and memory.bytes == 600


def test_datasets_too_big_for_memory_are_loaded_by_processes(dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert fits_in_memory(1_000, 71, budget=100 << 20)
    assert not fits_in_memory(100_000, 247, budget=2 << 30)  # 224 px photos: 100,000 is too many
    monkeypatch.setattr("guiclassifier.core.data.fits_in_memory", lambda n, side: False)
    data = ImageData.from_folder(dataset, size=16, bs=8, num_workers=None, seed=0)
    assert data.num_workers == default_num_workers()
    assert ImageData.from_folder(dataset, size=16, bs=8, num_workers=2, seed=0).num_workers == 2
