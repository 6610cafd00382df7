"""Exports that answer like the app: the file carries its classes and preprocessing, a process that
never imports guiclassifier gets the app's answers from it alone, and an export that does not is
refused before anything is written."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import guiclassifier.exported_runner as runner
from guiclassifier import Learner
from guiclassifier.core import export as export_module
from guiclassifier.core.errors import ExportError
from guiclassifier.core.export import export_model


def run_alone(model: Path, images: list[str]) -> subprocess.CompletedProcess:
    # -I: isolated, so neither the project folder nor PYTHONPATH make guiclassifier importable by accident
    return subprocess.run([sys.executable, "-I", runner.__file__, str(model), *images], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Learner:
    from guiclassifier import ImageData
    from tests.conftest import make_dataset

    root = make_dataset(tmp_path_factory.mktemp("export") / "data")
    learner = Learner.pretrained("resnet18", ImageData.from_folder(root, size=32, bs=8, num_workers=0),
                                 weights=None, device="cpu")
    learner.fit(0.02, 1)
    learner.confidence_threshold = 0.6
    return learner


@pytest.fixture(scope="module")
def exports(trained: Learner, tmp_path_factory) -> dict:
    """One export per format (each runs its parity check); tests copy the file alone, without its sidecar."""
    folder = tmp_path_factory.mktemp("exports")
    return {fmt: export_model(trained, folder / f"m.{fmt}", fmt) for fmt in ("onnx", "pt2")}


def alone(exported, folder: Path) -> Path:
    """The exported file copied without its sidecar."""
    copy = folder / exported.model_file.name
    shutil.copy(exported.model_file, copy)
    return copy


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_the_file_alone_answers_like_the_app(trained: Learner, exports: dict, tmp_path: Path, fmt: str) -> None:
    exported = exports[fmt]
    assert exported.parity.n == exported.parity.same_top == 8 and exported.parity.largest_difference < 1e-4
    assert exported.description.is_file()
    card = exported.model_file.with_name(f"m.{fmt}".replace(f".{fmt}", ".MODEL.md")).read_text()
    assert f"- {trained.evaluate().accuracy:.1%} without TTA, on 8 validation images" in card
    assert "Below 60% confidence it answers 'not sure'" in card
    out = alone(exported, tmp_path)  # the sidecar is a convenience, never a necessity
    images = [i.path for i in trained.data.valid_items]
    done = run_alone(out, images)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout)
    assert not answer["imported_guiclassifier"] and answer["classes"] == list(trained.classes)
    app = trained.predict(images)
    assert (np.argmax(answer["probabilities"], 1) == app.argmax(1)).all()
    assert np.allclose(answer["probabilities"], app, atol=1e-4)
    meta = runner.read_metadata(out)
    assert meta["image_size"] == 32 and meta["arch"] == "resnet18" and meta["confidence_threshold"] == 0.6
    assert meta["training"]["epochs"] == 1 and len(meta["normalisation_inside"]["mean"]) == 3
    assert not list(exported.model_file.parent.glob(".m.*"))  # no staged file left behind


def test_an_export_missing_a_metadata_key_cannot_be_run_alone(trained: Learner, exports: dict,
                                                              tmp_path: Path) -> None:
    import onnx

    out = alone(exports["onnx"], tmp_path)
    proto = onnx.load(str(out))
    entry = next(p for p in proto.metadata_props if p.key == runner.METADATA_KEY)
    meta = json.loads(entry.value)
    del meta["image_size"]
    entry.value = json.dumps(meta)
    onnx.save(proto, str(out))
    done = run_alone(out, [trained.data.valid_items[0].path])
    assert done.returncode != 0 and "image_size" in done.stderr


def test_an_export_that_answers_otherwise_is_refused_and_nothing_is_written(trained: Learner, tmp_path: Path,
                                                                            monkeypatch) -> None:
    out = tmp_path / "m.onnx"
    out.write_bytes(b"an earlier export")

    def without_normalisation(self, x: torch.Tensor) -> torch.Tensor:  # the classic broken export
        m = self.model
        return torch.softmax(m.head(m.pool(m.trunk(m.stem(x)))), dim=1)

    monkeypatch.setattr(export_module._Probabilities, "forward", without_normalisation)
    with pytest.raises(ExportError, match="does not answer like the app"):
        export_model(trained, out, "onnx")
    assert out.read_bytes() == b"an earlier export" and not (tmp_path / "m.onnx.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_a_python_without_onnxruntime_is_told_what_is_missing(trained: Learner, tmp_path: Path, monkeypatch) -> None:
    real_find_spec = export_module.importlib.util.find_spec
    monkeypatch.setattr(export_module.importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real_find_spec(name, *a))
    with pytest.raises(ExportError, match="needs onnxruntime, installed with guiclassifier"):
        export_model(trained, tmp_path / "m.onnx", "onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_predict_takes_an_exported_file_without_its_sidecar(trained: Learner, exports: dict, tmp_path: Path,
                                                            capsys, fmt: str) -> None:
    from guiclassifier.cli.commands import main

    model = alone(exports[fmt], tmp_path)
    images = [i.path for i in trained.data.valid_items]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    assert main(["predict", str(model), *images, str(broken), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {r["path"]: r for r in doc["predictions"]}
    app = trained.predict(images)
    for path, probs in zip(images, app):
        row = rows[path]
        assert row["best_guess"] == trained.classes[probs.argmax()]
        assert abs(row["probability"] - probs.max()) < 1e-4
        assert row["not_sure"] == (probs.max() < 0.6)  # the threshold inside the file
    assert [s["path"] for s in doc["skipped"]] == [str(broken)]
    assert main(["predict", str(model), images[0], "--tta"]) == 2
    assert "need the app's own model file" in capsys.readouterr().err
