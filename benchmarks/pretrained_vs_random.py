"""The lesson1 recipe on the demo data with pretrained MobileNetV2 vs the same from random weights.

Run: .venv/bin/python benchmarks/pretrained_vs_random.py [--size 64] [--arch mobilenet_v2]
"""

from __future__ import annotations

import argparse
import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from common import DEMO, fresh_cache, machine  # noqa: E402

from guiclassifier import ImageData, Learner  # noqa: E402
from guiclassifier.core.recipe import lesson1  # noqa: E402
from guiclassifier.core.recipe_runner import run_recipe  # noqa: E402


def run(arch: str, size: int, weights: str | None, device: str) -> tuple[float, float]:
    fresh_cache()
    data = ImageData.from_folder(DEMO, size=size, bs=32, seed=42)
    learner = Learner.pretrained(arch, data, weights=weights, device=device)
    start = time.perf_counter()
    result = run_recipe(learner, lesson1())
    return result.evaluation.accuracy, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="mobilenet_v2")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    print(machine())
    for label, weights in (("pretrained (ImageNet)", "auto"), ("random initialisation", None)):
        accuracy, seconds = run(args.arch, args.size, weights, args.device)
        print(f"{label:<24} TTA accuracy {accuracy:6.1%}   recipe time {seconds:6.1f} s")


if __name__ == "__main__":
    main()
