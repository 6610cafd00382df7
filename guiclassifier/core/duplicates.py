"""Groups of copies in a dataset: exact (same pixels) and near (resized, re-encoded, slightly cropped
or brightened), found in two steps that together cost little more than the precompute they follow.

1. Candidates: each image's NEIGHBOURS nearest images by the pretrained body's pooled features
   (cosine; the features are already cached by precompute), and its NEIGHBOURS nearest by
   thumbnail: the whole picture's view against the others' whole and centre-cropped views (core.
   fingerprints). Features alone missed cropped copies whose original ranked 14th to 117th among
   their nearest (benchmarks/audit_planted.py); whole views alone, 2 of 720.
2. Proof: the thumbnails' likeness (core.fingerprints) at NEAR_LIKENESS or more; the same pixels
   (a digest of the decoded image) make a pair exact.
Pairs are joined into groups (a copy of a copy is in its original's group).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from guiclassifier.core.cancel import CancelToken
from guiclassifier.core.errors import ImageError
from guiclassifier.core.fingerprints import Fingerprint, likeness, pixel_digest

NEIGHBOURS = 10
NEAR_LIKENESS = 0.9945
"""Planted copies of 28-pixel Fashion-MNIST pictures (4,540 images, 720 copies): 0.9947 and more (the
lowest are 1.5x bicubic enlargements); different pictures: 0.9938 at most. Small centred
silhouettes on black are the hard case; photos differ far more."""
BLOCK = 1024
SCORES_PER_BLOCK = 1 << 24  # a block of thumbnail scores: 64 MB (every view of every picture is a column)


@dataclass(frozen=True)
class DuplicateGroup:
    members: tuple[int, ...]  # indices into the images compared, sorted
    exact: bool  # every member has the same pixels
    likeness: float  # the lowest likeness of the pairs that joined the group


def nearest_neighbours(features: np.ndarray, k: int, cancel: CancelToken) -> tuple[np.ndarray, np.ndarray]:
    """(indices, cosines) of each row's k nearest other rows, computed in blocks (memory: BLOCK x n)."""
    f = torch.nn.functional.normalize(torch.as_tensor(np.asarray(features, dtype=np.float32)), dim=1)
    n = len(f)
    k = min(k, n - 1)
    idx = np.zeros((n, k), dtype=np.int64)
    sims = np.zeros((n, k), dtype=np.float32)
    for start in range(0, n, BLOCK):
        cancel.raise_if_cancelled()
        s = f[start:start + BLOCK] @ f.T
        rows = torch.arange(len(s))
        s[rows, rows + start] = -2.0  # not its own neighbour
        top = s.topk(k, dim=1)
        idx[start:start + BLOCK] = top.indices.numpy()
        sims[start:start + BLOCK] = top.values.numpy()
    return idx, sims


def _nearest_thumbnails(prints: Sequence[Fingerprint], k: int, cancel: CancelToken) -> np.ndarray:
    """Each picture's k most alike others: its whole view correlated with every view (whole and
    cropped) of the others; a slightly cropped copy matches its original's crop of the same extent."""
    views = torch.as_tensor(np.stack([p.views for p in prints]).astype(np.float32))  # (n, scales, d)
    n, scales, d = views.shape
    whole, every = views[:, 0], views.reshape(n * scales, d)
    idx = np.zeros((n, min(k, n - 1)), dtype=np.int64)
    rows_per_block = max(1, min(BLOCK, SCORES_PER_BLOCK // (n * scales)))  # 20,000 images: 167 rows, 67 MB
    for start in range(0, n, rows_per_block):
        cancel.raise_if_cancelled()
        s = whole[start:start + rows_per_block] @ every.T
        rows = torch.arange(len(s))
        s = s.reshape(len(s), n, scales).amax(2)  # a picture's best view
        s[rows, rows + start] = -2.0
        idx[start:start + rows_per_block] = s.topk(idx.shape[1], dim=1).indices.numpy()
    return idx


class _Groups:
    """Union-find over image indices."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


def find_duplicates(paths: Sequence[str], prints: Sequence[Fingerprint], features: np.ndarray,
                    cancel: CancelToken) -> list[DuplicateGroup]:
    """Groups of copies among `paths` (each with its fingerprint and feature row), largest first."""
    n = len(paths)
    if n < 2:
        return []
    by_features, _ = nearest_neighbours(features, NEIGHBOURS, cancel)
    idx = np.concatenate([by_features, _nearest_thumbnails(prints, NEIGHBOURS, cancel)], axis=1)
    groups = _Groups(n)
    compared: set[tuple[int, int]] = set()
    near: list[tuple[int, float]] = []  # (one member, likeness) of each pair of copies
    for a in range(n):
        if a % 256 == 0:
            cancel.raise_if_cancelled()
        for b in idx[a].tolist():
            pair = (min(a, b), max(a, b))
            if pair in compared:
                continue
            compared.add(pair)
            like = likeness(prints[a], prints[b])
            if like >= NEAR_LIKENESS:
                groups.join(a, b)
                near.append((a, like))
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(groups.find(i), []).append(i)
    lowest: dict[int, float] = {}
    for a, like in near:
        root = groups.find(a)
        lowest[root] = min(lowest.get(root, 1.0), like)
    found = []
    for root, group in members.items():
        if len(group) >= 2:
            found.append(DuplicateGroup(tuple(group), _same_pixels(paths, prints, group), lowest[root]))
    return sorted(found, key=lambda g: (-len(g.members), g.members))


def _same_pixels(paths: Sequence[str], prints: Sequence[Fingerprint], group: list[int]) -> bool:
    first = prints[group[0]]
    if any((prints[i].width, prints[i].height) != (first.width, first.height)
           or not np.array_equal(prints[i].views, first.views) for i in group[1:]):
        return False
    try:
        return len({pixel_digest(paths[i]) for i in group}) == 1
    except ImageError:
        return False
