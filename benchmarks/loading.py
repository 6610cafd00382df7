"""Where an unfrozen epoch's time goes with each way of loading images: one loading process (the
default before issue 19's profile), in the training process with decoded images kept in memory
(the default now for datasets that fit), and batches already in memory (the floor).

    GUICLASSIFIER_THREADS=2 .venv/bin/python benchmarks/loading.py [--data resources/demo] [--epochs 4]

MobileNetV2 with the offline ImageNet weights, all layers training, 64 px, bs 64. Per epoch: the
time waiting for batches ("load"), in training steps ("step") and in all; the first epoch of each
way is left out of the medians (it decodes the files and warms up).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEMO, machine  # noqa: E402

from guiclassifier.core.data import ImageData  # noqa: E402
from guiclassifier.core.learner import Learner  # noqa: E402
from guiclassifier.core.threads import adapt_threads  # noqa: E402

LRS = [1e-4, 3e-4, 1e-3]


def epoch(learner: Learner, batches=None) -> tuple[float, float]:
    """(seconds waiting for batches, seconds in training steps) of one epoch."""
    source = iter(batches if batches is not None else learner.training_batches())
    load = step = 0.0
    while True:
        began = time.perf_counter()
        try:
            x, y = next(source)
        except StopIteration:
            return load, step
        loaded = time.perf_counter()
        learner.train_step(x, y, LRS)
        load, step = load + loaded - began, step + time.perf_counter() - loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEMO)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    adapt_threads()
    print(machine())
    ways = {"1 loading process": 1, "in-line, decoded images in memory": None}
    learner = None
    for name, workers in ways.items():
        data = ImageData.from_folder(args.data, size=64, bs=64, num_workers=workers, seed=0)
        torch.manual_seed(0)
        learner = Learner.pretrained("mobilenet_v2", data)
        learner.unfreeze()
        times = [epoch(learner) for _ in range(args.epochs)][1:]
        report(f"{name} ({data.num_workers} processes)", times)
    assert learner is not None
    batches = list(learner.training_batches())
    report("batches already in memory", [epoch(learner, batches) for _ in range(args.epochs)][1:])


def report(name: str, times: list[tuple[float, float]]) -> None:
    load = statistics.median(t[0] for t in times)
    step = statistics.median(t[1] for t in times)
    total = statistics.median(t[0] + t[1] for t in times)
    print(f"{name:48s} load {load:5.2f} s  steps {step:5.2f} s  epoch {total:5.2f} s", flush=True)


if __name__ == "__main__":
    main()
