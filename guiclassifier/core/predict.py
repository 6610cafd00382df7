"""Predicting many files, one result each, streamed as they come: the one prediction path (the
Learner's predict, evaluate and TTA go through it too).

Unreadable files get a result with the reason instead of stopping the run. Each result says how
confident the model is and whether the image looks unlike what the model was trained on (see
core.reference).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
from PIL import Image

from guiclassifier.core.augment import train_transform, valid_transform
from guiclassifier.core.cancel import CancelToken
from guiclassifier.core.device import to_device
from guiclassifier.core.errors import ImageError
from guiclassifier.core.events import Callback, Emitter, FilePredicted, PredictProgress
from guiclassifier.core.precision import Precision
from guiclassifier.core.progress import EtaClock
from guiclassifier.core.reference import FeatureReference, build_reference
from guiclassifier.core.resized import ImageReader, needed_side
from guiclassifier.core.rng import get_rng_state, set_rng_state

if TYPE_CHECKING:
    from guiclassifier.core.data import ImageData
    from guiclassifier.core.models import Classifier
    from guiclassifier.core.precompute import Activations

LOW_CONFIDENCE = 0.5
TTA_AUGMENTED = 4
TTA_SEED = 1234
"""TTA averages the plain view with TTA_AUGMENTED augmented ones, drawn from a fixed seed: the same
image always gets the same answer."""


class Predictor(Protocol):
    """What prediction reads of a Learner (core.learner, which predicts through this module)."""

    model: Classifier
    size: int
    augment: str
    max_zoom: float
    device: torch.device
    precision: Precision
    data: ImageData | None
    confidence_threshold: float

    def split_activations(self, split: str, callbacks: Callback | Sequence[Callback] | None = None,
                          cancel: CancelToken | None = None) -> Activations: ...


@dataclass(frozen=True)
class Prediction:
    path: str
    probabilities: tuple[float, ...] | None  # None when the file could not be read
    error: str | None
    seconds: float
    unfamiliar: bool = False
    threshold: float = 0.0  # the model's confidence threshold (core.coverage); 0 answers everything

    @property
    def best(self) -> int | None:
        return None if self.probabilities is None else int(np.argmax(self.probabilities))

    @property
    def confidence(self) -> float:
        return 0.0 if self.probabilities is None else max(self.probabilities)

    @property
    def not_sure(self) -> bool:
        """Below the model's threshold: the model withholds its answer."""
        return self.probabilities is not None and self.confidence < self.threshold

    @property
    def answer(self) -> int | None:
        """The class given as the answer: the best one, or None when the file was unreadable or
        the model is not sure."""
        return None if self.not_sure else self.best

    @property
    def low_confidence(self) -> bool:
        return self.probabilities is not None and self.confidence < LOW_CONFIDENCE

    def warning(self) -> str:
        if self.unfamiliar:
            return "looks unlike the training images: the answer may be meaningless"
        if self.not_sure:
            return f"not sure: below the model's {self.threshold:.0%} confidence threshold"
        if self.low_confidence:
            return "low confidence"
        return ""


@dataclass(frozen=True)
class Predictions(Sequence[Prediction]):
    """predict_files' answer: a Prediction per file done, in order; `cancelled` when it was
    stopped before the end (the files after the last finished batch are missing)."""

    results: tuple[Prediction, ...]
    cancelled: bool = False

    def __getitem__(self, index):  # type: ignore[override]  # an int or a slice, as a tuple takes
        return self.results[index]

    def __len__(self) -> int:
        return len(self.results)


