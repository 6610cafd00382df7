"""Training-step and inference time per numeric precision (fp32, fp16, bf16 autocast), per
architecture, on synthetic batches in channels-last layout: which precision pays on this machine.

    .venv/bin/python benchmarks/precision.py --device cpu --size 64 --bs 64
    python3 benchmarks/precision.py --device cuda --size 224 --bs 64
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from common import machine  # noqa: E402

from guiclassifier.core.models import build_classifier  # noqa: E402

DTYPES = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(step: Callable[[], None], device: torch.device, rounds: int, steps: int) -> float:
    """Median over `rounds` of the mean time of `steps` calls, after one warm-up round."""
    times = []
    for r in range(rounds + 1):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        synchronize(device)
        if r:
            times.append((time.perf_counter() - start) / steps)
    return statistics.median(times)


def measure(arch: str, precision: str, device: torch.device, size: int, bs: int,
            rounds: int, steps: int) -> tuple[float, float]:
    """(seconds per training step, seconds per inference batch)."""
    torch.manual_seed(0)
    model, _ = build_classifier(arch, 10, None)
    model.to(device, memory_format=torch.channels_last)
    model.freeze_to(0)
    dtype = DTYPES[precision]
    x = torch.randn(bs, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (bs,), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")

    def train_step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)

    def infer() -> None:
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            model(x)

    model.train()
    train = median_seconds(train_step, device, rounds, steps)
    model.eval()
    return train, median_seconds(infer, device, rounds, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--bs", type=int, default=64)
    parser.add_argument("--archs", default="mobilenet_v2,resnet34")
    parser.add_argument("--precisions", default=None, help="default: fp32,bf16 on CPU, fp32,fp16,bf16 on CUDA")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    precisions = (args.precisions or ("fp32,fp16,bf16" if device.type == "cuda" else "fp32,bf16")).split(",")
    print(machine(), f"| {args.size} px, bs {args.bs}, channels-last, median of {args.rounds}x{args.steps}")
    print("| arch | precision | train step (ms) | vs fp32 | inference batch (ms) | vs fp32 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for arch in args.archs.split(","):
        base: tuple[float, float] | None = None
        for precision in precisions:
            train, infer = measure(arch, precision, device, args.size, args.bs, args.rounds, args.steps)
            base = base or (train, infer)
            print(f"| {arch} | {precision} | {train * 1e3:.1f} | {train / base[0]:.2f}x "
                  f"| {infer * 1e3:.1f} | {infer / base[1]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
