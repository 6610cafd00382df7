"""Numeric precision (core.precision): what each choice means per device, that bfloat16 autocast
really runs the training step, validation, precompute and prediction, and that cached activations
of one precision are not served to another."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from guiclassifier.core.errors import GuiClassifierError
from guiclassifier.core.learner import Learner
from guiclassifier.core.precision import PRECISIONS, resolve_precision

CPU, CUDA, MPS = torch.device("cpu"), torch.device("cuda"), torch.device("mps")


def test_automatic_is_float16_on_cuda_and_float32_elsewhere() -> None:
    assert resolve_precision("auto", CUDA).name == "fp16"
    assert resolve_precision("auto", CUDA).scales_loss
    for device in (CPU, MPS):
        chosen = resolve_precision("auto", device)
        assert chosen.name == "fp32" and not chosen.mixed and chosen.dtype is None
        assert chosen.describe() == "float32 (automatic)"
    bf16 = resolve_precision("bf16", CPU)
    assert bf16.dtype == torch.bfloat16 and bf16.mixed and not bf16.scales_loss  # float32's range: no scaling
    assert set(PRECISIONS) == {"auto", "fp32", "bf16", "fp16"}


def test_choices_a_device_cannot_run_are_refused_in_words() -> None:
    with pytest.raises(GuiClassifierError, match="float16 is for GPUs"):
        resolve_precision("fp16", CPU)
    with pytest.raises(GuiClassifierError, match="unknown precision 'fp8'"):
        resolve_precision("fp8", CPU)


def _dtypes_seen(learner: Learner) -> list[torch.dtype]:
    """The dtypes the body's convolutions put out from now on."""
    seen: list[torch.dtype] = []
    for m in learner.model.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    return seen


def test_bfloat16_runs_training_validation_and_prediction_in_bfloat16(tiny_learner: Learner, dataset) -> None:
    tiny_learner.unfreeze()
    tiny_learner.set_precision("bf16")
    assert not tiny_learner._scaler.is_enabled()
    seen = _dtypes_seen(tiny_learner)
    before = {k: v.clone() for k, v in tiny_learner.model.state_dict().items()}
    result = tiny_learner.fit(1e-3, 1)
    assert not result.failed and all(torch.isfinite(torch.tensor(e.valid_loss)) for e in result.epochs)
    assert any(not torch.equal(before[k], v) for k, v in tiny_learner.model.state_dict().items())
    assert seen and set(seen) == {torch.bfloat16}  # the step's forward and the epoch's validation
    seen.clear()
    probs = tiny_learner.predict(sorted((dataset / "valid").rglob("*.png"))[:3])
    assert set(seen) == {torch.bfloat16} and probs.dtype == "float32"
    assert probs.sum(1) == pytest.approx([1.0, 1.0, 1.0], abs=1e-5)
    tiny_learner.set_precision("fp32")  # back to plain float32: no autocast at all
    seen.clear()
    tiny_learner.predict(sorted((dataset / "valid").rglob("*.png"))[:1])
    assert set(seen) == {torch.float32}


def test_cached_activations_are_kept_apart_by_precision(dataset) -> None:
    from guiclassifier import ImageData

    data = ImageData.from_folder(dataset, size=32, bs=8, num_workers=0, seed=0)
    learner = Learner.pretrained("resnet18", data, weights=None, device="cpu", precision="bf16")
    mixed = learner.split_activations("valid")
    learner.set_precision("fp32")
    plain = learner.split_activations("valid")
    assert mixed.path != plain.path
    assert not np.array_equal(mixed.features, plain.features)
