"""Where in an image the model looked: Grad-CAM (Selvaraju et al.) on the last convolutional layer,
as fastai v1's plot_top_losses(heatmap=True) showed.

Each channel of the body's last feature map is weighted by the mean gradient of the class score
with respect to it; the weighted sum, clipped at zero, is the map, stretched to [0, 1] so the
legend's ends mean least and most. It covers the centre square the model sees (core.augment.
valid_transform), scaled to the image size the model was given. The last feature map is 1/32 of
that size (GRID_DIVISOR): 2x2 at 64 px, 7x7 at 224.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from guiclassifier.core.augment import valid_transform
from guiclassifier.core.cancel import CancelToken
from guiclassifier.core.device import to_device
from guiclassifier.core.events import Callback, Emitter, PredictProgress
from guiclassifier.core.predict import Predictor, decode_images
from guiclassifier.core.progress import EtaClock
from guiclassifier.core.resized import ImageReader, needed_side

if TYPE_CHECKING:
    from guiclassifier.core.models import Classifier

BATCH = 16
GRID_DIVISOR = 32
COARSE_GRID = 3  # this many cells a side or fewer: the map says little more than which corner


@dataclass(frozen=True)
class Heatmap:
    path: str
    cam: np.ndarray | None  # (size, size) in [0, 1]; None when the file could not be read
    class_index: int  # the class whose evidence it shows (the predicted one unless asked)
    probability: float  # the model's probability of that class
    error: str | None = None


def class_activation_maps(model: Classifier, x: torch.Tensor, classes: torch.Tensor | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(maps (B, H, W) in [0, 1] at the input's size, the class of each, its probability) for a
    batch already transformed; `classes` None means the predicted class."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            acts = model.trunk(model.stem(model.normalize(x))).float()
        with torch.enable_grad():
            acts.requires_grad_(True)
            logits = model.head(model.pool(acts)).float()
            chosen = logits.argmax(1) if classes is None else classes.to(logits.device)
            (grads,) = torch.autograd.grad(logits.gather(1, chosen[:, None]).sum(), acts)
    finally:
        model.train(was_training)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cams = F.relu((weights * acts.detach()).sum(1, keepdim=True))
    cams = F.interpolate(cams, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    low = cams.flatten(1).amin(1)[:, None, None]
    spread = (cams.flatten(1).amax(1)[:, None, None] - low).clamp_min(1e-12)
    probs = logits.detach().softmax(1).gather(1, chosen[:, None])[:, 0]
    return ((cams - low) / spread).cpu(), chosen.cpu(), probs.cpu()


def is_coarse(size: int) -> bool:
    """Whether maps at this image size are too coarse to show much (see the module docstring)."""
    return size // GRID_DIVISOR <= COARSE_GRID


def heatmaps(learner: Predictor, paths: Sequence[str | Path], class_index: int | None = None,
             callbacks: Callback | Sequence[Callback] | None = None,
             cancel: CancelToken | None = None) -> list[Heatmap]:
    """A Heatmap per path, in order (unreadable files get the reason); stopped through `cancel`,
    the ones done so far."""
    emit, cancel = Emitter(callbacks), cancel or CancelToken()
    transform = valid_transform(learner.size)
    read = ImageReader(needed_side(learner.size, learner.max_zoom))
    clock = EtaClock(len(paths))
    done: list[Heatmap] = []
    for start in range(0, len(paths), BATCH):
        if cancel.cancelled:
            break
        chunk = [str(p) for p in paths[start:start + BATCH]]
        images, errors = decode_images(read, chunk)
        tensors = [transform(img) for img in images]
        if tensors:
            x = to_device(torch.stack(tensors), learner.device)
            wanted = None if class_index is None else torch.full((len(tensors),), class_index)
            cams, chosen, probs = class_activation_maps(learner.model, x, wanted)
        row = 0
        for j, path in enumerate(chunk):
            if j in errors:
                done.append(Heatmap(path, None, -1, 0.0, errors[j]))
            else:
                done.append(Heatmap(path, cams[row].numpy(), int(chosen[row]), float(probs[row])))
                row += 1
        emit(PredictProgress(len(done), len(paths), clock.elapsed(), clock.eta(len(done))))
    return done
