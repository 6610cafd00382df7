"""Batched augmentation (core.augment.BatchAugment) and the decoded images kept in memory."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from PIL import Image

import guiclassifier.core.augment as augment
from guiclassifier.core.augment import BatchAugment, to_uint8, train_transform
from guiclassifier.core.data import ImageData, default_num_workers
from guiclassifier.core.image_memory import ImageMemory, RememberingReader, fits_in_memory

TURNS = [lambda t: t, lambda t: t.flip(-1), lambda t: t.flip(-2), lambda t: t.flip(-1, -2),
         lambda t: t.transpose(-1, -2), lambda t: t.transpose(-1, -2).flip(-1),
         lambda t: t.transpose(-1, -2).flip(-2), lambda t: t.transpose(-1, -2).flip(-1, -2)]


@pytest.fixture
def geometry_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No rotation and no lighting change: what is left is scale, crop and turns."""
    monkeypatch.setattr(augment, "ROTATE_DEGREES", 0.0)
    monkeypatch.setattr(augment, "LIGHTING", 0.0)


def turns_seen(preset: str, img: torch.Tensor, draws: int = 80) -> set[int]:
    reference = img.float() / 255
    seen = set()
    for _ in range(draws):
        out = BatchAugment(preset, img.shape[-1], 1.0)([img])[0]
        seen |= {k for k, turn in enumerate(TURNS) if torch.allclose(out, turn(reference), atol=1e-5)}
    return seen


def test_without_rotation_or_zoom_a_square_image_is_only_turned(geometry_only: None) -> None:
    torch.manual_seed(0)
    img = (torch.rand(3, 24, 24) * 255).byte()
    assert turns_seen("side_on", img) == {0, 1}
    assert turns_seen("top_down", img) == set(range(8))


def test_the_crop_is_a_window_of_the_scaled_image(geometry_only: None) -> None:
    """A wide image, black on the left and white on the right: each crop is one window of it,
    so every column is one colour, black columns left of white ones (or mirrored), and the
    window's place varies."""
    img = torch.zeros(3, 16, 48, dtype=torch.uint8)
    img[:, :, 24:] = 255
    torch.manual_seed(1)
    whites = set()
    for _ in range(30):
        out = BatchAugment("side_on", 16, 1.0)([img])[0][0]
        columns = out.mean(0)
        assert torch.allclose(out, columns.expand_as(out), atol=1e-5)
        if columns[0] > columns[-1]:
            columns = columns.flip(0)
        assert bool((columns[1:] >= columns[:-1] - 1e-6).all())
        whites.add(round(float(columns.sum())))
    assert len(whites) > 3


def test_rotation_blackens_corners_and_lighting_stays_in_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(augment, "LIGHTING", 0.0)
    img = torch.full((3, 32, 32), 255, dtype=torch.uint8)
    torch.manual_seed(2)
    out = BatchAugment("side_on", 32, 1.0)([img] * 16)
    corners = out[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert float(corners.min()) < 0.5  # some image was turned enough to show a black corner
    assert float(out[:, :, 16, 16].min()) == pytest.approx(1.0)  # the centre is always image
    monkeypatch.undo()
    lit = BatchAugment("side_on", 32, 1.2)([(torch.rand(3, 40, 30) * 255).byte() for _ in range(8)])
    assert lit.shape == (8, 3, 32, 32) and lit.dtype == torch.float32
    assert 0.0 <= float(lit.min()) and float(lit.max()) <= 1.0


def test_a_batch_of_mixed_sizes_and_one_image_agree_with_the_preview_transform() -> None:
    sizes = [(20, 20), (40, 25), (25, 40), (20, 20)]
    images = [(torch.rand(3, h, w) * 255).byte() for h, w in sizes]
    torch.manual_seed(3)
    out = BatchAugment("top_down", 24, 1.1)(images)
    assert out.shape == (4, 3, 24, 24)
    pil = Image.fromarray(images[1].permute(1, 2, 0).numpy())
    assert torch.equal(to_uint8(pil), images[1])
    torch.manual_seed(4)
    one = train_transform("top_down", 24, 1.1)(pil)
    torch.manual_seed(4)
    assert torch.equal(one, BatchAugment("top_down", 24, 1.1)([images[1]])[0])


def test_loaders_augment_per_batch_reproducibly(dataset: Path) -> None:
    data = ImageData.from_folder(dataset, size=16, bs=8, num_workers=0, seed=0)
    torch.manual_seed(5)
    a = [b.x for b in data.train_loader()]
    torch.manual_seed(5)
    b = [b.x for b in data.train_loader()]
    assert [x.shape for x in a] == [(8, 3, 16, 16)] * 3
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], next(iter(data.train_loader())).x)  # each epoch draws afresh


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


def test_memory_keeps_nothing_past_its_budget_and_is_not_copied_to_processes(tmp_path: Path) -> None:
    calls: list[str] = []

    def read(path: str) -> Image.Image:
        calls.append(path)
        return Image.new("RGB", (10, 10))

    memory = ImageMemory(budget=3 * 10 * 10 * 2)  # room for two
    remember = RememberingReader(read, memory)
    for path in ("a", "b", "c", "a", "b", "c"):
        remember(path)
    assert calls == ["a", "b", "c", "c"] and len(memory) == 2 and memory.bytes == 600
    copy = pickle.loads(pickle.dumps(memory))
    assert len(copy) == 0 and copy.budget == memory.budget


def test_datasets_too_big_for_memory_are_loaded_by_processes(dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert fits_in_memory(1_000, 71, budget=100 << 20)
    assert not fits_in_memory(100_000, 247, budget=2 << 30)  # 224 px photos: 100,000 is too many
    monkeypatch.setattr("guiclassifier.core.data.fits_in_memory", lambda n, side: False)
    data = ImageData.from_folder(dataset, size=16, bs=8, num_workers=None, seed=0)
    assert data.num_workers == default_num_workers()
    assert ImageData.from_folder(dataset, size=16, bs=8, num_workers=2, seed=0).num_workers == 2
