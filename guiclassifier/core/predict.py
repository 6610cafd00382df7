"""Predicting many files, one result each, streamed as they come; and spotting images unlike the
training data.

Unreadable files get a result with the reason instead of stopping the run. Each result says how
confident the model is and whether the image looks unlike what the model was trained on:

The familiarity check works on the body's pooled features (what the head sees). For every class,
the training images' features (L2-normalised) give a centroid and the distribution of distances
to it; an image whose distance to its predicted class's centroid is beyond that class's 99th
percentile (times a margin) is flagged "unlike the training images". A confident "cat" for a
photo of a car typically lands far from every cat, even when the softmax says 99%.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from guiclassifier.core.cancel import CancelToken
from guiclassifier.core.errors import ImageError
from guiclassifier.core.events import Callback, Emitter, FilePredicted, PredictProgress
from guiclassifier.core.images import open_rgb
from guiclassifier.core.progress import EtaClock
from guiclassifier.core.rng import get_rng_state, set_rng_state

if TYPE_CHECKING:
    from guiclassifier.core.learner import Learner

LOW_CONFIDENCE = 0.5
DISTANCE_QUANTILE = 0.99
DISTANCE_MARGIN = 1.25


@dataclass(frozen=True)
class FeatureReference:
    """Per-class centroids of normalised training features and a distance threshold each."""

    centroids: torch.Tensor  # (n_classes, n_features)
    thresholds: torch.Tensor  # (n_classes,)

    def distances(self, features: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        f = torch.nn.functional.normalize(features.float(), dim=1)
        return (f - self.centroids[classes]).norm(dim=1)

    def unfamiliar(self, features: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        return self.distances(features, classes) > self.thresholds[classes]


def build_reference(features: np.ndarray | torch.Tensor, labels: Sequence[int], n_classes: int
                    ) -> FeatureReference:
    """From training features (one row per image) and their labels."""
    f = torch.nn.functional.normalize(torch.as_tensor(np.asarray(features), dtype=torch.float32), dim=1)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    centroids = torch.zeros(n_classes, f.shape[1])
    thresholds = torch.full((n_classes,), math.inf)
    for c in range(n_classes):
        rows = f[y == c]
        if len(rows) == 0:
            continue
        centroids[c] = rows.mean(0)
        d = (rows - centroids[c]).norm(dim=1)
        thresholds[c] = float(torch.quantile(d, DISTANCE_QUANTILE)) * DISTANCE_MARGIN
    return FeatureReference(centroids, thresholds)


@dataclass(frozen=True)
class Prediction:
    path: str
    probabilities: tuple[float, ...] | None  # None when the file could not be read
    error: str | None
    seconds: float
    unfamiliar: bool = False

    @property
    def best(self) -> int | None:
        return None if self.probabilities is None else int(np.argmax(self.probabilities))

    @property
    def confidence(self) -> float:
        return 0.0 if self.probabilities is None else max(self.probabilities)

    @property
    def low_confidence(self) -> bool:
        return self.probabilities is not None and self.confidence < LOW_CONFIDENCE

    def warning(self) -> str:
        if self.unfamiliar:
            return "looks unlike the training images: the answer may be meaningless"
        if self.low_confidence:
            return "low confidence"
        return ""


def predict_files(learner: Learner, paths: Sequence[str | Path], tta: bool = False,
                  reference: FeatureReference | None = None,
                  callbacks: Callback | Sequence[Callback] | None = None,
                  cancel: CancelToken | None = None) -> list[Prediction]:
    """One Prediction per path, in order, sent as FilePredicted events as each batch finishes."""
    from guiclassifier.core.augment import train_transform, valid_transform
    from guiclassifier.core.learner import TTA_AUGMENTED, TTA_SEED

    emit = Emitter(callbacks)
    cancel = cancel or CancelToken()
    views = [valid_transform(learner.size)]
    if tta:
        aug = learner.augment if learner.augment != "none" else "side_on"
        views += [train_transform(aug, learner.size, learner.max_zoom)] * TTA_AUGMENTED
    bs = learner.data.bs if learner.data is not None else 32
    clock = EtaClock(len(paths))
    results: list[Prediction] = []
    model = learner.model
    was_training = model.training
    model.eval()
    rng = get_rng_state()
    try:
        for start in range(0, len(paths), bs):
            cancel.raise_if_cancelled()
            began = time.perf_counter()
            chunk = [str(p) for p in paths[start:start + bs]]
            images, errors = [], {}  # errors: position in the chunk -> reason
            for j, path in enumerate(chunk):
                try:
                    images.append(open_rgb(path))
                except ImageError as exc:
                    errors[j] = exc.reason
            probs = feats = None
            if images:
                # Seeded per image, so an image's TTA views do not depend on its batch or neighbours.
                per_image = []
                for img in images:
                    torch.manual_seed(TTA_SEED)
                    per_image.append([transform(img) for transform in views])
                total = None
                with torch.no_grad(), torch.autocast(learner.device.type, enabled=learner.amp):
                    for v in range(len(views)):
                        x = torch.stack([tensors[v] for tensors in per_image]).to(learner.device)
                        f = model.features(x)
                        p = torch.softmax(model.head(f).float(), 1).cpu()
                        total = p if total is None else total + p
                        feats = f.float().cpu() if feats is None else feats
                probs = total / len(views)
            per_file = (time.perf_counter() - began) / max(1, len(chunk))
            flags = reference.unfamiliar(feats, probs.argmax(1)).tolist() if (reference is not None and
                                                                               probs is not None) else None
            i = 0  # row of the next readable file in probs
            for j, path in enumerate(chunk):
                if j in errors:
                    result = Prediction(path, None, errors[j], per_file)
                else:
                    result = Prediction(path, tuple(float(v) for v in probs[i]), None, per_file,
                                        bool(flags[i]) if flags is not None else False)
                    i += 1
                results.append(result)
                emit(FilePredicted(len(results) - 1, result.path, result.probabilities, result.error,
                                   result.seconds, result.unfamiliar))
            emit(PredictProgress(len(results), len(paths), clock.elapsed(), clock.eta(len(results))))
    finally:
        set_rng_state(rng)
        model.train(was_training)
    return results


def write_predictions_csv(path: str | Path, classes: Sequence[str], results: Sequence[Prediction]) -> None:
    """path, predicted class, one column per class probability, and the warning or skip reason."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "predicted", *classes, "warning"])
        for r in results:
            if r.probabilities is None:
                writer.writerow([r.path, "", *([""] * len(classes)), f"skipped: {r.error}"])
            else:
                writer.writerow([r.path, classes[r.best], *(f"{p:.6f}" for p in r.probabilities), r.warning()])


def reference_from_training(learner: Learner, callbacks: Callback | Sequence[Callback] | None = None,
                            cancel: CancelToken | None = None) -> FeatureReference:
    """The familiarity reference from the training images' pooled features (through the cache)."""
    learner._require_data()
    acts = learner._split_activations("train", Emitter(callbacks), cancel or CancelToken())
    rows = acts.rows
    return build_reference(np.asarray(acts.features[rows]), acts.labels[rows], len(learner.classes))