def predict_files(learner: Predictor, paths: Sequence[str | Path], tta: bool = False,
                  reference: FeatureReference | None = None,
                  callbacks: Callback | Sequence[Callback] | None = None,
                  cancel: CancelToken | None = None) -> Predictions:
    """One Prediction per path, in order, sent as FilePredicted events as each batch finishes.
    Stopped through `cancel`, it returns the files done so far, marked `cancelled`."""
    emit = Emitter(callbacks)
    cancel = cancel or CancelToken()
    views = [valid_transform(learner.size)]
    if tta:
        aug = learner.augment if learner.augment != "none" else "side_on"
        views += [train_transform(aug, learner.size, learner.max_zoom)] * TTA_AUGMENTED
    bs = learner.data.bs if learner.data is not None else 32
    read = ImageReader(needed_side(learner.size, learner.max_zoom))  # big JPEGs decoded at reduced scale
    clock = EtaClock(len(paths))
    threshold = learner.confidence_threshold
    results: list[Prediction] = []
    model = learner.model
    was_training = model.training
    model.eval()
    rng = get_rng_state()
    chunks = [[str(p) for p in paths[start:start + bs]] for start in range(0, len(paths), bs)]
    # The next batch is decoded on a thread while the model runs on this one (Pillow releases the
    # GIL while decoding; no tensor work there): photos then cost little more than tiny images.
    prefetch = ThreadPoolExecutor(max_workers=1, thread_name_prefix="guiclassifier-decode")
    try:
        pending = prefetch.submit(decode_images, read, chunks[0]) if chunks else None
        for index, chunk in enumerate(chunks):
            if cancel.cancelled:
                return Predictions(tuple(results), cancelled=True)
            began = time.perf_counter()
            images, errors = pending.result()
            if index + 1 < len(chunks):
                pending = prefetch.submit(decode_images, read, chunks[index + 1])
            probs = feats = None
            if images:
                # Seeded per image, so an image's TTA views do not depend on its batch or neighbours.
                # The views are drawn on the CPU: its generator alone is reseeded (torch.manual_seed
                # would also queue a CUDA reseed, with a stack trace, for every image).
                per_image = []
                for img in images:
                    if tta:
                        torch.default_generator.manual_seed(TTA_SEED)
                    per_image.append([transform(img) for transform in views])
                total = None
                with torch.no_grad(), learner.precision.autocast(learner.device):
                    for v in range(len(views)):
                        x = to_device(torch.stack([tensors[v] for tensors in per_image]), learner.device)
                        f = model.features(x)
                        p = torch.softmax(model.head(f).float(), 1).cpu()
                        total = p if total is None else total + p
                        feats = f.float().cpu() if feats is None else feats
                probs = total / len(views)
            per_file = (time.perf_counter() - began) / max(1, len(chunk))
            flags = reference.unfamiliar(feats).tolist() if reference is not None and feats is not None else None
            i = 0  # row of the next readable file in probs
            for j, path in enumerate(chunk):
                if j in errors:
                    result = Prediction(path, None, errors[j], per_file)
                else:
                    result = Prediction(path, tuple(float(v) for v in probs[i]), None, per_file,
                                        bool(flags[i]) if flags is not None else False, threshold)
                    i += 1
                results.append(result)
                emit(FilePredicted(len(results) - 1, result.path, result.probabilities, result.error,
                                   result.seconds, result.unfamiliar, result.threshold))
            emit(PredictProgress(len(results), len(paths), clock.elapsed(), clock.eta(len(results))))
    finally:
        prefetch.shutdown(wait=True, cancel_futures=True)
        set_rng_state(rng)
        model.train(was_training)
    return Predictions(tuple(results))


def decode_images(read: ImageReader, paths: Sequence[str]) -> tuple[list[Image.Image], dict[int, str]]:
    """The images of `paths` that open, and the reason for each that does not (by position)."""
    images, errors = [], {}
    for j, path in enumerate(paths):
        try:
            images.append(read(path))
        except ImageError as exc:
            errors[j] = exc.reason
    return images, errors


def write_predictions_csv(path: str | Path, classes: Sequence[str], results: Sequence[Prediction]) -> None:
    """path, predicted class (empty when the model is not sure), one column per class probability,
    and the warning or skip reason."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "predicted", *classes, "warning"])
        for r in results:
            if r.probabilities is None:
                writer.writerow([r.path, "", *([""] * len(classes)), f"skipped: {r.error}"])
            else:
                answer = "" if r.answer is None else classes[r.answer]
                writer.writerow([r.path, answer, *(f"{p:.6f}" for p in r.probabilities), r.warning()])


def reference_from_training(learner: Predictor, callbacks: Callback | Sequence[Callback] | None = None,
                            cancel: CancelToken | None = None) -> FeatureReference | None:
    """The familiarity reference from the training images' pooled features (through the cache)."""
    acts = learner.split_activations("train", callbacks, cancel)
    return build_reference(np.asarray(acts.features[acts.rows]))

