"""Accuracy against coverage: how often the model is right when it answers only where its confidence
is at least a threshold, and how many images it then answers. A user picks the threshold on the
validation set; Predict then says "not sure" below it instead of giving a likely wrong answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CoveragePoint:
    threshold: float  # answers need at least this confidence
    coverage: float  # share of images answered
    accuracy: float  # share of the answered that are right (1.0 when none are answered)
    answered: int


@dataclass(frozen=True)
class CoverageCurve:
    """One point per distinct confidence, the lowest threshold (everything answered) first:
    coverage falls as the threshold rises."""

    thresholds: np.ndarray
    coverage: np.ndarray
    accuracy: np.ndarray
    n: int

    def at(self, threshold: float) -> CoveragePoint:
        """What a threshold gives: the images with at least that confidence answered."""
        i = int(np.searchsorted(self.thresholds, threshold, side="left"))
        if i >= len(self.thresholds):
            return CoveragePoint(threshold, 0.0, 1.0, 0)
        return CoveragePoint(threshold, float(self.coverage[i]), float(self.accuracy[i]),
                             round(float(self.coverage[i]) * self.n))

    def threshold_for(self, accuracy: float) -> float | None:
        """The lowest threshold whose answers are at least `accuracy` right (most images answered),
        or None when no threshold reaches it."""
        reached = np.flatnonzero(self.accuracy >= accuracy)
        return float(self.thresholds[reached[0]]) if len(reached) else None


def coverage_curve(probs: np.ndarray, targets: np.ndarray) -> CoverageCurve:
    """The curve of a validation set's class probabilities (n, classes) and true classes (n,)."""
    probs = np.asarray(probs, dtype=np.float64)
    targets = np.asarray(targets)
    n = len(targets)
    if n == 0:
        return CoverageCurve(np.zeros(0), np.zeros(0), np.zeros(0), 0)
    confidence = probs.max(1)
    right = probs.argmax(1) == targets
    order = np.argsort(-confidence, kind="stable")
    confidence, right = confidence[order], right[order]
    answered = np.arange(1, n + 1)
    accuracy = np.cumsum(right) / answered
    # Equal confidences are answered together: keep the last of each run (most confident first).
    last = np.append(confidence[1:] != confidence[:-1], True)
    keep = np.flatnonzero(last)[::-1]
    return CoverageCurve(confidence[keep], answered[keep] / n, accuracy[keep], n)
