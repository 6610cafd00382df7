"""Build resources/demo/ from Debian's ``dataset-fashion-mnist`` package.

The bundled demo is four Fashion-MNIST classes in fast.ai layout (train/ and valid/ of class
folders, PNG files). Train images come from the package's training split and valid images from
its test split, so the two never share a picture. The selection is deterministic: the first N
images of each class in file order.

Usage::

    apt-get download dataset-fashion-mnist        # or: apt-get install dataset-fashion-mnist
    python scripts/make_demo_dataset.py --source dataset-fashion-mnist_*.deb
    python scripts/make_demo_dataset.py           # uses /usr/share/datasets/fashion-mnist
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

INSTALLED_DIR = Path("/usr/share/datasets/fashion-mnist")
LICENCE_IN_PACKAGE = Path("usr/share/doc/dataset-fashion-mnist/copyright")
DATA_IN_PACKAGE = Path("usr/share/datasets/fashion-mnist")
# Fashion-MNIST label ids of the classes the demo keeps.
CLASSES = {1: "trouser", 3: "dress", 4: "coat", 8: "bag"}
N_TRAIN = 150
N_VALID = 50


def read_idx(path: Path) -> np.ndarray:
    """Read a gzipped IDX file (the MNIST container format) into an array."""
    with gzip.open(path, "rb") as f:
        zero, dtype_code, ndim = struct.unpack(">HBB", f.read(4))
        if zero != 0 or dtype_code != 0x08:
            raise ValueError(f"{path} is not an unsigned-byte IDX file")
        shape = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(shape)


def unpack_deb(deb: Path, into: Path) -> Path:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(into)], check=True)
    return into


def write_split(images: np.ndarray, labels: np.ndarray, out: Path, per_class: int) -> None:
    for label, name in CLASSES.items():
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        indices = np.flatnonzero(labels == label)[:per_class]
        if len(indices) < per_class:
            raise SystemExit(f"only {len(indices)} images of class {name} in the source")
        for i in indices:
            Image.fromarray(images[i], mode="L").save(folder / f"{name}_{i:05d}.png", optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=None,
                        help="the .deb file or the package's unpacked root (default: installed package)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "resources" / "demo")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        if args.source is None:
            root, data_dir = Path("/"), INSTALLED_DIR
        elif args.source.suffix == ".deb":
            root = unpack_deb(args.source, Path(tmp))
            data_dir = root / DATA_IN_PACKAGE
        else:
            root, data_dir = args.source, args.source / DATA_IN_PACKAGE
        if not data_dir.is_dir():
            print(f"no Fashion-MNIST files in {data_dir}; install dataset-fashion-mnist or pass --source",
                  file=sys.stderr)
            return 1

        if args.out.exists():
            shutil.rmtree(args.out)
        write_split(read_idx(data_dir / "train-images-idx3-ubyte.gz"),
                    read_idx(data_dir / "train-labels-idx1-ubyte.gz"), args.out / "train", N_TRAIN)
        write_split(read_idx(data_dir / "t10k-images-idx3-ubyte.gz"),
                    read_idx(data_dir / "t10k-labels-idx1-ubyte.gz"), args.out / "valid", N_VALID)
        shutil.copyfile(root / LICENCE_IN_PACKAGE, args.out / "LICENSE-fashion-mnist.txt")
    (args.out / "README.md").write_text(
        "# Demo dataset\n\n"
        "Four classes of [Fashion-MNIST](https://github.com/zalandoresearch/fashion-mnist) "
        "(Zalando SE, MIT licence, see `LICENSE-fashion-mnist.txt`), taken from Debian's "
        "`dataset-fashion-mnist` package by `scripts/make_demo_dataset.py`.\n\n"
        f"Classes: {', '.join(CLASSES.values())}. {N_TRAIN} train images per class from the "
        f"training split, {N_VALID} valid images per class from the test split; 28x28 grayscale PNG.\n"
    )
    print(f"wrote {len(CLASSES) * (N_TRAIN + N_VALID)} images to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
