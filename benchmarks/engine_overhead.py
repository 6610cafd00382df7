"""Engine overhead: one epoch of unfrozen training through Learner.fit against a minimal
hand-written PyTorch loop on the same model, loader, optimizer, batch size and image size.

Both train MobileNetV2 (ImageNet weights, all layers, BatchNorm statistics updated) on the demo
data at 64 px, bs 32, SGD with momentum 0.9 and weight decay 1e-4, with the same loading process
count; each measures the training batches of one epoch only (validation excluded). Repeats are
interleaved and each pair is compared; the median of the paired ratios is reported. On CUDA both
use mixed precision (autocast and a gradient scaler), as the engine does by default there.
Run: .venv/bin/python benchmarks/engine_overhead.py [--repeats 5] [--size 64] [--device cpu]
On a GPU (issue 7):  ... --device cuda --size 224 --arch resnet34 --weights random
(resnet34's ImageNet weights are not installed offline; timing does not depend on the weights.)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from common import DEMO, fresh_cache, machine  # noqa: E402

from guiclassifier import ImageData, Learner  # noqa: E402
from guiclassifier.core.events import BatchEnded, FitStarted  # noqa: E402
from guiclassifier.core.models import build_classifier  # noqa: E402

LR = 1e-3


def engine_epoch(data: ImageData, device: str, arch: str, weights: str | None) -> float:
    """Seconds for the training batches of one epoch through Learner.fit."""
    learner = Learner.pretrained(arch, data, device=device, weights=weights, bn_freeze=False)
    learner.unfreeze()
    marks: dict[str, float] = {}

    def clock(event) -> None:
        if isinstance(event, FitStarted):
            marks["start"] = time.perf_counter()
        elif isinstance(event, BatchEnded) and event.batch == event.batches_per_epoch - 1:
            marks["end"] = time.perf_counter()

    learner.fit(LR, 1, callbacks=clock)
    return marks["end"] - marks["start"]


def plain_epoch(data: ImageData, device: str, arch: str, weights: str | None) -> float:
    """Seconds for one epoch of the textbook loop on the same model and loader, in the same memory
    layout (channels-last, as the engine keeps it: the layout is not engine overhead)."""
    model, _ = build_classifier(arch, data.c, weights)
    model.to(device, memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9, weight_decay=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    kind = torch.device(device).type
    scaler = torch.amp.GradScaler(kind, enabled=kind == "cuda")
    start = time.perf_counter()
    for batch in data.train_loader(pin_memory=kind == "cuda"):
        x = batch.x.to(device, non_blocking=True, memory_format=torch.channels_last)
        y = batch.y.to(device, non_blocking=True)
        with torch.autocast(kind, enabled=kind == "cuda"):
            loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        loss.item()  # the engine reads every batch's loss too (progress, divergence check)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--bs", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--arch", default="mobilenet_v2")
    parser.add_argument("--weights", default="auto", help="auto (ImageNet) or random")
    args = parser.parse_args()
    weights = None if args.weights == "random" else args.weights
    print(machine())
    fresh_cache()
    data = ImageData.from_folder(DEMO, size=args.size, bs=args.bs, seed=42)
    engine_epoch(data, args.device, args.arch, weights)  # warm-up: weights read, caches filled, threads started
    plain_epoch(data, args.device, args.arch, weights)
    engine, plain = [], []
    for _ in range(args.repeats):
        torch.manual_seed(0)
        engine.append(engine_epoch(data, args.device, args.arch, weights))
        torch.manual_seed(0)
        plain.append(plain_epoch(data, args.device, args.arch, weights))
        print(f"  repeat: engine {engine[-1]:.2f} s  plain loop {plain[-1]:.2f} s")
    ratios = sorted(e / p for e, p in zip(engine, plain))
    print(f"{args.repeats} repeats, {args.arch}, one epoch of {len(data.train_items)} images at {args.size} px, "
          f"bs {args.bs}, {args.device}")
    print(f"engine     {statistics.median(engine):.2f} s (median)")
    print(f"plain loop {statistics.median(plain):.2f} s (median)")
    print(f"engine / plain, median of paired repeats {statistics.median(ratios):.3f} "
          f"(target <= 1.05; pairs {ratios[0]:.2f}-{ratios[-1]:.2f})")


if __name__ == "__main__":
    main()
