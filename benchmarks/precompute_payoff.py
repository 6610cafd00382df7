"""What precompute=True buys: head epochs from cached activations vs through the frozen body.

Measures on the demo data (600 train / 200 valid images):
  - one head epoch through the body (precompute off, no augmentation) vs from a warm cache;
  - the whole frozen stage (lr_find + 2 head epochs) with precompute, cache build included,
    vs the same stage through the body.
Run: .venv/bin/python benchmarks/precompute_payoff.py [--size 128] [--arch mobilenet_v2]
On a GPU (issue 7): ... --device cuda --size 224 --arch resnet34 --weights random (mixed precision
is the engine's default on CUDA; resnet34's ImageNet weights are not installed offline)
"""

from __future__ import annotations

import argparse
import sys

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from common import DEMO, fresh_cache, machine, median_time, timed  # noqa: E402

from guiclassifier import ImageData, Learner  # noqa: E402


def learner(arch: str, size: int, precompute: bool, device: str, weights: str | None) -> Learner:
    data = ImageData.from_folder(DEMO, size=size, bs=64, augment="none", seed=42)
    return Learner.pretrained(arch, data, precompute=precompute, device=device, weights=weights)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="mobilenet_v2")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--weights", default="auto", help="auto (ImageNet) or random")
    args = parser.parse_args()
    weights = None if args.weights == "random" else args.weights
    print(machine())
    print(f"{args.arch} at {args.size} px, demo data")

    fresh_cache()
    body = learner(args.arch, args.size, False, args.device, weights)
    body_epoch = median_time(lambda: body.fit(1e-2, 1), args.repeats)
    cached = learner(args.arch, args.size, True, args.device, weights)
    build = timed(lambda: cached.fit(1e-2, 1))  # builds the train and valid cache
    cached_epoch = median_time(lambda: cached.fit(1e-2, 1), args.repeats)
    print(f"head epoch through the body   {body_epoch:8.3f} s")
    print(f"head epoch from a warm cache  {cached_epoch:8.3f} s   ({body_epoch / cached_epoch:.0f}x faster)")
    print(f"first epoch incl. cache build {build:8.3f} s")

    def stage(precompute: bool) -> None:
        fresh_cache()
        lrn = learner(args.arch, args.size, precompute, args.device, weights)
        lrn.lr_find()
        lrn.fit(1e-2, 2)

    with_cache = median_time(lambda: stage(True), args.repeats)
    without = median_time(lambda: stage(False), args.repeats)
    print(f"frozen stage (lr_find + 2 epochs), precompute, cold cache  {with_cache:7.2f} s")
    print(f"frozen stage (lr_find + 2 epochs), through the body       {without:7.2f} s"
          f"   ({without / with_cache:.1f}x slower)")


if __name__ == "__main__":
    main()
