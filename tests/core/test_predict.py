"""Per-file predictions: streamed, skipping unreadable files, and flagging unfamiliar images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from guiclassifier import Learner
from guiclassifier.core.events import FilePredicted
from guiclassifier.core.predict import build_reference, predict_files, reference_from_training


def test_results_stream_in_order_and_skip_bad_files(tiny_learner: Learner, tmp_path: Path) -> None:
    tiny_learner.fit(0.05, 2)
    good = [i.path for i in tiny_learner.data.valid_items]
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "cut.png").write_bytes(Path(good[0]).read_bytes()[:40])
    paths = [good[0], str(tmp_path / "notes.txt"), *good[1:], str(tmp_path / "cut.png")]
    events: list = []
    results = predict_files(tiny_learner, paths, callbacks=events.append)
    assert [r.path for r in results] == paths
    assert [e.path for e in events if isinstance(e, FilePredicted)] == paths
    assert results[1].probabilities is None and "not an image" in results[1].error
    assert results[-1].probabilities is None and results[-1].error
    ok = [r for r in results if r.error is None]
    assert len(ok) == 8
    expected = tiny_learner.predict([r.path for r in ok])
    assert np.allclose([r.probabilities for r in ok], expected, atol=1e-5)
    tta = predict_files(tiny_learner, good, tta=True)
    assert np.allclose([r.probabilities for r in tta], tiny_learner.predict(good, tta=True), atol=1e-5)


def test_reference_flags_images_unlike_the_training_data(dataset: Path, tmp_path: Path) -> None:
    from guiclassifier import ImageData

    # Pretrained features, as in real use (a random body's features say little about anything).
    data = ImageData.from_folder(dataset, size=32, bs=8, num_workers=0, seed=0)
    learner = Learner.pretrained("mobilenet_v2", data, precompute=True, device="cpu")
    learner.fit(0.05, 2)
    reference = reference_from_training(learner)
    assert reference.samples.shape == (len(data.train_items), learner.model.n_features)
    familiar = predict_files(learner, [i.path for i in data.valid_items], reference=reference)
    # A real photo of something else: a bag from the demo data, shown to a cat/dog colour model.
    strange = Path(__file__).resolve().parents[2] / "resources" / "demo" / "valid" / "bag" / "bag_00031.png"
    odd = predict_files(learner, [strange], reference=reference)[0]
    assert sum(r.unfamiliar for r in familiar) <= 1
    assert odd.unfamiliar and "unlike the training images" in odd.warning()


def test_build_reference_thresholds() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.1, (50, 8)) + np.eye(8)[0]
    b = rng.normal(0, 0.1, (50, 8)) + np.eye(8)[1]
    ref = build_reference(np.vstack([a, b]))
    queries = torch.tensor(np.vstack([np.eye(8)[:2], np.eye(8)[2:4], (np.eye(8)[0] + np.eye(8)[1]) / 2]),
                           dtype=torch.float32)
    # Near either cluster: familiar; along other axes, or halfway between the two: not.
    assert ref.unfamiliar(queries).tolist() == [False, False, True, True, True]
    assert build_reference(np.ones((1, 8))) is None


def test_reference_keeps_a_bounded_sample(monkeypatch) -> None:
    import guiclassifier.core.reference as reference

    monkeypatch.setattr(reference, "REFERENCE_SIZE", 64)
    ref = build_reference(np.random.default_rng(1).random((500, 16)))
    assert ref.samples.shape == (64, 16) and ref.samples.dtype == torch.float16


def test_reference_travels_in_the_model_file(tiny_learner: Learner, tmp_path: Path) -> None:
    tiny_learner.fit(0.05, 1)
    tiny_learner.reference = reference_from_training(tiny_learner)
    tiny_learner.save(tmp_path / "m.gcm")
    loaded = Learner.load(tmp_path / "m.gcm")
    assert torch.equal(loaded.reference.samples, tiny_learner.reference.samples)
    assert loaded.reference.threshold == tiny_learner.reference.threshold
    tiny_learner.fit(0.05, 1)
    assert tiny_learner.reference is None  # training makes it stale


def test_tta_answer_does_not_depend_on_the_batch(tiny_learner: Learner) -> None:
    tiny_learner.fit(0.05, 1)
    paths = [i.path for i in tiny_learner.data.valid_items]
    together = predict_files(tiny_learner, paths, tta=True)
    alone = [predict_files(tiny_learner, [p], tta=True)[0] for p in reversed(paths)][::-1]
    # Equal up to float rounding of batched vs single-image convolutions.
    assert np.allclose([r.probabilities for r in together], [r.probabilities for r in alone], atol=1e-6)
