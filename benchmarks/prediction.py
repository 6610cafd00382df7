"""Prediction speed: images/s for a dropped folder of 1,000 images, with and without TTA.

Runs core.predict.predict_files, the path the Predict tab and `guiclassifier predict` use
(familiarity check included), on MobileNetV2 at 224 px, for two folders: 1,000 small images (the
demo's, repeated) and, when benchmarks/data_pipeline.py has made them, 1,000 photos of 2000x1500.
Run: .venv/bin/python benchmarks/prediction.py [--repeats 3] [--size 224]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEMO, fresh_cache, machine  # noqa: E402
from data_pipeline import WORK  # noqa: E402  (where data_pipeline.py keeps its big photos)

from guiclassifier.core.data import ImageData  # noqa: E402
from guiclassifier.core.learner import Learner  # noqa: E402
from guiclassifier.core.predict import build_reference, predict_files  # noqa: E402

ARCH, N = "mobilenet_v2", 1000
BIG_PHOTOS = WORK / "big"


def folder_of(sources: list[Path], name: str) -> Path:
    """A folder of N files, repeating `sources` (as links: what is read is the same bytes)."""
    folder = Path(tempfile.mkdtemp(prefix=f"gc-predict-{name}-"))
    for i in range(N):
        src = sources[i % len(sources)]
        (folder / f"{i:04d}{src.suffix}").symlink_to(src.resolve())
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(machine())
    fresh_cache()
    import numpy as np
    import torch

    data = ImageData.from_folder(DEMO, size=args.size, bs=64, seed=42)
    learner = Learner.pretrained(ARCH, data, device="cpu")
    # A reference as a trained model carries one (the warning check costs what it costs in use).
    learner.reference = build_reference(np.random.default_rng(0).normal(size=(2048, learner.model.n_features)).astype(np.float32))
    folders = {"small images (28 px PNG)": folder_of(sorted(DEMO.glob("*/*/*.png")), "small")}
    if BIG_PHOTOS.is_dir():
        folders["photos (2000x1500 JPEG)"] = folder_of(sorted(BIG_PHOTOS.glob("*/*/*.jpg")), "big")
    else:
        print("(no big photos: run benchmarks/data_pipeline.py first to include them)")
    print(f"{ARCH} at {args.size} px, batches of {data.bs}, {torch.get_num_threads()} torch threads, "
          f"{N} files per folder")
    for name, folder in folders.items():
        files = sorted(folder.iterdir())
        predict_files(learner, files[:64], reference=learner.reference)  # warm-up
        medians = []
        for tta in (False, True):
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                results = predict_files(learner, files, tta=tta, reference=learner.reference)
                times.append(time.perf_counter() - start)
                assert all(r.probabilities is not None for r in results)
            med = statistics.median(times)
            medians.append(med)
            print(f"  {name:<26} {'TTA (5 views)' if tta else 'plain':<14} {N / med:7.1f} images/s "
                  f"({med:.1f} s; runs {', '.join(f'{t:.1f}' for t in times)})")
        print(f"  {name:<26} TTA / plain time {medians[1] / medians[0]:.2f} (5 forward passes per image)")
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
