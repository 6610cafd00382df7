"""The CUDA paths: mixed precision, pinned memory, out-of-memory recovery, resume, and models that
move between a GPU and a CPU. Skipped where there is no GPU (CI); run on a lent GPU machine with
`pytest tests/core/test_cuda.py` (see benchmarks/README.md, "GPU")."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from guiclassifier import ImageData, Learner
from guiclassifier.core.cancel import CancelToken
from guiclassifier.core.checkpoint import CheckpointConfig, latest_checkpoint
from guiclassifier.core.events import EpochEnded

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

FIT = {"lrs": 0.05, "n_cycle": 2, "cycle_len": 1, "cycle_mult": 2}  # 3 epochs: 1 + 2


def cuda_learner(dataset: Path, size: int = 64, bs: int = 8, arch: str = "resnet18", **kwargs) -> Learner:
    """resnet18 from random weights, or `arch` with its ImageNet weights (the offline package)."""
    data = ImageData.from_folder(dataset, size=size, bs=bs, num_workers=0, seed=0)
    weights = None if arch == "resnet18" else "auto"
    return Learner.pretrained(arch, data, weights=weights, device="cuda", **kwargs)


def weights_on_cpu(learner: Learner) -> dict[str, torch.Tensor]:
    return {k: v.detach().float().cpu().clone() for k, v in learner.model.state_dict().items()}


def test_mixed_precision_trains_every_recipe_stage(dataset: Path) -> None:
    learner = cuda_learner(dataset, arch="mobilenet_v2", precompute=True)
    assert learner.precision.name == "fp16" and learner._scaler.is_enabled()
    head = learner.fit(0.01, 2)
    learner.precompute = False
    augmented = learner.fit(0.01, 1, cycle_len=1)
    learner.unfreeze()
    unfrozen = learner.fit([0.001, 0.003, 0.01], 2, cycle_len=1)
    for result in (head, augmented, unfrozen):
        losses = [(e.train_loss, e.valid_loss) for e in result.epochs]
        assert not result.failed and torch.isfinite(torch.tensor(losses)).all(), (result.message, losses)
    assert head.final_accuracy == 1.0  # two colours, ImageNet features


def test_mixed_precision_loss_and_gradients_match_float32(dataset: Path) -> None:
    """The same batch through the same unfrozen model: float16 autocast with loss scaling gives
    float32's loss and gradient direction (trajectories part ways on tiny data, so compare a step)."""
    learner = cuda_learner(dataset, arch="mobilenet_v2")
    learner.unfreeze()
    learner.model.eval()  # BatchNorm's running statistics stay as they are between the two passes
    x, y = next(learner.training_batches())
    results = []
    for amp in (True, False):
        learner.model.zero_grad(set_to_none=True)
        with torch.autocast("cuda", enabled=amp):
            loss = learner.criterion(learner.model(x), y)
        scale = 1024.0 if amp else 1.0
        (loss * scale).backward()
        grad = torch.cat([p.grad.flatten() / scale for p in learner.model.parameters() if p.grad is not None])
        results.append((float(loss), grad.float()))
    (loss16, grad16), (loss32, grad32) = results
    assert loss16 == pytest.approx(loss32, rel=1e-2)
    assert torch.nn.functional.cosine_similarity(grad16, grad32, dim=0) > 0.99


def test_training_batches_come_from_pinned_memory(dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    learner = cuda_learner(dataset)
    pinned: list[bool] = []
    original = learner.data.train_loader

    def spy(augment: bool = True, pin_memory: bool = False):
        pinned.append(pin_memory)
        return original(augment=augment, pin_memory=pin_memory)

    monkeypatch.setattr(learner.data, "train_loader", spy)
    x, y = next(learner.training_batches())
    assert pinned == [True] and x.is_cuda and y.is_cuda
    assert x.is_contiguous(memory_format=torch.channels_last)


def test_lr_find_leaves_the_gpu_model_as_it_was(dataset: Path) -> None:
    learner = cuda_learner(dataset)
    learner.unfreeze()
    before = weights_on_cpu(learner)
    result = learner.lr_find(num_it=20)
    assert result.suggestions and all(0 < lr < 10 for lr in result.suggestions.values())
    after = weights_on_cpu(learner)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_out_of_memory_keeps_the_weights_and_the_app_goes_on(dataset: Path) -> None:
    learner = cuda_learner(dataset, size=224, bs=16)
    learner.unfreeze()
    before = weights_on_cpu(learner)
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    squeezed = (torch.cuda.memory_reserved() + 32 * 2**20) / total  # too little for one batch
    torch.cuda.set_per_process_memory_fraction(squeezed)
    try:
        result = learner.fit(0.01, 1)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    assert result.out_of_memory and result.failed
    assert "Out of memory in epoch 1 (batch size 16, 224 px images on cuda)" in result.message
    after = weights_on_cpu(learner)
    assert all(torch.equal(before[k], after[k]) for k in before)
    again = learner.fit(0.01, 1)  # with the memory back, the same learner trains
    assert not again.failed and again.epochs_done == 1


def test_model_trained_on_gpu_answers_the_same_on_cpu(dataset: Path, tmp_path: Path) -> None:
    learner = cuda_learner(dataset)
    learner.fit(0.05, 2)
    path = learner.save(tmp_path / "gpu.gcm")
    files = [item.path for item in learner.data.valid_items]
    on_gpu = learner.predict(files, tta=True)
    on_cpu = Learner.load(path, device="cpu").predict(files, tta=True)
    assert (on_gpu.argmax(1) == on_cpu.argmax(1)).all()
    assert abs(on_gpu - on_cpu).max() < 0.02  # float16 autocast on the GPU, float32 on the CPU


def test_resume_on_gpu_follows_the_same_schedule(dataset: Path, tmp_path: Path) -> None:
    full = cuda_learner(dataset).fit(**FIT)
    config = CheckpointConfig(tmp_path / "ck")
    cancel = CancelToken()

    def stop_after_first_epoch(event) -> None:
        if isinstance(event, EpochEnded) and event.epoch == 0:
            cancel.cancel()

    first = cuda_learner(dataset).fit(**FIT, callbacks=stop_after_first_epoch, cancel=cancel, checkpoints=config)
    assert first.cancelled and first.epochs_done == 1
    data = ImageData.from_folder(dataset, size=64, bs=8, num_workers=0, seed=0)
    learner, resumed = Learner.resume(latest_checkpoint(config.folder), data, device="cuda")
    assert learner.precision.scales_loss and resumed.epochs_done == 3
    # cuDNN picks kernels per run, so the same schedule gives close, not identical, losses.
    for a, b in zip(full.epochs, resumed.epochs):
        assert a.train_loss == pytest.approx(b.train_loss, rel=0.05, abs=1e-3)
