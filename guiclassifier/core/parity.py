"""The parity check of an export: the exported file, run in a separate process that never imports
guiclassifier (guiclassifier/exported_runner.py, with only the metadata inside the file), must give
the app's answers on the same images: the same top class and probabilities within TOLERANCE."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from guiclassifier.core.errors import ExportError

if TYPE_CHECKING:
    from guiclassifier.core.cancel import CancelToken
    from guiclassifier.core.learner import Learner

SAMPLE = 200
TOLERANCE = 1e-4
SYNTHETIC = 8  # images made up when the model has no dataset: the arithmetic is still compared
TIMEOUT_S = 600


@dataclass(frozen=True)
class Parity:
    n: int
    same_top: int
    largest_difference: float

    def describe(self, fmt: str) -> str:
        return (f"{fmt.upper()} export: {self.same_top}/{self.n} same answers, largest difference "
                f"{self.largest_difference:.0e}")


def check_images(learner: Learner, n: int = SAMPLE) -> list[str]:
    """Up to `n` validation images spread over the set (none without a dataset)."""
    if learner.data is None:
        return []
    paths = [i.path for i in learner.data.valid_items]
    step = max(1, len(paths) // n)
    return paths[::step][:n]


def check_parity(learner: Learner, exported: Path, images: Sequence[str] | None = None,
                 cancel: CancelToken | None = None) -> Parity:
    """Compare `exported` with the app on `images` (default: check_images); ExportError on a
    mismatch or when the file cannot be run on its own."""
    from guiclassifier.core.predict import predict_files

    with tempfile.TemporaryDirectory(prefix="guiclassifier-parity-") as tmp:
        paths = list(images) if images is not None else check_images(learner)
        if not paths:
            paths = _synthetic_images(Path(tmp), learner.size)
        ours = predict_files(learner, paths, cancel=cancel)
        kept = [r for r in ours if r.probabilities is not None]
        if not kept:
            raise ExportError("the parity check has no readable image to compare on")
        theirs = _run_alone(exported, [r.path for r in kept])
    app = np.array([r.probabilities for r in kept], dtype=np.float64)
    if theirs.shape != app.shape:
        raise ExportError(f"the export gives {theirs.shape[1]} probabilities per image, the app "
                          f"{app.shape[1]}: it is not this model")
    parity = Parity(len(kept), int((theirs.argmax(1) == app.argmax(1)).sum()), float(np.abs(theirs - app).max()))
    if parity.same_top < parity.n or parity.largest_difference > TOLERANCE:
        raise ExportError(f"the export does not answer like the app ({parity.same_top}/{parity.n} same answers, "
                          f"largest difference {parity.largest_difference:.1e}, allowed {TOLERANCE:.0e}); "
                          "nothing was written")
    return parity


def _run_alone(exported: Path, paths: list[str]) -> np.ndarray:
    """Probabilities from the exported file run by exported_runner.py in an isolated process."""
    import guiclassifier.exported_runner as runner

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as listing:
        listing.write("\n".join(paths))
    try:
        done = subprocess.run([sys.executable, "-I", runner.__file__, str(exported), f"@{listing.name}"],
                              capture_output=True, text=True, timeout=TIMEOUT_S)
    finally:
        Path(listing.name).unlink(missing_ok=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise ExportError(f"the exported file could not be run on its own ({last}); nothing was written")
    answer = json.loads(done.stdout)
    if answer["imported_guiclassifier"]:
        raise ExportError("the parity check's runner imported guiclassifier: it proves nothing")
    return np.array(answer["probabilities"], dtype=np.float64)


def _synthetic_images(folder: Path, size: int) -> list[str]:
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(SYNTHETIC):
        path = folder / f"synthetic_{i}.png"
        Image.fromarray(rng.integers(0, 256, (size + 7 * i, size, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths
