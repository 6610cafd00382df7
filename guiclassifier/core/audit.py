"""Checking a dataset before (and after) training: copies and train/valid leaks, labels that look
wrong, classes too small or too unequal, images much smaller than the training size, and images
unlike the rest of their class. Built on the body's cached activations (core.precompute), so after
a precompute it takes seconds.

Each problem is a Finding (kind, files, their classes and splits, a score, one line for people);
`AuditReport.to_json` is what `guiclassifier audit --json` prints.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from guiclassifier.core.cancel import Cancelled, CancelToken
from guiclassifier.core.duplicates import DuplicateGroup, find_duplicates, nearest_neighbours
from guiclassifier.core.events import AuditProgress, Callback, Emitter
from guiclassifier.core.fingerprints import Fingerprint, fingerprints
from guiclassifier.core.image_size import default_image_size
from guiclassifier.core.label_issues import label_issues, out_of_fold_probabilities
from guiclassifier.core.progress import EtaClock
from guiclassifier.core.text import plural

if TYPE_CHECKING:
    from guiclassifier.core.learner import Learner

SMALL_CLASS = 20
"""Fewer training images than this: results for that class will vary from run to run."""
IMBALANCE = 3.0
"""The largest class this many times the smallest: the model leans towards the large ones."""
SMALL_IMAGE = 0.5
"""Images whose shorter side is under this share of the training size are blown up, blurred."""
UNLIKE_NEIGHBOURS = 5
UNLIKE_QUANTILE = 0.99
UNLIKE_MARGIN = 1.1

KINDS = {
    "leak": "the same picture in train and valid: the validation score flatters the model",
    "conflicting_labels": "the same picture in two classes",
    "exact_duplicates": "the same pixels under several names",
    "near_duplicates": "near copies (resized, re-encoded, cropped or brightened)",
    "label_error": "a model that never saw the image prefers another class: the first are the likeliest "
                   "mistakes, the last often just hard pictures",
    "small_class": "too few training images",
    "class_imbalance": "classes of very different sizes",
    "small_images": "images much smaller than the training size",
    "unlike_class": "unlike the rest of its class",
}
"""Every kind of finding, and what it means."""


@dataclass(frozen=True)
class Finding:
    kind: str
    files: tuple[str, ...]
    classes: tuple[str, ...]  # of each file (for a class-level finding: the classes concerned)
    splits: tuple[str, ...]  # of each file
    score: float  # how sure or how bad: higher is worse
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "files": list(self.files), "classes": list(self.classes),
                "split": list(self.splits), "score": round(self.score, 6), "detail": self.detail}


@dataclass(frozen=True)
class AuditReport:
    findings: tuple[Finding, ...]
    n_images: int
    unreadable: tuple[str, ...] = ()
    cancelled: bool = False
    seconds: dict[str, float] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    def to_json(self) -> dict[str, Any]:
        return {"images": self.n_images, "unreadable": list(self.unreadable), "cancelled": self.cancelled,
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
                "findings": [f.to_json() for f in self.findings]}


@dataclass(frozen=True)
class _Images:
    """The images both read and through the body: their paths, labels, splits, prints, features."""

    paths: list[str]
    labels: np.ndarray
    splits: list[str]
    prints: list[Fingerprint]
    features: np.ndarray


def audit(learner: Learner, callbacks: Callback | Sequence[Callback] | None = None,
          cancel: CancelToken | None = None) -> AuditReport:
    """Check the learner's dataset (module docstring). A stop returns what was found until then."""
    emit, cancel = Emitter(callbacks), cancel or CancelToken()
    data = learner.require_data()
    classes = data.classes
    findings: list[Finding] = []
    seconds: dict[str, float] = {}
    items = [(i, "train") for i in data.train_items] + [(i, "valid") for i in data.valid_items]
    findings.extend(_class_sizes(classes, Counter(i.label for i in data.train_items)))
    try:
        clock = EtaClock(len(items))
        prints = fingerprints([i.path for i, _ in items],
                              lambda done: emit(AuditProgress("Reading images", done, len(items), clock.elapsed(),
                                                              clock.eta(done))), cancel)
        seconds["reading"] = clock.elapsed()
        unreadable = tuple(i.path for (i, _), p in zip(items, prints) if p is None)
        findings.extend(_small_images(items, prints, classes, data.size))
        images = _usable(learner, items, prints, emit, cancel)
        clock = EtaClock(3)
        emit(AuditProgress("Comparing images", 0, 3, 0.0, None))
        groups = find_duplicates(images.paths, images.prints, images.features, cancel)
        findings.extend(_duplicate_finding(g, images, classes) for g in groups)
        emit(AuditProgress("Checking labels", 1, 3, clock.elapsed(), clock.eta(1)))
        seconds["duplicates"] = clock.elapsed()
        probs = out_of_fold_probabilities(images.features, images.labels, len(classes), cancel)
        findings.extend(_label_finding(issue, images, classes) for issue in label_issues(probs, images.labels))
        emit(AuditProgress("Checking labels", 2, 3, clock.elapsed(), clock.eta(2)))
        seconds["labels"] = clock.elapsed() - seconds["duplicates"]
        findings.extend(_unlike_class(images, classes, cancel))
        emit(AuditProgress("Checking labels", 3, 3, clock.elapsed(), 0.0))
    except Cancelled:
        return AuditReport(tuple(findings), len(items), cancelled=True, seconds=seconds)
    return AuditReport(tuple(findings), len(items), unreadable, seconds=seconds)


