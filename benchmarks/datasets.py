"""The benchmarks' datasets: the bundled demo plus Fashion-MNIST subsets with other classes.

Each subset is built like resources/demo (scripts/make_demo_dataset.py): from Debian's
`dataset-fashion-mnist` package (fetched with `apt-get download`, unpacked with `dpkg -x`), the
first N_TRAIN images of each class in the package's training split go to train/, the first
N_VALID of its test split to valid/, as 28x28 grayscale PNGs. Deterministic; built once into
~/.cache/guiclassifier-bench/datasets (GUICLASSIFIER_BENCH_DIR overrides the root).
SUBSETS are the accuracy benchmarks' (200 + 100 per class); AUDIT_SUBSETS are larger (>= 2,000
images each) for the data audit's benchmark (benchmarks/audit_planted.py), with their own counts;
LARGE_SUBSETS (>= 2,000 training images) for the speed benchmark (benchmarks/recipe_vs_fastai.py).

Run alone to build them: .venv/bin/python benchmarks/datasets.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from make_demo_dataset import DATA_IN_PACKAGE, INSTALLED_DIR, read_idx  # noqa: E402

from common import DEMO  # noqa: E402

N_TRAIN = 200
N_VALID = 100
# name -> {Fashion-MNIST label id: class name}; none uses the demo's classes (trouser, dress, coat, bag).
SUBSETS: dict[str, dict[int, str]] = {
    "fm-shoes3": {5: "sandal", 7: "sneaker", 9: "ankle_boot"},
    "fm-tops3": {0: "tshirt", 2: "pullover", 7: "sneaker"},
    "fm-shirt-vs-tshirt": {0: "tshirt", 6: "shirt"},  # the hard pair: two similar garments
}
# name -> (classes, train images per class, valid images per class); none uses the demo's classes.
# tests/planted.py moves label errors from the first class (sorted by name) into the second:
# ankle boots labelled sandal in the first, pullovers labelled shirt (a look-alike) in the second.
AUDIT_SUBSETS: dict[str, tuple[dict[int, str], int, int]] = {
    "fm-audit-shoes4": ({5: "sandal", 7: "sneaker", 9: "ankle_boot", 6: "shirt"}, 450, 100),  # 2,200
    "fm-audit-tops3": ({0: "tshirt", 2: "pullover", 6: "shirt"}, 600, 100),  # 2,100: three look-alike tops
}
# name -> (classes, train images per class, valid images per class): the speed benchmark's larger
# set (benchmarks/recipe_vs_fastai.py: >= 2,000 training images); none uses the demo's classes.
LARGE_SUBSETS: dict[str, tuple[dict[int, str], int, int]] = {
    "fm-large4": ({0: "tshirt", 2: "pullover", 5: "sandal", 7: "sneaker"}, 550, 100),  # 2,200 + 400
}


def bench_dir() -> Path:
    return Path(os.environ.get("GUICLASSIFIER_BENCH_DIR", Path.home() / ".cache" / "guiclassifier-bench"))


def _fashion_mnist_files(work: Path) -> Path:
    """The folder holding the IDX files: installed package, or the .deb downloaded and unpacked."""
    if INSTALLED_DIR.is_dir():
        return INSTALLED_DIR
    debs = sorted(work.glob("dataset-fashion-mnist_*.deb"))
    if not debs:
        subprocess.run(["apt-get", "download", "dataset-fashion-mnist"], cwd=work, check=True)
        debs = sorted(work.glob("dataset-fashion-mnist_*.deb"))
    unpacked = work / "unpacked"
    if not (unpacked / DATA_IN_PACKAGE).is_dir():
        subprocess.run(["dpkg", "-x", str(debs[-1]), str(unpacked)], check=True)
    return unpacked / DATA_IN_PACKAGE


def _write(images: np.ndarray, labels: np.ndarray, classes: dict[int, str], out: Path, n: int) -> None:
    for label, name in classes.items():
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(labels == label)[:n]:
            Image.fromarray(images[i], mode="L").save(folder / f"{name}_{i:05d}.png")


def build(name: str) -> Path:
    """The dataset folder for `name` ("demo", a key of SUBSETS, AUDIT_SUBSETS or LARGE_SUBSETS), built if missing."""
    if name == "demo":
        return DEMO
    if name in AUDIT_SUBSETS:
        return _build(name, *AUDIT_SUBSETS[name])
    if name in LARGE_SUBSETS:
        return _build(name, *LARGE_SUBSETS[name])
    return _build(name, SUBSETS[name], N_TRAIN, N_VALID)


def _build(name: str, classes: dict[int, str], n_train: int, n_valid: int) -> Path:
    out = bench_dir() / "datasets" / name
    if (out / ".complete").exists():
        return out
    work = bench_dir() / "fashion-mnist"
    work.mkdir(parents=True, exist_ok=True)
    source = _fashion_mnist_files(work)
    with tempfile.TemporaryDirectory(dir=bench_dir()) as tmp:
        staging = Path(tmp) / name
        _write(read_idx(source / "train-images-idx3-ubyte.gz"), read_idx(source / "train-labels-idx1-ubyte.gz"),
               classes, staging / "train", n_train)
        _write(read_idx(source / "t10k-images-idx3-ubyte.gz"), read_idx(source / "t10k-labels-idx1-ubyte.gz"),
               classes, staging / "valid", n_valid)
        (staging / ".complete").touch()
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            subprocess.run(["rm", "-rf", str(out)], check=True)
        staging.rename(out)
    return out


if __name__ == "__main__":
    for dataset in ("demo", *SUBSETS, *AUDIT_SUBSETS, *LARGE_SUBSETS):
        print(dataset, build(dataset))
