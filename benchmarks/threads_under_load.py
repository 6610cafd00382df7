"""Does PyTorch's thread count matter when other programs keep the CPU busy? (issue 13, item 14)

Times MobileNetV2 training steps (64 px, bs 32, channels-last, as the engine runs them) with 1
thread and with all cores' threads, on a quiet machine and while `--busy` other processes spin
one core each (a stand-in for a browser or a compile on a laptop). Steps alternate between the
settings so that a change in load affects both.

Run: .venv/bin/python benchmarks/threads_under_load.py [--busy 1] [--steps 20] [--repeats 3]
Run nothing else meanwhile.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402


def _spin(stop: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    x = 0
    while not stop.is_set():
        x += 1


def _step_seconds(threads: int, steps: int) -> float:
    import torch
    from torchvision.models import mobilenet_v2

    torch.set_num_threads(threads)
    model = mobilenet_v2(num_classes=4).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.rand(32, 3, 64, 64).to(memory_format=torch.channels_last)
    y = torch.randint(0, 4, (32,))
    for _ in range(3):  # warm-up
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--busy", type=int, default=1, help="processes spinning a core each, in the busy runs")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(machine())
    print(f"{'load':<22} {'threads':>7} {'s/step (median)':>16} {'all runs':>30}")
    ctx = multiprocessing.get_context("spawn")
    for busy in (0, args.busy):
        stop = ctx.Event()
        spinners = [ctx.Process(target=_spin, args=(stop,), daemon=True) for _ in range(busy)]
        for p in spinners:
            p.start()
        time.sleep(0.5)
        runs: dict[int, list[float]] = {1: [], cores: []}
        for _ in range(args.repeats):
            for threads in runs:
                runs[threads].append(_step_seconds(threads, args.steps))
        stop.set()
        for p in spinners:
            p.join()
        label = "quiet" if not busy else f"{busy} other busy process{'es' if busy > 1 else ''}"
        for threads, times in runs.items():
            print(f"{label:<22} {threads:>7} {statistics.median(times):>16.3f} "
                  f"{' '.join(f'{t:.3f}' for t in times):>30}")


if __name__ == "__main__":
    main()