def _usable(learner: Learner, items: list, prints: list[Fingerprint | None], emit: Emitter,
            cancel: CancelToken) -> _Images:
    paths, labels, splits, kept_prints, rows = [], [], [], [], []
    features = []
    offset = 0
    for split in ("train", "valid"):
        acts = learner._split_activations(split, emit, cancel)
        usable = set(acts.rows.tolist())
        n = len(acts.features)
        for row in range(n):
            item, _ = items[offset + row]
            p = prints[offset + row]
            if row in usable and p is not None:
                paths.append(item.path)
                labels.append(item.label)
                splits.append(split)
                kept_prints.append(p)
                rows.append(row)
        features.append(np.asarray(acts.features[[r for r, s in zip(rows, splits) if s == split]],
                                   dtype=np.float32))
        offset += n
    return _Images(paths, np.array(labels, dtype=np.int64), splits, kept_prints,
                   np.concatenate(features) if features else np.zeros((0, 1), np.float32))


def _duplicate_finding(group: DuplicateGroup, images: _Images, classes: tuple[str, ...]) -> Finding:
    files = tuple(images.paths[i] for i in group.members)
    labels = {int(images.labels[i]) for i in group.members}
    splits = tuple(images.splits[i] for i in group.members)
    names = tuple(classes[images.labels[i]] for i in group.members)
    copies = plural(len(files), "copy", "copies")
    if len(labels) > 1:
        kind, detail = "conflicting_labels", f"{copies} of one picture labelled {' and '.join(sorted(set(names)))}"
    elif len(set(splits)) > 1:
        kind, detail = "leak", f"{copies} of one picture in both train and valid"
    elif group.exact:
        kind, detail = "exact_duplicates", f"{copies} with the same pixels"
    else:
        kind, detail = "near_duplicates", f"{copies} that look the same (likeness {group.likeness:.4f})"
    if kind in ("conflicting_labels", "leak"):
        detail += " (same pixels)" if group.exact else ""
    return Finding(kind, files, names, splits, 1.0 if group.exact else group.likeness, detail)


def _label_finding(issue, images: _Images, classes: tuple[str, ...]) -> Finding:
    return Finding("label_error", (images.paths[issue.index],), (classes[issue.given],),
                   (images.splits[issue.index],), 1.0 - issue.p_given,
                   f"labelled {classes[issue.given]}, looks like {classes[issue.suggested]} "
                   f"(a model that never saw it gives its label {issue.p_given:.0%})")


def _class_sizes(classes: tuple[str, ...], counts: Counter) -> list[Finding]:
    found = []
    for k, name in enumerate(classes):
        if counts[k] < SMALL_CLASS:
            found.append(Finding("small_class", (), (name,), ("train",), float(SMALL_CLASS - counts[k]),
                                 f"{name} has {plural(counts[k], 'training image')}: with fewer than "
                                 f"{SMALL_CLASS} its results vary from run to run; add more if you can"))
    sizes = [counts[k] for k in range(len(classes))]
    if min(sizes) > 0 and max(sizes) >= IMBALANCE * min(sizes):
        big, small = classes[int(np.argmax(sizes))], classes[int(np.argmin(sizes))]
        found.append(Finding("class_imbalance", (), (big, small), ("train", "train"), max(sizes) / min(sizes),
                             f"{big} has {max(sizes)} training images, {small} {min(sizes)}: the model will "
                             f"lean towards the bigger classes; add images to the small ones or expect "
                             f"more mistakes there"))
    return found


def _small_images(items: list, prints: list[Fingerprint | None], classes: tuple[str, ...],
                  size: int) -> list[Finding]:
    """Images blown up to the training size. When most of the dataset is small and `size` is already
    the one the app picks for such images (core.image_size), that is the data, not a problem."""
    read = [p for p in prints if p is not None]
    small = [(i, split, p) for (i, split), p in zip(items, prints)
             if p is not None and min(p.width, p.height) < SMALL_IMAGE * size]
    if not small:
        return []
    sides = sorted(min(p.width, p.height) for _, _, p in small)
    most = len(small) > len(read) / 2
    suits = default_image_size("cpu", sides[len(sides) // 2])
    if most and size <= suits:
        return []
    what = f"{plural(len(small), 'image')} with a shorter side under {SMALL_IMAGE * size:.0f} px " \
           f"(smallest {sides[0]} px) are blown up to {size} px and look blurred"
    advice = (f"; {suits} px would suit them and train faster" if most else
              "; check they are what you meant, or find larger copies")
    return [Finding("small_images", tuple(i.path for i, _, _ in small), tuple(classes[i.label] for i, _, _ in small),
                    tuple(s for _, s, _ in small), len(small) / len(items), what + advice)]


def _unlike_class(images: _Images, classes: tuple[str, ...], cancel: CancelToken) -> list[Finding]:
    """Images far from their class's other images (mean cosine distance to the nearest few),
    beyond the class's 99th percentile by a margin."""
    found = []
    for k, name in enumerate(classes):
        members = np.flatnonzero(images.labels == k)
        if len(members) <= UNLIKE_NEIGHBOURS + 1:
            continue
        _, sims = nearest_neighbours(images.features[members], UNLIKE_NEIGHBOURS, cancel)
        distance = 1.0 - sims.mean(1)
        limit = float(np.quantile(distance, UNLIKE_QUANTILE)) * UNLIKE_MARGIN
        for j in np.flatnonzero(distance > limit):
            i = int(members[j])
            found.append(Finding("unlike_class", (images.paths[i],), (name,), (images.splits[i],),
                                 float(distance[j] / limit),
                                 f"unlike the other {name} images: a wrong picture, or one of a kind "
                                 f"the class needs more of"))
    return found
