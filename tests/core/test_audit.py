"""The data audit on a dataset with planted problems (tests/planted.py, built from the bundled demo):
copies found, leaks flagged, wrong labels ranked near the top, class and image sizes reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from guiclassifier import ImageData, Learner
from guiclassifier.bundled import demo_path
from guiclassifier.core.audit import audit
from guiclassifier.core.cancel import CancelToken
from guiclassifier.core.events import AuditProgress
from tests.planted import plant

COPY_KINDS = ("leak", "conflicting_labels", "exact_duplicates", "near_duplicates")


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    demo = demo_path()
    assert demo is not None
    planted = plant(demo, tmp_path_factory.mktemp("planted") / "data", n_leaks=20, n_near=40)
    data = ImageData.from_folder(planted.root, size=64, bs=64, num_workers=0)
    learner = Learner.pretrained("mobilenet_v2", data, weights="auto", precompute=True, device="cpu")
    events: list = []
    report = audit(learner, callbacks=events.append)
    return planted, report, events, learner


def test_planted_copies_are_found_with_few_false_groups(planted) -> None:
    truth, report, _, _ = planted
    found = [frozenset(f.files) for f in report.findings if f.kind in COPY_KINDS]
    hits = sum(any(group <= f for f in found) for group in truth.groups)
    false = sum(not any(group <= f for group in truth.groups) for f in found)
    assert hits >= 0.95 * len(truth.groups), (hits, len(truth.groups))
    assert false <= 0.05 * len(found), false
    exact = [frozenset(f.files) for f in report.findings if f.kind in COPY_KINDS and "same pixels" in f.detail]
    for group, same in zip(truth.groups, truth.exact):  # a BMP/TIFF/lossless WebP copy: the same pixels
        assert any(group <= f for f in exact) == same, group


def test_every_planted_leak_is_flagged_as_one(planted) -> None:
    truth, report, _, _ = planted
    leaks = [f for f in report.of_kind("leak")]
    for group in truth.leaks:
        finding = next(f for f in leaks if group <= frozenset(f.files))
        assert set(finding.splits) == {"train", "valid"}


def test_planted_label_errors_rank_near_the_top(planted) -> None:
    truth, report, _, _ = planted
    ranked = [f.files[0] for f in sorted(report.of_kind("label_error"), key=lambda f: -f.score)]
    top = ranked[:2 * len(truth.label_errors)]
    assert sum(p in top for p in truth.label_errors) >= 0.7 * len(truth.label_errors)
    first = next(f for f in report.of_kind("label_error") if f.files[0] in truth.label_errors)
    assert first.detail.startswith("labelled coat, looks like bag")  # bags moved into coat/


def test_sizes_progress_and_json(planted) -> None:
    _, report, events, _ = planted
    # 28 px images at 64 px, the size the app picks for them: how the data is, not a finding.
    assert not report.of_kind("small_images")
    steps = [e.step for e in events if isinstance(e, AuditProgress)]
    assert steps[0] == "Reading images" and steps[-1] == "Checking labels"
    doc = json.loads(json.dumps(report.to_json()))
    assert doc["images"] == report.n_images and not doc["cancelled"]
    assert {tuple(sorted(d)) for d in doc["findings"]} == {("classes", "detail", "files", "kind", "score", "split")}


def test_small_and_unequal_classes_are_reported(tmp_path: Path, dataset_factory) -> None:
    root = dataset_factory()
    originals = sorted((root / "train" / "cat").iterdir())
    for extra in range(1, 4):  # cat gets 4x dog's training images
        for f in originals:
            shutil.copy(f, f.with_name(f"{f.stem}_copy{extra}{f.suffix}"))
    data = ImageData.from_folder(root, size=32, bs=8, num_workers=0)
    learner = Learner.pretrained("resnet18", data, weights=None, device="cpu", precompute=True)
    report = audit(learner)
    kinds = {f.kind for f in report.findings}
    assert {"small_class", "class_imbalance"} <= kinds
    imbalance = report.of_kind("class_imbalance")[0]
    assert imbalance.classes == ("cat", "dog") and imbalance.score == pytest.approx(4.0)


def test_a_stop_returns_what_was_found(planted) -> None:
    _, _, _, learner = planted
    token = CancelToken()

    def stop_when_comparing(event) -> None:
        if isinstance(event, AuditProgress) and event.step == "Comparing images":
            token.cancel()

    report = audit(learner, callbacks=stop_when_comparing, cancel=token)
    assert report.cancelled and not report.of_kind("label_error")


def test_a_file_broken_after_the_scan_is_listed_and_the_rest_checked(dataset_factory) -> None:
    root = dataset_factory()
    data = ImageData.from_folder(root, size=32, bs=8, num_workers=0)
    broken = Path(data.train_items[0].path)
    copy = data.train_items[2].path
    shutil.copy(copy, Path(copy).with_name("twin.png"))
    data = ImageData.from_folder(root, size=32, bs=8, num_workers=0)
    broken.write_bytes(broken.read_bytes()[:30])  # truncated after the scan
    learner = Learner.pretrained("resnet18", data, weights=None, device="cpu", precompute=False)
    report = audit(learner)
    assert report.unreadable == (str(broken),) and not report.cancelled
    assert all(str(broken) not in f.files for f in report.findings)
    assert any({copy, str(Path(copy).with_name("twin.png"))} <= set(f.files) for f in report.findings)


def test_small_images_are_reported_with_what_to_do(dataset_factory) -> None:
    from PIL import Image

    root = dataset_factory()  # 24 px images
    for n in range(2):
        Image.new("RGB", (6, 9), (200, 10 * n, 0)).save(root / "train" / "cat" / f"tiny_{n}.png")
    findings = audit(Learner.pretrained("resnet18", ImageData.from_folder(root, size=32, bs=8, num_workers=0),
                                        weights=None, device="cpu")).of_kind("small_images")
    assert len(findings) == 1 and len(findings[0].files) == 2
    assert "(smallest 6 px)" in findings[0].detail and "check they are what you meant" in findings[0].detail
    findings = audit(Learner.pretrained("resnet18", ImageData.from_folder(root, size=128, bs=8, num_workers=0),
                                        weights=None, device="cpu")).of_kind("small_images")
    assert len(findings) == 1 and "64 px would suit them" in findings[0].detail  # all are small at 128
