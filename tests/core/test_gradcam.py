"""Grad-CAM: the map's mass lies where the class evidence is, and overlays are drawn and written."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from guiclassifier import ImageData, Learner
from guiclassifier.core.gradcam import heatmaps
from guiclassifier.core.heatmap_image import overlay, viridis, with_legend

SIDE = 128
MARK = (220, 40, 40)
CLASSES = ("marked", "plain")
DISTRACTORS = ((40, 90, 230), (235, 220, 40), (230, 230, 230), (40, 200, 60))  # in both classes: no evidence


def quadrant_image(path: Path, marked: bool, rng: random.Random) -> None:
    """Noise and a disc in each quadrant; only "marked" images have a red one, always in the
    top-left quadrant, so that is where the evidence for "marked" is. ("plain" has no evidence of
    its own, only the red disc's absence: its maps are diffuse, as Grad-CAM's are for absences.)"""
    pixels = np.random.default_rng(rng.randrange(1 << 30)).integers(70, 150, (SIDE, SIDE, 3), dtype=np.uint8)
    img = Image.fromarray(pixels)
    draw = ImageDraw.Draw(img)
    half, r = SIDE // 2, rng.randint(12, 18)
    fills = rng.sample(DISTRACTORS, 4)
    for (qx, qy), fill in zip(((0, 0), (1, 0), (0, 1), (1, 1)), (MARK if marked else fills[0], *fills[1:])):
        cx, cy = qx * half + rng.randint(r + 2, half - r - 2), qy * half + rng.randint(r + 2, half - r - 2)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    img.save(path)


@pytest.fixture(scope="module")
def quadrant_learner(tmp_path_factory) -> Learner:
    root = tmp_path_factory.mktemp("quadrants")
    rng = random.Random(0)
    for split, n in (("train", 40), ("valid", 12)):
        for name in CLASSES:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                quadrant_image(folder / f"{name}_{i}.png", name == "marked", rng)
    data = ImageData.from_folder(root, size=SIDE, bs=16, num_workers=0, seed=0)
    learner = Learner.pretrained("mobilenet_v2", data, precompute=True, device="cpu")
    learner.fit(1e-2, 8)
    return learner


def test_the_map_lies_on_the_quadrant_that_holds_the_class_evidence(quadrant_learner: Learner) -> None:
    items = quadrant_learner.data.valid_items
    maps = heatmaps(quadrant_learner, [i.path for i in items])
    assert np.mean([m.class_index == i.label for m, i in zip(maps, items)]) >= 0.9  # it learned the task
    half = SIDE // 2
    shares = []
    for m in maps[:12]:  # the marked ones (classes sorted: marked first)
        assert m.class_index == 0
        assert m.cam.shape == (SIDE, SIDE) and m.cam.min() >= 0 and m.cam.max() == pytest.approx(1.0)
        shares.append(m.cam[:half, :half].sum() / m.cam.sum())
    assert np.mean(shares) > 0.7, shares  # a quarter of the image: uniform would give 0.25
    assert min(shares) > 0.5, shares
    asked = heatmaps(quadrant_learner, [i.path for i in items[:12]], class_index=0)
    assert all(a.cam[:half, :half].sum() / a.cam.sum() > 0.5 for a in asked)


def test_unreadable_files_get_a_reason_and_the_rest_a_map(quadrant_learner: Learner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    good = quadrant_learner.data.valid_items[0].path
    maps = heatmaps(quadrant_learner, [str(bad), good], class_index=1)
    assert maps[0].cam is None and maps[0].error
    assert maps[1].cam is not None and maps[1].class_index == 1


def test_overlay_uses_viridis_and_the_legend_reads_from_less_to_more() -> None:
    colours = viridis(np.array([0.0, 0.5, 1.0]))
    assert colours.tolist() == [[68, 1, 84], [33, 145, 140], [253, 231, 37]]
    grey = Image.new("RGB", (50, 80), (128, 128, 128))
    cam = np.zeros((16, 16))
    cam[:8, :8] = 1.0
    shown = np.asarray(overlay(grey, cam, opacity=1.0, side=64))
    assert shown.shape == (64, 64, 3)
    assert tuple(shown[5, 5]) == (253, 231, 37) and tuple(shown[60, 60]) == (68, 1, 84)
    assert tuple(np.asarray(overlay(grey, cam, opacity=0.0, side=64))[5, 5]) == (128, 128, 128)
    legend = np.asarray(with_legend(Image.new("RGB", (200, 100)), "cat (Grad-CAM)"))
    bar = legend[100 + 6, 40:160]
    assert tuple(bar[0]) == (68, 1, 84) and tuple(bar[-1]) != (68, 1, 84)


def test_predict_writes_heatmap_pngs_with_a_legend(quadrant_learner: Learner, tmp_path: Path, capsys) -> None:
    from guiclassifier.cli.commands import main

    model = quadrant_learner.save(tmp_path / "m.gcm")
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"no")
    source = Path(quadrant_learner.data.valid_items[0].path)
    for sub in ("a", "b"):  # two files with one name: both written
        (folder / sub).mkdir()
        (folder / sub / "same.png").write_bytes(source.read_bytes())
    assert main(["predict", str(model), str(folder), "--heatmap", str(tmp_path / "maps"), "--quiet"]) == 0
    assert "wrote 2 heatmaps" in capsys.readouterr().err
    written = sorted(p.name for p in (tmp_path / "maps").iterdir())
    assert written == ["same-2.heatmap.png", "same.heatmap.png"]
    png = Image.open(tmp_path / "maps" / "same.heatmap.png")
    assert png.format == "PNG" and png.height > png.width  # the legend below the picture
