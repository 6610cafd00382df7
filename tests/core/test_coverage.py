"""Accuracy against coverage and the confidence threshold: the curve, the threshold kept in the
model file, and predictions that say "not sure" below it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from guiclassifier import Learner
from guiclassifier.cli.commands import main
from guiclassifier.core.coverage import coverage_curve
from guiclassifier.core.predict import predict_files, write_predictions_csv


def test_coverage_falls_as_the_threshold_rises_and_matches_a_direct_count() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (300, 4))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    probs[:20] = probs[20:40]  # ties: equal confidences are answered together
    targets = rng.integers(0, 4, 300)
    curve = coverage_curve(probs, targets)
    assert np.all(np.diff(curve.thresholds) > 0) and np.all(np.diff(curve.coverage) < 0)
    assert curve.at(0.0).coverage == 1.0
    assert curve.at(0.0).accuracy == pytest.approx(np.mean(probs.argmax(1) == targets))
    for t in (0.3, 0.5, curve.thresholds[17], 0.9):
        kept = probs.max(1) >= t
        point = curve.at(t)
        assert point.answered == kept.sum() and point.coverage == pytest.approx(kept.mean())
        assert point.accuracy == pytest.approx(np.mean(probs[kept].argmax(1) == targets[kept]))
    assert curve.at(1.01).coverage == 0.0


def test_confident_answers_are_more_often_right_and_the_threshold_for_a_target_is_the_lowest() -> None:
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.5, 1.0, 500)
    right = rng.uniform(size=500) < confidence  # calibrated: a 90% answer is right 90% of the time
    targets = np.zeros(500, dtype=int)
    probs = np.stack([np.where(right, confidence, 1 - confidence), np.where(right, 1 - confidence, confidence)], 1)
    curve = coverage_curve(probs, targets)
    assert curve.at(0.9).accuracy > curve.at(0.7).accuracy > curve.at(0.0).accuracy
    t = curve.threshold_for(0.9)
    assert t is not None and curve.at(t).accuracy >= 0.9
    below = curve.thresholds[curve.thresholds < t]
    assert all(curve.at(b).accuracy < 0.9 for b in below)
    assert curve.threshold_for(1.01) is None


def test_threshold_is_saved_used_by_predict_and_cleared_by_training(tiny_learner: Learner, tmp_path: Path) -> None:
    tiny_learner.fit(0.05, 1)
    paths = [i.path for i in tiny_learner.data.valid_items]
    confidences = sorted(r.confidence for r in predict_files(tiny_learner, paths))
    threshold = (confidences[len(confidences) // 2 - 1] + confidences[len(confidences) // 2]) / 2
    tiny_learner.confidence_threshold = threshold
    model = tiny_learner.save(tmp_path / "m.gcm")
    loaded = Learner.load(model)
    assert loaded.confidence_threshold == pytest.approx(threshold)
    results = predict_files(loaded, paths)
    unsure = [r for r in results if r.not_sure]
    assert len(unsure) == len(paths) // 2 and all(r.confidence < threshold for r in unsure)
    assert all(r.answer is None and "not sure" in r.warning() for r in unsure)
    assert all(r.answer == r.best for r in results if not r.not_sure)
    write_predictions_csv(tmp_path / "p.csv", loaded.classes, results)
    rows = (tmp_path / "p.csv").read_text().splitlines()[1:]
    assert sum(row.split(",")[1] == "" for row in rows) == len(unsure)
    loaded.attach_data(tiny_learner.data)
    loaded.fit(0.01, 1)  # a retrained model's confidences change: its threshold must be picked again
    assert loaded.confidence_threshold == 0.0


def test_predict_json_says_not_sure_and_evaluate_sets_the_threshold(tiny_learner: Learner, dataset: Path,
                                                                     tmp_path: Path, capsys) -> None:
    tiny_learner.fit(0.05, 1)
    model = tiny_learner.save(tmp_path / "m.gcm")
    valid = str(dataset / "valid")
    assert main(["predict", str(model), valid, "--json", "--quiet"]) == 0
    before = json.loads(capsys.readouterr().out)["predictions"]
    assert not any(row["not_sure"] for row in before)
    top = max(row["probability"] for row in before)
    assert main(["evaluate", str(model), str(dataset), "--size", "32", "--set-threshold", f"{top:.6f}",
                 "--quiet"]) == 0
    said = capsys.readouterr().out
    assert "confidence threshold (saved in the model)" in said and "answered" in said
    assert Learner.load(model).confidence_threshold == pytest.approx(top, abs=1e-6)
    assert main(["predict", str(model), valid, "--json", "--quiet"]) == 0
    after = json.loads(capsys.readouterr().out)["predictions"]
    for row in after:
        if row["probability"] < round(top, 6):
            assert row["not_sure"] and row["class"] is None and row["best_guess"] in tiny_learner.classes
        else:
            assert not row["not_sure"] and row["class"] == row["best_guess"]
    assert sum(row["not_sure"] for row in after) >= len(after) - 1
    with pytest.raises(SystemExit) as refused:
        main(["evaluate", str(model), str(dataset), "--set-threshold", "1.5"])
    assert refused.value.code == 2 and "not a confidence between 0 and 1" in capsys.readouterr().err
