"""The activation cache: computed once, reused, invalidated by content, never half-written."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from guiclassifier import ImageData, Learner
from guiclassifier.core.cancel import CancelToken
from guiclassifier.core.events import PrecomputeEnded, PrecomputeProgress
from guiclassifier.core.precompute import default_cache_dir
from tests.conftest import make_image


def new_learner(root: Path, size: int = 32) -> Learner:
    data = ImageData.from_folder(root, size=size, bs=8, num_workers=0, seed=0)
    return Learner.pretrained("resnet18", data, weights=None, device="cpu", precompute=True)


def ended(events: list) -> dict[str, bool]:
    return {e.split: e.from_cache for e in events if isinstance(e, PrecomputeEnded)}


def test_cache_is_built_once_then_reused(dataset: Path) -> None:
    events: list = []
    new_learner(dataset).fit(1e-2, 1, callbacks=events.append)
    assert ended(events) == {"train": False, "valid": False}
    assert any(isinstance(e, PrecomputeProgress) for e in events)
    events.clear()
    new_learner(dataset).fit(1e-2, 1, callbacks=events.append)  # same seed: same random body
    assert ended(events) == {"train": True, "valid": True}


def assert_cache_equals_body_output(learner: Learner, split: str) -> None:
    acts = learner._activations[split]
    items = learner.data.train_items if split == "train" else learner.data.valid_items
    x = torch.stack([learner.data.valid_tfm()(__import__("PIL.Image").Image.open(i.path).convert("RGB"))
                     for i in items])
    learner.model.eval()
    with torch.no_grad():
        expected = learner.model.features(x).numpy()
    assert np.allclose(np.asarray(acts.features), expected, atol=1e-5)


def test_cached_features_equal_the_body_output(dataset: Path) -> None:
    learner = new_learner(dataset)
    learner.fit(1e-2, 1)
    assert_cache_equals_body_output(learner, "valid")


def test_changed_file_invalidates_only_its_split(dataset: Path) -> None:
    new_learner(dataset).fit(1e-2, 1)
    victim = dataset / "train" / "cat" / "cat_000.png"
    make_image(victim, (0, 255, 0), 999)
    os.utime(victim, ns=(1, 1))  # even with an old mtime, the size or mtime differs
    events: list = []
    learner = new_learner(dataset)
    learner.fit(1e-2, 1, callbacks=events.append)
    assert ended(events) == {"train": False, "valid": True}
    # The new train entry copies the other rows from the old one: one image went through the body.
    assert [e.computed for e in events if isinstance(e, PrecomputeEnded) and e.split == "train"] == [1]
    assert_cache_equals_body_output(learner, "train")


def test_moved_file_is_the_only_one_recomputed(dataset: Path) -> None:
    from guiclassifier.core.curate import move_to_class

    new_learner(dataset).fit(1e-2, 1)
    move_to_class(dataset / "valid" / "cat" / "cat_001.png", "dog", ("cat", "dog"))
    events: list = []
    learner = new_learner(dataset)
    learner.fit(1e-2, 1, callbacks=events.append)
    assert {e.split: (e.from_cache, e.computed) for e in events if isinstance(e, PrecomputeEnded)} == \
        {"train": (True, 0), "valid": (False, 1)}
    assert_cache_equals_body_output(learner, "valid")


def test_size_and_weights_change_the_key(dataset: Path) -> None:
    new_learner(dataset).fit(1e-2, 1)
    events: list = []
    new_learner(dataset, size=40).fit(1e-2, 1, callbacks=events.append)
    assert ended(events) == {"train": False, "valid": False}
    learner = new_learner(dataset)
    with torch.no_grad():
        learner.model.stem[0].weight.mul_(1.01)
    events.clear()
    learner.fit(1e-2, 1, callbacks=events.append)
    assert ended(events) == {"train": False, "valid": False}


def test_unfrozen_training_stales_the_cache(tiny_learner: Learner) -> None:
    tiny_learner.precompute = True
    tiny_learner.fit(1e-2, 1)
    tiny_learner.unfreeze()
    assert tiny_learner.precompute is False
    tiny_learner.fit(1e-3, 1)
    tiny_learner.freeze()
    tiny_learner.precompute = True
    events: list = []
    tiny_learner.fit(1e-2, 1, callbacks=events.append)
    assert ended(events) == {"train": False, "valid": False}


def test_how_images_are_read_changes_the_key_and_older_formats_are_not_served(dataset: Path, monkeypatch) -> None:
    from guiclassifier.core import precompute

    def fit_events(learner: Learner) -> dict[str, bool]:
        events: list = []
        learner.fit(1e-2, 1, callbacks=events.append)
        return ended(events)

    assert fit_events(new_learner(dataset)) == {"train": False, "valid": False}
    no_copies = new_learner(dataset)
    no_copies.attach_data(ImageData(no_copies.data.report, size=32, bs=8, num_workers=0, seed=0,
                                    resized_cache=False))
    assert fit_events(no_copies) == {"train": False, "valid": False}  # other pixels, other entry
    more_zoom = new_learner(dataset)
    more_zoom.attach_data(ImageData(more_zoom.data.report, size=32, bs=8, num_workers=0, seed=0, max_zoom=2.0))
    assert fit_events(more_zoom) == {"train": False, "valid": False}  # JPEGs decoded at another scale
    assert fit_events(new_learner(dataset)) == {"train": True, "valid": True}
    # Entries of an older format (features computed another way) are neither served nor copied from.
    monkeypatch.setattr(precompute, "CACHE_FORMAT", precompute.CACHE_FORMAT + 1)
    events: list = []
    new_learner(dataset).fit(1e-2, 1, callbacks=events.append)
    assert [(e.from_cache, e.computed) for e in events if isinstance(e, PrecomputeEnded)] == [(False, 24), (False, 8)]


def test_cancelled_build_leaves_no_entry(dataset: Path) -> None:
    token = CancelToken()

    def stop(event) -> None:
        if isinstance(event, PrecomputeProgress):
            token.cancel()

    result = new_learner(dataset).fit(1e-2, 1, callbacks=stop, cancel=token)
    assert result.cancelled
    cache = default_cache_dir()
    assert not cache.exists() or list(cache.iterdir()) == []


def test_precompute_needs_a_frozen_body(tiny_learner: Learner) -> None:
    tiny_learner.unfreeze()
    with pytest.raises(Exception, match="freeze"):
        tiny_learner.precompute = True
