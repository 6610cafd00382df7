"""Dataset scanning, splits, bad files and augmentation presets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from guiclassifier.core.augment import train_transform, valid_transform
from guiclassifier.core.data import ImageData, scan_folder
from guiclassifier.core.errors import DataError
from tests.conftest import make_dataset, make_image


def test_fastai_layout(dataset: Path) -> None:
    report = scan_folder(dataset)
    assert report.layout == "fastai"
    assert report.classes == ("cat", "dog")
    assert report.counts() == {"cat": (12, 4), "dog": (12, 4)}
    assert report.skipped == ()


def test_test_folder_is_listed(dataset: Path) -> None:
    make_image(dataset / "test" / "unknown.png", (0, 0, 0), 1)
    assert [Path(p).name for p in scan_folder(dataset).test] == ["unknown.png"]


def test_class_folders_are_split_stratified_and_seeded(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", n_train=16, n_valid=4, classes=("cat", "dog", "fox"), layout="flat")
    a = scan_folder(root, valid_pct=0.25, seed=1)
    b = scan_folder(root, valid_pct=0.25, seed=1)
    c = scan_folder(root, valid_pct=0.25, seed=2)
    assert a.layout == "class_folders"
    assert a.counts() == {"cat": (15, 5), "dog": (15, 5), "fox": (15, 5)}
    assert a.valid == b.valid
    assert a.valid != c.valid
    assert not {i.path for i in a.train} & {i.path for i in a.valid}


def test_fastai_layout_without_valid_is_split(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", n_train=10, n_valid=0)
    (root / "valid").rmdir() if (root / "valid").exists() else None
    report = scan_folder(root, valid_pct=0.2)
    assert report.counts() == {"cat": (8, 2), "dog": (8, 2)}


def test_broken_and_odd_files_are_skipped_with_reasons(dataset: Path) -> None:
    cat = dataset / "train" / "cat"
    (cat / "zero.jpg").write_bytes(b"")
    (cat / "notes.txt").write_text("hello")
    (cat / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    png = (cat / "cat_000.png").read_bytes()
    (cat / "truncated.png").write_bytes(png[: len(png) // 3])
    Image.new("CMYK", (20, 20)).save(cat / "cmyk.jpg")
    Image.new("LA", (20, 20)).save(cat / "gray_alpha.png")
    report = scan_folder(dataset)
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(reasons) == {"zero.jpg", "notes.txt", ".DS_Store", "truncated.png"}
    assert "empty" in reasons["zero.jpg"] and "hidden" in reasons[".DS_Store"]
    assert report.counts()["cat"] == (14, 4)  # the CMYK and grey+alpha files are usable


def test_symlink_loop_is_not_followed(dataset: Path) -> None:
    os.symlink(dataset / "train", dataset / "train" / "cat" / "loop")
    report = scan_folder(dataset)
    assert report.counts()["cat"] == (12, 4)
    assert any("link to a folder" in s.reason for s in report.skipped)


def test_empty_class_folder_names_the_folder(dataset: Path) -> None:
    (dataset / "train" / "emu").mkdir()
    with pytest.raises(DataError, match="emu"):
        scan_folder(dataset)


def test_class_of_only_broken_files_is_an_error(dataset: Path) -> None:
    (dataset / "train" / "emu").mkdir()
    (dataset / "train" / "emu" / "x.jpg").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"emu.*1 file could not be read"):
        scan_folder(dataset)


def test_single_class_is_an_error(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", classes=("cat",))
    with pytest.raises(DataError, match="Only one class"):
        scan_folder(root)


@pytest.mark.parametrize("case", ["missing", "file", "no_classes"])
def test_unusable_roots(tmp_path: Path, case: str) -> None:
    root = tmp_path / "x"
    if case == "file":
        root.write_text("")
    elif case == "no_classes":
        root.mkdir()
        (root / "a.png").write_bytes(b"")
    with pytest.raises(DataError, match=str(root)):
        scan_folder(root)


def test_valid_class_unknown_to_train(dataset: Path) -> None:
    make_image(dataset / "valid" / "emu" / "e.png", (0, 0, 0), 1)
    with pytest.raises(DataError, match="emu"):
        scan_folder(dataset)


def test_unicode_and_dash_names(tmp_path: Path) -> None:
    root = tmp_path / "données"
    for cls in ("chat noir", "-dash"):
        for i in range(3):
            make_image(root / cls / f"-é {i}.png", (i * 50, 0, 0), i)
    report = scan_folder(root, valid_pct=0.34)
    assert report.classes == ("-dash", "chat noir")
    assert report.counts() == {"-dash": (2, 1), "chat noir": (2, 1)}


@pytest.mark.parametrize("augment", ["side_on", "top_down", "none"])
def test_augmentation_presets_give_square_tensors(augment: str) -> None:
    img = Image.new("RGB", (90, 40), (255, 0, 0))
    out = train_transform(augment, 32, max_zoom=1.2)(img)
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0


def test_augmentation_is_random_and_seedable() -> None:
    img = Image.fromarray((torch.rand(40, 40, 3) * 255).byte().numpy())
    tfm = train_transform("top_down", 32, 1.1)
    torch.manual_seed(0)
    a = [tfm(img) for _ in range(4)]
    torch.manual_seed(0)
    b = [tfm(img) for _ in range(4)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(a[0], x) for x in a[1:])


def test_validation_transform_is_centre_crop() -> None:
    img = Image.new("RGB", (60, 20), (0, 0, 0))
    img.paste((255, 255, 255), (20, 0, 40, 20))  # white centre square
    out = valid_transform(16)(img)
    assert out.shape == (3, 16, 16) and float(out.min()) > 0.9


def test_bad_settings_are_refused(dataset: Path) -> None:
    for kwargs in ({"augment": "sideways"}, {"bs": 0}, {"size": 4}, {"max_zoom": 0.5},
                   {"worker_start": "teleport"}):
        with pytest.raises(DataError):
            ImageData.from_folder(dataset, **kwargs)


def test_file_failing_mid_epoch_is_skipped(dataset: Path) -> None:
    data = ImageData.from_folder(dataset, size=16, bs=8, num_workers=0, augment="none")
    victim = data.train_items[0].path
    Path(victim).write_bytes(b"")
    batches = list(data.train_loader())
    assert sum(len(b) for b in batches) == len(data.train_items) - 1
    assert [f.path for b in batches for f in b.failed] == [victim]


def test_worker_processes_deliver_the_same_batches(dataset: Path) -> None:
    in_process = ImageData.from_folder(dataset, size=16, bs=8, num_workers=0, augment="none")
    workers = ImageData.from_folder(dataset, size=16, bs=8, num_workers=2, augment="none")
    a = [b.x for b in in_process.valid_loader()]
    b = [b.x for b in workers.valid_loader()]
    assert len(a) == len(b) == 1 and torch.equal(a[0], b[0])


def test_forkserver_loading_processes_augment_like_forked_ones(dataset: Path) -> None:
    """The window's loading processes come from a forkserver; same seed, same augmented batches."""
    def epoch(worker_start: str | None) -> list[torch.Tensor]:
        data = ImageData.from_folder(dataset, size=16, bs=8, num_workers=1, worker_start=worker_start)
        torch.manual_seed(3)
        return [b.x for b in data.train_loader()]

    forked, served = epoch("fork"), epoch("forkserver")
    assert len(forked) == len(served) == 3
    assert all(torch.equal(a, b) for a, b in zip(forked, served))


def test_scan_reports_progress_and_can_be_cancelled(dataset: Path) -> None:
    from guiclassifier.core.cancel import Cancelled, CancelToken
    from guiclassifier.core.events import ScanProgress

    events: list = []
    scan_folder(dataset, callbacks=events.append)
    progress = [e for e in events if isinstance(e, ScanProgress)]
    assert progress and progress[-1].done == progress[-1].total == 32
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        scan_folder(dataset, cancel=token)


def test_loading_processes_leave_ctrl_c_to_the_main_process(dataset) -> None:
    import signal

    from guiclassifier.core.data import ignore_interrupts

    data = ImageData.from_folder(dataset, size=32, bs=8, num_workers=1, seed=0)
    assert data.train_loader().worker_init_fn is ignore_interrupts
    before = signal.getsignal(signal.SIGINT)
    try:
        ignore_interrupts(0)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
