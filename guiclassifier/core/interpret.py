"""What the model gets wrong on the validation set: confusion cells, top losses, confused pairs.

This is what a user needs to clean their data: click a confusion-matrix cell and see those images,
the most wrong first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from guiclassifier.core.cancel import CancelToken
from guiclassifier.core.events import Callback, Emitter, Event, FilePredicted
from guiclassifier.core.predict import predict_files

if TYPE_CHECKING:
    from guiclassifier.core.learner import Learner


@dataclass(frozen=True)
class Interpretation:
    classes: tuple[str, ...]
    paths: tuple[str, ...]
    targets: np.ndarray  # (n,) actual class of each image
    probs: np.ndarray  # (n, n_classes)
    skipped: tuple[tuple[str, str], ...] = ()  # (path, reason) of unreadable validation files
    cancelled: bool = False  # stopped before the end: the images analysed until then

    @property
    def preds(self) -> np.ndarray:
        return self.probs.argmax(1)

    @property
    def losses(self) -> np.ndarray:
        """Cross-entropy of each image: how wrong the model is about it."""
        return -np.log(np.clip(self.probs[np.arange(len(self.targets)), self.targets], 1e-12, None))

    @property
    def confusion(self) -> np.ndarray:
        """(actual, predicted) counts."""
        n = len(self.classes)
        return np.bincount(self.targets * n + self.preds, minlength=n * n).reshape(n, n)

    def top_losses(self, k: int | None = None) -> list[int]:
        """Indices of the images the model is most wrong about, worst first."""
        order = np.argsort(-self.losses, kind="stable")
        return order[:k].tolist() if k is not None else order.tolist()

    def cell(self, actual: int, predicted: int) -> list[int]:
        """Indices of the images of one confusion-matrix cell, worst first."""
        return [i for i in self.top_losses() if self.targets[i] == actual and self.preds[i] == predicted]

    def most_confused(self, min_count: int = 1) -> list[tuple[str, str, int]]:
        """(actual, predicted, count) for off-diagonal cells, most frequent first."""
        m = self.confusion
        pairs = [(self.classes[a], self.classes[p], int(m[a, p])) for a in range(len(self.classes))
                 for p in range(len(self.classes)) if a != p and m[a, p] >= min_count]
        return sorted(pairs, key=lambda t: -t[2])


def interpret(learner: Learner, tta: bool = False, callbacks: Callback | Sequence[Callback] | None = None,
              cancel: CancelToken | None = None) -> Interpretation:
    """Predict every validation image (with TTA if asked) and keep what is needed to inspect it;
    stopped through `cancel`, the images done until then, marked `cancelled`."""
    data = learner.require_data()
    emit = Emitter(callbacks)

    def progress_only(event: Event) -> None:
        if not isinstance(event, FilePredicted):
            emit(event)

    items = list(data.valid_items)
    results = predict_files(learner, [i.path for i in items], tta, None, progress_only, cancel)
    kept = [(item, r) for item, r in zip(items, results) if r.error is None]
    return Interpretation(
        tuple(learner.classes), tuple(item.path for item, _ in kept),
        np.array([item.label for item, _ in kept], dtype=np.int64),
        np.array([r.probabilities for _, r in kept], dtype=np.float64).reshape(len(kept), len(learner.classes)),
        tuple((r.path, r.error) for r in results if r.error is not None), results.cancelled)
