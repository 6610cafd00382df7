"""Images whose label looks wrong, found the way confident learning does (Northcutt et al.; cleanlab):
each image's probability of its given label from a classifier that never saw it (k-fold: k small
classifiers on the cached features, each predicting the fold it was not trained on), ranked from
the least likely. A label is suspect when that classifier prefers another class.

cleanlab's stricter rule (below its class's average and another class above its own) kept only 13 of
21 planted errors in the top twice-planted-count: these small heads are under-confident, so a moved
image's other class rarely reaches its average. "Another class preferred" kept all 21, flagging about
7% of the demo's images (3 plantings of the demo, tests/planted.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from guiclassifier.core.cancel import CancelToken

FOLDS = 5
STEPS = 100
WEIGHT_DECAY = 0.03
COMPONENTS = 64
"""Features are first reduced to this many principal components: k fits take a second, and a small
model cannot memorise a wrong label the way 2,560 features let it. 64 components and weight decay
0.03 ranked 20 of 21 planted label errors (3 plantings of the demo) in the top twice-planted-count;
32 components, 16-17; weight decay 0.1, 18; 128 components and 1e-3, 14."""


@dataclass(frozen=True)
class LabelIssue:
    index: int  # into the images given
    given: int
    suggested: int  # the most likely other class
    p_given: float  # out-of-fold probability of the given label


def _fit_softmax(x: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.nn.Linear:
    """Multinomial logistic regression, full batch (L-BFGS): seconds for thousands of images."""
    head = torch.nn.Linear(x.shape[1], n_classes)
    opt = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=STEPS, history_size=10,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(x), y) + WEIGHT_DECAY * head.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return head


def out_of_fold_probabilities(features: np.ndarray, labels: np.ndarray, n_classes: int, cancel: CancelToken,
                              folds: int = FOLDS, seed: int = 0) -> np.ndarray:
    """(n, n_classes): each image's class probabilities from a classifier trained without it."""
    x = torch.as_tensor(np.asarray(features, dtype=np.float32))
    x = x - x.mean(0)
    if min(x.shape) > COMPONENTS:
        _, _, v = torch.pca_lowrank(x, q=COMPONENTS, center=False, niter=4)
        x = x @ v
    x = x / (x.std(0) + 1e-6)
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    probs = torch.zeros(len(x), n_classes)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for fold in range(folds):
            cancel.raise_if_cancelled()
            held = order[fold::folds]
            kept = torch.ones(len(x), dtype=torch.bool)
            kept[held] = False
            head = _fit_softmax(x[kept], y[kept], n_classes)
            with torch.no_grad():
                probs[held] = head(x[held]).softmax(1)
    return probs.numpy()


def label_issues(probs: np.ndarray, labels: np.ndarray) -> list[LabelIssue]:
    """Suspect labels (module docstring), the least likely first."""
    n = len(probs)
    labels = np.asarray(labels)
    p_given = probs[np.arange(n), labels]
    others = probs.copy()
    others[np.arange(n), labels] = -1.0
    suggested = others.argmax(1)
    suspect = others[np.arange(n), suggested] > p_given
    order = np.argsort(p_given, kind="stable")
    return [LabelIssue(int(i), int(labels[i]), int(suggested[i]), float(p_given[i])) for i in order if suspect[i]]
