"""Spotting images unlike the training data: the familiarity reference a model file keeps.

The check works on the body's pooled features (what the head sees), L2-normalised. The reference
keeps a sample of the training images' features (at most REFERENCE_SIZE) and the mean distance
from each of them to its KNN_K nearest other samples; an image whose mean distance to its KNN_K
nearest samples is beyond the 99th percentile of those (times a margin) is flagged "unlike the
training images". A confident "cat" for a photo of a car lands far from every training image, even
when the softmax says 99%. (Distances to per-class centroids were tried first: on the demo data
they did not separate the app's own icon from the validation images.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

KNN_K = 5
REFERENCE_SIZE = 2048  # samples kept: 2048 x 1280 features in float16 is 5 MB in a model file
DISTANCE_QUANTILE = 0.99
DISTANCE_MARGIN = 1.1


@dataclass(frozen=True)
class FeatureReference:
    """A sample of normalised training features and the familiarity threshold (module docstring)."""

    samples: torch.Tensor  # (m, n_features) float16, rows L2-normalised
    threshold: float

    def distances(self, features: torch.Tensor) -> torch.Tensor:
        """Mean distance of each (normalised) feature row to its KNN_K nearest samples."""
        f = torch.nn.functional.normalize(features.float(), dim=1)
        d = torch.cdist(f, self.samples.float())
        return d.topk(min(KNN_K, d.shape[1]), dim=1, largest=False).values.mean(1)

    def unfamiliar(self, features: torch.Tensor) -> torch.Tensor:
        return self.distances(features) > self.threshold


def build_reference(features: np.ndarray | torch.Tensor, seed: int = 0) -> FeatureReference | None:
    """From training features (one row per image); None with fewer than two images."""
    f = torch.nn.functional.normalize(torch.as_tensor(np.asarray(features), dtype=torch.float32), dim=1)
    if len(f) > REFERENCE_SIZE:
        f = f[torch.randperm(len(f), generator=torch.Generator().manual_seed(seed))[:REFERENCE_SIZE]]
    if len(f) < 2:
        return None
    samples = f.half()
    d = torch.cdist(samples.float(), samples.float())
    d.fill_diagonal_(math.inf)  # each sample's neighbours are the others
    k = min(KNN_K, len(f) - 1)
    own = d.topk(k, dim=1, largest=False).values.mean(1)
    return FeatureReference(samples, float(torch.quantile(own, DISTANCE_QUANTILE)) * DISTANCE_MARGIN)
