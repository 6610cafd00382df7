"""Big photos: is image loading the bottleneck, and do shrunk copies (core.resized) fix it?

Makes 2000x1500 JPEGs from the demo data (upscaled, tinted and with sensor-like noise, so that
they decode like photos; about 0.5 MB each) and the same set pre-shrunk by hand to the side
training needs. Then, at 224 px with the default loading processes:
  - decode + augment throughput of the loader alone, for each way of reading the photos;
  - the model's own rate (a training step of the head with the frozen body, on tensors in memory);
  - one epoch of head training with augmentation (precompute off, as in recipe step 4) on the big
    photos (first epoch making the copies, then with them) vs on the pre-shrunk set.
Target: training on big photos within 1.2x of training on pre-shrunk ones.
Run: .venv/bin/python benchmarks/data_pipeline.py [--repeats 3] [--size 224]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEMO, fresh_cache, machine  # noqa: E402

from guiclassifier.core.data import ImageData, make_loader  # noqa: E402
from guiclassifier.core.learner import Learner  # noqa: E402
from guiclassifier.core.resized import COPY_QUALITY, ImageReader, needed_side, shrink  # noqa: E402

BIG = (2000, 1500)
ARCH, BS = "mobilenet_v2", 32
WORK = Path(tempfile.gettempdir()) / "gc-bench-bigjpeg"
FULL_DECODE = ImageReader(10**6)  # as before this issue: no reduced-scale decoding, no copies


def make_photo(src: Path, dst: Path, rng: np.random.Generator) -> None:
    gray = np.asarray(Image.open(src).convert("L").resize(BIG, Image.Resampling.BICUBIC), dtype=np.float32)
    tint = rng.uniform(0.6, 1.0, size=3)
    rgb = gray[..., None] * tint + rng.normal(0, 6, size=(*gray.shape, 3))
    dst.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).save(dst, "JPEG", quality=90)


def make_sets(side: int) -> tuple[Path, Path]:
    """The big photos (made once, kept in the temp folder) and a copy shrunk to `side`."""
    big, small = WORK / "big", WORK / f"shrunk{side}"
    sources = sorted(p for p in DEMO.glob("*/*/*") if p.suffix == ".png")
    if not (WORK / "done").is_file():
        shutil.rmtree(WORK, ignore_errors=True)
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        for src in sources:
            make_photo(src, big / src.relative_to(DEMO).with_suffix(".jpg"), rng)
        (WORK / "done").write_text("")
        print(f"made {len(sources)} photos of {BIG[0]}x{BIG[1]} in {time.perf_counter() - start:.0f} s")
    if not (small / "done").is_file():
        for path in big.glob("*/*/*.jpg"):
            out = small / path.relative_to(big)
            out.parent.mkdir(parents=True, exist_ok=True)
            shrink(Image.open(path).convert("RGB"), side).save(out, "JPEG", quality=COPY_QUALITY)
        (small / "done").write_text("")
    sizes = [p.stat().st_size for p in big.glob("*/*/*.jpg")]
    print(f"{len(sizes)} photos, {statistics.mean(sizes) / 1e6:.2f} MB each on average; pre-shrunk to {side} px")
    return big, small


def loader_rate(data: ImageData, reader_kind: str) -> float:
    """Images/s of the training loader alone (decode + augment, default loading processes)."""
    reader = FULL_DECODE if reader_kind == "full decode" else data.reader()
    loader = make_loader(data.train_items, data.train_tfm(), data.bs, True, data.num_workers, reader=reader)
    start = time.perf_counter()
    n = sum(len(b) for b in loader)
    return n / (time.perf_counter() - start)


def model_rate(data: ImageData, steps: int = 8) -> float:
    """Images/s of head training with the frozen body on a batch already in memory."""
    import torch

    learner = Learner.pretrained(ARCH, data, device="cpu")
    model = learner.model
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    x = torch.rand(BS, 3, data.size, data.size)
    y = torch.randint(0, data.c, (BS,))
    for i in range(steps + 1):
        if i == 1:
            start = time.perf_counter()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return steps * BS / (time.perf_counter() - start)


def epoch_time(data: ImageData) -> float:
    learner = Learner.pretrained(ARCH, data, device="cpu", seed=42)
    start = time.perf_counter()
    learner.fit(1e-3, 1)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(machine())
    side = needed_side(args.size, 1.1)
    big, small = make_sets(side)
    fresh_cache()  # activations and copies in an empty folder

    def data(folder: Path, copies: bool = True) -> ImageData:
        return ImageData.from_folder(folder, size=args.size, bs=BS, seed=42, resized_cache=copies)

    big_data, small_data = data(big), data(small)
    print(f"{args.size} px, {ARCH}, bs {BS}, {big_data.num_workers} loading process(es), "
          f"{len(big_data.train_items)} train / {len(big_data.valid_items)} valid images")

    cold = epoch_time(big_data)  # makes the copies (train and valid)
    print(f"\nfirst epoch on the big photos, making the copies: {cold:.1f} s")

    print("\nloader alone, decode + augment (images/s):")
    rates = {
        "big, full decode (before this issue)": loader_rate(data(big, False), "full decode"),
        "big, JPEG draft decode (no copies)": loader_rate(data(big, False), "draft"),
        "big, shrunk copies": loader_rate(big_data, "copies"),
        "pre-shrunk by hand": loader_rate(small_data, "copies"),
    }
    for name, rate in rates.items():
        print(f"  {name:<38} {rate:7.1f}")
    print(f"  {'model, head training step (no loading)':<38} {model_rate(small_data):7.1f}")

    before = data(big, False)
    before.reader = lambda: FULL_DECODE  # type: ignore[method-assign]
    full = epoch_time(before)
    print(f"\nhead epoch with augmentation, big photos decoded in full (before this issue), one run: {full:.1f} s")
    print(f"head epoch with augmentation, median of {args.repeats} (interleaved):")
    times: dict[str, list[float]] = {"pre-shrunk": [], "big, copies": [], "big, draft only": []}
    for _ in range(args.repeats):
        times["pre-shrunk"].append(epoch_time(small_data))
        times["big, copies"].append(epoch_time(big_data))
        times["big, draft only"].append(epoch_time(data(big, False)))
    base = statistics.median(times["pre-shrunk"])
    for name, values in times.items():
        med = statistics.median(values)
        print(f"  {name:<18} {med:6.1f} s  ({med / base:.2f}x pre-shrunk; runs {', '.join(f'{v:.1f}' for v in values)})")
    ratio = statistics.median(times["big, copies"]) / base
    print(f"\nbig photos with copies / pre-shrunk = {ratio:.2f} (target <= 1.2: {'met' if ratio <= 1.2 else 'MISSED'})")
    print(f"without copies (draft decode only) = {statistics.median(times['big, draft only']) / base:.2f}, "
          f"decoded in full = {full / base:.2f}")


if __name__ == "__main__":
    main()
